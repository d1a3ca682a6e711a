/* matmul_f32.c: y = W x for F32 weights (see cpu/kernels.h), f32 products, f32 accumulation.
 *
 * Reference: one running f32 sum per output, elements in order.
 * AVX-512 and AVX2: 16 lanes per pair, element k in lane k mod 16, reduced by hs_cpu_sum16
 * (float_kernel.h); a 4 x 5 register tile (rows x tokens) on AVX-512, 2 x 2 on AVX2.
 *
 * Decode (one token) on AVX-512 has a direct path (vec_rows): a matrix-vector product only
 * streams weights, so it is bound by memory bandwidth, not arithmetic, and the weights are a
 * file mapping in 4 KiB pages, where the hardware prefetchers stop at every page boundary. So it
 * reads one row after the other (a thread's rows are one linear stream, not the four or eight
 * interleaved streams of a register tile, each a different page) and prefetches VEC_PF_BYTES
 * ahead in software, which runs across page boundaries (the page walk starts early). Measured on
 * bench-250m F32 decode (2 threads, noisy shared machine): ~26 GB/s with 4- or 8-row tiles,
 * ~29-36 GB/s this way. Per (row, token)
 * pair it performs exactly the tile's operations (one accumulator, fma in k order, masked tail,
 * hs_sum16), so it gives the tile's bits.
 */
#include <string.h>

#include "engine/cpu/float_kernel.h"
#include "engine/cpu/types.h"
#include "hswarm/quant.h"

/* ---- reference ---- */

static void rows_ref(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) {
  (void)scratch;
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *wr = j->W + r * j->row_bytes;
    for (size_t t = 0; t < j->n_tok; t++) {
      const float *xt = j->x + t * j->n_cols;
      float acc = 0.0f;
      for (size_t k = 0; k < j->n_cols; k++) {
        float w;
        memcpy(&w, wr + 4 * k, 4);
        acc += w * xt[k];
      }
      j->y[t * j->ldy + r] = acc;
    }
  }
}

static const hs_cpu_kernel k_ref = {{HS_CPU_ACT_NONE, HS_CPU_SIDE_NONE, 0}, hs_cpu_panel_none, rows_ref, 1, HS_CPU_NO_VEC};

#ifdef HS_CPU_X86
FLT_TILES(f32, avx512, FLT_F32)
FLT_TILES(f32, avx2, FLT_F32)
static const flt_desc d_avx512 = {4, 5, 4, FLT_TABLE(f32, avx512)};
static const flt_desc d_avx2 = {2, 2, 4, FLT_TABLE(f32, avx2)};

static void rows_avx512(const hs_cpu_job *j, size_t r0, size_t r1, void *s) {
  (void)s;
  flt_rows(&d_avx512, j, r0, r1);
}
static void rows_avx2(const hs_cpu_job *j, size_t r0, size_t r1, void *s) {
  (void)s;
  flt_rows(&d_avx2, j, r0, r1);
}

#define VEC_PF_BYTES 2048

/* One row against one token, as flt_tile_avx512 computes each pair. */
HS_TARGET_AVX512 static float vec_row_avx512(const uint8_t *w, const float *x, size_t n) {
  __m512 acc = _mm512_setzero_ps();
  size_t k = 0;
  for (; k + 16 <= n; k += 16) {
    _mm_prefetch((const char *)(w + k * 4) + VEC_PF_BYTES, _MM_HINT_T0);
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + k * 4), _mm512_loadu_ps(x + k), acc);
  }
  if (k < n) {
    __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + k * 4), _mm512_maskz_loadu_ps(m, x + k), acc);
  }
  return hs_sum16_avx512(acc);
}

static void vec_rows_avx512(const hs_cpu_job *j, size_t r0, size_t r1, void *s) {
  (void)s;
  for (size_t t = 0; t < j->n_tok; t++) {
    const float *x = j->x + t * j->n_cols;
    float *y = j->y + t * j->ldy;
    for (size_t r = r0; r < r1; r++) y[r] = vec_row_avx512(j->W + r * j->row_bytes, x, j->n_cols);
  }
}
static const hs_cpu_kernel k_avx512 = {{HS_CPU_ACT_NONE, HS_CPU_SIDE_NONE, 0}, hs_cpu_panel_none, rows_avx512, 4,
                                       {HS_CPU_ACT_NONE, HS_CPU_SIDE_NONE, 0}, vec_rows_avx512, 1};
static const hs_cpu_kernel k_avx2 = {{HS_CPU_ACT_NONE, HS_CPU_SIDE_NONE, 0}, hs_cpu_panel_none, rows_avx2, 2, HS_CPU_NO_VEC};
#endif

HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_f32, k_ref, k_avx2, k_avx512)
