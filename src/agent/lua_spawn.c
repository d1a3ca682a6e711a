/* lua_spawn.c: creating Lua agents: ctx.spawn and the first agent of a run.
 *
 * Targets. A function becomes a light agent in the caller's own Lua state (the function and its
 * args are shared as they are). A string ending in ".lua" without a newline is a script path,
 * resolved against the spawning script's directory; any other string is Lua source text. A script
 * becomes an isolated agent (its own sandboxed state; args deep-copied) or, with {kind = "light"},
 * a coroutine in its team's shared state, where the script's chunk runs once and its main function
 * is reused by every agent of that script. "native:KIND" spawns a registered native agent.
 *
 * Every allocation in a target state happens inside a protected call on that state's main thread,
 * so running out of a state's memory fails the spawn with a message, never a panic. A script that
 * does not compile still yields an agent, which fails at its first activation with the syntax error:
 * the failure belongs to the child and reaches the parent as its exit notice. */
#include <lauxlib.h>
#include <string.h>

#include "agent/rt.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define MAX_ARGS_DEPTH 32

static uint64_t seed_mix(uint64_t seed, uint64_t salt) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (salt + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* ---- the boot function: runs the script's chunk, finds main, calls main(ctx, args) ---- */

static int boot_k(lua_State *L, int status, lua_KContext kc) {
  (void)status, (void)kc;
  return lua_gettop(L);
}

static int boot(lua_State *L) {
  /* upvalue 1: chunk function, or the compile error message; upvalue 2: cache key or nil.
   * stack: ctx, args */
  if (lua_type(L, lua_upvalueindex(1)) == LUA_TSTRING) {
    lua_pushvalue(L, lua_upvalueindex(1));
    return lua_error(L);
  }
  const char *key = lua_tostring(L, lua_upvalueindex(2));
  int have_main = 0;
  if (key) {
    lua_getfield(L, LUA_REGISTRYINDEX, "hswarm.scripts");
    if (lua_getfield(L, -1, key) == LUA_TFUNCTION) {
      have_main = 1;
      lua_remove(L, -2);
    } else {
      lua_pop(L, 2);
    }
  }
  if (!have_main) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 0, 0);
    lua_getglobal(L, "main");
    if (lua_type(L, -1) != LUA_TFUNCTION)
      return lua_raisef(L, "%s defines no main(ctx, args) function",
                        key ? key : "the script");
    if (key) {
      lua_getfield(L, LUA_REGISTRYINDEX, "hswarm.scripts");
      lua_pushvalue(L, -2);
      lua_setfield(L, -2, key);
      lua_pop(L, 1);
    }
  }
  lua_insert(L, 1);
  lua_callk(L, 2, LUA_MULTRET, 0, boot_k);
  return boot_k(L, LUA_OK, 0);
}

/* ---- copying args between states ---- */

int view_copy(lua_State *from, int idx, lua_State *to); /* below */

static void copy_value(lua_State *from, int idx, lua_State *to, int depth) {
  idx = lua_absindex(from, idx);
  if (depth > MAX_ARGS_DEPTH) lua_raisef(to, "args nested deeper than %d (a cycle?)", MAX_ARGS_DEPTH);
  luaL_checkstack(to, 3, "args");
  if (!lua_checkstack(from, 3)) lua_raisef(to, "args too deep");
  switch (lua_type(from, idx)) {
  case LUA_TNIL:
  case LUA_TNONE: lua_pushnil(to); break;
  case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); break;
  case LUA_TNUMBER:
    if (lua_isinteger(from, idx))
      lua_pushinteger(to, lua_tointeger(from, idx));
    else
      lua_pushnumber(to, lua_tonumber(from, idx));
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(from, idx, &len);
    lua_pushlstring(to, s, len);
    break;
  }
  case LUA_TLIGHTUSERDATA: lua_pushlightuserdata(to, lua_touserdata(from, idx)); break;
  case LUA_TTABLE: {
    /* the sequence part first, in index order, then the other keys: the copy's layout (and so
     * the length operator on tables with holes) does not depend on the source's hash order */
    lua_Integer n = (lua_Integer)lua_rawlen(from, idx);
    lua_createtable(to, n > 0 && n < (1 << 24) ? (int)n : 0, 0);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(from, idx, i);
      copy_value(from, -1, to, depth + 1);
      lua_rawseti(to, -2, i);
      lua_pop(from, 1);
    }
    lua_pushnil(from);
    while (lua_next(from, idx)) {
      if (lua_isinteger(from, -2) && lua_tointeger(from, -2) >= 1 && lua_tointeger(from, -2) <= n) {
        lua_pop(from, 1);
        continue;
      }
      copy_value(from, -2, to, depth + 1);
      copy_value(from, -1, to, depth + 1);
      lua_rawset(to, -3);
      lua_pop(from, 1);
    }
    break;
  }
  default:
    if (view_copy(from, idx, to)) break;
    lua_raisef(to, "args cannot contain a %s (only light agents spawned with a function share "
                   "Lua values)",
               luaL_typename(from, idx));
  }
}

int view_copy(lua_State *from, int idx, lua_State *to) {
  int is_view;
  hs_handle h = view_check_handle(from, idx, &is_view);
  if (!is_view) return 0;
  hs_runtime *rt = host_of(to)->rt;
  if (hs_arena_retain(rt->arena, h) != 0) lua_raisef(to, "args contain a view of a released blob");
  view_push(to, rt, h);
  return 1;
}

/* ---- setting up a child in its host ---- */

typedef struct setup_req {
  hs_agent *child;
  lua_host *host;
  lua_State *from;        /* spawner's thread, or NULL for the first agent */
  int fn_idx;             /* function target in from (same state), or 0 */
  int args_idx;           /* args in from, or 0 */
  const script *scr;      /* script target, or NULL */
  int argc;               /* first agent: argv strings as args */
  const char *const *argv;
  lua_State *co;
  int ref;
} setup_req;

static int setup_child(lua_State *L) {
  setup_req *r = lua_touserdata(L, 1);
  int same_state = r->from && host_of(r->from) == r->host;
  lua_State *co = lua_newthread(L); /* anchored on this stack until registered at the end */
  /* start function */
  if (r->fn_idx) {
    lua_pushvalue(r->from, r->fn_idx);
    lua_xmove(r->from, L, 1);
  } else {
    const script *s = r->scr;
    char chunkname[256];
    snprintf(chunkname, sizeof chunkname, "@%s", s->name);
    int light = r->child->kind == HS_AGENT_LIGHT;
    int cached = 0;
    if (light) {
      lua_getfield(L, LUA_REGISTRYINDEX, "hswarm.scripts");
      cached = lua_getfield(L, -1, s->path) == LUA_TFUNCTION;
      lua_pop(L, 2);
    }
    if (cached) {
      lua_pushboolean(L, 0); /* boot finds main in the cache */
    } else if (light) {
      /* one compiled chunk per team state and script, shared by agents that boot later */
      lua_getfield(L, LUA_REGISTRYINDEX, "hswarm.chunks");
      if (lua_getfield(L, -1, s->path) == LUA_TNIL) {
        lua_pop(L, 1);
        if (luaL_loadbufferx(L, s->source, s->len, chunkname, "t") == LUA_OK) {
          lua_pushvalue(L, -1);
          lua_setfield(L, -3, s->path);
        }
      }
      lua_remove(L, -2);
    } else {
      luaL_loadbufferx(L, s->source, s->len, chunkname, "t"); /* or its error message */
    }
    if (light)
      lua_pushstring(L, s->path);
    else
      lua_pushnil(L);
    lua_pushcclosure(L, boot, 2);
  }
  /* args */
  if (r->argv) {
    lua_createtable(L, r->argc, 0);
    for (int i = 0; i < r->argc; i++) {
      lua_pushstring(L, r->argv[i]);
      lua_rawseti(L, -2, i + 1);
    }
  } else if (!r->args_idx) {
    lua_pushnil(L);
  } else if (same_state) {
    lua_pushvalue(r->from, r->args_idx);
    lua_xmove(r->from, L, 1);
  } else {
    copy_value(r->from, r->args_idx, L, 0);
  }
  ctx_push(L, r->child); /* fn, args, ctx */
  lua_insert(L, -2);     /* fn, ctx, args */
  lua_xmove(L, co, 3);
  r->co = co;
  r->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops the thread: nothing can fail after this */
  return 0;
}

static int team_host(hs_runtime *rt, uint32_t team, lua_host **out) {
  if (rt->teams_cap) {
    for (uint32_t i = team & (rt->teams_cap - 1);; i = (i + 1) & (rt->teams_cap - 1)) {
      if (!rt->teams[i].host) break;
      if (rt->teams[i].team == team) {
        *out = rt->teams[i].host;
        return 0;
      }
    }
  }
  if ((rt->teams_count + 1) * 2 > rt->teams_cap) { /* grow and rehash */
    uint32_t cap = rt->teams_cap ? rt->teams_cap * 2 : 16;
    team_entry *t = hs_calloc(cap, sizeof *t);
    if (!t) return rt_error(rt, HS_ENOMEM, "out of memory creating team %u", team);
    for (uint32_t i = 0; i < rt->teams_cap; i++) {
      if (!rt->teams[i].host) continue;
      uint32_t j = rt->teams[i].team & (cap - 1);
      while (t[j].host) j = (j + 1) & (cap - 1);
      t[j] = rt->teams[i];
    }
    hs_free(rt->teams);
    rt->teams = t;
    rt->teams_cap = cap;
  }
  lua_host *h;
  int rc = host_create(rt, rt->cfg.team_memory, seed_mix(rt->cfg.seed, (1ull << 32) | team), team,
                       &h);
  if (rc) return rc;
  uint32_t j = team & (rt->teams_cap - 1);
  while (rt->teams[j].host) j = (j + 1) & (rt->teams_cap - 1);
  rt->teams[j] = (team_entry){.team = team, .host = h};
  rt->teams_count++;
  *out = h;
  return 0;
}

static int journal_spawn(hs_runtime *rt, hs_agent *a) {
  hs_record rec = {.type = HS_REC_SPAWN};
  rec.u.spawn = (hs_rec_spawn){.step = rt->step, .agent = a->id, .parent = a->parent,
                               .team = a->team, .kind = a->kind,
                               .target_hash = a->script ? a->script->hash : 0};
  return journal(rt, &rec);
}

/* Creates a Lua agent. On failure returns an error (in rt's message) and no agent is left
 * running; the id may have been used by a child that failed at once. */
static int spawn_lua(hs_runtime *rt, hs_agent *parent, setup_req *r, int kind, uint32_t team) {
  uint32_t next_id = rt->nagents + 1;
  lua_host *host = NULL;
  int rc;
  if (r->fn_idx) {
    host = host_of(r->from);
  } else if (kind == HS_AGENT_LIGHT) {
    if ((rc = team_host(rt, team, &host)) != 0) return rc;
  } else {
    rc = host_create(rt, rt->cfg.agent_memory, seed_mix(rt->cfg.seed, next_id), 0, &host);
    if (rc) return rc;
  }
  hs_agent *a;
  rc = rt_new_agent(rt, parent ? parent->id : 0, team, kind, &a);
  if (rc) {
    if (host->agents == 0) { host->agents = 1; host_release(rt, host); }
    return rc;
  }
  a->script = r->scr;
  r->child = a;
  r->host = host;
  host->agents++;
  a->host = host;
  if (parent) {
    parent->lamport++;
    a->lamport = parent->lamport;
  }
  journal_spawn(rt, a);
  lua_State *L = host->L;
  lua_pushcfunction(L, setup_child);
  lua_pushlightuserdata(L, r);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    rc = rt_error(rt, HS_ESCRIPT, "cannot start agent %u: %s", a->id,
                  lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    char msg[HS_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", rt->errmsg);
    rt_finish_agent(rt, a, HS_ESCRIPT, msg, HS_HANDLE_NONE);
    snprintf(rt->errmsg, sizeof rt->errmsg, "%s", msg);
    return rc;
  }
  a->co = r->co;
  a->co_ref = r->ref;
  rt_wake(rt, a);
  return 0;
}

int hs_runtime_spawn_main(hs_runtime *rt, const char *script_path, int argc,
                          const char *const *argv, hs_agent_id *out_id) {
  if (rt->started) return rt_error(rt, HS_EINVAL, "the first agent is already spawned");
  const script *s;
  int rc = script_load(rt, script_path, NULL, &s);
  if (rc) return rc;
  rt->main_script = s;
  rc = journal_open(rt, s, argc, argv);
  if (rc) return rc;
  static const char *const no_args[1] = {NULL};
  setup_req r = {.scr = s, .argc = argc, .argv = argv ? argv : no_args};
  rt->started = 1;
  rc = spawn_lua(rt, NULL, &r, HS_AGENT_ISOLATED, 1);
  if (rc) return rc;
  if (out_id) *out_id = r.child->id;
  return 0;
}

/* ctx.spawn(target, args[, {kind = "isolated"|"light", team = N}]) -> id */
static int ctx_spawn(lua_State *L) {
  hs_runtime *rt = host_of(L)->rt;
  hs_agent *a = rt->current;
  if (!a) return lua_raisef(L, "ctx.spawn: only a running agent can spawn");
  const char *kind_name = NULL;
  lua_Integer team = a->team;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "kind") != LUA_TNIL) kind_name = luaL_checkstring(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 3, "team") != LUA_TNIL) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > UINT32_MAX)
        return lua_raisef(L, "ctx.spawn: team must be a positive integer");
      team = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
  }
  int kind = HS_AGENT_ISOLATED;
  if (kind_name && !strcmp(kind_name, "light"))
    kind = HS_AGENT_LIGHT;
  else if (kind_name && strcmp(kind_name, "isolated") != 0)
    return lua_raisef(L, "ctx.spawn: kind must be \"isolated\" or \"light\" (got \"%s\")",
                      kind_name);
  setup_req r = {.from = L, .args_idx = lua_isnoneornil(L, 2) ? 0 : 2};
  if (lua_type(L, 1) == LUA_TFUNCTION) {
    if (kind_name && kind != HS_AGENT_LIGHT)
      return lua_raisef(L, "ctx.spawn: a function runs only as a light agent in the caller's "
                           "state");
    kind = HS_AGENT_LIGHT;
    r.fn_idx = 1;
  } else {
    size_t len;
    const char *target = luaL_checklstring(L, 1, &len);
    if (!strncmp(target, "native:", 7)) {
      const native_kind *nk = native_find(rt, target + 7);
      if (!nk) return lua_raisef(L, "ctx.spawn: no native agent kind \"%s\"", target + 7);
      size_t alen = 0;
      const char *args = lua_isnoneornil(L, 2) ? NULL : luaL_checklstring(L, 2, &alen);
      uint32_t id;
      if (native_spawn(rt, nk, a, (uint32_t)team, args, alen, &id) != 0)
        return lua_raisef(L, "ctx.spawn: %s", rt->errmsg);
      lua_pushinteger(L, id);
      return 1;
    }
    int is_path = len > 4 && !strcmp(target + len - 4, ".lua") && !memchr(target, '\n', len);
    int rc = is_path ? script_load(rt, target, a->script, &r.scr)
                     : script_from_source(rt, target, len, &r.scr);
    if (rc) return lua_raisef(L, "ctx.spawn: %s", rt->errmsg);
  }
  if (spawn_lua(rt, a, &r, kind, (uint32_t)team) != 0)
    return lua_raisef(L, "ctx.spawn: %s", rt->errmsg);
  lua_pushinteger(L, r.child->id);
  return 1;
}

int spawn_open(lua_State *L) {
  lua_pushcfunction(L, ctx_spawn);
  lua_setfield(L, -2, "spawn");
  return 0;
}
