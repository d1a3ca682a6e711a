/* test_forward.c: the model binding and forward pass (src/engine/model.c, forward.c,
 * attention.c, ops.c) against the independent PyTorch reference tests/engine/model_ref.py.
 *
 * Synthetic files (hswarm/synth.h) are written to a temporary directory:
 *   tiny-llama3 (GQA 4/2, llama3 rope scaling), tiny-qwen2 (biases, NeoX rope) and tiny-llama
 *   (tied embeddings) in F32: logits of every position of a 40-token prompt within 1e-4 of the
 *   reference, measured per position as max|c - ref| / max|ref|, and 64 greedy tokens equal to
 *   the reference's (the reference runs in float64);
 *   tiny-qwen3 (head size 32 with n_embd 64, q/k norms) and tiny-gemma3 (q/k and post norms,
 *   GELU, scaled embeddings, a window of 16 positions on two of three layers) likewise; a file
 *   carrying rope_freqs.weight gives the same logits as the metadata-only one. (Every tensor
 *   type through the pass: test_forward_types.c.)
 * Then properties of the engine itself, bit for bit: several sequences of different lengths in
 * one call equal each sequence alone; a prompt prefilled at once equals one token per call;
 * logits requested for some positions only equal those of a full run; truncating and
 * recomputing gives the same logits again; capacity errors append nothing; out-of-memory at every
 * allocation of open, of sequence creation and of the forward workspace fails cleanly and leaks
 * nothing. A missing /usr/bin/python3 or torch is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/ops.h"
#include "hswarm/alloc.h"
#include "hswarm/engine.h"
#include "hswarm/error.h"
#include "hswarm/synth.h"

#include "support/counting_alloc.h"
#include "engine/forward_ref.h"

#define N_GREEDY 64

static char path_llama3[300], path_qwen2[300], path_tied[300], path_qwen3[300], path_gemma3[300];

/* ---- against the reference: F32 ---- */

static void check_f32_logits(const char *path, const char *what) {
  hs_model *m = open_model(path);
  const size_t nv = hs_model_get_params(m)->n_vocab;
  int32_t toks[N_PROMPT];
  prompt(toks, N_PROMPT, (uint32_t)nv, 1);
  float *c = c_logits(m, toks, N_PROMPT);
  float *r = ref_logits(path, toks, N_PROMPT, nv);
  double e = max_rel_err(c, r, N_PROMPT, nv);
  print_message("%s f32: max over positions of max|c-ref|/max|ref| = %.3g\n", what, e);
  if (!(e <= 1e-4)) fail_msg("%s: relative error %g above 1e-4", what, e);
  /* the reference's hidden states too (embeddings) */
  hs_seq *s;
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  const size_t ne = hs_model_get_params(m)->n_embd;
  hs_batch_item it[N_PROMPT];
  for (size_t i = 0; i < N_PROMPT; i++) it[i] = (hs_batch_item){s, toks[i], true};
  float *h = malloc(N_PROMPT * ne * sizeof *h);
  assert_int_equal(hs_model_forward(m, it, N_PROMPT, NULL, h), 0);
  size_t len;
  float *rh = run_ref("hidden", path, NULL, toks, N_PROMPT, &len);
  assert_int_equal(len, N_PROMPT * ne * sizeof(float));
  double eh = max_rel_err(h, rh, N_PROMPT, ne);
  print_message("%s f32: hidden states max rel error %.3g\n", what, eh);
  assert_true(eh <= 1e-4);
  hs_seq_destroy(s);
  free(h);
  free(rh);
  free(c);
  free(r);
  hs_model_close(m);
}

static void test_ref_llama3(void **state) {
  (void)state;
  write_model("tiny-llama3", HS_SYNTH_F32, 0, path_llama3, sizeof path_llama3, "llama3.gguf");
  check_f32_logits(path_llama3, "tiny-llama3");
  /* and with an f32 KV cache against the reference without rounding */
  kv_type = HS_KV_F32;
  check_f32_logits(path_llama3, "tiny-llama3 (KV f32)");
  kv_type = HS_KV_F16;
}

static void test_ref_qwen2(void **state) {
  (void)state;
  write_model("tiny-qwen2", HS_SYNTH_F32, 0, path_qwen2, sizeof path_qwen2, "qwen2.gguf");
  check_f32_logits(path_qwen2, "tiny-qwen2");
}

static void test_ref_tied(void **state) {
  (void)state;
  write_model("tiny-llama", HS_SYNTH_F32, 0, path_tied, sizeof path_tied, "tied.gguf");
  check_f32_logits(path_tied, "tiny-llama (tied)");
}

/* qwen3: head size 32 with n_embd 64 (q wider than the embedding), q/k norms, NeoX rope */
static void test_ref_qwen3(void **state) {
  (void)state;
  write_model("tiny-qwen3", HS_SYNTH_F32, 0, path_qwen3, sizeof path_qwen3, "qwen3.gguf");
  check_f32_logits(path_qwen3, "tiny-qwen3");
}

/* gemma3: q/k and post norms, GELU, scaled embeddings, tied output, and a window of 16 positions
 * on layers 0 and 1 (layer 2 global, its own rope base): the 40-token prompt crosses the window,
 * and its block boundaries, at many positions */
static void test_ref_gemma3(void **state) {
  (void)state;
  write_model("tiny-gemma3", HS_SYNTH_F32, 0, path_gemma3, sizeof path_gemma3, "gemma3.gguf");
  check_f32_logits(path_gemma3, "tiny-gemma3");
  kv_type = HS_KV_F32;
  check_f32_logits(path_gemma3, "tiny-gemma3 (KV f32)");
  kv_type = HS_KV_F16;
}

/* Greedy decoding, one token per call after the prompt, against the reference's tokens. */
static void check_greedy(const char *path, const char *what) {
  hs_model *m = open_model(path);
  const size_t nv = hs_model_get_params(m)->n_vocab;
  int32_t toks[8 + N_GREEDY];
  prompt(toks, 8, (uint32_t)nv, 2);
  hs_seq *s;
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  hs_batch_item it[8];
  for (int i = 0; i < 8; i++) it[i] = (hs_batch_item){s, toks[i], i == 7};
  float *lg = malloc(nv * sizeof *lg);
  assert_int_equal(hs_model_forward(m, it, 8, lg, NULL), 0);
  int32_t got[N_GREEDY];
  for (int k = 0; k < N_GREEDY; k++) {
    got[k] = (int32_t)argmax(lg, nv);
    hs_batch_item one = {s, got[k], true};
    assert_int_equal(hs_model_forward(m, &one, 1, lg, NULL), 0);
  }
  assert_int_equal(hs_seq_len(s), 8 + N_GREEDY);
  size_t len;
  char *ref = run_ref("greedy", path, "64", toks, 8, &len);
  char *p = ref;
  int n_clear = 0, distinct = 0;
  bool seen[4096] = {false};
  double min_margin = 1e30;
  for (int k = 0; k < N_GREEDY; k++) {
    char *end;
    long id = strtol(p, &end, 10);
    assert_true(end != p);
    double margin = strtod(end, &p);
    if (id != got[k])
      fail_msg("%s: greedy step %d: C chose %d, the reference %ld (reference margin %g)", what, k,
               (int)got[k], id, margin);
    n_clear += margin > 0.05;
    min_margin = margin < min_margin ? margin : min_margin;
    if (id < 4096 && !seen[id]) {
      seen[id] = true;
      distinct++;
    }
  }
  print_message("%s: %d greedy tokens equal; %d distinct; top1-top2 margin > 0.05 in %d of %d "
                "steps (smallest %.3g)\n",
                what, N_GREEDY, distinct, n_clear, N_GREEDY, min_margin);
  assert_true(n_clear >= N_GREEDY * 3 / 4); /* the synthetic scales give clear margins */
  free(ref);
  free(lg);
  hs_seq_destroy(s);
  hs_model_close(m);
}

static void test_greedy_llama3(void **state) {
  (void)state;
  check_greedy(path_llama3, "tiny-llama3");
}

static void test_greedy_qwen2(void **state) {
  (void)state;
  check_greedy(path_qwen2, "tiny-qwen2");
}

static void test_greedy_qwen3(void **state) {
  (void)state;
  check_greedy(path_qwen3, "tiny-qwen3");
}

/* 72 positions against a window of 16: decoding walks out of the window block by block */
static void test_greedy_gemma3(void **state) {
  (void)state;
  check_greedy(path_gemma3, "tiny-gemma3");
}

/* rope_freqs.weight (llama.cpp's form of Llama 3.1 scaling) gives the metadata rule's logits. */
static void test_rope_freqs_tensor(void **state) {
  (void)state;
  kv_type = HS_KV_F32; /* the f16 cache's rounding is test_ref_llama3's business */
  char path[300];
  write_model("tiny-llama3", HS_SYNTH_F32, 1, path, sizeof path, "ropef.gguf");
  hs_model *a = open_model(path_llama3), *b = open_model(path);
  const size_t nv = hs_model_get_params(a)->n_vocab;
  int32_t toks[N_PROMPT];
  prompt(toks, N_PROMPT, (uint32_t)nv, 3);
  float *la = c_logits(a, toks, N_PROMPT), *lb = c_logits(b, toks, N_PROMPT);
  double e = max_rel_err(lb, la, N_PROMPT, nv);
  print_message("rope_freqs.weight vs metadata scaling: max rel diff %.3g\n", e);
  assert_true(e <= 1e-5);
  float *r = ref_logits(path, toks, N_PROMPT, nv);
  assert_true(max_rel_err(lb, r, N_PROMPT, nv) <= 1e-4);
  /* and the scaling matters at these positions, far above the tolerance of the reference check:
   * an engine that ignored it would fail test_ref_llama3 */
  char plain[300];
  write_model("tiny-llama3", HS_SYNTH_F32, 2, plain, sizeof plain, "noscale.gguf");
  hs_model *c = open_model(plain);
  float *lc = c_logits(c, toks, N_PROMPT);
  double d = max_rel_err(lc, la, N_PROMPT, nv);
  print_message("llama3 scaling on vs off: max rel diff %.3g\n", d);
  assert_true(d > 1e-3);
  free(lc);
  hs_model_close(c);
  free(la);
  free(lb);
  free(r);
  hs_model_close(a);
  hs_model_close(b);
  kv_type = HS_KV_F16;
}

/* ---- the shipped model ---- */

/* models/expr.gguf (trained by tools/expr/train.py, Q8_0) on a real prompt of its task: logits of
 * every position against the reference on the same weights with the kernels' activation rounding
 * (relative L2 error within 1e-2, the same top token at every position), and its greedy answer. */
static void test_ref_shipped(void **state) {
  (void)state;
  char path[4096];
  const char *dir = getenv("HS_SOURCE_DIR");
  assert_non_null(dir);
  snprintf(path, sizeof path, "%s/models/expr.gguf", dir);
  kv_type = HS_KV_F32;
  hs_model *m = open_model(path);
  const size_t nv = hs_model_get_params(m)->n_vocab;
  static const char text[] = "Write f(x) to fit the examples\nf(0)=3 f(1)=5 f(2)=7\nf(x)=";
  enum { N = sizeof text }; /* BOS and the bytes */
  int32_t toks[N];
  toks[0] = 258; /* BOS of the byte vocabulary */
  for (size_t i = 0; i + 1 < N; i++) toks[i + 1] = (unsigned char)text[i];
  float *c = c_logits(m, toks, N);
  size_t len;
  float *raq = run_ref("logits", path, "--act-quant", toks, N, &len);
  assert_int_equal(len, N * nv * sizeof(float));
  double e = rel_l2(c, raq, N * nv);
  int agree = 0;
  for (size_t t = 0; t < N; t++) agree += argmax(c + t * nv, nv) == argmax(raq + t * nv, nv);
  print_message("shipped model: relative L2 error %.3g against the reference with quantized "
                "activations, top-1 equal at %d of %d positions\n", e, agree, (int)N);
  assert_true(e <= 1e-2);
  assert_int_equal(agree, N);
  free(c);
  free(raq);
  hs_model_close(m);
  kv_type = HS_KV_F16;
}

/* ---- batch invariance ---- */

/* Three sequences of 5, 37 and 70 tokens interleaved in one call give, bit for bit, the logits
 * each gets alone; then one decode step for all three at once, likewise. */
static void test_batch_invariance(void **state) {
  (void)state;
  hs_model *m = open_model(path_qwen2);
  const size_t nv = hs_model_get_params(m)->n_vocab;
  enum { NS = 3 };
  const size_t len[NS] = {5, 37, 70};
  int32_t toks[NS][71];
  float *alone[NS];
  for (int s = 0; s < NS; s++) {
    prompt(toks[s], len[s] + 1, (uint32_t)nv, 10 + (uint32_t)s);
    alone[s] = c_logits(m, toks[s], len[s] + 1); /* prompt and the decoded token */
  }
  hs_seq *seq[NS];
  for (int s = 0; s < NS; s++) assert_int_equal(hs_seq_create(m, 128, &seq[s]), 0);
  /* round-robin interleaving */
  hs_batch_item it[5 + 37 + 70];
  size_t n = 0, next[NS] = {0};
  int owner[5 + 37 + 70];
  while (n < 5 + 37 + 70)
    for (int s = 0; s < NS; s++)
      if (next[s] < len[s]) {
        owner[n] = s;
        it[n++] = (hs_batch_item){seq[s], toks[s][next[s]++], true};
      }
  float *lg = malloc(n * nv * sizeof *lg);
  assert_int_equal(hs_model_forward(m, it, n, lg, NULL), 0);
  size_t pos[NS] = {0};
  for (size_t i = 0; i < n; i++) {
    int s = owner[i];
    if (memcmp(lg + i * nv, alone[s] + pos[s] * nv, nv * sizeof(float)) != 0)
      fail_msg("sequence %d position %zu: batched logits differ from alone", s, pos[s]);
    pos[s]++;
  }
  for (int s = 0; s < NS; s++) assert_int_equal(hs_seq_len(seq[s]), len[s]);
  /* one decode step of all three */
  hs_batch_item step[NS];
  for (int s = 0; s < NS; s++) step[s] = (hs_batch_item){seq[s], toks[s][len[s]], true};
  assert_int_equal(hs_model_forward(m, step, NS, lg, NULL), 0);
  for (int s = 0; s < NS; s++)
    assert_memory_equal(lg + s * nv, alone[s] + len[s] * nv, nv * sizeof(float));
  for (int s = 0; s < NS; s++) {
    hs_seq_destroy(seq[s]);
    free(alone[s]);
  }
  free(lg);
  hs_model_close(m);
}

/* A 70-token prompt at once, one token per call, and in uneven chunks with logits only at some
 * positions: the same bits. */
static void test_prefill_equals_stepwise(void **state) {
  (void)state;
  hs_model *m = open_model(path_llama3);
  const size_t nv = hs_model_get_params(m)->n_vocab;
  enum { N = 70 };
  int32_t toks[N];
  prompt(toks, N, (uint32_t)nv, 20);
  float *all = c_logits(m, toks, N);
  hs_seq *s;
  assert_int_equal(hs_seq_create(m, N, &s), 0);
  float *lg = malloc(nv * sizeof *lg);
  for (size_t i = 0; i < N; i++) {
    hs_batch_item one = {s, toks[i], true};
    assert_int_equal(hs_model_forward(m, &one, 1, lg, NULL), 0);
    if (memcmp(lg, all + i * nv, nv * sizeof *lg) != 0)
      fail_msg("position %zu: one token per call differs from the whole prompt at once", i);
  }
  /* chunks of 1, 31, 33 and 5 tokens, logits at the chunk's last and every 7th position */
  assert_int_equal(hs_seq_truncate(s, 0), 0);
  static const size_t chunk[] = {1, 31, 33, 5};
  size_t at = 0;
  for (size_t c = 0; c < 4; c++) {
    hs_batch_item it[40];
    size_t want[40], nw = 0;
    for (size_t i = 0; i < chunk[c]; i++, at++) {
      bool w = i + 1 == chunk[c] || at % 7 == 0;
      it[i] = (hs_batch_item){s, toks[at], w};
      if (w) want[nw++] = at;
    }
    float *out = malloc(nw * nv * sizeof *out);
    assert_int_equal(hs_model_forward(m, it, chunk[c], out, NULL), 0);
    for (size_t k = 0; k < nw; k++)
      if (memcmp(out + k * nv, all + want[k] * nv, nv * sizeof *out) != 0)
        fail_msg("chunk %zu: logits of position %zu differ", c, want[k]);
    free(out);
  }
  assert_int_equal(hs_seq_len(s), N);
  hs_seq_destroy(s);
  free(lg);
  free(all);
  hs_model_close(m);
}

/* ---- capacity, truncation, errors ---- */

static void test_capacity_and_truncate(void **state) {
  (void)state;
  hs_model *m = open_model(path_llama3);
  const size_t nv = hs_model_get_params(m)->n_vocab;
  int32_t toks[8];
  prompt(toks, 8, (uint32_t)nv, 30);
  float *full = c_logits(m, toks, 8);
  hs_seq *a, *b;
  assert_int_equal(hs_seq_create(m, 8, &a), 0);
  assert_int_equal(hs_seq_create(m, 4, &b), 0);
  assert_int_equal(hs_seq_capacity(a), 8);
  hs_batch_item it[9];
  for (int i = 0; i < 8; i++) it[i] = (hs_batch_item){a, toks[i], false};
  assert_int_equal(hs_model_forward(m, it, 8, NULL, NULL), 0);
  assert_int_equal(hs_seq_len(a), 8);
  /* full: one more is refused */
  it[0] = (hs_batch_item){a, toks[0], true};
  float *lg = malloc(8 * nv * sizeof *lg);
  assert_int_equal(hs_model_forward(m, it, 1, lg, NULL), HS_ENOSPC);
  assert_msg_has(hs_engine_last_error(), "8 of 8");
  assert_int_equal(hs_seq_len(a), 8);
  /* a batch where only the second sequence overflows: nothing is appended to either */
  assert_int_equal(hs_seq_truncate(a, 3), 0);
  for (int i = 0; i < 5; i++) it[i] = (hs_batch_item){b, toks[i], true};
  it[5] = (hs_batch_item){a, toks[3], true};
  assert_int_equal(hs_model_forward(m, it, 6, lg, NULL), HS_ENOSPC);
  assert_msg_has(hs_engine_last_error(), "batch item 4");
  assert_int_equal(hs_seq_len(a), 3);
  assert_int_equal(hs_seq_len(b), 0);
  /* truncated to 3, positions 3..7 recomputed: the same logits as the first time */
  for (int i = 3; i < 8; i++) it[i - 3] = (hs_batch_item){a, toks[i], true};
  assert_int_equal(hs_model_forward(m, it, 5, lg, NULL), 0);
  assert_memory_equal(lg, full + 3 * nv, 5 * nv * sizeof *lg);
  /* truncate beyond the length */
  assert_int_equal(hs_seq_truncate(a, 9), HS_EINVAL);
  assert_int_equal(hs_seq_len(a), 8);
  /* bad tokens and foreign sequences */
  it[0] = (hs_batch_item){b, (int32_t)nv, true};
  assert_int_equal(hs_model_forward(m, it, 1, lg, NULL), HS_EINVAL);
  assert_msg_has(hs_engine_last_error(), "out of range");
  it[0] = (hs_batch_item){b, -1, true};
  assert_int_equal(hs_model_forward(m, it, 1, lg, NULL), HS_EINVAL);
  it[0] = (hs_batch_item){NULL, 1, true};
  assert_int_equal(hs_model_forward(m, it, 1, lg, NULL), HS_EINVAL);
  hs_model *other = open_model(path_llama3);
  it[0] = (hs_batch_item){b, 1, true};
  assert_int_equal(hs_model_forward(other, it, 1, lg, NULL), HS_EINVAL);
  assert_msg_has(hs_engine_last_error(), "another model");
  hs_model_close(other);
  assert_int_equal(hs_seq_len(b), 0);
  assert_int_equal(hs_model_forward(m, NULL, 0, lg, NULL), 0);
  assert_int_equal(hs_model_forward(m, NULL, 1, lg, NULL), HS_EINVAL);
  hs_seq_destroy(a);
  hs_seq_destroy(b);
  free(lg);
  free(full);
  hs_model_close(m);
}

static void test_open_errors(void **state) {
  (void)state;
  hs_model *m;
  char path[300];
  tmp_path(path, sizeof path, "missing.gguf");
  assert_int_equal(hs_model_open(path, NULL, &m), HS_ENOENT);
  assert_null(m);
  /* a GGUF that is not a model */
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "general.architecture", "gpt2", 4), 0);
  tmp_path(path, sizeof path, "notamodel.gguf");
  assert_int_equal(hs_gguf_writer_write_file(w, path), 0);
  hs_gguf_writer_destroy(w);
  assert_int_equal(hs_model_open(path, NULL, &m), HS_EINVAL);
  assert_msg_has(hs_engine_last_error(), "gpt2");
  assert_int_equal(hs_model_open(NULL, NULL, &m), HS_EINVAL);
  hs_model_opts o = {.n_threads = 1};
  assert_int_equal(hs_model_open(path_qwen2, &o, &m), 0);
  assert_int_equal(hs_model_n_threads(m), 1);
  assert_non_null(hs_model_get_gguf(m));
  assert_string_equal(hs_model_get_params(m)->arch_name, "qwen2");
  hs_model_close(m);
}

/* The thread count does not change the bits. */
static void test_threads_invariance(void **state) {
  (void)state;
  hs_model_opts o1 = {.n_threads = 1}, o3 = {.n_threads = 3};
  hs_model *a, *b;
  assert_int_equal(hs_model_open(path_llama3, &o1, &a), 0);
  assert_int_equal(hs_model_open(path_llama3, &o3, &b), 0);
  const size_t nv = hs_model_get_params(a)->n_vocab;
  int32_t toks[N_PROMPT];
  prompt(toks, N_PROMPT, (uint32_t)nv, 40);
  float *la = c_logits(a, toks, N_PROMPT), *lb = c_logits(b, toks, N_PROMPT);
  assert_memory_equal(la, lb, N_PROMPT * nv * sizeof *la);
  free(la);
  free(lb);
  hs_model_close(a);
  hs_model_close(b);
}

/* ---- out of memory ---- */

/* A long prompt on a wider model, so that every row phase (the KV store included) is split over
 * the threads: 1, 2 and 3 threads give the same bits, run after run. (A parallel KV store that
 * cleared a whole key block at its first position once wiped keys another thread had written.) */
static void test_threads_invariance_long(void **state) {
  (void)state;
  char path[300];
  write_model("small-llama3", HS_SYNTH_F32, 0, path, sizeof path, "long.gguf");
  enum { N = 200 };
  hs_model_opts o1 = {.n_threads = 1};
  hs_model *one;
  assert_int_equal(hs_model_open(path, &o1, &one), 0);
  const size_t nv = hs_model_get_params(one)->n_vocab;
  int32_t toks[N];
  prompt(toks, N, (uint32_t)nv, 41);
  float *want = c_logits(one, toks, N);
  for (unsigned threads = 2; threads <= 3; threads++) {
    hs_model_opts o = {.n_threads = threads};
    hs_model *m;
    assert_int_equal(hs_model_open(path, &o, &m), 0);
    for (int run = 0; run < 4; run++) {
      float *got = c_logits(m, toks, N);
      if (memcmp(got, want, N * nv * sizeof *got) != 0)
        fail_msg("%u threads, run %d: logits differ from one thread's (max rel diff %.3g)",
                 threads, run, max_rel_err(got, want, N, nv));
      free(got);
    }
    hs_model_close(m);
  }
  free(want);
  hs_model_close(one);
  unlink(path);
}

static void test_oom(void **state) {
  (void)state;
  long base = live_blocks;
  hs_model *m = NULL;
  int rc = -1;
  long k;
  for (k = 1; k < 10000; k++) {
    hs_alloc_fail_after(k);
    rc = hs_model_open(path_qwen2, NULL, &m);
    hs_alloc_fail_after(0);
    if (rc == 0) break;
    if (rc != HS_ENOMEM) fail_msg("allocation %ld failed: open gave %d (%s)", k, rc, hs_engine_last_error());
    assert_null(m);
    assert_int_equal(live_blocks, base);
  }
  assert_int_equal(rc, 0);
  print_message("hs_model_open: %ld allocations, each failure handled\n", k - 1);
  long after_open = live_blocks;
  hs_seq *s = NULL;
  /* one allocation: the sequence takes its blocks and tables as it grows */
  hs_alloc_fail_after(1);
  assert_int_equal(hs_seq_create(m, 0, &s), HS_ENOMEM);
  hs_alloc_fail_after(0);
  assert_null(s);
  assert_int_equal(live_blocks, after_open);
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  /* the workspace grows at the first call: every allocation of it may fail */
  const size_t nv = hs_model_get_params(m)->n_vocab;
  int32_t toks[N_PROMPT];
  prompt(toks, N_PROMPT, (uint32_t)nv, 50);
  hs_batch_item it[N_PROMPT];
  for (size_t i = 0; i < N_PROMPT; i++) it[i] = (hs_batch_item){s, toks[i], true};
  float *lg = malloc(N_PROMPT * nv * sizeof *lg);
  for (k = 1; k < 1000; k++) {
    hs_alloc_fail_after(k);
    rc = hs_model_forward(m, it, N_PROMPT, lg, NULL);
    hs_alloc_fail_after(0);
    if (rc == 0) break;
    assert_int_equal(rc, HS_ENOMEM);
    assert_int_equal(hs_seq_len(s), 0);
  }
  assert_int_equal(rc, 0);
  float *ref = c_logits(m, toks, N_PROMPT);
  assert_memory_equal(lg, ref, N_PROMPT * nv * sizeof *lg);
  free(ref);
  free(lg);
  hs_seq_destroy(s);
  hs_model_close(m);
  assert_int_equal(live_blocks, base);
}

/* ---- row operations ---- */

static void test_ops(void **state) {
  (void)state;
  /* rope: a pair rotated by 90 degrees, in both layouts */
  double theta[2] = {M_PI / 2, 0.0};
  float cs[4];
  hs_op_rope_table(cs, theta, 4, 1);
  float x[4] = {1, 2, 3, 4}, y[4] = {1, 2, 3, 4};
  hs_op_rope(x, 1, 4, 4, false, cs); /* pairs (0,1) by 90 deg, (2,3) by 0 */
  assert_true(fabsf(x[0] + 2) < 1e-6f && fabsf(x[1] - 1) < 1e-6f && x[2] == 3 && x[3] == 4);
  hs_op_rope(y, 1, 4, 4, true, cs); /* pairs (0,2) by 90 deg, (1,3) by 0 */
  assert_true(fabsf(y[0] + 3) < 1e-6f && fabsf(y[2] - 1) < 1e-6f && y[1] == 2 && y[3] == 4);
  /* partial rotation: dimensions past n_rot untouched */
  float z[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  hs_op_rope(z, 2, 4, 2, false, cs);
  assert_true(fabsf(z[0] + 2) < 1e-6f && z[2] == 3 && z[3] == 4 && fabsf(z[4] + 6) < 1e-6f);
  /* softmax */
  float sm[5] = {1, 2, 3, 4, 1000};
  hs_op_softmax(sm, 4);
  double sum = 0;
  for (int i = 0; i < 4; i++) sum += sm[i];
  assert_true(fabs(sum - 1) < 1e-6 && sm[3] > sm[2] && fabsf(sm[3] / sm[2] - expf(1)) < 1e-5f);
  assert_true(sm[4] == 1000);
  /* rmsnorm of 19 values (a vector body and a tail) against the formula */
  float v[19], w[19], o[19];
  double ss = 0;
  for (int i = 0; i < 19; i++) {
    v[i] = (float)(i - 9) * 0.37f;
    w[i] = 1.0f + 0.01f * (float)i;
    ss += (double)v[i] * v[i];
  }
  hs_op_rmsnorm(o, v, w, 19, 1e-5f);
  for (int i = 0; i < 19; i++)
    assert_true(fabs(o[i] - v[i] / sqrt(ss / 19 + 1e-5) * w[i]) < 1e-6);
  /* swiglu */
  float g[3] = {0, 1, -2}, u[3] = {5, 2, 3}, r[3];
  hs_op_swiglu(r, g, u, 3);
  assert_true(r[0] == 0 && fabsf(r[1] - 2 / (1 + expf(-1))) < 1e-6f &&
              fabsf(r[2] - (-2 / (1 + expf(2))) * 3) < 1e-6f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ops),
      cmocka_unit_test(test_ref_llama3),
      cmocka_unit_test(test_ref_qwen2),
      cmocka_unit_test(test_ref_tied),
      cmocka_unit_test(test_greedy_llama3),
      cmocka_unit_test(test_greedy_qwen2),
      cmocka_unit_test(test_ref_qwen3),
      cmocka_unit_test(test_ref_gemma3),
      cmocka_unit_test(test_greedy_qwen3),
      cmocka_unit_test(test_greedy_gemma3),
      cmocka_unit_test(test_rope_freqs_tensor),
      cmocka_unit_test(test_ref_shipped),
      cmocka_unit_test(test_batch_invariance),
      cmocka_unit_test(test_prefill_equals_stepwise),
      cmocka_unit_test(test_capacity_and_truncate),
      cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_threads_invariance),
      cmocka_unit_test(test_threads_invariance_long),
      cmocka_unit_test(test_oom),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
