/* serve.h: hswarm serve's OpenAI-compatible HTTP server over one model and its scheduler
 * (docs in the README, "Serving: hswarm serve").
 *
 * Endpoints: GET /health, GET /v1/models[/NAME], GET /metrics (Prometheus text: the scheduler's
 * metrics), POST /v1/completions, /v1/chat/completions (stream: server-sent events),
 * /v1/embeddings. Every request of every client goes to the one engine thread (serve_engine.h),
 * so concurrent clients batch together.
 *
 * Threads: libmicrohttpd runs one thread per connection (at most max_connections); a streaming
 * response waits for its events in its own thread, and a client that goes away has its
 * sequences cancelled (their KV blocks freed) by the engine.
 *
 * Ownership: the server borrows the model, scheduler, tokenizer and chat template (may be NULL:
 * then chat requests are refused) until hs_serve_stop; the options' strings are copied. */
#ifndef HS_NET_SERVE_H
#define HS_NET_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "hswarm/chat.h"
#include "hswarm/engine.h"
#include "hswarm/sched.h"
#include "hswarm/tokenizer.h"
#include "net/openai_request.h"

typedef struct hs_serve_opts {
  const char *host;           /* an IPv4 or IPv6 address to bind ("127.0.0.1") */
  uint16_t port;              /* 0: any free port (hs_serve_port says which) */
  const char *api_key;        /* bearer token every request but /health must carry; NULL: none */
  const char *model_name;     /* the model's id in /v1/models and in responses */
  uint32_t n_ctx;             /* the scheduler's context: prompt plus max_tokens must fit */
  size_t max_body_bytes;      /* request bodies (1 MiB; more: 413) */
  size_t max_header_bytes;    /* memory for a request's headers (16 KiB; more: 431) */
  uint32_t max_connections;   /* open connections at once (256) */
  uint32_t max_prompt_tokens; /* 0: n_ctx - 1 */
  unsigned timeout_s;         /* a connection idle this long is closed (30) */
  hs_oai_limits limits;       /* max_tokens, n, messages, inputs, stop strings */
} hs_serve_opts;

typedef struct hs_serve hs_serve;

/* Starts serving. 0, or -1 with a message in msg (the address is taken, a bad host, ...). */
int hs_serve_start(hs_model *m, hs_sched *s, const hs_tokenizer *t, const hs_chat_template *chat,
                   const hs_serve_opts *o, hs_serve **out, char *msg, size_t cap);

/* The port the server listens on. */
uint16_t hs_serve_port(const hs_serve *sv);

/* Stops accepting, closes the connections, cancels what runs, and frees the server. */
void hs_serve_stop(hs_serve *sv);

#endif
