/* test_quant_ref.c: the C dequantizers against an independent Python reference, bit for bit.
 *
 * For every supported type, blocks are made (random data quantized by hs_quant_quantize, or for
 * F16/BF16/F32 raw bit patterns: all 65536 halves, random words including NaNs), written to a
 * temporary file and decoded twice: by hs_quant_dequantize and by tests/engine/quant_ref.py run
 * with Debian's /usr/bin/python3 and NumPy. The formats are exact, so the two float32 outputs must
 * be identical bit for bit. The Python file is found through HS_SOURCE_DIR (set by
 * tests/CMakeLists.txt). A missing interpreter, NumPy or HS_SOURCE_DIR is a failure, not a skip:
 * the check would otherwise silently stop running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/quant.h"

#define PYTHON "/usr/bin/python3"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 32);
}

static float rng_uniform(void) { return (float)rng_next() / 4294967296.0f * 2.0f - 1.0f; }

static const char *ref_script(void) {
  static char path[4096];
  const char *dir = getenv("HS_SOURCE_DIR");
  if (!dir || !*dir) fail_msg("HS_SOURCE_DIR is not set: it must name the source tree (CTest sets it)");
  snprintf(path, sizeof path, "%s/tests/engine/quant_ref.py", dir);
  if (access(path, R_OK) != 0) fail_msg("cannot read %s", path);
  return path;
}

static int setup(void **state) {
  (void)state;
  if (access(PYTHON, X_OK) != 0) {
    fprintf(stderr, "test_quant_ref: %s is missing; install Debian's python3 and python3-numpy\n", PYTHON);
    return -1;
  }
  if (system(PYTHON " -c 'import numpy' 2>/dev/null") != 0) {
    fprintf(stderr, "test_quant_ref: NumPy is missing for %s; apt-get install python3-numpy\n", PYTHON);
    return -1;
  }
  return 0;
}

static void write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* Decodes the n elements in blocks with the Python reference and compares with the C decoder. */
static void check_against_python(int type, const void *blocks, size_t n) {
  size_t bytes = hs_quant_row_bytes(type, n);
  assert_true(bytes > 0);
  char in[] = "/tmp/hs_quant_in_XXXXXX", out[] = "/tmp/hs_quant_out_XXXXXX";
  int fd = mkstemp(in);
  assert_true(fd >= 0);
  close(fd);
  fd = mkstemp(out);
  assert_true(fd >= 0);
  close(fd);
  write_file(in, blocks, bytes);

  char cmd[8192];
  snprintf(cmd, sizeof cmd, PYTHON " '%s' %d '%s' '%s'", ref_script(), type, in, out);
  int rc = system(cmd);
  float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
  assert_non_null(want);
  assert_non_null(got);
  FILE *f = fopen(out, "rb");
  size_t nread = f ? fread(got, sizeof *got, n + 1, f) : 0;
  if (f) fclose(f);
  unlink(in);
  unlink(out);
  if (rc != 0) fail_msg("%s failed (status %d)", cmd, rc);
  assert_int_equal(nread, n);
  assert_int_equal(hs_quant_dequantize(type, blocks, want, n), 0);
  for (size_t i = 0; i < n; i++) {
    uint32_t a, b;
    memcpy(&a, &want[i], 4);
    memcpy(&b, &got[i], 4);
    if (a != b)
      fail_msg("type %d element %zu: C gives %08x (%g), Python %08x (%g)", type, i, (unsigned)a,
               (double)want[i], (unsigned)b, (double)got[i]);
  }
  free(want);
  free(got);
}

#define N 8192 /* 32 super-blocks */

/* Random floats with a different magnitude, offset and sparsity in each 256-element stretch,
 * including stretches of zeros, to reach every code and scale. */
static void random_data(float *x, size_t n) {
  for (size_t b = 0; b < n / 256; b++) {
    float mag = ldexpf(1.0f, (int)(rng_next() % 24) - 16), off = (b % 3 == 0) ? mag * 0.5f : 0.0f;
    for (size_t i = 0; i < 256; i++)
      x[256 * b + i] = (b % 11 == 5) ? 0.0f : off + mag * rng_uniform() * (1 + (i % 7));
  }
}

static void test_quantized_types(void **state) {
  (void)state;
  static const int types[] = {HS_QUANT_Q8_0, HS_QUANT_Q4_0, HS_QUANT_Q4_K, HS_QUANT_Q6_K,
                              HS_QUANT_Q4_1, HS_QUANT_Q5_0, HS_QUANT_Q5_1, HS_QUANT_IQ4_NL,
                              HS_QUANT_Q2_K, HS_QUANT_Q3_K, HS_QUANT_Q5_K, HS_QUANT_IQ4_XS};
  float *x = malloc(N * sizeof *x);
  uint8_t *q = malloc(hs_quant_row_bytes(HS_QUANT_Q6_K, N) * 2);
  assert_non_null(x);
  assert_non_null(q);
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    random_data(x, N);
    assert_int_equal(hs_quant_quantize(types[t], x, q, N), 0);
    check_against_python(types[t], q, N);
    /* and arbitrary bytes: every field value, including negative and subnormal scales */
    size_t bytes = hs_quant_row_bytes(types[t], N);
    for (size_t i = 0; i < bytes; i++) q[i] = (uint8_t)rng_next();
    /* keep the f16 scales finite so that inf * 0 = NaN payloads are not compared */
    size_t bb = hs_quant_block_bytes(types[t]);
    size_t doff = types[t] == HS_QUANT_Q6_K   ? 208
                  : types[t] == HS_QUANT_Q2_K ? 80
                  : types[t] == HS_QUANT_Q3_K ? 108
                                              : 0;
    int nd = types[t] == HS_QUANT_Q4_K || types[t] == HS_QUANT_Q4_1 || types[t] == HS_QUANT_Q5_1 ||
                     types[t] == HS_QUANT_Q2_K || types[t] == HS_QUANT_Q5_K
                 ? 2
                 : 1;
    for (size_t b = 0; b < bytes / bb; b++)
      for (int k = 0; k < nd; k++) q[b * bb + doff + 2 * k + 1] &= 0x3f; /* exponent < 31 */
    check_against_python(types[t], q, N);
  }
  free(x);
  free(q);
}

static void test_float_types(void **state) {
  (void)state;
  uint16_t *h = malloc(65536 * sizeof *h);
  assert_non_null(h);
  for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i; /* every pattern: specials, NaNs */
  check_against_python(HS_QUANT_F16, h, 65536);
  check_against_python(HS_QUANT_BF16, h, 65536);
  uint32_t w[4096];
  for (int i = 0; i < 4096; i++) w[i] = rng_next();
  w[0] = 0x7fc00000u; /* a NaN */
  w[1] = 0xff800000u; /* -inf */
  check_against_python(HS_QUANT_F32, w, 4096);
  /* values that went through the C quantizers */
  float x[4096];
  random_data(x, 4096);
  assert_int_equal(hs_quant_quantize(HS_QUANT_F16, x, h, 4096), 0);
  check_against_python(HS_QUANT_F16, h, 4096);
  assert_int_equal(hs_quant_quantize(HS_QUANT_BF16, x, h, 4096), 0);
  check_against_python(HS_QUANT_BF16, h, 4096);
  free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_quantized_types),
    cmocka_unit_test(test_float_types),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
