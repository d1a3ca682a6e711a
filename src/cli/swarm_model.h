/* swarm_model.h: a model served to many requests (swarm_model.c): the model, its tokenizer, a
 * batch scheduler and, for a run's agents, the "llm" operations of hswarm/llm.h, opened together
 * and closed together. Used by `hswarm run -m`, `hswarm demo`, `hswarm code`, `hswarm serve`
 * and `hswarm bench serve`. */
#ifndef HS_CLI_SWARM_MODEL_H
#define HS_CLI_SWARM_MODEL_H

#include <stdint.h>

#include "hswarm/engine.h"
#include "hswarm/llm.h"
#include "hswarm/runtime.h"
#include "hswarm/sched.h"
#include "hswarm/tokenizer.h"

typedef struct cli_swarm_model {
  hs_model *m;
  hs_tokenizer *tok;
  hs_sched *s;
  hs_llm *l;      /* NULL when opened without a runtime */
  uint32_t n_ctx; /* a request's context */
} cli_swarm_model;

typedef struct cli_swarm_model_opts {
  unsigned threads;       /* 0: all cores */
  uint64_t kv_bytes;      /* 0: room for max_running contexts of n_ctx tokens */
  uint32_t max_running;   /* 0: 256 */
  uint32_t token_budget;  /* 0: the scheduler's default */
  uint32_t n_ctx;         /* a request's context; 0: the model's, at most 4096 */
  /* a remote OpenAI-compatible server instead of a model file (with a runtime only) */
  const char *backend;      /* --backend URL */
  const char *api_key_file; /* --api-key-file F: its first line is the bearer key */
  const char *remote_model; /* --remote-model NAME */
  uint32_t backend_concurrency; /* --backend-concurrency N: requests in flight (0: 16) */
} cli_swarm_model_opts;

/* Takes --backend URL, --api-key-file F, --remote-model NAME and --backend-concurrency N at
 * argv[*i] (advancing *i): 1 taken, 0 not one of them, -1 after a message (no or bad value). */
int cli_backend_opt(int argc, char **argv, int *i, cli_swarm_model_opts *o);

/* Opens path and, when rt is not NULL, attaches it to rt; or, with o->backend (and rt), attaches
 * the remote server as the run's model operations (agent/llm_remote.h: then sm holds nothing). 0, or -1 after cli_fail (nothing left
 * open). Close it (cli_swarm_model_close) before hs_runtime_destroy: requests still pending then
 * complete as cancelled, through the runtime. */
int cli_swarm_model_open(const char *path, const cli_swarm_model_opts *o, hs_runtime *rt,
                         cli_swarm_model *out);
void cli_swarm_model_close(cli_swarm_model *sm);

#endif
