/* extract.c: a source file's definitions and references (hswarm/code.h), from its parse tree and
 * its language's query (lang.c): capture @definition.KIND / @reference.KIND on the item's node
 * and @name on its name. Here: ranges widened to decorators and exports, nesting (parents,
 * qualified names, methods), signatures, doc comments, hashes, syntax errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "code/lang.h"
#include "core/hash.h"
#include "core/last_error.h"
#include "hswarm/alloc.h"
#include "hswarm/code.h"
#include "hswarm/error.h"

#define MAX_TEXT (64u << 20)
#define MAX_SIGNATURE 1000
#define MAX_BODYLESS_SIGNATURE 300
#define MAX_DOC 2000

static _Thread_local hs_errbuf err;

const char *hs_code_last_error(void) { return err.msg; }

static const char *const def_kinds[HS_DEF_KIND_COUNT] = {
    "function", "method", "prototype", "class", "interface", "struct",
    "union",    "enum",   "type",      "module", "global",   "macro"};
static const char *const ref_kinds[HS_REF_KIND_COUNT] = {"call", "type", "import", "include"};

const char *hs_def_kind_name(hs_def_kind k) {
  return (unsigned)k < HS_DEF_KIND_COUNT ? def_kinds[k] : NULL;
}
const char *hs_ref_kind_name(hs_ref_kind k) {
  return (unsigned)k < HS_REF_KIND_COUNT ? ref_kinds[k] : NULL;
}

static int kind_in(const char *const *names, int n, const char *s, uint32_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(names[i]) == len && !memcmp(names[i], s, len)) return i;
  return -1;
}

int hs_def_kind_from_name(const char *name) {
  return name ? kind_in(def_kinds, HS_DEF_KIND_COUNT, name, (uint32_t)strlen(name)) : -1;
}

uint64_t hs_code_hash(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = hs_mix64(len ^ 0x9e3779b97f4a7c15ull);
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = hs_mix64(h ^ w) + 0x632be59bd9b4e019ull;
    p += 8;
    len -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, p, len);
  return hs_mix64(h ^ w ^ ((uint64_t)len << 56));
}

/* ---- strings: one growing pool; offsets until the end, pointers after ---- */

typedef struct pool {
  char *d;
  size_t n, cap;
  int oom;
} pool;

static uint32_t pool_add(pool *p, const char *s, size_t len) {
  if (p->oom) return 0;
  if (p->n + len + 1 > p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 4096;
    while (cap < p->n + len + 1) cap *= 2;
    char *d = hs_realloc(p->d, cap);
    if (!d) {
      p->oom = 1;
      return 0;
    }
    p->d = d;
    p->cap = cap;
  }
  uint32_t at = (uint32_t)p->n;
  memcpy(p->d + p->n, s, len);
  p->d[p->n + len] = 0;
  p->n += len + 1;
  return at;
}

/* Adds s with every run of whitespace made one space, trimmed, cut at max bytes (on a UTF-8
 * character boundary, "..." added). */
static uint32_t pool_add_collapsed(pool *p, const char *s, size_t len, size_t max) {
  char *t = hs_malloc(len + 4);
  if (!t) {
    p->oom = 1;
    return 0;
  }
  size_t n = 0;
  int space = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = n > 0;
      continue;
    }
    if (space) t[n++] = ' ';
    space = 0;
    t[n++] = c;
  }
  if (n > max) {
    n = max;
    while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80) n--;
    memcpy(t + n, "...", 3);
    n += 3;
  }
  uint32_t at = pool_add(p, t, n);
  hs_free(t);
  return at;
}

/* ---- definitions ---- */

typedef struct cand {
  hs_def_kind kind;
  TSNode node, outer, name;
  uint32_t pattern;
  uint32_t order;        /* position in the sorted definitions */
} cand;

typedef struct work {
  const char *text;
  size_t len;
  pool strings;
  cand *cands;
  size_t n_cands, cap_cands;
  hs_def *defs;
  uint32_t *name_off, *qname_off, *sig_off, *doc_off;
  hs_ref *refs;
  uint32_t *ref_name_off;
  size_t n_refs, cap_refs;
} work;

/* The node a patch of this definition replaces: through Python decorators, JS/TS exports and TS
 * "declare". */
static TSNode widen(TSNode n) {
  for (;;) {
    TSNode up = ts_node_parent(n);
    if (ts_node_is_null(up)) return n;
    const char *t = ts_node_type(up);
    if (strcmp(t, "decorated_definition") != 0 && strcmp(t, "export_statement") != 0 &&
        strcmp(t, "ambient_declaration") != 0)
      return n;
    n = up;
  }
}

static int cmp_cand(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  uint32_t as = ts_node_start_byte(a->outer), bs = ts_node_start_byte(b->outer);
  if (as != bs) return as < bs ? -1 : 1;
  uint32_t ae = ts_node_end_byte(a->outer), be = ts_node_end_byte(b->outer);
  if (ae != be) return ae > be ? -1 : 1; /* the container first */
  uint32_t an = ts_node_start_byte(a->name), bn = ts_node_start_byte(b->name);
  if (an != bn) return an < bn ? -1 : 1;
  return a->pattern < b->pattern ? -1 : a->pattern > b->pattern;
}

/* The body of a definition, following the value of a declaration (const f = () => {...}) and
 * the type of a typedef (typedef struct {...} t). */
static TSNode find_body(TSNode n, int depth) {
  static const char *const follow[] = {"value", "definition", "declaration", "type"};
  TSNode b = ts_node_child_by_field_name(n, "body", 4);
  if (!ts_node_is_null(b) || depth == 0) return b;
  for (int i = 0; i < 4; i++) {
    TSNode c = ts_node_child_by_field_name(n, follow[i], (uint32_t)strlen(follow[i]));
    if (!ts_node_is_null(c)) {
      b = find_body(c, depth - 1);
      if (!ts_node_is_null(b)) return b;
    }
  }
  uint32_t k = ts_node_named_child_count(n);
  for (uint32_t i = 0; i < k && i < 4; i++) {
    TSNode c = ts_node_named_child(n, i);
    if (!strcmp(ts_node_type(c), "variable_declarator")) return find_body(c, depth - 1);
  }
  return b;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f'; }

/* Appends one comment's text to buf without its markers (/ * * / // # and leading stars). */
static void strip_comment(const char *s, size_t len, char *buf, size_t *n, size_t cap) {
  size_t i = 0;
  while (i < len) {
    size_t e = i;
    while (e < len && s[e] != '\n') e++;
    size_t a = i, b = e;
    while (a < b && is_space(s[a])) a++;
    if (b - a >= 3 && !memcmp(s + a, "/**", 3)) a += 3;
    else if (b - a >= 2 && (!memcmp(s + a, "/*", 2) || !memcmp(s + a, "//", 2))) a += 2;
    while (a < b && (s[a] == '*' || s[a] == '#' || s[a] == '/' || s[a] == '!')) a++;
    while (b > a && is_space(s[b - 1])) b--;
    if (b - a >= 2 && !memcmp(s + b - 2, "*/", 2)) b -= 2;
    while (b > a && (is_space(s[b - 1]) || s[b - 1] == '*')) b--;
    while (a < b && is_space(s[a])) a++;
    if (b > a) {
      if (*n && *n < cap) buf[(*n)++] = '\n';
      for (size_t k = a; k < b && *n < cap; k++) buf[(*n)++] = s[k];
    }
    i = e + 1;
  }
}

/* The last row a node covers: a node that ends at column 0 (with its line's newline, like a
 * preprocessor line) ends on the row before. */
static uint32_t last_row(TSNode n) {
  TSPoint e = ts_node_end_point(n);
  return e.column == 0 && e.row > ts_node_start_point(n).row ? e.row - 1 : e.row;
}

/* The comments right above outer (adjacent lines, not trailing code on an earlier line). */
static uint32_t comment_doc(work *w, TSNode outer) {
  TSNode first = outer, cur = outer;
  int any = 0;
  for (;;) {
    TSNode prev = ts_node_prev_sibling(cur);
    if (ts_node_is_null(prev) || strcmp(ts_node_type(prev), "comment") != 0) break;
    if (last_row(prev) + 1 < ts_node_start_point(cur).row) break;
    TSNode before = ts_node_prev_sibling(prev);
    if (!ts_node_is_null(before) && last_row(before) == ts_node_start_point(prev).row)
      break; /* a trailing comment of the line before */
    first = prev;
    cur = prev;
    any = 1;
  }
  if (!any) return pool_add(&w->strings, "", 0);
  char buf[MAX_DOC];
  size_t n = 0;
  for (TSNode c = first; !ts_node_eq(c, outer); c = ts_node_next_sibling(c)) {
    uint32_t a = ts_node_start_byte(c), b = ts_node_end_byte(c);
    strip_comment(w->text + a, b - a, buf, &n, sizeof buf);
  }
  return pool_add(&w->strings, buf, n);
}

/* A Python docstring: the string that is the first statement of the body. */
static int docstring(work *w, TSNode node, uint32_t *off) {
  TSNode body = ts_node_child_by_field_name(node, "body", 4);
  if (ts_node_is_null(body) || ts_node_named_child_count(body) == 0) return 0;
  TSNode st = ts_node_named_child(body, 0);
  if (strcmp(ts_node_type(st), "expression_statement") != 0 || ts_node_named_child_count(st) == 0)
    return 0;
  TSNode s = ts_node_named_child(st, 0);
  if (strcmp(ts_node_type(s), "string") != 0) return 0;
  const char *t = w->text + ts_node_start_byte(s);
  size_t len = ts_node_end_byte(s) - ts_node_start_byte(s);
  size_t a = 0;
  while (a < len && strchr("rRuUbBfF", t[a])) a++;
  size_t q = len - a >= 6 && (!memcmp(t + a, "\"\"\"", 3) || !memcmp(t + a, "'''", 3)) ? 3 : 1;
  if (len - a < 2 * q) return 0;
  char buf[MAX_DOC];
  size_t n = 0;
  const char *in = t + a + q;
  size_t inlen = len - a - 2 * q;
  size_t i = 0;
  while (i < inlen) { /* each line trimmed, blank lines at the ends dropped */
    size_t e = i;
    while (e < inlen && in[e] != '\n') e++;
    size_t x = i, y = e;
    while (x < y && is_space(in[x])) x++;
    while (y > x && is_space(in[y - 1])) y--;
    if (y > x || n) {
      if (n && n < sizeof buf) buf[n++] = '\n';
      for (size_t k = x; k < y && n < sizeof buf; k++) buf[n++] = in[k];
    }
    i = e + 1;
  }
  while (n && buf[n - 1] == '\n') n--;
  *off = pool_add(&w->strings, buf, n);
  return 1;
}

static int add_cand(work *w, hs_def_kind kind, TSNode node, TSNode name, uint32_t pattern) {
  if (w->n_cands == w->cap_cands) {
    size_t cap = w->cap_cands ? w->cap_cands * 2 : 64;
    cand *c = hs_realloc(w->cands, cap * sizeof *c);
    if (!c) return HS_ENOMEM;
    w->cands = c;
    w->cap_cands = cap;
  }
  w->cands[w->n_cands++] = (cand){kind, node, widen(node), name, pattern, 0};
  return 0;
}

static int add_ref(work *w, hs_ref_kind kind, TSNode name) {
  if (w->n_refs == w->cap_refs) {
    size_t cap = w->cap_refs ? w->cap_refs * 2 : 128;
    hs_ref *r = hs_realloc(w->refs, cap * sizeof *r);
    uint32_t *o = hs_realloc(w->ref_name_off, cap * sizeof *o);
    if (r) w->refs = r;
    if (o) w->ref_name_off = o;
    if (!r || !o) return HS_ENOMEM;
    w->cap_refs = cap;
  }
  uint32_t a = ts_node_start_byte(name), b = ts_node_end_byte(name);
  w->refs[w->n_refs] = (hs_ref){kind, NULL, a, ts_node_start_point(name).row + 1, -1};
  w->ref_name_off[w->n_refs++] = pool_add(&w->strings, w->text + a, b - a);
  return 0;
}

/* Runs the query: definition candidates and references. */
static int collect(work *w, const code_query *q, TSNode root) {
  TSQueryCursor *cur = ts_query_cursor_new();
  if (!cur) return HS_ENOMEM;
  ts_query_cursor_exec(cur, code_query_ts(q), root);
  TSQueryMatch m;
  int rc = 0;
  while (!rc && code_query_next(q, cur, w->text, &m)) {
    TSNode item = {0}, name = {0};
    int is_def = -1, kind = -1, have_item = 0, have_name = 0;
    for (uint16_t i = 0; i < m.capture_count; i++) {
      uint32_t len;
      const char *cn = ts_query_capture_name_for_id(code_query_ts(q), m.captures[i].index, &len);
      if (len == 4 && !memcmp(cn, "name", 4)) {
        name = m.captures[i].node;
        have_name = 1;
      } else if (len > 11 && !memcmp(cn, "definition.", 11)) {
        kind = kind_in(def_kinds, HS_DEF_KIND_COUNT, cn + 11, len - 11);
        is_def = 1;
        item = m.captures[i].node;
        have_item = 1;
      } else if (len > 10 && !memcmp(cn, "reference.", 10)) {
        kind = kind_in(ref_kinds, HS_REF_KIND_COUNT, cn + 10, len - 10);
        is_def = 0;
        item = m.captures[i].node;
        have_item = 1;
      }
    }
    if (!have_item || !have_name || kind < 0) continue;
    rc = is_def ? add_cand(w, (hs_def_kind)kind, item, name, m.pattern_index)
                : add_ref(w, (hs_ref_kind)kind, name);
  }
  ts_query_cursor_delete(cur);
  return rc ? rc : (w->strings.oom ? HS_ENOMEM : 0);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_ref(const void *pa, const void *pb) {
  const hs_ref *a = pa, *b = pb;
  if (a->byte != b->byte) return a->byte < b->byte ? -1 : 1;
  return a->kind < b->kind ? -1 : a->kind > b->kind;
}

/* The innermost definition containing byte, or -1. defs sorted by start. */
static int32_t innermost(const hs_def *defs, size_t n, uint32_t byte) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (defs[mid].start_byte <= byte) lo = mid + 1;
    else hi = mid;
  }
  int32_t i = (int32_t)lo - 1;
  while (i >= 0 && !(defs[i].start_byte <= byte && byte < defs[i].end_byte)) i = defs[i].parent;
  return i;
}

static int build_defs(work *w, size_t *n_out) {
  if (w->n_cands) qsort(w->cands, w->n_cands, sizeof *w->cands, cmp_cand);
  size_t n = 0; /* one definition per (range, name): the first pattern wins */
  for (size_t i = 0; i < w->n_cands; i++) {
    if (n && ts_node_eq(w->cands[n - 1].outer, w->cands[i].outer) &&
        ts_node_start_byte(w->cands[n - 1].name) == ts_node_start_byte(w->cands[i].name))
      continue;
    w->cands[n++] = w->cands[i];
  }
  *n_out = n;
  if (!n) return 0;
  w->defs = hs_calloc(n, sizeof *w->defs);
  w->name_off = hs_calloc(n, sizeof(uint32_t));
  w->qname_off = hs_calloc(n, sizeof(uint32_t));
  w->sig_off = hs_calloc(n, sizeof(uint32_t));
  w->doc_off = hs_calloc(n, sizeof(uint32_t));
  int32_t *stack = hs_calloc(n, sizeof *stack);
  if (!w->defs || !w->name_off || !w->qname_off || !w->sig_off || !w->doc_off || !stack) {
    hs_free(stack);
    return HS_ENOMEM;
  }
  size_t depth = 0;
  for (size_t i = 0; i < n; i++) {
    cand *c = &w->cands[i];
    hs_def *d = &w->defs[i];
    d->kind = c->kind;
    d->start_byte = ts_node_start_byte(c->outer);
    d->end_byte = ts_node_end_byte(c->outer);
    d->start_line = ts_node_start_point(c->outer).row + 1;
    d->end_line = ts_node_end_point(c->outer).row + 1;
    if (d->end_line > d->start_line && ts_node_end_point(c->outer).column == 0) d->end_line--;
    d->name_byte = ts_node_start_byte(c->name);
    d->hash = hs_code_hash(w->text + d->start_byte, d->end_byte - d->start_byte);
    /* the parent: the innermost earlier definition strictly containing this one */
    while (depth) {
      const hs_def *p = &w->defs[stack[depth - 1]];
      int contains = p->start_byte <= d->start_byte && d->end_byte <= p->end_byte &&
                     (p->start_byte != d->start_byte || p->end_byte != d->end_byte);
      if (contains) break;
      depth--;
    }
    d->parent = depth ? stack[depth - 1] : -1;
    stack[depth++] = (int32_t)i;
    if (d->kind == HS_DEF_FUNCTION && d->parent >= 0 &&
        (w->defs[d->parent].kind == HS_DEF_CLASS || w->defs[d->parent].kind == HS_DEF_INTERFACE))
      d->kind = HS_DEF_METHOD;
    uint32_t na = ts_node_start_byte(c->name), nb = ts_node_end_byte(c->name);
    w->name_off[i] = pool_add(&w->strings, w->text + na, nb - na);
    if (d->parent >= 0) {
      const char *pq = w->strings.oom ? "" : w->strings.d + w->qname_off[d->parent];
      size_t pl = strlen(pq);
      char *q = hs_malloc(pl + 1 + (nb - na) + 1);
      if (!q) {
        hs_free(stack);
        return HS_ENOMEM;
      }
      memcpy(q, pq, pl);
      q[pl] = '.';
      memcpy(q + pl + 1, w->text + na, nb - na);
      w->qname_off[i] = pool_add(&w->strings, q, pl + 1 + (nb - na));
      hs_free(q);
    } else {
      w->qname_off[i] = w->name_off[i];
    }
    TSNode body = find_body(c->node, 3);
    uint32_t bs = ts_node_is_null(body) ? 0 : ts_node_start_byte(body);
    uint32_t be = ts_node_is_null(body) ? 0 : ts_node_end_byte(body);
    if (!ts_node_is_null(body) && bs > d->name_byte)
      w->sig_off[i] = pool_add_collapsed(&w->strings, w->text + d->start_byte,
                                         bs - d->start_byte, MAX_SIGNATURE);
    else if (!ts_node_is_null(body) && bs > d->start_byte && d->name_byte >= be &&
             be <= d->end_byte) { /* the name after the body: typedef struct {...} name; */
      char *t = hs_malloc((bs - d->start_byte) + 9 + (d->end_byte - be) + 1);
      if (!t) {
        hs_free(stack);
        return HS_ENOMEM;
      }
      size_t k = bs - d->start_byte;
      memcpy(t, w->text + d->start_byte, k);
      memcpy(t + k, " { ... } ", 9);
      memcpy(t + k + 9, w->text + be, d->end_byte - be);
      w->sig_off[i] = pool_add_collapsed(&w->strings, t, k + 9 + (d->end_byte - be),
                                         MAX_SIGNATURE);
      hs_free(t);
    } else
      w->sig_off[i] = pool_add_collapsed(&w->strings, w->text + d->start_byte,
                                         d->end_byte - d->start_byte, MAX_BODYLESS_SIGNATURE);
    if (!docstring(w, c->node, &w->doc_off[i])) w->doc_off[i] = comment_doc(w, c->outer);
  }
  hs_free(stack);
  return w->strings.oom ? HS_ENOMEM : 0;
}

/* Counts error and missing nodes; the first one's position. */
static void count_errors(TSNode root, hs_parsed *p) {
  if (!ts_node_has_error(root)) return;
  TSTreeCursor cur = ts_tree_cursor_new(root);
  for (;;) {
    TSNode n = ts_tree_cursor_current_node(&cur);
    int bad = ts_node_is_missing(n) || !strcmp(ts_node_type(n), "ERROR");
    if (bad) {
      if (!p->n_errors) {
        p->first_error_line = ts_node_start_point(n).row + 1;
        p->first_error_column = ts_node_start_point(n).column + 1;
      }
      p->n_errors++;
    }
    if (!bad && ts_node_has_error(n) && ts_tree_cursor_goto_first_child(&cur)) continue;
    while (!ts_tree_cursor_goto_next_sibling(&cur)) {
      if (!ts_tree_cursor_goto_parent(&cur)) {
        ts_tree_cursor_delete(&cur);
        return;
      }
    }
  }
}

static void work_free(work *w) {
  hs_free(w->strings.d);
  hs_free(w->cands);
  hs_free(w->defs);
  hs_free(w->name_off);
  hs_free(w->qname_off);
  hs_free(w->sig_off);
  hs_free(w->doc_off);
  hs_free(w->refs);
  hs_free(w->ref_name_off);
}

/* hs_parsed and the storage it points into, freed together. */
typedef struct parsed_impl {
  hs_parsed pub;
  char *strings;
} parsed_impl;

int hs_code_parse(hs_lang lang, const char *text, size_t len, hs_parsed **out) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "code: no result pointer");
  *out = NULL;
  if (!text && len) return hs_set_error(&err, HS_EINVAL, "code: no text");
  if (len > MAX_TEXT)
    return hs_set_error(&err, HS_EINVAL, "code: %zu bytes is over the %u MiB a file may have",
                        len, MAX_TEXT >> 20);
  const code_query *q;
  const char *why;
  int rc = code_lang_query(lang, &q, &why);
  if (rc) return hs_set_error(&err, rc, "code: %s", why);
  TSParser *parser = ts_parser_new();
  if (!parser || !ts_parser_set_language(parser, code_grammar(lang))) {
    ts_parser_delete(parser);
    return hs_set_error(&err, HS_EIO, "code: the %s grammar cannot be loaded", hs_lang_name(lang));
  }
  TSTree *tree = ts_parser_parse_string(parser, NULL, text ? text : "", (uint32_t)len);
  ts_parser_delete(parser);
  if (!tree) return hs_set_error(&err, HS_EIO, "code: the %s parser gave up", hs_lang_name(lang));
  TSNode root = ts_tree_root_node(tree);
  work w = {.text = text ? text : "", .len = len};
  parsed_impl *pi = hs_calloc(1, sizeof *pi);
  size_t n_defs = 0;
  rc = pi ? collect(&w, q, root) : HS_ENOMEM;
  if (!rc) rc = build_defs(&w, &n_defs);
  if (rc) {
    ts_tree_delete(tree);
    work_free(&w);
    hs_free(pi);
    return hs_set_error(&err, rc, "code: out of memory");
  }
  hs_parsed *p = &pi->pub;
  p->lang = lang;
  p->hash = hs_code_hash(w.text, len);
  count_errors(root, p);
  ts_tree_delete(tree);

  /* references: not a definition's own name; in order; each in its innermost definition */
  uint32_t *def_names = hs_calloc(n_defs ? n_defs : 1, sizeof *def_names);
  if (!def_names) {
    work_free(&w);
    hs_free(pi);
    return hs_set_error(&err, HS_ENOMEM, "code: out of memory");
  }
  for (size_t i = 0; i < n_defs; i++) def_names[i] = w.defs[i].name_byte;
  if (n_defs) qsort(def_names, n_defs, sizeof *def_names, cmp_u32);
  size_t nr = 0;
  for (size_t i = 0; i < w.n_refs; i++) {
    if (n_defs && bsearch(&w.refs[i].byte, def_names, n_defs, sizeof *def_names, cmp_u32))
      continue;
    w.refs[i].name = (const char *)(uintptr_t)w.ref_name_off[i]; /* an offset until the end */
    w.refs[nr++] = w.refs[i];
  }
  hs_free(def_names);
  if (nr) qsort(w.refs, nr, sizeof *w.refs, cmp_ref);
  for (size_t i = 0; i < nr; i++) {
    w.refs[i].def = innermost(w.defs, n_defs, w.refs[i].byte);
    w.refs[i].name = w.strings.d + (uintptr_t)w.refs[i].name;
  }
  for (size_t i = 0; i < n_defs; i++) {
    w.defs[i].name = w.strings.d + w.name_off[i];
    w.defs[i].qname = w.strings.d + w.qname_off[i];
    w.defs[i].signature = w.strings.d + w.sig_off[i];
    w.defs[i].doc = w.strings.d + w.doc_off[i];
  }
  p->defs = w.defs;
  p->n_defs = n_defs;
  p->refs = w.refs;
  p->n_refs = nr;
  pi->strings = w.strings.d;
  w.defs = NULL;
  w.refs = NULL;
  w.strings.d = NULL;
  work_free(&w);
  *out = p;
  return 0;
}

void hs_parsed_free(hs_parsed *p) {
  if (!p) return;
  parsed_impl *pi = (parsed_impl *)p;
  hs_free(p->defs);
  hs_free(p->refs);
  hs_free(pi->strings);
  hs_free(pi);
}
