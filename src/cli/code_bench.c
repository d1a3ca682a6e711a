/* code_bench.c: `hswarm bench code DIR`: the code-intelligence layer measured on a repository:
 * indexing speed (lines/s, into a fresh index in a temporary directory, then a re-index with
 * nothing changed), latencies (p50, p99) of symbol lookups, callers queries and full-text
 * searches, and the tokens function slices save against the whole files they draw on, over
 * randomly chosen functions (seeded). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hswarm/alloc.h"
#include "hswarm/gguf.h"
#include "hswarm/kb.h"
#include "hswarm/tokenizer.h"

static void usage(FILE *f) {
  fputs("usage: hswarm bench code DIR [--functions N] [--queries N] [--seed S] [-m MODEL]\n"
        "                         [--json]\n"
        "Indexes DIR into a temporary index and measures: indexing lines/s (and a re-index with\n"
        "nothing changed), lookup, callers and search latencies (p50, p99 over --queries N,\n"
        "default 2000), and the tokens saved by function slices against whole files over\n"
        "--functions N (default 200) functions drawn with --seed S (MODEL's tokenizer, or 4\n"
        "bytes per token without -m).\n",
        f);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp_d);
  size_t i = (size_t)ceil(p * (double)n) - 1;
  return v[i < n ? i : n - 1];
}

typedef struct lat {
  double p50_us, p99_us;
} lat;

int cmd_bench_code(int argc, char **argv) {
  const char *dir = NULL, *model = NULL;
  uint64_t functions = 200, queries = 2000, seed = 1;
  int json = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--functions") && has && !cli_parse_u64(argv[i + 1], 0, &functions)) {
      i++;
    } else if (!strcmp(a, "--queries") && has && !cli_parse_u64(argv[i + 1], 0, &queries)) {
      i++;
    } else if (!strcmp(a, "--seed") && has && !cli_parse_u64(argv[i + 1], 0, &seed)) {
      i++;
    } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
      model = argv[++i];
    } else if (a[0] != '-' && !dir) {
      dir = a;
    } else {
      fprintf(stderr, "hswarm bench code: bad option '%s'\n", a);
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  if (!dir || functions < 1 || functions > 100000 || queries < 1 || queries > 1000000) {
    usage(stderr);
    return EXIT_USAGE;
  }
  hs_gguf *g = NULL;
  hs_tokenizer *tok = NULL;
  if (model && (hs_gguf_open(model, &g) != 0 || hs_tokenizer_load(g, &tok) != 0)) {
    fprintf(stderr, "hswarm bench code: %s: %s\n", model,
            g ? hs_tokenizer_last_error() : hs_gguf_last_error());
    hs_gguf_close(g);
    return EXIT_ERROR;
  }
  char idx[] = "/tmp/hswarm-bench-index-XXXXXX";
  if (!mkdtemp(idx)) {
    fprintf(stderr, "hswarm bench code: cannot make a temporary directory\n");
    return EXIT_ERROR;
  }
  hs_kb *kb = NULL;
  hs_kb_index_stats st, st2;
  int rc = EXIT_ERROR;
  hs_kb_syms *all = NULL;
  double *t = hs_calloc(queries > functions ? queries : functions, sizeof *t);
  if (!t || hs_kb_open(dir, idx, 2, &kb) != 0 || hs_kb_index(kb, NULL, &st) != 0 ||
      hs_kb_index(kb, NULL, &st2) != 0 || hs_kb_all_syms(kb, &all) != 0) {
    fprintf(stderr, "hswarm bench code: %s\n", t ? hs_kb_last_error() : "out of memory");
    goto done;
  }
  /* the functions and methods: what lookups, callers queries and slices draw from */
  size_t nf = 0;
  size_t *fn = hs_calloc(all->n + 1, sizeof *fn);
  if (!fn) goto done;
  for (size_t i = 0; i < all->n; i++)
    if (all->items[i].kind == HS_DEF_FUNCTION || all->items[i].kind == HS_DEF_METHOD) fn[nf++] = i;
  if (!nf) {
    fprintf(stderr, "hswarm bench code: no function in %s\n", dir);
    hs_free(fn);
    goto done;
  }
  rng_state = seed;
  lat lookup, callers, search;
  for (uint64_t q = 0; q < queries; q++) {
    const char *name = all->items[fn[rnd() % nf]].name;
    hs_kb_syms *s;
    double t0 = now_s();
    if (hs_kb_lookup(kb, name, &s) == 0) hs_kb_syms_free(s);
    t[q] = (now_s() - t0) * 1e6;
  }
  lookup = (lat){pct(t, queries, 0.5), pct(t, queries, 0.99)};
  for (uint64_t q = 0; q < queries; q++) {
    const char *name = all->items[fn[rnd() % nf]].name;
    hs_kb_edges *e;
    double t0 = now_s();
    if (hs_kb_callers(kb, name, &e) == 0) hs_kb_edges_free(e);
    t[q] = (now_s() - t0) * 1e6;
  }
  callers = (lat){pct(t, queries, 0.5), pct(t, queries, 0.99)};
  uint64_t nsearch = queries < 500 ? queries : 500;
  for (uint64_t q = 0; q < nsearch; q++) {
    char query[512];
    snprintf(query, sizeof query, "%s %s", all->items[fn[rnd() % nf]].name,
             all->items[fn[rnd() % nf]].name);
    hs_kb_hits *h;
    double t0 = now_s();
    if (hs_kb_search(kb, query, 10, &h) == 0) hs_kb_hits_free(h);
    t[q] = (now_s() - t0) * 1e6;
  }
  search = (lat){pct(t, nsearch, 0.5), pct(t, nsearch, 0.99)};
  /* slices of distinct functions whose qualified name is unique */
  uint64_t slice_tokens = 0, whole_tokens = 0, own_tokens = 0, done_n = 0, tries = 0;
  while (done_n < functions && tries < functions * 20) {
    tries++;
    const hs_kb_sym *f = &all->items[fn[rnd() % nf]];
    hs_kb_slice *s;
    if (hs_kb_slice_of(kb, f->qname, tok, &s) != 0) continue; /* ambiguous qname */
    t[done_n++] = s->whole_tokens ? 100.0 * (1.0 - (double)s->slice_tokens / (double)s->whole_tokens)
                                  : 0;
    slice_tokens += s->slice_tokens;
    whole_tokens += s->whole_tokens;
    own_tokens += s->own_file_tokens;
    hs_kb_slice_free(s);
  }
  double median_saved = pct(t, done_n, 0.5), p10_saved = pct(t, done_n, 0.1);
  double total_saved =
      whole_tokens ? 100.0 * (1.0 - (double)slice_tokens / (double)whole_tokens) : 0;
  double own_saved = own_tokens ? 100.0 * (1.0 - (double)slice_tokens / (double)own_tokens) : 0;
  double lps = st.seconds > 0 ? (double)st.lines_parsed / st.seconds : 0;
  if (json) {
    printf("{\"command\":\"bench code\",\"status\":\"ok\",\"dir\":");
    cli_json_string(stdout, dir);
    printf(",\"index\":{\"files\":%llu,\"lines\":%llu,\"definitions\":%llu,\"references\":%llu,"
           "\"seconds\":%.3f,\"lines_per_second\":%.0f,\"with_syntax_errors\":%llu,"
           "\"reindex_unchanged_seconds\":%.3f},"
           "\"lookup_us\":{\"p50\":%.1f,\"p99\":%.1f},\"callers_us\":{\"p50\":%.1f,\"p99\":%.1f},"
           "\"search_us\":{\"p50\":%.1f,\"p99\":%.1f},\"queries\":%llu,"
           "\"slices\":{\"functions\":%llu,\"tokens\":%llu,\"whole_file_tokens\":%llu,"
           "\"saved_percent_total\":%.1f,\"saved_percent_median\":%.1f,"
           "\"saved_percent_p10\":%.1f,\"own_file_tokens\":%llu,"
           "\"saved_percent_vs_own_file\":%.1f,\"tokenizer\":\"%s\"}}\n",
           (unsigned long long)st.files, (unsigned long long)st.lines_parsed,
           (unsigned long long)st.definitions, (unsigned long long)st.references, st.seconds, lps,
           (unsigned long long)st.with_errors, st2.seconds, lookup.p50_us, lookup.p99_us,
           callers.p50_us, callers.p99_us, search.p50_us, search.p99_us,
           (unsigned long long)queries, (unsigned long long)done_n,
           (unsigned long long)slice_tokens, (unsigned long long)whole_tokens, total_saved,
           median_saved, p10_saved, (unsigned long long)own_tokens, own_saved,
           tok ? "model" : "approximate (4 bytes per token)");
  } else {
    printf("index: %llu files, %llu lines in %.2f s: %.0f lines/s; %llu definitions, %llu "
           "references; re-index with nothing changed %.3f s\n",
           (unsigned long long)st.files, (unsigned long long)st.lines_parsed, st.seconds, lps,
           (unsigned long long)st.definitions, (unsigned long long)st.references, st2.seconds);
    printf("lookup   p50 %8.1f us  p99 %8.1f us\n", lookup.p50_us, lookup.p99_us);
    printf("callers  p50 %8.1f us  p99 %8.1f us\n", callers.p50_us, callers.p99_us);
    printf("search   p50 %8.1f us  p99 %8.1f us\n", search.p50_us, search.p99_us);
    printf("slices of %llu functions: %.1f%% of the whole-file tokens saved in total, median "
           "%.1f%%, 10th percentile %.1f%%; against the definition's own file alone %.1f%% "
           "(%s)\n",
           (unsigned long long)done_n, total_saved, median_saved, p10_saved, own_saved,
           tok ? "model tokenizer" : "approximate: 4 bytes per token");
  }
  rc = 0;
  hs_free(fn);
done:
  hs_free(t);
  hs_kb_syms_free(all);
  hs_kb_close(kb);
  hs_tokenizer_destroy(tok);
  hs_gguf_close(g);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", idx);
  if (system(cmd) != 0) fprintf(stderr, "hswarm bench code: could not remove %s\n", idx);
  return rc;
}
