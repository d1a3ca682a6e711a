/* serve_engine.h: the engine thread of hswarm serve. The scheduler (hswarm/sched.h) is not
 * thread-safe, so one thread owns it and the model: connections hand it jobs through an inbox
 * (serve_job.h); it submits them, steps the scheduler while anything runs (every client's
 * requests batch together), turns tokens into text, stop strings, stream events and results, and
 * cancels the sequences of clients that went away (their KV blocks go back at once).
 *
 * Ownership: the engine borrows the model, scheduler and tokenizer until srv_engine_stop. */
#ifndef HS_NET_SERVE_ENGINE_H
#define HS_NET_SERVE_ENGINE_H

#include "hswarm/engine.h"
#include "hswarm/sched.h"
#include "hswarm/tokenizer.h"
#include "net/serve_job.h"

typedef struct srv_engine srv_engine;

/* Starts the thread. 0, or an error code (the thread could not start, no memory). */
int srv_engine_start(hs_model *m, hs_sched *s, const hs_tokenizer *t, srv_engine **out);

/* Hands j to the engine, which takes a reference and finishes it (srv_job_finish) in every case:
 * done, failed, cancelled, or the server stopping. */
void srv_engine_submit(srv_engine *e, srv_job *j);

/* A pinned prefix (POST /v1/prefixes): its id, the tokens given, the tokens pinned (whole
 * blocks), when. */
typedef struct srv_pin_info {
  uint64_t id;
  uint32_t tokens, pinned;
  long long created;
} srv_pin_info;
#define SRV_MAX_PINS 64

/* Copies the pinned prefixes' descriptions (at most cap) into out; returns how many. */
size_t srv_engine_pins(srv_engine *e, srv_pin_info *out, size_t cap);

/* Wakes the engine to cancel what j runs (set j->cancel first). */
void srv_engine_cancel(srv_engine *e, srv_job *j);

/* Cancels everything, finishes every job with 503 and stops the thread; jobs submitted later
 * are finished with 503 at once. */
void srv_engine_stop(srv_engine *e);
/* Frees a stopped engine (when no connection can submit any more). NULL is ignored. */
void srv_engine_free(srv_engine *e);

#endif
