/* hswarm/engine.h: the inference engine on the CPU: a model bound to a GGUF file, sequences over
 * its paged KV cache (kvcache.h: blocks, prefix cache, pins), and one batched forward pass.
 *
 *   hs_model *m;  hs_model_open("m.gguf", NULL, &m);
 *   hs_seq *a, *b;  hs_seq_create(m, 0, &a);  hs_seq_create(m, 0, &b);
 *   hs_batch_item it[] = {{a, 1, false}, {a, 42, true}, {b, 7, true}};
 *   float *logits = malloc(2 * n_vocab * sizeof *logits);
 *   hs_model_forward(m, it, 3, logits, NULL);   // a: positions 0, 1; b: position 0
 *   ...  hs_seq_destroy(a); hs_seq_destroy(b); hs_model_close(m);
 *
 * Architectures: "llama" (Llama 2, Llama 3.x with its rope scaling, Mistral; grouped-query
 * attention; tied embeddings when output.weight is absent) and "qwen2" (biases on q, k and v,
 * NeoX-style rotary embedding). Weights stay in the file (mmap) in their own types (F32, F16,
 * BF16, Q8_0, Q4_0, Q4_K, Q6_K); activations are f32.
 *
 * Numerics. A token's logits depend only on its sequence's tokens, never on what else is in the
 * batch, how many threads run, or whether the prompt was given at once or token by token: every
 * reduction has a fixed order and every row is computed by the same code whatever the batch. So
 * a batched call gives bit-identical logits to the same sequences run alone, and prefilling a
 * prompt at once gives bit-identical logits to feeding it one token per call.
 *
 * Ownership and lifetimes. hs_model_open returns a model owned by the caller (hs_model_close).
 * The model owns the mapped file, its thread pool, scratch and KV pool. A hs_seq belongs to
 * the model it was created from and must be destroyed before that model is closed. Pointers
 * returned by getters stay valid while the model lives. The caller owns every buffer it passes.
 *
 * Threads. A model runs one call at a time: hs_model_forward, hs_seq_create/destroy/truncate on
 * the same model must not run concurrently (the model's thread pool does the parallel work
 * inside a call). Different models are independent. Error messages are per thread.
 *
 * Errors: a negative HS_E* code (hswarm/error.h) with a message from hs_engine_last_error. */
#ifndef HSWARM_ENGINE_H
#define HSWARM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/gguf.h"
#include "hswarm/kvcache.h"
#include "hswarm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_model hs_model;

typedef struct hs_model_opts {
  unsigned n_threads; /* threads of the forward pass, counting the caller; 0: all online CPUs */
  bool use_mmap;      /* map the file (pages shared with the page cache, nothing read at open)
                         instead of reading it into private memory with huge pages
                         (hs_gguf_open_copy: decode streams weights faster); default false */
  size_t kv_bytes;    /* KV cache budget in bytes, fixed for the model's life (kvcache.h); 0: room
                         for four contexts of min(n_ctx_train, 4096) positions (64 blocks at
                         least) */
  hs_kv_type kv_type; /* HS_KV_F16 (default) or HS_KV_F32 */
  bool no_prefix_cache;     /* ablation: sequences neither publish nor reuse cached blocks */
  bool no_shared_attention; /* ablation: rows sharing KV blocks read them one row at a time
                               (same results, more memory traffic) */
} hs_model_opts;

/* Opens the GGUF file at path (read into memory, or mapped with use_mmap), checks its
 * hyperparameters and tensors (hs_model_params_read, plus: every matrix's type is one the kernels multiply, vectors are
 * F32/F16/BF16, an optional rope_freqs.weight has n_rot/2 entries), binds the tensors and starts
 * the thread pool. o NULL: defaults. On success *out owns the model.
 * Errors: HS_EINVAL (NULL argument; unsupported architecture), HS_ENOENT, HS_EIO, HS_ECORRUPT,
 * HS_ETRUNC, HS_EVERSION (the file), HS_ENOMEM. */
int hs_model_open(const char *path, const hs_model_opts *o, hs_model **out);
/* Stops the thread pool and unmaps the file. Every hs_seq of m must already be destroyed and
 * every hs_prefix unpinned. NULL is ignored. */
void hs_model_close(hs_model *m);

/* The calling thread's last error message of the engine (model, sequences, forward). Never NULL. */
const char *hs_engine_last_error(void);

/* The model's hyperparameters; valid while m lives. */
const hs_model_params *hs_model_get_params(const hs_model *m);
/* The open GGUF file (metadata, tokenizer keys); stays open while m lives. */
const hs_gguf *hs_model_get_gguf(const hs_model *m);
/* Threads of the forward pass, counting the caller. */
unsigned hs_model_n_threads(const hs_model *m);

/* ---- sequences: a block table each over the model's KV pool (kvcache.h) ---- */

typedef struct hs_seq hs_seq;

/* A new, empty sequence of capacity n_ctx positions (0: min(n_ctx_train, 4096)). It takes KV
 * blocks from the model's pool as it grows (none now), and publishes its full blocks in the
 * prefix cache. *out is owned by the caller (hs_seq_destroy), and belongs to m. Errors: HS_EINVAL
 * (NULL argument, n_ctx above 2^24), HS_ENOMEM. */
int hs_seq_create(hs_model *m, uint32_t n_ctx, hs_seq **out);
void hs_seq_destroy(hs_seq *s); /* NULL is ignored */

/* Positions stored, and the capacity. */
uint32_t hs_seq_len(const hs_seq *s);
uint32_t hs_seq_capacity(const hs_seq *s);
/* Forgets positions >= n (the next token appended goes to position n). HS_EINVAL if n is above
 * the length; HS_ENOSPC if n cuts a shared block, whose kept positions are then copied into a
 * block of the sequence's own, and the pool has none left (nothing changed). */
int hs_seq_truncate(hs_seq *s, uint32_t n);

/* ---- the forward pass ---- */

typedef struct hs_batch_item {
  hs_seq *seq;   /* the sequence the token is appended to; of the model called */
  int32_t token; /* 0 <= token < n_vocab */
  bool logits;   /* write this position's logits (and hidden state) */
} hs_batch_item;

/* Appends each item's token to its sequence at the next position (items of one sequence in
 * order; several sequences may be interleaved), runs the model over all of them at once, and
 * writes n_vocab logits for every item with .logits into logits, rows in item order (row r for
 * the r-th such item), and, when hidden != NULL, the n_embd final normed hidden states likewise.
 * logits may be NULL (then only hidden states are written, if asked). n == 0 does nothing.
 * Errors, with nothing appended to any sequence: HS_EINVAL (NULL items with n > 0, an item
 * without a sequence or of another model, a token out of range), HS_ENOSPC (a sequence would pass
 * its capacity, or the KV pool has too few blocks left for the call; the message says which),
 * HS_ENOMEM (workspace). Blocks filled by the call are published in the prefix cache. */
int hs_model_forward(hs_model *m, const hs_batch_item *items, size_t n, float *logits,
                     float *hidden);

#ifdef __cplusplus
}
#endif
#endif
