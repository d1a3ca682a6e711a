/* llm_remote.c: the model operations over a remote OpenAI-compatible server (llm_remote.h).
 *
 * start() runs on the runtime's loop thread: it parses the agent's request with the built-in
 * engine's parser (llm_request.c), turns it into a /v1/completions body and submits it to the
 * executor, grouped by its pinned prefix (or by the first bytes of its prompt); the executor's
 * thread calls done(), which turns the server's answer into the built-in engine's result shape
 * (text, finish, usage) and completes the operation (hs_runtime_op_complete is thread-safe). */
#include "agent/llm_remote.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm_request.h"
#include "hswarm/alloc.h"
#include "hswarm/arena.h"
#include "hswarm/error.h"

typedef struct rpin {
  uint64_t id;
  char *text;
  size_t len;
} rpin;

typedef struct hs_llm_remote {
  hs_runtime *rt;
  hs_remote *r;
  char *model;
  rpin *pins;
  size_t npins, cappins;
  uint64_t next_pin;
} hs_llm_remote;

typedef struct rcall {
  hs_llm_remote *l;
  hs_op_token token;
} rcall;

static void fail(hs_runtime *rt, hs_op_token token, int code, const char *msg) {
  hs_runtime_op_complete(rt, token, code, msg, strlen(msg));
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h ? h : 1;
}

static rpin *find_pin(hs_llm_remote *l, uint64_t id) {
  for (size_t i = 0; i < l->npins; i++)
    if (l->pins[i].id == id) return &l->pins[i];
  return NULL;
}

/* The server's answer into the result of hswarm/llm.h (text, finish, usage). */
static void done(int status, long http, const char *body, size_t len, const char *error,
                 void *ud) {
  rcall *c = ud;
  hs_runtime *rt = c->l->rt;
  hs_op_token token = c->token;
  hs_free(c);
  char msg[512];
  if (status) {
    snprintf(msg, sizeof msg, "llm: the remote server: %s", error ? error : hs_strerror(status));
    fail(rt, token, status, msg);
    return;
  }
  json_t *o = json_loadb(body, len, 0, NULL);
  if (http != 200) {
    const char *why = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    snprintf(msg, sizeof msg, "llm: the remote server answered HTTP %ld: %.400s", http,
             why ? why : (len ? body : "(no body)"));
    json_decref(o);
    fail(rt, token, HS_EIO, msg);
    return;
  }
  json_t *choice = json_array_get(json_object_get(o, "choices"), 0);
  json_t *text = json_object_get(choice, "text");
  json_t *usage = json_object_get(o, "usage");
  if (!json_is_string(text)) {
    snprintf(msg, sizeof msg, "llm: the remote server's answer has no choices[0].text: %.300s",
             body);
    json_decref(o);
    fail(rt, token, HS_EIO, msg);
    return;
  }
  const char *fin = json_string_value(json_object_get(choice, "finish_reason"));
  json_t *res = json_pack(
      "{s:O, s:s, s:I, s:I, s:I, s:[], s:b}", "text", text, "finish",
      fin && !strcmp(fin, "length") ? "length" : "stop", "prompt_tokens",
      json_integer_value(json_object_get(usage, "prompt_tokens")), "completion_tokens",
      json_integer_value(json_object_get(usage, "completion_tokens")), "prompt_reused",
      json_integer_value(
          json_object_get(json_object_get(usage, "prompt_tokens_details"), "cached_tokens")),
      "tokens", "remote", 1);
  json_decref(o);
  char *out = res ? json_dumps(res, JSON_COMPACT) : NULL;
  json_decref(res);
  if (out) hs_runtime_op_complete(rt, token, 0, out, strlen(out));
  else fail(rt, token, HS_ENOMEM, "llm: out of memory");
  free(out);
}

/* The prompt's text: a pinned prefix's text then the request's (its string, or its arena blob).
 * NULL with msg when it cannot be had; *as_ids set when the prompt is token ids instead. */
static char *prompt_text(hs_llm_remote *l, const hs_llm_request *q, char *msg, size_t cap) {
  const rpin *p = NULL;
  if (q->prefix && !(p = find_pin(l, q->prefix))) {
    snprintf(msg, cap, "llm: \"prefix\" %llu is not a pinned prefix",
             (unsigned long long)q->prefix);
    return NULL;
  }
  const char *body = q->text;
  size_t n = q->text_len;
  hs_arena *arena = hs_runtime_arena(l->rt);
  const void *blob = NULL;
  if (q->has_handle) {
    if (hs_arena_retain(arena, q->handle) != 0 ||
        hs_arena_read(arena, q->handle, &blob, &n) != 0) {
      snprintf(msg, cap, "llm: \"prompt_handle\" 0x%llx is stale or invalid",
               (unsigned long long)q->handle);
      return NULL;
    }
    body = blob;
  }
  size_t head = p ? p->len : 0;
  char *s = hs_malloc(head + n + 1);
  if (s) {
    if (head) memcpy(s, p->text, head);
    if (n) memcpy(s + head, body, n);
    s[head + n] = 0;
  } else {
    snprintf(msg, cap, "llm: out of memory");
  }
  if (q->has_handle) hs_arena_release(arena, q->handle);
  return s;
}

/* The /v1/completions body of a request; NULL with msg. */
static char *request_body(hs_llm_remote *l, const hs_llm_request *q, uint64_t *group, char *msg,
                          size_t cap) {
  if (q->r.deadline_steps || q->r.ignore_eos || q->r.n_stop_tokens) {
    snprintf(msg, cap, "llm: %s cannot be sent to a remote server",
             q->r.deadline_steps ? "\"deadline_steps\""
             : q->r.ignore_eos   ? "\"ignore_eos\""
                                 : "a stop token id (give stop strings)");
    return NULL;
  }
  if (q->n_stops > 4) {
    snprintf(msg, cap, "llm: a remote server takes at most 4 stop strings (%zu given)", q->n_stops);
    return NULL;
  }
  json_t *b = json_pack("{s:s}", "model", l->model);
  if (!b) return NULL;
  if (q->ids) {
    json_t *ids = json_array();
    for (size_t i = 0; i < q->n_ids; i++) json_array_append_new(ids, json_integer(q->ids[i]));
    json_object_set_new(b, "prompt", ids);
    *group = q->prefix;
  } else {
    char *text = prompt_text(l, q, msg, cap);
    if (!text) {
      json_decref(b);
      return NULL;
    }
    /* group: the pinned prefix, else the prompt's first 256 bytes (a shared system text) */
    *group = q->prefix ? q->prefix : fnv1a(text, strlen(text) < 256 ? strlen(text) : 256);
    json_object_set_new(b, "prompt", json_string(text));
    hs_free(text);
  }
  const hs_sampler_params *sp = &q->r.sampling;
  if (q->r.max_tokens) json_object_set_new(b, "max_tokens", json_integer(q->r.max_tokens));
  json_object_set_new(b, "temperature", json_real(sp->temperature));
  if (sp->top_p < 1) json_object_set_new(b, "top_p", json_real(sp->top_p));
  if (sp->top_k > 0) json_object_set_new(b, "top_k", json_integer(sp->top_k));
  if (sp->min_p > 0) json_object_set_new(b, "min_p", json_real(sp->min_p));
  if (sp->repetition_penalty != 1)
    json_object_set_new(b, "repetition_penalty", json_real(sp->repetition_penalty));
  if (q->has_seed) json_object_set_new(b, "seed", json_integer((json_int_t)sp->seed));
  if (q->n_stops) {
    json_t *stops = json_array();
    for (size_t i = 0; i < q->n_stops; i++) json_array_append_new(stops, json_string(q->stops[i]));
    json_object_set_new(b, "stop", stops);
  }
  if (q->grammar) json_object_set_new(b, "grammar", json_string(q->grammar));
  if (q->schema) {
    json_t *schema = json_loads(q->schema, 0, NULL);
    json_object_set_new(b, "response_format",
                        json_pack("{s:s, s:{s:s, s:o}}", "type", "json_schema", "json_schema",
                                  "name", "output", "schema", schema ? schema : json_object()));
  }
  if (q->r.priority != HS_PRIORITY_NORMAL) {
    static const char *const names[] = {"urgent", "normal", "background"};
    json_object_set_new(b, "priority", json_string(names[q->r.priority]));
  }
  char *s = json_dumps(b, JSON_COMPACT);
  json_decref(b);
  char *out = s ? hs_strdup(s) : NULL;
  free(s);
  if (!out) snprintf(msg, cap, "llm: out of memory");
  return out;
}

static int start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                 size_t len, void *ud) {
  hs_llm_remote *l = ud;
  hs_llm_request q;
  char msg[512];
  int rc = hs_llm_request_parse((uint32_t)agent, req, len, &q, msg, sizeof msg);
  uint64_t group = 0;
  char *body = rc ? NULL : request_body(l, &q, &group, msg, sizeof msg);
  hs_llm_request_free(&q);
  if (!body) {
    fail(rt, token, rc ? rc : HS_EINVAL, msg);
    return 0;
  }
  rcall *c = hs_malloc(sizeof *c);
  if (!c) {
    hs_free(body);
    fail(rt, token, HS_ENOMEM, "llm: out of memory");
    return 0;
  }
  *c = (rcall){l, token};
  rc = hs_remote_submit(l->r, "/completions", body, group, done, c);
  hs_free(body);
  if (rc) {
    hs_free(c);
    fail(rt, token, rc, "llm: the remote executor refused the request");
  }
  return 0;
}

/* "llm.pin": the text is kept (an ordering hint and a prompt head), nothing is computed. */
static int start_pin(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                     size_t len, void *ud) {
  (void)agent;
  hs_llm_remote *l = ud;
  if (l->npins == l->cappins) {
    size_t cap = l->cappins ? 2 * l->cappins : 8;
    rpin *p = hs_realloc(l->pins, cap * sizeof *p);
    if (!p) {
      fail(rt, token, HS_ENOMEM, "llm.pin: out of memory");
      return 0;
    }
    l->pins = p;
    l->cappins = cap;
  }
  char *text = hs_malloc(len + 1);
  if (!text) {
    fail(rt, token, HS_ENOMEM, "llm.pin: out of memory");
    return 0;
  }
  memcpy(text, req, len);
  text[len] = 0;
  rpin *p = &l->pins[l->npins++];
  *p = (rpin){++l->next_pin, text, len};
  char out[128];
  snprintf(out, sizeof out, "{\"prefix\":%llu,\"tokens\":0,\"pinned\":0,\"remote\":true}",
           (unsigned long long)p->id);
  hs_runtime_op_complete(rt, token, 0, out, strlen(out));
  return 0;
}

static int start_unpin(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                       size_t len, void *ud) {
  (void)agent;
  hs_llm_remote *l = ud;
  char buf[32];
  size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
  memcpy(buf, req, n);
  buf[n] = 0;
  uint64_t id = strtoull(buf, NULL, 10);
  rpin *p = find_pin(l, id);
  if (!p) {
    fail(rt, token, HS_EINVAL, "llm.unpin: not a pinned prefix");
    return 0;
  }
  hs_free(p->text);
  *p = l->pins[--l->npins];
  hs_runtime_op_complete(rt, token, 0, "", 0);
  return 0;
}

static void free_ops(hs_llm_remote *l) {
  hs_remote_destroy(l->r); /* unfinished requests fail; their completions are dropped */
  for (size_t i = 0; i < l->npins; i++) hs_free(l->pins[i].text);
  hs_free(l->pins);
  hs_free(l->model);
  hs_free(l);
}

static void on_destroy(void *ud) { free_ops(ud); }

int hs_llm_attach_remote(hs_runtime *rt, hs_remote *r, const char *model, const char *kind) {
  if (!rt || !r) return HS_EINVAL;
  hs_llm_remote *l = hs_calloc(1, sizeof *l);
  if (!l) return HS_ENOMEM;
  l->rt = rt;
  l->r = r;
  l->model = hs_strdup(model ? model : "default");
  if (!l->model) {
    hs_free(l);
    return HS_ENOMEM;
  }
  if (!kind) kind = "llm";
  char pin_kind[64], unpin_kind[64];
  snprintf(pin_kind, sizeof pin_kind, "%s.pin", kind);
  snprintf(unpin_kind, sizeof unpin_kind, "%s.unpin", kind);
  const int flags = HS_OP_EXTERNAL | HS_OP_STEP_BOUND;
  int rc = hs_runtime_on_destroy(rt, on_destroy, l);
  if (rc) {
    l->r = NULL; /* still the caller's */
    free_ops(l);
    return rc;
  }
  rc = hs_runtime_register_op(rt, kind, flags, start, l);
  if (!rc) rc = hs_runtime_register_op(rt, pin_kind, flags, start_pin, l);
  if (!rc) rc = hs_runtime_register_op(rt, unpin_kind, flags, start_unpin, l);
  return rc; /* a kind taken: the hook still frees l and r with the runtime */
}
