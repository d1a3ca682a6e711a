/* hswarm/alloc.h: the one allocation hook of libhswarm.
 *
 * Every allocation made by the library goes through hs_malloc/hs_calloc/hs_realloc/hs_free, which
 * call the functions installed with hs_alloc_set_hooks (the C library's by default). Tests use
 * hs_alloc_fail_after() to make the Nth allocation from now fail, to prove that every out-of-memory
 * path returns HS_ENOMEM and leaks nothing. The hooks are process-wide; set them before creating any
 * library object. hs_malloc(0) may return NULL or a unique pointer, as malloc does. */
#ifndef HSWARM_ALLOC_H
#define HSWARM_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_alloc_hooks {
  void *(*malloc_fn)(size_t size);
  void *(*realloc_fn)(void *ptr, size_t size);
  void (*free_fn)(void *ptr);
} hs_alloc_hooks;

/* Installs hooks (NULL restores the C library's). Not thread-safe: call before any other use. */
void hs_alloc_set_hooks(const hs_alloc_hooks *hooks);

/* Test support: the n-th allocation from now (1 = the next) fails and every later one succeeds.
 * n = 0 disables injection. Counts hs_malloc, hs_calloc and growing hs_realloc calls. */
void hs_alloc_fail_after(long n);

void *hs_malloc(size_t size);
void *hs_calloc(size_t count, size_t size); /* zeroed; NULL on overflow of count * size */
void *hs_realloc(void *ptr, size_t size);   /* on failure returns NULL and leaves ptr valid */
void hs_free(void *ptr);                    /* NULL is ignored */
char *hs_strdup(const char *s);             /* NULL if s is NULL or allocation fails */

#ifdef __cplusplus
}
#endif
#endif
