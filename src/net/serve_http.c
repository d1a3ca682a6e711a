/* serve_http.c: the HTTP side of hswarm serve (serve.h) on libmicrohttpd: routing, the bearer
 * token, limits, request bodies turned into jobs for the engine thread (serve_engine.h), and
 * responses: whole JSON bodies, or server-sent events read from the job as the engine writes
 * them.
 *
 * A connection's thread blocks while its job runs. A stream's reader waits at most a second for
 * new events and otherwise sends an SSE comment line (which clients ignore): so a client that
 * went away is noticed within about a second even while its request waits or its prompt is
 * computed, and libmicrohttpd then frees the response, which cancels the job. */
#include "net/serve.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/strbuf.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "net/serve_engine.h"
#include "net/serve_json.h"

struct hs_serve {
  struct MHD_Daemon *d;
  srv_engine *engine;
  const hs_tokenizer *tok;
  const hs_chat_template *chat;
  uint32_t n_embd;
  hs_serve_opts o;
  char *api_key, *model_name;
  long long created;
  uint16_t port;
  atomic_ullong ids;
};

/* What a connection has received so far. */
typedef struct conn_state {
  hs_strbuf body;
  bool too_big;
} conn_state;

/* ---- responses --------------------------------------------------------------------------- */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 char *body /* taken; NULL: out of memory */) {
  if (!body) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
    body = hs_strdup(oom);
    status = 500;
    if (!body) return MHD_NO;
  }
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
  hs_free(body);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  enum MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *body) {
  return send_text(c, status, "application/json", body);
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *param,
                                  const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *param,
                                  const char *code, const char *fmt, ...) {
  hs_oai_error e;
  hs_oai_error_set(&e, status, param, code, "%s", "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.message, sizeof e.message, fmt, ap);
  va_end(ap);
  if (status == 401) snprintf(e.type, sizeof e.type, "authentication_error");
  if (status == 404) snprintf(e.type, sizeof e.type, "not_found_error");
  return send_json(c, (unsigned)status, srv_json_error(&e));
}

/* ---- authentication ---------------------------------------------------------------------- */

/* Whether the given key equals the server's, in time that depends only on the server's key's
 * length. */
static bool key_matches(const char *given, const char *key) {
  size_t gl = given ? strlen(given) : 0, kl = strlen(key);
  unsigned char diff = (unsigned char)(gl != kl);
  for (size_t i = 0; i < kl; i++) diff |= (unsigned char)((i < gl ? given[i] : 0) ^ key[i]);
  return diff == 0;
}

static bool authorized(hs_serve *sv, struct MHD_Connection *c) {
  if (!sv->api_key) return true;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  return key_matches(h && !strncmp(h, "Bearer ", 7) ? h + 7 : NULL, sv->api_key);
}

/* ---- jobs -------------------------------------------------------------------------------- */

static void new_id(hs_serve *sv, srv_job *j, const char *prefix) {
  unsigned long long n = atomic_fetch_add(&sv->ids, 1);
  snprintf(j->id, sizeof j->id, "%s%llx%06llx", prefix, (unsigned long long)sv->created, n);
  j->created = (long long)time(NULL);
  j->model_name = sv->model_name;
}

/* text tokenized into a new array; 0, or an error status with err filled */
static int tokenize(hs_serve *sv, const char *text, unsigned flags, int32_t **ids, size_t *n,
                    hs_oai_error *err, const char *param) {
  size_t need = 0;
  int rc = hs_tokenizer_encode(sv->tok, text, strlen(text), flags, NULL, 0, &need);
  if (rc && rc != HS_ENOSPC) return hs_oai_error_set(err, 400, param, NULL, "cannot tokenize: %s",
                                                     hs_tokenizer_last_error());
  *ids = hs_malloc((need ? need : 1) * sizeof **ids);
  if (!*ids) return hs_oai_error_set(err, 500, NULL, NULL, "out of memory");
  rc = hs_tokenizer_encode(sv->tok, text, strlen(text), flags, *ids, need, n);
  if (rc) {
    hs_free(*ids);
    *ids = NULL;
    return hs_oai_error_set(err, 400, param, NULL, "cannot tokenize: %s",
                            hs_tokenizer_last_error());
  }
  return 0;
}

static int check_ids(hs_serve *sv, const int32_t *ids, size_t n, hs_oai_error *err,
                     const char *param) {
  uint32_t vocab = hs_tokenizer_n_vocab(sv->tok);
  for (size_t i = 0; i < n; i++)
    if ((uint32_t)ids[i] >= vocab)
      return hs_oai_error_set(err, 400, param, NULL, "token id %d is not in the vocabulary (%u)",
                              ids[i], vocab);
  return 0;
}

/* The prompt of a completion or chat job, its stop strings, grammar and echo. 0 or error. */
static int prepare_generation(hs_serve *sv, srv_job *j, hs_oai_error *err) {
  hs_oai_request *q = &j->req;
  int rc;
  unsigned flags = HS_TOKENIZE_ADD_BOS | HS_TOKENIZE_PARSE_SPECIAL;
  if (q->logprobs && q->echo)
    return hs_oai_error_set(err, 400, "echo", NULL, "echo with logprobs is not supported (the "
                                                    "prompt's log-probabilities are not computed)");
  if (q->kind == HS_OAI_CHAT) {
    if (!sv->chat)
      return hs_oai_error_set(err, 400, "messages", NULL,
                              "this model has no chat template (start the server with "
                              "--chat-template); use /v1/completions");
    char *text = NULL;
    if (hs_chat_render(sv->chat, q->messages, q->n_messages, true, &text))
      return hs_oai_error_set(err, 400, "messages", NULL, "cannot render the chat: %s",
                              hs_chat_last_error());
    rc = tokenize(sv, text, flags, &j->prompt, &j->n_prompt, err, "messages");
    hs_free(text);
    if (rc) return rc;
  } else if (q->prompt) {
    if ((rc = tokenize(sv, q->prompt, flags, &j->prompt, &j->n_prompt, err, "prompt"))) return rc;
    if (q->echo && !(j->echo = hs_strdup(q->prompt)))
      return hs_oai_error_set(err, 500, NULL, NULL, "out of memory");
  } else {
    if ((rc = check_ids(sv, q->prompt_ids.ids, q->prompt_ids.n, err, "prompt"))) return rc;
    j->prompt = q->prompt_ids.ids; /* taken from the request */
    j->n_prompt = q->prompt_ids.n;
    q->prompt_ids.ids = NULL;
    q->prompt_ids.n = 0;
    if (q->echo) {
      size_t n = 0;
      hs_tokenizer_decode(sv->tok, j->prompt, j->n_prompt, 0, NULL, 0, &n);
      if (!(j->echo = hs_malloc(n + 1)))
        return hs_oai_error_set(err, 500, NULL, NULL, "out of memory");
      hs_tokenizer_decode(sv->tok, j->prompt, j->n_prompt, 0, j->echo, n, &n);
      j->echo[n] = 0;
    }
  }
  uint32_t max_prompt = sv->o.max_prompt_tokens ? sv->o.max_prompt_tokens : sv->o.n_ctx - 1;
  if (j->n_prompt == 0) return hs_oai_error_set(err, 400, "prompt", NULL, "the prompt is empty");
  if (j->n_prompt > max_prompt)
    return hs_oai_error_set(err, 400, q->kind == HS_OAI_CHAT ? "messages" : "prompt",
                            "context_length_exceeded",
                            "the prompt has %zu tokens; this server takes at most %u", j->n_prompt,
                            max_prompt);
  if (j->n_prompt + q->max_tokens > sv->o.n_ctx) {
    if (q->has_max_tokens)
      return hs_oai_error_set(err, 400, "max_tokens", "context_length_exceeded",
                              "the prompt's %zu tokens and max_tokens %u exceed the context of "
                              "%u tokens", j->n_prompt, q->max_tokens, sv->o.n_ctx);
    q->max_tokens = sv->o.n_ctx - (uint32_t)j->n_prompt;
  }
  if (q->json_schema &&
      hs_grammar_from_json_schema(q->json_schema, strlen(q->json_schema), &j->grammar))
    return hs_oai_error_set(err, 400, "response_format", NULL, "the JSON schema: %s",
                            hs_grammar_last_error());
  if (q->grammar && hs_grammar_parse(q->grammar, strlen(q->grammar), NULL, &j->grammar))
    return hs_oai_error_set(err, 400, "grammar", NULL, "the grammar: %s",
                            hs_grammar_last_error());
  /* stop strings: the request's, and the chat template's */
  size_t extra = q->kind == HS_OAI_CHAT ? hs_chat_template_n_stops(sv->chat) : 0;
  if (q->n_stops + extra) {
    if (!(j->stops = hs_calloc(q->n_stops + extra, sizeof *j->stops)))
      return hs_oai_error_set(err, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < q->n_stops + extra; i++) {
      const char *s = i < q->n_stops ? q->stops[i] : hs_chat_template_stop(sv->chat, i - q->n_stops);
      if (!(j->stops[j->n_stops] = hs_strdup(s)))
        return hs_oai_error_set(err, 500, NULL, NULL, "out of memory");
      if (strlen(s) > j->max_stop_len) j->max_stop_len = strlen(s);
      j->n_stops++;
    }
  }
  if (!(j->choices = hs_calloc(q->n, sizeof *j->choices)))
    return hs_oai_error_set(err, 500, NULL, NULL, "out of memory");
  new_id(sv, j, q->kind == HS_OAI_CHAT ? "chatcmpl-" : "cmpl-");
  return 0;
}

static int prepare_embeddings(hs_serve *sv, srv_job *j, hs_oai_error *err) {
  hs_oai_request *q = &j->req;
  j->n_embd = sv->n_embd;
  if (!(j->inputs = hs_calloc(q->n_inputs, sizeof *j->inputs)) ||
      !(j->input_lens = hs_calloc(q->n_inputs, sizeof *j->input_lens)) ||
      !(j->vectors = hs_calloc(q->n_inputs * sv->n_embd, sizeof *j->vectors)))
    return hs_oai_error_set(err, 500, NULL, NULL, "out of memory");
  j->n_inputs = q->n_inputs;
  uint32_t max_prompt = sv->o.max_prompt_tokens ? sv->o.max_prompt_tokens : sv->o.n_ctx - 1;
  for (size_t i = 0; i < q->n_inputs; i++) {
    int rc;
    if (q->inputs) {
      rc = tokenize(sv, q->inputs[i], HS_TOKENIZE_ADD_BOS, &j->inputs[i], &j->input_lens[i], err,
                    "input");
    } else {
      rc = check_ids(sv, q->input_ids[i].ids, q->input_ids[i].n, err, "input");
      if (!rc) {
        j->inputs[i] = q->input_ids[i].ids;
        j->input_lens[i] = q->input_ids[i].n;
        q->input_ids[i].ids = NULL;
      }
    }
    if (rc) return rc;
    if (j->input_lens[i] == 0 || j->input_lens[i] > max_prompt)
      return hs_oai_error_set(err, 400, "input", "context_length_exceeded",
                              "input %zu has %zu tokens; this server takes 1 to %u", i,
                              j->input_lens[i], max_prompt);
  }
  return 0;
}

/* ---- streaming --------------------------------------------------------------------------- */

typedef struct stream_ctx {
  hs_serve *sv;
  srv_job *j;
} stream_ctx;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  srv_job *j = ((stream_ctx *)cls)->j;
  bool finished = false;
  size_t n = srv_job_read(j, buf, max, 1000, &finished);
  if (n) return (ssize_t)n;
  if (finished) return MHD_CONTENT_READER_END_OF_STREAM;
  static const char ping[] = ": waiting\n\n"; /* an SSE comment: clients ignore it */
  if (max < sizeof ping - 1) return 0;
  memcpy(buf, ping, sizeof ping - 1);
  return (ssize_t)(sizeof ping - 1);
}

/* The response is gone (sent, or the client went away): a job still running is cancelled. */
static void stream_free(void *cls) {
  stream_ctx *s = cls;
  pthread_mutex_lock(&s->j->mu);
  bool done = s->j->done;
  pthread_mutex_unlock(&s->j->mu);
  if (!done) srv_engine_cancel(s->sv->engine, s->j);
  srv_job_release(s->j);
  hs_free(s);
}

/* ---- endpoints --------------------------------------------------------------------------- */

static enum MHD_Result run_job(hs_serve *sv, struct MHD_Connection *c, srv_job *j) {
  if (j->kind == SRV_GENERATE && j->req.stream) {
    stream_ctx *s = hs_malloc(sizeof *s);
    if (!s) return send_json(c, 500, NULL);
    *s = (stream_ctx){sv, j};
    srv_job_ref(j);
    srv_engine_submit(sv->engine, j);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s, stream_free);
    if (!r) {
      stream_free(s);
      return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
  }
  srv_engine_submit(sv->engine, j);
  srv_job_wait(j);
  if (j->status) {
    int status = j->status == 499 ? 500 : j->status;
    return send_error(c, status, NULL, NULL, "%s", j->error);
  }
  if (j->kind == SRV_EMBED) return send_json(c, 200, srv_json_embeddings(j));
  return send_json(c, 200, srv_json_result(j));
}

static enum MHD_Result post(hs_serve *sv, struct MHD_Connection *c, hs_oai_kind kind,
                            const conn_state *cs) {
  srv_job *j = srv_job_new(kind == HS_OAI_EMBEDDING ? SRV_EMBED : SRV_GENERATE);
  if (!j) return send_json(c, 500, NULL);
  hs_oai_error err;
  int rc = hs_oai_request_parse(kind, cs->body.p ? cs->body.p : "", cs->body.n, &sv->o.limits,
                                &j->req, &err);
  if (!rc && j->req.model && strcmp(j->req.model, sv->model_name) != 0)
    rc = hs_oai_error_set(&err, 404, "model", "model_not_found",
                          "the model `%.200s` does not exist (this server has `%.200s`)",
                          j->req.model, sv->model_name);
  if (!rc) rc = kind == HS_OAI_EMBEDDING ? prepare_embeddings(sv, j, &err)
                                         : prepare_generation(sv, j, &err);
  if (!rc && kind == HS_OAI_EMBEDDING) new_id(sv, j, "embd-");
  enum MHD_Result ok;
  if (rc) {
    if (err.status == 404) snprintf(err.type, sizeof err.type, "not_found_error");
    ok = send_json(c, (unsigned)err.status, srv_json_error(&err));
  } else {
    ok = run_job(sv, c, j);
  }
  srv_job_release(j);
  return ok;
}

/* ---- pinned prefixes (an extension) -------------------------------------------------------- */

static char *prefix_json(uint64_t id, uint32_t tokens, uint32_t pinned, long long created) {
  char buf[256];
  snprintf(buf, sizeof buf,
           "{\"id\":\"pfx-%llu\",\"object\":\"prefix\",\"tokens\":%u,\"pinned_tokens\":%u,"
           "\"created\":%lld}",
           (unsigned long long)id, tokens, pinned, created);
  return hs_strdup(buf);
}

static enum MHD_Result pin_prefix(hs_serve *sv, struct MHD_Connection *c, const conn_state *cs) {
  srv_job *j = srv_job_new(SRV_PIN);
  if (!j) return send_json(c, 500, NULL);
  hs_oai_error err;
  int rc = hs_oai_request_parse(HS_OAI_PREFIX, cs->body.p ? cs->body.p : "", cs->body.n,
                                &sv->o.limits, &j->req, &err);
  unsigned flags = HS_TOKENIZE_ADD_BOS | HS_TOKENIZE_PARSE_SPECIAL;
  if (!rc && j->req.messages) {
    char *text = NULL;
    if (!sv->chat)
      rc = hs_oai_error_set(&err, 400, "messages", NULL, "this model has no chat template");
    else if (hs_chat_render(sv->chat, j->req.messages, j->req.n_messages, false, &text))
      rc = hs_oai_error_set(&err, 400, "messages", NULL, "cannot render the chat: %s",
                            hs_chat_last_error());
    else
      rc = tokenize(sv, text, flags, &j->prompt, &j->n_prompt, &err, "messages");
    hs_free(text);
  } else if (!rc && j->req.prompt) {
    rc = tokenize(sv, j->req.prompt, flags, &j->prompt, &j->n_prompt, &err, "prompt");
  } else if (!rc) {
    rc = check_ids(sv, j->req.prompt_ids.ids, j->req.prompt_ids.n, &err, "prompt");
    j->prompt = j->req.prompt_ids.ids;
    j->n_prompt = j->req.prompt_ids.n;
    j->req.prompt_ids.ids = NULL;
  }
  enum MHD_Result ok;
  if (rc) {
    ok = send_json(c, (unsigned)err.status, srv_json_error(&err));
  } else {
    srv_engine_submit(sv->engine, j);
    srv_job_wait(j);
    ok = j->status ? send_error(c, j->status, "prompt", NULL, "%s", j->error)
                   : send_json(c, 200, prefix_json(j->pin_id, (uint32_t)j->n_prompt, j->pinned,
                                                    (long long)time(NULL)));
  }
  srv_job_release(j);
  return ok;
}

static enum MHD_Result prefixes(hs_serve *sv, struct MHD_Connection *c, const char *url,
                                const char *method, const conn_state *cs) {
  bool list = !strcmp(url, "/v1/prefixes");
  if (list && !strcmp(method, "POST")) {
    if (cs->too_big)
      return send_error(c, 413, NULL, NULL, "the body is larger than %zu bytes",
                        sv->o.max_body_bytes);
    return pin_prefix(sv, c, cs);
  }
  if (list && !strcmp(method, "GET")) {
    srv_pin_info pins[SRV_MAX_PINS];
    size_t n = srv_engine_pins(sv->engine, pins, SRV_MAX_PINS);
    hs_strbuf b = {0};
    hs_strbuf_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
      char *one = prefix_json(pins[i].id, pins[i].tokens, pins[i].pinned, pins[i].created);
      if (i) hs_strbuf_puts(&b, ",");
      if (one) hs_strbuf_puts(&b, one);
      else b.oom = true;
      hs_free(one);
    }
    hs_strbuf_puts(&b, "]}");
    return send_json(c, 200, hs_strbuf_take(&b));
  }
  unsigned long long id = 0;
  char tail = 0;
  if (!list && !strcmp(method, "DELETE") &&
      sscanf(url, "/v1/prefixes/pfx-%llu%c", &id, &tail) == 1) {
    srv_job *j = srv_job_new(SRV_UNPIN);
    if (!j) return send_json(c, 500, NULL);
    j->pin_id = id;
    srv_engine_submit(sv->engine, j);
    srv_job_wait(j);
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"pfx-%llu\",\"object\":\"prefix\",\"deleted\":true}", id);
    enum MHD_Result ok = j->status ? send_error(c, j->status, "id", NULL, "%s: pfx-%llu",
                                                j->error, id)
                                   : send_json(c, 200, hs_strdup(body));
    srv_job_release(j);
    return ok;
  }
  if (!list && !strcmp(method, "DELETE"))
    return send_error(c, 404, "id", NULL, "no such pinned prefix: %.100s", url + 13);
  return send_error(c, 405, NULL, NULL, "%s takes %s", list ? "/v1/prefixes" : url,
                    list ? "GET or POST" : "DELETE");
}

static void metric(hs_strbuf *b, const char *name, const char *type, const char *help,
                   const char *labels, double v) {
  char line[512];
  if (help) {
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    hs_strbuf_puts(b, line);
  }
  snprintf(line, sizeof line, "%s%s %.17g\n", name, labels ? labels : "", v);
  hs_strbuf_puts(b, line);
}

/* A family of samples of one metric, one per label value (help and type given once). */
static void labelled(hs_strbuf *b, const char *name, const char *type, const char *help,
                     const char *label, const char *const *values, const double *v, size_t n) {
  char l[96];
  for (size_t i = 0; i < n; i++) {
    snprintf(l, sizeof l, "{%s=\"%s\"}", label, values[i]);
    metric(b, name, type, i ? NULL : help, l, v[i]);
  }
}

static enum MHD_Result metrics(hs_serve *sv, struct MHD_Connection *c) {
  srv_job *j = srv_job_new(SRV_METRICS);
  if (!j) return send_json(c, 500, NULL);
  srv_engine_submit(sv->engine, j);
  srv_job_wait(j);
  const hs_sched_metrics *m = &j->metrics;
  hs_strbuf b = {0};
  static const char *const prio[HS_PRIORITY_COUNT] = {"urgent", "normal", "background"};
  char l[96];
  metric(&b, "hswarm_requests_running", "gauge", "Requests running in the scheduler.", NULL,
         m->running);
  const double queued[] = {m->queued[0], m->queued[1], m->queued[2]};
  labelled(&b, "hswarm_requests_queued", "gauge", "Requests waiting, per priority.", "priority",
           prio, queued, HS_PRIORITY_COUNT);
  static const char *const states[] = {"total", "used", "pinned", "free", "cached"};
  const double kv[] = {(double)m->kv_blocks_total, (double)m->kv_blocks_used,
                       (double)m->kv_blocks_pinned, (double)m->kv_blocks_free,
                       (double)m->kv_blocks_cached};
  labelled(&b, "hswarm_kv_blocks", "gauge", "KV cache blocks by state.", "state", states, kv, 5);
  metric(&b, "hswarm_prompt_tokens_total", "counter", "Prompt tokens of finished prefills.", NULL,
         (double)m->prompt_tokens);
  metric(&b, "hswarm_prompt_tokens_reused_total", "counter",
         "Prompt tokens served from the prefix cache.", NULL, (double)m->prompt_tokens_reused);
  metric(&b, "hswarm_generated_tokens_total", "counter", "Tokens generated.", NULL,
         (double)m->generated_tokens);
  static const char *const outcomes[] = {"submitted", "finished", "cancelled", "rejected",
                                          "deadline_missed"};
  const double counts[] = {(double)m->submitted, (double)m->finished, (double)m->cancelled,
                           (double)m->rejected, (double)m->deadline_missed};
  labelled(&b, "hswarm_requests_total", "counter", "Scheduler requests by outcome.", "outcome",
           outcomes, counts, 5);
  metric(&b, "hswarm_preemptions_total", "counter", "Requests preempted for memory.", NULL,
         (double)m->preemptions);
  metric(&b, "hswarm_steps_total", "counter", "Scheduler steps.", NULL, (double)m->steps);
  metric(&b, "hswarm_tokens_per_second", "gauge", "Tokens per second of recent steps.", NULL,
         m->tokens_per_second);
  for (int p = 0; p < HS_PRIORITY_COUNT; p++) {
    snprintf(l, sizeof l, "{priority=\"%s\",quantile=\"0.5\"}", prio[p]);
    metric(&b, "hswarm_request_latency_seconds", "summary",
           p ? NULL : "Time from submission to the end of requests.", l, m->latency_p50[p]);
    snprintf(l, sizeof l, "{priority=\"%s\",quantile=\"0.99\"}", prio[p]);
    metric(&b, "hswarm_request_latency_seconds", "summary", NULL, l, m->latency_p99[p]);
    snprintf(l, sizeof l, "_count{priority=\"%s\"}", prio[p]);
    metric(&b, "hswarm_request_latency_seconds", "summary", NULL, l, (double)m->latency_count[p]);
  }
  srv_job_release(j);
  return send_text(c, 200, "text/plain; version=0.0.4", hs_strbuf_take(&b));
}

static enum MHD_Result route(hs_serve *sv, struct MHD_Connection *c, const char *url,
                             const char *method, const conn_state *cs) {
  bool get = !strcmp(method, "GET"), post_ = !strcmp(method, "POST");
  if (!strcmp(url, "/health") && get) return send_json(c, 200, hs_strdup("{\"status\":\"ok\"}"));
  if (!authorized(sv, c))
    return send_error(c, 401, NULL, "invalid_api_key",
                      "missing or incorrect API key (send \"Authorization: Bearer KEY\")");
  static const struct { const char *path; hs_oai_kind kind; } posts[] = {
      {"/v1/completions", HS_OAI_COMPLETION},
      {"/v1/chat/completions", HS_OAI_CHAT},
      {"/v1/embeddings", HS_OAI_EMBEDDING}};
  for (size_t i = 0; i < 3; i++) {
    if (strcmp(url, posts[i].path)) continue;
    if (!post_) return send_error(c, 405, NULL, NULL, "%s takes POST", url);
    if (cs->too_big)
      return send_error(c, 413, NULL, NULL, "the body is larger than %zu bytes",
                        sv->o.max_body_bytes);
    return post(sv, c, posts[i].kind, cs);
  }
  if (!strcmp(url, "/v1/prefixes") || !strncmp(url, "/v1/prefixes/", 13))
    return prefixes(sv, c, url, method, cs);
  if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11) || !strcmp(url, "/metrics")) {
    if (!get) return send_error(c, 405, NULL, NULL, "%s takes GET", url);
    if (!strcmp(url, "/metrics")) return metrics(sv, c);
    if (!strcmp(url, "/v1/models")) return send_json(c, 200, srv_json_models(sv->model_name, sv->created, false));
    if (strcmp(url + 11, sv->model_name) != 0)
      return send_error(c, 404, "model", "model_not_found", "the model `%.200s` does not exist",
                        url + 11);
    return send_json(c, 200, srv_json_models(sv->model_name, sv->created, true));
  }
  return send_error(c, 404, NULL, NULL, "no such endpoint: %.16s %.200s", method, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls) {
  (void)version;
  hs_serve *sv = cls;
  conn_state *cs = *con_cls;
  if (!cs) { /* the headers are in: the body follows in later calls */
    if (!(cs = hs_calloc(1, sizeof *cs))) return MHD_NO;
    *con_cls = cs;
    return MHD_YES;
  }
  if (*upload_size) {
    if (cs->body.n + *upload_size > sv->o.max_body_bytes) {
      cs->too_big = true; /* the rest is read and dropped; the answer is 413 */
      hs_free(cs->body.p);
      cs->body = (hs_strbuf){0};
    } else if (!cs->too_big) {
      hs_strbuf_add(&cs->body, upload_data, *upload_size);
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (cs->body.oom) return send_json(c, 500, NULL);
  return route(sv, c, url, method, cs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  (void)cls, (void)c, (void)why;
  conn_state *cs = *con_cls;
  if (!cs) return;
  hs_free(cs->body.p);
  hs_free(cs);
  *con_cls = NULL;
}

/* ---- the server -------------------------------------------------------------------------- */

int hs_serve_start(hs_model *m, hs_sched *s, const hs_tokenizer *t, const hs_chat_template *chat,
                   const hs_serve_opts *o, hs_serve **out, char *msg, size_t cap) {
  hs_serve *sv = hs_calloc(1, sizeof *sv);
  if (!sv) {
    snprintf(msg, cap, "out of memory");
    return -1;
  }
  sv->o = *o;
  sv->tok = t;
  sv->chat = chat;
  sv->created = (long long)time(NULL);
  sv->n_embd = hs_model_get_params(m)->n_embd;
  if (!sv->o.max_body_bytes) sv->o.max_body_bytes = 1 << 20;
  if (!sv->o.max_header_bytes) sv->o.max_header_bytes = 16 << 10;
  if (!sv->o.max_connections) sv->o.max_connections = 256;
  if (!sv->o.timeout_s) sv->o.timeout_s = 30;
  sv->model_name = hs_strdup(o->model_name ? o->model_name : "hswarm");
  sv->api_key = o->api_key ? hs_strdup(o->api_key) : NULL;
  sv->o.api_key = NULL;
  sv->o.model_name = NULL;
  struct sockaddr_storage addr = {0};
  const char *host = o->host ? o->host : "127.0.0.1";
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(o->port);
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(o->port);
    flags |= MHD_USE_IPv6;
  } else {
    snprintf(msg, cap, "--host %s is not an IPv4 or IPv6 address", host);
    hs_serve_stop(sv);
    return -1;
  }
  if (!sv->model_name || (o->api_key && !sv->api_key) ||
      srv_engine_start(m, s, t, &sv->engine) != 0) {
    snprintf(msg, cap, "cannot start the engine thread");
    hs_serve_stop(sv);
    return -1;
  }
  sv->d = MHD_start_daemon(
      flags, o->port, NULL, NULL, on_request, sv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)sv->o.max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)sv->o.timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)sv->o.max_header_bytes,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv, MHD_OPTION_END);
  if (!sv->d) {
    snprintf(msg, cap, "cannot listen on %s port %u (in use, or not allowed)", host,
             (unsigned)o->port);
    hs_serve_stop(sv);
    return -1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
  sv->port = info ? info->port : o->port;
  *out = sv;
  return 0;
}

uint16_t hs_serve_port(const hs_serve *sv) { return sv->port; }

void hs_serve_stop(hs_serve *sv) {
  if (!sv) return;
  if (sv->d) MHD_quiesce_daemon(sv->d);
  srv_engine_stop(sv->engine); /* every job finishes: waiting connections answer and close;
                                  later requests are answered 503 */
  if (sv->d) MHD_stop_daemon(sv->d);
  srv_engine_free(sv->engine);
  hs_free(sv->api_key);
  hs_free(sv->model_name);
  hs_free(sv);
}
