/* query.h: tree-sitter queries with their predicates evaluated (query.c). Internal to src/code/.
 *
 * The tree-sitter C library parses predicates but leaves them to the caller; a code_query keeps
 * them per pattern and code_query_next returns only the matches that satisfy them:
 *   (#eq? @a "text") (#eq? @a @b) (#not-eq? ...)       capture text equal (or not)
 *   (#match? @a "regex") (#not-match? @a "regex")      PCRE2, unanchored
 *   (#any-of? @a "x" "y" ...)                          capture text is one of the strings
 *   (#not-inside? @a "node_type" ...)                  no ancestor of the node has those types
 * A predicate over a capture absent from the match holds; over a capture that occurs several
 * times, every occurrence must satisfy it. Any other predicate is an error when the query is made.
 *
 * Ownership: a code_query owns its TSQuery and compiled regexes. Threads: a query is read-only
 * after code_query_new and may be used by many threads at once, each with its own cursor. */
#ifndef HS_CODE_QUERY_H
#define HS_CODE_QUERY_H

#include <stddef.h>
#include <stdint.h>
#include <tree_sitter/api.h>

typedef struct code_query code_query;

/* Compiles src (len bytes; name is used in messages). 0, or HS_EINVAL (syntax error, unknown
 * node type or predicate: the message in err names the line and column) or HS_ENOMEM. */
int code_query_new(const TSLanguage *lang, const char *name, const char *src, size_t len,
                   code_query **out, char *err, size_t cap);
void code_query_free(code_query *q);

const TSQuery *code_query_ts(const code_query *q);

/* The next match of cursor (already executed over a tree of text) that satisfies its pattern's
 * predicates: 1 and *m, or 0 when there are no more. */
int code_query_next(const code_query *q, TSQueryCursor *cursor, const char *text,
                    TSQueryMatch *m);

#endif
