/* query.c: tree-sitter queries with their predicates evaluated (query.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "code/query.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"

typedef enum pred_op { P_EQ, P_NOT_EQ, P_MATCH, P_NOT_MATCH, P_ANY_OF, P_NOT_INSIDE } pred_op;

typedef struct pred {
  pred_op op;
  uint32_t capture;        /* the capture tested */
  int64_t other_capture;   /* #eq? @a @b: b's id, else -1 */
  const char **strings;    /* the string arguments (owned by the TSQuery) */
  uint32_t *lens;
  uint32_t n_strings;
  pcre2_code *re;          /* #match? and #not-match? */
} pred;

struct code_query {
  TSQuery *ts;
  pred **preds;            /* per pattern: an array of n_preds[i] predicates */
  uint32_t *n_preds;
  uint32_t n_patterns;
};

/* Line and column (1-based) of byte offset off in src. */
static void line_col(const char *src, uint32_t off, uint32_t *line, uint32_t *col) {
  *line = 1;
  *col = 1;
  for (uint32_t i = 0; i < off; i++) {
    if (src[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

static int parse_pred(const TSQuery *ts, const TSQueryPredicateStep *st, uint32_t n, pred *p,
                      char *why, size_t cap) {
  uint32_t len;
  const char *name = ts_query_string_value_for_id(ts, st[0].value_id, &len);
  static const struct {
    const char *name;
    pred_op op;
  } ops[] = {{"eq?", P_EQ},           {"not-eq?", P_NOT_EQ}, {"match?", P_MATCH},
             {"not-match?", P_NOT_MATCH}, {"any-of?", P_ANY_OF}, {"not-inside?", P_NOT_INSIDE}};
  int found = 0;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0] && !found; i++)
    if (strlen(ops[i].name) == len && !memcmp(ops[i].name, name, len)) {
      p->op = ops[i].op;
      found = 1;
    }
  if (!found) {
    snprintf(why, cap, "unsupported predicate #%.*s", (int)len, name);
    return HS_EINVAL;
  }
  if (n < 3 || st[1].type != TSQueryPredicateStepTypeCapture) {
    snprintf(why, cap, "#%.*s needs a capture and an argument", (int)len, name);
    return HS_EINVAL;
  }
  p->capture = st[1].value_id;
  p->other_capture = -1;
  if ((p->op == P_EQ || p->op == P_NOT_EQ) && n == 3 &&
      st[2].type == TSQueryPredicateStepTypeCapture) {
    p->other_capture = st[2].value_id;
    return 0;
  }
  if ((p->op == P_EQ || p->op == P_NOT_EQ || p->op == P_MATCH || p->op == P_NOT_MATCH) && n != 3) {
    snprintf(why, cap, "#%.*s takes a capture and one argument", (int)len, name);
    return HS_EINVAL;
  }
  p->n_strings = n - 2;
  p->strings = hs_calloc(p->n_strings, sizeof *p->strings);
  p->lens = hs_calloc(p->n_strings, sizeof *p->lens);
  if (!p->strings || !p->lens) return HS_ENOMEM;
  for (uint32_t i = 0; i < p->n_strings; i++) {
    if (st[2 + i].type != TSQueryPredicateStepTypeString) {
      snprintf(why, cap, "#%.*s: argument %u must be a string", (int)len, name, i + 2);
      return HS_EINVAL;
    }
    p->strings[i] = ts_query_string_value_for_id(ts, st[2 + i].value_id, &p->lens[i]);
  }
  if (p->op == P_MATCH || p->op == P_NOT_MATCH) {
    int code;
    PCRE2_SIZE at;
    p->re = pcre2_compile((PCRE2_SPTR)p->strings[0], p->lens[0], 0, &code, &at, NULL);
    if (!p->re) {
      PCRE2_UCHAR msg[160];
      pcre2_get_error_message(code, msg, sizeof msg);
      snprintf(why, cap, "#%.*s: bad regex at %zu: %s", (int)len, name, (size_t)at, (char *)msg);
      return HS_EINVAL;
    }
  }
  return 0;
}

int code_query_new(const TSLanguage *lang, const char *name, const char *src, size_t len,
                   code_query **out, char *err, size_t cap) {
  *out = NULL;
  uint32_t off, line, col;
  TSQueryError e;
  TSQuery *ts = ts_query_new(lang, src, (uint32_t)len, &off, &e);
  if (!ts) {
    static const char *const what[] = {"no error", "syntax error", "unknown node type",
                                       "unknown field", "bad capture", "impossible pattern",
                                       "wrong language"};
    line_col(src, off, &line, &col);
    snprintf(err, cap, "query %s, line %u column %u: %s", name, line, col,
             (unsigned)e < sizeof what / sizeof what[0] ? what[e] : "error");
    return HS_EINVAL;
  }
  code_query *q = hs_calloc(1, sizeof *q);
  if (!q) {
    ts_query_delete(ts);
    return HS_ENOMEM;
  }
  q->ts = ts;
  q->n_patterns = ts_query_pattern_count(ts);
  q->preds = hs_calloc(q->n_patterns ? q->n_patterns : 1, sizeof *q->preds);
  q->n_preds = hs_calloc(q->n_patterns ? q->n_patterns : 1, sizeof *q->n_preds);
  if (!q->preds || !q->n_preds) {
    code_query_free(q);
    return HS_ENOMEM;
  }
  for (uint32_t i = 0; i < q->n_patterns; i++) {
    uint32_t n;
    const TSQueryPredicateStep *st = ts_query_predicates_for_pattern(ts, i, &n);
    uint32_t count = 0;
    for (uint32_t k = 0; k < n; k++) count += st[k].type == TSQueryPredicateStepTypeDone;
    if (!count) continue;
    q->preds[i] = hs_calloc(count, sizeof *q->preds[i]);
    if (!q->preds[i]) {
      code_query_free(q);
      return HS_ENOMEM;
    }
    uint32_t start = 0;
    for (uint32_t k = 0; k < n; k++) {
      if (st[k].type != TSQueryPredicateStepTypeDone) continue;
      char why[256];
      pred *p = &q->preds[i][q->n_preds[i]++];
      int rc = st[start].type == TSQueryPredicateStepTypeString
                   ? parse_pred(ts, st + start, k - start, p, why, sizeof why)
                   : (snprintf(why, sizeof why, "a predicate must start with its name"),
                      HS_EINVAL);
      if (rc) {
        line_col(src, ts_query_start_byte_for_pattern(ts, i), &line, &col);
        snprintf(err, cap, "query %s, pattern at line %u: %s", name, line, why);
        code_query_free(q);
        return rc;
      }
      start = k + 1;
    }
  }
  *out = q;
  return 0;
}

void code_query_free(code_query *q) {
  if (!q) return;
  for (uint32_t i = 0; i < q->n_patterns && q->preds; i++) {
    for (uint32_t k = 0; k < q->n_preds[i]; k++) {
      hs_free(q->preds[i][k].strings);
      hs_free(q->preds[i][k].lens);
      pcre2_code_free(q->preds[i][k].re);
    }
    hs_free(q->preds[i]);
  }
  hs_free(q->preds);
  hs_free(q->n_preds);
  ts_query_delete(q->ts);
  hs_free(q);
}

const TSQuery *code_query_ts(const code_query *q) { return q->ts; }

static int text_is(const char *text, TSNode n, const char *s, uint32_t len) {
  uint32_t a = ts_node_start_byte(n), b = ts_node_end_byte(n);
  return b - a == len && !memcmp(text + a, s, len);
}

static int node_holds(const pred *p, const TSQueryMatch *m, TSNode n, const char *text) {
  uint32_t a = ts_node_start_byte(n), b = ts_node_end_byte(n);
  switch (p->op) {
    case P_EQ:
    case P_NOT_EQ: {
      int eq = 1;
      if (p->other_capture >= 0) {
        for (uint16_t i = 0; i < m->capture_count; i++)
          if (m->captures[i].index == (uint32_t)p->other_capture) {
            TSNode o = m->captures[i].node;
            uint32_t oa = ts_node_start_byte(o), ob = ts_node_end_byte(o);
            eq &= ob - oa == b - a && !memcmp(text + oa, text + a, b - a);
          }
      } else {
        eq = text_is(text, n, p->strings[0], p->lens[0]);
      }
      return p->op == P_EQ ? eq : !eq;
    }
    case P_MATCH:
    case P_NOT_MATCH: {
      pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
      if (!md) return 0;
      int r = pcre2_match(p->re, (PCRE2_SPTR)(text + a), b - a, 0, 0, md, NULL);
      pcre2_match_data_free(md);
      return p->op == P_MATCH ? r >= 0 : r < 0;
    }
    case P_ANY_OF:
      for (uint32_t i = 0; i < p->n_strings; i++)
        if (text_is(text, n, p->strings[i], p->lens[i])) return 1;
      return 0;
    case P_NOT_INSIDE:
      for (TSNode up = ts_node_parent(n); !ts_node_is_null(up); up = ts_node_parent(up)) {
        const char *type = ts_node_type(up);
        for (uint32_t i = 0; i < p->n_strings; i++)
          if (strlen(type) == p->lens[i] && !memcmp(type, p->strings[i], p->lens[i])) return 0;
      }
      return 1;
  }
  return 0;
}

static int match_holds(const code_query *q, const TSQueryMatch *m, const char *text) {
  if (m->pattern_index >= q->n_patterns) return 1;
  for (uint32_t k = 0; k < q->n_preds[m->pattern_index]; k++) {
    const pred *p = &q->preds[m->pattern_index][k];
    for (uint16_t i = 0; i < m->capture_count; i++)
      if (m->captures[i].index == p->capture && !node_holds(p, m, m->captures[i].node, text))
        return 0;
  }
  return 1;
}

int code_query_next(const code_query *q, TSQueryCursor *cursor, const char *text,
                    TSQueryMatch *m) {
  while (ts_query_cursor_next_match(cursor, m))
    if (match_holds(q, m, text)) return 1;
  return 0;
}
