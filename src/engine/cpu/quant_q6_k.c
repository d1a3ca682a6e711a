/* quant_q6_k.c: y = W x for Q6_K weights (see quant.h / quant.c for the block layout).
 *
 * A Q6_K block of 256 elements has 16 sub-blocks s of 16 with an int8 scale sc[s]:
 * w = d * sc[s] * (q - 32), q = 0..63. Against activations quantized per 256 elements (scale dx,
 * codes a, sums of 16 codes bsums), the block's contribution is, with the exact integer
 *
 *   S = sum_s sc[s] * (sum_{i in s} q_i a_i - 32 * bsums[s])
 *
 *   acc += (d * dx) * (float)S
 *
 * Reference: that, blocks in order.
 *
 * SIMD: the lane kernels (lane_kernel.h) with one lane per 16-element sub-block, one block per
 * group. Packing a row: the 6-bit codes are assembled into bytes 0..63 (the unsigned operand), 16
 * per lane, plus s1 = d * sc[s] in f32; the activation side vector starts each lane at
 * -32 * (sum of its 16 activation codes), which undoes the code offset exactly. Sub-block scales
 * are applied in float per lane (u = f32(chunk dot) * s1, F += u * dx), so the result differs
 * from the reference's exact integer S in the last bits only.
 */
#include <string.h>

#include "engine/cpu/lane_kernel.h"
#include "engine/cpu/types.h"
#include "hswarm/quant.h"

static float f16_at(const uint8_t *p) { return hs_quant_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* The 6-bit code (0..63) of element i (0..255) of a Q6_K block. */
static int code_at(const uint8_t *ql, const uint8_t *qh, int i) {
  int h = i / 128, e = i % 128, g = e / 32, l = e % 32;
  int lo = ql[64 * h + l + 32 * (g & 1)];
  lo = (g < 2) ? (lo & 15) : (lo >> 4);
  int hi = (qh[32 * h + l] >> (2 * g)) & 3;
  return lo | (hi << 4);
}

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
        const uint8_t *wb = wr + 210 * b, *ab = a + HS_CPU_REF_K_BLOCK_BYTES * b;
        const int8_t *sc = (const int8_t *)(wb + 192);
        const int8_t *aq = (const int8_t *)(ab + 36);
        int32_t s = 0;
        for (int sb = 0; sb < 16; sb++) {
          int32_t dot = 0;
          for (int l = 0; l < 16; l++) dot += code_at(wb, wb + 128, 16 * sb + l) * aq[16 * sb + l];
          int16_t bs;
          memcpy(&bs, ab + 4 + 2 * sb, 2);
          s += sc[sb] * (dot - 32 * bs);
        }
        float dx;
        memcpy(&dx, ab, 4);
        acc += (f16_at(wb + 208) * dx) * (float)s;
      }
      j->y[t * j->ldy + r] = acc;
    }
  }
}

static const hs_cpu_kernel k_ref = {{HS_CPU_ACT_REF_K, HS_CPU_SIDE_NONE, 256}, hs_cpu_panel_none, rows_ref, 1, HS_CPU_NO_VEC};

/* ---- packing ---- */

#define WG 320 /* packed group (one block): codes 4 x 64, s1[16] */
#define AG HS_CPU_L16_GROUP_BYTES

static void pack_scalar(const uint8_t *src, size_t n_cols, uint8_t *dst) {
  size_t nb = n_cols / 256;
  for (size_t b = 0; b < nb; b++) {
    const uint8_t *blk = src + b * 210;
    uint8_t *gp = dst + b * WG;
    float *s1 = (float *)(gp + 256);
    const int8_t *sc = (const int8_t *)(blk + 192);
    float d = f16_at(blk + 208);
    for (int s = 0; s < 16; s++) {
      for (int i = 0; i < 16; i++) gp[64 * (i / 4) + 4 * s + i % 4] = (uint8_t)code_at(blk, blk + 128, 16 * s + i);
      s1[s] = d * (float)sc[s];
    }
  }
}

#ifdef HS_CPU_X86
/* One block: the codes of element 32g + l of half h are the low (g < 2) or high nibble of
 * ql[64h + 32(g & 1) + l] and bits 2g, 2g+1 of qh[32h + l]. Vector E_g holds elements 32g..32g+31
 * of half 0 in its low 256 bits and of half 1 in its high 256 bits, i.e. its 128-bit quarters
 * are sub-blocks 2g, 2g+1, 8+2g, 9+2g; a 4 x 4 dword transpose across the quarters and a lane
 * permutation give the lane layout. */
HS_TARGET_AVX512 static void pack_avx512(const uint8_t *src, size_t n_cols, uint8_t *dst) {
  size_t nb = n_cols / 256;
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  /* position of sub-block s after the transpose: 8 (s >> 3) + 4 (s & 1) + ((s & 7) >> 1) */
  const __m512i perm = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
  for (size_t b = 0; b < nb; b++) {
    const uint8_t *blk = src + b * 210;
    uint8_t *gp = dst + b * WG;
    __m512i A = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)blk)),
                                   _mm256_loadu_si256((const __m256i *)(blk + 64)), 1);
    __m512i B = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 32))),
                                   _mm256_loadu_si256((const __m256i *)(blk + 96)), 1);
    __m512i H = _mm512_loadu_si512(blk + 128);
    __m512i e0 = _mm512_or_si512(_mm512_and_si512(A, m4), _mm512_and_si512(_mm512_slli_epi16(H, 4), m30));
    __m512i e1 = _mm512_or_si512(_mm512_and_si512(B, m4), _mm512_and_si512(_mm512_slli_epi16(H, 2), m30));
    __m512i e2 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(A, 4), m4), _mm512_and_si512(H, m30));
    __m512i e3 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(B, 4), m4),
                                 _mm512_and_si512(_mm512_srli_epi16(H, 2), m30));
    __m512i t0 = _mm512_unpacklo_epi32(e0, e1), t1 = _mm512_unpackhi_epi32(e0, e1);
    __m512i t2 = _mm512_unpacklo_epi32(e2, e3), t3 = _mm512_unpackhi_epi32(e2, e3);
    _mm512_store_si512(gp, _mm512_permutexvar_epi32(perm, _mm512_unpacklo_epi64(t0, t2)));
    _mm512_store_si512(gp + 64, _mm512_permutexvar_epi32(perm, _mm512_unpackhi_epi64(t0, t2)));
    _mm512_store_si512(gp + 128, _mm512_permutexvar_epi32(perm, _mm512_unpacklo_epi64(t1, t3)));
    _mm512_store_si512(gp + 192, _mm512_permutexvar_epi32(perm, _mm512_unpackhi_epi64(t1, t3)));
    __m512 scf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 192))));
    __m512 d = _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(blk[208] | (blk[209] << 8))));
    _mm512_store_ps(gp + 256, _mm512_mul_ps(d, scf));
  }
}

/* The direct path (lane_kernel.h): half h of a block, its 64 ql bytes split into low and high
 * nibbles and joined with the matching qh bit pairs, gives elements 128h .. 128h + 63 and
 * 128h + 64 .. 128h + 127 in element order, which is how the V16 activations are stored. Vector v
 * thus covers chunks 4v .. 4v + 3, one per 128-bit lane; vec_reduce4 leaves chunk 4v + L in lane
 * 4L + v, which the permutation below puts back in chunk order. */
#define VEC_PF_BYTES 1024
HS_TARGET_AVX512 static void vec_rows_avx512(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) {
  (void)scratch;
  const size_t nb = j->n_cols / 256, nt = j->n_tok;
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *row = j->W + r * j->row_bytes;
    __m512 F[VEC_MAX_TOK];
#pragma GCC unroll 2
    for (size_t t = 0; t < VEC_MAX_TOK; t++) F[t] = _mm512_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
      const uint8_t *blk = row + b * 210;
      /* software prefetch ahead, as in quant_q4_k.c's direct path */
#pragma GCC unroll 4
      for (int l = 0; l < 4; l++) _mm_prefetch((const char *)blk + VEC_PF_BYTES + 64 * l, _MM_HINT_T0);
      __m512i w[4];
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) {
        __m512i q = _mm512_loadu_si512(blk + 64 * h);
        __m256i h8 = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
        __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(h8), h8, 1);
        /* bits 0-1 (elements 0..31 of the half) and 2-3 (32..63), moved to bits 4-5 */
        __m512i hlo = _mm512_and_si512(
            _mm512_mask_blend_epi64(0xF0, _mm512_slli_epi16(hh, 4), _mm512_slli_epi16(hh, 2)), m30);
        /* bits 4-5 (64..95) and 6-7 (96..127) */
        __m512i hhi = _mm512_and_si512(_mm512_mask_blend_epi64(0xF0, hh, _mm512_srli_epi16(hh, 2)), m30);
        w[2 * h] = _mm512_or_si512(_mm512_and_si512(q, m4), hlo);
        w[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(q, 4), m4), hhi);
      }
      __m512 scf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 192))));
      __m512 d = _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(blk[208] | (blk[209] << 8))));
      __m512 s1 = _mm512_mul_ps(d, scf);
      for (size_t t = 0; t < nt; t++) {
        const uint8_t *a = j->act + t * j->act_stride + b * AG;
        __m512i p[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
          p[v] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[v], _mm512_load_si512(a + 64 * v));
        __m512i i = _mm512_add_epi32(_mm512_permutexvar_epi32(perm, vec_reduce4_avx512(p)),
                                     _mm512_load_si512(a + 256)); /* + the -32 * sum correction */
        /* the lane tile's float steps (lane_kernel.h), exactly */
        __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(i), s1);
        F[t] = _mm512_fmadd_ps(u, _mm512_load_ps((const float *)(a + 320)), F[t]);
      }
    }
    for (size_t t = 0; t < nt; t++) j->y[t * j->ldy + r] = hs_sum16_avx512(F[t]);
  }
}

LANE_TILES(q6_k, avx512, 4, WG, AG, 1, 0)
LANE_TILES(q6_k, avx2, 4, WG, AG, 1, 0, 0)

static const lane_desc d_avx512 = {256, WG, AG, 3, 4, pack_avx512, LANE_TABLE(q6_k, avx512)};
static const lane_desc d_avx2 = {256, WG, AG, 2, 2, pack_scalar, LANE_TABLE(q6_k, avx2)};

LANE_ENTRY_POINTS(avx512, d_avx512)
LANE_ENTRY_POINTS(avx2, d_avx2)

static const hs_cpu_kernel k_avx512 = {{HS_CPU_ACT_L16, HS_CPU_SIDE_CORR32, 256}, panel_avx512, rows_avx512, 3,
                                       {HS_CPU_ACT_V16, HS_CPU_SIDE_CORR32, 256}, vec_rows_avx512, VEC_MAX_TOK};
static const hs_cpu_kernel k_avx2 = {{HS_CPU_ACT_L16, HS_CPU_SIDE_CORR32, 256}, panel_avx2, rows_avx2, 2, HS_CPU_NO_VEC};
#endif

HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q6_k, k_ref, k_avx2, k_avx512)
