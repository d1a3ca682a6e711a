/* fuzz_grammar.c: the GBNF parser and the matcher against arbitrary input.
 *
 * The input is a grammar text, optionally followed by a line "%%" and a text to match. Whatever
 * the grammar, parsing must not crash, over-read, leak or loop; a refusal must be HS_EINVAL (or
 * HS_ENOMEM) with a message. When the grammar compiles, the text is fed to a state three ways:
 * whole, byte by byte, and in pieces cut at bytes of the text; all three must agree (accept_bytes
 * is all-or-nothing, so feeding stops at the first refused piece, and the verdicts must match
 * that of the whole). Then the mask over a small vocabulary (every byte value that occurs in the
 * input, the text's words and pieces of its UTF-8 characters, one eog token and one control
 * token) is compared with the brute force (a fresh clone accepting each token), at the start and
 * after each accepted piece of the text. A broken promise aborts, which the fuzzer reports. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

#define MAX_TEXT 256 /* bytes of text matched (keeps each input fast) */
#define MAX_TOKENS 96

typedef struct vocab {
  const char *tok[MAX_TOKENS];
  size_t len[MAX_TOKENS];
  bool eog[MAX_TOKENS];
  size_t n;
} vocab;

static void add(vocab *v, const char *s, size_t n, bool eog) {
  if (v->n < MAX_TOKENS) {
    v->tok[v->n] = s;
    v->len[v->n] = n;
    v->eog[v->n] = eog;
    v->n++;
  }
}

static void check_mask(const hs_grammar_state *s, const vocab *sv, const hs_grammar_vocab *v) {
  uint8_t m[MAX_TOKENS];
  int n = hs_grammar_state_mask(s, v, m);
  if (n < 0) {
    check(n == HS_ENOSPC || n == HS_ENOMEM);
    return;
  }
  int count = 0;
  for (size_t t = 0; t < sv->n; t++) {
    bool want;
    if (sv->eog[t]) {
      want = hs_grammar_state_is_complete(s);
    } else if (sv->len[t] == 0) {
      want = false;
    } else {
      hs_grammar_state *c;
      if (hs_grammar_state_clone(s, &c)) return;
      int rc = hs_grammar_state_accept_bytes(c, sv->tok[t], sv->len[t]);
      hs_grammar_state_destroy(c);
      if (rc == HS_ENOSPC || rc == HS_ENOMEM) return; /* ambiguity the mask did not meet */
      check(rc == 0 || rc == HS_EINVAL);
      want = rc == 0;
    }
    check(m[t] == want);
    count += m[t];
  }
  check(count == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  size_t glen = size;
  const char *text = NULL;
  size_t tlen = 0;
  for (size_t i = 0; i + 4 <= size; i++) {
    if (memcmp(in + i, "\n%%\n", 4) == 0) {
      glen = i + 1;
      text = in + i + 4;
      tlen = size - i - 4;
      break;
    }
  }
  if (tlen > MAX_TEXT) tlen = MAX_TEXT;
  /* an exactly-sized copy, so that the sanitizers see any read past the grammar's end */
  char *gtext = malloc(glen ? glen : 1);
  if (!gtext) return 0;
  memcpy(gtext, in, glen);
  hs_grammar *g = (hs_grammar *)1;
  int rc = hs_grammar_parse(gtext, glen, NULL, &g);
  free(gtext);
  if (rc) {
    check(g == NULL && (rc == HS_EINVAL || rc == HS_ENOMEM) && hs_grammar_last_error()[0]);
    return 0;
  }
  hs_grammar_state *whole, *bytes, *pieces;
  if (hs_grammar_state_create(g, &whole)) { /* too ambiguous from the start */
    check(hs_grammar_state_create(g, &bytes) != 0);
    hs_grammar_destroy(g);
    return 0;
  }
  check(hs_grammar_state_clone(whole, &bytes) == 0 && hs_grammar_state_clone(whole, &pieces) == 0);
  /* the vocabulary: control, eog, the text's distinct bytes, its words, pieces of characters */
  vocab sv = {.n = 0};
  static char byte_tok[256];
  add(&sv, NULL, 0, false);
  add(&sv, NULL, 0, true);
  bool seen[256] = {false};
  for (size_t i = 0; i < tlen; i++) {
    uint8_t b = (uint8_t)text[i];
    if (!seen[b]) {
      seen[b] = true;
      byte_tok[b] = (char)b;
      add(&sv, &byte_tok[b], 1, false);
    }
  }
  for (size_t i = 0; i < tlen;) {
    size_t j = i;
    while (j < tlen && text[j] != ' ' && j - i < 8) j++;
    if (j > i + 1) add(&sv, text + i, j - i, false);
    if (j < tlen && j + 2 <= tlen) add(&sv, text + j, 2, false); /* a piece across a boundary */
    i = j + 1;
  }
  hs_grammar_vocab *v = NULL;
  if (hs_grammar_vocab_create(sv.tok, sv.len, sv.eog, sv.n, &v)) {
    hs_grammar_state_destroy(whole);
    hs_grammar_state_destroy(bytes);
    hs_grammar_state_destroy(pieces);
    hs_grammar_destroy(g);
    return 0;
  }
  check_mask(pieces, &sv, v);
  int rw = hs_grammar_state_accept_bytes(whole, text, tlen);
  check(rw == 0 || rw == HS_EINVAL || rw == HS_ENOSPC || rw == HS_ENOMEM);
  /* byte by byte: fails exactly when the whole does (or on the same limit) */
  int rb = 0;
  for (size_t i = 0; i < tlen && rb == 0; i++) rb = hs_grammar_state_accept_bytes(bytes, text + i, 1);
  if (rw != HS_ENOSPC && rw != HS_ENOMEM && rb != HS_ENOSPC && rb != HS_ENOMEM) {
    check((rw == 0) == (rb == 0));
    if (rw == 0) {
      check(hs_grammar_state_is_complete(whole) == hs_grammar_state_is_complete(bytes));
      check(hs_grammar_state_is_done(whole) == hs_grammar_state_is_done(bytes));
    }
  }
  /* pieces cut after each byte with its low bit set, checking the mask after each */
  int rp = 0;
  size_t start = 0;
  for (size_t i = 0; i < tlen && rp == 0; i++) {
    if ((text[i] & 1) || i + 1 == tlen) {
      rp = hs_grammar_state_accept_bytes(pieces, text + start, i + 1 - start);
      start = i + 1;
      if (rp == 0) check_mask(pieces, &sv, v);
    }
  }
  if (rw != HS_ENOSPC && rw != HS_ENOMEM && rp != HS_ENOSPC && rp != HS_ENOMEM) {
    check((rw == 0) == (rp == 0));
    if (rw == 0) check(hs_grammar_state_is_complete(whole) == hs_grammar_state_is_complete(pieces));
  }
  if (hs_grammar_state_is_complete(whole)) check(hs_grammar_state_accept(whole, v, 1) == 0);
  else check(hs_grammar_state_accept(whole, v, 1) == HS_EINVAL);
  hs_grammar_vocab_destroy(v);
  hs_grammar_state_destroy(whole);
  hs_grammar_state_destroy(bytes);
  hs_grammar_state_destroy(pieces);
  hs_grammar_destroy(g);
  return 0;
}
