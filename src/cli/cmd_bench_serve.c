/* cmd_bench_serve.c: `hswarm bench serve`: the HTTP server under load, against the same work
 * through the library directly.
 *
 * One model, one scheduler. First the server (src/net/serve.h) runs in this process on a
 * loopback port, and --clients threads, each a plain HTTP/1.0 client on its own socket, send
 * streaming chat requests until --requests are done: every request is the same system message
 * (about --system-tokens tokens) and its own user message, with its own seed. Each client times
 * its request's first content chunk and its end ([DONE]) and reads the completion tokens from
 * the usage chunk. When all are done the server stops, and the KV blocks must be back at the
 * baseline (nothing private, nothing in use but pins). Then the cache is emptied and the same
 * requests (the same rendered prompts, the same sampling and seeds, so the same tokens) go to
 * the scheduler directly, --clients of them in flight at a time, timed at their first token and
 * at their end. The figures: requests/s, generated tokens/s, first-token and end latencies
 * (median, p99), failures, memory; and the ratios HTTP / library. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "cli/swarm_model.h"
#include "core/strbuf.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/kvcache.h"
#include "net/serve.h"

typedef struct bench_opts {
  const char *model, *chat;
  uint64_t clients, requests, system_tokens, gen, threads;
  bool json;
} bench_opts;

typedef struct timing {
  double first, end; /* seconds from the request's start */
  uint32_t tokens;
  bool ok;
} timing;

typedef struct figures {
  double wall, rps, tps, first_p50, first_p99, end_p50, end_p99;
  uint64_t tokens, failed;
} figures;

/* ---- the workload ------------------------------------------------------------------------ */

/* A system message of about n tokens: sentences of a fixed text, cut at a word. */
static char *system_text(const hs_tokenizer *t, uint64_t n) {
  static const char *const words[] = {"Agents", "of", "the", "swarm", "share", "one", "system",
                                      "prompt,", "so", "its", "keys", "and", "values", "are",
                                      "computed", "once", "and", "reused", "by", "every",
                                      "request", "that", "starts", "with", "it."};
  hs_strbuf b = {0};
  for (size_t w = 0;; w++) {
    if (w) hs_strbuf_add(&b, " ", 1);
    hs_strbuf_puts(&b, words[w % (sizeof words / sizeof words[0])]);
    if (b.oom) return NULL;
    size_t have = 0;
    if (w % 8 == 7) {
      hs_tokenizer_encode(t, b.p, b.n, 0, NULL, 0, &have);
      if (have >= n) break;
    }
  }
  return hs_strbuf_take(&b);
}

static void user_text(char *buf, size_t cap, uint64_t k) {
  snprintf(buf, cap, "Request %llu: what is %llu plus %llu?", (unsigned long long)k,
           (unsigned long long)(k * 7 % 100), (unsigned long long)(k * 13 % 100));
}

/* ---- HTTP clients ------------------------------------------------------------------------ */

typedef struct client_ctx {
  const bench_opts *o;
  uint16_t port;
  const char *system;
  atomic_ullong next;
  timing *t;
} client_ctx;

static double now(void) { return cli_seconds(); }

/* One streaming chat request over a fresh connection; fills *t. */
static void http_request(client_ctx *cx, uint64_t k, timing *t) {
  char user[128];
  user_text(user, sizeof user, k);
  json_t *body = json_pack(
      "{s:[{s:s, s:s}, {s:s, s:s}], s:I, s:I, s:b, s:{s:b}}", "messages", "role", "system",
      "content", cx->system, "role", "user", "content", user, "max_tokens", (json_int_t)cx->o->gen,
      "seed", (json_int_t)k, "stream", 1, "stream_options", "include_usage", 1);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  double t0 = now();
  *t = (timing){0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(cx->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!text || fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) goto out;
  char head[256];
  int hn = snprintf(head, sizeof head,
                    "POST /v1/chat/completions HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: "
                    "application/json\r\nContent-Length: %zu\r\n\r\n",
                    strlen(text));
  if (write(fd, head, (size_t)hn) != hn) goto out;
  size_t len = strlen(text), sent = 0;
  while (sent < len) {
    ssize_t w = write(fd, text + sent, len - sent);
    if (w <= 0) goto out;
    sent += (size_t)w;
  }
  /* read lines; the body's events are "data: ..." lines */
  char buf[65536];
  size_t have = 0;
  bool status_ok = false, first_line = true, done = false;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
    if (r <= 0) break;
    have += (size_t)r;
    buf[have] = 0;
    char *line = buf, *nl;
    while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
      *nl = 0;
      if (first_line) {
        status_ok = !strncmp(line, "HTTP/1.", 7) && !strncmp(line + 9, "200", 3);
        first_line = false;
      } else if (!strncmp(line, "data: ", 6)) {
        if (!strcmp(line + 6, "[DONE]")) done = true;
        const char *c = strstr(line, "\"content\":\"");
        if (c && c[11] != '"' && t->first == 0) t->first = now() - t0;
        const char *u = strstr(line, "\"completion_tokens\":");
        if (u) t->tokens = (uint32_t)strtoul(u + 20, NULL, 10);
      }
      line = nl + 1;
    }
    have -= (size_t)(line - buf);
    memmove(buf, line, have);
    if (have == sizeof buf - 1) have = 0; /* a line longer than the buffer: dropped */
  }
  t->ok = status_ok && done;
  t->end = now() - t0;
out:
  if (fd >= 0) close(fd);
  free(text);
}

static void *client_main(void *arg) {
  client_ctx *cx = arg;
  for (;;) {
    uint64_t k = atomic_fetch_add(&cx->next, 1);
    if (k >= cx->o->requests) return NULL;
    http_request(cx, k, &cx->t[k]);
  }
}

/* ---- the library directly ---------------------------------------------------------------- */

typedef struct direct_ctx {
  hs_sched *s;
  const bench_opts *o;
  int32_t **prompts;
  size_t *lens;
  uint64_t next, finished;
  double *start;
  timing *t;
} direct_ctx;

typedef struct direct_req {
  direct_ctx *d;
  uint64_t k;
} direct_req;

static void direct_submit(direct_ctx *d);

static int direct_token(uint64_t id, int32_t token, void *ud) {
  (void)id, (void)token;
  direct_req *q = ud;
  timing *t = &q->d->t[q->k];
  if (t->first == 0) t->first = now() - q->d->start[q->k];
  return 0;
}

static void direct_done(const hs_sched_result *r, void *ud) {
  direct_req *q = ud;
  direct_ctx *d = q->d;
  timing *t = &d->t[q->k];
  t->end = now() - d->start[q->k];
  t->tokens = (uint32_t)r->n_tokens;
  t->ok = r->status == 0;
  d->finished++;
  hs_free(q);
  direct_submit(d);
}

static void direct_submit(direct_ctx *d) {
  if (d->next >= d->o->requests) return;
  uint64_t k = d->next++;
  direct_req *q = hs_malloc(sizeof *q);
  if (!q) {
    d->finished++;
    return;
  }
  *q = (direct_req){d, k};
  hs_sched_request r;
  hs_sched_request_init(&r);
  r.prompt = d->prompts[k];
  r.n_prompt = d->lens[k];
  r.sampling.temperature = 1; /* as the server's defaults for an OpenAI request */
  r.sampling.top_k = 0;
  r.sampling.top_p = 1;
  r.sampling.min_p = 0;
  r.sampling.repetition_penalty = 1;
  r.sampling.seed = k;
  r.max_tokens = (uint32_t)d->o->gen;
  r.on_token = direct_token;
  r.on_done = direct_done;
  r.ud = q;
  d->start[k] = now();
  if (hs_sched_submit(d->s, &r, NULL) != 0) {
    hs_free(q);
    d->finished++;
  }
}

/* ---- figures ----------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double quantile(double *v, size_t n, double q) {
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp_double);
  size_t i = (size_t)(q * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

static void summarize(const timing *t, uint64_t n, double wall, figures *f) {
  double *first = hs_calloc(n, sizeof *first), *end = hs_calloc(n, sizeof *end);
  size_t k = 0;
  *f = (figures){.wall = wall};
  for (uint64_t i = 0; i < n; i++) {
    if (!t[i].ok) {
      f->failed++;
      continue;
    }
    f->tokens += t[i].tokens;
    if (first && end) {
      first[k] = t[i].first;
      end[k++] = t[i].end;
    }
  }
  f->rps = (double)(n - f->failed) / wall;
  f->tps = (double)f->tokens / wall;
  f->first_p50 = quantile(first, k, 0.5);
  f->first_p99 = quantile(first, k, 0.99);
  f->end_p50 = quantile(end, k, 0.5);
  f->end_p99 = quantile(end, k, 0.99);
  hs_free(first);
  hs_free(end);
}

static void print_figures(const char *name, const figures *f, bool json, bool last) {
  if (json) {
    printf("\"%s\":{\"wall_s\":%.4f,\"requests_per_s\":%.3f,\"tokens_per_s\":%.2f,\"tokens\":%llu,"
           "\"failed\":%llu,\"first_token_p50_s\":%.4f,\"first_token_p99_s\":%.4f,"
           "\"end_p50_s\":%.4f,\"end_p99_s\":%.4f}%s",
           name, f->wall, f->rps, f->tps, (unsigned long long)f->tokens,
           (unsigned long long)f->failed, f->first_p50, f->first_p99, f->end_p50, f->end_p99,
           last ? "" : ",");
    return;
  }
  printf("%-8s %7.2f s  %7.2f req/s  %8.1f tok/s  first token p50 %.3f s p99 %.3f s  end p50 "
         "%.3f s p99 %.3f s  failed %llu\n",
         name, f->wall, f->rps, f->tps, f->first_p50, f->first_p99, f->end_p50, f->end_p99,
         (unsigned long long)f->failed);
}

/* ---- the command ------------------------------------------------------------------------- */

static int parse(int argc, char **argv, bench_opts *o) {
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    uint64_t *num = !strcmp(a, "--clients")         ? &o->clients
                    : !strcmp(a, "--requests")      ? &o->requests
                    : !strcmp(a, "--system-tokens") ? &o->system_tokens
                    : !strcmp(a, "--gen")           ? &o->gen
                    : !strcmp(a, "--threads")       ? &o->threads
                                                    : NULL;
    if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) o->model = argv[++i];
    else if (!strcmp(a, "--chat-template") && has) o->chat = argv[++i];
    else if (!strcmp(a, "--json")) o->json = true;
    else if (num && has && cli_parse_u64(argv[i + 1], 0, num) == 0) i++;
    else {
      fprintf(stderr, "hswarm bench serve: bad option '%s'\n", a);
      return -1;
    }
  }
  if (!o->model || !o->clients || o->clients > 1024 || !o->requests || !o->gen ||
      !o->system_tokens) {
    fprintf(stderr, "hswarm bench serve: -m FILE is required; --clients 1..1024, --requests, "
                    "--gen, --system-tokens above 0\n");
    return -1;
  }
  return 0;
}

int cmd_bench_serve(int argc, char **argv) {
  bench_opts o = {.clients = 64, .requests = 256, .system_tokens = 1024, .gen = 32};
  if (parse(argc, argv, &o) != 0) {
    fputs("usage: hswarm bench serve -m FILE [--clients 64] [--requests 256] [--system-tokens "
          "1024] [--gen 32] [--chat-template NAME] [--threads N] [--json]\n",
          stderr);
    return EXIT_USAGE;
  }
  int status = EXIT_ERROR;
  cli_swarm_model sm = {0};
  hs_chat_template *chat = NULL;
  hs_serve *sv = NULL;
  char *system = NULL;
  timing *th = NULL, *td = NULL;
  int32_t **prompts = NULL;
  size_t *lens = NULL;
  double *start = NULL;
  pthread_t *threads = NULL;
  signal(SIGPIPE, SIG_IGN);

  cli_swarm_model_opts mo = {.threads = (unsigned)o.threads, .max_running = (uint32_t)o.clients};
  if (cli_swarm_model_open(o.model, &mo, NULL, &sm) != 0) goto done;
  hs_model *m = sm.m;
  hs_tokenizer *tok = sm.tok;
  hs_sched *s = sm.s;
  uint32_t n_ctx = sm.n_ctx;
  if (cli_load_chat_template(hs_model_get_gguf(m), o.chat ? o.chat : "chatml", &chat) != 0)
    goto done;
  if (!(system = system_text(tok, o.system_tokens))) goto oom;

  /* the prompts as the server renders them, for the direct run */
  prompts = hs_calloc(o.requests, sizeof *prompts);
  lens = hs_calloc(o.requests, sizeof *lens);
  start = hs_calloc(o.requests, sizeof *start);
  th = hs_calloc(o.requests, sizeof *th);
  td = hs_calloc(o.requests, sizeof *td);
  threads = hs_calloc(o.clients, sizeof *threads);
  if (!prompts || !lens || !start || !th || !td || !threads) goto oom;
  for (uint64_t k = 0; k < o.requests; k++) {
    char user[128], *text = NULL;
    user_text(user, sizeof user, k);
    hs_chat_message msgs[2] = {{"system", system}, {"user", user}};
    if (hs_chat_render(chat, msgs, 2, true, &text)) {
      cli_fail("bench serve: %s", hs_chat_last_error());
      goto done;
    }
    int rc = cli_tokenize(tok, text, HS_TOKENIZE_ADD_BOS | HS_TOKENIZE_PARSE_SPECIAL, &prompts[k],
                          &lens[k]);
    hs_free(text);
    if (rc) goto done;
    if (lens[k] + o.gen > n_ctx) {
      cli_fail("bench serve: a prompt of %zu tokens and --gen %llu exceed the context (%u)",
               lens[k], (unsigned long long)o.gen, n_ctx);
      goto done;
    }
  }

  /* 1. through HTTP */
  uint64_t rss0 = cli_rss_bytes();
  hs_serve_opts sopts = {.host = "127.0.0.1", .port = 0, .model_name = "bench", .n_ctx = n_ctx,
                         .max_connections = (uint32_t)o.clients + 16,
                         .limits = {.max_tokens = (uint32_t)o.gen}};
  char msg[256];
  if (hs_serve_start(m, s, tok, chat, &sopts, &sv, msg, sizeof msg) != 0) {
    cli_fail("bench serve: %s", msg);
    goto done;
  }
  client_ctx cx = {.o = &o, .port = hs_serve_port(sv), .system = system, .t = th};
  atomic_init(&cx.next, 0);
  double t0 = now();
  uint64_t started = 0;
  for (; started < o.clients; started++)
    if (pthread_create(&threads[started], NULL, client_main, &cx) != 0) break;
  for (uint64_t i = 0; i < started; i++) pthread_join(threads[i], NULL);
  double http_wall = now() - t0;
  uint64_t rss_http = cli_rss_bytes();
  hs_serve_stop(sv);
  sv = NULL;
  hs_kv_stats kv;
  hs_kv_get_stats(m, &kv);
  bool kv_back = kv.blocks_private == 0 && kv.blocks_in_use == kv.blocks_pinned;

  /* 2. the library directly, from an empty cache */
  hs_kv_evict_all(m);
  direct_ctx d = {.s = s, .o = &o, .prompts = prompts, .lens = lens, .start = start, .t = td};
  t0 = now();
  for (uint64_t i = 0; i < o.clients; i++) direct_submit(&d);
  while (d.finished < o.requests) {
    int rc = hs_sched_step(s);
    if (rc < 0) {
      cli_fail("bench serve: the engine failed: %s", hs_strerror(rc));
      goto done;
    }
    if (rc == 0 && d.finished < o.requests && d.next >= o.requests) break;
  }
  double direct_wall = now() - t0;

  figures fh, fd;
  summarize(th, o.requests, http_wall, &fh);
  summarize(td, o.requests, direct_wall, &fd);
  if (o.json) {
    printf("{\"command\":\"bench serve\",\"status\":\"ok\",\"model\":");
    cli_json_string(stdout, o.model);
    printf(",\"clients\":%llu,\"requests\":%llu,\"system_tokens\":%zu,\"gen\":%llu,",
           (unsigned long long)o.clients, (unsigned long long)o.requests, lens[0],
           (unsigned long long)o.gen);
    print_figures("http", &fh, true, false);
    print_figures("library", &fd, true, false);
    printf("\"http_over_library_wall\":%.4f,\"kv_back_to_baseline\":%s,\"rss_growth_bytes\":%lld}\n",
           fh.wall / fd.wall, kv_back ? "true" : "false", (long long)(rss_http - rss0));
  } else {
    printf("hswarm bench serve: %s, %llu clients, %llu streaming chat requests, prompts of %zu "
           "tokens (shared system message), %llu tokens generated at most\n",
           o.model, (unsigned long long)o.clients, (unsigned long long)o.requests, lens[0],
           (unsigned long long)o.gen);
    print_figures("http", &fh, false, false);
    print_figures("library", &fd, false, true);
    printf("HTTP / library wall time: %.3f; KV blocks back to the baseline: %s; RSS growth during "
           "the HTTP run: %.1f MiB\n",
           fh.wall / fd.wall, kv_back ? "yes" : "NO",
           (double)((long long)(rss_http - rss0)) / 1048576.0);
  }
  status = fh.failed || fd.failed || !kv_back || fh.tokens != fd.tokens ? EXIT_FAILED : 0;
  if (fh.tokens != fd.tokens)
    fprintf(stderr, "hswarm bench serve: the HTTP run generated %llu tokens, the library %llu\n",
            (unsigned long long)fh.tokens, (unsigned long long)fd.tokens);
  goto done;
oom:
  cli_fail("bench serve: out of memory");
done:
  hs_serve_stop(sv);
  for (uint64_t k = 0; prompts && k < o.requests; k++) hs_free(prompts[k]);
  hs_free(prompts);
  hs_free(lens);
  hs_free(start);
  hs_free(th);
  hs_free(td);
  hs_free(threads);
  hs_free(system);
  hs_chat_template_destroy(chat);
  cli_swarm_model_close(&sm);
  return status;
}
