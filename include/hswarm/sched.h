/* hswarm/sched.h: the batch scheduler: many generation requests served together by one model.
 *
 * Requests are submitted at any time and wait in a queue. Each call of hs_sched_step is one
 * engine step: the scheduler admits waiting requests whose KV memory fits (policy below), then
 * runs one batched forward pass holding the next token of every running request that is
 * generating plus chunks of the prompts of admitted requests, within a token budget, and samples
 * the next token of every request whose prompt is done (continuous batching: requests join and
 * leave at any step). Prompts reuse the model's prefix cache (kvcache.h): a request computes only
 * what is not cached, and publishes what it computes for the next ones.
 *
 *   hs_sched *s;  hs_sched_create(model, NULL, &s);
 *   hs_sched_request r;  hs_sched_request_init(&r);
 *   r.prompt = ids;  r.n_prompt = n;  r.max_tokens = 64;  r.on_done = done;  r.ud = me;
 *   hs_sched_submit(s, &r, &id);
 *   while (hs_sched_step(s) > 0) {}      // done(result, me) runs when the request finishes
 *
 * Results are batch-invariant: a request's tokens (greedy, or sampled with its seed) are the same
 * bits whichever requests share its steps, how its prompt was chunked, whether its prefix came
 * from the cache, whether it was preempted and resumed, and how many threads run (engine.h).
 *
 * Policy ("oracle"), applied at each step, in this order:
 *   1. Deadlines and cancellations: requests past their deadline (in steps) finish with
 *      HS_FINISH_DEADLINE, cancelled ones with HS_FINISH_CANCELLED, with the tokens they have.
 *   2. Admission, class by class: urgent, then normal, then background (strict precedence: a
 *      class is considered only when no request of a higher class is waiting). Within a class:
 *      requests waiting longer than max_wait_steps first (oldest first); then by team, the team
 *      with the fewest tokens served per unit of weight first (weighted fair share); then, when
 *      memory is tight (the first candidate did not fit), the longest cached prefix first (it
 *      needs the fewest new blocks), otherwise requests that share a cached prefix with running
 *      ones and have a similar prompt length, then arrival order. A request is admitted only when
 *      its worst-case KV (prompt plus max_tokens, less cached blocks) fits beside what running
 *      requests may still take; a starving request that does not fit stops admission until it
 *      does. An urgent request that does not fit preempts background requests, newest first: their
 *      KV is released (blocks published in the prefix cache stay cached unless evicted, pinned
 *      ones always stay) and they wait again, resuming later with the same tokens.
 *   3. The step: one token per generating request, then prompt chunks in admission order within
 *      the token budget.
 * A request whose worst-case KV can never fit in the pool (beside the pinned blocks) is refused
 * at submission. Queued requests hold no KV memory: only their token ids.
 *
 * Ownership: the scheduler borrows the model (which must outlive it) and copies every request's
 * arrays. Results passed to callbacks are valid during the call only. Threads: not thread-safe;
 * submit, cancel and step from one thread (callbacks run inside hs_sched_step, and may submit
 * and cancel). Errors: negative HS_E* codes with a message from hs_sched_last_error. */
#ifndef HSWARM_SCHED_H
#define HSWARM_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/engine.h"
#include "hswarm/generate.h"
#include "hswarm/grammar.h"
#include "hswarm/sampler.h"
#include "hswarm/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_sched hs_sched;

typedef enum hs_priority {
  HS_PRIORITY_URGENT = 0,
  HS_PRIORITY_NORMAL = 1,
  HS_PRIORITY_BACKGROUND = 2
} hs_priority;
#define HS_PRIORITY_COUNT 3

/* Names "urgent", "normal", "background"; and back (HS_EINVAL for anything else). */
const char *hs_priority_name(hs_priority p);
int hs_priority_parse(const char *name, hs_priority *out);

/* What a finished request gives its on_done callback. */
typedef struct hs_sched_result {
  uint64_t id;
  int status;                /* 0, or a negative HS_E* code (error says why) */
  hs_finish_reason finish;
  const int32_t *tokens;     /* the generated tokens (stop token excluded) */
  size_t n_tokens;
  uint32_t prompt_tokens;    /* the prompt's length */
  uint32_t prompt_reused;    /* of which taken from the prefix cache (at the last admission) */
  uint32_t preemptions;      /* times it was preempted and resumed */
  uint64_t submit_step, admit_step, first_token_step, done_step;
  double latency_seconds;    /* wall time from submission to completion */
  const char *error;         /* "" when status is 0 */
} hs_sched_result;

/* A generated token; return nonzero to cancel the request (it then finishes CANCELLED). */
typedef int (*hs_sched_token_fn)(uint64_t id, int32_t token, void *ud);
/* The request finished (in every case: done, cancelled, deadline, error). */
typedef void (*hs_sched_done_fn)(const hs_sched_result *r, void *ud);

/* A token's log-probability and its most likely alternatives, under the model's own
 * distribution at that position (the log-softmax of the raw logits: before temperature, top-k/p
 * and any grammar). */
#define HS_SCHED_MAX_TOP_LOGPROBS 20
typedef struct hs_sched_logprobs {
  int32_t token;        /* the token generated */
  float logprob;        /* its log-probability */
  uint32_t n_top;       /* the request's top_logprobs */
  int32_t top_tokens[HS_SCHED_MAX_TOP_LOGPROBS];  /* most likely first (ties: lower id first) */
  float top_logprobs[HS_SCHED_MAX_TOP_LOGPROBS];
} hs_sched_logprobs;
/* Called just before on_token for the same token when the request asks for log-probabilities
 * (valid during the call only). */
typedef void (*hs_sched_logprobs_fn)(uint64_t id, const hs_sched_logprobs *lp, void *ud);

typedef struct hs_sched_request {
  const int32_t *prompt;      /* n_prompt >= 1 token ids (copied) */
  size_t n_prompt;
  hs_sampler_params sampling; /* hs_sampler_params_init's defaults; temperature 0: greedy */
  uint32_t max_tokens;        /* tokens to generate at most; 0: until the context is full */
  const int32_t *stop_tokens; /* extra tokens that end the request (copied) */
  size_t n_stop_tokens;
  bool ignore_eos;            /* do not stop at the model's end-of-generation tokens */
  hs_priority priority;       /* default normal */
  uint32_t team;              /* fair-share group (default 0) */
  uint64_t deadline_steps;    /* finish within this many steps of submission; 0: none */
  const hs_grammar *grammar;   /* constrain the output (borrowed until on_done); NULL: free.
                                 Its end-of-generation tokens are allowed when the grammar can
                                 be complete; when it is done the request finishes STOP */
  const hs_grammar_vocab *grammar_vocab; /* required with grammar (hs_generate_vocab_create) */
  hs_sched_logprobs_fn on_logprobs; /* may be NULL: log-probabilities are computed only with it */
  uint32_t top_logprobs;      /* alternatives reported with on_logprobs, at most
                                 HS_SCHED_MAX_TOP_LOGPROBS */
  hs_sched_token_fn on_token; /* may be NULL */
  hs_sched_done_fn on_done;   /* may be NULL */
  void *ud;
} hs_sched_request;

/* Defaults: no prompt, sampler defaults, max_tokens 0, normal priority, team 0, no deadline. */
void hs_sched_request_init(hs_sched_request *r);

typedef struct hs_sched_opts {
  uint32_t token_budget;    /* tokens per step, decodes and prompt chunks (default 512; at
                               least the decodes of every running request are taken) */
  uint32_t max_running;     /* requests running at once (default 256) */
  uint32_t max_queued;      /* waiting requests at most; more are refused with HS_EFULL
                               (default 1,000,000) */
  uint32_t max_wait_steps;  /* a request waiting this long goes first in its class (default
                               256) */
  uint32_t n_ctx;           /* a request's context, prompt plus generation (0: the model's
                               n_ctx_train, at most 4096) */
  bool no_batching;         /* ablation: one request at a time, nothing else in its steps */
  const hs_tokenizer *tokenizer; /* borrowed, may be NULL: its end-of-generation tokens end
                                    requests (hs_tokenizer_is_eog) unless they ignore_eos */
} hs_sched_opts;

/* A scheduler over m (borrowed). o NULL: defaults. Errors: HS_EINVAL, HS_ENOMEM. */
int hs_sched_create(hs_model *m, const hs_sched_opts *o, hs_sched **out);
/* Finishes every request still queued or running as cancelled (callbacks run), then frees. NULL
 * is ignored. */
void hs_sched_destroy(hs_sched *s);

/* Queues a request; *id (may be NULL) identifies it. Errors, nothing queued: HS_EINVAL (no prompt,
 * a token out of range, bad sampling parameters, the prompt fills the context), HS_ENOSPC (its
 * KV can never fit in the pool: the message gives the numbers), HS_EFULL (max_queued reached),
 * HS_ENOMEM. */
int hs_sched_submit(hs_sched *s, const hs_sched_request *r, uint64_t *id);
/* Cancels a queued or running request: it finishes CANCELLED with the tokens it has, at once (its
 * on_done runs before this returns), or, when called from a callback during a step, for a
 * running request at the end of that step. HS_ENOENT if no such request is pending. */
int hs_sched_cancel(hs_sched *s, uint64_t id);
/* A team's weight in the fair share (default 1; > 0 and finite). */
int hs_sched_set_team_weight(hs_sched *s, uint32_t team, double weight);

/* One engine step. Returns 1 if requests remain (queued or running), 0 if none, or a negative
 * code when the engine failed (the requests of the failed step finish with that status). */
int hs_sched_step(hs_sched *s);
/* Steps until no request remains. 0 or a negative code. */
int hs_sched_run(hs_sched *s);
/* The model it serves (borrowed from hs_sched_create). */
hs_model *hs_sched_model(const hs_sched *s);
/* Steps taken so far (the virtual clock of deadlines). */
uint64_t hs_sched_now(const hs_sched *s);

typedef struct hs_sched_metrics {
  uint64_t steps;
  uint32_t queued[HS_PRIORITY_COUNT];  /* waiting, per priority */
  uint32_t running;
  uint64_t kv_blocks_total, kv_blocks_used, kv_blocks_pinned, kv_blocks_free, kv_blocks_cached;
  uint64_t prompt_tokens;              /* of admitted requests (each admission counted) */
  uint64_t prompt_tokens_computed;
  uint64_t prompt_tokens_reused;       /* taken from the prefix cache */
  double prefix_hit_ratio;             /* reused / prompt_tokens */
  uint64_t generated_tokens;
  double step_seconds;                 /* wall time inside steps */
  double tokens_per_second;            /* generated / step_seconds */
  uint64_t submitted, finished, cancelled, deadline_missed, rejected, preemptions;
  double latency_p50[HS_PRIORITY_COUNT], latency_p99[HS_PRIORITY_COUNT]; /* seconds */
  uint64_t latency_count[HS_PRIORITY_COUNT];
} hs_sched_metrics;

void hs_sched_get_metrics(const hs_sched *s, hs_sched_metrics *out);

/* The calling thread's last error message of the scheduler. Never NULL. */
const char *hs_sched_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
