/* llm_request.c: an agent's JSON request to the model (hswarm/llm.h) read into a
 * hs_llm_request (llm_request.h). Every key is checked: its type, its range; an unknown key is
 * an error, so a misspelt option never silently changes nothing. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm_request.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define MAX_STOPS 16

/* Reads a number field into *out; 0, or -1 with msg filled. */
static int num(json_t *v, const char *key, double lo, double hi, double *out, char *msg,
               size_t cap) {
  if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
    snprintf(msg, cap, "llm: \"%s\" must be a number in [%g, %g]", key, lo, hi);
    return -1;
  }
  *out = json_number_value(v);
  return 0;
}

static char *copy_string(json_t *v, size_t *len) {
  *len = json_string_length(v);
  char *s = hs_malloc(*len + 1);
  if (s) {
    memcpy(s, json_string_value(v), *len);
    s[*len] = 0;
  }
  return s;
}

static int prompt_ids(json_t *v, hs_llm_request *q, char *msg, size_t cap) {
  size_t n = json_array_size(v);
  if (n == 0) {
    snprintf(msg, cap, "llm: \"prompt\" must not be empty");
    return HS_EINVAL;
  }
  q->ids = hs_malloc(n * sizeof *q->ids);
  if (!q->ids) return HS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(v, i);
    if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX) {
      snprintf(msg, cap, "llm: \"prompt\"[%zu] is not a token id", i);
      return HS_EINVAL;
    }
    q->ids[i] = (int32_t)json_integer_value(e);
  }
  q->n_ids = n;
  return 0;
}

/* "stop": an array whose items are token ids (numbers) or stop strings (non-empty strings). */
static int stops(json_t *v, hs_llm_request *q, char *msg, size_t cap) {
  if (json_is_string(v)) {
    json_t *one = json_array();
    if (!one || json_array_append(one, v)) {
      json_decref(one);
      return HS_ENOMEM;
    }
    int rc = stops(one, q, msg, cap);
    json_decref(one);
    return rc;
  }
  if (!json_is_array(v)) {
    snprintf(msg, cap, "llm: \"stop\" must be a string or an array of strings and token ids");
    return HS_EINVAL;
  }
  size_t n = json_array_size(v), nid = 0, nstr = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(v, i);
    if (json_is_integer(e) && json_integer_value(e) >= 0 && json_integer_value(e) <= INT32_MAX)
      nid++;
    else if (json_is_string(e) && json_string_length(e) > 0)
      nstr++;
    else {
      snprintf(msg, cap, "llm: \"stop\"[%zu] is neither a token id nor a non-empty string", i);
      return HS_EINVAL;
    }
  }
  if (nstr > MAX_STOPS) {
    snprintf(msg, cap, "llm: at most %d stop strings", MAX_STOPS);
    return HS_EINVAL;
  }
  int32_t *ids = nid ? hs_malloc(nid * sizeof *ids) : NULL;
  char **strs = nstr ? hs_calloc(nstr, sizeof *strs) : NULL;
  hs_free((void *)q->r.stop_tokens);
  q->r.stop_tokens = ids; /* owned from here, even when a copy below fails */
  q->r.n_stop_tokens = nid;
  q->stops = strs;
  q->n_stops = nstr;
  if ((nid && !ids) || (nstr && !strs)) return HS_ENOMEM;
  for (size_t i = 0, a = 0, b = 0; i < n; i++) {
    json_t *e = json_array_get(v, i);
    size_t len;
    if (json_is_integer(e)) {
      ids[a++] = (int32_t)json_integer_value(e);
    } else if (!(strs[b++] = copy_string(e, &len))) {
      return HS_ENOMEM;
    }
  }
  return 0;
}

static int prompt_forms(const hs_llm_request *q) {
  return (q->ids != NULL) + (q->text != NULL) + q->has_handle;
}

/* Fills q from the JSON object o; 0 or an error in msg. */
static int parse(uint32_t agent, json_t *o, hs_llm_request *q, char *msg, size_t cap) {
  hs_sched_request *r = &q->r;
  r->team = agent;
  const char *key;
  json_t *v;
  double d;
  int rc;
  json_object_foreach(o, key, v) {
    bool is_prompt = !strcmp(key, "prompt") || !strcmp(key, "text") ||
                     !strcmp(key, "prompt_handle");
    if (is_prompt && prompt_forms(q)) {
      snprintf(msg, cap, "llm: give one prompt (\"prompt\", \"text\" or \"prompt_handle\")");
      return HS_EINVAL;
    }
    if (!strcmp(key, "prompt") && json_is_array(v)) {
      if ((rc = prompt_ids(v, q, msg, cap))) return rc;
    } else if (!strcmp(key, "prompt") || !strcmp(key, "text")) {
      if (!json_is_string(v)) {
        snprintf(msg, cap, "llm: \"%s\" must be a string%s", key,
                 strcmp(key, "prompt") ? "" : " or an array of token ids");
        return HS_EINVAL;
      }
      if (!(q->text = copy_string(v, &q->text_len))) return HS_ENOMEM;
    } else if (!strcmp(key, "prompt_handle")) {
      if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        snprintf(msg, cap, "llm: \"prompt_handle\" must be an arena handle (a positive integer)");
        return HS_EINVAL;
      }
      q->has_handle = true;
      q->handle = (uint64_t)json_integer_value(v);
    } else if (!strcmp(key, "prefix")) {
      if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        snprintf(msg, cap, "llm: \"prefix\" must be a prefix id from a pin (a positive integer)");
        return HS_EINVAL;
      }
      q->prefix = (uint64_t)json_integer_value(v);
    } else if (!strcmp(key, "special")) {
      q->special = json_is_true(v);
    } else if (!strcmp(key, "max_tokens")) {
      if (num(v, key, 0, 1 << 24, &d, msg, cap)) return HS_EINVAL;
      r->max_tokens = (uint32_t)d;
    } else if (!strcmp(key, "temperature")) {
      if (num(v, key, 0, 1e6, &d, msg, cap)) return HS_EINVAL;
      r->sampling.temperature = (float)d;
    } else if (!strcmp(key, "top_k")) {
      if (num(v, key, 0, 1 << 24, &d, msg, cap)) return HS_EINVAL;
      r->sampling.top_k = (int32_t)d;
    } else if (!strcmp(key, "top_p")) {
      if (num(v, key, 1e-9, 1, &d, msg, cap)) return HS_EINVAL;
      r->sampling.top_p = (float)d;
    } else if (!strcmp(key, "min_p")) {
      if (num(v, key, 0, 1, &d, msg, cap)) return HS_EINVAL;
      r->sampling.min_p = (float)d;
    } else if (!strcmp(key, "repetition_penalty")) {
      if (num(v, key, 1e-6, 1e6, &d, msg, cap)) return HS_EINVAL;
      r->sampling.repetition_penalty = (float)d;
    } else if (!strcmp(key, "seed")) {
      if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(msg, cap, "llm: \"seed\" must be a non-negative integer");
        return HS_EINVAL;
      }
      r->sampling.seed = (uint64_t)json_integer_value(v);
      q->has_seed = true;
    } else if (!strcmp(key, "priority")) {
      if (!json_is_string(v) || hs_priority_parse(json_string_value(v), &r->priority)) {
        snprintf(msg, cap, "llm: \"priority\" must be \"urgent\", \"normal\" or \"background\"");
        return HS_EINVAL;
      }
    } else if (!strcmp(key, "team")) {
      if (num(v, key, 0, UINT32_MAX, &d, msg, cap)) return HS_EINVAL;
      r->team = (uint32_t)d;
    } else if (!strcmp(key, "deadline_steps")) {
      if (num(v, key, 0, 1e15, &d, msg, cap)) return HS_EINVAL;
      r->deadline_steps = (uint64_t)d;
    } else if (!strcmp(key, "ignore_eos")) {
      r->ignore_eos = json_is_true(v);
    } else if (!strcmp(key, "stop")) {
      if ((rc = stops(v, q, msg, cap))) return rc;
    } else if (!strcmp(key, "grammar")) {
      size_t n;
      if (!json_is_string(v)) {
        snprintf(msg, cap, "llm: \"grammar\" must be a string (GBNF)");
        return HS_EINVAL;
      }
      if (!(q->grammar = copy_string(v, &n))) return HS_ENOMEM;
    } else if (!strcmp(key, "schema")) {
      if (json_is_string(v)) {
        size_t n;
        if (!(q->schema = copy_string(v, &n))) return HS_ENOMEM;
      } else if (json_is_object(v)) {
        char *text = json_dumps(v, JSON_COMPACT);
        if (!text) return HS_ENOMEM;
        q->schema = hs_malloc(strlen(text) + 1);
        if (q->schema) memcpy(q->schema, text, strlen(text) + 1);
        free(text);
        if (!q->schema) return HS_ENOMEM;
      } else {
        snprintf(msg, cap, "llm: \"schema\" must be a JSON schema (an object, or its text)");
        return HS_EINVAL;
      }
    } else {
      snprintf(msg, cap, "llm: unknown key \"%s\"", key);
      return HS_EINVAL;
    }
  }
  if (q->grammar && q->schema) {
    snprintf(msg, cap, "llm: give \"grammar\" or \"schema\", not both");
    return HS_EINVAL;
  }
  if (!prompt_forms(q)) {
    snprintf(msg, cap, "llm: the request needs a prompt (\"prompt\": a string or token ids, "
                       "or \"prompt_handle\")");
    return HS_EINVAL;
  }
  return 0;
}

int hs_llm_request_parse(uint32_t agent, const void *text, size_t len, hs_llm_request *q,
                         char *msg, size_t cap) {
  memset(q, 0, sizeof *q);
  hs_sched_request_init(&q->r);
  if (cap) msg[0] = 0;
  json_error_t je;
  json_t *o = json_loadb(text, len, 0, &je);
  if (!o || !json_is_object(o)) {
    snprintf(msg, cap, "llm: the request is not a JSON object%s%s", o ? "" : ": ",
             o ? "" : je.text);
    json_decref(o);
    return HS_EINVAL;
  }
  int rc = parse(agent, o, q, msg, cap);
  json_decref(o);
  return rc;
}

void hs_llm_request_free(hs_llm_request *q) {
  hs_free(q->ids);
  hs_free(q->text);
  for (size_t i = 0; i < q->n_stops; i++) hs_free(q->stops[i]);
  hs_free(q->stops);
  hs_free(q->grammar);
  hs_free(q->schema);
  hs_free((void *)q->r.stop_tokens);
  memset(q, 0, sizeof *q);
}
