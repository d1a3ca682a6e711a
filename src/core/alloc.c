/* alloc.c: the one allocation hook of libhswarm, with out-of-memory injection for tests. */
#include "hswarm/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static hs_alloc_hooks hooks = {malloc, realloc, free};
static atomic_long fail_countdown; /* > 0: that many allocations until one fails */

void hs_alloc_set_hooks(const hs_alloc_hooks *h) {
  if (h) {
    hooks = *h;
  } else {
    hooks.malloc_fn = malloc;
    hooks.realloc_fn = realloc;
    hooks.free_fn = free;
  }
}

void hs_alloc_fail_after(long n) { atomic_store(&fail_countdown, n); }

/* 1 if the injected failure is due now. Cheap when injection is off. */
static int injected_failure(void) {
  if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) <= 0) return 0;
  return atomic_fetch_sub(&fail_countdown, 1) == 1;
}

void *hs_malloc(size_t size) {
  if (injected_failure()) return NULL;
  return hooks.malloc_fn(size ? size : 1);
}

void *hs_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  void *p = hs_malloc(count * size);
  if (p && count && size) memset(p, 0, count * size);
  return p;
}

void *hs_realloc(void *ptr, size_t size) {
  if (injected_failure()) return NULL;
  return hooks.realloc_fn(ptr, size ? size : 1);
}

void hs_free(void *ptr) {
  if (ptr) hooks.free_fn(ptr);
}

char *hs_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = hs_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
