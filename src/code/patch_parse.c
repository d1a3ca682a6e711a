/* patch_parse.c: the text format of function-level patches (hswarm/patch.h) into operations. */
#include <stdio.h>
#include <string.h>

#include "code/patch_impl.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/patch.h"

#define MAX_OPS 4096
#define MAX_NAME 400

_Thread_local hs_errbuf hs_patch_err;

const char *hs_patch_last_error(void) { return hs_patch_err.msg; }

/* A line of the text: [s, s + len), without its newline (and a trailing '\r'). */
typedef struct line {
  const char *s;
  size_t len;
} line;

static int starts(line l, const char *p) {
  size_t n = strlen(p);
  return l.len >= n && !memcmp(l.s, p, n);
}

static int is_blank(line l) {
  for (size_t i = 0; i < l.len; i++)
    if (l.s[i] != ' ' && l.s[i] != '\t') return 0;
  return 1;
}

/* "```" or "```lang", alone on its line (spaces around allowed). */
static int is_fence(line l) {
  size_t a = 0, b = l.len;
  while (a < b && (l.s[a] == ' ' || l.s[a] == '\t')) a++;
  while (b > a && (l.s[b - 1] == ' ' || l.s[b - 1] == '\t')) b--;
  if (b - a < 3 || memcmp(l.s + a, "```", 3) != 0) return 0;
  for (size_t i = a + 3; i < b; i++)
    if (l.s[i] == ' ' || l.s[i] == '\t' || l.s[i] == '`') return 0;
  return 1;
}

/* r (rl bytes) starts with the word kw, alone or followed by a space. */
static int keyword(const char *r, size_t rl, const char *kw) {
  size_t n = strlen(kw);
  return rl >= n && !memcmp(r, kw, n) && (rl == n || r[n] == ' ' || r[n] == '\t');
}

static void patch_free_ops(hs_patch *p) {
  for (size_t i = 0; i < p->n_ops; i++) {
    hs_free((char *)p->ops[i].symbol);
    hs_free((char *)p->ops[i].path);
    hs_free((char *)p->ops[i].text);
  }
  hs_free(p->ops);
}

void hs_patch_free(hs_patch *p) {
  if (!p) return;
  patch_free_ops(p);
  hs_free(p);
}

static char *dup_n(const char *s, size_t n) {
  char *d = hs_malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = 0;
  }
  return d;
}

/* Parses a header's rest ("NAME" or "NAME in PATH") into op. 0 or an error. */
static int header_target(const char *s, size_t len, uint32_t ln, hs_patch_op *op) {
  while (len && (*s == ' ' || *s == '\t')) s++, len--;
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
  size_t name_len = 0;
  while (name_len < len && s[name_len] != ' ' && s[name_len] != '\t') name_len++;
  if (name_len == 0)
    return hs_set_error(&hs_patch_err, HS_EINVAL, "patch line %u: the header names no definition",
                        ln);
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
      return hs_set_error(&hs_patch_err, HS_EINVAL,
                          "patch line %u: a control character (byte %u) in the header", ln,
                          (unsigned)(unsigned char)s[i]);
  if (name_len > MAX_NAME)
    return hs_set_error(&hs_patch_err, HS_EINVAL, "patch line %u: the name is longer than %d bytes",
                        ln, MAX_NAME);
  const char *rest = s + name_len;
  size_t rest_len = len - name_len;
  while (rest_len && (*rest == ' ' || *rest == '\t')) rest++, rest_len--;
  if (rest_len == 2 && !memcmp(rest, "in", 2))
    return hs_set_error(&hs_patch_err, HS_EINVAL, "patch line %u: \"in\" without a path", ln);
  if (rest_len) {
    if (rest_len < 4 || memcmp(rest, "in ", 3) != 0)
      return hs_set_error(&hs_patch_err, HS_EINVAL,
                          "patch line %u: after the name, only \"in PATH\" may follow (got \"%.*s\")",
                          ln, (int)(rest_len > 40 ? 40 : rest_len), rest);
    rest += 3, rest_len -= 3;
    while (rest_len && (*rest == ' ' || *rest == '\t')) rest++, rest_len--;
    if (!rest_len)
      return hs_set_error(&hs_patch_err, HS_EINVAL, "patch line %u: \"in\" without a path", ln);
    if (!patch_path_ok(rest, rest_len))
      return hs_set_error(&hs_patch_err, HS_EINVAL,
                          "patch line %u: the path \"%.*s\" must be relative, without \"..\"", ln,
                          (int)(rest_len > 200 ? 200 : rest_len), rest);
    op->path = dup_n(rest, rest_len);
    if (!op->path) return HS_ENOMEM;
  }
  op->symbol = dup_n(s, name_len);
  return op->symbol ? 0 : HS_ENOMEM;
}

int patch_path_ok(const char *p, size_t n) {
  if (n == 0 || n > 4000 || p[0] == '/') return 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] == 0) return 0;
  size_t i = 0;
  while (i < n) { /* no component is ".." */
    size_t e = i;
    while (e < n && p[e] != '/') e++;
    if (e - i == 2 && p[i] == '.' && p[i + 1] == '.') return 0;
    i = e + 1;
  }
  return 1;
}

/* Closes the open operation: its text is lines [first, end), without blank lines at either end
 * and without a closing fence. */
static int close_op(hs_patch_op *op, const line *lines, size_t first, size_t end) {
  if (op->kind == HS_PATCH_DELETE) {
    for (size_t i = first; i < end; i++)
      if (!is_blank(lines[i]) && !is_fence(lines[i]))
        return hs_set_error(&hs_patch_err, HS_EINVAL,
                            "patch line %zu: a delete takes no text (the operation of line %u)",
                            i + 1, op->line);
    op->text = dup_n("", 0);
    return op->text ? 0 : HS_ENOMEM;
  }
  while (first < end && is_blank(lines[first])) first++;
  if (first < end && is_fence(lines[first])) first++;
  while (end > first && is_blank(lines[end - 1])) end--;
  if (end > first && is_fence(lines[end - 1])) end--;
  while (end > first && is_blank(lines[end - 1])) end--;
  if (end == first)
    return hs_set_error(&hs_patch_err, HS_EINVAL,
                        "patch line %u: the %s has no definition text", op->line,
                        op->kind == HS_PATCH_REPLACE ? "replace" : "add");
  size_t n = 0;
  for (size_t i = first; i < end; i++) n += lines[i].len + 1;
  char *t = hs_malloc(n + 1);
  if (!t) return HS_ENOMEM;
  size_t k = 0;
  for (size_t i = first; i < end; i++) {
    memcpy(t + k, lines[i].s, lines[i].len);
    k += lines[i].len;
    t[k++] = '\n';
  }
  t[--k] = 0; /* no trailing newline */
  op->text = t;
  op->text_len = k;
  return 0;
}

int hs_patch_parse(const char *text, size_t len, hs_patch **out) {
  if (!out || (!text && len))
    return hs_set_error(&hs_patch_err, HS_EINVAL, "patch: NULL argument");
  *out = NULL;
  size_t nl = 1;
  for (size_t i = 0; i < len; i++) nl += text[i] == '\n';
  line *lines = hs_calloc(nl, sizeof *lines);
  hs_patch *p = hs_calloc(1, sizeof *p);
  if (!lines || !p) {
    hs_free(lines);
    hs_free(p);
    return hs_set_error(&hs_patch_err, HS_ENOMEM, "patch: out of memory");
  }
  size_t n = 0, a = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || text[i] == '\n') {
      size_t e = i;
      if (e > a && text[e - 1] == '\r') e--;
      if (i < len || e > a) lines[n++] = (line){text + a, e - a};
      a = i + 1;
    }
  }
  size_t cap = 0;
  int rc = 0;
  long open = -1;      /* index of the operation whose text is being read */
  size_t body = 0;     /* its first text line */
  for (size_t i = 0; i <= n && !rc; i++) {
    int header = i < n && starts(lines[i], "@@");
    if (i == n || header) {
      if (open >= 0) rc = close_op(&p->ops[open], lines, body, i);
      open = -1;
      if (rc || i == n) break;
      line l = lines[i];
      const char *r = l.s + 2;
      size_t rl = l.len - 2;
      while (rl && (*r == ' ' || *r == '\t')) r++, rl--;
      while (rl && (r[rl - 1] == ' ' || r[rl - 1] == '\t')) rl--;
      if (rl == 3 && !memcmp(r, "end", 3)) continue;
      hs_patch_op op = {.line = (uint32_t)(i + 1)};
      size_t skip;
      if (keyword(r, rl, "replace")) {
        op.kind = HS_PATCH_REPLACE;
        skip = 7;
      } else if (keyword(r, rl, "add after")) {
        op.kind = HS_PATCH_ADD_AFTER;
        skip = 9;
      } else if (keyword(r, rl, "delete")) {
        op.kind = HS_PATCH_DELETE;
        skip = 6;
      } else {
        rc = hs_set_error(&hs_patch_err, HS_EINVAL,
                          "patch line %zu: unknown operation \"%.*s\" (replace NAME, add after "
                          "NAME, delete NAME, or end)",
                          i + 1, (int)(rl > 40 ? 40 : rl), r);
        break;
      }
      if (p->n_ops == MAX_OPS) {
        rc = hs_set_error(&hs_patch_err, HS_EINVAL, "patch line %zu: more than %d operations",
                          i + 1, MAX_OPS);
        break;
      }
      if (p->n_ops == cap) {
        size_t nc = cap ? cap * 2 : 8;
        hs_patch_op *ops = hs_realloc(p->ops, nc * sizeof *ops);
        if (!ops) {
          rc = HS_ENOMEM;
          break;
        }
        p->ops = ops;
        cap = nc;
      }
      p->ops[p->n_ops] = op;
      rc = header_target(r + skip, rl - skip, (uint32_t)(i + 1), &p->ops[p->n_ops]);
      p->n_ops++;
      open = (long)p->n_ops - 1;
      body = i + 1;
    } else if (open < 0 && !is_blank(lines[i]) && !is_fence(lines[i])) {
      rc = hs_set_error(&hs_patch_err, HS_EINVAL,
                        "patch line %zu: text outside an operation (an operation starts with "
                        "\"@@ replace NAME\", \"@@ add after NAME\" or \"@@ delete NAME\")",
                        i + 1);
    }
  }
  hs_free(lines);
  if (!rc && p->n_ops == 0)
    rc = hs_set_error(&hs_patch_err, HS_EINVAL, "patch: no operation (nothing starts with \"@@\")");
  if (rc) {
    if (rc == HS_ENOMEM) hs_set_error(&hs_patch_err, rc, "patch: out of memory");
    hs_patch_free(p);
    return rc;
  }
  *out = p;
  return 0;
}
