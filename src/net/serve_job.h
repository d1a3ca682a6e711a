/* serve_job.h: one HTTP request of hswarm serve on its way through the engine thread (a "job"),
 * shared by the connection's thread (serve_http.c), which makes it and waits for it, and the
 * engine thread (serve_engine.c), which runs it through the scheduler.
 *
 * Ownership: a job is reference-counted; the connection holds one reference, the engine one
 * while it runs the job. Fields above "sync" are written by the connection before the job is
 * submitted and only read afterwards, except the choices, which belong to the engine thread
 * until done is set (under mu) and to the connection after. events and done are guarded by mu;
 * cancel may be set by either side at any time. */
#ifndef HS_NET_SERVE_JOB_H
#define HS_NET_SERVE_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "hswarm/grammar.h"
#include "hswarm/sched.h"
#include "hswarm/tokenizer.h"
#include "net/openai_request.h"

typedef enum srv_job_kind { SRV_GENERATE, SRV_EMBED, SRV_METRICS, SRV_PIN, SRV_UNPIN } srv_job_kind;

/* One of a generation's n choices: one scheduler request. */
typedef struct srv_choice {
  struct srv_job *job;
  uint32_t index;
  uint64_t id;          /* the scheduler's request id */
  bool live;            /* submitted and not finished */
  hs_detok_stream detok;
  hs_strbuf text;       /* the text so far (cut before a stop string that matched) */
  size_t streamed;      /* bytes of text already sent in chunks */
  uint32_t n_tokens;    /* tokens generated */
  bool stopped;         /* a stop string matched */
  bool started;         /* streaming: the first chunk (role) was sent */
  const char *finish;   /* "stop", "length" (NULL while running) */
  hs_sched_logprobs *lps; /* with logprobs: one per token generated */
  size_t n_lps, cap_lps;
  size_t lps_streamed;  /* of them, sent in chunks */
  bool lps_oom;
} srv_choice;

typedef struct srv_job {
  srv_job_kind kind;
  hs_oai_request req;
  char id[48];          /* "chatcmpl-..." / "cmpl-..." */
  long long created;    /* Unix seconds */
  const char *model_name;
  const hs_tokenizer *tok; /* set by the engine */

  /* generation: the prompt's token ids, the grammar of response_format, the stop strings (the
     request's and the chat template's), the echoed prompt text */
  int32_t *prompt;
  size_t n_prompt;
  hs_grammar *grammar;
  char **stops;
  size_t n_stops, max_stop_len;
  char *echo;
  srv_choice *choices;
  uint32_t n_live;
  uint32_t prompt_tokens, cached_tokens; /* from the scheduler's results */

  /* embeddings: n_inputs token-id arrays in; n_inputs x n_embd floats out */
  int32_t **inputs;
  size_t *input_lens;
  size_t n_inputs;
  float *vectors;
  uint32_t n_embd;

  /* metrics: filled by the engine */
  hs_sched_metrics metrics;

  /* prefixes: pin the prompt (filled: pin_id, pinned) or unpin pin_id */
  uint64_t pin_id;
  uint32_t pinned;

  /* sync */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;            /* finished (every choice, or failed) */
  int status;           /* 0, or the HTTP status of a failure (error holds why) */
  char error[256];
  hs_strbuf events;     /* streaming: server-sent events not yet read */
  size_t events_read;
  atomic_bool cancel;   /* the client went away, or the server stops */
  atomic_int refs;
  struct srv_job *next; /* the engine's inbox and list of running jobs */
} srv_job;

/* A new job of this kind with one reference; NULL when out of memory. */
srv_job *srv_job_new(srv_job_kind kind);
void srv_job_ref(srv_job *j);
/* Drops a reference; the last one frees the job and all it owns. NULL is ignored. */
void srv_job_release(srv_job *j);

/* Engine side (with mu held by the caller or not, as named): marks the job done, with a failure
 * when status != 0, and wakes the connection. */
void srv_job_finish(srv_job *j, int status, const char *error);
/* Appends server-sent events (under mu) and wakes the connection. */
void srv_job_emit(srv_job *j, const char *data, size_t n);

/* Connection side: waits until done. */
void srv_job_wait(srv_job *j);
/* Streaming: copies up to max bytes of events not yet read into buf, waiting up to wait_ms for
 * some; *finished is set when the job is done and every event was read. Returns the bytes
 * copied (0 after wait_ms with nothing new). */
size_t srv_job_read(srv_job *j, char *buf, size_t max, unsigned wait_ms, bool *finished);

#endif
