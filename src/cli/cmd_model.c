/* cmd_model.c: `hswarm model info -m FILE [--json]`: what a GGUF model file holds, as the engine
 * reads it: architecture, shapes, rope settings, vocabulary size, a histogram of tensor types,
 * parameter count, weight memory and KV-cache cost. The file is checked exactly as loading it
 * would check it (hs_model_params_read), so `model info` is also a quick validity test.
 *
 * `hswarm model synth`: writes a synthetic model file with random weights (hswarm/synth.h), from
 * a preset or from explicit shapes, for tests and benchmarks. */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/synth_vocab.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"
#include "hswarm/model.h"
#include "hswarm/synth.h"

#define USAGE                                                                                  \
  "usage: hswarm model info -m FILE|NAME [--json]\n"                                           \
  "       hswarm model list [--json]\n"                                                        \
  "       hswarm model synth (--preset NAME | --arch A --dim N --layers N --heads N\n"          \
  "                          [--kv-heads N] --ffn N --vocab N) [--ctx N] [--rope-base F]\n"     \
  "                          [--rope-scaling none|llama3|llama3-tensor] [--tied] [--type T]\n"  \
  "                          [--seed N] [--tokenizer bpe|spm|bytes] [--pre NAME]\n"             \
  "                          [--corpus PATH]\n"                                                 \
  "                          -o FILE [--json]\n"

/* Tensor types in the histogram: ggml ids are below 64. */
#define MAX_TYPE 64

typedef struct type_hist {
  uint64_t count[MAX_TYPE], bytes[MAX_TYPE];
  bool rope_freqs; /* the file has rope_freqs.weight (per-frequency factors, Llama 3.1) */
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
  if (h->rope_freqs) printf("; per-frequency factors from rope_freqs.weight (these apply)");
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
  cli_json_string(stdout, path);
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
  printf(",\"freqs_tensor\":%s", h->rope_freqs ? "true" : "false");
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

/* The tensor-type histogram of g into *h; returns the number of tensors. */
static size_t count_types(const hs_gguf *g, type_hist *h) {
  memset(h, 0, sizeof *h);
  size_t n = hs_gguf_tensor_count(g);
  for (size_t i = 0; i < n; i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i);
    if (t->type < MAX_TYPE) {
      h->count[t->type]++;
      h->bytes[t->type] += t->size;
    }
    if (!strcmp(t->name, "rope_freqs.weight")) h->rope_freqs = true;
  }
  return n;
}

/* ---- model list ---- */

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One installed model: a line, or a JSON object (first: no comma before it). */
static void list_one(const char *dir, const char *file, int json, int first) {
  char path[4096], name[256];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  snprintf(name, sizeof name, "%.*s", (int)(strlen(file) - 5), file);
  struct stat st;
  uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
  hs_gguf *g = NULL;
  hs_model_params p;
  const char *why = NULL;
  if (hs_gguf_open(path, &g) != 0) why = hs_gguf_last_error();
  else if (hs_model_params_read(g, &p) != 0) why = hs_model_last_error();
  type_hist h;
  if (g) count_types(g, &h);
  if (json) {
    printf("%s{\"name\":", first ? "" : ",");
    cli_json_string(stdout, name);
    printf(",\"path\":");
    cli_json_string(stdout, path);
    printf(",\"bytes\":%" PRIu64, size);
    if (why) {
      printf(",\"error\":");
      cli_json_string(stdout, why);
    } else {
      printf(",\"architecture\":\"%s\",\"n_params\":%" PRIu64 ",\"tensor_types\":{", p.arch_name,
             p.n_params);
      for (uint32_t t = 0, k = 0; t < MAX_TYPE; t++)
        if (h.count[t]) printf("%s\"%s\":%" PRIu64, k++ ? "," : "", hs_gguf_type_name(t), h.count[t]);
      printf("}");
    }
    printf("}");
  } else {
    char b[32];
    human_bytes(b, sizeof b, size);
    printf("%-24s %11s  ", name, b);
    if (why) {
      printf("unreadable: %s\n", why);
    } else {
      printf("%-7s %6.1f M params  ", p.arch_name, (double)p.n_params / 1e6);
      for (uint32_t t = 0, k = 0; t < MAX_TYPE; t++)
        if (h.count[t]) printf("%s%s x%" PRIu64, k++ ? ", " : "", hs_gguf_type_name(t), h.count[t]);
      printf("\n");
    }
  }
  if (g) hs_gguf_close(g);
}

static int model_list(int argc, char **argv) {
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(USAGE "\nLists the models that -m NAME finds (NAME.gguf in these folders, in order:\n"
                  "$HS_MODELS_DIR, the build tree's .deps/models, where tools/models.sh puts the\n"
                  "published models, and the install prefix's share/hswarm/models), with their\n"
                  "size, architecture, parameters and tensor types.\n",
            stdout);
      return 0;
    } else {
      fprintf(stderr, "hswarm model list: unknown argument '%s'\n" USAGE, argv[i]);
      return EXIT_USAGE;
    }
  }
  if (json) printf("{\"dirs\":[");
  int k = 0;
  for (const char *const *d = cli_model_dirs(); *d; d++) {
    if (json) {
      printf("%s", k++ ? "," : "");
      cli_json_string(stdout, *d);
    }
  }
  if (json) printf("],\"models\":[");
  int first = 1, n = 0;
  for (const char *const *d = cli_model_dirs(); *d; d++) {
    DIR *dir = opendir(*d);
    if (!dir) continue;
    char *names[1024];
    size_t nn = 0;
    struct dirent *e;
    while ((e = readdir(dir)) && nn < 1024) {
      size_t len = strlen(e->d_name);
      if (len > 5 && !strcmp(e->d_name + len - 5, ".gguf")) names[nn++] = strdup(e->d_name);
    }
    closedir(dir);
    qsort(names, nn, sizeof names[0], by_name);
    if (!json && nn) printf("%s:\n", *d);
    for (size_t i = 0; i < nn; i++) {
      if (names[i]) list_one(*d, names[i], json, first);
      first = 0;
      n++;
      free(names[i]);
    }
  }
  if (json) printf("]}\n");
  else if (!n) printf("no models installed (tools/models.sh fetches the published ones)\n");
  return 0;
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
    if (json) cli_json_error("model info", hs_gguf_last_error());
    return EXIT_ERROR;
  }
  hs_model_params p;
  if (hs_model_params_read(g, &p) != 0) {
    fprintf(stderr, "hswarm model info: %s: %s\n", path, hs_model_last_error());
    if (json) cli_json_error("model info", hs_model_last_error());
    hs_gguf_close(g);
    return EXIT_ERROR;
  }
  static type_hist h; /* one call per process */
  size_t n = count_types(g, &h);
  if (json)
    print_json(path, &p, &h, n);
  else
    print_human(path, &p, &h, n);
  hs_gguf_close(g);
  return 0;
}

/* ---- model synth ---- */

#define SYNTH_HELP                                                                             \
  "\nWrites a GGUF model with random weights (deterministic from the seed) for tests and\n"    \
  "benchmarks. Options given after or without --preset set or override its fields.\n"         \
  "  --preset NAME           bench-250m, llama3-8b, tiny-llama, tiny-llama3, tiny-qwen2,\n"     \
  "                          small-llama3, small-qwen2, tiny-qwen3, tiny-gemma3, small-gemma3\n" \
  "  --arch A                llama (default), qwen2, qwen3 or gemma3\n"                       \
  "  --head-dim N            head size (attention.key_length; default dim / heads)\n"        \
  "  --window N              gemma3: sliding window of N positions (0: none)\n"              \
  "  --window-period N       gemma3: every N-th layer attends globally (default 6)\n"        \
  "  --dim N                 embedding length\n"                                               \
  "  --layers N              blocks\n"                                                         \
  "  --heads N               attention heads\n"                                                \
  "  --kv-heads N            key/value heads (default: --heads)\n"                             \
  "  --ffn N                 feed-forward length\n"                                            \
  "  --vocab N               vocabulary size (at least 258)\n"                                 \
  "  --ctx N                 training context length (default 4096)\n"                         \
  "  --rope-base F           rope frequency base (default 10000, 500000 with llama3 scaling)\n"\
  "  --rope-scaling T        none, llama3 (Llama 3.1's factors 8, 1, 4, 8192 as rope.scaling.*\n"\
  "                          keys) or llama3-tensor (the same factors applied, written as the\n"\
  "                          tensor rope_freqs.weight as llama.cpp's converter does: loads in\n"\
  "                          llama.cpp too)\n"                                                  \
  "  --tied                  no output.weight: the output reuses the token embeddings\n"       \
  "  --type T                f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k,\n"   \
  "                          q3_k, q4_k, q4_k_m, q5_k, q6_k, iq4_xs (default q8_0)\n"         \
  "  --seed N                weight seed (default 0)\n"                                        \
  "  --tokenizer K           bpe (byte-level BPE, the default), spm (SentencePiece-style with\n"\
  "                          scores and byte fallback), or bytes (256 byte tokens and fillers,\n"\
  "                          no corpus: fastest to write)\n"                                   \
  "  --pre NAME              BPE pre-tokenizer: llama-bpe (llama's default), qwen2 (qwen2's\n" \
  "                          default), default (GPT-2)\n"                                       \
  "  --corpus PATH           text file or directory the vocabulary is learned from (default:\n"\
  "                          the project's own sources)\n"                                      \
  "  -o, --output FILE       the file to write\n"                                              \
  "  --json                  print one JSON object (fields in docs/json.md)\n"

static int parse_u32_arg(const char *opt, const char *v, uint32_t *out) {
  uint64_t x;
  if (cli_parse_u64(v, 0, &x) != 0 || x == 0 || x > UINT32_MAX) {
    fprintf(stderr, "hswarm model synth: %s needs a positive integer, got '%s'\n", opt, v);
    return -1;
  }
  *out = (uint32_t)x;
  return 0;
}

static const char *vocab_kind_name(const cli_synth_vocab *sv) {
  return sv->kind == CLI_VOCAB_SPM ? "spm" : sv->kind == CLI_VOCAB_BYTES ? "bytes" : "bpe";
}

static void synth_json(const char *path, const char *preset, const hs_synth_spec *s,
                       const cli_synth_vocab *sv, const hs_synth_info *info, double seconds) {
  printf("{\"command\":\"model synth\",\"status\":\"ok\",\"file\":");
  cli_json_string(stdout, path);
  printf(",\"preset\":");
  cli_json_string(stdout, preset);
  printf(",\"architecture\":\"%s\",\"n_embd\":%u,\"n_layer\":%u,\"n_head\":%u,\"n_head_kv\":%u,"
         "\"n_ff\":%u,\"n_vocab\":%u,\"n_ctx_train\":%u,\"rope_freq_base\":%.9g,"
         "\"rope_scaling\":\"%s\",\"tied_embeddings\":%s,\"type\":\"%s\",\"seed\":%" PRIu64
         ",\"n_params\":%" PRIu64 ",\"file_bytes\":%" PRIu64 ",\"n_tensors\":%u,"
         "\"n_fallback\":%u,\"seconds\":%.3f",
         hs_model_arch_name(s->arch), s->n_embd, s->n_layer, s->n_head,
         s->n_head_kv, s->n_ff, s->n_vocab, s->n_ctx_train, (double)s->rope_freq_base,
         s->rope_freqs_tensor ? "llama3-tensor" : s->rope_llama3 ? "llama3" : "none",
         s->tied ? "true" : "false",
         hs_synth_type_name(s->type), s->seed, info->n_params, info->file_bytes, info->n_tensors,
         info->n_fallback, seconds);
  printf(",\"tokenizer\":\"%s\",\"pre\":", vocab_kind_name(sv));
  if (sv->pre) cli_json_string(stdout, sv->pre);
  else fputs("null", stdout);
  printf(",\"corpus\":");
  if (sv->kind == CLI_VOCAB_BYTES) fputs("null", stdout);
  else cli_json_string(stdout, sv->corpus_used);
  printf(",\"corpus_bytes\":%zu,\"n_learned\":%u,\"n_padded\":%u}\n", sv->corpus_len,
         sv->result.n_learned, sv->result.n_padded);
}

static int model_synth(int argc, char **argv) {
  hs_synth_spec s;
  memset(&s, 0, sizeof s);
  s.arch = HS_MODEL_ARCH_LLAMA;
  s.n_ctx_train = 4096;
  s.rms_norm_eps = 1e-5f;
  s.type = HS_SYNTH_Q8_0;
  const char *path = NULL, *preset = NULL;
  int json = 0, base_given = 0;
  cli_synth_vocab sv;
  memset(&sv, 0, sizeof sv);
#define FAIL_USAGE(...)                                                                        \
  do {                                                                                         \
    fprintf(stderr, "hswarm model synth: " __VA_ARGS__);                                       \
    fputs(USAGE, stderr);                                                                      \
    if (json) cli_json_error("model synth", "bad command line");                                   \
    return EXIT_USAGE;                                                                         \
  } while (0)
  /* --json first, so that usage errors also answer in JSON */
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--json")) json = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--json")) continue;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(USAGE SYNTH_HELP, stdout);
      return 0;
    }
    if (!strcmp(a, "--tied")) {
      s.tied = true;
      continue;
    }
    if (i + 1 >= argc) FAIL_USAGE("%s needs a value (or is unknown)\n", a);
    const char *v = argv[++i];
    if (!strcmp(a, "--preset")) {
      if (hs_synth_preset(v, &s) != 0) FAIL_USAGE("%s\n", hs_synth_last_error());
      preset = v;
    } else if (!strcmp(a, "--arch")) {
      if (!strcmp(v, "llama")) s.arch = HS_MODEL_ARCH_LLAMA;
      else if (!strcmp(v, "qwen2")) s.arch = HS_MODEL_ARCH_QWEN2;
      else if (!strcmp(v, "qwen3")) s.arch = HS_MODEL_ARCH_QWEN3;
      else if (!strcmp(v, "gemma3")) s.arch = HS_MODEL_ARCH_GEMMA3;
      else FAIL_USAGE("unknown architecture '%s' (llama, qwen2, qwen3 or gemma3)\n", v);
    } else if (!strcmp(a, "--head-dim")) {
      if (parse_u32_arg(a, v, &s.head_dim)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--window")) {
      uint64_t w;
      if (cli_parse_u64(v, 0, &w) != 0 || w > UINT32_MAX) FAIL_USAGE("bad value for --window\n");
      s.n_swa = (uint32_t)w;
    } else if (!strcmp(a, "--window-period")) {
      if (parse_u32_arg(a, v, &s.swa_period)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--dim")) {
      if (parse_u32_arg(a, v, &s.n_embd)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--layers")) {
      if (parse_u32_arg(a, v, &s.n_layer)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--heads")) {
      if (parse_u32_arg(a, v, &s.n_head)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--kv-heads")) {
      if (parse_u32_arg(a, v, &s.n_head_kv)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--ffn")) {
      if (parse_u32_arg(a, v, &s.n_ff)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--vocab")) {
      if (parse_u32_arg(a, v, &s.n_vocab)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--ctx")) {
      if (parse_u32_arg(a, v, &s.n_ctx_train)) FAIL_USAGE("bad value\n");
    } else if (!strcmp(a, "--rope-base")) {
      char *end;
      errno = 0;
      double d = strtod(v, &end);
      if (end == v || *end || errno || !(d > 0) || d > 1e30)
        FAIL_USAGE("--rope-base needs a positive number, got '%s'\n", v);
      s.rope_freq_base = (float)d;
      base_given = 1;
    } else if (!strcmp(a, "--rope-scaling")) {
      s.rope_llama3 = !strcmp(v, "llama3") || !strcmp(v, "llama3-tensor");
      s.rope_freqs_tensor = !strcmp(v, "llama3-tensor");
      if (!s.rope_llama3 && strcmp(v, "none"))
        FAIL_USAGE("unknown rope scaling '%s' (none, llama3 or llama3-tensor)\n", v);
    } else if (!strcmp(a, "--type")) {
      if (hs_synth_type_parse(v, &s.type) != 0) FAIL_USAGE("%s\n", hs_synth_last_error());
    } else if (!strcmp(a, "--seed")) {
      uint64_t seed;
      if (cli_parse_u64(v, 0, &seed) != 0) FAIL_USAGE("--seed needs an integer, got '%s'\n", v);
      s.seed = seed;
    } else if (!strcmp(a, "--tokenizer")) {
      if (cli_synth_vocab_parse_kind(v, &sv) != 0)
        FAIL_USAGE("unknown tokenizer '%s' (bpe, spm or bytes)\n", v);
    } else if (!strcmp(a, "--pre")) {
      sv.pre = v;
    } else if (!strcmp(a, "--corpus")) {
      sv.corpus_path = v;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      path = v;
    } else {
      FAIL_USAGE("unknown argument '%s'\n", a);
    }
  }
  if (!path) FAIL_USAGE("missing -o FILE\n");
  if (!preset) {
    if (!s.n_embd || !s.n_layer || !s.n_head || !s.n_ff || !s.n_vocab)
      FAIL_USAGE("without --preset, --dim, --layers, --heads, --ffn and --vocab are needed\n");
    if (!s.n_head_kv) s.n_head_kv = s.n_head;
    if (!base_given) s.rope_freq_base = s.rope_llama3 ? 500000.0f : 10000.0f;
  }
#undef FAIL_USAGE
  double t0 = cli_seconds();
  int rc = cli_synth_vocab_prepare(&sv, &s);
  if (rc != 0) {
    if (json) cli_json_error("model synth", "the tokenizer options or the corpus are not usable");
    return rc == HS_EINVAL ? EXIT_USAGE : EXIT_ERROR;
  }
  hs_synth_info info;
  rc = hs_synth_write(&s, path, &info);
  cli_synth_vocab_release(&sv);
  if (rc != 0) {
    const char *msg = sv.error[0] ? sv.error : hs_synth_last_error();
    fprintf(stderr, "hswarm model synth: %s\n", msg);
    if (json) cli_json_error("model synth", msg);
    return rc == HS_EINVAL ? EXIT_USAGE : EXIT_ERROR;
  }
  double dt = cli_seconds() - t0;
  if (json) {
    synth_json(path, preset, &s, &sv, &info, dt);
  } else {
    fprintf(stderr,
            "wrote %s: %s, %u layers, n_embd %u, %u heads (%u kv), n_ff %u, vocab %u, %s, "
            "%.2f M parameters, %" PRIu64 " bytes in %.2f s\n",
            path, hs_model_arch_name(s.arch), s.n_layer, s.n_embd,
            s.n_head, s.n_head_kv, s.n_ff, s.n_vocab, hs_synth_type_name(s.type),
            (double)info.n_params / 1e6, info.file_bytes, dt);
    if (sv.kind != CLI_VOCAB_BYTES)
      fprintf(stderr, "vocabulary: %s%s%s, %u tokens learned from %zu bytes of %s, %u fillers\n",
              vocab_kind_name(&sv), sv.pre ? " " : "", sv.pre ? sv.pre : "",
              sv.result.n_learned, sv.corpus_len, sv.corpus_used, sv.result.n_padded);
  }
  return 0;
}

int cmd_model(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "info")) return model_info(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "list")) return model_list(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "synth")) return model_synth(argc - 1, argv + 1);
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (argc >= 2)
    fprintf(stderr, "hswarm model: unknown subcommand '%s'\n", argv[1]);
  fputs(USAGE, stderr);
  return EXIT_USAGE;
}
