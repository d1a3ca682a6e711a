/* policy.c: admission, the heart of the scheduler's policy (hswarm/sched.h gives the rules; here
 * is how they are applied).
 *
 * Memory admission by worst case. Every running request may still take the blocks its prompt
 * and max_tokens need beyond those it holds (its reserve). A waiting request q costs
 *   cost(q) = need(q) - locked(q)
 * blocks, where need(q) is its worst-case block count and locked(q) the blocks of its cached
 * prefix that are already locked (shared with a running request or pinned: attaching them takes
 * nothing). Cached but unlocked blocks it would reuse still count in its cost, because locking
 * them takes them out of the evictable pool. q fits when
 *   cost(q) + sum of reserves <= free blocks + cached blocks
 * (every cached block is evictable once nobody locks it). So a running request can always get
 * the blocks it needs: nothing admitted later can take them, and no step runs out of KV memory
 * unless blocks are pinned between steps (step.c then preempts). The price is admitting by worst
 * case; the reward is no deadlock and no thrashing, with 10,000 requests queued or not.
 *
 * Order. Classes in strict precedence. Within a class, a request that has waited max_wait_steps
 * goes first (oldest first); if it does not fit, admission stops for this step so that smaller
 * requests cannot overtake it forever. Otherwise the team with the least usage per unit of
 * weight (tokens served plus prompt tokens admitted and not yet computed, so one step's
 * admissions already count) offers its candidate: among the first WINDOW requests of its queue,
 * normally the one sharing the most cached prefix with running requests (locked(q)), then the
 * closest in prompt length to the running ones (they finish prefill together), then the oldest;
 * when memory is tight (a candidate did not fit in this step), the one with the longest cached
 * prefix, which costs the fewest new blocks (SGLang's longest-prefix-match; the window keeps it
 * cheap with 10,000 requests waiting, and max_wait_steps bounds what it can delay). A team none
 * of whose window fits is passed over for the rest of the step.
 *
 * Computing a prefix once. A waiting request whose next uncached block is being computed right
 * now by a running request (same tokens up to that block) is not admitted yet: one step later
 * the block is published and it takes it from the cache. So 64 requests submitted together with
 * the same uncached 2,048-token prefix compute it once, not 64 times (SGLang does the same).
 *
 * Preemption. An urgent request that does not fit takes the place of background requests,
 * newest first: each is stopped, its sequence destroyed (published blocks stay cached, so
 * resuming recomputes only what was evicted meanwhile) and it waits again in its place (arrival
 * order), keeping the tokens it has generated. It resumes with the same tokens it would have
 * produced without the interruption (the engine is batch-invariant). */
#include <math.h>
#include <string.h>

#include "hswarm/error.h"
#include "sched/sched_impl.h"

#define err hs_sched_err

/* Candidates looked at in a team's queue. */
#define WINDOW 16

static uint64_t reserved_blocks(const hs_sched *s) {
  uint64_t sum = 0;
  for (const sreq *r = s->running.head; r; r = r->in_class.next) {
    uint32_t held = sched_blocks(hs_seq_len(r->seq));
    sum += r->need_blocks > held ? r->need_blocks - held : 0;
  }
  return sum;
}

static uint64_t available_blocks(const hs_sched *s) {
  hs_kv_stats st;
  hs_kv_get_stats(s->m, &st);
  return st.blocks_free + st.blocks_cached;
}

typedef struct probe {
  uint32_t cached, locked; /* tokens of its prefix cached, and of those locked */
  uint32_t cost;           /* blocks */
} probe;

static probe probe_req(const hs_sched *s, const sreq *r) {
  probe p;
  hs_kv_match(s->m, r->toks, sreq_total(r) - 1, &p.cached, &p.locked, NULL);
  uint32_t lk = p.locked / HS_KV_BLOCK_TOKENS;
  p.cost = r->need_blocks > lk ? r->need_blocks - lk : 0;
  return p;
}

/* Whether a running request is computing q's next block right now: its prompt has the same tokens
 * up to the end of the block after q's cached prefix, and it has not published that block yet.
 * Then q waits a little and takes the block from the cache instead of computing it too. */
static bool in_flight(const hs_sched *s, const sreq *q, const probe *p) {
  const uint32_t end = p->cached + HS_KV_BLOCK_TOKENS;
  if (end > sreq_total(q) - 1) return false;
  for (const sreq *r = s->running.head; r; r = r->in_class.next) {
    if (r->n_prompt < end || hs_seq_len(r->seq) >= end) continue;
    if (memcmp(r->toks + p->cached, q->toks + p->cached, HS_KV_BLOCK_TOKENS * sizeof *q->toks))
      continue;
    if (!memcmp(r->toks, q->toks, p->cached * sizeof *q->toks)) return true;
  }
  return false;
}

static bool fits(const hs_sched *s, const probe *p) {
  return s->running.n < s->o.max_running &&
         p->cost + reserved_blocks(s) <= available_blocks(s);
}

static double usage(const team *t) { return (double)(t->served + t->pending) / t->weight; }

/* Starts a waiting request: its sequence, with whatever prefix the cache holds. */
static void admit(hs_sched *s, sreq *r) {
  sched_detach(s, r);
  hs_seq *seq = NULL;
  uint32_t reused = 0;
  const uint32_t total = sreq_total(r);
  int rc = hs_seq_create(s->m, s->n_ctx, &seq);
  if (!rc) rc = hs_seq_attach_prefix(seq, r->toks, total, &reused);
  if (!rc && reused == total) {
    /* all cached, but the last token's logits are wanted: recompute that token only (its block
     * is copied into a private one); if no block is free for the copy, recompute the block */
    if (hs_seq_truncate(seq, total - 1) == 0) {
      reused = total - 1;
    } else {
      hs_seq_destroy(seq);
      seq = NULL;
      rc = hs_seq_create(s->m, s->n_ctx, &seq);
      if (!rc) rc = hs_seq_attach_prefix(seq, r->toks, total - 1, &reused);
    }
  }
  if (rc) {
    if (seq) hs_seq_destroy(seq);
    sched_finish(s, r, rc, HS_FINISH_STOP, hs_engine_last_error());
    return;
  }
  r->seq = seq;
  r->state = RS_RUNNING;
  r->admit_step = s->step;
  r->admit_serial = s->next_admit++;
  uint32_t from_cache = reused < r->n_prompt ? reused : r->n_prompt;
  r->reused = from_cache;
  r->tm->pending += r->n_prompt - from_cache;
  s->mt.prompt_tokens += r->n_prompt;
  s->mt.prompt_tokens_reused += from_cache;
  sched_list_append(&s->running, r, false);
}

void sched_preempt(hs_sched *s, sreq *r) {
  sched_detach(s, r); /* from running; its sequence destroyed */
  r->state = RS_WAITING;
  r->preemptions++;
  s->mt.preemptions++;
  sched_list_insert_by_arrival(&s->waiting[r->r.priority], r, false);
  sched_list_insert_by_arrival(&r->tm->waiting[r->r.priority], r, true);
}

/* Preempts background requests, newest first, until q fits; whether it does. */
static bool make_room(hs_sched *s, sreq *q) {
  probe p = probe_req(s, q);
  while (!fits(s, &p)) {
    sreq *victim = s->running.tail;
    while (victim && victim->r.priority != HS_PRIORITY_BACKGROUND) victim = victim->in_class.prev;
    if (!victim) return false;
    sched_preempt(s, victim);
    p = probe_req(s, q);
  }
  return true;
}

/* The mean prompt length of running requests (0 if none). */
static double running_prompt_mean(const hs_sched *s) {
  if (!s->running.n) return 0;
  double sum = 0;
  for (const sreq *r = s->running.head; r; r = r->in_class.next) sum += r->n_prompt;
  return sum / s->running.n;
}

/* The team's candidate: the best of the first WINDOW requests of its queue for class c that
 * fits, or NULL. */
static sreq *team_candidate(const hs_sched *s, team *t, int c, bool tight) {
  const double mean = running_prompt_mean(s);
  sreq *best = NULL;
  probe bp = {0};
  int k = 0;
  for (sreq *r = t->waiting[c].head; r && k < WINDOW; r = r->in_team.next, k++) {
    probe p = probe_req(s, r);
    if (!fits(s, &p) || in_flight(s, r, &p)) continue;
    bool better;
    if (!best) better = true;
    else if (tight) better = p.cached > bp.cached;
    else if (p.locked != bp.locked) better = p.locked > bp.locked;
    else if (s->running.n) /* similar length to the running ones; else arrival order */
      better = fabs((double)r->n_prompt - mean) < fabs((double)best->n_prompt - mean);
    else better = false;
    if (better) {
      best = r;
      bp = p;
    }
  }
  return best;
}

/* Admits within class c; whether the class is now empty of waiting requests. */
static bool admit_class(hs_sched *s, int c) {
  list *w = &s->waiting[c];
  const uint64_t passed_now = s->step + 1; /* team->passed: passed over in this step */
  while (w->n) {
    if (s->running.n >= s->o.max_running && c != HS_PRIORITY_URGENT) break;
    sreq *head = w->head;
    probe hp0 = probe_req(s, head);
    if (s->step - head->submit_step >= s->o.max_wait_steps && !in_flight(s, head, &hp0)) {
      probe p = hp0;
      if (fits(s, &p) || (c == HS_PRIORITY_URGENT && make_room(s, head))) {
        admit(s, head);
        continue;
      }
      break; /* it waits at the front */
    }
    /* the team with the least usage per weight not yet passed over */
    team *best = NULL;
    for (size_t i = 0; i < s->n_team_buckets; i++)
      for (team *t = s->teams[i]; t; t = t->hnext) {
        if (!t->waiting[c].n || t->passed == passed_now) continue;
        if (!best || usage(t) < usage(best) || (usage(t) == usage(best) && t->id < best->id))
          best = t;
      }
    if (!best) break;
    sreq *first = best->waiting[c].head;
    probe hp = probe_req(s, first);
    const bool tight = !fits(s, &hp);
    sreq *q = team_candidate(s, best, c, tight);
    if (q) {
      admit(s, q);
      continue;
    }
    /* an urgent request that does not fit makes room, unless its prefix is being computed
     * (then it waits for the cache like any other) */
    if (c == HS_PRIORITY_URGENT && tight && !in_flight(s, first, &hp) && make_room(s, first)) {
      admit(s, first);
      continue;
    }
    best->passed = passed_now;
  }
  return w->n == 0;
}

int sched_admit(hs_sched *s) {
  for (int c = 0; c < HS_PRIORITY_COUNT; c++)
    if (!admit_class(s, c)) break; /* strict precedence: lower classes wait */
  return 0;
}
