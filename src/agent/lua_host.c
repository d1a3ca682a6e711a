/* lua_host.c: sandboxed Lua states for agents.
 *
 * A host is one lua_State: an isolated agent's own, or the shared state of a team of light agents.
 * Sandbox: only the base library (without dofile and loadfile; load accepts text chunks only),
 * string, table, math (seeded from the run seed), utf8 and coroutine. No io, os, debug or package;
 * require() finds only the Lua libraries embedded in the program. print writes to the agent log.
 *
 * Limits. The allocator refuses growth past the host's memory cap. Lua answers a refusal with an
 * emergency collection and one retry; a second consecutive refusal means the memory is really gone,
 * and the running agent is marked killed. A count hook charges every 1,000 instructions (fewer for
 * tiny budgets) against the activation's instruction budget; past it the agent is marked killed.
 * A killed agent's hook then fires after every instruction and yields (or, where yielding is not
 * possible, raises an error), so no pcall can keep it alive: the yield climbs out of every
 * coroutine to the scheduler, which ends the agent with a message naming the agent and the limit.
 *
 * Runtime yields. Blocking ctx functions yield a private sentinel value. The sandbox's
 * coroutine.resume and coroutine.wrap recognise it and pass the yield on to their own resumer, then
 * resume the inner coroutine when the scheduler resumes them: blocking calls work from inside an
 * agent's own coroutines, and the agent never sees the sentinel. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/rt.h"
#include "core/embedded.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define HOOK_PERIOD 1000


int lua_raisef(lua_State *L, const char *fmt, ...) {
  char buf[HS_ERRMSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  luaL_where(L, 1);
  lua_pushstring(L, buf);
  lua_concat(L, 2);
  return lua_error(L);
}

static char sentinel_tag;
void *host_sentinel(void) { return &sentinel_tag; }

typedef struct host_extra {
  lua_host *host;
  int64_t budget_left;
  int period;
} host_extra;

lua_host *host_of(lua_State *L) { return (*(host_extra **)lua_getextraspace(L))->host; }
static host_extra *extra_of(lua_State *L) { return *(host_extra **)lua_getextraspace(L); }

/* ---- allocator with a cap ---- */

/* Blocks of up to HS_SLAB_MAX bytes come from the runtime's slab allocator (no header, free lists
 * per size class); larger ones from hs_malloc. Builds with AddressSanitizer use hs_malloc for all,
 * so that the sanitizer sees every Lua block. */
#if defined(__SANITIZE_ADDRESS__)
#define USE_SLAB 0
#else
#define USE_SLAB 1
#endif

static void count_hook(lua_State *L, lua_Debug *ar);

static void *block_realloc(hs_slab *slab, void *ptr, size_t old, size_t nsize) {
  if (!USE_SLAB || !slab) return hs_realloc(ptr, nsize);
  int old_small = ptr && old <= HS_SLAB_MAX, new_small = nsize <= HS_SLAB_MAX;
  if (!old_small && !new_small) return hs_realloc(ptr, nsize);
  if (old_small && new_small && (old - 1) / 16 == (nsize - 1) / 16) return ptr;
  void *p = new_small ? hs_slab_alloc(slab, nsize) : hs_malloc(nsize);
  if (!p) return NULL;
  if (ptr) {
    memcpy(p, ptr, old < nsize ? old : nsize);
    if (old_small)
      hs_slab_free(slab, ptr, old);
    else
      hs_free(ptr);
  }
  return p;
}

static void block_free(hs_slab *slab, void *ptr, size_t old) {
  if (USE_SLAB && slab && old <= HS_SLAB_MAX)
    hs_slab_free(slab, ptr, old);
  else
    hs_free(ptr);
}

static void *host_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lua_host *h = ud;
  hs_slab *slab = h->rt ? h->rt->slab : NULL;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    if (ptr) block_free(slab, ptr, old);
    h->mem_used -= old;
    if (h->rt) h->rt->lua_bytes -= old;
    return NULL;
  }
  if (nsize > old && h->mem_used + (nsize - old) > h->mem_limit) {
    hs_agent *a = h->rt ? h->rt->current : NULL;
    if (++h->refusals >= 2 && a && a->host == h && !a->killed) {
      a->killed = KILL_MEMORY;
      /* the count hook ends it even if no instruction budget installed one */
      if (a->co) lua_sethook(a->co, count_hook, LUA_MASKCOUNT, 1);
    }
    return NULL;
  }
  void *p = block_realloc(slab, ptr, old, nsize);
  if (!p) {
    if (nsize <= old) return ptr; /* shrinking never fails: keep the larger block */
    ++h->refusals;
    return NULL;
  }
  h->refusals = 0;
  h->mem_used = h->mem_used - old + nsize;
  if (h->rt) h->rt->lua_bytes = h->rt->lua_bytes - old + nsize;
  return p;
}

/* ---- instruction budget ---- */

static void count_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  host_extra *x = extra_of(L);
  hs_runtime *rt = x->host->rt;
  hs_agent *a = rt ? rt->current : NULL;
  if (!a || a->host != x->host) return; /* e.g. a finalizer run while another state's agent is active */
  if (!a->killed) {
    x->budget_left -= x->period;
    if (x->budget_left >= 0) return;
    a->killed = KILL_BUDGET;
  }
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  if (lua_isyieldable(L)) {
    lua_yield(L, 0);
    return;
  }
  if (a->killed == KILL_BUDGET)
    lua_raisef(L, "agent %u: instruction budget of %llu per activation exceeded", a->id,
               (unsigned long long)rt->cfg.instruction_budget);
  else
    lua_raisef(L, "agent %u: memory limit of %llu bytes exceeded", a->id,
               (unsigned long long)x->host->mem_limit);
}

void host_begin_activation(hs_runtime *rt, lua_host *h) {
  host_extra *x = extra_of(h->L);
  x->budget_left = (int64_t)rt->cfg.instruction_budget;
  h->refusals = 0;
}

/* ---- sandboxed library functions ---- */

static int resume_loop(lua_State *L, lua_State *co, int narg, int wrap);

static int resume_k(lua_State *L, int status, lua_KContext wrap) {
  (void)status;
  int base = wrap ? 0 : 1;
  lua_State *co = wrap ? lua_tothread(L, lua_upvalueindex(1)) : lua_tothread(L, 1);
  return resume_loop(L, co, lua_gettop(L) - base, (int)wrap);
}

/* Resumes co with the narg values on top of L; passes runtime yields through. */
static int resume_loop(lua_State *L, lua_State *co, int narg, int wrap) {
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
    lua_pop(L, narg);
    if (wrap) return lua_raisef(L, "cannot resume dead coroutine");
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume dead coroutine");
    return 2;
  }
  if (!lua_checkstack(co, narg)) return lua_raisef(L, "too many arguments to resume");
  lua_xmove(L, co, narg);
  int nres = 0;
  int st = lua_resume(co, L, narg, &nres);
  if (st == LUA_YIELD && nres >= 1 && lua_touserdata(co, -nres) == host_sentinel()) {
    lua_pop(co, nres);
    lua_pushlightuserdata(L, host_sentinel());
    return lua_yieldk(L, 1, (lua_KContext)wrap, resume_k);
  }
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      return lua_raisef(L, "too many results to resume");
    }
    if (!wrap) lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + !wrap;
  }
  lua_xmove(co, L, 1); /* the error object */
  if (wrap) {
    if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

static int sandbox_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "coroutine");
  return resume_loop(L, co, lua_gettop(L) - 1, 0);
}

static int wrap_call(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  return resume_loop(L, co, lua_gettop(L), 1);
}

static int sandbox_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, wrap_call, 1);
  return 1;
}

static int sandbox_load(lua_State *L) {
  size_t len;
  const char *chunk = lua_tolstring(L, 1, &len);
  if (!chunk || lua_type(L, 1) != LUA_TSTRING)
    return lua_raisef(L, "load: agents may load only source text given as a string");
  const char *name = luaL_optstring(L, 2, "=(load)");
  int has_env = !lua_isnone(L, 4);
  int st = luaL_loadbufferx(L, chunk, len, name, "t");
  if (st != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (has_env) {
    lua_pushvalue(L, 4);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  }
  return 1;
}

static int sandbox_print(lua_State *L) { return ctx_log_args(L, '\t'); }

static int sandbox_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "hswarm.loaded");
  if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  for (const struct hs_embedded_file *lib = hs_embedded_lua_libs; lib->name; lib++) {
    if (strcmp(lib->name, name) != 0) continue;
    char chunkname[128];
    snprintf(chunkname, sizeof chunkname, "=%s.lua", lib->name);
    if (luaL_loadbufferx(L, lib->text, lib->len, chunkname, "t") != LUA_OK) return lua_error(L);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const struct hs_embedded_file *lib = hs_embedded_lua_libs; lib->name; lib++) {
    luaL_addstring(&b, lib == hs_embedded_lua_libs ? "" : ", ");
    luaL_addstring(&b, lib->name);
  }
  luaL_pushresult(&b);
  return lua_raisef(L,
                    "module '%s' not found: agents can require only the libraries built into "
                    "hswarm (%s)",
                    name, lua_tostring(L, -1));
}

static void open_sandbox(lua_State *L, uint64_t seed_mix) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},
                                  {LUA_COLIBNAME, luaopen_coroutine},
                                  {NULL, NULL}};
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  lua_pushglobaltable(L);
  lua_pushnil(L);
  lua_setfield(L, -2, "dofile");
  lua_pushnil(L);
  lua_setfield(L, -2, "loadfile");
  lua_pushcfunction(L, sandbox_load);
  lua_setfield(L, -2, "load");
  lua_pushcfunction(L, sandbox_print);
  lua_setfield(L, -2, "print");
  lua_pushcfunction(L, sandbox_require);
  lua_setfield(L, -2, "require");
  lua_getfield(L, -1, LUA_COLIBNAME);
  lua_pushcfunction(L, sandbox_resume);
  lua_setfield(L, -2, "resume");
  lua_pushcfunction(L, sandbox_wrap);
  lua_setfield(L, -2, "wrap");
  lua_pop(L, 1);
  lua_getfield(L, -1, LUA_MATHLIBNAME);
  lua_getfield(L, -1, "randomseed");
  lua_pushinteger(L, (lua_Integer)seed_mix);
  lua_call(L, 1, 0);
  lua_pop(L, 2); /* math, globals */
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "hswarm.loaded");
}

static int host_setup(lua_State *L) {
  uint64_t seed = (uint64_t)lua_tointeger(L, 1);
  open_sandbox(L, seed);
  order_open(L);
  ctx_open(L);
  view_open(L);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "hswarm.scripts");
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "hswarm.chunks");
  return 0;
}

int host_create(hs_runtime *rt, uint64_t mem_limit, uint64_t seed_mix, uint32_t team,
                lua_host **out) {
  *out = NULL;
  lua_host *h = hs_calloc(1, sizeof *h);
  host_extra *x = hs_calloc(1, sizeof *x);
  if (!h || !x) {
    hs_free(h);
    hs_free(x);
    return rt_error(rt, HS_ENOMEM, "out of memory creating a Lua state");
  }
  h->rt = rt;
  h->mem_limit = mem_limit;
  h->team = team;
  h->cache_ref = LUA_NOREF;
  x->host = h;
  x->period = rt->cfg.instruction_budget && rt->cfg.instruction_budget < HOOK_PERIOD
                  ? (int)rt->cfg.instruction_budget
                  : HOOK_PERIOD;
  lua_State *L = lua_newstate(host_alloc, h);
  if (!L) {
    hs_free(h);
    hs_free(x);
    return rt_error(rt, HS_ENOMEM, "cannot create a Lua state within %llu bytes",
                    (unsigned long long)mem_limit);
  }
  *(host_extra **)lua_getextraspace(L) = x;
  h->L = L;
  lua_pushcfunction(L, host_setup);
  lua_pushinteger(L, (lua_Integer)seed_mix);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    int rc = rt_error(rt, HS_ENOMEM, "cannot set up a Lua state: %s", lua_tostring(L, -1));
    lua_close(L);
    hs_free(h);
    hs_free(x);
    return rc;
  }
  if (rt->cfg.instruction_budget) lua_sethook(L, count_hook, LUA_MASKCOUNT, x->period);
  *out = h;
  return 0;
}

void host_close(lua_host *h) {
  host_extra *x = extra_of(h->L);
  lua_close(h->L);
  hs_free(x);
  hs_free(h);
}

void host_release(hs_runtime *rt, lua_host *h) {
  (void)rt;
  if (h->agents > 0) h->agents--;
  if (h->agents > 0 || h->team) return; /* team states live until the runtime ends */
  host_close(h);
}
