/* cmd_model.c: `hswarm model info -m FILE [--json]`: what a GGUF model file holds, as the engine
 * reads it: architecture, shapes, rope settings, vocabulary size, a histogram of tensor types,
 * parameter count, weight memory and KV-cache cost. The file is checked exactly as loading it
 * would check it (hs_model_params_read), so `model info` is also a quick validity test. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "hswarm/gguf.h"
#include "hswarm/model.h"

#define USAGE "usage: hswarm model info -m FILE [--json]\n"

/* Tensor types in the histogram: ggml ids are below 64. */
#define MAX_TYPE 64

typedef struct type_hist {
  uint64_t count[MAX_TYPE], bytes[MAX_TYPE];
} type_hist;

static void human_bytes(char *buf, size_t size, uint64_t b) {
  if (b >= (1ull << 30))
    snprintf(buf, size, "%.2f GiB", (double)b / (double)(1ull << 30));
  else if (b >= (1ull << 20))
    snprintf(buf, size, "%.2f MiB", (double)b / (double)(1ull << 20));
  else if (b >= 1024)
    snprintf(buf, size, "%.2f KiB", (double)b / 1024.0);
  else
    snprintf(buf, size, "%" PRIu64 " B", b);
}

static void print_human(const char *path, const hs_model_params *p, const type_hist *h,
                        size_t n_tensors) {
  char b1[32], b2[32];
  printf("file             %s\n", path);
  printf("architecture     %s\n", p->arch_name);
  printf("layers           %u\n", p->n_layer);
  printf("embedding        %u\n", p->n_embd);
  printf("heads            %u (kv heads %u, head size %u)\n", p->n_head, p->n_head_kv,
         p->head_dim);
  printf("feed-forward     %u\n", p->n_ff);
  printf("context (train)  %u\n", p->n_ctx_train);
  printf("vocabulary       %u\n", p->n_vocab);
  printf("rope             base %g, dimensions %u, scaling %s", (double)p->rope_freq_base,
         p->n_rot, hs_rope_scaling_name(p->rope_scaling));
  if (p->rope_scaling == HS_ROPE_SCALING_LLAMA3)
    printf(" (factor %g, low freq factor %g, high freq factor %g, original context %u)",
           (double)p->rope_scaling_factor, (double)p->rope_low_freq_factor,
           (double)p->rope_high_freq_factor, p->rope_orig_ctx);
  printf("\n");
  printf("rms norm eps     %g\n", (double)p->rms_norm_eps);
  printf("output           %s\n",
         p->tied_embeddings ? "tied to token_embd.weight" : "output.weight");
  printf("tensors          %zu\n", n_tensors);
  for (uint32_t t = 0; t < MAX_TYPE; t++) {
    if (!h->count[t]) continue;
    human_bytes(b1, sizeof b1, h->bytes[t]);
    printf("  %-6s         %" PRIu64 " tensors, %" PRIu64 " bytes (%s)\n", hs_gguf_type_name(t),
           h->count[t], h->bytes[t], b1);
  }
  printf("parameters       %" PRIu64 " (%.2f M)\n", p->n_params, (double)p->n_params / 1e6);
  human_bytes(b1, sizeof b1, p->weight_bytes);
  printf("weight memory    %" PRIu64 " bytes (%s)\n", p->weight_bytes, b1);
  uint64_t kv_ctx = p->kv_bytes_per_token * p->n_ctx_train;
  human_bytes(b2, sizeof b2, kv_ctx);
  printf("kv per token     %" PRIu64 " bytes (f16)\n", p->kv_bytes_per_token);
  printf("kv at context    %" PRIu64 " bytes (%s, %u tokens)\n", kv_ctx, b2, p->n_ctx_train);
}

static void print_json(const char *path, const hs_model_params *p, const type_hist *h,
                       size_t n_tensors) {
  printf("{\"command\":\"model info\",\"file\":");
  json_string(stdout, path);
  printf(",\"architecture\":\"%s\",\"n_layer\":%u,\"n_embd\":%u,\"n_head\":%u,\"n_head_kv\":%u,"
         "\"head_dim\":%u,\"n_ff\":%u,\"n_ctx_train\":%u,\"n_vocab\":%u,",
         p->arch_name, p->n_layer, p->n_embd, p->n_head, p->n_head_kv, p->head_dim, p->n_ff,
         p->n_ctx_train, p->n_vocab);
  printf("\"rope\":{\"freq_base\":%.9g,\"dimension_count\":%u,\"scaling\":\"%s\"",
         (double)p->rope_freq_base, p->n_rot, hs_rope_scaling_name(p->rope_scaling));
  if (p->rope_scaling == HS_ROPE_SCALING_LLAMA3)
    printf(",\"factor\":%.9g,\"low_freq_factor\":%.9g,\"high_freq_factor\":%.9g,"
           "\"original_context_length\":%u",
           (double)p->rope_scaling_factor, (double)p->rope_low_freq_factor,
           (double)p->rope_high_freq_factor, p->rope_orig_ctx);
  printf("},\"rms_norm_eps\":%.9g,\"tied_embeddings\":%s,\"n_tensors\":%zu,\"tensor_types\":{",
         (double)p->rms_norm_eps, p->tied_embeddings ? "true" : "false", n_tensors);
  int first = 1;
  for (uint32_t t = 0; t < MAX_TYPE; t++) {
    if (!h->count[t]) continue;
    printf("%s\"%s\":{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", first ? "" : ",",
           hs_gguf_type_name(t), h->count[t], h->bytes[t]);
    first = 0;
  }
  printf("},\"n_params\":%" PRIu64 ",\"weight_bytes\":%" PRIu64
         ",\"kv_bytes_per_token\":%" PRIu64 ",\"kv_bytes_ctx_train\":%" PRIu64 "}\n",
         p->n_params, p->weight_bytes, p->kv_bytes_per_token,
         p->kv_bytes_per_token * p->n_ctx_train);
}

static int model_info(int argc, char **argv) {
  const char *path = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "hswarm model info: %s needs a value\n" USAGE, argv[i]);
        return EXIT_USAGE;
      }
      path = argv[++i];
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(USAGE "\nPrints a GGUF model's architecture, shapes, rope settings, vocabulary size,\n"
                  "tensor types, parameter count, weight memory and KV-cache bytes.\n"
                  "  -m, --model FILE   the GGUF file\n"
                  "  --json             print one JSON object (fields in docs/json.md)\n",
            stdout);
      return 0;
    } else {
      fprintf(stderr, "hswarm model info: unknown argument '%s'\n" USAGE, argv[i]);
      return EXIT_USAGE;
    }
  }
  if (!path) {
    fprintf(stderr, "hswarm model info: missing -m FILE\n" USAGE);
    return EXIT_USAGE;
  }
  hs_gguf *g;
  if (hs_gguf_open(path, &g) != 0) {
    fprintf(stderr, "hswarm model info: %s\n", hs_gguf_last_error());
    if (json) json_error("model info", hs_gguf_last_error());
    return EXIT_ERROR;
  }
  hs_model_params p;
  if (hs_model_params_read(g, &p) != 0) {
    fprintf(stderr, "hswarm model info: %s: %s\n", path, hs_model_last_error());
    if (json) json_error("model info", hs_model_last_error());
    hs_gguf_close(g);
    return EXIT_ERROR;
  }
  static type_hist h; /* zeroed; one call per process */
  memset(&h, 0, sizeof h);
  size_t n = hs_gguf_tensor_count(g);
  for (size_t i = 0; i < n; i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i);
    if (t->type < MAX_TYPE) {
      h.count[t->type]++;
      h.bytes[t->type] += t->size;
    }
  }
  if (json)
    print_json(path, &p, &h, n);
  else
    print_human(path, &p, &h, n);
  hs_gguf_close(g);
  return 0;
}

int cmd_model(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "info")) return model_info(argc - 1, argv + 1);
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (argc >= 2)
    fprintf(stderr, "hswarm model: unknown subcommand '%s'\n", argv[1]);
  fputs(USAGE, stderr);
  return EXIT_USAGE;
}
