/* engine/cpu/transpose.h: the 16-chunk transposes used to pack weights into lane layout
 * (lane_kernel.h), AVX-512 (internal to engine/cpu).
 *
 * hs_transpose8_halves: v[j] (j = 0..7) holds chunk j's dwords 0..7 in lanes 0..7 and chunk
 * j+8's dwords 0..7 in lanes 8..15. Afterwards v[g] holds dword g of chunks 0..15 in lanes
 * 0..15: an 8 x 8 dword transpose done in both 256-bit halves at once (unpack 32, unpack 64,
 * then exchange 128-bit quarters), 24 shuffles in all. */
#ifndef HS_ENGINE_CPU_TRANSPOSE_H
#define HS_ENGINE_CPU_TRANSPOSE_H

#include "engine/cpu/simd.h"

#ifdef HS_CPU_X86
HS_INLINE HS_TARGET_AVX512 void hs_transpose8_halves(__m512i v[8]) {
  __m512i t[8], u[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);     /* quarter q: r0[0] r1[0] r0[1] r1[1] */
    t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]); /*            r0[2] r1[2] r0[3] r1[3] */
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);         /* dword 0 (4) of rows i..i+3 */
    u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);     /* dword 1 (5) */
    u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]); /* dword 2 (6) */
    u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]); /* dword 3 (7) */
  }
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
#pragma GCC unroll 8
  for (int g = 0; g < 4; g++) {
    v[g] = _mm512_permutex2var_epi64(u[g], lo, u[g + 4]);
    v[g + 4] = _mm512_permutex2var_epi64(u[g], hi, u[g + 4]);
  }
}
#endif

#endif
