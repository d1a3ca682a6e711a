/* quant_q4_k.c: y = W x for Q4_K weights (see quant.h / quant.c for the block layout).
 *
 * A Q4_K block of 256 elements has 8 sub-blocks s of 32 with 6-bit scale sc[s] and min m[s]:
 * w = d * sc[s] * q - dmin * m[s]. Against activations quantized per 256 elements (scale dx,
 * codes a, sums of 16 codes bsums), the block's contribution is, with exact integers
 *
 *   S1 = sum_s sc[s] * sum_{i in s} q_i a_i        S2 = sum_s m[s] * (bsums[2s] + bsums[2s+1])
 *
 *   acc += (d * dx) * (float)S1 - (dmin * dx) * (float)S2
 *
 * Reference: that, blocks in order.
 *
 * SIMD: the lane kernels (lane_kernel.h) with one lane per 32-element sub-block, 16 sub-blocks
 * (two blocks) per group. Packing a row: sub-block s's nibbles become 32 bytes in lane s, plus
 * s1 = d * sc[s] and s2 = dmin * m[s] in f32 per lane; per pair and group the kernel computes
 * u = f32(chunk dot) * s1 - asum * s2 (asum: the activation chunk's code sum) and F += u * dx.
 * This applies the sub-block scales in float rather than through the exact integer S1, so it
 * differs from the reference in the last bits only (the tests bound it).
 */
#include <string.h>

#include "engine/cpu/lane_kernel.h"
#include "engine/cpu/transpose.h"
#include "engine/cpu/types.h"
#include "engine/quant_internal.h"
#include "hswarm/quant.h"

static float f16_at(const uint8_t *p) { return hs_quant_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* ---- reference ---- */

static void rows_ref(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) {
  (void)scratch;
  size_t nb = j->n_cols / 256;
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *wr = j->W + r * j->row_bytes;
    for (size_t t = 0; t < j->n_tok; t++) {
      const uint8_t *a = j->act + t * j->act_stride;
      float acc = 0.0f;
      for (size_t b = 0; b < nb; b++) {
        const uint8_t *wb = wr + 144 * b, *ab = a + HS_CPU_REF_K_BLOCK_BYTES * b;
        const uint8_t *qs = wb + 16;
        const int8_t *aq = (const int8_t *)(ab + 36);
        int32_t s1 = 0, s2 = 0;
        for (int s = 0; s < 8; s++) {
          int sc, m;
          hs_quant_q4k_scale_min(wb + 4, s, &sc, &m);
          int32_t dot = 0;
          for (int l = 0; l < 32; l++) {
            int q = (qs[32 * (s / 2) + l] >> (4 * (s & 1))) & 15;
            dot += q * aq[32 * s + l];
          }
          int16_t b0, b1;
          memcpy(&b0, ab + 4 + 4 * s, 2);
          memcpy(&b1, ab + 6 + 4 * s, 2);
          s1 += sc * dot;
          s2 += m * (b0 + b1);
        }
        float dx;
        memcpy(&dx, ab, 4);
        acc += (f16_at(wb) * dx) * (float)s1 - (f16_at(wb + 2) * dx) * (float)s2;
      }
      j->y[t * j->ldy + r] = acc;
    }
  }
}

static const hs_cpu_kernel k_ref = {{HS_CPU_ACT_REF_K, HS_CPU_SIDE_NONE, 256}, hs_cpu_panel_none, rows_ref, 1, HS_CPU_NO_VEC};

/* ---- packing ---- */

#define WG 640 /* packed group: codes 8 x 64, s1[16], s2[16] */
#define AG HS_CPU_L32_GROUP_BYTES

static void pack_group_scalar(const uint8_t *src, size_t nb, size_t grp, uint8_t *gp) {
  memset(gp, 0, WG);
  float *s1 = (float *)(gp + 512), *s2 = (float *)(gp + 576);
  for (size_t bi = 0; bi < 2 && 2 * grp + bi < nb; bi++) {
    const uint8_t *blk = src + (2 * grp + bi) * 144;
    float d = f16_at(blk), dmin = f16_at(blk + 2);
    for (int s = 0; s < 8; s++) {
      int sc, m;
      hs_quant_q4k_scale_min(blk + 4, s, &sc, &m);
      size_t c = 8 * bi + (size_t)s;
      for (int i = 0; i < 32; i++)
        gp[64 * (i / 4) + 4 * c + i % 4] = (blk[16 + 32 * (s / 2) + i] >> (4 * (s & 1))) & 15;
      s1[c] = d * (float)sc;
      s2[c] = dmin * (float)m;
    }
  }
}

static void pack_scalar(const uint8_t *src, size_t n_cols, uint8_t *dst) {
  size_t nb = n_cols / 256;
  for (size_t g = 0; g < (nb + 1) / 2; g++) pack_group_scalar(src, nb, g, dst + g * WG);
}

#ifdef HS_CPU_X86
/* The 6-bit scales and mins of two blocks (12 bytes at p0 + 4 and p1 + 4) as f32 lanes:
 * *sc = sc[0..7] of block 0, then of block 1; *mn the same for the mins. With the block's bytes
 * 0..3, 4..7, 8..11 read as little-endian words a, b, c:
 *   sc[0..3] = a & 63, m[0..3] = b & 63 (per byte)
 *   sc[4..7] = (c & 15) | (a >> 6) << 4,  m[4..7] = (c >> 4) | (b >> 6) << 4. */
HS_INLINE HS_TARGET_AVX512 void scales_mins(const uint8_t *p0, const uint8_t *p1, __m512 *sc,
                                            __m512 *mn) {
  __m128i x0 = _mm_loadu_si128((const __m128i *)(p0 + 4)); /* a0 b0 c0 (next 4 bytes unused) */
  __m128i x1 = _mm_loadu_si128((const __m128i *)(p1 + 4));
  __m128i ab = _mm_unpacklo_epi64(x0, x1);                                  /* a0 b0 a1 b1 */
  __m128i cc = _mm_shuffle_epi32(_mm_unpackhi_epi32(x0, x1), _MM_SHUFFLE(1, 1, 0, 0)); /* c0 c0 c1 c1 */
  __m128i lo = _mm_and_si128(ab, _mm_set1_epi8(63));                        /* sc03 m03 (x2) */
  __m128i hi = _mm_or_si128(
      _mm_and_si128(_mm_srlv_epi32(cc, _mm_setr_epi32(0, 4, 0, 4)), _mm_set1_epi8(15)),
      _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(ab, 6), _mm_set1_epi8(3)), 4)); /* sc47 m47 (x2) */
  __m128i u0 = _mm_unpacklo_epi32(lo, hi); /* sc03_0 sc47_0 m03_0 m47_0 */
  __m128i u1 = _mm_unpackhi_epi32(lo, hi); /* sc03_1 sc47_1 m03_1 m47_1 */
  *sc = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi64(u0, u1)));
  *mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi64(u0, u1)));
}

/* The per-lane scales of the group of blocks b0 and (when two) b0 + 144: s1 = d * sc,
 * s2 = dmin * m; a missing second block gives zeros in lanes 8..15. */
HS_INLINE HS_TARGET_AVX512 void group_scales(const uint8_t *b0, int two, __m512 *s1, __m512 *s2) {
  const uint8_t *b1 = b0 + 144;
  __m512 scf, mf;
  scales_mins(b0, two ? b1 : b0, &scf, &mf); /* a missing block's lanes are zeroed by d below */
  /* [d0, dmin0, d1, dmin1] (the two blocks' leading f16 pairs), spread over the lanes */
  uint32_t h0, h1 = 0;
  memcpy(&h0, b0, 4);
  if (two) memcpy(&h1, b1, 4);
  __m512 dd = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_setr_epi32((int)h0, (int)h1, 0, 0)));
  __m512 d = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2), dd);
  __m512 dmin = _mm512_permutexvar_ps(_mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3), dd);
  *s1 = _mm512_mul_ps(d, scf);
  *s2 = _mm512_mul_ps(dmin, mf);
}

/* Packs blocks b0 and (when two) b0 + 144 into one group; a missing second block gives zero
 * codes and scales in lanes 8..15. */
HS_INLINE HS_TARGET_AVX512 void pack_group_avx512(const uint8_t *b0, int two, uint8_t *gp) {
  const uint8_t *b1 = b0 + 144;
  const __m512i low4 = _mm512_set1_epi8(15);
  __m512i v[8];
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    /* chunk c of both blocks: sub-blocks 2c (low nibbles) and 2c+1 (high nibbles) */
    __m256i hi = two ? _mm256_loadu_si256((const __m256i *)(b1 + 16 + 32 * c)) : _mm256_setzero_si256();
    __m512i z = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + 16 + 32 * c))), hi, 1);
    v[2 * c] = _mm512_and_si512(z, low4);
    v[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(z, 4), low4);
  }
  hs_transpose8_halves(v);
#pragma GCC unroll 8
  for (int g = 0; g < 8; g++) _mm512_store_si512(gp + 64 * g, v[g]);
  __m512 s1, s2;
  group_scales(b0, two, &s1, &s2);
  _mm512_store_ps(gp + 512, s1);
  _mm512_store_ps(gp + 576, s2);
}

HS_TARGET_AVX512 static void pack_avx512(const uint8_t *src, size_t n_cols, uint8_t *dst) {
  size_t nb = n_cols / 256, full = nb / 2;
  for (size_t grp = 0; grp < full; grp++) pack_group_avx512(src + grp * 2 * 144, 1, dst + grp * WG);
  if (full * 2 < nb) pack_group_avx512(src + full * 2 * 144, 0, dst + full * WG);
}

/* The direct path (lane_kernel.h): 64 code bytes of a block, split into low and high nibbles,
 * are chunks (4m, 4m + 2) and (4m + 1, 4m + 3) of the block; the V32K activations hold the
 * same chunks in the same places. With v = 4 * block + 2m + nibble, vec_reduce8 leaves chunks in
 * the order 0,1,4,5, 2,3,6,7, 8,9,12,13, 10,11,14,15, which the permutation below undoes. */
#define VEC_PF_BYTES 1024
HS_TARGET_AVX512 static void vec_rows_avx512(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) {
  (void)scratch;
  const size_t nb = j->n_cols / 256, ng = (nb + 1) / 2, nt = j->n_tok;
  const __m512i m4 = _mm512_set1_epi8(15);
  const __m512i perm = _mm512_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *row = j->W + r * j->row_bytes;
    __m512 F[VEC_MAX_TOK];
#pragma GCC unroll 2
    for (size_t t = 0; t < VEC_MAX_TOK; t++) F[t] = _mm512_setzero_ps();
    for (size_t grp = 0; grp < ng; grp++) {
      const uint8_t *b0 = row + grp * 2 * 144;
      const int two = 2 * grp + 1 < nb;
      /* software prefetch VEC_PF_BYTES ahead (runs across rows and 4 KiB pages, where the
       * hardware prefetchers stop); a prefetch never faults, past the matrix's end included */
#pragma GCC unroll 5
      for (int l = 0; l < 5; l++) _mm_prefetch((const char *)b0 + VEC_PF_BYTES + 64 * l, _MM_HINT_T0);
      __m512i w[8];
#pragma GCC unroll 2
      for (int bi = 0; bi < 2; bi++) {
        if (bi == 1 && !two) {
          w[4] = w[5] = w[6] = w[7] = _mm512_setzero_si512();
          break;
        }
        const uint8_t *q = b0 + 144 * bi + 16;
        __m512i q0 = _mm512_loadu_si512(q), q1 = _mm512_loadu_si512(q + 64);
        w[4 * bi + 0] = _mm512_and_si512(q0, m4);
        w[4 * bi + 1] = _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4);
        w[4 * bi + 2] = _mm512_and_si512(q1, m4);
        w[4 * bi + 3] = _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4);
      }
      __m512 s1, s2;
      group_scales(b0, two, &s1, &s2);
      for (size_t t = 0; t < nt; t++) {
        const uint8_t *a = j->act + t * j->act_stride + grp * AG;
        __m512i p[8];
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++)
          p[v] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[v], _mm512_load_si512(a + 64 * v));
        __m512i i = _mm512_permutexvar_epi32(perm, vec_reduce8_avx512(p));
        /* the lane tile's float steps (lane_kernel.h), exactly */
        __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(i), s1);
        u = _mm512_fnmadd_ps(_mm512_load_ps((const float *)(a + 512)), s2, u);
        F[t] = _mm512_fmadd_ps(u, _mm512_load_ps((const float *)(a + 576)), F[t]);
      }
    }
    for (size_t t = 0; t < nt; t++) j->y[t * j->ldy + r] = hs_sum16_avx512(F[t]);
  }
}

LANE_TILES(q4_k, avx512, 8, WG, AG, 0, 1)
LANE_TILES(q4_k, avx2, 8, WG, AG, 0, 1, 0)

static const lane_desc d_avx512 = {512, WG, AG, 3, 4, pack_avx512, LANE_TABLE(q4_k, avx512)};
static const lane_desc d_avx2 = {512, WG, AG, 2, 2, pack_scalar, LANE_TABLE(q4_k, avx2)};

LANE_ENTRY_POINTS(avx512, d_avx512)
LANE_ENTRY_POINTS(avx2, d_avx2)

static const hs_cpu_kernel k_avx512 = {{HS_CPU_ACT_L32, HS_CPU_SIDE_ASUM, 256}, panel_avx512, rows_avx512, 3,
                                       {HS_CPU_ACT_V32K, HS_CPU_SIDE_ASUM, 256}, vec_rows_avx512, VEC_MAX_TOK};
static const hs_cpu_kernel k_avx2 = {{HS_CPU_ACT_L32, HS_CPU_SIDE_ASUM, 256}, panel_avx2, rows_avx2, 2, HS_CPU_NO_VEC};
#endif

HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q4_k, k_ref, k_avx2, k_avx512)
