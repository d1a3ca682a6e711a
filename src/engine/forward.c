/* forward.c: the layer loop: one batched forward pass over tokens of several sequences
 * (hs_model_forward in include/hswarm/engine.h).
 *
 * A call takes n tokens, each appended to its sequence at the next position, and runs them
 * through the model together as n rows:
 *
 *   x[n][n_embd] = token_embd[token] * embed_scale           embedding rows, dequantized
 *   per layer l:
 *     xn = rmsnorm(x) * attn_norm
 *     q[n][q_dim] = xn Wq^T (+ bq)    k, v[n][kv_dim] = xn Wk^T, xn Wv^T (+ bk, bv)
 *     (qwen3, gemma3: each head of q and k = rmsnorm(head) * q_norm / k_norm)
 *     rotate q and k at each row's position (the layer's RoPE base); store k, v into the rows'
 *     caches at their positions
 *     att[n][q_dim] = attention of each row over its own sequence's cache, positions <= its own
 *                     (and, in windowed layers, > its own - n_swa)
 *     tmp = att Wo^T;  (gemma3: tmp = rmsnorm(tmp) * post_attn_norm);  x += tmp
 *     xn = rmsnorm(x) * ffn_norm
 *     tmp = (act(xn Wgate^T) * (xn Wup^T)) Wdown^T     act: silu, or gelu (gemma3)
 *     (gemma3: tmp = rmsnorm(tmp) * post_ffn_norm);  x += tmp
 *   out = rmsnorm(x) * output_norm, for the rows that want logits;  logits = out Woutput^T
 *   (with a soft cap c: logits = c * tanh(logits / c))
 *
 * All K/V of the call are stored before any attention, so a row attends to the rows of its
 * sequence that came before it in the same call, as if they had been fed earlier.
 *
 * Only the wanted rows go through the last layer's attention and feed-forward and the output
 * matrix: after the last layer's K/V are stored (every row needs those), the wanted rows are
 * moved to the front and the rest dropped. A prompt's prefill thus pays the output matrix only
 * for its last token.
 *
 * Batch invariance. Every step is a function of one row: matrix products reduce each output in
 * one fixed order whatever the batch (engine/cpu/kernels.h), the row operations of ops.c reduce
 * in a fixed order, and attention (attention.c) reads only its own row and its own sequence's
 * cache, block by block in a fixed order. So a token's logits are bit-identical whether it was
 * computed alone, in a batch with other sequences, or as part of a whole prompt.
 *
 * Products that share an input (q, k, v; gate and up) go to the kernels together, so each needs
 * one quantization of its input and one pool job (hs_cpu_matmul_multi).
 *
 * Row-wise steps run over the thread pool in chunks of rows when the batch is large enough to
 * pay for it; matrix products and attention always do. The workspace grows to the largest batch
 * seen and is reused, so steady-state calls do not allocate. Everything that can fail (checks,
 * workspace) happens before any sequence changes; a sequence's length advances only at the end. */
#include <stdio.h>
#include <string.h>

#include "engine/model_impl.h"
#include "engine/ops.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define err hs_engine_err

/* Row-wise work below this many floats per call runs on the caller's thread only. */
#define PAR_MIN_FLOATS 16384

/* ---- workspace ---- */

static int grow(void *pp, size_t n, size_t elem) {
  void **p = pp;
  void *q = hs_realloc(*p, n * elem);
  if (!q) return -1;
  *p = q;
  return 0;
}

static int ws_reserve(hs_model *m, size_t n_tok) {
  hs_workspace *w = &m->ws;
  if (n_tok <= w->cap_tok) return 0;
  size_t cap = w->cap_tok ? w->cap_tok : 16;
  while (cap < n_tok) cap *= 2;
  const hs_model_params *p = &m->p;
  const size_t e = p->n_embd, kv = m->kv_dim, ff = p->n_ff, qd = p->q_dim;
  if (grow(&w->x, cap * e, sizeof(float)) || grow(&w->xn, cap * e, sizeof(float)) ||
      grow(&w->q, cap * qd, sizeof(float)) || grow(&w->k, cap * kv, sizeof(float)) ||
      grow(&w->v, cap * kv, sizeof(float)) || grow(&w->att, cap * qd, sizeof(float)) ||
      (m->rope_theta_swa &&
       grow(&w->rope_cs_swa, cap * (p->n_rot ? p->n_rot : 1), sizeof(float))) ||
      grow(&w->tmp, cap * e, sizeof(float)) || grow(&w->gate, cap * ff, sizeof(float)) ||
      grow(&w->up, cap * ff, sizeof(float)) ||
      grow(&w->rope_cs, cap * (p->n_rot ? p->n_rot : 1), sizeof(float)) ||
      grow(&w->pos, cap, sizeof(uint32_t)) || grow(&w->seq, cap, sizeof(hs_seq *)) ||
      grow(&w->rows, cap, sizeof(uint32_t)) || grow(&w->attn_order, cap, sizeof(uint32_t)) ||
      grow(&w->attn_chunks, cap + 1, sizeof(uint32_t)))
    return hs_set_error(&err, HS_ENOMEM, "out of memory for the workspace of %zu tokens", n_tok);
  w->cap_tok = cap;
  return 0;
}

/* ---- row-wise steps ---- */

typedef enum phase {
  PH_NORM_ATTN,  /* xn = rmsnorm(x) * attn_norm */
  PH_QKV_POST,   /* biases, rope on q (n rows) */
  PH_KV_POST,    /* biases, rope on k, bias on v, store k and v into the caches (all rows) */
  PH_RESID_NORM, /* (post norm of tmp); x += tmp; xn = rmsnorm(x) * ffn_norm */
  PH_SWIGLU,     /* gate = silu(gate) * up, or gelu(gate) * up */
  PH_RESID,      /* (post norm of tmp); x += tmp */
  PH_NORM_OUT    /* xn = rmsnorm(x) * output_norm */
} phase;

typedef struct row_job {
  hs_model *m;
  const hs_layer *L;
  uint32_t layer;
  phase ph;
  size_t n;            /* rows */
  size_t rows_per_task;
} row_job;

/* rmsnorm of each of n heads of x (head_dim each), in place, times w [head_dim] */
static void head_norms(float *x, uint32_t n, uint32_t hd, const float *w, float eps) {
  for (uint32_t h = 0; h < n; h++) hs_op_rmsnorm(x + (size_t)h * hd, x + (size_t)h * hd, w, hd, eps);
}

static void row_step(const row_job *j, size_t r) {
  hs_model *m = j->m;
  hs_workspace *w = &m->ws;
  const hs_model_params *p = &m->p;
  const hs_layer *L = j->L;
  const size_t e = p->n_embd, kv = m->kv_dim, qd = p->q_dim;
  const float *cs = (L && L->swa ? w->rope_cs_swa : w->rope_cs) + r * p->n_rot;
  switch (j->ph) {
  case PH_NORM_ATTN:
    hs_op_rmsnorm(w->xn + r * e, w->x + r * e, L->attn_norm, e, p->rms_norm_eps);
    break;
  case PH_QKV_POST: {
    float *q = w->q + r * qd;
    if (L->bq) hs_op_add(q, L->bq, qd);
    if (L->q_norm) head_norms(q, p->n_head, p->head_dim, L->q_norm, p->rms_norm_eps);
    hs_op_rope(q, p->n_head, p->head_dim, p->n_rot, m->neox, cs);
    break;
  }
  case PH_KV_POST: {
    float *k = w->k + r * kv, *v = w->v + r * kv;
    if (L->bk) hs_op_add(k, L->bk, kv);
    if (L->bv) hs_op_add(v, L->bv, kv);
    if (L->k_norm) head_norms(k, p->n_head_kv, p->head_dim, L->k_norm, p->rms_norm_eps);
    hs_op_rope(k, p->n_head_kv, p->head_dim, p->n_rot, m->neox, cs);
    hs_kv_store(w->seq[r], j->layer, w->pos[r], k, v);
    break;
  }
  case PH_RESID_NORM:
    if (L->post_attn_norm)
      hs_op_rmsnorm(w->tmp + r * e, w->tmp + r * e, L->post_attn_norm, e, p->rms_norm_eps);
    hs_op_add(w->x + r * e, w->tmp + r * e, e);
    hs_op_rmsnorm(w->xn + r * e, w->x + r * e, L->ffn_norm, e, p->rms_norm_eps);
    break;
  case PH_SWIGLU:
    if (p->ffn_gelu)
      hs_op_geglu(w->gate + r * p->n_ff, w->gate + r * p->n_ff, w->up + r * p->n_ff, p->n_ff);
    else
      hs_op_swiglu(w->gate + r * p->n_ff, w->gate + r * p->n_ff, w->up + r * p->n_ff, p->n_ff);
    break;
  case PH_RESID:
    if (L->post_ffn_norm)
      hs_op_rmsnorm(w->tmp + r * e, w->tmp + r * e, L->post_ffn_norm, e, p->rms_norm_eps);
    hs_op_add(w->x + r * e, w->tmp + r * e, e);
    break;
  case PH_NORM_OUT:
    hs_op_rmsnorm(w->xn + r * e, w->x + r * e, m->output_norm, e, p->rms_norm_eps);
    break;
  }
}

static void row_task(void *ctx, size_t task, unsigned worker) {
  (void)worker;
  const row_job *j = ctx;
  size_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task;
  if (r1 > j->n) r1 = j->n;
  for (size_t r = r0; r < r1; r++) row_step(j, r);
}

/* Runs phase ph over rows [0, n), width floats each (to judge whether threads pay). */
static void rows_run(hs_model *m, const hs_layer *L, uint32_t layer, phase ph, size_t n,
                     size_t width) {
  if (n == 0) return;
  row_job j = {.m = m, .L = L, .layer = layer, .ph = ph, .n = n, .rows_per_task = n};
  unsigned nt = hs_threadpool_size(m->tp);
  if (nt > 1 && n > 1 && n * width >= PAR_MIN_FLOATS) {
    j.rows_per_task = (n + 4 * (size_t)nt - 1) / (4 * (size_t)nt);
    hs_threadpool_run(m->tp, row_task, &j, (n + j.rows_per_task - 1) / j.rows_per_task);
  } else {
    row_task(&j, 0, 0);
  }
}

/* ---- the pass ---- */

static int matmul(hs_model *m, const hs_weight *w, const float *x, size_t n, float *y) {
  int rc = hs_cpu_matmul(m->tp, &m->scratch, w->type, w->data, w->rows, w->cols, x, n, y, w->rows);
  if (rc) return hs_set_error(&err, rc, "matrix product failed (%s)", hs_strerror(rc));
  return 0;
}

/* y_i = W_i x for up to four matrices of the same width at once (one quantization of x per
 * format, one pool job: see hs_cpu_matmul_multi). */
static int matmul_n(hs_model *m, const hs_weight *const *ws, float *const *ys, size_t k,
                    const float *x, size_t n) {
  hs_cpu_mm mm[HS_CPU_MM_MAX];
  for (size_t i = 0; i < k; i++)
    mm[i] = (hs_cpu_mm){ws[i]->type, ws[i]->data, ws[i]->rows, ys[i], ws[i]->rows};
  int rc = hs_cpu_matmul_multi(m->tp, &m->scratch, mm, k, ws[0]->cols, x, n);
  if (rc) return hs_set_error(&err, rc, "matrix product failed (%s)", hs_strerror(rc));
  return 0;
}

/* Checks the batch, assigns positions and takes the KV blocks the new positions need; on
 * failure no sequence is changed. */
static int check_batch(hs_model *m, const hs_batch_item *items, size_t n) {
  int rc = 0;
  size_t i = 0;
  for (; i < n; i++) {
    const hs_batch_item *it = &items[i];
    if (!it->seq || it->seq->m != m) {
      rc = hs_set_error(&err, HS_EINVAL, "batch item %zu: %s", i,
                        it->seq ? "the sequence belongs to another model" : "no sequence");
      break;
    }
    if (it->token < 0 || (uint32_t)it->token >= m->p.n_vocab) {
      rc = hs_set_error(&err, HS_EINVAL, "batch item %zu: token %d is out of range [0, %u)", i,
                        (int)it->token, m->p.n_vocab);
      break;
    }
    hs_seq *s = it->seq;
    if (s->pending >= s->cap - s->len) {
      rc = hs_set_error(&err, HS_ENOSPC,
                        "batch item %zu: its sequence holds %u of %u positions and this call "
                        "appends more than fit",
                        i, s->len, s->cap);
      break;
    }
    m->ws.pos[i] = s->len + s->pending++;
    m->ws.seq[i] = s;
  }
  /* blocks, once per sequence (the first item of each, while its pending count is set) */
  size_t reserved = 0;
  for (; !rc && reserved < n; reserved++) {
    hs_seq *s = items[reserved].seq;
    if (m->ws.pos[reserved] == s->len) rc = hs_seq_reserve(s, s->pending);
  }
  if (rc)
    for (size_t k = 0; k < reserved; k++) hs_seq_trim(items[k].seq);
  for (size_t k = 0; k < i; k++) items[k].seq->pending = 0;
  if (!rc)
    for (size_t k = 0; k < n; k++) items[k].seq->tokens[m->ws.pos[k]] = items[k].token;
  return rc;
}

/* The pass itself, after check_batch. */
static int run(hs_model *m, const hs_batch_item *items, size_t n, float *logits, float *hidden) {
  int rc;
  hs_workspace *w = &m->ws;
  const hs_model_params *p = &m->p;
  const size_t e = p->n_embd, kv = m->kv_dim, ff = p->n_ff;

  /* rows whose outputs are wanted */
  size_t n_out = 0;
  if (logits || hidden)
    for (size_t i = 0; i < n; i++)
      if (items[i].logits) w->rows[n_out++] = (uint32_t)i;

  for (size_t i = 0; i < n; i++) {
    hs_op_embed(w->x + i * e, m->tok_embd.type, m->tok_embd.data, e, (uint32_t)items[i].token);
    if (p->embed_scale != 1.0f)
      for (size_t k = 0; k < e; k++) w->x[i * e + k] *= p->embed_scale;
    hs_op_rope_table(w->rope_cs + i * p->n_rot, m->rope_theta, p->n_rot, w->pos[i]);
    if (m->rope_theta_swa)
      hs_op_rope_table(w->rope_cs_swa + i * p->n_rot, m->rope_theta_swa, p->n_rot, w->pos[i]);
  }

  size_t nr = n; /* rows still computed */
  for (uint32_t l = 0; l < p->n_layer && nr > 0; l++) {
    const hs_layer *L = &m->layers[l];
    rows_run(m, L, l, PH_NORM_ATTN, nr, e);
    /* q, k and v together, except in the last layer when rows are dropped before q */
    const int drop = l + 1 == p->n_layer && n_out < nr;
    {
      const hs_weight *ws3[3] = {&L->wk, &L->wv, &L->wq};
      float *ys3[3] = {w->k, w->v, w->q};
      if ((rc = matmul_n(m, ws3, ys3, drop ? 2 : 3, w->xn, nr))) return rc;
    }
    rows_run(m, L, l, PH_KV_POST, nr, 2 * kv);
    if (drop) {
      /* keep only the wanted rows (in order; rows[k] >= k, so moving down is safe) */
      for (size_t k = 0; k < n_out; k++) {
        size_t r = w->rows[k];
        if (r == k) continue;
        memcpy(w->x + k * e, w->x + r * e, e * sizeof(float));
        memcpy(w->xn + k * e, w->xn + r * e, e * sizeof(float));
        memcpy(w->rope_cs + k * p->n_rot, w->rope_cs + r * p->n_rot, p->n_rot * sizeof(float));
        if (w->rope_cs_swa)
          memcpy(w->rope_cs_swa + k * p->n_rot, w->rope_cs_swa + r * p->n_rot,
                 p->n_rot * sizeof(float));
        w->pos[k] = w->pos[r];
        w->seq[k] = w->seq[r];
      }
      nr = n_out;
      if (nr == 0) break;
      if ((rc = matmul(m, &L->wq, w->xn, nr, w->q))) return rc;
    }
    rows_run(m, L, l, PH_QKV_POST, nr, p->q_dim);
    hs_attention(m, l, nr, w->q, w->seq, w->pos, w->att);
    if ((rc = matmul(m, &L->wo, w->att, nr, w->tmp))) return rc;
    rows_run(m, L, l, PH_RESID_NORM, nr, e);
    {
      const hs_weight *ws2[2] = {&L->w_gate, &L->w_up};
      float *ys2[2] = {w->gate, w->up};
      if ((rc = matmul_n(m, ws2, ys2, 2, w->xn, nr))) return rc;
    }
    rows_run(m, L, l, PH_SWIGLU, nr, ff);
    if ((rc = matmul(m, &L->w_down, w->gate, nr, w->tmp))) return rc;
    rows_run(m, L, l, PH_RESID, nr, e);
  }

  if (n_out > 0) {
    rows_run(m, NULL, 0, PH_NORM_OUT, n_out, e);
    if (hidden) memcpy(hidden, w->xn, n_out * e * sizeof(float));
    if (logits) {
      int r2 = hs_cpu_matmul(m->tp, &m->scratch, m->output.type, m->output.data, m->output.rows,
                             m->output.cols, w->xn, n_out, logits, p->n_vocab);
      if (r2) return hs_set_error(&err, r2, "output matrix product failed (%s)", hs_strerror(r2));
      if (p->logit_softcap > 0.0f) hs_op_softcap(logits, n_out * p->n_vocab, p->logit_softcap);
    }
  }
  return 0;
}

int hs_model_forward(hs_model *m, const hs_batch_item *items, size_t n, float *logits,
                     float *hidden) {
  if (!m || (!items && n)) return hs_set_error(&err, HS_EINVAL, "hs_model_forward: NULL argument");
  if (n == 0) return 0;
  int rc = ws_reserve(m, n);
  if (rc) return rc;
  if ((rc = check_batch(m, items, n))) return rc;
  if ((rc = run(m, items, n, logits, hidden))) {
    for (size_t i = 0; i < n; i++) hs_seq_trim(items[i].seq);
    return rc;
  }
  for (size_t i = 0; i < n; i++) items[i].seq->len++;
  for (size_t i = 0; i < n; i++) hs_seq_publish(items[i].seq); /* from n_published: cheap again */
  return 0;
}
