/* demo.h: `hswarm demo` (cmd_demo.c): one run of the demo swarm (demo_run.c) and the HTML
 * report (demo_report.c). */
#ifndef HS_CLI_DEMO_H
#define HS_CLI_DEMO_H

#include "cli/swarm_model.h"
#include <jansson.h>
#include <stdint.h>

#include "hswarm/runtime.h"
#include "hswarm/sched.h"

typedef struct demo_opts {
  const char *model, *log, *trace, *report;
  cli_swarm_model_opts backend; /* --backend URL, --api-key-file F, --remote-model NAME */
  uint64_t tasks, team, rounds, seed, threads;
  double temperature;
  hs_mode mode;
  int json;
} demo_opts;

/* One sample of the engine over time (for the report). */
typedef struct demo_sample {
  double t, tokens_per_s, kv_mib, inferences_per_s;
} demo_sample;

typedef struct demo_outcome {
  json_t *swarm;              /* what the root agent returned (exprdemo.json), owned */
  hs_sched_metrics mt;
  hs_runtime_stats rs;
  uint64_t block_bytes, peak_kv_blocks, peak_running, peak_own_blocks;
  double wall;
  demo_sample *series;        /* owned */
  size_t n_series;
} demo_outcome;

/* Runs the swarm of script on the model with o's options (o->log and o->trace are honoured; live:
 * draw the progress line on a terminal). 0, or EXIT_FAILED (the swarm did not finish) / EXIT_ERROR
 * (it could not run) after cli_fail. */
int demo_run(const demo_opts *o, const char *script, int live, demo_outcome *out);
void demo_outcome_free(demo_outcome *out);

/* A sweep for the report: accuracy of teams of `team` agents. */
typedef struct demo_point {
  uint64_t team;
  json_t *swarm;              /* borrowed from its outcome */
} demo_point;

/* Writes the self-contained HTML report: the main run, and the sweep over team sizes. 0, or -1
 * after cli_fail. */
int demo_report_write(const char *path, const demo_opts *o, const demo_outcome *main_run,
                      const demo_point *sweep, size_t n_sweep, uint64_t sweep_tasks);

#endif
