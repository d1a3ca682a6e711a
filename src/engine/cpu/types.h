/* engine/cpu/types.h: the per-type kernel table behind hs_cpu_matmul (internal to engine/cpu).
 *
 * Each weight type's file (matmul_f32.c, matmul_f16.c, quant_<type>.c) provides one hs_cpu_kernel
 * per instruction set. backend.c validates the call, quantizes the activations once (act_quant),
 * splits the rows over the thread pool, and calls `rows` for each piece.
 *
 * Two kinds of activation buffer exist (see act_quant.c for the exact layouts):
 *   - the reference formats (plain blocks in element order), read by the C reference kernels;
 *   - the "lane" formats, read by the AVX2 and AVX-512 kernels, which store each group of 16
 *     chunks (16 blocks of 32 elements, or 16 sub-blocks of 16) transposed, so that one 512-bit
 *     vector holds the same 4-byte slice of 16 chunks and every lane of an integer accumulator
 *     ends a group holding one chunk's exact dot product (see quant_common_simd.h).
 * Float weight types read x directly (act_row_bytes is 0).
 *
 * Lifetimes: every pointer in hs_cpu_job is borrowed from the hs_cpu_matmul call for its
 * duration; `scratch` passed to rows() is the calling worker's private area of panel_bytes. */
#ifndef HS_ENGINE_CPU_TYPES_H
#define HS_ENGINE_CPU_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/cpu/kernels.h"

/* Activation formats (the a_fmt of a kernel). */
typedef enum hs_cpu_act_fmt {
  HS_CPU_ACT_NONE = 0,   /* float types read x directly */
  HS_CPU_ACT_REF_Q8 = 1, /* reference, blocks of 32: f32 d, int32 sum, int8 q[32] */
  HS_CPU_ACT_REF_K = 2,  /* reference, blocks of 256: f32 d, int16 bsums[16], int8 q[256] */
  HS_CPU_ACT_L32 = 3,    /* lanes, groups of 16 x 32 elements: Q8_0, Q4_0, Q4_K weights */
  HS_CPU_ACT_L16 = 4,    /* lanes, groups of 16 x 16 elements: Q6_K weights */
  /* "Vector" formats for the direct matrix-vector kernels (vec_rows below): the same groups,
   * side vector and scales as L32 / L16, but each chunk's codes contiguous, chunk by chunk */
  HS_CPU_ACT_V32 = 5,    /* groups of 16 x 32, chunks in element order: Q8_0 weights */
  HS_CPU_ACT_V32K = 6,   /* groups of 16 x 32, chunks in Q4_K nibble order 0,2,1,3, 4,6,5,7, .. */
  HS_CPU_ACT_V16 = 7     /* groups of 16 x 16, chunks in element order: Q6_K weights */
} hs_cpu_act_fmt;

/* What the lane formats store in their per-lane int32/f32 side vector, per weight type. */
typedef enum hs_cpu_act_side {
  HS_CPU_SIDE_NONE = 0,    /* int32 zeros */
  HS_CPU_SIDE_CORR128 = 1, /* int32 -128 * (sum of the chunk's codes): Q8_0 weights stored +128 */
  HS_CPU_SIDE_CORR8 = 2,   /* int32 -8 * sum: Q4_0 codes 0..15 stand for q - 8 */
  HS_CPU_SIDE_CORR32 = 3,  /* int32 -32 * sum: Q6_K codes 0..63 stand for q - 32 */
  HS_CPU_SIDE_ASUM = 4     /* f32 sum of the chunk's codes: Q4_K mins */
} hs_cpu_act_side;

/* How the activations of one call are quantized: format, scale block (32 or 256 elements). */
typedef struct hs_cpu_act_spec {
  hs_cpu_act_fmt fmt;
  hs_cpu_act_side side;
  unsigned scale_block; /* elements sharing one activation scale: 32 or 256 */
} hs_cpu_act_spec;

typedef struct hs_cpu_job {
  const struct hs_cpu_kernel *k;
  const uint8_t *W; /* n_rows rows of row_bytes */
  size_t row_bytes, n_rows, n_cols;
  const float *x;   /* n_tok rows of n_cols (float kernels) */
  const uint8_t *act; /* n_tok rows of act_stride bytes (quantized kernels) */
  size_t act_stride;
  size_t n_tok;
  float *y;
  size_t ldy;
} hs_cpu_job;

typedef struct hs_cpu_kernel {
  hs_cpu_act_spec act;
  /* Per-worker scratch bytes for a call of n_cols columns and n_tok tokens (packed weights). */
  size_t (*panel_bytes)(size_t n_cols, size_t n_tok);
  /* Computes y[t][r] for r in [r0, r1) and every token. */
  void (*rows)(const hs_cpu_job *job, size_t r0, size_t r1, void *scratch);
  /* Rows per register tile: row splits between tasks are multiples of this. */
  unsigned row_tile;
  /* Optional direct path for calls of at most vec_max_tok tokens (decode): rows computed straight
   * from the weights' file layout against activations in vec_act's format, with no packing and
   * no panel scratch. It must give exactly the bits of `rows` (batch invariance). NULL: none. */
  hs_cpu_act_spec vec_act;
  void (*vec_rows)(const hs_cpu_job *job, size_t r0, size_t r1, void *scratch);
  unsigned vec_max_tok;
} hs_cpu_kernel;

/* The trailing initializers of a kernel without a direct path. */
#define HS_CPU_NO_VEC {HS_CPU_ACT_NONE, HS_CPU_SIDE_NONE, 0}, NULL, 0

/* ---- per-type tables (NULL when the type has no path for that ISA) ---- */
/* The panel size of a kernel that packs nothing: 0. */
size_t hs_cpu_panel_none(size_t n_cols, size_t n_tok);

/* Defines `const hs_cpu_kernel *fn(hs_cpu_isa)` returning &ref, &avx2 or &avx512 (the last two
 * only where HS_CPU_X86 is defined), NULL for another ISA. */
#ifdef HS_CPU_X86
#define HS_CPU_KERNEL_LOOKUP(fn, ref, avx2, avx512)                                             \
  const hs_cpu_kernel *fn(hs_cpu_isa isa) {                                                     \
    return isa == HS_CPU_ISA_REF ? &(ref) : isa == HS_CPU_ISA_AVX2 ? &(avx2)                   \
                                  : isa == HS_CPU_ISA_AVX512 ? &(avx512) : NULL;               \
  }
#else
#define HS_CPU_KERNEL_LOOKUP(fn, ref, avx2, avx512)                                             \
  const hs_cpu_kernel *fn(hs_cpu_isa isa) { return isa == HS_CPU_ISA_REF ? &(ref) : NULL; }
#endif

const hs_cpu_kernel *hs_cpu_kernel_f32(hs_cpu_isa isa);
const hs_cpu_kernel *hs_cpu_kernel_f16(hs_cpu_isa isa);
const hs_cpu_kernel *hs_cpu_kernel_bf16(hs_cpu_isa isa);
const hs_cpu_kernel *hs_cpu_kernel_q8_0(hs_cpu_isa isa);
const hs_cpu_kernel *hs_cpu_kernel_q4_0(hs_cpu_isa isa);
const hs_cpu_kernel *hs_cpu_kernel_q4_k(hs_cpu_isa isa);
const hs_cpu_kernel *hs_cpu_kernel_q6_k(hs_cpu_isa isa);
const hs_cpu_kernel *hs_cpu_kernel_q4_1(hs_cpu_isa isa);   /* quant_block32.c */
const hs_cpu_kernel *hs_cpu_kernel_q5_0(hs_cpu_isa isa);   /* quant_block32.c */
const hs_cpu_kernel *hs_cpu_kernel_q5_1(hs_cpu_isa isa);   /* quant_block32.c */
const hs_cpu_kernel *hs_cpu_kernel_iq4_nl(hs_cpu_isa isa); /* quant_block32.c */
const hs_cpu_kernel *hs_cpu_kernel_q2_k(hs_cpu_isa isa);   /* quant_kblock.c */
const hs_cpu_kernel *hs_cpu_kernel_q3_k(hs_cpu_isa isa);   /* quant_kblock.c */
const hs_cpu_kernel *hs_cpu_kernel_q5_k(hs_cpu_isa isa);   /* quant_kblock.c */
const hs_cpu_kernel *hs_cpu_kernel_iq4_xs(hs_cpu_isa isa); /* quant_kblock.c */

/* ---- activation quantization (act_quant.c) ---- */

/* Bytes of one quantized activation row of n_cols elements in a given spec (0 for NONE). */
size_t hs_cpu_act_row_bytes(const hs_cpu_act_spec *spec, size_t n_cols);
/* Quantizes rows [t0, t1) of x (n_cols each) into act (rows of hs_cpu_act_row_bytes), with the
 * given ISA's code (all ISAs give bit-identical bytes). */
void hs_cpu_act_quantize(hs_cpu_isa isa, const hs_cpu_act_spec *spec, const float *x,
                         size_t n_cols, size_t t0, size_t t1, uint8_t *act);

/* Reference-format accessors (act_quant.c documents the layout). */
#define HS_CPU_REF_Q8_BLOCK_BYTES 40  /* f32 d, int32 sum, int8 q[32] */
#define HS_CPU_REF_K_BLOCK_BYTES 292  /* f32 d, int16 bsums[16], int8 q[256] */

/* Lane formats: bytes per group of 16 chunks, and the offsets of the side vector and scales. */
#define HS_CPU_L32_GROUP_ELEMS 512
#define HS_CPU_L32_GROUP_BYTES 640 /* int8 q[8][16][4], side[16], f32 dx[16] */
#define HS_CPU_L16_GROUP_ELEMS 256
#define HS_CPU_L16_GROUP_BYTES 384 /* int8 q[4][16][4], side[16], f32 dx[16] */
/* The vector formats' groups have the same sizes: V32 / V32K as L32, V16 as L16. */

/* Slot (32-byte position in its group) of chunk c (0..15) in the V32K format: within each four
 * chunks the slots hold chunks 0, 2, 1, 3 (the permutation is its own inverse). Why: 64 code
 * bytes of a Q4_K block, split into low and high nibbles, are chunks (4m, 4m + 2) and
 * (4m + 1, 4m + 3), so the activation's 64-byte vectors then line up with them. */
static inline unsigned hs_cpu_v32k_slot(unsigned c) { return (c & ~3u) | ((c & 1u) << 1) | ((c >> 1) & 1u); }

/* The 16-lane horizontal sum every SIMD path ends a dot product with, as plain C (the SIMD
 * versions add in exactly this order): halves, then quarters, then pairs, then the last two. */
static inline float hs_cpu_sum16(const float v[16]) {
  float s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; i++) s8[i] = v[i] + v[i + 8];
  for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
  for (int i = 0; i < 2; i++) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];
}

#endif
