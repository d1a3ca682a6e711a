/* sched_impl.h: the scheduler's insides, shared by its files (internal).
 *
 *   sched.c   creation, submission, cancellation, finishing requests, teams, metrics
 *   policy.c  admission: class precedence, fair share, starvation, compatibility and
 *             longest-prefix ordering, memory admission, preemption
 *   step.c    one engine step: the batch, the forward pass, sampling, stop conditions
 *
 * Ownership: the scheduler owns every request (sreq) from submission to its on_done callback,
 * with copies of its prompt and stop tokens; a running request owns its hs_seq. Queued requests
 * hold no KV memory. */
#ifndef HS_SCHED_IMPL_H
#define HS_SCHED_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/last_error.h"
#include "hswarm/sched.h"

extern _Thread_local hs_errbuf hs_sched_err;

enum { RS_WAITING = 0, RS_RUNNING = 1 };

typedef struct team team;

/* An intrusive doubly linked list. */
typedef struct link {
  struct sreq *prev, *next;
} link;

typedef struct list {
  struct sreq *head, *tail;
  uint32_t n;
} list;

typedef struct sreq {
  uint64_t id;
  uint64_t arrival;        /* submission serial: FIFO order */
  uint64_t admit_serial;   /* order of (the last) admission: prompt chunks go in this order */
  hs_sched_request r;      /* the caller's request; prompt and stop_tokens point at our copies */
  int32_t *toks;           /* [n_prompt + max_gen] prompt, then generated tokens */
  uint32_t n_prompt, n_gen, max_gen;
  int32_t *stops;
  uint32_t need_blocks;    /* worst-case KV blocks: prompt plus max_gen */
  uint8_t state;           /* RS_* */
  bool cancel;             /* finish CANCELLED at the end of this step */
  hs_seq *seq;             /* running: its sequence; fed = hs_seq_len(seq) */
  uint32_t reused;         /* prompt tokens from the cache at the last admission */
  uint32_t fed_before;     /* step.c: the sequence's length before the step's forward pass */
  uint32_t preemptions;
  uint64_t submit_step, admit_step, first_token_step, deadline_step;
  uint64_t submit_ns;
  team *tm;
  link in_class;           /* waiting: the class list (arrival order); running: running list */
  link in_team;            /* waiting: its team's list for its class (arrival order) */
  struct sreq *hnext;      /* id table chain */
  hs_grammar_state *gs;    /* with a grammar: the output so far accepted (kept across preemption) */
} sreq;

struct team {
  uint32_t id;
  double weight;
  uint64_t served;         /* prompt tokens computed plus tokens generated */
  uint64_t pending;        /* prompt tokens admitted and not yet computed */
  uint64_t passed;         /* step + 1 when admission passed it over in that step */
  list waiting[HS_PRIORITY_COUNT];
  team *hnext;
};

/* Latencies of finished requests of one priority (seconds), for percentiles. */
typedef struct lat_log {
  double *v;
  size_t n, cap;
} lat_log;

struct hs_sched {
  hs_model *m;
  hs_sched_opts o;
  uint32_t n_vocab, n_ctx;
  const hs_tokenizer *tok;
  uint64_t step, next_id, next_arrival, next_admit;
  bool in_step;
  list waiting[HS_PRIORITY_COUNT]; /* by arrival */
  list running;                    /* by admission */
  sreq **ids;                      /* id table */
  size_t n_ids_buckets, n_reqs;
  team **teams;                    /* team table */
  size_t n_team_buckets, n_teams;
  /* per-step scratch, grown as needed */
  hs_batch_item *items;
  sreq **item_req;                 /* request of each item wanting logits */
  float *logits;
  float *sample_scratch;
  float *masked;                   /* [n_vocab] logits with the grammar's disallowed tokens out */
  uint8_t *allowed;                /* [n_vocab] the grammar's mask */
  size_t cap_items, cap_logits;
  /* metrics */
  hs_sched_metrics mt;
  uint64_t step_ns;
  lat_log lat[HS_PRIORITY_COUNT];
};

/* ---- sched.c ---- */
/* Lists: team_link picks the in_team links, else in_class. */
void sched_list_append(list *l, sreq *r, bool team_link);
void sched_list_insert_by_arrival(list *l, sreq *r, bool team_link);
void sched_list_remove(list *l, sreq *r, bool team_link);
/* Ends a request: on_done, metrics, then frees it (it must be in no list). */
void sched_finish(hs_sched *s, sreq *r, int status, hs_finish_reason why, const char *error);
/* Removes a request from wherever it is (waiting lists, or running: its sequence destroyed). */
void sched_detach(hs_sched *s, sreq *r);
/* Blocks for n positions. */
static inline uint32_t sched_blocks(uint32_t n) {
  return (n + HS_KV_BLOCK_TOKENS - 1) / HS_KV_BLOCK_TOKENS;
}
/* Tokens to feed in total: the prompt plus every generated token (the last one fed next). */
static inline uint32_t sreq_total(const sreq *r) { return r->n_prompt + r->n_gen; }

/* ---- policy.c ---- */
/* Admits waiting requests as policy and memory allow (may preempt background ones). */
int sched_admit(hs_sched *s);
/* Moves a running request back to waiting, releasing its KV. */
void sched_preempt(hs_sched *s, sreq *r);

/* ---- step.c ---- */
int sched_run_step(hs_sched *s);

#endif
