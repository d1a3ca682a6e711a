/* matmul_f16.c: y = W x for F16 and BF16 weights (see cpu/kernels.h): each weight is converted
 * exactly to f32 and multiplied by the f32 activations, f32 accumulation.
 *
 * Reference: the row is converted once into the worker's scratch, then one running f32 sum per
 * output, elements in order (the same arithmetic as the F32 reference on the converted row).
 * AVX-512 and AVX2: the float register tiles of float_kernel.h, converting each loaded weight
 * vector (vcvtph2ps for F16, a 16-bit shift for BF16) and using it for every token of the tile.
 */
#include <string.h>

#include "engine/cpu/float_kernel.h"
#include "engine/cpu/types.h"
#include "hswarm/quant.h"

static size_t panel_row(size_t n_cols, size_t n_tok) {
  (void)n_tok;
  return n_cols * sizeof(float);
}

/* ---- reference ---- */

static void rows_ref(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch, int bf16) {
  float *wf = scratch;
  for (size_t r = r0; r < r1; r++) {
    const uint8_t *wr = j->W + r * j->row_bytes;
    for (size_t k = 0; k < j->n_cols; k++) {
      uint16_t h = (uint16_t)(wr[2 * k] | (wr[2 * k + 1] << 8));
      wf[k] = bf16 ? hs_quant_bf16_to_f32(h) : hs_quant_fp16_to_f32(h);
    }
    for (size_t t = 0; t < j->n_tok; t++) {
      const float *xt = j->x + t * j->n_cols;
      float acc = 0.0f;
      for (size_t k = 0; k < j->n_cols; k++) acc += wf[k] * xt[k];
      j->y[t * j->ldy + r] = acc;
    }
  }
}

static void rows_ref_f16(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) {
  rows_ref(j, r0, r1, scratch, 0);
}

static void rows_ref_bf16(const hs_cpu_job *j, size_t r0, size_t r1, void *scratch) {
  rows_ref(j, r0, r1, scratch, 1);
}

static const hs_cpu_kernel k_ref_f16 = {{HS_CPU_ACT_NONE, HS_CPU_SIDE_NONE, 0}, panel_row,
                                        rows_ref_f16, 1, HS_CPU_NO_VEC};
static const hs_cpu_kernel k_ref_bf16 = {{HS_CPU_ACT_NONE, HS_CPU_SIDE_NONE, 0}, panel_row,
                                         rows_ref_bf16, 1, HS_CPU_NO_VEC};

#ifdef HS_CPU_X86
FLT_TILES(f16, avx512, FLT_F16)
FLT_TILES(f16, avx2, FLT_F16)
FLT_TILES(bf16, avx512, FLT_BF16)
FLT_TILES(bf16, avx2, FLT_BF16)
static const flt_desc d_f16_avx512 = {4, 5, 2, FLT_TABLE(f16, avx512)};
static const flt_desc d_f16_avx2 = {2, 2, 2, FLT_TABLE(f16, avx2)};
static const flt_desc d_bf16_avx512 = {4, 5, 2, FLT_TABLE(bf16, avx512)};
static const flt_desc d_bf16_avx2 = {2, 2, 2, FLT_TABLE(bf16, avx2)};
#define ROWS_FN(name, desc)                                                        \
  static void name(const hs_cpu_job *j, size_t r0, size_t r1, void *s) {           \
    (void)s;                                                                       \
    flt_rows(&desc, j, r0, r1);                                                    \
  }
ROWS_FN(rows_f16_avx512, d_f16_avx512)
ROWS_FN(rows_f16_avx2, d_f16_avx2)
ROWS_FN(rows_bf16_avx512, d_bf16_avx512)
ROWS_FN(rows_bf16_avx2, d_bf16_avx2)
#define FLOAT_ACT {HS_CPU_ACT_NONE, HS_CPU_SIDE_NONE, 0}
static const hs_cpu_kernel k_f16_avx512 = {FLOAT_ACT, hs_cpu_panel_none, rows_f16_avx512, 4, HS_CPU_NO_VEC};
static const hs_cpu_kernel k_f16_avx2 = {FLOAT_ACT, hs_cpu_panel_none, rows_f16_avx2, 2, HS_CPU_NO_VEC};
static const hs_cpu_kernel k_bf16_avx512 = {FLOAT_ACT, hs_cpu_panel_none, rows_bf16_avx512, 4, HS_CPU_NO_VEC};
static const hs_cpu_kernel k_bf16_avx2 = {FLOAT_ACT, hs_cpu_panel_none, rows_bf16_avx2, 2, HS_CPU_NO_VEC};
#endif

HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_f16, k_ref_f16, k_f16_avx2, k_f16_avx512)

HS_CPU_KERNEL_LOOKUP(hs_cpu_kernel_bf16, k_ref_bf16, k_bf16_avx2, k_bf16_avx512)
