/* udiff.c: unified diffs between two texts (hs_unified_diff, hswarm/patch.h): the common lines
 * at both ends set aside, a longest common subsequence of the lines between (dynamic
 * programming, up to 16 million cells; beyond that the middle is shown as removed then added),
 * hunks with 3 lines of context, "\ No newline at end of file" where a text ends without one. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/strbuf.h"
#include "hswarm/alloc.h"
#include "hswarm/patch.h"

#define CONTEXT 3
#define MAX_CELLS (16u << 20)

typedef struct tline {
  const char *s;
  size_t len;   /* without the newline */
  int nl;       /* followed by a newline */
} tline;

static tline *split(const char *t, size_t n, size_t *count) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += t[i] == '\n';
  if (n && t[n - 1] != '\n') c++;
  tline *l = hs_calloc(c ? c : 1, sizeof *l);
  if (!l) return NULL;
  size_t k = 0, a = 0;
  for (size_t i = 0; i < n; i++)
    if (t[i] == '\n') {
      l[k++] = (tline){t + a, i - a, 1};
      a = i + 1;
    }
  if (a < n) l[k++] = (tline){t + a, n - a, 0};
  *count = k;
  return l;
}

static int same(const tline *x, const tline *y) {
  return x->len == y->len && x->nl == y->nl && !memcmp(x->s, y->s, x->len);
}

/* An edit: ' ' (both), '-' (a only), '+' (b only), with the line. */
typedef struct edit {
  char op;
  const tline *l;
} edit;

/* The edits turning a[0..na) into b[0..nb): *n edits, or NULL (out of memory). */
static edit *edits(const tline *a, size_t na, const tline *b, size_t nb, size_t *n) {
  edit *e = hs_calloc(na + nb + 1, sizeof *e);
  if (!e) return NULL;
  size_t k = 0, pre = 0, suf = 0;
  while (pre < na && pre < nb && same(&a[pre], &b[pre])) pre++;
  while (suf < na - pre && suf < nb - pre && same(&a[na - 1 - suf], &b[nb - 1 - suf])) suf++;
  for (size_t i = 0; i < pre; i++) e[k++] = (edit){' ', &a[i]};
  size_t ma = na - pre - suf, mb = nb - pre - suf;
  const tline *ax = a + pre, *bx = b + pre;
  uint32_t *t = NULL;
  if (ma && mb && (ma + 1) * (mb + 1) <= MAX_CELLS) t = hs_malloc((ma + 1) * (mb + 1) * 4);
  if (t) { /* t[i][j]: LCS length of ax[i..] and bx[j..] */
    size_t w = mb + 1;
    for (size_t i = ma + 1; i-- > 0;)
      for (size_t j = mb + 1; j-- > 0;) {
        if (i == ma || j == mb) t[i * w + j] = 0;
        else if (same(&ax[i], &bx[j])) t[i * w + j] = t[(i + 1) * w + j + 1] + 1;
        else t[i * w + j] = t[(i + 1) * w + j] > t[i * w + j + 1] ? t[(i + 1) * w + j]
                                                                   : t[i * w + j + 1];
      }
    size_t i = 0, j = 0;
    while (i < ma || j < mb) {
      if (i < ma && j < mb && same(&ax[i], &bx[j])) {
        e[k++] = (edit){' ', &ax[i++]};
        j++;
      } else if (i < ma && (j == mb || t[(i + 1) * w + j] >= t[i * w + j + 1])) {
        e[k++] = (edit){'-', &ax[i++]}; /* removals before additions */
      } else {
        e[k++] = (edit){'+', &bx[j++]};
      }
    }
    hs_free(t);
  } else {
    for (size_t i = 0; i < ma; i++) e[k++] = (edit){'-', &ax[i]};
    for (size_t j = 0; j < mb; j++) e[k++] = (edit){'+', &bx[j]};
  }
  for (size_t i = 0; i < suf; i++) e[k++] = (edit){' ', &a[na - suf + i]};
  *n = k;
  return e;
}

static void emit_line(hs_strbuf *o, const edit *e) {
  char c = e->op;
  hs_strbuf_add(o, &c, 1);
  hs_strbuf_add(o, e->l->s, e->l->len);
  hs_strbuf_puts(o, "\n");
  if (!e->l->nl) hs_strbuf_puts(o, "\\ No newline at end of file\n");
}

char *hs_unified_diff(const char *path, const char *a, size_t a_len, const char *b,
                      size_t b_len) {
  size_t na, nb, ne;
  tline *la = split(a, a_len, &na), *lb = split(b, b_len, &nb);
  edit *e = la && lb ? edits(la, na, lb, nb, &ne) : NULL;
  hs_strbuf o = {0};
  if (!e) o.oom = true;
  int header = 0;
  size_t i = 0;
  while (e && i < ne) {
    while (i < ne && e[i].op == ' ') i++;
    if (i == ne) break;
    /* a hunk: from CONTEXT lines before this change to CONTEXT after the last change that is
     * at most 2 * CONTEXT equal lines from the previous one */
    size_t start = i > CONTEXT ? i - CONTEXT : 0, end = i;
    for (;;) {
      while (end < ne && e[end].op != ' ') end++;
      size_t eq = end;
      while (eq < ne && e[eq].op == ' ' && eq - end <= 2 * CONTEXT) eq++;
      if (eq < ne && e[eq].op != ' ' && eq - end <= 2 * CONTEXT) {
        end = eq;
        continue;
      }
      end = end + CONTEXT < ne ? end + CONTEXT : ne;
      break;
    }
    size_t a0 = 0, b0 = 0, ac = 0, bc = 0; /* lines before the hunk, and in it */
    for (size_t k = 0; k < start; k++) {
      a0 += e[k].op != '+';
      b0 += e[k].op != '-';
    }
    for (size_t k = start; k < end; k++) {
      ac += e[k].op != '+';
      bc += e[k].op != '-';
    }
    if (!header) {
      char h[4200];
      snprintf(h, sizeof h, "--- a/%s\n+++ b/%s\n", path, path);
      hs_strbuf_puts(&o, h);
      header = 1;
    }
    char h[96];
    snprintf(h, sizeof h, "@@ -%zu,%zu +%zu,%zu @@\n", ac ? a0 + 1 : a0, ac, bc ? b0 + 1 : b0,
             bc);
    hs_strbuf_puts(&o, h);
    for (size_t k = start; k < end; k++) emit_line(&o, &e[k]);
    i = end;
  }
  hs_free(la);
  hs_free(lb);
  hs_free(e);
  return hs_strbuf_take(&o);
}
