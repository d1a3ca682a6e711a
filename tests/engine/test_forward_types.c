/* test_forward_types.c: every tensor type through the whole forward pass against the PyTorch
 * reference tests/engine/model_ref.py (split from test_forward.c, which checks the architectures
 * and the engine's own properties; this one is labelled slow, since it runs the reference twice
 * for each of 18 files).
 *
 * small-llama3 (n_embd 256, rows fit every type) in F16, BF16 and every quantized type,
 * small-qwen2 in Q4_K, and small-gemma3 (640 wide, as Gemma 3 270M) in Q4_K_M and Q5_0: logits
 * against the reference on the same (dequantized) weights, relative L2 error over all positions
 * within a per-type bound (the kernels quantize activations on the fly, the reference does not),
 * and within 1e-2 of the reference that rounds activations as the kernels do, most positions
 * within 1e-5 of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine/forward_ref.h"

/* ---- against the reference: quantized and half types ---- */

/* Each type twice. Against the reference on exact arithmetic: the whole error. For quantized
 * weights it is dominated by the kernels' 8-bit activations (about 0.5% per product, in blocks
 * of 32 for Q8_0/Q4_0 and 256 for the K types, as llama.cpp does); the weights themselves are the
 * same on both sides. Then against the reference that rounds activations the same way
 * (--act-quant), where only float rounding is left: most positions agree to about 1e-7. A few
 * may not: an activation that falls within float32 rounding of a code boundary rounds one way in
 * C (float32) and the other in the reference (float64), a one-code change that reaches the later
 * positions through attention (seen: up to 8 of 40 positions off, by 1e-3 to 2e-2). A kernel or
 * engine bug would put every position off, so that check asks for half of them within 1e-5.
 * The KV cache is f32 here: an f16 cache adds its own rounding flips (a key within float32
 * rounding of an f16 midpoint), which test_ref_llama3 and its siblings check. */
static void test_ref_types(void **state) {
  (void)state;
  kv_type = HS_KV_F32;
  static const struct {
    const char *preset;
    hs_synth_type t;
    double bound; /* relative L2 error allowed against exact arithmetic */
    int few_tight; /* gemma3: only position 0 must be within 1e-5 (see below) */
  } cases[] = {
      {"small-llama3", HS_SYNTH_F16, 1e-5, 0},  {"small-llama3", HS_SYNTH_BF16, 1e-5, 0},
      {"small-llama3", HS_SYNTH_Q8_0, 3e-2, 0}, {"small-llama3", HS_SYNTH_Q6_K, 3e-2, 0},
      {"small-llama3", HS_SYNTH_Q4_0, 3e-2, 0}, {"small-llama3", HS_SYNTH_Q4_K, 3e-2, 0},
      {"small-llama3", HS_SYNTH_Q4_K_M, 3e-2, 0}, {"small-qwen2", HS_SYNTH_Q4_K, 3e-2, 0},
      {"small-llama3", HS_SYNTH_Q4_1, 3e-2, 0}, {"small-llama3", HS_SYNTH_Q5_0, 3e-2, 0},
      {"small-llama3", HS_SYNTH_Q5_1, 3e-2, 0}, {"small-llama3", HS_SYNTH_IQ4_NL, 3e-2, 0},
      {"small-llama3", HS_SYNTH_Q2_K, 3e-2, 0}, {"small-llama3", HS_SYNTH_Q3_K, 3e-2, 0},
      {"small-llama3", HS_SYNTH_Q5_K, 3e-2, 0}, {"small-llama3", HS_SYNTH_IQ4_XS, 3e-2, 0},
      /* 640 wide, as Gemma 3 270M: the K types fall back to Q8_0 where rows are not a multiple
       * of 256, the 32-element types fit */
      {"small-gemma3", HS_SYNTH_Q4_K_M, 3e-2, 1}, {"small-gemma3", HS_SYNTH_Q5_0, 3e-2, 1},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char path[300], name[64];
    snprintf(name, sizeof name, "%s-%s.gguf", cases[k].preset, hs_synth_type_name(cases[k].t));
    write_model(cases[k].preset, cases[k].t, 0, path, sizeof path, name);
    hs_model *m = open_model(path);
    const size_t nv = hs_model_get_params(m)->n_vocab;
    int32_t toks[N_PROMPT];
    prompt(toks, N_PROMPT, (uint32_t)nv, 4);
    float *c = c_logits(m, toks, N_PROMPT);
    float *r = ref_logits(path, toks, N_PROMPT, nv);
    size_t len;
    float *raq = run_ref("logits", path, "--act-quant", toks, N_PROMPT, &len);
    assert_int_equal(len, N_PROMPT * nv * sizeof(float));
    double e = rel_l2(c, r, N_PROMPT * nv), e_aq = rel_l2(c, raq, N_PROMPT * nv), worst_aq = 0;
    /* Gemma's norms after each sublayer scale every sublayer's output back up, so one activation
     * code rounded the other way at a tie (float32 here, float64 there) is not damped: from
     * position 1 on (where attention mixes positions and rounding starts to differ) the engine
     * stays within the 1e-2 bound of the rounded reference but not within 1e-5. Position 0 must
     * still match it to 1e-5. */
    const int min_tight = cases[k].few_tight ? 1 : N_PROMPT / 2;
    const double e0 = rel_l2(c, raq, nv);
    int agree = 0, tight = 0;
    for (size_t t = 0; t < N_PROMPT; t++) {
      agree += argmax(c + t * nv, nv) == argmax(r + t * nv, nv);
      double et = rel_l2(c + t * nv, raq + t * nv, nv);
      tight += et <= 1e-5;
      worst_aq = et > worst_aq ? et : worst_aq;
    }
    print_message("%-12s %-6s relative L2 error %.3g (bound %.0e), top-1 equal at %d of %d; with "
                  "quantized activations %.3g overall (bound 1e-2), %d of %d positions within "
                  "1e-5 (worst %.3g)\n",
                  cases[k].preset, hs_synth_type_name(cases[k].t), e, cases[k].bound, agree,
                  N_PROMPT, e_aq, tight, N_PROMPT, worst_aq);
    /* against the reference on the same weights and the kernels' activation rounding: the
     * issue's 1e-2 bound on the relative L2 error, for every type */
    if (!(e <= cases[k].bound) || !(e_aq <= 1e-2) || tight < min_tight || !(e0 <= 1e-5))
      fail_msg("%s %s: relative L2 error %g (bound %g), %g with quantized activations (bound "
               "1e-2); %d positions within 1e-5 of the reference with quantized activations (at "
               "least %d, position 0 among them: %g)",
               cases[k].preset, hs_synth_type_name(cases[k].t), e, cases[k].bound, e_aq, tight,
               min_tight, e0);
    free(c);
    free(r);
    free(raq);
    hs_model_close(m);
    unlink(path);
  }
  kv_type = HS_KV_F16;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ref_types),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
