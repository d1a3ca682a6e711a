/* quant_kblock.c: y = W x for the 256-element K types read through an unpacked row: Q2_K, Q3_K,
 * Q5_K and IQ4_XS (see quant.h and quant.c for the block layouts; Q4_K and Q6_K have lane
 * kernels of their own in quant_q4_k.c and quant_q6_k.c).
 *
 * Every super-block decodes to 256 small signed integers w (Q2_K: q, 0..3; Q3_K: q - 4; Q5_K: q,
 * 0..31; IQ4_XS: the table level, -127..113) and, per sub-block of 16 elements, a scale ds and a
 * min dm (0 for Q3_K and IQ4_XS; the types with sub-blocks of 32 repeat theirs):
 * x = ds * w - dm. The activations are quantized to 8-bit blocks of 256 with an f32 scale dx and
 * the int16 sums of each 16 codes (act_quant.c's REF_K format, llama.cpp's Q8_K pairing), so a
 * super-block's dot product is
 *
 *   dx * (sum_s ds_s * isum_s - sum_s dm_s * bsum_s),   isum_s = sum over sub-block s of w a (exact)
 *
 *   reference:  per super-block, sub-blocks in order: sf += ds * (float)isum; sm += dm * (float)bsum;
 *               acc += dx * (sf - sm)
 *   AVX2:       per pair of sub-blocks, 8 int32 lanes (4 for each sub-block: vpmaddubsw with the
 *               sign trick, vpmaddwd); SF = fma(f32(lanes), ds of each lane's sub-block, SF);
 *               SM = fma(f32(bsums), dm, SM) as two halves of 8; F = fma(SF - SM, dx, F);
 *               y = the 8 lanes of F summed in a fixed tree.
 *
 * As in quant_block32.c, the AVX2 path unpacks each row once per call into the worker's scratch
 * (w[n_cols], then ds and dm per 16 elements as f32) and runs it against up to four tokens at a
 * time, each (row, token) pair always by the same instructions in the same order (batch
 * invariance). The unpacking is plain C (these types are rare in the files we ship or test
 * against; a SIMD unpacking is left for when one matters). AVX-512 machines run the AVX2 code.
 */
#include <string.h>

#include "engine/cpu/simd.h"
#include "engine/cpu/types.h"
#include "engine/quant_internal.h"
#include "hswarm/quant.h"

static float f16_at(const uint8_t *p) { return hs_quant_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* The 2-bit field of element i of Q2_K / Q3_K's qs (quant.c's layout). */
static int q2_bits(const uint8_t *qs, int i) {
  int h = i / 128, e = i % 128, g = e / 32, l = e % 32;
  return (qs[32 * h + l] >> (2 * g)) & 3;
}

/* Decodes one super-block: w[256], ds[16], dm[16]. */
static void decode_super(int type, const uint8_t *b, int8_t w[256], float ds[16], float dm[16]) {
  switch (type) {
  case HS_QUANT_Q2_K: {
    float d = f16_at(b + 80), dmin = f16_at(b + 82);
    for (int s = 0; s < 16; s++) {
      ds[s] = d * (float)(b[s] & 15);
      dm[s] = dmin * (float)(b[s] >> 4);
    }
    for (int i = 0; i < 256; i++) w[i] = (int8_t)q2_bits(b + 16, i);
    break;
  }
  case HS_QUANT_Q3_K: {
    int sc[16];
    hs_quant_q3k_scales(b + 96, sc);
    float d = f16_at(b + 108);
    for (int s = 0; s < 16; s++) {
      ds[s] = d * (float)(sc[s] - 32);
      dm[s] = 0.0f;
    }
    for (int i = 0; i < 256; i++) {
      int h = i / 128, g = (i % 128) / 32, l = i % 32;
      w[i] = (int8_t)((q2_bits(b + 32, i) | ((b[l] >> (g + 4 * h)) & 1) << 2) - 4);
    }
    break;
  }
  case HS_QUANT_Q5_K: {
    float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int s = 0; s < 8; s++) {
      int sc, m;
      hs_quant_q4k_scale_min(b + 4, s, &sc, &m);
      ds[2 * s] = ds[2 * s + 1] = d * (float)sc;
      dm[2 * s] = dm[2 * s + 1] = dmin * (float)m;
      for (int l = 0; l < 32; l++) {
        int lo = (qs[32 * (s / 2) + l] >> (4 * (s & 1))) & 15;
        w[32 * s + l] = (int8_t)(lo | ((qh[l] >> s) & 1) << 4);
      }
    }
    break;
  }
  default: { /* IQ4_XS */
    float d = f16_at(b);
    for (int s = 0; s < 8; s++) {
      ds[2 * s] = ds[2 * s + 1] = d * (float)(hs_quant_iq4xs_scale(b, s) - 32);
      dm[2 * s] = dm[2 * s + 1] = 0.0f;
      for (int j = 0; j < 16; j++) {
        w[32 * s + j] = hs_quant_iq4nl_levels[b[8 + 16 * s + j] & 15];
        w[32 * s + 16 + j] = hs_quant_iq4nl_levels[b[8 + 16 * s + j] >> 4];
      }
    }
    break;
  }
  }
}

static int has_min(int type) { return type == HS_QUANT_Q2_K || type == HS_QUANT_Q5_K; }

/* ---- reference ---- */

static void rows_ref_type(int type, const hs_cpu_job *j, size_t r0, size_t r1) {
  const size_t nb = j->n_cols / 256, bb = hs_quant_block_bytes(type);
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *wr = j->W + r * j->row_bytes;
    for (size_t t = 0; t < j->n_tok; t++) {
      const uint8_t *a = j->act + t * j->act_stride;
      float acc = 0.0f;
      for (size_t b = 0; b < nb; b++) {
        const uint8_t *ab = a + HS_CPU_REF_K_BLOCK_BYTES * b;
        const int8_t *aq = (const int8_t *)(ab + 36);
        int8_t w[256];
        float ds[16], dm[16], dx, sf = 0.0f, sm = 0.0f;
        decode_super(type, wr + bb * b, w, ds, dm);
        memcpy(&dx, ab, 4);
        for (int s = 0; s < 16; s++) {
          int32_t isum = 0;
          for (int i = 0; i < 16; i++) isum += w[16 * s + i] * aq[16 * s + i];
          int16_t bs;
          memcpy(&bs, ab + 4 + 2 * s, 2);
          sf += ds[s] * (float)isum;
          sm += dm[s] * (float)bs;
        }
        acc += dx * (sf - sm);
      }
      j->y[t * j->ldy + r] = acc;
    }
  }
}

#define REF_ROWS(name, TYPE)                                                   \
  static void name(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) { \
    (void)scratch;                                                             \
    rows_ref_type(TYPE, j, r0, r1);                                            \
  }
REF_ROWS(rows_ref_q2_k, HS_QUANT_Q2_K)
REF_ROWS(rows_ref_q3_k, HS_QUANT_Q3_K)
REF_ROWS(rows_ref_q5_k, HS_QUANT_Q5_K)
REF_ROWS(rows_ref_iq4_xs, HS_QUANT_IQ4_XS)

#define REF_KERNEL(name, rows) \
  static const hs_cpu_kernel name = {{HS_CPU_ACT_REF_K, HS_CPU_SIDE_NONE, 256}, hs_cpu_panel_none, rows, 1, HS_CPU_NO_VEC};
REF_KERNEL(k_ref_q2_k, rows_ref_q2_k)
REF_KERNEL(k_ref_q3_k, rows_ref_q3_k)
REF_KERNEL(k_ref_q5_k, rows_ref_q5_k)
REF_KERNEL(k_ref_iq4_xs, rows_ref_iq4_xs)

/* ---- AVX2 ---- */
#ifdef HS_CPU_X86

/* Unpacked row: w[n_cols] int8, then ds[n_cols / 16] and dm[n_cols / 16] f32 (64-aligned). */
static size_t panel_avx2(size_t n_cols, size_t n_tok) {
  (void)n_tok;
  return ((n_cols + 63) & ~(size_t)63) + 2 * 4 * (n_cols / 16) + 64;
}

/* One unpacked row against T (1..4) tokens of REF_K activations. */
HS_INLINE HS_TARGET_AVX2 void row_tokens_avx2(const int8_t *w, const float *ds, const float *dm,
                                              int mins, size_t nb, const uint8_t *const *a,
                                              int T, float *y, size_t ldy) {
  __m256 F[4];
  for (int t = 0; t < T; t++) F[t] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t b = 0; b < nb; b++) {
    __m256 SF[4], SM[4];
    for (int t = 0; t < T; t++) SF[t] = SM[t] = _mm256_setzero_ps();
    for (int p = 0; p < 8; p++) {
      const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 256 * b + 32 * p));
      const __m256i aw = _mm256_sign_epi8(wv, wv);
      const float *d2 = ds + 16 * b + 2 * p;
      const __m256 scale = _mm256_set_m128(_mm_set1_ps(d2[1]), _mm_set1_ps(d2[0]));
      for (int t = 0; t < T; t++) {
        const __m256i av = _mm256_loadu_si256((const __m256i *)(a[t] + HS_CPU_REF_K_BLOCK_BYTES * b + 36 + 32 * p));
        __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(av, wv)), ones);
        SF[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, SF[t]);
      }
    }
    for (int t = 0; t < T; t++) {
      const uint8_t *ab = a[t] + HS_CPU_REF_K_BLOCK_BYTES * b;
      float dx;
      memcpy(&dx, ab, 4);
      if (mins) {
        __m256i bs = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(ab + 4)));
        __m256i bs2 = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(ab + 20)));
        SM[t] = _mm256_mul_ps(_mm256_cvtepi32_ps(bs), _mm256_loadu_ps(dm + 16 * b));
        SM[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(bs2), _mm256_loadu_ps(dm + 16 * b + 8), SM[t]);
      }
      F[t] = _mm256_fmadd_ps(_mm256_sub_ps(SF[t], SM[t]), _mm256_set1_ps(dx), F[t]);
    }
  }
  for (int t = 0; t < T; t++) y[(size_t)t * ldy] = hs_sum8_avx2(F[t]);
}

HS_INLINE HS_TARGET_AVX2 void rows_avx2_type(int type, const hs_cpu_job *j, size_t r0, size_t r1,
                                             void *scratch) {
  const size_t nb = j->n_cols / 256, bb = hs_quant_block_bytes(type);
  int8_t *w = scratch;
  float *ds = (float *)(void *)((uint8_t *)scratch + ((j->n_cols + 63) & ~(size_t)63));
  float *dm = ds + j->n_cols / 16;
  const int mins = has_min(type);
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *wr = j->W + r * j->row_bytes;
    for (size_t b = 0; b < nb; b++) decode_super(type, wr + bb * b, w + 256 * b, ds + 16 * b, dm + 16 * b);
    for (size_t t0 = 0; t0 < j->n_tok; t0 += 4) {
      const uint8_t *a[4];
      int T = j->n_tok - t0 < 4 ? (int)(j->n_tok - t0) : 4;
      for (int t = 0; t < T; t++) a[t] = j->act + (t0 + (size_t)t) * j->act_stride;
      float *y = j->y + t0 * j->ldy + r;
      switch (T) { /* constant T keeps the accumulators in registers */
      case 4: row_tokens_avx2(w, ds, dm, mins, nb, a, 4, y, j->ldy); break;
      case 3: row_tokens_avx2(w, ds, dm, mins, nb, a, 3, y, j->ldy); break;
      case 2: row_tokens_avx2(w, ds, dm, mins, nb, a, 2, y, j->ldy); break;
      default: row_tokens_avx2(w, ds, dm, mins, nb, a, 1, y, j->ldy); break;
      }
    }
  }
}

#define AVX2_ROWS(name, TYPE)                                                                  \
  HS_TARGET_AVX2 static void name(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) { \
    rows_avx2_type(TYPE, j, r0, r1, scratch);                                                  \
  }
AVX2_ROWS(rows_avx2_q2_k, HS_QUANT_Q2_K)
AVX2_ROWS(rows_avx2_q3_k, HS_QUANT_Q3_K)
AVX2_ROWS(rows_avx2_q5_k, HS_QUANT_Q5_K)
AVX2_ROWS(rows_avx2_iq4_xs, HS_QUANT_IQ4_XS)

#define AVX2_KERNEL(name, rows) \
  static const hs_cpu_kernel name = {{HS_CPU_ACT_REF_K, HS_CPU_SIDE_NONE, 256}, panel_avx2, rows, 1, HS_CPU_NO_VEC};
AVX2_KERNEL(k_avx2_q2_k, rows_avx2_q2_k)
AVX2_KERNEL(k_avx2_q3_k, rows_avx2_q3_k)
AVX2_KERNEL(k_avx2_q5_k, rows_avx2_q5_k)
AVX2_KERNEL(k_avx2_iq4_xs, rows_avx2_iq4_xs)
#endif

/* AVX-512 runs the AVX2 kernels (see the top). */
HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q2_k, k_ref_q2_k, k_avx2_q2_k, k_avx2_q2_k)
HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q3_k, k_ref_q3_k, k_avx2_q3_k, k_avx2_q3_k)
HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q5_k, k_ref_q5_k, k_avx2_q5_k, k_avx2_q5_k)
HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_iq4_xs, k_ref_iq4_xs, k_avx2_iq4_xs, k_avx2_iq4_xs)
