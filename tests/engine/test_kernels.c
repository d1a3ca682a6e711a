/* test_kernels.c: the CPU matrix kernels (src/engine/cpu/).
 *
 * 1. The reference kernels against an independent computation: the weights decoded with
 *    hs_quant_dequantize, the activations kept in float, dot products in double. Tolerance: for
 *    float weight types the f32 accumulation bound (n + 4) * 2^-23 * sum|w x|; for quantized
 *    types, in addition, the activation quantization error sum_k |w_k| * d_x(k) / 2 (each code is
 *    within half a step d_x = amax/127 of its block), so a single wrong block or sub-block scale
 *    exceeds it.
 * 2. Every ISA path the CPU supports against the reference on random weights (random codes over
 *    the whole code range, including -128 and negative Q6_K scales), odd shapes (n_rows not a
 *    multiple of any tile, n_tok 1..17, n_cols one block, several blocks, groups plus a partial
 *    group). The integer block sums are exact in both, so they differ only in float summation
 *    order: tolerance (n_blocks + 24) * 2^-23 * sum_k |w_k| (|x_k| + d_x(k)).
 * 3. Batch invariance, bit for bit: y[t][r] of every ISA is the same whether computed with 64
 *    tokens, 7, or 1, with 1, 2 or 3 threads, and for a sub-range of rows starting at an odd row
 *    (so (r, t) sits at every position of the register tiles).
 * 4. Activation quantization: every ISA writes the same bytes (also for zeros, huge values,
 *    infinities and NaN), and the lane layouts hold the same codes, sums and scales as the
 *    reference layout.
 * 5. Arguments, ldy > n_rows, scratch reuse (a second call of the same shape allocates nothing),
 *    out-of-memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/threadpool.h"
#include "engine/cpu/kernels.h"
#include "engine/cpu/types.h"
#include "hswarm/error.h"
#include "hswarm/quant.h"
#include "support/counting_alloc.h"

static const int all_types[] = {HS_QUANT_F32,  HS_QUANT_F16,  HS_QUANT_BF16, HS_QUANT_Q8_0,
                                HS_QUANT_Q4_0, HS_QUANT_Q4_K, HS_QUANT_Q6_K, HS_QUANT_Q4_1,
                                HS_QUANT_Q5_0, HS_QUANT_Q5_1, HS_QUANT_IQ4_NL, HS_QUANT_Q2_K,
                                HS_QUANT_Q3_K, HS_QUANT_Q5_K, HS_QUANT_IQ4_XS};
#define N_TYPES (sizeof all_types / sizeof *all_types)

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 32);
}

static float rng_unit(void) { return (float)rng_next() / 4294967296.0f; }

static float rng_normal(float sigma) {
  float s = 0.0f;
  for (int i = 0; i < 4; i++) s += rng_unit();
  return (s - 2.0f) * sigma * 1.7320508f;
}

static void put_f16(uint8_t *p, float v) {
  uint16_t h = hs_quant_f32_to_fp16(v);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}

/* Random weights: n_rows rows of n_cols. Quantized types get random code bytes (the full range)
 * with random finite scales; float types random normal values. Caller frees. */
static uint8_t *random_weights(int type, size_t n_rows, size_t n_cols) {
  size_t rb = hs_quant_row_bytes(type, n_cols);
  uint8_t *w = malloc(rb * n_rows + 1);
  assert_non_null(w);
  for (size_t i = 0; i < rb * n_rows; i++) w[i] = (uint8_t)rng_next();
  size_t be = hs_quant_block_elems(type), bb = hs_quant_block_bytes(type);
  size_t nb = n_cols / be * n_rows;
  for (size_t b = 0; b < nb; b++) {
    uint8_t *p = w + b * bb;
    float s = (rng_unit() < 0.5f ? -1.0f : 1.0f) * (0.002f + 0.05f * rng_unit());
    switch (type) {
    case HS_QUANT_F32: {
      float v = rng_normal(0.5f);
      memcpy(p, &v, 4);
      break;
    }
    case HS_QUANT_F16: put_f16(p, rng_normal(0.5f)); break;
    case HS_QUANT_BF16: {
      uint16_t h = hs_quant_f32_to_bf16(rng_normal(0.5f));
      p[0] = (uint8_t)h;
      p[1] = (uint8_t)(h >> 8);
      break;
    }
    case HS_QUANT_Q8_0:
    case HS_QUANT_Q4_0:
    case HS_QUANT_Q5_0:
    case HS_QUANT_IQ4_NL: put_f16(p, s); break;
    case HS_QUANT_Q4_1:
    case HS_QUANT_Q5_1:
      put_f16(p, fabsf(s));
      put_f16(p + 2, s * 8.0f); /* a min of either sign */
      break;
    case HS_QUANT_Q4_K:
      put_f16(p, fabsf(s));
      put_f16(p + 2, fabsf(s) * 0.5f);
      break;
    case HS_QUANT_Q6_K: put_f16(p + 208, s * 0.05f); break;
    case HS_QUANT_Q2_K:
      put_f16(p + 80, fabsf(s) * 0.2f);
      put_f16(p + 82, fabsf(s) * 0.1f);
      break;
    case HS_QUANT_Q3_K: put_f16(p + 108, s * 0.05f); break;
    case HS_QUANT_Q5_K:
      put_f16(p, fabsf(s) * 0.1f);
      put_f16(p + 2, fabsf(s) * 0.5f);
      break;
    case HS_QUANT_IQ4_XS: put_f16(p, s * 0.01f); break;
    default: fail();
    }
  }
  return w;
}

static float *random_x(size_t n) {
  float *x = malloc(n * sizeof *x + 4);
  assert_non_null(x);
  for (size_t i = 0; i < n; i++) x[i] = rng_normal(1.0f);
  /* some blocks with one large outlier, as real activations have */
  for (size_t i = 0; i < n; i += 97) x[i] *= 8.0f;
  return x;
}

static size_t act_block(int type) {
  switch (type) {
  case HS_QUANT_Q8_0: case HS_QUANT_Q4_0: case HS_QUANT_Q4_1: case HS_QUANT_Q5_0:
  case HS_QUANT_Q5_1: case HS_QUANT_IQ4_NL: return 32;
  case HS_QUANT_Q4_K: case HS_QUANT_Q6_K: case HS_QUANT_Q2_K: case HS_QUANT_Q3_K:
  case HS_QUANT_Q5_K: case HS_QUANT_IQ4_XS: return 256;
  default: return 0;
  }
}

/* For row r, token t, from the dequantized row wf: the exact dot in double; the dot with the
 * activations as the kernels quantize them (xq = q * d, the rule of act_quant.c written out
 * again here); sum_k |w_k x_k|; sum_k |w_k| (|x_k| + dx_k); sum_k |w_k| dx_k / 2. */
typedef struct bounds {
  double exact, exact_q, abs_wx, abs_wxq, quant;
} bounds;

static bounds row_bounds(int type, const float *wf, const float *x, size_t n_cols) {
  bounds b = {0, 0, 0, 0, 0};
  size_t ab = act_block(type);
  for (size_t k0 = 0; k0 < n_cols; k0 += ab ? ab : n_cols) {
    size_t n = ab ? ab : n_cols;
    float d = 0.0f, id = 0.0f;
    if (ab) {
      float amax = 0.0f;
      for (size_t k = k0; k < k0 + n; k++) amax = fmaxf(amax, fabsf(x[k]));
      d = amax / 127.0f;
      id = d != 0.0f ? 1.0f / d : 0.0f;
    }
    /* the codes come from d; blocks of 32 keep d rounded to fp16 (act_quant.c) */
    float kept = ab == 32 ? hs_quant_fp16_to_f32(hs_quant_f32_to_fp16(d)) : d;
    for (size_t k = k0; k < k0 + n; k++) {
      double xq = ab ? (double)nearbyintf(x[k] * id) * (double)kept : (double)x[k];
      b.exact += (double)wf[k] * (double)x[k];
      b.exact_q += (double)wf[k] * xq;
      b.abs_wx += fabs((double)wf[k] * (double)x[k]);
      b.abs_wxq += fabs((double)wf[k]) * (fabs((double)x[k]) + (double)d);
      b.quant += fabs((double)wf[k]) * ((double)d * 0.5 + 127.0 * fabs((double)kept - d));
    }
  }
  return b;
}

static int isa_list(hs_cpu_isa *out) {
  int n = 0;
  for (int i = HS_CPU_ISA_REF; i <= HS_CPU_ISA_AVX512; i++)
    if (hs_cpu_isa_supported((hs_cpu_isa)i)) out[n++] = (hs_cpu_isa)i;
  return n;
}

/* ---- 1. reference against dequantize + double ---- */

static void test_ref_vs_dequant(void **state) {
  (void)state;
  hs_cpu_scratch s = {0};
  for (size_t ti = 0; ti < N_TYPES; ti++) {
    int type = all_types[ti];
    size_t be = hs_quant_block_elems(type) > 1 ? hs_quant_block_elems(type) : 16;
    size_t cols_list[] = {be, 3 * be, type == HS_QUANT_F32 ? 37 : 5 * be};
    for (size_t ci = 0; ci < 3; ci++) {
      size_t n_cols = cols_list[ci], n_rows = 6, n_tok = 3;
      uint8_t *w = random_weights(type, n_rows, n_cols);
      float *x = random_x(n_cols * n_tok);
      float *wf = malloc(n_cols * sizeof *wf);
      float y[18];
      assert_int_equal(hs_cpu_matmul_isa(HS_CPU_ISA_REF, NULL, &s, type, w, n_rows, n_cols, x,
                                         n_tok, y, n_rows), 0);
      size_t rb = hs_quant_row_bytes(type, n_cols);
      for (size_t r = 0; r < n_rows; r++) {
        assert_int_equal(hs_quant_dequantize(type, w + r * rb, wf, n_cols), 0);
        for (size_t t = 0; t < n_tok; t++) {
          bounds b = row_bounds(type, wf, x + t * n_cols, n_cols);
          double nb = (double)(act_block(type) ? n_cols / act_block(type) : n_cols);
          double tol_q = (nb + 4) * 0x1p-23 * b.abs_wxq + 1e-30;
          double tol = b.quant * 1.001 + tol_q;
          double got = y[t * n_rows + r];
          if (fabs(got - b.exact) > tol)
            fail_msg("type %d cols %zu r %zu t %zu: ref %.9g exact %.9g tol %.3g", type, n_cols, r,
                     t, got, b.exact, tol);
          if (fabs(got - b.exact_q) > tol_q)
            fail_msg("type %d cols %zu r %zu t %zu: ref %.9g exact with quantized x %.9g tol %.3g",
                     type, n_cols, r, t, got, b.exact_q, tol_q);
        }
      }
      free(w);
      free(x);
      free(wf);
    }
  }
  hs_cpu_scratch_free(&s);
}

/* The tight bound is not vacuous: one corrupted sub-block is far outside it. */
static void test_ref_check_is_sensitive(void **state) {
  (void)state;
  static const int types[] = {HS_QUANT_Q8_0, HS_QUANT_Q4_0, HS_QUANT_Q4_K, HS_QUANT_Q6_K,
                              HS_QUANT_Q4_1, HS_QUANT_Q5_0, HS_QUANT_Q5_1, HS_QUANT_IQ4_NL,
                              HS_QUANT_Q2_K, HS_QUANT_Q3_K, HS_QUANT_Q5_K, HS_QUANT_IQ4_XS};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    int type = types[i];
    size_t n_cols = 2 * 256;
    uint8_t *w = random_weights(type, 1, n_cols);
    float *x = random_x(n_cols);
    float *wf = malloc(n_cols * sizeof *wf);
    assert_int_equal(hs_quant_dequantize(type, w, wf, n_cols), 0);
    bounds b = row_bounds(type, wf, x, n_cols);
    /* the dot with one 32-element sub-block's weights negated (a wrong sign or sub-block scale) */
    for (size_t k = 32; k < 64; k++) wf[k] = -wf[k];
    bounds c = row_bounds(type, wf, x, n_cols);
    double tol = (n_cols / act_block(type) + 4) * 0x1p-23 * b.abs_wxq;
    assert_true(fabs(c.exact_q - b.exact_q) > 100 * tol);
    free(w);
    free(x);
    free(wf);
  }
}

/* ---- 2. each ISA against the reference ---- */

static void check_isa_against_ref(hs_cpu_isa isa, int type, size_t n_rows, size_t n_cols,
                                  size_t n_tok, hs_threadpool *tp, hs_cpu_scratch *s) {
  uint8_t *w = random_weights(type, n_rows, n_cols);
  float *x = random_x(n_cols * n_tok);
  float *y_ref = malloc(n_rows * n_tok * sizeof(float));
  float *y = malloc(n_rows * n_tok * sizeof(float));
  float *wf = malloc(n_cols * sizeof(float));
  assert_int_equal(hs_cpu_matmul_isa(HS_CPU_ISA_REF, NULL, s, type, w, n_rows, n_cols, x, n_tok,
                                     y_ref, n_rows), 0);
  int rc = hs_cpu_matmul_isa(isa, tp, s, type, w, n_rows, n_cols, x, n_tok, y, n_rows);
  if (rc) fail_msg("isa %s type %d: %s", hs_cpu_isa_name(isa), type, hs_cpu_last_error());
  size_t rb = hs_quant_row_bytes(type, n_cols);
  size_t ab = act_block(type);
  double nb = (double)(ab ? n_cols / 32 : n_cols);
  for (size_t r = 0; r < n_rows; r++) {
    assert_int_equal(hs_quant_dequantize(type, w + r * rb, wf, n_cols), 0);
    for (size_t t = 0; t < n_tok; t++) {
      bounds b = row_bounds(type, wf, x + t * n_cols, n_cols);
      double tol = (nb + 24) * 0x1p-23 * b.abs_wxq + 1e-30;
      double d = fabs((double)y[t * n_rows + r] - (double)y_ref[t * n_rows + r]);
      if (!(d <= tol))
        fail_msg("isa %s type %d rows %zu cols %zu toks %zu: y[%zu][%zu] = %.9g, ref %.9g, tol %.3g",
                 hs_cpu_isa_name(isa), type, n_rows, n_cols, n_tok, t, r, y[t * n_rows + r],
                 y_ref[t * n_rows + r], tol);
    }
  }
  free(w);
  free(x);
  free(y_ref);
  free(y);
  free(wf);
}

static void test_isa_vs_ref(void **state) {
  (void)state;
  hs_cpu_isa isas[3];
  int n_isa = isa_list(isas);
  hs_threadpool *tp = NULL;
  assert_int_equal(hs_threadpool_create(2, &tp), 0);
  hs_cpu_scratch s = {0};
  for (int ii = 0; ii < n_isa; ii++) {
    if (isas[ii] == HS_CPU_ISA_REF) continue;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
      int type = all_types[ti];
      size_t be = hs_quant_block_elems(type);
      size_t cols[4];
      if (be == 1) {
        cols[0] = 1; cols[1] = 16; cols[2] = 37; cols[3] = 1040;
      } else if (be == 32) {
        cols[0] = 32; cols[1] = 96; cols[2] = 512; cols[3] = 1024 + 160;
      } else {
        cols[0] = 256; cols[1] = 512; cols[2] = 768; cols[3] = 2816;
      }
      for (int ci = 0; ci < 4; ci++) {
        for (size_t n_tok = 1; n_tok <= 17; n_tok += (ci == 3 ? 8 : 1)) {
          size_t n_rows = 1 + (n_tok * 7 + (size_t)ci * 5) % 23; /* 1..23, odd shapes */
          check_isa_against_ref(isas[ii], type, n_rows, cols[ci], n_tok, n_tok % 2 ? tp : NULL, &s);
        }
      }
      /* a tall matrix so several panels and tasks are used */
      check_isa_against_ref(isas[ii], type, 301, be == 1 ? 64 : 2 * (be == 32 ? 512 : 256), 9, tp, &s);
    }
  }
  hs_cpu_scratch_free(&s);
  hs_threadpool_destroy(tp);
}

/* ---- 3. batch invariance ---- */

static void test_batch_invariance(void **state) {
  (void)state;
  hs_cpu_isa isas[3];
  int n_isa = isa_list(isas);
  hs_threadpool *tp2 = NULL, *tp3 = NULL;
  assert_int_equal(hs_threadpool_create(2, &tp2), 0);
  assert_int_equal(hs_threadpool_create(3, &tp3), 0);
  hs_cpu_scratch s = {0};
  const size_t n_rows = 37, n_all = 64;
  for (int ii = 0; ii < n_isa; ii++) {
    for (size_t ti = 0; ti < N_TYPES; ti++) {
      int type = all_types[ti];
      size_t be = hs_quant_block_elems(type);
      size_t n_cols = be == 1 ? 200 : be == 32 ? 1024 + 96 : 1280;
      size_t rb = hs_quant_row_bytes(type, n_cols);
      uint8_t *w = random_weights(type, n_rows, n_cols);
      float *x = random_x(n_cols * n_all);
      float *y64 = malloc(n_rows * n_all * sizeof(float));
      float *y = malloc(n_rows * n_all * sizeof(float));
      assert_int_equal(hs_cpu_matmul_isa(isas[ii], NULL, &s, type, w, n_rows, n_cols, x, n_all,
                                         y64, n_rows), 0);
      hs_threadpool *pools[3] = {NULL, tp2, tp3};
      for (int pi = 0; pi < 3; pi++) {
        /* all 64 tokens again */
        assert_int_equal(hs_cpu_matmul_isa(isas[ii], pools[pi], &s, type, w, n_rows, n_cols, x,
                                           n_all, y, n_rows), 0);
        assert_memory_equal(y, y64, n_rows * n_all * sizeof(float));
        /* 7 tokens starting at token 5 */
        assert_int_equal(hs_cpu_matmul_isa(isas[ii], pools[pi], &s, type, w, n_rows, n_cols,
                                           x + 5 * n_cols, 7, y, n_rows), 0);
        assert_memory_equal(y, y64 + 5 * n_rows, 7 * n_rows * sizeof(float));
        /* one token at a time */
        for (size_t t = 0; t < n_all; t += 9) {
          assert_int_equal(hs_cpu_matmul_isa(isas[ii], pools[pi], &s, type, w, n_rows, n_cols,
                                             x + t * n_cols, 1, y, n_rows), 0);
          assert_memory_equal(y, y64 + t * n_rows, n_rows * sizeof(float));
        }
        /* rows 3..36 only, 13 tokens from token 50: every (r, t) moves within the tiles */
        size_t r0 = 3 + (size_t)pi * 2;
        assert_int_equal(hs_cpu_matmul_isa(isas[ii], pools[pi], &s, type, w + r0 * rb,
                                           n_rows - r0, n_cols, x + 50 * n_cols, 13, y, n_rows),
                         0);
        for (size_t t = 0; t < 13; t++)
          assert_memory_equal(y + t * n_rows, y64 + (50 + t) * n_rows + r0,
                              (n_rows - r0) * sizeof(float));
      }
      free(w);
      free(x);
      free(y64);
      free(y);
    }
  }
  hs_cpu_scratch_free(&s);
  hs_threadpool_destroy(tp2);
  hs_threadpool_destroy(tp3);
}

/* ---- 4. activation quantization ---- */

static const hs_cpu_act_spec specs[] = {
    {HS_CPU_ACT_REF_Q8, HS_CPU_SIDE_NONE, 32},  {HS_CPU_ACT_REF_K, HS_CPU_SIDE_NONE, 256},
    {HS_CPU_ACT_L32, HS_CPU_SIDE_CORR128, 32},  {HS_CPU_ACT_L32, HS_CPU_SIDE_CORR8, 32},
    {HS_CPU_ACT_L32, HS_CPU_SIDE_ASUM, 256},    {HS_CPU_ACT_L32, HS_CPU_SIDE_NONE, 32},
    {HS_CPU_ACT_L16, HS_CPU_SIDE_CORR32, 256},  {HS_CPU_ACT_V32K, HS_CPU_SIDE_ASUM, 256},
    {HS_CPU_ACT_V16, HS_CPU_SIDE_CORR32, 256},  {HS_CPU_ACT_V32, HS_CPU_SIDE_CORR128, 32},
};

static void test_act_quant_isas_agree(void **state) {
  (void)state;
  hs_cpu_isa isas[3];
  int n_isa = isa_list(isas);
  const size_t n_cols = 1280, n_tok = 3;
  float *x = random_x(n_cols * n_tok);
  /* special values: a zero block, huge values, infinities, NaN, ties at .5 after scaling */
  for (size_t i = 0; i < 256; i++) x[256 + i] = 0.0f;
  x[600] = 3e38f;
  x[601] = -3e38f;
  x[700] = INFINITY;
  x[900] = NAN;
  for (size_t i = 0; i < 32; i++) x[n_cols + 64 + i] = (float)i - 15.5f; /* many exact halves */
  x[n_cols + 64 + 31] = 127.0f;
  for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
    size_t rb = hs_cpu_act_row_bytes(&specs[si], n_cols);
    uint8_t *a0 = malloc(rb * n_tok), *a1 = malloc(rb * n_tok);
    memset(a0, 0xAA, rb * n_tok);
    hs_cpu_act_quantize(HS_CPU_ISA_REF, &specs[si], x, n_cols, 0, n_tok, a0);
    for (int ii = 0; ii < n_isa; ii++) {
      memset(a1, 0x55, rb * n_tok);
      hs_cpu_act_quantize(isas[ii], &specs[si], x, n_cols, 0, n_tok, a1);
      /* compare the meaningful bytes: rows are padded to 64 bytes */
      size_t used = specs[si].fmt == HS_CPU_ACT_REF_Q8 ? n_cols / 32 * HS_CPU_REF_Q8_BLOCK_BYTES
                    : specs[si].fmt == HS_CPU_ACT_REF_K ? n_cols / 256 * HS_CPU_REF_K_BLOCK_BYTES
                                                        : rb;
      for (size_t t = 0; t < n_tok; t++)
        if (memcmp(a0 + t * rb, a1 + t * rb, used) != 0)
          fail_msg("spec %zu isa %s token %zu differs", si, hs_cpu_isa_name(isas[ii]), t);
    }
    free(a0);
    free(a1);
  }
  free(x);
}

/* The lane layouts hold the reference layout's codes, sums and scales, in the documented places. */
static void test_act_lane_layout(void **state) {
  (void)state;
  const size_t n_cols = 1280; /* 2.5 groups of 512, 5 groups of 256 */
  float *x = random_x(n_cols);
  hs_cpu_act_spec rq = {HS_CPU_ACT_REF_Q8, HS_CPU_SIDE_NONE, 32};
  hs_cpu_act_spec rk = {HS_CPU_ACT_REF_K, HS_CPU_SIDE_NONE, 256};
  uint8_t *aq = malloc(hs_cpu_act_row_bytes(&rq, n_cols));
  uint8_t *ak = malloc(hs_cpu_act_row_bytes(&rk, n_cols));
  hs_cpu_act_quantize(HS_CPU_ISA_REF, &rq, x, n_cols, 0, 1, aq);
  hs_cpu_act_quantize(HS_CPU_ISA_REF, &rk, x, n_cols, 0, 1, ak);
  hs_cpu_isa isas[3];
  int n_isa = isa_list(isas);
  for (int ii = 0; ii < n_isa; ii++) {
    /* L32 with 32-element scales, -128 * sum */
    hs_cpu_act_spec s32 = {HS_CPU_ACT_L32, HS_CPU_SIDE_CORR128, 32};
    uint8_t *l = malloc(hs_cpu_act_row_bytes(&s32, n_cols));
    hs_cpu_act_quantize(isas[ii], &s32, x, n_cols, 0, 1, l);
    assert_int_equal(hs_cpu_act_row_bytes(&s32, n_cols), 3 * HS_CPU_L32_GROUP_BYTES);
    for (size_t e = 0; e < 1536; e++) {
      size_t g = e / 512, c = (e % 512) / 32, i = e % 32;
      int8_t v = (int8_t)l[g * HS_CPU_L32_GROUP_BYTES + 64 * (i / 4) + 4 * c + i % 4];
      int8_t want = e < n_cols ? (int8_t)aq[(e / 32) * 40 + 8 + e % 32] : 0;
      assert_int_equal(v, want);
      if (i == 0) {
        int32_t side, sum = 0;
        float dx, dref = 0.0f;
        memcpy(&side, l + g * HS_CPU_L32_GROUP_BYTES + 512 + 4 * c, 4);
        memcpy(&dx, l + g * HS_CPU_L32_GROUP_BYTES + 576 + 4 * c, 4);
        if (e < n_cols) {
          memcpy(&sum, aq + (e / 32) * 40 + 4, 4);
          memcpy(&dref, aq + (e / 32) * 40, 4);
        }
        assert_int_equal(side, -128 * sum);
        assert_true(memcmp(&dx, &dref, 4) == 0);
      }
    }
    free(l);
    /* L16 with 256-element scales, -32 * sum of 16 */
    hs_cpu_act_spec s16 = {HS_CPU_ACT_L16, HS_CPU_SIDE_CORR32, 256};
    l = malloc(hs_cpu_act_row_bytes(&s16, n_cols));
    hs_cpu_act_quantize(isas[ii], &s16, x, n_cols, 0, 1, l);
    for (size_t e = 0; e < n_cols; e++) {
      size_t g = e / 256, c = (e % 256) / 16, i = e % 16;
      int8_t v = (int8_t)l[g * HS_CPU_L16_GROUP_BYTES + 64 * (i / 4) + 4 * c + i % 4];
      assert_int_equal(v, (int8_t)ak[(e / 256) * 292 + 36 + e % 256]);
      if (i == 0) {
        int32_t side;
        int16_t bs;
        float dx, dref;
        memcpy(&side, l + g * HS_CPU_L16_GROUP_BYTES + 256 + 4 * c, 4);
        memcpy(&bs, ak + (e / 256) * 292 + 4 + 2 * c, 2);
        memcpy(&dx, l + g * HS_CPU_L16_GROUP_BYTES + 320 + 4 * c, 4);
        memcpy(&dref, ak + (e / 256) * 292, 4);
        assert_int_equal(side, -32 * bs);
        assert_true(memcmp(&dx, &dref, 4) == 0);
      }
    }
    free(l);
    /* L32 with 256-element scales and float sums (Q4_K) */
    hs_cpu_act_spec sk = {HS_CPU_ACT_L32, HS_CPU_SIDE_ASUM, 256};
    l = malloc(hs_cpu_act_row_bytes(&sk, n_cols));
    hs_cpu_act_quantize(isas[ii], &sk, x, n_cols, 0, 1, l);
    for (size_t e = 0; e < n_cols; e += 32) {
      size_t g = e / 512, c = (e % 512) / 32;
      float fs, dx, dref;
      int16_t b0, b1;
      memcpy(&fs, l + g * HS_CPU_L32_GROUP_BYTES + 512 + 4 * c, 4);
      memcpy(&dx, l + g * HS_CPU_L32_GROUP_BYTES + 576 + 4 * c, 4);
      memcpy(&b0, ak + (e / 256) * 292 + 4 + 2 * ((e % 256) / 16), 2);
      memcpy(&b1, ak + (e / 256) * 292 + 6 + 2 * ((e % 256) / 16), 2);
      memcpy(&dref, ak + (e / 256) * 292, 4);
      assert_true(fs == (float)(b0 + b1));
      assert_true(memcmp(&dx, &dref, 4) == 0);
    }
    free(l);
  }
  /* the codes: round(x / d) within half a step, |q| <= 127, the block maximum maps to +-127 */
  for (size_t b = 0; b < n_cols / 32; b++) {
    float d;
    memcpy(&d, aq + b * 40, 4);
    float amax = 0.0f;
    for (size_t i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
    const float d32 = amax / 127.0f; /* the codes' scale; the block keeps it rounded to fp16 */
    assert_true(d == hs_quant_fp16_to_f32(hs_quant_f32_to_fp16(d32)));
    for (size_t i = 0; i < 32; i++) {
      int8_t q = (int8_t)aq[b * 40 + 8 + i];
      assert_true(q != -128);
      assert_true(fabsf((float)q * d32 - x[32 * b + i]) <= 0.5f * d32 * 1.0001f);
      if (fabsf(x[32 * b + i]) == amax) assert_int_equal(abs(q), 127);
    }
  }
  free(x);
  free(aq);
  free(ak);
}

/* The vector formats hold the lane formats' codes (each chunk contiguous, V32K's chunks in the
 * slots of hs_cpu_v32k_slot) and the same side vector and scales. */
static void test_act_vector_layout(void **state) {
  (void)state;
  const size_t n_cols = 1280;
  float *x = random_x(n_cols);
  static const struct {
    hs_cpu_act_spec v, l;
  } pairs[] = {
      {{HS_CPU_ACT_V32K, HS_CPU_SIDE_ASUM, 256}, {HS_CPU_ACT_L32, HS_CPU_SIDE_ASUM, 256}},
      {{HS_CPU_ACT_V32, HS_CPU_SIDE_CORR128, 32}, {HS_CPU_ACT_L32, HS_CPU_SIDE_CORR128, 32}},
      {{HS_CPU_ACT_V16, HS_CPU_SIDE_CORR32, 256}, {HS_CPU_ACT_L16, HS_CPU_SIDE_CORR32, 256}},
  };
  hs_cpu_isa isas[3];
  int n_isa = isa_list(isas);
  for (int ii = 0; ii < n_isa; ii++)
    for (size_t pi = 0; pi < sizeof pairs / sizeof *pairs; pi++) {
      size_t rb = hs_cpu_act_row_bytes(&pairs[pi].v, n_cols);
      assert_int_equal(rb, hs_cpu_act_row_bytes(&pairs[pi].l, n_cols));
      uint8_t *v = malloc(rb), *l = malloc(rb);
      memset(v, 0x5a, rb);
      hs_cpu_act_quantize(isas[ii], &pairs[pi].v, x, n_cols, 0, 1, v);
      hs_cpu_act_quantize(isas[ii], &pairs[pi].l, x, n_cols, 0, 1, l);
      const size_t chunk = pairs[pi].v.fmt == HS_CPU_ACT_V16 ? 16 : 32;
      const size_t gb = chunk == 16 ? HS_CPU_L16_GROUP_BYTES : HS_CPU_L32_GROUP_BYTES;
      for (size_t g = 0; g < rb / gb; g++) {
        const uint8_t *vg = v + g * gb, *lg = l + g * gb;
        for (size_t c = 0; c < 16; c++) {
          size_t slot = pairs[pi].v.fmt == HS_CPU_ACT_V32K ? hs_cpu_v32k_slot((unsigned)c) : c;
          for (size_t i = 0; i < chunk; i++)
            assert_int_equal(vg[chunk * slot + i], lg[64 * (i / 4) + 4 * c + i % 4]);
        }
        assert_memory_equal(vg + 16 * chunk, lg + 16 * chunk, 128); /* side and scales */
      }
      free(v);
      free(l);
    }
  /* the slot permutation: chunks 0, 2, 1, 3 in each four slots */
  const unsigned want[16] = {0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15};
  for (unsigned c = 0; c < 16; c++) assert_int_equal(hs_cpu_v32k_slot(c), want[c]);
  free(x);
}

/* hs_cpu_matmul_multi gives, bit for bit, what separate calls give, for mixed types (formats
 * shared or not), decode-sized and prefill-sized calls, with and without a pool. */
static void test_matmul_multi(void **state) {
  (void)state;
  hs_threadpool *tp = NULL;
  assert_int_equal(hs_threadpool_create(2, &tp), 0);
  hs_cpu_scratch s = {0};
  const size_t n_cols = 512;
  const int types[4] = {HS_QUANT_Q4_K, HS_QUANT_Q6_K, HS_QUANT_Q4_K, HS_QUANT_F32};
  const size_t rows[4] = {67, 16, 5, 9};
  uint8_t *w[4];
  for (int i = 0; i < 4; i++) w[i] = random_weights(types[i], rows[i], n_cols);
  const size_t toks[3] = {1, 2, 11};
  for (int ti = 0; ti < 3; ti++) {
    size_t n_tok = toks[ti];
    float *x = random_x(n_cols * n_tok);
    for (int pi = 0; pi < 2; pi++) {
      hs_threadpool *pool = pi ? tp : NULL;
      for (size_t n = 1; n <= 4; n++) {
        float *ys[4], *want[4];
        hs_cpu_mm mm[4];
        for (size_t i = 0; i < n; i++) {
          size_t ldy = rows[i] + 3;
          ys[i] = malloc(ldy * n_tok * sizeof(float));
          want[i] = malloc(ldy * n_tok * sizeof(float));
          memset(ys[i], 0, ldy * n_tok * sizeof(float));
          memset(want[i], 0, ldy * n_tok * sizeof(float));
          assert_int_equal(hs_cpu_matmul(pool, &s, types[i], w[i], rows[i], n_cols, x, n_tok,
                                         want[i], ldy), 0);
          mm[i] = (hs_cpu_mm){types[i], w[i], rows[i], ys[i], ldy};
        }
        assert_int_equal(hs_cpu_matmul_multi(pool, &s, mm, n, n_cols, x, n_tok), 0);
        for (size_t i = 0; i < n; i++) {
          assert_memory_equal(ys[i], want[i], (rows[i] + 3) * n_tok * sizeof(float));
          free(ys[i]);
          free(want[i]);
        }
      }
    }
    free(x);
  }
  hs_cpu_mm bad = {HS_QUANT_Q4_K, w[0], rows[0], NULL, rows[0]};
  float xx[512] = {0};
  assert_int_equal(hs_cpu_matmul_multi(tp, &s, &bad, 1, n_cols, xx, 1), HS_EINVAL);
  assert_int_equal(hs_cpu_matmul_multi(tp, &s, &bad, 0, n_cols, xx, 1), HS_EINVAL);
  assert_int_equal(hs_cpu_matmul_multi(tp, &s, &bad, HS_CPU_MM_MAX + 1, n_cols, xx, 1), HS_EINVAL);
  for (int i = 0; i < 4; i++) free(w[i]);
  hs_cpu_scratch_free(&s);
  hs_threadpool_destroy(tp);
}

/* ---- 5. arguments, layout, scratch ---- */

static void test_args(void **state) {
  (void)state;
  hs_cpu_scratch s = {0};
  float x[64] = {0}, y[8];
  uint8_t w[4096] = {0};
  assert_int_equal(hs_cpu_matmul(NULL, &s, 9, w, 1, 32, x, 1, y, 1), HS_EINVAL);  /* no type 9 (Q8_1) */
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_Q8_0, w, 1, 48, x, 1, y, 1), HS_EINVAL);
  assert_msg_has(hs_cpu_last_error(), "48");
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_Q4_K, w, 1, 32, x, 1, y, 1), HS_EINVAL);
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_F32, w, 1, 0, x, 1, y, 1), HS_EINVAL);
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_F32, NULL, 1, 8, x, 1, y, 1), HS_EINVAL);
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_F32, w, 1, 8, NULL, 1, y, 1), HS_EINVAL);
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_F32, w, 1, 8, x, 1, NULL, 1), HS_EINVAL);
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_F32, w, 4, 8, x, 1, y, 3), HS_EINVAL);
  assert_int_equal(hs_cpu_matmul_isa((hs_cpu_isa)7, NULL, &s, HS_QUANT_F32, w, 1, 8, x, 1, y, 1),
                   HS_EINVAL);
  /* nothing to do is not an error */
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_F32, w, 0, 8, x, 1, y, 1), 0);
  assert_int_equal(hs_cpu_matmul(NULL, &s, HS_QUANT_F32, w, 1, 8, x, 0, y, 1), 0);
  /* a NULL scratch works (temporary allocation) */
  y[0] = 1.0f;
  assert_int_equal(hs_cpu_matmul(NULL, NULL, HS_QUANT_Q8_0, w, 1, 32, x, 1, y, 1), 0);
  assert_true(y[0] == 0.0f);

  assert_true(hs_cpu_matmul_supported(HS_QUANT_Q8_0, 64));
  assert_false(hs_cpu_matmul_supported(HS_QUANT_Q8_0, 48));
  assert_false(hs_cpu_matmul_supported(HS_QUANT_Q6_K, 128));
  assert_true(hs_cpu_matmul_supported(HS_QUANT_F16, 3));
  assert_false(hs_cpu_matmul_supported(HS_QUANT_F16, 0));
  assert_false(hs_cpu_matmul_supported(99, 256));

  assert_string_equal(hs_cpu_isa_name(HS_CPU_ISA_REF), "ref");
  assert_string_equal(hs_cpu_isa_name(HS_CPU_ISA_AVX512), "avx512");
  assert_true(hs_cpu_isa_supported(HS_CPU_ISA_REF));
  assert_true(hs_cpu_isa_supported(hs_cpu_isa_active()));
  assert_false(hs_cpu_isa_supported((hs_cpu_isa)3));
  hs_cpu_scratch_free(&s);
  hs_cpu_scratch_free(&s); /* twice is fine */
  hs_cpu_scratch_free(NULL);
}

/* Every ISA exists for every type on a CPU that has it (no silent fallback to the reference). */
static void test_every_isa_has_every_type(void **state) {
  (void)state;
  hs_cpu_isa isas[3];
  int n_isa = isa_list(isas);
  float x[256], y[1];
  for (int i = 0; i < 256; i++) x[i] = 1.0f;
  uint8_t *w = calloc(1, 1024);
  for (int ii = 0; ii < n_isa; ii++)
    for (size_t ti = 0; ti < N_TYPES; ti++) {
      int rc = hs_cpu_matmul_isa(isas[ii], NULL, NULL, all_types[ti], w, 1, 256, x, 1, y, 1);
      if (rc) fail_msg("isa %s type %d: %s", hs_cpu_isa_name(isas[ii]), all_types[ti], hs_cpu_last_error());
    }
  free(w);
}

static void test_ldy_gaps_untouched(void **state) {
  (void)state;
  hs_cpu_isa isas[3];
  int n_isa = isa_list(isas);
  hs_cpu_scratch s = {0};
  for (int ii = 0; ii < n_isa; ii++)
    for (size_t ti = 0; ti < N_TYPES; ti++) {
      int type = all_types[ti];
      size_t n_cols = 512, n_rows = 9, n_tok = 5, ldy = 13;
      uint8_t *w = random_weights(type, n_rows, n_cols);
      float *x = random_x(n_cols * n_tok);
      float y[5 * 13], y1[9];
      for (size_t i = 0; i < 5 * 13; i++) y[i] = -12345.0f;
      assert_int_equal(hs_cpu_matmul_isa(isas[ii], NULL, &s, type, w, n_rows, n_cols, x, n_tok, y,
                                         ldy), 0);
      for (size_t t = 0; t < n_tok; t++) {
        for (size_t r = n_rows; r < ldy && t * ldy + r < 5 * 13; r++)
          assert_true(y[t * ldy + r] == -12345.0f);
        assert_int_equal(hs_cpu_matmul_isa(isas[ii], NULL, &s, type, w, n_rows, n_cols,
                                           x + t * n_cols, 1, y1, n_rows), 0);
        assert_memory_equal(y + t * ldy, y1, n_rows * sizeof(float));
      }
      free(w);
      free(x);
    }
  hs_cpu_scratch_free(&s);
}

static void test_scratch_and_oom(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  long live = live_blocks;
  hs_threadpool *tp = NULL;
  assert_int_equal(hs_threadpool_create(2, &tp), 0);
  hs_cpu_isa isas[3];
  int n_isa = isa_list(isas);
  for (int ii = 0; ii < n_isa; ii++)
    for (size_t ti = 0; ti < N_TYPES; ti++) {
      int type = all_types[ti];
      size_t n_cols = 768, n_rows = 20, n_tok = 9;
      uint8_t *w = random_weights(type, n_rows, n_cols);
      float *x = random_x(n_cols * n_tok);
      float y[20 * 9];
      hs_cpu_scratch s = {0};
      long before = live_blocks;
      /* the first allocation fails: HS_ENOMEM, nothing leaked, scratch still empty */
      hs_alloc_fail_after(1);
      int rc = hs_cpu_matmul_isa(isas[ii], tp, &s, type, w, n_rows, n_cols, x, n_tok, y, n_rows);
      hs_alloc_fail_after(0);
      if (s.size == 0 && rc == 0) {
        /* a kernel needing no scratch at all (float types on some ISAs) */
        assert_null(s.data);
      } else {
        assert_int_equal(rc, HS_ENOMEM);
        assert_int_equal(live_blocks, before);
        assert_int_equal(hs_cpu_matmul_isa(isas[ii], tp, &s, type, w, n_rows, n_cols, x, n_tok, y,
                                           n_rows), 0);
        /* the same shape again, or fewer tokens, needs no allocation: make any allocation fail */
        hs_alloc_fail_after(1);
        assert_int_equal(hs_cpu_matmul_isa(isas[ii], tp, &s, type, w, n_rows, n_cols, x, n_tok, y,
                                           n_rows), 0);
        assert_int_equal(hs_cpu_matmul_isa(isas[ii], tp, &s, type, w, n_rows, n_cols, x, 1, y,
                                           n_rows), 0);
        hs_alloc_fail_after(0);
      }
      hs_cpu_scratch_free(&s);
      assert_int_equal(live_blocks, before);
      free(w);
      free(x);
    }
  hs_threadpool_destroy(tp);
  assert_int_equal(live_blocks, live);
  hs_alloc_set_hooks(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ref_vs_dequant),       cmocka_unit_test(test_ref_check_is_sensitive),
      cmocka_unit_test(test_args),                 cmocka_unit_test(test_every_isa_has_every_type),
      cmocka_unit_test(test_act_quant_isas_agree), cmocka_unit_test(test_act_lane_layout),
      cmocka_unit_test(test_isa_vs_ref),           cmocka_unit_test(test_batch_invariance),
      cmocka_unit_test(test_act_vector_layout),    cmocka_unit_test(test_matmul_multi),
      cmocka_unit_test(test_ldy_gaps_untouched),   cmocka_unit_test(test_scratch_and_oom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
