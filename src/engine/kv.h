/* kv.h: the paged KV cache and the prefix cache (internal to the engine).
 *
 * Three pieces, one file each:
 *
 *   kv_pool.c  the block pool: one allocation of n_blocks fixed-size blocks, made at model open
 *              from a byte budget, and a free list. A block holds the keys and values of
 *              HS_KV_BLOCK (32) consecutive positions, aligned to position 0, for every layer
 *              and KV head, in f16 (default) or f32.
 *   prefix.c   the prefix cache: a radix tree over token ids at block granularity. A node is one
 *              full block: its 32 tokens, its parent (the block before it), and the pool block
 *              holding its keys and values. Nodes are reference-counted (locks by sequences and
 *              pins); unlocked leaves are evicted least recently used first.
 *   seq.c      sequences: a block table per sequence (which pool block holds positions
 *              [32 b, 32 b + 32)), attaching a cached prefix, publishing blocks into the tree as
 *              they fill, truncation, and reserving blocks for a forward pass.
 *
 * Every pool block is in exactly one of four states (counted in hs_kv_pool, checked by tests):
 *   free      on the free list;
 *   private   owned by one sequence (its last, partial block, or a full block that could not be
 *             published);
 *   in use    owned by a tree node that is locked (by sequences or pins);
 *   cached    owned by a tree node that nobody locks: reusable by the next request that needs
 *             that prefix, evictable when it is a leaf.
 *
 * Layout of a block, per layer l and KV head h (head_bytes apart, layer-major):
 *   K  [head_dim][32]   keys transposed: the 32 positions of one dimension contiguous
 *   V  [32][head_dim]   values
 * each element f16 or f32. Blocks are zeroed when taken from the free list, so lanes of
 * positions not yet written hold 0 (finite: attention computes them and masks the scores). */
#ifndef HS_ENGINE_KV_H
#define HS_ENGINE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/cpu/kernels.h"
#include "hswarm/kvcache.h"

/* Positions per block (and per attention block: attention.c). */
#define HS_KV_BLOCK HS_KV_BLOCK_TOKENS
#define HS_KV_NONE UINT32_MAX

typedef struct hs_pnode hs_pnode;

typedef struct hs_kv_pool {
  uint8_t *mem;          /* [n_blocks][block_bytes] */
  size_t block_bytes;    /* n_layer * n_head_kv * head_bytes */
  size_t head_bytes;     /* one layer and head: K then V, 2 * 32 * head_dim * elem */
  size_t elem;           /* 2 (f16) or 4 (f32) */
  size_t v_offset;       /* bytes from K to V within head_bytes */
  hs_kv_type type;
  uint32_t n_blocks;
  uint32_t n_heads_kv;
  uint32_t *free_list;   /* [n_blocks] stack of free block ids */
  uint32_t n_free;
  uint32_t n_private;    /* blocks owned by sequences */
} hs_kv_pool;

/* Sets up a pool of budget bytes (rounded down to whole blocks). Errors: HS_EINVAL (budget below
 * one block), HS_ENOMEM. */
int hs_kv_pool_init(hs_kv_pool *p, uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim,
                    hs_kv_type type, size_t budget);
void hs_kv_pool_free(hs_kv_pool *p);

/* Takes a block off the free list and zeroes it; HS_KV_NONE when the list is empty. */
uint32_t hs_kv_pool_take(hs_kv_pool *p);
/* Returns block b to the free list. */
void hs_kv_pool_put(hs_kv_pool *p, uint32_t b);

/* Keys (then values at + v_offset) of layer l, head h of block b. */
static inline uint8_t *hs_kv_pool_head(const hs_kv_pool *p, uint32_t b, uint32_t l, uint32_t h) {
  return p->mem + (size_t)b * p->block_bytes + ((size_t)l * p->n_heads_kv + h) * p->head_bytes;
}

/* Stores position j (< 32) of block b, layer l: k and v are [n_head_kv][head_dim] f32, rounded
 * to the pool's type (f16: round to nearest even, as hs_quant_f32_to_fp16). */
void hs_kv_pool_store(hs_kv_pool *p, uint32_t b, uint32_t l, uint32_t j, size_t head_dim,
                      const float *k, const float *v);

/* Converts n f16 values to f32 (exactly), with the given instruction set's conversion (all give
 * the same bits). n is a multiple of 16. */
typedef void (*hs_kv_f16_fn)(const uint16_t *src, float *dst, size_t n);
hs_kv_f16_fn hs_kv_f16_to_f32_for(hs_cpu_isa isa);

/* ---- the prefix tree (prefix.c) ---- */

struct hs_pnode {
  hs_pnode *parent;      /* NULL for a first block */
  hs_pnode *hnext;       /* hash chain */
  uint64_t id;           /* creation serial (hash input; never reused) */
  uint64_t hash;         /* of (parent id, tokens) */
  uint64_t last_use;     /* tick of the last unlock */
  int32_t tokens[HS_KV_BLOCK];
  uint32_t block;        /* pool block holding its keys and values */
  uint32_t ref;          /* locks: sequences holding it, plus pins */
  uint32_t pins;         /* of which pins */
  uint32_t n_children;
  int32_t heap_at;       /* index in the eviction heap, -1 if not there */
};

typedef struct hs_prefix_tree {
  hs_pnode **buckets;
  size_t n_buckets, n_nodes;
  hs_pnode **heap;       /* evictable nodes (ref 0, no children): a min-heap on last_use */
  size_t heap_n, heap_cap;
  uint64_t tick, next_id;
  uint32_t n_locked;     /* nodes with ref > 0 */
  uint32_t n_pinned;     /* nodes with pins > 0 */
  uint64_t evictions, dedups, lookups, hits; /* blocks */
} hs_prefix_tree;

int hs_prefix_tree_init(hs_prefix_tree *t);
/* Frees every node (their blocks are not returned: the pool goes with it). */
void hs_prefix_tree_free(hs_prefix_tree *t);

/* The child of parent (NULL: the root) whose tokens are tokens[0..32), or NULL. */
hs_pnode *hs_prefix_find(const hs_prefix_tree *t, const hs_pnode *parent, const int32_t *tokens);
/* A new node under parent for tokens, owning pool block `block`, locked once (ref 1). The caller
 * has checked that no such child exists. NULL when out of memory. */
hs_pnode *hs_prefix_insert(hs_prefix_tree *t, hs_pnode *parent, const int32_t *tokens,
                           uint32_t block);
void hs_prefix_lock(hs_prefix_tree *t, hs_pnode *n);
void hs_prefix_unlock(hs_prefix_tree *t, hs_pnode *n);
/* Evicts the least recently used evictable leaf and returns its block to the pool; 0, or -1 when
 * nothing is evictable. */
int hs_prefix_evict_one(hs_prefix_tree *t, hs_kv_pool *pool);

/* A block for a new position: from the free list, else by evicting. HS_KV_NONE when the pool is
 * exhausted (every block private or locked). The block is counted private. */
uint32_t hs_kv_take_block(hs_kv_pool *pool, hs_prefix_tree *t);

#endif
