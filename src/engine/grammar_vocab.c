/* grammar_vocab.c: a vocabulary's trie, and the allowed-token mask of a grammar state
 * (include/hswarm/grammar.h).
 *
 * The trie is stored flat, in depth-first preorder: node i's subtree is nodes [i, end_i), so a
 * whole subtree is skipped by jumping to end_i, and a node's children follow it. Each node holds
 * its byte and depth (packed in one word), its subtree end, and where its tokens start in a list
 * of token ids sorted by their bytes (node i's tokens are tok[first_i .. first_{i+1}); several
 * tokens may share a string). It is built from the token ids sorted by their bytes: consecutive
 * tokens share a prefix, the nodes beyond it are closed, and new nodes are appended for the rest.
 *
 * The mask is one pass over that array with the configuration reached at each depth in a small
 * array: node i at depth k gets walk[k] = step(walk[k - 1], byte_i); a dead step skips the
 * subtree (no token in it can be allowed, since its prefix is not), otherwise the node's tokens
 * are allowed. step is the matcher's cached transition (grammar_match.c): one table lookup once
 * the configurations met are known, so the cost is the number of trie nodes visited, and only
 * subtrees the grammar admits are visited. End-of-generation tokens are allowed when the state is
 * complete; tokens of length 0 that are not eog never are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grammar_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define MAX_TOKEN_BYTES 65536u

typedef struct vnode {
  uint32_t end;        /* one past the last node of the subtree */
  uint32_t tok_first;  /* into tok[] */
  uint32_t depth_byte; /* depth << 8 | byte; depth >= 1 */
} vnode;

struct hs_grammar_vocab {
  size_t n_vocab;
  uint8_t *bytes;  /* all token strings */
  uint32_t *off;   /* token i is bytes[off[i] .. off[i + 1]) */
  uint8_t *is_eog; /* per token */
  uint32_t *eog;   /* ids of eog tokens */
  size_t n_eog;
  vnode *nodes; /* n_nodes + 1 (a sentinel holding the end of tok[]) */
  size_t n_nodes;
  uint32_t *tok; /* token ids in trie order, and a sentinel 0 */
  uint32_t max_depth;
};

static int nomem(void) { return hs_set_error(hs_grammar_errbuf(), HS_ENOMEM, "grammar: out of memory"); }

void hs_grammar_vocab_destroy(hs_grammar_vocab *v) {
  if (!v) return;
  hs_free(v->bytes);
  hs_free(v->off);
  hs_free(v->is_eog);
  hs_free(v->eog);
  hs_free(v->nodes);
  hs_free(v->tok);
  hs_free(v);
}

size_t hs_grammar_vocab_size(const hs_grammar_vocab *v) { return v ? v->n_vocab : 0; }

/* Sorting token ids by their bytes: qsort has no context argument, so the vocabulary being
 * sorted is a per-thread variable. */
static _Thread_local const hs_grammar_vocab *sorting;

static int cmp_tokens(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  const hs_grammar_vocab *v = sorting;
  uint32_t lx = v->off[x + 1] - v->off[x], ly = v->off[y + 1] - v->off[y];
  int c = memcmp(v->bytes + v->off[x], v->bytes + v->off[y], lx < ly ? lx : ly);
  if (c) return c;
  if (lx != ly) return lx < ly ? -1 : 1;
  return x < y ? -1 : x > y; /* equal strings: by id, so the order is total */
}

static int build_trie(hs_grammar_vocab *v, uint32_t *ids, size_t n) {
  sorting = v;
  qsort(ids, n, sizeof *ids, cmp_tokens);
  sorting = NULL;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += v->off[ids[i] + 1] - v->off[ids[i]];
  /* at most one node per byte of every token, plus the sentinel */
  v->nodes = hs_malloc((total + 1) * sizeof *v->nodes);
  uint32_t *path = hs_malloc(((size_t)v->max_depth + 1) * sizeof *path);
  if (!v->nodes || !path) {
    hs_free(path);
    return nomem();
  }
  size_t nn = 0, depth = 0; /* depth: length of the current path */
  const uint8_t *prev = NULL;
  size_t prev_len = 0;
  for (size_t t = 0; t < n; t++) {
    const uint8_t *s = v->bytes + v->off[ids[t]];
    size_t len = v->off[ids[t] + 1] - v->off[ids[t]], l = 0;
    while (prev && l < len && l < prev_len && s[l] == prev[l]) l++;
    while (depth > l) v->nodes[path[--depth]].end = (uint32_t)nn; /* close the deeper nodes */
    /* every node made here gets tok_first t: the inner ones own no token (the next node, their
     * child, starts at t too), the last one owns t and the copies of its string that follow */
    for (size_t d = l; d < len; d++) {
      v->nodes[nn].depth_byte = (uint32_t)(d + 1) << 8 | s[d];
      v->nodes[nn].tok_first = (uint32_t)t;
      v->nodes[nn].end = 0;
      path[depth++] = (uint32_t)nn++;
    }
    v->tok[t] = ids[t];
    prev = s;
    prev_len = len;
  }
  while (depth > 0) v->nodes[path[--depth]].end = (uint32_t)nn;
  v->nodes[nn].tok_first = (uint32_t)n;
  v->tok[n] = 0; /* a sentinel, read (never used) by the mask loop */
  v->nodes[nn].end = (uint32_t)nn;
  v->nodes[nn].depth_byte = 0;
  v->n_nodes = nn;
  hs_free(path);
  return 0;
}

int hs_grammar_vocab_create(const char *const *token_bytes, const size_t *lens, const bool *eog,
                            size_t n_vocab, hs_grammar_vocab **out) {
  hs_errbuf *e = hs_grammar_errbuf();
  if (!out) return hs_set_error(e, HS_EINVAL, "grammar: vocab_create with a NULL output pointer");
  *out = NULL;
  if (n_vocab == 0 || n_vocab > HS_GRAMMAR_MAX_VOCAB)
    return hs_set_error(e, HS_EINVAL, "grammar: vocabulary of %zu tokens (1 to %u)", n_vocab,
                        HS_GRAMMAR_MAX_VOCAB);
  if (!token_bytes || !lens)
    return hs_set_error(e, HS_EINVAL, "grammar: vocab_create with NULL token arrays");
  size_t total = 0;
  for (size_t i = 0; i < n_vocab; i++) {
    if (lens[i] > MAX_TOKEN_BYTES)
      return hs_set_error(e, HS_EINVAL, "grammar: token %zu has %zu bytes (at most %u)", i, lens[i],
                          MAX_TOKEN_BYTES);
    if (lens[i] && !token_bytes[i])
      return hs_set_error(e, HS_EINVAL, "grammar: token %zu has NULL bytes", i);
    total += lens[i];
  }
  if (total > UINT32_MAX - 1)
    return hs_set_error(e, HS_EINVAL, "grammar: vocabulary of %zu bytes is too large", total);
  hs_grammar_vocab *v = hs_calloc(1, sizeof *v);
  if (!v) return nomem();
  v->n_vocab = n_vocab;
  v->bytes = hs_malloc(total ? total : 1);
  v->off = hs_malloc((n_vocab + 1) * sizeof *v->off);
  v->is_eog = hs_calloc(n_vocab, 1);
  uint32_t *ids = hs_malloc(n_vocab * sizeof *ids);
  if (!v->bytes || !v->off || !v->is_eog || !ids) {
    hs_free(ids);
    hs_grammar_vocab_destroy(v);
    return nomem();
  }
  size_t at = 0, n_trie = 0;
  for (size_t i = 0; i < n_vocab; i++) {
    v->off[i] = (uint32_t)at;
    if (lens[i]) memcpy(v->bytes + at, token_bytes[i], lens[i]);
    at += lens[i];
    v->is_eog[i] = eog && eog[i];
    v->n_eog += v->is_eog[i];
    if (!v->is_eog[i] && lens[i]) {
      ids[n_trie++] = (uint32_t)i;
      if (lens[i] > v->max_depth) v->max_depth = (uint32_t)lens[i];
    }
  }
  v->off[n_vocab] = (uint32_t)at;
  v->eog = hs_malloc((v->n_eog ? v->n_eog : 1) * sizeof *v->eog);
  v->tok = hs_malloc((n_trie + 1) * sizeof *v->tok);
  if (!v->eog || !v->tok) {
    hs_free(ids);
    hs_grammar_vocab_destroy(v);
    return nomem();
  }
  for (size_t i = 0, k = 0; i < n_vocab; i++)
    if (v->is_eog[i]) v->eog[k++] = (uint32_t)i;
  int rc = build_trie(v, ids, n_trie);
  hs_free(ids);
  if (rc) {
    hs_grammar_vocab_destroy(v);
    return rc;
  }
  *out = v;
  return 0;
}

int hs_grammar_state_mask(const hs_grammar_state *cs, const hs_grammar_vocab *v, uint8_t *allowed) {
  hs_errbuf *e = hs_grammar_errbuf();
  if (!cs || !v || !allowed) return hs_set_error(e, HS_EINVAL, "grammar: mask with a NULL argument");
  /* the position does not change; the private cache does (see the header) */
  hs_grammar_state *s = (hs_grammar_state *)(uintptr_t)cs;
  int rc = hs_grammar_state_tidy(s);
  if (rc) return rc;
  hs_grammar_ctx *c = s->ctx;
  if (c->cap_walk < (size_t)v->max_depth + 1) {
    int32_t *w = hs_realloc(c->walk, ((size_t)v->max_depth + 1) * sizeof *w);
    if (!w) return nomem();
    c->walk = w;
    c->cap_walk = (size_t)v->max_depth + 1;
  }
  memset(allowed, 0, v->n_vocab);
  int32_t *walk = c->walk;
  walk[0] = s->cur;
  const vnode *nodes = v->nodes;
  const uint32_t *tok = v->tok;
  const int32_t *trans = c->trans;
  size_t count = 0, n = v->n_nodes, limit = hs_grammar_ctx_limit(c, 4);
  for (size_t i = 0; i < n;) {
    uint32_t db = nodes[i].depth_byte, depth = db >> 8;
    int32_t t = trans[((size_t)walk[depth - 1] << 8) | (db & 0xFF)];
    if (t == HS_GT_UNKNOWN) {
      rc = hs_grammar_ctx_step_slow(c, walk[depth - 1], (uint8_t)db, &t);
      if (rc) return rc;
      if (hs_grammar_ctx_bytes(c) > limit) {
        /* keep the path to this node and the state's own configuration */
        walk[depth] = t;
        if ((rc = hs_grammar_ctx_collect(c, walk, t >= 0 ? depth + 1 : depth))) return rc;
        s->cur = walk[0];
        t = t >= 0 ? walk[depth] : t;
        limit = hs_grammar_ctx_limit(c, 4);
      }
      trans = c->trans;
    }
    if (t < 0) {
      i = nodes[i].end;
      continue;
    }
    walk[depth] = t;
    /* a node owns 0 or 1 tokens nearly always: no loop, no branch, for those */
    uint32_t first = nodes[i].tok_first, end = nodes[i + 1].tok_first;
    allowed[tok[first]] |= (uint8_t)(end > first);
    count += end - first;
    for (uint32_t k = first + 1; k < end; k++) allowed[tok[k]] = 1; /* same text, other ids */
    i++;
  }
  if (c->ds[s->cur].flags & HS_GD_COMPLETE) {
    for (size_t k = 0; k < v->n_eog; k++) allowed[v->eog[k]] = 1;
    count += v->n_eog;
  }
  return (int)count;
}

int hs_grammar_state_accept(hs_grammar_state *s, const hs_grammar_vocab *v, int32_t token) {
  hs_errbuf *e = hs_grammar_errbuf();
  if (!s || !v) return hs_set_error(e, HS_EINVAL, "grammar: accept with a NULL argument");
  if (token < 0 || (size_t)token >= v->n_vocab)
    return hs_set_error(e, HS_EINVAL, "grammar: token %d is outside the vocabulary of %zu", token,
                        v->n_vocab);
  if (v->is_eog[token]) {
    if (!hs_grammar_state_is_complete(s))
      return hs_set_error(e, HS_EINVAL,
                          "grammar: end-of-generation token %d before the text is complete", token);
    return hs_grammar_state_finish(s);
  }
  size_t len = v->off[token + 1] - v->off[token];
  if (len == 0)
    return hs_set_error(e, HS_EINVAL, "grammar: control token %d (no text) is never allowed", token);
  int rc = hs_grammar_state_accept_bytes(s, (const char *)v->bytes + v->off[token], len);
  if (rc == HS_EINVAL) {
    char why[HS_ERRMSG_SIZE];
    snprintf(why, sizeof why, "%s", hs_grammar_last_error());
    const char *w = strncmp(why, "grammar: ", 9) == 0 ? why + 9 : why;
    return hs_set_error(e, HS_EINVAL, "grammar: token %d is not allowed here (%.200s)", token, w);
  }
  return rc;
}
