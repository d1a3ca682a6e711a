/* forward_ref.h: what the forward-pass tests share (test_forward.c, test_forward_types.c):
 * synthetic models written to the test's temporary directory, deterministic prompts, the
 * PyTorch reference tests/engine/model_ref.py run as a program, the engine's logits, and the
 * error measures. Static functions: each test program includes it once. */
#ifndef HS_TESTS_ENGINE_FORWARD_REF_H
#define HS_TESTS_ENGINE_FORWARD_REF_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hswarm/alloc.h"
#include "hswarm/engine.h"
#include "hswarm/synth.h"
#include "support/counting_alloc.h"

#define PYTHON "/usr/bin/python3"
#define N_PROMPT 40


/* rope: 0 as the preset, 1 also rope_freqs.weight, 2 llama3 scaling off */
static inline void write_model(const char *preset, hs_synth_type t, int rope, char *path, size_t size,
                        const char *name) {
  hs_synth_spec s;
  assert_int_equal(hs_synth_preset(preset, &s), 0);
  s.type = t;
  s.seed = 1234;
  s.rope_freqs_tensor = rope == 1;
  s.half_vectors = true; /* F16/BF16 files: norms and biases converted at load, checked too */
  if (rope == 2) s.rope_llama3 = false;
  tmp_path(path, size, name);
  if (hs_synth_write(&s, path, NULL) != 0) fail_msg("synth %s: %s", preset, hs_synth_last_error());
}

static inline int group_setup(void **state) {
  (void)state;
  if (access(PYTHON, X_OK) != 0 ||
      system(PYTHON " -c 'import torch, numpy' 2>/dev/null") != 0) {
    fprintf(stderr, "test_forward: %s with torch and numpy is required (apt-get install "
                    "python3-torch python3-numpy)\n", PYTHON);
    return -1;
  }
  hs_alloc_set_hooks(&counting_hooks);
  if (make_tmpdir("hs_forward") != 0) return -1;
  return 0;
}

static inline int group_teardown(void **state) {
  (void)state;
  return remove_tmpdir_and_hooks();
}

/* A deterministic prompt of n tokens below n_vocab. */
static inline void prompt(int32_t *t, size_t n, uint32_t n_vocab, uint32_t salt) {
  uint64_t x = 0x9e3779b97f4a7c15ull * (salt + 1);
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t[i] = (int32_t)(x % n_vocab);
  }
}

/* ---- the reference ---- */

static inline const char *ref_script(void) {
  static char path[4096];
  const char *dir = getenv("HS_SOURCE_DIR");
  if (!dir || !*dir) fail_msg("HS_SOURCE_DIR is not set (CTest sets it)");
  snprintf(path, sizeof path, "%s/tests/engine/model_ref.py", dir);
  if (access(path, R_OK) != 0) fail_msg("cannot read %s", path);
  return path;
}

/* Runs model_ref.py MODE MODEL [extra] OUT TOKENS and returns OUT's bytes (malloc'd). */
/* The KV cache type models are opened with (open_model); the reference rounds keys and values
 * the same way (--kv-f16) when it is f16. */
static hs_kv_type kv_type = HS_KV_F16;

static inline void *run_ref(const char *mode, const char *model, const char *extra, const int32_t *toks,
                     size_t n, size_t *len) {
  char out[300];
  tmp_path(out, sizeof out, "ref.out");
  size_t cap = 1024 + 12 * n;
  char *cmd = malloc(cap);
  assert_non_null(cmd);
  int k = snprintf(cmd, cap, PYTHON " '%s' %s '%s' %s %s '%s'", ref_script(), mode, model,
                   extra ? extra : "", kv_type == HS_KV_F16 ? "--kv-f16" : "", out);
  for (size_t i = 0; i < n; i++) k += snprintf(cmd + k, cap - (size_t)k, " %d", (int)toks[i]);
  int rc = system(cmd);
  if (rc != 0) fail_msg("%s failed (status %d)", cmd, rc);
  free(cmd);
  FILE *f = fopen(out, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *p = malloc((size_t)sz + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
  ((char *)p)[sz] = 0;
  fclose(f);
  unlink(out);
  *len = (size_t)sz;
  return p;
}

static inline float *ref_logits(const char *model, const int32_t *toks, size_t n, size_t n_vocab) {
  size_t len;
  float *r = run_ref("logits", model, NULL, toks, n, &len);
  assert_int_equal(len, n * n_vocab * sizeof(float));
  return r;
}

/* ---- running the engine ---- */

static inline hs_model *open_model(const char *path) {
  hs_model *m;
  hs_model_opts o = {.kv_type = kv_type};
  if (hs_model_open(path, &o, &m) != 0) fail_msg("open %s: %s", path, hs_engine_last_error());
  return m;
}

/* Logits of every position of toks fed to a fresh sequence in one call: [n][n_vocab]. */
static inline float *c_logits(hs_model *m, const int32_t *toks, size_t n) {
  const size_t nv = hs_model_get_params(m)->n_vocab;
  hs_seq *s;
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  hs_batch_item *it = calloc(n, sizeof *it);
  float *lg = malloc(n * nv * sizeof *lg);
  assert_non_null(it);
  assert_non_null(lg);
  for (size_t i = 0; i < n; i++) it[i] = (hs_batch_item){s, toks[i], true};
  if (hs_model_forward(m, it, n, lg, NULL) != 0) fail_msg("forward: %s", hs_engine_last_error());
  assert_int_equal(hs_seq_len(s), n);
  hs_seq_destroy(s);
  free(it);
  return lg;
}

static inline size_t argmax(const float *x, size_t n) {
  size_t b = 0;
  for (size_t i = 1; i < n; i++)
    if (x[i] > x[b]) b = i;
  return b;
}

/* Largest over positions of max|a - b| / max|b| of the position's row. */
static inline double max_rel_err(const float *a, const float *b, size_t n, size_t nv) {
  double worst = 0;
  for (size_t t = 0; t < n; t++) {
    double d = 0, mb = 0;
    for (size_t i = 0; i < nv; i++) {
      double e = fabs((double)a[t * nv + i] - b[t * nv + i]);
      d = e > d ? e : d;
      mb = fabs(b[t * nv + i]) > mb ? fabs(b[t * nv + i]) : mb;
    }
    worst = d / mb > worst ? d / mb : worst;
  }
  return worst;
}

static inline double rel_l2(const float *a, const float *b, size_t n) {
  double d = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    double e = (double)a[i] - b[i];
    d += e * e;
    s += (double)b[i] * b[i];
  }
  return sqrt(d / s);
}


#endif
