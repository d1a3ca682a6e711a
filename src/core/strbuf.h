/* strbuf.h: a growable NUL-terminated string (chat templates, unified diffs, function slices).
 * An allocation failure is remembered (oom) and later additions are dropped, so a caller checks
 * once at the end. Internal.
 *
 *   hs_strbuf b = {0};
 *   hs_strbuf_add(&b, "abc", 3);
 *   char *s = hs_strbuf_take(&b);   // owned by the caller (hs_free); NULL when out of memory */
#ifndef HS_CORE_STRBUF_H
#define HS_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "hswarm/alloc.h"

typedef struct hs_strbuf {
  char *p;
  size_t n, cap;
  bool oom;
} hs_strbuf;

static inline void hs_strbuf_add(hs_strbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = hs_realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static inline void hs_strbuf_puts(hs_strbuf *b, const char *s) { hs_strbuf_add(b, s, strlen(s)); }

/* The string (an empty one when nothing was added), or NULL after an allocation failure. */
static inline char *hs_strbuf_take(hs_strbuf *b) {
  if (!b->p && !b->oom) hs_strbuf_add(b, "", 0);
  if (b->oom) {
    hs_free(b->p);
    b->p = NULL;
    return NULL;
  }
  return b->p;
}

#endif
