/* llm_op.c: the model as a runtime operation (hswarm/llm.h): a JSON request from an agent
 * becomes a scheduler request; its completion becomes the operation's JSON result.
 *
 * The runtime's loop drives the scheduler through hs_runtime_set_engine, so everything happens
 * on the loop thread: start() parses and submits, the scheduler's on_done (inside an engine
 * step) posts the completion, and the loop delivers it at the next step boundary. */
#include <jansson.h>
#include <string.h>

#include "agent/llm_request.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/llm.h"

struct hs_llm {
  hs_runtime *rt;
  hs_sched *s;
  const hs_tokenizer *tok;
};

/* One request in flight. */
typedef struct call {
  hs_llm *l;
  hs_op_token token;
} call;

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

static void on_done(const hs_sched_result *r, void *ud) {
  call *c = ud;
  hs_llm *l = c->l;
  if (r->status) {
    char msg[600];
    snprintf(msg, sizeof msg, "llm: %s", r->error);
    fail(l->rt, c->token, r->status, msg);
    hs_free(c);
    return;
  }
  json_t *o = json_object(), *toks = json_array();
  for (size_t i = 0; o && toks && i < r->n_tokens; i++)
    json_array_append_new(toks, json_integer(r->tokens[i]));
  json_object_set_new(o, "tokens", toks);
  if (l->tok) {
    size_t n = 0;
    hs_tokenizer_decode(l->tok, r->tokens, r->n_tokens, 0, NULL, 0, &n);
    char *text = hs_malloc(n + 1);
    if (text && hs_tokenizer_decode(l->tok, r->tokens, r->n_tokens, 0, text, n, &n) == 0)
      json_object_set_new(o, "text", json_stringn(text, n));
    hs_free(text);
  }
  json_object_set_new(o, "finish", json_string(finish_name(r->finish)));
  json_object_set_new(o, "prompt_tokens", json_integer(r->prompt_tokens));
  json_object_set_new(o, "prompt_reused", json_integer(r->prompt_reused));
  char *out = json_dumps(o, JSON_COMPACT);
  if (out) hs_runtime_op_complete(l->rt, c->token, 0, out, strlen(out));
  else fail(l->rt, c->token, HS_ENOMEM, "llm: out of memory for the result");
  free(out);
  json_decref(o);
  hs_free(c);
}

static int start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                 size_t len, void *ud) {
  hs_llm *l = ud;
  char msg[512] = "";
  hs_sched_request r;
  int32_t *ids = NULL;
  int rc = hs_llm_request_parse(l->tok, agent, req, len, &r, &ids, msg, sizeof msg);
  call *c = rc ? NULL : hs_malloc(sizeof *c);
  if (!rc && !c) rc = HS_ENOMEM;
  if (!rc) {
    *c = (call){l, token};
    r.on_done = on_done;
    r.ud = c;
    rc = hs_sched_submit(l->s, &r, NULL); /* copies the prompt and stop tokens */
    if (rc) {
      snprintf(msg, sizeof msg, "llm: %s", hs_sched_last_error());
      hs_free(c);
    }
  }
  hs_llm_request_free(&r, ids);
  if (rc) fail(rt, token, rc, msg[0] ? msg : "llm: out of memory");
  return 0;
}

int hs_llm_attach(hs_runtime *rt, hs_sched *s, const hs_tokenizer *tok, const char *kind,
                  hs_llm **out) {
  if (!rt || !s || !out) return HS_EINVAL;
  *out = NULL;
  hs_llm *l = hs_malloc(sizeof *l);
  if (!l) return HS_ENOMEM;
  *l = (hs_llm){rt, s, tok};
  int rc = hs_runtime_register_op(rt, kind ? kind : "llm", 1, start, l);
  if (rc) {
    hs_free(l);
    return rc;
  }
  hs_runtime_set_engine(rt, engine_step, s);
  *out = l;
  return 0;
}

void hs_llm_free(hs_llm *l) { hs_free(l); }
