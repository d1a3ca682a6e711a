/* bench_hnsw.c: the knowledge base's vector index (src/kb/hnsw.c) against brute force:
 * recall@10 and query time at several search breadths, build time, on N random vectors.
 *
 *   build/bench_hnsw [N (default 100000)] [DIM (64)] [QUERIES (500)] [clustered|uniform]
 *
 * uniform: independent Gaussian vectors (no structure: the hard case for any ANN index);
 * clustered: 1,000 clusters, the points spread around their centres (more like embeddings).
 * Queries are perturbed data points. M 16, ef_construction 200, seed 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kb/hnsw.h"

static uint64_t rs = 12345;
static double unif(void) {
  rs = rs * 6364136223846793005ull + 1442695040888963407ull;
  return ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2 * log(unif())) * cos(6.283185307 * unif())); }
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
  unsigned dim = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 64;
  size_t nq = argc > 3 ? strtoul(argv[3], NULL, 10) : 500;
  int clustered = argc > 4 && !strcmp(argv[4], "clustered");
  float *data = malloc(n * dim * sizeof *data), *centres = malloc(1000 * dim * sizeof *centres);
  for (size_t c = 0; c < 1000 * dim; c++) centres[c] = gauss();
  for (size_t i = 0; i < n; i++)
    for (unsigned d = 0; d < dim; d++)
      data[i * dim + d] = clustered ? centres[(i % 1000) * dim + d] + 0.5f * gauss() : gauss();
  hnsw *h;
  if (hnsw_create(dim, 16, 200, 1, &h) != 0) return 1;
  double t0 = now();
  for (size_t i = 0; i < n; i++)
    if (hnsw_add(h, i, data + i * dim) != 0) return 1;
  double build = now() - t0;
  printf("{\"vectors\":%zu,\"dim\":%u,\"data\":\"%s\",\"build_seconds\":%.2f,\"runs\":[", n, dim,
         clustered ? "clustered" : "uniform", build);
  float *q = malloc(nq * dim * sizeof *q);
  uint64_t (*exact)[10] = malloc(nq * sizeof *exact);
  double exact_time = 0;
  for (size_t k = 0; k < nq; k++) {
    size_t src = (size_t)(unif() * (double)n);
    for (unsigned d = 0; d < dim; d++) q[k * dim + d] = data[src * dim + d] + 0.3f * gauss();
    float s[10];
    size_t got;
    double t = now();
    hnsw_search_exact(h, q + k * dim, 10, exact[k], s, &got);
    exact_time += now() - t;
  }
  const size_t efs[] = {16, 32, 64, 128, 256, 512};
  double *lat = malloc(nq * sizeof *lat);
  for (size_t e = 0; e < sizeof efs / sizeof efs[0]; e++) {
    size_t hit = 0;
    for (size_t k = 0; k < nq; k++) {
      uint64_t ids[10];
      float s[10];
      size_t got;
      double t = now();
      hnsw_search(h, q + k * dim, 10, efs[e], ids, s, &got);
      lat[k] = (now() - t) * 1e6;
      for (size_t i = 0; i < got; i++)
        for (size_t j = 0; j < 10; j++) hit += ids[i] == exact[k][j];
    }
    qsort(lat, nq, sizeof *lat, cmp_d);
    printf("%s{\"ef\":%zu,\"recall_at_10\":%.4f,\"query_us_p50\":%.1f,\"query_us_p99\":%.1f}",
           e ? "," : "", efs[e], (double)hit / (double)(10 * nq), lat[nq / 2],
           lat[(size_t)(0.99 * (double)nq)]);
  }
  printf("],\"exact_query_us_mean\":%.1f}\n", exact_time / (double)nq * 1e6);
  hnsw_free(h);
  return 0;
}
