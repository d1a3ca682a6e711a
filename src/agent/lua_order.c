/* lua_order.c: deterministic iteration and naming in the sandbox.
 *
 * Lockstep runs must repeat bit for bit, but stock Lua is not deterministic across processes:
 * it seeds its string hash from the clock and from addresses (luai_makeseed, which the public API
 * cannot override), so the order in which next() and pairs() visit string keys changes from run to
 * run; tables, functions and other objects used as keys are placed by address, and tostring() of
 * them prints an address.
 *
 * The sandbox therefore replaces next, pairs and tostring (and print and ctx.log format values the
 * same way):
 *   - pairs over a sequence (keys exactly 1..n) visits 1..n in order, with no sorting. (Lua's own
 *     order is not safe even for number keys: where an integer key lands can depend on the string
 *     keys the table held before.)
 *   - Otherwise keys are visited in one canonical order: booleans, then numbers by value, then
 *     strings bytewise, then light userdata by value, then other objects by their object id.
 *     pairs() sorts a snapshot of the keys once (O(k log k)); a bare next(t, k) finds the successor
 *     of k by a scan (O(k) per call). Keys set to nil during a traversal are skipped, as in Lua.
 *   - An object id is a number given to a table, function, coroutine or userdata the first time it
 *     needs one, in execution order (a weak-keyed registry table maps objects to ids), and
 *     tostring() prints "table: #12" instead of an address. Values with __tostring or __name keep
 *     their own text.
 * string.format("%p") and string.format("%s") of such objects still print addresses. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "agent/rt.h"

static const char ids_key = 0; /* registry: weak-keyed table object -> id */

/* The object id of the value at idx (a table, function, thread or full userdata). */
static lua_Integer object_id(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ids_key);
  lua_pushvalue(L, idx);
  lua_Integer id;
  if (lua_rawget(L, -2) == LUA_TNUMBER) {
    id = lua_tointeger(L, -1);
    lua_pop(L, 2);
    return id;
  }
  lua_pop(L, 1);
  id = (lua_Integer)++host_of(L)->next_object_id;
  lua_pushvalue(L, idx);
  lua_pushinteger(L, id);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return id;
}

static int rank(int type) {
  switch (type) {
  case LUA_TBOOLEAN: return 0;
  case LUA_TNUMBER: return 1;
  case LUA_TSTRING: return 2;
  case LUA_TLIGHTUSERDATA: return 3;
  default: return 4;
  }
}

/* A key, reduced to what the canonical order compares. */
typedef struct sort_key {
  int rank;
  int is_int;
  lua_Integer i;
  lua_Number n;
  const char *s; /* strings: kept alive by the snapshot table */
  size_t len;
  uintptr_t p;   /* light userdata */
  lua_Integer id; /* objects */
  int slot;       /* position in the snapshot table */
} sort_key;

static void describe_key(lua_State *L, int idx, sort_key *k) {
  int t = lua_type(L, idx);
  memset(k, 0, sizeof *k);
  k->rank = rank(t);
  switch (t) {
  case LUA_TBOOLEAN: k->i = lua_toboolean(L, idx); k->is_int = 1; break;
  case LUA_TNUMBER:
    k->is_int = lua_isinteger(L, idx);
    if (k->is_int)
      k->i = lua_tointeger(L, idx);
    else
      k->n = lua_tonumber(L, idx);
    break;
  case LUA_TSTRING: k->s = lua_tolstring(L, idx, &k->len); break;
  case LUA_TLIGHTUSERDATA: k->p = (uintptr_t)lua_touserdata(L, idx); break;
  default: k->id = object_id(L, idx); break;
  }
}

static int cmp_keys(const void *pa, const void *pb) {
  const sort_key *a = pa, *b = pb;
  if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
  switch (a->rank) {
  case 0: return (a->i > b->i) - (a->i < b->i);
  case 1: {
    if (a->is_int && b->is_int) return (a->i > b->i) - (a->i < b->i);
    lua_Number x = a->is_int ? (lua_Number)a->i : a->n, y = b->is_int ? (lua_Number)b->i : b->n;
    if (x != y) return x < y ? -1 : 1;
    return a->is_int - b->is_int; /* equal values of both kinds cannot both be keys */
  }
  case 2: {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
  }
  case 3: return (a->p > b->p) - (a->p < b->p);
  default: return (a->id > b->id) - (a->id < b->id);
  }
}

/* If the table at idx is a sequence (its keys are exactly 1..n), stores n and returns 1. */
static int is_sequence(lua_State *L, int idx, lua_Integer *n) {
  lua_Integer count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max) max = k;
    count++;
  }
  *n = max;
  return max == count;
}

/* Pushes a new array of the table's keys in canonical order. */
static void push_sorted_keys(lua_State *L, int t) {
  lua_newtable(L); /* the snapshot keeps every key (and string) alive while sorting */
  int snap = lua_gettop(L);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, snap, ++n);
  }
  sort_key *keys = n ? lua_newuserdatauv(L, (size_t)n * sizeof *keys, 0) : NULL;
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, snap, i + 1);
    describe_key(L, -1, &keys[i]);
    keys[i].slot = (int)(i + 1);
    lua_pop(L, 1);
  }
  if (n) qsort(keys, (size_t)n, sizeof *keys, cmp_keys);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, snap, keys[i].slot);
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, snap); /* the sorted array replaces the snapshot */
  if (n) lua_pop(L, 1);  /* the scratch userdata */
}

/* Iterator of the sorted snapshot: upvalues table, keys, position. */
static int sorted_iter(lua_State *L) {
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(3));
  for (;;) {
    if (lua_rawgeti(L, lua_upvalueindex(2), ++i) == LUA_TNIL) return 0;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) {
      lua_pushinteger(L, i);
      lua_replace(L, lua_upvalueindex(3));
      return 2;
    }
    lua_pop(L, 2); /* removed during the traversal: skip */
  }
}

/* Iterator of a sequence: upvalues table, length; visits 1..n, skipping keys removed meanwhile. */
static int sequence_iter(lua_State *L) {
  lua_Integer n = lua_tointeger(L, lua_upvalueindex(2));
  for (lua_Integer i = luaL_optinteger(L, 2, 0) + 1; i <= n; i++) {
    if (lua_rawgeti(L, lua_upvalueindex(1), i) != LUA_TNIL) {
      lua_pushinteger(L, i);
      lua_insert(L, -2);
      return 2;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int order_pairs(lua_State *L) {
  luaL_checkany(L, 1);
  if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) { /* honour __pairs, as Lua's pairs does */
    lua_pushvalue(L, 1);
    lua_call(L, 1, 3);
    return 3;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n;
  if (is_sequence(L, 1, &n)) { /* arrays: index order, no sorting */
    lua_pushvalue(L, 1);
    lua_pushinteger(L, n);
    lua_pushcclosure(L, sequence_iter, 2);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
  }
  lua_pushvalue(L, 1);
  push_sorted_keys(L, 1);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, sorted_iter, 3);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int order_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  /* the smallest key greater than the given one (or the smallest of all) */
  sort_key after, best, cur;
  int have_after = !lua_isnil(L, 2), have_best = 0;
  if (have_after) describe_key(L, 2, &after);
  lua_pushnil(L); /* index 3: best key so far */
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    describe_key(L, -1, &cur);
    if ((!have_after || cmp_keys(&cur, &after) > 0) && (!have_best || cmp_keys(&cur, &best) < 0)) {
      best = cur;
      have_best = 1;
      lua_pushvalue(L, -1);
      lua_replace(L, 3);
    }
  }
  if (!have_best) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushvalue(L, 3);
  lua_rawget(L, 1);
  return 2;
}

const char *order_tolstring(lua_State *L, int idx, size_t *len) {
  idx = lua_absindex(L, idx);
  int t = lua_type(L, idx);
  if ((t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TTHREAD || t == LUA_TUSERDATA) &&
      luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL) {
    if (luaL_getmetafield(L, idx, "__name") == LUA_TNIL) {
      lua_pushfstring(L, "%s: #%I", luaL_typename(L, idx), (LUAI_UACINT)object_id(L, idx));
      return lua_tolstring(L, -1, len);
    }
    lua_pop(L, 1);
  } else if (t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TTHREAD || t == LUA_TUSERDATA) {
    lua_pop(L, 1);
  }
  return luaL_tolstring(L, idx, len);
}

static int order_tostring(lua_State *L) {
  luaL_checkany(L, 1);
  order_tolstring(L, 1, NULL);
  return 1;
}

void order_open(lua_State *L) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ids_key);
  lua_pushglobaltable(L);
  lua_pushcfunction(L, order_next);
  lua_setfield(L, -2, "next");
  lua_pushcfunction(L, order_pairs);
  lua_setfield(L, -2, "pairs");
  lua_pushcfunction(L, order_tostring);
  lua_setfield(L, -2, "tostring");
  lua_pop(L, 1);
}
