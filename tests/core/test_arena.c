/* test_arena.c: unit tests of the shared arena (include/hswarm/arena.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "hswarm/alloc.h"
#include "hswarm/arena.h"
#include "hswarm/error.h"

/* ---- helpers ---- */

/* Allocation hooks that count live allocations, to prove that nothing leaks even without ASan. */
static atomic_long live_allocs;

static void *counting_malloc(size_t n) {
  void *p = malloc(n);
  if (p) atomic_fetch_add(&live_allocs, 1);
  return p;
}

static void *counting_realloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q && !p) atomic_fetch_add(&live_allocs, 1);
  return q;
}

static void counting_free(void *p) {
  if (p) atomic_fetch_sub(&live_allocs, 1);
  free(p);
}

static const hs_alloc_hooks counting_hooks = {counting_malloc, counting_realloc, counting_free};

static int install_counting_hooks(void **state) {
  (void)state;
  atomic_store(&live_allocs, 0);
  hs_alloc_set_hooks(&counting_hooks);
  return 0;
}

static int restore_hooks(void **state) {
  (void)state;
  hs_alloc_fail_after(0);
  hs_alloc_set_hooks(NULL);
  return 0;
}

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* Fills a blob with bytes derived from its handle, so a reader can tell whose bytes it sees. */
static void fill_blob(unsigned char *p, size_t n, hs_handle h) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)((h >> ((i % 8) * 8)) ^ (i * 131u));
}

static int blob_matches(const unsigned char *p, size_t n, hs_handle h) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)((h >> ((i % 8) * 8)) ^ (i * 131u))) return 0;
  return 1;
}

static hs_arena *new_arena(uint64_t max_bytes, uint64_t max_blobs) {
  hs_arena *a = NULL;
  assert_int_equal(hs_arena_create(max_bytes, max_blobs, &a), HS_OK);
  assert_non_null(a);
  return a;
}

static void assert_stats(hs_arena *a, uint64_t blobs, uint64_t bytes) {
  hs_arena_stats st;
  hs_arena_get_stats(a, &st);
  assert_int_equal(st.live_blobs, blobs);
  assert_int_equal(st.live_bytes, bytes);
}

/* Every entry point must refuse h with HS_ESTALE and a message naming it in hex. */
static void assert_all_stale(hs_arena *a, hs_handle h) {
  char hex[32];
  snprintf(hex, sizeof hex, "0x%016llx", (unsigned long long)h);
  const void *rp = NULL;
  void *wp = NULL;
  size_t n = 12345;
  assert_int_equal(hs_arena_read(a, h, &rp, &n), HS_ESTALE);
  assert_non_null(strstr(hs_arena_last_error(), hex));
  assert_null(rp);
  assert_int_equal(n, 12345);
  assert_int_equal(hs_arena_write_ptr(a, h, &wp, &n), HS_ESTALE);
  assert_null(wp);
  assert_int_equal(hs_arena_publish(a, h), HS_ESTALE);
  assert_int_equal(hs_arena_retain(a, h), HS_ESTALE);
  assert_int_equal(hs_arena_release(a, h), HS_ESTALE);
  assert_non_null(strstr(hs_arena_last_error(), hex));
  assert_int_equal(hs_arena_valid(a, h), 0);
}

/* ---- basic life cycle ---- */

static void test_alloc_write_publish_read_in_place(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 16);
  hs_handle h;
  void *p = NULL;
  assert_int_equal(hs_arena_alloc(a, 64, &h, &p), HS_OK);
  assert_true(h != HS_HANDLE_NONE);
  assert_non_null(p);
  assert_int_equal(hs_arena_valid(a, h), 1);
  fill_blob(p, 64, h);

  void *wp = NULL;
  size_t wn = 0;
  assert_int_equal(hs_arena_write_ptr(a, h, &wp, &wn), HS_OK);
  assert_ptr_equal(wp, p);
  assert_int_equal(wn, 64);

  assert_int_equal(hs_arena_publish(a, h), HS_OK);
  const void *rp = NULL;
  size_t rn = 0;
  assert_int_equal(hs_arena_read(a, h, &rp, &rn), HS_OK);
  assert_ptr_equal(rp, p); /* in place: no copy */
  assert_int_equal(rn, 64);
  assert_true(blob_matches(rp, rn, h));
  const void *rp2 = NULL;
  assert_int_equal(hs_arena_read(a, h, &rp2, NULL), HS_OK); /* out_len is optional */
  assert_ptr_equal(rp2, p);

  assert_int_equal(hs_arena_release(a, h), HS_OK);
  assert_int_equal(hs_arena_valid(a, h), 0);
  hs_arena_destroy(a);
}

static void test_put_copies_and_publishes(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 16);
  char msg[] = "hello, swarm";
  hs_handle h;
  assert_int_equal(hs_arena_put(a, msg, sizeof msg, &h), HS_OK);
  memset(msg, 'x', sizeof msg - 1); /* the arena must hold its own copy */
  const void *rp;
  size_t rn;
  assert_int_equal(hs_arena_read(a, h, &rp, &rn), HS_OK);
  assert_int_equal(rn, sizeof msg);
  assert_string_equal(rp, "hello, swarm");
  assert_true(rp != (const void *)msg);
  assert_int_equal(hs_arena_publish(a, h), HS_EPERM); /* put published it */
  assert_int_equal(hs_arena_put(a, NULL, 5, &h), HS_EINVAL);
  hs_arena_destroy(a);
}

static void test_read_before_publish_is_busy(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 16);
  hs_handle h;
  assert_int_equal(hs_arena_alloc(a, 32, &h, NULL), HS_OK);
  const void *rp = NULL;
  size_t rn = 99;
  assert_int_equal(hs_arena_read(a, h, &rp, &rn), HS_EBUSY);
  assert_null(rp);
  assert_int_equal(rn, 99);
  assert_non_null(strstr(hs_arena_last_error(), "not yet published"));
  assert_int_equal(hs_arena_publish(a, h), HS_OK);
  assert_int_equal(hs_arena_read(a, h, &rp, &rn), HS_OK);
  assert_int_equal(rn, 32);
  hs_arena_destroy(a);
}

static void test_write_after_publish_is_eperm(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 16);
  hs_handle h;
  assert_int_equal(hs_arena_alloc(a, 8, &h, NULL), HS_OK);
  assert_int_equal(hs_arena_publish(a, h), HS_OK);
  void *wp = NULL;
  size_t wn = 77;
  assert_int_equal(hs_arena_write_ptr(a, h, &wp, &wn), HS_EPERM);
  assert_null(wp);
  assert_int_equal(wn, 77);
  assert_non_null(strstr(hs_arena_last_error(), "published"));
  hs_arena_destroy(a);
}

static void test_double_publish_is_eperm(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 16);
  hs_handle h;
  void *p;
  assert_int_equal(hs_arena_alloc(a, 16, &h, &p), HS_OK);
  fill_blob(p, 16, h);
  assert_int_equal(hs_arena_publish(a, h), HS_OK);
  assert_int_equal(hs_arena_publish(a, h), HS_EPERM);
  assert_non_null(strstr(hs_arena_last_error(), "already published"));
  const void *rp;
  size_t rn;
  assert_int_equal(hs_arena_read(a, h, &rp, &rn), HS_OK); /* still fine */
  assert_true(blob_matches(rp, rn, h));
  hs_arena_destroy(a);
}

static void test_retain_release_counting(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 16);
  hs_handle h;
  void *p;
  assert_int_equal(hs_arena_alloc(a, 100, &h, &p), HS_OK);
  fill_blob(p, 100, h);
  assert_int_equal(hs_arena_publish(a, h), HS_OK);
  assert_int_equal(hs_arena_retain(a, h), HS_OK);
  assert_int_equal(hs_arena_retain(a, h), HS_OK); /* 3 references */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(hs_arena_release(a, h), HS_OK);
    assert_int_equal(hs_arena_valid(a, h), 1);
    const void *rp;
    size_t rn;
    assert_int_equal(hs_arena_read(a, h, &rp, &rn), HS_OK);
    assert_true(blob_matches(rp, rn, h));
    assert_stats(a, 1, 100);
  }
  assert_int_equal(hs_arena_release(a, h), HS_OK); /* the last one frees */
  assert_stats(a, 0, 0);
  assert_all_stale(a, h);
  hs_arena_destroy(a);
}

static void test_release_unpublished_frees(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 16);
  hs_handle h;
  assert_int_equal(hs_arena_alloc(a, 10, &h, NULL), HS_OK);
  assert_stats(a, 1, 10);
  assert_int_equal(hs_arena_release(a, h), HS_OK);
  assert_stats(a, 0, 0);
  assert_all_stale(a, h);
  hs_arena_destroy(a);
}

/* ---- bad handles ---- */

static void test_stale_after_free_and_reuse(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 16);
  hs_handle old;
  assert_int_equal(hs_arena_put(a, "old!", 4, &old), HS_OK);
  assert_int_equal(hs_arena_release(a, old), HS_OK);
  assert_all_stale(a, old);
  assert_non_null(strstr(hs_arena_last_error(), "0x"));

  hs_handle fresh;
  assert_int_equal(hs_arena_put(a, "new!", 4, &fresh), HS_OK);
  assert_int_equal((uint32_t)fresh, (uint32_t)old); /* same slot, reused */
  assert_true(fresh != old);                        /* other generation */
  assert_all_stale(a, old);
  assert_non_null(strstr(hs_arena_last_error(), "generation"));
  const void *rp;
  size_t rn;
  assert_int_equal(hs_arena_read(a, fresh, &rp, &rn), HS_OK);
  assert_int_equal(rn, 4);
  assert_memory_equal(rp, "new!", 4);
  assert_stats(a, 1, 4); /* the stale release above did not touch the new blob */
  assert_int_equal(hs_arena_release(a, fresh), HS_OK);
  hs_arena_destroy(a);
}

static void test_forged_handles(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 10000);
  hs_handle h;
  assert_int_equal(hs_arena_put(a, "precious", 8, &h), HS_OK);
  uint32_t gen = (uint32_t)(h >> 32), idx = (uint32_t)h;

  assert_all_stale(a, HS_HANDLE_NONE);
  assert_all_stale(a, (hs_handle)(idx + 3)); /* generation 0 */
  assert_non_null(strstr(hs_arena_last_error(), "generation 0"));
  assert_all_stale(a, ((hs_handle)gen << 32) | 10000); /* index = max_blobs */
  assert_non_null(strstr(hs_arena_last_error(), "out of range"));
  assert_all_stale(a, ((hs_handle)gen << 32) | 0xFFFFFFFFu); /* far out of range */
  assert_all_stale(a, ((hs_handle)gen << 32) | 5000);        /* chunk never made */
  assert_all_stale(a, ((hs_handle)gen << 32) | (idx + 1));   /* slot never used */
  assert_all_stale(a, ((hs_handle)(gen + 1) << 32) | idx);   /* future generation */
  assert_all_stale(a, ((hs_handle)0xFFFFFFFFu << 32) | idx);
  uint64_t seed = 0x9E3779B97F4A7C15u;
  for (int i = 0; i < 20000; i++) {
    hs_handle forged = xorshift(&seed);
    if (i % 2) forged = (forged & 0xFFFFFFFF00000000u) | (forged % 12000); /* near real slots */
    if (forged == h) continue;
    assert_all_stale(a, forged);
  }
  /* None of that touched the real blob or its count. */
  const void *rp;
  size_t rn;
  assert_int_equal(hs_arena_read(a, h, &rp, &rn), HS_OK);
  assert_int_equal(rn, 8);
  assert_memory_equal(rp, "precious", 8);
  assert_stats(a, 1, 8);
  assert_int_equal(hs_arena_release(a, h), HS_OK);
  assert_stats(a, 0, 0);
  hs_arena_destroy(a);
}

static void test_generation_changes_every_reuse(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 1);
  hs_handle prev = HS_HANDLE_NONE;
  for (int i = 0; i < 1000; i++) {
    hs_handle h;
    assert_int_equal(hs_arena_alloc(a, 4, &h, NULL), HS_OK);
    assert_int_equal((uint32_t)h, 0);
    assert_int_equal((uint32_t)(h >> 32), (uint32_t)(i + 1)); /* generations start at 1 */
    assert_true(h != prev);
    if (prev != HS_HANDLE_NONE) assert_int_equal(hs_arena_valid(a, prev), 0);
    assert_int_equal(hs_arena_release(a, h), HS_OK);
    prev = h;
  }
  hs_arena_destroy(a);
}

/* ---- capacity ---- */

static void test_byte_capacity_full(void **state) {
  (void)state;
  hs_arena *a = new_arena(100, 16);
  hs_handle h1, h2, h3;
  unsigned char data[64];
  memset(data, 0xAB, sizeof data);
  assert_int_equal(hs_arena_put(a, data, 60, &h1), HS_OK);
  h2 = 42;
  assert_int_equal(hs_arena_put(a, data, 50, &h2), HS_ENOSPC);
  assert_int_equal(h2, HS_HANDLE_NONE);
  assert_string_equal(hs_arena_last_error(), "arena full: 60 of 100 bytes in use, 50 more asked");
  void *p = NULL;
  assert_int_equal(hs_arena_alloc(a, SIZE_MAX, &h2, &p), HS_ENOSPC); /* no overflow */
  assert_null(p);
  assert_stats(a, 1, 60);
  const void *rp;
  size_t rn;
  assert_int_equal(hs_arena_read(a, h1, &rp, &rn), HS_OK); /* untouched */
  assert_int_equal(rn, 60);
  assert_memory_equal(rp, data, 60);
  assert_int_equal(hs_arena_put(a, data, 40, &h2), HS_OK); /* exactly full */
  assert_int_equal(hs_arena_alloc(a, 1, &h3, NULL), HS_ENOSPC);
  assert_int_equal(hs_arena_alloc(a, 0, &h3, NULL), HS_OK); /* zero bytes still fit */
  assert_stats(a, 3, 100);
  assert_int_equal(hs_arena_release(a, h1), HS_OK);
  assert_int_equal(hs_arena_put(a, data, 60, &h1), HS_OK); /* space came back */
  hs_arena_destroy(a);
}

static void test_slot_capacity_full(void **state) {
  (void)state;
  hs_arena *a = new_arena(1 << 20, 3);
  hs_handle h[4];
  for (int i = 0; i < 3; i++) assert_int_equal(hs_arena_put(a, "abc", 3, &h[i]), HS_OK);
  assert_int_equal(hs_arena_put(a, "abc", 3, &h[3]), HS_ENOSPC);
  assert_string_equal(hs_arena_last_error(), "arena full: 3 of 3 blobs in use, 1 more asked");
  assert_stats(a, 3, 9);
  for (int i = 0; i < 3; i++) assert_int_equal(hs_arena_valid(a, h[i]), 1);
  assert_int_equal(hs_arena_release(a, h[1]), HS_OK);
  assert_int_equal(hs_arena_put(a, "xyz", 3, &h[3]), HS_OK);
  assert_int_equal((uint32_t)h[3], (uint32_t)h[1]);
  assert_int_equal(hs_arena_valid(a, h[1]), 0);
  hs_arena_destroy(a);

  a = new_arena(1 << 20, 0); /* an arena with no slots refuses everything, cleanly */
  assert_int_equal(hs_arena_alloc(a, 1, &h[0], NULL), HS_ENOSPC);
  assert_all_stale(a, ((hs_handle)1 << 32) | 0);
  hs_arena_destroy(a);
}

static void test_many_blobs_across_chunks(void **state) {
  (void)state;
  enum { N = 10000 };
  hs_arena *a = new_arena(UINT64_MAX, N);
  hs_handle *h = malloc(N * sizeof *h);
  assert_non_null(h);
  for (uint32_t i = 0; i < N; i++) {
    void *p;
    assert_int_equal(hs_arena_alloc(a, 16, &h[i], &p), HS_OK);
    fill_blob(p, 16, h[i]);
    assert_int_equal(hs_arena_publish(a, h[i]), HS_OK);
  }
  hs_handle extra = 1;
  assert_int_equal(hs_arena_alloc(a, 16, &extra, NULL), HS_ENOSPC);
  assert_int_equal(extra, HS_HANDLE_NONE);
  for (uint32_t i = 0; i < N; i += 7) {
    const void *rp;
    size_t rn;
    assert_int_equal(hs_arena_read(a, h[i], &rp, &rn), HS_OK);
    assert_int_equal(rn, 16);
    assert_true(blob_matches(rp, rn, h[i]));
  }
  assert_stats(a, N, 16 * N);
  hs_arena_destroy(a); /* frees the blobs still live: the counting hooks check that */
  assert_int_equal(atomic_load(&live_allocs), 0);
  free(h);
}

static void test_zero_size_blob(void **state) {
  (void)state;
  hs_arena *a = new_arena(0, 4); /* no bytes at all */
  hs_handle h;
  void *p = NULL;
  assert_int_equal(hs_arena_alloc(a, 0, &h, &p), HS_OK);
  size_t wn = 5;
  void *wp;
  assert_int_equal(hs_arena_write_ptr(a, h, &wp, &wn), HS_OK);
  assert_int_equal(wn, 0);
  assert_int_equal(hs_arena_publish(a, h), HS_OK);
  const void *rp;
  size_t rn = 5;
  assert_int_equal(hs_arena_read(a, h, &rp, &rn), HS_OK);
  assert_int_equal(rn, 0);
  hs_handle h2;
  assert_int_equal(hs_arena_put(a, NULL, 0, &h2), HS_OK);
  assert_true(h2 != h);
  assert_stats(a, 2, 0);
  assert_int_equal(hs_arena_release(a, h), HS_OK);
  assert_int_equal(hs_arena_release(a, h2), HS_OK);
  assert_stats(a, 0, 0);
  hs_arena_destroy(a);
}

/* ---- out of memory ---- */

/* One run of a scenario that touches every allocation point: the arena, its chunk table, the first
 * chunk, blob data (alloc and put). Returns HS_OK or the first error, having cleaned up. */
static int oom_scenario(void) {
  hs_arena *a = NULL;
  int rc = hs_arena_create(1 << 20, 100, &a);
  if (rc) {
    assert_null(a);
    return rc;
  }
  hs_handle h1 = HS_HANDLE_NONE, h2 = HS_HANDLE_NONE;
  void *p;
  rc = hs_arena_alloc(a, 64, &h1, &p);
  if (rc == HS_OK) {
    memset(p, 1, 64);
    rc = hs_arena_publish(a, h1);
    assert_int_equal(rc, HS_OK);
    rc = hs_arena_put(a, "data", 4, &h2);
    if (rc) {
      assert_int_equal(h2, HS_HANDLE_NONE);
      assert_stats(a, 1, 64); /* the failure changed nothing */
      const void *rp;
      assert_int_equal(hs_arena_read(a, h1, &rp, NULL), HS_OK);
    }
  } else {
    assert_int_equal(h1, HS_HANDLE_NONE);
    assert_stats(a, 0, 0);
  }
  hs_arena_destroy(a);
  return rc;
}

static void test_out_of_memory_every_point(void **state) {
  (void)state;
  int n;
  for (n = 1; n < 100; n++) {
    hs_alloc_fail_after(n);
    int rc = oom_scenario();
    hs_alloc_fail_after(0);
    assert_int_equal(atomic_load(&live_allocs), 0); /* nothing leaked */
    if (rc == HS_OK) break;
    assert_int_equal(rc, HS_ENOMEM);
    assert_true(strlen(hs_arena_last_error()) > 0);
  }
  assert_true(n > 4); /* arena, chunk table, chunk, two blobs: all were failed once */
  assert_true(n < 100);
}

static void test_out_of_memory_new_chunk(void **state) {
  (void)state;
  enum { FIRST = 4096 }; /* fills the first chunk exactly */
  hs_arena *a = new_arena(UINT64_MAX, 2 * FIRST);
  hs_handle *h = malloc((FIRST + 1) * sizeof *h);
  assert_non_null(h);
  for (int i = 0; i < FIRST; i++) assert_int_equal(hs_arena_put(a, &i, sizeof i, &h[i]), HS_OK);
  long before = atomic_load(&live_allocs);
  int n, failures = 0;
  for (n = 1; n < 10; n++) {
    hs_alloc_fail_after(n);
    int rc = hs_arena_put(a, "more", 4, &h[FIRST]);
    hs_alloc_fail_after(0);
    if (rc == HS_OK) break;
    assert_int_equal(rc, HS_ENOMEM);
    failures++;
    assert_int_equal(atomic_load(&live_allocs), before);
    assert_stats(a, FIRST, FIRST * sizeof(int));
  }
  assert_int_equal(failures, 2); /* the blob's bytes, then the new chunk */
  assert_int_equal(atomic_load(&live_allocs), before + 2);
  const void *rp;
  size_t rn;
  assert_int_equal(hs_arena_read(a, h[FIRST], &rp, &rn), HS_OK);
  assert_memory_equal(rp, "more", 4);
  assert_int_equal(hs_arena_read(a, h[123], &rp, &rn), HS_OK);
  assert_int_equal(*(const int *)rp, 123);
  hs_arena_destroy(a);
  assert_int_equal(atomic_load(&live_allocs), 0);
  free(h);
}

/* ---- stats and arguments ---- */

static void test_stats(void **state) {
  (void)state;
  hs_arena *a = new_arena(5000, 50);
  hs_arena_stats st;
  hs_arena_get_stats(a, &st);
  assert_int_equal(st.live_blobs, 0);
  assert_int_equal(st.live_bytes, 0);
  assert_int_equal(st.max_bytes, 5000);
  assert_int_equal(st.max_blobs, 50);
  assert_int_equal(st.total_allocs, 0);
  hs_handle h[10];
  for (int i = 0; i < 10; i++) assert_int_equal(hs_arena_alloc(a, (size_t)i * 10, &h[i], NULL), 0);
  for (int i = 0; i < 10; i += 2) assert_int_equal(hs_arena_release(a, h[i]), HS_OK);
  assert_int_equal(hs_arena_alloc(a, 6000, &h[0], NULL), HS_ENOSPC); /* refused: not counted */
  hs_arena_get_stats(a, &st);
  assert_int_equal(st.live_blobs, 5);
  assert_int_equal(st.live_bytes, 10 + 30 + 50 + 70 + 90);
  assert_int_equal(st.total_allocs, 10);
  hs_arena_destroy(a);
}

static void test_bad_arguments(void **state) {
  (void)state;
  hs_arena *a = (hs_arena *)&a;
  assert_int_equal(hs_arena_create(1, (UINT64_C(1) << 31) + 1, &a), HS_EINVAL);
  assert_null(a);
  assert_non_null(strstr(hs_arena_last_error(), "max_blobs"));
  assert_int_equal(hs_arena_create(1, 1, NULL), HS_EINVAL);
  a = new_arena(100, 4);
  hs_handle h;
  assert_int_equal(hs_arena_alloc(NULL, 1, &h, NULL), HS_EINVAL);
  assert_int_equal(hs_arena_alloc(a, 1, NULL, NULL), HS_EINVAL);
  assert_int_equal(hs_arena_put(a, "x", 1, &h), HS_OK);
  assert_int_equal(hs_arena_read(a, h, NULL, NULL), HS_EINVAL);
  assert_int_equal(hs_arena_read(NULL, h, NULL, NULL), HS_EINVAL);
  assert_int_equal(hs_arena_retain(NULL, h), HS_EINVAL);
  assert_int_equal(hs_arena_release(NULL, h), HS_EINVAL);
  assert_int_equal(hs_arena_valid(NULL, h), 0);
  assert_stats(a, 1, 1);
  hs_arena_destroy(a);
  hs_arena_destroy(NULL);
}

/* ---- threads ---- */

enum { MT_THREADS = 4, MT_ITERS = 20000, MT_POOL = 64 };

typedef struct mt_shared {
  hs_arena *arena;
  _Atomic uint64_t pool[MT_POOL]; /* each non-zero entry owns one reference */
  atomic_long errors;
  atomic_long good_reads;
  atomic_long stale_hits;
} mt_shared;

typedef struct mt_arg {
  mt_shared *sh;
  uint64_t seed;
} mt_arg;

#define MT_CHECK(sh, cond)                           \
  do {                                               \
    if (!(cond)) atomic_fetch_add(&(sh)->errors, 1); \
  } while (0)

/* Retains a handle seen in the pool, checks its bytes are its own, releases it. */
static void mt_read_one(mt_shared *sh, hs_handle h) {
  int rc = hs_arena_retain(sh->arena, h);
  if (rc == HS_ESTALE) {
    atomic_fetch_add(&sh->stale_hits, 1);
    return;
  }
  MT_CHECK(sh, rc == HS_OK);
  if (rc) return;
  const void *p;
  size_t n;
  rc = hs_arena_read(sh->arena, h, &p, &n);
  MT_CHECK(sh, rc == HS_OK);
  if (rc == HS_OK) {
    MT_CHECK(sh, n >= 8 && n < 200);
    MT_CHECK(sh, blob_matches(p, n, h));
    atomic_fetch_add(&sh->good_reads, 1);
  }
  MT_CHECK(sh, hs_arena_release(sh->arena, h) == HS_OK);
}

static void *mt_worker(void *varg) {
  mt_arg *arg = varg;
  mt_shared *sh = arg->sh;
  uint64_t seed = arg->seed;
  for (int i = 0; i < MT_ITERS; i++) {
    size_t size = 8 + xorshift(&seed) % 180;
    hs_handle h;
    void *p;
    int rc = hs_arena_alloc(sh->arena, size, &h, &p);
    MT_CHECK(sh, rc == HS_OK);
    if (rc) continue;
    fill_blob(p, size, h);
    MT_CHECK(sh, hs_arena_publish(sh->arena, h) == HS_OK);
    const void *rp;
    size_t rn;
    MT_CHECK(sh, hs_arena_read(sh->arena, h, &rp, &rn) == HS_OK && rp == p && rn == size);
    hs_handle old = atomic_exchange(&sh->pool[xorshift(&seed) % MT_POOL], h);
    if (old) MT_CHECK(sh, hs_arena_release(sh->arena, old) == HS_OK);
    for (int k = 0; k < 4; k++) {
      hs_handle seen = atomic_load(&sh->pool[xorshift(&seed) % MT_POOL]);
      if (!seen) continue;
      mt_read_one(sh, seen);
      rc = hs_arena_read(sh->arena, seen, &rp, &rn); /* no reference held: may be stale */
      MT_CHECK(sh, rc == HS_OK || rc == HS_ESTALE);
      int valid = hs_arena_valid(sh->arena, seen);
      MT_CHECK(sh, valid == 0 || valid == 1);
    }
  }
  return NULL;
}

static void test_threads_share_the_arena(void **state) {
  (void)state;
  static mt_shared sh;
  memset(&sh, 0, sizeof sh);
  sh.arena = new_arena(1 << 24, 4096);
  pthread_t tid[MT_THREADS];
  mt_arg args[MT_THREADS];
  for (int t = 0; t < MT_THREADS; t++) {
    args[t].sh = &sh;
    args[t].seed = 0x1234567u * (uint64_t)(t + 1);
    assert_int_equal(pthread_create(&tid[t], NULL, mt_worker, &args[t]), 0);
  }
  for (int t = 0; t < MT_THREADS; t++) assert_int_equal(pthread_join(tid[t], NULL), 0);
  assert_int_equal(atomic_load(&sh.errors), 0);
  assert_true(atomic_load(&sh.good_reads) > MT_ITERS); /* the readers really read */
  for (int i = 0; i < MT_POOL; i++) {
    hs_handle h = atomic_load(&sh.pool[i]);
    if (h) assert_int_equal(hs_arena_release(sh.arena, h), HS_OK);
  }
  hs_arena_stats st;
  hs_arena_get_stats(sh.arena, &st);
  assert_int_equal(st.live_blobs, 0);
  assert_int_equal(st.live_bytes, 0);
  assert_int_equal(st.total_allocs, (uint64_t)MT_THREADS * MT_ITERS);
  hs_arena_destroy(sh.arena);
  assert_int_equal(atomic_load(&live_allocs), 0);
}

/* One slot recycled as fast as possible by a writer while a reader reads whatever handle it last
 * saw, holding no reference. A read may fail (stale) but when it succeeds the length it returns
 * must be that of the handle's own blob, never that of the slot's next occupant. */
enum { RACE_CYCLES = 500000 };

typedef struct race_shared {
  hs_arena *arena;
  _Atomic uint64_t current;
  atomic_int stop;
  atomic_long errors;
} race_shared;

static size_t race_size(hs_handle h) { return 8 + (size_t)((h >> 32) % 97); }

static void *race_writer(void *varg) {
  race_shared *sh = varg;
  hs_handle h = atomic_load(&sh->current);
  for (long i = 0; i < RACE_CYCLES; i++) {
    hs_handle expect = ((h >> 32) + 1) << 32; /* same slot 0, next generation */
    hs_handle next;
    MT_CHECK(sh, hs_arena_release(sh->arena, h) == HS_OK);
    if (hs_arena_alloc(sh->arena, race_size(expect), &next, NULL) != HS_OK || next != expect) {
      atomic_fetch_add(&sh->errors, 1);
      break;
    }
    MT_CHECK(sh, hs_arena_publish(sh->arena, next) == HS_OK);
    h = next;
    atomic_store_explicit(&sh->current, h, memory_order_relaxed);
  }
  atomic_store(&sh->stop, 1);
  return NULL;
}

static void test_read_never_mixes_generations(void **state) {
  (void)state;
  static race_shared sh;
  memset(&sh, 0, sizeof sh);
  sh.arena = new_arena(1 << 20, 1);
  hs_handle first = (hs_handle)1 << 32;
  hs_handle h;
  assert_int_equal(hs_arena_alloc(sh.arena, race_size(first), &h, NULL), HS_OK);
  assert_int_equal(h, first);
  assert_int_equal(hs_arena_publish(sh.arena, h), HS_OK);
  atomic_store(&sh.current, h);
  pthread_t tid;
  assert_int_equal(pthread_create(&tid, NULL, race_writer, &sh), 0);
  long mixed = 0;
  while (!atomic_load_explicit(&sh.stop, memory_order_relaxed)) {
    hs_handle seen = atomic_load_explicit(&sh.current, memory_order_relaxed);
    const void *p;
    size_t n;
    int rc = hs_arena_read(sh.arena, seen, &p, &n);
    if (rc == HS_OK) {
      if (n != race_size(seen)) mixed++;
    } else if (rc != HS_ESTALE) {
      atomic_fetch_add(&sh.errors, 1);
    }
  }
  assert_int_equal(pthread_join(tid, NULL), 0);
  assert_int_equal(atomic_load(&sh.errors), 0);
  assert_int_equal(mixed, 0);
  hs_handle last = atomic_load(&sh.current);
  assert_int_equal((uint32_t)(last >> 32), RACE_CYCLES + 1);
  const void *p;
  size_t n;
  assert_int_equal(hs_arena_read(sh.arena, last, &p, &n), HS_OK);
  assert_int_equal(n, race_size(last));
  assert_int_equal(hs_arena_release(sh.arena, last), HS_OK);
  assert_stats(sh.arena, 0, 0);
  hs_arena_destroy(sh.arena);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alloc_write_publish_read_in_place),
      cmocka_unit_test(test_put_copies_and_publishes),
      cmocka_unit_test(test_read_before_publish_is_busy),
      cmocka_unit_test(test_write_after_publish_is_eperm),
      cmocka_unit_test(test_double_publish_is_eperm),
      cmocka_unit_test(test_retain_release_counting),
      cmocka_unit_test(test_release_unpublished_frees),
      cmocka_unit_test(test_stale_after_free_and_reuse),
      cmocka_unit_test(test_forged_handles),
      cmocka_unit_test(test_generation_changes_every_reuse),
      cmocka_unit_test(test_byte_capacity_full),
      cmocka_unit_test(test_slot_capacity_full),
      cmocka_unit_test_setup_teardown(test_many_blobs_across_chunks, install_counting_hooks,
                                      restore_hooks),
      cmocka_unit_test(test_zero_size_blob),
      cmocka_unit_test_setup_teardown(test_out_of_memory_every_point, install_counting_hooks,
                                      restore_hooks),
      cmocka_unit_test_setup_teardown(test_out_of_memory_new_chunk, install_counting_hooks,
                                      restore_hooks),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test_setup_teardown(test_threads_share_the_arena, install_counting_hooks,
                                      restore_hooks),
      cmocka_unit_test(test_read_never_mixes_generations),
  };
  return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
