/* test_threadpool.c: the worker pool (src/core/threadpool.c).
 *
 * Every task runs exactly once (counted per task, over many sizes and many back-to-back jobs, so
 * the spin/sleep hand-over and the join are exercised both while workers spin and after they have
 * gone to sleep); worker ids are in range and never shared by two calls running at once; a NULL
 * pool and a pool of one run everything on the caller; creation checks its arguments, and pools
 * free everything they allocate (also when an allocation fails). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/threadpool.h"
#include "hswarm/error.h"
#include "support/counting_alloc.h"

#define MAX_TASKS 5000
#define MAX_WORKERS 16

typedef struct count_ctx {
  atomic_int hits[MAX_TASKS];
  atomic_int busy[MAX_WORKERS]; /* calls currently running per worker id */
  atomic_int bad_worker;        /* ids out of range, or one id used by two calls at once */
  unsigned n_workers;
  int spin; /* iterations of busy work per task */
} count_ctx;

static void count_task(void *vctx, size_t task, unsigned worker) {
  count_ctx *c = vctx;
  if (worker >= c->n_workers) {
    atomic_fetch_add(&c->bad_worker, 1);
    return;
  }
  if (atomic_fetch_add(&c->busy[worker], 1) != 0) atomic_fetch_add(&c->bad_worker, 1);
  atomic_fetch_add(&c->hits[task], 1);
  volatile int sink = 0;
  for (int i = 0; i < c->spin; i++) sink += i;
  atomic_fetch_sub(&c->busy[worker], 1);
}

static void reset(count_ctx *c, unsigned n_workers, int spin) {
  for (int i = 0; i < MAX_TASKS; i++) atomic_store(&c->hits[i], 0);
  for (int i = 0; i < MAX_WORKERS; i++) atomic_store(&c->busy[i], 0);
  atomic_store(&c->bad_worker, 0);
  c->n_workers = n_workers;
  c->spin = spin;
}

static void check_once(count_ctx *c, size_t n_tasks) {
  for (size_t i = 0; i < n_tasks; i++)
    if (atomic_load(&c->hits[i]) != 1) fail_msg("task %zu ran %d times", i, atomic_load(&c->hits[i]));
  for (size_t i = n_tasks; i < MAX_TASKS; i++) assert_int_equal(atomic_load(&c->hits[i]), 0);
  assert_int_equal(atomic_load(&c->bad_worker), 0);
}

static count_ctx ctx; /* large: static */

static void test_every_task_once(void **state) {
  (void)state;
  static const unsigned threads[] = {1, 2, 3, 4, 8};
  static const size_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, MAX_TASKS};
  for (size_t ti = 0; ti < sizeof threads / sizeof *threads; ti++) {
    hs_threadpool *tp = NULL;
    assert_int_equal(hs_threadpool_create(threads[ti], &tp), 0);
    assert_non_null(tp);
    assert_int_equal(hs_threadpool_size(tp), threads[ti]);
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
      for (int spin = 0; spin <= 2000; spin += 2000) {
        reset(&ctx, threads[ti], spin);
        hs_threadpool_run(tp, count_task, &ctx, sizes[si]);
        check_once(&ctx, sizes[si]);
      }
    }
    hs_threadpool_destroy(tp);
  }
}

/* Many short jobs back to back: the workers never get to sleep. */
static void test_back_to_back(void **state) {
  (void)state;
  hs_threadpool *tp = NULL;
  assert_int_equal(hs_threadpool_create(3, &tp), 0);
  for (int rep = 0; rep < 20000; rep++) {
    size_t n = 1 + (size_t)rep % 9;
    reset(&ctx, 3, 0);
    hs_threadpool_run(tp, count_task, &ctx, n);
    /* check only the first few entries each time (the reset above clears them all) */
    for (size_t i = 0; i < n; i++) assert_int_equal(atomic_load(&ctx.hits[i]), 1);
    assert_int_equal(atomic_load(&ctx.hits[n]), 0);
    assert_int_equal(atomic_load(&ctx.bad_worker), 0);
  }
  hs_threadpool_destroy(tp);
}

/* Jobs separated by pauses longer than the spin window: workers go to sleep and must be woken. */
static void test_wake_after_sleep(void **state) {
  (void)state;
  hs_threadpool *tp = NULL;
  assert_int_equal(hs_threadpool_create(2, &tp), 0);
  for (int rep = 0; rep < 12; rep++) {
    struct timespec ts = {0, 2000000 + (rep % 3) * 300000}; /* 2-2.6 ms, well past the spin window */
    nanosleep(&ts, NULL);
    reset(&ctx, 2, 1000);
    hs_threadpool_run(tp, count_task, &ctx, 64);
    check_once(&ctx, 64);
  }
  hs_threadpool_destroy(tp);
}

/* Results written by the tasks are visible to the caller when run returns. */
typedef struct sum_ctx {
  uint64_t out[4096];
} sum_ctx;

static void square_task(void *vctx, size_t task, unsigned worker) {
  (void)worker;
  sum_ctx *c = vctx;
  c->out[task] = (uint64_t)task * task + 1;
}

static void test_results_visible(void **state) {
  (void)state;
  hs_threadpool *tp = NULL;
  assert_int_equal(hs_threadpool_create(4, &tp), 0);
  static sum_ctx s;
  for (int rep = 0; rep < 200; rep++) {
    memset(&s, 0, sizeof s);
    hs_threadpool_run(tp, square_task, &s, 4096);
    for (uint64_t i = 0; i < 4096; i++)
      if (s.out[i] != i * i + 1) fail_msg("rep %d: out[%llu] = %llu", rep, (unsigned long long)i,
                                          (unsigned long long)s.out[i]);
  }
  hs_threadpool_destroy(tp);
}

static void test_null_and_single(void **state) {
  (void)state;
  assert_int_equal(hs_threadpool_size(NULL), 1);
  reset(&ctx, 1, 0);
  hs_threadpool_run(NULL, count_task, &ctx, 100); /* worker 0 only: n_workers = 1 */
  check_once(&ctx, 100);
  hs_threadpool *tp = NULL;
  assert_int_equal(hs_threadpool_create(1, &tp), 0);
  reset(&ctx, 1, 0);
  hs_threadpool_run(tp, count_task, &ctx, 100);
  check_once(&ctx, 100);
  hs_threadpool_destroy(tp);
  hs_threadpool_destroy(NULL);
}

static void test_create_args(void **state) {
  (void)state;
  assert_int_equal(hs_threadpool_create(2, NULL), HS_EINVAL);
  hs_threadpool *tp = (hs_threadpool *)&ctx;
  assert_int_equal(hs_threadpool_create(100000, &tp), HS_EINVAL);
  assert_null(tp);
  assert_int_equal(hs_threadpool_create(0, &tp), 0); /* online CPUs */
  assert_true(hs_threadpool_size(tp) >= 1);
  reset(&ctx, hs_threadpool_size(tp) < MAX_WORKERS ? hs_threadpool_size(tp) : MAX_WORKERS, 0);
  if (hs_threadpool_size(tp) <= MAX_WORKERS) {
    hs_threadpool_run(tp, count_task, &ctx, 333);
    check_once(&ctx, 333);
  }
  hs_threadpool_destroy(tp);
}

static void test_out_of_memory(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  long live = live_blocks;
  int failures = 0;
  for (long n = 1; n < 10; n++) {
    hs_alloc_fail_after(n);
    hs_threadpool *tp = NULL;
    int rc = hs_threadpool_create(3, &tp);
    hs_alloc_fail_after(0);
    if (rc == 0) {
      hs_threadpool_destroy(tp);
      break;
    }
    assert_int_equal(rc, HS_ENOMEM);
    assert_null(tp);
    failures++;
    assert_int_equal(live_blocks, live);
  }
  assert_true(failures >= 2);
  assert_int_equal(live_blocks, live);
  hs_alloc_set_hooks(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_task_once),  cmocka_unit_test(test_back_to_back),
      cmocka_unit_test(test_wake_after_sleep), cmocka_unit_test(test_results_visible),
      cmocka_unit_test(test_null_and_single),  cmocka_unit_test(test_create_args),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
