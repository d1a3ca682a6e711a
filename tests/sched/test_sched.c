/* test_sched.c: the batch scheduler (src/sched/) through hswarm/sched.h.
 *
 * The tokens of every request are compared with an independent loop over the engine (one
 * sequence, the prompt fed at once, then hs_sample at each position with the request's own
 * parameters and history) on a model without a prefix cache: they must be the same whatever the
 * token budget (prompt chunking), batching, thread count, shared-prefix attention, pool size
 * (waiting, eviction), submission times and preemption. Then the policy: strict priority
 * classes, preemption of background requests for urgent ones, weighted fair share between
 * teams, memory admission (refusals at once; 10,000 queued requests served with a small pool),
 * cancellation, deadlines, metrics; and exact block accounting at the end of every run. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/engine.h"
#include "hswarm/error.h"
#include "hswarm/sched.h"
#include "hswarm/synth.h"

#include "support/counting_alloc.h"

#define BLK HS_KV_BLOCK_TOKENS

static char model_path[300], tiny_path[300];
static size_t n_vocab;
static uint64_t block_bytes, tiny_block_bytes;

static hs_model *open_with(const char *path, unsigned threads, size_t n_blocks, bool shared) {
  uint64_t bb = path == tiny_path ? tiny_block_bytes : block_bytes;
  hs_model_opts o = {.n_threads = threads, .kv_bytes = n_blocks * bb,
                     .no_shared_attention = !shared};
  hs_model *m;
  if (hs_model_open(path, &o, &m) != 0) fail_msg("open: %s", hs_engine_last_error());
  return m;
}

static int write_model(const char *preset, const char *path) {
  hs_synth_spec s;
  if (hs_synth_preset(preset, &s) != 0) return -1;
  s.type = HS_SYNTH_Q8_0;
  s.seed = 777;
  return hs_synth_write(&s, path, NULL);
}

static int group_setup(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  if (make_tmpdir("hs_sched") != 0) return -1;
  tmp_path(model_path, sizeof model_path, "small.gguf");
  tmp_path(tiny_path, sizeof tiny_path, "tiny.gguf");
  if (write_model("small-llama3", model_path) || write_model("tiny-llama", tiny_path)) return -1;
  hs_model *m;
  if (hs_model_open(model_path, NULL, &m) != 0) return -1;
  hs_kv_stats st;
  hs_kv_get_stats(m, &st);
  block_bytes = st.block_bytes;
  n_vocab = hs_model_get_params(m)->n_vocab;
  hs_model_close(m);
  if (hs_model_open(tiny_path, NULL, &m) != 0) return -1;
  hs_kv_get_stats(m, &st);
  tiny_block_bytes = st.block_bytes;
  if (hs_model_get_params(m)->n_vocab != n_vocab) return -1;
  hs_model_close(m);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  return remove_tmpdir_and_hooks();
}

static void fill_tokens(int32_t *t, size_t n, uint32_t seed) {
  uint64_t x = seed * 2654435761u + 7;
  for (size_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t[i] = (int32_t)((x >> 33) % n_vocab);
  }
}

/* ---- requests and their expected tokens ---- */

enum { NR = 12, MAXP = 150, MAXG = 16 };

typedef struct tcase {
  int32_t prompt[MAXP];
  size_t n_prompt;
  hs_sampler_params sp;
  uint32_t max_tokens;
  hs_priority prio;
  uint32_t team;
  int32_t want[MAXG];
  /* filled by a run */
  int32_t got[MAXG], streamed[MAXG];
  size_t n_got, n_streamed;
  int done;
  hs_sched_result res;
  uint64_t id;
} tcase;

/* With log-probabilities: what a request reported, and what the reference computed. */
enum { TOPK = 5 };
typedef struct lpcase {
  tcase c;
  float want_lp[MAXG], want_top[MAXG][TOPK];
  int32_t want_top_id[MAXG][TOPK];
  hs_sched_logprobs got[MAXG];
  size_t n_lp;
} lpcase;

static const float *sort_logits;
static int by_logit_desc(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  if (sort_logits[x] != sort_logits[y]) return sort_logits[x] > sort_logits[y] ? -1 : 1;
  return x < y ? -1 : 1;
}

/* The independent loop: one sequence, the prompt at once, then sample and feed. With L, also
 * at each position the log-softmax of the logits (in double) and the TOPK most likely tokens by
 * a full sort. */
static void reference(hs_model *ref, tcase *c, lpcase *L) {
  hs_seq *s;
  assert_int_equal(hs_seq_create(ref, 0, &s), 0);
  hs_batch_item it[MAXP];
  for (size_t i = 0; i < c->n_prompt; i++)
    it[i] = (hs_batch_item){s, c->prompt[i], i + 1 == c->n_prompt};
  float *lg = malloc(n_vocab * sizeof *lg), *scratch = malloc(2 * n_vocab * sizeof *scratch);
  int32_t *ids = L ? malloc(n_vocab * sizeof *ids) : NULL;
  assert_int_equal(hs_model_forward(ref, it, c->n_prompt, lg, NULL), 0);
  int32_t hist[MAXP + MAXG];
  memcpy(hist, c->prompt, c->n_prompt * sizeof *hist);
  size_t nh = c->n_prompt;
  for (uint32_t g = 0; g < c->max_tokens; g++) {
    double lse = 0;
    if (L) {
      double sum = 0;
      for (size_t i = 0; i < n_vocab; i++) sum += exp((double)lg[i]);
      lse = log(sum);
      for (size_t i = 0; i < n_vocab; i++) ids[i] = (int32_t)i;
      sort_logits = lg;
      qsort(ids, n_vocab, sizeof *ids, by_logit_desc);
      for (int k = 0; k < TOPK; k++) {
        L->want_top_id[g][k] = ids[k];
        L->want_top[g][k] = (float)(lg[ids[k]] - lse);
      }
    }
    int32_t t;
    assert_int_equal(hs_sample(&c->sp, lg, n_vocab, hist, nh, nh, scratch, &t), 0);
    c->want[g] = t;
    if (L) L->want_lp[g] = (float)(lg[t] - lse);
    hist[nh++] = t;
    hs_batch_item one = {s, t, true};
    assert_int_equal(hs_model_forward(ref, &one, 1, lg, NULL), 0);
  }
  free(ids);
  free(lg);
  free(scratch);
  hs_seq_destroy(s);
}

static void expected_tokens(hs_model *ref, tcase *c) { reference(ref, c, NULL); }

static int on_token(uint64_t id, int32_t token, void *ud) {
  tcase *c = ud;
  assert_int_equal(id, c->id);
  c->streamed[c->n_streamed++] = token;
  return 0;
}

static void on_done(const hs_sched_result *r, void *ud) {
  tcase *c = ud;
  c->done++;
  c->res = *r;
  c->n_got = r->n_tokens;
  memcpy(c->got, r->tokens, r->n_tokens * sizeof *r->tokens);
}

static void make_cases(tcase *cs, int n) {
  int32_t pfx[3][100];
  for (int p = 0; p < 3; p++) fill_tokens(pfx[p], 100, 10 + (uint32_t)p);
  static const size_t plen[3] = {40, 70, 100};
  uint64_t x = 5;
  for (int k = 0; k < n; k++) {
    tcase *c = &cs[k];
    memset(c, 0, sizeof *c);
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    int p = (int)((x >> 40) % 3);
    size_t suf = (x >> 20) % 45;
    memcpy(c->prompt, pfx[p], plen[p] * sizeof(int32_t));
    fill_tokens(c->prompt + plen[p], suf, 100 + (uint32_t)k);
    c->n_prompt = plen[p] + suf;
    hs_sampler_params_init(&c->sp);
    c->sp.temperature = k % 3 == 0 ? 0.0f : 0.9f;
    c->sp.seed = 1000 + (uint64_t)k;
    c->max_tokens = 6 + (uint32_t)(k % 10);
    c->prio = (hs_priority)(k % 3);
    c->team = (uint32_t)(k % 4);
  }
}

static void submit_case(hs_sched *s, tcase *c) {
  hs_sched_request r;
  hs_sched_request_init(&r);
  r.prompt = c->prompt;
  r.n_prompt = c->n_prompt;
  r.sampling = c->sp;
  r.max_tokens = c->max_tokens;
  r.ignore_eos = true;
  r.priority = c->prio;
  r.team = c->team;
  r.on_token = on_token;
  r.on_done = on_done;
  r.ud = c;
  c->n_streamed = 0;
  c->done = 0;
  if (hs_sched_submit(s, &r, &c->id) != 0) fail_msg("submit: %s", hs_sched_last_error());
}

static void check_case(const tcase *c, const char *what, int k) {
  if (c->done != 1) fail_msg("%s: request %d finished %d times", what, k, c->done);
  assert_int_equal(c->res.status, 0);
  assert_int_equal(c->res.finish, HS_FINISH_LENGTH);
  if (c->n_got != c->max_tokens || memcmp(c->got, c->want, c->max_tokens * sizeof(int32_t)))
    fail_msg("%s: request %d: tokens differ from the request alone (first: %d vs %d)", what, k,
             c->n_got ? c->got[0] : -1, c->want[0]);
  assert_int_equal(c->n_streamed, c->n_got);
  assert_memory_equal(c->streamed, c->got, c->n_got * sizeof(int32_t));
}

/* No sequence left: nothing private or in use but pins; the cache empties to the baseline. */
static void check_baseline(hs_model *m) {
  hs_kv_stats st;
  hs_kv_get_stats(m, &st);
  assert_int_equal(st.blocks_free + st.blocks_private + st.blocks_in_use + st.blocks_cached,
                   st.blocks_total);
  assert_int_equal(st.blocks_private, 0);
  assert_int_equal(st.blocks_in_use, st.blocks_pinned);
  hs_kv_evict_all(m);
  hs_kv_get_stats(m, &st);
  assert_int_equal(st.blocks_free, st.blocks_total - st.blocks_pinned);
}

/* ---- log-probabilities ---- */

static void on_logprobs(uint64_t id, const hs_sched_logprobs *lp, void *ud) {
  lpcase *L = ud;
  assert_int_equal(id, L->c.id);
  if (L->n_lp < MAXG) L->got[L->n_lp++] = *lp;
}

static int lp_token(uint64_t id, int32_t token, void *ud) { return on_token(id, token, &((lpcase *)ud)->c); }
static void lp_done(const hs_sched_result *r, void *ud) { on_done(r, &((lpcase *)ud)->c); }

/* Requests asking for log-probabilities, batched together: each token's log-probability and
 * its top alternatives are those of the request computed alone (within float rounding). */
static void test_logprobs(void **state) {
  (void)state;
  enum { N = 6 };
  lpcase *L = calloc(N, sizeof *L);
  tcase cs[N];
  make_cases(cs, N);
  hs_model *ref = open_with(model_path, 1, 64, false);
  for (int k = 0; k < N; k++) {
    L[k].c = cs[k];
    reference(ref, &L[k].c, &L[k]);
  }
  hs_model_close(ref);
  hs_model *m = open_with(model_path, 2, 256, true);
  hs_sched *s;
  assert_int_equal(hs_sched_create(m, NULL, &s), 0);
  for (int k = 0; k < N; k++) {
    hs_sched_request r;
    hs_sched_request_init(&r);
    r.prompt = L[k].c.prompt;
    r.n_prompt = L[k].c.n_prompt;
    r.sampling = L[k].c.sp;
    r.max_tokens = L[k].c.max_tokens;
    r.ignore_eos = true;
    r.on_logprobs = on_logprobs;
    r.top_logprobs = k == 0 ? 0 : TOPK;
    r.on_token = lp_token;
    r.on_done = lp_done;
    r.ud = &L[k];
    assert_int_equal(hs_sched_submit(s, &r, &L[k].c.id), 0);
  }
  while (hs_sched_step(s) > 0) {}
  for (int k = 0; k < N; k++) {
    check_case(&L[k].c, "logprobs", k);
    assert_int_equal(L[k].n_lp, L[k].c.max_tokens);
    for (size_t g = 0; g < L[k].n_lp; g++) {
      const hs_sched_logprobs *lp = &L[k].got[g];
      assert_int_equal(lp->token, L[k].c.want[g]);
      if (fabsf(lp->logprob - L[k].want_lp[g]) > 1e-4f)
        fail_msg("request %d token %zu: logprob %g, expected %g", k, g, lp->logprob,
                 L[k].want_lp[g]);
      assert_true(lp->logprob <= 0);
      assert_int_equal(lp->n_top, k == 0 ? 0 : TOPK);
      for (uint32_t t = 0; t < lp->n_top; t++) {
        assert_int_equal(lp->top_tokens[t], L[k].want_top_id[g][t]);
        assert_true(fabsf(lp->top_logprobs[t] - L[k].want_top[g][t]) <= 1e-4f);
      }
      if (L[k].c.sp.temperature == 0 && lp->n_top) /* greedy: the most likely token */
        assert_int_equal(lp->token, lp->top_tokens[0]);
    }
  }
  hs_sched_destroy(s);
  check_baseline(m);
  hs_model_close(m);
  free(L);
}

/* ---- tokens are the same whatever the scheduling ---- */

static void test_tokens_match_alone(void **state) {
  (void)state;
  static tcase cs[NR];
  make_cases(cs, NR);
  hs_model *ref = open_with(model_path, 1, 64, true);
  hs_model_opts ro = {.n_threads = 1, .no_prefix_cache = true};
  hs_model_close(ref);
  assert_int_equal(hs_model_open(model_path, &ro, &ref), 0);
  for (int k = 0; k < NR; k++) expected_tokens(ref, &cs[k]);
  hs_model_close(ref);
  static const struct {
    const char *name;
    unsigned threads;
    size_t blocks;
    bool shared;
    hs_sched_opts o;
    int late; /* submit the second half after this many steps */
  } runs[] = {
      {"defaults", 2, 256, true, {0}, 0},
      {"budget 7", 3, 256, true, {.token_budget = 7}, 2},
      {"budget 64, no shared attention", 1, 256, false, {.token_budget = 64}, 5},
      {"no batching", 2, 256, true, {.no_batching = true}, 0},
      {"small pool", 2, 24, true, {.token_budget = 48}, 3},
      {"two running", 2, 256, true, {.max_running = 2, .token_budget = 33}, 1},
  };
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    hs_model *m = open_with(model_path, runs[i].threads, runs[i].blocks, runs[i].shared);
    hs_sched *s;
    assert_int_equal(hs_sched_create(m, &runs[i].o, &s), 0);
    for (int k = 0; k < NR / 2; k++) submit_case(s, &cs[k]);
    for (int st = 0; st < runs[i].late; st++) assert_true(hs_sched_step(s) >= 0);
    for (int k = NR / 2; k < NR; k++) submit_case(s, &cs[k]);
    assert_int_equal(hs_sched_run(s), 0);
    for (int k = 0; k < NR; k++) check_case(&cs[k], runs[i].name, k);
    hs_sched_metrics mt;
    hs_sched_get_metrics(s, &mt);
    assert_int_equal(mt.finished, NR);
    assert_int_equal(mt.running, 0);
    assert_int_equal(mt.prompt_tokens, mt.prompt_tokens_computed + mt.prompt_tokens_reused);
    if (runs[i].blocks > 100) assert_true(mt.prompt_tokens_reused > 0);
    print_message("%-32s steps %3llu, prompt tokens %llu computed, %llu reused (hit ratio "
                  "%.2f), preemptions %llu\n",
                  runs[i].name, (unsigned long long)mt.steps,
                  (unsigned long long)mt.prompt_tokens_computed,
                  (unsigned long long)mt.prompt_tokens_reused, mt.prefix_hit_ratio,
                  (unsigned long long)mt.preemptions);
    hs_sched_destroy(s);
    check_baseline(m);
    hs_model_close(m);
  }
}

/* ---- priorities and preemption ---- */

static int order_log[64], n_order;

static void on_done_order(const hs_sched_result *r, void *ud) {
  (void)r;
  order_log[n_order++] = (int)(intptr_t)ud;
}

static uint64_t submit_simple(hs_sched *s, const int32_t *prompt, size_t n, uint32_t max_tokens,
                              hs_priority p, uint32_t team, hs_sched_done_fn done, void *ud) {
  hs_sched_request r;
  hs_sched_request_init(&r);
  r.prompt = prompt;
  r.n_prompt = n;
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  r.priority = p;
  r.team = team;
  r.on_done = done;
  r.ud = ud;
  uint64_t id = 0;
  if (hs_sched_submit(s, &r, &id) != 0) fail_msg("submit: %s", hs_sched_last_error());
  return id;
}

static void test_priorities(void **state) {
  (void)state;
  hs_model *m = open_with(tiny_path, 2, 64, true);
  hs_sched_opts o = {.max_running = 1};
  hs_sched *s;
  assert_int_equal(hs_sched_create(m, &o, &s), 0);
  int32_t p[20];
  fill_tokens(p, 20, 3);
  n_order = 0;
  /* submitted background, normal, urgent: admitted (one at a time) urgent, normal, background */
  submit_simple(s, p, 20, 3, HS_PRIORITY_BACKGROUND, 0, on_done_order, (void *)(intptr_t)2);
  submit_simple(s, p, 20, 3, HS_PRIORITY_NORMAL, 0, on_done_order, (void *)(intptr_t)1);
  submit_simple(s, p, 20, 3, HS_PRIORITY_URGENT, 0, on_done_order, (void *)(intptr_t)0);
  hs_sched_metrics mt;
  hs_sched_get_metrics(s, &mt);
  assert_int_equal(mt.queued[0], 1);
  assert_int_equal(mt.queued[1], 1);
  assert_int_equal(mt.queued[2], 1);
  assert_int_equal(hs_sched_run(s), 0);
  assert_int_equal(n_order, 3);
  assert_int_equal(order_log[0], 0);
  assert_int_equal(order_log[1], 1);
  assert_int_equal(order_log[2], 2);
  hs_sched_destroy(s);
  hs_model_close(m);
}

/* Requests of every class that share an uncached prefix compute it once: the later ones wait
 * for the first to publish its blocks (an urgent one too, as long as it fits). */
static void test_shared_prefix_computed_once(void **state) {
  (void)state;
  enum { P = 4 * BLK, S = 8, N = 6 };
  static const hs_priority mixes[][N] = {
      {HS_PRIORITY_NORMAL, HS_PRIORITY_NORMAL, HS_PRIORITY_NORMAL, HS_PRIORITY_NORMAL,
       HS_PRIORITY_NORMAL, HS_PRIORITY_NORMAL},
      {HS_PRIORITY_URGENT, HS_PRIORITY_NORMAL, HS_PRIORITY_URGENT, HS_PRIORITY_BACKGROUND,
       HS_PRIORITY_URGENT, HS_PRIORITY_NORMAL},
      {HS_PRIORITY_URGENT, HS_PRIORITY_URGENT, HS_PRIORITY_URGENT, HS_PRIORITY_URGENT,
       HS_PRIORITY_URGENT, HS_PRIORITY_URGENT},
  };
  for (size_t mix = 0; mix < sizeof mixes / sizeof mixes[0]; mix++) {
    hs_model *m = open_with(tiny_path, 2, 64, true);
    hs_sched *s;
    assert_int_equal(hs_sched_create(m, NULL, &s), 0);
    int32_t p[N][P + S];
    for (int k = 0; k < N; k++) {
      fill_tokens(p[k], P, 11);
      fill_tokens(p[k] + P, S, 100 + (uint32_t)k);
      submit_simple(s, p[k], P + S, 2, mixes[mix][k], (uint32_t)k % 3, NULL, NULL);
    }
    assert_int_equal(hs_sched_run(s), 0);
    hs_sched_metrics mt;
    hs_sched_get_metrics(s, &mt);
    print_message("mix %zu: prompt tokens %llu computed, %llu reused\n", mix,
                  (unsigned long long)mt.prompt_tokens_computed,
                  (unsigned long long)mt.prompt_tokens_reused);
    assert_int_equal(mt.prompt_tokens_computed, P + N * S);
    assert_int_equal(mt.prompt_tokens_reused, (N - 1) * P);
    hs_sched_destroy(s);
    check_baseline(m);
    hs_model_close(m);
  }
}

static void test_preemption(void **state) {
  (void)state;
  /* two background requests fill the pool; an urgent one preempts the newer; all three give the
   * tokens they give alone */
  enum { P = 3 * BLK };
  hs_model *ref;
  hs_model_opts ro = {.n_threads = 1, .no_prefix_cache = true};
  assert_int_equal(hs_model_open(tiny_path, &ro, &ref), 0);
  static tcase cs[3];
  for (int k = 0; k < 3; k++) {
    memset(&cs[k], 0, sizeof cs[k]);
    fill_tokens(cs[k].prompt, P, 40 + (uint32_t)k);
    cs[k].n_prompt = P;
    hs_sampler_params_init(&cs[k].sp);
    cs[k].sp.seed = 9 + (uint64_t)k;
    cs[k].max_tokens = MAXG;
    cs[k].prio = k == 2 ? HS_PRIORITY_URGENT : HS_PRIORITY_BACKGROUND;
    expected_tokens(ref, &cs[k]);
  }
  hs_model_close(ref);
  /* each needs ceil((96 + 16) / 32) = 4 blocks; the pool has 9 */
  hs_model *m = open_with(tiny_path, 2, 9, true);
  hs_sched_opts o = {.token_budget = 16};
  hs_sched *s;
  assert_int_equal(hs_sched_create(m, &o, &s), 0);
  submit_case(s, &cs[0]);
  submit_case(s, &cs[1]);
  for (int i = 0; i < 4; i++) assert_int_equal(hs_sched_step(s), 1);
  submit_case(s, &cs[2]);
  assert_int_equal(hs_sched_step(s), 1);
  hs_sched_metrics mt;
  hs_sched_get_metrics(s, &mt);
  assert_int_equal(mt.preemptions, 1);
  assert_int_equal(mt.queued[HS_PRIORITY_BACKGROUND], 1);
  assert_int_equal(hs_sched_run(s), 0);
  for (int k = 0; k < 3; k++) check_case(&cs[k], "preemption", k);
  assert_int_equal(cs[1].res.preemptions, 1);
  assert_int_equal(cs[0].res.preemptions, 0);
  hs_sched_destroy(s);
  check_baseline(m);
  hs_model_close(m);
}

/* Requests sharing a pinned (locked) prefix go first; max_wait_steps restores arrival order. */
static void test_compatibility_and_max_wait(void **state) {
  (void)state;
  for (int starve = 0; starve <= 1; starve++) {
    hs_model *m = open_with(tiny_path, 2, 64, true);
    hs_sched_opts o = {.max_running = 1, .max_wait_steps = starve ? 1 : 1000};
    hs_sched *s;
    assert_int_equal(hs_sched_create(m, &o, &s), 0);
    int32_t shared[80], other[80];
    fill_tokens(shared, 80, 61);
    hs_prefix *pin;
    assert_int_equal(hs_prefix_pin(m, shared, 64, &pin), 0);
    n_order = 0;
    for (int k = 0; k < 4; k++) {
      const bool uses_pin = k % 2 == 1; /* A, C unrelated; B, D extend the pinned prefix */
      if (uses_pin) fill_tokens(shared + 64, 16, 70 + (uint32_t)k);
      else fill_tokens(other, 80, 80 + (uint32_t)k);
      submit_simple(s, uses_pin ? shared : other, 80, 2, HS_PRIORITY_NORMAL, 0, on_done_order,
                    (void *)(intptr_t)k);
    }
    assert_int_equal(hs_sched_run(s), 0);
    assert_int_equal(n_order, 4);
    static const int grouped[4] = {1, 3, 0, 2}, fifo_after_first[4] = {1, 0, 2, 3};
    const int *want = starve ? fifo_after_first : grouped;
    for (int k = 0; k < 4; k++)
      if (order_log[k] != want[k])
        fail_msg("%s: completion %d is request %d, expected %d",
                 starve ? "max_wait_steps 1" : "grouping", k, order_log[k], want[k]);
    hs_sched_destroy(s);
    hs_prefix_unpin(pin);
    hs_model_close(m);
  }
}

/* ---- weighted fair share between teams ---- */

static int team_log[256], n_team_log;

static void on_done_team(const hs_sched_result *r, void *ud) {
  (void)r;
  team_log[n_team_log++] = (int)(intptr_t)ud;
}

static void test_fair_share(void **state) {
  (void)state;
  hs_model *m = open_with(tiny_path, 2, 256, true);
  hs_sched_opts o = {.max_running = 2};
  hs_sched *s;
  assert_int_equal(hs_sched_create(m, &o, &s), 0);
  assert_int_equal(hs_sched_set_team_weight(s, 2, 3.0), 0);
  assert_int_equal(hs_sched_set_team_weight(s, 2, 0.0), HS_EINVAL);
  int32_t p[16];
  n_team_log = 0;
  /* team 1 floods the queue first; team 2's requests come after all of them */
  for (int i = 0; i < 40; i++) {
    fill_tokens(p, 16, 200 + (uint32_t)i);
    submit_simple(s, p, 16, 4, HS_PRIORITY_NORMAL, 1, on_done_team, (void *)(intptr_t)1);
  }
  for (int i = 0; i < 40; i++) {
    fill_tokens(p, 16, 300 + (uint32_t)i);
    submit_simple(s, p, 16, 4, HS_PRIORITY_NORMAL, 2, on_done_team, (void *)(intptr_t)2);
  }
  assert_int_equal(hs_sched_run(s), 0);
  assert_int_equal(n_team_log, 80);
  /* among the first 40 done, team 2 (weight 3) has about three quarters, not none */
  int t2 = 0;
  for (int i = 0; i < 40; i++) t2 += team_log[i] == 2;
  print_message("team 2 (weight 3) got %d of the first 40 completions\n", t2);
  assert_true(t2 >= 24 && t2 <= 36);
  hs_sched_destroy(s);
  hs_model_close(m);
}

/* ---- admission limits, 10,000 queued requests ---- */

static int n_done_total;
static void count_done(const hs_sched_result *r, void *ud) {
  (void)ud;
  assert_int_equal(r->status, 0);
  n_done_total++;
}

static void test_admission(void **state) {
  (void)state;
  hs_model *m = open_with(tiny_path, 2, 16, true);
  hs_sched_opts o = {.max_queued = 20000};
  hs_sched *s;
  assert_int_equal(hs_sched_create(m, &o, &s), 0);
  static int32_t big[2048];
  fill_tokens(big, 2048, 5);
  hs_sched_request r;
  hs_sched_request_init(&r);
  r.prompt = big;
  r.n_prompt = 600; /* 19 blocks with max_tokens: more than the pool's 16 */
  r.max_tokens = 8;
  assert_int_equal(hs_sched_submit(s, &r, NULL), HS_ENOSPC);
  assert_msg_has(hs_sched_last_error(), "can never fit");
  r.n_prompt = 2048;
  assert_int_equal(hs_sched_submit(s, &r, NULL), HS_EINVAL);
  assert_msg_has(hs_sched_last_error(), "context");
  r.n_prompt = 4;
  big[2] = (int32_t)n_vocab;
  assert_int_equal(hs_sched_submit(s, &r, NULL), HS_EINVAL);
  assert_msg_has(hs_sched_last_error(), "out of range");
  big[2] = 1;
  r.sampling.top_p = 0;
  assert_int_equal(hs_sched_submit(s, &r, NULL), HS_EINVAL);
  r.sampling.top_p = 1;
  r.n_prompt = 0;
  assert_int_equal(hs_sched_submit(s, &r, NULL), HS_EINVAL);
  /* 10,000 requests, 16 blocks: each needs 1 block (12 tokens + 4 generated) */
  n_done_total = 0;
  int32_t p[12];
  for (int i = 0; i < 10000; i++) {
    fill_tokens(p, 12, 9000 + (uint32_t)i);
    submit_simple(s, p, 12, 4, (hs_priority)(i % 3), (uint32_t)(i % 7), count_done, NULL);
  }
  hs_sched_metrics mt;
  hs_sched_get_metrics(s, &mt);
  assert_int_equal(mt.queued[0] + mt.queued[1] + mt.queued[2], 10000);
  uint64_t max_running = 0;
  int rc;
  while ((rc = hs_sched_step(s)) > 0) {
    hs_sched_get_metrics(s, &mt);
    if (mt.running > max_running) max_running = mt.running;
    assert_true(mt.kv_blocks_used <= mt.kv_blocks_total);
  }
  assert_int_equal(rc, 0);
  assert_int_equal(n_done_total, 10000);
  assert_true(max_running <= 16);
  hs_sched_get_metrics(s, &mt);
  print_message("10,000 requests: %llu steps, at most %llu running, latency p50/p99 normal "
                "%.3f/%.3f s\n",
                (unsigned long long)mt.steps, (unsigned long long)max_running,
                mt.latency_p50[1], mt.latency_p99[1]);
  assert_int_equal(mt.latency_count[0] + mt.latency_count[1] + mt.latency_count[2], 10000);
  assert_true(mt.latency_p50[1] <= mt.latency_p99[1]);
  /* max_queued */
  hs_sched_destroy(s);
  o.max_queued = 2;
  assert_int_equal(hs_sched_create(m, &o, &s), 0);
  submit_simple(s, p, 12, 4, HS_PRIORITY_NORMAL, 0, NULL, NULL);
  submit_simple(s, p, 12, 4, HS_PRIORITY_NORMAL, 0, NULL, NULL);
  r.prompt = p;
  r.n_prompt = 12;
  assert_int_equal(hs_sched_submit(s, &r, NULL), HS_EFULL);
  hs_sched_destroy(s); /* cancels both */
  check_baseline(m);
  hs_model_close(m);
}

/* ---- cancellation and deadlines ---- */

static hs_sched *cancel_sched;
static uint64_t cancel_other;
static int tokens_seen;

static int cancel_after_two(uint64_t id, int32_t token, void *ud) {
  (void)id;
  (void)token;
  (void)ud;
  if (++tokens_seen == 2 && cancel_other) {
    assert_int_equal(hs_sched_cancel(cancel_sched, cancel_other), 0);
    cancel_other = 0;
  }
  return tokens_seen >= 3;
}

static hs_sched_result last[8];
static void keep_result(const hs_sched_result *r, void *ud) { last[(intptr_t)ud] = *r; }

static void test_cancel_and_deadline(void **state) {
  (void)state;
  hs_model *m = open_with(tiny_path, 2, 64, true);
  hs_sched *s;
  assert_int_equal(hs_sched_create(m, NULL, &s), 0);
  cancel_sched = s;
  int32_t p[40];
  fill_tokens(p, 40, 77);
  memset(last, 0, sizeof last);
  /* queued, then cancelled: finished at once */
  uint64_t a = submit_simple(s, p, 40, 10, HS_PRIORITY_NORMAL, 0, keep_result, (void *)0);
  assert_int_equal(hs_sched_cancel(s, a), 0);
  assert_int_equal(last[0].finish, HS_FINISH_CANCELLED);
  assert_int_equal(last[0].n_tokens, 0);
  assert_int_equal(hs_sched_cancel(s, a), HS_ENOENT);
  /* one cancels itself after 3 tokens and another after its second */
  hs_sched_request r;
  hs_sched_request_init(&r);
  r.prompt = p;
  r.n_prompt = 40;
  r.max_tokens = 20;
  r.on_token = cancel_after_two;
  r.on_done = keep_result;
  r.ud = (void *)1;
  tokens_seen = 0;
  assert_int_equal(hs_sched_submit(s, &r, NULL), 0);
  cancel_other = submit_simple(s, p, 30, 20, HS_PRIORITY_NORMAL, 0, keep_result, (void *)2);
  /* a deadline of 5 steps for a request of 30 tokens */
  hs_sched_request_init(&r);
  r.prompt = p;
  r.n_prompt = 20;
  r.max_tokens = 30;
  r.deadline_steps = 5;
  r.on_done = keep_result;
  r.ud = (void *)3;
  assert_int_equal(hs_sched_submit(s, &r, NULL), 0);
  assert_int_equal(hs_sched_run(s), 0);
  assert_int_equal(last[1].finish, HS_FINISH_CANCELLED);
  assert_int_equal(last[1].n_tokens, 3);
  assert_int_equal(last[2].finish, HS_FINISH_CANCELLED);
  assert_true(last[2].n_tokens >= 1 && last[2].n_tokens <= 3);
  assert_int_equal(last[3].finish, HS_FINISH_DEADLINE);
  assert_true(last[3].n_tokens >= 1 && last[3].n_tokens < 30);
  assert_int_equal(last[3].done_step, 5);
  hs_sched_metrics mt;
  hs_sched_get_metrics(s, &mt);
  assert_int_equal(mt.cancelled, 3);
  assert_int_equal(mt.deadline_missed, 1);
  hs_sched_destroy(s);
  check_baseline(m);
  hs_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tokens_match_alone, reset_live_blocks,
                                      fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_logprobs, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_priorities, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_shared_prefix_computed_once, reset_live_blocks,
                                      fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_preemption, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_compatibility_and_max_wait, reset_live_blocks,
                                      fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_fair_share, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_admission, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_cancel_and_deadline, reset_live_blocks,
                                      fail_on_leaked_blocks),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
