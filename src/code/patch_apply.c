/* patch_apply.c: applying function-level patches (hswarm/patch.h): each file read and parsed
 * once, every operation located in that parse, conflicts found, edits made from the end of the
 * file backwards, the result parsed again, a unified diff of the whole; hs_patch_write puts the
 * files in place (temporary file, then rename). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "code/patch_impl.h"
#include "hswarm/alloc.h"
#include "hswarm/code.h"
#include "hswarm/error.h"
#include "hswarm/patch.h"

#define MAX_FILE (64u << 20)

typedef struct result_impl {
  hs_patch_result pub;
  size_t cap_files, cap_errors;
  int oom;
} result_impl;

static void add_error(result_impl *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_error(result_impl *r, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (r->pub.n_errors == r->cap_errors) {
    size_t cap = r->cap_errors ? r->cap_errors * 2 : 8;
    const char **e = hs_realloc(r->pub.errors, cap * sizeof *e);
    if (!e) {
      r->oom = 1;
      return;
    }
    r->pub.errors = e;
    r->cap_errors = cap;
  }
  char *s = hs_malloc(strlen(buf) + 1);
  if (!s) {
    r->oom = 1;
    return;
  }
  strcpy(s, buf);
  r->pub.errors[r->pub.n_errors++] = s;
}

void hs_patch_result_free(hs_patch_result *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_files; i++) {
    hs_free((char *)r->files[i].path);
    hs_free((char *)r->files[i].before);
    hs_free((char *)r->files[i].after);
  }
  hs_free(r->files);
  for (size_t i = 0; i < r->n_errors; i++) hs_free((char *)r->errors[i]);
  hs_free(r->errors);
  hs_free((char *)r->diff);
  hs_free(r);
}

/* Reads root/path (a patch_reader_fn whose ud is the root). */
static char *read_text(void *ud, const char *path, size_t *len, char *why, size_t cap) {
  const char *root = ud;
  char full[8192];
  if (snprintf(full, sizeof full, "%s/%s", root, path) >= (int)sizeof full) {
    snprintf(why, cap, "path too long");
    return NULL;
  }
  FILE *f = fopen(full, "rb");
  if (!f) {
    snprintf(why, cap, "cannot open: %s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE) {
    snprintf(why, cap, S_ISREG(st.st_mode) ? "larger than %u MiB" : "not a regular file",
             MAX_FILE >> 20);
    fclose(f);
    return NULL;
  }
  char *t = hs_malloc((size_t)st.st_size + 1);
  size_t n = t ? fread(t, 1, (size_t)st.st_size, f) : 0;
  fclose(f);
  if (!t || n != (size_t)st.st_size) {
    hs_free(t);
    snprintf(why, cap, t ? "read error" : "out of memory");
    return NULL;
  }
  t[n] = 0;
  *len = n;
  return t;
}

/* ---- locating ---- */

/* The definition op names in p: its index, or -1 after an error. */
static long locate(result_impl *r, const hs_parsed *p, const hs_patch_op *op, const char *path) {
  long found = -1, count = 0;
  for (size_t i = 0; i < p->n_defs; i++)
    if (!strcmp(p->defs[i].qname, op->symbol)) return (long)i;
  for (size_t i = 0; i < p->n_defs; i++)
    if (!strcmp(p->defs[i].name, op->symbol)) {
      if (!count) found = (long)i;
      count++;
    }
  if (count == 1) return found;
  char list[600];
  size_t n = 0;
  list[0] = 0;
  for (size_t i = 0; i < p->n_defs && n < sizeof list - 80; i++) {
    int top = count ? !strcmp(p->defs[i].name, op->symbol) : p->defs[i].parent < 0;
    if (!top) continue;
    n += (size_t)snprintf(list + n, sizeof list - n, "%s%s (line %u)", n ? ", " : "",
                          p->defs[i].qname, p->defs[i].start_line);
  }
  if (count > 1)
    add_error(r, "line %u: %s is ambiguous in %s: %s; use the qualified name", op->line,
              op->symbol, path, list);
  else
    add_error(r, "line %u: no definition %s in %s%s%s", op->line, op->symbol, path,
              n ? "; it defines " : " (it defines nothing)", list);
  return -1;
}

/* ---- editing ---- */

typedef struct edit {
  size_t start, end;    /* the bytes replaced */
  char *text;           /* what replaces them (owned) */
  size_t len;
  const hs_patch_op *op;
} edit;

static int cmp_edit(const void *pa, const void *pb) {
  const edit *a = pa, *b = pb;
  if (a->start != b->start) return a->start < b->start ? -1 : 1;
  if (a->end != b->end) return a->end < b->end ? -1 : 1;
  return a->op->line < b->op->line ? -1 : a->op->line > b->op->line;
}

/* The text op gives, each line's first `base` columns of indentation (the first line's) replaced
 * by indent; the first line without it when first_bare. */
static char *reindent(const hs_patch_op *op, const char *indent, size_t ilen, int first_bare,
                      size_t *out_len) {
  const char *t = op->text;
  size_t n = op->text_len, base = 0;
  while (base < n && (t[base] == ' ' || t[base] == '\t')) base++;
  size_t lines = 1;
  for (size_t i = 0; i < n; i++) lines += t[i] == '\n';
  char *o = hs_malloc(n + lines * ilen + 1);
  if (!o) return NULL;
  size_t k = 0, i = 0;
  int first = 1;
  while (i <= n) {
    size_t e = i;
    while (e < n && t[e] != '\n') e++;
    size_t a = i, strip = 0;
    while (a < e && strip < base && (t[a] == ' ' || t[a] == '\t')) a++, strip++;
    if (a < e && !(first && first_bare)) {
      memcpy(o + k, indent, ilen);
      k += ilen;
    }
    memcpy(o + k, t + a, e - a);
    k += e - a;
    if (e < n) o[k++] = '\n';
    first = 0;
    i = e + 1;
  }
  o[k] = 0;
  *out_len = k;
  return o;
}

/* One file's operations into edits; 0, or -1 when an error was recorded. */
static int make_edits(result_impl *r, const char *path, const char *text, size_t len,
                      const hs_parsed *p, const hs_patch_op **ops, size_t n_ops, edit *ed,
                      size_t *n_ed) {
  long *target = hs_calloc(n_ops, sizeof *target);
  if (!target) {
    r->oom = 1;
    return -1;
  }
  int bad = 0;
  for (size_t i = 0; i < n_ops; i++) {
    target[i] = locate(r, p, ops[i], path);
    bad |= target[i] < 0;
  }
  for (size_t i = 0; i < n_ops && !bad; i++) /* two changes of one definition */
    for (size_t j = 0; j < i; j++)
      if (target[i] == target[j] && ops[i]->kind != HS_PATCH_ADD_AFTER &&
          ops[j]->kind != HS_PATCH_ADD_AFTER) {
        add_error(r, "line %u: conflicts with the operation of line %u: both change %s in %s",
                  ops[i]->line, ops[j]->line, p->defs[target[i]].qname, path);
        bad = 1;
      }
  size_t k = 0;
  for (size_t i = 0; i < n_ops && !bad; i++) {
    const hs_def *d = &p->defs[target[i]];
    size_t ls = d->start_byte; /* the definition's line: its indentation */
    while (ls > 0 && text[ls - 1] != '\n') ls--;
    int only_ws = 1;
    for (size_t x = ls; x < d->start_byte; x++) only_ws &= text[x] == ' ' || text[x] == '\t';
    const char *indent = text + ls;
    size_t ilen = only_ws ? d->start_byte - ls : 0;
    edit e = {.op = ops[i]};
    if (ops[i]->kind == HS_PATCH_REPLACE) {
      e.start = d->start_byte;
      e.end = d->end_byte;
      e.text = reindent(ops[i], indent, ilen, 1, &e.len);
    } else if (ops[i]->kind == HS_PATCH_ADD_AFTER) {
      size_t body;
      char *t = reindent(ops[i], indent, ilen, 0, &body);
      e.start = e.end = d->end_byte;
      e.text = t ? hs_malloc(body + 3) : NULL;
      if (e.text) {
        memcpy(e.text, "\n\n", 2);
        memcpy(e.text + 2, t, body + 1);
        e.len = body + 2;
      }
      hs_free(t);
    } else { /* delete: the whole lines, and one blank line after */
      e.start = only_ws ? ls : d->start_byte;
      e.end = d->end_byte;
      if (e.end < len && text[e.end] == '\n') e.end++;
      size_t b = e.end;
      while (b < len && (text[b] == ' ' || text[b] == '\t')) b++;
      if (b < len && text[b] == '\n') e.end = b + 1;
      e.text = hs_malloc(1);
      if (e.text) e.text[0] = 0;
    }
    if (!e.text) {
      r->oom = 1;
      bad = 1;
      break;
    }
    ed[k++] = e;
  }
  hs_free(target);
  *n_ed = k;
  if (bad) return -1;
  if (k) qsort(ed, k, sizeof *ed, cmp_edit);
  for (size_t i = 1; i < k; i++)
    if (ed[i].start < ed[i - 1].end) {
      add_error(r, "line %u: overlaps the operation of line %u in %s", ed[i].op->line,
                ed[i - 1].op->line, path);
      return -1;
    }
  return 0;
}

static int add_file(result_impl *r, const char *path, char *before, size_t blen, char *after,
                    size_t alen) {
  if (r->pub.n_files == r->cap_files) {
    size_t cap = r->cap_files ? r->cap_files * 2 : 4;
    hs_patch_file *f = hs_realloc(r->pub.files, cap * sizeof *f);
    if (!f) return -1;
    r->pub.files = f;
    r->cap_files = cap;
  }
  char *p = hs_malloc(strlen(path) + 1);
  if (!p) return -1;
  strcpy(p, path);
  r->pub.files[r->pub.n_files++] = (hs_patch_file){p, before, blen, after, alen};
  return 0;
}

/* Applies the operations on one file. */
static void apply_file(result_impl *r, patch_reader_fn read, void *ud, const char *path,
                       const hs_patch_op **ops, size_t n_ops) {
  char why[300];
  size_t len;
  char *text = read(ud, path, &len, why, sizeof why);
  if (!text) {
    add_error(r, "line %u: %s: %s", ops[0]->line, path, why);
    return;
  }
  hs_lang lang = hs_lang_of_path(path);
  hs_parsed *p = NULL;
  if (lang == HS_LANG_UNKNOWN) {
    add_error(r, "line %u: %s: not a language hswarm parses", ops[0]->line, path);
  } else if (hs_code_parse(lang, text, len, &p) != 0) {
    add_error(r, "line %u: %s: %s", ops[0]->line, path, hs_code_last_error());
  }
  edit *ed = p ? hs_calloc(n_ops, sizeof *ed) : NULL;
  size_t n_ed = 0;
  if (p && !ed) r->oom = 1;
  if (!ed || make_edits(r, path, text, len, p, ops, n_ops, ed, &n_ed) != 0) {
    for (size_t i = 0; ed && i < n_ed; i++) hs_free(ed[i].text);
    hs_free(ed);
    hs_parsed_free(p);
    hs_free(text);
    return;
  }
  size_t out_len = len;
  for (size_t i = 0; i < n_ed; i++) out_len += ed[i].len - (ed[i].end - ed[i].start);
  char *out = hs_malloc(out_len + 1);
  if (out) {
    size_t at = 0, from = 0;
    for (size_t i = 0; i < n_ed; i++) {
      memcpy(out + at, text + from, ed[i].start - from);
      at += ed[i].start - from;
      memcpy(out + at, ed[i].text, ed[i].len);
      at += ed[i].len;
      from = ed[i].end;
    }
    memcpy(out + at, text + from, len - from);
    out[out_len] = 0;
  } else {
    r->oom = 1;
  }
  hs_parsed *q = NULL;
  if (out && hs_code_parse(lang, out, out_len, &q) == 0 && q->n_errors > p->n_errors) {
    /* name the operation whose new text holds the first error, if one does */
    const hs_patch_op *culprit = NULL;
    size_t shift = 0;
    for (size_t i = 0; i < n_ed && !culprit; i++) {
      size_t a = ed[i].start + shift, b = a + ed[i].len;
      size_t la = 1, lb;
      for (size_t x = 0; x < a; x++) la += out[x] == '\n';
      lb = la;
      for (size_t x = a; x < b; x++) lb += out[x] == '\n';
      if (q->first_error_line >= la && q->first_error_line <= lb) culprit = ed[i].op;
      shift += ed[i].len - (ed[i].end - ed[i].start);
    }
    if (culprit)
      add_error(r, "line %u: the new text of %s does not parse: %s line %u column %u",
                culprit->line, culprit->symbol, path, q->first_error_line,
                q->first_error_column);
    else
      add_error(r, "line %u: %s does not parse after the patch: line %u column %u",
                ops[0]->line, path, q->first_error_line, q->first_error_column);
    hs_free(out);
    out = NULL;
  } else if (out && !q) {
    add_error(r, "line %u: %s: %s", ops[0]->line, path, hs_code_last_error());
    hs_free(out);
    out = NULL;
  }
  hs_parsed_free(q);
  for (size_t i = 0; i < n_ed; i++) hs_free(ed[i].text);
  hs_free(ed);
  hs_parsed_free(p);
  if (out && add_file(r, path, text, len, out, out_len) == 0) return;
  if (out) r->oom = 1;
  hs_free(out);
  hs_free(text);
}

int hs_patch_apply(const hs_patch *p, const char *root, const char *default_path,
                   hs_patch_result **out) {
  if (!root) return hs_set_error(&hs_patch_err, HS_EINVAL, "patch: NULL argument");
  return patch_apply_with(p, read_text, (void *)root, default_path, out);
}

int patch_apply_with(const hs_patch *p, patch_reader_fn read, void *ud, const char *default_path,
                     hs_patch_result **out) {
  if (!p || !read || !out) return hs_set_error(&hs_patch_err, HS_EINVAL, "patch: NULL argument");
  *out = NULL;
  if (default_path && !patch_path_ok(default_path, strlen(default_path)))
    return hs_set_error(&hs_patch_err, HS_EINVAL,
                        "patch: the default path \"%s\" must be relative, without \"..\"",
                        default_path);
  result_impl *r = hs_calloc(1, sizeof *r);
  const hs_patch_op **ops = hs_calloc(p->n_ops ? p->n_ops : 1, sizeof *ops);
  char *done = hs_calloc(p->n_ops ? p->n_ops : 1, 1);
  if (!r || !ops || !done) {
    hs_free(r);
    hs_free(ops);
    hs_free(done);
    return hs_set_error(&hs_patch_err, HS_ENOMEM, "patch: out of memory");
  }
  for (size_t i = 0; i < p->n_ops; i++) {
    if (done[i]) continue;
    const char *path = p->ops[i].path ? p->ops[i].path : default_path;
    if (!path) {
      add_error(r, "line %u: no file named: write \"in PATH\" after %s", p->ops[i].line,
                p->ops[i].symbol);
      done[i] = 1;
      continue;
    }
    size_t n = 0;
    for (size_t j = i; j < p->n_ops; j++) {
      const char *pj = p->ops[j].path ? p->ops[j].path : default_path;
      if (!done[j] && pj && !strcmp(pj, path)) {
        ops[n++] = &p->ops[j];
        done[j] = 1;
      }
    }
    apply_file(r, read, ud, path, ops, n);
  }
  hs_free(ops);
  hs_free(done);
  size_t total = 0;
  char **diffs = hs_calloc(r->pub.n_files ? r->pub.n_files : 1, sizeof *diffs);
  for (size_t i = 0; diffs && i < r->pub.n_files; i++) {
    const hs_patch_file *f = &r->pub.files[i];
    diffs[i] = hs_unified_diff(f->path, f->before, f->before_len, f->after, f->after_len);
    if (!diffs[i]) r->oom = 1;
    else total += strlen(diffs[i]);
  }
  char *d = diffs ? hs_malloc(total + 1) : NULL;
  if (d) {
    size_t k = 0;
    for (size_t i = 0; i < r->pub.n_files; i++)
      if (diffs[i]) {
        memcpy(d + k, diffs[i], strlen(diffs[i]));
        k += strlen(diffs[i]);
      }
    d[k] = 0;
  }
  for (size_t i = 0; diffs && i < r->pub.n_files; i++) hs_free(diffs[i]);
  hs_free(diffs);
  r->pub.diff = d;
  if (!d || r->oom) {
    hs_patch_result_free(&r->pub);
    return hs_set_error(&hs_patch_err, HS_ENOMEM, "patch: out of memory");
  }
  r->pub.ok = r->pub.n_errors == 0;
  *out = &r->pub;
  return 0;
}

/* Writes text into a new temporary file next to full (tmp receives its name). 0 or an errno. */
static int write_temp(const char *full, const char *text, size_t len, char *tmp, size_t cap) {
  struct stat st;
  if (stat(full, &st) != 0) return errno;
  snprintf(tmp, cap, "%s.hswarm-XXXXXX", full);
  int fd = mkstemp(tmp);
  if (fd < 0) return errno;
  size_t off = 0;
  while (off < len) {
    ssize_t k = write(fd, text + off, len - off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    off += (size_t)k;
  }
  int e = off == len ? 0 : (errno ? errno : EIO);
  if (!e && fchmod(fd, st.st_mode & 07777) != 0) e = errno;
  if (!e && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  if (e) unlink(tmp);
  return e;
}

int hs_patch_write(const hs_patch_result *r, const char *root) {
  if (!r || !root || !r->ok)
    return hs_set_error(&hs_patch_err, HS_EINVAL, "patch: only a result that applied is written");
  /* every file to a temporary first; only when all are written, each renamed over its original */
  char (*tmp)[8300] = hs_calloc(r->n_files ? r->n_files : 1, sizeof *tmp);
  if (!tmp) return hs_set_error(&hs_patch_err, HS_ENOMEM, "patch: out of memory");
  char full[8192];
  int rc = 0;
  size_t i = 0;
  for (; i < r->n_files && !rc; i++) {
    snprintf(full, sizeof full, "%s/%s", root, r->files[i].path);
    int e = write_temp(full, r->files[i].after, r->files[i].after_len, tmp[i], sizeof tmp[i]);
    if (e) rc = hs_set_error(&hs_patch_err, HS_EIO, "patch: writing %s failed: %s", full,
                             strerror(e));
  }
  if (rc) {
    for (size_t k = 0; k + 1 < i; k++) unlink(tmp[k]);
    hs_free(tmp);
    return rc;
  }
  for (i = 0; i < r->n_files && !rc; i++) {
    snprintf(full, sizeof full, "%s/%s", root, r->files[i].path);
    if (rename(tmp[i], full) != 0) {
      rc = hs_set_error(&hs_patch_err, HS_EIO, "patch: renaming over %s failed: %s", full,
                        strerror(errno));
      for (size_t k = i; k < r->n_files; k++) unlink(tmp[k]);
    }
  }
  hs_free(tmp);
  return rc;
}
