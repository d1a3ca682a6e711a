/* step.c: one engine step of the scheduler (hs_sched_step): deadlines, admission (policy.c),
 * then one batched forward pass and the sampling of every request that reached the end of what
 * it had to feed.
 *
 * A running request has tokens to feed: its prompt, then each token it generates (fed at the
 * next step). Its sequence holds what was fed so far. So prompt and generation are one thing: a
 * step feeds a request a chunk of what it has left, and when the chunk ends at its last token,
 * the logits of that token give the next one. The batch takes, in order:
 *   1. every request with exactly one token left (the generating ones: one token each, whatever
 *      the budget, so a long prompt never stalls generation), in admission order;
 *   2. chunks of the others' remaining prompts, urgent first, then normal, then background,
 *      in admission order within a class, while the token budget lasts.
 * Sampling uses the request's own seed at the position of the token, and its history (prompt and
 * tokens so far), so its tokens do not depend on the batch (hswarm/sampler.h). A generated token
 * ends the request when it is an end-of-generation token (with a tokenizer, unless ignore_eos) or
 * one of its stop tokens (STOP: not part of the result), or when max_tokens are reached
 * (LENGTH).
 *
 * If the engine runs out of KV blocks anyway (someone pinned blocks between steps), the newest
 * running request, background first, is preempted and the step is built again. */
#include <math.h>
#include <string.h>

#include "core/timeutil.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "sched/sched_impl.h"

#define err hs_sched_err

static int grow_scratch(hs_sched *s, size_t n_items) {
  if (n_items > s->cap_items) {
    size_t cap = s->cap_items ? s->cap_items : 64;
    while (cap < n_items) cap *= 2;
    hs_batch_item *it = hs_realloc(s->items, cap * sizeof *it);
    if (!it) return HS_ENOMEM;
    s->items = it;
    sreq **rq = hs_realloc(s->item_req, cap * sizeof *rq);
    if (!rq) return HS_ENOMEM;
    s->item_req = rq;
    s->cap_items = cap;
  }
  return 0;
}

static int grow_logits(hs_sched *s, size_t rows) {
  if (rows > s->cap_logits) {
    size_t cap = s->cap_logits ? s->cap_logits : 16;
    while (cap < rows) cap *= 2;
    float *l = hs_realloc(s->logits, cap * s->n_vocab * sizeof *l);
    if (!l) return HS_ENOMEM;
    s->logits = l;
    s->cap_logits = cap;
  }
  return 0;
}

/* Appends a chunk of k tokens of r to the batch; *nw counts rows of logits. */
static void add_chunk(hs_sched *s, sreq *r, uint32_t k, size_t *n, size_t *nw) {
  const uint32_t fed = hs_seq_len(r->seq), total = sreq_total(r);
  for (uint32_t i = 0; i < k; i++) {
    const uint32_t pos = fed + i;
    const bool last = pos + 1 == total;
    s->items[(*n)++] = (hs_batch_item){r->seq, r->toks[pos], last};
    if (last) s->item_req[(*nw)++] = r;
  }
}

/* Builds the batch; returns the number of items (*nw: of them with logits). */
static size_t build(hs_sched *s, size_t *nw) {
  size_t n = 0;
  *nw = 0;
  uint32_t budget = s->o.token_budget;
  for (sreq *r = s->running.head; r; r = r->in_class.next)
    if (sreq_total(r) - hs_seq_len(r->seq) == 1) {
      add_chunk(s, r, 1, &n, nw);
      budget = budget > 0 ? budget - 1 : 0;
    }
  for (int c = 0; c < HS_PRIORITY_COUNT && budget; c++)
    for (sreq *r = s->running.head; r && budget; r = r->in_class.next) {
      uint32_t left = sreq_total(r) - hs_seq_len(r->seq);
      if ((int)r->r.priority != c || left <= 1) continue;
      uint32_t k = left < budget ? left : budget;
      add_chunk(s, r, k, &n, nw);
      budget -= k;
    }
  return n;
}

static bool is_stop(const hs_sched *s, const sreq *r, int32_t t) {
  if (!r->r.ignore_eos && s->tok && hs_tokenizer_is_eog(s->tok, t)) return true;
  for (size_t i = 0; i < r->r.n_stop_tokens; i++)
    if (r->stops[i] == t) return true;
  return false;
}

static void finish_running(hs_sched *s, sreq *r, int status, hs_finish_reason why,
                           const char *error) {
  sched_detach(s, r);
  sched_finish(s, r, status, why, error);
}

/* s->masked = logits with the tokens r's grammar does not allow next at -inf. 0, or the error
 * (r is then finished with it). */
static int grammar_mask(hs_sched *s, sreq *r, const float *logits) {
  int n = hs_grammar_state_mask(r->gs, r->r.grammar_vocab, s->allowed);
  if (n <= 0) {
    char msg[HS_ERRMSG_SIZE];
    if (n < 0) snprintf(msg, sizeof msg, "grammar: %s", hs_grammar_last_error());
    else snprintf(msg, sizeof msg, "the grammar allows no token after %u generated", r->n_gen);
    finish_running(s, r, n < 0 ? n : HS_EINVAL, HS_FINISH_STOP, msg);
    return n < 0 ? n : HS_EINVAL;
  }
  for (uint32_t i = 0; i < s->n_vocab; i++) s->masked[i] = s->allowed[i] ? logits[i] : -INFINITY;
  return 0;
}

/* Log-probabilities of the token sampled from raw logits (the model's own distribution), and
 * the request's top alternatives, given to its on_logprobs. Double-precision log-sum-exp; the
 * top alternatives by insertion into a short sorted list (k <= 20). */
static void report_logprobs(const sreq *r, const float *raw, uint32_t n_vocab, int32_t tok) {
  float mx = raw[0];
  for (uint32_t i = 1; i < n_vocab; i++)
    if (raw[i] > mx) mx = raw[i];
  double sum = 0;
  for (uint32_t i = 0; i < n_vocab; i++) sum += exp((double)raw[i] - mx);
  const double lse = mx + log(sum);
  hs_sched_logprobs lp = {.token = tok, .logprob = (float)(raw[tok] - lse)};
  uint32_t k = r->r.top_logprobs < HS_SCHED_MAX_TOP_LOGPROBS ? r->r.top_logprobs
                                                             : HS_SCHED_MAX_TOP_LOGPROBS;
  if (k > n_vocab) k = n_vocab;
  uint32_t have = 0;
  for (uint32_t i = 0; i < n_vocab && k; i++) {
    if (have == k && raw[i] <= raw[lp.top_tokens[k - 1]]) continue;
    uint32_t at = have < k ? have++ : k - 1; /* the place to fill, then moved up */
    while (at > 0 && raw[lp.top_tokens[at - 1]] < raw[i]) {
      lp.top_tokens[at] = lp.top_tokens[at - 1];
      at--;
    }
    lp.top_tokens[at] = (int32_t)i;
  }
  lp.n_top = have;
  for (uint32_t i = 0; i < have; i++) lp.top_logprobs[i] = (float)(raw[lp.top_tokens[i]] - lse);
  r->r.on_logprobs(r->id, &lp, r->r.ud);
}

int sched_run_step(hs_sched *s) {
  size_t cap = (size_t)s->o.token_budget + s->running.n;
  if (grow_scratch(s, cap) || grow_logits(s, s->running.n ? s->running.n : 1))
    return hs_set_error(&err, HS_ENOMEM, "out of memory for a step's batch");
  size_t n, nw;
  int rc;
  /* fed before the step, per request (to count prompt tokens afterwards) */
  for (;;) {
    n = build(s, &nw);
    if (n == 0) return 0;
    for (sreq *r = s->running.head; r; r = r->in_class.next) r->fed_before = hs_seq_len(r->seq);
    rc = hs_model_forward(s->m, s->items, n, s->logits, NULL);
    if (rc != HS_ENOSPC || s->running.n <= 1) break;
    sreq *victim = s->running.tail;
    for (sreq *v = s->running.tail; v; v = v->in_class.prev)
      if (v->r.priority == HS_PRIORITY_BACKGROUND) {
        victim = v;
        break;
      }
    sched_preempt(s, victim);
  }
  if (rc) {
    /* the engine failed: the requests of this batch finish with its error */
    char msg[HS_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "engine step: %s", hs_engine_last_error());
    for (sreq *r = s->running.head, *next; r; r = next) {
      next = r->in_class.next;
      finish_running(s, r, rc, HS_FINISH_STOP, msg);
    }
    return hs_set_error(&err, rc, "%s", msg);
  }
  /* prompt tokens computed, per request */
  for (sreq *r = s->running.head; r; r = r->in_class.next) {
    uint32_t now = hs_seq_len(r->seq);
    if (now > r->fed_before && r->fed_before < r->n_prompt) {
      uint32_t upto = now < r->n_prompt ? now : r->n_prompt, k = upto - r->fed_before;
      s->mt.prompt_tokens_computed += k;
      r->tm->served += k;
      r->tm->pending -= k;
    }
  }
  /* sampling */
  for (size_t w = 0; w < nw; w++) {
    sreq *r = s->item_req[w];
    const uint32_t total = sreq_total(r);
    int32_t tok;
    const float *logits = s->logits + w * s->n_vocab, *raw = logits;
    if (r->gs && (rc = grammar_mask(s, r, logits))) continue; /* finished with the error */
    if (r->gs) logits = s->masked;
    rc = hs_sample(&r->r.sampling, logits, s->n_vocab, r->toks, total, total, s->sample_scratch,
                   &tok);
    if (rc) {
      char msg[HS_ERRMSG_SIZE];
      snprintf(msg, sizeof msg, "sampling: %s", hs_sampler_last_error());
      finish_running(s, r, rc, HS_FINISH_STOP, msg);
      continue;
    }
    if (is_stop(s, r, tok)) {
      finish_running(s, r, 0, HS_FINISH_STOP, NULL);
      continue;
    }
    if (r->gs && (rc = hs_grammar_state_accept(r->gs, r->r.grammar_vocab, tok))) {
      char msg[HS_ERRMSG_SIZE];
      snprintf(msg, sizeof msg, "grammar: %s", hs_grammar_last_error());
      finish_running(s, r, rc, HS_FINISH_STOP, msg);
      continue;
    }
    r->toks[total] = tok;
    if (r->n_gen++ == 0 && !r->preemptions) r->first_token_step = s->step;
    r->tm->served++;
    s->mt.generated_tokens++;
    if (r->r.on_logprobs) report_logprobs(r, raw, s->n_vocab, tok);
    if (r->r.on_token && r->r.on_token(r->id, tok, r->r.ud)) r->cancel = true;
    if (r->cancel) finish_running(s, r, 0, HS_FINISH_CANCELLED, NULL);
    else if (r->gs && hs_grammar_state_is_done(r->gs)) finish_running(s, r, 0, HS_FINISH_STOP, NULL);
    else if (r->n_gen == r->max_gen) finish_running(s, r, 0, HS_FINISH_LENGTH, NULL);
  }
  /* cancellations asked from callbacks for requests not sampled in this step */
  for (sreq *r = s->running.head, *next; r; r = next) {
    next = r->in_class.next;
    if (r->cancel) finish_running(s, r, 0, HS_FINISH_CANCELLED, NULL);
  }
  return 0;
}

static void expire_deadlines(hs_sched *s) {
  for (int c = 0; c < HS_PRIORITY_COUNT; c++)
    for (sreq *r = s->waiting[c].head, *next; r; r = next) {
      next = r->in_class.next;
      if (r->deadline_step <= s->step) {
        sched_detach(s, r);
        sched_finish(s, r, 0, HS_FINISH_DEADLINE, NULL);
      }
    }
  for (sreq *r = s->running.head, *next; r; r = next) {
    next = r->in_class.next;
    if (r->deadline_step <= s->step) finish_running(s, r, 0, HS_FINISH_DEADLINE, NULL);
  }
}

int hs_sched_step(hs_sched *s) {
  if (!s) return hs_set_error(&err, HS_EINVAL, "hs_sched_step: NULL scheduler");
  const uint64_t t0 = hs_now_ns();
  s->in_step = true;
  expire_deadlines(s);
  sched_admit(s);
  int rc = 0;
  if (s->running.n) {
    rc = sched_run_step(s);
    s->step++;
  } else {
    /* nothing runs, so nothing will free blocks: a waiting request that does not fit into the
     * empty engine never will (blocks were pinned since it came); it fails, one per step */
    for (int c = 0; c < HS_PRIORITY_COUNT; c++)
      if (s->waiting[c].head) {
        sreq *r = s->waiting[c].head;
        hs_kv_stats st;
        hs_kv_get_stats(s->m, &st);
        char msg[HS_ERRMSG_SIZE];
        snprintf(msg, sizeof msg,
                 "its KV (%u blocks) cannot fit beside the %llu pinned blocks of a pool of %llu",
                 r->need_blocks, (unsigned long long)st.blocks_pinned,
                 (unsigned long long)st.blocks_total);
        sched_detach(s, r);
        sched_finish(s, r, HS_ENOSPC, HS_FINISH_STOP, msg);
        break;
      }
  }
  s->in_step = false;
  s->step_ns += hs_now_ns() - t0;
  if (rc < 0) return rc;
  return s->running.n + s->waiting[0].n + s->waiting[1].n + s->waiting[2].n ? 1 : 0;
}
