/* lua_view.c: zero-copy views of arena blobs for Lua agents, and Lua values <-> arena handles.
 *
 * A view is a small userdata holding one arena reference (released when the view is collected).
 * #v is the blob's length; v:sub(i, j) copies only that slice; v:find(s, init, true) searches the
 * blob in place; v:byte(i), tostring(v) (a full copy), v:handle() (the handle, to forward it) and
 * v .. s also work. Handles themselves are light userdata in Lua: cheap to store and pass, and
 * distinct from numbers and strings. */
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#include "agent/rt.h"
#include "hswarm/error.h"

#define VIEW_MT "hswarm.view"

typedef struct view {
  hs_handle h;
} view;

/* The metatable is found in the registry by this address, not by name: no string lookups on the
 * path of every message. */
static const char view_mt_key = 0;

static view *test_view(lua_State *L, int idx) {
  view *v = lua_touserdata(L, idx);
  if (!v || lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &view_mt_key);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? v : NULL;
}

static view *check_view(lua_State *L, int idx) {
  view *v = test_view(L, idx);
  if (!v) luaL_typeerror(L, idx, "view");
  return v;
}

static hs_arena *arena_of(lua_State *L) { return host_of(L)->rt->arena; }

int view_push(lua_State *L, hs_runtime *rt, hs_handle h) {
  view *v = lua_newuserdatauv(L, sizeof *v, 0);
  v->h = h;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &view_mt_key);
  lua_setmetatable(L, -2);
  (void)rt;
  return 1;
}

void view_set_handle(lua_State *L, int idx, hs_handle h) {
  view *v = lua_touserdata(L, idx);
  v->h = h;
}

static const char *view_bytes(lua_State *L, int idx, size_t *len) {
  view *v = check_view(L, idx);
  const void *p = NULL;
  *len = 0;
  if (v->h == HS_HANDLE_NONE || hs_arena_read(arena_of(L), v->h, &p, len) != 0) {
    lua_raisef(L, "view of a released blob");
    return NULL;
  }
  return p ? p : "";
}

static int view_gc(lua_State *L) {
  view *v = check_view(L, 1);
  if (v->h != HS_HANDLE_NONE) {
    lua_host *host = host_of(L);
    if (host->rt) hs_arena_release(host->rt->arena, v->h);
    v->h = HS_HANDLE_NONE;
  }
  return 0;
}

static int view_len(lua_State *L) {
  size_t len;
  view_bytes(L, 1, &len);
  lua_pushinteger(L, (lua_Integer)len);
  return 1;
}

static int view_tostring(lua_State *L) {
  size_t len;
  const char *p = view_bytes(L, 1, &len);
  lua_pushlstring(L, p, len);
  return 1;
}

/* Lua's string.sub index rules. */
static size_t posrelat(lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  if (pos == 0) return 1;
  if (pos < -(lua_Integer)len) return 1;
  return len + (size_t)pos + 1;
}

static int view_sub(lua_State *L) {
  size_t len;
  const char *p = view_bytes(L, 1, &len);
  size_t i = posrelat(luaL_optinteger(L, 2, 1), len);
  lua_Integer jj = luaL_optinteger(L, 3, -1);
  size_t j;
  if (jj >= 0)
    j = (size_t)jj;
  else if (jj < -(lua_Integer)len) /* no negation of jj: it may be math.mininteger */
    j = 0;
  else
    j = len - (size_t)(-(jj + 1));
  if (j > len) j = len;
  if (i > j)
    lua_pushliteral(L, "");
  else
    lua_pushlstring(L, p + i - 1, j - i + 1);
  return 1;
}

static int view_byte(lua_State *L) {
  size_t len;
  const unsigned char *p = (const unsigned char *)view_bytes(L, 1, &len);
  size_t i = posrelat(luaL_optinteger(L, 2, 1), len);
  if (i < 1 || i > len) return 0;
  lua_pushinteger(L, p[i - 1]);
  return 1;
}

static int view_find(lua_State *L) {
  size_t len, nlen;
  const char *p = view_bytes(L, 1, &len);
  const char *needle = luaL_checklstring(L, 2, &nlen);
  size_t init = posrelat(luaL_optinteger(L, 3, 1), len);
  if (!lua_toboolean(L, 4)) { /* patterns: fall back to string.find on a copy */
    int base = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, LUA_STRLIBNAME);
    lua_getfield(L, -1, "find");
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    lua_pushlstring(L, p, len);
    lua_pushvalue(L, 2);
    lua_pushinteger(L, (lua_Integer)init);
    lua_call(L, 3, LUA_MULTRET);
    return lua_gettop(L) - base;
  }
  if (init > len + 1) {
    lua_pushnil(L);
    return 1;
  }
  const char *hit = memmem(p + init - 1, len - (init - 1), needle, nlen);
  if (!hit) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)(hit - p) + 1);
  lua_pushinteger(L, (lua_Integer)(hit - p + (ptrdiff_t)nlen));
  return 2;
}

static int view_handle(lua_State *L) {
  view *v = check_view(L, 1);
  lua_pushlightuserdata(L, (void *)(uintptr_t)v->h);
  return 1;
}

static int view_concat(lua_State *L) {
  for (int i = 1; i <= 2; i++) {
    if (test_view(L, i)) {
      size_t len;
      const char *p = view_bytes(L, i, &len);
      lua_pushlstring(L, p, len);
      lua_replace(L, i);
    }
  }
  lua_concat(L, 2);
  return 1;
}

static int view_eq(lua_State *L) {
  size_t la, lb;
  const char *a = view_bytes(L, 1, &la), *b = view_bytes(L, 2, &lb);
  lua_pushboolean(L, la == lb && memcmp(a, b, la) == 0);
  return 1;
}

void view_open(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", view_gc},       {"__len", view_len},
                                  {"__tostring", view_tostring}, {"__concat", view_concat},
                                  {"__eq", view_eq},       {NULL, NULL}};
  static const luaL_Reg methods[] = {{"sub", view_sub},       {"byte", view_byte},
                                     {"find", view_find},     {"handle", view_handle},
                                     {"len", view_len},       {"tostring", view_tostring},
                                     {NULL, NULL}};
  luaL_newmetatable(L, VIEW_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "view");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &view_mt_key);
}

hs_handle view_check_handle(lua_State *L, int idx, int *is_view) {
  if (is_view) *is_view = 0;
  if (lua_type(L, idx) == LUA_TLIGHTUSERDATA) return (hs_handle)(uintptr_t)lua_touserdata(L, idx);
  view *v = test_view(L, idx);
  if (v) {
    if (is_view) *is_view = 1;
    return v->h;
  }
  return HS_HANDLE_NONE;
}

/* Turns the Lua value at idx into a handle holding one new reference for the caller:
 * strings, numbers and booleans are written to the arena; handles and views are retained;
 * nil gives HS_HANDLE_NONE. Other types are HS_EINVAL. Errors go to rt's message. */
int value_to_handle(lua_State *L, int idx, hs_runtime *rt, hs_handle *out);
int value_to_handle(lua_State *L, int idx, hs_runtime *rt, hs_handle *out) {
  *out = HS_HANDLE_NONE;
  int t = lua_type(L, idx);
  if (t == LUA_TNIL || t == LUA_TNONE) return 0;
  if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN) {
    size_t len;
    const char *s;
    char buf[64];
    if (t == LUA_TSTRING) {
      s = lua_tolstring(L, idx, &len);
    } else if (t == LUA_TBOOLEAN) {
      s = lua_toboolean(L, idx) ? "true" : "false";
      len = strlen(s);
    } else {
      if (lua_isinteger(L, idx))
        len = (size_t)snprintf(buf, sizeof buf, LUA_INTEGER_FMT, lua_tointeger(L, idx));
      else
        len = (size_t)snprintf(buf, sizeof buf, LUA_NUMBER_FMT, lua_tonumber(L, idx));
      s = buf;
    }
    int rc = hs_arena_put(rt->arena, s, len, out);
    if (rc) return rt_error(rt, rc, "%s", hs_arena_last_error());
    return 0;
  }
  int is_view;
  hs_handle h = view_check_handle(L, idx, &is_view);
  if (h != HS_HANDLE_NONE || is_view || t == LUA_TLIGHTUSERDATA) {
    int rc = hs_arena_retain(rt->arena, h);
    if (rc) return rt_error(rt, rc, "stale handle 0x%016llx", (unsigned long long)h);
    *out = h;
    return 0;
  }
  return rt_error(rt, HS_EINVAL,
                  "a %s cannot be sent: use a string, number, boolean, handle or view",
                  luaL_typename(L, idx));
}
