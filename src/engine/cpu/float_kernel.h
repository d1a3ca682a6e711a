/* engine/cpu/float_kernel.h: register tiles for float weight types (F32, F16, BF16) on AVX-512
 * and AVX2 (internal to engine/cpu).
 *
 * Each (row r, token t) pair keeps 16 f32 lanes; element k goes to lane k mod 16:
 *
 *   F = fma(w[k..k+16), x[k..k+16), F)      k = 0, 16, 32, ...  (w converted exactly to f32)
 *   the last partial step loads zeros beyond n_cols (masked loads)
 *   y[t][r] = hs_cpu_sum16(F)
 *
 * Every tile shape, the matrix-vector case included, runs exactly this per pair, so results do
 * not depend on n_tok, the split or the tile position. AVX2 holds the lanes as two halves of 8
 * and performs the same operations lane for lane, so it gives the same bits as AVX-512.
 *
 * Blocking: weights are read in place (no packing). rows() walks a panel of rows small enough to
 * stay in L2, and for each tile of T tokens runs the R x T tile over the panel, so each loaded
 * weight vector serves T tokens and each activation vector R rows.
 */
#ifndef HS_ENGINE_CPU_FLOAT_KERNEL_H
#define HS_ENGINE_CPU_FLOAT_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/cpu/simd.h"
#include "engine/cpu/types.h"

#define FLT_MAXR 4
#define FLT_MAXT 6

enum { FLT_F32 = 0, FLT_F16 = 1, FLT_BF16 = 2 };

typedef void (*flt_tile_fn)(const uint8_t *const *wr, const float *const *xr, size_t n_cols,
                            float *y, size_t ldy);

typedef struct flt_desc {
  int R, T;
  size_t elem_bytes;
  flt_tile_fn tiles[FLT_MAXR][FLT_MAXT];
} flt_desc;

#define FLT_PANEL_TARGET_BYTES (384u * 1024u)

static inline void flt_rows(const flt_desc *d, const hs_cpu_job *j, size_t r0, size_t r1) {
  size_t R = (size_t)d->R, T = (size_t)d->T;
  size_t rp = R;
  if (j->n_tok > T) {
    rp = FLT_PANEL_TARGET_BYTES / j->row_bytes;
    rp -= rp % R;
    if (rp < R) rp = R;
  }
  for (size_t p0 = r0; p0 < r1; p0 += rp) {
    size_t p1 = p0 + rp < r1 ? p0 + rp : r1;
    for (size_t t0 = 0; t0 < j->n_tok; t0 += T) {
      size_t nt = j->n_tok - t0 < T ? j->n_tok - t0 : T;
      const float *xr[FLT_MAXT];
      for (size_t t = 0; t < nt; t++) xr[t] = j->x + (t0 + t) * j->n_cols;
      for (size_t rr = p0; rr < p1; rr += R) {
        size_t nr = p1 - rr < R ? p1 - rr : R;
        const uint8_t *wr[FLT_MAXR];
        for (size_t r = 0; r < nr; r++) wr[r] = j->W + (rr + r) * j->row_bytes;
        d->tiles[nr - 1][nt - 1](wr, xr, j->n_cols, j->y + t0 * j->ldy + rr, j->ldy);
      }
    }
  }
}

#ifdef HS_CPU_X86

/* ---- AVX-512 ---- */

HS_INLINE HS_TARGET_AVX512 __m512 flt_load_w512(const uint8_t *p, int kind) {
  if (kind == FLT_F32) return _mm512_loadu_ps(p);
  __m256i h = _mm256_loadu_si256((const __m256i *)p);
  if (kind == FLT_F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

HS_INLINE HS_TARGET_AVX512 __m512 flt_load_w512_mask(const uint8_t *p, int kind, __mmask16 m) {
  if (kind == FLT_F32) return _mm512_maskz_loadu_ps(m, p);
  __m256i h = _mm256_maskz_loadu_epi16(m, p);
  if (kind == FLT_F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

HS_INLINE HS_TARGET_AVX512 void flt_tile_avx512(const uint8_t *const *wr, const float *const *xr,
                                                size_t n, float *y, size_t ldy, int R, int T,
                                                int kind) {
  const size_t es = kind == FLT_F32 ? 4 : 2;
  __m512 facc[FLT_MAXR][FLT_MAXT];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 6
    for (int t = 0; t < T; t++) facc[r][t] = _mm512_setzero_ps();
  size_t k = 0;
  for (; k + 16 <= n; k += 16) {
    __m512 x[FLT_MAXT];
#pragma GCC unroll 6
    for (int t = 0; t < T; t++) x[t] = _mm512_loadu_ps(xr[t] + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      __m512 w = flt_load_w512(wr[r] + k * es, kind);
#pragma GCC unroll 6
      for (int t = 0; t < T; t++) facc[r][t] = _mm512_fmadd_ps(w, x[t], facc[r][t]);
    }
  }
  if (k < n) {
    __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
    __m512 x[FLT_MAXT];
#pragma GCC unroll 6
    for (int t = 0; t < T; t++) x[t] = _mm512_maskz_loadu_ps(m, xr[t] + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      __m512 w = flt_load_w512_mask(wr[r] + k * es, kind, m);
#pragma GCC unroll 6
      for (int t = 0; t < T; t++) facc[r][t] = _mm512_fmadd_ps(w, x[t], facc[r][t]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 6
    for (int t = 0; t < T; t++) y[(size_t)t * ldy + (size_t)r] = hs_sum16_avx512(facc[r][t]);
}

/* ---- AVX2: lanes 0..7 and 8..15 as two halves ---- */

HS_INLINE HS_TARGET_AVX2 __m256 flt_load_w256(const uint8_t *p, int kind) {
  if (kind == FLT_F32) return _mm256_loadu_ps((const float *)p);
  __m128i h = _mm_loadu_si128((const __m128i *)p);
  if (kind == FLT_F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

HS_INLINE HS_TARGET_AVX2 void flt_tile_avx2(const uint8_t *const *wr, const float *const *xr,
                                            size_t n, float *y, size_t ldy, int R, int T,
                                            int kind) {
  const size_t es = kind == FLT_F32 ? 4 : 2;
  __m256 facc[FLT_MAXR][FLT_MAXT][2];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 6
    for (int t = 0; t < T; t++) facc[r][t][0] = facc[r][t][1] = _mm256_setzero_ps();
  size_t k = 0;
  for (; k + 16 <= n; k += 16) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      __m256 x[FLT_MAXT];
#pragma GCC unroll 6
      for (int t = 0; t < T; t++) x[t] = _mm256_loadu_ps(xr[t] + k + 8 * h);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        __m256 w = flt_load_w256(wr[r] + (k + 8 * h) * es, kind);
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) facc[r][t][h] = _mm256_fmadd_ps(w, x[t], facc[r][t][h]);
      }
    }
  }
  if (k < n) {
    /* the tail through zero-padded copies (exactly what masked loads would give) */
    _Alignas(32) float xb[FLT_MAXT][16];
    _Alignas(32) uint8_t wb[FLT_MAXR][64];
    size_t m = n - k;
    for (int t = 0; t < T; t++) {
      memset(xb[t], 0, sizeof xb[t]);
      memcpy(xb[t], xr[t] + k, m * 4);
    }
    for (int r = 0; r < R; r++) {
      memset(wb[r], 0, sizeof wb[r]);
      memcpy(wb[r], wr[r] + k * es, m * es);
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      __m256 x[FLT_MAXT];
#pragma GCC unroll 6
      for (int t = 0; t < T; t++) x[t] = _mm256_load_ps(xb[t] + 8 * h);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        __m256 w = flt_load_w256(wb[r] + 8 * h * es, kind);
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) facc[r][t][h] = _mm256_fmadd_ps(w, x[t], facc[r][t][h]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 6
    for (int t = 0; t < T; t++)
      y[(size_t)t * ldy + (size_t)r] = hs_sum16_avx2(facc[r][t][0], facc[r][t][1]);
}

#define FLT_TILE_FN(prefix, isa, r, t, kind)                                                      \
  HS_TARGET_##isa static void prefix##_##isa##_##r##x##t(const uint8_t *const *wr,                 \
                                                         const float *const *xr, size_t n,        \
                                                         float *y, size_t ldy) {                  \
    flt_tile_##isa(wr, xr, n, y, ldy, r, t, kind);                                                \
  }
#define FLT_TILE_ROW(prefix, isa, r, kind)                                                  \
  FLT_TILE_FN(prefix, isa, r, 1, kind) FLT_TILE_FN(prefix, isa, r, 2, kind)                 \
  FLT_TILE_FN(prefix, isa, r, 3, kind) FLT_TILE_FN(prefix, isa, r, 4, kind)                 \
  FLT_TILE_FN(prefix, isa, r, 5, kind) FLT_TILE_FN(prefix, isa, r, 6, kind)
#define FLT_TILES(prefix, isa, kind)                                                        \
  FLT_TILE_ROW(prefix, isa, 1, kind) FLT_TILE_ROW(prefix, isa, 2, kind)                     \
  FLT_TILE_ROW(prefix, isa, 3, kind) FLT_TILE_ROW(prefix, isa, 4, kind)
#define FLT_TABLE_ROW(prefix, isa, r)                                                       \
  { prefix##_##isa##_##r##x1, prefix##_##isa##_##r##x2, prefix##_##isa##_##r##x3,           \
    prefix##_##isa##_##r##x4, prefix##_##isa##_##r##x5, prefix##_##isa##_##r##x6 }
#define FLT_TABLE(prefix, isa)                                                              \
  { FLT_TABLE_ROW(prefix, isa, 1), FLT_TABLE_ROW(prefix, isa, 2),                           \
    FLT_TABLE_ROW(prefix, isa, 3), FLT_TABLE_ROW(prefix, isa, 4) }

#endif /* HS_CPU_X86 */

#endif
