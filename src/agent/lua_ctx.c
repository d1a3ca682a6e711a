/* lua_ctx.c: the ctx table every Lua agent receives.
 *
 * Each agent's ctx is a small table with its own fields (id, team, parent, args) whose metatable
 * points at one shared table of functions per Lua state. The functions act for the agent running
 * now (rt->current): ctx.send, not ctx:send.
 *
 * Blocking calls (recv, join, sleep, call, yield) record what the agent waits for in its state and
 * yield the runtime's sentinel with a continuation. The scheduler resumes the agent when something
 * it may be waiting for happened; the continuation checks its condition again and either returns or
 * waits again. Nothing is passed through lua_resume, so the same code works from inside the agent's
 * own coroutines (see lua_host.c). */
#include <lauxlib.h>
#include <stdatomic.h>
#include <string.h>

#include "agent/rt.h"
#include "hswarm/error.h"

static const char ctx_mt_key = 0; /* the ctx metatable's registry key */

int value_to_handle(lua_State *L, int idx, hs_runtime *rt, hs_handle *out); /* lua_view.c */

static hs_runtime *rt_of(lua_State *L) { return host_of(L)->rt; }

/* The running agent, which must live in this Lua state: a finalizer of one state that happens to
 * run while an agent of another state is active must not act for that agent. */
static hs_agent *me(lua_State *L) {
  hs_agent *a = rt_of(L)->current;
  if (!a || a->host != host_of(L))
    lua_raisef(L, "ctx functions can only be called by a running agent");
  return a;
}

int ctx_yield(lua_State *L, lua_KFunction k) {
  lua_pushlightuserdata(L, host_sentinel());
  return lua_yieldk(L, 1, 0, k);
}

/* Blocking needs a yield: refuse before any state changes where Lua cannot yield (inside a
 * metamethod, a table.sort comparator, a string.gsub callback...). */
static int check_can_block(lua_State *L, const char *fn) {
  if (!lua_isyieldable(L))
    return lua_raisef(L, "%s cannot wait here: the call is inside a metamethod or a C function "
                         "(such as a table.sort comparator) that cannot yield",
                      fn);
  return 0;
}

hs_agent *ctx_me(lua_State *L) { return me(L); }
int ctx_check_can_block(lua_State *L, const char *fn) { return check_can_block(L, fn); }

static int raise_rt(lua_State *L, const char *fn) {
  return lua_raisef(L, "%s: %s", fn, rt_of(L)->errmsg);
}

/* ---- messages ---- */

/* ctx.send(to, value) or ctx.send({to1, to2, ...}, value): the value becomes one handle (a string
 * is written to the arena once) and every recipient gets a reference to it. With a list, the
 * messages before a failing recipient are sent; the error names the recipient. */
static int ctx_send(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  int list = lua_type(L, 1) == LUA_TTABLE && !lua_getmetatable(L, 1);
  if (!list && !lua_isinteger(L, 1))
    return lua_raisef(L, "ctx.send: recipient must be an agent id or a list of ids (got %s; "
                         "note ctx.send, not ctx:send)",
                      luaL_typename(L, 1));
  lua_Integer n = list ? (lua_Integer)lua_rawlen(L, 1) : 1;
  hs_handle h;
  if (value_to_handle(L, 2, rt, &h) != 0) return raise_rt(L, "ctx.send");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_Integer to;
    if (list) {
      int isnum;
      lua_rawgeti(L, 1, i);
      to = lua_tointegerx(L, -1, &isnum);
      lua_pop(L, 1);
      if (!isnum) to = 0;
    } else {
      to = lua_tointeger(L, 1);
    }
    int rc = to > 0 && to <= UINT32_MAX ? 0 : HS_ENOENT;
    if (rc) rt_error(rt, HS_ENOENT, "agent %u sent to agent %lld, which does not exist", a->id,
                     (long long)to);
    /* each message holds its own reference; the last one takes over ours */
    int retained = 0;
    if (!rc && h && i < n) {
      rc = hs_arena_retain(rt->arena, h);
      if (rc) rt_error(rt, rc, "cannot share handle 0x%016llx once more", (unsigned long long)h);
      retained = rc == 0;
    }
    if (!rc) rc = rt_send(rt, a, (uint32_t)to, h, 0, 0);
    if (rc) {
      if (retained) hs_arena_release(rt->arena, h); /* this message's reference */
      if (h) hs_arena_release(rt->arena, h);        /* ours */
      return raise_rt(L, "ctx.send");
    }
  }
  if (n == 0 && h) hs_arena_release(rt->arena, h);
  return 0;
}

/* Pushes the message taken from a's mailbox as {from, clock, seq, data[, exit, ok, error]}.
 * The table and the view are allocated before the message is taken, so that running out of Lua
 * memory leaves the message in the mailbox. */
static int push_message(lua_State *L, hs_runtime *rt, hs_agent *a) {
  const hs_msg *front = hs_mailbox_front(&a->mb);
  if (!front) return 0;
  int is_exit = (front->flags & HS_MSG_EXIT) != 0;
  int has_data = front->data != HS_HANDLE_NONE;
  lua_createtable(L, 0, is_exit ? 7 : 4);
  if (has_data) view_push(L, rt, HS_HANDLE_NONE);
  hs_msg m;
  rt_take(rt, a, &m);
  if (has_data) {
    view_set_handle(L, -1, m.data);
    lua_setfield(L, -2, "data");
  }
  lua_pushinteger(L, m.from);
  lua_setfield(L, -2, "from");
  lua_pushinteger(L, (lua_Integer)m.lamport);
  lua_setfield(L, -2, "clock");
  lua_pushinteger(L, m.seq);
  lua_setfield(L, -2, "seq");
  if (is_exit) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "exit");
    lua_pushboolean(L, m.status == 0);
    lua_setfield(L, -2, "ok");
    hs_agent *child = rt_agent(rt, m.from);
    if (m.status != 0 && child && child->error) {
      lua_pushstring(L, child->error);
      lua_setfield(L, -2, "error");
    }
  }
  return 1;
}

static int recv_k(lua_State *L, int status, lua_KContext kc) {
  (void)status, (void)kc;
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  if (push_message(L, rt, a)) {
    a->timer_serial++; /* cancels a pending timeout */
    a->state = AS_RUNNING;
    return 1;
  }
  if (a->timed_out) {
    a->timed_out = 0;
    a->state = AS_RUNNING;
    lua_pushnil(L);
    return 1;
  }
  a->state = AS_WAIT_MSG;
  return ctx_yield(L, recv_k);
}

static int ctx_recv(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  lua_Integer timeout = -1;
  if (!lua_isnoneornil(L, 1)) {
    timeout = luaL_checkinteger(L, 1);
    if (timeout < 0) return lua_raisef(L, "ctx.recv: timeout must be >= 0 steps");
  }
  lua_settop(L, 0);
  if (push_message(L, rt, a)) return 1;
  if (timeout == 0) {
    lua_pushnil(L);
    return 1;
  }
  check_can_block(L, "ctx.recv");
  a->timed_out = 0;
  if (timeout > 0 && rt_set_timer(rt, a, (uint64_t)timeout) != 0) return raise_rt(L, "ctx.recv");
  a->state = AS_WAIT_MSG;
  return ctx_yield(L, recv_k);
}

/* ---- children ---- */

static int push_join_result(lua_State *L, hs_runtime *rt, hs_agent *child, const hs_msg *m) {
  int ok = m ? m->status == 0 : child->exit_status == 0;
  if (!ok) {
    if (m && m->data) hs_arena_release(rt->arena, m->data);
    lua_pushnil(L);
    lua_pushstring(L, child->error ? child->error : "agent failed");
    return 2;
  }
  hs_handle h = m ? m->data : child->result;
  if (!m && h && hs_arena_retain(rt->arena, h) != 0) h = HS_HANDLE_NONE;
  if (h)
    view_push(L, rt, h);
  else
    lua_pushnil(L);
  return 1;
}

static int try_join(lua_State *L, hs_runtime *rt, hs_agent *a, hs_agent *child) {
  hs_msg m;
  if (rt_take_exit(rt, a, child->id, &m) == 0) return push_join_result(L, rt, child, &m);
  if (child->state == AS_DONE && child->notice_taken) return push_join_result(L, rt, child, NULL);
  return -1;
}

static int join_k(lua_State *L, int status, lua_KContext kc) {
  (void)status, (void)kc;
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  hs_agent *child = rt_agent(rt, a->join_target);
  int n = try_join(L, rt, a, child);
  if (n >= 0) {
    a->state = AS_RUNNING;
    return n;
  }
  a->state = AS_WAIT_JOIN;
  return ctx_yield(L, join_k);
}

static int ctx_join(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  lua_Integer id = luaL_checkinteger(L, 1);
  hs_agent *child = id > 0 && id <= UINT32_MAX ? rt_agent(rt, (uint32_t)id) : NULL;
  if (!child || child->parent != a->id)
    return lua_raisef(L, "ctx.join: agent %d is not a child of agent %u", (int)id, a->id);
  lua_settop(L, 0);
  int n = try_join(L, rt, a, child);
  if (n >= 0) return n;
  check_can_block(L, "ctx.join");
  a->join_target = child->id;
  a->state = AS_WAIT_JOIN;
  return ctx_yield(L, join_k);
}

static int ctx_exit(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  check_can_block(L, "ctx.exit");
  hs_handle h;
  if (value_to_handle(L, 1, rt, &h) != 0) return raise_rt(L, "ctx.exit");
  if (a->result) hs_arena_release(rt->arena, a->result);
  a->result = h;
  a->exiting = 1;
  return ctx_yield(L, NULL);
}

/* ---- time and operations ---- */

static int ctx_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)rt_of(L)->step);
  return 1;
}

static int ctx_clock(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)me(L)->lamport);
  return 1;
}

static int yield_k(lua_State *L, int status, lua_KContext kc) {
  (void)L, (void)status, (void)kc;
  return 0;
}

static int ctx_yield_fn(lua_State *L) {
  me(L);
  check_can_block(L, "ctx.yield");
  return ctx_yield(L, yield_k);
}

static int op_k(lua_State *L, int status, lua_KContext kc) {
  (void)status;
  hs_agent *a = me(L);
  if (!a->op_done) return ctx_yield(L, op_k);
  a->op_done = 0;
  a->state = AS_RUNNING;
  if (kc) return 0; /* sleep returns nothing */
  if (a->op.status == 0) {
    lua_pushlstring(L, a->op.data ? a->op.data : "", a->op.len);
    return 1;
  }
  lua_pushnil(L);
  if (a->op.len)
    lua_pushlstring(L, a->op.data, a->op.len);
  else
    lua_pushstring(L, hs_strerror(a->op.status));
  return 2;
}

static int ctx_sleep(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  lua_Integer steps = luaL_checkinteger(L, 1);
  if (steps < 0) return lua_raisef(L, "ctx.sleep: steps must be >= 0");
  if (steps == 0) return 0;
  check_can_block(L, "ctx.sleep");
  lua_settop(L, 0);
  a->op_seq++;
  a->op_done = 0;
  a->op_name = "timer";
  a->op_external = 0;
  if (rt_set_timer(rt, a, (uint64_t)steps) != 0) return raise_rt(L, "ctx.sleep");
  rt->ops_in_flight++;
  a->state = AS_WAIT_OP;
  lua_pushlightuserdata(L, host_sentinel());
  return lua_yieldk(L, 1, 1, op_k);
}

static int ctx_call(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  const char *kind = luaL_checkstring(L, 1);
  size_t len = 0;
  const char *req = luaL_optlstring(L, 2, "", &len);
  check_can_block(L, "ctx.call");
  if (rt_op_start(rt, a, kind, req, len) != 0) return raise_rt(L, "ctx.call");
  lua_settop(L, 0);
  lua_pushlightuserdata(L, host_sentinel());
  return lua_yieldk(L, 1, 0, op_k);
}

/* Joins the call's arguments with sep (tostring rules) and writes them to the running agent's log:
 * ctx.log joins with spaces, print with tabs. */
int ctx_log_args(lua_State *L, char sep) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    order_tolstring(L, i, NULL); /* objects print as "table: #12", not as addresses */
    luaL_addvalue(&b);
    if (i < n) luaL_addchar(&b, sep);
  }
  luaL_pushresult(&b);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (rt_log_text(rt, a, s, len) < 0) return raise_rt(L, "ctx.log");
  return 0;
}

static int ctx_log(lua_State *L) { return ctx_log_args(L, ' '); }

/* ---- shared memory ---- */

static int mem_write(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  int t = lua_type(L, 1);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    return lua_raisef(L, "ctx.memory.write: expected a string (got %s)", luaL_typename(L, 1));
  hs_handle h;
  if (value_to_handle(L, 1, rt, &h) != 0) return raise_rt(L, "ctx.memory.write");
  if (rt_own_handle(rt, a, h) != 0) {
    hs_arena_release(rt->arena, h);
    return raise_rt(L, "ctx.memory.write");
  }
  lua_pushlightuserdata(L, (void *)(uintptr_t)h);
  return 1;
}

static int mem_read(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  int is_view;
  hs_handle h = view_check_handle(L, 1, &is_view);
  if (lua_type(L, 1) != LUA_TLIGHTUSERDATA && !is_view)
    return lua_raisef(L, "ctx.memory.read: expected a handle (got %s)", luaL_typename(L, 1));
  if (hs_arena_retain(rt->arena, h) != 0)
    return lua_raisef(L, "ctx.memory.read: stale or invalid handle 0x%016llx",
                      (unsigned long long)h);
  const void *p;
  size_t len;
  int rc = hs_arena_read(rt->arena, h, &p, &len);
  if (rc) {
    hs_arena_release(rt->arena, h);
    return lua_raisef(L, "ctx.memory.read: %s", hs_arena_last_error());
  }
  return view_push(L, rt, h);
}

static int mem_release(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  hs_handle h = view_check_handle(L, 1, NULL);
  if (rt_release_owned(rt, a, h) != 0) return raise_rt(L, "ctx.memory.release");
  return 0;
}

static int mem_retain(lua_State *L) {
  hs_runtime *rt = rt_of(L);
  hs_agent *a = me(L);
  hs_handle h = view_check_handle(L, 1, NULL);
  if (hs_arena_retain(rt->arena, h) != 0)
    return lua_raisef(L, "ctx.memory.retain: stale or invalid handle 0x%016llx",
                      (unsigned long long)h);
  if (rt_own_handle(rt, a, h) != 0) {
    hs_arena_release(rt->arena, h);
    return raise_rt(L, "ctx.memory.retain");
  }
  lua_pushlightuserdata(L, (void *)(uintptr_t)h);
  return 1;
}

static int mem_fence(lua_State *L) {
  (void)L;
  atomic_thread_fence(memory_order_seq_cst);
  return 0;
}

void ctx_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"send", ctx_send}, {"recv", ctx_recv},   {"join", ctx_join},   {"exit", ctx_exit},
      {"now", ctx_now},   {"clock", ctx_clock}, {"sleep", ctx_sleep}, {"call", ctx_call},
      {"log", ctx_log},   {"yield", ctx_yield_fn}, {NULL, NULL}};
  static const luaL_Reg mem[] = {{"write", mem_write},     {"read", mem_read},
                                 {"release", mem_release}, {"retain", mem_retain},
                                 {"fence", mem_fence},     {NULL, NULL}};
  lua_newtable(L);
  luaL_newlib(L, fns);
  luaL_newlib(L, mem);
  lua_setfield(L, -2, "memory");
  spawn_open(L); /* adds ctx.spawn to the table on top */
  llm_open(L);   /* and ctx.llm */
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_mt_key);
}

/* Pushes a ctx for agent a; the agent's args must be on top of the stack and stay there. */
int ctx_push(lua_State *L, hs_agent *a) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, a->id);
  lua_setfield(L, -2, "id");
  lua_pushinteger(L, a->team);
  lua_setfield(L, -2, "team");
  lua_pushinteger(L, a->parent);
  lua_setfield(L, -2, "parent");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "args");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_mt_key);
  lua_setmetatable(L, -2);
  return 1;
}
