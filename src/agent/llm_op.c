/* llm_op.c: the model as runtime operations (hswarm/llm.h): "llm" generates, "llm.pin" and
 * "llm.unpin" pin and release shared prefixes. A JSON request from an agent becomes a scheduler
 * request; its completion becomes the operation's JSON result.
 *
 * The runtime's loop drives the scheduler through hs_runtime_set_engine, so everything happens
 * on the loop thread: start() parses and submits, the scheduler's on_done (inside an engine
 * step) posts the completion, and the loop delivers it at the next step boundary.
 *
 * The prompt's token ids: a pinned prefix's ids (BOS included) followed by the prompt's, or the
 * prompt's alone with BOS as the tokenizer says. A prompt given as an arena handle is read and
 * encoded once; its ids are kept by handle (a handle is never reused for another blob) in a
 * bounded cache. Stop strings are watched token by token: when the decoded output contains one,
 * the request is cancelled at the end of that step and reported as stopped, its text cut before
 * the stop string. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm_request.h"
#include "agent/rt.h"
#include "core/hash.h"
#include "hswarm/alloc.h"
#include "hswarm/arena.h"
#include "hswarm/error.h"
#include "hswarm/generate.h"
#include "hswarm/grammar.h"
#include "hswarm/kvcache.h"
#include "hswarm/llm.h"

#define HANDLE_CACHE 1024 /* slots of the handle -> token ids cache (direct-mapped) */

typedef struct pin {
  uint64_t id;            /* 0: free slot */
  hs_prefix *prefix;      /* NULL when shorter than one KV block (nothing to keep) */
  int32_t *ids;           /* the prefix's token ids, BOS first as the tokenizer says */
  size_t n;
} pin;

typedef struct cached_ids {
  uint64_t handle;        /* 0: empty */
  int32_t *ids;           /* the blob's text encoded without BOS */
  size_t n;
} cached_ids;

struct hs_llm {
  hs_runtime *rt;
  hs_sched *s;
  const hs_tokenizer *tok;
  hs_grammar_vocab *gvocab; /* made at the first constrained request */
  pin *pins;
  size_t npins, cappins;
  uint64_t next_pin;
  cached_ids cache[HANDLE_CACHE];
};

/* One generation in flight. */
typedef struct call {
  hs_llm *l;
  hs_op_token token;
  char **stops;           /* stop strings (taken from the request), n_stops */
  size_t n_stops;
  int32_t *out;           /* tokens so far, when watching stop strings */
  size_t n_out, cap_out;
  long stop_at;           /* byte offset of the stop string in the text, -1: none */
  hs_grammar *grammar;    /* the request's constraint, or NULL */
} call;

static void call_free(call *c) {
  hs_grammar_destroy(c->grammar);
  for (size_t i = 0; i < c->n_stops; i++) hs_free(c->stops[i]);
  hs_free(c->stops);
  hs_free(c->out);
  hs_free(c);
}

static int engine_step(void *ud) { return hs_sched_step(ud); }

static const char *finish_name(hs_finish_reason f) {
  switch (f) {
  case HS_FINISH_STOP: return "stop";
  case HS_FINISH_LENGTH: return "length";
  case HS_FINISH_CANCELLED: return "cancelled";
  case HS_FINISH_DEADLINE: return "deadline";
  }
  return "?";
}

static void fail(hs_runtime *rt, hs_op_token token, int code, const char *msg) {
  hs_runtime_op_complete(rt, token, code, msg, strlen(msg));
}

/* Decodes ids into a new, well-formed UTF-8 string (*len bytes; ill-formed bytes become U+FFFD,
 * so that the text fits in the JSON result); NULL when out of memory or without tokenizer. */
static char *decode(const hs_tokenizer *tok, const int32_t *ids, size_t n, size_t *len) {
  if (!tok) return NULL;
  size_t cap = 64, used = 0;
  char *text = hs_malloc(cap);
  hs_detok_stream st;
  hs_detok_stream_init(&st, 0);
  for (size_t i = 0; text && i <= n; i++) {
    size_t got = 0;
    int rc;
    while ((rc = i < n ? hs_detok_stream_push(tok, &st, ids[i], text + used, cap - used - 1, &got)
                       : hs_detok_stream_flush(&st, text + used, cap - used - 1, &got)) ==
           HS_ENOSPC) {
      char *bigger = hs_realloc(text, 2 * cap + got);
      if (!bigger) {
        hs_free(text);
        return NULL;
      }
      text = bigger;
      cap = 2 * cap + got;
    }
    if (rc == 0) used += got; /* a bad id renders as nothing */
  }
  if (!text) return NULL;
  text[used] = 0;
  *len = used;
  return text;
}

/* Earliest occurrence of any stop string in text[0..len), or -1. */
static long find_stop(char **stops, size_t n, const char *text, size_t len) {
  long best = -1;
  for (size_t i = 0; i < n; i++) {
    size_t sl = strlen(stops[i]);
    for (size_t p = 0; p + sl <= len; p++)
      if (!memcmp(text + p, stops[i], sl)) {
        if (best < 0 || (long)p < best) best = (long)p;
        break;
      }
  }
  return best;
}

static int on_token(uint64_t id, int32_t t, void *ud) {
  (void)id;
  call *c = ud;
  if (c->n_out == c->cap_out) {
    size_t cap = c->cap_out ? 2 * c->cap_out : 16;
    int32_t *p = hs_realloc(c->out, cap * sizeof *p);
    if (!p) return 0; /* cannot watch further: the request runs to its other limits */
    c->out = p;
    c->cap_out = cap;
  }
  c->out[c->n_out++] = t;
  size_t len = 0;
  char *text = decode(c->l->tok, c->out, c->n_out, &len);
  if (!text) return 0;
  c->stop_at = find_stop(c->stops, c->n_stops, text, len);
  hs_free(text);
  return c->stop_at >= 0;
}

static void on_done(const hs_sched_result *r, void *ud) {
  call *c = ud;
  hs_llm *l = c->l;
  if (r->status) {
    char msg[600];
    snprintf(msg, sizeof msg, "llm: %s", r->error);
    fail(l->rt, c->token, r->status, msg);
    call_free(c);
    return;
  }
  bool stopped = c->stop_at >= 0 && r->finish == HS_FINISH_CANCELLED;
  json_t *o = json_object(), *toks = json_array();
  for (size_t i = 0; o && toks && i < r->n_tokens; i++)
    json_array_append_new(toks, json_integer(r->tokens[i]));
  json_object_set_new(o, "tokens", toks);
  size_t len = 0;
  char *text = decode(l->tok, r->tokens, r->n_tokens, &len);
  if (text) {
    if (stopped && (size_t)c->stop_at < len) len = (size_t)c->stop_at;
    json_object_set_new(o, "text", json_stringn(text, len));
  }
  hs_free(text);
  json_object_set_new(o, "finish", json_string(finish_name(stopped ? HS_FINISH_STOP : r->finish)));
  json_object_set_new(o, "prompt_tokens", json_integer(r->prompt_tokens));
  json_object_set_new(o, "prompt_reused", json_integer(r->prompt_reused));
  json_object_set_new(o, "completion_tokens", json_integer((json_int_t)r->n_tokens));
  char *out = json_dumps(o, JSON_COMPACT);
  if (out) hs_runtime_op_complete(l->rt, c->token, 0, out, strlen(out));
  else fail(l->rt, c->token, HS_ENOMEM, "llm: out of memory for the result");
  free(out);
  json_decref(o);
  call_free(c);
}

static pin *find_pin(hs_llm *l, uint64_t id) {
  for (size_t i = 0; i < l->npins; i++)
    if (l->pins[i].id == id) return &l->pins[i];
  return NULL;
}

/* Encodes text (BOS when bos) into *ids / *n (allocated). */
static int encode(const hs_tokenizer *tok, const char *text, size_t len, unsigned flags,
                  int32_t **ids, size_t *n, char *msg, size_t cap) {
  size_t m = 0;
  int rc = hs_tokenizer_encode(tok, text, len, flags, NULL, 0, &m);
  if (rc && rc != HS_ENOSPC) {
    snprintf(msg, cap, "llm: the prompt: %s", hs_tokenizer_last_error());
    return rc;
  }
  *ids = hs_malloc((m ? m : 1) * sizeof **ids);
  if (!*ids) return HS_ENOMEM;
  if ((rc = hs_tokenizer_encode(tok, text, len, flags, *ids, m, &m))) {
    snprintf(msg, cap, "llm: the prompt: %s", hs_tokenizer_last_error());
    hs_free(*ids);
    *ids = NULL;
    return rc;
  }
  *n = m;
  return 0;
}

/* The token ids of an arena blob's text (encoded without BOS), from the cache or read now.
 * *ids stays owned by the cache. */
static int handle_ids(hs_llm *l, uint64_t h, unsigned flags, const int32_t **ids, size_t *n,
                      char *msg, size_t cap) {
  cached_ids *e = &l->cache[hs_mix64(h) % HANDLE_CACHE];
  if (e->handle == h) {
    *ids = e->ids;
    *n = e->n;
    return 0;
  }
  hs_arena *arena = hs_runtime_arena(l->rt);
  const void *p;
  size_t len;
  if (hs_arena_retain(arena, h) != 0) {
    snprintf(msg, cap, "llm: \"prompt_handle\" 0x%llx is stale or invalid", (unsigned long long)h);
    return HS_EINVAL;
  }
  int rc = hs_arena_read(arena, h, &p, &len);
  int32_t *fresh = NULL;
  size_t m = 0;
  if (rc) snprintf(msg, cap, "llm: \"prompt_handle\": %s", hs_arena_last_error());
  else rc = encode(l->tok, p, len, flags, &fresh, &m, msg, cap);
  hs_arena_release(arena, h);
  if (rc) return rc;
  hs_free(e->ids);
  *e = (cached_ids){h, fresh, m};
  *ids = fresh;
  *n = m;
  return 0;
}

/* The request's full prompt into *ids (allocated) / *n. */
static int prompt_ids(hs_llm *l, const hs_llm_request *q, int32_t **ids, size_t *n, char *msg,
                      size_t cap) {
  const pin *pp = NULL;
  if (q->prefix && !(pp = find_pin(l, q->prefix))) {
    snprintf(msg, cap, "llm: \"prefix\" %llu is not a pinned prefix (unpinned, or never pinned)",
             (unsigned long long)q->prefix);
    return HS_EINVAL;
  }
  if ((q->text || q->has_handle) && !l->tok) {
    snprintf(msg, cap, "llm: a text prompt needs a tokenizer; give token ids");
    return HS_EINVAL;
  }
  unsigned flags = q->special ? HS_TOKENIZE_PARSE_SPECIAL : 0;
  int32_t *own = NULL;
  const int32_t *body = q->ids;
  size_t nbody = q->n_ids;
  int rc = 0;
  if (q->has_handle) {
    rc = handle_ids(l, q->handle, flags, &body, &nbody, msg, cap);
  } else if (q->text) {
    rc = encode(l->tok, q->text, q->text_len, flags, &own, &nbody, msg, cap);
    body = own;
  }
  if (rc) return rc;
  /* BOS: from the pin when there is one, else added here for text (ids are taken as given) */
  bool bos = !pp && !q->ids && hs_tokenizer_get_add_bos(l->tok) && hs_tokenizer_bos(l->tok) >= 0;
  size_t head = pp ? pp->n : (size_t)bos;
  *n = head + nbody;
  *ids = *n ? hs_malloc(*n * sizeof **ids) : NULL;
  if (*n && !*ids) rc = HS_ENOMEM;
  else if (!*n) {
    snprintf(msg, cap, "llm: the prompt is empty");
    rc = HS_EINVAL;
  } else {
    if (pp) memcpy(*ids, pp->ids, pp->n * sizeof **ids);
    else if (bos) (*ids)[0] = hs_tokenizer_bos(l->tok);
    if (nbody) memcpy(*ids + head, body, nbody * sizeof **ids);
  }
  hs_free(own);
  return rc;
}

/* The request's grammar (GBNF or JSON schema) into c->grammar, the tokenizer's grammar
 * vocabulary made once. */
static int make_grammar(hs_llm *l, const hs_llm_request *q, call *c, char *msg, size_t cap) {
  if (!l->tok) {
    snprintf(msg, cap, "llm: a grammar or schema needs a tokenizer");
    return HS_EINVAL;
  }
  int rc;
  if (!l->gvocab && (rc = hs_generate_vocab_create(l->tok, &l->gvocab))) {
    snprintf(msg, cap, "llm: grammar vocabulary: %s", hs_generate_last_error());
    return rc;
  }
  rc = q->grammar ? hs_grammar_parse(q->grammar, strlen(q->grammar), NULL, &c->grammar)
                  : hs_grammar_from_json_schema(q->schema, strlen(q->schema), &c->grammar);
  if (rc) snprintf(msg, cap, "llm: %s: %s", q->grammar ? "grammar" : "schema",
                   hs_grammar_last_error());
  return rc;
}

static int start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                 size_t len, void *ud) {
  hs_llm *l = ud;
  char msg[512] = "";
  hs_llm_request q;
  int32_t *ids = NULL;
  size_t n = 0;
  call *c = NULL;
  int rc = hs_llm_request_parse(agent, req, len, &q, msg, sizeof msg);
  if (!rc) rc = prompt_ids(l, &q, &ids, &n, msg, sizeof msg);
  if (!rc && !(c = hs_calloc(1, sizeof *c))) rc = HS_ENOMEM;
  if (!rc) {
    c->l = l;
    c->token = token;
    c->stop_at = -1;
    c->stops = q.stops; /* the call owns the stop strings from here */
    c->n_stops = q.n_stops;
    q.stops = NULL;
    q.n_stops = 0;
    if (q.grammar || q.schema) rc = make_grammar(l, &q, c, msg, sizeof msg);
    q.r.prompt = ids;
    q.r.n_prompt = n;
    q.r.grammar = c->grammar;
    q.r.grammar_vocab = c->grammar ? l->gvocab : NULL;
    q.r.on_token = c->n_stops && l->tok ? on_token : NULL;
    q.r.on_done = on_done;
    q.r.ud = c;
    if (!rc && (rc = hs_sched_submit(l->s, &q.r, NULL))) /* copies prompt and stop tokens */
      snprintf(msg, sizeof msg, "llm: %s", hs_sched_last_error());
    if (rc) call_free(c);
  }
  hs_free(ids);
  hs_llm_request_free(&q);
  if (rc) fail(rt, token, rc, msg[0] ? msg : "llm: out of memory");
  return 0;
}

/* "llm.pin": the request is the prefix's text; the result {"prefix": id, "tokens": n,
 * "pinned": positions kept in the KV cache}. */
static int start_pin(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                     size_t len, void *ud) {
  (void)agent;
  hs_llm *l = ud;
  char msg[512] = "llm.pin: out of memory";
  if (!l->tok) {
    fail(rt, token, HS_EINVAL, "llm.pin: pinning text needs a tokenizer");
    return 0;
  }
  unsigned flags = hs_tokenizer_get_add_bos(l->tok) ? HS_TOKENIZE_ADD_BOS : 0;
  pin p = {0};
  int rc = encode(l->tok, req, len, flags, &p.ids, &p.n, msg, sizeof msg);
  if (!rc && p.n == 0) {
    snprintf(msg, sizeof msg, "llm.pin: the prefix is empty");
    rc = HS_EINVAL;
  }
  if (!rc && p.n >= HS_KV_BLOCK_TOKENS &&
      (rc = hs_prefix_pin(hs_sched_model(l->s), p.ids, p.n, &p.prefix)))
    snprintf(msg, sizeof msg, "llm.pin: %s", hs_engine_last_error());
  if (!rc && l->npins == l->cappins) {
    size_t cap = l->cappins ? 2 * l->cappins : 8;
    pin *np = hs_realloc(l->pins, cap * sizeof *np);
    if (!np) {
      rc = HS_ENOMEM;
      snprintf(msg, sizeof msg, "llm.pin: out of memory");
    } else {
      l->pins = np;
      l->cappins = cap;
    }
  }
  if (rc) {
    hs_prefix_unpin(p.prefix);
    hs_free(p.ids);
    fail(rt, token, rc, msg);
    return 0;
  }
  p.id = ++l->next_pin;
  l->pins[l->npins++] = p;
  char out[160];
  snprintf(out, sizeof out, "{\"prefix\":%llu,\"tokens\":%zu,\"pinned\":%u}",
           (unsigned long long)p.id, p.n, p.prefix ? hs_prefix_len(p.prefix) : 0u);
  hs_runtime_op_complete(rt, token, 0, out, strlen(out));
  return 0;
}

/* "llm.unpin": the request is the prefix id in decimal. */
static int start_unpin(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                       size_t len, void *ud) {
  (void)agent;
  hs_llm *l = ud;
  char buf[32];
  uint64_t id = 0;
  if (len > 0 && len < sizeof buf) {
    memcpy(buf, req, len);
    buf[len] = 0;
    char *end;
    id = strtoull(buf, &end, 10);
    if (*end) id = 0;
  }
  pin *p = id ? find_pin(l, id) : NULL;
  if (!p) {
    fail(rt, token, HS_EINVAL, "llm.unpin: not a pinned prefix (already unpinned?)");
    return 0;
  }
  hs_prefix_unpin(p->prefix);
  hs_free(p->ids);
  *p = l->pins[--l->npins];
  hs_runtime_op_complete(rt, token, 0, "", 0);
  return 0;
}

int hs_llm_attach(hs_runtime *rt, hs_sched *s, const hs_tokenizer *tok, const char *kind,
                  hs_llm **out) {
  if (!rt || !s || !out) return HS_EINVAL;
  *out = NULL;
  kind = kind ? kind : "llm";
  char pin_kind[64], unpin_kind[64];
  if (snprintf(pin_kind, sizeof pin_kind, "%s.pin", kind) >= (int)sizeof pin_kind ||
      snprintf(unpin_kind, sizeof unpin_kind, "%s.unpin", kind) >= (int)sizeof unpin_kind)
    return HS_EINVAL;
  const char *kinds[3] = {kind, pin_kind, unpin_kind};
  for (uint32_t i = 0; i < rt->nop_kinds; i++)
    for (int k = 0; k < 3; k++)
      if (!strcmp(rt->op_kinds[i].name, kinds[k])) return HS_EINVAL; /* taken: nothing done */
  hs_llm *l = hs_calloc(1, sizeof *l);
  if (!l) return HS_ENOMEM;
  l->rt = rt;
  l->s = s;
  l->tok = tok;
  int rc = hs_runtime_register_op(rt, kind, HS_OP_EXTERNAL, start, l);
  if (!rc) rc = hs_runtime_register_op(rt, pin_kind, HS_OP_EXTERNAL, start_pin, l);
  if (!rc) rc = hs_runtime_register_op(rt, unpin_kind, HS_OP_EXTERNAL, start_unpin, l);
  if (rc) { /* out of memory registering: the runtime cannot unregister, so it is unusable */
    hs_free(l);
    return rc;
  }
  hs_runtime_set_engine(rt, engine_step, s);
  *out = l;
  return 0;
}

void hs_llm_free(hs_llm *l) {
  if (!l) return;
  for (size_t i = 0; i < l->npins; i++) {
    hs_prefix_unpin(l->pins[i].prefix);
    hs_free(l->pins[i].ids);
  }
  hs_free(l->pins);
  for (size_t i = 0; i < HANDLE_CACHE; i++) hs_free(l->cache[i].ids);
  hs_grammar_vocab_destroy(l->gvocab);
  hs_free(l);
}
