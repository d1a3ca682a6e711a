/* test_slab.c: the small-object allocator behind every Lua state (src/core/slab.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/slab.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

static void test_sizes_alignment_and_no_overlap(void **state) {
  (void)state;
  hs_slab *s;
  assert_int_equal(hs_slab_create(&s), 0);
  enum { N = 3000 };
  static unsigned char *p[N];
  static size_t sz[N];
  for (int i = 0; i < N; i++) {
    sz[i] = 1 + (size_t)(i * 37) % HS_SLAB_MAX;
    p[i] = hs_slab_alloc(s, sz[i]);
    assert_non_null(p[i]);
    assert_int_equal((uintptr_t)p[i] % 16, 0);
    memset(p[i], i & 0xff, sz[i]);
  }
  for (int i = 0; i < N; i++) /* every block still holds its own bytes: no overlap */
    for (size_t k = 0; k < sz[i]; k++) assert_int_equal(p[i][k], i & 0xff);
  assert_true(hs_slab_chunk_bytes(s) >= 3000 * 16);
  hs_slab_destroy(s);
}

static void test_freed_blocks_are_reused_by_class(void **state) {
  (void)state;
  hs_slab *s;
  assert_int_equal(hs_slab_create(&s), 0);
  void *a = hs_slab_alloc(s, 40), *b = hs_slab_alloc(s, 48);
  hs_slab_free(s, a, 40);
  assert_ptr_equal(hs_slab_alloc(s, 33), a); /* 33..48 share a class */
  hs_slab_free(s, b, 48);
  assert_ptr_not_equal(hs_slab_alloc(s, 16), b); /* another class */
  uint64_t before = hs_slab_chunk_bytes(s);
  for (int round = 0; round < 100; round++) { /* steady alloc/free does not grow */
    void *q[100];
    for (int i = 0; i < 100; i++) q[i] = hs_slab_alloc(s, 200);
    for (int i = 0; i < 100; i++) hs_slab_free(s, q[i], 200);
  }
  assert_true(hs_slab_chunk_bytes(s) <= before + 64 * 1024);
  hs_slab_destroy(s);
}

static void test_out_of_memory(void **state) {
  (void)state;
  hs_alloc_fail_after(1);
  hs_slab *s;
  assert_int_equal(hs_slab_create(&s), HS_ENOMEM);
  assert_int_equal(hs_slab_create(&s), 0);
  hs_alloc_fail_after(1); /* the first chunk */
  assert_null(hs_slab_alloc(s, 64));
  assert_non_null(hs_slab_alloc(s, 64));
  hs_alloc_fail_after(0);
  hs_slab_destroy(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes_alignment_and_no_overlap),
      cmocka_unit_test(test_freed_blocks_are_reused_by_class),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
