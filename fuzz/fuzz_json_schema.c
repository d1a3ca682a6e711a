/* fuzz_json_schema.c: the JSON-schema compiler against arbitrary input, and its grammars
 * against the promise that they only ever let a model write JSON.
 *
 * The input is taken as a schema. Whatever it is, conversion must not crash, over-read, leak or
 * loop; a refusal must be HS_EINVAL (or HS_ENOMEM) with a message, and the two entry points must
 * agree. When the schema is accepted, the GBNF text must compile (the API promises it), and a
 * walk over a vocabulary of the 256 single bytes and an eog token, driven by a generator seeded
 * from the input, samples only allowed tokens: first at random, then preferring bytes that close
 * JSON constructs. If the walk ends with the eog token, the text must be a JSON document jansson
 * parses. A broken promise aborts, which the fuzzer reports. */
#include <jansson.h>
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

#define STEPS 300

static uint64_t rng;

static uint64_t next_rand(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void walk(const hs_grammar *g) {
  static char bytes[256];
  const char *tok[257];
  size_t len[257];
  bool eog[257];
  for (int b = 0; b < 256; b++) {
    bytes[b] = (char)b;
    tok[b] = &bytes[b];
    len[b] = 1;
    eog[b] = false;
  }
  tok[256] = NULL;
  len[256] = 0;
  eog[256] = true;
  hs_grammar_vocab *v;
  hs_grammar_state *s;
  if (hs_grammar_vocab_create(tok, len, eog, 257, &v)) return;
  if (hs_grammar_state_create(g, &s)) {
    hs_grammar_vocab_destroy(v);
    return;
  }
  char text[STEPS];
  size_t n = 0;
  uint8_t m[257];
  bool ended = false;
  size_t explore = (size_t)(next_rand() % 100);
  for (size_t step = 0; step < STEPS && !ended; step++) {
    int allowed = hs_grammar_state_mask(s, v, m);
    if (allowed < 0) {
      check(allowed == HS_ENOSPC || allowed == HS_ENOMEM);
      break;
    }
    check(allowed > 0); /* a compiled schema can always go on or end */
    check(m[256] == hs_grammar_state_is_complete(s));
    int t = -1;
    if (m[256] && (step >= explore || next_rand() % 4 == 0)) t = 256;
    if (t < 0 && step >= explore) {
      for (const char *p = "\"}]0:"; *p && t < 0; p++)
        if (m[(uint8_t)*p]) t = (uint8_t)*p;
    }
    if (t < 0) {
      int k = (int)(next_rand() % (uint64_t)allowed);
      for (int i = 0; i < 257; i++)
        if (m[i] && k-- == 0) {
          t = i;
          break;
        }
    }
    check(t >= 0 && m[t]);
    int rc = hs_grammar_state_accept(s, v, t);
    if (rc) {
      check(rc == HS_ENOSPC || rc == HS_ENOMEM);
      break;
    }
    if (t == 256) ended = true;
    else text[n++] = (char)t;
  }
  if (ended) {
    json_error_t e;
    json_t *j = json_loadb(text, n, JSON_DECODE_ANY, &e);
    check(j != NULL);
    json_decref(j);
  }
  hs_grammar_state_destroy(s);
  hs_grammar_vocab_destroy(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  if (size) memcpy(copy, data, size);
  char *gbnf = (char *)1;
  int rc = hs_grammar_json_schema_to_gbnf(copy, size, &gbnf);
  hs_grammar *g = (hs_grammar *)1;
  int rc2 = hs_grammar_from_json_schema(copy, size, &g);
  free(copy);
  if (rc) {
    check(gbnf == NULL && (rc == HS_EINVAL || rc == HS_ENOMEM) && hs_grammar_last_error()[0]);
    check(rc2 != 0 && g == NULL);
    return 0;
  }
  check(rc2 == 0 && g != NULL);
  hs_grammar *g2 = NULL;
  check(hs_grammar_parse(gbnf, strlen(gbnf), NULL, &g2) == 0);
  hs_grammar_destroy(g2);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
  rng = h;
  walk(g);
  hs_grammar_destroy(g);
  hs_free(gbnf);
  return 0;
}
