/* swarm_model.c: a model served to a run's agents (swarm_model.h). */
#include "cli/swarm_model.h"

#include <string.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "agent/llm_remote.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/kvcache.h"
#include <stdio.h>

int cli_backend_opt(int argc, char **argv, int *i, cli_swarm_model_opts *o) {
  const char *a = argv[*i];
  if (!strcmp(a, "--backend-concurrency")) {
    uint64_t n;
    if (*i + 1 >= argc || cli_parse_u64(argv[*i + 1], 0, &n) != 0 || n == 0 || n > 1024) {
      fprintf(stderr, "hswarm: --backend-concurrency needs a number from 1 to 1024\n");
      return -1;
    }
    o->backend_concurrency = (uint32_t)n;
    ++*i;
    return 1;
  }
  const char **dst = !strcmp(a, "--backend")        ? &o->backend
                     : !strcmp(a, "--api-key-file") ? &o->api_key_file
                     : !strcmp(a, "--remote-model") ? &o->remote_model
                                                    : NULL;
  if (!dst) return 0;
  if (*i + 1 >= argc) {
    fprintf(stderr, "hswarm: %s needs a value\n", a);
    return -1;
  }
  *dst = argv[++*i];
  return 1;
}

/* The remote server as the run's model operations. 0, or -1 after cli_fail. */
static int open_remote(const cli_swarm_model_opts *o, hs_runtime *rt) {
  char *key = NULL;
  if (o->api_key_file) {
    size_t n;
    if (!(key = cli_read_file(o->api_key_file, &n))) return -1;
    key[strcspn(key, "\r\n")] = 0;
  }
  hs_remote_opts ro = {.url = o->backend, .api_key = key && key[0] ? key : NULL,
                       .max_in_flight = o->backend_concurrency};
  hs_remote *r = NULL;
  int rc = hs_remote_create(&ro, &r);
  hs_free(key);
  if (rc) {
    cli_fail("--backend %s: cannot start the remote executor (%s)", o->backend, hs_strerror(rc));
    return -1;
  }
  char model[256];
  if (!o->remote_model && hs_remote_first_model(r, model, sizeof model) != 0) {
    cli_fail("--backend %s: %s (give --remote-model NAME)", o->backend, model);
    hs_remote_destroy(r);
    return -1;
  }
  rc = hs_llm_attach_remote(rt, r, o->remote_model ? o->remote_model : model, NULL);
  if (rc == HS_ENOMEM || rc == HS_ELIMIT) hs_remote_destroy(r);
  if (rc) {
    cli_fail("--backend %s: %s", o->backend, hs_runtime_last_error(rt));
    return -1;
  }
  return 0;
}

int cli_swarm_model_open(const char *path, const cli_swarm_model_opts *o, hs_runtime *rt,
                         cli_swarm_model *out) {
  memset(out, 0, sizeof *out);
  if (o->backend) {
    if (!rt) {
      cli_fail("--backend needs a run");
      return -1;
    }
    return open_remote(o, rt);
  }
  hs_model_params p;
  uint64_t block_bytes;
  if (cli_model_kv_block(path, &p, &block_bytes) != 0) return -1;
  uint32_t n_ctx = o->n_ctx ? o->n_ctx : p.n_ctx_train;
  if (n_ctx > 4096 && !o->n_ctx) n_ctx = 4096;
  out->n_ctx = n_ctx;
  const uint32_t running = o->max_running ? o->max_running : 256;
  uint64_t blocks = (uint64_t)running * ((n_ctx + HS_KV_BLOCK_TOKENS - 1) / HS_KV_BLOCK_TOKENS);
  hs_model_opts mo = {.n_threads = o->threads,
                      .kv_bytes = o->kv_bytes ? o->kv_bytes : (blocks + 64) * block_bytes};
  if (hs_model_open(path, &mo, &out->m) != 0) {
    cli_fail("%s: %s", path, hs_engine_last_error());
    return -1;
  }
  if (hs_tokenizer_load(hs_model_get_gguf(out->m), &out->tok) != 0) {
    cli_fail("%s: tokenizer: %s", path, hs_tokenizer_last_error());
    cli_swarm_model_close(out);
    return -1;
  }
  hs_sched_opts so = {.tokenizer = out->tok, .max_running = running,
                      .token_budget = o->token_budget, .n_ctx = n_ctx};
  if (hs_sched_create(out->m, &so, &out->s) != 0) {
    cli_fail("scheduler: %s", hs_sched_last_error());
    cli_swarm_model_close(out);
    return -1;
  }
  if (rt && hs_llm_attach(rt, out->s, out->tok, NULL, &out->l) != 0) {
    cli_fail("cannot attach the model to the run: %s", hs_runtime_last_error(rt));
    cli_swarm_model_close(out);
    return -1;
  }
  return 0;
}

void cli_swarm_model_close(cli_swarm_model *sm) {
  hs_sched_destroy(sm->s); /* pending requests complete as cancelled, through sm->l and rt */
  hs_llm_free(sm->l);      /* unpins what agents left pinned */
  hs_tokenizer_destroy(sm->tok);
  hs_model_close(sm->m);
  memset(sm, 0, sizeof *sm);
}
