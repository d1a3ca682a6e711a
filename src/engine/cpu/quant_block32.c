/* quant_block32.c: y = W x for the 32-element block types that carry no sub-block scales:
 * Q4_1, Q5_0, Q5_1 and IQ4_NL (see quant.h and quant.c for the block layouts).
 *
 * One file for four types because they differ only in how a block's 32 codes are unpacked; the
 * products are the same. Every block decodes to 32 small signed integers w (Q4_1: q, 0..15;
 * Q5_0: q - 16; Q5_1: q, 0..31; IQ4_NL: the table level, -127..113), a scale d and, for the
 * types with a min (Q4_1, Q5_1), an offset m:  x = d * w + m.
 *
 * The activations are quantized to 8-bit blocks of 32 with an f32 scale dx and the int32 sum of
 * their codes (act_quant.c's REF_Q8 format: llama.cpp's Q8_1 pairing for the types with a min,
 * Q8_0's for the others), so each block's dot product is
 *
 *   sum_j (d w_j + m) * dx a_j = (sum_j w_j a_j) * (d * dx) + m * (dx * sum_j a_j)
 *
 * with an exact integer isum = sum_j w_j a_j. Per (row, token), blocks in order:
 *
 *   reference:  acc += (float)isum * (d * dx);   macc += m * (dx * (float)asum);   y = acc + macc
 *   AVX2:       per block, the 32 products as 8 int32 lanes (vpmaddubsw with the sign trick, then
 *               vpmaddwd); F = fma(f32(lanes), d * dx, F) lane by lane; macc as the reference;
 *               y = (the 8 lanes summed in a fixed tree) + macc.
 *
 * The AVX2 path unpacks each row once per call into the worker's scratch (32 signed bytes per
 * block, then the blocks' d and m as f32), and then runs the row against up to four tokens at a
 * time, so a prompt's tokens share one unpacking; a decode step unpacks each row once and reads
 * it once. Every (row, token) pair runs the same instructions in the same order whatever the
 * number of tokens or the split, so results are batch-invariant. These types have no AVX-512
 * path of their own: on AVX-512 machines the AVX2 code runs (the machines this was written on
 * had no AVX-512 to test one).
 */
#include <string.h>

#include "engine/cpu/simd.h"
#include "engine/cpu/types.h"
#include "hswarm/quant.h"

static float f16_at(const uint8_t *p) { return hs_quant_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static uint32_t u32_at(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- the types ---- */

typedef struct b32_type {
  size_t block_bytes;
  int has_min;
} b32_type;

static const b32_type T_Q4_1 = {20, 1}, T_Q5_0 = {22, 0}, T_Q5_1 = {24, 1}, T_IQ4_NL = {18, 0};

/* Decodes one block: w[32] signed, *d, *m (0 for the types without a min). */
static void decode_block(int type, const uint8_t *b, int8_t w[32], float *d, float *m) {
  *d = f16_at(b);
  *m = 0.0f;
  switch (type) {
  case HS_QUANT_Q4_1:
    *m = f16_at(b + 2);
    for (int j = 0; j < 16; j++) {
      w[j] = (int8_t)(b[4 + j] & 15);
      w[j + 16] = (int8_t)(b[4 + j] >> 4);
    }
    break;
  case HS_QUANT_Q5_0:
  case HS_QUANT_Q5_1: {
    const int q51 = type == HS_QUANT_Q5_1;
    if (q51) *m = f16_at(b + 2);
    const uint32_t qh = u32_at(b + (q51 ? 4 : 2));
    const uint8_t *qs = b + (q51 ? 8 : 6);
    const int off = q51 ? 0 : 16;
    for (int j = 0; j < 16; j++) {
      w[j] = (int8_t)(((qs[j] & 15) | (int)((qh >> j) & 1u) << 4) - off);
      w[j + 16] = (int8_t)(((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4) - off);
    }
    break;
  }
  default: /* IQ4_NL */
    for (int j = 0; j < 16; j++) {
      w[j] = hs_quant_iq4nl_levels[b[2 + j] & 15];
      w[j + 16] = hs_quant_iq4nl_levels[b[2 + j] >> 4];
    }
    break;
  }
}

/* ---- reference ---- */

static void rows_ref_type(int type, const b32_type *tt, const hs_cpu_job *j, size_t r0, size_t r1) {
  size_t nb = j->n_cols / 32;
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *wr = j->W + r * j->row_bytes;
    for (size_t t = 0; t < j->n_tok; t++) {
      const uint8_t *a = j->act + t * j->act_stride;
      float acc = 0.0f, macc = 0.0f;
      for (size_t b = 0; b < nb; b++) {
        const uint8_t *ab = a + HS_CPU_REF_Q8_BLOCK_BYTES * b;
        const int8_t *aq = (const int8_t *)(ab + 8);
        int8_t w[32];
        float d, m, dx;
        decode_block(type, wr + tt->block_bytes * b, w, &d, &m);
        int32_t isum = 0, asum;
        for (int i = 0; i < 32; i++) isum += w[i] * aq[i];
        memcpy(&dx, ab, 4);
        memcpy(&asum, ab + 4, 4);
        acc += (float)isum * (d * dx);
        if (tt->has_min) macc += m * (dx * (float)asum);
      }
      j->y[t * j->ldy + r] = acc + macc;
    }
  }
}

#define REF_ROWS(name, TYPE, tt)                                                   \
  static void name(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) {     \
    (void)scratch;                                                                 \
    rows_ref_type(TYPE, &(tt), j, r0, r1);                                         \
  }
REF_ROWS(rows_ref_q4_1, HS_QUANT_Q4_1, T_Q4_1)
REF_ROWS(rows_ref_q5_0, HS_QUANT_Q5_0, T_Q5_0)
REF_ROWS(rows_ref_q5_1, HS_QUANT_Q5_1, T_Q5_1)
REF_ROWS(rows_ref_iq4_nl, HS_QUANT_IQ4_NL, T_IQ4_NL)

#define REF_KERNEL(name, rows) \
  static const hs_cpu_kernel name = {{HS_CPU_ACT_REF_Q8, HS_CPU_SIDE_NONE, 32}, hs_cpu_panel_none, rows, 1, HS_CPU_NO_VEC};
REF_KERNEL(k_ref_q4_1, rows_ref_q4_1)
REF_KERNEL(k_ref_q5_0, rows_ref_q5_0)
REF_KERNEL(k_ref_q5_1, rows_ref_q5_1)
REF_KERNEL(k_ref_iq4_nl, rows_ref_iq4_nl)

/* ---- AVX2 ---- */
#ifdef HS_CPU_X86

/* Unpacked row in the scratch: w[n_cols] int8, then d[nb] f32, then m[nb] f32 (64-aligned). */
static size_t unpacked_bytes(size_t n_cols) { return n_cols + 8 * (n_cols / 32) + 64; }

static size_t panel_avx2(size_t n_cols, size_t n_tok) {
  (void)n_tok;
  return unpacked_bytes(n_cols);
}

/* 32 nibbles of 16 bytes: low nibbles are elements 0..15, high nibbles 16..31. */
HS_INLINE HS_TARGET_AVX2 __m256i nibbles_avx2(const uint8_t *qs) {
  const __m128i q = _mm_loadu_si128((const __m128i *)qs), low4 = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low4), _mm_and_si128(q, low4));
}

/* Byte j = 16 where bit j of qh is set, else 0. */
HS_INLINE HS_TARGET_AVX2 __m256i fifth_bits_avx2(uint32_t qh) {
  const __m256i idx = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                        0x0101010101010101LL, 0x0000000000000000LL);
  const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), idx);
  v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
  return _mm256_and_si256(v, _mm256_set1_epi8(16));
}

/* Unpacks one row of nb blocks into w / d / m (see unpacked_bytes). */
HS_INLINE HS_TARGET_AVX2 void unpack_row_avx2(int type, const b32_type *tt, const uint8_t *src,
                                              size_t nb, int8_t *w, float *d, float *m) {
  const __m128i levels = _mm_loadu_si128((const __m128i *)hs_quant_iq4nl_levels);
  const __m256i levels2 = _mm256_set_m128i(levels, levels);
  for (size_t b = 0; b < nb; b++) {
    const uint8_t *blk = src + b * tt->block_bytes;
    __m256i v;
    d[b] = f16_at(blk);
    m[b] = 0.0f;
    switch (type) {
    case HS_QUANT_Q4_1:
      m[b] = f16_at(blk + 2);
      v = nibbles_avx2(blk + 4);
      break;
    case HS_QUANT_Q5_0:
      v = _mm256_or_si256(nibbles_avx2(blk + 6), fifth_bits_avx2(u32_at(blk + 2)));
      v = _mm256_sub_epi8(v, _mm256_set1_epi8(16));
      break;
    case HS_QUANT_Q5_1:
      m[b] = f16_at(blk + 2);
      v = _mm256_or_si256(nibbles_avx2(blk + 8), fifth_bits_avx2(u32_at(blk + 4)));
      break;
    default: /* IQ4_NL */
      v = _mm256_shuffle_epi8(levels2, nibbles_avx2(blk + 2));
      break;
    }
    _mm256_storeu_si256((__m256i *)(w + 32 * b), v);
  }
}

/* 8 int32 lanes of sum w_j a_j (exact): |w| times a with w's sign, pairs, then quads. */
HS_INLINE HS_TARGET_AVX2 __m256i dot32_avx2(__m256i w, __m256i aw, __m256i a) {
  __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(a, w));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* One unpacked row against T (1..4) tokens. */
HS_INLINE HS_TARGET_AVX2 void row_tokens_avx2(const int8_t *w, const float *d, const float *m,
                                              int has_min, size_t nb, const uint8_t *const *a,
                                              int T, float *y, size_t ldy) {
  __m256 F[4];
  float macc[4] = {0, 0, 0, 0};
  for (int t = 0; t < T; t++) F[t] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; b++) {
    const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 32 * b));
    const __m256i aw = _mm256_sign_epi8(wv, wv);
    for (int t = 0; t < T; t++) {
      const uint8_t *ab = a[t] + HS_CPU_REF_Q8_BLOCK_BYTES * b;
      float dx;
      memcpy(&dx, ab, 4);
      __m256i av = _mm256_loadu_si256((const __m256i *)(ab + 8));
      __m256 s = _mm256_cvtepi32_ps(dot32_avx2(wv, aw, av));
      F[t] = _mm256_fmadd_ps(s, _mm256_set1_ps(d[b] * dx), F[t]);
      if (has_min) {
        int32_t asum;
        memcpy(&asum, ab + 4, 4);
        macc[t] += m[b] * (dx * (float)asum);
      }
    }
  }
  for (int t = 0; t < T; t++) y[(size_t)t * ldy] = hs_sum8_avx2(F[t]) + macc[t];
}

HS_INLINE HS_TARGET_AVX2 void rows_avx2_type(int type, const b32_type *tt, const hs_cpu_job *j,
                                             size_t r0, size_t r1, void *scratch) {
  const size_t nb = j->n_cols / 32;
  int8_t *w = scratch;
  float *d = (float *)(void *)((uint8_t *)scratch + ((j->n_cols + 63) & ~(size_t)63));
  float *m = d + nb;
  for (size_t r = r0; r < r1; r++) {
    unpack_row_avx2(type, tt, j->W + r * j->row_bytes, nb, w, d, m);
    for (size_t t0 = 0; t0 < j->n_tok; t0 += 4) {
      const uint8_t *a[4];
      int T = j->n_tok - t0 < 4 ? (int)(j->n_tok - t0) : 4;
      for (int t = 0; t < T; t++) a[t] = j->act + (t0 + (size_t)t) * j->act_stride;
      float *y = j->y + t0 * j->ldy + r;
      switch (T) { /* constant T lets the compiler keep the accumulators in registers */
      case 4: row_tokens_avx2(w, d, m, tt->has_min, nb, a, 4, y, j->ldy); break;
      case 3: row_tokens_avx2(w, d, m, tt->has_min, nb, a, 3, y, j->ldy); break;
      case 2: row_tokens_avx2(w, d, m, tt->has_min, nb, a, 2, y, j->ldy); break;
      default: row_tokens_avx2(w, d, m, tt->has_min, nb, a, 1, y, j->ldy); break;
      }
    }
  }
}

#define AVX2_ROWS(name, TYPE, tt)                                                          \
  HS_TARGET_AVX2 static void name(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) { \
    rows_avx2_type(TYPE, &(tt), j, r0, r1, scratch);                                       \
  }
AVX2_ROWS(rows_avx2_q4_1, HS_QUANT_Q4_1, T_Q4_1)
AVX2_ROWS(rows_avx2_q5_0, HS_QUANT_Q5_0, T_Q5_0)
AVX2_ROWS(rows_avx2_q5_1, HS_QUANT_Q5_1, T_Q5_1)
AVX2_ROWS(rows_avx2_iq4_nl, HS_QUANT_IQ4_NL, T_IQ4_NL)

#define AVX2_KERNEL(name, rows) \
  static const hs_cpu_kernel name = {{HS_CPU_ACT_REF_Q8, HS_CPU_SIDE_NONE, 32}, panel_avx2, rows, 1, HS_CPU_NO_VEC};
AVX2_KERNEL(k_avx2_q4_1, rows_avx2_q4_1)
AVX2_KERNEL(k_avx2_q5_0, rows_avx2_q5_0)
AVX2_KERNEL(k_avx2_q5_1, rows_avx2_q5_1)
AVX2_KERNEL(k_avx2_iq4_nl, rows_avx2_iq4_nl)
#endif

/* AVX-512 runs the AVX2 kernels (see the top). */
HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q4_1, k_ref_q4_1, k_avx2_q4_1, k_avx2_q4_1)
HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q5_0, k_ref_q5_0, k_avx2_q5_0, k_avx2_q5_0)
HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q5_1, k_ref_q5_1, k_avx2_q5_1, k_avx2_q5_1)
HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_iq4_nl, k_ref_iq4_nl, k_avx2_iq4_nl, k_avx2_iq4_nl)
