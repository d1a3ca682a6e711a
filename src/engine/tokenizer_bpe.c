/* tokenizer_bpe.c: byte-level BPE of one raw-text fragment, as llama.cpp computes it.
 *
 * The fragment is cut into pre-tokens (tokenizer_pretok.c). Within one pre-token, each byte
 * starts as one symbol: the byte's GPT-2 stand-in character. Then, repeatedly, among all pairs of
 * adjacent symbols that a merge "left right" of tokenizer.ggml.merges names, the pair with the
 * lowest rank (its index in the file; the first one when a pair is listed twice) is merged, the
 * leftmost on ties, until no adjacent pair has a merge. Each final symbol is looked up as a
 * vocabulary string; a symbol that is not one (possible only with incomplete vocabularies)
 * falls back, as in llama.cpp, to the tokens of the single bytes of its spelling, skipping those
 * that do not exist. With llama-bpe (ignore_merges) a pre-token whose whole spelling is a
 * vocabulary string is that token, without merging.
 *
 * Done naively, each merge step rescans the pre-token: quadratic on 100 KB of spaces. Here, as
 * in llama.cpp, the symbols form a doubly linked list and the candidate pairs sit in a binary
 * heap ordered by (rank, left position); a merge pushes the two pairs it creates with its
 * neighbours, and a popped pair is dropped if either side has changed since it was pushed. Each
 * merge costs O(log n), the whole pre-token O(n log n).
 *
 * Strings are never built while merging: at load every string a merge mentions (left, right and
 * their concatenation) is interned in the tokenizer's string table, so a symbol is one integer
 * and a merge is found by (left id, right id) in a hash map. Table entries below n_vocab are
 * tokens; the others are strings a merge produces that the vocabulary lacks. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define ERR (&hs_tokenizer_err)

static const char *K_MERGES = "tokenizer.ggml.merges";

int hs_tok_bpe_prepare(hs_tokenizer *t, const hs_gguf *g) {
  hs_gguf_value_type et;
  uint64_t n;
  int rc = hs_gguf_get_arr(g, K_MERGES, &et, &n);
  if (rc == HS_ENOENT)
    return hs_set_error(ERR, HS_ECORRUPT,
                        "missing metadata key '%s' (the 'gpt2' tokenizer model needs it)",
                        K_MERGES);
  if (rc) return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is not an array", K_MERGES);
  if (et != HS_GGUF_STRING)
    return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is an array of %s, expected strings",
                        K_MERGES, hs_gguf_value_type_name(et));
  if (n >= UINT32_MAX / 2)
    return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' has too many entries", K_MERGES);
  t->merge_rank = hs_malloc((n ? n : 1) * sizeof *t->merge_rank);
  t->merge_sym = hs_malloc((n ? n : 1) * sizeof *t->merge_sym);
  if (!t->merge_rank || !t->merge_sym)
    return hs_set_error(ERR, HS_ENOMEM, "out of memory for the merges");
  char *cat = NULL;
  size_t cat_cap = 0;
  for (uint64_t i = 0; i < n; i++) {
    const char *s;
    size_t len;
    if (hs_gguf_arr_str(g, K_MERGES, i, &s, &len) != 0) {
      hs_free(cat);
      return hs_set_error(ERR, HS_ECORRUPT, "cannot read entry %" PRIu64 " of '%s'", i, K_MERGES);
    }
    /* llama.cpp splits at the first space after the first byte; without one, the merge has two
     * empty sides and can never apply */
    const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
    if (!sp) continue;
    size_t ll = (size_t)(sp - s), rl = len - ll - 1;
    if (ll == 0 || rl == 0) continue; /* an empty side never matches a symbol */
    uint32_t l, r;
    if (hs_strtab_intern(&t->tab, s, ll, &l, NULL) || hs_strtab_intern(&t->tab, sp + 1, rl, &r, NULL))
      goto oom;
    uint64_t key = (uint64_t)l << 32 | r;
    bool added;
    if (hs_u64map_put(&t->merges, key, t->n_merges, NULL, &added)) goto oom;
    if (!added) continue; /* a pair listed twice keeps its first rank */
    if (hs_tok_scratch_reserve((void **)&cat, &cat_cap, len)) goto oom;
    memcpy(cat, s, ll);
    memcpy(cat + ll, sp + 1, rl);
    uint32_t m;
    if (hs_strtab_intern(&t->tab, cat, ll + rl, &m, NULL)) goto oom;
    t->merge_rank[t->n_merges] = (uint32_t)i;
    t->merge_sym[t->n_merges] = m;
    t->n_merges++;
  }
  hs_free(cat);
  for (unsigned b = 0; b < 256; b++) {
    char u[4];
    size_t k = hs_utf8_put(hs_bpe_byte_cp(b), u);
    t->byte_sym[b] = hs_strtab_find(&t->tab, u, k);
    t->byte_fallback[b][0] = t->byte_fallback[b][1] = -1;
    for (size_t j = 0; j < k; j++) {
      uint32_t e = hs_strtab_find(&t->tab, u + j, 1);
      t->byte_fallback[b][j] = e < t->n_vocab ? (int32_t)e : -1;
    }
  }
  return 0;
oom:
  hs_free(cat);
  return hs_set_error(ERR, HS_ENOMEM, "out of memory for the merges");
}

/* ---- merging one pre-token ---- */

typedef struct bsym {
  uint32_t sym;   /* table entry of the symbol's spelling, HS_TOK_NONE if none */
  uint32_t start; /* first byte of the pre-token it covers */
  uint32_t len;   /* bytes covered; 0 once merged into its left neighbour */
  int32_t prev, next;
} bsym;

typedef struct bpair {
  uint32_t rank;
  uint32_t left;       /* symbol index */
  uint32_t lsym, rsym; /* the two spellings when pushed: stale if either changed */
  uint32_t msym;       /* the merged spelling */
} bpair;

static inline bool before(const bpair *a, const bpair *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

typedef struct bctx {
  const hs_tokenizer *t;
  hs_tok_scratch *s;
  hs_tok_sink *out;
  bsym *sym;
  bpair *heap;
  size_t n_heap, heap_cap; /* entries */
} bctx;

HS_TOK_DEFINE_HEAP(bctx, bpair, before)

static int try_pair(bctx *c, int32_t l, int32_t r) {
  if (l < 0 || r < 0) return 0;
  uint32_t a = c->sym[l].sym, b = c->sym[r].sym;
  if (a == HS_TOK_NONE || b == HS_TOK_NONE) return 0;
  uint32_t m = hs_u64map_get(&c->t->merges, (uint64_t)a << 32 | b);
  if (m == HS_TOK_NONE) return 0;
  bpair p = {c->t->merge_rank[m], (uint32_t)l, a, b, c->t->merge_sym[m]};
  return heap_push(c, p);
}

static void put_symbol(bctx *c, const unsigned char *p, const bsym *s) {
  const hs_tokenizer *t = c->t;
  if (s->sym < t->n_vocab) {
    hs_tok_sink_put(c->out, (int32_t)s->sym);
    return;
  }
  for (uint32_t i = 0; i < s->len; i++) {
    const int32_t *fb = t->byte_fallback[p[s->start + i]];
    if (fb[0] >= 0) hs_tok_sink_put(c->out, fb[0]);
    if (fb[1] >= 0) hs_tok_sink_put(c->out, fb[1]);
  }
}

static int encode_piece(void *ctx, const char *piece, size_t len) {
  bctx *c = ctx;
  const hs_tokenizer *t = c->t;
  const unsigned char *p = (const unsigned char *)piece;
  if (len == 1) {
    bsym s = {t->byte_sym[p[0]], 0, 1, -1, -1};
    put_symbol(c, p, &s);
    return 0;
  }
  if (t->ignore_merges) {
    if (hs_tok_scratch_reserve((void **)&c->s->buf, &c->s->buf_cap, 2 * len))
      return hs_set_error(ERR, HS_ENOMEM, "out of memory in the BPE encoder");
    size_t m = hs_bpe_map_bytes(p, len, c->s->buf);
    uint32_t e = hs_strtab_find(&t->tab, c->s->buf, m);
    if (e < t->n_vocab) {
      hs_tok_sink_put(c->out, (int32_t)e);
      return 0;
    }
  }
  if (hs_tok_scratch_reserve(&c->s->sym, &c->s->sym_cap, len * sizeof(bsym)))
    return hs_set_error(ERR, HS_ENOMEM, "out of memory in the BPE encoder");
  c->sym = c->s->sym;
  c->heap = c->s->heap;
  c->heap_cap = c->s->heap_cap / sizeof(bpair);
  c->n_heap = 0;
  for (size_t i = 0; i < len; i++) {
    c->sym[i] = (bsym){t->byte_sym[p[i]], (uint32_t)i, 1, (int32_t)i - 1,
                       i + 1 < len ? (int32_t)i + 1 : -1};
  }
  for (size_t i = 1; i < len; i++)
    if (try_pair(c, (int32_t)i - 1, (int32_t)i))
      return hs_set_error(ERR, HS_ENOMEM, "out of memory in the BPE encoder");
  while (c->n_heap) {
    bpair e = heap_pop(c);
    bsym *l = &c->sym[e.left];
    if (l->len == 0 || l->sym != e.lsym || l->next < 0) continue;
    bsym *r = &c->sym[l->next];
    if (r->sym != e.rsym) continue;
    l->sym = e.msym;
    l->len += r->len;
    r->len = 0;
    l->next = r->next;
    if (r->next >= 0) c->sym[r->next].prev = (int32_t)e.left;
    if (try_pair(c, l->prev, (int32_t)e.left) || try_pair(c, (int32_t)e.left, l->next))
      return hs_set_error(ERR, HS_ENOMEM, "out of memory in the BPE encoder");
  }
  for (int32_t i = 0; i >= 0; i = c->sym[i].next) put_symbol(c, p, &c->sym[i]);
  return 0;
}

int hs_tok_bpe_encode(const hs_tokenizer *t, hs_tok_scratch *s, const char *text, size_t len,
                      hs_tok_sink *out) {
  bctx c = {t, s, out, NULL, NULL, 0, 0};
  return hs_pretok_split(t->pretok, text, len, encode_piece, &c);
}
