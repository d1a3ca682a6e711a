/* llm_request.c: an agent's JSON request to the model (hswarm/llm.h) read into a scheduler
 * request (see llm_request.h). Every key is checked: its type, its range; an unknown key is an
 * error, so a misspelt option never silently changes nothing. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "agent/llm_request.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

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

/* Fills r and *ids from the JSON object o; 0 or an error in msg. */
static int parse(const hs_tokenizer *tok, uint32_t agent, json_t *o, hs_sched_request *r,
                 int32_t **ids, char *msg, size_t cap) {
  r->team = agent;
  bool special = false;
  json_t *sp = json_object_get(o, "special");
  if (sp) special = json_is_true(sp);
  const char *key;
  json_t *v;
  double d;
  json_object_foreach(o, key, v) {
    if ((!strcmp(key, "prompt") || !strcmp(key, "text")) && *ids) {
      snprintf(msg, cap, "llm: give \"prompt\" or \"text\", not both");
      return HS_EINVAL;
    }
    if (!strcmp(key, "prompt")) {
      if (!json_is_array(v) || json_array_size(v) == 0) {
        snprintf(msg, cap, "llm: \"prompt\" must be a non-empty array of token ids");
        return HS_EINVAL;
      }
      *ids = hs_malloc(json_array_size(v) * sizeof **ids);
      if (!*ids) return HS_ENOMEM;
      for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
            json_integer_value(e) > INT32_MAX) {
          snprintf(msg, cap, "llm: \"prompt\"[%zu] is not a token id", i);
          return HS_EINVAL;
        }
        (*ids)[i] = (int32_t)json_integer_value(e);
      }
      r->n_prompt = json_array_size(v);
    } else if (!strcmp(key, "text")) {
      if (!json_is_string(v)) {
        snprintf(msg, cap, "llm: \"text\" must be a string");
        return HS_EINVAL;
      }
      if (!tok) {
        snprintf(msg, cap, "llm: \"text\" needs a tokenizer; give \"prompt\" token ids");
        return HS_EINVAL;
      }
      unsigned fl = HS_TOKENIZE_ADD_BOS | (special ? HS_TOKENIZE_PARSE_SPECIAL : 0);
      size_t n = 0;
      int rc = hs_tokenizer_encode(tok, json_string_value(v), json_string_length(v), fl, NULL,
                                   0, &n);
      if (rc && rc != HS_ENOSPC) {
        snprintf(msg, cap, "llm: \"text\": %s", hs_tokenizer_last_error());
        return rc;
      }
      *ids = hs_malloc((n ? n : 1) * sizeof **ids);
      if (!*ids) return HS_ENOMEM;
      rc = hs_tokenizer_encode(tok, json_string_value(v), json_string_length(v), fl, *ids, n,
                               &n);
      if (rc) {
        snprintf(msg, cap, "llm: \"text\": %s", hs_tokenizer_last_error());
        return rc;
      }
      r->n_prompt = n;
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
      if (!json_is_array(v)) {
        snprintf(msg, cap, "llm: \"stop\" must be an array of token ids");
        return HS_EINVAL;
      }
      size_t n = json_array_size(v);
      int32_t *st = n ? hs_malloc(n * sizeof *st) : NULL;
      if (n && !st) return HS_ENOMEM;
      for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e)) {
          hs_free(st);
          snprintf(msg, cap, "llm: \"stop\"[%zu] is not a token id", i);
          return HS_EINVAL;
        }
        st[i] = (int32_t)json_integer_value(e);
      }
      hs_free((void *)r->stop_tokens);
      r->stop_tokens = st; /* freed by start() */
      r->n_stop_tokens = n;
    } else if (strcmp(key, "special")) {
      snprintf(msg, cap, "llm: unknown key \"%s\"", key);
      return HS_EINVAL;
    }
  }
  if (!*ids) {
    snprintf(msg, cap, "llm: the request needs \"prompt\" (token ids) or \"text\"");
    return HS_EINVAL;
  }
  r->prompt = *ids;
  return 0;
}

int hs_llm_request_parse(const hs_tokenizer *tok, uint32_t agent, const void *text, size_t len,
                         hs_sched_request *r, int32_t **ids, char *msg, size_t cap) {
  hs_sched_request_init(r);
  *ids = NULL;
  if (cap) msg[0] = 0;
  json_error_t je;
  json_t *o = json_loadb(text, len, 0, &je);
  if (!o || !json_is_object(o)) {
    snprintf(msg, cap, "llm: the request is not a JSON object (%s)", o ? "" : je.text);
    json_decref(o);
    return HS_EINVAL;
  }
  int rc = parse(tok, agent, o, r, ids, msg, cap);
  json_decref(o);
  return rc;
}

void hs_llm_request_free(hs_sched_request *r, int32_t *ids) {
  hs_free(ids);
  hs_free((void *)r->stop_tokens);
  r->stop_tokens = NULL;
  r->n_stop_tokens = 0;
}
