/* bench_kernels.c: speed of the CPU matrix kernels (src/engine/cpu/kernels.h) and of the thread
 * pool's dispatch.
 *
 *   bench_kernels [--json] [--isa ref|avx2|avx512|all] [--type NAME|all] [--threads N[,M..]]
 *                 [--tokens N] [--reps R] [--no-matmul] [--no-matvec] [--hot]
 *
 * matvec: one token (decode), on the shapes of bench-250m's largest matrices, rows x cols:
 * 1024 x 2816 (ffn_down), 2816 x 1024 (ffn_gate/up), 32000 x 1024 (output). Each call uses a
 * different copy of the matrix, cycling through enough copies to exceed 128 MiB, so the weights
 * come from memory as in a real decode step (not from the 32 MiB L3). Reported as GB/s of weight
 * bytes streamed, and microseconds per call. --hot uses one copy instead (weights from cache when
 * they fit: the kernels' compute speed).
 * matmul: --tokens (512) tokens at once (prefill), same shapes (the output matrix only with
 * --tokens <= 64 to keep runs short), reported as GOP/s (2 * rows * cols * tokens operations per
 * call; activation quantization included) and milliseconds per call.
 * pool: the cost of hs_threadpool_run with an empty task per thread (dispatch + join), in
 * microseconds, for each thread count.
 *
 * Each figure is the median of --reps (5) repetitions, each at least 0.15 s long. The machine is
 * shared: compare figures from one run. With --json exactly one JSON object goes to stdout:
 * {"isa_active": ..., "pool": [{"threads", "us_per_run"}], "results": [{"isa", "type", "op",
 * "rows", "cols", "tokens", "threads", "gbps", "gops", "us_per_call"}]}. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "engine/cpu/kernels.h"
#include "hswarm/error.h"
#include "hswarm/quant.h"

#define MAX_REPS 51

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 32);
}
static float rnd_normal(void) {
  float s = 0.0f;
  for (int i = 0; i < 4; i++) s += (float)rnd() / 4294967296.0f;
  return (s - 2.0f) * 1.7320508f;
}

static void put16(uint8_t *p, uint16_t h) {
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}

/* Random weights with finite, moderate scales. */
static void fill_weights(int type, uint8_t *w, size_t n_rows, size_t n_cols) {
  size_t rb = hs_quant_row_bytes(type, n_cols);
  for (size_t i = 0; i < rb * n_rows; i++) w[i] = (uint8_t)rnd();
  size_t be = hs_quant_block_elems(type), bb = hs_quant_block_bytes(type);
  size_t nb = n_cols / be * n_rows;
  for (size_t b = 0; b < nb; b++) {
    uint8_t *p = w + b * bb;
    switch (type) {
    case HS_QUANT_F32: {
      float v = rnd_normal() * 0.05f;
      memcpy(p, &v, 4);
      break;
    }
    case HS_QUANT_F16: put16(p, hs_quant_f32_to_fp16(rnd_normal() * 0.05f)); break;
    case HS_QUANT_BF16: put16(p, hs_quant_f32_to_bf16(rnd_normal() * 0.05f)); break;
    case HS_QUANT_Q8_0: case HS_QUANT_Q4_0: put16(p, hs_quant_f32_to_fp16(0.001f + 0.01f * (float)(rnd() % 100) / 100.0f)); break;
    case HS_QUANT_Q4_K:
      put16(p, hs_quant_f32_to_fp16(0.001f));
      put16(p + 2, hs_quant_f32_to_fp16(0.0005f));
      break;
    case HS_QUANT_Q6_K: put16(p + 208, hs_quant_f32_to_fp16(0.0001f)); break;
    default: break;
    }
  }
}

static const struct {
  const char *name;
  int type;
} types[] = {{"f32", HS_QUANT_F32},   {"f16", HS_QUANT_F16},   {"bf16", HS_QUANT_BF16},
             {"q8_0", HS_QUANT_Q8_0}, {"q4_0", HS_QUANT_Q4_0}, {"q4_k", HS_QUANT_Q4_K},
             {"q6_k", HS_QUANT_Q6_K}};
#define N_TYPES (sizeof types / sizeof *types)

static const size_t shapes[][2] = {{1024, 2816}, {2816, 1024}, {32000, 1024}};
#define N_SHAPES 3

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

typedef struct result {
  const char *isa, *type, *op;
  size_t rows, cols, tokens;
  unsigned threads;
  double gbps, gops, us;
} result;

static result results[1024];
static int n_results;

static void empty_task(void *ctx, size_t task, unsigned worker) {
  (void)ctx;
  (void)task;
  (void)worker;
}

int main(int argc, char **argv) {
  int json = 0, reps = 5, do_matmul = 1, do_matvec = 1, hot = 0;
  const char *isa_arg = "all", *type_arg = "all", *threads_arg = "1,2";
  size_t tokens = 512;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) json = 1;
    else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) isa_arg = argv[++i];
    else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) type_arg = argv[++i];
    else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads_arg = argv[++i];
    else if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) tokens = (size_t)atol(argv[++i]);
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--no-matmul") == 0) do_matmul = 0;
    else if (strcmp(argv[i], "--no-matvec") == 0) do_matvec = 0;
    else if (strcmp(argv[i], "--hot") == 0) hot = 1;
    else {
      fprintf(stderr,
              "usage: bench_kernels [--json] [--isa ref|avx2|avx512|all] [--type NAME|all]\n"
              "                     [--threads N[,M..]] [--tokens N] [--reps R] [--no-matmul] [--no-matvec] [--hot]\n");
      return 2;
    }
  }
  if (reps < 1 || reps > MAX_REPS || tokens < 1) {
    fprintf(stderr, "bench_kernels: bad --reps or --tokens\n");
    return 2;
  }
  unsigned thread_list[8];
  int n_threads = 0;
  for (const char *p = threads_arg; *p && n_threads < 8;) {
    thread_list[n_threads++] = (unsigned)strtoul(p, (char **)&p, 10);
    if (*p == ',') p++;
    else break;
  }

  /* the pool's dispatch cost */
  double pool_us[8];
  for (int ti = 0; ti < n_threads; ti++) {
    hs_threadpool *tp = NULL;
    if (hs_threadpool_create(thread_list[ti], &tp) != 0) return 1;
    double v[MAX_REPS];
    for (int r = 0; r < reps; r++) {
      long n = 0;
      double t0 = now_s(), t1;
      do {
        for (int k = 0; k < 1000; k++) hs_threadpool_run(tp, empty_task, NULL, thread_list[ti]);
        n += 1000;
        t1 = now_s();
      } while (t1 - t0 < 0.1);
      v[r] = (t1 - t0) / (double)n * 1e6;
    }
    pool_us[ti] = median(v, reps);
    hs_threadpool_destroy(tp);
  }

  hs_cpu_scratch scratch = {0};
  size_t max_cols = 2816;
  float *x = malloc(tokens * max_cols * sizeof(float));
  float *y = malloc(tokens * 32000 * sizeof(float));
  if (!x || !y) return 1;
  for (size_t i = 0; i < tokens * max_cols; i++) x[i] = rnd_normal();

  for (int isa = HS_CPU_ISA_REF; isa <= HS_CPU_ISA_AVX512; isa++) {
    if (!hs_cpu_isa_supported((hs_cpu_isa)isa)) continue;
    if (strcmp(isa_arg, "all") != 0 && strcmp(isa_arg, hs_cpu_isa_name((hs_cpu_isa)isa)) != 0) continue;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
      if (strcmp(type_arg, "all") != 0 && strcmp(type_arg, types[ti].name) != 0) continue;
      int type = types[ti].type;
      for (int si = 0; si < N_SHAPES; si++) {
        size_t rows = shapes[si][0], cols = shapes[si][1];
        size_t mbytes = hs_quant_row_bytes(type, cols) * rows;
        /* copies so that one cycle streams >= 128 MiB */
        size_t copies = hot ? 1 : (128u << 20) / mbytes + 1;
        uint8_t *w = malloc(mbytes * copies);
        if (!w) return 1;
        fill_weights(type, w, rows, cols);
        for (size_t c = 1; c < copies; c++) memcpy(w + c * mbytes, w, mbytes);
        for (int thi = 0; thi < n_threads; thi++) {
          hs_threadpool *tp = NULL;
          if (hs_threadpool_create(thread_list[thi], &tp) != 0) return 1;
          for (int op = 0; op < 2; op++) {
            if (op == 0 && !do_matvec) continue;
            if (op == 1 && (!do_matmul || isa == HS_CPU_ISA_REF)) continue;
            size_t nt = op == 0 ? 1 : tokens;
            if (op == 1 && rows == 32000 && nt > 64) continue;
            double v[MAX_REPS];
            size_t c = 0;
            for (int r = 0; r < reps; r++) {
              long n = 0;
              double t0 = now_s(), t1;
              do {
                int rc = hs_cpu_matmul_isa((hs_cpu_isa)isa, tp, &scratch, type, w + c * mbytes,
                                           rows, cols, x, nt, y, rows);
                if (rc) {
                  fprintf(stderr, "bench_kernels: %s (%s)\n", hs_strerror(rc), hs_cpu_last_error());
                  return 1;
                }
                c = (c + 1) % copies;
                n++;
                t1 = now_s();
              } while (t1 - t0 < 0.15);
              v[r] = (t1 - t0) / (double)n;
            }
            double sec = median(v, reps);
            result *res = &results[n_results++];
            res->isa = hs_cpu_isa_name((hs_cpu_isa)isa);
            res->type = types[ti].name;
            res->op = op == 0 ? "matvec" : "matmul";
            res->rows = rows;
            res->cols = cols;
            res->tokens = nt;
            res->threads = thread_list[thi];
            res->gbps = (double)mbytes / sec * 1e-9;
            res->gops = 2.0 * (double)rows * (double)cols * (double)nt / sec * 1e-9;
            res->us = sec * 1e6;
            if (!json) {
              if (n_results == 1)
                printf("%-7s %-5s %-7s %6s %5s %4s %3s %9s %9s %11s\n", "isa", "type", "op",
                       "rows", "cols", "tok", "thr", "GB/s", "GOP/s", "us/call");
              printf("%-7s %-5s %-7s %6zu %5zu %4zu %3u %9.2f %9.1f %11.1f\n", res->isa, res->type,
                     res->op, rows, cols, nt, res->threads, res->gbps, res->gops, res->us);
              fflush(stdout);
            }
          }
          hs_threadpool_destroy(tp);
        }
        free(w);
      }
    }
  }
  hs_cpu_scratch_free(&scratch);
  free(x);
  free(y);

  if (json) {
    printf("{\"isa_active\": \"%s\", \"pool\": [", hs_cpu_isa_name(hs_cpu_isa_active()));
    for (int ti = 0; ti < n_threads; ti++)
      printf("%s{\"threads\": %u, \"us_per_run\": %.3f}", ti ? ", " : "", thread_list[ti], pool_us[ti]);
    printf("], \"results\": [");
    for (int i = 0; i < n_results; i++) {
      result *r = &results[i];
      printf("%s\n  {\"isa\": \"%s\", \"type\": \"%s\", \"op\": \"%s\", \"rows\": %zu, \"cols\": %zu, "
             "\"tokens\": %zu, \"threads\": %u, \"gbps\": %.3f, \"gops\": %.2f, \"us_per_call\": %.2f}",
             i ? "," : "", r->isa, r->type, r->op, r->rows, r->cols, r->tokens, r->threads, r->gbps,
             r->gops, r->us);
    }
    printf("\n]}\n");
  } else {
    printf("\npool dispatch+join (empty tasks):");
    for (int ti = 0; ti < n_threads; ti++) printf("  %u threads %.2f us", thread_list[ti], pool_us[ti]);
    printf("\n");
  }
  return 0;
}
