/* remote.h: a remote model server as an executor: JSON requests to an OpenAI-compatible API
 * (vLLM, SGLang, llama.cpp's server, Ollama, hswarm serve, ...) through libcurl's multi
 * interface on one thread of its own.
 *
 * What it does for its callers: at most max_in_flight requests at once (the rest wait in order);
 * requests of the same group (a shared prefix) are sent one after another, so that the server's
 * own prefix cache sees them together; 429, 5xx and transport failures are retried with
 * exponential backoff (Retry-After honoured), up to max_retries times; each attempt has a time
 * limit. Every request ends with exactly one call of its done callback, on the executor's
 * thread (or on the caller's, from hs_remote_destroy, for requests never finished).
 *
 * Internal to the program (it is linked with libcurl, which the library does not need). Thread
 * safety: hs_remote_submit may be called from any thread. */
#ifndef HS_SCHED_REMOTE_H
#define HS_SCHED_REMOTE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hs_remote_opts {
  const char *url;          /* the API's base, e.g. "http://127.0.0.1:8080/v1" (copied) */
  const char *api_key;      /* sent as "Authorization: Bearer KEY"; NULL: none (copied) */
  uint32_t max_in_flight;   /* requests at once (default 16) */
  uint32_t max_retries;     /* retries of a request (default 4) */
  double timeout_s;         /* each attempt (default 600) */
  double backoff_s;         /* the first retry's delay, doubled at each (default 0.5) */
} hs_remote_opts;

typedef struct hs_remote hs_remote;

/* A request's end: status 0 with the HTTP status and body of the server's final answer (any
 * status: 200, or one not worth retrying, or the last retried one), or a negative code
 * (HS_EIO: no answer; HS_EPERM: the executor was destroyed) with a message. body and error
 * are valid during the call. */
typedef void (*hs_remote_done_fn)(int status, long http_status, const char *body, size_t len,
                                  const char *error, void *ud);

/* 0, or an error code (HS_EINVAL: no URL; HS_EIO: libcurl or the thread could not start). */
int hs_remote_create(const hs_remote_opts *o, hs_remote **out);

/* POSTs json (copied) to url + path ("/completions"). group: requests with the same non-zero
 * group are kept together in the queue. 0, or HS_ENOMEM / HS_EPERM (then done is not
 * called). */
int hs_remote_submit(hs_remote *r, const char *path, const char *json, uint64_t group,
                     hs_remote_done_fn done, void *ud);

/* The id of the first model the server lists (GET url/models), synchronously on the caller's
 * thread: 0 with the id in out, or HS_EIO with why in out. */
int hs_remote_first_model(hs_remote *r, char *out, size_t cap);

/* Figures so far: requests sent (attempts), retried, failed. */
void hs_remote_counts(hs_remote *r, uint64_t *attempts, uint64_t *retries, uint64_t *failures);

/* Stops the thread; requests not finished end with HS_EPERM. NULL is ignored. */
void hs_remote_destroy(hs_remote *r);

#endif
