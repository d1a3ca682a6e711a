/* llm_request.h: parsing an agent's JSON request to the model (the "llm" operation,
 * hswarm/llm.h) into a scheduler request. Internal; fuzzed by fuzz/fuzz_llm_request.c. */
#ifndef HS_AGENT_LLM_REQUEST_H
#define HS_AGENT_LLM_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "hswarm/sched.h"
#include "hswarm/tokenizer.h"

/* Parses text[0..len) (a JSON object: see hswarm/llm.h) into *r (hs_sched_request_init'ed first;
 * team defaults to agent). *ids gets the prompt's token ids and r->stop_tokens the stop ids, both
 * allocated here and released by hs_llm_request_free in every case, success or not. tok may be
 * NULL ("text" is then refused). Token ids are not checked against the vocabulary here
 * (hs_sched_submit does). Returns 0, or HS_EINVAL / HS_ENOMEM / a tokenizer error with a message
 * naming the problem in msg[0..cap). */
int hs_llm_request_parse(const hs_tokenizer *tok, uint32_t agent, const void *text, size_t len,
                         hs_sched_request *r, int32_t **ids, char *msg, size_t cap);
void hs_llm_request_free(hs_sched_request *r, int32_t *ids);

#endif
