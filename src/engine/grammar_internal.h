/* grammar_internal.h: the compiled form of a grammar and the matcher's cache, shared by
 * grammar_parse.c (which builds hs_grammar), grammar_match.c (the pushdown recogniser and the
 * states) and grammar_vocab.c (the vocabulary trie and the mask).
 *
 * A compiled grammar is a flat array of elements. Each rule has one or more alternatives; each
 * alternative is a run of elements ending with an END element, and alts[] holds where each
 * alternative starts (rule r's are alts[rules[r].alt_first .. + alt_count]). An element is a
 * single code point (CHAR), a character class (CLASS, an index into classes[]), or a reference
 * to a rule (REF). A "position" is an index into elems[]. Repetitions and groups were expanded
 * into generated rules by the parser, so the matcher knows only these four kinds.
 *
 * Guarantees the parser establishes, which the matcher relies on: every reference names a
 * defined rule; no rule reachable from the root is left-recursive (so expanding references
 * always terminates); every rule reachable from the root can finish (so every parse stack can
 * reach the end of the text); every class matches at least one Unicode scalar value. */
#ifndef HS_ENGINE_GRAMMAR_INTERNAL_H
#define HS_ENGINE_GRAMMAR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/last_error.h"
#include "hswarm/grammar.h"

enum { HS_GE_END = 0, HS_GE_CHAR = 1, HS_GE_CLASS = 2, HS_GE_REF = 3 };

typedef struct hs_gelem {
  uint32_t kind;  /* HS_GE_* */
  uint32_t value; /* CHAR: the code point; CLASS: class index; REF: rule index; END: 0 */
} hs_gelem;

typedef struct hs_gclass {
  uint32_t first, count; /* ranges[2*first .. 2*(first+count)): sorted, disjoint [lo, hi] pairs */
  uint32_t ascii[4];     /* bit c set when code point c < 128 is in the class */
} hs_gclass;

typedef struct hs_grule {
  uint32_t alt_first, alt_count; /* into alts[] */
  uint32_t name;                 /* offset of its NUL-terminated name in names[] */
} hs_grule;

struct hs_grammar {
  hs_gelem *elems;
  size_t n_elems;
  uint32_t *alts; /* start position of each alternative */
  size_t n_alts;
  hs_grule *rules;
  size_t n_rules;
  hs_gclass *classes;
  size_t n_classes;
  uint32_t *ranges; /* lo, hi pairs */
  size_t n_ranges;
  char *names;
  uint32_t root;
};

/* The thread's error buffer of the grammar module (defined in grammar_parse.c). */
hs_errbuf *hs_grammar_errbuf(void);

/* True when class c contains code point cp. */
static inline bool hs_gclass_has(const hs_grammar *g, uint32_t c, uint32_t cp) {
  const hs_gclass *k = &g->classes[c];
  if (cp < 128) return (k->ascii[cp >> 5] >> (cp & 31)) & 1u;
  const uint32_t *r = g->ranges + 2 * (size_t)k->first;
  size_t lo = 0, hi = k->count; /* binary search for the last range with r.lo <= cp */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (r[2 * mid] <= cp) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && cp <= r[2 * (lo - 1) + 1];
}

/* ---- the matcher's cache (grammar_match.c) ----
 *
 * Parse stacks are hash-consed nodes (pos, parent): node 0 is the empty stack. A configuration
 * is a sorted set of stacks plus up to 3 pending bytes of an unfinished UTF-8 character; each
 * distinct configuration gets a small integer id (a "dstate", for lazy DFA state) and a row of 256
 * transitions, filled on first use. See grammar_match.c for the idea. */

#define HS_GT_UNKNOWN (-2) /* transition not computed yet */
#define HS_GT_DEAD (-1)    /* the byte is not allowed */

enum { HS_GD_COMPLETE = 1, HS_GD_DONE = 2 };

typedef struct hs_gnode {
  uint32_t pos, parent;
} hs_gnode;

typedef struct hs_gset {
  uint32_t off, n, hash;
} hs_gset;

typedef struct hs_gdstate {
  uint32_t set;
  uint32_t hash;
  uint8_t pend[3];
  uint8_t pend_len; /* bytes of an unfinished UTF-8 character */
  uint8_t need;     /* its total length (0 when pend_len is 0) */
  uint8_t flags;    /* HS_GD_* */
} hs_gdstate;

typedef struct hs_grammar_ctx {
  const hs_grammar *g;
  hs_gnode *nodes;
  uint32_t n_nodes, cap_nodes;
  uint32_t *node_tab; /* open addressing: node id, 0 = empty */
  uint32_t node_mask;
  uint32_t *items; /* members of all sets */
  size_t n_items, cap_items;
  hs_gset *sets;
  uint32_t n_sets, cap_sets;
  uint32_t *set_tab; /* set id + 1, 0 = empty */
  uint32_t set_mask;
  hs_gdstate *ds;
  uint32_t n_ds, cap_ds;
  uint32_t *ds_tab; /* dstate id + 1, 0 = empty */
  uint32_t ds_mask;
  int32_t *trans; /* 256 per dstate */
  /* scratch of one advance: a work list of (pos, parent), a visited set, the stacks found */
  uint64_t *work;
  size_t n_work, cap_work;
  uint64_t *seen_key;
  uint32_t *seen_gen;
  uint32_t seen_mask, gen;
  size_t n_seen;
  uint32_t *out;
  size_t n_out, cap_out;
  /* scratch of the mask walk: the dstate at each trie depth */
  int32_t *walk;
  size_t cap_walk;
  size_t bytes;       /* memory held, approximately */
  size_t budget;      /* collect when bytes exceeds this at the start of an operation */
  size_t floor;       /* bytes right after the last collection: collect again only past twice
                         that, so a large live set is not copied over and over */
  uint64_t collections;
} hs_grammar_ctx;

/* Memory a state's cache may hold before it is rebuilt from the live configurations. */
#define HS_GRAMMAR_CACHE_BUDGET ((size_t)8 << 20)

int hs_grammar_ctx_step_slow(hs_grammar_ctx *c, int32_t d, uint8_t byte, int32_t *next);

/* The dstate after byte from dstate d: >= 0, HS_GT_DEAD, or a negative HS_E* code (below -2). */
static inline int32_t hs_grammar_ctx_step(hs_grammar_ctx *c, int32_t d, uint8_t byte) {
  int32_t t = c->trans[((size_t)d << 8) | byte];
  if (t != HS_GT_UNKNOWN) return t;
  int32_t next;
  int rc = hs_grammar_ctx_step_slow(c, d, byte, &next);
  return rc ? (int32_t)rc - 2 : next; /* codes shifted below HS_GT_DEAD */
}

/* Rebuilds the cache keeping only the configurations roots[0..n) (their ids are rewritten). */
int hs_grammar_ctx_collect(hs_grammar_ctx *c, int32_t *roots, size_t n);

/* The size above which the cache is collected: times * budget, or twice the size after the last
 * collection if that is more. */
size_t hs_grammar_ctx_limit(const hs_grammar_ctx *c, size_t times);

/* Memory the cache holds, approximately. */
size_t hs_grammar_ctx_bytes(const hs_grammar_ctx *c);

struct hs_grammar_state {
  const hs_grammar *g;
  hs_grammar_ctx *ctx;
  int32_t cur; /* the current configuration */
};

/* Collects the cache of s when it is over its budget (keeping the current configuration). */
int hs_grammar_state_tidy(hs_grammar_state *s);

/* Moves s to the configuration "finished" (only the empty stack), after an eog token. */
int hs_grammar_state_finish(hs_grammar_state *s);

#endif
