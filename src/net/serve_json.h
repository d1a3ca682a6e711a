/* serve_json.h: the JSON bodies hswarm serve answers with, in the OpenAI API's shapes:
 * completions and chat completions (whole, or as server-sent event chunks), embeddings, the model
 * list, errors. Every function returns a new NUL-terminated string from hs_malloc (freed with
 * hs_free) or NULL when out of memory. */
#ifndef HS_NET_SERVE_JSON_H
#define HS_NET_SERVE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "net/openai_request.h"
#include "net/serve_job.h"

/* One server-sent event ("data: {...}\n\n") for choice c: text (n bytes; may be empty), with
 * the assistant's role when first (chat), the log-probabilities of c's tokens lp_from..lp_to
 * when the request asked for them, and finish ("stop", "length") or NULL. */
char *srv_json_chunk(const srv_job *j, const srv_choice *c, const char *text, size_t n,
                     bool first, size_t lp_from, size_t lp_to, const char *finish);
/* The last event before "data: [DONE]" when the client asked for usage: no choices, usage. */
char *srv_json_usage_chunk(const srv_job *j);
/* A finished generation's whole response (choices and usage). */
char *srv_json_result(const srv_job *j);
/* An embeddings job's response (float arrays, or base64 of little-endian floats). */
char *srv_json_embeddings(const srv_job *j);
/* {"object": "list", "data": [the model]}; with one_model, the model object alone. */
char *srv_json_models(const char *name, long long created, bool one_model);
/* {"error": {"message", "type", "param", "code"}} (param and code null when empty). */
char *srv_json_error(const hs_oai_error *e);

#endif
