/* hswarm/model.h: a model's hyperparameters, read from a GGUF file and checked against its tensors.
 *
 * hs_model_params_read looks at an open hs_gguf (see gguf.h) and fills a hs_model_params: the
 * architecture, the shapes, the rotary-embedding settings and the vocabulary size, taken from the
 * metadata keys llama.cpp writes (`<arch>.embedding_length` and so on), plus figures derived from
 * the tensors (parameter count, weight bytes) and the KV-cache cost of one token. It also checks
 * that every tensor the forward pass needs exists with the shape the hyperparameters imply, so
 * that later stages can bind weights without re-checking.
 *
 * Supported architectures:
 *   "llama"   pre-norm decoder, SwiGLU feed-forward, RoPE on pairs (2i, 2i+1)
 *   "qwen2"   llama with biases on q, k and v, RoPE on pairs (i, i + n_rot/2) ("neox")
 *   "qwen3"   llama with per-head RMS norms of q and k before RoPE (neox), head size from
 *             attention.key_length (q is n_head * head_dim wide, which may differ from n_embd)
 *   "gemma3"  per-head q/k norms, norms after attention and after the feed-forward as well as
 *             before, a GELU-gated feed-forward, embeddings scaled by sqrt(n_embd), neox RoPE,
 *             and sliding-window attention on most layers (attention.sliding_window positions;
 *             every swa_period-th layer, from layer swa_period - 1, attends globally), those layers
 *             with their own RoPE base (rope.freq_base_swa, default 10000)
 *
 * Tensor shapes are written as GGUF stores them, ne[0] first (ne[0] is the contiguous dimension):
 *   token_embd.weight           [n_embd, n_vocab]
 *   output_norm.weight          [n_embd]
 *   output.weight               [n_embd, n_vocab]        absent: tied to token_embd.weight
 *   blk.i.attn_norm.weight      [n_embd]
 *   blk.i.attn_q.weight         [n_embd, n_head*head_dim]
 *   blk.i.attn_k.weight         [n_embd, n_head_kv*head_dim]
 *   blk.i.attn_v.weight         [n_embd, n_head_kv*head_dim]
 *   blk.i.attn_output.weight    [n_head*head_dim, n_embd]
 *   blk.i.ffn_norm.weight       [n_embd]
 *   blk.i.ffn_gate.weight       [n_embd, n_ff]
 *   blk.i.ffn_up.weight         [n_embd, n_ff]
 *   blk.i.ffn_down.weight       [n_ff, n_embd]
 *   qwen2 only: blk.i.attn_q.bias [n_embd], blk.i.attn_k.bias and blk.i.attn_v.bias
 *               [n_head_kv*head_dim]
 *   qwen3, gemma3: blk.i.attn_q_norm.weight, blk.i.attn_k_norm.weight [head_dim]
 *   gemma3 only: blk.i.post_attention_norm.weight, blk.i.post_ffw_norm.weight [n_embd]
 * Matrices may have any tensor type gguf.h reads; vectors (norms, biases) must be F32, F16 or
 * BF16.
 *
 * Errors (a negative HS_E* code, with a message from hs_model_last_error):
 *   HS_EINVAL    NULL argument; an architecture or rope scaling type this library does not run
 *   HS_ECORRUPT  a required key missing or of the wrong type, a value out of range (zero, not
 *                divisible), a tensor missing, mis-shaped or of an unsupported type
 * The params hold no pointers into the file except arch_name, which is static. */
#ifndef HSWARM_MODEL_H
#define HSWARM_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "hswarm/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_model_arch {
  HS_MODEL_ARCH_LLAMA = 0,
  HS_MODEL_ARCH_QWEN2 = 1,
  HS_MODEL_ARCH_QWEN3 = 2,
  HS_MODEL_ARCH_GEMMA3 = 3
} hs_model_arch;

typedef enum hs_rope_scaling {
  HS_ROPE_SCALING_NONE = 0,  /* plain RoPE */
  HS_ROPE_SCALING_LLAMA3 = 1 /* Llama 3.1's frequency-dependent scaling */
} hs_rope_scaling;

typedef struct hs_model_params {
  hs_model_arch arch;
  const char *arch_name;     /* "llama", "qwen2", "qwen3" or "gemma3"; static */
  uint32_t n_embd;           /* <arch>.embedding_length */
  uint32_t n_layer;          /* <arch>.block_count */
  uint32_t n_head;           /* <arch>.attention.head_count */
  uint32_t n_head_kv;        /* <arch>.attention.head_count_kv, default n_head */
  uint32_t n_ff;             /* <arch>.feed_forward_length */
  uint32_t n_ctx_train;      /* <arch>.context_length */
  uint32_t n_vocab;          /* length of tokenizer.ggml.tokens */
  uint32_t head_dim;         /* <arch>.attention.key_length (= value_length), default
                                n_embd / n_head */
  uint32_t n_rot;            /* <arch>.rope.dimension_count, default head_dim */
  float rope_freq_base;      /* <arch>.rope.freq_base, default 10000 */
  float rms_norm_eps;        /* <arch>.attention.layer_norm_rms_epsilon, default 1e-5 */
  hs_rope_scaling rope_scaling; /* <arch>.rope.scaling.type: absent or "none", or "llama3" */
  /* With HS_ROPE_SCALING_LLAMA3 (all four keys required then); 0 otherwise. */
  float rope_scaling_factor;      /* <arch>.rope.scaling.factor */
  float rope_low_freq_factor;     /* <arch>.rope.scaling.low_freq_factor */
  float rope_high_freq_factor;    /* <arch>.rope.scaling.high_freq_factor */
  uint32_t rope_orig_ctx;         /* <arch>.rope.scaling.original_context_length */
  bool tied_embeddings;      /* true when output.weight is absent */
  uint64_t n_params;         /* elements of all tensors in the file */
  uint64_t weight_bytes;     /* bytes of all tensors in the file */
  uint64_t kv_bytes_per_token; /* K and V at f16: 2 * n_layer * n_head_kv * head_dim * 2 */
  /* Added with qwen3 and gemma3 (every architecture fills them). */
  uint32_t q_dim;            /* n_head * head_dim: width of the queries and of attention's output */
  float attn_scale;          /* scores are (q . k) * attn_scale: 1 / sqrt(head_dim) (gemma3 of 62
                                layers: 1 / sqrt(n_embd / n_head), as its reference does) */
  uint32_t n_swa;            /* sliding window: a query at p sees positions > p - n_swa; 0: none */
  uint32_t swa_period;       /* with n_swa: layer l is windowed unless l % swa_period ==
                                swa_period - 1 (<arch>.attention.sliding_window_pattern, default 6) */
  float rope_freq_base_swa;  /* RoPE base of the windowed layers (<arch>.rope.freq_base_swa) */
  float embed_scale;         /* token embeddings are multiplied by this: sqrt(n_embd) for gemma3, 1 */
  float logit_softcap;       /* <arch>.final_logit_softcapping: logits = c * tanh(logits / c); 0 none */
  bool ffn_gelu;             /* feed-forward gate is GELU (tanh form) instead of SiLU */
  bool qk_norm;              /* per-head RMS norms of q and k (qwen3, gemma3) */
  bool post_norms;           /* RMS norms after attention and after the feed-forward (gemma3) */
  bool qkv_bias;             /* biases on q, k and v (qwen2) */
  bool neox;                 /* RoPE pairs (i, i + n_rot/2) instead of (2i, 2i+1) */
} hs_model_params;

/* Whether layer l of a model uses the sliding window (and its RoPE base). */
static inline bool hs_model_layer_is_swa(const hs_model_params *p, uint32_t l) {
  return p->n_swa > 0 && (p->swa_period == 0 || l % p->swa_period != p->swa_period - 1);
}

/* Reads and checks g's hyperparameters and tensors into *out (written only on success).
 * g stays owned by the caller. Returns 0 or an error listed above. */
int hs_model_params_read(const hs_gguf *g, hs_model_params *out);

/* The calling thread's last error message of this module ("tensor 'blk.1.attn_k.weight' has
 * shape [64, 64], expected [64, 32]"). Never NULL. */
const char *hs_model_last_error(void);

/* Name of an architecture as GGUF spells it ("llama", "qwen2", "qwen3", "gemma3"); static. */
const char *hs_model_arch_name(hs_model_arch a);

/* Name of a rope scaling type ("none", "llama3"); static, never NULL. */
const char *hs_rope_scaling_name(hs_rope_scaling s);

#ifdef __cplusplus
}
#endif
#endif
