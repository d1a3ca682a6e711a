/* loop.c: the event loop on the virtual clock.
 *
 * One call of hs_runtime_step is one step. It begins with the step boundary, where everything
 * that happened since the last step becomes visible, in a fixed order:
 *   1. lockstep mode: each recipient's pending messages are delivered, sorted by (sender's Lamport
 *      time, sender id, sequence); recipients waiting in recv or join are woken;
 *   2. timers due at this step fire in (deadline, agent, serial) order: sleeps complete, receive
 *      timeouts expire;
 *   3. completed operations are delivered in (agent, operation) order.
 * Then every woken agent runs until it blocks: in ascending id order in lockstep mode, in the order
 * it was woken in free-running mode. An agent woken while the step runs (a spawn, a plain yield, a
 * message in free-running mode) runs at the next step. When nothing can run, the clock jumps to the
 * next timer, or waits for an operation still in flight, or the run ends.
 *
 * Running a Lua agent is one lua_resume of its coroutine. Blocking ctx functions record what the
 * agent waits for in its state and yield a sentinel; the scheduler only resumes, and the ctx
 * function's continuation re-checks its condition (see lua_ctx.c). */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/rt.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

void rt_deliver_pending(hs_runtime *rt); /* runtime.c */
int value_to_handle(lua_State *L, int idx, hs_runtime *rt, hs_handle *out); /* lua_view.c */

static int push_id(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t id) {
  if (*n == *cap) {
    uint32_t c = *cap ? *cap * 2 : 1024;
    uint32_t *p = hs_realloc(*v, (size_t)c * sizeof *p);
    if (!p) return HS_ENOMEM;
    *v = p;
    *cap = c;
  }
  (*v)[(*n)++] = id;
  return 0;
}

void rt_wake(hs_runtime *rt, hs_agent *a) {
  if (a->queued || a->state == AS_DONE) return;
  if (push_id(&rt->run_next, &rt->nrun_next, &rt->caprun_next, a->id) == 0) a->queued = 1;
}

static void insertion_sort(uint32_t *ids, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    uint32_t v = ids[i], j = i;
    while (j > 0 && ids[j - 1] > v) {
      ids[j] = ids[j - 1];
      j--;
    }
    ids[j] = v;
  }
}

static int cmp_id(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Ascending sort of agent ids: insertion sort when short, qsort up to 16K ids, else two radix
 * passes of 16 bits (whose 256 KiB of counters pay off only on long lists). */
static void sort_ids(uint32_t *ids, uint32_t n) {
  if (n < 64) {
    insertion_sort(ids, n);
    return;
  }
  uint32_t *tmp = n < 16384 ? NULL : hs_malloc((size_t)n * sizeof *tmp);
  if (!tmp) {
    qsort(ids, n, sizeof *ids, cmp_id);
    return;
  }
  static _Thread_local uint32_t count[65536];
  uint32_t *src = ids, *dst = tmp;
  for (int shift = 0; shift < 32; shift += 16) {
    memset(count, 0, sizeof count);
    for (uint32_t i = 0; i < n; i++) count[(src[i] >> shift) & 0xffff]++;
    uint32_t sum = 0;
    for (uint32_t k = 0; k < 65536; k++) {
      uint32_t c = count[k];
      count[k] = sum;
      sum += c;
    }
    for (uint32_t i = 0; i < n; i++) dst[count[(src[i] >> shift) & 0xffff]++] = src[i];
    uint32_t *t = src;
    src = dst;
    dst = t;
  }
  hs_free(tmp); /* after two passes the sorted ids are back in ids */
}

/* ---- timers and operations ---- */

int rt_set_timer(hs_runtime *rt, hs_agent *a, uint64_t steps) {
  a->timer_serial++;
  hs_timer t = {.deadline = rt->step + steps, .agent = a->id, .serial = a->timer_serial};
  if (hs_timerheap_push(&rt->timers, t) != 0)
    return rt_error(rt, HS_ENOMEM, "agent %u: out of memory setting a timer", a->id);
  return 0;
}

static void complete_op(hs_runtime *rt, hs_agent *a, int32_t status, const void *data,
                        uint32_t len) {
  hs_free(a->op.data);
  a->op.data = NULL;
  a->op.status = status;
  a->op.len = len;
  if (len) {
    a->op.data = hs_malloc(len);
    if (a->op.data)
      memcpy(a->op.data, data, len);
    else
      a->op.status = HS_ENOMEM, a->op.len = 0;
  }
  a->op_done = 1;
  rt->ops_in_flight--;
  hs_record rec = {.type = HS_REC_OP};
  rec.u.op = (hs_rec_op){.step = rt->step, .agent = a->id, .op_seq = a->op_seq,
                         .status = a->op.status, .kind = a->op_name,
                         .kind_len = (uint32_t)strlen(a->op_name), .data = a->op.data,
                         .data_len = a->op.len};
  journal(rt, &rec);
  rt_wake(rt, a);
}

static void fire_timers(hs_runtime *rt) {
  hs_timer t;
  while (hs_timerheap_pop_due(&rt->timers, rt->step, &t)) {
    hs_agent *a = rt_agent(rt, t.agent);
    if (!a || a->state == AS_DONE || a->timer_serial != t.serial) continue;
    if (a->state == AS_WAIT_MSG) {
      a->timed_out = 1;
      rt_wake(rt, a);
    } else if (a->state == AS_WAIT_OP && !a->op_done && !strcmp(a->op_name, "timer")) {
      complete_op(rt, a, 0, NULL, 0);
    }
  }
}

static int cmp_token(const void *pa, const void *pb) {
  const completion *a = *(const completion *const *)pa, *b = *(const completion *const *)pb;
  return a->token < b->token ? -1 : a->token > b->token;
}

static void deliver_completion(hs_runtime *rt, completion *c) {
  hs_agent *a = rt_agent(rt, (uint32_t)(c->token >> 32));
  if (a && a->state == AS_WAIT_OP && !a->op_done && a->op_seq == (uint32_t)c->token)
    complete_op(rt, a, c->status, c->data, c->len);
}

static void drain_completions(hs_runtime *rt) {
  if (rt->replay) { /* a replay feeds the logged results of external operations */
    completion **pp = &rt->replay_ops;
    while (*pp) {
      completion *c = *pp;
      if (c->step > rt->step) {
        pp = &c->next;
        continue;
      }
      *pp = c->next;
      deliver_completion(rt, c);
      hs_free(c->data);
      hs_free(c);
    }
    return;
  }
  pthread_mutex_lock(&rt->completions_lock);
  completion *list = rt->completions;
  rt->completions = NULL;
  pthread_mutex_unlock(&rt->completions_lock);
  size_t n = 0;
  for (completion *c = list; c; c = c->next) n++;
  if (n == 0) return;
  completion **v = hs_malloc(n * sizeof *v);
  size_t i = 0;
  for (completion *c = list; c; c = c->next) {
    if (v) v[i++] = c;
  }
  if (v) {
    qsort(v, n, sizeof *v, cmp_token);
    for (i = 0; i < n; i++) deliver_completion(rt, v[i]);
    hs_free(v);
  } else {
    for (completion *c = list; c; c = c->next) deliver_completion(rt, c);
  }
  while (list) {
    completion *next = list->next;
    hs_free(list->data);
    hs_free(list);
    list = next;
  }
}

int hs_runtime_register_op(hs_runtime *rt, const char *kind, int flags, hs_op_start_fn start,
                           void *ud) {
  if (!kind || !*kind || !start || !strcmp(kind, "timer"))
    return rt_error(rt, HS_EINVAL, "register_op: a kind name (not \"timer\") and a start "
                                   "function are required");
  for (uint32_t i = 0; i < rt->nop_kinds; i++)
    if (!strcmp(rt->op_kinds[i].name, kind))
      return rt_error(rt, HS_EINVAL, "register_op: kind \"%s\" already registered", kind);
  op_kind *k = hs_realloc(rt->op_kinds, (rt->nop_kinds + 1) * sizeof *k);
  if (!k) return rt_error(rt, HS_ENOMEM, "register_op: out of memory");
  rt->op_kinds = k;
  char *name = hs_strdup(kind);
  if (!name) return rt_error(rt, HS_ENOMEM, "register_op: out of memory");
  k[rt->nop_kinds++] = (op_kind){.name = name, .flags = flags, .start = start, .ud = ud};
  return 0;
}

int hs_runtime_on_destroy(hs_runtime *rt, void (*fn)(void *ud), void *ud) {
  if (!fn) return rt_error(rt, HS_EINVAL, "on_destroy: a function is required");
  if (rt->non_destroy == sizeof rt->on_destroy / sizeof rt->on_destroy[0])
    return rt_error(rt, HS_ELIMIT, "on_destroy: at most 16 functions");
  rt->on_destroy[rt->non_destroy].fn = fn;
  rt->on_destroy[rt->non_destroy++].ud = ud;
  return 0;
}

/* Remembers a step-bound operation's token (lockstep): the next boundary waits for it. */
static int bound_push(hs_runtime *rt, hs_op_token token) {
  if (rt->nbound == rt->capbound) {
    uint32_t cap = rt->capbound ? rt->capbound * 2 : 64;
    hs_op_token *b = hs_realloc(rt->bound, cap * sizeof *b);
    if (!b) return HS_ENOMEM;
    rt->bound = b;
    rt->capbound = cap;
  }
  rt->bound[rt->nbound++] = token;
  return 0;
}

/* 1 when every remembered step-bound token has been posted. Called with completions_lock. */
static int bound_all_posted(hs_runtime *rt) {
  for (uint32_t i = 0; i < rt->nbound; i++) {
    const completion *c = rt->completions;
    while (c && c->token != rt->bound[i]) c = c->next;
    if (!c) return 0;
  }
  return 1;
}

static int replay_only_start(hs_runtime *rt, hs_op_token token, hs_agent_id agent,
                             const void *request, size_t len, void *ud) {
  (void)rt, (void)token, (void)agent, (void)request, (void)len, (void)ud;
  return HS_EPERM; /* never called: replays take results from the log */
}

int rt_op_start(hs_runtime *rt, hs_agent *a, const char *kind, const void *req, size_t len) {
  op_kind *k = NULL;
  for (uint32_t i = 0; i < rt->nop_kinds && !k; i++)
    if (!strcmp(rt->op_kinds[i].name, kind)) k = &rt->op_kinds[i];
  if (!k && rt->replay && journal_logged_op(rt, a->id, a->op_seq + 1, kind)) {
    /* the logged run had this kind: a replay feeds its results from the log */
    if (hs_runtime_register_op(rt, kind, HS_OP_EXTERNAL, replay_only_start, NULL) != 0)
      return HS_ENOMEM;
    k = &rt->op_kinds[rt->nop_kinds - 1];
  }
  if (!k) return rt_error(rt, HS_ENOENT, "no operation kind \"%s\" is registered", kind);
  a->op_seq++;
  a->op_done = 0;
  a->op_name = k->name;
  a->op_external = (uint8_t)(k->flags & HS_OP_EXTERNAL);
  a->state = AS_WAIT_OP;
  rt->ops_in_flight++;
  if (rt->replay) return journal_replay_op(rt, a, a->op_seq);
  hs_op_token token = ((uint64_t)a->id << 32) | a->op_seq;
  int bound = (k->flags & HS_OP_STEP_BOUND) && rt->cfg.mode == HS_MODE_LOCKSTEP;
  if (bound && bound_push(rt, token) != 0) {
    rt->ops_in_flight--;
    a->state = AS_RUNNING;
    return rt_error(rt, HS_ENOMEM, "operation \"%s\": out of memory", kind);
  }
  int rc = k->start(rt, token, a->id, req, len, k->ud);
  if (rc && bound) rt->nbound--; /* a failed start may still have posted its error: harmless */
  if (rc) {
    rt->ops_in_flight--;
    a->state = AS_RUNNING;
    return rt_error(rt, rc, "operation \"%s\" failed to start: %s", kind, hs_strerror(rc));
  }
  return 0;
}

int hs_runtime_op_complete(hs_runtime *rt, hs_op_token token, int status, const void *data,
                           size_t len) {
  if ((token >> 32) == 0 || (uint32_t)token == 0 || len > UINT32_MAX) return HS_ENOENT;
  completion *c = hs_calloc(1, sizeof *c);
  if (!c) return HS_ENOMEM;
  if (len) {
    c->data = hs_malloc(len);
    if (!c->data) {
      hs_free(c);
      return HS_ENOMEM;
    }
    memcpy(c->data, data, len);
  }
  c->token = token;
  c->status = status;
  c->len = (uint32_t)len;
  pthread_mutex_lock(&rt->completions_lock);
  c->next = rt->completions;
  rt->completions = c;
  pthread_cond_signal(&rt->completions_cond);
  pthread_mutex_unlock(&rt->completions_lock);
  return 0;
}

/* ---- running one agent ---- */

static void lua_agent_ended(hs_runtime *rt, hs_agent *a, int status, int nres) {
  lua_State *co = a->co;
  if (status == LUA_OK) {
    hs_handle result = HS_HANDLE_NONE;
    if (nres > 0 && value_to_handle(co, -nres, rt, &result) != 0) {
      rt_finish_agent(rt, a, HS_ESCRIPT, rt->errmsg, HS_HANDLE_NONE);
      return;
    }
    rt_finish_agent(rt, a, 0, NULL, result);
    return;
  }
  char msg[HS_ERRMSG_SIZE];
  int code = HS_ESCRIPT;
  if (status == LUA_ERRMEM || a->killed == KILL_MEMORY) {
    code = HS_ELIMIT;
    snprintf(msg, sizeof msg, "agent %u: memory limit of %llu bytes exceeded", a->id,
             (unsigned long long)a->host->mem_limit);
  } else if (a->killed == KILL_BUDGET) {
    code = HS_ELIMIT;
    snprintf(msg, sizeof msg, "agent %u: instruction budget of %llu per activation exceeded",
             a->id, (unsigned long long)rt->cfg.instruction_budget);
  } else {
    const char *err = lua_tostring(co, -1);
    if (!err) err = luaL_typename(co, -1);
    snprintf(msg, sizeof msg, "%s", err);
  }
  rt_finish_agent(rt, a, code, msg, HS_HANDLE_NONE);
}

void rt_run_agent(hs_runtime *rt, hs_agent *a) {
  if (a->state == AS_DONE) return;
  rt->stats.activations++;
  if (a->native) {
    native_run(rt, a);
    return;
  }
  int nargs = a->state == AS_NEW ? lua_gettop(a->co) - 1 : 0;
  if (a->state == AS_NEW || a->state == AS_READY) a->state = AS_RUNNING;
  rt->current = a;
  host_begin_activation(rt, a->host);
  int nres = 0;
  int status = lua_resume(a->co, NULL, nargs, &nres);
  rt->current = NULL;
  if (a->killed) { /* the count hook yielded or raised out of a killed agent */
    if (status == LUA_YIELD) lua_pop(a->co, nres);
    lua_agent_ended(rt, a, LUA_ERRRUN, 0);
    return;
  }
  if (status == LUA_YIELD) {
    lua_pop(a->co, nres);
    if (a->exiting) {
      hs_handle result = a->result;
      a->result = HS_HANDLE_NONE;
      rt_finish_agent(rt, a, 0, NULL, result);
    } else if (a->state == AS_RUNNING) { /* a plain coroutine.yield(): run again next step */
      a->state = AS_READY;
      rt_wake(rt, a);
    }
    return;
  }
  lua_agent_ended(rt, a, status, nres);
}

/* ---- steps ---- */

/* Waits on completions_cond (held) for at most 50 ms. hs_runtime_request_stop may come from a
 * signal handler, which cannot signal a condition variable: waits wake to look at the flag. */
static void wait_50ms(hs_runtime *rt) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += 50 * 1000 * 1000;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&rt->completions_cond, &rt->completions_lock, &until);
}

/* Lockstep: waits until every step-bound operation started before this boundary has posted its
 * result (or a stop is requested), so that all of them are delivered now. */
static void wait_for_bound(hs_runtime *rt) {
  if (rt->nbound == 0) return;
  pthread_mutex_lock(&rt->completions_lock);
  while (!bound_all_posted(rt) && !atomic_load(&rt->stop_requested)) {
    wait_50ms(rt);
  }
  pthread_mutex_unlock(&rt->completions_lock);
  rt->nbound = 0;
}

static void boundary(hs_runtime *rt) {
  if (rt->cfg.mode == HS_MODE_LOCKSTEP) rt_deliver_pending(rt);
  fire_timers(rt);
  wait_for_bound(rt);
  drain_completions(rt);
}

static int finish_run(hs_runtime *rt) {
  rt->finished = 1;
  rt->stats.blocked = rt->stats.alive;
  hs_record rec = {.type = HS_REC_END};
  rec.u.end = (hs_rec_end){.step = rt->step, .agents = rt->stats.spawned,
                           .messages = rt->stats.messages_delivered, .failed = rt->stats.failed};
  journal(rt, &rec);
  if (rt->progress) rt->progress(&rt->stats, rt->progress_ud);
  return rt->diverged ? HS_EDIVERGE : 0;
}

/* Waits for an operation to complete, or a stop request. */
static int wait_for_completion(hs_runtime *rt) {
  pthread_mutex_lock(&rt->completions_lock);
  while (!rt->completions && !atomic_load(&rt->stop_requested)) {
    wait_50ms(rt);
  }
  pthread_mutex_unlock(&rt->completions_lock);
  return 0;
}

void hs_runtime_set_engine(hs_runtime *rt, hs_engine_step_fn step, void *ud) {
  rt->engine_step = step;
  rt->engine_ud = ud;
}

/* One step of the engine, when there is one and this is not a replay: 1 busy, 0 idle, < 0 error. */
static int engine_step(hs_runtime *rt) {
  if (!rt->engine_step || rt->replay) return 0;
  int rc = rt->engine_step(rt->engine_ud);
  if (rc < 0) rt_error(rt, rc, "the engine failed: %s", hs_strerror(rc));
  return rc;
}

int hs_runtime_step(hs_runtime *rt) {
  if (!rt->started)
    return rt_error(rt, HS_EINVAL, "no agent to run: spawn the main script first");
  if (rt->finished) return 0;
  if (rt->diverged) return HS_EDIVERGE;
  if (atomic_load(&rt->stop_requested)) {
    rt->stopped = 1;
    return finish_run(rt);
  }
  boundary(rt);
  while (rt->nrun_next == 0) {
    uint64_t next = hs_timerheap_next(&rt->timers);
    int ops_pending = rt->ops_in_flight > 0;
    if (next != UINT64_MAX && next > rt->step) {
      if (rt->cfg.max_steps && next >= rt->cfg.max_steps) {
        rt->step = rt->cfg.max_steps;
        rt->stopped = 1;
        return finish_run(rt);
      }
      rt->step = next; /* nothing happens until then: jump */
      boundary(rt);
    } else if (ops_pending && !rt->replay && rt->engine_step) {
      /* nothing runs until the engine delivers: its step is this step */
      int busy = engine_step(rt);
      if (busy < 0) return busy;
      if (busy == 0) wait_for_completion(rt); /* operations of other kinds */
      if (busy > 0) {
        rt->step++;
        if (rt->cfg.max_steps && rt->step >= rt->cfg.max_steps) {
          rt->stopped = 1;
          return finish_run(rt);
        }
      }
      boundary(rt);
    } else if (ops_pending && !rt->replay) {
      wait_for_completion(rt);
      if (atomic_load(&rt->stop_requested)) {
        rt->stopped = 1;
        return finish_run(rt);
      }
      drain_completions(rt);
    } else if (ops_pending && rt->replay && rt->replay_ops) {
      uint64_t s = UINT64_MAX;
      for (completion *c = rt->replay_ops; c; c = c->next) s = c->step < s ? c->step : s;
      rt->step = s > rt->step ? s : rt->step;
      boundary(rt);
    } else {
      return finish_run(rt);
    }
    if (rt->diverged) return HS_EDIVERGE;
  }
  uint32_t *t = rt->run_now;
  rt->run_now = rt->run_next;
  rt->nrun_now = rt->nrun_next;
  uint32_t cap = rt->caprun_now;
  rt->caprun_now = rt->caprun_next;
  rt->run_next = t;
  rt->caprun_next = cap;
  rt->nrun_next = 0;
  if (rt->cfg.mode == HS_MODE_LOCKSTEP) sort_ids(rt->run_now, rt->nrun_now);
  for (uint32_t i = 0; i < rt->nrun_now && !rt->diverged; i++) {
    hs_agent *a = rt_agent(rt, rt->run_now[i]);
    a->queued = 0;
    rt_run_agent(rt, a);
  }
  if (rt->diverged) return HS_EDIVERGE;
  if (rt->engine_step && rt->ops_in_flight) {
    int rc = engine_step(rt); /* the requests made in this step start now */
    if (rc < 0) return rc;
  }
  rt->step++;
  if (rt->progress) rt->progress(&rt->stats, rt->progress_ud);
  if (rt->cfg.max_steps && rt->step >= rt->cfg.max_steps) {
    rt->stopped = 1;
    return finish_run(rt);
  }
  return 1;
}

int hs_runtime_run(hs_runtime *rt) {
  int rc;
  while ((rc = hs_runtime_step(rt)) > 0) {
  }
  return rc;
}
