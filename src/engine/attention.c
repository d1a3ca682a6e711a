/* attention.c: causal grouped-query attention over a sequence's KV cache, block by block, and the
 * cache's layout.
 *
 * For one query row (a token at position p of a sequence) and one query head h:
 *
 *   out_h = sum_{j <= p} softmax_j(s_j) v_j,   s_j = (q_h . k_j) / sqrt(head_dim)
 *
 * where k_j, v_j are the cache's key and value of KV head h / (n_head / n_head_kv) at position j
 * (consecutive query heads share a KV head, as llama.cpp and the reference implementations do).
 *
 * Block by block. Positions are cut into fixed blocks of HS_KV_BLOCK (32) positions, aligned to
 * position 0: [0, 32), [32, 64), ... (the last one cut at p). For each block b the kernel
 * computes a partial result that depends only on q and that block's keys and values:
 *
 *   m_b = max_j s_j,   l_b = sum_j exp(s_j - m_b),   o_b = sum_j exp(s_j - m_b) v_j
 *
 * and the partials are merged in block order with the log-sum-exp rule:
 *
 *   M = max(M, m_b),   L = L e^(M_old - M) + l_b e^(m_b - M),   O = O e^(M_old - M) + o_b e^(m_b - M)
 *
 * and out = O / L. Why this shape: the numbers a query gets depend only on the query vector, the
 * block boundaries (fixed by position) and the order of merging (fixed: block order). So a
 * block's partial is the same whether it is computed for one query alone or for many queries of
 * a batch at once, and whether its keys live in this sequence's cache or in a prefix shared by
 * many sequences. The next step of the engine relies on that: a shared prefix is read once per
 * block for all the sequences that extend it, and each still gets, bit for bit, what it would
 * have got alone. Nothing here depends on the other rows of the batch (batch invariance), nor on
 * which thread ran which task.
 *
 * Layout (per layer and KV head). Keys are stored a block at a time TRANSPOSED, [block][dim][32]:
 * the 32 positions of one dimension are contiguous. Then the scores of a whole block are vertical
 * vector work with no horizontal sums: for d = 0, 1, ...: s[0..32) += q[d] * K[d][0..32). Each
 * score is thus summed over dimensions in plain order, one product at a time. Values are stored
 * [position][dim], so o_b is vertical too: for j in block order: o[0..hd) += e_j * v_j[0..hd).
 * A block's unused key lanes are zeroed when its first position is written, so the lanes past p
 * hold finite numbers (they are computed and ignored).
 *
 * The exponentials of a block's scores are computed 32 at a time by a polynomial (vexp16) written
 * in the same portable vector arithmetic, so they too are identical on every ISA; the block's
 * o_b = sum_j e_j v_j keeps its partial sums in registers, a few dimensions at a time, each
 * still summed in position order from zero.
 *
 * Every sum above has one order, written in the code, that does not depend on the vector width:
 * the same loop is compiled for plain C (GCC/Clang vector extensions of 16 floats, lowered to
 * SSE), AVX2 and AVX-512 (chosen once by hs_cpu_isa_active), and with -ffp-contract=off no
 * multiply-add is fused, so all three give the same bits.
 *
 * Work split: one task per (row, KV head). A task reads each key and value block once for all
 * n_head / n_head_kv query heads of its group: scores and o_b are computed four heads at a time,
 * sharing the loads of keys and values (each head's sums still in the order above). Tasks are claimed
 * dynamically by the pool; each writes only its own heads' output. Per-worker scratch (scores,
 * block partial, running sums) comes from the model's workspace: no allocation here. */
#include <math.h>
#include <string.h>

#include "engine/model_impl.h"
#include "engine/ops.h"

typedef float v16 __attribute__((vector_size(64)));

/* Vector values are only ever locals (passing them by value would depend on the target's ABI). */
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(v16))
#define STORE16(p, v) memcpy((p), &(v), sizeof(v16))

/* ---- the cache ---- */

size_t hs_kv_floats(const hs_model_params *p, uint32_t cap) {
  return (size_t)p->n_layer * p->n_head_kv * hs_kv_cap_padded(cap) * p->head_dim;
}

void hs_kv_store(hs_seq *s, uint32_t l, uint32_t pos, const float *k, const float *v) {
  const hs_model_params *p = &s->m->p;
  const size_t hd = p->head_dim, j = pos % HS_KV_BLOCK, blk = pos / HS_KV_BLOCK;
  for (uint32_t h = 0; h < p->n_head_kv; h++) {
    float *kb = hs_kv_head(s, s->k, l, h) + blk * HS_KV_BLOCK * hd; /* [hd][32] */
    /* no clearing of the block here: positions are stored by several threads at once, and
     * lanes past a sequence's length are masked by block_max (the cache starts zeroed) */
    const float *kh = k + h * hd;
    for (size_t d = 0; d < hd; d++) kb[d * HS_KV_BLOCK + j] = kh[d];
    memcpy(hs_kv_head(s, s->v, l, h) + (size_t)pos * hd, v + h * hd, hd * sizeof *v);
  }
}

/* ---- attention ---- */

size_t hs_attention_scratch_floats(const hs_model_params *p) {
  size_t rep = p->n_head / p->n_head_kv, hd = p->head_dim;
  /* scores [rep][32], block partials o_b [rep][hd], running O [rep][hd], M, L, m_b, l_b [rep] */
  return rep * (HS_KV_BLOCK + 2 * hd + 4);
}

typedef struct attn_job {
  hs_model *m;
  uint32_t layer;
  const float *q;
  hs_seq *const *seq;
  const uint32_t *pos;
  float *out;
} attn_job;

/* o[0..n) = o * a + x * b */
static inline __attribute__((always_inline)) void scale_add(float *o, float a, const float *x,
                                                             float b, size_t n) {
  size_t d = 0;
  v16 va = (v16){0} + a, vb = (v16){0} + b, vo, vx;
  for (; d + 16 <= n; d += 16) {
    LOAD16(vo, o + d);
    LOAD16(vx, x + d);
    vo = vo * va + vx * vb;
    STORE16(o + d, vo);
  }
  for (; d < n; d++) o[d] = o[d] * a + x[d] * b;
}

typedef int32_t vi16 __attribute__((vector_size(64)));

#define vexp16 hs_op_exp16 /* ops.h */

/* o[0..n) = sum_{t < nt} e[t] * v[t][0..n) (rows of v ld floats apart), summed in t order from
 * zero for every element, with the partial sums in registers. */
static inline __attribute__((always_inline)) void block_pv(const float *e, const float *v,
                                                           size_t nt, size_t ld, float *o,
                                                           size_t n) {
  size_t d = 0;
  for (; d + 64 <= n; d += 64) {
    v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, x0, x1, x2, x3;
    for (size_t t = 0; t < nt; t++) {
      const float *vt = v + t * ld + d;
      v16 w = (v16){0} + e[t];
      LOAD16(x0, vt);
      LOAD16(x1, vt + 16);
      LOAD16(x2, vt + 32);
      LOAD16(x3, vt + 48);
      a0 = a0 + w * x0;
      a1 = a1 + w * x1;
      a2 = a2 + w * x2;
      a3 = a3 + w * x3;
    }
    STORE16(o + d, a0);
    STORE16(o + d + 16, a1);
    STORE16(o + d + 32, a2);
    STORE16(o + d + 48, a3);
  }
  for (; d + 16 <= n; d += 16) {
    v16 a = {0}, x;
    for (size_t t = 0; t < nt; t++) {
      v16 w = (v16){0} + e[t];
      LOAD16(x, v + t * ld + d);
      a = a + w * x;
    }
    STORE16(o + d, a);
  }
  for (; d < n; d++) {
    float a = 0;
    for (size_t t = 0; t < nt; t++) a = a + e[t] * v[t * ld + d];
    o[d] = a;
  }
}

/* Scores of one block for one head: s[j] = (sum_d q[d] * kb[d][j]) * scale, j < 32.
 * kb: [hd][32]. */
static inline __attribute__((always_inline)) void block_scores(const float *q, const float *kb,
                                                               size_t hd, float scale, float *s) {
  v16 a0 = {0}, a1 = {0}, k0, k1;
  for (size_t d = 0; d < hd; d++) {
    LOAD16(k0, kb + d * HS_KV_BLOCK);
    LOAD16(k1, kb + d * HS_KV_BLOCK + 16);
    a0 = a0 + q[d] * k0;
    a1 = a1 + q[d] * k1;
  }
  a0 = a0 * scale;
  a1 = a1 * scale;
  STORE16(s, a0);
  STORE16(s + 16, a1);
}

/* block_scores for four heads at once (q: four heads hd floats apart; s: [4][32]), sharing the
 * key loads; each score is summed exactly as block_scores sums it. */
static inline __attribute__((always_inline)) void block_scores4(const float *q, const float *kb,
                                                                size_t hd, float scale, float *s) {
  v16 a[8] = {{0}}, k0, k1;
  for (size_t d = 0; d < hd; d++) {
    LOAD16(k0, kb + d * HS_KV_BLOCK);
    LOAD16(k1, kb + d * HS_KV_BLOCK + 16);
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++) {
      const float qd = q[(size_t)h * hd + d];
      a[2 * h] = a[2 * h] + qd * k0;
      a[2 * h + 1] = a[2 * h + 1] + qd * k1;
    }
  }
#pragma GCC unroll 8
  for (int h = 0; h < 8; h++) {
    a[h] = a[h] * scale;
    STORE16(s + 16 * h, a[h]);
  }
}

/* block_pv for four heads at once (e: [4][32], o: [4][n] rows n apart), n a multiple of 32,
 * sharing the value loads; every element is summed exactly as block_pv sums it. */
static inline __attribute__((always_inline)) void block_pv4(const float *e, const float *v,
                                                            size_t nt, size_t ld, float *o,
                                                            size_t n) {
  for (size_t d = 0; d < n; d += 32) {
    v16 a[8] = {{0}}, x0, x1;
    for (size_t t = 0; t < nt; t++) {
      LOAD16(x0, v + t * ld + d);
      LOAD16(x1, v + t * ld + d + 16);
#pragma GCC unroll 4
      for (int h = 0; h < 4; h++) {
        const float w = e[h * HS_KV_BLOCK + t];
        a[2 * h] = a[2 * h] + w * x0;
        a[2 * h + 1] = a[2 * h + 1] + w * x1;
      }
    }
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++) {
      STORE16(o + (size_t)h * n + d, a[2 * h]);
      STORE16(o + (size_t)h * n + d + 16, a[2 * h + 1]);
    }
  }
}

/* Max of s[0..nb) (order does not matter for a max); sets s[nb..32) to -inf on the way, so that
 * their exponentials come out 0. */
static inline __attribute__((always_inline)) float block_max(float *s, size_t nb) {
  for (size_t t = nb; t < HS_KV_BLOCK; t++) s[t] = -INFINITY;
  v16 a, b;
  LOAD16(a, s);
  LOAD16(b, s + 16);
  vi16 m = a > b;
  a = (v16)(((vi16)a & m) | ((vi16)b & ~m));
  float mx = a[0];
  for (int i = 1; i < 16; i++) mx = a[i] > mx ? a[i] : mx;
  return mx;
}

/* Sum of s[0..32) in one fixed order: the two halves lane by lane, then hs_cpu_sum16's tree. */
static inline __attribute__((always_inline)) float block_sum(const float *s) {
  v16 a, b;
  LOAD16(a, s);
  LOAD16(b, s + 16);
  a = a + b;
  float s8[8], s4[4];
  for (int i = 0; i < 8; i++) s8[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

static inline __attribute__((always_inline)) void attn_body(void *ctx, size_t task,
                                                            unsigned worker) {
  const attn_job *j = ctx;
  const hs_model_params *p = &j->m->p;
  const size_t hd = p->head_dim, rep = p->n_head / p->n_head_kv;
  const size_t r = task / p->n_head_kv, g = task % p->n_head_kv;
  const hs_seq *s = j->seq[r];
  const size_t n_pos = (size_t)j->pos[r] + 1;
  const float scale = 1.0f / sqrtf((float)hd);
  const float *K = hs_kv_head(s, s->k, j->layer, (uint32_t)g);
  const float *V = hs_kv_head(s, s->v, j->layer, (uint32_t)g);

  float *sc = j->m->ws.attn_scratch + (size_t)worker * j->m->ws.attn_scratch_per_worker;
  float *scores = sc;                        /* [rep][32] scores, then exponentials */
  float *ob = scores + rep * HS_KV_BLOCK;    /* [rep][hd] block partials o_b */
  float *O = ob + rep * hd;                  /* [rep][hd] running O */
  float *M = O + rep * hd, *L = M + rep;     /* [rep] each: running M, L */
  float *mbs = L + rep, *lbs = mbs + rep;    /* [rep] each: the block's m_b, l_b */
  const float *qg = j->q + r * p->n_embd + g * rep * hd; /* the group's query heads */

  for (size_t b0 = 0; b0 < n_pos; b0 += HS_KV_BLOCK) {
    const size_t nb = n_pos - b0 < HS_KV_BLOCK ? n_pos - b0 : HS_KV_BLOCK;
    const float *kb = K + b0 * hd, *vb = V + b0 * hd;
    size_t i = 0;
    for (; i + 4 <= rep; i += 4) block_scores4(qg + i * hd, kb, hd, scale, scores + i * HS_KV_BLOCK);
    for (; i < rep; i++) block_scores(qg + i * hd, kb, hd, scale, scores + i * HS_KV_BLOCK);
    /* the block's partials: m_b; e_t = exp(s_t - m_b), 0 past the block's end; l_b; o_b */
    for (i = 0; i < rep; i++) {
      float *si = scores + i * HS_KV_BLOCK;
      mbs[i] = block_max(si, nb);
      vexp16(si, mbs[i]);
      vexp16(si + 16, mbs[i]);
      lbs[i] = block_sum(si);
    }
    i = 0;
    if (hd % 32 == 0)
      for (; i + 4 <= rep; i += 4) block_pv4(scores + i * HS_KV_BLOCK, vb, nb, hd, ob + i * hd, hd);
    for (; i < rep; i++) block_pv(scores + i * HS_KV_BLOCK, vb, nb, hd, ob + i * hd, hd);
    /* merged in block order */
    for (i = 0; i < rep; i++) {
      float *Oi = O + i * hd;
      const float mb = mbs[i], lb = lbs[i];
      if (b0 == 0) {
        M[i] = mb;
        L[i] = lb;
        memcpy(Oi, ob + i * hd, hd * sizeof *Oi);
      } else {
        float mn = M[i] > mb ? M[i] : mb;
        float a = expf(M[i] - mn), c = expf(mb - mn);
        L[i] = L[i] * a + lb * c;
        scale_add(Oi, a, ob + i * hd, c, hd);
        M[i] = mn;
      }
    }
  }
  for (size_t i = 0; i < rep; i++) {
    float *o = j->out + r * p->n_embd + (g * rep + i) * hd;
    const float inv = 1.0f / L[i], *Oi = O + i * hd;
    for (size_t d = 0; d < hd; d++) o[d] = Oi[d] * inv;
  }
}

/* The same body compiled for each instruction set. */
static void attn_task_ref(void *ctx, size_t task, unsigned worker) {
  attn_body(ctx, task, worker);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void attn_task_avx2(void *ctx, size_t task,
                                                            unsigned worker) {
  attn_body(ctx, task, worker);
}

__attribute__((target("avx512f"))) static void attn_task_avx512(void *ctx, size_t task,
                                                                 unsigned worker) {
  attn_body(ctx, task, worker);
}
#define HAVE_X86_PATHS 1
#endif

static hs_threadpool_fn attn_task_for(hs_cpu_isa isa) {
#ifdef HAVE_X86_PATHS
  if (isa == HS_CPU_ISA_AVX512) return attn_task_avx512;
  if (isa == HS_CPU_ISA_AVX2) return attn_task_avx2;
#endif
  (void)isa;
  return attn_task_ref;
}

void hs_attention_isa(hs_cpu_isa isa, hs_model *m, uint32_t l, size_t n, const float *q,
                      hs_seq *const *seq, const uint32_t *pos, float *out) {
  attn_job j = {.m = m, .layer = l, .q = q, .seq = seq, .pos = pos, .out = out};
  hs_threadpool_run(m->tp, attn_task_for(isa), &j, n * m->p.n_head_kv);
}

void hs_attention(hs_model *m, uint32_t l, size_t n, const float *q, hs_seq *const *seq,
                  const uint32_t *pos, float *out) {
  hs_attention_isa(hs_cpu_isa_active(), m, l, n, q, seq, pos, out);
}
