/* test_grammar_mask.c: the vocabulary trie and the allowed-token mask (src/engine/grammar_vocab.c).
 *
 * The mask is checked against the brute-force answer (for every token: an eog token iff the
 * state is complete, a control token never, any other iff a fresh clone of the state accepts its
 * bytes) on many states reached by random walks that sample only allowed tokens, in several
 * grammars (JSON, arithmetic, a task list, Unicode classes with tokens that split characters, a
 * JSON schema), also with a tiny cache budget so that the cache is rebuilt in the middle of mask
 * walks. The "always well-formed" guarantee: random walks that sample only allowed tokens, and
 * end by sampling an eog token, always give a document jansson parses, and for a schema, one
 * that satisfies the schema (checked field by field). Also: eog handling, errors of accept and
 * vocab_create, and out-of-memory in vocab_create and mask. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/counting_alloc.h"

#include "engine/grammar_internal.h"
#include "engine/grammar_testlib.h"

static tvocab V;            /* the synthetic vocabulary */
static hs_grammar_vocab *GV; /* its index */

static int group_setup(void **state) {
  hs_alloc_set_hooks(&counting_hooks);
  tv_build(&V, 800, 42);
  GV = tv_index(&V);
  return make_tmpdir("hs_gmask");
}

static int group_teardown(void **state) {
  hs_grammar_vocab_destroy(GV);
  tv_free(&V);
  return remove_tmpdir_and_hooks();
}

static long base_blocks;

static int test_setup(void **state) {
  base_blocks = live_blocks;
  return 0;
}

static int test_teardown(void **state) {
  if (live_blocks != base_blocks) fail_msg("%ld blocks leaked", live_blocks - base_blocks);
  return 0;
}

/* The brute-force mask: one fresh clone per token, so no transition cached by the mask is
 * reused. Returns the number allowed. */
static int brute_mask(const hs_grammar_state *s, uint8_t *out) {
  int count = 0;
  bool complete = hs_grammar_state_is_complete(s);
  for (size_t t = 0; t < V.n; t++) {
    bool ok;
    if (V.eog[t]) {
      ok = complete;
    } else if (V.len[t] == 0) {
      ok = false;
    } else {
      hs_grammar_state *c;
      assert_int_equal(hs_grammar_state_clone(s, &c), 0);
      int rc = hs_grammar_state_accept_bytes(c, V.tok[t], V.len[t]);
      assert_true(rc == 0 || rc == HS_EINVAL);
      ok = rc == 0;
      hs_grammar_state_destroy(c);
    }
    out[t] = ok;
    count += ok;
  }
  return count;
}

static void check_mask(const hs_grammar_state *s, const char *text_so_far) {
  uint8_t *m = malloc(V.n), *b = malloc(V.n);
  int n = hs_grammar_state_mask(s, GV, m);
  assert_true(n >= 0);
  int nb = brute_mask(s, b);
  for (size_t t = 0; t < V.n; t++)
    if (m[t] != b[t])
      fail_msg("after \"%s\": token %zu (\"%.*s\") mask %d, brute force %d", text_so_far, t,
               (int)V.len[t], V.tok[t] ? V.tok[t] : "", m[t], b[t]);
  assert_int_equal(n, nb);
  free(m);
  free(b);
}

/* ---- random walks ---- */

typedef struct walk {
  char *text;
  size_t len, cap;
  bool ended; /* an eog token was sampled */
} walk;

static void walk_add(walk *w, const char *s, size_t n) {
  if (w->len + n + 1 > w->cap) {
    w->cap = 2 * (w->len + n + 1);
    w->text = realloc(w->text, w->cap);
  }
  if (n) memcpy(w->text + w->len, s, n);
  w->len += n;
  w->text[w->len] = 0;
}

#define JSON_WAY_OUT "\"}]0:"

static size_t find_single(const uint8_t *m, char c) {
  for (size_t t = 3; t < V.n; t++)
    if (m[t] && V.len[t] == 1 && V.tok[t][0] == c) return t;
  return SIZE_MAX;
}

/* Picks a token among the allowed ones. Exploring: an eog token sometimes, else any allowed
 * token or an allowed single byte. Finishing: an eog token if allowed, else the first allowed
 * byte of pref (for JSON " } ] 0 : is a way out of every construct), else a random allowed
 * single byte. */
static size_t choose(const uint8_t *m, int n, bool finishing, const char *pref) {
  assert_true(n > 0);
  if (V.eog[1] && m[1] && (finishing || trng_below(5) == 0)) return 1 + trng_below(2);
  if (finishing) {
    for (const char *p = pref; *p; p++) {
      size_t t = find_single(m, *p);
      if (t != SIZE_MAX) return t;
    }
  }
  bool single = finishing || trng_below(2);
  size_t cands = 0;
  for (size_t t = 0; t < V.n; t++) cands += m[t] && !V.eog[t] && (!single || V.len[t] == 1);
  if (cands == 0) {
    single = false;
    for (size_t t = 0; t < V.n; t++) cands += m[t] && !V.eog[t];
  }
  if (cands == 0) return 1; /* only eog is allowed */
  size_t k = trng_below(cands);
  for (size_t t = 0; t < V.n; t++)
    if (m[t] && !V.eog[t] && (!single || V.len[t] == 1) && k-- == 0) return t;
  fail_msg("no candidate");
  return 0;
}

/* Walks from a new state of g: explore steps of random choice, then finishing choices until an
 * eog token is sampled. check: compare every mask with the brute force. */
static walk random_walk(const hs_grammar *g, size_t explore, bool check, size_t budget,
                        const char *pref) {
  walk w = {0};
  walk_add(&w, "", 0);
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  if (budget) s->ctx->budget = budget;
  uint8_t *m = malloc(V.n);
  for (size_t step = 0; step < explore + 600; step++) {
    if (check) check_mask(s, w.text);
    int n = hs_grammar_state_mask(s, GV, m);
    assert_true(n > 0); /* the synthetic vocabulary has every byte: never stuck */
    int ones = 0;
    for (size_t t = 0; t < V.n; t++) ones += m[t];
    assert_int_equal(ones, n);
    /* eog allowed exactly when complete */
    assert_int_equal(m[1], hs_grammar_state_is_complete(s));
    assert_int_equal(m[2], hs_grammar_state_is_complete(s));
    assert_int_equal(m[0], 0);
    size_t t = choose(m, n, step >= explore, pref);
    assert_true(m[t]);
    assert_int_equal(hs_grammar_state_accept(s, GV, (int32_t)t), 0);
    if (V.eog[t]) {
      w.ended = true;
      assert_true(hs_grammar_state_is_done(s));
      break;
    }
    walk_add(&w, V.tok[t], V.len[t]);
  }
  free(m);
  hs_grammar_state_destroy(s);
  return w;
}

static void test_mask_equals_brute_force(void **state) {
  /* a grammar, and the bytes that lead out of it fastest (see choose) */
  const char *inline_grammars[][2] = {
      /* Unicode classes: tokens that split characters are allowed only where the character
       * they start can be completed */
      {"root ::= ( [α-ω€] | [😀-🙏] | [a-c] | \"\\\"\" | \"\\n\" )+ \"!\"", "!"},
      {"root ::= \"x\" [^x]{0,3} \"x\" ( \"é\"? \"€\" )*", "x"},
      {"root ::= [a-z]+ ( \" \" [a-z]+ ){0,5} ( \".\" | \"?\" )", "."},
  };
  const char *files[][3] = {{"grammars/json.gbnf", NULL, JSON_WAY_OUT},
                            {"grammars/json.gbnf", "value", JSON_WAY_OUT},
                            {"grammars/arithmetic.gbnf", NULL, ")0"},
                            {"grammars/todo.gbnf", NULL, ")\n"}};
  trng_state = 7;
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    hs_grammar *g = gload(files[i][0], files[i][1]);
    for (int k = 0; k < 3; k++) {
      walk w = random_walk(g, 12 + trng_below(20), true, 0, files[i][2]);
      assert_true(w.ended);
      free(w.text);
    }
    hs_grammar_destroy(g);
  }
  for (size_t i = 0; i < sizeof inline_grammars / sizeof *inline_grammars; i++) {
    hs_grammar *g = gparse(inline_grammars[i][0]);
    for (int k = 0; k < 3; k++) {
      walk w = random_walk(g, 15 + trng_below(15), true, 0, inline_grammars[i][1]);
      assert_true(w.ended);
      assert_true(gmatch_n(g, w.text, w.len));
      free(w.text);
    }
    hs_grammar_destroy(g);
  }
}

static void test_mask_with_collections(void **state) {
  /* a cache budget of 2 KiB: the cache is rebuilt in the middle of nearly every mask walk */
  hs_grammar *g = gload("grammars/json.gbnf", NULL);
  trng_state = 99;
  for (int k = 0; k < 3; k++) {
    walk w = random_walk(g, 20, true, 2048, JSON_WAY_OUT);
    assert_true(w.ended);
    json_error_t e;
    json_t *j = json_loadb(w.text, w.len, 0, &e);
    if (!j) fail_msg("jansson refuses %s: %s", w.text, e.text);
    json_decref(j);
    free(w.text);
  }
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  s->ctx->budget = 2048;
  const char *prefix = "{\"key\": [\"a string with \\u00e9";
  assert_int_equal(hs_grammar_state_accept_bytes(s, prefix, strlen(prefix)), 0);
  uint64_t before = s->ctx->collections;
  check_mask(s, prefix);
  check_mask(s, prefix);
  assert_true(s->ctx->collections > before);
  hs_grammar_state_destroy(s);
  hs_grammar_destroy(g);
}

static void test_walks_give_valid_json(void **state) {
  hs_grammar *g = gload("grammars/json.gbnf", NULL);
  hs_grammar *any = gload("grammars/json.gbnf", "value");
  trng_state = 2024;
  size_t total = 0, longest = 0;
  for (int k = 0; k < 300; k++) {
    const hs_grammar *gg = k % 3 == 2 ? any : g;
    walk w = random_walk(gg, trng_below(80), false, 0, JSON_WAY_OUT);
    if (!w.ended) fail_msg("walk %d did not finish: %s", k, w.text);
    json_error_t e;
    json_t *j = json_loadb(w.text, w.len, gg == any ? JSON_DECODE_ANY : 0, &e);
    if (!j) fail_msg("walk %d: jansson refuses %s: %s", k, w.text, e.text);
    if (gg == g) assert_true(json_is_object(j));
    json_decref(j);
    total += w.len;
    if (w.len > longest) longest = w.len;
    free(w.text);
  }
  assert_true(longest > 40); /* the walks were not all trivial */
  assert_true(total > 3000);
  hs_grammar_destroy(g);
  hs_grammar_destroy(any);
}

/* ---- a schema, and a check of instances against it ---- */

static const char *person_schema =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":12},"
    "\"age\":{\"type\":\"integer\"},"
    "\"score\":{\"type\":\"number\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":5},\"maxItems\":3},"
    "\"role\":{\"enum\":[\"admin\",\"user\",null]},"
    "\"address\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"zip\":{\"type\":[\"string\",\"null\"]}},\"required\":[\"city\"]},"
    "\"ok\":{\"type\":\"boolean\"}},"
    "\"required\":[\"name\",\"age\"]}";

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

static void check_person(const char *text, size_t len) {
  json_error_t e;
  json_t *j = json_loadb(text, len, 0, &e);
  if (!j) fail_msg("jansson refuses %s: %s", text, e.text);
  assert_true(json_is_object(j));
  static const char *order[] = {"name", "age", "score", "tags", "role", "address", "ok"};
  size_t next = 0;
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    while (next < 7 && strcmp(order[next], key) != 0) next++;
    if (next == 7) fail_msg("extra or misordered property %s in %s", key, text);
    next++;
    if (!strcmp(key, "name")) {
      assert_true(json_is_string(v));
      size_t n = utf8_chars(json_string_value(v));
      assert_true(n >= 1 && n <= 12);
    } else if (!strcmp(key, "age")) {
      assert_true(json_is_integer(v));
    } else if (!strcmp(key, "score")) {
      assert_true(json_is_number(v));
    } else if (!strcmp(key, "tags")) {
      assert_true(json_is_array(v) && json_array_size(v) <= 3);
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) {
        assert_true(json_is_string(x));
        assert_true(utf8_chars(json_string_value(x)) <= 5);
      }
    } else if (!strcmp(key, "role")) {
      assert_true(json_is_null(v) || (json_is_string(v) && (!strcmp(json_string_value(v), "admin") ||
                                                            !strcmp(json_string_value(v), "user"))));
    } else if (!strcmp(key, "address")) {
      assert_true(json_is_object(v));
      json_t *city = json_object_get(v, "city"), *zip = json_object_get(v, "zip");
      assert_true(json_is_string(city));
      assert_true(!zip || json_is_string(zip) || json_is_null(zip));
      assert_int_equal(json_object_size(v), 1 + (zip != NULL));
    } else {
      assert_true(json_is_boolean(v));
    }
  }
  assert_non_null(json_object_get(j, "name"));
  assert_non_null(json_object_get(j, "age"));
  json_decref(j);
}

static void test_schema_walks(void **state) {
  hs_grammar *g = NULL;
  assert_int_equal(hs_grammar_from_json_schema(person_schema, strlen(person_schema), &g), 0);
  trng_state = 31337;
  for (int k = 0; k < 4; k++) {
    walk w = random_walk(g, 10 + trng_below(30), true, 0, JSON_WAY_OUT);
    assert_true(w.ended);
    check_person(w.text, w.len);
    free(w.text);
  }
  size_t with_optional = 0;
  for (int k = 0; k < 300; k++) {
    walk w = random_walk(g, trng_below(120), false, 0, JSON_WAY_OUT);
    if (!w.ended) fail_msg("walk %d did not finish: %s", k, w.text);
    check_person(w.text, w.len);
    with_optional += strstr(w.text, "\"tags\"") || strstr(w.text, "\"address\"");
    free(w.text);
  }
  assert_true(with_optional > 10);
  hs_grammar_destroy(g);
}

/* ---- eog, accept errors, vocabularies ---- */

static void test_eog_and_accept(void **state) {
  hs_grammar *g = gparse("root ::= \"ab\" \"c\"?");
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  uint8_t *m = malloc(V.n);
  /* eog before completion is refused, and changes nothing */
  assert_int_equal(hs_grammar_state_accept(s, GV, 1), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "end-of-generation token 1 before the text is complete");
  /* control token, out of range, not allowed */
  assert_int_equal(hs_grammar_state_accept(s, GV, 0), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "control token 0");
  assert_int_equal(hs_grammar_state_accept(s, GV, -1), HS_EINVAL);
  assert_int_equal(hs_grammar_state_accept(s, GV, (int32_t)V.n), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "outside the vocabulary");
  size_t tb = 3 + 'b';
  assert_int_equal(hs_grammar_state_accept(s, GV, (int32_t)tb), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "token 101 is not allowed here (byte 0 of 1 (0x62)");
  assert_int_equal(hs_grammar_state_accept(s, NULL, 3), HS_EINVAL);
  assert_int_equal(hs_grammar_state_mask(s, NULL, m), HS_EINVAL);
  assert_int_equal(hs_grammar_state_mask(NULL, GV, m), HS_EINVAL);
  assert_int_equal(hs_grammar_state_mask(s, GV, NULL), HS_EINVAL);
  /* "ab" by tokens: then eog and "c" are allowed */
  assert_int_equal(hs_grammar_state_accept(s, GV, 3 + 'a'), 0);
  assert_int_equal(hs_grammar_state_accept(s, GV, 3 + 'b'), 0);
  assert_true(hs_grammar_state_is_complete(s));
  int n = hs_grammar_state_mask(s, GV, m);
  assert_true(m[1] && m[2] && m[3 + 'c'] && !m[0] && !m[3 + 'b']);
  int cs = 0; /* tokens whose text is "c": the byte token, maybe a random word too */
  for (size_t t = 3; t < V.n; t++) cs += V.len[t] == 1 && V.tok[t][0] == 'c';
  assert_int_equal(n, 2 + cs);
  /* the eog token with text ("</s>") is handled as eog, not as its bytes */
  assert_int_equal(hs_grammar_state_accept(s, GV, 2), 0);
  assert_true(hs_grammar_state_is_done(s));
  n = hs_grammar_state_mask(s, GV, m);
  assert_int_equal(n, 2);
  assert_true(m[1] && m[2]);
  assert_int_equal(hs_grammar_state_accept(s, GV, 3 + 'c'), HS_EINVAL); /* nothing after eog */
  assert_int_equal(hs_grammar_state_accept(s, GV, 1), 0);              /* eog again is fine */
  hs_grammar_state_destroy(s);
  free(m);
  hs_grammar_destroy(g);
}

static void test_vocab(void **state) {
  const char *toks[] = {"a", "ab", "", "ab", "b", NULL, "\xE2\x82", "\xAC"};
  size_t lens[] = {1, 2, 0, 2, 1, 0, 2, 1};
  bool eog[] = {0, 0, 0, 0, 0, 1, 0, 0};
  hs_grammar_vocab *v = NULL;
  assert_int_equal(hs_grammar_vocab_create(toks, lens, eog, 8, &v), 0);
  assert_int_equal(hs_grammar_vocab_size(v), 8);
  assert_int_equal(hs_grammar_vocab_size(NULL), 0);
  hs_grammar *g = gparse("root ::= \"a\" \"b\"* \"€\"?");
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  uint8_t m[8];
  assert_int_equal(hs_grammar_state_mask(s, v, m), 3);
  uint8_t want0[8] = {1, 1, 0, 1, 0, 0, 0, 0}; /* a, ab and its duplicate */
  assert_memory_equal(m, want0, 8);
  assert_int_equal(hs_grammar_state_accept(s, v, 3), 0); /* "ab" */
  assert_int_equal(hs_grammar_state_mask(s, v, m), 3);
  uint8_t want1[8] = {0, 0, 0, 0, 1, 1, 1, 0}; /* b, eog, the first two bytes of € */
  assert_memory_equal(m, want1, 8);
  assert_int_equal(hs_grammar_state_accept(s, v, 6), 0);
  assert_int_equal(hs_grammar_state_mask(s, v, m), 1);
  uint8_t want2[8] = {0, 0, 0, 0, 0, 0, 0, 1}; /* only the last byte of € */
  assert_memory_equal(m, want2, 8);
  hs_grammar_state_destroy(s);
  hs_grammar_destroy(g);
  hs_grammar_vocab_destroy(v);
  hs_grammar_vocab_destroy(NULL);
  /* a vocabulary without eog tokens (eog NULL) */
  assert_int_equal(hs_grammar_vocab_create(toks, lens, NULL, 8, &v), 0);
  hs_grammar_vocab_destroy(v);
  /* errors */
  assert_int_equal(hs_grammar_vocab_create(toks, lens, eog, 0, &v), HS_EINVAL);
  assert_null(v);
  assert_int_equal(hs_grammar_vocab_create(toks, lens, eog, (size_t)HS_GRAMMAR_MAX_VOCAB + 1, &v), HS_EINVAL);
  assert_int_equal(hs_grammar_vocab_create(NULL, lens, eog, 8, &v), HS_EINVAL);
  assert_int_equal(hs_grammar_vocab_create(toks, NULL, eog, 8, &v), HS_EINVAL);
  assert_int_equal(hs_grammar_vocab_create(toks, lens, eog, 8, NULL), HS_EINVAL);
  size_t bad_lens[] = {1, 2, 0, 2, 1, 3, 2, 1}; /* token 5: NULL bytes with a length */
  assert_int_equal(hs_grammar_vocab_create(toks, bad_lens, eog, 8, &v), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "token 5 has NULL bytes");
  size_t long_lens[] = {1, 70000, 0, 2, 1, 0, 2, 1};
  assert_int_equal(hs_grammar_vocab_create(toks, long_lens, eog, 8, &v), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "token 1 has 70000 bytes");
}

static void test_out_of_memory(void **state) {
  int failures = 0;
  for (long k = 1;; k++) {
    hs_grammar_vocab *v = NULL;
    hs_alloc_fail_after(k);
    int rc = hs_grammar_vocab_create((const char *const *)V.tok, V.len, V.eog, V.n, &v);
    hs_alloc_fail_after(0);
    if (rc) {
      assert_int_equal(rc, HS_ENOMEM);
      assert_null(v);
      assert_int_equal(live_blocks, base_blocks);
      failures++;
      continue;
    }
    hs_grammar_vocab_destroy(v);
    break;
  }
  assert_true(failures >= 5);
  /* mask on a state with a cold cache: every allocation of the walk may fail */
  hs_grammar *g = gload("grammars/json.gbnf", NULL);
  uint8_t *want = malloc(V.n), *m = malloc(V.n);
  const char *prefix = "{\"k\": [1, \"s";
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, prefix, strlen(prefix)), 0);
  int n_want = hs_grammar_state_mask(s, GV, want);
  hs_grammar_state_destroy(s);
  failures = 0;
  for (long k = 1;; k++) {
    assert_int_equal(hs_grammar_state_create(g, &s), 0);
    assert_int_equal(hs_grammar_state_accept_bytes(s, prefix, strlen(prefix)), 0);
    hs_alloc_fail_after(k);
    int n = hs_grammar_state_mask(s, GV, m);
    hs_alloc_fail_after(0);
    if (n < 0) {
      assert_int_equal(n, HS_ENOMEM);
      failures++;
      /* the state is still where it was */
      assert_int_equal(hs_grammar_state_mask(s, GV, m), n_want);
      assert_memory_equal(m, want, V.n);
      hs_grammar_state_destroy(s);
      continue;
    }
    assert_int_equal(n, n_want);
    assert_memory_equal(m, want, V.n);
    hs_grammar_state_destroy(s);
    break;
  }
  assert_true(failures >= 3);
  free(want);
  free(m);
  hs_grammar_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_mask_equals_brute_force, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_mask_with_collections, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_walks_give_valid_json, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_schema_walks, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_eog_and_accept, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_vocab, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_out_of_memory, test_setup, test_teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
