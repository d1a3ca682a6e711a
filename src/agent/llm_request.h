/* llm_request.h: parsing an agent's JSON request to the model (the "llm" operation,
 * hswarm/llm.h). Internal; fuzzed by fuzz/fuzz_llm_request.c.
 *
 * Parsing only reads and checks the JSON: the prompt stays as given (token ids, a string, or an
 * arena handle) and llm_op.c turns it into token ids, with the pinned prefix it names. */
#ifndef HS_AGENT_LLM_REQUEST_H
#define HS_AGENT_LLM_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/sched.h"

typedef struct hs_llm_request {
  hs_sched_request r;       /* everything but the prompt: sampling, limits, priority, team,
                               stop tokens (r.stop_tokens owned here) */
  int32_t *ids;             /* "prompt" given as token ids (owned), or NULL */
  size_t n_ids;
  char *text;               /* "prompt" (or "text") given as a string (owned), or NULL */
  size_t text_len;
  bool has_handle;          /* "prompt_handle": an arena blob holding the prompt text */
  uint64_t handle;
  bool special;             /* "special": special-token texts in the prompt are parsed */
  uint64_t prefix;          /* "prefix": a pinned prefix's id (0: none) */
  char **stops;             /* "stop" strings (owned), n_stops of them */
  size_t n_stops;
  bool has_seed;            /* "seed" was given */
  char *grammar;            /* "grammar": GBNF text (owned), or NULL */
  char *schema;             /* "schema": a JSON schema's text (owned; given as an object or a
                               string), or NULL; not both with grammar */
} hs_llm_request;

/* Parses text[0..len) (a JSON object: see hswarm/llm.h) into *q; team defaults to agent. Exactly
 * one prompt form is present on success. Token ids are not checked against the vocabulary here
 * (hs_sched_submit does). Returns 0, or HS_EINVAL / HS_ENOMEM with a message naming the problem
 * (starting "llm: ") in msg[0..cap). *q is released by hs_llm_request_free in every case. */
int hs_llm_request_parse(uint32_t agent, const void *text, size_t len, hs_llm_request *q,
                         char *msg, size_t cap);
void hs_llm_request_free(hs_llm_request *q);

#endif
