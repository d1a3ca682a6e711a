/* quant_q4_0.c: y = W x for Q4_0 weights (see cpu/kernels.h and quant.h for the block layout).
 *
 * Codes are 4-bit q = 0..15 standing for q - 8. Against activations quantized to 8-bit blocks of
 * 32 (act_quant.c), each block's dot product is the exact integer
 *
 *   isum = sum q * a - 8 * sum a
 *
 * then acc += (float)isum * (dw * dx), blocks in order (reference).
 *
 * SIMD: the lane kernels (lane_kernel.h). Packing a row: per group of 16 blocks, block c's
 * nibbles become bytes 0..15 (element order: low nibbles are elements 0..15, high nibbles
 * 16..31) in lane c, plus dw[16] in f32. The codes are the unsigned operand as they are; the
 * activation side vector starts each lane at -8 * (sum of the activation codes).
 */
#include <string.h>

#include "engine/cpu/lane_kernel.h"
#include "engine/cpu/transpose.h"
#include "engine/cpu/types.h"
#include "hswarm/quant.h"

static float f16_at(const uint8_t *p) { return hs_quant_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* ---- reference ---- */

static void rows_ref(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) {
  (void)scratch;
  size_t nb = j->n_cols / 32;
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *wr = j->W + r * j->row_bytes;
    for (size_t t = 0; t < j->n_tok; t++) {
      const uint8_t *a = j->act + t * j->act_stride;
      float acc = 0.0f;
      for (size_t b = 0; b < nb; b++) {
        const uint8_t *wb = wr + 18 * b, *ab = a + HS_CPU_REF_Q8_BLOCK_BYTES * b;
        const int8_t *aq = (const int8_t *)(ab + 8);
        int32_t isum = 0, asum;
        for (int i = 0; i < 16; i++)
          isum += (wb[2 + i] & 15) * aq[i] + (wb[2 + i] >> 4) * aq[i + 16];
        memcpy(&asum, ab + 4, 4);
        isum -= 8 * asum;
        float dx;
        memcpy(&dx, ab, 4);
        acc += (float)isum * (f16_at(wb) * dx);
      }
      j->y[t * j->ldy + r] = acc;
    }
  }
}

static const hs_cpu_kernel k_ref = {{HS_CPU_ACT_REF_Q8, HS_CPU_SIDE_NONE, 32}, hs_cpu_panel_none, rows_ref, 1, HS_CPU_NO_VEC};

/* ---- packing ---- */

#define WG 576 /* packed group: codes 8 x 64, dw[16] */
#define AG HS_CPU_L32_GROUP_BYTES

static void pack_group_scalar(const uint8_t *src, size_t nb, size_t grp, uint8_t *gp) {
  memset(gp, 0, WG);
  float *dw = (float *)(gp + 512);
  for (size_t c = 0; c < 16 && 16 * grp + c < nb; c++) {
    const uint8_t *blk = src + (16 * grp + c) * 18;
    for (int i = 0; i < 32; i++) {
      uint8_t q = i < 16 ? (blk[2 + i] & 15) : (blk[2 + i - 16] >> 4);
      gp[64 * (i / 4) + 4 * c + i % 4] = q;
    }
    dw[c] = f16_at(blk);
  }
}

static void pack_scalar(const uint8_t *src, size_t n_cols, uint8_t *dst) {
  size_t nb = n_cols / 32;
  for (size_t g = 0; g < (nb + 15) / 16; g++) pack_group_scalar(src, nb, g, dst + g * WG);
}

#ifdef HS_CPU_X86
/* Packs n (1..16) blocks starting at b0 into one group; lanes n..15 get zero codes and scales. */
HS_INLINE HS_TARGET_AVX512 void pack_group_avx512(const uint8_t *b0, size_t n, uint8_t *gp) {
  const __m256i low4 = _mm256_set1_epi8(15);
  __m512i v[8];
#pragma GCC unroll 8
  for (size_t c = 0; c < 8; c++) {
    /* blocks c and c + 8: [codes c | codes c+8] -> [lo c | lo c+8 | hi c | hi c+8] */
    __m128i qa = c < n ? _mm_loadu_si128((const __m128i *)(b0 + c * 18 + 2)) : _mm_setzero_si128();
    __m128i qb = c + 8 < n ? _mm_loadu_si128((const __m128i *)(b0 + (c + 8) * 18 + 2)) : _mm_setzero_si128();
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(qa), qb, 1);
    __m256i lo = _mm256_and_si256(q, low4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    v[c] = _mm512_shuffle_i32x4(z, z, _MM_SHUFFLE(3, 1, 2, 0)); /* [lo c, hi c, lo c+8, hi c+8] */
  }
  hs_transpose8_halves(v);
#pragma GCC unroll 8
  for (int g = 0; g < 8; g++) _mm512_store_si512(gp + 64 * g, v[g]);
  _Alignas(32) uint16_t h[16];
#pragma GCC unroll 16
  for (size_t c = 0; c < 16; c++) h[c] = c < n ? (uint16_t)(b0[c * 18] | (b0[c * 18 + 1] << 8)) : 0;
  _mm512_store_ps(gp + 512, _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)h)));
}

HS_TARGET_AVX512 static void pack_avx512(const uint8_t *src, size_t n_cols, uint8_t *dst) {
  size_t nb = n_cols / 32, full = nb / 16;
  for (size_t grp = 0; grp < full; grp++) pack_group_avx512(src + grp * 16 * 18, 16, dst + grp * WG);
  if (full * 16 < nb) pack_group_avx512(src + full * 16 * 18, nb - full * 16, dst + full * WG);
}

LANE_TILES(q4_0, avx512, 8, WG, AG, 1, 0)
LANE_TILES(q4_0, avx2, 8, WG, AG, 1, 0, 0)

static const lane_desc d_avx512 = {512, WG, AG, 3, 4, pack_avx512, LANE_TABLE(q4_0, avx512)};
static const lane_desc d_avx2 = {512, WG, AG, 2, 2, pack_scalar, LANE_TABLE(q4_0, avx2)};

LANE_ENTRY_POINTS(avx512, d_avx512)
LANE_ENTRY_POINTS(avx2, d_avx2)

static const hs_cpu_kernel k_avx512 = {{HS_CPU_ACT_L32, HS_CPU_SIDE_CORR8, 32}, panel_avx512, rows_avx512, 3, HS_CPU_NO_VEC};
static const hs_cpu_kernel k_avx2 = {{HS_CPU_ACT_L32, HS_CPU_SIDE_CORR8, 32}, panel_avx2, rows_avx2, 2, HS_CPU_NO_VEC};
#endif

HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q4_0, k_ref, k_avx2, k_avx512)
