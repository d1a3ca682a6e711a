/* grammar_match.c: the grammar matcher, a pushdown recogniser over Unicode code points with a
 * lazily built byte-level DFA on top (include/hswarm/grammar.h, grammar_internal.h).
 *
 * Why stacks and not Earley. A state must answer one question very often: which bytes may come
 * next, and where does each lead. With a set of parse stacks (llama.cpp's approach) a step is
 * local: each stack whose top is a character element matching the code point moves past it, and
 * the result is closed over rule references and rule ends. An Earley chart answers the same
 * question for any context-free grammar, left recursion included, but a configuration is then
 * a whole chart that grows with the text, which is hard to compare, hash and cache. Refusing left
 * recursion (the parser does) is a small price for GBNF, where grammars are written with
 * repetition operators anyway, and it makes closure terminate. Ambiguity can still multiply
 * stacks; their number is bounded (HS_GRAMMAR_MAX_STACKS) and exceeding it is an error.
 *
 * Stacks are hash-consed. A stack is a chain of nodes (pos, parent), where pos is a position in
 * the grammar's element array: the top node's pos is a character element to match next, and each
 * deeper node's pos is where to continue after the rule above it finishes. Node 0 is the empty
 * stack (the text so far is a complete sentence when a configuration contains it). Each node is
 * interned in a hash table by (pos, parent), so equal stacks are equal node ids, stacks share
 * their tails, and a set of stacks is canonically a sorted array of ids.
 *
 * Closure. From a position p under parent node q: a character element gives the stack (p, q); an
 * END pops: it continues at q's position under q's parent (or gives the empty stack if q is
 * empty); a reference to rule R continues at every alternative of R, under the node (p + 1, q),
 * or directly under q when p + 1 is an END (a tail call: right recursion like s ::= x s runs in
 * constant depth). A work list with a visited set on (pos, parent) makes the closure linear in
 * the distinct items it meets, whatever the ambiguity.
 *
 * The lazy DFA. A configuration is a set of stacks plus the bytes of an unfinished UTF-8
 * character (up to 3). Configurations are interned too, each gets an id and a row of 256
 * transitions, all "unknown" at first. A step from configuration d by byte b reads row d; only
 * when unknown is the transition computed: for an ASCII byte or the last byte of a character,
 * advance every stack by the code point and close; for a lead or middle byte, keep the stacks
 * and remember the byte, if some stack's top can match a code point starting with those bytes
 * (the code points with a given valid prefix are one range, compared with the classes' ranges,
 * so a token that ends inside a character is allowed exactly when the character can still be
 * completed). Invalid UTF-8 (overlong forms, surrogates, bytes above U+10FFFF) is dead.
 * The mask walk (grammar_vocab.c) is then a loop over a vocabulary trie in which each node costs
 * one table lookup once the configurations it meets are known; inside a JSON string, say, every
 * character leads back to the same configuration, so nearly every lookup hits.
 *
 * The cache belongs to one state and only grows, so it is rebuilt when it passes a budget
 * (HS_GRAMMAR_CACHE_BUDGET at the start of an operation, four times that in the middle of an
 * accept or a mask walk; or twice what was live after the last rebuild, if that is more, so that
 * the cost of rebuilding stays proportional to the work done since): the live configurations
 * (the state's, and those on the walk's path) are written out as lists of positions, a fresh
 * cache is built, and they are read back in. A clone does the same into its own new cache. */
#include <stdlib.h>
#include <string.h>

#include "engine/grammar_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define MAX_WORK (1u << 20) /* closure items in one step */
#define INIT_CAP 256u

static int nomem(void) { return hs_set_error(hs_grammar_errbuf(), HS_ENOMEM, "grammar: out of memory"); }

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 16;
  while (n < need) n *= 2;
  void *q = hs_realloc(*p, n * elem);
  if (!q) return nomem();
  *p = q;
  *cap = n;
  return 0;
}

static inline uint32_t mix(uint32_t a, uint32_t b) {
  uint64_t x = (((uint64_t)a << 32) | b) * 0x9E3779B97F4A7C15ull;
  return (uint32_t)(x >> 29) ^ (uint32_t)x;
}

/* ======================================================================================== */
/* The cache: nodes, sets, configurations                                                   */
/* ======================================================================================== */

static void ctx_free(hs_grammar_ctx *c) {
  if (!c) return;
  hs_free(c->nodes);
  hs_free(c->node_tab);
  hs_free(c->items);
  hs_free(c->sets);
  hs_free(c->set_tab);
  hs_free(c->ds);
  hs_free(c->ds_tab);
  hs_free(c->trans);
  hs_free(c->work);
  hs_free(c->seen_key);
  hs_free(c->seen_gen);
  hs_free(c->out);
  hs_free(c->walk);
  hs_free(c);
}

static hs_grammar_ctx *ctx_new(const hs_grammar *g) {
  hs_grammar_ctx *c = hs_calloc(1, sizeof *c);
  if (!c) return NULL;
  c->g = g;
  c->budget = HS_GRAMMAR_CACHE_BUDGET;
  c->cap_nodes = INIT_CAP;
  c->nodes = hs_malloc(INIT_CAP * sizeof *c->nodes);
  c->node_tab = hs_calloc(2 * INIT_CAP, sizeof *c->node_tab);
  c->node_mask = 2 * INIT_CAP - 1;
  c->set_tab = hs_calloc(2 * INIT_CAP, sizeof *c->set_tab);
  c->set_mask = 2 * INIT_CAP - 1;
  c->ds_tab = hs_calloc(2 * INIT_CAP, sizeof *c->ds_tab);
  c->ds_mask = 2 * INIT_CAP - 1;
  c->seen_key = hs_malloc(2 * INIT_CAP * sizeof *c->seen_key);
  c->seen_gen = hs_calloc(2 * INIT_CAP, sizeof *c->seen_gen);
  c->seen_mask = 2 * INIT_CAP - 1;
  if (!c->nodes || !c->node_tab || !c->set_tab || !c->ds_tab || !c->seen_key || !c->seen_gen) {
    ctx_free(c);
    return NULL;
  }
  c->nodes[0].pos = UINT32_MAX; /* the empty stack */
  c->nodes[0].parent = 0;
  c->n_nodes = 1;
  return c;
}

static size_t ctx_bytes(const hs_grammar_ctx *c) {
  return sizeof *c + c->cap_nodes * sizeof *c->nodes + (c->node_mask + 1u) * 4u +
         c->cap_items * 4u + c->cap_sets * sizeof *c->sets + (c->set_mask + 1u) * 4u +
         c->cap_ds * (sizeof *c->ds + 256u * 4u) + (c->ds_mask + 1u) * 4u +
         c->cap_work * 8u + (c->seen_mask + 1u) * 12u + c->cap_out * 4u + c->cap_walk * 4u;
}

/* Doubles an open-addressing table of ids; key(c, id) gives an id's hash. */
static int rehash(uint32_t **tab, uint32_t *mask, const hs_grammar_ctx *c,
                  uint32_t (*key)(const hs_grammar_ctx *, uint32_t), uint32_t bias) {
  uint32_t cap = (*mask + 1) * 2;
  if (cap == 0) return nomem();
  uint32_t *t = hs_calloc(cap, sizeof *t);
  if (!t) return nomem();
  for (uint32_t i = 0; i <= *mask; i++) {
    uint32_t v = (*tab)[i];
    if (!v) continue;
    uint32_t j = key(c, v - bias) & (cap - 1);
    while (t[j]) j = (j + 1) & (cap - 1);
    t[j] = v;
  }
  hs_free(*tab);
  *tab = t;
  *mask = cap - 1;
  return 0;
}

static uint32_t node_key(const hs_grammar_ctx *c, uint32_t id) {
  return mix(c->nodes[id].pos, c->nodes[id].parent);
}

static int node_intern(hs_grammar_ctx *c, uint32_t pos, uint32_t parent, uint32_t *out) {
  uint32_t j = mix(pos, parent) & c->node_mask, id;
  while ((id = c->node_tab[j])) {
    if (c->nodes[id].pos == pos && c->nodes[id].parent == parent) {
      *out = id;
      return 0;
    }
    j = (j + 1) & c->node_mask;
  }
  if (c->n_nodes == UINT32_MAX / 2) return nomem();
  int rc;
  if ((size_t)c->n_nodes * 2 + 2 > (size_t)c->node_mask + 1) {
    if ((rc = rehash(&c->node_tab, &c->node_mask, c, node_key, 0))) return rc;
    j = mix(pos, parent) & c->node_mask;
    while (c->node_tab[j]) j = (j + 1) & c->node_mask;
  }
  size_t cap = c->cap_nodes;
  if ((rc = grow((void **)&c->nodes, &cap, (size_t)c->n_nodes + 1, sizeof *c->nodes))) return rc;
  c->cap_nodes = (uint32_t)cap;
  id = c->n_nodes++;
  c->nodes[id].pos = pos;
  c->nodes[id].parent = parent;
  c->node_tab[j] = id;
  *out = id;
  return 0;
}

static uint32_t set_hash(const uint32_t *m, uint32_t n) {
  uint32_t h = 0x811C9DC5u ^ n;
  for (uint32_t i = 0; i < n; i++) h = mix(h, m[i]);
  return h;
}

static uint32_t set_key(const hs_grammar_ctx *c, uint32_t id) { return c->sets[id].hash; }

/* Interns the sorted set m[0..n) (which must not point into c->items). */
static int set_intern(hs_grammar_ctx *c, const uint32_t *m, uint32_t n, uint32_t *out) {
  uint32_t h = set_hash(m, n), j = h & c->set_mask, v;
  while ((v = c->set_tab[j])) {
    const hs_gset *s = &c->sets[v - 1];
    if (s->hash == h && s->n == n && (n == 0 || memcmp(c->items + s->off, m, n * sizeof *m) == 0)) {
      *out = v - 1;
      return 0;
    }
    j = (j + 1) & c->set_mask;
  }
  int rc;
  if ((size_t)c->n_sets * 2 + 2 > (size_t)c->set_mask + 1) {
    if ((rc = rehash(&c->set_tab, &c->set_mask, c, set_key, 1))) return rc;
    j = h & c->set_mask;
    while (c->set_tab[j]) j = (j + 1) & c->set_mask;
  }
  size_t cap = c->cap_sets;
  if ((rc = grow((void **)&c->sets, &cap, (size_t)c->n_sets + 1, sizeof *c->sets))) return rc;
  c->cap_sets = (uint32_t)cap;
  if ((rc = grow((void **)&c->items, &c->cap_items, c->n_items + n, sizeof *c->items))) return rc;
  if (c->n_items + n > UINT32_MAX) return nomem();
  if (n) memcpy(c->items + c->n_items, m, n * sizeof *m);
  hs_gset *s = &c->sets[c->n_sets];
  s->off = (uint32_t)c->n_items;
  s->n = n;
  s->hash = h;
  c->n_items += n;
  c->set_tab[j] = ++c->n_sets;
  *out = c->n_sets - 1;
  return 0;
}

static uint32_t ds_hash(uint32_t set, const uint8_t *pend, uint8_t len, uint8_t need) {
  uint32_t p = (uint32_t)pend[0] | (uint32_t)pend[1] << 8 | (uint32_t)pend[2] << 16;
  return mix(mix(set, p), (uint32_t)len << 8 | need);
}

static uint32_t ds_key(const hs_grammar_ctx *c, uint32_t id) { return c->ds[id].hash; }

static int ds_intern(hs_grammar_ctx *c, uint32_t set, const uint8_t *pend, uint8_t len, uint8_t need,
                     int32_t *out) {
  uint8_t p3[3] = {0, 0, 0};
  memcpy(p3, pend, len);
  uint32_t h = ds_hash(set, p3, len, need), j = h & c->ds_mask, v;
  while ((v = c->ds_tab[j])) {
    const hs_gdstate *d = &c->ds[v - 1];
    if (d->hash == h && d->set == set && d->pend_len == len && d->need == need &&
        memcmp(d->pend, p3, 3) == 0) {
      *out = (int32_t)(v - 1);
      return 0;
    }
    j = (j + 1) & c->ds_mask;
  }
  if (c->n_ds >= (uint32_t)INT32_MAX / 256u) return nomem();
  int rc;
  if ((size_t)c->n_ds * 2 + 2 > (size_t)c->ds_mask + 1) {
    if ((rc = rehash(&c->ds_tab, &c->ds_mask, c, ds_key, 1))) return rc;
    j = h & c->ds_mask;
    while (c->ds_tab[j]) j = (j + 1) & c->ds_mask;
  }
  if (c->n_ds + 1 > c->cap_ds) {
    size_t cap = c->cap_ds ? 2 * (size_t)c->cap_ds : 16;
    hs_gdstate *nd = hs_realloc(c->ds, cap * sizeof *nd);
    if (!nd) return nomem();
    c->ds = nd;
    int32_t *nt = hs_realloc(c->trans, cap * 256 * sizeof *nt);
    if (!nt) return nomem(); /* c->ds grew but cap_ds did not: harmless */
    c->trans = nt;
    c->cap_ds = (uint32_t)cap;
  }
  uint32_t id = c->n_ds;
  hs_gdstate *d = &c->ds[id];
  d->set = set;
  d->hash = h;
  memcpy(d->pend, p3, 3);
  d->pend_len = len;
  d->need = need;
  const hs_gset *s = &c->sets[set];
  bool has_empty = s->n > 0 && c->items[s->off] == 0;
  d->flags = (uint8_t)((len == 0 && has_empty ? HS_GD_COMPLETE : 0) |
                       (len == 0 && has_empty && s->n == 1 ? HS_GD_DONE : 0));
  int32_t *row = c->trans + (size_t)id * 256;
  for (int i = 0; i < 256; i++) row[i] = HS_GT_UNKNOWN;
  c->n_ds++;
  c->ds_tab[j] = id + 1;
  *out = (int32_t)id;
  return 0;
}

/* ======================================================================================== */
/* Closure                                                                                  */
/* ======================================================================================== */

static int push_work(hs_grammar_ctx *c, uint32_t pos, uint32_t parent) {
  int rc = grow((void **)&c->work, &c->cap_work, c->n_work + 1, sizeof *c->work);
  if (rc) return rc;
  c->work[c->n_work++] = ((uint64_t)pos << 32) | parent;
  return 0;
}

static void seen_begin(hs_grammar_ctx *c) {
  if (++c->gen == 0) {
    memset(c->seen_gen, 0, ((size_t)c->seen_mask + 1) * sizeof *c->seen_gen);
    c->gen = 1;
  }
  c->n_seen = 0;
}

static inline uint32_t key_hash(uint64_t k) { return mix((uint32_t)(k >> 32), (uint32_t)k); }

/* 1 if k was not yet seen in this closure (and is now), 0 if it was, or an error. */
static int seen_add(hs_grammar_ctx *c, uint64_t k) {
  if ((c->n_seen + 1) * 2 > (size_t)c->seen_mask + 1) {
    uint32_t cap = (c->seen_mask + 1) * 2;
    uint64_t *nk = hs_malloc((size_t)cap * sizeof *nk);
    uint32_t *ng = hs_calloc(cap, sizeof *ng);
    if (!nk || !ng) {
      hs_free(nk);
      hs_free(ng);
      return nomem();
    }
    for (uint32_t i = 0; i <= c->seen_mask; i++) {
      if (c->seen_gen[i] != c->gen) continue;
      uint32_t j = key_hash(c->seen_key[i]) & (cap - 1);
      while (ng[j] == 1) j = (j + 1) & (cap - 1);
      nk[j] = c->seen_key[i];
      ng[j] = 1;
    }
    hs_free(c->seen_key);
    hs_free(c->seen_gen);
    c->seen_key = nk;
    c->seen_gen = ng;
    c->seen_mask = cap - 1;
    c->gen = 1;
  }
  uint32_t j = key_hash(k) & c->seen_mask;
  while (c->seen_gen[j] == c->gen) {
    if (c->seen_key[j] == k) return 0;
    j = (j + 1) & c->seen_mask;
  }
  c->seen_key[j] = k;
  c->seen_gen[j] = c->gen;
  c->n_seen++;
  return 1;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int too_many(void) {
  return hs_set_error(hs_grammar_errbuf(), HS_ENOSPC,
                      "grammar too ambiguous: more than %d parse stacks at once (rewrite the "
                      "grammar so that fewer alternatives match the same text)",
                      HS_GRAMMAR_MAX_STACKS);
}

/* Runs the work list to closure; c->out receives the resulting stacks, sorted, unique. */
static int close_work(hs_grammar_ctx *c) {
  const hs_grammar *g = c->g;
  size_t processed = 0;
  bool empty = false;
  c->n_out = 0;
  while (c->n_work) {
    uint64_t w = c->work[--c->n_work];
    int rc = seen_add(c, w);
    if (rc < 0) return rc;
    if (rc == 0) continue;
    if (++processed > MAX_WORK) return too_many();
    uint32_t pos = (uint32_t)(w >> 32), parent = (uint32_t)w;
    hs_gelem e = g->elems[pos];
    if (e.kind == HS_GE_CHAR || e.kind == HS_GE_CLASS) {
      uint32_t id;
      if ((rc = node_intern(c, pos, parent, &id))) return rc;
      if ((rc = grow((void **)&c->out, &c->cap_out, c->n_out + 1, sizeof *c->out))) return rc;
      c->out[c->n_out++] = id;
      if (c->n_out > HS_GRAMMAR_MAX_STACKS) return too_many();
    } else if (e.kind == HS_GE_END) {
      if (parent == 0) empty = true;
      else if ((rc = push_work(c, c->nodes[parent].pos, c->nodes[parent].parent))) return rc;
    } else {
      uint32_t np = parent;
      if (g->elems[pos + 1].kind != HS_GE_END && (rc = node_intern(c, pos + 1, parent, &np)))
        return rc;
      const hs_grule *r = &g->rules[e.value];
      for (uint32_t a = r->alt_first + r->alt_count; a-- > r->alt_first;)
        if ((rc = push_work(c, g->alts[a], np))) return rc;
    }
  }
  if (empty) {
    int rc = grow((void **)&c->out, &c->cap_out, c->n_out + 1, sizeof *c->out);
    if (rc) return rc;
    c->out[c->n_out++] = 0;
  }
  if (c->n_out > 1) qsort(c->out, c->n_out, sizeof *c->out, cmp_u32);
  return 0;
}

/* The set after code point cp from set s: *out is a set id, or -1 when no stack matches. */
static int advance(hs_grammar_ctx *c, uint32_t s, uint32_t cp, int64_t *out) {
  const hs_grammar *g = c->g;
  c->n_work = 0;
  seen_begin(c);
  const hs_gset *set = &c->sets[s];
  for (uint32_t i = 0; i < set->n; i++) {
    uint32_t id = c->items[set->off + i];
    if (id == 0) continue;
    uint32_t pos = c->nodes[id].pos;
    hs_gelem e = g->elems[pos];
    bool ok = e.kind == HS_GE_CHAR ? e.value == cp : hs_gclass_has(g, e.value, cp);
    if (!ok) continue;
    int rc = push_work(c, pos + 1, c->nodes[id].parent);
    if (rc) return rc;
    set = &c->sets[s];
  }
  if (c->n_work == 0) {
    *out = -1;
    return 0;
  }
  int rc = close_work(c);
  if (rc) return rc;
  uint32_t id;
  if ((rc = set_intern(c, c->out, (uint32_t)c->n_out, &id))) return rc;
  *out = id;
  return 0;
}

/* Whether some stack of set s can match a code point in [lo, hi]. */
static bool viable(const hs_grammar_ctx *c, uint32_t s, uint32_t lo, uint32_t hi) {
  const hs_grammar *g = c->g;
  const hs_gset *set = &c->sets[s];
  for (uint32_t i = 0; i < set->n; i++) {
    uint32_t id = c->items[set->off + i];
    if (id == 0) continue;
    hs_gelem e = g->elems[c->nodes[id].pos];
    if (e.kind == HS_GE_CHAR) {
      if (e.value >= lo && e.value <= hi) return true;
      continue;
    }
    const hs_gclass *k = &g->classes[e.value];
    const uint32_t *r = g->ranges + 2 * (size_t)k->first;
    for (uint32_t j = 0; j < k->count; j++)
      if (r[2 * j] <= hi && r[2 * j + 1] >= lo) return true;
  }
  return false;
}

/* ======================================================================================== */
/* Byte steps                                                                               */
/* ======================================================================================== */

/* The range of code points whose UTF-8 form starts with the valid prefix b[0..k) of an n-byte
 * character. */
static void prefix_range(const uint8_t *b, int k, int n, uint32_t *lo, uint32_t *hi) {
  static const uint8_t lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  uint32_t v = b[0] & lead_mask[n];
  for (int i = 1; i < k; i++) v = (v << 6) | (b[i] & 0x3Fu);
  int rest = 6 * (n - k);
  uint32_t l = v << rest, h = (v << rest) | ((1u << rest) - 1);
  if (l < min_cp[n]) l = min_cp[n];
  if (h > 0x10FFFF) h = 0x10FFFF;
  if (n == 3 && b[0] == 0xED && k == 1) h = 0xD7FF; /* no surrogates */
  *lo = l;
  *hi = h;
}

int hs_grammar_ctx_step_slow(hs_grammar_ctx *c, int32_t d, uint8_t byte, int32_t *next) {
  hs_gdstate cur = c->ds[d];
  int32_t res = HS_GT_DEAD;
  int rc = 0;
  uint8_t pend[4];
  memcpy(pend, cur.pend, 3);
  int k = cur.pend_len, n = cur.need;
  uint32_t cp = 0;
  bool whole = false;
  if (k == 0) {
    if (byte < 0x80) {
      cp = byte;
      whole = true;
    } else {
      n = byte >= 0xC2 && byte <= 0xDF ? 2 : byte >= 0xE0 && byte <= 0xEF ? 3
          : byte >= 0xF0 && byte <= 0xF4 ? 4 : 0;
      if (n) pend[0] = byte, k = 1;
    }
  } else if ((byte & 0xC0) == 0x80) {
    bool ok = true;
    if (k == 1) {
      uint8_t l = pend[0];
      ok = !(l == 0xE0 && byte < 0xA0) && !(l == 0xED && byte > 0x9F) &&
           !(l == 0xF0 && byte < 0x90) && !(l == 0xF4 && byte > 0x8F);
    }
    if (ok) {
      pend[k++] = byte;
      if (k == n) {
        static const uint8_t lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
        cp = pend[0] & lead_mask[n];
        for (int i = 1; i < n; i++) cp = (cp << 6) | (pend[i] & 0x3Fu);
        whole = true;
      }
    } else {
      k = 0;
      n = 0;
    }
  } else {
    k = 0; /* a character cut short: dead */
    n = 0;
  }
  if (whole) {
    int64_t s;
    if ((rc = advance(c, cur.set, cp, &s))) return rc;
    if (s >= 0 && (rc = ds_intern(c, (uint32_t)s, pend, 0, 0, &res))) return rc;
  } else if (n && k > 0) {
    uint32_t lo, hi;
    prefix_range(pend, k, n, &lo, &hi);
    if (lo <= hi && viable(c, cur.set, lo, hi) &&
        (rc = ds_intern(c, cur.set, pend, (uint8_t)k, (uint8_t)n, &res)))
      return rc;
  }
  c->trans[((size_t)d << 8) | byte] = res;
  *next = res;
  return 0;
}

/* ======================================================================================== */
/* Export, import, collection                                                               */
/* ======================================================================================== */

typedef struct ubuf {
  uint32_t *v;
  size_t n, cap;
} ubuf;

static int ub_push(ubuf *b, uint32_t x) {
  int rc = grow((void **)&b->v, &b->cap, b->n + 1, sizeof *b->v);
  if (rc) return rc;
  b->v[b->n++] = x;
  return 0;
}

/* Appends configuration d: pend_len, need, the 3 pending bytes, the number of stacks, and for
 * each stack its depth and positions from the top down. */
static int export_ds(const hs_grammar_ctx *c, int32_t d, ubuf *b) {
  const hs_gdstate *s = &c->ds[d];
  const hs_gset *set = &c->sets[s->set];
  int rc;
  if ((rc = ub_push(b, s->pend_len)) || (rc = ub_push(b, s->need)) ||
      (rc = ub_push(b, s->pend[0])) || (rc = ub_push(b, s->pend[1])) ||
      (rc = ub_push(b, s->pend[2])) || (rc = ub_push(b, set->n)))
    return rc;
  for (uint32_t i = 0; i < set->n; i++) {
    size_t at = b->n;
    if ((rc = ub_push(b, 0))) return rc;
    uint32_t depth = 0;
    for (uint32_t id = c->items[set->off + i]; id; id = c->nodes[id].parent, depth++)
      if ((rc = ub_push(b, c->nodes[id].pos))) return rc;
    b->v[at] = depth;
  }
  return 0;
}

/* Reads one configuration written by export_ds at b->v[*at] into c. */
static int import_ds(hs_grammar_ctx *c, const ubuf *b, size_t *at, int32_t *out) {
  const uint32_t *v = b->v + *at;
  uint8_t pend[3] = {(uint8_t)v[2], (uint8_t)v[3], (uint8_t)v[4]};
  uint8_t len = (uint8_t)v[0], need = (uint8_t)v[1];
  uint32_t n = v[5];
  size_t i = *at + 6;
  c->n_out = 0;
  int rc;
  for (uint32_t s = 0; s < n; s++) {
    uint32_t depth = b->v[i++], parent = 0;
    for (uint32_t k = depth; k-- > 0;)
      if ((rc = node_intern(c, b->v[i + k], parent, &parent))) return rc;
    i += depth;
    if ((rc = grow((void **)&c->out, &c->cap_out, c->n_out + 1, sizeof *c->out))) return rc;
    c->out[c->n_out++] = parent;
  }
  *at = i;
  if (c->n_out > 1) qsort(c->out, c->n_out, sizeof *c->out, cmp_u32);
  uint32_t set;
  if ((rc = set_intern(c, c->out, (uint32_t)c->n_out, &set))) return rc;
  return ds_intern(c, set, pend, len, need, out);
}

/* Copies configurations roots[0..n) of src into dst (a fresh cache), rewriting roots. */
static int transplant(const hs_grammar_ctx *src, hs_grammar_ctx *dst, int32_t *roots, size_t n) {
  ubuf b = {0};
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) rc = export_ds(src, roots[i], &b);
  size_t at = 0;
  int32_t *fresh = hs_malloc((n ? n : 1) * sizeof *fresh);
  if (!fresh && !rc) rc = nomem();
  for (size_t i = 0; i < n && !rc; i++) rc = import_ds(dst, &b, &at, &fresh[i]);
  if (!rc) memcpy(roots, fresh, n * sizeof *roots);
  hs_free(fresh);
  hs_free(b.v);
  return rc;
}

int hs_grammar_ctx_collect(hs_grammar_ctx *c, int32_t *roots, size_t n) {
  hs_grammar_ctx *fresh = ctx_new(c->g);
  if (!fresh) return nomem();
  int rc = transplant(c, fresh, roots, n);
  if (rc) {
    ctx_free(fresh);
    return rc;
  }
  fresh->budget = c->budget;
  fresh->collections = c->collections + 1;
  fresh->floor = ctx_bytes(fresh);
  /* keep the walk scratch, which the caller may be using */
  int32_t *walk = c->walk;
  size_t cap_walk = c->cap_walk;
  c->walk = NULL;
  hs_grammar_ctx old = *c;
  *c = *fresh;
  c->walk = walk;
  c->cap_walk = cap_walk;
  hs_free(fresh);
  hs_free(old.nodes), hs_free(old.node_tab), hs_free(old.items), hs_free(old.sets);
  hs_free(old.set_tab), hs_free(old.ds), hs_free(old.ds_tab), hs_free(old.trans);
  hs_free(old.work), hs_free(old.seen_key), hs_free(old.seen_gen), hs_free(old.out);
  return 0;
}

size_t hs_grammar_ctx_bytes(const hs_grammar_ctx *c) { return ctx_bytes(c); }

/* ======================================================================================== */
/* States                                                                                   */
/* ======================================================================================== */

int hs_grammar_state_create(const hs_grammar *g, hs_grammar_state **out) {
  hs_errbuf *e = hs_grammar_errbuf();
  if (!out) return hs_set_error(e, HS_EINVAL, "grammar: state_create with a NULL output pointer");
  *out = NULL;
  if (!g) return hs_set_error(e, HS_EINVAL, "grammar: state_create with a NULL grammar");
  hs_grammar_state *s = hs_calloc(1, sizeof *s);
  hs_grammar_ctx *c = ctx_new(g);
  if (!s || !c) {
    hs_free(s);
    ctx_free(c);
    return nomem();
  }
  s->g = g;
  s->ctx = c;
  c->n_work = 0;
  seen_begin(c);
  int rc = 0;
  const hs_grule *r = &g->rules[g->root];
  for (uint32_t a = r->alt_first + r->alt_count; a-- > r->alt_first && !rc;)
    rc = push_work(c, g->alts[a], 0);
  uint32_t set;
  if (!rc) rc = close_work(c);
  if (!rc) rc = set_intern(c, c->out, (uint32_t)c->n_out, &set);
  if (!rc) rc = ds_intern(c, set, (const uint8_t *)"", 0, 0, &s->cur);
  if (rc) {
    hs_grammar_state_destroy(s);
    return rc;
  }
  *out = s;
  return 0;
}

int hs_grammar_state_clone(const hs_grammar_state *s, hs_grammar_state **out) {
  hs_errbuf *e = hs_grammar_errbuf();
  if (!out) return hs_set_error(e, HS_EINVAL, "grammar: state_clone with a NULL output pointer");
  *out = NULL;
  if (!s) return hs_set_error(e, HS_EINVAL, "grammar: state_clone of a NULL state");
  hs_grammar_state *t = hs_calloc(1, sizeof *t);
  hs_grammar_ctx *c = ctx_new(s->g);
  if (!t || !c) {
    hs_free(t);
    ctx_free(c);
    return nomem();
  }
  t->g = s->g;
  t->ctx = c;
  t->cur = s->cur;
  int rc = transplant(s->ctx, c, &t->cur, 1);
  if (rc) {
    hs_grammar_state_destroy(t);
    return rc;
  }
  *out = t;
  return 0;
}

void hs_grammar_state_destroy(hs_grammar_state *s) {
  if (!s) return;
  ctx_free(s->ctx);
  hs_free(s);
}

size_t hs_grammar_ctx_limit(const hs_grammar_ctx *c, size_t times) {
  size_t a = times * c->budget, b = 2 * c->floor;
  return a > b ? a : b;
}

int hs_grammar_state_tidy(hs_grammar_state *s) {
  if (ctx_bytes(s->ctx) <= hs_grammar_ctx_limit(s->ctx, 1)) return 0;
  return hs_grammar_ctx_collect(s->ctx, &s->cur, 1);
}

int hs_grammar_state_accept_bytes(hs_grammar_state *s, const char *bytes, size_t len) {
  hs_errbuf *e = hs_grammar_errbuf();
  if (!s) return hs_set_error(e, HS_EINVAL, "grammar: accept_bytes on a NULL state");
  if (!bytes && len) return hs_set_error(e, HS_EINVAL, "grammar: accept_bytes of NULL text");
  int rc = hs_grammar_state_tidy(s);
  if (rc) return rc;
  hs_grammar_ctx *c = s->ctx;
  int32_t roots[2] = {s->cur, s->cur};
  for (size_t i = 0; i < len; i++) {
    uint8_t b = (uint8_t)bytes[i];
    int32_t t = hs_grammar_ctx_step(c, roots[1], b);
    if (t < HS_GT_DEAD) return t + 2;
    if (t == HS_GT_DEAD)
      return hs_set_error(e, HS_EINVAL, "grammar: byte %zu of %zu (0x%02X) is not allowed here", i,
                          len, b);
    roots[1] = t;
    if (i + 1 < len && ctx_bytes(c) > hs_grammar_ctx_limit(c, 4)) {
      if ((rc = hs_grammar_ctx_collect(c, roots, 2))) return rc;
      s->cur = roots[0];
    }
  }
  s->cur = roots[1];
  return 0;
}

int hs_grammar_state_finish(hs_grammar_state *s) {
  hs_grammar_ctx *c = s->ctx;
  uint32_t empty = 0, set = 0;
  int rc = set_intern(c, &empty, 1, &set);
  if (!rc) rc = ds_intern(c, set, (const uint8_t *)"", 0, 0, &s->cur);
  return rc;
}

bool hs_grammar_state_is_complete(const hs_grammar_state *s) {
  return s && (s->ctx->ds[s->cur].flags & HS_GD_COMPLETE);
}

bool hs_grammar_state_is_done(const hs_grammar_state *s) {
  return s && (s->ctx->ds[s->cur].flags & HS_GD_DONE);
}
