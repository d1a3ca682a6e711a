/* hswarm/code.h: source files parsed with tree-sitter into their definitions and references.
 *
 *   hs_parsed *p;
 *   if (hs_code_parse(hs_lang_of_path("src/a.c"), text, len, &p) == 0) {
 *     for (size_t i = 0; i < p->n_defs; i++)
 *       printf("%s %s lines %u-%u: %s\n", hs_def_kind_name(p->defs[i].kind), p->defs[i].qname,
 *              p->defs[i].start_line, p->defs[i].end_line, p->defs[i].signature);
 *     hs_parsed_free(p);
 *   }
 *
 * Languages: C (.c, .h), Python (.py, .pyi), JavaScript (.js, .mjs, .cjs, .jsx), TypeScript (.ts,
 * .mts, .cts) and TSX (.tsx), with the grammars tools/grammars.sh fetches, compiled in. What counts
 * as a definition or a reference is said by the query files queries/LANGUAGE.scm (embedded in the
 * program); src/code/query.c evaluates their predicates, which the tree-sitter C library does not.
 *
 * A definition's range covers what a patch replacing it must replace: a Python function's
 * decorators, a JavaScript/TypeScript declaration's "export" (and TypeScript's "declare"). Its
 * doc is the comment block right above it (no blank line between), or a Python docstring. Its
 * qualified name joins the names of the definitions containing it with "." (a method m of class
 * K: "K.m"); a function directly in a class or interface body is a method. A file with syntax
 * errors still gives what parsed; n_errors counts the error nodes and first_error locates the
 * first.
 *
 * Ownership: every string of a hs_parsed lives in it until hs_parsed_free. Threads: calls are
 * independent (each parse has its own parser). */
#ifndef HSWARM_CODE_H
#define HSWARM_CODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_lang {
  HS_LANG_UNKNOWN = 0,
  HS_LANG_C,
  HS_LANG_PYTHON,
  HS_LANG_JAVASCRIPT,
  HS_LANG_TYPESCRIPT,
  HS_LANG_TSX,
  HS_LANG_COUNT
} hs_lang;

/* The language of a path by its extension; HS_LANG_UNKNOWN for anything else. */
hs_lang hs_lang_of_path(const char *path);
/* "c", "python", "javascript", "typescript", "tsx", or "unknown". */
const char *hs_lang_name(hs_lang lang);
/* The language named name (as hs_lang_name writes it), or HS_LANG_UNKNOWN. */
hs_lang hs_lang_from_name(const char *name);

typedef enum hs_def_kind {
  HS_DEF_FUNCTION = 0,
  HS_DEF_METHOD,
  HS_DEF_PROTOTYPE,  /* a function declared without a body (C prototype, TS signature) */
  HS_DEF_CLASS,
  HS_DEF_INTERFACE,
  HS_DEF_STRUCT,
  HS_DEF_UNION,
  HS_DEF_ENUM,
  HS_DEF_TYPE,       /* typedef, type alias */
  HS_DEF_MODULE,     /* TypeScript namespace or module */
  HS_DEF_GLOBAL,     /* a variable at file or module level */
  HS_DEF_MACRO,
  HS_DEF_KIND_COUNT
} hs_def_kind;

typedef enum hs_ref_kind {
  HS_REF_CALL = 0,
  HS_REF_TYPE,       /* a type or class named (C types, base classes, `new K`, annotations) */
  HS_REF_IMPORT,     /* name: the module as written ("os.path", "./util.js") */
  HS_REF_INCLUDE,    /* name: the path as written, with its quotes or brackets ("x.h", <stdio.h>) */
  HS_REF_KIND_COUNT
} hs_ref_kind;

/* "function", "method", ... as in the enums (lower case); NULL out of range. */
const char *hs_def_kind_name(hs_def_kind kind);
const char *hs_ref_kind_name(hs_ref_kind kind);
/* The kind named name, or -1. */
int hs_def_kind_from_name(const char *name);

typedef struct hs_def {
  hs_def_kind kind;
  const char *name;       /* "m" */
  const char *qname;      /* "K.m" */
  uint32_t start_byte, end_byte;   /* the range [start, end) in the file */
  uint32_t start_line, end_line;   /* 1-based, inclusive */
  uint32_t name_byte;     /* where the name starts */
  const char *signature;  /* the text before the body, whitespace runs made one space (a typedef
                             whose name follows its body: "typedef struct { ... } name;");
                             without a body, the whole text, cut at 300 bytes */
  const char *doc;        /* "" when none */
  uint64_t hash;          /* of the text [start_byte, end_byte) */
  int32_t parent;         /* index of the innermost definition containing it, or -1 */
} hs_def;

typedef struct hs_ref {
  hs_ref_kind kind;
  const char *name;
  uint32_t byte, line;    /* where the name starts (line 1-based) */
  int32_t def;            /* index of the innermost definition containing it, or -1 */
} hs_ref;

typedef struct hs_parsed {
  hs_lang lang;
  hs_def *defs;           /* in order of start_byte (a container before what it contains) */
  size_t n_defs;
  hs_ref *refs;           /* in order of byte */
  size_t n_refs;
  uint32_t n_errors;      /* syntax error and missing nodes */
  uint32_t first_error_line, first_error_column;   /* 1-based; 0 when n_errors is 0 */
  uint64_t hash;          /* of the whole text (hs_code_hash) */
} hs_parsed;

/* Parses text (len bytes, need not be NUL-terminated) as lang. 0 and *out, or HS_EINVAL (unknown
 * language, NULL argument, len over 64 MiB), HS_ENOMEM, HS_EIO (the parser gave up) with a
 * message from hs_code_last_error. */
int hs_code_parse(hs_lang lang, const char *text, size_t len, hs_parsed **out);
void hs_parsed_free(hs_parsed *p);

/* The 64-bit content hash used for files and definitions. */
uint64_t hs_code_hash(const void *data, size_t len);

/* The calling thread's last error message of this module. Never NULL. */
const char *hs_code_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
