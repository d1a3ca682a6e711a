/* native.c: native agents, written in C as callbacks (include/hswarm/runtime.h).
 *
 * A native agent never blocks: at each activation the runtime calls on_start (the first time) and
 * then on_message for every message delivered to it, in order; inside those callbacks it may send
 * and exit. It runs in the same step order as Lua agents and is logged the same way. The built-in
 * kind "echo" sends every message back to its sender (the payload handle itself, not a copy) and
 * exits when it receives the text "exit"; benchmarks and tests use it as a zero-cost peer. */
#include <stdio.h>
#include <string.h>

#include "agent/rt.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

int hs_runtime_register_native(hs_runtime *rt, const char *kind, const hs_native_agent *vt,
                               void *kind_ud) {
  if (!kind || !*kind || !vt || !vt->on_message)
    return rt_error(rt, HS_EINVAL, "register_native: a kind name and on_message are required");
  if (native_find(rt, kind))
    return rt_error(rt, HS_EINVAL, "register_native: kind \"%s\" already registered", kind);
  native_kind *k = hs_realloc(rt->natives, (rt->nnatives + 1) * sizeof *k);
  if (!k) return rt_error(rt, HS_ENOMEM, "register_native: out of memory");
  rt->natives = k;
  char *name = hs_strdup(kind);
  if (!name) return rt_error(rt, HS_ENOMEM, "register_native: out of memory");
  k[rt->nnatives++] = (native_kind){.name = name, .vt = *vt, .kind_ud = kind_ud};
  return 0;
}

const native_kind *native_find(hs_runtime *rt, const char *name) {
  for (uint32_t i = 0; i < rt->nnatives; i++)
    if (!strcmp(rt->natives[i].name, name)) return &rt->natives[i];
  return NULL;
}

int native_spawn(hs_runtime *rt, const native_kind *k, hs_agent *parent, uint32_t team,
                 const void *args, size_t len, uint32_t *out_id) {
  if (len > UINT32_MAX) return rt_error(rt, HS_EINVAL, "native agent args too long");
  char *copy = NULL;
  if (len) {
    copy = hs_malloc(len);
    if (!copy) return rt_error(rt, HS_ENOMEM, "out of memory spawning a native agent");
    memcpy(copy, args, len);
  }
  hs_agent *a;
  int rc = rt_new_agent(rt, parent ? parent->id : 0, team, HS_AGENT_NATIVE, &a);
  if (rc) {
    hs_free(copy);
    return rc;
  }
  a->native = k;
  a->native_args = copy;
  a->native_args_len = (uint32_t)len;
  if (parent) {
    parent->lamport++;
    a->lamport = parent->lamport;
  }
  hs_record rec = {.type = HS_REC_SPAWN};
  rec.u.spawn = (hs_rec_spawn){.step = rt->step, .agent = a->id, .parent = a->parent,
                               .team = team, .kind = HS_AGENT_NATIVE,
                               .target_hash = hs_fnv1a64(k->name, strlen(k->name))};
  journal(rt, &rec);
  rt_wake(rt, a);
  *out_id = a->id;
  return 0;
}

int hs_runtime_spawn_native(hs_runtime *rt, const char *kind, hs_agent_id parent,
                            const void *args, size_t len, hs_agent_id *out_id) {
  const native_kind *k = native_find(rt, kind);
  if (!k) return rt_error(rt, HS_ENOENT, "no native agent kind \"%s\"", kind);
  hs_agent *p = rt_agent(rt, parent);
  if (!rt->started && rt->log_path)
    return rt_error(rt, HS_EINVAL, "an event log needs a Lua main script: start the run with "
                                   "hs_runtime_spawn_main");
  rt->started = 1;
  return native_spawn(rt, k, p, p ? p->team : 1, args, len, out_id);
}

static void end_native(hs_runtime *rt, hs_agent *a, int rc) {
  hs_free(a->native_args);
  a->native_args = NULL;
  if (rc) {
    char msg[128];
    snprintf(msg, sizeof msg, "native agent %s failed: %s", a->native->name, hs_strerror(rc));
    rt_finish_agent(rt, a, rc, msg, HS_HANDLE_NONE);
    return;
  }
  hs_handle result = a->result;
  a->result = HS_HANDLE_NONE;
  rt_finish_agent(rt, a, 0, NULL, result);
}

void native_run(hs_runtime *rt, hs_agent *a) {
  rt->current = a;
  int rc = 0;
  if (a->state == AS_NEW) {
    a->state = AS_RUNNING;
    if (a->native->vt.on_start)
      rc = a->native->vt.on_start(rt, a->id, a->native_args, a->native_args_len,
                                  a->native->kind_ud, &a->native_state);
    hs_free(a->native_args);
    a->native_args = NULL;
  }
  a->state = AS_RUNNING;
  hs_msg m;
  while (rc == 0 && !a->exiting && rt_take(rt, a, &m) == 0) {
    hs_native_msg nm = {.from = m.from, .lamport = m.lamport, .seq = m.seq,
                        .is_exit = (m.flags & HS_MSG_EXIT) != 0, .data = m.data};
    rc = a->native->vt.on_message(rt, a->id, &nm, a->native_state);
    if (m.data) hs_arena_release(rt->arena, m.data);
  }
  rt->current = NULL;
  if (rc || a->exiting) {
    end_native(rt, a, rc);
    return;
  }
  a->state = AS_WAIT_MSG;
}

static hs_agent *calling_agent(hs_runtime *rt, hs_agent_id self) {
  hs_agent *a = rt_agent(rt, self);
  return a && rt->current == a && a->native ? a : NULL;
}

int hs_native_send_handle(hs_runtime *rt, hs_agent_id self, hs_agent_id to, hs_handle h) {
  hs_agent *a = calling_agent(rt, self);
  if (!a) return rt_error(rt, HS_EPERM, "hs_native_send: agent %u is not the running native agent", self);
  int rc = hs_arena_retain(rt->arena, h);
  if (rc) return rt_error(rt, rc, "hs_native_send: stale handle 0x%016llx", (unsigned long long)h);
  rc = rt_send(rt, a, to, h, 0, 0);
  if (rc) hs_arena_release(rt->arena, h);
  return rc;
}

int hs_native_send(hs_runtime *rt, hs_agent_id self, hs_agent_id to, const void *data,
                   size_t len) {
  hs_agent *a = calling_agent(rt, self);
  if (!a) return rt_error(rt, HS_EPERM, "hs_native_send: agent %u is not the running native agent", self);
  hs_handle h;
  int rc = hs_arena_put(rt->arena, data, len, &h);
  if (rc) return rt_error(rt, rc, "%s", hs_arena_last_error());
  rc = rt_send(rt, a, to, h, 0, 0);
  if (rc) hs_arena_release(rt->arena, h);
  return rc;
}

int hs_native_exit(hs_runtime *rt, hs_agent_id self, const void *result, size_t len) {
  hs_agent *a = calling_agent(rt, self);
  if (!a) return rt_error(rt, HS_EPERM, "hs_native_exit: agent %u is not the running native agent", self);
  hs_handle h = HS_HANDLE_NONE;
  if (result) {
    int rc = hs_arena_put(rt->arena, result, len, &h);
    if (rc) return rt_error(rt, rc, "%s", hs_arena_last_error());
  }
  if (a->result) hs_arena_release(rt->arena, a->result);
  a->result = h;
  a->exiting = 1;
  return 0;
}

/* ---- built-in kinds ---- */

static int echo_message(hs_runtime *rt, hs_agent_id self, const hs_native_msg *msg, void *state) {
  (void)state;
  if (msg->is_exit) return 0;
  const void *p = NULL;
  size_t len = 0;
  if (msg->data) hs_arena_read(hs_runtime_arena(rt), msg->data, &p, &len);
  if (len == 4 && !memcmp(p, "exit", 4)) return hs_native_exit(rt, self, NULL, 0);
  if (!msg->data) return hs_native_send(rt, self, msg->from, "", 0);
  return hs_native_send_handle(rt, self, msg->from, msg->data);
}

int native_register_builtins(hs_runtime *rt) {
  static const hs_native_agent echo = {.on_message = echo_message};
  return hs_runtime_register_native(rt, "echo", &echo, NULL);
}
