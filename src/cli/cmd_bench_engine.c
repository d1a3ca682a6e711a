/* cmd_bench_engine.c: `hswarm bench engine -m FILE`: the engine's speed on one sequence.
 *
 *   prefill  a prompt of --prompt tokens (default 512) in one forward call, logits for the last
 *            token only: tokens per second
 *   decode   --gen tokens (default 128) one at a time after that prompt, greedy (argmax of the
 *            logits, end-of-generation ignored): tokens per second, and the weight bytes a decode
 *            step reads (every tensor but the token-embedding table, which is read one row per
 *            token unless it doubles as the output matrix) times tokens per second = GB/s
 *
 *   batch    --batch sequences (default 16; 0 skips it) each given a 32-token prompt, then 32
 *            decode steps of one token per sequence in one forward call: tokens per second over
 *            all sequences (what many agents sharing the model see)
 *
 * Prompt tokens are drawn deterministically from the vocabulary (the figures do not depend on
 * the text). Each figure is the median of --repeat runs (default 3) after one warm-up run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hswarm/alloc.h"
#include "hswarm/engine.h"
#include "hswarm/error.h"
#include "hswarm/quant.h"

#define USAGE                                                                                    \
  "usage: hswarm bench engine -m FILE [--prompt N] [--gen N] [--batch N] [--repeat N]\n"        \
  "                          [--threads N] [--mmap] [--json]\n"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Bytes of weights one decode step reads. */
static uint64_t decode_weight_bytes(const hs_model *m) {
  const hs_gguf *g = hs_model_get_gguf(m);
  const hs_model_params *p = hs_model_get_params(m);
  uint64_t total = 0;
  for (size_t i = 0; i < hs_gguf_tensor_count(g); i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i);
    if (!strcmp(t->name, "token_embd.weight") && !p->tied_embeddings) {
      total += hs_quant_row_bytes((int)t->type, p->n_embd); /* one row looked up */
      continue;
    }
    total += t->size;
  }
  return total;
}

static int argmax(const float *v, uint32_t n) {
  int best = 0;
  for (uint32_t i = 1; i < n; i++)
    if (v[i] > v[best]) best = (int)i;
  return best;
}

typedef struct run_figures {
  double prefill_s, decode_s;
} run_figures;

static int one_run(hs_model *m, hs_seq *seq, const int32_t *prompt, uint32_t n_prompt,
                   uint32_t n_gen, float *logits, hs_batch_item *items, run_figures *f) {
  uint32_t n_vocab = hs_model_get_params(m)->n_vocab;
  if (hs_seq_truncate(seq, 0)) return -1;
  for (uint32_t i = 0; i < n_prompt; i++) items[i] = (hs_batch_item){seq, prompt[i], i + 1 == n_prompt};
  double t0 = cli_seconds();
  if (hs_model_forward(m, items, n_prompt, logits, NULL)) return -1;
  double t1 = cli_seconds();
  for (uint32_t k = 0; k < n_gen; k++) {
    hs_batch_item it = {seq, argmax(logits, n_vocab), true};
    if (hs_model_forward(m, &it, 1, logits, NULL)) return -1;
  }
  double t2 = cli_seconds();
  f->prefill_s = t1 - t0;
  f->decode_s = t2 - t1;
  return 0;
}

#define BATCH_PROMPT 32
#define BATCH_STEPS 32

/* Seconds for BATCH_STEPS decode steps of n sequences together, after their prompts. */
static int batch_run(hs_model *m, hs_seq **seqs, uint32_t n, const int32_t *prompt,
                     hs_batch_item *items, float *logits, double *seconds) {
  uint32_t n_vocab = hs_model_get_params(m)->n_vocab;
  for (uint32_t s = 0; s < n; s++) {
    if (hs_seq_truncate(seqs[s], 0)) return -1;
    for (uint32_t i = 0; i < BATCH_PROMPT; i++)
      items[s * BATCH_PROMPT + i] =
          (hs_batch_item){seqs[s], prompt[(s * 7 + i) % BATCH_PROMPT], i + 1 == BATCH_PROMPT};
  }
  if (hs_model_forward(m, items, (size_t)n * BATCH_PROMPT, logits, NULL)) return -1;
  double t0 = cli_seconds();
  for (uint32_t k = 0; k < BATCH_STEPS; k++) {
    for (uint32_t s = 0; s < n; s++)
      items[s] = (hs_batch_item){seqs[s], argmax(logits + (size_t)s * n_vocab, n_vocab), true};
    if (hs_model_forward(m, items, n, logits, NULL)) return -1;
  }
  *seconds = cli_seconds() - t0;
  return 0;
}

int cmd_bench_engine(int argc, char **argv) {
  const char *model = NULL;
  uint64_t n_prompt = 512, n_gen = 128, repeat = 3, threads = 0, n_batch = 16;
  bool json = false, use_mmap = false;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(USAGE, stdout);
      return 0;
    }
    if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) model = argv[++i];
    else if (!strcmp(a, "--prompt") && has && !cli_parse_u64(argv[i + 1], 0, &n_prompt)) i++;
    else if (!strcmp(a, "--gen") && has && !cli_parse_u64(argv[i + 1], 0, &n_gen)) i++;
    else if (!strcmp(a, "--batch") && has && !cli_parse_u64(argv[i + 1], 0, &n_batch)) i++;
    else if (!strcmp(a, "--repeat") && has && !cli_parse_u64(argv[i + 1], 0, &repeat)) i++;
    else if (!strcmp(a, "--threads") && has && !cli_parse_u64(argv[i + 1], 0, &threads)) i++;
    else if (!strcmp(a, "--json")) json = true;
    else if (!strcmp(a, "--mmap")) use_mmap = true;
    else {
      cli_fail("bench engine: unknown or incomplete option '%s'", a);
      fputs(USAGE, stderr);
      return EXIT_USAGE;
    }
  }
  if (!model || n_prompt < 1 || n_prompt > 65536 || n_gen > 65536 || n_batch > 256 ||
      repeat < 1 || repeat > 99 ||
      threads > 1024) {
    fputs(USAGE, stderr);
    return EXIT_USAGE;
  }
  hs_model_opts mo = {.n_threads = (unsigned)threads, .use_mmap = use_mmap};
  hs_model *m = NULL;
  if (hs_model_open(model, &mo, &m)) {
    cli_fail("bench engine: %s", hs_engine_last_error());
    if (json) cli_json_error("bench engine", cli_last_failure());
    return EXIT_ERROR;
  }
  const hs_model_params *p = hs_model_get_params(m);
  hs_seq *seq = NULL;
  hs_seq **bseqs = calloc(n_batch ? n_batch : 1, sizeof(hs_seq *));
  size_t n_items = n_prompt > n_batch * BATCH_PROMPT ? n_prompt : n_batch * BATCH_PROMPT;
  size_t n_rows = n_batch > 1 ? n_batch : 1;
  uint64_t n_drawn = n_prompt > BATCH_PROMPT ? n_prompt : BATCH_PROMPT;
  int32_t *prompt = hs_malloc(sizeof(int32_t) * n_drawn);
  hs_batch_item *items = hs_malloc(sizeof(hs_batch_item) * n_items);
  float *logits = hs_malloc(sizeof(float) * p->n_vocab * n_rows);
  double *pre = calloc(repeat, sizeof(double)), *dec = calloc(repeat, sizeof(double));
  double *bat = calloc(repeat, sizeof(double));
  int status = EXIT_ERROR;
  const char *why = "out of memory";
  if (!bseqs || !prompt || !items || !logits || !pre || !dec || !bat) goto done;
  for (uint64_t s = 0; s < n_batch; s++)
    if (hs_seq_create(m, BATCH_PROMPT + BATCH_STEPS + 1, &bseqs[s])) {
      why = hs_engine_last_error();
      goto done;
    }
  if (hs_seq_create(m, (uint32_t)(n_prompt + n_gen + 1), &seq)) {
    why = hs_engine_last_error();
    goto done;
  }
  uint64_t x = 0x9e3779b97f4a7c15ull; /* a fixed xorshift stream of prompt tokens */
  for (uint64_t i = 0; i < n_drawn; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    prompt[i] = (int32_t)(x % p->n_vocab);
  }
  run_figures f;
  if (!json) fprintf(stderr, "warming up...\n");
  if (one_run(m, seq, prompt, (uint32_t)n_prompt, (uint32_t)n_gen, logits, items, &f)) {
    why = hs_engine_last_error();
    goto done;
  }
  for (uint64_t r = 0; r < repeat; r++) {
    if (one_run(m, seq, prompt, (uint32_t)n_prompt, (uint32_t)n_gen, logits, items, &f)) {
      why = hs_engine_last_error();
      goto done;
    }
    pre[r] = (double)n_prompt / f.prefill_s;
    dec[r] = n_gen ? (double)n_gen / f.decode_s : 0;
    double bs = 0;
    if (n_batch &&
        batch_run(m, bseqs, (uint32_t)n_batch, prompt, items, logits, &bs)) {
      why = hs_engine_last_error();
      goto done;
    }
    bat[r] = n_batch ? (double)(n_batch * BATCH_STEPS) / bs : 0;
  }
  double prefill_tps = median(pre, (int)repeat), decode_tps = median(dec, (int)repeat);
  double batch_tps = median(bat, (int)repeat);
  uint64_t wbytes = decode_weight_bytes(m);
  double gbs = decode_tps * (double)wbytes / 1e9;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned used_threads = threads ? (unsigned)threads : (unsigned)cores;
  if (json) {
    printf("{\"command\":\"bench engine\",\"status\":\"ok\",\"model\":");
    cli_json_string(stdout, model);
    printf(",\"threads\":%u,\"cores\":%ld,\"repeat\":%llu,\"prompt_tokens\":%llu,"
           "\"gen_tokens\":%llu,\"prefill_tokens_per_second\":%.2f,"
           "\"decode_tokens_per_second\":%.2f,\"decode_weight_bytes\":%llu,"
           "\"decode_weight_gb_per_second\":%.2f,\"batch_sequences\":%llu,"
           "\"batch_decode_tokens_per_second\":%.2f}\n",
           used_threads, cores, (unsigned long long)repeat, (unsigned long long)n_prompt,
           (unsigned long long)n_gen, prefill_tps, decode_tps, (unsigned long long)wbytes, gbs,
           (unsigned long long)n_batch, batch_tps);
  } else {
    printf("hswarm bench engine: %s, %u threads, medians of %llu runs\n", model, used_threads,
           (unsigned long long)repeat);
    printf("prefill  %5llu tokens           %9.1f tokens/s\n", (unsigned long long)n_prompt,
           prefill_tps);
    printf("decode   %5llu tokens, 1 seq    %9.1f tokens/s   %.1f MB of weights per token, "
           "%.1f GB/s\n",
           (unsigned long long)n_gen, decode_tps, (double)wbytes / 1e6, gbs);
    if (n_batch)
      printf("decode   %5d steps, %3llu seqs  %9.1f tokens/s   (all sequences together)\n",
             BATCH_STEPS, (unsigned long long)n_batch, batch_tps);
  }
  status = 0;
done:
  if (status) {
    cli_fail("bench engine: %s", why);
    if (json) cli_json_error("bench engine", why);
  }
  for (uint64_t s = 0; bseqs && s < n_batch; s++) hs_seq_destroy(bseqs[s]);
  free(bseqs);
  free(bat);
  free(pre);
  free(dec);
  hs_free(logits);
  hs_free(items);
  hs_free(prompt);
  hs_seq_destroy(seq);
  hs_model_close(m);
  return status;
}
