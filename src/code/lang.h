/* lang.h: each language's grammar and compiled query (lang.c). Internal to src/code/. */
#ifndef HS_CODE_LANG_H
#define HS_CODE_LANG_H

#include <tree_sitter/api.h>

#include "code/query.h"
#include "hswarm/code.h"

/* The tree-sitter grammar of lang, or NULL for HS_LANG_UNKNOWN. */
const TSLanguage *code_grammar(hs_lang lang);

/* The query of lang (queries/NAME.scm), compiled at the first call of the process and kept for
 * its life. 0 and *q, or an HS_E* code with *err saying why (the query file does not compile:
 * a build defect the tests catch). */
int code_lang_query(hs_lang lang, const code_query **q, const char **err);

/* A hash of every embedded query file: what definitions and references are depends on them. */
uint64_t code_queries_hash(void);

#endif
