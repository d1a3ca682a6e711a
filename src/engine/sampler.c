/* sampler.c: next-token sampling (see include/hswarm/sampler.h for the pipeline).
 *
 * The idea: sampling is a pure function. The random number comes from a counter-based generator,
 * hs_rand_uniform(seed, position, stream), a hash of its arguments, so there is no generator state
 * to share or advance and a request's draw at position t is the same whatever else ran. The
 * candidates are put in one total order, (logit desc, token id asc), before the inverse-CDF draw,
 * so equal probabilities never leave the choice to an unstable sort.
 *
 * Scratch layout (caller-owned, 2 * n_vocab floats): pairs (value, id), the id stored as a float
 * (exact since n_vocab <= 2^24). Penalties are applied in place in id order; while counting the
 * window's tokens the id slot of a token temporarily holds its count, then is restored, so the
 * count costs O(window) with no extra memory. Sorting is a heap selection: build a heap with the
 * best candidate at the root and pop candidates only as the cuts (top-k, top-p, min-p) and the
 * draw reach them, so the cost is O(n_vocab + k log n_vocab) where k is how far down the order
 * the draw went (a few for a confident model), not a sort of the whole vocabulary: with 262,144
 * entries that took 86 ms a token here. Without top-k, the weights' total is summed in id order
 * before the heap is built (the one sum not taken in candidate order). Nothing is allocated. */
#include "hswarm/sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/last_error.h"
#include "hswarm/error.h"

static _Thread_local hs_errbuf err;

const char *hs_sampler_last_error(void) { return err.msg; }

void hs_sampler_params_init(hs_sampler_params *p) {
  if (!p) return;
  p->temperature = 0.8f;
  p->top_k = 0;
  p->top_p = 1.0f;
  p->min_p = 0.0f;
  p->repetition_penalty = 1.0f;
  p->presence_penalty = 0.0f;
  p->frequency_penalty = 0.0f;
  p->penalty_last_n = 64;
  p->seed = 0;
}

size_t hs_sampler_scratch_floats(size_t n_vocab) { return 2 * n_vocab; }

/* ---- counter-based random numbers ---- */

static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

double hs_rand_uniform(uint64_t seed, uint64_t position, uint64_t stream) {
  uint64_t z = splitmix(seed);
  z = splitmix(z ^ position);
  z = splitmix(z ^ (stream * 0xd6e8feb86659fd93ull));
  return (double)(z >> 11) * 0x1p-53;
}

/* ---- candidate heap over (value, id) pairs ---- */

/* a is a better candidate than b: larger value, or equal value and lower id. */
static int better(const float *s, size_t a, size_t b) {
  float va = s[2 * a], vb = s[2 * b];
  if (va != vb) return va > vb;
  return s[2 * a + 1] < s[2 * b + 1];
}

static void swap_pair(float *s, size_t a, size_t b) {
  float v = s[2 * a], id = s[2 * a + 1];
  s[2 * a] = s[2 * b];
  s[2 * a + 1] = s[2 * b + 1];
  s[2 * b] = v;
  s[2 * b + 1] = id;
}

static void sift_down(float *s, size_t i, size_t n) {
  for (;;) {
    size_t l = 2 * i + 1, best = i;
    if (l < n && better(s, l, best)) best = l;
    if (l + 1 < n && better(s, l + 1, best)) best = l + 1;
    if (best == i) return;
    swap_pair(s, i, best);
    i = best;
  }
}

/* ---- sampling ---- */

static int check_params(const hs_sampler_params *p) {
  if (!isfinite(p->temperature) || p->temperature < 0)
    return hs_set_error(&err, HS_EINVAL, "temperature must be finite and >= 0 (got %g)",
                        (double)p->temperature);
  if (p->top_k < 0)
    return hs_set_error(&err, HS_EINVAL, "top_k must be >= 0 (got %d)", (int)p->top_k);
  if (!(p->top_p > 0 && p->top_p <= 1))
    return hs_set_error(&err, HS_EINVAL, "top_p must be in (0, 1] (got %g)", (double)p->top_p);
  if (!(p->min_p >= 0 && p->min_p <= 1))
    return hs_set_error(&err, HS_EINVAL, "min_p must be in [0, 1] (got %g)", (double)p->min_p);
  if (!isfinite(p->repetition_penalty) || !(p->repetition_penalty > 0))
    return hs_set_error(&err, HS_EINVAL, "repetition_penalty must be finite and > 0 (got %g)",
                        (double)p->repetition_penalty);
  if (!isfinite(p->presence_penalty))
    return hs_set_error(&err, HS_EINVAL, "presence_penalty must be finite (got %g)",
                        (double)p->presence_penalty);
  if (!isfinite(p->frequency_penalty))
    return hs_set_error(&err, HS_EINVAL, "frequency_penalty must be finite (got %g)",
                        (double)p->frequency_penalty);
  return 0;
}

int hs_sample(const hs_sampler_params *p, const float *logits, size_t n_vocab,
              const int32_t *history, size_t n_history, uint64_t position, float *scratch,
              int32_t *out_token) {
  if (!p || !logits || !scratch || !out_token || (n_history > 0 && !history))
    return hs_set_error(&err, HS_EINVAL, "hs_sample: NULL argument");
  if (n_vocab == 0 || n_vocab > ((size_t)1 << 24))
    return hs_set_error(&err, HS_EINVAL, "n_vocab must be in [1, 2^24] (got %zu)", n_vocab);
  int rc = check_params(p);
  if (rc) return rc;

  size_t win = p->penalty_last_n < n_history ? p->penalty_last_n : n_history;
  const int32_t *w = history ? history + (n_history - win) : history;
  for (size_t i = 0; i < win; i++)
    if (w[i] < 0 || (size_t)w[i] >= n_vocab)
      return hs_set_error(&err, HS_EINVAL, "history[%zu] = %d is not a token id below n_vocab %zu",
                          n_history - win + i, (int)w[i], n_vocab);

  int any_finite = 0;
  for (size_t i = 0; i < n_vocab; i++) {
    float v = logits[i];
    if (isnan(v) || v == INFINITY)
      return hs_set_error(&err, HS_EINVAL, "logits[%zu] is %s", i, isnan(v) ? "NaN" : "+inf");
    if (v != -INFINITY) any_finite = 1;
    scratch[2 * i] = v;
    scratch[2 * i + 1] = (float)i;
  }
  if (!any_finite) return hs_set_error(&err, HS_EINVAL, "logits are all -inf");

  /* 1. penalties: count each window token in its id slot, apply once per distinct token, restore */
  int penalize = p->repetition_penalty != 1.0f || p->presence_penalty != 0.0f ||
                 p->frequency_penalty != 0.0f;
  if (penalize && win > 0) {
    for (size_t i = 0; i < win; i++) scratch[2 * (size_t)w[i] + 1] = 0;
    for (size_t i = 0; i < win; i++) scratch[2 * (size_t)w[i] + 1] += 1;
    for (size_t i = 0; i < win; i++) {
      size_t t = (size_t)w[i];
      float c = scratch[2 * t + 1];
      if (c == 0) continue; /* already applied */
      float v = scratch[2 * t];
      if (p->repetition_penalty != 1.0f)
        v = v > 0 ? v / p->repetition_penalty : v * p->repetition_penalty;
      v -= c * p->frequency_penalty + p->presence_penalty;
      if (isinf(v) && scratch[2 * t] != -INFINITY) v = v > 0 ? FLT_MAX : -FLT_MAX; /* overflow */
      scratch[2 * t] = v;
      scratch[2 * t + 1] = 0;
    }
    for (size_t i = 0; i < win; i++) scratch[2 * (size_t)w[i] + 1] = (float)w[i];
  }

  /* 2. greedy */
  if (p->temperature == 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < n_vocab; i++)
      if (scratch[2 * i] > scratch[2 * best]) best = i;
    *out_token = (int32_t)best;
    return 0;
  }

  /* 3. candidates, best first, popped lazily from a heap: candidate i of the total order lives
   *    at pair n - 1 - i once popped, its value replaced by its probability weight
   *    q = exp((v - vmax) / T) rounded to float. Only as many are popped as the cuts and the
   *    draw look at, so a 262,144-entry vocabulary is not sorted whole. */
  const size_t n = n_vocab;
  double vmax = -INFINITY, temp = p->temperature;
  for (size_t i = 0; i < n; i++) vmax = scratch[2 * i] > vmax ? scratch[2 * i] : vmax;
  size_t m = n;
  if (p->top_k > 0 && (size_t)p->top_k < m) m = (size_t)p->top_k;
  /* without top-k the weights' total is summed in id order (with top-k, over the k in order) */
  double total = 0;
  if (m == n)
    for (size_t i = 0; i < n; i++) total += (float)exp(((double)scratch[2 * i] - vmax) / temp);
  for (size_t i = n / 2; i-- > 0;) sift_down(scratch, i, n);
  size_t heap = n; /* pairs [0, heap) are still the heap */
#define Q(i) scratch[2 * (n - 1 - (i))]
#define POP_TO(k)                                                                  \
  while (n - heap < (k)) {                                                         \
    heap--;                                                                        \
    swap_pair(scratch, 0, heap);                                                   \
    sift_down(scratch, 0, heap);                                                   \
    scratch[2 * heap] = (float)exp(((double)scratch[2 * heap] - vmax) / temp);     \
  }
  if (m < n) {
    POP_TO(m);
    for (size_t i = 0; i < m; i++) total += Q(i);
  }
  bool cut = m < n;

  /* 4. top-p: the shortest prefix holding top_p of the weight */
  if (p->top_p < 1.0f) {
    double cum = 0, target = (double)p->top_p * total;
    for (size_t i = 0; i < m; i++) {
      POP_TO(i + 1);
      cum += Q(i);
      if (cum >= target) {
        m = i + 1;
        cut = true;
        break;
      }
    }
  }

  /* 5. min-p (candidate 0 has the largest weight, 1) */
  if (p->min_p > 0.0f) {
    POP_TO(1);
    double floor_p = (double)p->min_p * Q(0);
    size_t keep = 1;
    for (;;) {
      if (keep >= m) break;
      POP_TO(keep + 1);
      if (!((double)Q(keep) >= floor_p)) break;
      keep++;
    }
    if (keep < m) cut = true;
    m = keep;
  }

  /* 6. renormalise and draw: after a cut, over the kept candidates in order; else the total */
  double sum = total;
  if (cut) {
    while (m > 1 && Q(m - 1) == 0) m--; /* a zero-weight tail can never be drawn */
    sum = 0;
    for (size_t i = 0; i < m; i++) sum += Q(i);
  }
  double u = hs_rand_uniform(p->seed, position, 0) * sum, cum = 0;
  size_t pick = SIZE_MAX;
  for (size_t i = 0; i < m; i++) {
    POP_TO(i + 1);
    cum += Q(i);
    if (u < cum) {
      pick = i;
      break;
    }
  }
  if (pick == SIZE_MAX) { /* rounding left u at the very end: the last candidate of weight > 0 */
    POP_TO(m);
    pick = m - 1;
    while (pick > 0 && Q(pick) == 0) pick--;
  }
#undef POP_TO
#undef Q
  pick = n - 1 - pick;
  *out_token = (int32_t)scratch[2 * pick + 1];
  return 0;
}
