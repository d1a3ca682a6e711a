/* serve_job.c: the life of a job of hswarm serve (serve_job.h): references, the hand-over from
 * the engine thread to the connection's thread (done, status, the events of a stream). */
#include "net/serve_job.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hswarm/alloc.h"

srv_job *srv_job_new(srv_job_kind kind) {
  srv_job *j = hs_calloc(1, sizeof *j);
  if (!j) return NULL;
  j->kind = kind;
  pthread_mutex_init(&j->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&j->cv, &ca);
  pthread_condattr_destroy(&ca);
  atomic_init(&j->cancel, false);
  atomic_init(&j->refs, 1);
  return j;
}

void srv_job_ref(srv_job *j) { atomic_fetch_add(&j->refs, 1); }

void srv_job_release(srv_job *j) {
  if (!j || atomic_fetch_sub(&j->refs, 1) != 1) return;
  for (uint32_t i = 0; j->choices && i < j->req.n; i++) {
    hs_free(j->choices[i].text.p);
    hs_free(j->choices[i].lps);
  }
  hs_oai_request_free(&j->req); /* after the choices: it zeroes req.n */
  hs_free(j->prompt);
  hs_grammar_destroy(j->grammar);
  for (size_t i = 0; i < j->n_stops; i++) hs_free(j->stops[i]);
  hs_free(j->stops);
  hs_free(j->echo);
  hs_free(j->choices);
  for (size_t i = 0; j->inputs && i < j->n_inputs; i++) hs_free(j->inputs[i]);
  hs_free(j->inputs);
  hs_free(j->input_lens);
  hs_free(j->vectors);
  hs_free(j->events.p);
  pthread_cond_destroy(&j->cv);
  pthread_mutex_destroy(&j->mu);
  hs_free(j);
}

void srv_job_finish(srv_job *j, int status, const char *error) {
  pthread_mutex_lock(&j->mu);
  if (!j->done) {
    j->done = true;
    j->status = status;
    if (status && error && error != j->error) snprintf(j->error, sizeof j->error, "%s", error);
  }
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

void srv_job_emit(srv_job *j, const char *data, size_t n) {
  pthread_mutex_lock(&j->mu);
  hs_strbuf_add(&j->events, data, n);
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

void srv_job_wait(srv_job *j) {
  pthread_mutex_lock(&j->mu);
  while (!j->done) pthread_cond_wait(&j->cv, &j->mu);
  pthread_mutex_unlock(&j->mu);
}

size_t srv_job_read(srv_job *j, char *buf, size_t max, unsigned wait_ms, bool *finished) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += wait_ms / 1000;
  until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&j->mu);
  while (j->events.n == j->events_read && !j->done) {
    if (pthread_cond_timedwait(&j->cv, &j->mu, &until) == ETIMEDOUT) break;
  }
  size_t n = j->events.n - j->events_read;
  if (n > max) n = max;
  if (n) memcpy(buf, j->events.p + j->events_read, n);
  j->events_read += n;
  if (j->events_read == j->events.n && j->events.n > 0) { /* all read: start over */
    j->events.n = 0;
    j->events_read = 0;
  }
  *finished = j->done && j->events.n == j->events_read;
  pthread_mutex_unlock(&j->mu);
  return n;
}
