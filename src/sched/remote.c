/* remote.c: the remote executor (remote.h) on libcurl's multi interface.
 *
 * One thread owns the multi handle. Callers append requests to a queue under a mutex and wake
 * the thread (curl_multi_wakeup). The queue keeps groups together: a request is inserted after
 * the last queued request of its group, else at the end; the thread starts requests from the
 * front while fewer than max_in_flight are running. A finished transfer with a 429 or 5xx
 * status, or a transport failure, goes to a list of delayed requests, due after the backoff (or
 * the server's Retry-After), and back to the front of the queue when due. */
#include "sched/remote.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/strbuf.h"
#include "core/timeutil.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

typedef struct rreq {
  struct hs_remote *r;
  char *url, *json;
  uint64_t group;
  hs_remote_done_fn done;
  void *ud;
  unsigned attempts;
  double due;          /* a delayed request: when to send it again (seconds, monotonic) */
  double retry_after;  /* from the server's last answer; 0: none */
  CURL *easy;
  hs_strbuf body;
  struct rreq *next, *next_running;
} rreq;

struct hs_remote {
  hs_remote_opts o;
  char *url, *auth;
  struct curl_slist *headers;
  CURLM *multi;
  pthread_t thread;
  pthread_mutex_t mu; /* guards queue, delayed, stopping and the counts */
  rreq *queue, *delayed; /* waiting to start; waiting for a retry */
  rreq *running;         /* transfers in the multi handle (the thread's) */
  bool stopping;
  unsigned in_flight;
  uint64_t attempts, retries, failures;
};

static double now_s(void) { return (double)hs_now_ns() / 1e9; }

static void req_free(rreq *q) {
  if (!q) return;
  if (q->easy) curl_easy_cleanup(q->easy);
  hs_free(q->url);
  hs_free(q->json);
  hs_free(q->body.p);
  hs_free(q);
}

static void finish(rreq *q, int status, long http, const char *error) {
  q->done(status, http, q->body.p ? q->body.p : "", q->body.n, error, q->ud);
  req_free(q);
}

/* ---- the queue (under mu) ---------------------------------------------------------------- */

static void enqueue(hs_remote *r, rreq *q, bool front) {
  if (front) {
    q->next = r->queue;
    r->queue = q;
    return;
  }
  rreq **at = &r->queue, **after_group = NULL;
  for (; *at; at = &(*at)->next)
    if (q->group && (*at)->group == q->group) after_group = &(*at)->next;
  if (after_group) at = after_group;
  q->next = *at;
  *at = q;
}

/* ---- transfers (on the thread) ----------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  rreq *q = ud;
  hs_strbuf_add(&q->body, data, size * n);
  return q->body.oom ? 0 : size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  rreq *q = ud;
  size_t len = size * n;
  if (len > 12 && !strncasecmp(data, "Retry-After:", 12)) q->retry_after = atof(data + 12);
  return len;
}

static void start(hs_remote *r, rreq *q) {
  q->attempts++;
  q->retry_after = 0;
  q->body.n = 0;
  if (!q->easy && !(q->easy = curl_easy_init())) {
    finish(q, HS_EIO, 0, "libcurl: cannot make a transfer");
    return;
  }
  CURL *e = q->easy;
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, q->url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->json);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(r->o.timeout_s * 1000));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, q);
  if (curl_multi_add_handle(r->multi, e) != CURLM_OK) {
    finish(q, HS_EIO, 0, "libcurl: cannot start a transfer");
    return;
  }
  q->next_running = r->running;
  r->running = q;
  pthread_mutex_lock(&r->mu);
  r->in_flight++;
  r->attempts++;
  pthread_mutex_unlock(&r->mu);
}

static void transfer_done(hs_remote *r, CURLMsg *m) {
  rreq *q = NULL;
  curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
  curl_multi_remove_handle(r->multi, m->easy_handle);
  for (rreq **p = &r->running; *p; p = &(*p)->next_running)
    if (*p == q) {
      *p = q->next_running;
      break;
    }
  long http = 0;
  curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &http);
  CURLcode cc = m->data.result;
  bool retry = cc != CURLE_OK || http == 429 || http >= 500;
  pthread_mutex_lock(&r->mu);
  r->in_flight--;
  if (retry && q->attempts <= r->o.max_retries && !r->stopping) {
    double delay = r->o.backoff_s * (double)(1u << (q->attempts - 1 < 10 ? q->attempts - 1 : 10));
    if (q->retry_after > 0 && q->retry_after < 600) delay = q->retry_after;
    q->due = now_s() + delay;
    q->next = r->delayed;
    r->delayed = q;
    r->retries++;
    pthread_mutex_unlock(&r->mu);
    return;
  }
  if (retry) r->failures++;
  pthread_mutex_unlock(&r->mu);
  if (cc != CURLE_OK) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s (after %u attempts)", q->url, curl_easy_strerror(cc),
             q->attempts);
    finish(q, HS_EIO, 0, msg);
  } else {
    finish(q, 0, http, NULL);
  }
}

static void *thread_main(void *arg) {
  hs_remote *r = arg;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    if (r->stopping) {
      pthread_mutex_unlock(&r->mu);
      break;
    }
    double t = now_s();
    for (rreq **p = &r->delayed; *p;) { /* due retries go to the front */
      rreq *q = *p;
      if (q->due <= t) {
        *p = q->next;
        enqueue(r, q, true);
      } else {
        p = &q->next;
      }
    }
    rreq *go = NULL, **tail = &go;
    unsigned room = r->o.max_in_flight > r->in_flight ? r->o.max_in_flight - r->in_flight : 0;
    while (room-- && r->queue) {
      rreq *q = r->queue;
      r->queue = q->next;
      q->next = NULL;
      *tail = q;
      tail = &q->next;
    }
    pthread_mutex_unlock(&r->mu);
    while (go) {
      rreq *next = go->next;
      start(r, go);
      go = next;
    }
    int running = 0;
    curl_multi_perform(r->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(r->multi, &left)))
      if (m->msg == CURLMSG_DONE) transfer_done(r, m);
    curl_multi_poll(r->multi, NULL, 0, 100, NULL);
  }
  return NULL;
}

/* ---- the API ----------------------------------------------------------------------------- */

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int hs_remote_create(const hs_remote_opts *o, hs_remote **out) {
  if (!o || !o->url || !o->url[0]) return HS_EINVAL;
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, global_init);
  hs_remote *r = hs_calloc(1, sizeof *r);
  if (!r) return HS_ENOMEM;
  r->o = *o;
  if (!r->o.max_in_flight) r->o.max_in_flight = 16;
  if (!r->o.max_retries && o->max_retries == 0) r->o.max_retries = 4;
  if (r->o.timeout_s <= 0) r->o.timeout_s = 600;
  if (r->o.backoff_s <= 0) r->o.backoff_s = 0.5;
  size_t n = strlen(o->url);
  while (n && o->url[n - 1] == '/') n--; /* "…/v1/" and "…/v1" alike */
  r->url = hs_malloc(n + 1);
  if (r->url) {
    memcpy(r->url, o->url, n);
    r->url[n] = 0;
  }
  r->o.url = r->url;
  r->o.api_key = NULL;
  r->headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (o->api_key) {
    size_t k = strlen(o->api_key) + 32;
    if ((r->auth = hs_malloc(k))) {
      snprintf(r->auth, k, "Authorization: Bearer %s", o->api_key);
      r->headers = curl_slist_append(r->headers, r->auth);
    }
  }
  r->multi = curl_multi_init();
  pthread_mutex_init(&r->mu, NULL);
  if (!r->url || !r->headers || (o->api_key && !r->auth) || !r->multi ||
      pthread_create(&r->thread, NULL, thread_main, r) != 0) {
    if (r->multi) curl_multi_cleanup(r->multi);
    curl_slist_free_all(r->headers);
    pthread_mutex_destroy(&r->mu);
    hs_free(r->url);
    hs_free(r->auth);
    hs_free(r);
    return HS_EIO;
  }
  *out = r;
  return 0;
}

int hs_remote_submit(hs_remote *r, const char *path, const char *json, uint64_t group,
                     hs_remote_done_fn done, void *ud) {
  rreq *q = hs_calloc(1, sizeof *q);
  if (!q) return HS_ENOMEM;
  size_t un = strlen(r->url) + strlen(path) + 1;
  q->url = hs_malloc(un);
  q->json = hs_strdup(json);
  if (!q->url || !q->json) {
    req_free(q);
    return HS_ENOMEM;
  }
  snprintf(q->url, un, "%s%s", r->url, path);
  q->r = r;
  q->group = group;
  q->done = done;
  q->ud = ud;
  pthread_mutex_lock(&r->mu);
  if (r->stopping) {
    pthread_mutex_unlock(&r->mu);
    req_free(q);
    return HS_EPERM;
  }
  enqueue(r, q, false);
  pthread_mutex_unlock(&r->mu);
  curl_multi_wakeup(r->multi);
  return 0;
}

static size_t to_strbuf(char *data, size_t size, size_t n, void *ud) {
  hs_strbuf_add(ud, data, size * n);
  return size * n;
}

int hs_remote_first_model(hs_remote *r, char *out, size_t cap) {
  CURL *e = curl_easy_init();
  if (!e) {
    snprintf(out, cap, "libcurl: cannot make a transfer");
    return HS_EIO;
  }
  char url[2048];
  snprintf(url, sizeof url, "%s/models", r->url);
  hs_strbuf b = {0};
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, to_strbuf);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  CURLcode cc = curl_easy_perform(e);
  long http = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
  curl_easy_cleanup(e);
  int rc = HS_EIO;
  /* the first "id" of the list: {"data": [{"id": "..."}, ...]} */
  const char *id = b.p && http == 200 ? strstr(b.p, "\"id\"") : NULL;
  const char *q1 = id ? strchr(id + 4, '"') : NULL, *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
  if (cc != CURLE_OK) {
    snprintf(out, cap, "%s: %s", url, curl_easy_strerror(cc));
  } else if (!q2 || (size_t)(q2 - q1 - 1) >= cap) {
    snprintf(out, cap, "%s answered HTTP %ld without a model id", url, http);
  } else {
    memcpy(out, q1 + 1, (size_t)(q2 - q1 - 1));
    out[q2 - q1 - 1] = 0;
    rc = 0;
  }
  hs_free(b.p);
  return rc;
}

void hs_remote_counts(hs_remote *r, uint64_t *attempts, uint64_t *retries, uint64_t *failures) {
  pthread_mutex_lock(&r->mu);
  *attempts = r->attempts;
  *retries = r->retries;
  *failures = r->failures;
  pthread_mutex_unlock(&r->mu);
}

void hs_remote_destroy(hs_remote *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stopping = true;
  pthread_mutex_unlock(&r->mu);
  curl_multi_wakeup(r->multi);
  pthread_join(r->thread, NULL);
  /* what never finished: running transfers, delayed and queued requests */
  for (rreq *q = r->running, *next; q; q = next) {
    next = q->next_running;
    curl_multi_remove_handle(r->multi, q->easy);
    finish(q, HS_EPERM, 0, "the remote executor stopped");
  }
  for (rreq *lists[2] = {r->queue, r->delayed}, **l = lists; l < lists + 2; l++)
    for (rreq *q = *l, *next; q; q = next) {
      next = q->next;
      finish(q, HS_EPERM, 0, "the remote executor stopped");
    }
  curl_multi_cleanup(r->multi);
  curl_slist_free_all(r->headers);
  pthread_mutex_destroy(&r->mu);
  hs_free(r->url);
  hs_free(r->auth);
  hs_free(r);
}
