/* test_sampler.c: next-token sampling (src/engine/sampler.c).
 *
 * Greedy argmax and its tie rule; reproducibility of a draw from (seed, position) alone; top-k,
 * top-p and min-p truncation; empirical frequencies against an independent softmax; the exact
 * arithmetic of the three penalties (checked by greedy flips at one ulp); every argument check;
 * and the range and uniformity of the counter-based generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hswarm/error.h"
#include "hswarm/sampler.h"

#define MAXV 1024
static float scratch[2 * MAXV];

static int32_t sample(const hs_sampler_params *p, const float *logits, size_t n,
                      const int32_t *hist, size_t nh, uint64_t pos) {
  int32_t tok = -1;
  assert_true(hs_sampler_scratch_floats(n) <= 2 * MAXV);
  int rc = hs_sample(p, logits, n, hist, nh, pos, scratch, &tok);
  if (rc != 0) fail_msg("hs_sample failed: %s", hs_sampler_last_error());
  assert_true(tok >= 0 && (size_t)tok < n);
  return tok;
}

static hs_sampler_params params(float temperature, uint64_t seed) {
  hs_sampler_params p;
  hs_sampler_params_init(&p);
  p.temperature = temperature;
  p.seed = seed;
  return p;
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static float rnd_logit(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 11) * 0x1p-53 * 8.0 - 4.0);
}

static void test_defaults(void **state) {
  (void)state;
  hs_sampler_params p;
  memset(&p, 0xff, sizeof p);
  hs_sampler_params_init(&p);
  assert_true(p.temperature > 0);
  assert_int_equal(p.top_k, 0);
  assert_true(p.top_p == 1.0f && p.min_p == 0.0f && p.repetition_penalty == 1.0f);
  assert_true(p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
  assert_int_equal(p.penalty_last_n, 64);
  assert_int_equal(p.seed, 0);
}

static void test_greedy(void **state) {
  (void)state;
  hs_sampler_params p = params(0, 1);
  const float a[] = {1, 5, 3, 4.5f};
  assert_int_equal(sample(&p, a, 4, NULL, 0, 0), 1);
  const float ties[] = {-INFINITY, 2, 7, 1, 7, 7};
  for (uint64_t pos = 0; pos < 50; pos++) assert_int_equal(sample(&p, ties, 6, NULL, 0, pos), 2);
  const float last[] = {-3, -2, -1};
  assert_int_equal(sample(&p, last, 3, NULL, 0, 0), 2);
}

static void test_reproducible(void **state) {
  (void)state;
  float l[64];
  for (int i = 0; i < 64; i++) l[i] = rnd_logit();
  hs_sampler_params p = params(1.0f, 42);
  int32_t first = sample(&p, l, 64, NULL, 0, 7);
  hs_sampler_params q = params(1.3f, 9);
  for (uint64_t pos = 0; pos < 100; pos++) (void)sample(&q, l, 32, NULL, 0, pos);
  assert_int_equal(sample(&p, l, 64, NULL, 0, 7), first);
  assert_true(hs_rand_uniform(42, 7, 0) == hs_rand_uniform(42, 7, 0));

  /* different positions and different seeds change the draw */
  int seen_pos[64] = {0}, seen_seed[64] = {0}, npos = 0, nseed = 0;
  for (uint64_t i = 0; i < 64; i++) {
    int32_t a = sample(&p, l, 64, NULL, 0, i);
    npos += !seen_pos[a];
    seen_pos[a] = 1;
    hs_sampler_params s = params(1.0f, i);
    int32_t b = sample(&s, l, 64, NULL, 0, 7);
    nseed += !seen_seed[b];
    seen_seed[b] = 1;
  }
  assert_true(npos >= 5);
  assert_true(nseed >= 5);
  assert_true(hs_rand_uniform(42, 7, 0) != hs_rand_uniform(42, 8, 0));
  assert_true(hs_rand_uniform(42, 7, 0) != hs_rand_uniform(43, 7, 0));
  assert_true(hs_rand_uniform(42, 7, 0) != hs_rand_uniform(42, 7, 1));
}

static int32_t argmax_low(const float *l, size_t n) {
  size_t b = 0;
  for (size_t i = 1; i < n; i++)
    if (l[i] > l[b]) b = i;
  return (int32_t)b;
}

static void test_top_k1_and_top_p_tiny_are_greedy(void **state) {
  (void)state;
  float l[300];
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 300; i++) l[i] = rnd_logit();
    if (round % 2) l[17] = l[250] = 9; /* a tie at the top: lowest id */
    int32_t g = argmax_low(l, 300);
    hs_sampler_params k1 = params(1.5f, (uint64_t)round);
    k1.top_k = 1;
    hs_sampler_params tp = params(1.5f, (uint64_t)round);
    tp.top_p = 1e-6f;
    for (uint64_t pos = 0; pos < 30; pos++) {
      assert_int_equal(sample(&k1, l, 300, NULL, 0, pos), g);
      assert_int_equal(sample(&tp, l, 300, NULL, 0, pos), g);
    }
  }
}

static void test_top_k(void **state) {
  (void)state;
  float l[1000];
  for (int i = 0; i < 1000; i++) l[i] = rnd_logit() * 0.1f; /* flat: without top-k anything goes */
  /* the 5 largest, by the test's own selection */
  int top[5];
  for (int k = 0; k < 5; k++) {
    int b = -1;
    for (int i = 0; i < 1000; i++) {
      int taken = 0;
      for (int j = 0; j < k; j++) taken |= top[j] == i;
      if (!taken && (b < 0 || l[i] > l[b])) b = i;
    }
    top[k] = b;
  }
  hs_sampler_params p = params(1.0f, 3);
  p.top_k = 5;
  int hits[5] = {0};
  for (uint64_t pos = 0; pos < 2000; pos++) {
    int32_t t = sample(&p, l, 1000, NULL, 0, pos);
    int ok = 0;
    for (int j = 0; j < 5; j++)
      if (t == top[j]) ok = 1, hits[j]++;
    assert_true(ok);
  }
  for (int j = 0; j < 5; j++) assert_true(hits[j] > 200); /* all five roughly equally likely */
}

static void test_top_p(void **state) {
  (void)state;
  /* probabilities 0.5, 0.3, 0.2 at temperature 1; top_p 0.75 keeps the first two */
  const float l[] = {logf(0.2f), logf(0.5f), logf(0.3f)};
  hs_sampler_params p = params(1.0f, 5);
  p.top_p = 0.75f;
  int n[3] = {0};
  for (uint64_t pos = 0; pos < 5000; pos++) n[sample(&p, l, 3, NULL, 0, pos)]++;
  assert_int_equal(n[0], 0);
  assert_true(fabs(n[1] / 5000.0 - 0.625) < 0.03);
  assert_true(fabs(n[2] / 5000.0 - 0.375) < 0.03);
}

static void test_min_p(void **state) {
  (void)state;
  /* relative to the top token: 0.49 (just under min_p 0.5) and 0.51 (just over) */
  const float l[] = {0.0f, logf(0.49f), logf(0.51f), -1.0f};
  hs_sampler_params p = params(1.0f, 11);
  p.min_p = 0.5f;
  int n[4] = {0};
  for (uint64_t pos = 0; pos < 3000; pos++) n[sample(&p, l, 4, NULL, 0, pos)]++;
  assert_int_equal(n[1], 0);
  assert_int_equal(n[3], 0);
  assert_true(n[2] > 500);
  assert_true(n[0] > 1000);
  /* min_p 0 keeps them: token 1 appears */
  p.min_p = 0.0f;
  int m1 = 0;
  for (uint64_t pos = 0; pos < 3000; pos++) m1 += sample(&p, l, 4, NULL, 0, pos) == 1;
  assert_true(m1 > 300);
}

static void test_temperature_frequencies(void **state) {
  (void)state;
  const float l[] = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f, 1.5f};
  const double temps[] = {0.7, 1.0, 2.5};
  for (int t = 0; t < 3; t++) {
    double pr[6], z = 0;
    for (int i = 0; i < 6; i++) z += pr[i] = exp(l[i] / temps[t]);
    hs_sampler_params p = params((float)temps[t], 1234);
    int n[6] = {0};
    const int N = 20000;
    for (uint64_t pos = 0; pos < (uint64_t)N; pos++) n[sample(&p, l, 6, NULL, 0, pos)]++;
    for (int i = 0; i < 6; i++) assert_true(fabs((double)n[i] / N - pr[i] / z) < 0.02);
  }
  /* a low temperature concentrates mass on the argmax, a high one spreads it */
  hs_sampler_params cold = params(0.05f, 1), hot = params(50.0f, 1);
  int c = 0, h = 0;
  for (uint64_t pos = 0; pos < 2000; pos++) {
    c += sample(&cold, l, 6, NULL, 0, pos) == 2;
    h += sample(&hot, l, 6, NULL, 0, pos) == 2;
  }
  assert_true(c > 1990);
  assert_true(h < 600);
}

/* greedy choice after penalties, with token 1's logit set to x */
static int32_t flip(hs_sampler_params *p, float l0, float x, const int32_t *h, size_t nh) {
  float l[3] = {l0, x, -100.0f};
  p->temperature = 0;
  return sample(p, l, 3, h, nh, 0);
}

static void test_repetition_penalty(void **state) {
  (void)state;
  hs_sampler_params p = params(0, 0);
  p.repetition_penalty = 1.25f;
  const int32_t once[] = {0}, thrice[] = {0, 2, 0, 0};
  /* positive: 2 / 1.25 = 1.6 exactly rounded; a tie goes to token 0 */
  assert_int_equal(flip(&p, 2.0f, 1.6f, once, 1), 0);
  assert_int_equal(flip(&p, 2.0f, nextafterf(1.6f, 2.0f), once, 1), 1);
  assert_int_equal(flip(&p, 2.0f, nextafterf(1.6f, 2.0f), thrice, 4), 1); /* once per token */
  assert_int_equal(flip(&p, 2.0f, nextafterf(1.6f, 0.0f), thrice, 4), 0);
  /* negative: -1 * 1.25 = -1.25 */
  assert_int_equal(flip(&p, -1.0f, -1.25f, once, 1), 0);
  assert_int_equal(flip(&p, -1.0f, nextafterf(-1.25f, 0.0f), once, 1), 1);
  assert_int_equal(flip(&p, -1.0f, nextafterf(-1.25f, -2.0f), thrice, 4), 0);
  /* off: no change */
  p.repetition_penalty = 1.0f;
  assert_int_equal(flip(&p, 2.0f, 1.9f, once, 1), 0);
}

static void test_presence_frequency_penalty(void **state) {
  (void)state;
  const int32_t h[] = {0, 0, 0};
  hs_sampler_params p = params(0, 0);
  p.presence_penalty = 0.5f; /* subtracted once: 1 - 0.5 = 0.5 */
  assert_int_equal(flip(&p, 1.0f, 0.5f, h, 3), 0);
  assert_int_equal(flip(&p, 1.0f, nextafterf(0.5f, 1.0f), h, 3), 1);
  assert_int_equal(flip(&p, 1.0f, nextafterf(0.5f, 0.0f), h, 3), 0);
  p.presence_penalty = 0;
  p.frequency_penalty = 0.25f; /* 3 times: 1 - 0.75 = 0.25 */
  assert_int_equal(flip(&p, 1.0f, 0.25f, h, 3), 0);
  assert_int_equal(flip(&p, 1.0f, nextafterf(0.25f, 1.0f), h, 3), 1);
  assert_int_equal(flip(&p, 1.0f, nextafterf(0.25f, 0.0f), h, 3), 0);
  /* both, with repetition first: 2/2 = 1, then 1 - (3*0.25 + 0.125) = 0.125 */
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.125f;
  assert_int_equal(flip(&p, 2.0f, 0.125f, h, 3), 0);
  assert_int_equal(flip(&p, 2.0f, nextafterf(0.125f, 1.0f), h, 3), 1);
  /* the window: only the last penalty_last_n tokens count */
  hs_sampler_params w = params(0, 0);
  w.presence_penalty = 0.5f;
  const int32_t h2[] = {0, 2};
  const float l[] = {1.0f, 0.75f, 0.0f};
  w.penalty_last_n = 1;
  assert_int_equal(sample(&w, l, 3, h2, 2, 0), 0);
  w.penalty_last_n = 2;
  assert_int_equal(sample(&w, l, 3, h2, 2, 0), 1);
  w.penalty_last_n = 0;
  assert_int_equal(sample(&w, l, 3, h2, 2, 0), 0);
  w.penalty_last_n = SIZE_MAX;
  assert_int_equal(sample(&w, l, 3, h2, 2, 0), 1);
}

static void expect_einval(const hs_sampler_params *p, const float *l, size_t n, const int32_t *h,
                          size_t nh, const char *name) {
  int32_t tok = 77;
  assert_int_equal(hs_sample(p, l, n, h, nh, 0, scratch, &tok), HS_EINVAL);
  assert_int_equal(tok, 77);
  if (!strstr(hs_sampler_last_error(), name))
    fail_msg("message '%s' does not name '%s'", hs_sampler_last_error(), name);
}

static void test_invalid(void **state) {
  (void)state;
  const float l[] = {1, 2, 3};
  const int32_t h[] = {0, 3};
  hs_sampler_params p = params(1.0f, 0);
  expect_einval(&p, l, 0, NULL, 0, "n_vocab");
  const float nan_l[] = {1, NAN, 3};
  expect_einval(&p, nan_l, 3, NULL, 0, "logits[1]");
  const float inf_l[] = {-INFINITY, -INFINITY};
  expect_einval(&p, inf_l, 2, NULL, 0, "logits");
  expect_einval(&p, l, 3, h, 2, "history[1]");
  hs_sampler_params q = p;
  q.temperature = -0.1f;
  expect_einval(&q, l, 3, NULL, 0, "temperature");
  q = p;
  q.temperature = NAN;
  expect_einval(&q, l, 3, NULL, 0, "temperature");
  q = p;
  q.top_k = -1;
  expect_einval(&q, l, 3, NULL, 0, "top_k");
  q = p;
  q.top_p = 0.0f;
  expect_einval(&q, l, 3, NULL, 0, "top_p");
  q.top_p = 1.01f;
  expect_einval(&q, l, 3, NULL, 0, "top_p");
  q = p;
  q.min_p = -0.01f;
  expect_einval(&q, l, 3, NULL, 0, "min_p");
  q.min_p = 1.5f;
  expect_einval(&q, l, 3, NULL, 0, "min_p");
  q = p;
  q.repetition_penalty = 0.0f;
  expect_einval(&q, l, 3, NULL, 0, "repetition_penalty");
  q.repetition_penalty = -1.0f;
  expect_einval(&q, l, 3, NULL, 0, "repetition_penalty");
  q = p;
  q.presence_penalty = INFINITY;
  expect_einval(&q, l, 3, NULL, 0, "presence_penalty");
  q = p;
  q.frequency_penalty = NAN;
  expect_einval(&q, l, 3, NULL, 0, "frequency_penalty");
  /* the valid call after all this still works */
  assert_int_equal(sample(&p, l, 3, NULL, 0, 0) >= 0, 1);
}

static void test_rand_uniform(void **state) {
  (void)state;
  const int N = 100000;
  double sum = 0;
  int bins[10] = {0};
  for (int i = 0; i < N; i++) {
    double u = hs_rand_uniform(99, (uint64_t)i, 0);
    assert_true(u >= 0.0 && u < 1.0);
    sum += u;
    bins[(int)(u * 10)]++;
  }
  assert_true(fabs(sum / N - 0.5) < 0.005);
  for (int b = 0; b < 10; b++) assert_true(abs(bins[b] - N / 10) < N / 100);
  /* across seeds at one position as well */
  sum = 0;
  for (int i = 0; i < N; i++) sum += hs_rand_uniform((uint64_t)i, 5, 0);
  assert_true(fabs(sum / N - 0.5) < 0.005);
}

/* ---- the lazy heap against a whole sort ---- */

typedef struct cand {
  float v;
  int32_t id;
} cand;

static int cand_cmp(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->v != y->v) return x->v > y->v ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* The documented pipeline with every candidate sorted first (no penalties). */
static int32_t sorted_pick(const hs_sampler_params *p, const float *logits, size_t n,
                           uint64_t pos) {
  static cand c[MAXV];
  static double q[MAXV];
  for (size_t i = 0; i < n; i++) c[i] = (cand){logits[i], (int32_t)i};
  qsort(c, n, sizeof c[0], cand_cmp);
  double vmax = c[0].v, total = 0;
  for (size_t i = 0; i < n; i++) q[i] = (float)exp(((double)c[i].v - vmax) / p->temperature);
  size_t m = p->top_k > 0 && (size_t)p->top_k < n ? (size_t)p->top_k : n;
  bool cut = m < n;
  if (cut)
    for (size_t i = 0; i < m; i++) total += q[i];
  else
    for (size_t i = 0; i < n; i++) total += (float)exp(((double)logits[i] - vmax) / p->temperature);
  if (p->top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < m; i++)
      if ((cum += q[i]) >= (double)p->top_p * total) {
        m = i + 1;
        cut = true;
        break;
      }
  }
  if (p->min_p > 0.0f) {
    size_t keep = 1;
    while (keep < m && q[keep] >= (double)p->min_p * q[0]) keep++;
    if (keep < m) cut = true;
    m = keep;
  }
  double sum = total;
  if (cut) {
    while (m > 1 && q[m - 1] == 0) m--;
    sum = 0;
    for (size_t i = 0; i < m; i++) sum += q[i];
  }
  double u = hs_rand_uniform(p->seed, pos, 0) * sum, cum = 0;
  for (size_t i = 0; i < m; i++)
    if (u < (cum += q[i])) return c[i].id;
  size_t last = m - 1;
  while (last > 0 && q[last] == 0) last--;
  return c[last].id;
}

/* Popping candidates only as far as the cuts and the draw need gives the picks of a whole sort,
 * for flat and peaked logits, ties, and every cut. */
static void test_lazy_equals_sorted(void **state) {
  (void)state;
  float logits[MAXV];
  uint64_t x = 12345;
  int differ = 0, draws = 0;
  for (int round = 0; round < 40; round++) {
    const float spread = round % 4 == 0 ? 0.5f : round % 4 == 1 ? 4.0f : round % 4 == 2 ? 20.0f : 60.0f;
    for (size_t i = 0; i < MAXV; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      logits[i] = (float)((double)(x % 10000) / 10000.0 - 0.5) * spread;
      if (round % 5 == 0 && i % 7 == 0) logits[i] = logits[i / 2]; /* ties */
    }
    hs_sampler_params p;
    hs_sampler_params_init(&p);
    p.seed = (uint64_t)round;
    p.temperature = round % 3 == 0 ? 0.3f : round % 3 == 1 ? 0.8f : 1.7f;
    p.top_k = round % 6 == 0 ? 40 : 0;
    p.top_p = round % 4 == 1 ? 0.9f : 1.0f;
    p.min_p = round % 5 == 2 ? 0.05f : 0.0f;
    for (uint64_t pos = 0; pos < 50; pos++) {
      draws++;
      differ += sample(&p, logits, MAXV, NULL, 0, pos) != sorted_pick(&p, logits, MAXV, pos);
    }
  }
  print_message("%d draws, %d different from the whole sort\n", draws, differ);
  assert_int_equal(differ, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lazy_equals_sorted),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_greedy),
      cmocka_unit_test(test_reproducible),
      cmocka_unit_test(test_top_k1_and_top_p_tiny_are_greedy),
      cmocka_unit_test(test_top_k),
      cmocka_unit_test(test_top_p),
      cmocka_unit_test(test_min_p),
      cmocka_unit_test(test_temperature_frequencies),
      cmocka_unit_test(test_repetition_penalty),
      cmocka_unit_test(test_presence_frequency_penalty),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_rand_uniform),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
