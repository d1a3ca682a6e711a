/* test_hnsw.c: the vector index of the knowledge base (src/kb/hnsw.c): recall@10 against
 * brute force on clustered random vectors, removal (never returned again; re-adding an id
 * replaces it), the file format (a round trip gives the same answers; a corrupt, truncated or
 * foreign file is refused), bad vectors refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/error.h"
#include "kb/hnsw.h"

#define DIM 32
#define N 3000

static uint64_t rs = 42;
static double unif(void) {
  rs = rs * 6364136223846793005ull + 1442695040888963407ull;
  return ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2 * log(unif())) * cos(6.283185307 * unif())); }

static float data[N][DIM];

static void make_data(void) { /* 30 clusters, points around them */
  float centres[30][DIM];
  for (int c = 0; c < 30; c++)
    for (int d = 0; d < DIM; d++) centres[c][d] = gauss();
  for (int i = 0; i < N; i++)
    for (int d = 0; d < DIM; d++) data[i][d] = centres[i % 30][d] + 0.4f * gauss();
}

static double recall_at_10(hnsw *h, size_t ef, int queries) {
  size_t hit = 0, total = 0;
  for (int q = 0; q < queries; q++) {
    float v[DIM];
    for (int d = 0; d < DIM; d++) v[d] = data[(q * 37) % N][d] + 0.2f * gauss();
    uint64_t a[10], b[10];
    float sa[10], sb[10];
    size_t na, nb;
    assert_int_equal(hnsw_search(h, v, 10, ef, a, sa, &na), 0);
    assert_int_equal(hnsw_search_exact(h, v, 10, b, sb, &nb), 0);
    for (size_t i = 0; i < nb; i++)
      for (size_t j = 0; j < na; j++) hit += a[j] == b[i];
    total += nb;
    for (size_t i = 1; i < na; i++) assert_true(sa[i - 1] >= sa[i]); /* best first */
  }
  return (double)hit / (double)total;
}

static void test_recall_and_removal(void **state) {
  (void)state;
  make_data();
  hnsw *h;
  assert_int_equal(hnsw_create(DIM, 16, 100, 7, &h), 0);
  for (int i = 0; i < N; i++) assert_int_equal(hnsw_add(h, 1000 + (uint64_t)i, data[i]), 0);
  assert_int_equal(hnsw_count(h), N);
  double r = recall_at_10(h, 64, 200);
  fprintf(stderr, "recall@10 (ef 64): %.3f\n", r);
  assert_true(r >= 0.95);
  /* removal: a third of the points go, and never come back in results */
  for (int i = 0; i < N; i += 3) assert_int_equal(hnsw_remove(h, 1000 + (uint64_t)i), 0);
  assert_int_equal(hnsw_remove(h, 1000), HS_ENOENT);
  assert_int_equal(hnsw_count(h), N - N / 3);
  assert_int_equal(hnsw_deleted(h), N / 3);
  for (int q = 0; q < 100; q++) {
    uint64_t ids[10];
    float s[10];
    size_t n;
    assert_int_equal(hnsw_search(h, data[(q * 3) % N], 10, 32, ids, s, &n), 0);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) assert_true((ids[i] - 1000) % 3 != 0);
  }
  r = recall_at_10(h, 64, 200);
  fprintf(stderr, "recall@10 after removing a third: %.3f\n", r);
  assert_true(r >= 0.95);
  /* re-adding an id replaces its vector: searching for the new vector finds it first */
  float moved[DIM];
  for (int d = 0; d < DIM; d++) moved[d] = data[5][d];
  assert_int_equal(hnsw_add(h, 1001, moved), 0);
  uint64_t ids[3];
  float s[3];
  size_t n;
  assert_int_equal(hnsw_search(h, moved, 3, 32, ids, s, &n), 0);
  assert_true(ids[0] == 1001 || ids[0] == 1005);
  assert_true(s[0] > 0.999f);
  /* bad vectors */
  float zero[DIM] = {0}, nan_v[DIM] = {0};
  nan_v[3] = NAN;
  assert_int_equal(hnsw_add(h, 1, zero), HS_EINVAL);
  assert_int_equal(hnsw_add(h, 1, nan_v), HS_EINVAL);
  hnsw *none;
  assert_int_equal(hnsw_create(0, 16, 100, 1, &none), HS_EINVAL);
  assert_int_equal(hnsw_create(DIM, 2, 100, 1, &none), HS_EINVAL);
  assert_null(none);
  hnsw_free(h);
}

static void test_files(void **state) {
  (void)state;
  make_data();
  hnsw *h, *g;
  assert_int_equal(hnsw_create(DIM, 8, 40, 3, &h), 0);
  for (int i = 0; i < 500; i++) assert_int_equal(hnsw_add(h, (uint64_t)i, data[i]), 0);
  assert_int_equal(hnsw_remove(h, 7), 0);
  char path[] = "/tmp/hswarm-hnsw-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  assert_int_equal(hnsw_save(h, path), 0);
  assert_int_equal(hnsw_load(path, &g), 0);
  assert_int_equal(hnsw_count(g), 499);
  assert_int_equal(hnsw_deleted(g), 1);
  for (int q = 0; q < 50; q++) {
    uint64_t a[10], b[10];
    float sa[10], sb[10];
    size_t na, nb;
    assert_int_equal(hnsw_search(h, data[q * 9], 10, 32, a, sa, &na), 0);
    assert_int_equal(hnsw_search(g, data[q * 9], 10, 32, b, sb, &nb), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
  }
  /* the same insertions in a fresh index keep working after the load: add to both */
  assert_int_equal(hnsw_add(g, 9999, data[600]), 0);
  hnsw_free(g);
  /* a truncated, a corrupted and a foreign file are refused */
  FILE *f = fopen(path, "r+b");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  assert_int_equal(truncate(path, size - 5), 0);
  assert_int_equal(hnsw_load(path, &g), HS_ECORRUPT);
  assert_int_equal(hnsw_save(h, path), 0);
  f = fopen(path, "r+b");
  fseek(f, 8 + 4 + 4 + 4 + 8 + 8 + 4 + 4 + 8 + 1 + 1 + DIM * 4, SEEK_SET);
  uint32_t huge = 1000;
  fwrite(&huge, 4, 1, f); /* the first node's level-0 link count */
  fclose(f);
  assert_int_equal(hnsw_load(path, &g), HS_ECORRUPT);
  f = fopen(path, "wb");
  fputs("HSWHNSW9 and then whatever", f);
  fclose(f);
  assert_int_equal(hnsw_load(path, &g), HS_EVERSION);
  f = fopen(path, "wb");
  fputs("not an index at all", f);
  fclose(f);
  assert_int_equal(hnsw_load(path, &g), HS_ECORRUPT);
  unlink(path);
  assert_int_equal(hnsw_load(path, &g), HS_ENOENT);
  hnsw_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_recall_and_removal),
      cmocka_unit_test(test_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
