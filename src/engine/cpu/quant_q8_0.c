/* quant_q8_0.c: y = W x for Q8_0 weights (see cpu/kernels.h and quant.h for the block layout).
 *
 * The activations are quantized to 8-bit blocks of 32 with an f32 scale (act_quant.c), so each
 * block's dot product is an exact integer sum isum; then, per block, in float,
 *
 *   reference:  acc += (float)isum * (dw * dx),  blocks in order
 *   SIMD:       the lane kernels (lane_kernel.h): 16 blocks per vector, lane c accumulating
 *               blocks c, c+16, c+32, ... as F = fma(f32(isum) * dw, dx, F), then hs_cpu_sum16.
 *
 * Packing a row for the lane kernels: per group of 16 blocks, the 32 codes of block c become
 * lane c of 8 vectors (the 4-byte slices), plus dw[16] in f32. On AVX-512 the codes are stored
 * + 128 (xor 0x80) so that vpdpbusd can take them as its unsigned operand, and the activation
 * side vector starts each lane at -128 * (sum of the activation codes); on AVX2 they stay signed
 * and the kernel uses the sign trick (|w| times x with w's sign).
 */
#include <string.h>

#include "engine/cpu/lane_kernel.h"
#include "engine/cpu/transpose.h"
#include "engine/cpu/types.h"
#include "hswarm/quant.h"

#define WG 576 /* packed group: codes 8 x 64, dw[16] */
#define AG HS_CPU_L32_GROUP_BYTES

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
        const uint8_t *wb = wr + 34 * b, *ab = a + HS_CPU_REF_Q8_BLOCK_BYTES * b;
        const int8_t *wq = (const int8_t *)(wb + 2), *aq = (const int8_t *)(ab + 8);
        int32_t isum = 0;
        for (int i = 0; i < 32; i++) isum += wq[i] * aq[i];
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

/* Packs group grp (blocks 16*grp .. 16*grp + 15, those that exist) in plain C; codes ^ flip. */
static void pack_group_scalar(const uint8_t *src, size_t nb, size_t grp, uint8_t *gp, uint8_t flip) {
  memset(gp, 0, WG);
  float *dw = (float *)(gp + 512);
  for (size_t c = 0; c < 16 && 16 * grp + c < nb; c++) {
    const uint8_t *blk = src + (16 * grp + c) * 34;
    for (int i = 0; i < 32; i++) gp[64 * (i / 4) + 4 * c + i % 4] = blk[2 + i] ^ flip;
    dw[c] = f16_at(blk);
  }
}

static void pack_signed(const uint8_t *src, size_t n_cols, uint8_t *dst) {
  size_t nb = n_cols / 32;
  for (size_t g = 0; g < (nb + 15) / 16; g++) pack_group_scalar(src, nb, g, dst + g * WG, 0);
}

#ifdef HS_CPU_X86
/* Packs n (1..16) blocks starting at b0 into one group; lanes n..15 get zero codes and scales. */
HS_INLINE HS_TARGET_AVX512 void pack_group_avx512(const uint8_t *b0, size_t n, uint8_t *gp) {
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  __m512i v[8];
#pragma GCC unroll 8
  for (size_t c = 0; c < 8; c++) {
    __m256i lo = c < n ? _mm256_loadu_si256((const __m256i *)(b0 + c * 34 + 2)) : _mm256_setzero_si256();
    __m256i hi = c + 8 < n ? _mm256_loadu_si256((const __m256i *)(b0 + (c + 8) * 34 + 2))
                           : _mm256_setzero_si256();
    v[c] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  hs_transpose8_halves(v);
#pragma GCC unroll 8
  for (int g = 0; g < 8; g++) _mm512_store_si512(gp + 64 * g, _mm512_xor_si512(v[g], flip));
  /* the 16 f16 scales (scalar loads: cheaper than a gather here) */
  _Alignas(32) uint16_t h[16];
#pragma GCC unroll 16
  for (size_t c = 0; c < 16; c++) h[c] = c < n ? (uint16_t)(b0[c * 34] | (b0[c * 34 + 1] << 8)) : 0;
  _mm512_store_ps(gp + 512, _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)h)));
}

HS_TARGET_AVX512 static void pack_avx512(const uint8_t *src, size_t n_cols, uint8_t *dst) {
  size_t nb = n_cols / 32, full = nb / 16;
  for (size_t grp = 0; grp < full; grp++) pack_group_avx512(src + grp * 16 * 34, 16, dst + grp * WG);
  if (full * 16 < nb) pack_group_avx512(src + full * 16 * 34, nb - full * 16, dst + full * WG);
}

LANE_TILES(q8, avx512, 8, WG, AG, 1, 0)
LANE_TILES(q8, avx2, 8, WG, AG, 0, 0, 1)

static const lane_desc d_avx512 = {512, WG, AG, 3, 4, pack_avx512, LANE_TABLE(q8, avx512)};
static const lane_desc d_avx2 = {512, WG, AG, 2, 2, pack_signed, LANE_TABLE(q8, avx2)};

LANE_ENTRY_POINTS(avx512, d_avx512)
LANE_ENTRY_POINTS(avx2, d_avx2)

static const hs_cpu_kernel k_avx512 = {{HS_CPU_ACT_L32, HS_CPU_SIDE_CORR128, 32}, panel_avx512, rows_avx512, 3, HS_CPU_NO_VEC};
static const hs_cpu_kernel k_avx2 = {{HS_CPU_ACT_L32, HS_CPU_SIDE_NONE, 32}, panel_avx2, rows_avx2, 2, HS_CPU_NO_VEC};
#endif

HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_q8_0, k_ref, k_avx2, k_avx512)
