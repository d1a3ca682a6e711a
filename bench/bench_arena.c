/* bench_arena.c: cost of one blob's life in the shared arena (include/hswarm/arena.h).
 *
 * One operation is: hs_arena_alloc, write the blob's first and last byte, hs_arena_publish,
 * hs_arena_read, hs_arena_release (which frees it). Measured for 64-byte and 4 KiB blobs, on 1 and
 * 2 threads sharing one arena; each figure is the median of 5 repetitions of 1M operations (split
 * evenly between the threads).
 *
 *   bench_arena [--json] [--ops N] [--reps R]
 *
 * ns_per_op is wall time / total operations (so 2 threads that scale perfectly halve it);
 * thread_ns_per_op is wall time * threads / total operations (the latency one thread sees). With
 * --json, exactly one JSON object goes to stdout. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hswarm/arena.h"
#include "hswarm/error.h"

#define MAX_REPS 101

typedef struct run_cfg {
  hs_arena *arena;
  size_t size;
  long ops; /* per thread */
  pthread_barrier_t *start;
  double begin, end; /* seconds, filled by the thread */
  int failed;
  unsigned sink;
} run_cfg;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One blob's life. Returns 0 or the failing call's code. */
static int blob_cycle(hs_arena *a, size_t size, unsigned char mark, unsigned *sink) {
  hs_handle h;
  void *wp;
  int rc = hs_arena_alloc(a, size, &h, &wp);
  if (rc) return rc;
  unsigned char *w = wp;
  w[0] = mark;
  w[size - 1] = mark;
  rc = hs_arena_publish(a, h);
  if (rc) return rc;
  const void *rp;
  size_t n;
  rc = hs_arena_read(a, h, &rp, &n);
  if (rc) return rc;
  *sink += ((const unsigned char *)rp)[n - 1];
  return hs_arena_release(a, h);
}

static void *run_thread(void *varg) {
  run_cfg *cfg = varg;
  unsigned sink = 0;
  pthread_barrier_wait(cfg->start);
  cfg->begin = now_s();
  for (long i = 0; i < cfg->ops; i++) {
    int rc = blob_cycle(cfg->arena, cfg->size, (unsigned char)i, &sink);
    if (rc) {
      fprintf(stderr, "bench_arena: %s (%s)\n", hs_strerror(rc), hs_arena_last_error());
      cfg->failed = 1;
      break;
    }
  }
  cfg->end = now_s();
  cfg->sink = sink;
  return NULL;
}

/* One repetition: total_ops operations over `threads` threads; returns wall ns per op, < 0 on
 * error. */
static double run_once(int threads, size_t size, long total_ops) {
  hs_arena *a;
  if (hs_arena_create(UINT64_C(1) << 32, UINT64_C(1) << 16, &a)) {
    fprintf(stderr, "bench_arena: %s\n", hs_arena_last_error());
    return -1;
  }
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)threads);
  run_cfg cfg[2];
  pthread_t tid[2];
  for (int t = 0; t < threads; t++) {
    cfg[t] = (run_cfg){.arena = a, .size = size, .ops = total_ops / threads, .start = &start};
    if (pthread_create(&tid[t], NULL, run_thread, &cfg[t])) {
      fprintf(stderr, "bench_arena: cannot start a thread\n");
      exit(1);
    }
  }
  double begin = 0, end = 0;
  int failed = 0;
  for (int t = 0; t < threads; t++) {
    pthread_join(tid[t], NULL);
    if (t == 0 || cfg[t].begin < begin) begin = cfg[t].begin;
    if (t == 0 || cfg[t].end > end) end = cfg[t].end;
    failed |= cfg[t].failed;
  }
  pthread_barrier_destroy(&start);
  hs_arena_stats st;
  hs_arena_get_stats(a, &st);
  hs_arena_destroy(a);
  if (failed || st.live_blobs != 0) return -1;
  long done = (total_ops / threads) * threads;
  return (end - begin) * 1e9 / (double)done;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

typedef struct result {
  int threads;
  size_t size;
  double median_ns;
  double reps_ns[MAX_REPS];
} result;

static void usage(void) {
  fprintf(stderr, "usage: bench_arena [--json] [--ops N] [--reps R]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int json = 0;
  long ops = 1000000;
  int reps = 5;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
      ops = atol(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atoi(argv[++i]);
    else
      usage();
  }
  if (ops < 2 || reps < 1 || reps > MAX_REPS) usage();

  static const int thread_counts[] = {1, 2};
  static const size_t sizes[] = {64, 4096};
  result res[4];
  int nres = 0;
  for (int ti = 0; ti < 2; ti++) {
    for (int si = 0; si < 2; si++) {
      result *r = &res[nres++];
      r->threads = thread_counts[ti];
      r->size = sizes[si];
      double sorted[MAX_REPS];
      for (int k = 0; k < reps; k++) {
        r->reps_ns[k] = run_once(r->threads, r->size, ops);
        if (r->reps_ns[k] < 0) {
          fprintf(stderr, "bench_arena: a run failed\n");
          return 1;
        }
        sorted[k] = r->reps_ns[k];
      }
      qsort(sorted, (size_t)reps, sizeof sorted[0], cmp_double);
      r->median_ns = sorted[reps / 2];
      fprintf(stderr, "bench_arena: %d thread(s), %zu bytes: %.1f ns/op\n", r->threads, r->size,
              r->median_ns);
    }
  }

  if (json) {
    printf(
        "{\"bench\":\"arena\",\"op\":\"alloc+write+publish+read+release\",\"ops\":%ld,"
        "\"reps\":%d,\"results\":[",
        ops, reps);
    for (int i = 0; i < nres; i++) {
      printf(
          "%s{\"threads\":%d,\"size\":%zu,\"ns_per_op\":%.2f,\"thread_ns_per_op\":%.2f,"
          "\"mops_per_s\":%.3f,\"reps_ns_per_op\":[",
          i ? "," : "", res[i].threads, res[i].size, res[i].median_ns,
          res[i].median_ns * res[i].threads, 1e3 / res[i].median_ns);
      for (int k = 0; k < reps; k++) printf("%s%.2f", k ? "," : "", res[i].reps_ns[k]);
      printf("]}");
    }
    printf("]}\n");
  } else {
    printf("arena: alloc+write+publish+read+release, median of %d x %ld ops\n", reps, ops);
    printf("%-8s %-8s %12s %18s %10s\n", "threads", "size", "ns/op", "thread ns/op", "Mops/s");
    for (int i = 0; i < nres; i++)
      printf("%-8d %-8zu %12.1f %18.1f %10.2f\n", res[i].threads, res[i].size, res[i].median_ns,
             res[i].median_ns * res[i].threads, 1e3 / res[i].median_ns);
  }
  return 0;
}
