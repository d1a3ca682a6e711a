/* test_generate.c: single-sequence generation and embeddings (src/engine/generate.c) on a small
 * synthetic model with a BPE vocabulary learned from a text corpus.
 *
 * Greedy generation is checked against an independent loop over hs_model_forward (argmax of
 * each step's logits); sampling against itself (one seed, one output; another seed, another);
 * the callback's chunks against the result text (concatenation, whole UTF-8 characters);
 * stop strings (cut, never streamed), stop tokens, cancellation, max_tokens and the context
 * limit; grammar- and schema-constrained output (always well-formed); embeddings against the
 * hidden states of the forward pass pooled by hand; bad arguments; and out-of-memory at every
 * allocation of a constrained generation, with nothing leaked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/engine.h"
#include "hswarm/error.h"
#include "hswarm/generate.h"
#include "hswarm/grammar.h"
#include "hswarm/synth.h"
#include "hswarm/tokenizer.h"

#include "support/counting_alloc.h"
#include "support/utf8_check.h"

static const char CORPUS[] =
    "def add(a, b):\n    return a + b\n\nclass Point:\n    def __init__(self, x, y):\n"
    "        self.x = x\n        self.y = y\n\nThe quick brown fox jumps over the lazy dog.\n"
    "{\"name\": \"value\", \"count\": 42, \"ok\": true}\n"
    "Größe, naïve café, 東京 and 🦊 are text too.\n";

static hs_model *model;
static hs_tokenizer *tok;
static char model_path[300];

static int add_vocab(hs_gguf_writer *w, void *ctx) {
  (void)ctx;
  hs_vocab_train_opts o = {.kind = HS_TOKENIZER_BPE, .n_vocab = 512, .pre = "llama-bpe"};
  return hs_vocab_train(CORPUS, sizeof CORPUS - 1, &o, w, NULL);
}

static int group_setup(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  if (make_tmpdir("hs_generate") != 0) return -1;
  hs_synth_spec s;
  if (hs_synth_preset("tiny-llama3", &s) != 0) return -1;
  s.type = HS_SYNTH_F32;
  s.seed = 77;
  s.add_tokenizer = add_vocab;
  tmp_path(model_path, sizeof model_path, "gen.gguf");
  if (hs_synth_write(&s, model_path, NULL) != 0) {
    fprintf(stderr, "synth: %s\n", hs_synth_last_error());
    return -1;
  }
  hs_model_opts mo = {.n_threads = 2};
  if (hs_model_open(model_path, &mo, &model) != 0) return -1;
  if (hs_tokenizer_load(hs_model_get_gguf(model), &tok) != 0) return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  hs_tokenizer_destroy(tok);
  hs_model_close(model);
  return remove_tmpdir_and_hooks();
}

static size_t encode(const char *text, int32_t *ids, size_t cap) {
  size_t n = 0;
  assert_int_equal(hs_tokenizer_encode(tok, text, strlen(text), HS_TOKENIZE_ADD_BOS, ids, cap, &n), 0);
  return n;
}

static hs_seq *new_seq(uint32_t n_ctx) {
  hs_seq *s = NULL;
  assert_int_equal(hs_seq_create(model, n_ctx, &s), 0);
  return s;
}

static size_t argmax(const float *v, size_t n) {
  size_t b = 0;
  for (size_t i = 1; i < n; i++)
    if (v[i] > v[b]) b = i;
  return b;
}

/* Greedy generation = argmax of each step, computed here with the forward pass alone. */
static void test_greedy_matches_forward(void **state) {
  (void)state;
  int32_t ids[64];
  size_t n = encode("def add(a, b):", ids, 64);
  hs_generate_params p;
  hs_generate_params_init(&p);
  p.sampling.temperature = 0;
  p.max_tokens = 24;
  p.ignore_eos = true;
  hs_seq *s = new_seq(128);
  hs_generate_result r;
  assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r), 0);
  assert_int_equal(r.finish, HS_FINISH_LENGTH);
  assert_int_equal(r.n_generated, 24);
  assert_int_equal(r.n_prompt, n);

  const uint32_t nv = hs_model_get_params(model)->n_vocab;
  float *logits = malloc(sizeof(float) * nv);
  hs_seq *s2 = new_seq(128);
  hs_batch_item items[64];
  for (size_t i = 0; i < n; i++) items[i] = (hs_batch_item){s2, ids[i], i + 1 == n};
  assert_int_equal(hs_model_forward(model, items, n, logits, NULL), 0);
  for (uint32_t k = 0; k < 24; k++) {
    int32_t next = (int32_t)argmax(logits, nv);
    assert_int_equal(next, r.tokens[k]);
    items[0] = (hs_batch_item){s2, next, true};
    assert_int_equal(hs_model_forward(model, items, 1, logits, NULL), 0);
  }
  /* the text is the decoding of the tokens */
  char text[4096];
  size_t len = 0;
  assert_int_equal(hs_tokenizer_decode(tok, r.tokens, r.n_generated, 0, text, sizeof text, &len), 0);
  /* valid UTF-8 in both: equal when the decoding is itself well-formed */
  if (len == r.text_len) assert_memory_equal(text, r.text, len);
  free(logits);
  hs_generate_result_free(&r);
  hs_seq_destroy(s);
  hs_seq_destroy(s2);
}

static void run_sampled(uint64_t seed, hs_generate_result *r) {
  int32_t ids[64];
  size_t n = encode("class Point", ids, 64);
  hs_generate_params p;
  hs_generate_params_init(&p);
  p.sampling.temperature = 1.0f;
  p.sampling.seed = seed;
  p.max_tokens = 20;
  p.ignore_eos = true;
  hs_seq *s = new_seq(64);
  assert_int_equal(hs_generate(model, tok, s, ids, n, &p, r), 0);
  hs_seq_destroy(s);
}

static void test_seeded_sampling(void **state) {
  (void)state;
  hs_generate_result a, b, c;
  run_sampled(11, &a);
  run_sampled(11, &b);
  run_sampled(12, &c);
  assert_int_equal(a.n_generated, 20);
  assert_memory_equal(a.tokens, b.tokens, sizeof(int32_t) * 20);
  assert_true(memcmp(a.tokens, c.tokens, sizeof(int32_t) * 20) != 0);
  hs_generate_result_free(&a);
  hs_generate_result_free(&b);
  hs_generate_result_free(&c);
}

typedef struct collect {
  char buf[8192];
  size_t len;
  int calls, cancel_after;
  bool bad_utf8;
} collect;

static int on_token(void *ctx, int32_t token, const char *text, size_t len) {
  (void)token;
  collect *c = ctx;
  if (!utf8_well_formed((const unsigned char *)text, len)) c->bad_utf8 = true;
  assert_true(c->len + len < sizeof c->buf);
  memcpy(c->buf + c->len, text, len);
  c->len += len;
  c->calls++;
  return c->cancel_after && c->calls >= c->cancel_after;
}

/* Streamed chunks are whole characters and add up to the text; a stop string found in a free
 * run cuts the text there and is never streamed. */
static void test_stream_and_stop_string(void **state) {
  (void)state;
  int32_t ids[64];
  size_t n = encode("The quick", ids, 64);
  hs_generate_params p;
  hs_generate_params_init(&p);
  p.sampling.temperature = 0;
  p.max_tokens = 40;
  p.ignore_eos = true;
  collect c = {0};
  p.on_token = on_token;
  p.ctx = &c;
  hs_seq *s = new_seq(128);
  hs_generate_result r;
  assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r), 0);
  assert_false(c.bad_utf8);
  assert_int_equal(c.len, r.text_len);
  assert_memory_equal(c.buf, r.text, r.text_len);
  assert_true(r.text_len >= 6);
  /* take 2 bytes from the middle of the free text as a stop string */
  char stop[8] = {0};
  size_t at = r.text_len / 2;
  while (at > 0 && ((unsigned char)r.text[at] >> 6) == 2) at--;
  size_t sl = 1;
  while (at + sl < r.text_len && ((unsigned char)r.text[at + sl] >> 6) == 2) sl++;
  memcpy(stop, r.text + at, sl);
  const char *first = strstr(r.text, stop);
  size_t cut = (size_t)(first - r.text);
  hs_seq_destroy(s);

  collect c2 = {0};
  const char *stops[] = {stop};
  p.ctx = &c2;
  p.stop = stops;
  p.n_stop = 1;
  s = new_seq(128);
  hs_generate_result r2;
  assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r2), 0);
  assert_int_equal(r2.finish, HS_FINISH_STOP);
  assert_int_equal(r2.text_len, cut);
  assert_memory_equal(r2.text, r.text, cut);
  assert_int_equal(c2.len, cut);
  assert_null(strstr(c2.buf, stop));
  hs_generate_result_free(&r);
  hs_generate_result_free(&r2);
  hs_seq_destroy(s);
}

static void test_cancel_stop_token_and_limits(void **state) {
  (void)state;
  int32_t ids[64];
  size_t n = encode("def", ids, 64);
  hs_generate_params p;
  hs_generate_params_init(&p);
  p.sampling.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = 30;
  collect c = {.cancel_after = 5};
  p.on_token = on_token;
  p.ctx = &c;
  hs_seq *s = new_seq(128);
  hs_generate_result r;
  assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r), 0);
  assert_int_equal(r.finish, HS_FINISH_CANCELLED);
  assert_int_equal(r.n_generated, 5);
  int32_t third = r.tokens[2];
  hs_generate_result_free(&r);
  hs_seq_destroy(s);

  /* a stop token ends generation at its first occurrence, and is reported */
  p.on_token = NULL;
  p.stop_tokens = &third;
  p.n_stop_tokens = 1;
  s = new_seq(128);
  assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r), 0);
  assert_int_equal(r.finish, HS_FINISH_STOP);
  uint32_t first = 0;
  while (r.tokens[first] != third) first++;
  assert_int_equal(r.n_generated, first + 1);
  hs_generate_result_free(&r);
  hs_seq_destroy(s);

  /* the context: prompt + generation never exceed it; a prompt that does not fit is refused */
  p.n_stop_tokens = 0;
  p.max_tokens = 0;
  s = new_seq(16);
  assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r), 0);
  assert_int_equal(r.finish, HS_FINISH_LENGTH);
  assert_int_equal(r.n_prompt + r.n_generated, 16);
  assert_true(hs_seq_len(s) <= 16);
  hs_generate_result_free(&r);
  int32_t many[40];
  for (int i = 0; i < 40; i++) many[i] = ids[i % n];
  hs_seq *s2 = new_seq(32);
  assert_int_equal(hs_generate(model, tok, s2, many, 40, &p, &r), HS_ENOSPC);
  assert_msg_has(hs_generate_last_error(), "context");
  assert_int_equal(hs_seq_len(s2), 0);
  assert_null(r.text);
  hs_seq_destroy(s);
  hs_seq_destroy(s2);

  /* bad arguments */
  int32_t bad = 100000;
  s = new_seq(16);
  assert_int_equal(hs_generate(model, tok, s, &bad, 1, &p, &r), HS_EINVAL);
  assert_int_equal(hs_generate(model, tok, s, ids, 0, &p, &r), HS_EINVAL);
  hs_grammar *g;
  assert_int_equal(hs_grammar_parse("root ::= \"a\"", 12, NULL, &g), 0);
  p.grammar = g; /* no grammar_vocab */
  assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r), HS_EINVAL);
  hs_grammar_destroy(g);
  hs_seq_destroy(s);
}

/* Constrained output is always well-formed, whatever the seed. */
static void test_grammar_and_schema(void **state) {
  (void)state;
  static const char schema[] =
      "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"},"
      "\"tag\":{\"enum\":[\"red\",\"green\"]}},\"required\":[\"n\",\"tag\"]}";
  hs_grammar *gs, *gg;
  assert_int_equal(hs_grammar_from_json_schema(schema, sizeof schema - 1, &gs), 0);
  static const char gbnf[] = "root ::= [0-9]+ (\",\" [0-9]+)* \".\"";
  assert_int_equal(hs_grammar_parse(gbnf, sizeof gbnf - 1, NULL, &gg), 0);
  hs_grammar_vocab *gv;
  assert_int_equal(hs_generate_vocab_create(tok, &gv), 0);
  int32_t ids[64];
  size_t n = encode("{\"name\":", ids, 64);
  for (uint64_t seed = 1; seed <= 6; seed++) {
    hs_generate_params p;
    hs_generate_params_init(&p);
    p.sampling.temperature = 1.5f;
    p.sampling.seed = seed;
    p.max_tokens = 300;
    p.grammar = seed % 2 ? gs : gg;
    p.grammar_vocab = gv;
    hs_seq *s = new_seq(512);
    hs_generate_result r;
    assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r), 0);
    if (r.finish != HS_FINISH_STOP) fail_msg("seed %d: unfinished: %s", (int)seed, r.text);
    /* the whole text is accepted by a fresh state and completes it */
    hs_grammar_state *st;
    assert_int_equal(hs_grammar_state_create(p.grammar, &st), 0);
    if (hs_grammar_state_accept_bytes(st, r.text, r.text_len) != 0 ||
        !hs_grammar_state_is_complete(st))
      fail_msg("seed %d: output not in the grammar: %s", (int)seed, r.text);
    if (seed % 2) assert_non_null(strstr(r.text, "\"tag\""));
    else assert_int_equal(r.text[r.text_len - 1], '.');
    hs_grammar_state_destroy(st);
    hs_generate_result_free(&r);
    hs_seq_destroy(s);
  }
  hs_grammar_vocab_destroy(gv);
  hs_grammar_destroy(gs);
  hs_grammar_destroy(gg);
}

/* Embeddings: unit norm; the mean and last poolings of the forward pass's hidden states. */
/* A pinned text prefix is what a prompt starting with that text reuses. */
static void test_pin_text(void **state) {
  (void)state;
  const char *sys = "You review Python code. Answer with a verdict and one reason.\n"
                    "def add(a, b):\n    return a + b\n\nclass Point:\n    pass\n";
  hs_prefix *p;
  assert_int_equal(hs_prefix_pin_text(model, tok, sys, strlen(sys), HS_TOKENIZE_ADD_BOS, &p), 0);
  int32_t ids[256];
  char prompt[512];
  snprintf(prompt, sizeof prompt, "%sIs it correct?", sys);
  size_t n = encode(prompt, ids, 256);
  assert_true(hs_prefix_len(p) >= 32);
  hs_seq *s = new_seq(0);
  uint32_t reused;
  assert_int_equal(hs_seq_attach_prefix(s, ids, n - 1, &reused), 0);
  assert_true(reused >= hs_prefix_len(p) - 32); /* the text's last tokens may merge differently */
  hs_kv_stats st;
  hs_kv_get_stats(model, &st);
  assert_int_equal(st.blocks_pinned, hs_prefix_len(p) / 32);
  hs_seq_destroy(s);
  hs_prefix_unpin(p);
  hs_kv_get_stats(model, &st);
  assert_int_equal(st.blocks_pinned, 0);
  assert_int_equal(hs_prefix_pin_text(model, tok, "hi", 2, 0, &p), HS_EINVAL);
  assert_null(p);
}

static void test_embed(void **state) {
  (void)state;
  const uint32_t d = hs_model_get_params(model)->n_embd;
  int32_t ids[64];
  size_t n = encode("The lazy dog", ids, 64);
  float *mean = malloc(sizeof(float) * d), *last = malloc(sizeof(float) * d);
  float *hidden = malloc(sizeof(float) * d * n), *again = malloc(sizeof(float) * d);
  assert_int_equal(hs_embed(model, ids, n, HS_POOLING_MEAN, mean), 0);
  assert_int_equal(hs_embed(model, ids, n, HS_POOLING_LAST, last), 0);
  assert_int_equal(hs_embed(model, ids, n, HS_POOLING_MEAN, again), 0);
  assert_memory_equal(mean, again, sizeof(float) * d);
  hs_seq *s = new_seq(64);
  hs_batch_item items[64];
  for (size_t i = 0; i < n; i++) items[i] = (hs_batch_item){s, ids[i], true};
  assert_int_equal(hs_model_forward(model, items, n, NULL, hidden), 0);
  double nm = 0, nl = 0;
  for (uint32_t j = 0; j < d; j++) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m += hidden[i * d + j];
    nm += (m / (double)n) * (m / (double)n);
    nl += (double)hidden[(n - 1) * d + j] * hidden[(n - 1) * d + j];
  }
  nm = sqrt(nm);
  nl = sqrt(nl);
  double sm = 0, sl = 0, dot = 0;
  for (uint32_t j = 0; j < d; j++) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m += hidden[i * d + j];
    assert_float_equal(mean[j], m / (double)n / nm, 1e-5);
    assert_float_equal(last[j], hidden[(n - 1) * d + j] / nl, 1e-5);
    sm += (double)mean[j] * mean[j];
    sl += (double)last[j] * last[j];
    dot += (double)mean[j] * last[j];
  }
  assert_float_equal(sm, 1.0, 1e-5);
  assert_float_equal(sl, 1.0, 1e-5);
  assert_true(dot < 0.999);
  assert_int_equal(hs_embed(model, ids, 0, HS_POOLING_MEAN, mean), HS_EINVAL);
  hs_seq_destroy(s);
  free(mean);
  free(last);
  free(hidden);
  free(again);
}

/* Out of memory at each allocation of a constrained, streamed generation: a clean error, nothing
 * leaked, and then the same call succeeds. */
static void test_out_of_memory(void **state) {
  (void)state;
  hs_grammar *g;
  static const char gbnf[] = "root ::= \"[\" [a-z]+ (\" \" [a-z]+)* \"]\"";
  assert_int_equal(hs_grammar_parse(gbnf, sizeof gbnf - 1, NULL, &g), 0);
  hs_grammar_vocab *gv;
  assert_int_equal(hs_generate_vocab_create(tok, &gv), 0);
  int32_t ids[64];
  size_t n = encode("def add", ids, 64);
  hs_generate_params p;
  hs_generate_params_init(&p);
  p.sampling.seed = 3;
  p.max_tokens = 12;
  p.grammar = g;
  p.grammar_vocab = gv;
  const char *stops[] = {"zz"};
  p.stop = stops;
  p.n_stop = 1;
  int failures = 0;
  /* a first run grows what stays with the model (the prefix cache's tables); after each failed
   * run, its sequence destroyed and the cache emptied, nothing else may be left */
  {
    hs_seq *s = new_seq(64);
    hs_generate_result r;
    assert_int_equal(hs_generate(model, tok, s, ids, n, &p, &r), 0);
    hs_generate_result_free(&r);
    hs_seq_destroy(s);
    hs_kv_evict_all(model);
  }
  for (long k = 1; k < 10000; k++) {
    long before = live_blocks;
    hs_seq *s = new_seq(64);
    hs_alloc_fail_after(k);
    hs_generate_result r;
    int rc = hs_generate(model, tok, s, ids, n, &p, &r);
    hs_alloc_fail_after(0);
    if (rc == 0) {
      hs_generate_result_free(&r);
      hs_seq_destroy(s);
      break;
    }
    if (rc != HS_ENOMEM) fail_msg("allocation %ld: %d (%s)", k, rc, hs_generate_last_error());
    assert_null(r.text);
    failures++;
    hs_seq_destroy(s);
    hs_kv_evict_all(model);
    assert_int_equal(live_blocks, before);
  }
  assert_true(failures > 3);
  hs_grammar_vocab_destroy(gv);
  hs_grammar_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_greedy_matches_forward),
      cmocka_unit_test(test_pin_text),
      cmocka_unit_test(test_seeded_sampling),
      cmocka_unit_test(test_stream_and_stop_string),
      cmocka_unit_test(test_cancel_stop_token_and_limits),
      cmocka_unit_test(test_grammar_and_schema),
      cmocka_unit_test(test_embed),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
