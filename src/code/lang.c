/* lang.c: the languages hswarm parses: names, file extensions, grammars (compiled in from
 * .deps/grammars) and their queries (queries/NAME.scm, embedded), compiled once per process. */
#include "code/lang.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/embedded.h"
#include "hswarm/error.h"

const TSLanguage *tree_sitter_c(void);
const TSLanguage *tree_sitter_python(void);
const TSLanguage *tree_sitter_javascript(void);
const TSLanguage *tree_sitter_typescript(void);
const TSLanguage *tree_sitter_tsx(void);

static const struct {
  const char *name;
  const char *query;           /* the embedded queries/NAME.scm */
  const TSLanguage *(*grammar)(void);
  const char *extensions[5];
} langs[HS_LANG_COUNT] = {
    [HS_LANG_C] = {"c", "c", tree_sitter_c, {".c", ".h"}},
    [HS_LANG_PYTHON] = {"python", "python", tree_sitter_python, {".py", ".pyi"}},
    [HS_LANG_JAVASCRIPT] = {"javascript", "javascript", tree_sitter_javascript,
                            {".js", ".mjs", ".cjs", ".jsx"}},
    [HS_LANG_TYPESCRIPT] = {"typescript", "typescript", tree_sitter_typescript,
                            {".ts", ".mts", ".cts"}},
    [HS_LANG_TSX] = {"tsx", "typescript", tree_sitter_tsx, {".tsx"}},
};

hs_lang hs_lang_of_path(const char *path) {
  if (!path) return HS_LANG_UNKNOWN;
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) return HS_LANG_UNKNOWN;
  if (strlen(path) > 5 && !strcmp(path + strlen(path) - 5, ".d.ts")) return HS_LANG_TYPESCRIPT;
  for (int l = 1; l < HS_LANG_COUNT; l++)
    for (int e = 0; e < 5 && langs[l].extensions[e]; e++)
      if (!strcmp(dot, langs[l].extensions[e])) return (hs_lang)l;
  return HS_LANG_UNKNOWN;
}

const char *hs_lang_name(hs_lang lang) {
  return lang > HS_LANG_UNKNOWN && lang < HS_LANG_COUNT ? langs[lang].name : "unknown";
}

hs_lang hs_lang_from_name(const char *name) {
  for (int l = 1; l < HS_LANG_COUNT && name; l++)
    if (!strcasecmp(name, langs[l].name)) return (hs_lang)l;
  return HS_LANG_UNKNOWN;
}

const TSLanguage *code_grammar(hs_lang lang) {
  return lang > HS_LANG_UNKNOWN && lang < HS_LANG_COUNT ? langs[lang].grammar() : NULL;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static code_query *queries[HS_LANG_COUNT];
static int query_rc[HS_LANG_COUNT];
static char query_err[HS_LANG_COUNT][256];

static void compile_all(void) {
  for (int l = 1; l < HS_LANG_COUNT; l++) {
    const struct hs_embedded_file *f = hs_embedded_queries;
    while (f->name && strcmp(f->name, langs[l].query) != 0) f++;
    if (!f->name) {
      query_rc[l] = HS_ENOENT;
      snprintf(query_err[l], sizeof query_err[l], "no query file queries/%s.scm was built in",
               langs[l].query);
      continue;
    }
    char name[64];
    snprintf(name, sizeof name, "queries/%s.scm", f->name);
    query_rc[l] = code_query_new(langs[l].grammar(), name, f->text, f->len, &queries[l],
                                 query_err[l], sizeof query_err[l]);
  }
}

int code_lang_query(hs_lang lang, const code_query **q, const char **err) {
  if (lang <= HS_LANG_UNKNOWN || lang >= HS_LANG_COUNT) {
    *err = "unknown language";
    return HS_EINVAL;
  }
  pthread_once(&once, compile_all);
  *q = queries[lang];
  *err = query_err[lang];
  return query_rc[lang];
}

uint64_t code_queries_hash(void) {
  uint64_t h = 0;
  for (const struct hs_embedded_file *f = hs_embedded_queries; f->name; f++)
    h = h * 31 + hs_code_hash(f->text, f->len);
  return h;
}
