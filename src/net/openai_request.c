/* openai_request.c: OpenAI-style request bodies parsed and checked (openai_request.h).
 *
 * One pass over the top-level object: every key is looked up in the table of the keys the
 * request's kind knows, and its handler checks the value's JSON type and range and stores it;
 * an unknown key, a wrong type or a value out of range ends the parse with an error naming the
 * parameter. JSON null stands for "not given" everywhere, as the OpenAI API treats it. Checks
 * that involve several keys (top_logprobs needs logprobs) run at the end. */
#include "net/openai_request.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define DEFAULT(v, d) ((v) ? (v) : (d))

int hs_oai_error_set(hs_oai_error *err, int status, const char *param, const char *code,
                     const char *fmt, ...) {
  if (!err) return HS_EINVAL;
  err->status = status;
  snprintf(err->param, sizeof err->param, "%s", param ? param : "");
  snprintf(err->code, sizeof err->code, "%s", code ? code : "");
  snprintf(err->type, sizeof err->type, "%s",
           status >= 500 ? "server_error" : "invalid_request_error");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return status >= 500 ? HS_ENOMEM : HS_EINVAL;
}

#define BAD(param, ...) hs_oai_error_set(p->err, 400, (param), NULL, __VA_ARGS__)
#define NOMEM() hs_oai_error_set(p->err, 500, NULL, NULL, "out of memory")

typedef struct parse {
  hs_oai_request *q;
  hs_oai_error *err;
  hs_oai_limits lim;
  json_int_t logprobs_int; /* completions' logprobs, -1 when not given */
  bool top_logprobs_given;
} parse;

/* ---- values ---------------------------------------------------------------------------- */

static int get_bool(parse *p, const char *key, const json_t *v, bool *out) {
  if (!json_is_boolean(v)) return BAD(key, "'%s' must be a boolean", key);
  *out = json_is_true(v);
  return 0;
}

static int get_float(parse *p, const char *key, const json_t *v, double lo, double hi,
                     float *out) {
  if (!json_is_number(v)) return BAD(key, "'%s' must be a number", key);
  double d = json_number_value(v);
  if (!isfinite(d) || d < lo || d > hi)
    return BAD(key, "'%s' must be between %g and %g (got %g)", key, lo, hi, d);
  *out = (float)d;
  return 0;
}

static int get_int(parse *p, const char *key, const json_t *v, json_int_t lo, json_int_t hi,
                   json_int_t *out) {
  if (!json_is_integer(v)) return BAD(key, "'%s' must be an integer", key);
  json_int_t i = json_integer_value(v);
  if (i < lo || i > hi)
    return BAD(key, "'%s' must be between %lld and %lld (got %lld)", key, (long long)lo,
               (long long)hi, (long long)i);
  *out = i;
  return 0;
}

static int dup_string(parse *p, const char *key, const json_t *v, char **out) {
  if (!json_is_string(v)) return BAD(key, "'%s' must be a string", key);
  char *s = hs_malloc(json_string_length(v) + 1);
  if (!s) return NOMEM();
  memcpy(s, json_string_value(v), json_string_length(v) + 1);
  if (strlen(s) != json_string_length(v)) {
    hs_free(s);
    return BAD(key, "'%s' contains a NUL character", key);
  }
  hs_free(*out);
  *out = s;
  return 0;
}

/* Token ids: a non-empty array of integers in [0, INT32_MAX]. */
static int get_ids(parse *p, const char *key, const json_t *v, hs_oai_ids *out) {
  size_t n = json_array_size(v);
  if (n == 0) return BAD(key, "'%s' must not be empty", key);
  int32_t *ids = hs_calloc(n, sizeof *ids);
  if (!ids) return NOMEM();
  for (size_t i = 0; i < n; i++) {
    const json_t *t = json_array_get(v, i);
    if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX) {
      hs_free(ids);
      return BAD(key, "'%s[%zu]' must be a token id (an integer from 0)", key, i);
    }
    ids[i] = (int32_t)json_integer_value(t);
  }
  out->ids = ids;
  out->n = n;
  return 0;
}

/* ---- keys ------------------------------------------------------------------------------ */

static int k_model(parse *p, const char *k, const json_t *v) {
  return dup_string(p, k, v, &p->q->model);
}

static int k_prompt(parse *p, const char *k, const json_t *v) {
  if (json_is_string(v)) return dup_string(p, k, v, &p->q->prompt);
  if (!json_is_array(v)) return BAD(k, "'prompt' must be a string or an array of token ids");
  const json_t *first = json_array_get(v, 0);
  if (json_array_size(v) == 1 && (json_is_string(first) || json_is_array(first)))
    return k_prompt(p, k, first); /* one prompt in a list */
  if (json_array_size(v) > 1 && (json_is_string(first) || json_is_array(first)))
    return BAD(k, "one prompt per request: send %zu prompts as %zu requests, or use 'n'",
               json_array_size(v), json_array_size(v));
  return get_ids(p, k, v, &p->q->prompt_ids);
}

/* A message's content: a string, or an array of text parts (joined by newlines). */
static int message_content(parse *p, size_t i, const json_t *c, char **out) {
  char key[48];
  snprintf(key, sizeof key, "messages[%zu].content", i);
  if (json_is_string(c)) return dup_string(p, key, c, out);
  if (!json_is_array(c)) return BAD(key, "'%s' must be a string or an array of text parts", key);
  size_t total = 1, j;
  const json_t *part;
  json_array_foreach(c, j, part) {
    const json_t *type = json_object_get(part, "type");
    const json_t *text = json_object_get(part, "text");
    if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0)
      return BAD(key, "'%s[%zu]': only parts of type \"text\" are supported", key, j);
    if (!json_is_string(text)) return BAD(key, "'%s[%zu].text' must be a string", key, j);
    total += json_string_length(text) + 1;
  }
  char *s = hs_malloc(total);
  if (!s) return NOMEM();
  size_t at = 0;
  json_array_foreach(c, j, part) {
    const json_t *text = json_object_get(part, "text");
    if (at) s[at++] = '\n';
    memcpy(s + at, json_string_value(text), json_string_length(text));
    at += json_string_length(text);
  }
  s[at] = 0;
  if (strlen(s) != at) {
    hs_free(s);
    return BAD(key, "'%s' contains a NUL character", key);
  }
  *out = s;
  return 0;
}

static int k_messages(parse *p, const char *k, const json_t *v) {
  size_t n = json_array_size(v);
  if (!json_is_array(v) || n == 0) return BAD(k, "'messages' must be a non-empty array");
  if (n > p->lim.max_messages)
    return BAD(k, "too many messages: %zu (at most %u)", n, p->lim.max_messages);
  hs_chat_message *m = hs_calloc(n, sizeof *m);
  if (!m) return NOMEM();
  p->q->messages = m;
  for (size_t i = 0; i < n; i++) {
    const json_t *msg = json_array_get(v, i);
    char key[48];
    snprintf(key, sizeof key, "messages[%zu]", i);
    if (!json_is_object(msg)) return BAD(key, "'%s' must be an object", key);
    const char *mk;
    const json_t *mv;
    json_object_foreach((json_t *)msg, mk, mv) {
      if (strcmp(mk, "role") && strcmp(mk, "content") && strcmp(mk, "name"))
        return BAD(key, "'%s': '%s' is not supported (tools and function calls are not)", key,
                   mk);
    }
    const json_t *role = json_object_get(msg, "role");
    const char *r = json_string_value(role);
    if (!r) return BAD(key, "'%s.role' must be a string", key);
    const char *as = !strcmp(r, "developer") ? "system"
                     : (!strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant"))
                         ? r
                         : NULL;
    if (!as)
      return BAD(key, "'%s.role' is \"%.32s\": it must be system, developer, user or assistant",
                 key, r);
    char *content = NULL;
    int rc = message_content(p, i, json_object_get(msg, "content"), &content);
    if (rc) return rc;
    char *role_copy = hs_strdup(as);
    if (!role_copy) {
      hs_free(content);
      return NOMEM();
    }
    m[i].role = role_copy;
    m[i].content = content;
    p->q->n_messages = i + 1;
  }
  return 0;
}

static int k_input(parse *p, const char *k, const json_t *v) {
  hs_oai_request *q = p->q;
  if (json_is_string(v)) {
    if (!(q->inputs = hs_calloc(1, sizeof *q->inputs))) return NOMEM();
    q->n_inputs = 1;
    int rc = dup_string(p, k, v, &q->inputs[0]);
    if (!rc && !q->inputs[0][0]) rc = BAD(k, "'input' must not be an empty string");
    return rc;
  }
  size_t n = json_array_size(v);
  if (!json_is_array(v) || n == 0)
    return BAD(k, "'input' must be a string, an array of strings or of token ids");
  const json_t *first = json_array_get(v, 0);
  if (json_is_integer(first)) {
    if (!(q->input_ids = hs_calloc(1, sizeof *q->input_ids))) return NOMEM();
    q->n_inputs = 1;
    return get_ids(p, k, v, &q->input_ids[0]);
  }
  if (n > p->lim.max_inputs) return BAD(k, "too many inputs: %zu (at most %u)", n, p->lim.max_inputs);
  bool texts = json_is_string(first);
  if (texts ? !(q->inputs = hs_calloc(n, sizeof *q->inputs))
            : !(q->input_ids = hs_calloc(n, sizeof *q->input_ids)))
    return NOMEM();
  for (size_t i = 0; i < n; i++) {
    const json_t *x = json_array_get(v, i);
    char key[32];
    snprintf(key, sizeof key, "input[%zu]", i);
    int rc;
    if (texts) {
      rc = json_is_string(x) ? dup_string(p, key, x, &q->inputs[i])
                             : BAD(key, "'%s' must be a string, as the first input", key);
      if (!rc && !q->inputs[i][0]) rc = BAD(key, "'%s' must not be an empty string", key);
    } else {
      rc = json_is_array(x) ? get_ids(p, key, x, &q->input_ids[i])
                            : BAD(key, "'%s' must be an array of token ids", key);
    }
    q->n_inputs = i + 1;
    if (rc) return rc;
  }
  return 0;
}

static int k_max_tokens(parse *p, const char *k, const json_t *v) {
  json_int_t n = 0;
  int rc = get_int(p, k, v, p->q->kind == HS_OAI_COMPLETION ? 0 : 1, p->lim.max_tokens, &n);
  if (!rc) {
    p->q->max_tokens = (uint32_t)n;
    p->q->has_max_tokens = true;
  }
  return rc;
}

static int k_temperature(parse *p, const char *k, const json_t *v) {
  return get_float(p, k, v, 0, 2, &p->q->temperature);
}
static int k_top_p(parse *p, const char *k, const json_t *v) {
  return get_float(p, k, v, 0, 1, &p->q->top_p);
}
static int k_presence(parse *p, const char *k, const json_t *v) {
  return get_float(p, k, v, -2, 2, &p->q->presence_penalty);
}
static int k_frequency(parse *p, const char *k, const json_t *v) {
  return get_float(p, k, v, -2, 2, &p->q->frequency_penalty);
}

static int k_seed(parse *p, const char *k, const json_t *v) {
  if (!json_is_integer(v)) return BAD(k, "'seed' must be an integer");
  p->q->has_seed = true;
  p->q->seed = (uint64_t)json_integer_value(v);
  return 0;
}

static int k_stop(parse *p, const char *k, const json_t *v) {
  hs_oai_request *q = p->q;
  size_t n = json_is_string(v) ? 1 : json_array_size(v);
  if (!json_is_string(v) && !json_is_array(v))
    return BAD(k, "'stop' must be a string or an array of strings");
  if (n > p->lim.max_stop) return BAD(k, "'stop' has %zu strings (at most %u)", n, p->lim.max_stop);
  if (n == 0) return 0;
  if (!(q->stops = hs_calloc(n, sizeof *q->stops))) return NOMEM();
  for (size_t i = 0; i < n; i++) {
    const json_t *s = json_is_string(v) ? v : json_array_get(v, i);
    int rc = dup_string(p, k, s, &q->stops[i]);
    q->n_stops = i + (rc == 0);
    if (rc) return rc;
    size_t len = strlen(q->stops[i]);
    if (len == 0 || len > p->lim.max_stop_len)
      return BAD(k, "a stop string must have 1 to %u bytes (got %zu)", p->lim.max_stop_len, len);
  }
  return 0;
}

static int k_n(parse *p, const char *k, const json_t *v) {
  json_int_t n = 0;
  int rc = get_int(p, k, v, 1, p->lim.max_n, &n);
  if (!rc) p->q->n = (uint32_t)n;
  return rc;
}

static int k_stream(parse *p, const char *k, const json_t *v) {
  return get_bool(p, k, v, &p->q->stream);
}

static int k_stream_options(parse *p, const char *k, const json_t *v) {
  if (!json_is_object(v)) return BAD(k, "'stream_options' must be an object");
  const char *sk;
  const json_t *sv;
  json_object_foreach((json_t *)v, sk, sv) {
    if (strcmp(sk, "include_usage"))
      return BAD(k, "'stream_options.%s' is not supported (only include_usage)", sk);
    int rc = get_bool(p, "stream_options.include_usage", sv, &p->q->stream_usage);
    if (rc) return rc;
  }
  return 0;
}

static int k_logprobs(parse *p, const char *k, const json_t *v) {
  if (p->q->kind == HS_OAI_CHAT) return get_bool(p, k, v, &p->q->logprobs);
  return get_int(p, k, v, 0, 5, &p->logprobs_int); /* completions: how many alternatives */
}

static int k_top_logprobs(parse *p, const char *k, const json_t *v) {
  json_int_t n = 0;
  int rc = get_int(p, k, v, 0, 20, &n);
  if (!rc) {
    p->q->top_logprobs = (uint32_t)n;
    p->top_logprobs_given = true;
  }
  return rc;
}

static int k_echo(parse *p, const char *k, const json_t *v) {
  return get_bool(p, k, v, &p->q->echo);
}

static int k_response_format(parse *p, const char *k, const json_t *v) {
  const char *type = json_string_value(json_object_get(v, "type"));
  if (!json_is_object(v) || !type)
    return BAD(k, "'response_format' must be an object with a \"type\"");
  if (!strcmp(type, "text")) return 0;
  const json_t *schema;
  json_t *any = NULL;
  if (!strcmp(type, "json_object")) {
    schema = any = json_pack("{s:s}", "type", "object");
    if (!any) return NOMEM();
  } else if (!strcmp(type, "json_schema")) {
    const json_t *js = json_object_get(v, "json_schema");
    if (!json_is_object(js))
      return BAD("response_format.json_schema", "'response_format.json_schema' must be an object");
    schema = json_object_get(js, "schema");
    if (!json_is_object(schema) && !json_is_boolean(schema))
      return BAD("response_format.json_schema.schema",
                 "'response_format.json_schema.schema' must be a JSON schema (an object)");
  } else {
    return BAD("response_format.type",
               "'response_format.type' is \"%.32s\": it must be text, json_object or json_schema",
               type);
  }
  char *text = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(any);
  if (!text) return NOMEM();
  hs_free(p->q->json_schema);
  p->q->json_schema = hs_strdup(text);
  free(text); /* jansson's allocator */
  return p->q->json_schema ? 0 : NOMEM();
}

static int k_grammar(parse *p, const char *k, const json_t *v) {
  int rc = dup_string(p, k, v, &p->q->grammar);
  if (!rc && !p->q->grammar[0]) rc = BAD(k, "'grammar' must not be empty");
  return rc;
}

static int k_priority(parse *p, const char *k, const json_t *v) {
  if (!json_is_string(v) || hs_priority_parse(json_string_value(v), &p->q->priority) != 0)
    return BAD(k, "'priority' must be \"urgent\", \"normal\" or \"background\"");
  return 0;
}

static int k_team(parse *p, const char *k, const json_t *v) {
  json_int_t t = 0;
  int rc = get_int(p, k, v, 0, UINT32_MAX, &t);
  if (!rc) p->q->team = (uint32_t)t;
  return rc;
}

static int k_encoding(parse *p, const char *k, const json_t *v) {
  const char *f = json_string_value(v);
  if (!f || (strcmp(f, "float") && strcmp(f, "base64")))
    return BAD(k, "'encoding_format' must be \"float\" or \"base64\"");
  p->q->base64 = !strcmp(f, "base64");
  return 0;
}

/* Keys an OpenAI client may send that change nothing here. */
static int k_ignored(parse *p, const char *k, const json_t *v) {
  (void)p, (void)k, (void)v;
  return 0;
}

static int k_logit_bias(parse *p, const char *k, const json_t *v) {
  if (!json_is_object(v) || json_object_size(v) > 0)
    return BAD(k, "'logit_bias' is not supported");
  return 0;
}

static int k_best_of(parse *p, const char *k, const json_t *v) {
  if (!json_is_integer(v) || json_integer_value(v) != 1) return BAD(k, "'best_of' is not supported");
  return 0;
}

typedef int (*key_fn)(parse *, const char *, const json_t *);

enum { C = 1 << HS_OAI_COMPLETION, H = 1 << HS_OAI_CHAT, E = 1 << HS_OAI_EMBEDDING,
       P = 1 << HS_OAI_PREFIX };

static const struct {
  const char *key;
  unsigned kinds;
  key_fn fn;
} KEYS[] = {
    {"model", C | H | E | P, k_model},
    {"prompt", C | P, k_prompt},
    {"messages", H | P, k_messages},
    {"input", E, k_input},
    {"max_tokens", C | H, k_max_tokens},
    {"max_completion_tokens", H, k_max_tokens},
    {"temperature", C | H, k_temperature},
    {"top_p", C | H, k_top_p},
    {"presence_penalty", C | H, k_presence},
    {"frequency_penalty", C | H, k_frequency},
    {"seed", C | H, k_seed},
    {"stop", C | H, k_stop},
    {"n", C | H, k_n},
    {"stream", C | H, k_stream},
    {"stream_options", C | H, k_stream_options},
    {"logprobs", C | H, k_logprobs},
    {"top_logprobs", H, k_top_logprobs},
    {"echo", C, k_echo},
    {"response_format", C | H, k_response_format},
    {"grammar", C | H, k_grammar},
    {"priority", C | H | E, k_priority},
    {"team", C | H | E, k_team},
    {"encoding_format", E, k_encoding},
    {"user", C | H | E, k_ignored},
    {"metadata", H, k_ignored},
    {"store", H, k_ignored},
    {"service_tier", C | H, k_ignored},
    {"parallel_tool_calls", H, k_ignored},
    {"logit_bias", C | H, k_logit_bias},
    {"best_of", C, k_best_of},
};

/* ---- the request ----------------------------------------------------------------------- */

static int finish(parse *p) {
  hs_oai_request *q = p->q;
  int forms = (q->prompt || q->prompt_ids.ids) + (q->messages != NULL) + (q->n_inputs > 0);
  if (forms == 0) {
    const char *what = q->kind == HS_OAI_CHAT ? "messages"
                       : q->kind == HS_OAI_EMBEDDING ? "input" : "prompt";
    return BAD(what, "'%s' is required%s", what,
               q->kind == HS_OAI_PREFIX ? " (or 'messages')" : "");
  }
  if (forms > 1) return BAD("messages", "give 'prompt' or 'messages', not both");
  if (q->kind == HS_OAI_COMPLETION && p->logprobs_int >= 0) {
    q->logprobs = true;
    q->top_logprobs = (uint32_t)p->logprobs_int;
  }
  if (q->grammar && q->json_schema)
    return BAD("grammar", "give 'grammar' or a JSON 'response_format', not both");
  if (p->top_logprobs_given && !q->logprobs && q->top_logprobs > 0)
    return BAD("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  if (q->kind == HS_OAI_COMPLETION && q->max_tokens == 0 && !q->echo)
    return BAD("max_tokens", "'max_tokens' must be at least 1 (0 only with echo)");
  return 0;
}

int hs_oai_request_parse(hs_oai_kind kind, const void *body, size_t len,
                         const hs_oai_limits *limits, hs_oai_request *q, hs_oai_error *err) {
  hs_oai_error scratch;
  if (!err) err = &scratch;
  memset(err, 0, sizeof *err);
  memset(q, 0, sizeof *q);
  q->kind = kind;
  parse ps = {.q = q, .err = err, .logprobs_int = -1}, *p = &ps;
  hs_oai_limits lim = limits ? *limits : (hs_oai_limits){0};
  p->lim.max_tokens = DEFAULT(lim.max_tokens, 4096);
  p->lim.max_n = DEFAULT(lim.max_n, 16);
  p->lim.max_messages = DEFAULT(lim.max_messages, 256);
  p->lim.max_inputs = DEFAULT(lim.max_inputs, 256);
  p->lim.max_stop = DEFAULT(lim.max_stop, 4);
  p->lim.max_stop_len = DEFAULT(lim.max_stop_len, 256);
  q->max_tokens = p->lim.max_tokens;
  q->temperature = 1.0f;
  q->top_p = 1.0f;
  q->n = 1;
  q->priority = HS_PRIORITY_NORMAL;
  if ((unsigned)kind > HS_OAI_PREFIX) return hs_oai_error_set(err, 400, NULL, NULL, "no such endpoint");

  json_error_t je;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return hs_oai_error_set(err, 400, NULL, "invalid_json",
                            "the body is not valid JSON: %s (line %d, column %d)", je.text,
                            je.line, je.column);
  int rc = 0;
  if (!json_is_object(root)) {
    rc = BAD(NULL, "the body must be a JSON object");
  } else {
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
      size_t i = 0;
      while (i < sizeof KEYS / sizeof KEYS[0] &&
             (strcmp(KEYS[i].key, key) || !(KEYS[i].kinds & (1u << kind))))
        i++;
      if (i == sizeof KEYS / sizeof KEYS[0]) {
        rc = BAD(key, "unrecognized request argument supplied: %.64s", key);
        break;
      }
      if (json_is_null(v)) continue; /* not given */
      if ((rc = KEYS[i].fn(p, key, v))) break;
    }
    if (!rc) rc = finish(p);
  }
  json_decref(root);
  if (rc) hs_oai_request_free(q);
  return rc;
}

static void free_ids(hs_oai_ids *x) {
  hs_free(x->ids);
  x->ids = NULL;
  x->n = 0;
}

void hs_oai_request_free(hs_oai_request *q) {
  if (!q) return;
  hs_free(q->model);
  hs_free(q->prompt);
  free_ids(&q->prompt_ids);
  for (size_t i = 0; q->messages && i < q->n_messages; i++) {
    hs_free((char *)q->messages[i].role);
    hs_free((char *)q->messages[i].content);
  }
  hs_free(q->messages);
  for (size_t i = 0; q->inputs && i < q->n_inputs; i++) hs_free(q->inputs[i]);
  hs_free(q->inputs);
  for (size_t i = 0; q->input_ids && i < q->n_inputs; i++) free_ids(&q->input_ids[i]);
  hs_free(q->input_ids);
  for (size_t i = 0; i < q->n_stops; i++) hs_free(q->stops[i]);
  hs_free(q->stops);
  hs_free(q->json_schema);
  hs_free(q->grammar);
  hs_oai_kind kind = q->kind;
  memset(q, 0, sizeof *q);
  q->kind = kind;
}
