/* serve_engine.c: the engine thread of hswarm serve (serve_engine.h).
 *
 * The loop: take every job from the inbox and start it (a generation submits one scheduler
 * request per choice, all with the same prompt, so the prefix cache computes its KV once;
 * embeddings and metrics run at once, between steps); cancel the choices of jobs whose client
 * went away; step the scheduler if anything runs, else sleep until a job or a cancellation
 * arrives. Tokens become text in the request's callback: UTF-8 is completed across tokens
 * (hs_detok_stream), stop strings are searched in the text, and a stream holds back the end of
 * the text while it is the beginning of a stop string, so that a client never receives text
 * that turns out to belong to a stop string. */
#include "net/serve_engine.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/generate.h"
#include "hswarm/kvcache.h"
#include "net/serve_json.h"

struct srv_engine {
  hs_model *m;
  hs_sched *s;
  const hs_tokenizer *tok;
  hs_grammar_vocab *gvocab; /* made at the first grammar */
  uint64_t seeds;           /* for requests without a seed */

  pthread_t thread;
  pthread_mutex_t mu; /* guards inbox, wake, stopping */
  pthread_cond_t cv;
  srv_job *inbox; /* newest first */
  bool wake, stopping, stopped;

  srv_job *active; /* the engine thread's: jobs with choices running */

  /* pinned prefixes: changed by the engine thread, read by connections (under mu) */
  struct {
    srv_pin_info info;
    hs_prefix *p;
  } pins[SRV_MAX_PINS];
  size_t n_pins;
  uint64_t next_pin;
};

/* ---- text of a choice -------------------------------------------------------------------- */

/* The bytes at the end of c's text that begin one of the stop strings (which later text could
 * complete): the longest such partial match. */
static size_t partial_stop(const srv_choice *c) {
  const srv_job *j = c->job;
  size_t held = 0;
  for (size_t i = 0; i < j->n_stops; i++) {
    size_t len = strlen(j->stops[i]);
    for (size_t l = len - 1 < c->text.n ? len - 1 : c->text.n; l > held; l--)
      if (!memcmp(c->text.p + c->text.n - l, j->stops[i], l)) {
        held = l;
        break;
      }
  }
  return held;
}

/* Streams what of c's text is safe to send: all of it when final, else all but the end that
 * could still become a stop string, never ending inside a UTF-8 character. */
static void stream_text(srv_choice *c, bool final) {
  srv_job *j = c->job;
  if (!j->req.stream) return;
  size_t safe = c->text.n;
  if (!final && c->text.p) safe -= partial_stop(c);
  while (safe > c->streamed && safe < c->text.n && ((unsigned char)c->text.p[safe] & 0xC0) == 0x80)
    safe--;
  if (safe <= c->streamed && c->started) return;
  if (safe < c->streamed) safe = c->streamed;
  char *ev = srv_json_chunk(j, c, c->text.p ? c->text.p + c->streamed : "", safe - c->streamed,
                            !c->started, c->lps_streamed, c->n_lps, NULL);
  if (ev) srv_job_emit(j, ev, strlen(ev));
  hs_free(ev);
  c->streamed = safe;
  c->lps_streamed = c->n_lps;
  c->started = true;
}

/* After text grew from old bytes: the earliest stop string in the new part (and the bytes
 * before it that could belong to it), cutting the text there. true when one matched. */
static bool find_stop(srv_choice *c, size_t old) {
  srv_job *j = c->job;
  if (!j->n_stops || !c->text.p) return false;
  size_t from = old > j->max_stop_len ? old - j->max_stop_len : 0;
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < j->n_stops; i++) {
    size_t len = strlen(j->stops[i]);
    for (size_t at = from; at + len <= c->text.n && at < best; at++)
      if (!memcmp(c->text.p + at, j->stops[i], len)) {
        best = at;
        break;
      }
  }
  if (best == SIZE_MAX) return false;
  c->text.n = best;
  c->text.p[best] = 0;
  return true;
}

static void on_logprobs(uint64_t id, const hs_sched_logprobs *lp, void *ud) {
  (void)id;
  srv_choice *c = ud;
  if (c->n_lps == c->cap_lps) {
    size_t cap = c->cap_lps ? 2 * c->cap_lps : 16;
    hs_sched_logprobs *p = hs_realloc(c->lps, cap * sizeof *p);
    if (!p) {
      c->lps_oom = true;
      return;
    }
    c->lps = p;
    c->cap_lps = cap;
  }
  c->lps[c->n_lps++] = *lp;
}

static int on_token(uint64_t id, int32_t token, void *ud) {
  (void)id;
  srv_choice *c = ud;
  srv_job *j = c->job;
  if (atomic_load(&j->cancel)) return 1;
  c->n_tokens++;
  char buf[1024];
  size_t n = 0;
  if (hs_detok_stream_push(j->tok, &c->detok, token, buf, sizeof buf, &n) == 0 && n) {
    size_t old = c->text.n;
    hs_strbuf_add(&c->text, buf, n);
    if (find_stop(c, old)) c->stopped = true;
  }
  stream_text(c, c->stopped);
  return c->stopped;
}

/* The end of a stream: the usage event when asked for (or the failure), then [DONE]. */
static void end_stream(srv_job *j) {
  if (!j->req.stream) return;
  char *ev = NULL;
  if (j->status) {
    hs_oai_error err = {.status = j->status};
    snprintf(err.message, sizeof err.message, "%s", j->error);
    snprintf(err.type, sizeof err.type, "%s",
             j->status >= 500 ? "server_error" : "invalid_request_error");
    char *body = srv_json_error(&err);
    size_t n = body ? strlen(body) + 9 : 0;
    if (body && (ev = hs_malloc(n))) snprintf(ev, n, "data: %s\n\n", body);
    hs_free(body);
  } else if (j->req.stream_usage) {
    ev = srv_json_usage_chunk(j);
  }
  if (ev) srv_job_emit(j, ev, strlen(ev));
  hs_free(ev);
  static const char done[] = "data: [DONE]\n\n";
  srv_job_emit(j, done, sizeof done - 1);
}

static void on_done(const hs_sched_result *r, void *ud) {
  srv_choice *c = ud;
  srv_job *j = c->job;
  char buf[8];
  size_t n = 0;
  if (hs_detok_stream_flush(&c->detok, buf, sizeof buf, &n) == 0 && n && !c->stopped)
    hs_strbuf_add(&c->text, buf, n);
  c->finish = c->stopped || r->finish == HS_FINISH_STOP ? "stop"
              : r->finish == HS_FINISH_CANCELLED          ? "cancelled"
                                                          : "length";
  if (r->prompt_tokens > j->prompt_tokens) j->prompt_tokens = r->prompt_tokens;
  if (r->prompt_reused > j->cached_tokens) j->cached_tokens = r->prompt_reused;
  if (r->status && !j->status) {
    j->status = 500;
    snprintf(j->error, sizeof j->error, "the engine failed: %s",
             r->error ? r->error : hs_strerror(r->status));
  }
  if ((c->text.oom || c->lps_oom) && !j->status) {
    j->status = 500;
    snprintf(j->error, sizeof j->error, "out of memory");
  }
  c->live = false;
  if (j->req.stream) {
    stream_text(c, true);
    char *ev = srv_json_chunk(j, c, "", 0, false, c->lps_streamed, c->n_lps, c->finish);
    c->lps_streamed = c->n_lps;
    if (ev) srv_job_emit(j, ev, strlen(ev));
    hs_free(ev);
  }
  if (--j->n_live == 0) {
    end_stream(j);
    srv_job_finish(j, j->status, j->error);
  }
}

/* ---- starting jobs ------------------------------------------------------------------------ */

/* Fails a job none of whose choices runs. */
static void fail(srv_job *j, int status, const char *fmt, const char *detail) {
  j->status = status;
  snprintf(j->error, sizeof j->error, fmt, detail);
  end_stream(j);
  srv_job_finish(j, j->status, j->error);
}

static void start_generation(srv_engine *e, srv_job *j) {
  j->tok = e->tok;
  if (j->grammar && !e->gvocab && hs_generate_vocab_create(e->tok, &e->gvocab) != 0) {
    fail(j, 500, "the grammar vocabulary: %s", hs_generate_last_error());
    return;
  }
  const hs_oai_request *q = &j->req;
  uint64_t seed = q->has_seed ? q->seed : (e->seeds += 0x9E3779B97F4A7C15ull);
  for (uint32_t i = 0; i < q->n; i++) {
    srv_choice *c = &j->choices[i];
    c->job = j;
    c->index = i;
    hs_detok_stream_init(&c->detok, 0);
    if (j->echo) hs_strbuf_puts(&c->text, j->echo);
    hs_sched_request r;
    hs_sched_request_init(&r);
    r.prompt = j->prompt;
    r.n_prompt = j->n_prompt;
    r.sampling.temperature = q->temperature;
    r.sampling.top_p = q->top_p > 0 ? q->top_p : 1e-6f; /* 0: only the most likely token */
    r.sampling.top_k = 0;
    r.sampling.min_p = 0;
    r.sampling.repetition_penalty = 1;
    r.sampling.presence_penalty = q->presence_penalty;
    r.sampling.frequency_penalty = q->frequency_penalty;
    r.sampling.seed = seed + i;
    r.max_tokens = q->max_tokens;
    r.priority = q->priority;
    r.team = q->team;
    r.grammar = j->grammar;
    r.grammar_vocab = j->grammar ? e->gvocab : NULL;
    r.on_logprobs = q->logprobs ? on_logprobs : NULL;
    r.top_logprobs = q->top_logprobs;
    r.on_token = on_token;
    r.on_done = on_done;
    r.ud = c;
    int rc = hs_sched_submit(e->s, &r, &c->id);
    if (rc) {
      const char *why = hs_sched_last_error();
      int status = rc == HS_ENOSPC ? 400 : rc == HS_EFULL ? 503 : 500;
      const char *fmt = rc == HS_ENOSPC ? "the prompt and max_tokens do not fit the model's context: %s"
                        : rc == HS_EFULL ? "the server is busy: %s"
                                         : "the scheduler refused the request: %s";
      if (j->n_live == 0) {
        fail(j, status, fmt, why);
        return;
      }
      /* the choices already running are cancelled; the last one's on_done ends the job */
      j->status = status;
      snprintf(j->error, sizeof j->error, fmt, why);
      atomic_store(&j->cancel, true);
      for (uint32_t k = 0; k < i; k++)
        if (j->choices[k].live) hs_sched_cancel(e->s, j->choices[k].id);
      return;
    }
    c->live = true;
    j->n_live++;
  }
  if (j->req.stream)
    for (uint32_t i = 0; i < q->n; i++) stream_text(&j->choices[i], false); /* roles, echo */
  srv_job_ref(j);
  j->next = e->active;
  e->active = j;
}

static void run_embeddings(srv_engine *e, srv_job *j) {
  for (size_t i = 0; i < j->n_inputs; i++) {
    int rc = hs_embed(e->m, j->inputs[i], j->input_lens[i], HS_POOLING_MEAN,
                      j->vectors + i * j->n_embd);
    if (rc) {
      fail(j, 500, "the embedding failed: %s", hs_generate_last_error());
      return;
    }
  }
  srv_job_finish(j, 0, NULL);
}

static void pin(srv_engine *e, srv_job *j) {
  if (e->n_pins == SRV_MAX_PINS) {
    fail(j, 400, "%s", "64 prefixes are pinned already: unpin one first");
    return;
  }
  hs_prefix *p = NULL;
  int rc = hs_prefix_pin(e->m, j->prompt, j->n_prompt, &p);
  if (rc == HS_EINVAL) {
    fail(j, 400, "the prefix cannot be pinned: %s (a prefix needs at least 32 tokens, within "
                 "the context)", hs_engine_last_error());
  } else if (rc == HS_ENOSPC) {
    fail(j, 400, "the KV cache cannot hold this prefix: %s", hs_engine_last_error());
  } else if (rc) {
    fail(j, 500, "pinning failed: %s", hs_engine_last_error());
  } else {
    pthread_mutex_lock(&e->mu);
    srv_pin_info *in = &e->pins[e->n_pins].info;
    *in = (srv_pin_info){.id = ++e->next_pin, .tokens = (uint32_t)j->n_prompt,
                         .pinned = hs_prefix_len(p), .created = (long long)time(NULL)};
    e->pins[e->n_pins++].p = p;
    j->pin_id = in->id;
    j->pinned = in->pinned;
    pthread_mutex_unlock(&e->mu);
    srv_job_finish(j, 0, NULL);
  }
}

static void unpin(srv_engine *e, srv_job *j) {
  pthread_mutex_lock(&e->mu);
  size_t i = 0;
  while (i < e->n_pins && e->pins[i].info.id != j->pin_id) i++;
  hs_prefix *p = NULL;
  if (i < e->n_pins) {
    p = e->pins[i].p;
    j->pinned = e->pins[i].info.pinned;
    e->pins[i] = e->pins[--e->n_pins];
  }
  pthread_mutex_unlock(&e->mu);
  if (!p) {
    fail(j, 404, "%s", "no such pinned prefix");
    return;
  }
  hs_prefix_unpin(p);
  srv_job_finish(j, 0, NULL);
}

size_t srv_engine_pins(srv_engine *e, srv_pin_info *out, size_t cap) {
  pthread_mutex_lock(&e->mu);
  size_t n = e->n_pins < cap ? e->n_pins : cap;
  for (size_t i = 0; i < n; i++) out[i] = e->pins[i].info;
  pthread_mutex_unlock(&e->mu);
  return n;
}

static void start(srv_engine *e, srv_job *j) {
  if (atomic_load(&j->cancel)) {
    srv_job_finish(j, 499, "the client went away");
  } else if (j->kind == SRV_METRICS) {
    hs_sched_get_metrics(e->s, &j->metrics);
    srv_job_finish(j, 0, NULL);
  } else if (j->kind == SRV_EMBED) {
    run_embeddings(e, j);
  } else if (j->kind == SRV_PIN) {
    pin(e, j);
  } else if (j->kind == SRV_UNPIN) {
    unpin(e, j);
  } else {
    start_generation(e, j);
  }
  srv_job_release(j); /* the inbox's reference */
}

/* Cancels the live choices of cancelled jobs; drops finished jobs from the active list. */
static void tidy(srv_engine *e, bool cancel_all) {
  for (srv_job **pp = &e->active; *pp;) {
    srv_job *j = *pp;
    if (cancel_all) atomic_store(&j->cancel, true);
    if (atomic_load(&j->cancel))
      for (uint32_t i = 0; i < j->req.n; i++)
        if (j->choices[i].live) hs_sched_cancel(e->s, j->choices[i].id);
    if (j->n_live == 0) {
      *pp = j->next;
      srv_job_release(j);
    } else {
      pp = &j->next;
    }
  }
}

static void *engine_main(void *arg) {
  srv_engine *e = arg;
  bool busy = false;
  for (;;) {
    pthread_mutex_lock(&e->mu);
    while (!busy && !e->inbox && !e->wake && !e->stopping) pthread_cond_wait(&e->cv, &e->mu);
    srv_job *in = e->inbox;
    e->inbox = NULL;
    e->wake = false;
    bool stopping = e->stopping;
    pthread_mutex_unlock(&e->mu);
    srv_job *fifo = NULL; /* the inbox is newest first */
    while (in) {
      srv_job *next = in->next;
      in->next = fifo;
      fifo = in;
      in = next;
    }
    while (fifo) {
      srv_job *next = fifo->next;
      if (stopping) {
        fail(fifo, 503, "%s", "the server is stopping");
        srv_job_release(fifo);
      } else {
        start(e, fifo);
      }
      fifo = next;
    }
    tidy(e, stopping); /* cancellations, and the jobs the last step finished */
    if (stopping) break;
    int rc = e->active ? hs_sched_step(e->s) : 0;
    if (rc < 0) { /* the engine failed: the requests of the step finished with the error */
      fprintf(stderr, "hswarm serve: the engine failed: %s\n", hs_strerror(rc));
      tidy(e, true);
    }
    busy = rc > 0 || e->active != NULL;
  }
  return NULL;
}

int srv_engine_start(hs_model *m, hs_sched *s, const hs_tokenizer *t, srv_engine **out) {
  srv_engine *e = hs_calloc(1, sizeof *e);
  if (!e) return HS_ENOMEM;
  e->m = m;
  e->s = s;
  e->tok = t;
  e->seeds = (uint64_t)time(NULL) * 0x2545F4914F6CDD1Dull;
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cv, NULL);
  if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    hs_free(e);
    return HS_EIO;
  }
  *out = e;
  return 0;
}

void srv_engine_submit(srv_engine *e, srv_job *j) {
  pthread_mutex_lock(&e->mu);
  if (e->stopped) {
    pthread_mutex_unlock(&e->mu);
    fail(j, 503, "%s", "the server is stopping");
    return;
  }
  srv_job_ref(j);
  j->next = e->inbox;
  e->inbox = j;
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

void srv_engine_cancel(srv_engine *e, srv_job *j) {
  atomic_store(&j->cancel, true);
  pthread_mutex_lock(&e->mu);
  e->wake = true;
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

void srv_engine_stop(srv_engine *e) {
  if (!e) return;
  pthread_mutex_lock(&e->mu);
  e->stopping = true;
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
  pthread_join(e->thread, NULL);
  pthread_mutex_lock(&e->mu);
  e->stopped = true;
  srv_job *late = e->inbox; /* submitted while the thread ended */
  e->inbox = NULL;
  pthread_mutex_unlock(&e->mu);
  while (late) {
    srv_job *next = late->next;
    fail(late, 503, "%s", "the server is stopping");
    srv_job_release(late);
    late = next;
  }
  for (size_t i = 0; i < e->n_pins; i++) hs_prefix_unpin(e->pins[i].p); /* before the model goes */
  e->n_pins = 0;
}

void srv_engine_free(srv_engine *e) {
  if (!e) return;
  hs_grammar_vocab_destroy(e->gvocab);
  pthread_cond_destroy(&e->cv);
  pthread_mutex_destroy(&e->mu);
  hs_free(e);
}
