/* test_patch.c: function-level patches (hswarm/patch.h): the format (operations, paths, fences,
 * errors naming their line), applying (replace with re-indentation, add after, delete, qualified
 * and plain names, ambiguous and missing names, conflicts, a patch that breaks the syntax, a
 * missing file), the files untouched until hs_patch_write, which keeps their mode; unified diffs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/patch.h"

static char root[256];

static void put_file(const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *get_file(const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, name);
  FILE *f = fopen(p, "rb");
  assert_non_null(f);
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

static const char *shapes =
    "import math\n"
    "\n"
    "\n"
    "class Square:\n"
    "    def area(self):\n"
    "        return 0\n"
    "\n"
    "    def name(self):\n"
    "        return \"square\"\n"
    "\n"
    "\n"
    "class Circle:\n"
    "    def area(self):\n"
    "        return 1\n"
    "\n"
    "\n"
    "def helper(x):\n"
    "    return x + 1\n";

static int setup(void **state) {
  (void)state;
  snprintf(root, sizeof root, "/tmp/hswarm-patch-XXXXXX");
  if (!mkdtemp(root)) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : -1;
}

static hs_patch *parse_ok(const char *text) {
  hs_patch *p = NULL;
  int rc = hs_patch_parse(text, strlen(text), &p);
  if (rc) fprintf(stderr, "%s\n", hs_patch_last_error());
  assert_int_equal(rc, 0);
  return p;
}

static void parse_fails(const char *text, const char *message) {
  hs_patch *p = NULL;
  assert_int_equal(hs_patch_parse(text, strlen(text), &p), HS_EINVAL);
  assert_null(p);
  if (!strstr(hs_patch_last_error(), message))
    fail_msg("expected \"%s\" in \"%s\"", message, hs_patch_last_error());
}

static void test_parse(void **state) {
  (void)state;
  hs_patch *p = parse_ok("```python\n"
                         "@@ replace Square.area in shapes.py\n"
                         "def area(self):\n"
                         "    return 4\n"
                         "```\n"
                         "\n"
                         "@@ add after helper\n"
                         "\n"
                         "def twice(x):\n"
                         "    return 2 * x\n"
                         "\n"
                         "@@ delete Square.name in dir/with space.py\n"
                         "@@ end\n");
  assert_int_equal(p->n_ops, 3);
  assert_int_equal(p->ops[0].kind, HS_PATCH_REPLACE);
  assert_string_equal(p->ops[0].symbol, "Square.area");
  assert_string_equal(p->ops[0].path, "shapes.py");
  assert_string_equal(p->ops[0].text, "def area(self):\n    return 4");
  assert_int_equal(p->ops[0].line, 2);
  assert_int_equal(p->ops[1].kind, HS_PATCH_ADD_AFTER);
  assert_null(p->ops[1].path);
  assert_string_equal(p->ops[1].text, "def twice(x):\n    return 2 * x");
  assert_int_equal(p->ops[2].kind, HS_PATCH_DELETE);
  assert_string_equal(p->ops[2].path, "dir/with space.py");
  assert_string_equal(p->ops[2].text, "");
  hs_patch_free(p);
  /* CRLF line ends */
  p = parse_ok("@@ replace f in a.c\r\nint f(void) { return 1; }\r\n");
  assert_string_equal(p->ops[0].text, "int f(void) { return 1; }");
  hs_patch_free(p);

  parse_fails("", "no operation");
  parse_fails("hello\n@@ replace f in a.c\nint f;\n", "line 1: text outside an operation");
  parse_fails("@@ rewrite f\nx\n", "line 1: unknown operation");
  parse_fails("@@ -1,3 +1,4 @@\n", "line 1: unknown operation");
  parse_fails("@@ replace\nx\n", "line 1: the header names no definition");
  parse_fails("@@ replace f in ../etc/passwd\nx\n", "must be relative");
  parse_fails("@@ replace f in /etc/passwd\nx\n", "must be relative");
  parse_fails("@@ replace f at a.c\nx\n", "only \"in PATH\" may follow");
  parse_fails("@@ replace f in a.c\n\n@@ end\n", "line 1: the replace has no definition text");
  parse_fails("@@ delete f in a.c\nint f;\n", "line 2: a delete takes no text");
  parse_fails("@@ replace f in\nx\n", "\"in\" without a path");
  parse_fails("@@ replace f\001g in a.c\nx\n", "line 1: a control character (byte 1)");
}

static hs_patch_result *apply(const char *patch, const char *default_path) {
  hs_patch *p = parse_ok(patch);
  hs_patch_result *r = NULL;
  assert_int_equal(hs_patch_apply(p, root, default_path, &r), 0);
  hs_patch_free(p);
  return r;
}

static void expect_error(const hs_patch_result *r, const char *message) {
  assert_false(r->ok);
  for (size_t i = 0; i < r->n_errors; i++)
    if (strstr(r->errors[i], message)) return;
  for (size_t i = 0; i < r->n_errors; i++) fprintf(stderr, "  %s\n", r->errors[i]);
  fail_msg("no error containing \"%s\"", message);
}

static void test_apply(void **state) {
  (void)state;
  put_file("shapes.py", shapes);
  char path[512];
  snprintf(path, sizeof path, "%s/shapes.py", root);
  chmod(path, 0640);
  /* the method is written at column 0: it lands at its class's indentation */
  hs_patch_result *r = apply("@@ replace Square.area\n"
                             "def area(self):\n"
                             "    return self.side ** 2\n"
                             "@@ add after helper\n"
                             "def twice(x):\n"
                             "    return 2 * x\n"
                             "@@ delete Square.name\n",
                             "shapes.py");
  for (size_t i = 0; i < r->n_errors; i++) fprintf(stderr, "%s\n", r->errors[i]);
  assert_true(r->ok);
  assert_int_equal(r->n_files, 1);
  const char *after = r->files[0].after;
  assert_non_null(strstr(after, "class Square:\n    def area(self):\n        return self.side ** 2\n"));
  assert_null(strstr(after, "def name"));
  assert_non_null(strstr(after, "    return x + 1\n\ndef twice(x):\n    return 2 * x\n"));
  assert_non_null(strstr(after, "class Circle:\n    def area(self):\n        return 1\n"));
  assert_non_null(strstr(r->diff, "--- a/shapes.py\n+++ b/shapes.py\n@@ -"));
  assert_non_null(strstr(r->diff, "-        return 0\n"));
  assert_non_null(strstr(r->diff, "+        return self.side ** 2\n"));
  /* nothing written yet */
  assert_string_equal(get_file("shapes.py"), shapes);
  assert_int_equal(hs_patch_write(r, root), 0);
  assert_string_equal(get_file("shapes.py"), r->files[0].after);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0640);
  hs_patch_result_free(r);
  put_file("shapes.py", shapes);

  /* a plain name that is unique is enough; a shared one is ambiguous */
  r = apply("@@ replace helper in shapes.py\ndef helper(x):\n    return x + 2\n", NULL);
  assert_true(r->ok);
  hs_patch_result_free(r);
  r = apply("@@ replace area in shapes.py\ndef area(self):\n    return 2\n", NULL);
  expect_error(r, "line 1: area is ambiguous in shapes.py: Square.area (line 5), Circle.area");
  assert_int_equal(hs_patch_write(r, root), HS_EINVAL);
  hs_patch_result_free(r);
  /* missing names, files, languages; no file named at all */
  r = apply("@@ delete Triangle.area in shapes.py\n", NULL);
  expect_error(r, "line 1: no definition Triangle.area in shapes.py; it defines Square");
  hs_patch_result_free(r);
  r = apply("@@ delete f in nowhere.py\n", NULL);
  expect_error(r, "line 1: nowhere.py: cannot open");
  hs_patch_result_free(r);
  put_file("notes.txt", "hello\n");
  r = apply("@@ delete f in notes.txt\n", NULL);
  expect_error(r, "notes.txt: not a language hswarm parses");
  hs_patch_result_free(r);
  r = apply("@@ delete helper\n", NULL);
  expect_error(r, "line 1: no file named");
  hs_patch_result_free(r);
  /* two changes of one definition are a conflict */
  r = apply("@@ replace helper in shapes.py\ndef helper(x):\n    return 1\n"
            "@@ delete helper in shapes.py\n",
            NULL);
  expect_error(r, "line 4: conflicts with the operation of line 1: both change helper");
  hs_patch_result_free(r);
  /* a definition that breaks the syntax: rejected, located, nothing written */
  r = apply("@@ replace helper in shapes.py\ndef helper(x:\n    return (x +\n", NULL);
  expect_error(r, "line 1: the new text of helper does not parse: shapes.py line 17");
  assert_int_equal(r->n_files, 0);
  hs_patch_result_free(r);
  assert_string_equal(get_file("shapes.py"), shapes);
}

static void test_apply_c_and_order(void **state) {
  (void)state;
  put_file("m.c", "/* one */\nint one(void) { return 1; }\n\nint two(void) { return 2; }\n");
  /* operations given in any order are located in the original text */
  hs_patch_result *r = apply("@@ replace two in m.c\nint two(void) {\n  return 22;\n}\n"
                             "@@ replace one in m.c\nint one(void) { return 11; }\n",
                             NULL);
  assert_true(r->ok);
  assert_string_equal(r->files[0].after,
                      "/* one */\nint one(void) { return 11; }\n\nint two(void) {\n  return 22;\n}\n");
  hs_patch_result_free(r);
}

static void test_diff(void **state) {
  (void)state;
  char *d = hs_unified_diff("x", "a\nb\n", 4, "a\nb\n", 4);
  assert_string_equal(d, "");
  hs_free(d);
  d = hs_unified_diff("x", "a\nb\nc\n", 6, "a\nB\nc\n", 6);
  assert_string_equal(d, "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
  hs_free(d);
  d = hs_unified_diff("x", "", 0, "new\n", 4);
  assert_string_equal(d, "--- a/x\n+++ b/x\n@@ -0,0 +1,1 @@\n+new\n");
  hs_free(d);
  d = hs_unified_diff("x", "a", 1, "a\n", 2);
  assert_string_equal(d, "--- a/x\n+++ b/x\n@@ -1,1 +1,1 @@\n-a\n\\ No newline at end of file\n+a\n");
  hs_free(d);
  /* two changes far apart make two hunks */
  char a[512] = "", b[512] = "";
  for (int i = 0; i < 20; i++) {
    char l[16];
    snprintf(l, sizeof l, "%d\n", i);
    strcat(a, l);
    strcat(b, i == 2 ? "two\n" : i == 17 ? "seventeen\n" : l);
  }
  d = hs_unified_diff("x", a, strlen(a), b, strlen(b));
  assert_non_null(strstr(d, "@@ -1,6 +1,6 @@\n 0\n 1\n-2\n+two\n 3\n 4\n 5\n"));
  assert_non_null(strstr(d, "@@ -15,6 +15,6 @@\n 14\n 15\n 16\n-17\n+seventeen\n 18\n 19\n"));
  hs_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_apply),
      cmocka_unit_test(test_apply_c_and_order),
      cmocka_unit_test(test_diff),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
