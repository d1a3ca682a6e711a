/* seq.c: sequences over the paged KV cache: block tables, attaching a cached prefix, publishing
 * full blocks into the prefix tree, truncation, pins (hs_seq_* in engine.h, hs_seq_attach_prefix
 * and hs_prefix_* in kvcache.h).
 *
 * A sequence takes a pool block when its length first reaches a block's first position and owns
 * it privately while the block fills. Once a forward call has computed all 32 positions of a
 * block, the block is published: inserted into the prefix tree under the sequence's previous
 * block, and the sequence keeps a lock on the node instead of owning the block. If the tree
 * already holds that prefix (another sequence computed the same tokens meanwhile), the sequence
 * switches to the cached block and frees its own: the bits are the same (the engine is
 * batch-invariant), so nothing is kept twice. Publishing is in order: block b only after block
 * b - 1, so a node's parent is always in the tree.
 *
 * Destroying a sequence unlocks its published blocks (they stay cached for the next request) and
 * frees its private ones. Truncating inside a published block copies that block into a private
 * one first (the shared one must not change): the only copy the cache ever makes. */
#include <string.h>

#include "engine/model_impl.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/tokenizer.h"

#define err hs_engine_err

static uint32_t blocks_for(uint32_t len) { return (len + HS_KV_BLOCK - 1) / HS_KV_BLOCK; }

int hs_seq_create(hs_model *m, uint32_t n_ctx, hs_seq **out) {
  if (!m || !out) return hs_set_error(&err, HS_EINVAL, "hs_seq_create: NULL argument");
  *out = NULL;
  if (n_ctx == 0) n_ctx = m->p.n_ctx_train < 4096 ? m->p.n_ctx_train : 4096;
  if (n_ctx > (1u << 24))
    return hs_set_error(&err, HS_EINVAL, "sequence capacity %u is above 2^24", n_ctx);
  hs_seq *s = hs_calloc(1, sizeof *s);
  if (!s) return hs_set_error(&err, HS_ENOMEM, "out of memory");
  s->m = m;
  s->cap = n_ctx;
  m->n_seqs++;
  *out = s;
  return 0;
}

/* Gives back block b of s (unlocks a published one, frees a private one). */
static void release_block(hs_seq *s, uint32_t b) {
  hs_model *m = s->m;
  if (s->nodes[b]) {
    hs_prefix_unlock(&m->tree, s->nodes[b]);
    s->nodes[b] = NULL;
  } else if (s->blocks[b] != HS_KV_NONE) {
    hs_kv_pool_put(&m->kv, s->blocks[b]);
    m->kv.n_private--;
  }
  s->blocks[b] = HS_KV_NONE;
}

void hs_seq_destroy(hs_seq *s) {
  if (!s) return;
  for (uint32_t b = 0; b < s->arr_cap; b++) release_block(s, b);
  s->m->n_seqs--;
  hs_free(s->blocks);
  hs_free(s->nodes);
  hs_free(s->tokens);
  hs_free(s);
}

uint32_t hs_seq_len(const hs_seq *s) { return s ? s->len : 0; }
uint32_t hs_seq_capacity(const hs_seq *s) { return s ? s->cap : 0; }

/* Room for n_pos positions in the block table and the token array (grown by doubling). */
static int grow_arrays(hs_seq *s, uint32_t n_pos) {
  uint32_t nb = blocks_for(n_pos);
  if (nb > s->arr_cap) {
    uint32_t cap = s->arr_cap ? s->arr_cap : 4;
    while (cap < nb) cap *= 2;
    uint32_t *b = hs_realloc(s->blocks, cap * sizeof *b);
    if (!b) return HS_ENOMEM;
    s->blocks = b;
    hs_pnode **n = hs_realloc(s->nodes, cap * sizeof *n);
    if (!n) return HS_ENOMEM;
    s->nodes = n;
    for (uint32_t i = s->arr_cap; i < cap; i++) {
      s->blocks[i] = HS_KV_NONE;
      s->nodes[i] = NULL;
    }
    s->arr_cap = cap;
  }
  if (n_pos > s->tok_cap) {
    uint32_t cap = s->tok_cap ? s->tok_cap : 64;
    while (cap < n_pos) cap *= 2;
    int32_t *t = hs_realloc(s->tokens, cap * sizeof *t);
    if (!t) return HS_ENOMEM;
    s->tokens = t;
    s->tok_cap = cap;
  }
  return 0;
}

void hs_seq_trim(hs_seq *s) {
  for (uint32_t b = blocks_for(s->len); b < s->arr_cap; b++) release_block(s, b);
}

static int pool_full(hs_model *m, uint32_t need) {
  return hs_set_error(&err, HS_ENOSPC,
                      "the KV cache is full: %u more blocks of %u positions needed; of %u blocks "
                      "%u are private to sequences and %u locked by sequences or pins",
                      need, HS_KV_BLOCK, m->kv.n_blocks, m->kv.n_private, m->tree.n_locked);
}

int hs_seq_reserve(hs_seq *s, uint32_t n) {
  hs_model *m = s->m;
  if (grow_arrays(s, s->len + n))
    return hs_set_error(&err, HS_ENOMEM, "out of memory for a block table");
  const uint32_t b1 = blocks_for(s->len + n);
  for (uint32_t b = blocks_for(s->len); b < b1; b++) {
    if (s->blocks[b] != HS_KV_NONE) continue;
    s->blocks[b] = hs_kv_take_block(&m->kv, &m->tree);
    if (s->blocks[b] == HS_KV_NONE) {
      hs_seq_trim(s);
      return pool_full(m, b1 - b);
    }
  }
  return 0;
}

void hs_seq_publish(hs_seq *s) {
  hs_model *m = s->m;
  if (!m->prefix_cache) return;
  hs_prefix_tree *t = &m->tree;
  for (uint32_t b = s->n_published; (b + 1) * HS_KV_BLOCK <= s->len; b++) {
    hs_pnode *parent = b ? s->nodes[b - 1] : NULL;
    const int32_t *toks = s->tokens + (size_t)b * HS_KV_BLOCK;
    hs_pnode *n = hs_prefix_find(t, parent, toks);
    if (n) {
      hs_prefix_lock(t, n);
      hs_kv_pool_put(&m->kv, s->blocks[b]);
      t->dedups++;
    } else if (!(n = hs_prefix_insert(t, parent, toks, s->blocks[b]))) {
      return; /* out of memory for a node: the block stays private */
    }
    m->kv.n_private--;
    s->blocks[b] = n->block;
    s->nodes[b] = n;
    s->n_published = b + 1;
  }
}

int hs_seq_attach_prefix(hs_seq *s, const int32_t *tokens, size_t n, uint32_t *reused) {
  if (reused) *reused = 0;
  if (!s || (!tokens && n)) return hs_set_error(&err, HS_EINVAL, "hs_seq_attach_prefix: NULL argument");
  if (s->len || s->n_published)
    return hs_set_error(&err, HS_EINVAL, "hs_seq_attach_prefix: the sequence is not empty (%u positions)",
                        s->len);
  if (n > s->cap)
    return hs_set_error(&err, HS_EINVAL,
                        "hs_seq_attach_prefix: %zu tokens are more than the sequence's capacity %u",
                        n, s->cap);
  hs_model *m = s->m;
  if (!m->prefix_cache || n < HS_KV_BLOCK) return 0;
  if (grow_arrays(s, (uint32_t)n))
    return hs_set_error(&err, HS_ENOMEM, "out of memory for a block table");
  hs_prefix_tree *t = &m->tree;
  hs_pnode *parent = NULL;
  uint32_t b = 0;
  for (; (size_t)(b + 1) * HS_KV_BLOCK <= n; b++) {
    const int32_t *toks = tokens + (size_t)b * HS_KV_BLOCK;
    t->lookups++;
    hs_pnode *node = hs_prefix_find(t, parent, toks);
    if (!node) break;
    t->hits++;
    hs_prefix_lock(t, node);
    s->blocks[b] = node->block;
    s->nodes[b] = node;
    memcpy(s->tokens + (size_t)b * HS_KV_BLOCK, toks, sizeof node->tokens);
    parent = node;
  }
  s->n_published = b;
  s->len = b * HS_KV_BLOCK;
  if (reused) *reused = s->len;
  return 0;
}

void hs_kv_match(const hs_model *m, const int32_t *tokens, size_t n, uint32_t *cached,
                 uint32_t *locked, uint32_t *pinned) {
  uint32_t c = 0, l = 0, p = 0;
  if (m && tokens && m->prefix_cache) {
    const hs_pnode *node = NULL;
    for (size_t b = 0; (b + 1) * HS_KV_BLOCK <= n; b++) {
      node = hs_prefix_find(&m->tree, node, tokens + b * HS_KV_BLOCK);
      if (!node) break;
      c += HS_KV_BLOCK;
      if (node->ref) l += HS_KV_BLOCK;
      if (node->pins) p += HS_KV_BLOCK;
    }
  }
  if (cached) *cached = c;
  if (locked) *locked = l;
  if (pinned) *pinned = p;
}

int hs_seq_truncate(hs_seq *s, uint32_t n) {
  if (!s) return hs_set_error(&err, HS_EINVAL, "hs_seq_truncate: NULL sequence");
  if (n > s->len)
    return hs_set_error(&err, HS_EINVAL, "cannot truncate a sequence of %u positions to %u",
                        s->len, n);
  hs_model *m = s->m;
  const uint32_t cut = n / HS_KV_BLOCK; /* the block n falls in */
  if (n % HS_KV_BLOCK && cut < s->n_published) {
    /* positions [32 cut, n) stay, in a shared block: copy it into a private one */
    uint32_t nb = hs_kv_take_block(&m->kv, &m->tree);
    if (nb == HS_KV_NONE) return pool_full(m, 1);
    memcpy(m->kv.mem + (size_t)nb * m->kv.block_bytes,
           m->kv.mem + (size_t)s->blocks[cut] * m->kv.block_bytes, m->kv.block_bytes);
    hs_prefix_unlock(&m->tree, s->nodes[cut]);
    s->nodes[cut] = NULL;
    s->blocks[cut] = nb;
  }
  if (s->n_published > cut) {
    /* release published blocks from the end, so ancestors are unlocked after descendants */
    for (uint32_t b = s->n_published; b-- > cut;)
      if (s->nodes[b]) release_block(s, b);
    s->n_published = cut;
  }
  s->len = n;
  hs_seq_trim(s);
  return 0;
}

/* ---- pins ---- */

struct hs_prefix {
  hs_model *m;
  hs_pnode *leaf; /* the last block pinned; the path up from it is pinned */
  uint32_t len;
};

/* Chunk of positions per forward call while computing a pinned prefix. */
#define PIN_CHUNK 256

int hs_prefix_pin(hs_model *m, const int32_t *tokens, size_t n, hs_prefix **out) {
  if (out) *out = NULL;
  if (!m || !tokens || !out) return hs_set_error(&err, HS_EINVAL, "hs_prefix_pin: NULL argument");
  if (!m->prefix_cache)
    return hs_set_error(&err, HS_EINVAL, "hs_prefix_pin: the model's prefix cache is off");
  const uint32_t len = (uint32_t)(n / HS_KV_BLOCK * HS_KV_BLOCK);
  if (len == 0)
    return hs_set_error(&err, HS_EINVAL,
                        "hs_prefix_pin: %zu tokens are less than one block (%u): nothing to pin",
                        n, HS_KV_BLOCK);
  if (n > m->p.n_ctx_train)
    return hs_set_error(&err, HS_EINVAL, "hs_prefix_pin: %zu tokens are more than the context (%u)",
                        n, m->p.n_ctx_train);
  hs_prefix *p = hs_calloc(1, sizeof *p);
  if (!p) return hs_set_error(&err, HS_ENOMEM, "out of memory");
  hs_seq *s;
  int rc = hs_seq_create(m, len, &s);
  if (rc) {
    hs_free(p);
    return rc;
  }
  uint32_t done;
  rc = hs_seq_attach_prefix(s, tokens, len, &done);
  hs_batch_item items[PIN_CHUNK];
  while (!rc && done < len) {
    uint32_t k = len - done < PIN_CHUNK ? len - done : PIN_CHUNK;
    for (uint32_t i = 0; i < k; i++) items[i] = (hs_batch_item){s, tokens[done + i], false};
    rc = hs_model_forward(m, items, k, NULL, NULL);
    done += k;
  }
  if (!rc && s->n_published * HS_KV_BLOCK != len)
    rc = hs_set_error(&err, HS_ENOMEM, "out of memory for the prefix cache's nodes");
  if (rc) {
    hs_seq_destroy(s);
    hs_free(p);
    return rc;
  }
  for (hs_pnode *node = s->nodes[len / HS_KV_BLOCK - 1]; node; node = node->parent) {
    hs_prefix_lock(&m->tree, node);
    if (node->pins++ == 0) m->tree.n_pinned++;
  }
  p->m = m;
  p->leaf = s->nodes[len / HS_KV_BLOCK - 1];
  p->len = len;
  hs_seq_destroy(s);
  m->n_pins++;
  *out = p;
  return 0;
}

int hs_prefix_pin_text(hs_model *m, const hs_tokenizer *tok, const char *text, size_t len,
                       unsigned flags, hs_prefix **out) {
  if (out) *out = NULL;
  if (!m || !tok || (!text && len) || !out)
    return hs_set_error(&err, HS_EINVAL, "hs_prefix_pin_text: NULL argument");
  size_t n = 0;
  int rc = hs_tokenizer_encode(tok, text, len, flags, NULL, 0, &n);
  if (rc && rc != HS_ENOSPC)
    return hs_set_error(&err, rc, "hs_prefix_pin_text: %s", hs_tokenizer_last_error());
  int32_t *ids = hs_malloc((n ? n : 1) * sizeof *ids);
  if (!ids) return hs_set_error(&err, HS_ENOMEM, "out of memory");
  rc = hs_tokenizer_encode(tok, text, len, flags, ids, n, &n);
  if (rc) rc = hs_set_error(&err, rc, "hs_prefix_pin_text: %s", hs_tokenizer_last_error());
  else rc = hs_prefix_pin(m, ids, n, out);
  hs_free(ids);
  return rc;
}

uint32_t hs_prefix_len(const hs_prefix *p) { return p ? p->len : 0; }

void hs_prefix_unpin(hs_prefix *p) {
  if (!p) return;
  hs_model *m = p->m;
  for (hs_pnode *node = p->leaf; node; node = node->parent) {
    if (--node->pins == 0) m->tree.n_pinned--;
    hs_prefix_unlock(&m->tree, node);
  }
  m->n_pins--;
  hs_free(p);
}

/* ---- statistics ---- */

void hs_kv_get_stats(const hs_model *m, hs_kv_stats *o) {
  memset(o, 0, sizeof *o);
  if (!m) return;
  const hs_prefix_tree *t = &m->tree;
  o->blocks_total = m->kv.n_blocks;
  o->blocks_free = m->kv.n_free;
  o->blocks_private = m->kv.n_private;
  o->blocks_in_use = t->n_locked;
  o->blocks_cached = t->n_nodes - t->n_locked;
  o->blocks_pinned = t->n_pinned;
  o->block_bytes = m->kv.block_bytes;
  o->lookups = t->lookups;
  o->hits = t->hits;
  o->evictions = t->evictions;
  o->dedups = t->dedups;
}

uint64_t hs_kv_evict_all(hs_model *m) {
  uint64_t k = 0;
  while (m && hs_prefix_evict_one(&m->tree, &m->kv) == 0) k++;
  return k;
}
