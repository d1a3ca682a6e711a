/* test_query.c: tree-sitter query predicates evaluated in C (src/code/query.c), which the
 * tree-sitter library leaves to its caller: #eq? and #not-eq? (against a string and against
 * another capture), #match? and #not-match? (PCRE2), #any-of?, #not-inside?; and the errors of a
 * query that does not compile or uses an unknown predicate, naming the line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "code/lang.h"
#include "code/query.h"
#include "hswarm/error.h"

static const char *src =
    "int alpha(void) { return 1; }\n"
    "int beta(void) { return 2; }\n"
    "int get_x(void) { int beta = 3; return beta; }\n"
    "int gamma(void) { return alpha(); }\n";

/* The @name texts the query matches on src, joined with spaces. */
static void names(const char *query, char *out, size_t cap) {
  const TSLanguage *lang = code_grammar(HS_LANG_C);
  char err[256];
  code_query *q;
  assert_int_equal(code_query_new(lang, "test", query, strlen(query), &q, err, sizeof err), 0);
  TSParser *p = ts_parser_new();
  ts_parser_set_language(p, lang);
  TSTree *t = ts_parser_parse_string(p, NULL, src, (uint32_t)strlen(src));
  TSQueryCursor *c = ts_query_cursor_new();
  ts_query_cursor_exec(c, code_query_ts(q), ts_tree_root_node(t));
  TSQueryMatch m;
  out[0] = 0;
  while (code_query_next(q, c, src, &m)) {
    for (uint16_t i = 0; i < m.capture_count; i++) {
      uint32_t len;
      const char *cn = ts_query_capture_name_for_id(code_query_ts(q), m.captures[i].index, &len);
      if (len != 4 || memcmp(cn, "name", 4) != 0) continue;
      uint32_t a = ts_node_start_byte(m.captures[i].node), b = ts_node_end_byte(m.captures[i].node);
      snprintf(out + strlen(out), cap - strlen(out), "%s%.*s", out[0] ? " " : "", (int)(b - a),
               src + a);
    }
  }
  ts_query_cursor_delete(c);
  ts_tree_delete(t);
  ts_parser_delete(p);
  code_query_free(q);
}

#define FN "(function_declarator declarator: (identifier) @name)"

static void test_predicates(void **state) {
  (void)state;
  char out[256];
  names("(" FN " (#eq? @name \"beta\"))", out, sizeof out);
  assert_string_equal(out, "beta");
  names("(" FN " (#not-eq? @name \"beta\"))", out, sizeof out);
  assert_string_equal(out, "alpha get_x gamma");
  names("(" FN " (#match? @name \"^[ab]\"))", out, sizeof out);
  assert_string_equal(out, "alpha beta");
  names("(" FN " (#not-match? @name \"a$\"))", out, sizeof out);
  assert_string_equal(out, "get_x");
  names("(" FN " (#any-of? @name \"gamma\" \"alpha\" \"delta\"))", out, sizeof out);
  assert_string_equal(out, "alpha gamma");
  /* identifiers named beta: the function's, and those inside a function body left out */
  names("((identifier) @name (#eq? @name \"beta\") (#not-inside? @name \"compound_statement\"))",
        out, sizeof out);
  assert_string_equal(out, "beta");
  /* #eq? between two captures: a function whose body returns a call of itself? none; of alpha */
  names("((function_definition declarator: (function_declarator declarator: (identifier) @name)"
        " body: (compound_statement (return_statement (call_expression function: (identifier)"
        " @callee)))) (#not-eq? @name @callee))",
        out, sizeof out);
  assert_string_equal(out, "gamma");
}

static void test_errors(void **state) {
  (void)state;
  const TSLanguage *lang = code_grammar(HS_LANG_C);
  char err[256];
  code_query *q = NULL;
  const char *bad_node = "(function_definition)\n(no_such_node) @x\n";
  assert_int_equal(code_query_new(lang, "q.scm", bad_node, strlen(bad_node), &q, err, sizeof err),
                   HS_EINVAL);
  assert_non_null(strstr(err, "query q.scm, line 2"));
  assert_non_null(strstr(err, "unknown node type"));
  const char *bad_pred = "(identifier) @x\n((identifier) @y (#frobnicate? @y \"z\"))\n";
  assert_int_equal(code_query_new(lang, "q.scm", bad_pred, strlen(bad_pred), &q, err, sizeof err),
                   HS_EINVAL);
  assert_non_null(strstr(err, "pattern at line 2: unsupported predicate #frobnicate?"));
  const char *bad_re = "((identifier) @y (#match? @y \"(\"))";
  assert_int_equal(code_query_new(lang, "q.scm", bad_re, strlen(bad_re), &q, err, sizeof err),
                   HS_EINVAL);
  assert_non_null(strstr(err, "bad regex"));
  assert_null(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_predicates),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
