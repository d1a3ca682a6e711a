/* bench_forward.c: speed of the CPU forward pass (include/hswarm/engine.h) on a model file.
 *
 *   bench_forward -m FILE [--prompt N] [--gen N] [--batch B] [--threads N] [--reps R] [--json]
 *
 * Three figures, each the best of R repetitions (the machines are shared and noisy):
 *   prefill   one sequence, a prompt of N tokens in one call (logits for the last token only)
 *   decode    the same sequence, then G greedy tokens, one call per token
 *   batch     B sequences that each hold the prompt, then G steps in which all B decode one
 *             token together in one call (tokens per second counts all B)
 * Prompt tokens are deterministic pseudo-random ids. Use `hswarm model synth --preset bench-250m
 * --type q8_0 -o FILE` to make a model. --json prints one object with the figures. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hswarm/engine.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t argmax(const float *x, size_t n) {
  size_t b = 0;
  for (size_t i = 1; i < n; i++)
    if (x[i] > x[b]) b = i;
  return b;
}

static void die(const char *what) {
  fprintf(stderr, "bench_forward: %s: %s\n", what, hs_engine_last_error());
  exit(1);
}

int main(int argc, char **argv) {
  const char *path = NULL;
  unsigned n_prompt = 128, n_gen = 32, batch = 16, threads = 0, reps = 3;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--json")) {
      json = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "bench_forward: %s needs a value\n", a);
      return 2;
    }
    const char *v = argv[++i];
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) path = v;
    else if (!strcmp(a, "--prompt")) n_prompt = (unsigned)atoi(v);
    else if (!strcmp(a, "--gen")) n_gen = (unsigned)atoi(v);
    else if (!strcmp(a, "--batch")) batch = (unsigned)atoi(v);
    else if (!strcmp(a, "--threads")) threads = (unsigned)atoi(v);
    else if (!strcmp(a, "--reps")) reps = (unsigned)atoi(v);
    else {
      fprintf(stderr, "bench_forward: unknown argument '%s'\n", a);
      return 2;
    }
  }
  if (!path || n_prompt == 0 || n_gen == 0 || batch == 0 || reps == 0) {
    fprintf(stderr, "usage: bench_forward -m FILE [--prompt N] [--gen N] [--batch B] "
                    "[--threads N] [--reps R] [--json]\n");
    return 2;
  }
  hs_model_opts o = {.n_threads = threads};
  hs_model *m;
  double t0 = now();
  if (hs_model_open(path, &o, &m) != 0) die("open");
  double t_open = now() - t0;
  const hs_model_params *p = hs_model_get_params(m);
  const size_t nv = p->n_vocab;
  uint32_t cap = n_prompt + n_gen;
  hs_batch_item *it = malloc((n_prompt > batch ? n_prompt : batch) * sizeof *it);
  int32_t *prompt = malloc(n_prompt * sizeof *prompt);
  float *logits = malloc(batch * nv * sizeof *logits);
  hs_seq **seqs = malloc(batch * sizeof *seqs);
  if (!it || !prompt || !logits || !seqs) return 1;
  uint64_t x = 88172645463325252ull;
  for (unsigned i = 0; i < n_prompt; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    prompt[i] = (int32_t)(x % nv);
  }
  for (unsigned b = 0; b < batch; b++)
    if (hs_seq_create(m, cap, &seqs[b]) != 0) die("sequence");

  double best_prefill = 1e30, best_decode = 1e30, best_batch = 1e30;
  for (unsigned r = 0; r < reps; r++) {
    hs_seq *s = seqs[0];
    hs_seq_truncate(s, 0);
    for (unsigned i = 0; i < n_prompt; i++)
      it[i] = (hs_batch_item){s, prompt[i], i + 1 == n_prompt};
    t0 = now();
    if (hs_model_forward(m, it, n_prompt, logits, NULL) != 0) die("prefill");
    double dt = now() - t0;
    best_prefill = dt < best_prefill ? dt : best_prefill;
    t0 = now();
    for (unsigned g = 0; g < n_gen; g++) {
      hs_batch_item one = {s, (int32_t)argmax(logits, nv), true};
      if (hs_model_forward(m, &one, 1, logits, NULL) != 0) die("decode");
    }
    dt = now() - t0;
    best_decode = dt < best_decode ? dt : best_decode;
    /* batch: every sequence holds the prompt (the first one already does) */
    for (unsigned b = 0; b < batch; b++) {
      hs_seq_truncate(seqs[b], 0);
      for (unsigned i = 0; i < n_prompt; i++)
        it[i] = (hs_batch_item){seqs[b], prompt[i], i + 1 == n_prompt};
      if (hs_model_forward(m, it, n_prompt, logits + b * nv, NULL) != 0) die("prefill");
    }
    t0 = now();
    for (unsigned g = 0; g < n_gen; g++) {
      for (unsigned b = 0; b < batch; b++)
        it[b] = (hs_batch_item){seqs[b], (int32_t)argmax(logits + b * nv, nv), true};
      if (hs_model_forward(m, it, batch, logits, NULL) != 0) die("batched decode");
    }
    dt = now() - t0;
    best_batch = dt < best_batch ? dt : best_batch;
  }
  double pf = n_prompt / best_prefill, dc = n_gen / best_decode,
         bt = (double)batch * n_gen / best_batch;
  if (json) {
    printf("{\"bench\":\"forward\",\"model\":\"%s\",\"n_params\":%llu,\"threads\":%u,"
           "\"prompt\":%u,\"gen\":%u,\"batch\":%u,\"open_s\":%.3f,\"prefill_tok_s\":%.1f,"
           "\"decode_tok_s\":%.2f,\"decode_ms_per_tok\":%.2f,\"batch_tok_s\":%.1f}\n",
           path, (unsigned long long)p->n_params, hs_model_n_threads(m), n_prompt, n_gen, batch,
           t_open, pf, dc, 1e3 / dc, bt);
  } else {
    printf("model %s: %.1f M parameters, %u threads, open %.3f s\n", path, p->n_params / 1e6,
           hs_model_n_threads(m), t_open);
    printf("prefill  %4u tokens      %8.1f tok/s  (%.3f s)\n", n_prompt, pf, best_prefill);
    printf("decode   %4u tokens      %8.2f tok/s  (%.2f ms/token)\n", n_gen, dc, 1e3 / dc);
    printf("batch    %4u x %-4u      %8.1f tok/s  (%.2f ms/step)\n", batch, n_gen, bt,
           1e3 * best_batch / n_gen);
  }
  for (unsigned b = 0; b < batch; b++) hs_seq_destroy(seqs[b]);
  hs_model_close(m);
  free(it);
  free(prompt);
  free(logits);
  free(seqs);
  return 0;
}
