/* runtime.c: the runtime object, the agent table, sending and taking messages, ending agents.
 *
 * Agents live in chunks of 4096 structs indexed by id (id 1 is chunk 0, slot 0), so a pointer to
 * an agent never moves and lookup is two loads. Sending stamps the sender's Lamport clock and
 * sequence number and appends the message to the recipient's mailbox: pending until the step
 * boundary in lockstep mode, delivered at once in free-running mode. Taking a message (recv, join,
 * a native callback) advances the taker's clock to max(local, message) + 1 and is what the event
 * log records as a delivery. */
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/rt.h"
#include "core/timeutil.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define MAX_FAILURES_KEPT 100

static _Thread_local hs_errbuf create_err;

void hs_runtime_config_init(hs_runtime_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->mode = HS_MODE_LOCKSTEP;
  cfg->mailbox_capacity = 4096;
  cfg->arena_bytes = 4ull << 30;
  cfg->arena_blobs = 1ull << 28;
  cfg->agent_memory = 64ull << 20;
  cfg->team_memory = 16ull << 30;
  cfg->instruction_budget = 100000000ull;
  cfg->max_agents = 1u << 24;
}

const char *hs_runtime_create_error(void) { return create_err.msg; }

int rt_error(hs_runtime *rt, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rt->errmsg, sizeof rt->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

const char *hs_runtime_last_error(const hs_runtime *rt) { return rt->errmsg; }
hs_arena *hs_runtime_arena(hs_runtime *rt) { return rt->arena; }
uint64_t hs_runtime_now(const hs_runtime *rt) { return rt->step; }

int hs_runtime_create(const hs_runtime_config *cfg_in, hs_runtime **out) {
  *out = NULL;
  hs_runtime_config cfg;
  if (cfg_in)
    cfg = *cfg_in;
  else
    hs_runtime_config_init(&cfg);
  if (cfg.mailbox_capacity == 0 || cfg.max_agents == 0 || cfg.agent_memory < 16384 ||
      cfg.team_memory < 16384 || cfg.mode > HS_MODE_FREE)
    return hs_set_error(&create_err, HS_EINVAL,
                        "invalid runtime configuration (mailbox capacity and agents must be > 0, "
                        "memory caps >= 16 KiB, mode lockstep or free)");
  hs_runtime *rt = hs_calloc(1, sizeof *rt);
  if (!rt) return hs_set_error(&create_err, HS_ENOMEM, "out of memory creating the runtime");
  rt->cfg = cfg;
  rt->cfg.log_path = rt->cfg.replay_path = NULL;
  rt->nchunks = (cfg.max_agents + AGENT_CHUNK - 1) / AGENT_CHUNK;
  rt->chunks = hs_calloc(rt->nchunks, sizeof *rt->chunks);
  rt->next_team = 1;
  int rc = HS_ENOMEM;
  if (!rt->chunks) goto fail;
  if (cfg.log_path && !(rt->log_path = hs_strdup(cfg.log_path))) goto fail;
  if (cfg.replay_path && !(rt->replay_path = hs_strdup(cfg.replay_path))) goto fail;
  rc = hs_arena_create(cfg.arena_bytes, cfg.arena_blobs, &rt->arena);
  if (rc) goto fail;
  rc = hs_slab_create(&rt->slab);
  if (rc) {
    hs_arena_destroy(rt->arena);
    goto fail;
  }
  pthread_mutex_init(&rt->completions_lock, NULL);
  pthread_cond_init(&rt->completions_cond, NULL);
  rc = native_register_builtins(rt);
  if (rc) {
    hs_runtime_destroy(rt);
    return hs_set_error(&create_err, rc, "cannot register built-in native agents: %s",
                        hs_strerror(rc));
  }
  *out = rt;
  return 0;
fail:
  hs_free(rt->chunks);
  hs_free(rt->log_path);
  hs_free(rt->replay_path);
  hs_free(rt);
  return hs_set_error(&create_err, rc, "cannot create the runtime: %s", hs_strerror(rc));
}

static void free_completions(completion *c) {
  while (c) {
    completion *next = c->next;
    hs_free(c->data);
    hs_free(c);
    c = next;
  }
}

void hs_runtime_destroy(hs_runtime *rt) {
  if (!rt) return;
  while (rt->non_destroy) { /* operations running on other threads stop first */
    rt->non_destroy--;
    rt->on_destroy[rt->non_destroy].fn(rt->on_destroy[rt->non_destroy].ud);
  }
  rt->destroying = 1;
  for (uint32_t id = 1; id <= rt->nagents; id++) {
    hs_agent *a = rt_agent(rt, id);
    if (a->state != AS_DONE) rt_finish_agent(rt, a, HS_EINVAL, "runtime destroyed", 0);
    if (a->result) hs_arena_release(rt->arena, a->result);
    hs_free(a->error);
    hs_free(a->op.data);
  }
  journal_close(rt);
  for (uint32_t c = 0; c < rt->nchunks; c++) hs_free(rt->chunks[c]);
  hs_free(rt->chunks);
  for (uint32_t i = 0; i < rt->teams_cap; i++)
    if (rt->teams && rt->teams[i].host) host_close(rt->teams[i].host);
  hs_free(rt->teams);
  if (rt->main_result) hs_arena_release(rt->arena, rt->main_result);
  hs_arena_destroy(rt->arena);
  hs_slab_destroy(rt->slab); /* after every Lua state is closed */
  hs_free(rt->run_now);
  hs_free(rt->run_next);
  hs_free(rt->dirty);
  hs_timerheap_free(&rt->timers);
  for (uint32_t i = 0; i < rt->nop_kinds; i++) hs_free(rt->op_kinds[i].name);
  hs_free(rt->op_kinds);
  for (uint32_t i = 0; i < rt->nnatives; i++) hs_free(rt->natives[i].name);
  hs_free(rt->natives);
  free_completions(rt->completions);
  free_completions(rt->replay_ops);
  hs_free(rt->bound);
  pthread_mutex_destroy(&rt->completions_lock);
  pthread_cond_destroy(&rt->completions_cond);
  scripts_free(rt);
  for (size_t i = 0; i < rt->nfailures; i++) hs_free(rt->failures[i]);
  hs_free(rt->failures);
  hs_free(rt->log_path);
  hs_free(rt->replay_path);
  hs_free(rt);
}

hs_agent *rt_agent(hs_runtime *rt, uint32_t id) {
  if (id == 0 || id > rt->nagents) return NULL;
  uint32_t i = id - 1;
  return &rt->chunks[i >> AGENT_CHUNK_BITS][i & (AGENT_CHUNK - 1)];
}

const char *rt_agent_name(const hs_agent *a) {
  if (a->script) return a->script->name;
  if (a->native) return a->native->name;
  return a->kind == HS_AGENT_LIGHT ? "function" : "agent";
}

int rt_new_agent(hs_runtime *rt, uint32_t parent, uint32_t team, int kind, hs_agent **out) {
  if (rt->nagents >= rt->cfg.max_agents)
    return rt_error(rt, HS_ENOSPC, "agent limit reached: %u agents already spawned",
                    rt->cfg.max_agents);
  uint32_t i = rt->nagents;
  uint32_t c = i >> AGENT_CHUNK_BITS;
  if (!rt->chunks[c]) {
    rt->chunks[c] = hs_calloc(AGENT_CHUNK, sizeof(hs_agent));
    if (!rt->chunks[c]) return rt_error(rt, HS_ENOMEM, "out of memory growing the agent table");
  }
  hs_agent *a = &rt->chunks[c][i & (AGENT_CHUNK - 1)];
  memset(a, 0, sizeof *a);
  a->id = ++rt->nagents;
  a->parent = parent;
  a->team = team;
  a->kind = (uint8_t)kind;
  a->state = AS_NEW;
  a->co_ref = LUA_NOREF;
  rt->stats.spawned++;
  rt->stats.alive++;
  *out = a;
  return 0;
}

static void record_failure(hs_runtime *rt, const hs_agent *a, const char *error) {
  if (rt->nfailures >= MAX_FAILURES_KEPT) return;
  if (!rt->failures) {
    rt->failures = hs_calloc(MAX_FAILURES_KEPT, sizeof *rt->failures);
    if (!rt->failures) return;
  }
  char line[HS_ERRMSG_SIZE + 64];
  snprintf(line, sizeof line, "agent %u (%s): %s", a->id, rt_agent_name(a), error);
  char *copy = hs_strdup(line);
  if (copy) rt->failures[rt->nfailures++] = copy;
}

size_t hs_runtime_failures(const hs_runtime *rt, const char **lines, size_t max) {
  size_t n = rt->nfailures < max ? rt->nfailures : max;
  for (size_t i = 0; i < n; i++) lines[i] = rt->failures[i];
  return n;
}

/* Ends agent a: status 0 (result owned by the call) or a failure with its message. Sends the exit
 * notice to the parent, logs the exit, frees everything the agent held. Idempotent. */
void rt_finish_agent(hs_runtime *rt, hs_agent *a, int status, const char *error, hs_handle result) {
  if (a->state == AS_DONE) {
    if (result) hs_arena_release(rt->arena, result);
    return;
  }
  if (a->state == AS_WAIT_OP && !a->op_done) rt->ops_in_flight--; /* nobody will wait for it */
  a->state = AS_DONE;
  a->exit_status = status;
  if (a->result && a->result != result) hs_arena_release(rt->arena, a->result); /* an earlier ctx.exit */
  a->result = result;
  rt->stats.alive--;
  if (status == 0) {
    rt->stats.exited++;
  } else {
    rt->stats.failed++;
    a->error = hs_strdup(error ? error : hs_strerror(status));
    record_failure(rt, a, error ? error : hs_strerror(status));
  }
  if (a->id == 1) {
    rt->main_exited_ok = status == 0;
    if (status == 0 && result && hs_arena_retain(rt->arena, result) == 0) rt->main_result = result;
  }
  a->lamport++;
  const void *data = NULL;
  size_t len = 0;
  if (result) hs_arena_read(rt->arena, result, &data, &len);
  hs_record rec = {.type = HS_REC_EXIT};
  rec.u.exit = (hs_rec_exit){.step = rt->step, .agent = a->id, .status = status,
                             .lamport = a->lamport, .len = (uint32_t)len,
                             .data_hash = hs_fnv1a64(data, len),
                             .message = a->error ? a->error : "",
                             .message_len = a->error ? (uint32_t)strlen(a->error) : 0};
  journal(rt, &rec);
  hs_agent *parent = rt_agent(rt, a->parent);
  if (parent && parent->state != AS_DONE && !rt->destroying) {
    hs_handle notice = HS_HANDLE_NONE;
    if (result && hs_arena_retain(rt->arena, result) == 0) notice = result;
    if (rt_send(rt, a, parent->id, notice, HS_MSG_EXIT, status) != 0 && notice)
      hs_arena_release(rt->arena, notice);
  }
  /* free what the agent held */
  hs_mailbox_clear(&a->mb, rt->arena);
  for (uint32_t i = 0; i < a->nowned; i++) hs_arena_release(rt->arena, a->owned[i]);
  hs_free(a->owned);
  a->owned = NULL;
  a->nowned = a->capowned = 0;
  if (a->host) {
    if (a->co_ref != LUA_NOREF) luaL_unref(a->host->L, LUA_REGISTRYINDEX, a->co_ref);
    a->co_ref = LUA_NOREF;
    a->co = NULL;
    host_release(rt, a->host);
    a->host = NULL;
  }
  if (a->native && a->native->vt.on_destroy) a->native->vt.on_destroy(a->native_state);
  a->native_state = NULL;
  hs_free(a->native_args); /* a native agent that never ran still holds its args */
  a->native_args = NULL;
}

static void mark_dirty(hs_runtime *rt, hs_agent *a) {
  if (a->dirty) return;
  if (rt->ndirty == rt->capdirty) {
    uint32_t cap = rt->capdirty ? rt->capdirty * 2 : 256;
    uint32_t *d = hs_realloc(rt->dirty, (size_t)cap * sizeof *d);
    if (!d) return; /* the message stays pending; delivered when another mark succeeds */
    rt->dirty = d;
    rt->capdirty = cap;
  }
  rt->dirty[rt->ndirty++] = a->id;
  a->dirty = 1;
}

int rt_send(hs_runtime *rt, hs_agent *from, uint32_t to, hs_handle h, uint32_t flags,
            int32_t status) {
  hs_agent *dst = rt_agent(rt, to);
  if (!dst)
    return rt_error(rt, HS_ENOENT, "agent %u sent to agent %u, which does not exist", from->id,
                    to);
  if (dst->state == AS_DONE) {
    /* Like a message to an ended process: dropped, counted as sent. */
    from->lamport++;
    from->seq++;
    rt->stats.messages_sent++;
    if (h) hs_arena_release(rt->arena, h);
    return 0;
  }
  hs_msg m = {.data = h, .lamport = from->lamport + 1, .from = from->id, .seq = from->seq + 1,
              .flags = flags, .status = status};
  if (rt->latency) m.sent_ns = hs_now_ns();
  int free_mode = rt->cfg.mode == HS_MODE_FREE;
  int rc = hs_mailbox_push(&dst->mb, &m, rt->cfg.mailbox_capacity, free_mode);
  if (rc == HS_EFULL)
    return rt_error(rt, HS_EFULL,
                    "agent %u sent to agent %u, whose mailbox is full (%u messages)", from->id, to,
                    rt->cfg.mailbox_capacity);
  if (rc) return rt_error(rt, rc, "agent %u sent to agent %u: out of memory", from->id, to);
  from->lamport++;
  from->seq++;
  rt->stats.messages_sent++;
  if (free_mode) {
    if (dst->state == AS_WAIT_MSG || dst->state == AS_WAIT_JOIN) rt_wake(rt, dst);
  } else {
    mark_dirty(rt, dst);
  }
  return 0;
}

/* Lockstep boundary: deliver every recipient's pending messages in order and wake waiters. */
void rt_deliver_pending(hs_runtime *rt);
void rt_deliver_pending(hs_runtime *rt) {
  for (uint32_t i = 0; i < rt->ndirty; i++) {
    hs_agent *a = rt_agent(rt, rt->dirty[i]);
    a->dirty = 0;
    if (a->state == AS_DONE) continue;
    if (hs_mailbox_deliver_pending(&a->mb) &&
        (a->state == AS_WAIT_MSG || a->state == AS_WAIT_JOIN))
      rt_wake(rt, a);
  }
  rt->ndirty = 0;
}

static int log_take(hs_runtime *rt, hs_agent *a, const hs_msg *m) {
  rt->stats.messages_delivered++;
  if (rt->latency && m->sent_ns) rt->latency(hs_now_ns() - m->sent_ns, rt->latency_ud);
  uint64_t clock = a->lamport > m->lamport ? a->lamport : m->lamport;
  a->lamport = clock + 1;
  if (!rt->log && !rt->replay) return 0;
  const void *data = NULL;
  size_t len = 0;
  if (m->data) hs_arena_read(rt->arena, m->data, &data, &len);
  hs_record rec = {.type = HS_REC_DELIVER};
  rec.u.deliver = (hs_rec_deliver){.step = rt->step, .to = a->id, .from = m->from,
                                   .lamport = m->lamport, .seq = m->seq, .flags = m->flags,
                                   .len = (uint32_t)len, .data_hash = hs_fnv1a64(data, len)};
  return journal(rt, &rec);
}

int rt_take(hs_runtime *rt, hs_agent *a, hs_msg *out) {
  if (hs_mailbox_take(&a->mb, out) != 0) return -1;
  if (out->flags & HS_MSG_EXIT) {
    hs_agent *child = rt_agent(rt, out->from);
    if (child) child->notice_taken = 1;
  }
  log_take(rt, a, out);
  return 0;
}

int rt_take_exit(hs_runtime *rt, hs_agent *a, uint32_t child, hs_msg *out) {
  if (hs_mailbox_take_exit(&a->mb, child, out) != 0) return -1;
  hs_agent *c = rt_agent(rt, child);
  if (c) c->notice_taken = 1; /* a second join answers from the child's record */
  log_take(rt, a, out);
  return 0;
}

int rt_own_handle(hs_runtime *rt, hs_agent *a, hs_handle h) {
  if (a->nowned == a->capowned) {
    uint32_t cap = a->capowned ? a->capowned * 2 : 4;
    hs_handle *o = hs_realloc(a->owned, (size_t)cap * sizeof *o);
    if (!o) return rt_error(rt, HS_ENOMEM, "agent %u: out of memory", a->id);
    a->owned = o;
    a->capowned = cap;
  }
  a->owned[a->nowned++] = h;
  return 0;
}

int rt_release_owned(hs_runtime *rt, hs_agent *a, hs_handle h) {
  for (uint32_t i = a->nowned; i-- > 0;) {
    if (a->owned[i] != h) continue;
    a->owned[i] = a->owned[--a->nowned];
    return hs_arena_release(rt->arena, h);
  }
  return rt_error(rt, HS_ESTALE, "agent %u does not hold handle 0x%016llx", a->id,
                  (unsigned long long)h);
}

int rt_log_text(hs_runtime *rt, hs_agent *a, const char *text, size_t len) {
  if (!rt->cfg.quiet)
    fprintf(stderr, "[%llu] agent %u: %.*s\n", (unsigned long long)rt->step, a->id, (int)len,
            text);
  hs_record rec = {.type = HS_REC_LOG};
  rec.u.log = (hs_rec_log){.step = rt->step, .agent = a->id, .text = text,
                           .text_len = (uint32_t)len};
  return journal(rt, &rec);
}

void hs_runtime_get_stats(const hs_runtime *rt, hs_runtime_stats *out) {
  *out = rt->stats;
  out->step = rt->step;
  out->lua_bytes = rt->lua_bytes;
  hs_arena_stats as;
  hs_arena_get_stats(rt->arena, &as);
  out->arena_bytes = as.live_bytes;
}

void hs_runtime_set_progress(hs_runtime *rt, hs_progress_fn fn, void *ud) {
  rt->progress = fn;
  rt->progress_ud = ud;
}

void hs_runtime_set_latency_probe(hs_runtime *rt, hs_latency_fn fn, void *ud) {
  rt->latency = fn;
  rt->latency_ud = ud;
}

long hs_runtime_main_result(hs_runtime *rt, char *buf, size_t size) {
  if (!rt->main_exited_ok) return -1;
  const void *data = NULL;
  size_t len = 0;
  if (rt->main_result) hs_arena_read(rt->arena, rt->main_result, &data, &len);
  if (size) {
    size_t n = len < size - 1 ? len : size - 1;
    if (n) memcpy(buf, data, n);
    buf[n] = 0;
  }
  return (long)len;
}

void hs_runtime_request_stop(hs_runtime *rt) { atomic_store(&rt->stop_requested, 1); }

hs_agent_status hs_runtime_agent_status(const hs_runtime *rt, hs_agent_id id) {
  hs_agent *a = rt_agent((hs_runtime *)rt, id);
  if (!a) return HS_AGENT_UNKNOWN;
  if (a->state != AS_DONE) return HS_AGENT_ALIVE;
  return a->exit_status == 0 ? HS_AGENT_EXITED : HS_AGENT_FAILED;
}

int hs_runtime_was_stopped(const hs_runtime *rt) { return rt->stopped; }
