/* test_model_params.c: model hyperparameters from GGUF (src/engine/model_params.c) and the
 * `hswarm model info` command.
 *
 * Small model files are built in memory with the GGUF writer (2 layers, n_embd 64, 4 heads, 2 KV
 * heads, n_ff 128, vocabulary 100), for llama with and without output.weight, with llama3 rope
 * scaling, and for qwen2 with its biases; every parsed field is checked. Then each validation
 * error, one file per error, must give its code and a message naming the key or tensor at fault.
 * Last, the built hswarm program (HS_HSWARM_BIN) runs on files written to a temporary directory:
 * exit codes, human output and --json parsed by jq. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

#include "support/counting_alloc.h"

static int group_setup(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  return make_tmpdir("hs_model");
}

static int group_teardown(void **state) {
  (void)state;
  return remove_tmpdir_and_hooks();
}

/* ---- building model files ---- */

typedef struct spec {
  const char *arch;
  uint32_t n_embd, n_head, n_head_kv, n_ff, n_layer, n_vocab; /* n_head_kv 0: key omitted */
  bool output;            /* write output.weight */
  const char *rope_type;  /* NULL: no rope.scaling.type key */
  bool llama3_keys;       /* write the four llama3 scaling keys */
  bool extras;            /* write freq_base, eps, dimension_count */
  const char *skip_key;   /* a key suffix ("block_count") not to write */
  const char *skip_tensor; /* a tensor not to write */
  const char *bad_tensor;  /* a tensor written with ne1 (or ne0 for vectors) + 1 */
  uint32_t mat_type;       /* type of the per-layer matrices */
} spec;

static spec base_spec(const char *arch) {
  spec s = {.arch = arch, .n_embd = 64, .n_head = 4, .n_head_kv = 2, .n_ff = 128, .n_layer = 2,
            .n_vocab = 100, .output = true, .mat_type = HS_QUANT_F32};
  return s;
}

static uint8_t zeros[64 * 1024]; /* data of every tensor (zero is valid for every type) */

static void add_tensor(hs_gguf_writer *w, const spec *s, const char *name, uint64_t ne0,
                       uint64_t ne1, uint32_t type) {
  if (s->skip_tensor && !strcmp(name, s->skip_tensor)) return;
  if (s->bad_tensor && !strcmp(name, s->bad_tensor)) {
    if (ne1) ne1++;
    else ne0 += 32;
  }
  uint64_t ne[2] = {ne0, ne1};
  size_t size = hs_quant_row_bytes((int)type, ne0) * (ne1 ? ne1 : 1);
  assert_true(size > 0 && size <= sizeof zeros);
  assert_int_equal(hs_gguf_writer_add_tensor(w, name, ne1 ? 2 : 1, ne, type, zeros, size), 0);
}

static void add_key_u32(hs_gguf_writer *w, const spec *s, const char *suffix, uint32_t v) {
  if (s->skip_key && !strcmp(suffix, s->skip_key)) return;
  char key[128];
  snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
  assert_int_equal(hs_gguf_writer_add_u32(w, key, v), 0);
}

static void add_key_f32(hs_gguf_writer *w, const spec *s, const char *suffix, float v) {
  if (s->skip_key && !strcmp(suffix, s->skip_key)) return;
  char key[128];
  snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
  assert_int_equal(hs_gguf_writer_add_f32(w, key, v), 0);
}

static hs_gguf_writer *build(const spec *s) {
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "general.architecture", s->arch, strlen(s->arch)),
                   0);
  add_key_u32(w, s, "embedding_length", s->n_embd);
  add_key_u32(w, s, "block_count", s->n_layer);
  add_key_u32(w, s, "attention.head_count", s->n_head);
  if (s->n_head_kv) add_key_u32(w, s, "attention.head_count_kv", s->n_head_kv);
  add_key_u32(w, s, "feed_forward_length", s->n_ff);
  add_key_u32(w, s, "context_length", 2048);
  if (s->extras) {
    add_key_f32(w, s, "rope.freq_base", 500000.0f);
    add_key_f32(w, s, "attention.layer_norm_rms_epsilon", 1e-6f);
    add_key_u32(w, s, "rope.dimension_count", 8);
  }
  if (s->rope_type) {
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", s->arch);
    assert_int_equal(hs_gguf_writer_add_str(w, key, s->rope_type, strlen(s->rope_type)), 0);
  }
  if (s->llama3_keys) {
    add_key_f32(w, s, "rope.scaling.factor", 8.0f);
    add_key_f32(w, s, "rope.scaling.low_freq_factor", 1.0f);
    add_key_f32(w, s, "rope.scaling.high_freq_factor", 4.0f);
    add_key_u32(w, s, "rope.scaling.original_context_length", 8192);
  }
  if (!(s->skip_key && !strcmp(s->skip_key, "tokens"))) {
    static char names[100][16];
    const char *toks[100];
    assert_true(s->n_vocab <= 100);
    for (uint32_t i = 0; i < s->n_vocab; i++) {
      snprintf(names[i], sizeof names[i], "t%u", i);
      toks[i] = names[i];
    }
    assert_int_equal(hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL,
                                                s->n_vocab), 0);
  }
  const uint64_t e = s->n_embd, hd = s->n_embd / s->n_head;
  const uint64_t kv = (s->n_head_kv ? s->n_head_kv : s->n_head) * hd, ff = s->n_ff;
  const uint32_t F32 = HS_QUANT_F32, m = s->mat_type;
  add_tensor(w, s, "token_embd.weight", e, s->n_vocab, HS_QUANT_F16);
  add_tensor(w, s, "output_norm.weight", e, 0, F32);
  if (s->output) add_tensor(w, s, "output.weight", e, s->n_vocab, HS_QUANT_F16);
  for (uint32_t i = 0; i < s->n_layer; i++) {
    char n[64];
#define T(suffix, ne0, ne1, type)                                                                  \
  do {                                                                                             \
    snprintf(n, sizeof n, "blk.%u.%s", i, suffix);                                                 \
    add_tensor(w, s, n, ne0, ne1, type);                                                           \
  } while (0)
    T("attn_norm.weight", e, 0, F32);
    T("attn_q.weight", e, e, m);
    T("attn_k.weight", e, kv, m);
    T("attn_v.weight", e, kv, m);
    T("attn_output.weight", e, e, m);
    T("ffn_norm.weight", e, 0, F32);
    T("ffn_gate.weight", e, ff, m);
    T("ffn_up.weight", e, ff, m);
    T("ffn_down.weight", ff, e, m);
    if (!strcmp(s->arch, "qwen2")) {
      T("attn_q.bias", e, 0, F32);
      T("attn_k.bias", kv, 0, F32);
      T("attn_v.bias", kv, 0, F32);
    }
#undef T
  }
  return w;
}

/* Builds s in memory and reads its params: the return code; *p on success. */
static int read_spec(const spec *s, hs_model_params *p) {
  hs_gguf_writer *w = build(s);
  void *buf;
  size_t size;
  assert_int_equal(hs_gguf_writer_write_mem(w, &buf, &size), 0);
  hs_gguf_writer_destroy(w);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, "m.gguf", &g), 0);
  int rc = hs_model_params_read(g, p);
  hs_gguf_close(g);
  hs_free(buf);
  assert_int_equal(live_blocks, 0);
  return rc;
}

/* Expected n_params and weight bytes of a spec with F16 embeddings, F32 vectors and F32
 * matrices. */
static void expect_sizes(const spec *s, const hs_model_params *p) {
  uint64_t e = s->n_embd, kv = (uint64_t)p->n_head_kv * p->head_dim, ff = s->n_ff,
           v = s->n_vocab;
  uint64_t emb = e * v * (s->output ? 2 : 1);
  uint64_t layer = 2 * e + e * e * 2 + e * kv * 2 + 3 * e * ff;
  if (!strcmp(s->arch, "qwen2")) layer += e + 2 * kv;
  uint64_t n = emb + e + s->n_layer * layer;
  assert_int_equal(p->n_params, n);
  assert_int_equal(p->weight_bytes, emb * 2 + (n - emb) * 4);
}

/* ---- parsing ---- */

static void test_llama_defaults(void **state) {
  (void)state;
  spec s = base_spec("llama");
  hs_model_params p;
  assert_int_equal(read_spec(&s, &p), 0);
  assert_int_equal(p.arch, HS_MODEL_ARCH_LLAMA);
  assert_string_equal(p.arch_name, "llama");
  assert_int_equal(p.n_embd, 64);
  assert_int_equal(p.n_layer, 2);
  assert_int_equal(p.n_head, 4);
  assert_int_equal(p.n_head_kv, 2);
  assert_int_equal(p.n_ff, 128);
  assert_int_equal(p.n_ctx_train, 2048);
  assert_int_equal(p.n_vocab, 100);
  assert_int_equal(p.head_dim, 16);
  assert_int_equal(p.n_rot, 16);
  assert_true(p.rope_freq_base == 10000.0f);
  assert_true(p.rms_norm_eps == 1e-5f);
  assert_int_equal(p.rope_scaling, HS_ROPE_SCALING_NONE);
  assert_true(p.rope_scaling_factor == 0.0f);
  assert_int_equal(p.rope_orig_ctx, 0);
  assert_false(p.tied_embeddings);
  assert_int_equal(p.kv_bytes_per_token, 2 * 2 * 2 * 16 * 2);
  expect_sizes(&s, &p);
}

static void test_llama_tied_llama3(void **state) {
  (void)state;
  spec s = base_spec("llama");
  s.output = false;
  s.rope_type = "llama3";
  s.llama3_keys = true;
  s.extras = true;
  s.n_head_kv = 0; /* defaults to n_head */
  hs_model_params p;
  assert_int_equal(read_spec(&s, &p), 0);
  assert_true(p.tied_embeddings);
  assert_int_equal(p.n_head_kv, 4);
  assert_int_equal(p.rope_scaling, HS_ROPE_SCALING_LLAMA3);
  assert_string_equal(hs_rope_scaling_name(p.rope_scaling), "llama3");
  assert_true(p.rope_scaling_factor == 8.0f);
  assert_true(p.rope_low_freq_factor == 1.0f);
  assert_true(p.rope_high_freq_factor == 4.0f);
  assert_int_equal(p.rope_orig_ctx, 8192);
  assert_true(p.rope_freq_base == 500000.0f);
  assert_true(p.rms_norm_eps == 1e-6f);
  assert_int_equal(p.n_rot, 8);
  assert_int_equal(p.kv_bytes_per_token, 2 * 2 * 4 * 16 * 2);
  expect_sizes(&s, &p);
}

static void test_rope_none_string(void **state) {
  (void)state;
  spec s = base_spec("llama");
  s.rope_type = "none";
  hs_model_params p;
  assert_int_equal(read_spec(&s, &p), 0);
  assert_int_equal(p.rope_scaling, HS_ROPE_SCALING_NONE);
}

static void test_qwen2(void **state) {
  (void)state;
  spec s = base_spec("qwen2");
  hs_model_params p;
  assert_int_equal(read_spec(&s, &p), 0);
  assert_int_equal(p.arch, HS_MODEL_ARCH_QWEN2);
  assert_string_equal(p.arch_name, "qwen2");
  assert_int_equal(p.n_head_kv, 2);
  assert_int_equal(p.n_layer, 2);
  assert_int_equal(p.n_vocab, 100);
  expect_sizes(&s, &p);
}

static void test_quantized_matrices(void **state) {
  (void)state;
  spec s = base_spec("llama");
  s.mat_type = HS_QUANT_Q8_0;
  hs_model_params p;
  assert_int_equal(read_spec(&s, &p), 0);
  /* Q8_0: 34 bytes per 32 elements. */
  uint64_t e = 64, kv = 32, ff = 128;
  uint64_t mat = 2 * (e * e * 2 + e * kv * 2 + 3 * e * ff);
  uint64_t other = e * 100 * 2 * 2 + (e + 2 * 2 * e) * 4;
  assert_int_equal(p.weight_bytes, mat / 32 * 34 + other);
}

/* ---- errors ---- */

static void expect_error(const spec *s, int code, const char *part1, const char *part2) {
  hs_model_params p;
  memset(&p, 0x5a, sizeof p);
  int rc = read_spec(s, &p);
  if (rc != code) fail_msg("got %d (%s), expected %d", rc, hs_model_last_error(), code);
  assert_msg_has(hs_model_last_error(), part1);
  if (part2) assert_msg_has(hs_model_last_error(), part2);
  assert_int_equal(p.n_embd, 0x5a5a5a5a); /* untouched on error */
}

static void test_unsupported_arch(void **state) {
  (void)state;
  spec s = base_spec("gemma");
  expect_error(&s, HS_EINVAL, "architecture 'gemma' is not supported", "llama, qwen2");
}

static void test_missing_keys(void **state) {
  (void)state;
  static const char *keys[] = {"embedding_length", "block_count", "attention.head_count",
                               "feed_forward_length", "context_length"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    spec s = base_spec("llama");
    s.skip_key = keys[i];
    char want[128];
    snprintf(want, sizeof want, "'llama.%s'", keys[i]);
    expect_error(&s, HS_ECORRUPT, "missing metadata key", want);
  }
  spec s = base_spec("qwen2");
  s.skip_key = "tokens";
  expect_error(&s, HS_ECORRUPT, "missing metadata key", "tokenizer.ggml.tokens");
  s = base_spec("llama");
  s.rope_type = "llama3";
  s.llama3_keys = true;
  s.skip_key = "rope.scaling.original_context_length";
  expect_error(&s, HS_ECORRUPT, "llama.rope.scaling.original_context_length", NULL);
}

static void test_missing_tensor(void **state) {
  (void)state;
  spec s = base_spec("llama");
  s.skip_tensor = "blk.1.ffn_down.weight";
  expect_error(&s, HS_ECORRUPT, "missing tensor 'blk.1.ffn_down.weight'", "[128, 64]");
  s = base_spec("qwen2");
  s.skip_tensor = "blk.0.attn_k.bias";
  expect_error(&s, HS_ECORRUPT, "missing tensor 'blk.0.attn_k.bias'", "[32]");
  s = base_spec("llama");
  s.skip_tensor = "token_embd.weight";
  expect_error(&s, HS_ECORRUPT, "'token_embd.weight'", NULL);
}

static void test_wrong_shape(void **state) {
  (void)state;
  spec s = base_spec("llama");
  s.bad_tensor = "blk.1.attn_k.weight";
  expect_error(&s, HS_ECORRUPT, "tensor 'blk.1.attn_k.weight' has shape [64, 33]",
               "expected [64, 32]");
  s = base_spec("llama");
  s.bad_tensor = "output.weight";
  expect_error(&s, HS_ECORRUPT, "tensor 'output.weight' has shape [64, 101]",
               "expected [64, 100]");
  s = base_spec("qwen2");
  s.bad_tensor = "blk.0.attn_v.bias";
  expect_error(&s, HS_ECORRUPT, "tensor 'blk.0.attn_v.bias' has shape [64]", "expected [32]");
  s = base_spec("llama");
  s.bad_tensor = "output_norm.weight";
  expect_error(&s, HS_ECORRUPT, "'output_norm.weight' has shape [96]", "expected [64]");
}

static void test_bad_values(void **state) {
  (void)state;
  spec s = base_spec("llama");
  s.n_head = 5;
  s.n_head_kv = 5;
  expect_error(&s, HS_ECORRUPT, "llama.embedding_length 64 is not divisible",
               "llama.attention.head_count 5");
  s = base_spec("llama");
  s.n_head_kv = 3;
  expect_error(&s, HS_ECORRUPT, "head_count 4 is not divisible", "head_count_kv 3");
  s = base_spec("llama");
  s.n_layer = 0;
  expect_error(&s, HS_ECORRUPT, "'llama.block_count' is 0", NULL);
}

static void test_unknown_rope_scaling(void **state) {
  (void)state;
  spec s = base_spec("llama");
  s.rope_type = "yarn";
  expect_error(&s, HS_EINVAL, "rope scaling type 'yarn'", "llama.rope.scaling.type");
}

static void test_null_args(void **state) {
  (void)state;
  hs_model_params p;
  assert_int_equal(hs_model_params_read(NULL, &p), HS_EINVAL);
  assert_msg_has(hs_model_last_error(), "NULL");
}

/* ---- the CLI ---- */

static const char *hswarm_bin(void) {
  const char *b = getenv("HS_HSWARM_BIN");
  return b && *b ? b : NULL;
}

/* Runs `hswarm ARGS >out 2>err` in tmpdir; returns the exit status. */
static int run_cli(const char *args) {
  char cmd[1024];
  int n = snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out' 2>'%s/err'", hswarm_bin(), args, tmpdir,
                   tmpdir);
  assert_true(n > 0 && (size_t)n < sizeof cmd);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static char *slurp(const char *name, char *buf, size_t size) {
  char path[512];
  tmp_path(path, sizeof path, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

static void write_spec(const spec *s, const char *name) {
  char path[512];
  tmp_path(path, sizeof path, name);
  hs_gguf_writer *w = build(s);
  assert_int_equal(hs_gguf_writer_write_file(w, path), 0);
  hs_gguf_writer_destroy(w);
}

static void test_cli(void **state) {
  (void)state;
  if (!hswarm_bin()) {
    print_message("HS_HSWARM_BIN not set: CLI checks skipped\n");
    skip();
  }
  static char out[16384], errs[4096];
  char args[768];
  spec s = base_spec("llama");
  s.rope_type = "llama3";
  s.llama3_keys = true;
  s.mat_type = HS_QUANT_Q8_0;
  write_spec(&s, "llama.gguf");

  snprintf(args, sizeof args, "model info -m '%s/llama.gguf'", tmpdir);
  assert_int_equal(run_cli(args), 0);
  slurp("out", out, sizeof out);
  assert_msg_has(out, "architecture     llama\n");
  assert_msg_has(out, "layers           2\n");
  assert_msg_has(out, "heads            4 (kv heads 2, head size 16)\n");
  assert_msg_has(out, "vocabulary       100\n");
  assert_msg_has(out, "scaling llama3 (factor 8, low freq factor 1, high freq factor 4, "
                      "original context 8192)");
  assert_msg_has(out, "  q8_0           14 tensors, 78336 bytes");
  assert_msg_has(out, "  f16            2 tensors, 25600 bytes");
  assert_msg_has(out, "kv per token     256 bytes (f16)\n");
  assert_msg_has(out, "kv at context    524288 bytes");

  snprintf(args, sizeof args, "model info --json --model '%s/llama.gguf'", tmpdir);
  assert_int_equal(run_cli(args), 0);
  slurp("out", out, sizeof out);
  char *nl = strchr(out, '\n');
  assert_non_null(nl);
  assert_true(nl[1] == 0); /* one line */
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "jq -e '.command == \"model info\" and .architecture == \"llama\" and .n_layer == 2 "
           "and .n_vocab == 100 and .rope.scaling == \"llama3\" and "
           ".rope.original_context_length == 8192 and .tied_embeddings == false and "
           ".tensor_types.q8_0.count == 14 and .tensor_types.f16.bytes == 25600 and "
           ".kv_bytes_per_token == 256 and .kv_bytes_ctx_train == 524288' '%s/out' >/dev/null",
           tmpdir);
  assert_int_equal(system(cmd), 0);

  s = base_spec("qwen2");
  s.output = false;
  write_spec(&s, "qwen.gguf");
  snprintf(args, sizeof args, "model info -m '%s/qwen.gguf' --json", tmpdir);
  assert_int_equal(run_cli(args), 0);
  snprintf(cmd, sizeof cmd,
           "jq -e '.architecture == \"qwen2\" and .tied_embeddings == true and "
           ".rope.scaling == \"none\" and (.rope | has(\"factor\") | not) and "
           ".tensor_types.f32.count == 25' '%s/out' >/dev/null",
           tmpdir);
  assert_int_equal(system(cmd), 0);

  /* usage errors: exit 2 */
  assert_int_equal(run_cli("model info"), 2);
  assert_msg_has(slurp("err", errs, sizeof errs), "missing -m FILE");
  assert_int_equal(run_cli("model info -m"), 2);
  assert_int_equal(run_cli("model info --frobnicate"), 2);
  assert_int_equal(run_cli("model"), 2);
  assert_int_equal(run_cli("model infoo"), 2);

  /* runtime errors: exit 3, message on stderr, nothing on stdout */
  snprintf(args, sizeof args, "model info -m '%s/nonexistent.gguf'", tmpdir);
  assert_int_equal(run_cli(args), 3);
  assert_msg_has(slurp("err", errs, sizeof errs), "nonexistent.gguf");
  assert_string_equal(slurp("out", out, sizeof out), "");

  char path[512];
  tmp_path(path, sizeof path, "garbage.gguf");
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs("this is not a gguf file at all, not even close", f);
  fclose(f);
  snprintf(args, sizeof args, "model info -m '%s' --json", path);
  assert_int_equal(run_cli(args), 3);
  assert_true(strlen(slurp("err", errs, sizeof errs)) > 0);
  /* with --json, one error object on stdout */
  const char *o = slurp("out", out, sizeof out);
  assert_non_null(strstr(o, "\"command\":\"model info\",\"status\":\"error\",\"error\":"));
  assert_int_equal(strchr(o, '\n') - o, (long)strlen(o) - 1); /* one line */

  s = base_spec("gemma");
  write_spec(&s, "gemma.gguf");
  snprintf(args, sizeof args, "model info -m '%s/gemma.gguf'", tmpdir);
  assert_int_equal(run_cli(args), 3);
  assert_msg_has(slurp("err", errs, sizeof errs),
                 "architecture 'gemma' is not supported (supported: llama, qwen2, qwen3, gemma3)");

  s = base_spec("llama");
  s.skip_tensor = "blk.0.ffn_up.weight";
  write_spec(&s, "broken.gguf");
  snprintf(args, sizeof args, "model info -m '%s/broken.gguf'", tmpdir);
  assert_int_equal(run_cli(args), 3);
  assert_msg_has(slurp("err", errs, sizeof errs), "missing tensor 'blk.0.ffn_up.weight'");

  assert_int_equal(run_cli("model info --help"), 0);
  assert_msg_has(slurp("out", out, sizeof out), "usage: hswarm model info");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llama_defaults),   cmocka_unit_test(test_llama_tied_llama3),
      cmocka_unit_test(test_rope_none_string), cmocka_unit_test(test_qwen2),
      cmocka_unit_test(test_quantized_matrices), cmocka_unit_test(test_unsupported_arch),
      cmocka_unit_test(test_missing_keys),     cmocka_unit_test(test_missing_tensor),
      cmocka_unit_test(test_wrong_shape),      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_unknown_rope_scaling), cmocka_unit_test(test_null_args),
      cmocka_unit_test(test_cli),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
