/* engine/cpu/lane_kernel.h: the integer "lane" kernels shared by the quantized weight types
 * (Q8_0, Q4_0, Q4_K, Q6_K) on AVX-512 VNNI and AVX2 (internal to engine/cpu).
 *
 * The problem. A quantized dot product is a sum over small chunks (32 or 16 elements) of
 * (exact integer chunk dot) x (a weight scale) x (an activation scale). Done naively, every
 * chunk of every (row, token) pair pays a conversion to float, a scale multiply and an add, as
 * much work as the integer multiply-adds themselves.
 *
 * The idea. Transpose 16 chunks at a time so that one 512-bit vector holds the same 4 bytes of
 * 16 different chunks, one chunk per 32-bit lane ("lane layout"). Then vpdpbusd (u8 x s8, four
 * products summed into each int32 lane) over the chunk's 8 (or 4) such vectors leaves lane c
 * holding chunk c's exact integer dot product, and ONE conversion, multiply and fused add per 16
 * chunks apply all 16 scales at once. Per (row, token) pair and 512 elements that is 8 vpdpbusd
 * and 3-4 float instructions, instead of 8 vpdpbusd and 24 float instructions.
 *
 * Both operands must be in lane layout. The activations are quantized straight into it
 * (act_quant.c). The weights are stored in GGUF's layout, so each type's file "packs" rows:
 * unpacks codes to bytes (nibbles to 0..15, Q6_K's 6-bit codes to 0..63, Q8_0 codes + 128),
 * transposes 16 chunks, and precomputes per-lane f32 scales (d, d * sc, dmin * m). Packing costs
 * about as much as one token's products, so it is done once per panel of rows and reused by
 * every token of the call.
 *
 * Signs. vpdpbusd multiplies unsigned bytes by signed bytes. Weight codes are the unsigned side
 * (Q4_0/Q4_K 0..15, Q6_K 0..63, Q8_0 stored as code + 128); the format's offset (q - 8, q - 32,
 * code + 128) is undone by starting the integer accumulator at the activation chunk's
 * correction, -8, -32 or -128 times the sum of its codes (act_quant.c's "side" vector), which
 * costs nothing per pair. Q4_K's mins use the activation chunk sums in float instead, because
 * they carry their own scale (dmin * m).
 *
 * Per (row r, token t) pair, for each group of 16 chunks, in this order:
 *
 *   i  = side_t (int32)                         (zero for Q4_K)
 *   i  = dpbusd(i, W_r[g], X_t[g])              g = 0 .. NDW-1   (NDW = 8 or 4 vectors)
 *   u  = f32(i) * s1_r                          s1: d (Q8_0, Q4_0) or d * sc (K types)
 *   u  = u - asum_t * s2_r                      Q4_K only: s2 = dmin * m; asum = chunk sums
 *   F  = fma(u, dx_t, F)                        dx: activation scale of each chunk
 *
 * and at the end y[t][r] = hs_cpu_sum16(F) (simd.h). Every register tile shape, the matrix-
 * vector case included, runs exactly this sequence for each of its pairs, only interleaved
 * with other pairs, so y[t][r] is bit-identical whatever n_tok, the split or the tile position
 * (batch invariance). The integer part is exact, so any way of computing it gives the same i;
 * AVX2 (without VNNI) computes i with vpmaddubsw + vpmaddwd on two 8-lane halves and then the
 * same float steps lane for lane, so it matches AVX-512 bit for bit. (Q8_0 on AVX2 packs its
 * codes signed and uses the sign trick instead of +128, because vpmaddubsw saturates at 16 bits;
 * the integer result is the same.)
 *
 * Blocking. rows() packs a panel of rows into the worker's scratch (sized to stay in L2 for
 * long calls; only one register tile of rows for matrix-vector calls, so it stays in L1), then
 * for each tile of T tokens (whose activation rows stay in L1) runs the R x T register tile over
 * every R rows of the panel. A last partial group is padded with zero codes and zero scales on
 * both sides and contributes exactly zero.
 */
#ifndef HS_ENGINE_CPU_LANE_KERNEL_H
#define HS_ENGINE_CPU_LANE_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/cpu/simd.h"
#include "engine/cpu/types.h"

#define LANE_MAXR 4
#define LANE_MAXT 4

/* One register tile: rows wr[0..R) (packed), tokens ar[0..T) (lane-format activations),
 * n_groups groups; writes y[t * ldy + r]. */
typedef void (*lane_tile_fn)(const uint8_t *const *wr, const uint8_t *const *ar, size_t n_groups,
                             float *y, size_t ldy);
/* Packs one row of n_cols elements (GGUF layout at src) into n_groups * wg bytes at dst. */
typedef void (*lane_pack_fn)(const uint8_t *src, size_t n_cols, uint8_t *dst);

typedef struct lane_desc {
  size_t group_elems; /* 512 (chunks of 32) or 256 (chunks of 16) */
  size_t wg, ag;      /* bytes per packed weight group / per activation group */
  int R, T;           /* register tile */
  lane_pack_fn pack;
  lane_tile_fn tiles[LANE_MAXR][LANE_MAXT]; /* [rows - 1][tokens - 1] */
} lane_desc;

/* ---- the panel driver ---- */

#define LANE_PANEL_TARGET_BYTES (320u * 1024u) /* a long call's packed panel: well inside L2 */
#define LANE_PANEL_MAX_ROWS 96

static inline size_t lane_panel_rows(const lane_desc *d, size_t n_cols, size_t n_tok) {
  size_t ng = (n_cols + d->group_elems - 1) / d->group_elems;
  size_t prow = ng * d->wg;
  if (n_tok <= (size_t)d->T) return (size_t)d->R;
  size_t rows = LANE_PANEL_TARGET_BYTES / prow;
  if (rows > LANE_PANEL_MAX_ROWS) rows = LANE_PANEL_MAX_ROWS;
  rows -= rows % (size_t)d->R;
  return rows < (size_t)d->R ? (size_t)d->R : rows;
}

static inline size_t lane_panel_bytes(const lane_desc *d, size_t n_cols, size_t n_tok) {
  size_t ng = (n_cols + d->group_elems - 1) / d->group_elems;
  return lane_panel_rows(d, n_cols, n_tok) * ng * d->wg;
}

static inline void lane_rows(const lane_desc *d, const hs_cpu_job *j, size_t r0, size_t r1,
                             uint8_t *panel) {
  size_t ng = (j->n_cols + d->group_elems - 1) / d->group_elems;
  size_t prow = ng * d->wg;
  size_t rp = lane_panel_rows(d, j->n_cols, j->n_tok);
  size_t R = (size_t)d->R, T = (size_t)d->T;
  for (size_t p0 = r0; p0 < r1; p0 += rp) {
    size_t p1 = p0 + rp < r1 ? p0 + rp : r1;
    for (size_t r = p0; r < p1; r++) d->pack(j->W + r * j->row_bytes, j->n_cols, panel + (r - p0) * prow);
    for (size_t t0 = 0; t0 < j->n_tok; t0 += T) {
      size_t nt = j->n_tok - t0 < T ? j->n_tok - t0 : T;
      const uint8_t *ar[LANE_MAXT];
      for (size_t t = 0; t < nt; t++) ar[t] = j->act + (t0 + t) * j->act_stride;
      for (size_t rr = p0; rr < p1; rr += R) {
        size_t nr = p1 - rr < R ? p1 - rr : R;
        const uint8_t *wr[LANE_MAXR];
        for (size_t r = 0; r < nr; r++) wr[r] = panel + (rr - p0 + r) * prow;
        d->tiles[nr - 1][nt - 1](wr, ar, ng, j->y + t0 * j->ldy + rr, j->ldy);
      }
    }
  }
}

#ifdef HS_CPU_X86

/* ---- AVX-512 VNNI register tile ---- */

HS_INLINE HS_TARGET_AVX512 void lane_tile_avx512(const uint8_t *const *wr, const uint8_t *const *ar,
                                                 size_t n_groups, float *y, size_t ldy, int R,
                                                 int T, int NDW, size_t WG, size_t AG,
                                                 int has_init, int has_min) {
  __m512 facc[LANE_MAXR][LANE_MAXT];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) facc[r][t] = _mm512_setzero_ps();
  for (size_t grp = 0; grp < n_groups; grp++) {
    __m512i iacc[LANE_MAXR][LANE_MAXT];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
      __m512i init = has_init ? _mm512_load_si512(ar[t] + grp * AG + NDW * 64) : _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) iacc[r][t] = init;
    }
#pragma GCC unroll 8
    for (int g = 0; g < NDW; g++) {
      __m512i x[LANE_MAXT];
#pragma GCC unroll 4
      for (int t = 0; t < T; t++) x[t] = _mm512_load_si512(ar[t] + grp * AG + g * 64);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        __m512i w = _mm512_load_si512(wr[r] + grp * WG + g * 64);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) iacc[r][t] = _mm512_dpbusd_epi32(iacc[r][t], w, x[t]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      __m512 s1 = _mm512_load_ps((const float *)(wr[r] + grp * WG + NDW * 64));
#pragma GCC unroll 4
      for (int t = 0; t < T; t++) {
        const float *as = (const float *)(ar[t] + grp * AG + NDW * 64);
        __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(iacc[r][t]), s1);
        if (has_min) {
          __m512 s2 = _mm512_load_ps((const float *)(wr[r] + grp * WG + NDW * 64 + 64));
          u = _mm512_fnmadd_ps(_mm512_load_ps(as), s2, u);
        }
        facc[r][t] = _mm512_fmadd_ps(u, _mm512_load_ps(as + 16), facc[r][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) y[(size_t)t * ldy + (size_t)r] = hs_sum16_avx512(facc[r][t]);
}

/* ---- AVX2 register tile: the same lanes as two halves of 8 ---- */

/* Exact int32 dot of 4-byte groups: unsigned w (< 128 unless sign trick) times signed x. */
HS_INLINE HS_TARGET_AVX2 __m256i lane_dot_avx2(__m256i acc, __m256i w, __m256i x, int sign_trick) {
  __m256i p;
  if (sign_trick) p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  else p = _mm256_maddubs_epi16(w, x);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

HS_INLINE HS_TARGET_AVX2 void lane_tile_avx2(const uint8_t *const *wr, const uint8_t *const *ar,
                                             size_t n_groups, float *y, size_t ldy, int R, int T,
                                             int NDW, size_t WG, size_t AG, int has_init,
                                             int has_min, int sign_trick) {
  __m256 facc[LANE_MAXR][LANE_MAXT][2];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) facc[r][t][0] = facc[r][t][1] = _mm256_setzero_ps();
  for (size_t grp = 0; grp < n_groups; grp++) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      __m256i iacc[LANE_MAXR][LANE_MAXT];
#pragma GCC unroll 4
      for (int t = 0; t < T; t++) {
        __m256i init = has_init ? _mm256_load_si256((const __m256i *)(ar[t] + grp * AG + NDW * 64 + 32 * h))
                                : _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) iacc[r][t] = init;
      }
#pragma GCC unroll 8
      for (int g = 0; g < NDW; g++) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
          __m256i w = _mm256_load_si256((const __m256i *)(wr[r] + grp * WG + g * 64 + 32 * h));
#pragma GCC unroll 4
          for (int t = 0; t < T; t++) {
            __m256i x = _mm256_load_si256((const __m256i *)(ar[t] + grp * AG + g * 64 + 32 * h));
            iacc[r][t] = lane_dot_avx2(iacc[r][t], w, x, sign_trick);
          }
        }
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        __m256 s1 = _mm256_load_ps((const float *)(wr[r] + grp * WG + NDW * 64 + 32 * h));
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
          const float *as = (const float *)(ar[t] + grp * AG + NDW * 64 + 32 * h);
          __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(iacc[r][t]), s1);
          if (has_min) {
            __m256 s2 = _mm256_load_ps((const float *)(wr[r] + grp * WG + NDW * 64 + 64 + 32 * h));
            u = _mm256_fnmadd_ps(_mm256_load_ps(as), s2, u);
          }
          facc[r][t][h] = _mm256_fmadd_ps(u, _mm256_load_ps(as + 16), facc[r][t][h]);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
      y[(size_t)t * ldy + (size_t)r] = hs_sum16_avx2(facc[r][t][0], facc[r][t][1]);
}

/* ---- the direct matrix-vector path (AVX-512) ----
 *
 * For one or two tokens, packing a row costs more than its products: every weight byte is read
 * once, transposed, stored and loaded again for a single vpdpbusd. The direct kernels (vec_rows
 * of Q4_K and Q6_K) instead run vpdpbusd on the weights' own byte order, against activations
 * quantized into the matching "vector" format (act_quant.c), so each 32-bit lane holds a 4-byte
 * partial dot of some chunk; a chunk is spread over 8 (chunks of 32) or 4 (chunks of 16) lanes
 * of one vector. A transposing reduction tree then sums each chunk's lanes into one lane: 16
 * chunks in 7 (or 3) unpack-and-add steps plus one lane permutation, after which the chunk dots
 * sit in chunk order, exactly the integer vector i the lane tile computes for the same group.
 * The float steps that follow are the lane tile's, instruction for instruction, so the direct
 * path gives the tile's bits (integer sums are exact in any order). */

/* p[v], v < 8: lanes 0..7 hold partial dots of chunk X_v, lanes 8..15 of chunk Y_v. Returns the
 * sums in lane order X_0..X_3, Y_0..Y_3, X_4..X_7, Y_4..Y_7. */
HS_INLINE HS_TARGET_AVX512 __m512i vec_reduce8_avx512(const __m512i p[8]) {
  __m512i s[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
    s[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2 * i], p[2 * i + 1]),
                            _mm512_unpackhi_epi32(p[2 * i], p[2 * i + 1]));
  /* 128-bit lane L of t0 now holds, at position v, the sum of p[v]'s four lanes in L */
  __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi64(s[0], s[1]), _mm512_unpackhi_epi64(s[0], s[1]));
  __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi64(s[2], s[3]), _mm512_unpackhi_epi64(s[2], s[3]));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(t0, t1, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* p[v], v < 4: 128-bit lane L holds partial dots of chunk 4v + L. Returns chunk 4v + L's sum in
 * lane 4L + v. */
HS_INLINE HS_TARGET_AVX512 __m512i vec_reduce4_avx512(const __m512i p[4]) {
  __m512i s0 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
  __m512i s1 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(s0, s1), _mm512_unpackhi_epi64(s0, s1));
}

/* Tokens a direct kernel takes at once (more go to the packed tiles, which reuse better). */
#define VEC_MAX_TOK 2

/* Instantiations: one function per (rows, tokens) up to the tile, and the table of them. */
#define LANE_TILE_FN(prefix, isa, r, t, ...)                                                     \
  HS_TARGET_##isa static void prefix##_##isa##_##r##x##t(const uint8_t *const *wr, const uint8_t *const *ar,    \
                                         size_t ng, float *y, size_t ldy) {                     \
    lane_tile_##isa(wr, ar, ng, y, ldy, r, t, __VA_ARGS__);                                     \
  }
#define LANE_TILE_ROW(prefix, isa, r, ...)          \
  LANE_TILE_FN(prefix, isa, r, 1, __VA_ARGS__)      \
  LANE_TILE_FN(prefix, isa, r, 2, __VA_ARGS__)      \
  LANE_TILE_FN(prefix, isa, r, 3, __VA_ARGS__)      \
  LANE_TILE_FN(prefix, isa, r, 4, __VA_ARGS__)
#define LANE_TILES(prefix, isa, ...)                \
  LANE_TILE_ROW(prefix, isa, 1, __VA_ARGS__)        \
  LANE_TILE_ROW(prefix, isa, 2, __VA_ARGS__)        \
  LANE_TILE_ROW(prefix, isa, 3, __VA_ARGS__)        \
  LANE_TILE_ROW(prefix, isa, 4, __VA_ARGS__)
#define LANE_TABLE_ROW(prefix, isa, r) \
  { prefix##_##isa##_##r##x1, prefix##_##isa##_##r##x2, prefix##_##isa##_##r##x3, prefix##_##isa##_##r##x4 }
#define LANE_TABLE(prefix, isa)                                                         \
  { LANE_TABLE_ROW(prefix, isa, 1), LANE_TABLE_ROW(prefix, isa, 2),                     \
    LANE_TABLE_ROW(prefix, isa, 3), LANE_TABLE_ROW(prefix, isa, 4) }

/* The two entry points of hs_cpu_kernel for a lane kernel of one ISA over its descriptor:
 * static panel_<isa> and rows_<isa>. */
#define LANE_ENTRY_POINTS(isa, desc)                                                           \
  static size_t panel_##isa(size_t n_cols, size_t n_tok) {                                     \
    return lane_panel_bytes(&(desc), n_cols, n_tok);                                           \
  }                                                                                            \
  static void rows_##isa(const hs_cpu_job *j, size_t r0, size_t r1, void *s) {                 \
    lane_rows(&(desc), j, r0, r1, s);                                                          \
  }

#endif /* HS_CPU_X86 */

#endif
