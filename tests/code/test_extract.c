/* test_extract.c: definitions and references of small C, Python, JavaScript and TypeScript files
 * (src/code/extract.c with the queries of queries/): kinds, qualified names, ranges widened to
 * decorators and exports, signatures, doc comments and docstrings, references and the definition
 * containing them, predicates (#eq?, #not-inside?), syntax errors, bad input, languages by path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hswarm/code.h"
#include "hswarm/error.h"

static hs_parsed *parse(hs_lang lang, const char *text) {
  hs_parsed *p = NULL;
  int rc = hs_code_parse(lang, text, strlen(text), &p);
  if (rc) fprintf(stderr, "parse: %s\n", hs_code_last_error());
  assert_int_equal(rc, 0);
  return p;
}

static const hs_def *def(const hs_parsed *p, const char *qname) {
  for (size_t i = 0; i < p->n_defs; i++)
    if (!strcmp(p->defs[i].qname, qname)) return &p->defs[i];
  fail_msg("no definition %s", qname);
  return NULL;
}

static int has_def(const hs_parsed *p, const char *qname) {
  for (size_t i = 0; i < p->n_defs; i++)
    if (!strcmp(p->defs[i].qname, qname)) return 1;
  return 0;
}

/* The reference named name of that kind; its containing definition's qname in *in ("" if none). */
static const hs_ref *ref(const hs_parsed *p, hs_ref_kind kind, const char *name, const char **in) {
  for (size_t i = 0; i < p->n_refs; i++)
    if (p->refs[i].kind == kind && !strcmp(p->refs[i].name, name)) {
      *in = p->refs[i].def >= 0 ? p->defs[p->refs[i].def].qname : "";
      return &p->refs[i];
    }
  fail_msg("no %s reference %s", hs_ref_kind_name(kind), name);
  return NULL;
}

static const char *text_of(const char *src, const hs_def *d, char *buf, size_t cap) {
  size_t n = d->end_byte - d->start_byte;
  if (n >= cap) n = cap - 1;
  memcpy(buf, src + d->start_byte, n);
  buf[n] = 0;
  return buf;
}

static const char *c_src =
    "#include <stdio.h>\n"
    "#include \"util.h\"\n"
    "/* Adds two numbers.\n"
    " * Carefully. */\n"
    "static int add(int a, int b) {\n"
    "  int local = helper(a);\n"
    "  return local + b;\n"
    "}\n"
    "struct point { int x, y; };\n"
    "typedef struct { int a; } pair_t;\n"
    "enum color { RED, GREEN };\n"
    "int counter = 0; // trailing, not a doc\n"
    "#define MAX(a, b) ((a) > (b) ? (a) : (b))\n"
    "int proto(void);\n"
    "char **names(const char *s,\n"
    "             ...) { return (char **)s; }\n"
    "typedef int (*callback_t)(int);\n";

static void test_c(void **state) {
  (void)state;
  hs_parsed *p = parse(HS_LANG_C, c_src);
  assert_int_equal(p->n_errors, 0);
  const hs_def *d = def(p, "add");
  assert_int_equal(d->kind, HS_DEF_FUNCTION);
  assert_int_equal(d->start_line, 5);
  assert_int_equal(d->end_line, 8);
  assert_string_equal(d->signature, "static int add(int a, int b)");
  assert_string_equal(d->doc, "Adds two numbers.\nCarefully.");
  assert_int_equal(d->parent, -1);
  char buf[256];
  assert_true(strncmp(text_of(c_src, d, buf, sizeof buf), "static int add", 14) == 0);
  assert_int_equal(def(p, "point")->kind, HS_DEF_STRUCT);
  assert_int_equal(def(p, "pair_t")->kind, HS_DEF_TYPE);
  assert_int_equal(def(p, "color")->kind, HS_DEF_ENUM);
  assert_int_equal(def(p, "counter")->kind, HS_DEF_GLOBAL);
  assert_string_equal(def(p, "counter")->doc, "");
  assert_int_equal(def(p, "MAX")->kind, HS_DEF_MACRO);
  assert_int_equal(def(p, "proto")->kind, HS_DEF_PROTOTYPE);
  assert_int_equal(def(p, "callback_t")->kind, HS_DEF_TYPE);
  d = def(p, "names"); /* a pointer return type; parameters over two lines */
  assert_int_equal(d->kind, HS_DEF_FUNCTION);
  assert_string_equal(d->signature, "char **names(const char *s, ...)");
  assert_false(has_def(p, "local")); /* a local variable is not a global (#not-inside?) */
  const char *in;
  assert_int_equal(ref(p, HS_REF_CALL, "helper", &in)->line, 6);
  assert_string_equal(in, "add");
  ref(p, HS_REF_INCLUDE, "<stdio.h>", &in);
  assert_string_equal(in, "");
  ref(p, HS_REF_INCLUDE, "\"util.h\"", &in);
  for (size_t i = 0; i < p->n_refs; i++) /* a definition's own name is not a reference to it */
    assert_false(p->refs[i].kind == HS_REF_TYPE && !strcmp(p->refs[i].name, "point"));
  /* the definitions come in order, the hash covers the text */
  for (size_t i = 1; i < p->n_defs; i++)
    assert_true(p->defs[i - 1].start_byte <= p->defs[i].start_byte);
  d = def(p, "add");
  assert_true(d->hash == hs_code_hash(c_src + d->start_byte, d->end_byte - d->start_byte));
  assert_true(p->hash == hs_code_hash(c_src, strlen(c_src)));
  hs_parsed_free(p);
}

static const char *py_src =
    "import os, sys as system\n"
    "from collections import abc\n"
    "LIMIT = 3\n"
    "class Shape(Base, metaclass=Meta):\n"
    "    \"\"\"A shape.\n"
    "\n"
    "    With an area.\n"
    "    \"\"\"\n"
    "    sides: int = 0\n"
    "    @property\n"
    "    def area(self, scale=2) -> float:\n"
    "        'the area'\n"
    "        return compute(scale) + self.base()\n"
    "    async def draw(self): pass\n"
    "# Outer things.\n"
    "def outer():\n"
    "    def inner(): pass\n"
    "    return inner()\n";

static void test_python(void **state) {
  (void)state;
  hs_parsed *p = parse(HS_LANG_PYTHON, py_src);
  assert_int_equal(p->n_errors, 0);
  const hs_def *c = def(p, "Shape");
  assert_int_equal(c->kind, HS_DEF_CLASS);
  assert_string_equal(c->doc, "A shape.\n\nWith an area.");
  assert_string_equal(c->signature, "class Shape(Base, metaclass=Meta):");
  const hs_def *m = def(p, "Shape.area");
  assert_int_equal(m->kind, HS_DEF_METHOD);
  assert_int_equal(m->start_line, 10); /* the decorator belongs to the definition */
  assert_int_equal(m->end_line, 13);
  assert_string_equal(m->doc, "the area");
  assert_string_equal(m->signature, "@property def area(self, scale=2) -> float:");
  assert_int_equal(def(p, "Shape.draw")->kind, HS_DEF_METHOD);
  assert_int_equal(def(p, "outer")->kind, HS_DEF_FUNCTION);
  assert_string_equal(def(p, "outer")->doc, "Outer things.");
  const hs_def *in_fn = def(p, "outer.inner");
  assert_int_equal(in_fn->kind, HS_DEF_FUNCTION); /* nested in a function, not a class */
  assert_string_equal(p->defs[in_fn->parent].qname, "outer");
  assert_int_equal(def(p, "LIMIT")->kind, HS_DEF_GLOBAL);
  assert_false(has_def(p, "sides")); /* a class attribute is not a module global */
  const char *in;
  ref(p, HS_REF_CALL, "compute", &in);
  assert_string_equal(in, "Shape.area");
  ref(p, HS_REF_CALL, "base", &in);
  ref(p, HS_REF_CALL, "inner", &in);
  assert_string_equal(in, "outer");
  ref(p, HS_REF_TYPE, "Base", &in);
  assert_string_equal(in, "Shape");
  ref(p, HS_REF_IMPORT, "os", &in);
  ref(p, HS_REF_IMPORT, "sys", &in);
  ref(p, HS_REF_IMPORT, "collections", &in);
  hs_parsed_free(p);
}

static const char *js_src =
    "const fs = require(\"fs\");\n"
    "import x from './y.js';\n"
    "/** Frobs a. */\n"
    "export function frob(a) { return g(a) + new Widget(); }\n"
    "class Widget { constructor() {} paint() { this.flush(); } }\n"
    "export const twice = (q) => 2 * q;\n"
    "let counter = 0, other = 2;\n"
    "var legacy = function () {};\n"
    "function noRequire() { return load('x'); }\n";

static void test_javascript(void **state) {
  (void)state;
  hs_parsed *p = parse(HS_LANG_JAVASCRIPT, js_src);
  assert_int_equal(p->n_errors, 0);
  const hs_def *f = def(p, "frob");
  assert_int_equal(f->kind, HS_DEF_FUNCTION);
  char buf[256];
  assert_true(strncmp(text_of(js_src, f, buf, sizeof buf), "export function frob", 20) == 0);
  assert_string_equal(f->doc, "Frobs a.");
  assert_string_equal(f->signature, "export function frob(a)");
  assert_int_equal(def(p, "Widget")->kind, HS_DEF_CLASS);
  assert_int_equal(def(p, "Widget.paint")->kind, HS_DEF_METHOD);
  assert_int_equal(def(p, "twice")->kind, HS_DEF_FUNCTION); /* the function pattern wins */
  assert_int_equal(def(p, "legacy")->kind, HS_DEF_FUNCTION);
  assert_int_equal(def(p, "counter")->kind, HS_DEF_GLOBAL);
  assert_int_equal(def(p, "other")->kind, HS_DEF_GLOBAL);
  assert_int_equal(def(p, "fs")->kind, HS_DEF_GLOBAL);
  size_t twice = 0;
  for (size_t i = 0; i < p->n_defs; i++) twice += !strcmp(p->defs[i].name, "twice");
  assert_int_equal(twice, 1);
  const char *in;
  ref(p, HS_REF_IMPORT, "fs", &in); /* require("fs"): #eq? on the callee */
  ref(p, HS_REF_IMPORT, "./y.js", &in);
  ref(p, HS_REF_TYPE, "Widget", &in);
  assert_string_equal(in, "frob");
  ref(p, HS_REF_CALL, "flush", &in);
  assert_string_equal(in, "Widget.paint");
  for (size_t i = 0; i < p->n_refs; i++) /* load('x') is a call, not an import */
    assert_false(p->refs[i].kind == HS_REF_IMPORT && !strcmp(p->refs[i].name, "x"));
  hs_parsed_free(p);
}

static const char *ts_src =
    "import { a } from \"./mod\";\n"
    "export class Account extends Base implements Named {\n"
    "  constructor(private id: number) { super(); }\n"
    "  /** The name. */\n"
    "  name(): string { return label(this.id); }\n"
    "}\n"
    "interface Named { name(): string; }\n"
    "type Id = string | number;\n"
    "enum Color { Red, Green }\n"
    "namespace Space { export const k = 1; }\n"
    "declare function external(x: number): void;\n"
    "abstract class Shape { abstract area(): number; }\n";

static void test_typescript(void **state) {
  (void)state;
  for (hs_lang lang = HS_LANG_TYPESCRIPT; lang <= HS_LANG_TSX; lang++) {
    hs_parsed *p = parse(lang, ts_src);
    assert_int_equal(p->n_errors, 0);
    const hs_def *c = def(p, "Account");
    assert_int_equal(c->kind, HS_DEF_CLASS);
    assert_int_equal(c->start_byte, strstr(ts_src, "export class") - ts_src);
    assert_string_equal(def(p, "Account.name")->doc, "The name.");
    assert_int_equal(def(p, "Account.name")->kind, HS_DEF_METHOD);
    assert_int_equal(def(p, "Named")->kind, HS_DEF_INTERFACE);
    assert_int_equal(def(p, "Named.name")->kind, HS_DEF_METHOD);
    assert_int_equal(def(p, "Id")->kind, HS_DEF_TYPE);
    assert_int_equal(def(p, "Color")->kind, HS_DEF_ENUM);
    assert_int_equal(def(p, "Space")->kind, HS_DEF_MODULE);
    const hs_def *e = def(p, "external");
    assert_int_equal(e->kind, HS_DEF_PROTOTYPE);
    assert_int_equal(e->start_byte, strstr(ts_src, "declare") - ts_src);
    assert_int_equal(def(p, "Shape.area")->kind, HS_DEF_METHOD);
    const char *in;
    ref(p, HS_REF_CALL, "label", &in);
    assert_string_equal(in, "Account.name");
    ref(p, HS_REF_TYPE, "Named", &in);
    ref(p, HS_REF_IMPORT, "./mod", &in);
    hs_parsed_free(p);
  }
}

static void test_syntax_errors(void **state) {
  (void)state;
  const char *src = "int ok(void) { return 1; }\n"
                    "int broken(void) { return (1 + ; }\n"
                    "int after(int x) { return x; }\n";
  hs_parsed *p = parse(HS_LANG_C, src);
  assert_true(p->n_errors > 0);
  assert_int_equal(p->first_error_line, 2);
  assert_true(has_def(p, "ok")); /* what parses is still found */
  assert_true(has_def(p, "after"));
  hs_parsed_free(p);
  const char *py = "def f(:\n    pass\n\ndef g():\n    return 1\n";
  p = parse(HS_LANG_PYTHON, py);
  assert_true(p->n_errors > 0);
  assert_true(has_def(p, "g"));
  hs_parsed_free(p);
}

static void test_bad_input(void **state) {
  (void)state;
  hs_parsed *p = NULL;
  assert_int_equal(hs_code_parse(HS_LANG_UNKNOWN, "x", 1, &p), HS_EINVAL);
  assert_null(p);
  assert_int_equal(hs_code_parse(HS_LANG_C, "x", 1, NULL), HS_EINVAL);
  assert_int_equal(hs_code_parse(HS_LANG_C, NULL, 3, &p), HS_EINVAL);
  /* empty, binary and non-UTF-8 text parse without crashing */
  p = parse(HS_LANG_C, "");
  assert_int_equal(p->n_defs, 0);
  assert_int_equal(p->n_refs, 0);
  hs_parsed_free(p);
  static const char bin[] = "\x7f" "ELF\x02\x01\x01\0\0\xff\xfe int f(void) { return 0; }\xc3\x28";
  assert_int_equal(hs_code_parse(HS_LANG_C, bin, sizeof bin - 1, &p), 0);
  hs_parsed_free(p);
  assert_int_equal(hs_code_parse(HS_LANG_PYTHON, bin, sizeof bin - 1, &p), 0);
  hs_parsed_free(p);
}

static void test_languages(void **state) {
  (void)state;
  assert_int_equal(hs_lang_of_path("a/b.c"), HS_LANG_C);
  assert_int_equal(hs_lang_of_path("x.h"), HS_LANG_C);
  assert_int_equal(hs_lang_of_path("m.py"), HS_LANG_PYTHON);
  assert_int_equal(hs_lang_of_path("m.pyi"), HS_LANG_PYTHON);
  assert_int_equal(hs_lang_of_path("w.mjs"), HS_LANG_JAVASCRIPT);
  assert_int_equal(hs_lang_of_path("w.jsx"), HS_LANG_JAVASCRIPT);
  assert_int_equal(hs_lang_of_path("t.ts"), HS_LANG_TYPESCRIPT);
  assert_int_equal(hs_lang_of_path("t.d.ts"), HS_LANG_TYPESCRIPT);
  assert_int_equal(hs_lang_of_path("v.tsx"), HS_LANG_TSX);
  assert_int_equal(hs_lang_of_path("README.md"), HS_LANG_UNKNOWN);
  assert_int_equal(hs_lang_of_path("dir.c/Makefile"), HS_LANG_UNKNOWN);
  assert_int_equal(hs_lang_of_path(NULL), HS_LANG_UNKNOWN);
  for (int l = HS_LANG_C; l < HS_LANG_COUNT; l++)
    assert_int_equal(hs_lang_from_name(hs_lang_name((hs_lang)l)), l);
  assert_int_equal(hs_def_kind_from_name("method"), HS_DEF_METHOD);
  assert_int_equal(hs_def_kind_from_name("nope"), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_c),          cmocka_unit_test(test_python),
      cmocka_unit_test(test_javascript), cmocka_unit_test(test_typescript),
      cmocka_unit_test(test_syntax_errors), cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_languages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
