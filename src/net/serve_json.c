/* serve_json.c: hswarm serve's response bodies in the OpenAI API's shapes (serve_json.h), built
 * with jansson so that every string is escaped as JSON wants. */
#include "net/serve_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "hswarm/alloc.h"
#include "hswarm/tokenizer.h"

/* v as compact JSON in a string from hs_malloc, with prefix and suffix around it; v released. */
static char *dump(json_t *v, const char *prefix, const char *suffix) {
  if (!v) return NULL;
  char *s = json_dumps(v, JSON_COMPACT);
  json_decref(v);
  if (!s) return NULL;
  size_t a = strlen(prefix), b = strlen(s), c = strlen(suffix);
  char *out = hs_malloc(a + b + c + 1);
  if (out) {
    memcpy(out, prefix, a);
    memcpy(out + a, s, b);
    memcpy(out + a + b, suffix, c + 1);
  }
  free(s); /* jansson's allocator */
  return out;
}

static bool is_chat(const srv_job *j) { return j->req.kind == HS_OAI_CHAT; }

static json_t *finish_value(const char *finish) {
  return finish ? json_string(finish) : json_null();
}

/* A token's text as a JSON string: bytes that are not valid UTF-8 on their own (a token may
 * hold part of a character) become U+FFFD. */
static json_t *token_string(const srv_job *j, int32_t id) {
  const char *s = "";
  size_t n = 0;
  hs_tokenizer_token_bytes(j->tok, id, HS_DETOK_SPECIAL, &s, &n);
  json_t *v = json_stringn(s, n);
  if (v) return v;
  hs_strbuf b = {0};
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)s[i] < 0x80) hs_strbuf_add(&b, s + i, 1);
    else hs_strbuf_puts(&b, "\xEF\xBF\xBD");
  }
  char *t = hs_strbuf_take(&b);
  v = t ? json_string(t) : NULL;
  hs_free(t);
  return v;
}

static json_t *token_bytes(const srv_job *j, int32_t id) {
  const char *s = "";
  size_t n = 0;
  hs_tokenizer_token_bytes(j->tok, id, HS_DETOK_SPECIAL, &s, &n);
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++) json_array_append_new(a, json_integer((unsigned char)s[i]));
  return a;
}

/* The log-probabilities of c's tokens from..to: chat's {"content": [...]} or the completions'
 * {"tokens", "token_logprobs", "top_logprobs", "text_offset"}; null without logprobs. */
static json_t *logprobs(const srv_job *j, const srv_choice *c, size_t from, size_t to) {
  if (!j->req.logprobs || !c->lps) return json_null();
  if (j->req.kind == HS_OAI_CHAT) {
    json_t *content = json_array();
    for (size_t i = from; content && i < to; i++) {
      const hs_sched_logprobs *lp = &c->lps[i];
      json_t *top = json_array();
      for (uint32_t k = 0; top && k < lp->n_top; k++)
        json_array_append_new(top, json_pack("{s:o, s:f, s:o}", "token",
                                             token_string(j, lp->top_tokens[k]), "logprob",
                                             (double)lp->top_logprobs[k], "bytes",
                                             token_bytes(j, lp->top_tokens[k])));
      json_array_append_new(content, json_pack("{s:o, s:f, s:o, s:o}", "token",
                                               token_string(j, lp->token), "logprob",
                                               (double)lp->logprob, "bytes",
                                               token_bytes(j, lp->token), "top_logprobs", top));
    }
    return json_pack("{s:o}", "content", content);
  }
  json_t *tokens = json_array(), *values = json_array(), *tops = json_array(),
         *offsets = json_array();
  size_t offset = 0;
  for (size_t i = 0; i < from; i++) {
    const char *s;
    size_t n = 0;
    hs_tokenizer_token_bytes(j->tok, c->lps[i].token, 0, &s, &n);
    offset += n;
  }
  for (size_t i = from; i < to; i++) {
    const hs_sched_logprobs *lp = &c->lps[i];
    json_array_append_new(tokens, token_string(j, lp->token));
    json_array_append_new(values, json_real(lp->logprob));
    json_t *top = json_object();
    for (uint32_t k = 0; top && k < lp->n_top; k++) {
      json_t *name = token_string(j, lp->top_tokens[k]);
      if (name) json_object_set_new(top, json_string_value(name), json_real(lp->top_logprobs[k]));
      json_decref(name);
    }
    json_array_append_new(tops, top);
    json_array_append_new(offsets, json_integer((json_int_t)offset));
    const char *s;
    size_t n = 0;
    hs_tokenizer_token_bytes(j->tok, lp->token, 0, &s, &n);
    offset += n;
  }
  return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", values,
                   "top_logprobs", tops, "text_offset", offsets);
}

static json_t *usage(const srv_job *j) {
  json_int_t completion = 0;
  for (uint32_t i = 0; i < j->req.n; i++) completion += j->choices[i].n_tokens;
  return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)j->prompt_tokens,
                   "completion_tokens", completion, "total_tokens",
                   (json_int_t)j->prompt_tokens + completion, "prompt_tokens_details",
                   "cached_tokens", (json_int_t)j->cached_tokens);
}

static json_t *envelope(const srv_job *j, const char *object, json_t *choices) {
  return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", j->id, "object", object, "created",
                   (json_int_t)j->created, "model", j->model_name, "choices", choices);
}

char *srv_json_chunk(const srv_job *j, const srv_choice *c, const char *text, size_t n,
                     bool first, size_t lp_from, size_t lp_to, const char *finish) {
  json_t *choice;
  if (is_chat(j)) {
    json_t *delta = json_object();
    if (delta && first) json_object_set_new(delta, "role", json_string("assistant"));
    if (delta && (n || first)) json_object_set_new(delta, "content", json_stringn(text, n));
    choice = json_pack("{s:I, s:o, s:o, s:o}", "index", (json_int_t)c->index, "delta", delta,
                       "logprobs", logprobs(j, c, lp_from, lp_to), "finish_reason",
                       finish_value(finish));
  } else {
    choice = json_pack("{s:s%, s:I, s:o, s:o}", "text", text, n, "index", (json_int_t)c->index,
                       "logprobs", logprobs(j, c, lp_from, lp_to), "finish_reason",
                       finish_value(finish));
  }
  return dump(envelope(j, is_chat(j) ? "chat.completion.chunk" : "text_completion",
                       json_pack("[o]", choice)),
              "data: ", "\n\n");
}

char *srv_json_usage_chunk(const srv_job *j) {
  json_t *v = envelope(j, is_chat(j) ? "chat.completion.chunk" : "text_completion", json_array());
  if (v) json_object_set_new(v, "usage", usage(j));
  return dump(v, "data: ", "\n\n");
}

char *srv_json_result(const srv_job *j) {
  json_t *choices = json_array();
  for (uint32_t i = 0; choices && i < j->req.n; i++) {
    const srv_choice *c = &j->choices[i];
    const char *text = c->text.p ? c->text.p : "";
    json_t *choice =
        is_chat(j)
            ? json_pack("{s:I, s:{s:s, s:s%}, s:o, s:o}", "index", (json_int_t)i, "message",
                        "role", "assistant", "content", text, c->text.n, "logprobs",
                        logprobs(j, c, 0, c->n_lps), "finish_reason", finish_value(c->finish))
            : json_pack("{s:s%, s:I, s:o, s:o}", "text", text, c->text.n, "index",
                        (json_int_t)i, "logprobs", logprobs(j, c, 0, c->n_lps),
                        "finish_reason", finish_value(c->finish));
    json_array_append_new(choices, choice);
  }
  json_t *v = envelope(j, is_chat(j) ? "chat.completion" : "text_completion", choices);
  if (v) json_object_set_new(v, "usage", usage(j));
  return dump(v, "", "");
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* n bytes as base64 (with padding) into a new json string */
static json_t *base64(const unsigned char *p, size_t n) {
  size_t m = 4 * ((n + 2) / 3);
  char *s = hs_malloc(m + 1);
  if (!s) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    s[o++] = B64[v >> 18 & 63];
    s[o++] = B64[v >> 12 & 63];
    s[o++] = i + 1 < n ? B64[v >> 6 & 63] : '=';
    s[o++] = i + 2 < n ? B64[v & 63] : '=';
  }
  s[o] = 0;
  json_t *r = json_stringn(s, o);
  hs_free(s);
  return r;
}

char *srv_json_embeddings(const srv_job *j) {
  json_t *data = json_array();
  json_int_t tokens = 0;
  for (size_t i = 0; data && i < j->n_inputs; i++) {
    const float *v = j->vectors + i * j->n_embd;
    json_t *e;
    if (j->req.base64) {
      e = base64((const unsigned char *)v, j->n_embd * sizeof *v); /* little-endian hosts */
    } else {
      e = json_array();
      for (uint32_t k = 0; e && k < j->n_embd; k++) json_array_append_new(e, json_real(v[k]));
    }
    json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                          (json_int_t)i, "embedding", e));
    tokens += (json_int_t)j->input_lens[i];
  }
  return dump(json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data, "model",
                        j->model_name, "usage", "prompt_tokens", tokens, "total_tokens", tokens),
              "", "");
}

char *srv_json_models(const char *name, long long created, bool one_model) {
  json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "id", name, "object", "model", "created",
                        (json_int_t)created, "owned_by", "hswarm");
  if (one_model) return dump(m, "", "");
  return dump(json_pack("{s:s, s:[o]}", "object", "list", "data", m), "", "");
}

char *srv_json_error(const hs_oai_error *e) {
  return dump(json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", e->message, "type",
                        e->type[0] ? e->type : "invalid_request_error", "param",
                        e->param[0] ? json_string(e->param) : json_null(), "code",
                        e->code[0] ? json_string(e->code) : json_null()),
              "", "");
}
