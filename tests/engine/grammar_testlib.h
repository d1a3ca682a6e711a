/* grammar_testlib.h: helpers shared by the grammar tests (tests/engine/test_grammar*.c):
 * compiling grammars that must compile or must fail with a given message, checking that texts
 * are accepted or refused, reading files of the source tree, a deterministic random generator,
 * and a synthetic vocabulary. Header-only; include after cmocka.h and support/counting_alloc.h. */
#ifndef HS_TEST_GRAMMAR_TESTLIB_H
#define HS_TEST_GRAMMAR_TESTLIB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/grammar.h"

static inline hs_grammar *gparse(const char *text) {
  hs_grammar *g = NULL;
  int rc = hs_grammar_parse(text, strlen(text), NULL, &g);
  if (rc) fail_msg("grammar refused (%d): %s\n--- grammar ---\n%s", rc, hs_grammar_last_error(), text);
  return g;
}

/* The grammar must be refused with HS_EINVAL and a message containing part. */
static inline void gparse_fails(const char *text, const char *part) {
  hs_grammar *g = (hs_grammar *)1;
  int rc = hs_grammar_parse(text, strlen(text), NULL, &g);
  if (rc == 0) fail_msg("grammar accepted, expected \"%s\":\n%s", part, text);
  assert_int_equal(rc, HS_EINVAL);
  assert_null(g);
  assert_msg_has(hs_grammar_last_error(), part);
}

/* Whether text (len bytes) is a whole sentence of g, fed in one piece. */
static inline bool gmatch_n(const hs_grammar *g, const char *text, size_t len) {
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  int rc = hs_grammar_state_accept_bytes(s, text, len);
  bool ok = rc == 0 && hs_grammar_state_is_complete(s);
  if (rc) assert_int_equal(rc, HS_EINVAL);
  hs_grammar_state_destroy(s);
  return ok;
}

static inline bool gmatch(const hs_grammar *g, const char *text) {
  return gmatch_n(g, text, strlen(text));
}

#define assert_accepts(g, text)                                                                \
  do {                                                                                         \
    if (!gmatch((g), (text))) fail_msg("refused: \"%s\" (%s)", (text), hs_grammar_last_error()); \
  } while (0)

#define assert_refuses(g, text)                                                                \
  do {                                                                                         \
    if (gmatch((g), (text))) fail_msg("accepted: \"%s\"", (text));                             \
  } while (0)

/* Reads a file of the source tree (HS_SOURCE_DIR/rel), NUL-terminated; free with free(). */
static inline char *read_source_file(const char *rel, size_t *len) {
  const char *dir = getenv("HS_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", rel);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = 0;
  if (len) *len = got;
  return buf;
}

static inline hs_grammar *gload(const char *rel, const char *root) {
  size_t n;
  char *text = read_source_file(rel, &n);
  hs_grammar *g = NULL;
  int rc = hs_grammar_parse(text, n, root, &g);
  free(text);
  if (rc) fail_msg("%s refused: %s", rel, hs_grammar_last_error());
  return g;
}

/* ---- a deterministic generator (splitmix64) ---- */

static uint64_t trng_state;

static inline uint64_t trng(void) {
  uint64_t z = (trng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline size_t trng_below(size_t n) { return (size_t)(trng() % n); }

/* ---- a synthetic vocabulary ----
 * Token 0 is a control token (no text), 1 and 2 are eog; then the 256 single bytes (so every
 * text can be written, even byte by byte, like byte-fallback tokens); then fixed JSON/code
 * fragments, pieces of multi-byte characters (a lead byte with part of its continuation, the
 * tail of a character), whole non-ASCII characters, numbers, blank runs, and random words with
 * and without a leading space, some duplicated. */
typedef struct tvocab {
  char **tok;
  size_t *len;
  bool *eog;
  size_t n;
} tvocab;

static inline void tv_add(tvocab *v, const char *s, size_t n) {
  v->tok = realloc(v->tok, (v->n + 1) * sizeof *v->tok);
  v->len = realloc(v->len, (v->n + 1) * sizeof *v->len);
  v->eog = realloc(v->eog, (v->n + 1) * sizeof *v->eog);
  assert_true(v->tok && v->len && v->eog);
  v->tok[v->n] = n ? malloc(n) : NULL;
  if (n) memcpy(v->tok[v->n], s, n);
  v->len[v->n] = n;
  v->eog[v->n] = false;
  v->n++;
}

static inline void tv_build(tvocab *v, size_t n_words, uint64_t seed) {
  static const char *const frags[] = {
      "{", "}", "[", "]", "{\"", "\"}", "\":", "\": ", "\",", "\", \"", "},", "],", "}]", "]}",
      "\":\"", "\": \"", "\": {", "\": [", "\"]", "[\"", "\\\"", "\\n", "\\u", "\\ud83d",
      "\\ude00", "\\u00e9", "\\u0000", "\\ud800", "\"", ":", ",", ".", "-", "+", "e", "E", "e-",
      "0.", ".5", "-0", "12", "123", "1e5", "true", "false", "null", " true", " null", "tr",
      "ue", "nu", "ll", "fal", "se", "(", ")", "()", " (", ") ", "*", " * ", " + ", "-(", "x",
      "ab", "abc", " a", "\n", "\n ", "\n  ", "\n    ", "  ", "   ", "\t", " \n", "\r\n",
      "- [", "] ", "- [x] ", "- [ ] ", " (high)\n", "normal", "low)", ")\n", "urgent"};
  static const char *const chars[] = {"é", "€", "😀", "你", "ж", "α", "ω", "\xF0\x9F\x8E\x89"};
  memset(v, 0, sizeof *v);
  tv_add(v, NULL, 0); /* control */
  tv_add(v, NULL, 0); /* eog */
  tv_add(v, "</s>", 4); /* eog with text: its bytes do not matter */
  v->eog[1] = v->eog[2] = true;
  for (int b = 0; b < 256; b++) {
    char c = (char)b;
    tv_add(v, &c, 1);
  }
  for (size_t i = 0; i < sizeof frags / sizeof *frags; i++) tv_add(v, frags[i], strlen(frags[i]));
  for (size_t i = 0; i < sizeof chars / sizeof *chars; i++) {
    size_t l = strlen(chars[i]);
    tv_add(v, chars[i], l);
    for (size_t k = 1; k < l; k++) {
      tv_add(v, chars[i], k);                 /* a cut-off start */
      tv_add(v, chars[i] + k, l - k);         /* the rest */
    }
    char buf[16];
    snprintf(buf, sizeof buf, " %s", chars[i]);
    tv_add(v, buf, strlen(buf));
  }
  trng_state = seed;
  static const char letters[] = "etaoinshrdlucmfwypvbgkjqxz";
  for (size_t i = 0; i < n_words; i++) {
    char w[24];
    size_t l = 0;
    if (trng_below(2)) w[l++] = ' ';
    for (size_t k = 1 + trng_below(7); k > 0; k--) w[l++] = letters[trng_below(trng_below(2) ? 8 : 26)];
    if (trng_below(10) == 0) w[l++] = "\",:}]0.5"[trng_below(8)];
    tv_add(v, w, l);
    if (trng_below(50) == 0) tv_add(v, w, l); /* a duplicate string */
  }
}

static inline void tv_free(tvocab *v) {
  for (size_t i = 0; i < v->n; i++) free(v->tok[i]);
  free(v->tok);
  free(v->len);
  free(v->eog);
  memset(v, 0, sizeof *v);
}

static inline hs_grammar_vocab *tv_index(const tvocab *v) {
  hs_grammar_vocab *gv = NULL;
  int rc = hs_grammar_vocab_create((const char *const *)v->tok, v->len, v->eog, v->n, &gv);
  if (rc) fail_msg("vocab_create: %s", hs_grammar_last_error());
  return gv;
}

#endif
