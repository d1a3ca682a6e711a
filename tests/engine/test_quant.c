/* test_quant.c: tensor data types (src/engine/quant.c).
 *
 * fp16 and bf16 conversions: special values, ties to even, subnormals, and every one of the 65536
 * bit patterns decoded against an independent formula and encoded back; quantize then dequantize
 * of random data for every type within each format's error bound; dequantization of hand-built
 * blocks whose values are known; and the argument checks (bad type, n not a multiple of the
 * block). The bit-exact check against an independent Python decoder is in test_quant_ref.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hswarm/error.h"
#include "hswarm/quant.h"

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 32);
}

/* Roughly normal: a sum of four uniforms, centred, scaled. */
static float rng_normal(float sigma) {
  float s = 0.0f;
  for (int i = 0; i < 4; i++) s += (float)rng_next() / 4294967296.0f;
  return (s - 2.0f) * sigma * 1.7320508f;
}

/* The value of a binary16 pattern by the textbook formula, in double. */
static double half_value(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

static void test_fp16_specials(void **state) {
  (void)state;
  assert_int_equal(hs_quant_f32_to_fp16(0.0f), 0x0000);
  assert_int_equal(hs_quant_f32_to_fp16(-0.0f), 0x8000);
  assert_int_equal(hs_quant_f32_to_fp16(1.0f), 0x3c00);
  assert_int_equal(hs_quant_f32_to_fp16(-2.0f), 0xc000);
  assert_int_equal(hs_quant_f32_to_fp16(65504.0f), 0x7bff);
  assert_int_equal(hs_quant_f32_to_fp16(65519.99f), 0x7bff);
  assert_int_equal(hs_quant_f32_to_fp16(65520.0f), 0x7c00); /* tie rounds to even = inf */
  assert_int_equal(hs_quant_f32_to_fp16(1e30f), 0x7c00);
  assert_int_equal(hs_quant_f32_to_fp16(INFINITY), 0x7c00);
  assert_int_equal(hs_quant_f32_to_fp16(-INFINITY), 0xfc00);
  uint16_t n = hs_quant_f32_to_fp16(NAN);
  assert_int_equal(n & 0x7c00, 0x7c00);
  assert_true((n & 0x3ff) != 0);
  assert_true(n & 0x200); /* quiet */
  assert_int_equal(hs_quant_f32_to_fp16(from_bits(0x7f800001u)) & 0x7e00, 0x7e00); /* sNaN -> qNaN */
  assert_int_equal(hs_quant_f32_to_fp16(0x1p-14f), 0x0400); /* smallest normal */
  assert_int_equal(hs_quant_f32_to_fp16(0x1p-24f), 0x0001); /* smallest subnormal */
  assert_int_equal(hs_quant_f32_to_fp16(0x1p-25f), 0x0000); /* tie to even: 0 */
  assert_int_equal(hs_quant_f32_to_fp16(0x1.8p-24f), 0x0002); /* 1.5 ulp: tie to even 2 */
  assert_int_equal(hs_quant_f32_to_fp16(0x1.0002p-25f), 0x0001); /* just above the tie */
  assert_int_equal(hs_quant_f32_to_fp16(-0x1p-30f), 0x8000);
  assert_int_equal(hs_quant_f32_to_fp16(from_bits(1)), 0x0000); /* f32 subnormal */
  assert_int_equal(hs_quant_f32_to_fp16(0x1.ff8p-15f), 0x03ff); /* largest subnormal */
  assert_int_equal(hs_quant_f32_to_fp16(0x1.ffcp-15f), 0x0400); /* tie: even, into the normals */
  assert_int_equal(hs_quant_f32_to_fp16(0x1.ffbp-15f), 0x03ff);
  assert_int_equal(hs_quant_f32_to_fp16(1.0f + 0x1p-11f), 0x3c00); /* tie, even below */
  assert_int_equal(hs_quant_f32_to_fp16(1.0f + 0x3p-11f), 0x3c02); /* tie, even above */
  assert_true(hs_quant_fp16_to_f32(0x0001) == 0x1p-24f);
  assert_true(hs_quant_fp16_to_f32(0x7bff) == 65504.0f);
  assert_true(isinf(hs_quant_fp16_to_f32(0xfc00)) && hs_quant_fp16_to_f32(0xfc00) < 0);
  assert_true(isnan(hs_quant_fp16_to_f32(0x7e00)));
  assert_int_equal(bits(hs_quant_fp16_to_f32(0x8000)), 0x80000000u);
}

static void test_fp16_all_patterns(void **state) {
  (void)state;
  for (uint32_t h = 0; h < 65536; h++) {
    float f = hs_quant_fp16_to_f32((uint16_t)h);
    int e = (h >> 10) & 31, m = h & 1023;
    if (e == 31 && m != 0) {
      assert_true(isnan(f));
      uint16_t back = hs_quant_f32_to_fp16(f);
      assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0);
      assert_int_equal(back & 0x8000, h & 0x8000);
      continue;
    }
    if (e == 31) assert_true(isinf(f));
    else assert_true((double)f == half_value((uint16_t)h));
    assert_int_equal(hs_quant_f32_to_fp16(f), h);
    /* the f32 midpoint between this half and the next one up in magnitude rounds to even */
    if ((h & 0x7fff) < 0x7bff) {
      float next = hs_quant_fp16_to_f32((uint16_t)(h + 1));
      float mid = (float)(((double)f + (double)next) / 2.0);
      uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
      assert_int_equal(hs_quant_f32_to_fp16(mid), want);
      assert_int_equal(hs_quant_f32_to_fp16(nextafterf(mid, 0.0f)), h);
      assert_int_equal(hs_quant_f32_to_fp16(nextafterf(mid, signbit(f) ? -INFINITY : INFINITY)), h + 1);
    }
  }
}

static void test_bf16(void **state) {
  (void)state;
  assert_int_equal(hs_quant_f32_to_bf16(1.0f), 0x3f80);
  assert_int_equal(hs_quant_f32_to_bf16(-0.0f), 0x8000);
  assert_int_equal(hs_quant_f32_to_bf16(INFINITY), 0x7f80);
  assert_int_equal(hs_quant_f32_to_bf16(-INFINITY), 0xff80);
  assert_int_equal(hs_quant_f32_to_bf16(from_bits(0x3f808000u)), 0x3f80); /* tie, even below */
  assert_int_equal(hs_quant_f32_to_bf16(from_bits(0x3f818000u)), 0x3f82); /* tie, even above */
  assert_int_equal(hs_quant_f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);
  assert_int_equal(hs_quant_f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80); /* overflow to inf */
  assert_int_equal(hs_quant_f32_to_bf16(from_bits(0x00000001u)), 0x0000); /* subnormal */
  assert_int_equal(hs_quant_f32_to_bf16(from_bits(0x00018000u)), 0x0002); /* subnormal tie */
  uint16_t n = hs_quant_f32_to_bf16(from_bits(0x7f800001u)); /* sNaN with low payload only */
  assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
  for (uint32_t h = 0; h < 65536; h++) {
    float f = hs_quant_bf16_to_f32((uint16_t)h);
    assert_int_equal(bits(f), h << 16);
    uint16_t back = hs_quant_f32_to_bf16(f);
    if (isnan(f)) assert_true(isnan(hs_quant_bf16_to_f32(back)) && (back & 0x8000) == (h & 0x8000));
    else assert_int_equal(back, h);
  }
}

/* Quantizes n random values and returns the dequantized copy in out (caller frees). */
static float *round_trip(int type, const float *x, size_t n, void **blocks) {
  size_t bytes = hs_quant_row_bytes(type, n);
  assert_true(bytes > 0);
  void *q = malloc(bytes);
  float *y = malloc(n * sizeof *y);
  assert_non_null(q);
  assert_non_null(y);
  assert_int_equal(hs_quant_quantize(type, x, q, n), 0);
  assert_int_equal(hs_quant_dequantize(type, q, y, n), 0);
  if (blocks) *blocks = q;
  else free(q);
  return y;
}

static double rel_rms(const float *x, const float *y, size_t n) {
  double e = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    s += (double)x[i] * x[i];
  }
  return sqrt(e / s);
}

#define NR 4096

static void test_round_trip_float_types(void **state) {
  (void)state;
  float x[NR];
  for (int i = 0; i < NR; i++) x[i] = rng_normal(10.0f);
  float *y = round_trip(HS_QUANT_F32, x, NR, NULL);
  assert_memory_equal(x, y, sizeof x);
  free(y);
  y = round_trip(HS_QUANT_F16, x, NR, NULL);
  for (int i = 0; i < NR; i++) assert_true(fabsf(x[i] - y[i]) <= fabsf(x[i]) * 0x1p-11f + 0x1p-25f);
  free(y);
  y = round_trip(HS_QUANT_BF16, x, NR, NULL);
  for (int i = 0; i < NR; i++) assert_true(fabsf(x[i] - y[i]) <= fabsf(x[i]) * 0x1p-8f);
  free(y);
}

static void test_round_trip_q8_0(void **state) {
  (void)state;
  float x[NR];
  for (int i = 0; i < NR; i++) x[i] = rng_normal(i < NR / 2 ? 1.0f : 300.0f);
  void *q;
  float *y = round_trip(HS_QUANT_Q8_0, x, NR, &q);
  for (int b = 0; b < NR / 32; b++) {
    const uint8_t *blk = (const uint8_t *)q + 34 * b;
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
    float d = amax / 127.0f, dh = hs_quant_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
    /* half a step, plus the f16 rounding of d times the largest code */
    float bound = d / 2 + 127.0f * fabsf(d - dh) + 1e-6f;
    for (int j = 0; j < 32; j++) assert_true(fabsf(x[32 * b + j] - y[32 * b + j]) <= bound);
  }
  assert_true(rel_rms(x, y, NR) < 0.01);
  free(q);
  free(y);
}

static void test_round_trip_4_and_6_bit(void **state) {
  (void)state;
  static const struct { int type; double max_rel_rms; } cases[] = {
    {HS_QUANT_Q4_0, 0.12}, {HS_QUANT_Q4_K, 0.12}, {HS_QUANT_Q6_K, 0.03}};
  float x[NR];
  for (int i = 0; i < NR; i++) x[i] = rng_normal(0.02f) + (i % 256 < 128 ? 0.0f : 0.01f);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    float *y = round_trip(cases[c].type, x, NR, NULL);
    double r = rel_rms(x, y, NR);
    assert_true(r < cases[c].max_rel_rms);
    assert_true(r > 0.0); /* it did quantize */
    free(y);
  }
  /* all zeros stays all zeros */
  float z[256] = {0};
  static const int all[] = {HS_QUANT_Q4_0, HS_QUANT_Q8_0, HS_QUANT_Q4_K, HS_QUANT_Q6_K};
  for (int c = 0; c < 4; c++) {
    float *y = round_trip(all[c], z, 256, NULL);
    for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    free(y);
  }
}

/* Data that fits the grids: Q4_K with codes 0..15 in every sub-block (scale 1, min 0), Q6_K with
 * integers whose largest magnitude is 31 in every sub-block (scale 1); the only error left is
 * the f16 rounding of the super-scale. */
static void test_round_trip_exact_cases(void **state) {
  (void)state;
  float x[256];
  for (int i = 0; i < 256; i++) x[i] = (float)(i % 16); /* 0..15: scale 1, min 0 */
  float *y = round_trip(HS_QUANT_Q4_K, x, 256, NULL);
  /* d = 1/63 rounded to f16, sc = 63: d*sc is within 2^-11 relative of 1 */
  for (int i = 0; i < 256; i++) assert_true(fabsf(y[i] - x[i]) < 0.01f);
  free(y);
  for (int i = 0; i < 256; i++) x[i] = i % 16 == 0 ? -31.0f : (float)((i * 5) % 63 - 31);
  y = round_trip(HS_QUANT_Q6_K, x, 256, NULL);
  for (int i = 0; i < 256; i++) assert_true(fabsf(y[i] - x[i]) < 0.02f);
  free(y);
}

static void put_f16(uint8_t *p, float v) {
  uint16_t h = hs_quant_f32_to_fp16(v);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}

static void test_dequant_hand_built(void **state) {
  (void)state;
  float y[256];

  /* F16 / BF16 / F32: little-endian bytes */
  uint8_t h2[4] = {0x00, 0x3c, 0x00, 0xc0}; /* 1.0, -2.0 */
  assert_int_equal(hs_quant_dequantize(HS_QUANT_F16, h2, y, 2), 0);
  assert_true(y[0] == 1.0f && y[1] == -2.0f);
  uint8_t b2[4] = {0x80, 0x3f, 0x40, 0xc0}; /* 1.0, -3.0 */
  assert_int_equal(hs_quant_dequantize(HS_QUANT_BF16, b2, y, 2), 0);
  assert_true(y[0] == 1.0f && y[1] == -3.0f);
  float f1 = 2.5f;
  assert_int_equal(hs_quant_dequantize(HS_QUANT_F32, &f1, y, 1), 0);
  assert_true(y[0] == 2.5f);

  /* Q8_0: d = 0.5, q[j] = j - 16 */
  uint8_t q8[34];
  put_f16(q8, 0.5f);
  for (int j = 0; j < 32; j++) q8[2 + j] = (uint8_t)(int8_t)(j - 16);
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q8_0, q8, y, 32), 0);
  for (int j = 0; j < 32; j++) assert_true(y[j] == 0.5f * (float)(j - 16));

  /* Q4_0: d = 2, byte j = low nibble j & 15, high nibble 15 - j */
  uint8_t q4[18];
  put_f16(q4, 2.0f);
  for (int j = 0; j < 16; j++) q4[2 + j] = (uint8_t)(j | ((15 - j) << 4));
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q4_0, q4, y, 32), 0);
  for (int j = 0; j < 16; j++) {
    assert_true(y[j] == 2.0f * (float)(j - 8));
    assert_true(y[j + 16] == 2.0f * (float)(7 - j));
  }

  /* Q4_K: d = 1, dmin = 0.5; sub-block s has scale s + 1 + 8*(s >= 4) (so the top bits of
   * sc[4..7] are used: values 13..16 need bit 4) and min 2s + 33*(s >= 4) (uses bit 5).
   * Element l of sub-block s has code (l + s) & 15. */
  uint8_t k4[144];
  memset(k4, 0, sizeof k4);
  put_f16(k4, 1.0f);
  put_f16(k4 + 2, 0.5f);
  int sc[8], mn[8];
  for (int s = 0; s < 8; s++) {
    sc[s] = s + 1 + (s >= 4 ? 8 : 0);
    mn[s] = 2 * s + (s >= 4 ? 33 : 0);
  }
  uint8_t *S = k4 + 4;
  for (int s = 0; s < 4; s++) {
    S[s] = (uint8_t)(sc[s] | ((sc[s + 4] >> 4) << 6));
    S[s + 4] = (uint8_t)(mn[s] | ((mn[s + 4] >> 4) << 6));
    S[s + 8] = (uint8_t)((sc[s + 4] & 15) | ((mn[s + 4] & 15) << 4));
  }
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++)
      k4[16 + 32 * c + l] = (uint8_t)(((l + 2 * c) & 15) | (((l + 2 * c + 1) & 15) << 4));
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q4_K, k4, y, 256), 0);
  for (int s = 0; s < 8; s++)
    for (int l = 0; l < 32; l++)
      assert_true(y[32 * s + l] == (float)(sc[s] * ((l + s) & 15)) - 0.5f * (float)mn[s]);

  /* Q6_K: d = 0.25, scales[s] = s - 8 (negative ones too), element i has code i & 63, built
   * bit by bit from the layout: half h = i / 128, e = i % 128, g = e / 32, l = e % 32. */
  uint8_t k6[210];
  memset(k6, 0, sizeof k6);
  for (int i = 0; i < 256; i++) {
    int q = i & 63, h = i / 128, e = i % 128, g = e / 32, l = e % 32;
    int qlb = 64 * h + 32 * (g % 2) + l;
    k6[qlb] |= (uint8_t)((q & 15) << (g >= 2 ? 4 : 0));
    k6[128 + 32 * h + l] |= (uint8_t)((q >> 4) << (2 * g));
  }
  for (int s = 0; s < 16; s++) k6[192 + s] = (uint8_t)(int8_t)(s - 8);
  put_f16(k6 + 208, 0.25f);
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q6_K, k6, y, 256), 0);
  for (int i = 0; i < 256; i++) assert_true(y[i] == 0.25f * (float)((i / 16 - 8) * ((i & 63) - 32)));

  /* two blocks: the second block's output lands after the first */
  uint8_t two[68];
  memcpy(two, q8, 34);
  memcpy(two + 34, q8, 34);
  two[34] = 0;
  two[35] = 0x40; /* d = 2 */
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q8_0, two, y, 64), 0);
  assert_true(y[31] == 0.5f * 15.0f && y[63] == 2.0f * 15.0f);
}

static void test_bad_arguments(void **state) {
  (void)state;
  float x[512] = {0};
  uint8_t q[1024];
  static const int bad_types[] = {-1, 9, 15, 16, 21, 22, 29, 31, 1000};
  for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
    assert_int_equal(hs_quant_dequantize(bad_types[i], q, x, 32), HS_EINVAL);
    assert_int_equal(hs_quant_quantize(bad_types[i], x, q, 32), HS_EINVAL);
    assert_int_equal(hs_quant_block_elems(bad_types[i]), 0);
    assert_int_equal(hs_quant_row_bytes(bad_types[i], 32), 0);
  }
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q8_0, q, x, 31), HS_EINVAL);
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q4_0, q, x, 48), HS_EINVAL);
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q4_K, q, x, 128), HS_EINVAL);
  assert_int_equal(hs_quant_quantize(HS_QUANT_Q6_K, x, q, 257), HS_EINVAL);
  assert_int_equal(hs_quant_quantize(HS_QUANT_Q8_0, NULL, q, 32), HS_EINVAL);
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q8_0, q, NULL, 32), HS_EINVAL);
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q8_0, NULL, NULL, 0), 0);
  assert_int_equal(hs_quant_row_bytes(HS_QUANT_Q6_K, 512), 420);
  assert_int_equal(hs_quant_row_bytes(HS_QUANT_Q4_K, 256), 144);
  assert_int_equal(hs_quant_row_bytes(HS_QUANT_Q4_0, 64), 36);
  assert_int_equal(hs_quant_row_bytes(HS_QUANT_BF16, 3), 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fp16_specials),
    cmocka_unit_test(test_fp16_all_patterns),
    cmocka_unit_test(test_bf16),
    cmocka_unit_test(test_round_trip_float_types),
    cmocka_unit_test(test_round_trip_q8_0),
    cmocka_unit_test(test_round_trip_4_and_6_bit),
    cmocka_unit_test(test_round_trip_exact_cases),
    cmocka_unit_test(test_dequant_hand_built),
    cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
