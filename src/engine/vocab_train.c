/* vocab_train.c: learning a BPE or SentencePiece-style vocabulary from a corpus.
 *
 * Synthetic test and benchmark models need a tokenizer, and no vocabulary can be downloaded, so
 * we learn one. Both kinds use the same learner, byte-pair encoding by frequency:
 *
 *   1. The corpus is cut into words and identical words are counted once with a multiplicity.
 *      BPE: the words are the pre-tokens of the chosen pre-tokenizer (llama-bpe by default), as
 *      bytes. SPM: the text with spaces as "▁" and a leading "▁", cut before every "▁" that
 *      follows another character (so runs of "▁" stay at the start of the next word), and at
 *      control characters and characters left out of the character vocabulary, as characters.
 *   2. Every adjacent pair of symbols in every word is counted (times the word's multiplicity),
 *      and each pair keeps a list of the words it occurs in.
 *   3. Repeatedly the most frequent pair (ties: lower left id, then lower right id) becomes a new
 *      symbol; only the words on its list are rewritten, left to right, and each rewrite adjusts
 *      the counts of the pairs it destroys and creates. After the merge, every pair whose count
 *      rose is pushed once into a max-heap. Decreases are not pushed: an entry popped with a
 *      count that is no longer current is re-pushed with the current one, so the top is always
 *      exact (a pair's entries never understate its count). A pair seen fewer than twice is
 *      never merged.
 *
 * Steps 2-3 are what makes 32k merges over megabytes take seconds: the work of a merge is
 * proportional to the occurrences it touches, not to the corpus. A rewrite is a single pass with
 * a read and a write index, so even a word of 100 000 spaces costs O(length) per merge.
 *
 * The learned merge order is the vocabulary order. BPE writes the merges themselves (a merge
 * whose string already exists adds a merge line but no token, like Hugging Face's trainer); SPM
 * writes scores -k for the k-th new piece, so that SentencePiece's "best-scoring pair first" replays
 * the merges in the order they were learned. Strings that would collide with the fixed special
 * names (<|eot_id|>...) are never learned, and for SPM neither are prefixes or suffixes of
 * <s>, <0x41>, <unused_3>..., since SentencePiece would join two such pieces into the special. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define ERR (&hs_tokenizer_err)
#define OOM() hs_set_error(ERR, HS_ENOMEM, "vocabulary training: out of memory")

/* ======================================================================================== */
/* The learner                                                                              */
/* ======================================================================================== */

typedef struct pair_rec {
  uint32_t a, b;
  int64_t count;
  int64_t pushed; /* the largest count of this pair's entries in the heap */
  uint32_t head;  /* occurrence list: node index + 1, 0 = empty */
  uint8_t banned;
  uint8_t dirty;  /* on the dirty list of the current merge */
} pair_rec;

typedef struct occ_node {
  uint32_t word, next;
} occ_node;

typedef struct heap_ent {
  int64_t count;
  uint32_t a, b, pair;
} heap_ent;

typedef struct learner {
  /* words: symbols in one pool, rewritten in place */
  uint32_t n_words, cap_words;
  uint64_t *wcount;
  size_t *woff;
  uint32_t *wlen, *wstamp;
  uint32_t *syms;
  size_t n_syms, cap_syms;
  /* pairs */
  hs_u64map pairmap;
  pair_rec *pairs;
  uint32_t n_pairs, cap_pairs;
  occ_node *nodes;
  size_t n_nodes, cap_nodes;
  heap_ent *heap;
  size_t n_heap, cap_heap;
  uint32_t *dirty; /* pairs whose count rose during the current merge */
  size_t n_dirty, cap_dirty;
  bool counting; /* initial count: no dirty list */
  /* symbols: strings and character lengths */
  hs_strtab *symtab;
  uint32_t *sym_chars;
  uint32_t cap_sym_chars;
  uint32_t stamp;
  /* output: the merges in the order learned */
  struct merge {
    uint32_t a, b;
  } *merges;
  size_t n_merges, cap_merges;
} learner;

static void learner_free(learner *L) {
  hs_free(L->wcount);
  hs_free(L->woff);
  hs_free(L->wlen);
  hs_free(L->wstamp);
  hs_free(L->syms);
  hs_u64map_free(&L->pairmap);
  hs_free(L->pairs);
  hs_free(L->nodes);
  hs_free(L->heap);
  hs_free(L->dirty);
  hs_free(L->sym_chars);
  hs_free(L->merges);
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 64;
  while (c < need) {
    if (c > SIZE_MAX / 2 / elem) return HS_ENOMEM;
    c *= 2;
  }
  void *q = hs_realloc(*p, c * elem);
  if (!q) return HS_ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

static int reserve32(void **p, uint32_t *cap, size_t need, size_t elem) {
  if (need > UINT32_MAX / 2) return HS_ENOMEM;
  size_t c = *cap;
  int rc = reserve(p, &c, need, elem);
  *cap = (uint32_t)c;
  return rc;
}

static int add_word(learner *L, const uint32_t *s, uint32_t n, uint64_t count) {
  uint32_t w = L->n_words;
  size_t cw = L->cap_words;
  if (w >= UINT32_MAX - 1) return HS_ENOMEM;
  if (w + 1 > cw) {
    size_t c1 = cw, c2 = cw, c3 = cw, c4 = cw;
    if (reserve((void **)&L->wcount, &c1, w + 1, sizeof *L->wcount) ||
        reserve((void **)&L->woff, &c2, w + 1, sizeof *L->woff) ||
        reserve((void **)&L->wlen, &c3, w + 1, sizeof *L->wlen) ||
        reserve((void **)&L->wstamp, &c4, w + 1, sizeof *L->wstamp))
      return HS_ENOMEM;
    L->cap_words = (uint32_t)c1;
  }
  if (reserve((void **)&L->syms, &L->cap_syms, L->n_syms + n, sizeof *L->syms)) return HS_ENOMEM;
  memcpy(L->syms + L->n_syms, s, n * sizeof *s);
  L->wcount[w] = count;
  L->woff[w] = L->n_syms;
  L->wlen[w] = n;
  L->wstamp[w] = 0;
  L->n_syms += n;
  L->n_words++;
  return 0;
}

static bool ent_before(const heap_ent *x, const heap_ent *y) {
  if (x->count != y->count) return x->count > y->count;
  if (x->a != y->a) return x->a < y->a;
  return x->b < y->b;
}

static int heap_push(learner *L, uint32_t pair) {
  pair_rec *p = &L->pairs[pair];
  if (reserve((void **)&L->heap, &L->cap_heap, L->n_heap + 1, sizeof *L->heap)) return HS_ENOMEM;
  heap_ent e = {p->count, p->a, p->b, pair};
  p->pushed = p->count;
  size_t i = L->n_heap++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (!ent_before(&e, &L->heap[up])) break;
    L->heap[i] = L->heap[up];
    i = up;
  }
  L->heap[i] = e;
  return 0;
}

static heap_ent heap_pop(learner *L) {
  heap_ent top = L->heap[0], last = L->heap[--L->n_heap];
  size_t i = 0, n = L->n_heap;
  for (;;) {
    size_t l = 2 * i + 1;
    if (l >= n) break;
    size_t m = l + 1 < n && ent_before(&L->heap[l + 1], &L->heap[l]) ? l + 1 : l;
    if (!ent_before(&L->heap[m], &last)) break;
    L->heap[i] = L->heap[m];
    i = m;
  }
  if (n) L->heap[i] = last;
  return top;
}

/* count(a, b) += delta; an increase records word w on the pair's list. */
static int pair_add(learner *L, uint32_t a, uint32_t b, int64_t delta, uint32_t w) {
  uint64_t key = (uint64_t)a << 32 | b;
  uint32_t *slot;
  bool added;
  if (hs_u64map_put(&L->pairmap, key, L->n_pairs, &slot, &added)) return HS_ENOMEM;
  uint32_t idx = *slot;
  if (added) {
    if (reserve32((void **)&L->pairs, &L->cap_pairs, (size_t)L->n_pairs + 1, sizeof *L->pairs))
      return HS_ENOMEM;
    L->pairs[idx] = (pair_rec){a, b, 0, 0, 0, 0, 0};
    L->n_pairs++;
  }
  pair_rec *p = &L->pairs[idx];
  p->count += delta;
  if (delta <= 0) return 0;
  if (!p->head || L->nodes[p->head - 1].word != w) {
    if (L->n_nodes >= UINT32_MAX - 1 ||
        reserve((void **)&L->nodes, &L->cap_nodes, L->n_nodes + 1, sizeof *L->nodes))
      return HS_ENOMEM;
    L->nodes[L->n_nodes] = (occ_node){w, p->head};
    p->head = (uint32_t)++L->n_nodes;
  }
  if (!L->counting && !p->dirty) {
    if (reserve((void **)&L->dirty, &L->cap_dirty, L->n_dirty + 1, sizeof *L->dirty))
      return HS_ENOMEM;
    L->dirty[L->n_dirty++] = idx;
    p->dirty = 1;
  }
  return 0;
}

/* Rewrites word w, replacing each (a, b) by x, left to right, and updates the pair counts. */
static int rewrite(learner *L, uint32_t w, uint32_t a, uint32_t b, uint32_t x) {
  uint32_t *s = L->syms + L->woff[w];
  uint32_t n = L->wlen[w], r = 0, o = 0;
  int64_t c = (int64_t)L->wcount[w];
  int rc = 0;
  while (r < n) {
    if (r + 1 < n && s[r] == a && s[r + 1] == b) {
      if (o > 0) {
        if ((rc = pair_add(L, s[o - 1], a, -c, w)) || (rc = pair_add(L, s[o - 1], x, c, w)))
          return rc;
      }
      if (r + 2 < n) {
        if ((rc = pair_add(L, b, s[r + 2], -c, w)) || (rc = pair_add(L, x, s[r + 2], c, w)))
          return rc;
      }
      if ((rc = pair_add(L, a, b, -c, w))) return rc;
      s[o++] = x;
      r += 2;
    } else {
      s[o++] = s[r++];
    }
  }
  L->wlen[w] = o;
  return 0;
}

typedef bool (*reserved_fn)(const char *s, size_t n);

static int sym_chars_set(learner *L, uint32_t id, uint32_t chars) {
  if (reserve32((void **)&L->sym_chars, &L->cap_sym_chars, (size_t)id + 1, sizeof *L->sym_chars))
    return HS_ENOMEM;
  L->sym_chars[id] = chars;
  return 0;
}

/* Learns until max_new new symbols exist or no pair is seen twice. Symbols longer than
 * max_chars characters (0: no limit) and reserved strings are not made. */
static int learn(learner *L, uint32_t max_new, uint32_t max_chars, reserved_fn reserved,
                 uint32_t *n_new) {
  *n_new = 0;
  L->counting = true;
  for (uint32_t w = 0; w < L->n_words; w++) {
    const uint32_t *s = L->syms + L->woff[w];
    for (uint32_t i = 0; i + 1 < L->wlen[w]; i++)
      if (pair_add(L, s[i], s[i + 1], (int64_t)L->wcount[w], w)) return OOM();
  }
  L->counting = false;
  for (uint32_t i = 0; i < L->n_pairs; i++)
    if (L->pairs[i].count > 0 && heap_push(L, i)) return OOM();
  char *cat = NULL;
  size_t cat_cap = 0;
  int rc = 0;
  while (*n_new < max_new && L->n_heap) {
    heap_ent e = heap_pop(L);
    pair_rec *p = &L->pairs[e.pair];
    if (p->banned) continue;
    if (p->count != e.count) {
      if (p->count > 0 && p->count < e.count && (rc = heap_push(L, e.pair))) break;
      continue;
    }
    if (e.count < 2) break;
    uint32_t a = p->a, b = p->b;
    size_t la = L->symtab->len[a], lb = L->symtab->len[b];
    if ((max_chars && L->sym_chars[a] + L->sym_chars[b] > max_chars)) {
      p->banned = 1;
      continue;
    }
    if ((rc = reserve((void **)&cat, &cat_cap, la + lb, 1))) break;
    memcpy(cat, hs_strtab_str(L->symtab, a), la);
    memcpy(cat + la, hs_strtab_str(L->symtab, b), lb);
    if (reserved && reserved(cat, la + lb)) {
      p->banned = 1;
      continue;
    }
    uint32_t x;
    bool added;
    if ((rc = hs_strtab_intern(L->symtab, cat, la + lb, &x, &added))) break;
    if (added) {
      if ((rc = sym_chars_set(L, x, L->sym_chars[a] + L->sym_chars[b]))) break;
      (*n_new)++;
    }
    if ((rc = reserve((void **)&L->merges, &L->cap_merges, L->n_merges + 1, sizeof *L->merges)))
      break;
    L->merges[L->n_merges].a = a;
    L->merges[L->n_merges].b = b;
    L->n_merges++;
    /* the words on the list; the list is consumed */
    L->stamp++;
    uint32_t node = p->head;
    p->head = 0;
    while (node) {
      occ_node nd = L->nodes[node - 1];
      node = nd.next;
      if (L->wstamp[nd.word] == L->stamp) continue;
      L->wstamp[nd.word] = L->stamp;
      if ((rc = rewrite(L, nd.word, a, b, x))) break;
    }
    /* one heap entry per pair whose count rose, however many words it rose in */
    for (size_t i = 0; i < L->n_dirty && !rc; i++) {
      pair_rec *q = &L->pairs[L->dirty[i]];
      q->dirty = 0;
      if (q->count > q->pushed && !q->banned) rc = heap_push(L, L->dirty[i]);
    }
    L->n_dirty = 0;
    if (rc) break;
  }
  hs_free(cat);
  return rc ? OOM() : 0;
}

/* ======================================================================================== */
/* Writing                                                                                  */
/* ======================================================================================== */

/* The vocabulary being written: strings in a table, plus types and scores. */
typedef struct outvocab {
  hs_strtab s;
  int32_t *type;
  float *score;
  uint32_t n;
  size_t cap_type, cap_score;
} outvocab;

static int out_add(outvocab *v, const char *s, size_t n, int32_t type, float score) {
  if (reserve((void **)&v->type, &v->cap_type, (size_t)v->n + 1, sizeof *v->type) ||
      reserve((void **)&v->score, &v->cap_score, (size_t)v->n + 1, sizeof *v->score))
    return HS_ENOMEM;
  if (hs_strtab_add(&v->s, s, n, false, NULL)) return HS_ENOMEM;
  v->type[v->n] = type;
  v->score[v->n] = score;
  v->n++;
  return 0;
}

static void out_free(outvocab *v) {
  hs_strtab_free(&v->s);
  hs_free(v->type);
  hs_free(v->score);
}

/* Adds a string array from a table (all entries). */
static int add_str_array(hs_gguf_writer *w, const char *key, const hs_strtab *t) {
  const char **strs = hs_malloc((t->n ? t->n : 1) * sizeof *strs);
  size_t *lens = hs_malloc((t->n ? t->n : 1) * sizeof *lens);
  if (!strs || !lens) {
    hs_free(strs);
    hs_free(lens);
    return OOM();
  }
  for (uint32_t i = 0; i < t->n; i++) {
    strs[i] = hs_strtab_str(t, i);
    lens[i] = t->len[i];
  }
  int rc = hs_gguf_writer_add_arr_str(w, key, strs, lens, t->n);
  hs_free(strs);
  hs_free(lens);
  if (rc)
    return hs_set_error(ERR, rc, "vocabulary training: writing '%s': %s", key,
                        hs_gguf_writer_last_error());
  return 0;
}

static int wr(int rc, const char *key) {
  if (!rc) return 0;
  return hs_set_error(ERR, rc, "vocabulary training: writing '%s': %s", key,
                      hs_gguf_writer_last_error());
}

/* ======================================================================================== */
/* BPE                                                                                      */
/* ======================================================================================== */

static const char *const bpe_specials[] = {"<|begin_of_text|>", "<|end_of_text|>",
                                           "<|start_header_id|>", "<|end_header_id|>",
                                           "<|eot_id|>", "<|im_start|>", "<|im_end|>"};
#define N_BPE_SPECIALS 7

static bool bpe_reserved(const char *s, size_t n) {
  return n >= 4 && s[0] == '<' && s[1] == '|' && s[n - 2] == '|' && s[n - 1] == '>';
}

typedef struct word_ctx {
  hs_strtab words;
  uint64_t *count;
  size_t cap;
} word_ctx;

static int count_word(void *ctx, const char *p, size_t n) {
  word_ctx *c = ctx;
  uint32_t id;
  bool added;
  if (hs_strtab_intern(&c->words, p, n, &id, &added)) return OOM();
  if (added) {
    if (reserve((void **)&c->count, &c->cap, (size_t)id + 1, sizeof *c->count)) return OOM();
    c->count[id] = 0;
  }
  c->count[id]++;
  return 0;
}

static int train_bpe(const char *corpus, size_t len, uint32_t n_vocab, hs_pre_type pre,
                     hs_gguf_writer *w, hs_vocab_train_result *res) {
  word_ctx wc = {0};
  hs_strtab_init(&wc.words);
  hs_strtab symtab;
  hs_strtab_init(&symtab);
  learner L;
  memset(&L, 0, sizeof L);
  hs_u64map_init(&L.pairmap);
  L.symtab = &symtab;
  outvocab v;
  memset(&v, 0, sizeof v);
  hs_strtab_init(&v.s);
  hs_strtab merges;
  hs_strtab_init(&merges);
  uint32_t *buf = NULL;
  char *mbuf = NULL;
  size_t mcap = 0;
  hs_pretok *pt = NULL;
  int rc;

  /* byte tokens in GPT-2's order: the printable bytes first, then the others */
  uint32_t tok_of_byte[256];
  unsigned order[256], k = 0;
  for (unsigned b = 0; b < 256; b++)
    if (hs_bpe_byte_cp(b) == b) order[k++] = b;
  for (unsigned b = 0; b < 256; b++)
    if (hs_bpe_byte_cp(b) != b) order[k++] = b;
  for (unsigned i = 0; i < 256; i++) {
    char c = (char)order[i];
    if ((rc = hs_strtab_add(&symtab, &c, 1, true, NULL)) || (rc = sym_chars_set(&L, i, 1))) {
      rc = OOM();
      goto done;
    }
    tok_of_byte[order[i]] = i;
  }

  if ((rc = hs_pretok_create(pre, &pt))) goto done;
  if ((rc = hs_pretok_split(pt, corpus, len, count_word, &wc))) goto done;
  size_t bcap = 0;
  for (uint32_t i = 0; i < wc.words.n; i++) {
    uint32_t n = wc.words.len[i];
    if (n < 2) continue;
    if (reserve((void **)&buf, &bcap, n, sizeof *buf)) {
      rc = OOM();
      goto done;
    }
    const unsigned char *s = (const unsigned char *)hs_strtab_str(&wc.words, i);
    for (uint32_t j = 0; j < n; j++) buf[j] = tok_of_byte[s[j]];
    if (add_word(&L, buf, n, wc.count[i])) {
      rc = OOM();
      goto done;
    }
  }
  hs_strtab_free(&wc.words);
  hs_free(wc.count);
  wc.count = NULL;

  uint32_t n_new;
  if ((rc = learn(&L, n_vocab - 256 - N_BPE_SPECIALS, 0, bpe_reserved, &n_new))) goto done;

  /* tokens: every symbol in GPT-2's spelling, the specials, the fillers */
  for (uint32_t i = 0; i < symtab.n; i++) {
    size_t n = symtab.len[i];
    if (reserve((void **)&mbuf, &mcap, 2 * n + 1, 1) ||
        out_add(&v, mbuf, hs_bpe_map_bytes((const unsigned char *)hs_strtab_str(&symtab, i), n, mbuf),
                HS_TOKEN_NORMAL, 0)) {
      rc = OOM();
      goto done;
    }
  }
  uint32_t first_special = v.n;
  for (unsigned i = 0; i < N_BPE_SPECIALS; i++)
    if (out_add(&v, bpe_specials[i], strlen(bpe_specials[i]), HS_TOKEN_CONTROL, 0)) {
      rc = OOM();
      goto done;
    }
  uint32_t n_pad = 0;
  while (v.n < n_vocab) {
    char name[48];
    int m = snprintf(name, sizeof name, "<|reserved_special_token_%" PRIu32 "|>", n_pad++);
    if (out_add(&v, name, (size_t)m, HS_TOKEN_CONTROL, 0)) {
      rc = OOM();
      goto done;
    }
  }
  for (uint32_t i = 0; i < L.n_merges; i++) {
    uint32_t a = L.merges[i].a, b = L.merges[i].b;
    size_t la = symtab.len[a], lb = symtab.len[b];
    if (reserve((void **)&mbuf, &mcap, 2 * (la + lb) + 2, 1)) {
      rc = OOM();
      goto done;
    }
    size_t o = hs_bpe_map_bytes((const unsigned char *)hs_strtab_str(&symtab, a), la, mbuf);
    mbuf[o++] = ' ';
    o += hs_bpe_map_bytes((const unsigned char *)hs_strtab_str(&symtab, b), lb, mbuf + o);
    if (hs_strtab_add(&merges, mbuf, o, false, NULL)) {
      rc = OOM();
      goto done;
    }
  }
  const char *pre_name = hs_pretok_type_name(pre);
  if ((rc = wr(hs_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", 4), "tokenizer.ggml.model")) ||
      (rc = wr(hs_gguf_writer_add_str(w, "tokenizer.ggml.pre", pre_name, strlen(pre_name)),
               "tokenizer.ggml.pre")) ||
      (rc = add_str_array(w, "tokenizer.ggml.tokens", &v.s)) ||
      (rc = wr(hs_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", HS_GGUF_INT32, v.type, v.n),
               "tokenizer.ggml.token_type")) ||
      (rc = add_str_array(w, "tokenizer.ggml.merges", &merges)) ||
      (rc = wr(hs_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", first_special),
               "tokenizer.ggml.bos_token_id")) ||
      (rc = wr(hs_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", first_special + 1),
               "tokenizer.ggml.eos_token_id")) ||
      (rc = wr(hs_gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", first_special + 4),
               "tokenizer.ggml.eot_token_id")) ||
      (rc = wr(hs_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true),
               "tokenizer.ggml.add_bos_token")) ||
      (rc = wr(hs_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", false),
               "tokenizer.ggml.add_eos_token")))
    goto done;
  if (res) {
    res->n_learned = n_new;
    res->n_padded = n_pad;
    res->n_merges = (uint32_t)L.n_merges;
  }
done:
  hs_pretok_destroy(pt);
  hs_strtab_free(&wc.words);
  hs_free(wc.count);
  hs_strtab_free(&symtab);
  hs_strtab_free(&merges);
  learner_free(&L);
  out_free(&v);
  hs_free(buf);
  hs_free(mbuf);
  return rc;
}

/* ======================================================================================== */
/* SPM                                                                                      */
/* ======================================================================================== */

#define SPACE_CP 0x2581u /* ▁ */

/* SentencePiece merges any adjacent pair whose concatenation is in the vocabulary, whatever its
 * type, so a learned "<s" next to ">" would turn the plain text "<s>" into the control token.
 * Hence no learned piece may be a prefix or a suffix (of two or more bytes) of a reserved name:
 * then no two pieces can ever join into one. */
static bool hexu(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }
static bool digit(char c) { return c >= '0' && c <= '9'; }

static bool affix_of(const char *s, size_t n, const char *lit) {
  size_t m = strlen(lit);
  return n <= m && (!memcmp(s, lit, n) || !memcmp(s, lit + m - n, n));
}

/* s is a prefix or suffix of some "<0xHH>" */
static bool affix_byte_name(const char *s, size_t n) {
  static const char pat[] = "<0x##>";
  if (n > 6) return false;
  bool pre = true, suf = true;
  for (size_t i = 0; i < n; i++) {
    char p = pat[i], q = pat[6 - n + i];
    if (p == '#' ? !hexu(s[i]) : s[i] != p) pre = false;
    if (q == '#' ? !hexu(s[i]) : s[i] != q) suf = false;
  }
  return pre || suf;
}

/* s is a prefix or suffix of some "<unused_N>" */
static bool affix_unused(const char *s, size_t n) {
  static const char head[] = "<unused_";
  size_t k = n < 8 ? n : 8, i = k;
  if (!memcmp(s, head, k)) { /* prefix: the head, digits, perhaps a final '>' after one */
    while (i < n && digit(s[i])) i++;
    if (i == n || (i + 1 == n && s[i] == '>' && i > 8)) return true;
  }
  if (s[n - 1] != '>') return false; /* suffix: (end of the head) digits '>' */
  size_t d = n - 1;
  while (d > 0 && digit(s[d - 1])) d--;
  if (d == n - 1) return false;
  return d <= 8 && !memcmp(s, head + 8 - d, d);
}

static bool spm_reserved(const char *s, size_t n) {
  if (n < 2) return false;
  return affix_of(s, n, "<unk>") || affix_of(s, n, "<s>") || affix_of(s, n, "</s>") ||
         affix_byte_name(s, n) || affix_unused(s, n);
}

static bool control_cp(uint32_t cp) { return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0); }

typedef struct char_rec {
  uint32_t cp;
  uint64_t count;
} char_rec;

static int cmp_char(const void *x, const void *y) {
  const char_rec *a = x, *b = y;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  return a->cp < b->cp ? -1 : a->cp > b->cp;
}

/* Calls fn(ctx, cp) for each character of the normalized corpus ("▁" first, ' ' -> "▁"), with
 * cp = HS_TOK_NONE for an ill-formed byte. */
typedef int (*char_fn)(void *ctx, uint32_t cp);

static int each_char(const char *corpus, size_t len, char_fn fn, void *ctx) {
  int rc = fn(ctx, SPACE_CP);
  const unsigned char *u = (const unsigned char *)corpus;
  for (size_t i = 0; i < len && !rc;) {
    uint32_t cp;
    size_t k = hs_utf8_valid_len(u + i, len - i, &cp);
    if (!k) {
      cp = HS_TOK_NONE;
      k = 1;
    } else if (cp == ' ') {
      cp = SPACE_CP;
    }
    rc = fn(ctx, cp);
    i += k;
  }
  return rc;
}

typedef struct spm_ctx {
  hs_u64map chars; /* cp -> index in recs / later: cp -> symbol + 1 (0 = left out) */
  char_rec *recs;
  size_t n_recs, cap_recs;
  uint64_t total;
  /* words */
  uint32_t *cur;
  size_t n_cur, cap_cur;
  char *cur_s;
  size_t n_cur_s, cap_cur_s;
  word_ctx wc;
} spm_ctx;

static int count_char(void *ctx, uint32_t cp) {
  spm_ctx *c = ctx;
  if (cp == HS_TOK_NONE || control_cp(cp)) return 0;
  uint32_t *slot;
  bool added;
  if (hs_u64map_put(&c->chars, cp, (uint32_t)c->n_recs, &slot, &added)) return OOM();
  if (added) {
    if (reserve((void **)&c->recs, &c->cap_recs, c->n_recs + 1, sizeof *c->recs)) return OOM();
    c->recs[c->n_recs++] = (char_rec){cp, 0};
  }
  c->recs[*slot].count++;
  c->total++;
  return 0;
}

static int flush_word(spm_ctx *c) {
  int rc = 0;
  if (c->n_cur >= 2) rc = count_word(&c->wc, c->cur_s, c->n_cur_s);
  c->n_cur = 0;
  c->n_cur_s = 0;
  return rc;
}

static int word_char(void *ctx, uint32_t cp) {
  spm_ctx *c = ctx;
  uint32_t sym = cp == HS_TOK_NONE || control_cp(cp) ? HS_TOK_NONE : hs_u64map_get(&c->chars, cp);
  if (sym == HS_TOK_NONE || sym == 0) return flush_word(c);
  sym--;
  if (cp == SPACE_CP && c->n_cur && c->cur[c->n_cur - 1] != 0) {
    int rc = flush_word(c);
    if (rc) return rc;
  }
  if (reserve((void **)&c->cur, &c->cap_cur, c->n_cur + 1, sizeof *c->cur) ||
      reserve((void **)&c->cur_s, &c->cap_cur_s, c->n_cur_s + 4, 1))
    return OOM();
  c->cur[c->n_cur++] = sym;
  c->n_cur_s += hs_utf8_put(cp, c->cur_s + c->n_cur_s);
  return 0;
}

static int train_spm(const char *corpus, size_t len, uint32_t n_vocab, hs_gguf_writer *w,
                     hs_vocab_train_result *res) {
  spm_ctx c;
  memset(&c, 0, sizeof c);
  hs_u64map_init(&c.chars);
  hs_strtab_init(&c.wc.words);
  hs_strtab symtab;
  hs_strtab_init(&symtab);
  learner L;
  memset(&L, 0, sizeof L);
  hs_u64map_init(&L.pairmap);
  L.symtab = &symtab;
  outvocab v;
  memset(&v, 0, sizeof v);
  hs_strtab_init(&v.s);
  uint32_t *buf = NULL;
  int rc;

  /* 1. the character vocabulary */
  if ((rc = each_char(corpus, len, count_char, &c))) goto done;
  qsort(c.recs, c.n_recs, sizeof *c.recs, cmp_char);
  uint32_t budget = (n_vocab - 259) / 2;
  if (budget < 1) budget = 1;
  uint32_t nc = 0;
  uint64_t covered = 0;
  /* "▁" first, then by frequency until 99.95% of the characters are covered */
  hs_u64map_free(&c.chars);
  hs_u64map_init(&c.chars);
  char u[4];
  if (hs_u64map_put(&c.chars, SPACE_CP, 1, NULL, NULL) ||
      hs_strtab_add(&symtab, u, hs_utf8_put(SPACE_CP, u), true, NULL) || sym_chars_set(&L, 0, 1)) {
    rc = OOM();
    goto done;
  }
  nc = 1;
  for (size_t i = 0; i < c.n_recs; i++) {
    if (c.recs[i].cp == SPACE_CP) {
      covered += c.recs[i].count;
      continue;
    }
    if (nc >= budget || (double)covered >= 0.9995 * (double)c.total) break;
    covered += c.recs[i].count;
    if (hs_u64map_put(&c.chars, c.recs[i].cp, nc + 1, NULL, NULL) ||
        hs_strtab_add(&symtab, u, hs_utf8_put(c.recs[i].cp, u), true, NULL) ||
        sym_chars_set(&L, nc, 1)) {
      rc = OOM();
      goto done;
    }
    nc++;
  }

  /* 2. words */
  if ((rc = each_char(corpus, len, word_char, &c)) || (rc = flush_word(&c))) goto done;
  size_t bcap = 0;
  for (uint32_t i = 0; i < c.wc.words.n; i++) {
    const unsigned char *s = (const unsigned char *)hs_strtab_str(&c.wc.words, i);
    size_t n = c.wc.words.len[i], m = 0;
    if (reserve((void **)&buf, &bcap, n, sizeof *buf)) {
      rc = OOM();
      goto done;
    }
    for (size_t j = 0; j < n;) {
      uint32_t cp;
      size_t k = hs_utf8_valid_len(s + j, n - j, &cp);
      buf[m++] = hs_u64map_get(&c.chars, cp) - 1;
      j += k;
    }
    if (add_word(&L, buf, (uint32_t)m, c.wc.count[i])) {
      rc = OOM();
      goto done;
    }
  }

  /* 3. merges */
  uint32_t n_new;
  if ((rc = learn(&L, n_vocab - 259 - nc, 16, spm_reserved, &n_new))) goto done;

  /* 4. the vocabulary */
  static const char hex[] = "0123456789ABCDEF";
  if (out_add(&v, "<unk>", 5, HS_TOKEN_UNKNOWN, 0) || out_add(&v, "<s>", 3, HS_TOKEN_CONTROL, 0) ||
      out_add(&v, "</s>", 4, HS_TOKEN_CONTROL, 0)) {
    rc = OOM();
    goto done;
  }
  for (unsigned b = 0; b < 256; b++) {
    char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    if (out_add(&v, name, 6, HS_TOKEN_BYTE, 0)) {
      rc = OOM();
      goto done;
    }
  }
  for (uint32_t i = 0; i < n_new; i++) {
    uint32_t s = nc + i;
    if (out_add(&v, hs_strtab_str(&symtab, s), symtab.len[s], HS_TOKEN_NORMAL, -(float)i)) {
      rc = OOM();
      goto done;
    }
  }
  for (uint32_t i = 0; i < nc; i++) {
    if (out_add(&v, hs_strtab_str(&symtab, i), symtab.len[i], HS_TOKEN_NORMAL,
                -(float)(n_new + i))) {
      rc = OOM();
      goto done;
    }
  }
  uint32_t n_pad = 0;
  while (v.n < n_vocab) {
    char name[32];
    int m = snprintf(name, sizeof name, "<unused_%" PRIu32 ">", n_pad++);
    if (out_add(&v, name, (size_t)m, HS_TOKEN_UNUSED, -1e9f)) {
      rc = OOM();
      goto done;
    }
  }
  if ((rc = wr(hs_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", 5), "tokenizer.ggml.model")) ||
      (rc = add_str_array(w, "tokenizer.ggml.tokens", &v.s)) ||
      (rc = wr(hs_gguf_writer_add_arr(w, "tokenizer.ggml.scores", HS_GGUF_FLOAT32, v.score, v.n),
               "tokenizer.ggml.scores")) ||
      (rc = wr(hs_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", HS_GGUF_INT32, v.type, v.n),
               "tokenizer.ggml.token_type")) ||
      (rc = wr(hs_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1),
               "tokenizer.ggml.bos_token_id")) ||
      (rc = wr(hs_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2),
               "tokenizer.ggml.eos_token_id")) ||
      (rc = wr(hs_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0),
               "tokenizer.ggml.unknown_token_id")) ||
      (rc = wr(hs_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true),
               "tokenizer.ggml.add_bos_token")) ||
      (rc = wr(hs_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", false),
               "tokenizer.ggml.add_eos_token")) ||
      (rc = wr(hs_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", true),
               "tokenizer.ggml.add_space_prefix")))
    goto done;
  if (res) {
    res->n_learned = n_new + nc;
    res->n_padded = n_pad;
    res->n_merges = 0;
  }
done:
  hs_u64map_free(&c.chars);
  hs_free(c.recs);
  hs_free(c.cur);
  hs_free(c.cur_s);
  hs_strtab_free(&c.wc.words);
  hs_free(c.wc.count);
  hs_strtab_free(&symtab);
  learner_free(&L);
  out_free(&v);
  hs_free(buf);
  return rc;
}

/* ======================================================================================== */

int hs_vocab_train(const char *corpus, size_t len, const hs_vocab_train_opts *o,
                   hs_gguf_writer *w, hs_vocab_train_result *res) {
  if (res) memset(res, 0, sizeof *res);
  if (!o || !w || (!corpus && len))
    return hs_set_error(ERR, HS_EINVAL, "hs_vocab_train: NULL argument");
  if (o->n_vocab > (1u << 24))
    return hs_set_error(ERR, HS_EINVAL, "hs_vocab_train: n_vocab %" PRIu32 " is above 2^24",
                        o->n_vocab);
  if (o->kind == HS_TOKENIZER_BPE) {
    if (o->n_vocab < 256 + N_BPE_SPECIALS)
      return hs_set_error(ERR, HS_EINVAL,
                          "hs_vocab_train: a BPE vocabulary needs n_vocab >= %d (256 bytes and %d "
                          "special tokens), not %" PRIu32,
                          256 + N_BPE_SPECIALS, N_BPE_SPECIALS, o->n_vocab);
    hs_pre_type pre = HS_PRE_LLAMA3;
    if (o->pre) {
      int rc = hs_pretok_lookup(o->pre, strlen(o->pre), &pre);
      if (rc) return rc;
    }
    return train_bpe(corpus ? corpus : "", len, o->n_vocab, pre, w, res);
  }
  if (o->kind == HS_TOKENIZER_SPM) {
    if (o->n_vocab < 260)
      return hs_set_error(ERR, HS_EINVAL,
                          "hs_vocab_train: an SPM vocabulary needs n_vocab >= 260 (<unk>, <s>, "
                          "</s>, 256 bytes and \"\xe2\x96\x81\"), not %" PRIu32,
                          o->n_vocab);
    return train_spm(corpus ? corpus : "", len, o->n_vocab, w, res);
  }
  return hs_set_error(ERR, HS_EINVAL, "hs_vocab_train: unknown kind %d", (int)o->kind);
}
