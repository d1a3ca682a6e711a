/* tokenizer_internal.h: what the tokenizer's files share (not part of the public API).
 *
 *   tokenizer_table.c    string table (strings -> ids) and 64-bit-key map, used by the
 *                        tokenizers and the trainer
 *   tokenizer_pretok.c   the PCRE2 pre-tokenizers of byte-level BPE
 *   tokenizer_special.c  special-token texts in the input (llama.cpp's partition)
 *   tokenizer.c          loading from GGUF, accessors, encode's dispatch
 *   tokenizer_bpe.c      byte-level BPE of one text fragment
 *   tokenizer_spm.c      SentencePiece of one text fragment
 *   detok.c              token bytes, decode, streaming
 *   vocab_train.c        vocabulary training; vocab_corpus.c reads corpora
 *
 * Every allocation goes through hs_malloc and friends; PCRE2 is given the same hooks. */
#ifndef HS_ENGINE_TOKENIZER_INTERNAL_H
#define HS_ENGINE_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/hash.h"
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/last_error.h"
#include "hswarm/tokenizer.h"

/* The module's per-thread error message (defined in tokenizer.c). */
extern _Thread_local hs_errbuf hs_tokenizer_err;

#define HS_TOK_NONE UINT32_MAX

/* ---- hashing and tables (tokenizer_table.c) ---- */

uint64_t hs_tok_hash(const void *p, size_t n);

#define hs_tok_mix64 hs_mix64 /* core/hash.h */

/* Strings numbered 0..n-1 in the order added (each NUL-terminated in one pool), and a hash
 * index from string to one of those numbers. Adding the same string twice makes two entries;
 * the index then points to the later one when `map` was asked (llama.cpp's "last id wins"). */
typedef struct hs_strtab {
  char *pool;
  size_t pool_len, pool_cap;
  size_t *off;
  uint32_t *len;
  uint32_t *hash; /* 32 bits of each entry's hash */
  uint32_t n, cap;
  uint32_t *slots; /* entry + 1, 0 = empty */
  uint32_t slot_mask;
  uint32_t n_mapped;
} hs_strtab;

void hs_strtab_init(hs_strtab *t);
void hs_strtab_free(hs_strtab *t);
/* Appends s[0..n) as entry *id (id may be NULL); with map, the index sends s to it. */
int hs_strtab_add(hs_strtab *t, const char *s, size_t n, bool map, uint32_t *id);
/* The entry the index sends s to, or HS_TOK_NONE. */
uint32_t hs_strtab_find(const hs_strtab *t, const char *s, size_t n);
/* find, or add and map; *added (may be NULL) says which. */
int hs_strtab_intern(hs_strtab *t, const char *s, size_t n, uint32_t *id, bool *added);
static inline const char *hs_strtab_str(const hs_strtab *t, uint32_t id) {
  return t->pool + t->off[id];
}

/* 64-bit keys (never UINT64_MAX) to 32-bit values. */
typedef struct hs_u64map {
  uint64_t *keys;
  uint32_t *vals;
  uint32_t mask, count;
} hs_u64map;

void hs_u64map_init(hs_u64map *m);
void hs_u64map_free(hs_u64map *m);
/* The value of key, or HS_TOK_NONE. */
uint32_t hs_u64map_get(const hs_u64map *m, uint64_t key);
/* Inserts key -> val unless present; *slot (may be NULL) points at the stored value (valid
 * until the next insert), *added says whether it was new. */
int hs_u64map_put(hs_u64map *m, uint64_t key, uint32_t val, uint32_t **slot, bool *added);

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF) at p[0..n), or 0 when p does not start one. *cp (may be NULL) gets the code point. */
size_t hs_utf8_valid_len(const unsigned char *p, size_t n, uint32_t *cp);
/* llama.cpp's unicode_len_utf8: 1, 2, 3 or 4 from the high nibble of a lead byte. */
static inline size_t hs_utf8_lead_len(unsigned char c) {
  static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lookup[c >> 4];
}
size_t hs_utf8_put(uint32_t cp, char *out); /* 1..4 bytes */

/* ---- GPT-2's byte <-> printable character map ---- */

/* The code point standing for byte b (b itself for printable ones, 256.. for the others). */
uint32_t hs_bpe_byte_cp(unsigned b);
/* The byte a code point stands for, or -1. */
int hs_bpe_cp_byte(uint32_t cp);
/* Writes the UTF-8 of the stand-ins of in[0..n) to out (at most 2n bytes); returns its length. */
size_t hs_bpe_map_bytes(const unsigned char *in, size_t n, char *out);

/* ---- pre-tokenizers (tokenizer_pretok.c) ---- */

typedef enum hs_pre_type {
  HS_PRE_DEFAULT = 0,
  HS_PRE_LLAMA3 = 1,
  HS_PRE_QWEN2 = 2,
  HS_PRE_GPT2 = 3,
  HS_PRE_STARCODER = 4 /* every digit alone, then GPT-2's regex (SmolLM, StarCoder) */
} hs_pre_type;

typedef struct hs_pretok hs_pretok;
typedef int (*hs_pretok_emit)(void *ctx, const char *piece, size_t len);

/* Resolves a tokenizer.ggml.pre name (any alias; NULL or absent: "default"); HS_EINVAL with a
 * message listing the supported names otherwise. */
int hs_pretok_lookup(const char *name, size_t len, hs_pre_type *type);
const char *hs_pretok_type_name(hs_pre_type type);
/* Compiles the regexes of type. */
int hs_pretok_create(hs_pre_type type, hs_pretok **out);
void hs_pretok_destroy(hs_pretok *p);
/* Cuts text[0..len) into pre-tokens and calls emit on each, in order, with pointers into text;
 * the pieces cover text exactly. A non-zero return of emit stops and is returned. */
int hs_pretok_split(const hs_pretok *p, const char *text, size_t len, hs_pretok_emit emit,
                    void *ctx);

/* ---- the tokenizer ---- */

/* Special-token trie node (texts of CONTROL, USER_DEFINED and UNKNOWN tokens). */
typedef struct hs_trie_node {
  uint32_t child;   /* first child, 0 = none (node 0 is the root) */
  uint32_t sibling; /* next sibling, 0 = none */
  int32_t special;  /* index into specials[] of the token ending here, -1 = none */
  unsigned char byte;
} hs_trie_node;

struct hs_tokenizer {
  hs_tokenizer_kind kind;
  hs_pre_type pre;
  uint32_t n_vocab;
  /* entries 0..n_vocab-1 are the token texts; BPE adds the strings of merges after them */
  hs_strtab tab;
  float *score;  /* n_vocab */
  uint8_t *type; /* n_vocab: HS_TOKEN_* or 0 */
  /* what each token renders as without HS_DETOK_SPECIAL */
  char *piece;
  size_t *piece_off;
  uint32_t *piece_len;
  int32_t bos, eos, eot, eom, unk, pad, sep;
  int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  bool add_bos, add_eos, add_space_prefix, ignore_merges;
  uint8_t *eog; /* bitmap over ids */
  /* special tokens in priority order (longer text first, then lower id) */
  int32_t *specials;
  int32_t *special_next; /* next special (index) with the same text, -1 = none */
  uint32_t n_specials;
  hs_trie_node *trie;
  uint32_t n_trie;
  uint32_t root[256]; /* first-level children of the trie, 0 = none */
  /* BPE */
  hs_pretok *pretok;
  hs_u64map merges;     /* (left << 32 | right) -> merge index */
  uint32_t *merge_rank; /* per merge: its rank (index in the file) */
  uint32_t *merge_sym;  /* per merge: the table entry of the concatenation */
  uint32_t n_merges;
  uint32_t byte_sym[256];         /* table entry of each byte's stand-in, or HS_TOK_NONE */
  int32_t byte_fallback[256][2];  /* llama.cpp's last resort: ids of the 1-byte strings of the
                                   * stand-in's UTF-8 bytes, -1 when absent */
  /* SPM: token of each byte (<0xNN>, else the 1-byte string, else UNK), -1 = none */
  int32_t byte_tok[256];
  /* SPM: ASCII bytes that no vocabulary string of two or more bytes contains: such a byte never
   * takes part in a merge, so the text can be cut around it */
  bool spm_barrier[128];
};

/* Output of an encode: ids past cap are counted, not stored. */
typedef struct hs_tok_sink {
  int32_t *ids;
  size_t cap, n;
} hs_tok_sink;

static inline void hs_tok_sink_put(hs_tok_sink *s, int32_t id) {
  if (s->n < s->cap) s->ids[s->n] = id;
  s->n++;
}

/* Growable scratch memory of one encode call. */
typedef struct hs_tok_scratch {
  void *sym;
  size_t sym_cap; /* bytes */
  void *heap;
  size_t heap_cap; /* bytes */
  char *buf;
  size_t buf_cap;
} hs_tok_scratch;

int hs_tok_scratch_reserve(void **p, size_t *cap, size_t need);

/* Defines the binary min-heap of the merge loops (tokenizer_bpe.c, tokenizer_spm.c) over a
 * context type with fields s (hs_tok_scratch *), heap (elem_t *), n_heap and heap_cap
 * (entries), ordered by before(const elem_t *, const elem_t *):
 *   static int heap_push(ctx_t *c, elem_t p)   0 or HS_ENOMEM (the heap lives in c->s->heap)
 *   static elem_t heap_pop(ctx_t *c)            the first element; the heap must not be empty */
#define HS_TOK_DEFINE_HEAP(ctx_t, elem_t, before)                                              \
  static int heap_push(ctx_t *c, elem_t p) {                                                   \
    if (c->n_heap == c->heap_cap) {                                                            \
      if (hs_tok_scratch_reserve(&c->s->heap, &c->s->heap_cap, (c->n_heap + 1) * sizeof p))    \
        return HS_ENOMEM;                                                                      \
      c->heap = c->s->heap;                                                                    \
      c->heap_cap = c->s->heap_cap / sizeof p;                                                 \
    }                                                                                          \
    size_t i = c->n_heap++;                                                                    \
    while (i > 0) {                                                                            \
      size_t up = (i - 1) / 2;                                                                 \
      if (!before(&p, &c->heap[up])) break;                                                    \
      c->heap[i] = c->heap[up];                                                                \
      i = up;                                                                                  \
    }                                                                                          \
    c->heap[i] = p;                                                                            \
    return 0;                                                                                  \
  }                                                                                            \
  static elem_t heap_pop(ctx_t *c) {                                                           \
    elem_t top = c->heap[0], last = c->heap[--c->n_heap];                                      \
    size_t i = 0, n = c->n_heap;                                                               \
    for (;;) {                                                                                 \
      size_t l = 2 * i + 1;                                                                    \
      if (l >= n) break;                                                                       \
      size_t m = l + 1 < n && before(&c->heap[l + 1], &c->heap[l]) ? l + 1 : l;               \
      if (!before(&c->heap[m], &last)) break;                                                  \
      c->heap[i] = c->heap[m];                                                                 \
      i = m;                                                                                   \
    }                                                                                          \
    if (n) c->heap[i] = last;                                                                  \
    return top;                                                                                \
  }
void hs_tok_scratch_free(hs_tok_scratch *s);

/* One item of a partitioned input: raw text [start, start+len) or a special token. */
typedef struct hs_tok_item {
  size_t start, len;
  int32_t id; /* -1 for raw text */
} hs_tok_item;

/* tokenizer_special.c */
int hs_tok_special_build(hs_tokenizer *t);
/* Partitions text into items (a new array from hs_malloc in *items, *n_items). */
int hs_tok_special_partition(const hs_tokenizer *t, const char *text, size_t len, bool parse,
                             hs_tok_item **items, size_t *n_items);

/* tokenizer_bpe.c */
int hs_tok_bpe_prepare(hs_tokenizer *t, const hs_gguf *g);
int hs_tok_bpe_encode(const hs_tokenizer *t, hs_tok_scratch *s, const char *text, size_t len,
                      hs_tok_sink *out);

/* tokenizer_spm.c */
void hs_tok_spm_prepare(hs_tokenizer *t);
int hs_tok_spm_encode(const hs_tokenizer *t, hs_tok_scratch *s, const char *text, size_t len,
                      bool space_prefix, hs_tok_sink *out);

/* detok.c */
int hs_tok_pieces_build(hs_tokenizer *t);

#endif
