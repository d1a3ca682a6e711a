/* test_grammar_match.c: the matcher (src/engine/grammar_match.c) through hs_grammar_state.
 *
 * Accepted and refused texts for the shipped grammars (JSON, arithmetic, task list) and for
 * grammars about repetition bounds, classes and Unicode; UTF-8 split at every byte across
 * accept calls, and every kind of invalid UTF-8; all-or-nothing accepts (a refused text leaves
 * the state as it was); clones; completion and "done"; the bound on parse stacks for an
 * exponentially ambiguous grammar; ambiguity that deduplicates; deep nesting with a tiny cache
 * budget, so that the cache is collected many times in the middle of accepts; and out-of-memory
 * on every allocation of create, clone and accept. */
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

static int group_setup(void **state) {
  hs_alloc_set_hooks(&counting_hooks);
  return make_tmpdir("hs_gmatch");
}

static int group_teardown(void **state) { return remove_tmpdir_and_hooks(); }


static void test_json(void **state) {
  hs_grammar *g = gload("grammars/json.gbnf", NULL);
  const char *yes[] = {
      "{}",
      "{ }",
      "{\"a\":1}",
      "{\"a\": [1, 2.5, -0.25e+10, 0, -0, 1E-2, true, false, null]}",
      "{\"s\": \"plain \\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9 \\uD83D\\uDE00 é😀\"}",
      "{\n  \"nested\": {\n    \"deep\": [[], {}, [{}]]\n  },\n  \"k\": \"v\"\n}",
      "{\"a\" : \"b\" , \"c\" :\"d\"}",
      "{\"n\": 1234567890123456, \"f\": 0.1234567890123456, \"e\": 1e99}",
      "{\"\": \"\"}",
      "{\"tab\": \"\x7f\"}",
  };
  const char *no[] = {
      "",
      "[]",               /* root is an object */
      " {}",              /* nothing before the first token */
      "{} ",              /* nor after the last */
      "{\"a\":}",
      "{\"a\":1,}",
      "{a:1}",
      "{\"a\":01}",
      "{\"a\":1.}",
      "{\"a\":.5}",
      "{\"a\":+1}",
      "{\"a\":1e}",
      "{\"a\":12345678901234567}",    /* 17 digits */
      "{\"a\":1e100}",                /* 3 exponent digits */
      "{\"a\":0.12345678901234567}",  /* 17 decimals */
      "{\"a\":\"\\u0000\"}",
      "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\udc00\"}",
      "{\"a\":\"\\ud800\\u0041\"}",
      "{\"a\":\"\\x41\"}",
      "{\"a\":\"line\nbreak\"}",
      "{\"a\":\"\t\"}",
      "{\"a\":tru}",
      "{\"a\":nul}",
      "{\"a\":[1 2]}",
      "{\"a\":1}}",
      "{   \"a\":1}",                   /* three blanks: one space or a newline and indent only */
      "{\n                      \"a\":1}", /* a newline and 22 spaces */
  };
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) assert_accepts(g, yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof *no; i++) assert_refuses(g, no[i]);
  hs_grammar_destroy(g);
}

static void test_arithmetic_and_todo(void **state) {
  hs_grammar *g = gload("grammars/arithmetic.gbnf", NULL);
  const char *yes[] = {"1", "2 * (3.5 - x) / 4", "-(a+b)*c_1", "((((1))))", "1+2+3+4-5", "x / -y"};
  const char *no[] = {"", "1 +", "(1", "1)", "1 ++ 2", "1  + 2", "A", "1.", "2 (3)"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) assert_accepts(g, yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof *no; i++) assert_refuses(g, no[i]);
  hs_grammar_destroy(g);
  g = gload("grammars/todo.gbnf", NULL);
  assert_accepts(g, "- [x] write the parser (high)\n- [ ] test it under ASan (normal)\n");
  assert_accepts(g, "- [ ] é 😀 (low)\n");
  assert_refuses(g, "");
  assert_refuses(g, "- [x] no priority\n");
  assert_refuses(g, "- [y] bad box (low)\n");
  assert_refuses(g, "- [x] (low)\n");
  assert_refuses(g, "- [x] a (b) c (low)\n");
  hs_grammar_destroy(g);
}

static void test_bounds_and_classes(void **state) {
  hs_grammar *g = gparse("root ::= [a-z]{2,3} \"-\" [^a-z\\n]{1,} \"-\" [\\u0400-\\u04FF]{0,2}");
  assert_accepts(g, "ab-X-");
  assert_accepts(g, "abc-XY 1é-жи");
  assert_refuses(g, "a-X-");
  assert_refuses(g, "abcd-X-");
  assert_refuses(g, "ab--");
  assert_refuses(g, "ab-x-");
  assert_refuses(g, "ab-X-жиж");
  assert_refuses(g, "ab-X-a");
  hs_grammar_destroy(g);
}

/* Feeds text split at every pair of cut points; each split must give the same verdict as the
 * whole, and a partial character must leave the state incomplete. */
static void check_splits(const hs_grammar *g, const char *text, bool ok) {
  size_t n = strlen(text);
  for (size_t a = 0; a <= n; a++) {
    for (size_t b = a; b <= n; b++) {
      hs_grammar_state *s;
      assert_int_equal(hs_grammar_state_create(g, &s), 0);
      int r1 = hs_grammar_state_accept_bytes(s, text, a);
      int r2 = r1 ? r1 : hs_grammar_state_accept_bytes(s, text + a, b - a);
      int r3 = r2 ? r2 : hs_grammar_state_accept_bytes(s, text + b, n - b);
      bool whole = r3 == 0 && hs_grammar_state_is_complete(s);
      if (whole != ok) fail_msg("\"%s\" cut at %zu and %zu: %d", text, a, b, whole);
      hs_grammar_state_destroy(s);
    }
  }
}

static void test_utf8_across_tokens(void **state) {
  hs_grammar *g = gparse("root ::= \"<\" [é€😀] [^x]* \">\"");
  check_splits(g, "<é>", true);
  check_splits(g, "<€ж>", true);
  check_splits(g, "<😀😀🎉>", true);
  check_splits(g, "<ж>", false);
  check_splits(g, "<😀x>", false);
  /* a partial character is not complete, even where the grammar could end */
  hs_grammar_destroy(g);
  g = gparse("root ::= \"a\" \"€\"?");
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "a", 1), 0);
  assert_true(hs_grammar_state_is_complete(s));
  assert_int_equal(hs_grammar_state_accept_bytes(s, "\xE2\x82", 2), 0);
  assert_false(hs_grammar_state_is_complete(s));
  /* only the right continuation byte is allowed now */
  assert_int_equal(hs_grammar_state_accept_bytes(s, "\xAD", 1), HS_EINVAL);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "b", 1), HS_EINVAL);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "\xAC", 1), 0);
  assert_true(hs_grammar_state_is_complete(s));
  assert_true(hs_grammar_state_is_done(s));
  hs_grammar_state_destroy(s);
  /* a lead byte whose characters the grammar cannot take is refused at once */
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "a\xC3", 2), HS_EINVAL); /* é's lead: no */
  assert_int_equal(hs_grammar_state_accept_bytes(s, "a\xE2\x81", 3), HS_EINVAL); /* U+2040..: no */
  assert_int_equal(hs_grammar_state_accept_bytes(s, "a\xE2", 2), 0);
  hs_grammar_state_destroy(s);
  hs_grammar_destroy(g);
}

static void test_invalid_utf8(void **state) {
  hs_grammar *g = gparse("root ::= .*");
  const char *bad[] = {
      "\x80",             /* a continuation byte alone */
      "\xC0\x80",         /* overlong NUL */
      "\xC1\xBF",         /* overlong */
      "\xE0\x80\x80",     /* overlong 3-byte */
      "\xE0\x9F\xBF",     /* overlong 3-byte, just below U+0800 */
      "\xED\xA0\x80",     /* surrogate U+D800 */
      "\xED\xBF\xBF",     /* surrogate U+DFFF */
      "\xF0\x8F\xBF\xBF", /* overlong 4-byte */
      "\xF4\x90\x80\x80", /* above U+10FFFF */
      "\xF5\x80\x80\x80", /* bad lead */
      "\xFF",
      "\xE2\x82" "a",        /* cut short by ASCII */
      "\xE2\xE2\x82\xAC", /* cut short by a lead */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    hs_grammar_state *s;
    assert_int_equal(hs_grammar_state_create(g, &s), 0);
    if (hs_grammar_state_accept_bytes(s, bad[i], strlen(bad[i])) != HS_EINVAL)
      fail_msg("invalid UTF-8 #%zu accepted", i);
    hs_grammar_state_destroy(s);
  }
  const char *good[] = {"\x7F", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF",
                        "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) assert_accepts(g, good[i]);
  assert_true(gmatch_n(g, "a\0b", 3)); /* NUL is a character like any other */
  hs_grammar_destroy(g);
}

static void test_all_or_nothing_and_clone(void **state) {
  hs_grammar *g = gparse("root ::= \"ab\" [0-9]+ \"!\"");
  hs_grammar_state *s, *c;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "ab1", 3), 0);
  /* "23x": the first two bytes would pass, the third not: nothing is taken */
  assert_int_equal(hs_grammar_state_accept_bytes(s, "23x", 3), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "byte 2 of 3 (0x78) is not allowed here");
  assert_int_equal(hs_grammar_state_clone(s, &c), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "!", 1), 0); /* still right after "ab1" */
  assert_true(hs_grammar_state_is_done(s));
  /* the clone is independent and at the same place */
  assert_false(hs_grammar_state_is_complete(c));
  assert_int_equal(hs_grammar_state_accept_bytes(c, "99", 2), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(c, "!", 1), 0);
  assert_true(hs_grammar_state_is_done(c));
  assert_int_equal(hs_grammar_state_accept_bytes(c, "!", 1), HS_EINVAL);
  assert_int_equal(hs_grammar_state_accept_bytes(c, NULL, 0), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(c, NULL, 1), HS_EINVAL);
  assert_int_equal(hs_grammar_state_accept_bytes(NULL, "a", 1), HS_EINVAL);
  hs_grammar_state_destroy(s);
  hs_grammar_state_destroy(c);
  assert_int_equal(hs_grammar_state_create(NULL, &s), HS_EINVAL);
  assert_int_equal(hs_grammar_state_create(g, NULL), HS_EINVAL);
  assert_int_equal(hs_grammar_state_clone(NULL, &s), HS_EINVAL);
  assert_false(hs_grammar_state_is_complete(NULL));
  assert_false(hs_grammar_state_is_done(NULL));
  hs_grammar_state_destroy(NULL);
  hs_grammar_destroy(NULL);
  hs_grammar_destroy(g);
}

static void test_complete_and_done(void **state) {
  hs_grammar *g = gparse("root ::= \"a\"+ | \"b\"");
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_false(hs_grammar_state_is_complete(s));
  assert_false(hs_grammar_state_is_done(s));
  assert_int_equal(hs_grammar_state_accept_bytes(s, "aa", 2), 0);
  assert_true(hs_grammar_state_is_complete(s));
  assert_false(hs_grammar_state_is_done(s)); /* more a's may follow */
  hs_grammar_state_destroy(s);
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "b", 1), 0);
  assert_true(hs_grammar_state_is_done(s));
  hs_grammar_state_destroy(s);
  hs_grammar_destroy(g);
  /* the empty grammar is complete and done at once */
  g = gparse("root ::= \"\"");
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_true(hs_grammar_state_is_done(s));
  assert_int_equal(hs_grammar_state_accept_bytes(s, "x", 1), HS_EINVAL);
  hs_grammar_state_destroy(s);
  hs_grammar_destroy(g);
}

static void test_ambiguity(void **state) {
  /* each "a" may be closed by "b" or by "c": after n a's the 2^n sequences of closers to come
   * are different stacks, each under 3 tops (another "a" in two ways, or its closer) */
  hs_grammar *g = gparse("root ::= r\nr ::= \"a\" r \"b\" | \"a\" r \"c\" | \"\"");
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "aaaaaaaaaa", 10), 0); /* 3072 stacks */
  assert_int_equal(s->ctx->sets[s->ctx->ds[s->cur].set].n, 3072);
  assert_int_equal(hs_grammar_state_accept_bytes(s, "a", 1), HS_ENOSPC);    /* 6144: too many */
  assert_msg_has(hs_grammar_last_error(), "more than 4096 parse stacks");
  /* the state is as it was: it can still finish */
  assert_int_equal(hs_grammar_state_accept_bytes(s, "bcbcbcbcbb", 10), 0);
  assert_true(hs_grammar_state_is_complete(s));
  hs_grammar_state_destroy(s);
  hs_grammar_destroy(g);
  /* ambiguity that converges stays small: identical stacks are one */
  g = gparse("root ::= (\"a\" | \"a\" | [a-c])* (\"b\" | [b])");
  char *text = malloc(20002);
  memset(text, 'a', 20000);
  text[20000] = 'b';
  text[20001] = 0;
  assert_accepts(g, text);
  free(text);
  hs_grammar_destroy(g);
  /* an ambiguous state with 10000 start positions is refused when it is created */
  g = gparse("root ::= (\"a\"?){10000} \"z\"");
  assert_int_equal(hs_grammar_state_create(g, &s), HS_ENOSPC);
  assert_null(s);
  hs_grammar_destroy(g);
}

static void test_deep_nesting_and_collection(void **state) {
  hs_grammar *g = gparse("root ::= \"(\" root \")\" | \"[\" root \"]\" | \"x\"");
  enum { DEPTH = 20000 };
  char *text = malloc(2 * DEPTH + 2);
  for (int i = 0; i < DEPTH; i++) {
    text[i] = i % 3 ? '(' : '[';
    text[2 * DEPTH - i] = i % 3 ? ')' : ']';
  }
  text[DEPTH] = 'x';
  text[2 * DEPTH + 1] = 0;
  hs_grammar_state *s;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  s->ctx->budget = 64 << 10; /* a tiny cache: it is collected many times, mid-accept too */
  /* byte by byte (collections between accepts) and then in big pieces (during them) */
  for (int i = 0; i < DEPTH; i++) assert_int_equal(hs_grammar_state_accept_bytes(s, text + i, 1), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, text + DEPTH, DEPTH + 1), 0);
  assert_true(hs_grammar_state_is_done(s));
  assert_true(s->ctx->collections > 10);
  hs_grammar_state_destroy(s);
  /* a mismatched bracket deep inside is found */
  text[2 * DEPTH - 5] = text[2 * DEPTH - 5] == ')' ? ']' : ')';
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  s->ctx->budget = 64 << 10;
  assert_int_equal(hs_grammar_state_accept_bytes(s, text, 2 * DEPTH + 1), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "byte 39995 of 40001");
  /* and the state is where it started */
  assert_int_equal(hs_grammar_state_accept_bytes(s, "x", 1), 0);
  assert_true(hs_grammar_state_is_done(s));
  hs_grammar_state_destroy(s);
  free(text);
  hs_grammar_destroy(g);
  /* long right recursion runs in constant depth */
  g = gparse("root ::= \"a\" root | \"b\"");
  text = malloc(200002);
  memset(text, 'a', 200000);
  text[200000] = 'b';
  text[200001] = 0;
  assert_int_equal(hs_grammar_state_create(g, &s), 0);
  assert_int_equal(hs_grammar_state_accept_bytes(s, text, 200001), 0);
  assert_true(hs_grammar_state_is_done(s));
  assert_true(s->ctx->n_nodes < 16);
  hs_grammar_state_destroy(s);
  free(text);
  hs_grammar_destroy(g);
}

static void test_out_of_memory(void **state) {
  hs_grammar *g = gload("grammars/json.gbnf", NULL);
  const char *text = "{\"a\": [1, 2.5, \"é😀\", {\"b\": null}], \"c\": tr";
  long base = live_blocks, failures = 0;
  for (long k = 1;; k++) {
    hs_grammar_state *s = NULL, *c = NULL;
    hs_alloc_fail_after(k);
    int rc = hs_grammar_state_create(g, &s);
    if (!rc) rc = hs_grammar_state_accept_bytes(s, text, strlen(text));
    if (!rc) rc = hs_grammar_state_clone(s, &c);
    if (!rc) rc = hs_grammar_state_accept_bytes(c, "ue}", 3);
    hs_alloc_fail_after(0);
    if (rc) {
      assert_int_equal(rc, HS_ENOMEM);
      /* whatever failed, a state that exists is still usable where it was */
      if (s) {
        hs_grammar_state *t;
        assert_int_equal(hs_grammar_state_clone(s, &t), 0);
        hs_grammar_state_destroy(t);
      }
      if (c) {
        assert_int_equal(hs_grammar_state_accept_bytes(c, "ue}", 3), 0);
        assert_true(hs_grammar_state_is_done(c));
      }
      hs_grammar_state_destroy(s);
      hs_grammar_state_destroy(c);
      assert_int_equal(live_blocks, base);
      failures++;
      continue;
    }
    assert_true(hs_grammar_state_is_done(c));
    hs_grammar_state_destroy(s);
    hs_grammar_state_destroy(c);
    break;
  }
  assert_true(failures > 10);
  assert_int_equal(live_blocks, base);
  hs_grammar_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_json, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_arithmetic_and_todo, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_bounds_and_classes, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_utf8_across_tokens, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_invalid_utf8, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_all_or_nothing_and_clone, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_complete_and_done, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_ambiguity, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_deep_nesting_and_collection, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_out_of_memory, reset_live_blocks, fail_on_leaked_blocks),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
