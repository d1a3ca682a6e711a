/* llm_remote.h: the model operations of hswarm/llm.h ("llm", "llm.pin", "llm.unpin") served by a
 * remote OpenAI-compatible server (sched/remote.h) instead of the built-in engine: what
 * `--backend URL` gives ctx.llm, hswarm run, demo and code.
 *
 * The same requests as the built-in engine's, with these differences (stated in the README):
 * - a prompt is sent as text (or as token ids when given as ids, which the server must then
 *   understand); results carry text and the server's usage figures, and no token ids;
 * - "llm.pin" pins nothing on the server: it keeps the prefix's text, which requests naming it
 *   get in front of their prompt, and it groups them in the send queue (an ordering hint: the
 *   server's own prefix cache then sees them together); its result's "tokens" and "pinned" are 0;
 * - "grammar" (GBNF) is sent as the "grammar" field, which llama.cpp's server understands, and
 *   "schema" as response_format json_schema; "top_k", "min_p" and "repetition_penalty" are sent
 *   only when set to something other than their neutral value (vLLM and llama.cpp take them);
 *   "priority" and "team" as hswarm serve's extensions; "deadline_steps" and "ignore_eos" are
 *   refused (a remote server has neither);
 * - the operations are external and step-bound: the event log records each result (its text), so
 *   a replay needs no server, and a lockstep run delivers every result at the step after its
 *   request, however long the server takes.
 *
 * Ownership: the runtime takes the operations and the executor: both are freed in its destroy
 * hook (requests not finished then fail, and their completions are dropped). */
#ifndef HS_AGENT_LLM_REMOTE_H
#define HS_AGENT_LLM_REMOTE_H

#include "hswarm/runtime.h"
#include "sched/remote.h"

/* model: the "model" of every request (NULL: "default"). kind as hs_llm_attach's. 0: r then
 * belongs to the runtime. HS_ENOMEM, or HS_ELIMIT (no destroy hook left): r is still the
 * caller's. HS_EINVAL for a kind already taken: r belongs to the runtime all the same. */
int hs_llm_attach_remote(hs_runtime *rt, hs_remote *r, const char *model, const char *kind);

#endif
