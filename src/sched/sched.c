/* sched.c: the scheduler's bookkeeping (hswarm/sched.h): creation, submission (with the checks
 * that refuse a request at once), cancellation, finishing requests, teams, and metrics.
 *
 * Requests are found by id in a chained hash table; teams likewise by team id. A waiting request
 * is in two lists, both in arrival order: its priority class's, and its team's list for that
 * class (policy.c walks either). A running request is in the running list, in admission order.
 * Latencies are kept per priority for the percentiles of hs_sched_get_metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/timeutil.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "sched/sched_impl.h"

_Thread_local hs_errbuf hs_sched_err;
#define err hs_sched_err

const char *hs_sched_last_error(void) { return err.msg; }

static const char *const prio_names[HS_PRIORITY_COUNT] = {"urgent", "normal", "background"};

const char *hs_priority_name(hs_priority p) {
  return (unsigned)p < HS_PRIORITY_COUNT ? prio_names[p] : "?";
}

int hs_priority_parse(const char *name, hs_priority *out) {
  for (int i = 0; name && i < HS_PRIORITY_COUNT; i++)
    if (!strcmp(name, prio_names[i])) {
      *out = (hs_priority)i;
      return 0;
    }
  return HS_EINVAL;
}

void hs_sched_request_init(hs_sched_request *r) {
  memset(r, 0, sizeof *r);
  hs_sampler_params_init(&r->sampling);
  r->priority = HS_PRIORITY_NORMAL;
}

/* ---- lists ---- */

static link *lk(sreq *r, bool team_link) { return team_link ? &r->in_team : &r->in_class; }

void sched_list_append(list *l, sreq *r, bool t) {
  lk(r, t)->prev = l->tail;
  lk(r, t)->next = NULL;
  if (l->tail) lk(l->tail, t)->next = r;
  else l->head = r;
  l->tail = r;
  l->n++;
}

void sched_list_insert_by_arrival(list *l, sreq *r, bool t) {
  sreq *at = l->head;
  while (at && at->arrival < r->arrival) at = lk(at, t)->next;
  if (!at) {
    sched_list_append(l, r, t);
    return;
  }
  sreq *prev = lk(at, t)->prev;
  lk(r, t)->prev = prev;
  lk(r, t)->next = at;
  lk(at, t)->prev = r;
  if (prev) lk(prev, t)->next = r;
  else l->head = r;
  l->n++;
}

void sched_list_remove(list *l, sreq *r, bool t) {
  sreq *p = lk(r, t)->prev, *n = lk(r, t)->next;
  if (p) lk(p, t)->next = n;
  else l->head = n;
  if (n) lk(n, t)->prev = p;
  else l->tail = p;
  lk(r, t)->prev = lk(r, t)->next = NULL;
  l->n--;
}

/* ---- tables ---- */

static size_t mix(uint64_t x) { return (size_t)hs_mix64(x); }

static sreq *find_req(const hs_sched *s, uint64_t id) {
  for (sreq *r = s->ids[mix(id) & (s->n_ids_buckets - 1)]; r; r = r->hnext)
    if (r->id == id) return r;
  return NULL;
}

static void ids_grow(hs_sched *s) {
  if (s->n_reqs < s->n_ids_buckets) return;
  size_t nb = s->n_ids_buckets * 2;
  sreq **b = hs_calloc(nb, sizeof *b);
  if (!b) return; /* chains just get longer */
  for (size_t i = 0; i < s->n_ids_buckets; i++)
    for (sreq *r = s->ids[i], *next; r; r = next) {
      next = r->hnext;
      r->hnext = b[mix(r->id) & (nb - 1)];
      b[mix(r->id) & (nb - 1)] = r;
    }
  hs_free(s->ids);
  s->ids = b;
  s->n_ids_buckets = nb;
}

static void ids_remove(hs_sched *s, sreq *r) {
  sreq **pp = &s->ids[mix(r->id) & (s->n_ids_buckets - 1)];
  while (*pp != r) pp = &(*pp)->hnext;
  *pp = r->hnext;
  s->n_reqs--;
}

static team *find_team(hs_sched *s, uint32_t id, bool create) {
  size_t b = mix(id) & (s->n_team_buckets - 1);
  for (team *t = s->teams[b]; t; t = t->hnext)
    if (t->id == id) return t;
  if (!create) return NULL;
  team *t = hs_calloc(1, sizeof *t);
  if (!t) return NULL;
  t->id = id;
  t->weight = 1.0;
  t->hnext = s->teams[b];
  s->teams[b] = t;
  s->n_teams++;
  return t;
}

/* ---- creation ---- */

int hs_sched_create(hs_model *m, const hs_sched_opts *o, hs_sched **out) {
  if (!m || !out) return hs_set_error(&err, HS_EINVAL, "hs_sched_create: NULL argument");
  *out = NULL;
  hs_sched *s = hs_calloc(1, sizeof *s);
  if (!s) return hs_set_error(&err, HS_ENOMEM, "out of memory");
  if (o) s->o = *o;
  if (!s->o.token_budget) s->o.token_budget = 512;
  if (!s->o.max_running) s->o.max_running = 256;
  if (!s->o.max_queued) s->o.max_queued = 1000000;
  if (!s->o.max_wait_steps) s->o.max_wait_steps = 256;
  if (s->o.no_batching) s->o.max_running = 1;
  const hs_model_params *p = hs_model_get_params(m);
  s->m = m;
  s->tok = s->o.tokenizer;
  s->n_vocab = p->n_vocab;
  s->n_ctx = s->o.n_ctx ? s->o.n_ctx : (p->n_ctx_train < 4096 ? p->n_ctx_train : 4096);
  if (s->n_ctx > p->n_ctx_train) s->n_ctx = p->n_ctx_train;
  s->n_ids_buckets = 1024;
  s->n_team_buckets = 64;
  s->ids = hs_calloc(s->n_ids_buckets, sizeof *s->ids);
  s->teams = hs_calloc(s->n_team_buckets, sizeof *s->teams);
  s->sample_scratch = hs_malloc(hs_sampler_scratch_floats(s->n_vocab) * sizeof(float));
  if (!s->ids || !s->teams || !s->sample_scratch) {
    hs_sched_destroy(s);
    return hs_set_error(&err, HS_ENOMEM, "out of memory");
  }
  *out = s;
  return 0;
}

void hs_sched_destroy(hs_sched *s) {
  if (!s) return;
  for (int c = 0; c < HS_PRIORITY_COUNT; c++)
    while (s->waiting[c].head) {
      sreq *r = s->waiting[c].head;
      sched_detach(s, r);
      sched_finish(s, r, 0, HS_FINISH_CANCELLED, NULL);
    }
  while (s->running.head) {
    sreq *r = s->running.head;
    sched_detach(s, r);
    sched_finish(s, r, 0, HS_FINISH_CANCELLED, NULL);
  }
  for (size_t i = 0; s->teams && i < s->n_team_buckets; i++)
    for (team *t = s->teams[i], *next; t; t = next) {
      next = t->hnext;
      hs_free(t);
    }
  for (int c = 0; c < HS_PRIORITY_COUNT; c++) hs_free(s->lat[c].v);
  hs_free(s->teams);
  hs_free(s->ids);
  hs_free(s->items);
  hs_free(s->item_req);
  hs_free(s->logits);
  hs_free(s->sample_scratch);
  hs_free(s->masked);
  hs_free(s->allowed);
  hs_free(s);
}

/* ---- submission ---- */

static int check_request(hs_sched *s, const hs_sched_request *r) {
  if (!r->prompt || r->n_prompt == 0)
    return hs_set_error(&err, HS_EINVAL, "a request needs a prompt of at least one token");
  if ((unsigned)r->priority >= HS_PRIORITY_COUNT)
    return hs_set_error(&err, HS_EINVAL, "priority %d is not urgent, normal or background",
                        (int)r->priority);
  if (r->n_prompt >= s->n_ctx)
    return hs_set_error(&err, HS_EINVAL,
                        "the prompt has %zu tokens: no room left in a context of %u to generate",
                        r->n_prompt, s->n_ctx);
  for (size_t i = 0; i < r->n_prompt; i++)
    if (r->prompt[i] < 0 || (uint32_t)r->prompt[i] >= s->n_vocab)
      return hs_set_error(&err, HS_EINVAL, "prompt token %zu is %d, out of range [0, %u)", i,
                          (int)r->prompt[i], s->n_vocab);
  if (r->n_stop_tokens && !r->stop_tokens)
    return hs_set_error(&err, HS_EINVAL, "n_stop_tokens is %zu but stop_tokens is NULL",
                        r->n_stop_tokens);
  if (r->grammar && !r->grammar_vocab)
    return hs_set_error(&err, HS_EINVAL, "a grammar needs grammar_vocab (hs_generate_vocab_create)");
  if (r->grammar && hs_grammar_vocab_size(r->grammar_vocab) != s->n_vocab)
    return hs_set_error(&err, HS_EINVAL, "the grammar vocabulary has %zu tokens, the model %u",
                        hs_grammar_vocab_size(r->grammar_vocab), s->n_vocab);
  hs_sampler_params sp = r->sampling;
  if (!(sp.temperature >= 0) || !isfinite(sp.temperature) || sp.top_k < 0 ||
      !(sp.top_p > 0 && sp.top_p <= 1) || !(sp.min_p >= 0 && sp.min_p <= 1) ||
      !(sp.repetition_penalty > 0) || !isfinite(sp.repetition_penalty) ||
      !isfinite(sp.presence_penalty) || !isfinite(sp.frequency_penalty))
    return hs_set_error(&err, HS_EINVAL,
                        "bad sampling parameters (temperature >= 0, top_k >= 0, 0 < top_p <= 1, "
                        "0 <= min_p <= 1, repetition penalty > 0, penalties finite)");
  return 0;
}

int hs_sched_submit(hs_sched *s, const hs_sched_request *in, uint64_t *id) {
  if (!s || !in) return hs_set_error(&err, HS_EINVAL, "hs_sched_submit: NULL argument");
  int rc = check_request(s, in);
  if (rc) {
    s->mt.rejected++;
    return rc;
  }
  uint32_t waiting = 0;
  for (int c = 0; c < HS_PRIORITY_COUNT; c++) waiting += s->waiting[c].n;
  if (waiting >= s->o.max_queued) {
    s->mt.rejected++;
    return hs_set_error(&err, HS_EFULL, "the queue is full (%u requests waiting)", waiting);
  }
  uint32_t room = s->n_ctx - (uint32_t)in->n_prompt;
  uint32_t max_gen = in->max_tokens && in->max_tokens < room ? in->max_tokens : room;
  uint32_t need = sched_blocks((uint32_t)in->n_prompt + max_gen);
  /* can it ever fit? beside the pinned blocks, less the pinned blocks it would share */
  hs_kv_stats st;
  hs_kv_get_stats(s->m, &st);
  uint32_t pinned_match = 0;
  hs_kv_match(s->m, in->prompt, in->n_prompt, NULL, NULL, &pinned_match);
  uint64_t usable = st.blocks_total - st.blocks_pinned + pinned_match / HS_KV_BLOCK_TOKENS;
  if (need > usable) {
    s->mt.rejected++;
    return hs_set_error(&err, HS_ENOSPC,
                        "the request can never fit: %zu prompt tokens plus %u to generate need "
                        "%u KV blocks of %u positions; the pool has %llu, %llu of them pinned",
                        in->n_prompt, max_gen, need, HS_KV_BLOCK_TOKENS,
                        (unsigned long long)st.blocks_total, (unsigned long long)st.blocks_pinned);
  }
  sreq *r = hs_calloc(1, sizeof *r);
  team *t = find_team(s, in->team, true);
  if (r) r->toks = hs_malloc(((size_t)in->n_prompt + max_gen) * sizeof *r->toks);
  if (r && in->n_stop_tokens) r->stops = hs_malloc(in->n_stop_tokens * sizeof *r->stops);
  int grc = r && in->grammar ? hs_grammar_state_create(in->grammar, &r->gs) : 0;
  if (!grc && in->grammar && !s->masked) { /* the grammar's scratch, for the first grammar */
    s->masked = hs_malloc(s->n_vocab * sizeof *s->masked);
    s->allowed = hs_malloc(s->n_vocab);
    if (!s->masked || !s->allowed) {
      hs_free(s->masked);
      hs_free(s->allowed);
      s->masked = NULL;
      s->allowed = NULL;
      grc = HS_ENOMEM;
    }
  }
  if (!r || !t || !r->toks || (in->n_stop_tokens && !r->stops) || grc) {
    if (r) {
      hs_free(r->toks);
      hs_free(r->stops);
      hs_grammar_state_destroy(r->gs);
    }
    hs_free(r);
    if (grc && grc != HS_ENOMEM)
      return hs_set_error(&err, grc, "grammar: %s", hs_grammar_last_error());
    return hs_set_error(&err, HS_ENOMEM, "out of memory");
  }
  r->r = *in;
  memcpy(r->toks, in->prompt, in->n_prompt * sizeof *r->toks);
  if (in->n_stop_tokens) memcpy(r->stops, in->stop_tokens, in->n_stop_tokens * sizeof *r->stops);
  r->r.prompt = r->toks;
  r->r.stop_tokens = r->stops;
  r->n_prompt = (uint32_t)in->n_prompt;
  r->max_gen = max_gen;
  r->need_blocks = need;
  r->id = ++s->next_id;
  r->arrival = s->next_arrival++;
  r->tm = t;
  r->state = RS_WAITING;
  r->submit_step = s->step;
  r->deadline_step = in->deadline_steps ? s->step + in->deadline_steps : UINT64_MAX;
  r->submit_ns = hs_now_ns();
  ids_grow(s);
  size_t b = mix(r->id) & (s->n_ids_buckets - 1);
  r->hnext = s->ids[b];
  s->ids[b] = r;
  s->n_reqs++;
  /* a team that starts waiting again does not bank the share it did not use meanwhile */
  if (t->waiting[0].n + t->waiting[1].n + t->waiting[2].n == 0 && t->pending == 0) {
    uint64_t low = UINT64_MAX;
    for (size_t i = 0; i < s->n_team_buckets; i++)
      for (team *o = s->teams[i]; o; o = o->hnext)
        if (o != t && (o->pending || o->waiting[0].n || o->waiting[1].n || o->waiting[2].n)) {
          uint64_t v = (uint64_t)((double)o->served / o->weight * t->weight);
          low = v < low ? v : low;
        }
    if (low != UINT64_MAX && t->served < low) t->served = low;
  }
  sched_list_append(&s->waiting[in->priority], r, false);
  sched_list_append(&t->waiting[in->priority], r, true);
  s->mt.submitted++;
  if (id) *id = r->id;
  return 0;
}

void sched_detach(hs_sched *s, sreq *r) {
  if (r->state == RS_WAITING) {
    sched_list_remove(&s->waiting[r->r.priority], r, false);
    sched_list_remove(&r->tm->waiting[r->r.priority], r, true);
  } else {
    sched_list_remove(&s->running, r, false);
    uint32_t fed = hs_seq_len(r->seq);
    if (fed < r->n_prompt) r->tm->pending -= r->n_prompt - fed;
    hs_seq_destroy(r->seq);
    r->seq = NULL;
  }
}

static void lat_add(lat_log *l, double v) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 256;
    double *p = hs_realloc(l->v, cap * sizeof *p);
    if (!p) return; /* a latency lost from the percentiles, nothing else */
    l->v = p;
    l->cap = cap;
  }
  l->v[l->n++] = v;
}

void sched_finish(hs_sched *s, sreq *r, int status, hs_finish_reason why, const char *error) {
  ids_remove(s, r);
  hs_sched_result res = {
      .id = r->id, .status = status, .finish = why, .tokens = r->toks + r->n_prompt,
      .n_tokens = r->n_gen, .prompt_tokens = r->n_prompt, .prompt_reused = r->reused,
      .preemptions = r->preemptions, .submit_step = r->submit_step, .admit_step = r->admit_step,
      .first_token_step = r->first_token_step, .done_step = s->step,
      .latency_seconds = (double)(hs_now_ns() - r->submit_ns) * 1e-9, .error = error ? error : ""};
  if (status) s->mt.finished++;
  else if (why == HS_FINISH_CANCELLED) s->mt.cancelled++;
  else if (why == HS_FINISH_DEADLINE) s->mt.deadline_missed++;
  else s->mt.finished++;
  lat_add(&s->lat[r->r.priority], res.latency_seconds);
  if (r->r.on_done) r->r.on_done(&res, r->r.ud);
  hs_free(r->toks);
  hs_free(r->stops);
  hs_grammar_state_destroy(r->gs);
  hs_free(r);
}

int hs_sched_cancel(hs_sched *s, uint64_t id) {
  if (!s) return hs_set_error(&err, HS_EINVAL, "hs_sched_cancel: NULL scheduler");
  sreq *r = find_req(s, id);
  if (!r) return hs_set_error(&err, HS_ENOENT, "no pending request %llu", (unsigned long long)id);
  if (s->in_step && r->state == RS_RUNNING) {
    r->cancel = true; /* finished when the step's sampling is over */
    return 0;
  }
  sched_detach(s, r);
  sched_finish(s, r, 0, HS_FINISH_CANCELLED, NULL);
  return 0;
}

int hs_sched_set_team_weight(hs_sched *s, uint32_t id, double w) {
  if (!s || !(w > 0) || !isfinite(w))
    return hs_set_error(&err, HS_EINVAL, "a team's weight must be positive and finite");
  team *t = find_team(s, id, true);
  if (!t) return hs_set_error(&err, HS_ENOMEM, "out of memory");
  t->weight = w;
  return 0;
}

uint64_t hs_sched_now(const hs_sched *s) { return s ? s->step : 0; }

hs_model *hs_sched_model(const hs_sched *s) { return s ? s->m : NULL; }

int hs_sched_run(hs_sched *s) {
  int rc;
  while ((rc = hs_sched_step(s)) > 0) {
  }
  return rc;
}

/* ---- metrics ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void hs_sched_get_metrics(const hs_sched *s, hs_sched_metrics *o) {
  memset(o, 0, sizeof *o);
  if (!s) return;
  *o = s->mt;
  o->steps = s->step;
  for (int c = 0; c < HS_PRIORITY_COUNT; c++) o->queued[c] = s->waiting[c].n;
  o->running = s->running.n;
  hs_kv_stats st;
  hs_kv_get_stats(s->m, &st);
  o->kv_blocks_total = st.blocks_total;
  o->kv_blocks_used = st.blocks_private + st.blocks_in_use;
  o->kv_blocks_pinned = st.blocks_pinned;
  o->kv_blocks_free = st.blocks_free;
  o->kv_blocks_cached = st.blocks_cached;
  o->prefix_hit_ratio = o->prompt_tokens ? (double)o->prompt_tokens_reused / o->prompt_tokens : 0;
  o->step_seconds = (double)s->step_ns * 1e-9;
  o->tokens_per_second = o->step_seconds > 0 ? o->generated_tokens / o->step_seconds : 0;
  for (int c = 0; c < HS_PRIORITY_COUNT; c++) {
    const lat_log *l = &s->lat[c];
    o->latency_count[c] = l->n;
    if (!l->n) continue;
    double *v = malloc(l->n * sizeof *v); /* scratch outside the hooks: metrics never fail */
    if (!v) continue;
    memcpy(v, l->v, l->n * sizeof *v);
    qsort(v, l->n, sizeof *v, cmp_double);
    o->latency_p50[c] = v[(l->n - 1) / 2];
    o->latency_p99[c] = v[(size_t)ceil(0.99 * (double)l->n) - 1];
    free(v);
  }
}
