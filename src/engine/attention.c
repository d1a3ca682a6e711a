/* attention.c: causal grouped-query attention over a sequence's KV cache, block by block, and the
 * cache's layout.
 *
 * For one query row (a token at position p of a sequence) and one query head h:
 *
 *   out_h = sum_{lo <= j <= p} softmax_j(s_j) v_j,   s_j = (q_h . k_j) * attn_scale
 *
 * (attn_scale is 1 / sqrt(head_dim) for most models; lo is 0, or p + 1 - n_swa in the layers of
 * a sliding window of n_swa positions: blocks wholly before lo are skipped, and the positions
 * before lo in lo's block are masked like those past p)
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
 * and out = O / L (the two exponentials by the same vector polynomial as the scores'). Why this
 * shape: the numbers a query gets depend only on the query vector, the
 * block boundaries (fixed by position) and the order of merging (fixed: block order). So a
 * block's partial is the same whether it is computed for one query alone or for many queries of
 * a batch at once, and whether its keys live in this sequence's cache or in a prefix shared by
 * many sequences. The next step of the engine relies on that: a shared prefix is read once per
 * block for all the sequences that extend it, and each still gets, bit for bit, what it would
 * have got alone. Nothing here depends on the other rows of the batch (batch invariance), nor on
 * which thread ran which task.
 *
 * Layout. The keys and values live in the model's pool of KV blocks (kv.h), a block per 32
 * positions, found through each sequence's block table. Keys are stored TRANSPOSED, [dim][32]:
 * the 32 positions of one dimension are contiguous. Then the scores of a whole block are vertical
 * vector work with no horizontal sums: for d = 0, 1, ...: s[0..32) += q[d] * K[d][0..32). Each
 * score is thus summed over dimensions in plain order, one product at a time. Values are stored
 * [position][dim], so o_b is vertical too: for j in block order: o[0..hd) += e_j * v_j[0..hd).
 * Lanes past a row's last position are computed and masked (their exponentials are exactly 0, and
 * o_b sums only the row's own positions). f16 blocks are converted exactly to f32 once per block
 * read (kv_pool.c), so every later step is the same f32 arithmetic as with f32 storage.
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
 * Shared blocks (cascade attention). Rows are sorted so that rows sharing their first block
 * (the same prompt prefix from the prefix cache, or rows of one sequence's prefill) are adjacent,
 * and cut into chunks of at most ROWS_PER_TASK rows that share it. A task is one (chunk, KV head):
 * it walks block indices in order and, at each, reads every distinct block its rows need once and
 * computes that block's partials for all the rows that use it together, sharing each load of a
 * key or value among up to four query vectors (any heads of any rows), before merging each row's
 * partial into that row's running sums. A row's own arithmetic is the same whatever its chunk,
 * so results are bit-identical to one row per task (m->shared_attention off, the ablation), and
 * the block of a prefix shared by 64 sequences is read 8 times instead of 64. Tasks are claimed
 * dynamically by the pool; each writes only its own rows' heads. Per-worker scratch comes from
 * the model's workspace: no allocation here. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_impl.h"
#include "engine/ops.h"

typedef float v16 __attribute__((vector_size(64)));

/* Vector values are only ever locals (passing them by value would depend on the target's ABI). */
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(v16))
#define STORE16(p, v) memcpy((p), &(v), sizeof(v16))

/* ---- attention ---- */

/* Rows per attention task when rows share blocks. */
#define ROWS_PER_TASK 16

size_t hs_attention_scratch_floats(const hs_model_params *p) {
  size_t rep = p->n_head / p->n_head_kv, hd = p->head_dim;
  /* a converted block's K and V [2][32][hd]; per query (row, head): scores [32], the block's
   * o_b [hd], running O [hd], and M, L, m_b, l_b */
  return 2 * HS_KV_BLOCK * hd + ROWS_PER_TASK * rep * (HS_KV_BLOCK + 2 * hd + 4);
}

typedef struct attn_job {
  hs_model *m;
  uint32_t layer;
  const float *q;
  hs_seq *const *seq;
  const uint32_t *pos;
  float *out;
  const uint32_t *order;  /* rows, sorted */
  const uint32_t *chunks; /* chunk c is order[chunks[c] .. chunks[c + 1]) */
  hs_kv_f16_fn f16;       /* conversion of f16 blocks; NULL for f32 storage */
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

/* block_scores for four query vectors at once (any heads of any rows: q[i], s[i]), sharing the
 * key loads; each score is summed exactly as block_scores sums it. */
static inline __attribute__((always_inline)) void block_scores4(const float *const *q,
                                                                const float *kb, size_t hd,
                                                                float scale, float *const *s) {
  v16 a[8] = {{0}}, k0, k1;
  for (size_t d = 0; d < hd; d++) {
    LOAD16(k0, kb + d * HS_KV_BLOCK);
    LOAD16(k1, kb + d * HS_KV_BLOCK + 16);
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++) {
      const float qd = q[h][d];
      a[2 * h] = a[2 * h] + qd * k0;
      a[2 * h + 1] = a[2 * h + 1] + qd * k1;
    }
  }
#pragma GCC unroll 4
  for (int h = 0; h < 4; h++) {
    a[2 * h] = a[2 * h] * scale;
    a[2 * h + 1] = a[2 * h + 1] * scale;
    STORE16(s[h], a[2 * h]);
    STORE16(s[h] + 16, a[2 * h + 1]);
  }
}

/* block_pv for four query vectors at once, all over the same nt positions (e[i]: [32],
 * o[i]: [n]), n a multiple of 32, sharing the value loads; every element is summed exactly as
 * block_pv sums it. */
static inline __attribute__((always_inline)) void block_pv4(const float *const *e, const float *v,
                                                            size_t nt, size_t ld,
                                                            float *const *o, size_t n) {
  for (size_t d = 0; d < n; d += 32) {
    v16 a[8] = {{0}}, x0, x1;
    for (size_t t = 0; t < nt; t++) {
      LOAD16(x0, v + t * ld + d);
      LOAD16(x1, v + t * ld + d + 16);
#pragma GCC unroll 4
      for (int h = 0; h < 4; h++) {
        const float w = e[h][t];
        a[2 * h] = a[2 * h] + w * x0;
        a[2 * h + 1] = a[2 * h + 1] + w * x1;
      }
    }
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++) {
      STORE16(o[h] + d, a[2 * h]);
      STORE16(o[h] + d + 16, a[2 * h + 1]);
    }
  }
}

/* Max of s[lo..nb) (order does not matter for a max); sets s[0..lo) and s[nb..32) to -inf on the
 * way, so that their exponentials come out 0. */
static inline __attribute__((always_inline)) float block_max(float *s, size_t lo, size_t nb) {
  for (size_t t = 0; t < lo; t++) s[t] = -INFINITY;
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

/* Scratch of one task (floats from the worker's slice; nq = ROWS_PER_TASK * rep queries). */
typedef struct task_scratch {
  float *kf, *vf;          /* [32][hd] each: a block converted from f16 */
  float *sc, *ob, *O;      /* [nq][32], [nq][hd], [nq][hd] */
  float *M, *L, *mb, *lb;  /* [nq] each */
} task_scratch;

/* The partials of one block for the queries qi[0..nq) (query index = row in chunk * rep + head)
 * and their merge into each query's running sums. kb: [hd][32] keys, vb: [32][hd] values;
 * the k-th query sees positions [lob[k], nbq[k]) of the block (nbq 1..32); first[k]: this is its
 * first block (the running sums start from it). */
static inline __attribute__((always_inline)) void block_partials(
    const task_scratch *ts, const float *const *qv, const uint32_t *qi, const uint32_t *nbq,
    const uint32_t *lob, const uint8_t *first, size_t nq, const float *kb, const float *vb,
    size_t hd, float scale) {
  size_t k = 0;
  for (; k + 4 <= nq; k += 4) {
    float *const s4[4] = {ts->sc + qi[k] * HS_KV_BLOCK, ts->sc + qi[k + 1] * HS_KV_BLOCK,
                          ts->sc + qi[k + 2] * HS_KV_BLOCK, ts->sc + qi[k + 3] * HS_KV_BLOCK};
    block_scores4(qv + k, kb, hd, scale, s4);
  }
  for (; k < nq; k++) block_scores(qv[k], kb, hd, scale, ts->sc + qi[k] * HS_KV_BLOCK);
  /* m_b; e_t = exp(s_t - m_b), exactly 0 past the row's positions; l_b */
  for (k = 0; k < nq; k++) {
    float *si = ts->sc + qi[k] * HS_KV_BLOCK;
    ts->mb[qi[k]] = block_max(si, lob[k], nbq[k]);
    vexp16(si, ts->mb[qi[k]]);
    vexp16(si + 16, ts->mb[qi[k]]);
    ts->lb[qi[k]] = block_sum(si);
  }
  /* o_b, four queries at a time when they see the same positions */
  k = 0;
  while (k < nq) {
    if (hd % 32 == 0 && k + 4 <= nq && nbq[k] == nbq[k + 1] && nbq[k] == nbq[k + 2] &&
        nbq[k] == nbq[k + 3]) {
      const float *const e4[4] = {ts->sc + qi[k] * HS_KV_BLOCK, ts->sc + qi[k + 1] * HS_KV_BLOCK,
                                  ts->sc + qi[k + 2] * HS_KV_BLOCK,
                                  ts->sc + qi[k + 3] * HS_KV_BLOCK};
      float *const o4[4] = {ts->ob + qi[k] * hd, ts->ob + qi[k + 1] * hd, ts->ob + qi[k + 2] * hd,
                            ts->ob + qi[k + 3] * hd};
      block_pv4(e4, vb, nbq[k], hd, o4, hd);
      k += 4;
    } else {
      block_pv(ts->sc + qi[k] * HS_KV_BLOCK, vb, nbq[k], hd, ts->ob + qi[k] * hd, hd);
      k++;
    }
  }
  /* merged in block order; the two rescaling factors of each query, e^(M_old - M) and
   * e^(m_b - M), by the vector exponential, 16 at a time (one of them is e^0 = 1 exactly) */
  for (size_t k0 = 0; k0 < nq; k0 += 8) {
    const size_t kn = nq - k0 < 8 ? nq - k0 : 8;
    float f[16] = {0}, mn[8] = {0};
    bool any_merge = false;
    for (size_t t = 0; t < kn; t++) {
      if (first[k0 + t]) continue;
      const uint32_t i = qi[k0 + t];
      mn[t] = ts->M[i] > ts->mb[i] ? ts->M[i] : ts->mb[i];
      f[t] = ts->M[i] - mn[t];
      f[8 + t] = ts->mb[i] - mn[t];
      any_merge = true;
    }
    if (any_merge) vexp16(f, 0.0f);
    for (size_t t = 0; t < kn; t++) {
      const uint32_t i = qi[k0 + t];
      float *Oi = ts->O + i * hd;
      if (first[k0 + t]) {
        ts->M[i] = ts->mb[i];
        ts->L[i] = ts->lb[i];
        memcpy(Oi, ts->ob + i * hd, hd * sizeof *Oi);
      } else {
        const float a = f[t], c = f[8 + t];
        ts->L[i] = ts->L[i] * a + ts->lb[i] * c;
        scale_add(Oi, a, ts->ob + i * hd, c, hd);
        ts->M[i] = mn[t];
      }
    }
  }
}

static inline __attribute__((always_inline)) void attn_body(void *ctx, size_t task,
                                                            unsigned worker) {
  const attn_job *j = ctx;
  const hs_model *m = j->m;
  const hs_model_params *p = &m->p;
  const hs_kv_pool *pool = &m->kv;
  const size_t hd = p->head_dim, rep = p->n_head / p->n_head_kv;
  const size_t c = task / p->n_head_kv, g = task % p->n_head_kv;
  const uint32_t *rows = j->order + j->chunks[c];
  const size_t nr = j->chunks[c + 1] - j->chunks[c];
  const float scale = p->attn_scale;
  const uint32_t window = m->layers[j->layer].swa ? p->n_swa : 0;

  float *w = m->ws.attn_scratch + (size_t)worker * m->ws.attn_scratch_per_worker;
  const size_t nqmax = ROWS_PER_TASK * rep;
  task_scratch ts;
  ts.kf = w;
  ts.vf = ts.kf + HS_KV_BLOCK * hd;
  ts.sc = ts.vf + HS_KV_BLOCK * hd;
  ts.ob = ts.sc + nqmax * HS_KV_BLOCK;
  ts.O = ts.ob + nqmax * hd;
  ts.M = ts.O + nqmax * hd;
  ts.L = ts.M + nqmax;
  ts.mb = ts.L + nqmax;
  ts.lb = ts.mb + nqmax;

  /* row i sees positions [lo[i], npos[i]): blocks [lo[i] / 32, nblk[i]) */
  uint32_t npos[ROWS_PER_TASK], nblk[ROWS_PER_TASK], lo[ROWS_PER_TASK], maxb = 0, minb = UINT32_MAX;
  for (size_t i = 0; i < nr; i++) {
    npos[i] = j->pos[rows[i]] + 1;
    nblk[i] = (npos[i] + HS_KV_BLOCK - 1) / HS_KV_BLOCK;
    lo[i] = window && npos[i] > window ? npos[i] - window : 0;
    if (nblk[i] > maxb) maxb = nblk[i];
    if (lo[i] / HS_KV_BLOCK < minb) minb = lo[i] / HS_KV_BLOCK;
  }
  const float *qv[ROWS_PER_TASK * 8];
  uint32_t qi[ROWS_PER_TASK * 8], nbq[ROWS_PER_TASK * 8], lob[ROWS_PER_TASK * 8];
  uint8_t firstq[ROWS_PER_TASK * 8];
  const size_t qcap = sizeof qi / sizeof qi[0];

  for (uint32_t b = minb; b < maxb; b++) {
    bool done[ROWS_PER_TASK] = {false};
    for (size_t i = 0; i < nr; i++) {
      if (done[i] || nblk[i] <= b || lo[i] / HS_KV_BLOCK > b) continue;
      const uint32_t blk = j->seq[rows[i]]->blocks[b];
      const uint8_t *raw = hs_kv_pool_head(pool, blk, j->layer, (uint32_t)g);
      const float *kb, *vb;
      if (j->f16) {
        j->f16((const uint16_t *)(const void *)raw, ts.kf, HS_KV_BLOCK * hd);
        j->f16((const uint16_t *)(const void *)(raw + pool->v_offset), ts.vf, HS_KV_BLOCK * hd);
        kb = ts.kf;
        vb = ts.vf;
      } else {
        kb = (const float *)(const void *)raw;
        vb = (const float *)(const void *)(raw + pool->v_offset);
      }
      /* every row of the chunk that reads this block now, with all its heads */
      size_t nq = 0;
      for (size_t k = i; k < nr; k++) {
        if (done[k] || nblk[k] <= b || lo[k] / HS_KV_BLOCK > b ||
            j->seq[rows[k]]->blocks[b] != blk)
          continue;
        done[k] = true;
        const uint32_t left = npos[k] - b * HS_KV_BLOCK;
        const int first = b == lo[k] / HS_KV_BLOCK;
        const float *qrow = j->q + (size_t)rows[k] * p->q_dim + g * rep * hd;
        for (size_t h = 0; h < rep; h++) {
          if (nq == qcap) {
            block_partials(&ts, qv, qi, nbq, lob, firstq, nq, kb, vb, hd, scale);
            nq = 0;
          }
          qv[nq] = qrow + h * hd;
          qi[nq] = (uint32_t)(k * rep + h);
          nbq[nq] = left < HS_KV_BLOCK ? left : HS_KV_BLOCK;
          lob[nq] = first ? lo[k] % HS_KV_BLOCK : 0;
          firstq[nq] = (uint8_t)first;
          nq++;
        }
      }
      block_partials(&ts, qv, qi, nbq, lob, firstq, nq, kb, vb, hd, scale);
    }
  }
  for (size_t i = 0; i < nr; i++)
    for (size_t h = 0; h < rep; h++) {
      const size_t k = i * rep + h;
      float *o = j->out + (size_t)rows[i] * p->q_dim + (g * rep + h) * hd;
      const float inv = 1.0f / ts.L[k], *Ok = ts.O + k * hd;
      for (size_t d = 0; d < hd; d++) o[d] = Ok[d] * inv;
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

/* Rows sorted by (first block, sequence, position): rows sharing their first block adjacent. */
static _Thread_local hs_seq *const *sort_seq;
static _Thread_local const uint32_t *sort_pos;

static int row_cmp(const void *a, const void *b) {
  const uint32_t ra = *(const uint32_t *)a, rb = *(const uint32_t *)b;
  const hs_seq *sa = sort_seq[ra], *sb = sort_seq[rb];
  if (sa->blocks[0] != sb->blocks[0]) return sa->blocks[0] < sb->blocks[0] ? -1 : 1;
  if (sa != sb) return (uintptr_t)sa < (uintptr_t)sb ? -1 : 1;
  if (sort_pos[ra] != sort_pos[rb]) return sort_pos[ra] < sort_pos[rb] ? -1 : 1;
  return ra < rb ? -1 : ra > rb;
}

/* Fills m->ws.attn_order and attn_chunks for n rows; returns the number of chunks. */
static size_t plan_chunks(hs_model *m, size_t n, hs_seq *const *seq, const uint32_t *pos) {
  uint32_t *order = m->ws.attn_order, *chunks = m->ws.attn_chunks;
  for (size_t r = 0; r < n; r++) order[r] = (uint32_t)r;
  if (!m->shared_attention) {
    for (size_t r = 0; r <= n; r++) chunks[r] = (uint32_t)r;
    return n;
  }
  /* the comparator's inputs, per thread (models on different threads run at once) */
  sort_seq = seq;
  sort_pos = pos;
  qsort(order, n, sizeof *order, row_cmp);
  size_t nc = 0;
  for (size_t r = 0; r < n; r++) {
    const bool same = r > 0 && r - chunks[nc - 1] < ROWS_PER_TASK &&
                      seq[order[r]]->blocks[0] == seq[order[r - 1]]->blocks[0];
    if (!same) chunks[nc++] = (uint32_t)r;
  }
  chunks[nc] = (uint32_t)n;
  return nc;
}

void hs_attention_isa(hs_cpu_isa isa, hs_model *m, uint32_t l, size_t n, const float *q,
                      hs_seq *const *seq, const uint32_t *pos, float *out) {
  size_t nc = plan_chunks(m, n, seq, pos);
  attn_job j = {.m = m, .layer = l, .q = q, .seq = seq, .pos = pos, .out = out,
                .order = m->ws.attn_order, .chunks = m->ws.attn_chunks,
                .f16 = m->kv.type == HS_KV_F16 ? hs_kv_f16_to_f32_for(isa) : NULL};
  hs_threadpool_run(m->tp, attn_task_for(isa), &j, nc * m->p.n_head_kv);
}
void hs_attention(hs_model *m, uint32_t l, size_t n, const float *q, hs_seq *const *seq,
                  const uint32_t *pos, float *out) {
  hs_attention_isa(hs_cpu_isa_active(), m, l, n, q, seq, pos, out);
}
