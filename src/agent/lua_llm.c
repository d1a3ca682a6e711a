/* lua_llm.c: ctx.llm, the model for Lua agents, over the "llm" operations (hswarm/llm.h).
 *
 *   local r, err = ctx.llm.generate{prompt = "...", prefix = p, max_tokens = 16,
 *                                   temperature = 0.8, top_p = 0.95, seed = 7,
 *                                   stop = {"\n"}, priority = "urgent"}
 *   -- r = {text = "...", tokens = {...}, finish_reason = "stop" | "length" | "cancelled" |
 *   --      "deadline", usage = {prompt = n, cached = n, completion = n}}
 *   local p = ctx.llm.pin("a shared system prompt")   -- a prefix id any agent can extend
 *   ctx.llm.unpin(p)
 *
 * generate yields the agent until the scheduler has served the request; on failure it returns
 * nil and a message. prompt is a string, an arena handle (its text is encoded once and the ids
 * reused: llm_op.c) or a table of token ids. team (the scheduler's fair-share group) defaults
 * to the agent's team. Without seed, the seed derives from the run's seed,
 * the agent's id and its count of generate calls, so lockstep runs repeat exactly. Other keys:
 * top_k, min_p, repetition_penalty, team, deadline_steps, ignore_eos, special, grammar (GBNF
 * text) or schema (a JSON schema's text): the output is constrained to it (see llm.h).
 * Unknown keys raise an error. pin and unpin raise errors (a wrong prefix is a bug in the
 * script); pin needs the run to have a model. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/rt.h"
#include "core/hash.h"
#include "hswarm/error.h"

static const char *const NUMBER_KEYS[] = {"max_tokens", "temperature", "top_p", "top_k",
                                          "min_p", "repetition_penalty", "team",
                                          "deadline_steps", "prefix", NULL};

static int is_number_key(const char *k) {
  for (int i = 0; NUMBER_KEYS[i]; i++)
    if (!strcmp(k, NUMBER_KEYS[i])) return 1;
  return 0;
}

/* A Lua value at idx as JSON for key k; NULL with err filled on a wrong type (nothing raised
 * here, so that the caller can free what it built before raising). */
static json_t *field_json(lua_State *L, int idx, const char *k, char *err, size_t cap) {
  int t = lua_type(L, idx);
  if (!strcmp(k, "prompt")) {
    if (t == LUA_TSTRING) {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      json_t *j = json_stringn(s, n);
      if (!j)
        snprintf(err, cap, "the prompt is not valid UTF-8 (pass raw bytes as an arena handle: "
                           "ctx.memory.write)");
      return j;
    }
    if (t == LUA_TTABLE) {
      json_t *a = json_array();
      lua_Integer n = luaL_len(L, idx);
      for (lua_Integer i = 1; a && i <= n; i++) {
        lua_geti(L, idx, i);
        int ok = lua_isinteger(L, -1);
        if (ok) json_array_append_new(a, json_integer(lua_tointeger(L, -1)));
        lua_pop(L, 1);
        if (!ok) {
          json_decref(a);
          snprintf(err, cap, "prompt[%d] is not a token id", (int)i);
          return NULL;
        }
      }
      return a;
    }
    if (t == LUA_TLIGHTUSERDATA || t == LUA_TUSERDATA) {
      hs_handle h = view_check_handle(L, idx, NULL); /* raises for other userdata: no leak */
      return json_integer((json_int_t)h);
    }
    snprintf(err, cap, "prompt must be a string, an arena handle or a table of token ids");
    return NULL;
  }
  if (!strcmp(k, "stop")) {
    if (t == LUA_TSTRING) {
      json_t *j = json_string(lua_tostring(L, idx));
      if (!j) snprintf(err, cap, "stop is not valid UTF-8");
      return j;
    }
    if (t != LUA_TTABLE) {
      snprintf(err, cap, "stop must be a string or a table of strings and token ids");
      return NULL;
    }
    json_t *a = json_array();
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; a && i <= n; i++) {
      lua_geti(L, idx, i);
      json_t *e = lua_isinteger(L, -1)                ? json_integer(lua_tointeger(L, -1))
                  : lua_type(L, -1) == LUA_TSTRING ? json_string(lua_tostring(L, -1))
                                                   : NULL;
      lua_pop(L, 1);
      if (!e) {
        json_decref(a);
        snprintf(err, cap, "stop[%d] must be a UTF-8 string or a token id", (int)i);
        return NULL;
      }
      json_array_append_new(a, e);
    }
    return a;
  }
  if (!strcmp(k, "seed")) {
    if (lua_isinteger(L, idx)) return json_integer(lua_tointeger(L, idx));
    snprintf(err, cap, "seed must be an integer");
    return NULL;
  }
  if (!strcmp(k, "priority") || !strcmp(k, "grammar") || !strcmp(k, "schema")) {
    if (t == LUA_TSTRING) {
      json_t *j = json_string(lua_tostring(L, idx));
      if (!j) snprintf(err, cap, "%s is not valid UTF-8", k);
      return j;
    }
    snprintf(err, cap, "%s must be a string", k);
    return NULL;
  }
  if (!strcmp(k, "ignore_eos") || !strcmp(k, "special")) return json_boolean(lua_toboolean(L, idx));
  if (is_number_key(k)) {
    if (t == LUA_TNUMBER)
      return lua_isinteger(L, idx) ? json_integer(lua_tointeger(L, idx))
                                   : json_real(lua_tonumber(L, idx));
    snprintf(err, cap, "%s must be a number", k);
    return NULL;
  }
  snprintf(err, cap, "unknown key \"%s\"", k);
  return NULL;
}

/* The request JSON for the table at index 1 (a string on the stack top afterwards). */
static void build_request(lua_State *L, hs_runtime *rt, hs_agent *a) {
  json_t *o = json_object();
  int has_seed = 0, has_team = 0;
  char err[200] = "out of memory";
  lua_pushnil(L);
  while (o && lua_next(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      json_decref(o);
      lua_raisef(L, "ctx.llm.generate: keys must be strings");
    }
    const char *k = lua_tostring(L, -2);
    json_t *v = field_json(L, lua_gettop(L), k, err, sizeof err);
    if (!v) {
      json_decref(o);
      lua_raisef(L, "ctx.llm.generate: %s", err);
    }
    if (!strcmp(k, "seed")) has_seed = 1;
    if (!strcmp(k, "team")) has_team = 1;
    json_object_set_new(o, !strcmp(k, "prompt") && json_is_integer(v) ? "prompt_handle" : k, v);
    lua_pop(L, 1);
  }
  if (o && !has_team) json_object_set_new(o, "team", json_integer(a->team));
  if (o && !has_seed) { /* the run's seed, the agent, its call count */
    uint64_t seed = hs_mix64(rt->cfg.seed ^ hs_mix64(((uint64_t)a->id << 32) | a->llm_calls));
    json_object_set_new(o, "seed", json_integer((json_int_t)(seed >> 1)));
  }
  a->llm_calls++;
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!s) lua_raisef(L, "ctx.llm.generate: out of memory");
  lua_pushstring(L, s);
  free(s);
}

/* Pushes the result table for the JSON result text; nil and a message when it is malformed. */
static int push_result(lua_State *L, const char *data, size_t len) {
  json_error_t je;
  json_t *o = json_loadb(data, len, 0, &je);
  if (!o || !json_is_object(o)) {
    json_decref(o);
    lua_pushnil(L);
    lua_pushstring(L, "ctx.llm.generate: malformed result");
    return 2;
  }
  lua_createtable(L, 0, 4);
  json_t *text = json_object_get(o, "text");
  if (json_is_string(text)) {
    lua_pushlstring(L, json_string_value(text), json_string_length(text));
    lua_setfield(L, -2, "text");
  }
  json_t *toks = json_object_get(o, "tokens");
  lua_createtable(L, (int)json_array_size(toks), 0);
  for (size_t i = 0; i < json_array_size(toks); i++) {
    lua_pushinteger(L, json_integer_value(json_array_get(toks, i)));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "tokens");
  json_t *fin = json_object_get(o, "finish");
  lua_pushstring(L, json_is_string(fin) ? json_string_value(fin) : "?");
  lua_setfield(L, -2, "finish_reason");
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, json_integer_value(json_object_get(o, "prompt_tokens")));
  lua_setfield(L, -2, "prompt");
  lua_pushinteger(L, json_integer_value(json_object_get(o, "prompt_reused")));
  lua_setfield(L, -2, "cached");
  json_t *ct = json_object_get(o, "completion_tokens"); /* a remote server gives no ids */
  lua_pushinteger(L, json_is_integer(ct) ? (lua_Integer)json_integer_value(ct)
                                         : (lua_Integer)json_array_size(toks));
  lua_setfield(L, -2, "completion");
  lua_setfield(L, -2, "usage");
  json_decref(o);
  return 1;
}

/* Continuation of every ctx.llm call: kc 0 generate, 1 pin, 2 unpin. */
static int llm_k(lua_State *L, int status, lua_KContext kc) {
  (void)status;
  hs_agent *a = ctx_me(L);
  if (!a->op_done) return ctx_yield(L, llm_k);
  a->op_done = 0;
  a->state = AS_RUNNING;
  const char *data = a->op.data ? a->op.data : "";
  size_t len = a->op.len;
  if (a->op.status != 0) {
    if (kc != 0) return lua_raisef(L, "%.*s", (int)len, data);
    lua_pushnil(L);
    if (len) lua_pushlstring(L, data, len);
    else lua_pushstring(L, hs_strerror(a->op.status));
    return 2;
  }
  if (kc == 0) return push_result(L, data, len);
  if (kc == 2) return 0;
  json_t *o = json_loadb(data, len, 0, NULL);
  json_t *id = json_object_get(o, "prefix");
  if (!json_is_integer(id)) {
    json_decref(o);
    return lua_raisef(L, "ctx.llm.pin: malformed result");
  }
  lua_pushinteger(L, json_integer_value(id));
  lua_pushinteger(L, json_integer_value(json_object_get(o, "tokens")));
  json_decref(o);
  return 2;
}

static int start(lua_State *L, hs_agent *a, const char *kind, const char *fn, const char *req,
                 size_t len, lua_KContext kc) {
  hs_runtime *rt = host_of(L)->rt;
  ctx_check_can_block(L, fn);
  if (rt_op_start(rt, a, kind, req, len) != 0) {
    const char *hint =
        strstr(rt->errmsg, "no operation kind") ? " (the run has no model: give -m FILE)" : "";
    return lua_raisef(L, "%s: %s%s", fn, rt->errmsg, hint);
  }
  lua_settop(L, 0);
  lua_pushlightuserdata(L, host_sentinel());
  return lua_yieldk(L, 1, kc, llm_k);
}

static int llm_generate(lua_State *L) {
  hs_agent *a = ctx_me(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  build_request(L, host_of(L)->rt, a);
  size_t len;
  const char *req = lua_tolstring(L, -1, &len);
  return start(L, a, "llm", "ctx.llm.generate", req, len, 0);
}

static int llm_pin(lua_State *L) {
  hs_agent *a = ctx_me(L);
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  return start(L, a, "llm.pin", "ctx.llm.pin", text, len, 1);
}

static int llm_unpin(lua_State *L) {
  hs_agent *a = ctx_me(L);
  lua_Integer id = luaL_checkinteger(L, 1);
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%lld", (long long)id);
  return start(L, a, "llm.unpin", "ctx.llm.unpin", buf, (size_t)n, 2);
}

int llm_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"generate", llm_generate}, {"pin", llm_pin}, {"unpin", llm_unpin}, {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "llm");
  return 0;
}
