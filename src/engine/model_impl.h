/* model_impl.h: the insides of hs_model and hs_seq, shared by model.c (binding, sequences),
 * forward.c (the layer loop) and attention.c. Internal to the library.
 *
 * Tensor shapes are written as [rows][columns], row-major, the last index contiguous (a GGUF
 * tensor of ne = [n_cols, n_rows]). */
#ifndef HS_ENGINE_MODEL_IMPL_H
#define HS_ENGINE_MODEL_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/last_error.h"
#include "core/threadpool.h"
#include "engine/cpu/kernels.h"
#include "hswarm/engine.h"

/* The engine's last-error buffer (defined in model.c). */
extern _Thread_local hs_errbuf hs_engine_err;

/* A weight matrix in the mapped file: rows of cols elements of type. */
typedef struct hs_weight {
  const void *data;
  int type;
  uint32_t rows, cols;
} hs_weight;

typedef struct hs_layer {
  float *attn_norm;            /* [n_embd] f32 copy */
  float *ffn_norm;             /* [n_embd] */
  float *bq, *bk, *bv;         /* qwen2: [n_embd], [kv_dim], [kv_dim]; NULL for llama */
  hs_weight wq;                /* [n_embd][n_embd]  rows: head h owns rows h*head_dim .. */
  hs_weight wk, wv;            /* [kv_dim][n_embd]  kv_dim = n_head_kv * head_dim */
  hs_weight wo;                /* [n_embd][n_embd] */
  hs_weight w_gate, w_up;      /* [n_ff][n_embd] */
  hs_weight w_down;            /* [n_embd][n_ff] */
} hs_layer;

/* Per-call buffers of the forward pass, grown on demand and reused (steady-state calls do not
 * allocate). Sizes in elements, for cap_tok tokens. */
typedef struct hs_workspace {
  size_t cap_tok;
  float *x;        /* [cap_tok][n_embd] residual stream */
  float *xn;       /* [cap_tok][n_embd] normed input of a sublayer */
  float *q;        /* [cap_tok][n_embd] queries */
  float *k, *v;    /* [cap_tok][kv_dim] */
  float *att;      /* [cap_tok][n_embd] attention output (concatenated heads) */
  float *tmp;      /* [cap_tok][n_embd] sublayer output before the residual add */
  float *gate;     /* [cap_tok][n_ff] gate, then silu(gate) * up */
  float *up;       /* [cap_tok][n_ff] */
  float *rope_cs;  /* [cap_tok][n_rot] cos, sin interleaved per frequency */
  uint32_t *pos;   /* [cap_tok] position of each token in its sequence */
  hs_seq **seq;    /* [cap_tok] sequence of each token */
  uint32_t *rows;  /* [cap_tok] indices of the tokens whose outputs are wanted */
  float *attn_scratch; /* per worker: see attention.c */
  size_t attn_scratch_per_worker;
} hs_workspace;

struct hs_model {
  hs_gguf *g;
  hs_model_params p;
  uint32_t kv_dim;             /* n_head_kv * head_dim */
  bool neox;                   /* rope pairs (i, i + n_rot/2) (qwen2) instead of (2i, 2i+1) */
  double *rope_theta;          /* [n_rot/2] rotary frequency of pair i, scaling applied */
  hs_weight tok_embd;          /* [n_vocab][n_embd] (rows read one at a time) */
  hs_weight output;            /* [n_vocab][n_embd] (token_embd when tied) */
  float *output_norm;          /* [n_embd] */
  hs_layer *layers;            /* [n_layer] */
  hs_threadpool *tp;
  hs_cpu_scratch scratch;      /* quantized activations for the kernels */
  hs_workspace ws;
  size_t n_seqs;               /* live sequences (checked at close) */
};

struct hs_seq {
  hs_model *m;
  uint32_t len, cap;
  uint32_t pending;            /* used inside hs_model_forward only: tokens of this call */
  /* The KV cache, per layer and KV head (hs_kv_head), laid out by attention.c:
   *   k  [cap_padded / 32][head_dim][32]   keys, a block of 32 positions at a time, transposed
   *   v  [cap_padded][head_dim]            values */
  float *k, *v;
};

/* Positions per attention block (attention.c). */
#define HS_KV_BLOCK 32

/* The capacity rounded up to whole blocks. */
static inline size_t hs_kv_cap_padded(uint32_t cap) {
  return ((size_t)cap + HS_KV_BLOCK - 1) / HS_KV_BLOCK * HS_KV_BLOCK;
}

/* The keys (or values) of layer l, KV head h in s: base is s->k or s->v. */
static inline float *hs_kv_head(const hs_seq *s, float *base, uint32_t l, uint32_t h) {
  const hs_model_params *p = &s->m->p;
  return base + ((size_t)l * p->n_head_kv + h) * hs_kv_cap_padded(s->cap) * p->head_dim;
}

/* Floats of each of K and V for a capacity of cap positions. */
size_t hs_kv_floats(const hs_model_params *p, uint32_t cap);

/* Stores position pos of layer l: k and v are [n_head_kv][head_dim] (after rope). */
void hs_kv_store(hs_seq *s, uint32_t l, uint32_t pos, const float *k, const float *v);

/* Causal grouped-query attention for n rows (attention.c):
 *   out[r][h*hd .. (h+1)*hd) = softmax_j(q_h . k_j / sqrt(hd)) v_j   over positions j <= pos[r]
 * of seq[r] in layer l, where q_h = q[r][h*hd ..], and k, v come from the cache (the rows' own
 * K/V must already be stored). Work is spread over the pool by (row, KV head). */
void hs_attention(hs_model *m, uint32_t l, size_t n, const float *q, hs_seq *const *seq,
                  const uint32_t *pos, float *out);
/* The same with a given instruction set's compilation of the kernel (tests: all give the same
 * bits). */
void hs_attention_isa(hs_cpu_isa isa, hs_model *m, uint32_t l, size_t n, const float *q,
                      hs_seq *const *seq, const uint32_t *pos, float *out);

/* Floats of per-worker scratch hs_attention needs. */
size_t hs_attention_scratch_floats(const hs_model_params *p);

#endif
