/* engine/cpu/kernels.h: the CPU backend's matrix kernels and the one call the layer loop uses.
 *
 * The forward pass multiplies weight matrices stored in their file types (F32, F16, BF16, Q8_0,
 * Q4_0, Q4_K, Q6_K; see hswarm/quant.h) by f32 activations:
 *
 *   y[t][r] = sum_k W[r][k] * x[t][k]      r in [0, n_rows), t in [0, n_tok), k in [0, n_cols)
 *
 *   W  n_rows rows of n_cols elements, each row hs_quant_row_bytes(type, n_cols) bytes, packed
 *      (a GGUF tensor of ne = [n_cols, n_rows] as mmapped, no alignment assumed beyond 1 byte)
 *   x  n_tok rows of n_cols floats, row t at x + t * n_cols
 *   y  n_tok rows of n_rows floats, row t at y + t * ldy  (ldy >= n_rows)
 *
 * Quantized weight types multiply against activations quantized on the fly (Q8_0-style blocks
 * of 32 for Q8_0 and Q4_0, 256-element blocks with 16-element sums for Q4_K and Q6_K); float types
 * multiply in f32. Each type lives in its own file (cpu/quant_<type>.c) with a plain C reference
 * beside its AVX2 and AVX-512 paths.
 *
 * Batch invariance (needed by the scheduler's determinism, see DESIGN.md): y[t][r] depends only on
 * W's row r and x's row t, never on n_tok, n_rows, the thread count, or where (r, t) fell in a
 * tile: every path reduces each dot product in one fixed order. Within one process, one ISA is
 * used for everything (chosen once at start-up), so results are reproducible run to run on the
 * same machine. Different ISAs may differ in the last bits (checked against the reference with a
 * tolerance in the tests).
 *
 * Threads: hs_cpu_matmul splits the work over a hs_threadpool (core/threadpool.h); the caller's
 * thread takes part. Scratch memory for quantized activations comes from the hs_cpu_scratch the
 * caller passes (grown on demand, reused across calls, so steady-state calls do not allocate).
 */
#ifndef HS_ENGINE_CPU_KERNELS_H
#define HS_ENGINE_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"

/* Instruction sets the kernels have paths for, best last. */
typedef enum hs_cpu_isa {
  HS_CPU_ISA_REF = 0,    /* plain C */
  HS_CPU_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
  HS_CPU_ISA_AVX512 = 2  /* AVX-512 F/BW/VL + VNNI */
} hs_cpu_isa;

/* The best ISA this CPU supports, or the one named by the environment variable HS_CPU_ISA
 * ("ref", "avx2", "avx512") when set and supported. Decided once per process. */
hs_cpu_isa hs_cpu_isa_active(void);
/* Whether this CPU can run a given ISA's paths. */
int hs_cpu_isa_supported(hs_cpu_isa isa);
/* "ref", "avx2", "avx512". Static. */
const char *hs_cpu_isa_name(hs_cpu_isa isa);

/* Reusable scratch for quantized activations; zero-initialise, release with hs_cpu_scratch_free. */
typedef struct hs_cpu_scratch {
  void *data;
  size_t size;
} hs_cpu_scratch;
void hs_cpu_scratch_free(hs_cpu_scratch *s);

/* Whether the kernels support a weight type with rows of n_cols elements (the type is one of the
 * seven above and n_cols a positive multiple of its block; float types take any n_cols). */
int hs_cpu_matmul_supported(int type, size_t n_cols);

/* y = W x as above, with the active ISA. tp may be NULL (run on the caller's thread only).
 * Returns 0, HS_EINVAL (unsupported type, bad n_cols, NULL pointer) or HS_ENOMEM (scratch). */
int hs_cpu_matmul(hs_threadpool *tp, hs_cpu_scratch *scratch, int type, const void *W,
                  size_t n_rows, size_t n_cols, const float *x, size_t n_tok, float *y, size_t ldy);

/* Several products of the same activations: y_i = W_i x for i < n (1 <= n <= HS_CPU_MM_MAX), each
 * matrix with its own type, rows and output (y rows ldy floats apart), as n hs_cpu_matmul calls
 * would compute them, bit for bit, but with x quantized once per activation format and all the
 * rows split over the pool in one job (the q/k/v projections; gate and up). Pointers are
 * borrowed for the call. Errors as hs_cpu_matmul's. */
#define HS_CPU_MM_MAX 4
typedef struct hs_cpu_mm {
  int type;
  const void *W;
  size_t n_rows;
  float *y;
  size_t ldy;
} hs_cpu_mm;
int hs_cpu_matmul_multi(hs_threadpool *tp, hs_cpu_scratch *scratch, const hs_cpu_mm *mm, size_t n,
                        size_t n_cols, const float *x, size_t n_tok);

/* The same with a given ISA (tests and benchmarks compare paths); HS_EINVAL if unsupported here. */
int hs_cpu_matmul_isa(hs_cpu_isa isa, hs_threadpool *tp, hs_cpu_scratch *scratch, int type,
                      const void *W, size_t n_rows, size_t n_cols, const float *x, size_t n_tok,
                      float *y, size_t ldy);

/* A message with detail about the last error of hs_cpu_matmul* on this thread. Static per thread. */
const char *hs_cpu_last_error(void);

#endif
