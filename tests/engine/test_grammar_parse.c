/* test_grammar_parse.c: the GBNF parser (src/engine/grammar_parse.c).
 *
 * Every construct of the syntax, each checked by the texts it accepts and refuses (so what is
 * tested is the meaning, not an internal shape); every error, with its line and column; left
 * recursion in its direct, indirect, nullable-prefix and repetition forms; rules that can never
 * finish; the nesting, repetition and size limits; and out-of-memory on every allocation of a
 * parse, with a counting allocator proving nothing leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/counting_alloc.h"

#include "engine/grammar_testlib.h"

static int group_setup(void **state) {
  hs_alloc_set_hooks(&counting_hooks);
  return make_tmpdir("hs_gparse");
}

static int group_teardown(void **state) { return remove_tmpdir_and_hooks(); }


/* ---- constructs ---- */

static void test_literals_and_escapes(void **state) {
  hs_grammar *g = gparse("root ::= \"a\\n\\t\\r\\\\\\\"\\[\\]\\-\\x41\\u00e9\\U0001F600z\"");
  assert_accepts(g, "a\n\t\r\\\"[]-A\xC3\xA9\xF0\x9F\x98\x80z");
  assert_refuses(g, "a\n\t\r\\\"[]-A\xC3\xA9\xF0\x9F\x98\x80");
  assert_refuses(g, "a");
  hs_grammar_destroy(g);
  g = gparse("root ::= \"héllo wörld 你好\"");
  assert_accepts(g, "héllo wörld 你好");
  assert_refuses(g, "hello world");
  hs_grammar_destroy(g);
  g = gparse("root ::= \"\" \"x\" \"\"");
  assert_accepts(g, "x");
  assert_refuses(g, "");
  hs_grammar_destroy(g);
  g = gparse("root ::= \"#not a comment\" # but this is");
  assert_accepts(g, "#not a comment");
  hs_grammar_destroy(g);
}

static void test_classes(void **state) {
  hs_grammar *g = gparse("root ::= [a-cx-z0-9_]");
  const char *yes[] = {"a", "b", "c", "x", "z", "0", "5", "9", "_"};
  const char *no[] = {"d", "w", "A", "-", "", "ab", "é"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) assert_accepts(g, yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof *no; i++) assert_refuses(g, no[i]);
  hs_grammar_destroy(g);
  g = gparse("root ::= [^a-z\\n]+");
  assert_accepts(g, "ABC 123 é€😀");
  assert_refuses(g, "aBC");
  assert_refuses(g, "AB\n");
  assert_refuses(g, "");
  hs_grammar_destroy(g);
  /* escapes inside classes, a ']' and a '-' as members, '-' at either end */
  g = gparse("root ::= [\\]\\[\\-\\\\\\x41\\u00e9] [-a] [b-]");
  assert_accepts(g, "]-b");
  assert_accepts(g, "[a-");
  assert_accepts(g, "\\ab");
  assert_accepts(g, "A-b");
  assert_accepts(g, "é--");
  assert_refuses(g, "B-b");
  assert_refuses(g, "]c-");
  hs_grammar_destroy(g);
  /* Unicode ranges: Greek, and a range of emoji given with \U */
  g = gparse("root ::= [α-ω]+ [\\U0001F600-\\U0001F64F]");
  assert_accepts(g, "αβγω😀");
  assert_accepts(g, "λ🙏");
  assert_refuses(g, "αβγ🚀");
  assert_refuses(g, "Ωα😀");
  hs_grammar_destroy(g);
  /* overlapping and adjacent ranges merge; negation over merged ranges */
  g = gparse("root ::= [^a-fc-hi-k]");
  assert_accepts(g, "l");
  assert_accepts(g, "`");
  assert_refuses(g, "a");
  assert_refuses(g, "h");
  assert_refuses(g, "k");
  hs_grammar_destroy(g);
  /* a negated class still never matches a surrogate or anything above U+10FFFF, and
   * includes U+10FFFF and U+0 */
  g = gparse("root ::= [^a]");
  assert_true(gmatch_n(g, "\0", 1));
  assert_accepts(g, "\xF4\x8F\xBF\xBF");
  assert_refuses(g, "\xED\xA0\x80");
  assert_refuses(g, "\xF4\x90\x80\x80");
  hs_grammar_destroy(g);
}

static void test_any(void **state) {
  hs_grammar *g = gparse("root ::= \"<\" . . . \">\"");
  assert_accepts(g, "<abc>");
  assert_accepts(g, "<\n\t >");
  assert_accepts(g, "<é😀你>");
  assert_refuses(g, "<ab>");
  assert_refuses(g, "<abcd>");
  hs_grammar_destroy(g);
}

static void test_sequences_alternatives_groups(void **state) {
  hs_grammar *g = gparse("root ::= \"a\" (\"b\" | \"c\" (\"d\" | \"e\")) \"f\" | \"g\"");
  assert_accepts(g, "abf");
  assert_accepts(g, "acdf");
  assert_accepts(g, "acef");
  assert_accepts(g, "g");
  assert_refuses(g, "acf");
  assert_refuses(g, "ag");
  assert_refuses(g, "abfg");
  hs_grammar_destroy(g);
  /* an empty alternative, first or last or in a group */
  g = gparse("root ::= | \"x\" (\"y\" | ) \"z\"");
  assert_accepts(g, "");
  assert_accepts(g, "xz");
  assert_accepts(g, "xyz");
  assert_refuses(g, "x");
  hs_grammar_destroy(g);
  g = gparse("root ::= ()\"a\"()");
  assert_accepts(g, "a");
  hs_grammar_destroy(g);
}

static void test_repetition(void **state) {
  struct {
    const char *grammar;
    const char *yes[6];
    const char *no[6];
  } cases[] = {
      {"root ::= \"a\"*", {"", "a", "aaaaaaaaaa"}, {"b", "ab"}},
      {"root ::= \"a\"+", {"a", "aaaa"}, {"", "b"}},
      {"root ::= \"a\"? \"b\"", {"b", "ab"}, {"aab", "a", ""}},
      {"root ::= \"ab\"{3}", {"ababab"}, {"abab", "abababab", "aba"}},
      {"root ::= [0-9]{2,4}", {"12", "123", "1234"}, {"1", "12345", ""}},
      {"root ::= \"x\"{2,}", {"xx", "xxx", "xxxxxxxxxxxxxx"}, {"x", ""}},
      {"root ::= \"x\"{0,3}", {"", "x", "xx", "xxx"}, {"xxxx"}},
      {"root ::= \"x\"{0}", {""}, {"x"}},
      {"root ::= \"x\"{0,0} \"y\"", {"y"}, {"xy"}},
      {"root ::= \"x\" { 1 , 2 }", {"x", "xx"}, {"", "xxx"}},
      {"root ::= (\"a\" | \"bc\")* \"d\"", {"d", "ad", "bcd", "abcabcad"}, {"", "bd", "acd"}},
      {"root ::= (\"a\"{2}){2}", {"aaaa"}, {"aa", "aaa", "aaaaa"}},
      {"root ::= \"a\"{2}?", {"", "aa"}, {"a", "aaa"}},
      {"root ::= (\"a\" \"b\"?)+", {"a", "ab", "aab", "abab"}, {"b", ""}},
      {"root ::= x{3}\nx ::= \"a\" | \"b\"", {"aba", "bbb"}, {"ab", "abab"}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hs_grammar *g = gparse(cases[i].grammar);
    for (size_t k = 0; k < 6 && cases[i].yes[k]; k++) {
      if (!gmatch(g, cases[i].yes[k]))
        fail_msg("%s refuses \"%s\"", cases[i].grammar, cases[i].yes[k]);
    }
    for (size_t k = 0; k < 6 && cases[i].no[k]; k++) {
      if (gmatch(g, cases[i].no[k])) fail_msg("%s accepts \"%s\"", cases[i].grammar, cases[i].no[k]);
    }
    hs_grammar_destroy(g);
  }
  /* the largest bounds */
  hs_grammar *g = gparse("root ::= [a-z]{0,10000} \"!\"");
  char *buf = malloc(10003);
  memset(buf, 'q', 10000);
  strcpy(buf + 10000, "!");
  assert_accepts(g, buf);
  memset(buf, 'q', 10001);
  strcpy(buf + 10001, "!");
  assert_refuses(g, buf);
  free(buf);
  hs_grammar_destroy(g);
}

static void test_rules_comments_newlines(void **state) {
  const char *text =
      "# a grammar with comments everywhere\n"
      "\n"
      "root ::= greeting \" \" Name-2_x # a reference used before its definition\n"
      "greeting ::=\n"
      "    \"hello\" |  # after '::=' or '|' a rule goes on on the next line\n"
      "    \"hi\" |\n"
      "    \"hey\"\n"
      "Name-2_x ::= (\n"
      "  [A-Z]   # inside parentheses newlines are free\n"
      "  [a-z]*\n"
      ")\n"
      "unused ::= \"never\" undefined-is-fine-only-if-defined\n"
      "undefined-is-fine-only-if-defined ::= \"x\"\n";
  hs_grammar *g = gparse(text);
  assert_accepts(g, "hello World");
  gparse_fails("root ::= \"a\"\n  | \"b\"", "line 2, column 3: expected a rule name, found '|'");
  assert_accepts(g, "hi W");
  assert_accepts(g, "hey Bob");
  assert_refuses(g, "hello world");
  assert_refuses(g, "never");
  hs_grammar_destroy(g);
  /* CRLF line endings */
  g = gparse("root ::= a b\r\na ::= \"1\"\r\nb ::= \"2\" |\r\n  \"3\"\r\n");
  assert_accepts(g, "12");
  assert_accepts(g, "13");
  hs_grammar_destroy(g);
  /* a start rule other than root */
  const char *two = "root ::= \"r\"\nother ::= \"o\" root\n";
  assert_int_equal(hs_grammar_parse(two, strlen(two), "other", &g), 0);
  assert_accepts(g, "or");
  assert_refuses(g, "r");
  hs_grammar_destroy(g);
  /* no text after the last newline, or none at all */
  g = gparse("root ::= \"a\"");
  assert_accepts(g, "a");
  hs_grammar_destroy(g);
}

static void test_shipped_grammars_compile(void **state) {
  const char *files[] = {"grammars/json.gbnf", "grammars/arithmetic.gbnf", "grammars/todo.gbnf"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    hs_grammar *g = gload(files[i], NULL);
    hs_grammar_destroy(g);
  }
  hs_grammar *g = gload("grammars/json.gbnf", "value");
  assert_accepts(g, "[1, \"two\", {\"three\": 3.0}]");
  assert_accepts(g, "-0.5e-10");
  hs_grammar_destroy(g);
}

/* ---- errors ---- */

static void test_syntax_errors(void **state) {
  struct {
    const char *text, *msg;
  } cases[] = {
      {"root ::= \"abc", "line 1, column 10: unterminated string literal"},
      {"root ::= \"abc\n\"", "line 1, column 10: unterminated string literal"},
      {"a ::= \"x\"\nroot ::= [a-z", "line 2, column 10: unterminated character class"},
      {"root ::= [a-z\n]", "line 1, column 10: unterminated character class"},
      {"root ::= \"a\\qb\"", "line 1, column 12: unknown escape"},
      {"root ::= [\\w]", "line 1, column 11: unknown escape"},
      {"root ::= \"\\x4\"", "line 1, column 11: expected 2 hexadecimal digits after '\\x'"},
      {"root ::= \"\\u12g4\"", "line 1, column 11: expected 4 hexadecimal digits after '\\u'"},
      {"root ::= \"\\U00110000\"", "line 1, column 11: code point U+110000 is beyond U+10FFFF"},
      {"root ::= \"\\uD800\"", "line 1, column 11: surrogate U+D800"},
      {"root ::= \"a\xC3(\"", "line 1, column 12: invalid UTF-8 (byte 0xC3)"},
      {"root ::= \"\xED\xA0\x80\"", "line 1, column 11: invalid UTF-8"},
      {"root \"a\"", "line 1, column 6: expected '::=' after the rule name 'root'"},
      {"root := \"a\"", "line 1, column 6: expected '::='"},
      {"root ::= \"a\"\n\"b\" ::= x", "line 2, column 1: expected a rule name, found '\"'"},
      {"root ::= \"a\" )", "line 1, column 14: unexpected ')' without a matching '('"},
      {"root ::= (\"a\"", "line 1, column 14: expected ')' to close the group opened at line 1, column 10"},
      {"root ::= (\"a\"\n\n", "line 3, column 1: expected ')' to close the group opened at line 1, column 10"},
      {"root ::= (\"a\" ]", "line 1, column 15: unexpected ']': expected ')'"},
      {"root ::= * \"a\"", "line 1, column 10: repetition operator '*' with nothing before it"},
      {"root ::= \"a\" | + \"b\"", "line 1, column 16: repetition operator '+' with nothing before it"},
      {"root ::= \"a\"{}", "line 1, column 14: expected a number in repetition"},
      {"root ::= \"a\"{2", "line 1, column 13: expected '}' to close the repetition"},
      {"root ::= \"a\"{2,x}", "line 1, column 13: expected '}' to close the repetition"},
      {"root ::= \"a\"{3,2}", "line 1, column 13: repetition {3,2} has its maximum below its minimum"},
      {"root ::= \"a\"{10001}", "line 1, column 14: repetition count above the limit of 10000"},
      {"root ::= \"a\"{1,99999999999999999999}", "above the limit of 10000"},
      {"root ::= []", "line 1, column 10: empty character class"},
      {"root ::= [^\\x00-\\U0010FFFF]", "line 1, column 10: character class matches no character"},
      {"root ::= [\\uD800-\\uDFFF]", "line 1, column 10: character class matches no character"},
      {"root ::= [z-a]", "line 1, column 12: character range U+007A-U+0061 is reversed"},
      {"root ::= \"a\" ::= \"b\"", "line 1, column 14: unexpected '::=' inside a rule"},
      {"root ::= \"a\" b ::= \"b\"", "line 1, column 16: unexpected '::='"},
      {"root ::= \"a\" @", "line 1, column 14: unexpected '@'"},
      {"root ::= \"a\"\nroot ::= \"b\"", "line 2, column 1: rule 'root' is defined twice (first at line 1)"},
      {"root ::= \"é\" x", "line 1, column 14: undefined rule 'x'"},
      {"root ::= a\na ::= b c\nb ::= \"1\"", "line 2, column 9: undefined rule 'c'"},
      {"start ::= \"a\"", "grammar has no rule named 'root'"},
      {"", "grammar has no rule named 'root'"},
      {"# only a comment\n", "grammar has no rule named 'root'"},
      {"root ::= \"\\", "line 1, column 11: unterminated escape"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) gparse_fails(cases[i].text, cases[i].msg);
  /* the root named by the caller must exist */
  hs_grammar *g = (hs_grammar *)1;
  assert_int_equal(hs_grammar_parse("root ::= \"a\"", 12, "main", &g), HS_EINVAL);
  assert_null(g);
  assert_msg_has(hs_grammar_last_error(), "no rule named 'main'");
  /* NULL arguments */
  assert_int_equal(hs_grammar_parse("root ::= \"a\"", 12, NULL, NULL), HS_EINVAL);
  assert_int_equal(hs_grammar_parse(NULL, 5, NULL, &g), HS_EINVAL);
  assert_int_equal(hs_grammar_parse(NULL, 0, NULL, &g), HS_EINVAL); /* empty: no root */
  /* text need not be NUL-terminated: only len bytes are read */
  char buf[16];
  memcpy(buf, "root ::= \"ab\"XX", 15);
  assert_int_equal(hs_grammar_parse(buf, 13, NULL, &g), 0);
  assert_accepts(g, "ab");
  hs_grammar_destroy(g);
}

static void test_left_recursion(void **state) {
  gparse_fails("root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]",
               "line 2, column 1: left recursion: 'expr' -> 'expr'");
  gparse_fails("root ::= a\na ::= b \"x\"\nb ::= c | \"y\"\nc ::= a \"z\"",
               "left recursion: 'a' -> 'b' -> 'c' -> 'a'");
  /* through a nullable prefix */
  gparse_fails("root ::= opt root \"x\" | \"y\"\nopt ::= \"o\"?", "left recursion: 'root'");
  gparse_fails("root ::= \"a\"? \"b\"* (\"c\" | ) root | \"z\"", "left recursion");
  /* through a group */
  gparse_fails("root ::= (root \"a\" | \"b\")", "left recursion: 'root' -> (group at line 1, column 10) -> 'root'");
  /* repetition of something that can be empty */
  gparse_fails("root ::= (\"a\"?)*", "line 1, column 16: repetition of something that can match the empty text would loop");
  gparse_fails("root ::= x+\nx ::= \"a\" | ", "line 1, column 11: repetition of something");
  gparse_fails("root ::= \"\"*", "repetition of something that can match the empty text");
  gparse_fails("root ::= (\"a\"{0,3}){2,}", "repetition of something");
  /* a left-recursive rule nobody uses is no danger: fine */
  hs_grammar *g = gparse("root ::= \"a\"\nbad ::= bad \"b\" | \"c\"");
  assert_accepts(g, "a");
  hs_grammar_destroy(g);
  /* right recursion and recursion after a character are fine */
  g = gparse("root ::= \"(\" root \")\" | \"x\" root | \"\"");
  assert_accepts(g, "xx(x(()))");
  assert_refuses(g, "(x(()))xx");
  assert_refuses(g, "(()");
  hs_grammar_destroy(g);
}

static void test_never_finishes(void **state) {
  gparse_fails("root ::= x\nx ::= \"a\" x",
               "line 2, column 1: rule 'x' can never finish");
  gparse_fails("root ::= \"a\" | \"b\" loop\nloop ::= \"x\" loop2\nloop2 ::= \"y\" loop",
               "rule 'loop' can never finish");
  gparse_fails("root ::= (\"a\" root)", "rule 'root' can never finish");
  /* one way out is enough */
  hs_grammar *g = gparse("root ::= x\nx ::= \"a\" x | \"b\"");
  assert_accepts(g, "aab");
  hs_grammar_destroy(g);
  /* an unused trap is fine */
  g = gparse("root ::= \"a\"\ntrap ::= \"t\" trap");
  hs_grammar_destroy(g);
}

static void test_limits(void **state) {
  /* 64 nested parentheses are fine, 65 are not */
  char buf[512];
  size_t n = (size_t)snprintf(buf, sizeof buf, "root ::= ");
  for (int i = 0; i < HS_GRAMMAR_MAX_NESTING; i++) buf[n++] = '(';
  buf[n++] = '"';
  buf[n++] = 'a';
  buf[n++] = '"';
  for (int i = 0; i < HS_GRAMMAR_MAX_NESTING; i++) buf[n++] = ')';
  buf[n] = 0;
  hs_grammar *g = gparse(buf);
  assert_accepts(g, "a");
  hs_grammar_destroy(g);
  n = (size_t)snprintf(buf, sizeof buf, "root ::= ");
  for (int i = 0; i <= HS_GRAMMAR_MAX_NESTING; i++) buf[n++] = '(';
  buf[n] = 0;
  gparse_fails(buf, "line 1, column 74: parentheses nested deeper than 64");
  /* a hostile depth cannot reach the C stack: 100000 parentheses fail the same way */
  char *deep = malloc(100020);
  n = (size_t)snprintf(deep, 100020, "root ::= ");
  for (int i = 0; i < 100000; i++) deep[n++] = '(';
  deep[n] = 0;
  gparse_fails(deep, "nested deeper than 64");
  free(deep);
  /* too many elements after expanding repetitions */
  size_t cap = 1 << 16;
  char *big = malloc(cap);
  n = (size_t)snprintf(big, cap, "root ::= \"a\"\n");
  for (int i = 0; i < 430; i++) n += (size_t)snprintf(big + n, cap - n, "r%d ::= [a-z]{10000}\n", i);
  gparse_fails(big, "grammar too large: more than 4194304 elements");
  free(big);
  /* text longer than the limit is refused before it is read */
  assert_int_equal(hs_grammar_parse("x", (size_t)HS_GRAMMAR_MAX_TEXT + 1, NULL, &g), HS_EINVAL);
  assert_msg_has(hs_grammar_last_error(), "above the limit");
}

static void test_out_of_memory(void **state) {
  size_t n;
  char *json = read_source_file("grammars/json.gbnf", &n);
  const char *texts[] = {json, "root ::= [a-z]{2,5} (\"x\" | y)*\ny ::= \"b\"+ .",
                         "root ::= a\na ::= a \"x\" | \"y\"", "root ::= \"a\" undefined"};
  for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
    hs_grammar *g = NULL;
    int expect = hs_grammar_parse(texts[t], strlen(texts[t]), NULL, &g);
    hs_grammar_destroy(g);
    assert_int_equal(live_blocks, 0);
    int failures = 0;
    for (long k = 1;; k++) {
      hs_alloc_fail_after(k);
      g = NULL;
      int rc = hs_grammar_parse(texts[t], strlen(texts[t]), NULL, &g);
      hs_alloc_fail_after(0);
      if (rc == HS_ENOMEM) {
        assert_null(g);
        assert_int_equal(live_blocks, 0);
        assert_msg_has(hs_grammar_last_error(), "out of memory");
        failures++;
        continue;
      }
      assert_int_equal(rc, expect);
      hs_grammar_destroy(g);
      assert_int_equal(live_blocks, 0);
      break;
    }
    assert_true(failures > 0);
  }
  free(json);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_literals_and_escapes, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_classes, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_any, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_sequences_alternatives_groups, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_repetition, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_rules_comments_newlines, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_shipped_grammars_compile, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_syntax_errors, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_left_recursion, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_never_finishes, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_limits, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_out_of_memory, reset_live_blocks, fail_on_leaked_blocks),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
