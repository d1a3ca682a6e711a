/* cmd_serve.c: `hswarm serve`, the OpenAI-compatible HTTP server (src/net/serve.h) over one
 * model: the options, the model, tokenizer, scheduler and chat template, then serving until
 * SIGINT or SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "cli/swarm_model.h"
#include "hswarm/alloc.h"
#include "net/serve.h"

#define USAGE                                                                                  \
  "usage: hswarm serve -m FILE [options]\n"                                                    \
  "  an OpenAI-compatible server: /v1/completions, /v1/chat/completions, /v1/embeddings,\n"    \
  "  /v1/models, /health, /metrics (README, \"Serving\")\n"                                    \
  "  -m, --model FILE        a GGUF model\n"                                                   \
  "  --host ADDR             the address to listen on (default 127.0.0.1: this machine only)\n" \
  "  --port N                the port (default 8080; 0: any free port, printed)\n"             \
  "  --api-key-file F        requests must carry \"Authorization: Bearer KEY\", KEY the file's\n" \
  "                          first line\n"                                                     \
  "  --model-name NAME       the model's id for clients (default: the file's name)\n"          \
  "  --chat-template NAME|FILE  llama3, llama2, mistral, chatml or a file (default: from the\n" \
  "                          model's tokenizer.chat_template; without one, chat is refused)\n" \
  "  --kv-budget BYTES       KV cache memory (K/M/G suffixes; default: room for every running\n" \
  "                          request at the full context)\n"                                   \
  "  --ctx N                 context per request (default: the model's, at most 4096)\n"       \
  "  --max-running N         requests generating at once (default 64)\n"                       \
  "  --threads N             compute threads (default: the cores)\n"                           \
  "  --max-tokens N          the largest max_tokens accepted (default 4096)\n"                 \
  "  --max-n N               the largest n (default 16)\n"                                     \
  "  --max-body BYTES        request bodies (default 1M)\n"                                    \
  "  --max-connections N     open connections (default 256)\n"                                 \
  "  --timeout S             idle connections are closed after S seconds (default 30)\n"

typedef struct serve_opts {
  const char *model, *host, *key_file, *name, *chat;
  uint64_t port, kv_budget, ctx, max_running, threads, max_tokens, max_n, max_body, max_conn,
      timeout;
} serve_opts;

static int parse(int argc, char **argv, serve_opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    const char **str = !strcmp(a, "-m") || !strcmp(a, "--model") ? &o->model
                       : !strcmp(a, "--host")                    ? &o->host
                       : !strcmp(a, "--api-key-file")            ? &o->key_file
                       : !strcmp(a, "--model-name")              ? &o->name
                       : !strcmp(a, "--chat-template")           ? &o->chat
                                                                 : NULL;
    static const struct { const char *name; size_t off; int binary; } nums[] = {
        {"--port", offsetof(serve_opts, port), 0},
        {"--kv-budget", offsetof(serve_opts, kv_budget), 1},
        {"--ctx", offsetof(serve_opts, ctx), 0},
        {"--max-running", offsetof(serve_opts, max_running), 0},
        {"--threads", offsetof(serve_opts, threads), 0},
        {"--max-tokens", offsetof(serve_opts, max_tokens), 0},
        {"--max-n", offsetof(serve_opts, max_n), 0},
        {"--max-body", offsetof(serve_opts, max_body), 1},
        {"--max-connections", offsetof(serve_opts, max_conn), 0},
        {"--timeout", offsetof(serve_opts, timeout), 0}};
    size_t k = 0;
    while (k < sizeof nums / sizeof nums[0] && strcmp(a, nums[k].name)) k++;
    if ((str || k < sizeof nums / sizeof nums[0]) && !has) {
      fprintf(stderr, "hswarm serve: %s needs a value\n", a);
      return -1;
    }
    if (str) {
      *str = argv[++i];
    } else if (k < sizeof nums / sizeof nums[0]) {
      uint64_t *v = (uint64_t *)((char *)o + nums[k].off);
      if (cli_parse_u64(argv[++i], nums[k].binary, v) != 0) {
        fprintf(stderr, "hswarm serve: %s: '%s' is not a number\n", a, argv[i]);
        return -1;
      }
    } else {
      fprintf(stderr, "hswarm serve: unknown option '%s'\n", a);
      return -1;
    }
  }
  if (!o->model) {
    fprintf(stderr, "hswarm serve: -m FILE is required\n");
    return -1;
  }
  if (o->port > 65535 || o->max_running == 0 || o->max_running > 4096 || o->ctx > (1u << 20) ||
      o->max_tokens == 0 || o->max_tokens > (1u << 20) || o->max_n == 0 || o->max_n > 128 ||
      o->max_conn == 0 || o->max_conn > 65536 || o->timeout == 0 || o->max_body == 0) {
    fprintf(stderr, "hswarm serve: a value is out of range (--port 0..65535, --max-running "
                    "1..4096, --max-n 1..128, --max-connections 1..65536, others above 0)\n");
    return -1;
  }
  return 0;
}

/* The key file's first line (without the line end), or NULL after cli_fail. */
static char *read_key(const char *path) {
  size_t n;
  char *text = cli_read_file(path, &n);
  if (!text) return NULL;
  text[strcspn(text, "\r\n")] = 0;
  if (!text[0]) {
    cli_fail("serve: %s: the API key is empty", path);
    hs_free(text);
    return NULL;
  }
  return text;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

int cmd_serve(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(USAGE, stdout);
    return 0;
  }
  serve_opts o = {.host = "127.0.0.1", .port = 8080, .max_running = 64, .max_tokens = 4096,
                  .max_n = 16, .max_body = 1 << 20, .max_conn = 256, .timeout = 30};
  if (parse(argc, argv, &o) != 0) {
    fputs(USAGE, stderr);
    return EXIT_USAGE;
  }
  int status = EXIT_ERROR;
  char *key = NULL;
  cli_swarm_model sm = {0};
  hs_chat_template *chat = NULL;
  hs_serve *sv = NULL;
  if (o.key_file && !(key = read_key(o.key_file))) goto done;
  cli_swarm_model_opts mo = {.threads = (unsigned)o.threads, .kv_bytes = o.kv_budget,
                             .max_running = (uint32_t)o.max_running, .n_ctx = (uint32_t)o.ctx};
  if (cli_swarm_model_open(o.model, &mo, NULL, &sm) != 0) goto done;
  uint32_t n_ctx = sm.n_ctx;
  if (cli_load_chat_template(hs_model_get_gguf(sm.m), o.chat, &chat) != 0) {
    if (o.chat) goto done; /* asked for and not loadable: cli_fail said why */
    fprintf(stderr, "hswarm serve: no chat template for this model: /v1/chat/completions is "
                    "refused (give --chat-template)\n");
    chat = NULL;
  }
  hs_serve_opts so2 = {.host = o.host, .port = (uint16_t)o.port, .api_key = key,
                       .model_name = o.name ? o.name : base_name(o.model), .n_ctx = n_ctx,
                       .max_body_bytes = o.max_body, .max_connections = (uint32_t)o.max_conn,
                       .timeout_s = (unsigned)o.timeout,
                       .limits = {.max_tokens = (uint32_t)o.max_tokens, .max_n = (uint32_t)o.max_n}};
  /* SIGINT and SIGTERM are taken by sigwait below: blocked before any thread starts */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);
  char msg[256];
  if (hs_serve_start(sm.m, sm.s, sm.tok, chat, &so2, &sv, msg, sizeof msg) != 0) {
    cli_fail("serve: %s", msg);
    goto done;
  }
  fprintf(stderr, "hswarm serve: %s as \"%s\" on http://%s%s%s:%u/v1 (%u-token context, %s)\n",
          o.model, so2.model_name, strchr(o.host, ':') ? "[" : "", o.host,
          strchr(o.host, ':') ? "]" : "", (unsigned)hs_serve_port(sv), n_ctx,
          key ? "API key required" : "no API key");
  printf("%u\n", (unsigned)hs_serve_port(sv)); /* the port, for scripts (--port 0) */
  fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  fprintf(stderr, "hswarm serve: %s: stopping\n", sig == SIGINT ? "interrupted" : "terminated");
  status = 0;
done:
  hs_serve_stop(sv);
  hs_chat_template_destroy(chat);
  cli_swarm_model_close(&sm);
  hs_free(key);
  return status;
}
