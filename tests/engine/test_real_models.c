/* test_real_models.c: the published models (tools/models.sh puts them in .deps/models) against
 * the independent PyTorch reference tests/engine/model_ref.py.
 *
 * For SmolLM2-135M-Instruct (llama, Q4_1 + Q8_0) and Gemma 3 270M (gemma3, Q5_0, Q8_0, Q4_K,
 * Q6_K): a prompt of code and prose, tokenized by the engine's tokenizer, run through the engine
 * in one call. Its logits are compared with the reference's on the same (dequantized) weights:
 *   - position 0 with the reference that rounds activations as the kernels do and keeps keys and
 *     values in f16 (--act-quant --kv-f16): relative L2 error within 1e-4, or within a fifth of
 *     what that rounding moves the reference from exact arithmetic;
 *   - every position with the exact reference (float64): relative L2 error at most 1.5 times
 *     that of the rounding reference against the exact one, plus 0.01 (see check_model for
 *     why no tighter bound can hold over 18 to 30 layers), and the same top token wherever the
 *     exact reference's top two are more than 1 apart. A missing model file is a failure that says how to fetch it, not
 * a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/forward_ref.h"
#include "hswarm/engine.h"
#include "hswarm/tokenizer.h"

static void model_path(char *path, size_t size, const char *name) {
  const char *dir = getenv("HS_MODELS_DIR");
  const char *src = getenv("HS_SOURCE_DIR");
  if (dir && *dir)
    snprintf(path, size, "%s/%s.gguf", dir, name);
  else if (src && *src)
    snprintf(path, size, "%s/.deps/models/%s.gguf", src, name);
  else
    fail_msg("neither HS_MODELS_DIR nor HS_SOURCE_DIR is set (CTest sets HS_SOURCE_DIR)");
  if (access(path, R_OK) != 0)
    fail_msg("%s is missing: run tools/models.sh (tools/setup.sh does) to fetch the published "
             "models",
             path);
}

/* Logits of model_ref.py for toks, [n][nv], malloc'd; act_quant: with the kernels' activation
 * rounding and f16 keys and values, else exact (float64 on the dequantized weights). */
static float *real_ref_logits(const char *model, int act_quant, const int32_t *toks, size_t n,
                              size_t nv) {
  kv_type = act_quant ? HS_KV_F16 : HS_KV_F32;
  size_t len;
  float *r = run_ref("logits", model, act_quant ? "--act-quant" : NULL, toks, n, &len);
  assert_int_equal(len, n * nv * sizeof(float));
  kv_type = HS_KV_F16;
  return r;
}

static size_t argmax_margin(const float *x, size_t n, float *margin) {
  size_t b = 0, s = 1;
  if (x[1] > x[0]) b = 1, s = 0;
  for (size_t i = 2; i < n; i++) {
    if (x[i] > x[b]) s = b, b = i;
    else if (x[i] > x[s]) s = i;
  }
  if (margin) *margin = x[b] - x[s];
  return b;
}

static void check_model(const char *name) {
  char path[4096];
  model_path(path, sizeof path, name);
  hs_model *m;
  hs_model_opts o = {.kv_type = HS_KV_F16};
  if (hs_model_open(path, &o, &m) != 0) fail_msg("open %s: %s", path, hs_engine_last_error());
  hs_tokenizer *tk;
  if (hs_tokenizer_load(hs_model_get_gguf(m), &tk) != 0)
    fail_msg("tokenizer of %s: %s", path, hs_tokenizer_last_error());
  static const char text[] =
      "def mean(xs):\n    \"\"\"The average of a list.\"\"\"\n    return sum(xs) / len(xs)\n\n"
      "The capital of France is Paris, and";
  int32_t toks[128];
  size_t n = 0;
  if (hs_tokenizer_encode(tk, text, sizeof text - 1, HS_TOKENIZE_ADD_BOS, toks, 128, &n) != 0)
    fail_msg("encode: %s", hs_tokenizer_last_error());
  assert_true(n > 16 && n < 128);
  const size_t nv = hs_model_get_params(m)->n_vocab;
  hs_seq *s;
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  hs_batch_item it[128];
  for (size_t i = 0; i < n; i++) it[i] = (hs_batch_item){s, toks[i], true};
  float *c = malloc(n * nv * sizeof *c);
  assert_non_null(c);
  if (hs_model_forward(m, it, n, c, NULL) != 0) fail_msg("forward: %s", hs_engine_last_error());
  float *r = real_ref_logits(path, 1, toks, n, nv), *x = real_ref_logits(path, 0, toks, n, nv);
  /* 1. position 0 (attention over itself only, so no float rounding to amplify yet): the
   *    engine is the reference with the kernels' rounding, up to float32 */
  double e0 = rel_l2(c, r, nv), er0 = rel_l2(r, x, nv);
  /* 2. every position, against exact arithmetic: about the error that quantizing activations
   *    (as llama.cpp's kernels also do) causes in the reference itself. Through 18 to 30 layers
   *    one code rounded the other way at a near-tie grows to percents, so the engine cannot be
   *    closer to the rounded reference than that, position after position. */
  double ec = rel_l2(c, x, n * nv), er = rel_l2(r, x, n * nv);
  int agree = 0, ties = 0;
  float worst_tie = 0;
  for (size_t t = 0; t < n; t++) {
    if (getenv("HS_TEST_VERBOSE"))
      print_message("  position %zu: relative L2 error %.3g (rounded reference %.3g)\n", t,
                    rel_l2(c + t * nv, x + t * nv, nv), rel_l2(r + t * nv, x + t * nv, nv));
    float margin;
    size_t xb = argmax_margin(x + t * nv, nv, &margin), cb = argmax(c + t * nv, nv);
    if (xb == cb) {
      agree++;
    } else if (margin <= 1.0f) {
      ties++;
      worst_tie = margin > worst_tie ? margin : worst_tie;
    } else {
      fail_msg("%s position %zu: top token %zu here, %zu in the exact reference (margin %g)",
               name, t, cb, xb, (double)margin);
    }
  }
  print_message("%s: %zu positions; position 0 within %.3g of the rounded reference (bound "
                "1e-4, or a fifth of the rounding's own %.3g); against exact arithmetic %.3g (the rounded reference: %.3g; bound 1.5x "
                "+ 0.01); top token equal at %d, near-ties %d (largest margin %.3g, bound 1)\n",
                name, n, e0, er0, ec, er, agree, ties, (double)worst_tie);
  /* SmolLM2's 30 layers of Q4_1, whose min terms cancel, already amplify float32 rounding at
   * position 0 (the AVX2 and plain C paths land at different points, both about 0.5% away):
   * then the engine must at least be much closer to the rounded reference than the rounding
   * itself moves it */
  if (!(e0 <= 1e-4 || e0 <= 0.2 * er0))
    fail_msg("%s: position 0 differs from the rounded reference by %g (the rounding itself: %g)",
             name, e0, er0);
  if (!(ec <= 1.5 * er + 0.01))
    fail_msg("%s: relative L2 error %g against exact arithmetic, above 1.5 x %g + 0.01", name, ec,
             er);
  free(x);
  free(c);
  free(r);
  hs_seq_destroy(s);
  hs_tokenizer_destroy(tk);
  hs_model_close(m);
}

static void test_smollm2(void **state) {
  (void)state;
  check_model("smollm2-135m-instruct");
}

static void test_gemma3(void **state) {
  (void)state;
  check_model("gemma3-270m");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_smollm2),
      cmocka_unit_test(test_gemma3),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
