/* verify_op.c: command verifiers as the runtime operation "verify" (hswarm/verify.h): a JSON
 * request from an agent is checked on the loop thread and queued; a pool of threads runs the
 * commands in their sandboxes and posts each outcome as the operation's result.
 *
 * Ownership: the pool belongs to the runtime (hs_runtime_on_destroy stops it). A queued job owns
 * its parsed request (the JSON object, which its strings point into) until a thread has run it. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/runtime.h"
#include "hswarm/verify.h"

#define MAX_FILES 256
#define MAX_JOBS 1024

typedef struct job {
  hs_op_token token;
  json_t *request;        /* owns the strings cmd, workdir and files point into */
  const char *cmd;
  hs_verify_opts opts;
  hs_verify_file files[MAX_FILES];
  struct job *next;
} job;

typedef struct pool {
  hs_runtime *rt;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  job *head, *tail;       /* waiting, oldest first */
  int stopping;           /* written under lock; read by running commands through opts.cancel */
  unsigned nthreads;
  pthread_t threads[];
} pool;

static int fail(hs_runtime *rt, hs_op_token token, int code, const char *msg) {
  return hs_runtime_op_complete(rt, token, code, msg, strlen(msg));
}

static int number(json_t *o, const char *key, double lo, double hi, double *out, char *msg,
                  size_t cap) {
  json_t *v = json_object_get(o, key);
  if (!v) return 0;
  if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
    snprintf(msg, cap, "verify: \"%s\" must be a number in [%g, %g]", key, lo, hi);
    return -1;
  }
  *out = json_number_value(v);
  return 0;
}

/* Parses and checks a request into j (which takes o). 0, or -1 with msg set. */
static int parse(json_t *o, job *j, char *msg, size_t cap) {
  static const char *const known[] = {"cmd", "workdir", "files", "time_limit", "cpu_seconds",
                                      "memory", "max_processes", "max_output", "allow_network", "link",
                                      NULL};
  j->request = o;
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    int ok = 0;
    for (int i = 0; known[i]; i++) ok |= !strcmp(key, known[i]);
    if (!ok) {
      snprintf(msg, cap, "verify: unknown key \"%s\"", key);
      return -1;
    }
  }
  hs_verify_opts *vo = &j->opts;
  hs_verify_opts_init(vo);
  j->cmd = json_string_value(json_object_get(o, "cmd"));
  json_t *wd = json_object_get(o, "workdir"), *files = json_object_get(o, "files");
  if (!j->cmd) {
    snprintf(msg, cap, "verify: \"cmd\" (a string) is required");
    return -1;
  }
  if (wd && !json_is_string(wd)) {
    snprintf(msg, cap, "verify: \"workdir\" must be a string");
    return -1;
  }
  if (files && (!json_is_object(files) || json_object_size(files) > MAX_FILES)) {
    snprintf(msg, cap, "verify: \"files\" must be an object of at most %d path: text",
             MAX_FILES);
    return -1;
  }
  vo->workdir = wd ? json_string_value(wd) : NULL;
  double d;
  if (number(o, "time_limit", 0.001, 86400, &vo->time_limit_s, msg, cap)) return -1;
  d = (double)vo->cpu_seconds;
  if (number(o, "cpu_seconds", 1, 86400, &d, msg, cap)) return -1;
  vo->cpu_seconds = (uint64_t)d;
  d = (double)vo->memory_bytes;
  if (number(o, "memory", 1 << 20, 1e15, &d, msg, cap)) return -1;
  vo->memory_bytes = (uint64_t)d;
  d = (double)vo->max_processes;
  if (number(o, "max_processes", 1, 1e6, &d, msg, cap)) return -1;
  vo->max_processes = (uint64_t)d;
  d = (double)vo->max_output;
  if (number(o, "max_output", 0, 1 << 30, &d, msg, cap)) return -1;
  vo->max_output = (size_t)d;
  vo->allow_network = json_is_true(json_object_get(o, "allow_network"));
  vo->link_copies = json_is_true(json_object_get(o, "link"));
  size_t nf = 0;
  if (files) {
    json_object_foreach(files, key, v) {
      if (!json_is_string(v)) {
        snprintf(msg, cap, "verify: files[\"%s\"] must be a string", key);
        return -1;
      }
      j->files[nf++] = (hs_verify_file){key, json_string_value(v), json_string_length(v)};
    }
  }
  vo->files = j->files;
  vo->n_files = nf;
  return 0;
}

static void job_free(job *j) {
  if (!j) return;
  json_decref(j->request);
  hs_free(j);
}

/* Runs one job on a pool thread and posts its outcome. */
static void run_job(pool *p, job *j) {
  hs_verify_result r;
  j->opts.cancel = &p->stopping;
  int rc = hs_verify_command(j->cmd, &j->opts, &r);
  if (rc) {
    fail(p->rt, j->token, rc, hs_verify_last_error());
    return;
  }
  size_t cap = r.output_len + strlen(r.sandbox) + 128;
  char *out = hs_malloc(cap);
  if (!out) {
    hs_verify_result_free(&r);
    fail(p->rt, j->token, HS_ENOMEM, "verify: out of memory");
    return;
  }
  int n = snprintf(out, cap, "%d %d %d %d %d %.3f\n%s\n", r.passed, r.exit_code, r.signal,
                   r.timed_out, r.truncated, r.seconds, r.sandbox);
  memcpy(out + n, r.output, r.output_len);
  hs_runtime_op_complete(p->rt, j->token, 0, out, (size_t)n + r.output_len);
  hs_free(out);
  hs_verify_result_free(&r);
}

static void *worker(void *arg) {
  pool *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->head && !p->stopping) pthread_cond_wait(&p->wake, &p->lock);
    if (p->stopping) break;
    job *j = p->head;
    p->head = j->next;
    if (!p->head) p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    run_job(p, j);
    job_free(j);
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static int start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                 size_t len, void *ud) {
  (void)agent;
  pool *p = ud;
  char msg[600];
  json_error_t je;
  json_t *o = json_loadb(req, len, 0, &je);
  if (!o || !json_is_object(o)) {
    json_decref(o);
    return fail(rt, token, HS_EINVAL, "verify: the request is not a JSON object");
  }
  job *j = hs_calloc(1, sizeof *j);
  if (!j) {
    json_decref(o);
    return fail(rt, token, HS_ENOMEM, "verify: out of memory");
  }
  j->token = token;
  if (parse(o, j, msg, sizeof msg) != 0) {
    job_free(j);
    return fail(rt, token, HS_EINVAL, msg);
  }
  pthread_mutex_lock(&p->lock);
  if (p->tail)
    p->tail->next = j;
  else
    p->head = j;
  p->tail = j;
  pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->lock);
  return 0;
}

/* Stops the pool: running commands are killed (their opts.cancel is p->stopping), waiting jobs
 * dropped, threads joined. */
static void stop(void *ud) {
  pool *p = ud;
  pthread_mutex_lock(&p->lock);
  __atomic_store_n(&p->stopping, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (unsigned i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  while (p->head) {
    job *j = p->head;
    p->head = j->next;
    job_free(j);
  }
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
  hs_free(p);
}

int hs_verify_attach(hs_runtime *rt, unsigned jobs) {
  if (jobs > MAX_JOBS) return HS_EINVAL;
  if (jobs == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    jobs = n > 0 ? (unsigned)(n < MAX_JOBS ? n : MAX_JOBS) : 1;
  }
  pool *p = hs_calloc(1, sizeof *p + jobs * sizeof(pthread_t));
  if (!p) return HS_ENOMEM;
  p->rt = rt;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  for (; p->nthreads < jobs; p->nthreads++)
    if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0) break;
  if (p->nthreads < jobs || hs_runtime_on_destroy(rt, stop, p) != 0) {
    int rc = p->nthreads < jobs ? HS_EIO : HS_ELIMIT;
    stop(p);
    return rc;
  }
  /* from here the runtime owns the pool: it stops it when destroyed, whatever happens below */
  return hs_runtime_register_op(rt, "verify", HS_OP_EXTERNAL | HS_OP_STEP_BOUND, start, p);
}
