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
#include "engine/kv.h"
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
  float *bq, *bk, *bv;         /* qwen2: [q_dim], [kv_dim], [kv_dim]; NULL otherwise */
  float *q_norm, *k_norm;      /* qwen3, gemma3: [head_dim]; NULL otherwise */
  float *post_attn_norm;       /* gemma3: [n_embd]; NULL otherwise */
  float *post_ffn_norm;        /* gemma3: [n_embd]; NULL otherwise */
  bool swa;                    /* attends within the sliding window, with the window's RoPE */
  hs_weight wq;                /* [q_dim][n_embd]  rows: head h owns rows h*head_dim .. */
  hs_weight wk, wv;            /* [kv_dim][n_embd]  kv_dim = n_head_kv * head_dim */
  hs_weight wo;                /* [n_embd][q_dim] */
  hs_weight w_gate, w_up;      /* [n_ff][n_embd] */
  hs_weight w_down;            /* [n_embd][n_ff] */
} hs_layer;

/* Per-call buffers of the forward pass, grown on demand and reused (steady-state calls do not
 * allocate). Sizes in elements, for cap_tok tokens. */
typedef struct hs_workspace {
  size_t cap_tok;
  float *x;        /* [cap_tok][n_embd] residual stream */
  float *xn;       /* [cap_tok][n_embd] normed input of a sublayer */
  float *q;        /* [cap_tok][q_dim] queries */
  float *k, *v;    /* [cap_tok][kv_dim] */
  float *att;      /* [cap_tok][q_dim] attention output (concatenated heads) */
  float *tmp;      /* [cap_tok][n_embd] sublayer output before the residual add */
  float *gate;     /* [cap_tok][n_ff] gate, then silu(gate) * up */
  float *up;       /* [cap_tok][n_ff] */
  float *rope_cs;  /* [cap_tok][n_rot] cos, sin interleaved per frequency */
  float *rope_cs_swa; /* [cap_tok][n_rot] the same for the windowed layers' base (or NULL) */
  uint32_t *pos;   /* [cap_tok] position of each token in its sequence */
  hs_seq **seq;    /* [cap_tok] sequence of each token */
  uint32_t *rows;  /* [cap_tok] indices of the tokens whose outputs are wanted */
  uint32_t *attn_order;  /* [cap_tok] rows sorted so that rows sharing blocks are adjacent */
  uint32_t *attn_chunks; /* [cap_tok + 1] starts of the row chunks of attention tasks */
  float *attn_scratch; /* per worker: see attention.c */
  size_t attn_scratch_per_worker;
} hs_workspace;

struct hs_model {
  hs_gguf *g;
  hs_model_params p;
  uint32_t kv_dim;             /* n_head_kv * head_dim */
  bool neox;                   /* rope pairs (i, i + n_rot/2) instead of (2i, 2i+1) */
  double *rope_theta;          /* [n_rot/2] rotary frequency of pair i, scaling applied */
  double *rope_theta_swa;      /* [n_rot/2] the windowed layers' frequencies; NULL without them */
  hs_weight tok_embd;          /* [n_vocab][n_embd] (rows read one at a time) */
  hs_weight output;            /* [n_vocab][n_embd] (token_embd when tied) */
  float *output_norm;          /* [n_embd] */
  hs_layer *layers;            /* [n_layer] */
  hs_threadpool *tp;
  hs_cpu_scratch scratch;      /* quantized activations for the kernels */
  hs_workspace ws;
  size_t n_seqs;               /* live sequences (checked at close) */
  size_t n_pins;               /* live pins (checked at close) */
  hs_kv_pool kv;               /* the KV blocks of every sequence (kv.h) */
  hs_prefix_tree tree;         /* the prefix cache over those blocks */
  bool prefix_cache;           /* sequences publish and reuse blocks (off: an ablation) */
  bool shared_attention;       /* rows sharing a block read it together (off: an ablation) */
};

struct hs_seq {
  hs_model *m;
  uint32_t len, cap;
  uint32_t pending;            /* used inside hs_model_forward only: tokens of this call */
  /* The block table: positions [32 b, 32 b + 32) live in pool block blocks[b] (HS_KV_NONE when
   * not taken). Blocks [0, n_published) are nodes of the prefix tree (nodes[b], locked by this
   * sequence); the others are private to it. Outside a forward call exactly ceil(len / 32)
   * blocks are taken. */
  uint32_t *blocks;            /* [arr_cap] */
  hs_pnode **nodes;            /* [arr_cap] */
  uint32_t arr_cap;            /* entries of blocks and nodes */
  uint32_t n_published;
  int32_t *tokens;             /* [tok_cap] the token at each position (keys of the tree) */
  uint32_t tok_cap;
};

/* Takes the blocks for positions [len, len + n) of s and room for their tokens. On failure
 * nothing is taken. Errors: HS_ENOSPC (pool exhausted; message says how full), HS_ENOMEM. */
int hs_seq_reserve(hs_seq *s, uint32_t n);
/* Gives back blocks taken past position len (after a failed call). */
void hs_seq_trim(hs_seq *s);
/* Publishes the full blocks of s not yet in the prefix tree (after a forward call). */
void hs_seq_publish(hs_seq *s);

/* Stores position pos of layer l: k and v are [n_head_kv][head_dim] (after rope). */
static inline void hs_kv_store(hs_seq *s, uint32_t l, uint32_t pos, const float *k,
                               const float *v) {
  hs_model *m = s->m;
  hs_kv_pool_store(&m->kv, s->blocks[pos / HS_KV_BLOCK], l, pos % HS_KV_BLOCK, m->p.head_dim, k,
                   v);
}

/* Causal grouped-query attention for n rows (attention.c):
 *   out[r][h*hd .. (h+1)*hd) = softmax_j(q_h . k_j / sqrt(hd)) v_j   over positions j <= pos[r]
 * of seq[r] in layer l, where q_h = q[r][h*hd ..], and k, v come from the cache (the rows' own
 * K/V must already be stored). Rows that share blocks are computed together (one read of each
 * shared block per chunk of rows) unless m->shared_attention is off; the results are the same
 * bits either way. Work is spread over the pool by (chunk of rows, KV head). */
void hs_attention(hs_model *m, uint32_t l, size_t n, const float *q, hs_seq *const *seq,
                  const uint32_t *pos, float *out);
/* The same with a given instruction set's compilation of the kernel (tests: all give the same
 * bits). */
void hs_attention_isa(hs_cpu_isa isa, hs_model *m, uint32_t l, size_t n, const float *q,
                      hs_seq *const *seq, const uint32_t *pos, float *out);

/* Floats of per-worker scratch hs_attention needs. */
size_t hs_attention_scratch_floats(const hs_model_params *p);

#endif
