/* backend.c: the CPU kernels' entry point: instruction-set choice, argument checks, activation
 * quantization, and splitting a matrix product over the thread pool (see cpu/kernels.h).
 *
 * The ISA is decided once per process (the best the CPU supports, or HS_CPU_ISA=ref|avx2|avx512
 * when that one is supported), so every product of a run reduces its dot products the same way.
 *
 * One call goes:
 *   1. check the arguments and find the kernel of (ISA, type) in the per-type tables (types.h);
 *   2. size the scratch: the quantized activations (one row per token, in the format the kernel
 *      reads) followed by one private area per worker for packed weight panels; grow it if needed
 *      (it is reused across calls, so steady state does not allocate);
 *   3. quantize the activations once, on the pool when there are many of them;
 *   4. split the rows into tasks of whole register tiles and run them on the pool.
 *      hs_cpu_matmul_multi does this for several matrices that multiply the same x at once:
 *      their activations are quantized once per format and all their tasks form one pool job
 *      (one dispatch and one join instead of several, and no thread idles between them).
 * Calls of few tokens use a kernel's direct path when it has one (vec_rows, types.h). Each task
 *      computes its rows for every token, so each output element is computed by exactly one
 *      kernel invocation whose arithmetic does not depend on the split (batch invariance is the
 *      kernels' job; the split only decides who computes what).
 *
 * Tasks are contiguous row ranges, about four per thread: contiguous so that matrix-vector
 * products stream each thread's weights linearly, several per thread so that a thread slowed by
 * another process on its core does not hold the join back.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/last_error.h"
#include "engine/cpu/types.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/quant.h"

static _Thread_local hs_errbuf err;

const char *hs_cpu_last_error(void) { return err.msg; }

size_t hs_cpu_panel_none(size_t n_cols, size_t n_tok) {
  (void)n_cols;
  (void)n_tok;
  return 0;
}

/* ---- instruction sets ---- */

#if defined(__x86_64__) && defined(__GNUC__)
/* F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c". */
static int has_f16c(void) {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

static int detect(hs_cpu_isa isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  switch (isa) {
  case HS_CPU_ISA_REF: return 1;
  case HS_CPU_ISA_AVX2:
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
  case HS_CPU_ISA_AVX512:
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma") && has_f16c();
  default: return 0;
  }
#else
  return isa == HS_CPU_ISA_REF;
#endif
}

static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static int isa_ok[3];
static hs_cpu_isa isa_chosen;

static void isa_init(void) {
  for (int i = 0; i < 3; i++) isa_ok[i] = detect((hs_cpu_isa)i);
  isa_chosen = isa_ok[HS_CPU_ISA_AVX512] ? HS_CPU_ISA_AVX512
               : isa_ok[HS_CPU_ISA_AVX2] ? HS_CPU_ISA_AVX2
                                          : HS_CPU_ISA_REF;
  const char *env = getenv("HS_CPU_ISA");
  if (env) {
    for (int i = 0; i < 3; i++)
      if (strcmp(env, hs_cpu_isa_name((hs_cpu_isa)i)) == 0 && isa_ok[i]) isa_chosen = (hs_cpu_isa)i;
  }
}

int hs_cpu_isa_supported(hs_cpu_isa isa) {
  if ((unsigned)isa > HS_CPU_ISA_AVX512) return 0;
  pthread_once(&isa_once, isa_init);
  return isa_ok[isa];
}

hs_cpu_isa hs_cpu_isa_active(void) {
  pthread_once(&isa_once, isa_init);
  return isa_chosen;
}

const char *hs_cpu_isa_name(hs_cpu_isa isa) {
  switch (isa) {
  case HS_CPU_ISA_REF: return "ref";
  case HS_CPU_ISA_AVX2: return "avx2";
  case HS_CPU_ISA_AVX512: return "avx512";
  default: return "?";
  }
}

/* ---- scratch ---- */

void hs_cpu_scratch_free(hs_cpu_scratch *s) {
  if (!s) return;
  hs_free(s->data);
  s->data = NULL;
  s->size = 0;
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* ---- kernel lookup ---- */

static const hs_cpu_kernel *kernel_for(hs_cpu_isa isa, int type) {
  switch (type) {
  case HS_QUANT_F32: return hs_cpu_kernel_f32(isa);
  case HS_QUANT_F16: return hs_cpu_kernel_f16(isa);
  case HS_QUANT_BF16: return hs_cpu_kernel_bf16(isa);
  case HS_QUANT_Q8_0: return hs_cpu_kernel_q8_0(isa);
  case HS_QUANT_Q4_0: return hs_cpu_kernel_q4_0(isa);
  case HS_QUANT_Q4_K: return hs_cpu_kernel_q4_k(isa);
  case HS_QUANT_Q6_K: return hs_cpu_kernel_q6_k(isa);
  case HS_QUANT_Q4_1: return hs_cpu_kernel_q4_1(isa);
  case HS_QUANT_Q5_0: return hs_cpu_kernel_q5_0(isa);
  case HS_QUANT_Q5_1: return hs_cpu_kernel_q5_1(isa);
  case HS_QUANT_IQ4_NL: return hs_cpu_kernel_iq4_nl(isa);
  case HS_QUANT_Q2_K: return hs_cpu_kernel_q2_k(isa);
  case HS_QUANT_Q3_K: return hs_cpu_kernel_q3_k(isa);
  case HS_QUANT_Q5_K: return hs_cpu_kernel_q5_k(isa);
  case HS_QUANT_IQ4_XS: return hs_cpu_kernel_iq4_xs(isa);
  default: return NULL;
  }
}

int hs_cpu_matmul_supported(int type, size_t n_cols) {
  if (!kernel_for(HS_CPU_ISA_REF, type)) return 0;
  size_t be = hs_quant_block_elems(type);
  return n_cols > 0 && be > 0 && n_cols % be == 0;
}

/* ---- the parallel pieces ---- */

typedef struct act_ctx {
  hs_cpu_isa isa;
  const hs_cpu_act_spec *spec;
  const float *x;
  size_t n_cols, n_tok, per_task;
  uint8_t *act;
} act_ctx;

static void act_task(void *vctx, size_t task, unsigned worker) {
  (void)worker;
  act_ctx *c = vctx;
  size_t t0 = task * c->per_task, t1 = t0 + c->per_task;
  if (t1 > c->n_tok) t1 = c->n_tok;
  hs_cpu_act_quantize(c->isa, c->spec, c->x, c->n_cols, t0, t1, c->act);
}

/* One matrix of a call and its share of the pool job's tasks. */
typedef struct mm_part {
  hs_cpu_job job;
  void (*rows)(const hs_cpu_job *job, size_t r0, size_t r1, void *scratch);
  const hs_cpu_act_spec *spec;
  hs_cpu_isa isa;
  unsigned tile;
  size_t n_units;         /* row tiles */
  size_t task0, n_tasks;  /* its tasks: [task0, task0 + n_tasks) of the job */
  size_t panel;
} mm_part;

typedef struct rows_ctx {
  const mm_part *parts;
  size_t n_parts;
  uint8_t *scratch;
  size_t scratch_stride;
} rows_ctx;

static void rows_task(void *vctx, size_t task, unsigned worker) {
  rows_ctx *c = vctx;
  size_t i = 0;
  while (task >= c->parts[i].task0 + c->parts[i].n_tasks) i++;
  const mm_part *p = &c->parts[i];
  size_t k = task - p->task0;
  size_t u0 = p->n_units * k / p->n_tasks, u1 = p->n_units * (k + 1) / p->n_tasks;
  size_t r0 = u0 * p->tile, r1 = u1 * p->tile;
  if (r1 > p->job.n_rows) r1 = p->job.n_rows;
  if (r0 >= r1) return;
  p->rows(&p->job, r0, r1, c->scratch ? c->scratch + worker * c->scratch_stride : NULL);
}

/* Activations of at least this many elements are quantized on the pool. */
#define PARALLEL_ACT_ELEMS 16384
/* Row tasks per thread (see the top: contiguous ranges, several per thread). */
#define TASKS_PER_THREAD 4

static int same_spec(const hs_cpu_act_spec *a, const hs_cpu_act_spec *b) {
  return a->fmt == b->fmt && a->side == b->side && a->scale_block == b->scale_block;
}

/* The products of one call: checks, scratch, one quantization per distinct activation format,
 * then every part's row tasks in one pool job. isas[i]: the ISA of part i. */
static int matmul_parts(const hs_cpu_isa *isas, hs_threadpool *tp, hs_cpu_scratch *scratch,
                        const hs_cpu_mm *mm, size_t n_mm, size_t n_cols, const float *x,
                        size_t n_tok) {
  if (n_mm == 0 || n_mm > HS_CPU_MM_MAX)
    return hs_set_error(&err, HS_EINVAL, "%zu products in one call (1..%d)", n_mm, HS_CPU_MM_MAX);
  mm_part parts[HS_CPU_MM_MAX];
  size_t n_parts = 0;
  unsigned nw = hs_threadpool_size(tp);
  for (size_t i = 0; i < n_mm; i++) {
    const hs_cpu_isa isa = isas[i];
    const int type = mm[i].type;
    if (!hs_cpu_isa_supported(isa))
      return hs_set_error(&err, HS_EINVAL, "instruction set %d not supported here", (int)isa);
    const hs_cpu_kernel *k = kernel_for(isa, type);
    if (!k) return hs_set_error(&err, HS_EINVAL, "tensor type %d has no CPU kernel", type);
    size_t be = hs_quant_block_elems(type);
    if (n_cols == 0 || n_cols % be != 0)
      return hs_set_error(&err, HS_EINVAL, "n_cols %zu is not a positive multiple of %zu", n_cols, be);
    if (mm[i].n_rows == 0 || n_tok == 0) continue;
    if (!mm[i].W || !x || !mm[i].y) return hs_set_error(&err, HS_EINVAL, "NULL matrix pointer");
    if (mm[i].ldy < mm[i].n_rows)
      return hs_set_error(&err, HS_EINVAL, "ldy %zu < n_rows %zu", mm[i].ldy, mm[i].n_rows);
    if (n_tok > SIZE_MAX / n_cols || mm[i].n_rows > SIZE_MAX / n_cols)
      return hs_set_error(&err, HS_EINVAL, "matrix too large");
    /* few tokens: the kernel's direct path when it has one (same bits, no packing) */
    const int vec = k->vec_rows && n_tok <= k->vec_max_tok;
    mm_part *p = &parts[n_parts++];
    p->job = (hs_cpu_job){.k = k, .W = mm[i].W, .row_bytes = hs_quant_row_bytes(type, n_cols),
                          .n_rows = mm[i].n_rows, .n_cols = n_cols, .x = x, .n_tok = n_tok,
                          .y = mm[i].y, .ldy = mm[i].ldy};
    p->rows = vec ? k->vec_rows : k->rows;
    p->spec = vec ? &k->vec_act : &k->act;
    p->isa = isa;
    p->tile = vec ? 1 : k->row_tile ? k->row_tile : 1;
    p->n_units = (mm[i].n_rows + p->tile - 1) / p->tile;
    p->panel = vec ? 0 : round64(k->panel_bytes(n_cols, n_tok));
    if (p->panel && nw > (SIZE_MAX / 4) / p->panel)
      return hs_set_error(&err, HS_EINVAL, "panel too large");
  }
  if (n_parts == 0) return 0;

  /* scratch: one activation buffer per distinct format, then a panel area per worker */
  size_t act_off[HS_CPU_MM_MAX], owner[HS_CPU_MM_MAX], need = 0, panel = 0;
  for (size_t i = 0; i < n_parts; i++) {
    mm_part *p = &parts[i];
    size_t act_row = hs_cpu_act_row_bytes(p->spec, n_cols);
    if (act_row && n_tok > (SIZE_MAX / 8) / act_row)
      return hs_set_error(&err, HS_EINVAL, "activations too large");
    p->job.act_stride = act_row;
    owner[i] = i; /* the first part with this format quantizes for all */
    for (size_t j = 0; j < i && owner[i] == i; j++)
      if (same_spec(parts[j].spec, p->spec)) owner[i] = j;
    if (owner[i] == i) {
      act_off[i] = need;
      need += round64(act_row * n_tok);
    } else {
      act_off[i] = act_off[owner[i]];
    }
    if (p->panel > panel) panel = p->panel;
  }
  size_t act_bytes = need;
  need += panel * nw;

  hs_cpu_scratch local = {NULL, 0};
  hs_cpu_scratch *s = scratch ? scratch : &local;
  uint8_t *base = NULL;
  if (need > 0) {
    if (s->size < need + 64) {
      void *mem = hs_malloc(need + 64);
      if (!mem) return hs_set_error(&err, HS_ENOMEM, "no memory for %zu bytes of kernel scratch", need);
      hs_free(s->data);
      s->data = mem;
      s->size = need + 64;
    }
    base = (uint8_t *)(((uintptr_t)s->data + 63) & ~(uintptr_t)63);
  }

  for (size_t i = 0; i < n_parts; i++) {
    mm_part *p = &parts[i];
    p->job.act = p->job.act_stride ? base + act_off[i] : NULL;
    if (!p->job.act_stride || owner[i] != i) continue;
    act_ctx ac = {p->isa, p->spec, x, n_cols, n_tok, n_tok, (uint8_t *)p->job.act};
    if (nw > 1 && n_tok > 1 && n_tok * n_cols >= PARALLEL_ACT_ELEMS) {
      size_t n_tasks = n_tok < (size_t)nw * 4 ? n_tok : (size_t)nw * 4;
      ac.per_task = (n_tok + n_tasks - 1) / n_tasks;
      hs_threadpool_run(tp, act_task, &ac, (n_tok + ac.per_task - 1) / ac.per_task);
    } else {
      hs_cpu_act_quantize(p->isa, p->spec, x, n_cols, 0, n_tok, (uint8_t *)p->job.act);
    }
  }

  /* about four tasks per thread in all, shared by the parts in proportion to their bytes */
  double total = 0;
  for (size_t i = 0; i < n_parts; i++) total += (double)parts[i].job.n_rows * (double)parts[i].job.row_bytes;
  size_t want = nw == 1 ? 1 : (size_t)nw * TASKS_PER_THREAD, next = 0;
  for (size_t i = 0; i < n_parts; i++) {
    mm_part *p = &parts[i];
    double share = (double)want * (double)p->job.n_rows * (double)p->job.row_bytes / total;
    size_t nt = (size_t)(share + 0.5);
    if (nt < 1) nt = 1;
    if (nt > p->n_units) nt = p->n_units;
    p->task0 = next;
    p->n_tasks = nt;
    next += nt;
  }
  rows_ctx rc = {.parts = parts, .n_parts = n_parts, .scratch = panel ? base + act_bytes : NULL,
                 .scratch_stride = panel};
  hs_threadpool_run(tp, rows_task, &rc, next);

  if (s == &local) hs_cpu_scratch_free(&local);
  return 0;
}

int hs_cpu_matmul_isa(hs_cpu_isa isa, hs_threadpool *tp, hs_cpu_scratch *scratch, int type,
                      const void *W, size_t n_rows, size_t n_cols, const float *x, size_t n_tok,
                      float *y, size_t ldy) {
  hs_cpu_mm one = {type, W, n_rows, y, ldy};
  return matmul_parts(&isa, tp, scratch, &one, 1, n_cols, x, n_tok);
}

/* The active ISA, or the reference where it has no kernel for the type. */
static hs_cpu_isa isa_for(int type) {
  hs_cpu_isa isa = hs_cpu_isa_active();
  return kernel_for(isa, type) ? isa : HS_CPU_ISA_REF; /* every type has a reference kernel */
}

int hs_cpu_matmul(hs_threadpool *tp, hs_cpu_scratch *scratch, int type, const void *W,
                  size_t n_rows, size_t n_cols, const float *x, size_t n_tok, float *y,
                  size_t ldy) {
  return hs_cpu_matmul_isa(isa_for(type), tp, scratch, type, W, n_rows, n_cols, x, n_tok, y, ldy);
}

int hs_cpu_matmul_multi(hs_threadpool *tp, hs_cpu_scratch *scratch, const hs_cpu_mm *mm, size_t n,
                        size_t n_cols, const float *x, size_t n_tok) {
  if (!mm || n == 0 || n > HS_CPU_MM_MAX)
    return hs_set_error(&err, HS_EINVAL, "hs_cpu_matmul_multi: %zu products (1..%d)", n, HS_CPU_MM_MAX);
  hs_cpu_isa isas[HS_CPU_MM_MAX];
  for (size_t i = 0; i < n; i++) isas[i] = isa_for(mm[i].type);
  return matmul_parts(isas, tp, scratch, mm, n, n_cols, x, n_tok);
}
