/* cmd_demo.c: `hswarm demo`: the main job. Micro-swarms of small agents answer held-out tasks of
 * the expression family with the shipped model (models/expr.gguf, trained by tools/expr/train.py),
 * and the run shows what teams with verification and retries add over single attempts.
 *
 * The swarm itself is Lua: examples/demo.lua, which runs lua/exprdemo.lua (see there for the
 * hierarchy, prompts and grading). This command opens the model, serves it to the run through the
 * batch scheduler, draws a live line while it runs, and prints the table (or --json) at the end.
 * The root agent reports finished teams through the operation "demo.progress". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/demo.h"

#define DEMO_USAGE                                                                              \
  "usage: hswarm demo [options]\n"                                                              \
  "  -m, --model FILE      a GGUF model (default: the shipped models/expr.gguf)\n"               \
  "  --backend URL         or an OpenAI-compatible server's API (--api-key-file F,\n"             \
  "                        --remote-model NAME); the engine's figures are then not shown\n"       \
  "  --tasks N             tasks, from the held-out split (default 1000; at most 2000)\n"       \
  "  --team-size K         agents per micro-swarm (default 10)\n"                               \
  "  --rounds R            rounds per team at most: retries after a failed round (default 30)\n" \
  "  --temperature T       sampling temperature of the members (default 1.0)\n"                \
  "  --seed S              run seed: every model call's seed derives from it (default 0)\n"     \
  "  --mode lockstep|free  execution mode (default lockstep: deterministic)\n"                  \
  "  --threads N           threads of the model (default: all cores)\n"                         \
  "  --log FILE            write the event log (hswarm replay FILE re-runs it without a model)\n" \
  "  --trace FILE          write a timeline of teams, rounds and engine steps (Chrome trace\n"  \
  "                        format: open it in ui.perfetto.dev)\n"                              \
  "  --report FILE.html    also write a page of charts: accuracy against team size (1, 2, 5,\n" \
  "                        10, 20 agents; extra runs on the first 200 tasks) and rounds,\n"  \
  "                        throughput and KV use over time (self-contained, no network)\n"   \
  "  --json                print one JSON object on stdout (docs/json.md)\n"

static double pct(json_t *o, const char *num, double den) {
  return den > 0 ? 100.0 * (double)json_integer_value(json_object_get(o, num)) / den : 0.0;
}

static void print_table(const demo_outcome *d, const demo_opts *o) {
  json_t *r = d->swarm;
  const hs_sched_metrics *mt = &d->mt;
  const hs_runtime_stats *rs = &d->rs;
  const double wall = d->wall;
  const uint64_t block_bytes = d->block_bytes;
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
  snprintf(label, sizeof label, "team of %llu, verified, with retries",
           (unsigned long long)o->team);
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
         (double)(d->peak_kv_blocks * block_bytes) / (1024.0 * 1024.0),
         (unsigned long long)d->peak_running,
         d->peak_running ? (double)(d->peak_own_blocks * block_bytes) / 1024.0 /
                                  (double)d->peak_running
                            : 0.0);
  printf("  engine steps    %llu\n  wall time       %.2f s\n", (unsigned long long)mt->steps, wall);
}

static int parse_opts(int argc, char **argv, demo_opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int taken;
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
    } else if ((taken = cli_backend_opt(argc, argv, &i, &o->backend)) != 0) {
      if (taken < 0) return -1;
    } else if (!strcmp(a, "--log") && v) {
      o->log = argv[++i];
    } else if (!strcmp(a, "--trace") && v) {
      o->trace = argv[++i];
    } else if (!strcmp(a, "--report") && v) {
      o->report = argv[++i];
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

static void print_json(const demo_outcome *d, const demo_opts *o) {
  const hs_sched_metrics *mt = &d->mt;
  json_t *out = json_pack(
      "{s:s, s:s, s:s, s:O, s:{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I}, s:{s:I, s:I}, "
      "s:f}",
      "command", "demo", "status", "ok", "model", o->model, "swarm", d->swarm, "engine",
      "model_calls", (json_int_t)mt->finished, "generated_tokens",
      (json_int_t)mt->generated_tokens, "prompt_tokens_computed",
      (json_int_t)mt->prompt_tokens_computed, "prompt_tokens_reused",
      (json_int_t)mt->prompt_tokens_reused, "steps", (json_int_t)mt->steps, "prefix_hit_ratio",
      mt->prefix_hit_ratio, "inferences_per_second",
      d->wall > 0 ? (double)mt->finished / d->wall : 0.0, "kv_peak_bytes",
      (json_int_t)(d->peak_kv_blocks * d->block_bytes), "kv_bytes_per_agent",
      (json_int_t)(d->peak_running ? d->peak_own_blocks * d->block_bytes / d->peak_running : 0),
      "running_at_peak", (json_int_t)d->peak_running, "agents", "spawned",
      (json_int_t)d->rs.spawned, "failed", (json_int_t)d->rs.failed, "wall_seconds", d->wall);
  char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
  if (s) puts(s);
  free(s);
  json_decref(out);
}

/* --report: the main run, then the same tasks (at most REPORT_TASKS of them) with teams of 1, 2,
 * 5, 10 and 20 agents. */
#define REPORT_TASKS 200
static int report(const demo_opts *o, const char *script, const demo_outcome *main_run) {
  static const uint64_t sizes[] = {1, 2, 5, 10, 20};
  enum { N = sizeof sizes / sizeof sizes[0] };
  demo_outcome runs[N];
  demo_point pts[N];
  demo_opts so = *o;
  so.tasks = o->tasks < REPORT_TASKS ? o->tasks : REPORT_TASKS;
  so.log = so.trace = NULL;
  int rc = 0;
  size_t n = 0;
  for (; n < N && !rc; n++) {
    so.team = sizes[n];
    if (!o->json) fprintf(stderr, "report: teams of %llu on %llu tasks\n",
                          (unsigned long long)sizes[n], (unsigned long long)so.tasks);
    rc = demo_run(&so, script, !o->json, &runs[n]);
    pts[n] = (demo_point){sizes[n], runs[n].swarm};
  }
  if (!rc) rc = demo_report_write(o->report, o, main_run, pts, n, so.tasks);
  for (size_t i = 0; i < n; i++) demo_outcome_free(&runs[i]);
  return rc ? -1 : 0;
}

int cmd_demo(int argc, char **argv) {
  demo_opts o = {.tasks = 1000, .team = 10, .rounds = 30, .temperature = 1.0};
  if (parse_opts(argc, argv, &o) != 0) {
    fputs(DEMO_USAGE, stderr);
    return EXIT_USAGE;
  }
  char model_path[4096], script_path[4096];
  const char *dir;
  int status = EXIT_ERROR;
  if (o.model && o.backend.backend) {
    cli_fail("demo: give -m FILE or --backend URL, not both");
    goto fail;
  }
  if (o.backend.backend) {
    o.model = o.backend.backend; /* named in the report; the engine's figures stay 0 */
  } else if (!o.model) {
    if (!(dir = cli_data_dir("models/expr.gguf"))) {
      cli_fail("demo: the shipped model models/expr.gguf is not found; give one with -m FILE");
      goto fail;
    }
    snprintf(model_path, sizeof model_path, "%s/models/expr.gguf", dir);
    o.model = model_path;
  }
  if (!(dir = cli_data_dir("examples/demo.lua"))) {
    cli_fail("demo: examples/demo.lua is not found (installed under share/hswarm?)");
    goto fail;
  }
  snprintf(script_path, sizeof script_path, "%s/examples/demo.lua", dir);
  demo_outcome d;
  status = demo_run(&o, script_path, !o.json, &d);
  if (!status && o.report && report(&o, script_path, &d) != 0) status = EXIT_ERROR;
  if (!status) {
    if (o.json) print_json(&d, &o);
    else print_table(&d, &o);
  }
  demo_outcome_free(&d);
  if (!status) return 0;
fail:
  if (o.json) cli_json_error("demo", cli_last_failure());
  return status;
}
