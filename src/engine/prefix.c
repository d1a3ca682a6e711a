/* prefix.c: the prefix cache, a radix tree over token ids at block granularity (see kv.h and
 * hswarm/kvcache.h).
 *
 * The idea (after SGLang's RadixAttention, with vLLM's block-level keys). The keys and values of
 * positions [0, 32 (b + 1)) of a sequence depend only on its first 32 (b + 1) tokens, because
 * the engine is batch-invariant. So the cache is a tree whose nodes are full blocks: a node holds
 * the 32 tokens of its block and the pool block with their keys and values, and its parent is
 * the block before it (NULL for a first block). The path from a first block to a node spells a
 * token prefix; a request reuses the deepest node whose path matches its prompt. Each edge is one
 * block rather than a compressed run of blocks: a block is the unit of sharing and eviction, so a
 * per-block node keeps splitting and merging out of the picture at the cost of one node per 32
 * tokens.
 *
 * Finding a child. Children are not stored in their parent: one hash table over all nodes, keyed
 * by (parent's id, the block's tokens), finds the child of any node in O(1), whether the parent
 * has one child or ten thousand (a pinned system prompt extended by every agent's own suffix).
 * Ids are creation serials, so hashing does not depend on addresses.
 *
 * Locks and eviction. A node's ref counts the sequences using its block plus the pins on it; a
 * sequence or pin locks every node of its path, so a locked node's ancestors are locked too. A
 * node with ref 0 and no children is evictable: it sits in a min-heap ordered by the tick of its
 * last unlock. Evicting pops the least recently used leaf, frees its block and, if that leaves
 * its parent an unlocked leaf, makes the parent evictable in turn (leaves first, as SGLang
 * does). Nodes enter the heap only when they become evictable and leave it when locked or given
 * a child, so the heap holds exactly the evictable nodes; their last_use never changes while they
 * are in it. Ticks are unique, so the order is fully determined (runs are reproducible). */
#include <string.h>

#include "core/hash.h"
#include "engine/kv.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

/* ---- hashing ---- */

#define mix hs_mix64
static uint64_t key_hash(const hs_pnode *parent, const int32_t *tokens) {
  uint64_t h = mix(parent ? parent->id + 1 : 0);
  for (int i = 0; i < HS_KV_BLOCK; i++) h = mix(h ^ (uint32_t)tokens[i]);
  return h;
}

int hs_prefix_tree_init(hs_prefix_tree *t) {
  memset(t, 0, sizeof *t);
  t->n_buckets = 256;
  t->buckets = hs_calloc(t->n_buckets, sizeof *t->buckets);
  return t->buckets ? 0 : HS_ENOMEM;
}

void hs_prefix_tree_free(hs_prefix_tree *t) {
  for (size_t i = 0; t->buckets && i < t->n_buckets; i++) {
    hs_pnode *n = t->buckets[i];
    while (n) {
      hs_pnode *next = n->hnext;
      hs_free(n);
      n = next;
    }
  }
  hs_free(t->buckets);
  hs_free(t->heap);
  memset(t, 0, sizeof *t);
}

hs_pnode *hs_prefix_find(const hs_prefix_tree *t, const hs_pnode *parent, const int32_t *tokens) {
  uint64_t h = key_hash(parent, tokens);
  for (hs_pnode *n = t->buckets[h & (t->n_buckets - 1)]; n; n = n->hnext)
    if (n->hash == h && n->parent == parent && !memcmp(n->tokens, tokens, sizeof n->tokens))
      return n;
  return NULL;
}

/* Doubles the table when it is fuller than one node per bucket; failure only keeps chains long. */
static void maybe_grow(hs_prefix_tree *t) {
  if (t->n_nodes < t->n_buckets) return;
  size_t nb = t->n_buckets * 2;
  hs_pnode **b = hs_calloc(nb, sizeof *b);
  if (!b) return;
  for (size_t i = 0; i < t->n_buckets; i++) {
    hs_pnode *n = t->buckets[i];
    while (n) {
      hs_pnode *next = n->hnext;
      n->hnext = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
      n = next;
    }
  }
  hs_free(t->buckets);
  t->buckets = b;
  t->n_buckets = nb;
}

/* ---- the eviction heap (min on last_use) ---- */

static void heap_set(hs_prefix_tree *t, size_t i, hs_pnode *n) {
  t->heap[i] = n;
  n->heap_at = (int32_t)i;
}

static void sift_up(hs_prefix_tree *t, size_t i) {
  hs_pnode *n = t->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (t->heap[p]->last_use <= n->last_use) break;
    heap_set(t, i, t->heap[p]);
    i = p;
  }
  heap_set(t, i, n);
}

static void sift_down(hs_prefix_tree *t, size_t i) {
  hs_pnode *n = t->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= t->heap_n) break;
    if (c + 1 < t->heap_n && t->heap[c + 1]->last_use < t->heap[c]->last_use) c++;
    if (n->last_use <= t->heap[c]->last_use) break;
    heap_set(t, i, t->heap[c]);
    i = c;
  }
  heap_set(t, i, n);
}

/* The heap has room for every node (reserved in hs_prefix_insert), so pushing cannot fail. */
static void heap_push(hs_prefix_tree *t, hs_pnode *n) {
  t->heap[t->heap_n] = n;
  n->heap_at = (int32_t)t->heap_n++;
  sift_up(t, t->heap_n - 1);
}

static void heap_remove(hs_prefix_tree *t, hs_pnode *n) {
  size_t i = (size_t)n->heap_at;
  n->heap_at = -1;
  hs_pnode *last = t->heap[--t->heap_n];
  if (i == t->heap_n) return;
  heap_set(t, i, last);
  sift_up(t, i);
  sift_down(t, (size_t)last->heap_at);
}

static void maybe_evictable(hs_prefix_tree *t, hs_pnode *n) {
  if (n->ref == 0 && n->n_children == 0 && n->heap_at < 0) heap_push(t, n);
}

/* ---- nodes ---- */

hs_pnode *hs_prefix_insert(hs_prefix_tree *t, hs_pnode *parent, const int32_t *tokens,
                           uint32_t block) {
  if (t->n_nodes + 1 > t->heap_cap) {
    size_t cap = t->heap_cap ? 2 * t->heap_cap : 256;
    hs_pnode **h = hs_realloc(t->heap, cap * sizeof *h);
    if (!h) return NULL;
    t->heap = h;
    t->heap_cap = cap;
  }
  hs_pnode *n = hs_calloc(1, sizeof *n);
  if (!n) return NULL;
  n->parent = parent;
  n->id = t->next_id++;
  memcpy(n->tokens, tokens, sizeof n->tokens);
  n->hash = key_hash(parent, tokens);
  n->block = block;
  n->ref = 1;
  n->heap_at = -1;
  t->n_locked++;
  if (parent) {
    if (parent->heap_at >= 0) heap_remove(t, parent);
    parent->n_children++;
  }
  maybe_grow(t);
  size_t b = n->hash & (t->n_buckets - 1);
  n->hnext = t->buckets[b];
  t->buckets[b] = n;
  t->n_nodes++;
  return n;
}

void hs_prefix_lock(hs_prefix_tree *t, hs_pnode *n) {
  if (n->ref++ == 0) {
    t->n_locked++;
    if (n->heap_at >= 0) heap_remove(t, n);
  }
}

void hs_prefix_unlock(hs_prefix_tree *t, hs_pnode *n) {
  if (--n->ref == 0) {
    t->n_locked--;
    n->last_use = ++t->tick;
    maybe_evictable(t, n);
  }
}

int hs_prefix_evict_one(hs_prefix_tree *t, hs_kv_pool *pool) {
  if (t->heap_n == 0) return -1;
  hs_pnode *n = t->heap[0];
  heap_remove(t, n);
  hs_pnode **pp = &t->buckets[n->hash & (t->n_buckets - 1)];
  while (*pp != n) pp = &(*pp)->hnext;
  *pp = n->hnext;
  t->n_nodes--;
  t->evictions++;
  hs_pnode *parent = n->parent;
  if (parent) {
    parent->n_children--;
    maybe_evictable(t, parent);
  }
  hs_kv_pool_put(pool, n->block);
  hs_free(n);
  return 0;
}

uint32_t hs_kv_take_block(hs_kv_pool *pool, hs_prefix_tree *t) {
  uint32_t b = hs_kv_pool_take(pool);
  while (b == HS_KV_NONE && hs_prefix_evict_one(t, pool) == 0) b = hs_kv_pool_take(pool);
  if (b != HS_KV_NONE) pool->n_private++;
  return b;
}
