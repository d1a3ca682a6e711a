/* generate.c: one sequence from prompt to finish (see hswarm/generate.h), and embeddings.
 *
 * The loop is the textbook one: prefill the prompt in chunks, then repeat { logits -> (grammar
 * mask) -> sample -> stream the text -> forward the token }. Two details need care:
 *
 * Streaming text. Tokens do not end on character boundaries (a CJK character or an emoji is often
 * split over two or three byte tokens), so text goes through the tokenizer's streaming
 * detokenizer, which releases whole UTF-8 characters only. Then stop strings: the text released
 * to the caller must never contain (the start of) a stop string that later completes, so the
 * longest tail that is a prefix of some stop string is held back until the next token settles it.
 * A stop string can only begin inside the held-back tail (everything released before was checked
 * not to start one), so each step searches only from the first unreleased byte.
 *
 * Constrained decoding. With a grammar, each step asks the grammar state for the allowed tokens,
 * sets the others' logits to -inf in a copy, samples, and advances the state. End-of-generation
 * tokens are allowed exactly when the grammar can be complete; when it is done (nothing more may
 * follow), generation stops without sampling an end token.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/last_error.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/generate.h"

static _Thread_local hs_errbuf err;

const char *hs_generate_last_error(void) { return err.msg; }

void hs_generate_params_init(hs_generate_params *p) {
  memset(p, 0, sizeof *p);
  hs_sampler_params_init(&p->sampling);
  p->max_tokens = 256;
  p->prefill_chunk = 512;
}

void hs_generate_result_free(hs_generate_result *res) {
  if (!res) return;
  hs_free(res->text);
  hs_free(res->tokens);
  memset(res, 0, sizeof *res);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- output text with stop-string hold-back ---- */

typedef struct text_out {
  char *buf;
  size_t len, cap;
  size_t released; /* bytes passed to the callback */
} text_out;

static int text_append(text_out *o, const char *s, size_t n) {
  if (o->len + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 256;
    while (cap < o->len + n + 1) cap *= 2;
    char *b = hs_realloc(o->buf, cap);
    if (!b) return HS_ENOMEM;
    o->buf = b;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = '\0';
  return 0;
}

/* Searches the unreleased text for a stop string; returns its offset or SIZE_MAX. */
static size_t find_stop(const text_out *o, const hs_generate_params *p) {
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < p->n_stop; i++) {
    size_t sl = strlen(p->stop[i]);
    if (o->len - o->released < sl) continue;
    for (size_t at = o->released; at + sl <= o->len && at < best; at++)
      if (!memcmp(o->buf + at, p->stop[i], sl)) {
        best = at;
        break;
      }
  }
  return best;
}

/* Length of the longest unreleased tail that is a proper prefix of a stop string. */
static size_t stop_holdback(const text_out *o, const hs_generate_params *p) {
  size_t pending = o->len - o->released, hold = 0;
  for (size_t i = 0; i < p->n_stop; i++) {
    size_t sl = strlen(p->stop[i]);
    for (size_t k = sl - 1 < pending ? sl - 1 : pending; k > hold; k--)
      if (!memcmp(o->buf + o->len - k, p->stop[i], k)) {
        hold = k;
        break;
      }
  }
  return hold;
}

/* ---- the loop ---- */

typedef struct gen {
  hs_model *m;
  const hs_tokenizer *t;
  hs_seq *seq;
  const hs_generate_params *p;
  uint32_t n_vocab;
  float *logits, *masked, *scratch;
  uint8_t *allowed;
  hs_batch_item *items;
  int32_t *hist; /* prompt then generated tokens, for penalties */
  size_t n_hist;
  hs_grammar_state *gs;
  text_out out;
  hs_detok_stream detok;
} gen;

static int check_params(const hs_model *m, const hs_tokenizer *t, const int32_t *prompt,
                        size_t n_prompt, const hs_generate_params *p, uint32_t n_vocab) {
  if (!m || !t || !p || (!prompt && n_prompt))
    return hs_set_error(&err, HS_EINVAL, "hs_generate: NULL argument");
  if (hs_tokenizer_n_vocab(t) != n_vocab)
    return hs_set_error(&err, HS_EINVAL, "tokenizer has %u tokens, the model %u",
                        hs_tokenizer_n_vocab(t), n_vocab);
  for (size_t i = 0; i < n_prompt; i++)
    if (prompt[i] < 0 || (uint32_t)prompt[i] >= n_vocab)
      return hs_set_error(&err, HS_EINVAL, "prompt token %zu is %d, outside the vocabulary (0..%u)",
                          i, prompt[i], n_vocab - 1);
  for (size_t i = 0; i < p->n_stop; i++)
    if (!p->stop[i] || !*p->stop[i])
      return hs_set_error(&err, HS_EINVAL, "stop string %zu is empty", i);
  if (p->grammar && !p->grammar_vocab)
    return hs_set_error(&err, HS_EINVAL, "a grammar needs grammar_vocab (hs_generate_vocab_create)");
  return 0;
}

static int forward(gen *g, const int32_t *tokens, size_t n, bool want_logits) {
  for (size_t i = 0; i < n; i++) {
    g->items[i].seq = g->seq;
    g->items[i].token = tokens[i];
    g->items[i].logits = want_logits && i + 1 == n;
  }
  int rc = hs_model_forward(g->m, g->items, n, want_logits ? g->logits : NULL, NULL);
  if (rc) hs_set_error(&err, rc, "forward pass: %s", hs_engine_last_error());
  return rc;
}

/* Releases held text (all of it when final) to the callback. Returns 1 when it asked to stop. */
static int release(gen *g, int32_t token, size_t upto) {
  const hs_generate_params *p = g->p;
  size_t n = upto - g->out.released;
  const char *s = g->out.buf ? g->out.buf + g->out.released : "";
  g->out.released = upto;
  return p->on_token ? p->on_token(p->ctx, token, s, n) != 0 : 0;
}

static bool is_stop_token(const gen *g, int32_t tok) {
  if (!g->p->ignore_eos && hs_tokenizer_is_eog(g->t, tok)) return true;
  for (size_t i = 0; i < g->p->n_stop_tokens; i++)
    if (g->p->stop_tokens[i] == tok) return true;
  return false;
}

static int sample_next(gen *g, int32_t *tok) {
  const float *logits = g->logits;
  if (g->gs) {
    int n_allowed = hs_grammar_state_mask(g->gs, g->p->grammar_vocab, g->allowed);
    if (n_allowed < 0)
      return hs_set_error(&err, n_allowed, "grammar: %s", hs_grammar_last_error());
    if (n_allowed == 0)
      return hs_set_error(&err, HS_EINVAL, "the grammar allows no token after %zu generated bytes",
                          g->out.len);
    for (uint32_t i = 0; i < g->n_vocab; i++) g->masked[i] = g->allowed[i] ? g->logits[i] : -INFINITY;
    logits = g->masked;
  }
  uint64_t pos = hs_seq_len(g->seq);
  int rc = hs_sample(&g->p->sampling, logits, g->n_vocab, g->hist, g->n_hist, pos, g->scratch, tok);
  if (rc) return hs_set_error(&err, rc, "sampling: %s", hs_sampler_last_error());
  if (g->gs) {
    rc = hs_grammar_state_accept(g->gs, g->p->grammar_vocab, *tok);
    if (rc) return hs_set_error(&err, rc, "grammar: %s", hs_grammar_last_error());
  }
  return 0;
}

/* Generates after the prompt's logits are in g->logits. */
static int decode_loop(gen *g, hs_generate_result *res) {
  const hs_generate_params *p = g->p;
  uint32_t max = p->max_tokens;
  unsigned detok_flags = p->special_text ? HS_DETOK_SPECIAL : 0;
  hs_detok_stream_init(&g->detok, detok_flags);
  double t0 = now_seconds();
  res->finish = HS_FINISH_LENGTH;
  char piece[256];
  for (;;) {
    if (max && res->n_generated >= max) break;
    /* prompt + generation never exceed the context */
    if (hs_seq_len(g->seq) >= hs_seq_capacity(g->seq)) break; /* context full: LENGTH */
    int32_t tok;
    int rc = sample_next(g, &tok);
    if (rc) return rc;
    g->hist[g->n_hist++] = tok;
    res->tokens[res->n_generated++] = tok;
    if (is_stop_token(g, tok)) {
      res->finish = HS_FINISH_STOP;
      if (release(g, tok, g->out.len)) res->finish = HS_FINISH_CANCELLED;
      break;
    }
    size_t n_piece = 0;
    rc = hs_detok_stream_push(g->t, &g->detok, tok, piece, sizeof piece, &n_piece);
    if (rc) return hs_set_error(&err, rc, "detokenizing token %d: %s", tok, hs_tokenizer_last_error());
    if (text_append(&g->out, piece, n_piece)) return hs_set_error(&err, HS_ENOMEM, "out of memory");
    size_t stop_at = find_stop(&g->out, p);
    if (stop_at != SIZE_MAX) {
      res->finish = HS_FINISH_STOP;
      release(g, tok, stop_at);
      g->out.len = stop_at;
      g->out.buf[stop_at] = '\0';
      break;
    }
    bool grammar_done = g->gs && hs_grammar_state_is_done(g->gs);
    size_t upto = grammar_done ? g->out.len : g->out.len - stop_holdback(&g->out, p);
    if (release(g, tok, upto)) {
      res->finish = HS_FINISH_CANCELLED;
      break;
    }
    if (grammar_done) {
      res->finish = HS_FINISH_STOP;
      break;
    }
    if (max && res->n_generated >= max) break;
    rc = forward(g, &tok, 1, true);
    if (rc) return rc;
  }
  if (res->finish != HS_FINISH_STOP || !g->out.len || g->out.released < g->out.len) {
    size_t n_piece = 0;
    if (hs_detok_stream_flush(&g->detok, piece, sizeof piece, &n_piece) == 0 && n_piece &&
        res->finish != HS_FINISH_STOP)
      if (text_append(&g->out, piece, n_piece)) return hs_set_error(&err, HS_ENOMEM, "out of memory");
    if (g->out.released < g->out.len && res->finish != HS_FINISH_CANCELLED) release(g, -1, g->out.len);
  }
  res->decode_seconds = now_seconds() - t0;
  return 0;
}

static void gen_free(gen *g) {
  hs_free(g->logits);
  hs_free(g->masked);
  hs_free(g->scratch);
  hs_free(g->allowed);
  hs_free(g->items);
  hs_free(g->hist);
  hs_grammar_state_destroy(g->gs);
}

int hs_generate(hs_model *m, const hs_tokenizer *t, hs_seq *seq, const int32_t *prompt,
                size_t n_prompt, const hs_generate_params *p, hs_generate_result *res) {
  if (res) memset(res, 0, sizeof *res);
  if (!res || !seq) return hs_set_error(&err, HS_EINVAL, "hs_generate: NULL argument");
  uint32_t n_vocab = m ? hs_model_get_params(m)->n_vocab : 0;
  int rc = check_params(m, t, prompt, n_prompt, p, n_vocab);
  if (rc) return rc;
  uint32_t len = hs_seq_len(seq), cap = hs_seq_capacity(seq);
  if (n_prompt > cap - len)
    return hs_set_error(&err, HS_ENOSPC,
                        "the prompt has %zu tokens and the context only %u free positions "
                        "(%u of %u used)", n_prompt, cap - len, len, cap);
  if (n_prompt == 0)
    return hs_set_error(&err, HS_EINVAL, "an empty prompt: give at least one token");
  size_t chunk = p->prefill_chunk ? p->prefill_chunk : 512;
  size_t room = (size_t)(cap - len - n_prompt);
  size_t max_gen = p->max_tokens && p->max_tokens < room ? p->max_tokens : room;
  gen g = {.m = m, .t = t, .seq = seq, .p = p, .n_vocab = n_vocab};
  g.logits = hs_malloc(sizeof(float) * n_vocab);
  g.scratch = hs_malloc(sizeof(float) * hs_sampler_scratch_floats(n_vocab));
  g.items = hs_malloc(sizeof(hs_batch_item) * chunk);
  g.hist = hs_malloc(sizeof(int32_t) * (n_prompt + max_gen + 1));
  res->tokens = hs_malloc(sizeof(int32_t) * (max_gen + 1));
  if (p->grammar) {
    g.masked = hs_malloc(sizeof(float) * n_vocab);
    g.allowed = hs_malloc(n_vocab);
    rc = hs_grammar_state_create(p->grammar, &g.gs);
    if (rc) hs_set_error(&err, rc, "grammar: %s", hs_grammar_last_error());
  }
  if (!rc && (!g.logits || !g.scratch || !g.items || !g.hist || !res->tokens ||
              (p->grammar && (!g.masked || !g.allowed))))
    rc = hs_set_error(&err, HS_ENOMEM, "out of memory preparing generation");
  if (!rc) {
    memcpy(g.hist, prompt, sizeof(int32_t) * n_prompt);
    g.n_hist = n_prompt;
    double t0 = now_seconds();
    for (size_t i = 0; i < n_prompt && !rc; i += chunk) {
      size_t n = n_prompt - i < chunk ? n_prompt - i : chunk;
      rc = forward(&g, prompt + i, n, i + n == n_prompt);
    }
    res->n_prompt = (uint32_t)n_prompt;
    res->prefill_seconds = now_seconds() - t0;
  }
  if (!rc) rc = decode_loop(&g, res);
  if (!rc) {
    if (!g.out.buf && text_append(&g.out, "", 0)) rc = hs_set_error(&err, HS_ENOMEM, "out of memory");
    res->text = g.out.buf;
    res->text_len = g.out.len;
    g.out.buf = NULL;
  }
  hs_free(g.out.buf);
  gen_free(&g);
  if (rc) hs_generate_result_free(res);
  return rc;
}

/* ---- grammar vocabulary ---- */

int hs_generate_vocab_create(const hs_tokenizer *t, hs_grammar_vocab **out) {
  if (!t || !out) return hs_set_error(&err, HS_EINVAL, "hs_generate_vocab_create: NULL argument");
  uint32_t n = hs_tokenizer_n_vocab(t);
  const char **bytes = hs_malloc(sizeof(char *) * n);
  size_t *lens = hs_malloc(sizeof(size_t) * n);
  bool *eog = hs_malloc(sizeof(bool) * n);
  int rc = 0;
  if (!bytes || !lens || !eog) rc = hs_set_error(&err, HS_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < n && !rc; i++) {
    rc = hs_tokenizer_token_bytes(t, (int32_t)i, 0, &bytes[i], &lens[i]);
    if (rc) hs_set_error(&err, rc, "token %u: %s", i, hs_tokenizer_last_error());
    eog[i] = hs_tokenizer_is_eog(t, (int32_t)i);
  }
  if (!rc) {
    rc = hs_grammar_vocab_create(bytes, lens, eog, n, out);
    if (rc) hs_set_error(&err, rc, "grammar vocabulary: %s", hs_grammar_last_error());
  }
  hs_free(bytes);
  hs_free(lens);
  hs_free(eog);
  return rc;
}

/* ---- embeddings ---- */

int hs_embed(hs_model *m, const int32_t *tokens, size_t n, hs_pooling pooling, float *out) {
  if (!m || !tokens || !out) return hs_set_error(&err, HS_EINVAL, "hs_embed: NULL argument");
  const hs_model_params *mp = hs_model_get_params(m);
  if (n == 0 || n > mp->n_ctx_train)
    return hs_set_error(&err, HS_EINVAL, "an embedding takes 1 to %u tokens, not %zu",
                        mp->n_ctx_train, n);
  if (pooling != HS_POOLING_MEAN && pooling != HS_POOLING_LAST)
    return hs_set_error(&err, HS_EINVAL, "unknown pooling %d", (int)pooling);
  for (size_t i = 0; i < n; i++)
    if (tokens[i] < 0 || (uint32_t)tokens[i] >= mp->n_vocab)
      return hs_set_error(&err, HS_EINVAL, "token %zu is %d, outside the vocabulary", i, tokens[i]);
  size_t d = mp->n_embd, chunk = n < 512 ? n : 512;
  hs_seq *seq = NULL;
  int rc = hs_seq_create(m, (uint32_t)n, &seq);
  if (rc) return hs_set_error(&err, rc, "embedding: %s", hs_engine_last_error());
  hs_batch_item *items = hs_malloc(sizeof *items * chunk);
  float *hidden = hs_malloc(sizeof(float) * d * chunk);
  double *acc = hs_calloc(d, sizeof(double));
  if (!items || !hidden || !acc) rc = hs_set_error(&err, HS_ENOMEM, "out of memory embedding");
  for (size_t i = 0; i < n && !rc; i += chunk) {
    size_t k = n - i < chunk ? n - i : chunk;
    for (size_t j = 0; j < k; j++) items[j] = (hs_batch_item){seq, tokens[i + j], true};
    rc = hs_model_forward(m, items, k, NULL, hidden); /* no logits: hidden states only */
    if (rc) {
      hs_set_error(&err, rc, "embedding: %s", hs_engine_last_error());
      break;
    }
    for (size_t j = 0; j < k; j++)
      if (pooling == HS_POOLING_MEAN || i + j == n - 1)
        for (size_t c = 0; c < d; c++) acc[c] += hidden[j * d + c];
  }
  if (!rc) {
    double norm = 0;
    for (size_t c = 0; c < d; c++) norm += acc[c] * acc[c];
    norm = sqrt(norm);
    for (size_t c = 0; c < d; c++) out[c] = norm > 0 ? (float)(acc[c] / norm) : 0.0f;
  }
  hs_free(acc);
  hs_free(hidden);
  hs_free(items);
  hs_seq_destroy(seq);
  return rc;
}
