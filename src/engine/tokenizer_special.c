/* tokenizer_special.c: finding special-token texts in the input, as llama.cpp does.
 *
 * Before any BPE or SPM work, llama.cpp cuts the input into raw-text fragments and special
 * tokens. Its rule is sequential: the special tokens (CONTROL, USER_DEFINED and UNKNOWN; the
 * first and last only when the caller asks to parse specials) are taken one at a time, longest
 * text first; each is searched for in every raw fragment left by the previous ones, left to
 * right, non-overlapping, and every occurrence splits its fragment in three. Empty fragments are
 * dropped. Because a longer token is placed over the whole text before a shorter one is tried,
 * this is not the same as a single leftmost-longest scan ("ab" and "bcd" in "abcd" give "a",
 * <bcd>, where a scan would give <ab>, "cd").
 *
 * Doing that literally costs one search of the whole text per special token (Llama 3 has 256 of
 * them). Here one pass over the text with a byte trie of all special texts lists every
 * occurrence of every enabled token; then the sequential rule is replayed on that list only:
 * occurrences sorted by (token priority, position), and for each token a sweep over the current
 * fragments picks, within each fragment, the leftmost occurrence at or after the end of the
 * previous pick, stopping at the first one that runs past the fragment's end (llama.cpp's
 * `find` followed by its bounds check). Ties in length are ordered by id (llama.cpp's sort is
 * not stable, so its order among equal lengths is unspecified). */
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define ERR (&hs_tokenizer_err)

/* qsort has no context argument in C11, so the specials are sorted as (len, id) pairs. */
typedef struct len_id {
  uint32_t len;
  int32_t id;
} len_id;

static int cmp_len_id(const void *a, const void *b) {
  const len_id *x = a, *y = b;
  if (x->len != y->len) return x->len > y->len ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

int hs_tok_special_build(hs_tokenizer *t) {
  uint32_t n = 0;
  for (uint32_t id = 0; id < t->n_vocab; id++) {
    uint8_t ty = t->type[id];
    if (ty == HS_TOKEN_CONTROL || ty == HS_TOKEN_USER_DEFINED || ty == HS_TOKEN_UNKNOWN) n++;
  }
  t->n_specials = n;
  memset(t->root, 0, sizeof t->root);
  if (!n) return 0;
  len_id *order = hs_malloc((size_t)n * sizeof *order);
  t->specials = hs_malloc((size_t)n * sizeof *t->specials);
  t->special_next = hs_malloc((size_t)n * sizeof *t->special_next);
  if (!order || !t->specials || !t->special_next) {
    hs_free(order);
    return hs_set_error(ERR, HS_ENOMEM, "out of memory for the special tokens");
  }
  uint32_t k = 0;
  size_t total = 0;
  for (uint32_t id = 0; id < t->n_vocab; id++) {
    uint8_t ty = t->type[id];
    if (ty == HS_TOKEN_CONTROL || ty == HS_TOKEN_USER_DEFINED || ty == HS_TOKEN_UNKNOWN) {
      order[k].len = t->tab.len[id];
      order[k].id = (int32_t)id;
      total += t->tab.len[id];
      k++;
    }
  }
  qsort(order, n, sizeof *order, cmp_len_id);
  for (uint32_t i = 0; i < n; i++) t->specials[i] = order[i].id;
  hs_free(order);

  /* the trie: at most one node per byte of all texts, plus the root */
  if (total >= UINT32_MAX - 1) return hs_set_error(ERR, HS_ECORRUPT, "special tokens too long");
  t->trie = hs_malloc((total + 1) * sizeof *t->trie);
  if (!t->trie) return hs_set_error(ERR, HS_ENOMEM, "out of memory for the special tokens");
  t->trie[0] = (hs_trie_node){0, 0, -1, 0};
  t->n_trie = 1;
  for (uint32_t i = 0; i < n; i++) {
    int32_t id = t->specials[i];
    const unsigned char *s = (const unsigned char *)hs_strtab_str(&t->tab, (uint32_t)id);
    uint32_t len = t->tab.len[id];
    if (len == 0) continue; /* cannot happen: empty texts were renamed at load */
    uint32_t node = 0;
    for (uint32_t j = 0; j < len; j++) {
      uint32_t child = j == 0 ? t->root[s[0]] : t->trie[node].child;
      while (child && t->trie[child].byte != s[j]) child = t->trie[child].sibling;
      if (!child) {
        child = t->n_trie++;
        t->trie[child] = (hs_trie_node){0, 0, -1, s[j]};
        if (j == 0) {
          t->root[s[0]] = child;
        } else {
          t->trie[child].sibling = t->trie[node].child;
          t->trie[node].child = child;
        }
      }
      node = child;
    }
    /* tokens with the same text are chained in priority order: the first one enabled takes
     * every occurrence, the others find nothing left */
    t->special_next[i] = -1;
    if (t->trie[node].special < 0) {
      t->trie[node].special = (int32_t)i;
    } else {
      int32_t q = t->trie[node].special;
      while (t->special_next[q] >= 0) q = t->special_next[q];
      t->special_next[q] = (int32_t)i;
    }
  }
  return 0;
}

static bool enabled(const hs_tokenizer *t, int32_t id, bool parse) {
  uint8_t ty = t->type[id];
  if (ty == HS_TOKEN_USER_DEFINED) return true;
  return parse && (ty == HS_TOKEN_CONTROL || ty == HS_TOKEN_UNKNOWN);
}

typedef struct occ {
  size_t pos;
  uint32_t prio; /* index into specials[] */
} occ;

static int cmp_occ(const void *a, const void *b) {
  const occ *x = a, *y = b;
  if (x->prio != y->prio) return x->prio < y->prio ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

typedef struct span {
  size_t s, e;
} span;

typedef struct placed {
  size_t pos;
  int32_t id;
} placed;

static int grow_arr(void **p, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return 0;
  size_t c = *cap ? *cap * 2 : 16;
  void *q = hs_realloc(*p, c * elem);
  if (!q) return HS_ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

static int cmp_placed(const void *a, const void *b) {
  const placed *x = a, *y = b;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int hs_tok_special_partition(const hs_tokenizer *t, const char *text, size_t len, bool parse,
                             hs_tok_item **items, size_t *n_items) {
  *items = NULL;
  *n_items = 0;
  occ *oc = NULL;
  size_t n_oc = 0, cap_oc = 0;
  const unsigned char *u = (const unsigned char *)text;
  int rc = 0;

  /* 1. every occurrence of every enabled special text */
  if (t->n_specials) {
    for (size_t i = 0; i < len; i++) {
      uint32_t node = t->root[u[i]];
      size_t j = i;
      while (node) {
        int32_t sp = t->trie[node].special;
        while (sp >= 0 && !enabled(t, t->specials[sp], parse)) sp = t->special_next[sp];
        if (sp >= 0) {
          if (grow_arr((void **)&oc, &cap_oc, n_oc, sizeof *oc)) goto oom;
          oc[n_oc++] = (occ){i, (uint32_t)sp};
        }
        if (++j >= len) break;
        uint32_t c = t->trie[node].child;
        while (c && t->trie[c].byte != u[j]) c = t->trie[c].sibling;
        node = c;
      }
    }
  }

  if (n_oc == 0) {
    if (len == 0) return 0;
    hs_tok_item *it = hs_malloc(sizeof *it);
    if (!it) goto oom;
    it[0] = (hs_tok_item){0, len, -1};
    *items = it;
    *n_items = 1;
    return 0;
  }

  /* 2. replay llama.cpp's sequential placement on the occurrences */
  qsort(oc, n_oc, sizeof *oc, cmp_occ);
  span *frag = NULL, *next = NULL;
  size_t n_frag = 1, cap_frag = 0, n_next = 0, cap_next = 0;
  placed *pl = NULL;
  size_t n_pl = 0, cap_pl = 0;
  if (grow_arr((void **)&frag, &cap_frag, 0, sizeof *frag)) goto oom2;
  frag[0] = (span){0, len};
  for (size_t a = 0; a < n_oc;) {
    size_t b = a;
    while (b < n_oc && oc[b].prio == oc[a].prio) b++;
    int32_t id = t->specials[oc[a].prio];
    size_t L = t->tab.len[id];
    n_next = 0;
    size_t o = a;
    for (size_t f = 0; f < n_frag; f++) {
      size_t s = frag[f].s, e = frag[f].e, base = s;
      for (;;) {
        while (o < b && oc[o].pos < base) o++;
        if (o >= b || oc[o].pos >= e || oc[o].pos + L > e) break;
        size_t p = oc[o].pos;
        if (p > base) {
          if (grow_arr((void **)&next, &cap_next, n_next, sizeof *next)) goto oom2;
          next[n_next++] = (span){base, p};
        }
        if (grow_arr((void **)&pl, &cap_pl, n_pl, sizeof *pl)) goto oom2;
        pl[n_pl++] = (placed){p, id};
        base = p + L;
      }
      if (base < e) {
        if (grow_arr((void **)&next, &cap_next, n_next, sizeof *next)) goto oom2;
        next[n_next++] = (span){base, e};
      }
    }
    span *tmp = frag;
    size_t tcap = cap_frag;
    frag = next;
    cap_frag = cap_next;
    n_frag = n_next;
    next = tmp;
    cap_next = tcap;
    a = b;
  }

  /* 3. merge fragments and placed tokens by position */
  qsort(pl, n_pl, sizeof *pl, cmp_placed);
  hs_tok_item *it = hs_malloc((n_frag + n_pl) * sizeof *it);
  if (!it) goto oom2;
  size_t fi = 0, pi = 0, k = 0;
  while (fi < n_frag || pi < n_pl) {
    if (pi >= n_pl || (fi < n_frag && frag[fi].s < pl[pi].pos)) {
      it[k++] = (hs_tok_item){frag[fi].s, frag[fi].e - frag[fi].s, -1};
      fi++;
    } else {
      it[k++] = (hs_tok_item){pl[pi].pos, t->tab.len[pl[pi].id], pl[pi].id};
      pi++;
    }
  }
  *items = it;
  *n_items = k;
  hs_free(frag);
  hs_free(next);
  hs_free(pl);
  hs_free(oc);
  return 0;
oom2:
  hs_free(frag);
  hs_free(next);
  hs_free(pl);
oom:
  hs_free(oc);
  rc = hs_set_error(ERR, HS_ENOMEM, "out of memory finding special tokens");
  return rc;
}
