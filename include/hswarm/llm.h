/* hswarm/llm.h: the model as asynchronous operations of the agent runtime.
 *
 * hs_llm_attach registers three external operation kinds (default names "llm", "llm.pin" and
 * "llm.unpin") whose requests go to a batch scheduler (hswarm/sched.h), and makes the runtime's
 * loop drive that scheduler (hs_runtime_set_engine). An agent's call blocks it; the scheduler
 * serves it among everyone else's requests; the agent resumes with the result at the step after it
 * finishes. Lua agents use ctx.llm (generate, pin, unpin: src/agent/lua_llm.c), or directly:
 *
 *   local res, err = ctx.call("llm", '{"prompt": "f(1)=3\\nf(x)=", "max_tokens": 16}')
 *
 * "llm" request (a JSON object). The prompt, exactly one of: "prompt" (a string, or an array of
 * token ids taken as they are), "text" (a string), "prompt_handle" (an arena handle whose blob is
 * the prompt's text: encoded once, its ids kept by handle). Strings are encoded with the
 * tokenizer, BOS first as the model's metadata says ("special": true parses special-token texts).
 * "prefix": the id of a pinned prefix (below): the prompt's ids are the prefix's, then the
 * prompt's (no BOS of its own). Then "max_tokens", "temperature", "top_k", "top_p", "min_p",
 * "repetition_penalty", "seed", "priority" ("urgent", "normal", "background"), "team" (default:
 * the agent's id), "stop" (a string, or an array of stop strings and token ids), "ignore_eos",
 * "deadline_steps", "grammar" (GBNF text) or "schema" (a JSON schema, as an object or its text):
 * the output is constrained to it and the request stops when the grammar is done. Unknown keys
 * are an error.
 * Result (a JSON object): "tokens" (the generated ids), "text" (when there is a tokenizer;
 * well-formed UTF-8, ill-formed bytes replaced by U+FFFD; cut before a stop string), "finish"
 * ("stop", "length", "cancelled", "deadline"), "prompt_tokens", "prompt_reused" (from the prefix
 * cache), "completion_tokens". A bad request or a failed generation fails the call with a message
 * naming the problem.
 *
 * "llm.pin": the request is the text of a prefix; it is encoded (BOS first as the tokenizer says),
 * its whole KV blocks are computed at once and pinned (kvcache.h), and the result is
 * {"prefix": id, "tokens": n, "pinned": positions kept}. Any agent may pass the id as "prefix".
 * "llm.unpin": the request is the id in decimal. Pins left at the end are released by
 * hs_llm_free.
 *
 * The event log records each result in full (the operations are external), so a replay needs no
 * model. Lockstep runs are reproducible: requests of a step are submitted in agent order, and a
 * request's tokens do not depend on what ran beside it.
 *
 * Ownership: the runtime and the scheduler are borrowed and must outlive the run; the tokenizer
 * (may be NULL) likewise. Destroy the scheduler before hs_llm_free and before the runtime:
 * requests still pending then complete as cancelled, through both. Threads: the runtime's loop
 * thread does everything. */
#ifndef HSWARM_LLM_H
#define HSWARM_LLM_H

#include "hswarm/runtime.h"
#include "hswarm/sched.h"
#include "hswarm/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_llm hs_llm;

/* kind NULL: "llm" (and "llm.pin", "llm.unpin": kind with those suffixes). *out is owned by the
 * caller: hs_llm_free it after the run, after hs_sched_destroy. Errors: HS_EINVAL (NULL argument,
 * a kind taken: then nothing is registered), HS_ENOMEM. */
int hs_llm_attach(hs_runtime *rt, hs_sched *s, const hs_tokenizer *tok, const char *kind,
                  hs_llm **out);
void hs_llm_free(hs_llm *l); /* NULL is ignored */

#ifdef __cplusplus
}
#endif
#endif
