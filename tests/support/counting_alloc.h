/* counting_alloc.h: allocation hooks that count live blocks, for tests that prove every
 * allocation of a module is returned (without relying on a leak checker), a temporary directory
 * per test program, and a check on error messages. Header-only; include it after cmocka.h, once
 * per test program. */
#ifndef HS_TEST_COUNTING_ALLOC_H
#define HS_TEST_COUNTING_ALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"

static long live_blocks; /* blocks allocated through the hooks and not yet freed */

static inline void *count_malloc(size_t n) {
  void *p = malloc(n);
  if (p) live_blocks++;
  return p;
}

static inline void *count_realloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q && !p) live_blocks++;
  return q;
}

static inline void count_free(void *p) {
  if (p) live_blocks--;
  free(p);
}

static const hs_alloc_hooks counting_hooks = {count_malloc, count_realloc, count_free};

/* cmocka per-test setup and teardown: each test starts from zero live blocks and fails if it
 * leaves any. */
static inline int reset_live_blocks(void **state) {
  (void)state;
  live_blocks = 0;
  return 0;
}

static inline int fail_on_leaked_blocks(void **state) {
  (void)state;
  if (live_blocks != 0) fail_msg("%ld blocks leaked", live_blocks);
  return 0;
}

static char tmpdir[256]; /* made by make_tmpdir */

/* Creates $TMPDIR/<prefix>_XXXXXX (or under /tmp). 0 or -1. */
static inline int make_tmpdir(const char *prefix) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/%s_XXXXXX", base && *base ? base : "/tmp", prefix);
  return mkdtemp(tmpdir) ? 0 : -1;
}

static inline void tmp_path(char *buf, size_t size, const char *name) {
  int n = snprintf(buf, size, "%s/%s", tmpdir, name);
  if (n < 0 || (size_t)n >= size) {
    fprintf(stderr, "tmp_path: %s/%s does not fit in %zu bytes\n", tmpdir, name, size);
    abort();
  }
}

/* Removes the temporary directory and restores the C library's allocator. 0 or -1. */
static inline int remove_tmpdir_and_hooks(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  int rc = system(cmd);
  hs_alloc_set_hooks(NULL);
  return rc == 0 ? 0 : -1;
}

/* Fails the test unless an error message contains part. */
#define assert_msg_has(msg, part)                                                              \
  do {                                                                                         \
    const char *m_ = (msg), *p_ = (part);                                                      \
    if (!strstr(m_, p_)) fail_msg("message \"%s\" lacks \"%s\"", m_, p_);                      \
  } while (0)

#endif
