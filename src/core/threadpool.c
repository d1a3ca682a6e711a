/* threadpool.c: a persistent pool of worker threads for the engine's data-parallel loops
 * (see core/threadpool.h).
 *
 * The idea: a decode step calls the pool about a hundred times per token, each job lasting tens
 * of microseconds, so a job must be handed out and joined in a few microseconds. Sleeping on a
 * condition variable between jobs costs a futex wake-up per worker per job, so idle workers first
 * spin on the job word for a while (HS_POOL_SPIN_NS) and only then sleep.
 *
 * The join waits for tasks, not for workers. On a shared machine a worker may be descheduled
 * for a whole time slice (milliseconds); if the caller had to wait for every worker to check in,
 * every job would pay that. Instead the caller waits until all tasks are *done*, and a worker
 * that arrives after every task has been claimed simply goes back to waiting, never touching the
 * finished job.
 *
 * Protocol. One 64-bit atomic `ticket` holds (generation : 24 | n : 20 | next : 20): the job's
 * number, its task count and the next unclaimed task. The caller fills the job slot (fn, ctx,
 * base task), resets `done`, and publishes the job by storing a ticket with a new generation
 * and next = 0 (release). Any thread claims task i by compare-and-swap of (g, n, i) -> (g, n,
 * i + 1), so each task is claimed exactly once, and only while the ticket still names job g;
 * after a successful claim the job cannot finish (task i is not done) and so its slot cannot be
 * overwritten while the claimer reads it. Each finished task adds 1 to `done` (release); the
 * caller, once it finds nothing left to claim, waits for done == n (acquire), which also makes
 * every task's writes visible to it. A worker late by a whole job reads a ticket whose
 * generation or counts differ, and its compare-and-swap fails. (The generation wraps after 2^24
 * jobs; a worker would have to stall between one load and its compare-and-swap for that many
 * jobs, with the counts matching too, for a stale claim to succeed.) Jobs of more than 2^20 - 1
 * tasks are run as several jobs.
 *
 * Sleeping without lost wake-ups: a worker that gives up spinning locks the mutex, increments
 * `sleepers` (seq_cst), re-checks the ticket's generation, and waits on the condition variable
 * while it is unchanged. The caller publishes the ticket (seq_cst) and then reads `sleepers`; if
 * it is non-zero it takes the mutex and broadcasts. Sequential consistency on both sides means
 * either the worker sees the new generation before waiting, or the caller sees it counted as a
 * sleeper, and then the broadcast cannot happen before the worker waits (it holds the mutex until
 * cond_wait releases it).
 *
 * Worker ids: the caller is worker 0, pool threads are 1..n-1, fixed for the pool's life, so
 * `worker` indexes per-thread scratch. */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

#define HS_POOL_MAX_THREADS 1024
/* How long an idle worker spins before sleeping, and how long the caller spins on a join before
 * yielding its CPU (a worker running a task may have been descheduled). */
#define HS_POOL_SPIN_NS 200000L
#define HS_POOL_JOIN_SPIN_NS 50000L

/* ticket fields */
#define T_IDX_BITS 20
#define T_N_BITS 20
#define T_MAX_TASKS ((1u << T_IDX_BITS) - 1)
#define T_IDX(v) ((unsigned)((v) & T_MAX_TASKS))
#define T_N(v) ((unsigned)(((v) >> T_IDX_BITS) & ((1u << T_N_BITS) - 1)))
#define T_GEN(v) ((unsigned)((v) >> (T_IDX_BITS + T_N_BITS)))
#define T_MAKE(g, n) (((uint64_t)((g) & 0xffffffu) << (T_IDX_BITS + T_N_BITS)) | ((uint64_t)(n) << T_IDX_BITS))

typedef struct worker_arg {
  hs_threadpool *tp;
  unsigned id;
} worker_arg;

struct hs_threadpool {
  unsigned n_threads; /* counting the caller */
  pthread_t *threads; /* n_threads - 1 */
  worker_arg *args;   /* n_threads - 1 */
  unsigned gen;       /* the caller's count of published jobs (caller only) */

  /* the job slot, written by the caller before the ticket is published */
  hs_threadpool_fn fn;
  void *ctx;
  size_t base; /* task index of the job's task 0 (jobs larger than T_MAX_TASKS are split) */

  _Alignas(64) _Atomic uint64_t ticket;
  _Alignas(64) atomic_uint done;
  _Alignas(64) atomic_uint sleepers;
  atomic_int stop;

  pthread_mutex_t mu;
  pthread_cond_t cv;
};

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Claims and runs tasks of job `gen` until none is left (or the ticket names another job). */
static void run_tasks(hs_threadpool *tp, unsigned gen, unsigned worker) {
  uint64_t v = atomic_load_explicit(&tp->ticket, memory_order_acquire);
  for (;;) {
    if (T_GEN(v) != (gen & 0xffffffu) || T_IDX(v) >= T_N(v)) return;
    if (atomic_compare_exchange_weak_explicit(&tp->ticket, &v, v + 1, memory_order_acquire,
                                              memory_order_acquire)) {
      tp->fn(tp->ctx, tp->base + T_IDX(v), worker);
      atomic_fetch_add_explicit(&tp->done, 1, memory_order_release);
      v = atomic_load_explicit(&tp->ticket, memory_order_acquire);
    }
  }
}

/* Waits until the ticket's generation differs from seen (spinning first, then sleeping);
 * returns the new generation. */
static unsigned wait_for_job(hs_threadpool *tp, unsigned seen) {
  long start = 0;
  for (unsigned i = 0;; i++) {
    unsigned g = T_GEN(atomic_load_explicit(&tp->ticket, memory_order_acquire));
    if (g != seen) return g;
    cpu_relax();
    if ((i & 63) == 63) {
      long t = now_ns();
      if (start == 0) start = t;
      else if (t - start > HS_POOL_SPIN_NS) break;
    }
  }
  pthread_mutex_lock(&tp->mu);
  atomic_fetch_add(&tp->sleepers, 1);
  unsigned g;
  while ((g = T_GEN(atomic_load(&tp->ticket))) == seen) pthread_cond_wait(&tp->cv, &tp->mu);
  atomic_fetch_sub(&tp->sleepers, 1);
  pthread_mutex_unlock(&tp->mu);
  return g;
}

static void *worker_main(void *varg) {
  worker_arg *arg = varg;
  hs_threadpool *tp = arg->tp;
  unsigned seen = 0; /* the ticket starts at generation 0; the first job is generation 1 */
  for (;;) {
    seen = wait_for_job(tp, seen);
    if (atomic_load_explicit(&tp->stop, memory_order_acquire)) break;
    run_tasks(tp, seen, arg->id);
  }
  return NULL;
}

/* Publishes a ticket of a new generation with n tasks and wakes sleeping workers. */
static void publish(hs_threadpool *tp, unsigned n) {
  tp->gen = (tp->gen + 1) & 0xffffffu;
  if (tp->gen == 0) tp->gen = 1; /* 0 is the workers' initial "seen" */
  atomic_store(&tp->ticket, T_MAKE(tp->gen, n)); /* seq_cst: ordered before reading sleepers */
  if (atomic_load(&tp->sleepers) > 0) {
    pthread_mutex_lock(&tp->mu);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
  }
}

static void stop_threads(hs_threadpool *tp, unsigned started) {
  atomic_store(&tp->stop, 1);
  publish(tp, 0);
  pthread_mutex_lock(&tp->mu); /* a worker between its check and cond_wait holds the mutex */
  pthread_cond_broadcast(&tp->cv);
  pthread_mutex_unlock(&tp->mu);
  for (unsigned i = 0; i < started; i++) pthread_join(tp->threads[i], NULL);
}

int hs_threadpool_create(unsigned n_threads, hs_threadpool **out) {
  if (!out) return HS_EINVAL;
  *out = NULL;
  if (n_threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    n_threads = n > 0 ? (unsigned)n : 1;
    if (n_threads > HS_POOL_MAX_THREADS) n_threads = HS_POOL_MAX_THREADS;
  }
  if (n_threads > HS_POOL_MAX_THREADS) return HS_EINVAL;
  hs_threadpool *tp = hs_calloc(1, sizeof *tp);
  if (!tp) return HS_ENOMEM;
  tp->n_threads = n_threads;
  atomic_init(&tp->ticket, 0);
  atomic_init(&tp->done, 0);
  atomic_init(&tp->sleepers, 0);
  atomic_init(&tp->stop, 0);
  if (n_threads == 1) {
    *out = tp;
    return 0;
  }
  tp->threads = hs_calloc(n_threads - 1, sizeof *tp->threads);
  tp->args = hs_calloc(n_threads - 1, sizeof *tp->args);
  if (!tp->threads || !tp->args) goto fail;
  if (pthread_mutex_init(&tp->mu, NULL) != 0) goto fail;
  if (pthread_cond_init(&tp->cv, NULL) != 0) {
    pthread_mutex_destroy(&tp->mu);
    goto fail;
  }
  for (unsigned i = 0; i < n_threads - 1; i++) {
    tp->args[i].tp = tp;
    tp->args[i].id = i + 1;
    if (pthread_create(&tp->threads[i], NULL, worker_main, &tp->args[i]) != 0) {
      stop_threads(tp, i);
      pthread_cond_destroy(&tp->cv);
      pthread_mutex_destroy(&tp->mu);
      hs_free(tp->threads);
      hs_free(tp->args);
      hs_free(tp);
      return HS_EIO;
    }
  }
  *out = tp;
  return 0;
fail:
  hs_free(tp->threads);
  hs_free(tp->args);
  hs_free(tp);
  return HS_ENOMEM;
}

void hs_threadpool_destroy(hs_threadpool *tp) {
  if (!tp) return;
  if (tp->n_threads > 1) {
    stop_threads(tp, tp->n_threads - 1);
    pthread_cond_destroy(&tp->cv);
    pthread_mutex_destroy(&tp->mu);
  }
  hs_free(tp->threads);
  hs_free(tp->args);
  hs_free(tp);
}

unsigned hs_threadpool_size(const hs_threadpool *tp) { return tp ? tp->n_threads : 1; }

void hs_threadpool_run(hs_threadpool *tp, hs_threadpool_fn fn, void *ctx, size_t n_tasks) {
  if (n_tasks == 0 || !fn) return;
  if (!tp || tp->n_threads == 1 || n_tasks == 1) {
    for (size_t i = 0; i < n_tasks; i++) fn(ctx, i, 0);
    return;
  }
  for (size_t base = 0; base < n_tasks; base += T_MAX_TASKS) {
    unsigned n = n_tasks - base < T_MAX_TASKS ? (unsigned)(n_tasks - base) : T_MAX_TASKS;
    tp->fn = fn;
    tp->ctx = ctx;
    tp->base = base;
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    publish(tp, n);
    run_tasks(tp, tp->gen, 0);
    long start = 0;
    for (unsigned i = 0; atomic_load_explicit(&tp->done, memory_order_acquire) != n; i++) {
      cpu_relax();
      if ((i & 63) == 63) {
        long t = now_ns();
        if (start == 0) start = t;
        else if (t - start > HS_POOL_JOIN_SPIN_NS) sched_yield();
      }
    }
  }
}
