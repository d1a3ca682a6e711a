/* test_synth.c: synthetic model files (src/engine/synth.c) and `hswarm model synth`.
 *
 * Files written twice from the same spec are identical byte for byte, a different seed changes
 * every matrix, and the same seed in another type holds the same weights quantized (checked by
 * dequantizing both). Every preset is checked against its documented shape (the big ones only
 * as specs, not written). Each weight type lands on the tensors it should (Q4_K_M's Q6_K
 * layers, fallbacks when rows do not fit a block, f16/bf16 norms); the default vocabulary has
 * GPT-2's byte characters, BOS/EOS and token types; a tokenizer callback's keys are written
 * and its failure is returned. Bad specs are refused with a message. The weights' statistics
 * follow the documented scales. Last, the CLI: --preset, explicit shapes, --json (parsed by jq),
 * and usage errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"
#include "hswarm/model.h"
#include "hswarm/quant.h"
#include "hswarm/synth.h"

#include "support/counting_alloc.h"

static int group_setup(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  return make_tmpdir("hs_synth");
}

static int group_teardown(void **state) {
  (void)state;
  return remove_tmpdir_and_hooks();
}

static hs_synth_spec tiny(hs_synth_type t) {
  hs_synth_spec s;
  assert_int_equal(hs_synth_preset("tiny-llama3", &s), 0);
  s.type = t;
  return s;
}

static void *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *p = malloc((size_t)len);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return p;
}

/* The dequantized values of tensor name. */
static float *tensor_f32(const hs_gguf *g, const char *name, size_t *n) {
  const hs_gguf_tensor *t;
  assert_int_equal(hs_gguf_tensor_find(g, name, &t, NULL), 0);
  float *v = malloc(t->n_elements * sizeof *v);
  assert_non_null(v);
  assert_int_equal(hs_quant_dequantize((int)t->type, t->data, v, t->n_elements), 0);
  *n = t->n_elements;
  return v;
}

static uint32_t tensor_type(const hs_gguf *g, const char *name) {
  const hs_gguf_tensor *t;
  assert_int_equal(hs_gguf_tensor_find(g, name, &t, NULL), 0);
  return t->type;
}

static void test_deterministic(void **state) {
  (void)state;
  char a[300], b[300], c[300];
  tmp_path(a, sizeof a, "a.gguf");
  tmp_path(b, sizeof b, "b.gguf");
  tmp_path(c, sizeof c, "c.gguf");
  hs_synth_spec s = tiny(HS_SYNTH_Q8_0);
  hs_synth_info info;
  long before = live_blocks;
  assert_int_equal(hs_synth_write(&s, a, &info), 0);
  assert_int_equal(live_blocks, before);
  assert_int_equal(hs_synth_write(&s, b, NULL), 0);
  s.seed = 1;
  assert_int_equal(hs_synth_write(&s, c, NULL), 0);
  size_t na, nb, nc;
  void *pa = read_all(a, &na), *pb = read_all(b, &nb), *pc = read_all(c, &nc);
  assert_int_equal(na, nb);
  assert_memory_equal(pa, pb, na);
  assert_int_equal(info.file_bytes, na);
  assert_int_equal(info.n_tensors, 21); /* token_embd, 2 x 9 per layer, output_norm, output */
  assert_int_equal(info.n_fallback, 0);
  /* another seed: every matrix differs */
  hs_gguf *ga, *gc;
  assert_int_equal(hs_gguf_open(a, &ga), 0);
  assert_int_equal(hs_gguf_open(c, &gc), 0);
  for (size_t i = 0; i < hs_gguf_tensor_count(ga); i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(ga, i), *u;
    assert_int_equal(hs_gguf_tensor_find(gc, t->name, &u, NULL), 0);
    assert_int_equal(t->size, u->size);
    if (t->ne[1] > 1 && memcmp(t->data, u->data, t->size) == 0)
      fail_msg("tensor %s is the same with another seed", t->name);
  }
  hs_gguf_close(ga);
  hs_gguf_close(gc);
  free(pa);
  free(pb);
  free(pc);
}

/* Same seed, F32 and Q8_0: the Q8_0 weights are the F32 ones quantized. */
static void test_same_weights_across_types(void **state) {
  (void)state;
  char a[300], b[300];
  tmp_path(a, sizeof a, "f32.gguf");
  tmp_path(b, sizeof b, "q8.gguf");
  hs_synth_spec s = tiny(HS_SYNTH_F32);
  assert_int_equal(hs_synth_write(&s, a, NULL), 0);
  s.type = HS_SYNTH_Q8_0;
  assert_int_equal(hs_synth_write(&s, b, NULL), 0);
  hs_gguf *ga, *gb;
  assert_int_equal(hs_gguf_open(a, &ga), 0);
  assert_int_equal(hs_gguf_open(b, &gb), 0);
  size_t n1, n2;
  float *x = tensor_f32(ga, "blk.1.ffn_down.weight", &n1);
  float *y = tensor_f32(gb, "blk.1.ffn_down.weight", &n2);
  assert_int_equal(n1, n2);
  /* quantizing x again gives y exactly */
  size_t qb = hs_quant_row_bytes(HS_QUANT_Q8_0, n1);
  void *q = malloc(qb);
  float *z = malloc(n1 * sizeof *z);
  assert_int_equal(hs_quant_quantize(HS_QUANT_Q8_0, x, q, n1), 0);
  assert_int_equal(hs_quant_dequantize(HS_QUANT_Q8_0, q, z, n1), 0);
  assert_memory_equal(z, y, n1 * sizeof *z);
  free(q);
  free(z);
  free(x);
  free(y);
  hs_gguf_close(ga);
  hs_gguf_close(gb);
}

static void test_presets(void **state) {
  (void)state;
  hs_synth_spec s;
  assert_int_equal(hs_synth_preset("bench-250m", &s), 0);
  assert_int_equal(s.arch, HS_MODEL_ARCH_LLAMA);
  assert_int_equal(s.n_embd, 1024);
  assert_int_equal(s.n_layer, 16);
  assert_int_equal(s.n_head, 16);
  assert_int_equal(s.n_head_kv, 4);
  assert_int_equal(s.n_ff, 2816);
  assert_int_equal(s.n_vocab, 32000);
  assert_false(s.rope_llama3);
  assert_int_equal(hs_synth_spec_check(&s), 0);
  assert_int_equal(hs_synth_preset("llama3-8b", &s), 0);
  assert_int_equal(s.n_embd, 4096);
  assert_int_equal(s.n_layer, 32);
  assert_int_equal(s.n_head, 32);
  assert_int_equal(s.n_head_kv, 8);
  assert_int_equal(s.n_ff, 14336);
  assert_int_equal(s.n_vocab, 128256);
  assert_int_equal(s.n_ctx_train, 8192);
  assert_true(s.rope_freq_base == 500000.0f);
  assert_true(s.rope_llama3);
  assert_int_equal(hs_synth_spec_check(&s), 0);
  /* every small preset writes a file that reads back with its shape */
  for (size_t i = 0; hs_synth_preset_name(i); i++) {
    const char *name = hs_synth_preset_name(i);
    assert_int_equal(hs_synth_preset(name, &s), 0);
    if (s.n_embd > 256) continue;
    char path[300];
    tmp_path(path, sizeof path, "preset.gguf");
    s.type = HS_SYNTH_F16;
    assert_int_equal(hs_synth_write(&s, path, NULL), 0);
    hs_gguf *g;
    hs_model_params p;
    assert_int_equal(hs_gguf_open(path, &g), 0);
    assert_int_equal(hs_model_params_read(g, &p), 0);
    assert_int_equal(p.arch, s.arch);
    assert_int_equal(p.n_embd, s.n_embd);
    assert_int_equal(p.n_layer, s.n_layer);
    assert_int_equal(p.n_head_kv, s.n_head_kv);
    assert_int_equal(p.n_ff, s.n_ff);
    assert_int_equal(p.n_vocab, s.n_vocab);
    assert_int_equal(p.tied_embeddings, s.tied);
    assert_int_equal(p.rope_scaling, s.rope_llama3 ? HS_ROPE_SCALING_LLAMA3 : HS_ROPE_SCALING_NONE);
    if (s.rope_llama3) {
      assert_true(p.rope_scaling_factor == 8.0f);
      assert_true(p.rope_low_freq_factor == 1.0f);
      assert_true(p.rope_high_freq_factor == 4.0f);
      assert_int_equal(p.rope_orig_ctx, 8192);
    }
    hs_gguf_close(g);
  }
  assert_int_equal(hs_synth_preset("nope", &s), HS_EINVAL);
  assert_msg_has(hs_synth_last_error(), "bench-250m");
  assert_null(hs_synth_preset_name(1000));
}

static void test_types(void **state) {
  (void)state;
  char path[300];
  tmp_path(path, sizeof path, "types.gguf");
  hs_synth_spec s;
  assert_int_equal(hs_synth_preset("small-llama3", &s), 0);
  s.n_layer = 8; /* Q4_K_M: layers 0 and 7 get Q6_K, and (i - 1) % 3 == 2: layer 3 and 6 */
  s.type = HS_SYNTH_Q4_K_M;
  assert_int_equal(hs_synth_write(&s, path, NULL), 0);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open(path, &g), 0);
  assert_int_equal(tensor_type(g, "output.weight"), HS_QUANT_Q6_K);
  assert_int_equal(tensor_type(g, "token_embd.weight"), HS_QUANT_Q4_K);
  static const int more[8] = {1, 0, 0, 1, 0, 0, 1, 1};
  for (int l = 0; l < 8; l++) {
    char n[64];
    snprintf(n, sizeof n, "blk.%d.attn_v.weight", l);
    assert_int_equal(tensor_type(g, n), more[l] ? HS_QUANT_Q6_K : HS_QUANT_Q4_K);
    snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l);
    assert_int_equal(tensor_type(g, n), more[l] ? HS_QUANT_Q6_K : HS_QUANT_Q4_K);
    snprintf(n, sizeof n, "blk.%d.attn_q.weight", l);
    assert_int_equal(tensor_type(g, n), HS_QUANT_Q4_K);
    snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
    assert_int_equal(tensor_type(g, n), HS_QUANT_F32);
  }
  hs_gguf_close(g);

  /* tiny rows (64, 160) do not fit Q4_K: fallback to Q8_0 (64 % 32 == 0) */
  hs_synth_spec t = tiny(HS_SYNTH_Q4_K);
  hs_synth_info info;
  assert_int_equal(hs_synth_write(&t, path, &info), 0);
  assert_true(info.n_fallback > 0);
  assert_int_equal(hs_gguf_open(path, &g), 0);
  assert_int_equal(tensor_type(g, "blk.0.attn_q.weight"), HS_QUANT_Q8_0);
  hs_gguf_close(g);

  /* BF16: matrices in bf16, vectors in f32 unless half_vectors */
  t = tiny(HS_SYNTH_BF16);
  assert_int_equal(hs_synth_write(&t, path, &info), 0);
  assert_int_equal(info.n_fallback, 0);
  assert_int_equal(hs_gguf_open(path, &g), 0);
  assert_int_equal(tensor_type(g, "blk.0.attn_q.weight"), HS_QUANT_BF16);
  assert_int_equal(tensor_type(g, "blk.0.ffn_norm.weight"), HS_QUANT_F32);
  hs_gguf_close(g);
  t.half_vectors = true;
  assert_int_equal(hs_synth_write(&t, path, &info), 0);
  assert_int_equal(hs_gguf_open(path, &g), 0);
  assert_int_equal(tensor_type(g, "blk.0.ffn_norm.weight"), HS_QUANT_BF16);
  hs_gguf_close(g);

  hs_synth_type ty;
  assert_int_equal(hs_synth_type_parse("Q4_K_M", &ty), 0);
  assert_int_equal(ty, HS_SYNTH_Q4_K_M);
  assert_string_equal(hs_synth_type_name(HS_SYNTH_Q6_K), "q6_k");
  assert_int_equal(hs_synth_type_parse("q5_k", &ty), 0);
  assert_int_equal(ty, HS_SYNTH_Q5_K);
  assert_string_equal(hs_synth_type_name(HS_SYNTH_IQ4_XS), "iq4_xs");
  assert_int_equal(hs_synth_type_parse("q1_0", &ty), HS_EINVAL);
  assert_msg_has(hs_synth_last_error(), "q1_0");
}

/* Weights follow the documented scales; rope_freqs.weight holds Llama 3.1's factors. */
static void test_scales(void **state) {
  (void)state;
  char path[300];
  tmp_path(path, sizeof path, "scales.gguf");
  hs_synth_spec s;
  assert_int_equal(hs_synth_preset("small-llama3", &s), 0);
  s.type = HS_SYNTH_F32;
  s.rope_freqs_tensor = true;
  assert_int_equal(hs_synth_write(&s, path, NULL), 0);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open(path, &g), 0);
  /* n_embd 256, n_ff 512 */
  static const struct {
    const char *name;
    double std;
  } want[] = {{"token_embd.weight", 1.0},       {"output.weight", 4.0 / 16},
              {"blk.0.attn_q.weight", 1.5 / 16}, {"blk.0.attn_v.weight", 1.0 / 16},
              {"blk.1.ffn_down.weight", 0.04419417382415922 /* 1/sqrt(512) */}};
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    size_t n;
    float *v = tensor_f32(g, want[k].name, &n);
    double sum = 0, sq = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
      sum += v[i];
      sq += (double)v[i] * v[i];
      mx = fabs(v[i]) > mx ? fabs(v[i]) : mx;
    }
    double std = sqrt(sq / n), expect = want[k].std;
    if (fabs(sum / n) > 0.02 * expect || fabs(std / expect - 1) > 0.02 ||
        mx > expect * 1.7320508 * 1.0001)
      fail_msg("%s: mean %g, std %g (expected %g), max %g", want[k].name, sum / n, std, expect,
               mx);
    free(v);
  }
  size_t n;
  float *nw = tensor_f32(g, "blk.0.attn_norm.weight", &n);
  for (size_t i = 0; i < n; i++) assert_true(nw[i] >= 0.75f && nw[i] <= 1.25f);
  free(nw);
  float *rf = tensor_f32(g, "rope_freqs.weight", &n);
  assert_int_equal(n, 32); /* head size 64 */
  assert_true(rf[0] == 1.0f);   /* the highest frequency is kept */
  assert_true(rf[31] == 8.0f);  /* the lowest is divided by the factor */
  for (size_t i = 1; i < n; i++) assert_true(rf[i] >= rf[i - 1]);
  free(rf);
  hs_gguf_close(g);
}

static void test_vocabulary(void **state) {
  (void)state;
  char path[300];
  tmp_path(path, sizeof path, "vocab.gguf");
  hs_synth_spec s = tiny(HS_SYNTH_F32);
  assert_int_equal(hs_synth_write(&s, path, NULL), 0);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open(path, &g), 0);
  const char *str;
  size_t len;
  assert_int_equal(hs_gguf_get_str(g, "tokenizer.ggml.model", &str, NULL), 0);
  assert_string_equal(str, "gpt2");
  assert_int_equal(hs_gguf_arr_str(g, "tokenizer.ggml.tokens", 'A', &str, &len), 0);
  assert_string_equal(str, "A");
  assert_int_equal(hs_gguf_arr_str(g, "tokenizer.ggml.tokens", ' ', &str, &len), 0);
  assert_string_equal(str, "\xc4\xa0"); /* U+0120 'Ġ', GPT-2's space */
  assert_int_equal(hs_gguf_arr_str(g, "tokenizer.ggml.tokens", '\n', &str, &len), 0);
  assert_string_equal(str, "\xc4\x8a"); /* U+010A 'Ċ' */
  assert_int_equal(hs_gguf_arr_str(g, "tokenizer.ggml.tokens", 0xad, &str, &len), 0);
  assert_string_equal(str, "\xc5\x83"); /* U+0143: the 68th unprintable byte */
  assert_int_equal(hs_gguf_arr_str(g, "tokenizer.ggml.tokens", 300, &str, &len), 0);
  assert_string_equal(str, "<tok_300>");
  assert_int_equal(hs_gguf_arr_str(g, "tokenizer.ggml.tokens", 510, &str, &len), 0);
  assert_string_equal(str, "<s>");
  uint64_t u;
  assert_int_equal(hs_gguf_get_uint(g, "tokenizer.ggml.bos_token_id", &u), 0);
  assert_int_equal(u, 510);
  assert_int_equal(hs_gguf_get_uint(g, "tokenizer.ggml.eos_token_id", &u), 0);
  assert_int_equal(u, 511);
  int64_t ty;
  assert_int_equal(hs_gguf_arr_int(g, "tokenizer.ggml.token_type", 511, &ty), 0);
  assert_int_equal(ty, 3);
  assert_int_equal(hs_gguf_arr_int(g, "tokenizer.ggml.token_type", 65, &ty), 0);
  assert_int_equal(ty, 1);
  hs_gguf_value_type et;
  uint64_t cnt;
  assert_int_equal(hs_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &cnt), 0);
  assert_int_equal(cnt, 0);
  hs_gguf_close(g);
}

/* A callback's vocabulary is used; its error comes back; a size mismatch is caught. */
static int cb_vocab(hs_gguf_writer *w, void *ctx) {
  uint32_t n = *(uint32_t *)ctx;
  if (n == 0) return HS_EPERM;
  const char *toks[300];
  for (uint32_t i = 0; i < n; i++) toks[i] = "x";
  return hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, n);
}

static void test_tokenizer_callback(void **state) {
  (void)state;
  char path[300];
  tmp_path(path, sizeof path, "cb.gguf");
  hs_synth_spec s = tiny(HS_SYNTH_F32);
  uint32_t n = 300;
  s.n_vocab = 300;
  s.add_tokenizer = cb_vocab;
  s.tokenizer_ctx = &n;
  assert_int_equal(hs_synth_write(&s, path, NULL), 0);
  hs_gguf *g;
  hs_model_params p;
  assert_int_equal(hs_gguf_open(path, &g), 0);
  assert_int_equal(hs_model_params_read(g, &p), 0);
  assert_int_equal(p.n_vocab, 300);
  assert_int_equal(hs_gguf_find_key(g, "tokenizer.ggml.model", NULL), HS_ENOENT);
  hs_gguf_close(g);
  n = 0;
  assert_int_equal(hs_synth_write(&s, path, NULL), HS_EPERM);
  assert_msg_has(hs_synth_last_error(), "tokenizer");
  n = 299; /* the file's vocabulary does not match n_vocab */
  assert_int_not_equal(hs_synth_write(&s, path, NULL), 0);
  assert_msg_has(hs_synth_last_error(), "token_embd.weight");
}

static void test_bad_specs(void **state) {
  (void)state;
  char path[300];
  tmp_path(path, sizeof path, "bad.gguf");
  /* n_embd, n_head, n_head_kv, n_vocab, n_layer, and the message expected */
  static const struct {
    uint32_t e, h, hkv, v, l;
    const char *msg;
  } bad[] = {{0, 4, 2, 512, 2, "n_embd is 0"},
             {64, 3, 1, 512, 2, "not divisible by n_head"},
             {64, 4, 3, 512, 2, "not divisible by n_head_kv"},
             {64, 4, 2, 100, 2, "below 258"},
             {64, 4, 2, 512, 0, "n_layer is 0"},
             {36, 12, 12, 512, 2, "head size 3 is odd"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hs_synth_spec s = tiny(HS_SYNTH_F32);
    s.n_embd = bad[i].e;
    s.n_head = bad[i].h;
    s.n_head_kv = bad[i].hkv;
    s.n_vocab = bad[i].v;
    s.n_layer = bad[i].l;
    assert_int_equal(hs_synth_write(&s, path, NULL), HS_EINVAL);
    assert_msg_has(hs_synth_last_error(), bad[i].msg);
  }
  hs_synth_spec s = tiny(HS_SYNTH_F32);
  assert_int_equal(hs_synth_write(&s, "/nonexistent-dir/x.gguf", NULL), HS_EIO);
  assert_msg_has(hs_synth_last_error(), "/nonexistent-dir/x.gguf");
  assert_int_equal(hs_synth_write(NULL, path, NULL), HS_EINVAL);
}

/* ---- the CLI ---- */

static const char *hswarm_bin(void) {
  const char *b = getenv("HS_HSWARM_BIN");
  if (!b || !*b) fail_msg("HS_HSWARM_BIN is not set (CTest sets it)");
  return b;
}

static int run_cli(const char *args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out' 2>'%s/err'", hswarm_bin(), args, tmpdir, tmpdir);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

/* jq FILTER on tmpdir/out; 0 when jq says true. */
static int jq_true(const char *filter) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "jq -e '%s' '%s/out' >/dev/null", filter, tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_cli(void **state) {
  (void)state;
  char args[1024];
  snprintf(args, sizeof args, "model synth --preset tiny-qwen2 --type q8_0 --seed 7 -o '%s/cli.gguf' --json",
           tmpdir);
  assert_int_equal(run_cli(args), 0);
  assert_int_equal(jq_true(".command == \"model synth\" and .status == \"ok\" and "
                           ".architecture == \"qwen2\" and .n_embd == 64 and .n_head_kv == 2 and "
                           ".type == \"q8_0\" and .seed == 7 and .preset == \"tiny-qwen2\" and "
                           ".n_params > 0 and .file_bytes > 0"),
                   0);
  snprintf(args, sizeof args, "model info -m '%s/cli.gguf' --json", tmpdir);
  assert_int_equal(run_cli(args), 0);
  assert_int_equal(jq_true(".architecture == \"qwen2\" and .n_vocab == 512 and "
                           ".tensor_types.q8_0.count == 16"),
                   0);
  snprintf(args, sizeof args,
           "model synth --arch llama --dim 128 --layers 1 --heads 4 --kv-heads 1 --ffn 256 "
           "--vocab 300 --rope-scaling llama3 --tied --type f16 -o '%s/cli2.gguf' --json",
           tmpdir);
  assert_int_equal(run_cli(args), 0);
  assert_int_equal(jq_true(".preset == null and .rope_scaling == \"llama3\" and "
                           ".rope_freq_base == 500000 and .tied_embeddings == true and "
                           ".n_head_kv == 1 and .n_tensors == 11"),
                   0);
  /* usage errors */
  snprintf(args, sizeof args, "model synth --dim 64 -o '%s/x.gguf'", tmpdir);
  assert_int_equal(run_cli(args), 2);
  snprintf(args, sizeof args, "model synth --preset tiny-llama --type q9 -o '%s/x.gguf' --json",
           tmpdir);
  assert_int_equal(run_cli(args), 2);
  assert_int_equal(jq_true(".status == \"error\""), 0);
  assert_int_equal(run_cli("model synth --preset tiny-llama"), 2);
  snprintf(args, sizeof args, "model synth --preset tiny-llama --heads 3 -o '%s/x.gguf' --json",
           tmpdir);
  assert_int_equal(run_cli(args), 2);
  assert_int_equal(jq_true(".status == \"error\" and (.error | test(\"divisible\"))"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deterministic),      cmocka_unit_test(test_same_weights_across_types),
      cmocka_unit_test(test_presets),            cmocka_unit_test(test_types),
      cmocka_unit_test(test_scales),             cmocka_unit_test(test_vocabulary),
      cmocka_unit_test(test_tokenizer_callback), cmocka_unit_test(test_bad_specs),
      cmocka_unit_test(test_cli),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
