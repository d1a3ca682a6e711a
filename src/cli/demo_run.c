/* demo_run.c: one run of the demo swarm (demo.h): a runtime, the model served through the
 * scheduler, the operations the swarm uses ("llm", "verify", "demo.progress", "demo.trace"), the
 * loop with its live line, and what the run measured. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/demo.h"
#include "cli/swarm_model.h"
#include "cli/trace.h"
#include "hswarm/error.h"
#include "hswarm/kvcache.h"
#include "hswarm/verify.h"

typedef struct demo_live {
  uint64_t teams_done, right, tasks;
  double start, last_draw;
  int tty;
  uint64_t peak_kv_blocks, peak_running, peak_own_blocks;
  double last_sample;
  uint64_t last_tokens, last_finished;
} demo_live;

static hs_runtime *running_rt;
static void on_signal(int sig) {
  (void)sig;
  if (running_rt) hs_runtime_request_stop(running_rt);
}

static int progress_op(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                       size_t len, void *ud) {
  (void)agent;
  demo_live *live = ud;
  json_t *o = json_loadb(req, len, 0, NULL);
  if (o) {
    live->teams_done = (uint64_t)json_integer_value(json_object_get(o, "teams_done"));
    live->right = (uint64_t)json_integer_value(json_object_get(o, "right"));
    json_decref(o);
  }
  return hs_runtime_op_complete(rt, token, 0, "", 0);
}

/* --trace: teams' greedy calls and rounds (reported by the leads through "demo.trace") on one
 * track per team, engine steps on track 0. */
typedef struct demo_trace {
  cli_trace t;
  hs_sched *s;
} demo_trace;

static int trace_op(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                    size_t len, void *ud) {
  (void)agent;
  demo_trace *tr = ud;
  json_t *o = json_loadb(req, len, 0, NULL);
  const char *what = json_string_value(json_object_get(o, "what"));
  const char *phase = json_string_value(json_object_get(o, "phase"));
  json_int_t team = json_integer_value(json_object_get(o, "team"));
  json_int_t round = json_integer_value(json_object_get(o, "round"));
  if (what && phase && team > 0 && team < 1 << 24) {
    char name[32], track[32];
    if (!strcmp(what, "round")) snprintf(name, sizeof name, "round %lld", (long long)round);
    else snprintf(name, sizeof name, "%s", what);
    snprintf(track, sizeof track, "team %lld", (long long)team);
    cli_trace_track_name(&tr->t, (uint32_t)team, track);
    cli_trace_add(&tr->t, !strcmp(phase, "begin") ? 'B' : 'E', (uint32_t)team, name, 0, 0, NULL);
  }
  json_decref(o);
  return hs_runtime_op_complete(rt, token, 0, "", 0);
}

static int traced_engine_step(void *ud) {
  demo_trace *tr = ud;
  hs_sched_metrics before, after;
  hs_sched_get_metrics(tr->s, &before);
  double t0 = cli_trace_now(&tr->t);
  int rc = hs_sched_step(tr->s);
  hs_sched_get_metrics(tr->s, &after);
  if (after.steps > before.steps) {
    char args[96];
    snprintf(args, sizeof args, "\"running\":%u,\"generated\":%llu,\"prompt_computed\":%llu",
             after.running, (unsigned long long)(after.generated_tokens - before.generated_tokens),
             (unsigned long long)(after.prompt_tokens_computed - before.prompt_tokens_computed));
    cli_trace_add(&tr->t, 'X', 0, "engine step", t0, cli_trace_now(&tr->t) - t0, args);
  }
  return rc;
}

static void draw(demo_live *live, const cli_swarm_model *sm, int final) {
  double now = cli_seconds();
  if (!sm->s || !live->tty || (!final && now - live->last_draw < 0.25)) return; /* remote: no figures */
  live->last_draw = now;
  hs_sched_metrics mt;
  hs_sched_get_metrics(sm->s, &mt);
  hs_kv_stats st;
  hs_kv_get_stats(sm->m, &st);
  double t = now - live->start;
  fprintf(stderr,
          "\r\033[Kteams %llu/%llu | right %.1f%% | %.0f inferences/s | %.0f tok/s | prefix reuse "
          "%.0f%% | KV %.1f MiB | %.1f s",
          (unsigned long long)live->teams_done, (unsigned long long)live->tasks,
          live->teams_done ? 100.0 * (double)live->right / (double)live->teams_done : 0.0,
          t > 0 ? (double)mt.finished / t : 0.0,
          t > 0 ? (double)(mt.generated_tokens + mt.prompt_tokens_computed) / t : 0.0,
          100.0 * mt.prefix_hit_ratio,
          (double)(mt.kv_blocks_used * st.block_bytes) / (1024.0 * 1024.0), t);
  if (final) fputs("\r\033[K", stderr);
}

/* Samples the engine every quarter second for the report's charts (final: once more at the
 * end, so that a short run has a point too). */
static void sample(demo_live *live, const cli_swarm_model *sm, demo_outcome *out, int final) {
  if (!sm->s) return; /* a remote server: no engine figures */
  double now = cli_seconds();
  if (!final && now - live->last_sample < 0.25) return;
  if (now <= live->last_sample) return;
  hs_sched_metrics mt;
  hs_sched_get_metrics(sm->s, &mt);
  double dt = now - live->last_sample;
  if (out->n_series % 256 == 0) {
    demo_sample *p = realloc(out->series, (out->n_series + 256) * sizeof *p);
    if (!p) return;
    out->series = p;
  }
  out->series[out->n_series++] = (demo_sample){
      .t = now - live->start,
      .tokens_per_s =
          (double)(mt.generated_tokens + mt.prompt_tokens_computed - live->last_tokens) / dt,
      .inferences_per_s = (double)(mt.finished - live->last_finished) / dt,
      .kv_mib = (double)(mt.kv_blocks_used * out->block_bytes) / (1024.0 * 1024.0)};
  live->last_sample = now;
  live->last_tokens = mt.generated_tokens + mt.prompt_tokens_computed;
  live->last_finished = mt.finished;
}

static void track_peak(demo_live *live, const cli_swarm_model *sm) {
  if (!sm->s) return;
  hs_sched_metrics mt;
  hs_sched_get_metrics(sm->s, &mt);
  if (mt.kv_blocks_used > live->peak_kv_blocks) {
    live->peak_kv_blocks = mt.kv_blocks_used;
    live->peak_running = mt.running;
    live->peak_own_blocks =
        mt.kv_blocks_used > mt.kv_blocks_pinned ? mt.kv_blocks_used - mt.kv_blocks_pinned : 0;
  }
}

int demo_run(const demo_opts *o, const char *script_path, int show_live, demo_outcome *out) {
  memset(out, 0, sizeof *out);
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.seed = o->seed;
  cfg.mode = o->mode;
  cfg.quiet = 1;
  cfg.log_path = o->log;
  cfg.agent_memory = 4ull << 30; /* the root's state holds every team's light agents */
  hs_runtime *rt;
  if (hs_runtime_create(&cfg, &rt) != 0) {
    cli_fail("demo: %s", hs_runtime_create_error());
    return EXIT_ERROR;
  }
  cli_swarm_model sm;
  cli_swarm_model_opts mo = o->backend;
  mo.threads = (unsigned)o->threads;
  mo.max_running = 512;
  mo.token_budget = 2048;
  if (cli_swarm_model_open(o->model, &mo, rt, &sm) != 0) {
    hs_runtime_destroy(rt);
    return EXIT_ERROR;
  }
  demo_live live = {.tasks = o->tasks, .start = cli_seconds(),
                    .tty = show_live && cli_stderr_is_tty()};
  live.last_sample = live.start;
  hs_kv_stats kst = {0};
  if (sm.m) hs_kv_get_stats(sm.m, &kst);
  out->block_bytes = kst.block_bytes;
  char a_tasks[32], a_team[32], a_rounds[32], a_temp[32];
  snprintf(a_tasks, sizeof a_tasks, "tasks=%llu", (unsigned long long)o->tasks);
  snprintf(a_team, sizeof a_team, "team=%llu", (unsigned long long)o->team);
  snprintf(a_rounds, sizeof a_rounds, "rounds=%llu", (unsigned long long)o->rounds);
  snprintf(a_temp, sizeof a_temp, "temperature=%.6g", o->temperature);
  const char *args[] = {a_tasks, a_team, a_rounds, a_temp, "trace=1"};
  static demo_trace tr;
  cli_trace_init(&tr.t);
  tr.s = sm.s;
  if (o->trace && sm.s) {
    cli_trace_track_name(&tr.t, 0, "engine");
    hs_runtime_set_engine(rt, traced_engine_step, &tr);
  }
  if (hs_runtime_register_op(rt, "demo.progress", HS_OP_EXTERNAL, progress_op, &live) != 0 ||
      hs_runtime_register_op(rt, "demo.trace", HS_OP_EXTERNAL, trace_op, &tr) != 0 ||
      hs_verify_attach(rt, 0) != 0 ||
      hs_runtime_spawn_main(rt, script_path, o->trace ? 5 : 4, args, NULL) != 0) {
    cli_fail("demo: %s", hs_runtime_last_error(rt));
    cli_swarm_model_close(&sm);
    hs_runtime_destroy(rt);
    cli_trace_free(&tr.t);
    return EXIT_ERROR;
  }
  running_rt = rt;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int rc;
  while ((rc = hs_runtime_step(rt)) > 0) {
    track_peak(&live, &sm);
    draw(&live, &sm, 0);
    sample(&live, &sm, out, 0);
  }
  running_rt = NULL;
  double wall = cli_seconds() - live.start;
  draw(&live, &sm, 1);
  sample(&live, &sm, out, 1);

  hs_runtime_get_stats(rt, &out->rs);
  if (out->rs.failed) { /* a failing team does not stop the others, but say why it failed */
    const char *lines[3];
    size_t k = hs_runtime_failures(rt, lines, 3);
    for (size_t i = 0; i < k; i++) fprintf(stderr, "hswarm demo: %s\n", lines[i]);
    if (out->rs.failed > k)
      fprintf(stderr, "hswarm demo: ... and %llu more agents failed\n",
              (unsigned long long)(out->rs.failed - k));
  }
  if (sm.s) hs_sched_get_metrics(sm.s, &out->mt);
  out->wall = wall;
  out->peak_kv_blocks = live.peak_kv_blocks;
  out->peak_running = live.peak_running;
  out->peak_own_blocks = live.peak_own_blocks;
  static char result[1 << 16];
  long rlen = rc < 0 ? -1 : hs_runtime_main_result(rt, result, sizeof result);
  json_t *r = rlen >= 0 ? json_loadb(result, (size_t)rlen, 0, NULL) : NULL;
  int status = 0;
  if (!r) {
    const char *lines[3];
    size_t k = hs_runtime_failures(rt, lines, 3);
    char why[160];
    snprintf(why, sizeof why, "interrupted after %llu of %llu teams (%llu right so far)",
             (unsigned long long)live.teams_done, (unsigned long long)live.tasks,
             (unsigned long long)live.right);
    cli_fail("demo: the swarm did not finish: %s",
             rc < 0 ? hs_runtime_last_error(rt)
             : k    ? lines[0]
             : hs_runtime_was_stopped(rt) ? why
                                          : "no result");
    status = EXIT_FAILED;
  }
  out->swarm = r;
  if (o->trace && cli_trace_write(&tr.t, o->trace) != 0) status = EXIT_ERROR;
  cli_trace_free(&tr.t);
  cli_swarm_model_close(&sm);
  hs_runtime_destroy(rt);
  return status;
}

void demo_outcome_free(demo_outcome *out) {
  json_decref(out->swarm);
  free(out->series);
  memset(out, 0, sizeof *out);
}
