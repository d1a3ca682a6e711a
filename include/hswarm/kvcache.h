/* hswarm/kvcache.h: the paged KV cache and the prefix cache of a model.
 *
 * A model keeps the keys and values of every sequence in one pool of fixed-size blocks
 * (HS_KV_BLOCK_TOKENS positions each, for every layer and KV head), allocated once at
 * hs_model_open from a byte budget (hs_model_opts.kv_bytes) in f16 or f32 (kv_type). A sequence
 * holds a table of blocks, taken as it grows.
 *
 * Prefix cache. A block whose 32 positions are all computed is published in a radix tree keyed by
 * the tokens of the sequence up to and including that block: the KV of positions [0, 32 (b + 1))
 * depends only on those tokens (the engine is batch-invariant: engine.h), so any later sequence
 * that starts with the same tokens can use the block as it is, shared, never copied.
 * hs_seq_attach_prefix does that for a new sequence. Blocks are reference-counted: a sequence
 * locks the blocks it uses, a pin (hs_prefix_pin) locks a prefix until it is unpinned. When the
 * pool runs short, unlocked blocks that no other cached block extends are evicted, least recently
 * used first; an evicted prefix is simply computed again by the next sequence that needs it.
 *
 *   uint32_t reused;
 *   hs_seq_create(m, 0, &s);
 *   hs_seq_attach_prefix(s, prompt, n - 1, &reused);   // positions [0, reused) come from the cache
 *   ... feed prompt[reused .. n) with hs_model_forward ...
 *
 * Ownership: a hs_prefix belongs to its model and must be unpinned before the model is closed.
 * Threads: as engine.h (one call at a time per model). */
#ifndef HSWARM_KVCACHE_H
#define HSWARM_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_model hs_model;
typedef struct hs_seq hs_seq;

/* Positions per KV block: the unit of allocation, sharing and caching. */
#define HS_KV_BLOCK_TOKENS 32

/* Element type of the cache. */
typedef enum hs_kv_type { HS_KV_F16 = 0, HS_KV_F32 = 1 } hs_kv_type;

/* Bytes of one KV block (keys and values of HS_KV_BLOCK_TOKENS positions, every layer and KV
 * head) for a model with n_layer layers, n_head_kv KV heads of head_dim: what hs_kv_stats'
 * block_bytes will be. For sizing a budget before the model is open. */
size_t hs_kv_block_bytes(uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim,
                         hs_kv_type type);

/* Attaches the longest cached prefix of tokens[0..n) to the empty sequence s, in whole blocks:
 * positions [0, *reused) of s now hold the cached keys and values of tokens[0..*reused), and s's
 * length is *reused (a multiple of HS_KV_BLOCK_TOKENS, at most n). Pass n - 1 for a prompt whose
 * last token's logits are wanted, so that at least that token is computed. The tokens are not
 * checked against the vocabulary (a token that was never computed matches nothing).
 * Errors: HS_EINVAL (NULL s or tokens with n > 0; s not empty; n above its capacity). */
int hs_seq_attach_prefix(hs_seq *s, const int32_t *tokens, size_t n, uint32_t *reused);

/* Without attaching anything: how many of tokens[0..n) the cache holds now, in whole blocks
 * (*cached); how many of those are locked by sequences or pins (*locked: attaching them takes no
 * block from the free or cached ones); and how many are pinned (*pinned). Pointers may be NULL. */
void hs_kv_match(const hs_model *m, const int32_t *tokens, size_t n, uint32_t *cached,
                 uint32_t *locked, uint32_t *pinned);

/* A pinned prefix. */
typedef struct hs_prefix hs_prefix;

/* Computes (or finds cached) the keys and values of tokens[0..n) in whole blocks and pins them:
 * until hs_prefix_unpin, those blocks are never evicted, and every sequence that starts with the
 * same tokens reuses them. Only whole blocks are pinned: hs_prefix_len is n rounded down to a
 * multiple of HS_KV_BLOCK_TOKENS. *out is owned by the caller (hs_prefix_unpin).
 * Errors: HS_EINVAL (NULL argument, n below one block or above the model's context, a token out
 * of range), HS_ENOSPC (the pool cannot hold the prefix), HS_ENOMEM. */
int hs_prefix_pin(hs_model *m, const int32_t *tokens, size_t n, hs_prefix **out);
/* The same for text, encoded with tok (hs_tokenizer_encode with flags, e.g. HS_TOKENIZE_ADD_BOS
 * so that prompts that start with the same text and BOS share it). Errors as hs_prefix_pin, and
 * the tokenizer's. */
struct hs_tokenizer;
int hs_prefix_pin_text(hs_model *m, const struct hs_tokenizer *tok, const char *text, size_t len,
                       unsigned flags, hs_prefix **out);
/* Positions pinned. */
uint32_t hs_prefix_len(const hs_prefix *p);
/* Unpins (the blocks stay cached, evictable once nobody uses them). NULL is ignored. */
void hs_prefix_unpin(hs_prefix *p);

/* The pool's state. Every block is exactly one of free, private, in use or cached:
 * blocks_free + blocks_private + blocks_in_use + blocks_cached == blocks_total. */
typedef struct hs_kv_stats {
  uint64_t blocks_total;
  uint64_t blocks_free;    /* on the free list */
  uint64_t blocks_private; /* owned by one sequence (its partial last block, unpublished blocks) */
  uint64_t blocks_in_use;  /* published and locked by sequences or pins */
  uint64_t blocks_cached;  /* published and unlocked: reusable, evictable once leaves */
  uint64_t blocks_pinned;  /* of blocks_in_use, those locked by pins */
  uint64_t block_bytes;    /* bytes of one block */
  uint64_t lookups;        /* blocks looked up by hs_seq_attach_prefix */
  uint64_t hits;           /* of which found */
  uint64_t evictions;      /* blocks evicted */
  uint64_t dedups;         /* blocks computed again while cached and replaced by the cached one */
} hs_kv_stats;

void hs_kv_get_stats(const hs_model *m, hs_kv_stats *out);

/* Evicts every cached block nobody uses (pinned and in-use blocks stay); returns how many. */
uint64_t hs_kv_evict_all(hs_model *m);

#ifdef __cplusplus
}
#endif
#endif
