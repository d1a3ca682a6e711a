/* test_kvcache.c: the paged KV cache and the prefix cache (src/engine/kv_pool.c, prefix.c,
 * seq.c, attention.c's shared blocks) through the public API.
 *
 * What must hold, each checked by comparing logits bit for bit with a sequence computed alone,
 * from scratch, in one call, on a model without a prefix cache:
 *   - a prefix taken from the cache gives the same logits as computing it;
 *   - rows that share blocks computed together (shared-prefix attention) give the same bits as
 *     rows computed one at a time (the ablation), and as each sequence alone;
 *   - any batch composition, prefill chunking, cache state and thread count gives the same bits
 *     (randomised schedules);
 *   - an evicted prefix is recomputed transparently (same bits); LRU order of leaves; pins keep
 *     blocks through memory pressure; a full pool refuses a call with nothing changed;
 *   - duplicate blocks computed at once are kept once; truncation inside a shared block copies it;
 *   - block accounting is exact: free + private + in use + cached = total after every step, and
 *     the free count returns to its baseline once every sequence is gone and the cache emptied.
 * And no allocation is leaked (counting hooks). */
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
#include "hswarm/synth.h"

#include "support/counting_alloc.h"

#define BLK HS_KV_BLOCK_TOKENS

static char model_path[300];
static size_t n_vocab;
static uint64_t block_bytes;

static hs_model *open_with(unsigned threads, size_t n_blocks, bool cache, bool shared) {
  hs_model_opts o = {.n_threads = threads,
                     .kv_bytes = n_blocks * block_bytes,
                     .no_prefix_cache = !cache,
                     .no_shared_attention = !shared};
  hs_model *m;
  if (hs_model_open(model_path, &o, &m) != 0) fail_msg("open: %s", hs_engine_last_error());
  return m;
}

static int group_setup(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  if (make_tmpdir("hs_kvcache") != 0) return -1;
  hs_synth_spec s;
  if (hs_synth_preset("small-llama3", &s) != 0) return -1;
  s.type = HS_SYNTH_Q8_0;
  s.seed = 4242;
  tmp_path(model_path, sizeof model_path, "kv.gguf");
  if (hs_synth_write(&s, model_path, NULL) != 0) return -1;
  hs_model *m;
  if (hs_model_open(model_path, NULL, &m) != 0) return -1;
  hs_kv_stats st;
  hs_kv_get_stats(m, &st);
  block_bytes = st.block_bytes;
  const hs_model_params *p = hs_model_get_params(m);
  n_vocab = p->n_vocab;
  /* the size a caller computes before opening is the size the pool uses */
  if (hs_kv_block_bytes(p->n_layer, p->n_head_kv, p->head_dim, HS_KV_F16) != block_bytes ||
      hs_kv_block_bytes(p->n_layer, p->n_head_kv, p->head_dim, HS_KV_F32) != 2 * block_bytes)
    return -1;
  hs_model_close(m);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  return remove_tmpdir_and_hooks();
}

/* ---- helpers ---- */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)((rng_state >> 33) % n);
}

static void fill_tokens(int32_t *t, size_t n, uint32_t seed) {
  uint64_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t[i] = (int32_t)((x >> 33) % n_vocab);
  }
}

/* Checks the accounting identity and returns the stats. */
static hs_kv_stats check_blocks(hs_model *m) {
  hs_kv_stats s;
  hs_kv_get_stats(m, &s);
  if (s.blocks_free + s.blocks_private + s.blocks_in_use + s.blocks_cached != s.blocks_total)
    fail_msg("blocks: free %llu + private %llu + in use %llu + cached %llu != total %llu",
             (unsigned long long)s.blocks_free, (unsigned long long)s.blocks_private,
             (unsigned long long)s.blocks_in_use, (unsigned long long)s.blocks_cached,
             (unsigned long long)s.blocks_total);
  assert_true(s.blocks_pinned <= s.blocks_in_use);
  return s;
}

/* With no sequence alive: nothing private, only pins in use; emptying the cache frees the rest. */
static void check_baseline(hs_model *m) {
  hs_kv_stats s = check_blocks(m);
  assert_int_equal(s.blocks_private, 0);
  assert_int_equal(s.blocks_in_use, s.blocks_pinned);
  hs_kv_evict_all(m);
  s = check_blocks(m);
  assert_int_equal(s.blocks_cached, 0);
  assert_int_equal(s.blocks_free, s.blocks_total - s.blocks_pinned);
}

/* Feeds toks[0..n) to s in one call with logits for every item (out: [n][n_vocab], may be
 * NULL for none). */
static int feed(hs_model *m, hs_seq *s, const int32_t *toks, size_t n, float *out) {
  hs_batch_item *it = calloc(n, sizeof *it);
  assert_non_null(it);
  for (size_t i = 0; i < n; i++) it[i] = (hs_batch_item){s, toks[i], out != NULL};
  int rc = hs_model_forward(m, it, n, out, NULL);
  free(it);
  return rc;
}

/* Logits of every position of toks on a fresh sequence of the reference model (no cache). */
static float *alone(hs_model *ref, const int32_t *toks, size_t n) {
  hs_seq *s;
  assert_int_equal(hs_seq_create(ref, 0, &s), 0);
  float *lg = malloc(n * n_vocab * sizeof *lg);
  assert_non_null(lg);
  if (feed(ref, s, toks, n, lg)) fail_msg("forward: %s", hs_engine_last_error());
  hs_seq_destroy(s);
  return lg;
}

static void assert_rows_equal(const float *got, const float *want, size_t rows, const char *what) {
  for (size_t r = 0; r < rows; r++)
    if (memcmp(got + r * n_vocab, want + r * n_vocab, n_vocab * sizeof *got) != 0)
      fail_msg("%s: logits of row %zu differ", what, r);
}

/* ---- a cached prefix gives the computed prefix's bits ---- */

static void test_prefix_reuse(void **state) {
  (void)state;
  enum { N = 150 };
  hs_model *ref = open_with(1, 64, false, true), *m = open_with(2, 64, true, true);
  int32_t toks[N];
  fill_tokens(toks, N, 1);
  float *want = alone(ref, toks, N);
  /* first sequence: computed, its 4 full blocks published */
  hs_seq *a, *b;
  assert_int_equal(hs_seq_create(m, 0, &a), 0);
  float *lg = malloc(N * n_vocab * sizeof *lg);
  assert_int_equal(feed(m, a, toks, N, lg), 0);
  assert_rows_equal(lg, want, N, "first sequence");
  hs_kv_stats s = check_blocks(m);
  assert_int_equal(s.blocks_in_use, 4);
  assert_int_equal(s.blocks_private, 1);
  hs_seq_destroy(a);
  s = check_blocks(m);
  assert_int_equal(s.blocks_cached, 4);
  assert_int_equal(s.blocks_private, 0);
  /* second: 128 positions from the cache, 22 computed, the same bits */
  assert_int_equal(hs_seq_create(m, 0, &b), 0);
  uint32_t reused;
  assert_int_equal(hs_seq_attach_prefix(b, toks, N - 1, &reused), 0);
  assert_int_equal(reused, 128);
  assert_int_equal(hs_seq_len(b), 128);
  s = check_blocks(m);
  assert_int_equal(s.hits, 4);
  assert_int_equal(s.blocks_in_use, 4);
  assert_int_equal(feed(m, b, toks + 128, N - 128, lg), 0);
  assert_rows_equal(lg, want + 128 * n_vocab, N - 128, "cached prefix");
  /* errors: not empty, too long */
  assert_int_equal(hs_seq_attach_prefix(b, toks, N, &reused), HS_EINVAL);
  assert_msg_has(hs_engine_last_error(), "not empty");
  hs_seq *c;
  assert_int_equal(hs_seq_create(m, 64, &c), 0);
  assert_int_equal(hs_seq_attach_prefix(c, toks, N, &reused), HS_EINVAL);
  assert_msg_has(hs_engine_last_error(), "capacity");
  /* a prompt that is exactly a cached block: reuse stops before the last token when asked */
  assert_int_equal(hs_seq_attach_prefix(c, toks, BLK - 1, &reused), 0);
  assert_int_equal(reused, 0);
  hs_seq_destroy(c);
  hs_seq_destroy(b);
  check_baseline(m);
  free(lg);
  free(want);
  hs_model_close(m);
  hs_model_close(ref);
}

/* ---- shared-prefix attention: same bits as one row at a time and as alone ---- */

enum { NS = 6, PFX = 100, GEN = 6 };

/* Runs NS sequences sharing a pinned PFX-token prefix: one call with every suffix (prefill
 * chunks of all), then GEN decode steps of all at once. Writes the logits of each sequence's
 * last suffix token and every decode step: out[s][1 + GEN][n_vocab]. Tokens decoded are
 * given (dec[s][GEN]), so every model sees the same inputs. */
static void run_shared(hs_model *m, const int32_t *pfx, int32_t suf[NS][40], const size_t *ns,
                       int32_t dec[NS][GEN], float *out) {
  hs_prefix *pin;
  assert_int_equal(hs_prefix_pin(m, pfx, PFX, &pin), 0);
  assert_int_equal(hs_prefix_len(pin), PFX / BLK * BLK);
  hs_seq *seq[NS];
  hs_batch_item it[NS * 60];
  size_t n = 0;
  int32_t *full = malloc((PFX + 40) * sizeof *full);
  for (int s = 0; s < NS; s++) {
    assert_int_equal(hs_seq_create(m, 0, &seq[s]), 0);
    memcpy(full, pfx, PFX * sizeof *full);
    memcpy(full + PFX, suf[s], ns[s] * sizeof *full);
    uint32_t reused;
    assert_int_equal(hs_seq_attach_prefix(seq[s], full, PFX + ns[s] - 1, &reused), 0);
    assert_int_equal(reused, PFX / BLK * BLK);
    for (size_t i = reused; i < PFX + ns[s]; i++)
      it[n++] = (hs_batch_item){seq[s], full[i], i + 1 == PFX + ns[s]};
  }
  free(full);
  float *lg = malloc(NS * n_vocab * sizeof *lg);
  assert_int_equal(hs_model_forward(m, it, n, lg, NULL), 0);
  for (int s = 0; s < NS; s++)
    memcpy(out + ((size_t)s * (1 + GEN)) * n_vocab, lg + s * n_vocab, n_vocab * sizeof *lg);
  for (int g = 0; g < GEN; g++) {
    for (int s = 0; s < NS; s++) it[s] = (hs_batch_item){seq[s], dec[s][g], true};
    assert_int_equal(hs_model_forward(m, it, NS, lg, NULL), 0);
    for (int s = 0; s < NS; s++)
      memcpy(out + ((size_t)s * (1 + GEN) + 1 + g) * n_vocab, lg + s * n_vocab,
             n_vocab * sizeof *lg);
  }
  hs_kv_stats st = check_blocks(m);
  assert_int_equal(st.blocks_pinned, PFX / BLK);
  for (int s = 0; s < NS; s++) hs_seq_destroy(seq[s]);
  hs_prefix_unpin(pin);
  check_baseline(m);
  free(lg);
}

static void test_shared_attention(void **state) {
  (void)state;
  int32_t pfx[PFX], suf[NS][40], dec[NS][GEN];
  size_t ns[NS];
  fill_tokens(pfx, PFX, 2);
  for (int s = 0; s < NS; s++) {
    ns[s] = 1 + (size_t)s * 7; /* 1 .. 36: some suffixes end inside the prefix's last block */
    fill_tokens(suf[s], ns[s], 10 + (uint32_t)s);
    fill_tokens(dec[s], GEN, 20 + (uint32_t)s);
  }
  const size_t per = NS * (1 + GEN) * n_vocab;
  float *shared = malloc(per * sizeof(float)), *single = malloc(per * sizeof(float));
  hs_model *m1 = open_with(2, 128, true, true), *m2 = open_with(3, 128, true, false);
  run_shared(m1, pfx, suf, ns, dec, shared);
  run_shared(m2, pfx, suf, ns, dec, single);
  if (memcmp(shared, single, per * sizeof(float)) != 0)
    fail_msg("shared-prefix attention differs from one row at a time");
  /* and each sequence alone, from scratch */
  hs_model *ref = open_with(1, 128, false, true);
  int32_t full[PFX + 40 + GEN];
  for (int s = 0; s < NS; s++) {
    size_t n = PFX + ns[s];
    memcpy(full, pfx, sizeof pfx);
    memcpy(full + PFX, suf[s], ns[s] * sizeof(int32_t));
    memcpy(full + n, dec[s], sizeof dec[s]);
    float *want = alone(ref, full, n + GEN);
    assert_rows_equal(shared + (size_t)s * (1 + GEN) * n_vocab, want + (n - 1) * n_vocab, 1 + GEN,
                      "shared prefix vs alone");
    free(want);
  }
  hs_model_close(ref);
  hs_model_close(m1);
  hs_model_close(m2);
  free(shared);
  free(single);
}

/* ---- randomised batch compositions ---- */

enum { NREQ = 10, RGEN = 5, MAXP = 160 };

typedef struct req {
  int32_t toks[MAXP + RGEN];
  size_t n_prompt;
  float *want;      /* [n_prompt + RGEN][n_vocab] logits alone */
  hs_seq *seq;
  size_t fed;       /* tokens fed so far (prompt, then generated) */
  int state;        /* 0 waiting, 1 running, 2 done */
} req;

/* One randomised schedule: requests start at random steps (attaching whatever the cache holds
 * by then), each step takes a random subset of running requests, each with a random chunk of
 * its remaining prompt or one decode token, interleaved in random order; every logits row is
 * compared with the request's rows alone. */
static void run_schedule(hs_model *m, req *r, uint32_t seed) {
  rng_state = seed;
  hs_batch_item it[NREQ * 48];
  size_t at[NREQ * 48]; /* request of each wanted row */
  size_t wrow[NREQ * 48];
  float *lg = malloc(NREQ * 48 * n_vocab * sizeof *lg);
  int done = 0;
  for (int k = 0; k < NREQ; k++) r[k].state = 0;
  while (done < NREQ) {
    for (int k = 0; k < NREQ; k++)
      if (r[k].state == 0 && rnd(3) == 0) {
        assert_int_equal(hs_seq_create(m, MAXP + RGEN, &r[k].seq), 0);
        uint32_t reused;
        assert_int_equal(hs_seq_attach_prefix(r[k].seq, r[k].toks, r[k].n_prompt - 1, &reused), 0);
        r[k].fed = reused;
        r[k].state = 1;
      }
    /* per request: a contiguous run of items; requests in random order */
    int order[NREQ];
    for (int k = 0; k < NREQ; k++) order[k] = k;
    for (int k = NREQ - 1; k > 0; k--) {
      int j = (int)rnd((uint32_t)k + 1), t = order[k];
      order[k] = order[j];
      order[j] = t;
    }
    size_t n = 0, nw = 0;
    for (int oi = 0; oi < NREQ; oi++) {
      req *q = &r[order[oi]];
      if (q->state != 1 || rnd(4) == 0) continue;
      size_t left = q->n_prompt + RGEN - q->fed, take;
      if (q->fed < q->n_prompt) {
        take = 1 + rnd(40);
        if (take > q->n_prompt - q->fed) take = q->n_prompt - q->fed;
      } else {
        take = 1;
      }
      if (take > left) take = left;
      for (size_t i = 0; i < take; i++) {
        size_t pos = q->fed + i;
        bool want = pos + 1 >= q->n_prompt || rnd(5) == 0;
        it[n] = (hs_batch_item){q->seq, q->toks[pos], want};
        if (want) {
          at[nw] = (size_t)(q - r);
          wrow[nw++] = pos;
        }
        n++;
      }
      q->fed += take;
    }
    if (n) {
      if (hs_model_forward(m, it, n, lg, NULL)) fail_msg("forward: %s", hs_engine_last_error());
      for (size_t w = 0; w < nw; w++)
        if (memcmp(lg + w * n_vocab, r[at[w]].want + wrow[w] * n_vocab, n_vocab * sizeof *lg))
          fail_msg("seed %u: request %zu, position %zu: logits differ from the request alone",
                   seed, at[w], wrow[w]);
    }
    check_blocks(m);
    for (int k = 0; k < NREQ; k++)
      if (r[k].state == 1 && r[k].fed == r[k].n_prompt + RGEN) {
        hs_seq_destroy(r[k].seq);
        r[k].state = 2;
        done++;
      }
  }
  free(lg);
}

static void test_random_compositions(void **state) {
  (void)state;
  /* three shared prefixes (40, 70, 100 tokens) with random suffixes; "generated" tokens fixed */
  int32_t pfx[3][100];
  for (int p = 0; p < 3; p++) fill_tokens(pfx[p], 100, 30 + (uint32_t)p);
  static const size_t plen[3] = {40, 70, 100};
  req r[NREQ];
  hs_model *ref = open_with(1, 64, false, true);
  rng_state = 99;
  for (int k = 0; k < NREQ; k++) {
    int p = (int)rnd(3);
    size_t suf = rnd(50);
    memcpy(r[k].toks, pfx[p], plen[p] * sizeof(int32_t));
    fill_tokens(r[k].toks + plen[p], suf + RGEN, 100 + (uint32_t)k);
    r[k].n_prompt = plen[p] + suf;
    r[k].want = alone(ref, r[k].toks, r[k].n_prompt + RGEN);
  }
  hs_model_close(ref);
  for (uint32_t trial = 0; trial < 6; trial++) {
    /* threads 1..3, shared attention on or off, a pool big or small enough to evict */
    hs_model *m = open_with(1 + trial % 3, trial % 2 ? 200 : 64, true, trial % 4 != 3);
    run_schedule(m, r, 1000 + trial);
    if (trial % 2 == 0) {
      run_schedule(m, r, 5000 + trial); /* again, with the first run's blocks cached */
      hs_kv_stats s = check_blocks(m);
      assert_true(s.hits > 0);
    }
    check_baseline(m);
    hs_model_close(m);
  }
  for (int k = 0; k < NREQ; k++) free(r[k].want);
}

/* ---- eviction: LRU over leaves, transparent recomputation ---- */

static void test_eviction(void **state) {
  (void)state;
  hs_model *ref = open_with(1, 64, false, true), *m = open_with(2, 10, true, true);
  int32_t a[3 * BLK + 1], b[3 * BLK + 1], c[7 * BLK];
  fill_tokens(a, sizeof a / sizeof *a, 41);
  fill_tokens(b, sizeof b / sizeof *b, 42);
  fill_tokens(c, sizeof c / sizeof *c, 43);
  float *wa = alone(ref, a, 3 * BLK + 1), *wb = alone(ref, b, 3 * BLK + 1);
  hs_seq *s;
  uint32_t reused;
  /* A, then B: 6 blocks cached */
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  assert_int_equal(feed(m, s, a, 3 * BLK, NULL), 0);
  hs_seq_destroy(s);
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  assert_int_equal(feed(m, s, b, 3 * BLK, NULL), 0);
  hs_seq_destroy(s);
  assert_int_equal(check_blocks(m).blocks_cached, 6);
  /* touch A: now B is least recently used */
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  assert_int_equal(hs_seq_attach_prefix(s, a, 3 * BLK, &reused), 0);
  assert_int_equal(reused, 3 * BLK);
  hs_seq_destroy(s);
  /* C needs 7 blocks: 4 free, 3 evicted, all of them B's (leaf first, then its parents) */
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  assert_int_equal(feed(m, s, c, 7 * BLK, NULL), 0);
  hs_kv_stats st = check_blocks(m);
  assert_int_equal(st.evictions, 3);
  hs_seq_destroy(s);
  /* A is still cached; B is recomputed, with the same bits */
  float *lg = malloc((3 * BLK + 1) * n_vocab * sizeof *lg);
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  assert_int_equal(hs_seq_attach_prefix(s, a, 3 * BLK, &reused), 0);
  assert_int_equal(reused, 3 * BLK);
  assert_int_equal(feed(m, s, a + 3 * BLK, 1, lg), 0);
  assert_rows_equal(lg, wa + 3 * BLK * n_vocab, 1, "A after pressure");
  hs_seq_destroy(s);
  assert_int_equal(hs_seq_create(m, 0, &s), 0);
  assert_int_equal(hs_seq_attach_prefix(s, b, 3 * BLK, &reused), 0);
  assert_int_equal(reused, 0);
  assert_int_equal(feed(m, s, b, 3 * BLK + 1, lg), 0);
  assert_rows_equal(lg, wb, 3 * BLK + 1, "B recomputed");
  hs_seq_destroy(s);
  check_baseline(m);
  free(lg);
  free(wa);
  free(wb);
  hs_model_close(m);
  hs_model_close(ref);
}

/* ---- pins, a full pool ---- */

static void test_pins_and_full_pool(void **state) {
  (void)state;
  hs_model *m = open_with(2, 10, true, true);
  int32_t p[4 * BLK + 5], d[7 * BLK];
  fill_tokens(p, sizeof p / sizeof *p, 51);
  fill_tokens(d, sizeof d / sizeof *d, 52);
  hs_prefix *pin;
  assert_int_equal(hs_prefix_pin(m, p, 3, &pin), HS_EINVAL);
  assert_msg_has(hs_engine_last_error(), "less than one block");
  assert_null(pin);
  assert_int_equal(hs_prefix_pin(m, p, sizeof p / sizeof *p, &pin), 0);
  assert_int_equal(hs_prefix_len(pin), 4 * BLK);
  hs_kv_stats s = check_blocks(m);
  assert_int_equal(s.blocks_pinned, 4);
  assert_int_equal(s.blocks_private, 0);
  /* 7 more blocks do not fit beside 4 pinned ones: refused, nothing changed */
  hs_seq *q;
  assert_int_equal(hs_seq_create(m, 0, &q), 0);
  assert_int_equal(feed(m, q, d, 2 * BLK, NULL), 0);
  assert_int_equal(feed(m, q, d + 2 * BLK, 5 * BLK, NULL), HS_ENOSPC);
  assert_msg_has(hs_engine_last_error(), "KV cache is full");
  assert_int_equal(hs_seq_len(q), 2 * BLK);
  s = check_blocks(m);
  assert_int_equal(s.blocks_pinned, 4);
  assert_int_equal(s.blocks_in_use, 6);
  /* the pinned prefix is still there */
  hs_seq *r;
  uint32_t reused;
  assert_int_equal(hs_seq_create(m, 0, &r), 0);
  assert_int_equal(hs_seq_attach_prefix(r, p, 4 * BLK, &reused), 0);
  assert_int_equal(reused, 4 * BLK);
  hs_seq_destroy(r);
  /* unpinned and unused, the prefix gives way */
  hs_prefix_unpin(pin);
  assert_int_equal(check_blocks(m).blocks_pinned, 0);
  /* 4 free blocks and the prefix's last block (a leaf): its first three stay cached */
  assert_int_equal(feed(m, q, d + 2 * BLK, 5 * BLK, NULL), 0);
  assert_int_equal(check_blocks(m).evictions, 1);
  hs_seq_destroy(q);
  assert_int_equal(hs_seq_create(m, 0, &r), 0);
  assert_int_equal(hs_seq_attach_prefix(r, p, 4 * BLK, &reused), 0);
  assert_int_equal(reused, 3 * BLK);
  hs_seq_destroy(r);
  check_baseline(m);
  /* a budget below one block is refused at open */
  hs_model_opts o = {.kv_bytes = block_bytes - 1};
  hs_model *bad = NULL;
  assert_int_equal(hs_model_open(model_path, &o, &bad), HS_EINVAL);
  assert_msg_has(hs_engine_last_error(), "less than one block");
  assert_null(bad);
  hs_model_close(m);
}

/* ---- duplicates kept once; truncation copies a shared block ---- */

static void test_dedup_and_truncate(void **state) {
  (void)state;
  enum { N = 2 * BLK + 8 };
  hs_model *ref = open_with(1, 64, false, true), *m = open_with(2, 64, true, true);
  int32_t t[N], u[N];
  fill_tokens(t, N, 61);
  memcpy(u, t, sizeof t);
  fill_tokens(u + BLK + 8, N - BLK - 8, 62); /* u shares t's first 40 tokens */
  float *wt = alone(ref, t, N), *wu = alone(ref, u, N);
  hs_seq *a, *b;
  assert_int_equal(hs_seq_create(m, 0, &a), 0);
  assert_int_equal(hs_seq_create(m, 0, &b), 0);
  /* the same tokens for both in one call: the second's full blocks are the first's */
  hs_batch_item it[2 * N];
  for (int i = 0; i < N; i++) {
    it[2 * i] = (hs_batch_item){a, t[i], false};
    it[2 * i + 1] = (hs_batch_item){b, t[i], false};
  }
  assert_int_equal(hs_model_forward(m, it, 2 * N, NULL, NULL), 0);
  hs_kv_stats s = check_blocks(m);
  assert_int_equal(s.dedups, 2);
  assert_int_equal(s.blocks_in_use, 2);
  assert_int_equal(s.blocks_private, 2);
  /* truncating b inside its shared second block copies that block into a private one */
  assert_int_equal(hs_seq_truncate(b, BLK + 8), 0);
  s = check_blocks(m);
  assert_int_equal(s.blocks_private, 2);
  assert_int_equal(s.blocks_in_use, 2); /* a still holds both */
  float *lg = malloc(N * n_vocab * sizeof *lg);
  assert_int_equal(feed(m, b, u + BLK + 8, N - BLK - 8, lg), 0);
  assert_rows_equal(lg, wu + (BLK + 8) * n_vocab, N - BLK - 8, "after truncation");
  /* a's blocks were not touched */
  assert_int_equal(hs_seq_truncate(a, N - 1), 0);
  assert_int_equal(feed(m, a, t + N - 1, 1, lg), 0);
  assert_rows_equal(lg, wt + (N - 1) * n_vocab, 1, "the other sequence");
  /* truncating at a block boundary copies nothing */
  assert_int_equal(hs_seq_truncate(a, BLK), 0);
  s = check_blocks(m);
  assert_int_equal(s.blocks_private, 1);
  assert_int_equal(hs_seq_truncate(a, BLK + 1), HS_EINVAL);
  hs_seq_destroy(a);
  hs_seq_destroy(b);
  check_baseline(m);
  free(lg);
  free(wt);
  free(wu);
  hs_model_close(m);
  hs_model_close(ref);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_prefix_reuse, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_shared_attention, reset_live_blocks,
                                      fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_random_compositions, reset_live_blocks,
                                      fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_eviction, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_pins_and_full_pool, reset_live_blocks,
                                      fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_dedup_and_truncate, reset_live_blocks,
                                      fail_on_leaked_blocks),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
