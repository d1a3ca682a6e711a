/* harness.h: helpers for runtime tests: write a Lua script to a temporary file, run it in a fresh
 * runtime, and inspect the outcome. Included by one test file each (static functions). */
#ifndef HS_TEST_HARNESS_H
#define HS_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/error.h"
#include "hswarm/runtime.h"

static char test_dir[256];

static inline void harness_init(void) {
  if (test_dir[0]) return;
  snprintf(test_dir, sizeof test_dir, "/tmp/hswarm-test-XXXXXX");
  assert_non_null(mkdtemp(test_dir));
}

/* Writes text to DIR/name and returns the path (static buffer rotation of 4). */
static inline const char *write_file(const char *name, const char *text) {
  static char paths[4][512];
  static int next;
  harness_init();
  char *p = paths[next++ % 4];
  snprintf(p, 512, "%s/%s", test_dir, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  fwrite(text, 1, strlen(text), f);
  fclose(f);
  return p;
}

typedef struct outcome {
  int rc;                 /* hs_runtime_run */
  hs_runtime_stats stats;
  char result[1024];
  long result_len;        /* -1 when the main agent did not end normally */
  char failures[8][512];
  size_t nfailures;
} outcome;

/* Runs a runtime whose main agent is spawned and collects what happened (rt stays alive). */
static inline outcome run_outcome(hs_runtime *rt) {
  outcome o;
  memset(&o, 0, sizeof o);
  o.rc = hs_runtime_run(rt);
  hs_runtime_get_stats(rt, &o.stats);
  o.result_len = hs_runtime_main_result(rt, o.result, sizeof o.result);
  const char *f[8];
  o.nfailures = hs_runtime_failures(rt, f, 8);
  for (size_t i = 0; i < o.nfailures; i++) snprintf(o.failures[i], sizeof o.failures[i], "%s", f[i]);
  return o;
}

/* Runs src as the main script with cfg (NULL: defaults, quiet) and the given args. */
static inline outcome run_cfg(const char *src, const hs_runtime_config *cfg_in, int argc,
                       const char *const *argv) {
  hs_runtime_config cfg;
  if (cfg_in)
    cfg = *cfg_in;
  else {
    hs_runtime_config_init(&cfg);
    cfg.quiet = 1;
  }
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  const char *path = write_file("main.lua", src);
  int rc = hs_runtime_spawn_main(rt, path, argc, argv, NULL);
  if (rc) fprintf(stderr, "spawn_main: %s\n", hs_runtime_last_error(rt));
  assert_int_equal(rc, 0);
  outcome o = run_outcome(rt);
  hs_runtime_destroy(rt);
  return o;
}

static inline outcome run_src(const char *src) { return run_cfg(src, NULL, 0, NULL); }

/* Asserts the main agent ended normally with the given result. */
#define assert_result(o, expected)                                                     \
  do {                                                                                 \
    if ((o).result_len < 0)                                                            \
      fprintf(stderr, "main failed: %s\n", (o).nfailures ? (o).failures[0] : "?");    \
    assert_true((o).result_len >= 0);                                                  \
    assert_string_equal((o).result, expected);                                         \
  } while (0)

/* 1 if some failure line contains needle. */
static inline int failure_has(const outcome *o, const char *needle) {
  for (size_t i = 0; i < o->nfailures; i++)
    if (strstr(o->failures[i], needle)) return 1;
  for (size_t i = 0; i < o->nfailures; i++) fprintf(stderr, "failure: %s\n", o->failures[i]);
  return 0;
}

#endif
