/* hswarm/llm.h: the model as an asynchronous operation of the agent runtime.
 *
 * hs_llm_attach registers an external operation kind (default "llm") whose requests go to a batch
 * scheduler (hswarm/sched.h), and makes the runtime's loop drive that scheduler
 * (hs_runtime_set_engine). An agent's call blocks it; the scheduler serves it among everyone
 * else's requests; the agent resumes with the result at the step after it finishes. From Lua:
 *
 *   local res, err = ctx.call("llm", '{"prompt": [1, 2, 3], "max_tokens": 16}')
 *
 * Request (a JSON object): "prompt": an array of token ids, or "text": a string encoded with the
 * tokenizer (BOS as the model's metadata says; "special": true parses special-token texts);
 * "max_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed",
 * "priority" ("urgent", "normal", "background"), "team" (default: the agent's id), "stop" (an
 * array of token ids), "ignore_eos", "deadline_steps". Unknown keys are an error.
 * Result (a JSON object): "tokens" (the generated ids), "text" (when there is a tokenizer),
 * "finish" ("stop", "length", "cancelled", "deadline"), "prompt_tokens", "prompt_reused".
 * A bad request or a failed generation fails the call with a message naming the problem.
 *
 * The event log records each result in full (the operation is external), so a replay needs no
 * model. Lockstep runs are reproducible: requests of a step are submitted in agent order, and a
 * request's tokens do not depend on what ran beside it.
 *
 * Ownership: the runtime and the scheduler are borrowed and must outlive the run; the tokenizer
 * (may be NULL) likewise. Requests still pending when the scheduler is destroyed complete as
 * cancelled. Threads: the runtime's loop thread does everything. */
#ifndef HSWARM_LLM_H
#define HSWARM_LLM_H

#include "hswarm/runtime.h"
#include "hswarm/sched.h"
#include "hswarm/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_llm hs_llm;

/* kind NULL: "llm". *out is owned by the caller: hs_llm_free it after the run (after or before
 * hs_runtime_destroy). Errors: HS_EINVAL (NULL argument, kind taken), HS_ENOMEM. */
int hs_llm_attach(hs_runtime *rt, hs_sched *s, const hs_tokenizer *tok, const char *kind,
                  hs_llm **out);
void hs_llm_free(hs_llm *l); /* NULL is ignored */

#ifdef __cplusplus
}
#endif
#endif
