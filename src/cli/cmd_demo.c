/* cmd_demo.c: `hswarm demo`: the main job. Micro-swarms of small agents answer held-out tasks of
 * the expression family with the shipped model (models/expr.gguf, trained by tools/expr/train.py),
 * and the run shows what teams with verification and retries add over single attempts.
 *
 * The swarm itself is Lua: examples/demo.lua, which runs lua/exprdemo.lua (see there for the
 * hierarchy, prompts and grading). This command opens the model, serves it to the run through the
 * batch scheduler, draws a live line while it runs, and prints the table (or --json) at the end.
 * The root agent reports finished teams through the operation "demo.progress". */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/swarm_model.h"
#include "cli/trace.h"
#include "hswarm/error.h"
#include "hswarm/kvcache.h"
#include "hswarm/runtime.h"
#include "hswarm/verify.h"

#define DEMO_USAGE                                                                              \
  "usage: hswarm demo [options]\n"                                                              \
  "  -m, --model FILE      a GGUF model (default: the shipped models/expr.gguf)\n"               \
  "  --tasks N             tasks, from the held-out split (default 1000; at most 2000)\n"       \
  "  --team-size K         agents per micro-swarm (default 10)\n"                               \
  "  --rounds R            rounds per team at most: retries after a failed round (default 3)\n" \
  "  --temperature T       sampling temperature of the members (default 0.8)\n"                \
  "  --seed S              run seed: every model call's seed derives from it (default 0)\n"     \
  "  --mode lockstep|free  execution mode (default lockstep: deterministic)\n"                  \
  "  --threads N           threads of the model (default: all cores)\n"                         \
  "  --log FILE            write the event log (hswarm replay FILE re-runs it without a model)\n" \
  "  --trace FILE          write a timeline of teams, rounds and engine steps (Chrome trace\n"  \
  "                        format: open it in ui.perfetto.dev)\n"                              \
  "  --json                print one JSON object on stdout (docs/json.md)\n"

typedef struct demo_opts {
  const char *model, *log, *trace;
  uint64_t tasks, team, rounds, seed, threads;
  double temperature;
  hs_mode mode;
  int json;
} demo_opts;

/* Live state: what the root reported, and the engine's peak. */
typedef struct demo_live {
  uint64_t teams_done, right, tasks;
  double start, last_draw;
  int tty;
  uint64_t peak_kv_blocks, peak_running, peak_own_blocks;
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
  if (!live->tty || (!final && now - live->last_draw < 0.25)) return;
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

static void track_peak(demo_live *live, const cli_swarm_model *sm) {
  hs_sched_metrics mt;
  hs_sched_get_metrics(sm->s, &mt);
  if (mt.kv_blocks_used > live->peak_kv_blocks) {
    live->peak_kv_blocks = mt.kv_blocks_used;
    live->peak_running = mt.running;
    live->peak_own_blocks =
        mt.kv_blocks_used > mt.kv_blocks_pinned ? mt.kv_blocks_used - mt.kv_blocks_pinned : 0;
  }
}

static double pct(json_t *o, const char *num, double den) {
  return den > 0 ? 100.0 * (double)json_integer_value(json_object_get(o, num)) / den : 0.0;
}

static void print_table(json_t *r, const demo_opts *o, const hs_sched_metrics *mt,
                        const hs_runtime_stats *rs, const demo_live *live, uint64_t block_bytes,
                        double wall) {
  double tasks = (double)json_integer_value(json_object_get(r, "tasks"));
  double attempts = (double)json_integer_value(json_object_get(r, "sampled_total"));
  printf("hswarm demo: %llu tasks from the held-out split, micro-swarms of %llu agents, up to "
         "%llu rounds, temperature %.2f, seed %llu\n\n",
         (unsigned long long)o->tasks, (unsigned long long)o->team,
         (unsigned long long)o->rounds, o->temperature, (unsigned long long)o->seed);
  printf("  %-44s %s\n", "answered right (graded on hidden inputs)", "accuracy");
  printf("  %-44s %7.1f%%\n", "single agent, greedy", pct(r, "greedy_right", tasks));
  printf("  %-44s %7.1f%%   (%.0f attempts)\n", "single agent, sampled",
         pct(r, "sampled_right", attempts), attempts);
  char label[96];
  snprintf(label, sizeof label, "team of %llu, plain vote", (unsigned long long)o->team);
  printf("  %-44s %7.1f%%\n", label, pct(r, "vote_right", tasks));
  snprintf(label, sizeof label, "team of %llu, verified (one round)", (unsigned long long)o->team);
  printf("  %-44s %7.1f%%\n", label, pct(r, "verified_right", tasks));
  snprintf(label, sizeof label, "team of %llu, verified, with retries", (unsigned long long)o->team);
  printf("  %-44s %7.1f%%   (rounds used:", label, pct(r, "final_right", tasks));
  json_t *ru = json_object_get(r, "teams_by_rounds_used");
  for (size_t i = 0; i < json_array_size(ru); i++)
    printf(" %zu: %lld", i + 1, (long long)json_integer_value(json_array_get(ru, i)));
  printf(")\n\n");
  printf("  agents          %llu spawned (%llu failed)\n", (unsigned long long)rs->spawned,
         (unsigned long long)rs->failed);
  printf("  model calls     %llu in %.2f s: %.1f agent inferences/s\n",
         (unsigned long long)mt->finished, wall, wall > 0 ? (double)mt->finished / wall : 0.0);
  printf("  tokens          %llu generated, %llu prompt computed, %llu prompt reused from the "
         "prefix cache (%.1f%%); %.0f tok/s\n",
         (unsigned long long)mt->generated_tokens, (unsigned long long)mt->prompt_tokens_computed,
         (unsigned long long)mt->prompt_tokens_reused, 100.0 * mt->prefix_hit_ratio,
         wall > 0 ? (double)(mt->generated_tokens + mt->prompt_tokens_computed) / wall : 0.0);
  printf("  KV cache        peak %.2f MiB for %llu running requests: %.1f KiB per agent beside "
         "the pinned header\n",
         (double)(live->peak_kv_blocks * block_bytes) / (1024.0 * 1024.0),
         (unsigned long long)live->peak_running,
         live->peak_running ? (double)(live->peak_own_blocks * block_bytes) / 1024.0 /
                                  (double)live->peak_running
                            : 0.0);
  printf("  engine steps    %llu\n  wall time       %.2f s\n", (unsigned long long)mt->steps, wall);
}

static int parse_opts(int argc, char **argv, demo_opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t *num = !strcmp(a, "--tasks")       ? &o->tasks
                    : !strcmp(a, "--team-size") ? &o->team
                    : !strcmp(a, "--rounds")    ? &o->rounds
                    : !strcmp(a, "--seed")      ? &o->seed
                    : !strcmp(a, "--threads")   ? &o->threads
                                                : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(DEMO_USAGE, stdout);
      exit(0);
    } else if (!strcmp(a, "--json")) {
      o->json = 1;
    } else if (num) {
      if (!v || cli_parse_u64(v, 0, num) != 0) {
        fprintf(stderr, "hswarm demo: %s needs a non-negative integer\n", a);
        return -1;
      }
      i++;
    } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) {
      o->model = argv[++i];
    } else if (!strcmp(a, "--log") && v) {
      o->log = argv[++i];
    } else if (!strcmp(a, "--trace") && v) {
      o->trace = argv[++i];
    } else if (!strcmp(a, "--temperature") && v) {
      char *end;
      o->temperature = strtod(v, &end);
      if (*end || !(o->temperature >= 0 && o->temperature <= 2)) {
        fprintf(stderr, "hswarm demo: --temperature must be a number in [0, 2]\n");
        return -1;
      }
      i++;
    } else if (!strcmp(a, "--mode") && v) {
      if (!strcmp(v, "lockstep")) o->mode = HS_MODE_LOCKSTEP;
      else if (!strcmp(v, "free")) o->mode = HS_MODE_FREE;
      else {
        fprintf(stderr, "hswarm demo: --mode must be lockstep or free\n");
        return -1;
      }
      i++;
    } else {
      fprintf(stderr, "hswarm demo: unknown option or missing value '%s'\n", a);
      return -1;
    }
  }
  if (o->tasks < 1 || o->tasks > 2000 || o->team < 1 || o->team > 1000 || o->rounds < 1 ||
      o->rounds > 100) {
    fprintf(stderr, "hswarm demo: --tasks 1..2000, --team-size 1..1000, --rounds 1..100\n");
    return -1;
  }
  return 0;
}

int cmd_demo(int argc, char **argv) {
  demo_opts o = {.tasks = 1000, .team = 10, .rounds = 3, .temperature = 0.8};
  if (parse_opts(argc, argv, &o) != 0) {
    fputs(DEMO_USAGE, stderr);
    return EXIT_USAGE;
  }
  char model_path[4096], script_path[4096];
  const char *dir;
  if (!o.model) {
    if (!(dir = cli_data_dir("models/expr.gguf"))) {
      cli_fail("demo: the shipped model models/expr.gguf is not found; give one with -m FILE");
      goto fail_early;
    }
    snprintf(model_path, sizeof model_path, "%s/models/expr.gguf", dir);
    o.model = model_path;
  }
  if (!(dir = cli_data_dir("examples/demo.lua"))) {
    cli_fail("demo: examples/demo.lua is not found (installed under share/hswarm?)");
    goto fail_early;
  }
  snprintf(script_path, sizeof script_path, "%s/examples/demo.lua", dir);

  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.seed = o.seed;
  cfg.mode = o.mode;
  cfg.quiet = 1;
  cfg.log_path = o.log;
  cfg.agent_memory = 4ull << 30; /* the root's state holds every team's light agents */
  hs_runtime *rt;
  if (hs_runtime_create(&cfg, &rt) != 0) {
    cli_fail("demo: %s", hs_runtime_create_error());
    goto fail_early;
  }
  cli_swarm_model sm;
  cli_swarm_model_opts mo = {.threads = (unsigned)o.threads, .max_running = 512,
                             .token_budget = 2048};
  if (cli_swarm_model_open(o.model, &mo, rt, &sm) != 0) {
    hs_runtime_destroy(rt);
    goto fail_early;
  }
  demo_live live = {.tasks = o.tasks, .start = cli_seconds(), .tty = cli_stderr_is_tty() && !o.json};
  char a_tasks[32], a_team[32], a_rounds[32], a_temp[32];
  snprintf(a_tasks, sizeof a_tasks, "tasks=%llu", (unsigned long long)o.tasks);
  snprintf(a_team, sizeof a_team, "team=%llu", (unsigned long long)o.team);
  snprintf(a_rounds, sizeof a_rounds, "rounds=%llu", (unsigned long long)o.rounds);
  snprintf(a_temp, sizeof a_temp, "temperature=%.6g", o.temperature);
  const char *args[] = {a_tasks, a_team, a_rounds, a_temp, "trace=1"};
  static demo_trace tr;
  cli_trace_init(&tr.t);
  tr.s = sm.s;
  if (o.trace) {
    cli_trace_track_name(&tr.t, 0, "engine");
    hs_runtime_set_engine(rt, traced_engine_step, &tr);
  }
  if (hs_runtime_register_op(rt, "demo.progress", 1, progress_op, &live) != 0 ||
      hs_runtime_register_op(rt, "demo.trace", 1, trace_op, &tr) != 0 ||
      hs_verify_attach(rt) != 0 ||
      hs_runtime_spawn_main(rt, script_path, o.trace ? 5 : 4, args, NULL) != 0) {
    cli_fail("demo: %s", hs_runtime_last_error(rt));
    cli_swarm_model_close(&sm);
    hs_runtime_destroy(rt);
    cli_trace_free(&tr.t);
    goto fail_early;
  }
  running_rt = rt;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int rc;
  while ((rc = hs_runtime_step(rt)) > 0) {
    track_peak(&live, &sm);
    draw(&live, &sm, 0);
  }
  running_rt = NULL;
  double wall = cli_seconds() - live.start;
  draw(&live, &sm, 1);

  hs_runtime_stats rs;
  hs_runtime_get_stats(rt, &rs);
  hs_sched_metrics mt;
  hs_sched_get_metrics(sm.s, &mt);
  hs_kv_stats kst;
  hs_kv_get_stats(sm.m, &kst);
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
    if (o.json) cli_json_error("demo", cli_last_failure());
  } else if (o.json) {
    json_t *out = json_pack("{s:s, s:s, s:s, s:O, s:{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, "
                            "s:I, s:I}, s:{s:I, s:I}, s:f}",
                            "command", "demo", "status", "ok", "model", o.model, "swarm", r,
                            "engine", "model_calls", (json_int_t)mt.finished, "generated_tokens",
                            (json_int_t)mt.generated_tokens, "prompt_tokens_computed",
                            (json_int_t)mt.prompt_tokens_computed, "prompt_tokens_reused",
                            (json_int_t)mt.prompt_tokens_reused, "steps", (json_int_t)mt.steps,
                            "prefix_hit_ratio", mt.prefix_hit_ratio, "inferences_per_second",
                            wall > 0 ? (double)mt.finished / wall : 0.0, "kv_peak_bytes",
                            (json_int_t)(live.peak_kv_blocks * kst.block_bytes),
                            "kv_bytes_per_agent",
                            (json_int_t)(live.peak_running ? live.peak_own_blocks *
                                                                 kst.block_bytes / live.peak_running
                                                           : 0),
                            "running_at_peak", (json_int_t)live.peak_running, "agents",
                            "spawned", (json_int_t)rs.spawned, "failed", (json_int_t)rs.failed,
                            "wall_seconds", wall);
    char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
    if (s) puts(s);
    free(s);
    json_decref(out);
  } else {
    print_table(r, &o, &mt, &rs, &live, kst.block_bytes, wall);
  }
  json_decref(r);
  if (o.trace && cli_trace_write(&tr.t, o.trace) != 0) status = EXIT_ERROR;
  cli_trace_free(&tr.t);
  cli_swarm_model_close(&sm);
  hs_runtime_destroy(rt);
  return status;

fail_early:
  if (o.json) cli_json_error("demo", cli_last_failure());
  return EXIT_ERROR;
}
