/* tokenizer_spm.c: SentencePiece-style encoding of one raw-text fragment (llama.cpp's SPM).
 *
 * The fragment's spaces become U+2581 ("▁"), with one more "▁" in front when the caller asks
 * (the space prefix, added at the start of the text and after each special token). The text is
 * cut into UTF-8 characters by their lead byte alone (llama.cpp's unicode_len_utf8: a stray
 * continuation byte is one symbol; a lead byte takes up to 3 following bytes whatever they are).
 * Then, repeatedly, among all pairs of adjacent symbols whose concatenation is a vocabulary
 * string, the one whose token has the highest score is merged (the leftmost on ties). A final
 * symbol that is a vocabulary string is its token (the later id when the string is listed
 * twice); any other is spelled byte by byte with <0xNN> tokens (llama.cpp's byte_to_token, then
 * the 1-byte string, and here the UNK token as a last resort instead of an exception).
 *
 * Unlike BPE there are no pre-tokens: a whole fragment is one sequence, so the heap-and-linked-
 * list scheme matters even more. A popped pair is stale if either side was merged away or has
 * grown, which the sum of their lengths detects exactly (a symbol only grows by swallowing its
 * right neighbour).
 *
 * One heap over a whole 1 MB fragment is slow only because it does not fit in the cache. But a
 * one-byte symbol whose byte no vocabulary string of two or more bytes contains (a newline, in
 * Llama 2 and in our trained vocabularies) can never be part of a merge, so no pair spans it:
 * the text is cut around such "barrier" symbols and each piece is merged with its own small heap.
 * Merges in different pieces never interact, so the result is the same as with one heap. */
#include <string.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define ERR (&hs_tokenizer_err)

void hs_tok_spm_prepare(hs_tokenizer *t) {
  static const char hex[] = "0123456789ABCDEF";
  for (unsigned b = 0; b < 256; b++) {
    char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    uint32_t e = hs_strtab_find(&t->tab, name, 6);
    if (e >= t->n_vocab) {
      char c = (char)b;
      e = hs_strtab_find(&t->tab, &c, 1);
    }
    t->byte_tok[b] = e < t->n_vocab ? (int32_t)e : t->unk;
  }
  bool joinable[128] = {false};
  for (uint32_t i = 0; i < t->n_vocab; i++) {
    uint32_t n = t->tab.len[i];
    if (n < 2) continue;
    const unsigned char *s = (const unsigned char *)hs_strtab_str(&t->tab, i);
    for (uint32_t j = 0; j < n; j++)
      if (s[j] < 128) joinable[s[j]] = true;
  }
  for (unsigned c = 0; c < 128; c++) t->spm_barrier[c] = !joinable[c];
}

typedef struct ssym {
  uint32_t start, n; /* n = 0 once merged into its left neighbour */
  int32_t prev, next;
} ssym;

typedef struct spair {
  float score;
  uint32_t left, right, size;
} spair;

static inline bool before(const spair *a, const spair *b) {
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct sctx {
  const hs_tokenizer *t;
  hs_tok_scratch *s;
  const char *buf;
  ssym *sym;
  spair *heap;
  size_t n_heap, heap_cap;
} sctx;

HS_TOK_DEFINE_HEAP(sctx, spair, before)

static int try_pair(sctx *c, int32_t l, int32_t r) {
  if (l < 0 || r < 0) return 0;
  const ssym *a = &c->sym[l], *b = &c->sym[r];
  uint32_t e = hs_strtab_find(&c->t->tab, c->buf + a->start, (size_t)a->n + b->n);
  if (e >= c->t->n_vocab) return 0;
  spair p = {c->t->score[e], (uint32_t)l, (uint32_t)r, a->n + b->n};
  return heap_push(c, p);
}

int hs_tok_spm_encode(const hs_tokenizer *t, hs_tok_scratch *s, const char *text, size_t len,
                      bool space_prefix, hs_tok_sink *out) {
  /* the escaped text: ' ' -> E2 96 81 */
  size_t spaces = 0;
  for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
  size_t n = len + 2 * spaces + (space_prefix ? 3 : 0);
  if (n >= UINT32_MAX / 2) return hs_set_error(ERR, HS_EINVAL, "SPM: fragment too long");
  if (hs_tok_scratch_reserve((void **)&s->buf, &s->buf_cap, n) ||
      hs_tok_scratch_reserve(&s->sym, &s->sym_cap, n * sizeof(ssym)))
    return hs_set_error(ERR, HS_ENOMEM, "out of memory in the SPM encoder");
  char *buf = s->buf;
  size_t k = 0;
  if (space_prefix) {
    memcpy(buf, "\xe2\x96\x81", 3);
    k = 3;
  }
  for (size_t i = 0; i < len; i++) {
    if (text[i] == ' ') {
      memcpy(buf + k, "\xe2\x96\x81", 3);
      k += 3;
    } else {
      buf[k++] = text[i];
    }
  }
  sctx c = {t, s, buf, s->sym, s->heap, 0, s->heap_cap / sizeof(spair)};
  size_t ns = 0;
  for (size_t off = 0; off < n;) {
    size_t l = hs_utf8_lead_len((unsigned char)buf[off]);
    if (l > n - off) l = n - off;
    c.sym[ns] = (ssym){(uint32_t)off, (uint32_t)l, (int32_t)ns - 1, -1};
    if (ns) c.sym[ns - 1].next = (int32_t)ns;
    ns++;
    off += l;
  }
  /* merge each run of symbols between barriers on its own */
  for (size_t lo = 0; lo < ns;) {
    size_t hi = lo;
    while (hi < ns && !(c.sym[hi].n == 1 && (unsigned char)buf[c.sym[hi].start] < 128 &&
                        t->spm_barrier[(unsigned char)buf[c.sym[hi].start]]))
      hi++;
    /* symbols lo..hi-1 merge among themselves; hi (if < ns) is a barrier */
    c.n_heap = 0;
    for (size_t i = lo + 1; i < hi; i++)
      if (try_pair(&c, (int32_t)i - 1, (int32_t)i))
        return hs_set_error(ERR, HS_ENOMEM, "out of memory in the SPM encoder");
    while (c.n_heap) {
      spair p = heap_pop(&c);
      ssym *a = &c.sym[p.left], *b = &c.sym[p.right];
      if (a->n == 0 || b->n == 0 || a->n + b->n != p.size) continue;
      a->n += b->n;
      b->n = 0;
      a->next = b->next;
      if (b->next >= 0) c.sym[b->next].prev = (int32_t)p.left;
      int32_t nx = a->next >= 0 && (size_t)a->next < hi ? a->next : -1;
      int32_t pv = a->prev >= 0 && (size_t)a->prev >= lo ? a->prev : -1;
      if (try_pair(&c, pv, (int32_t)p.left) || try_pair(&c, (int32_t)p.left, nx))
        return hs_set_error(ERR, HS_ENOMEM, "out of memory in the SPM encoder");
    }
    lo = hi + 1;
  }
  for (int32_t i = ns ? 0 : -1; i >= 0; i = c.sym[i].next) {
    const ssym *y = &c.sym[i];
    uint32_t e = hs_strtab_find(&t->tab, buf + y->start, y->n);
    if (e < t->n_vocab) {
      hs_tok_sink_put(out, (int32_t)e);
      continue;
    }
    for (uint32_t j = 0; j < y->n; j++) {
      unsigned char b = (unsigned char)buf[y->start + j];
      if (t->byte_tok[b] < 0)
        return hs_set_error(ERR, HS_ECORRUPT,
                            "the vocabulary has no token for byte 0x%02X (no <0x%02X>, no 1-byte "
                            "token, no unknown token)",
                            b, b);
      hs_tok_sink_put(out, t->byte_tok[b]);
    }
  }
  return 0;
}
