/* cmd_bench_swarm.c: `hswarm bench swarm -m FILE`: many agents sharing one model through the
 * batch scheduler (hswarm/sched.h).
 *
 * The workload: --agents N agents share a --prefix P token prefix (a system prompt, a repo map),
 * each adds --suffix S tokens of its own and generates --gen G tokens (greedy, end-of-generation
 * ignored, as llama.cpp's batched bench does). All are submitted at once; the run ends when the
 * last finishes. Tokens are drawn deterministically from the vocabulary.
 *
 * The same workload runs in the same process with each technique taken away in turn:
 *   full                     prefix cache, shared-prefix attention, continuous batching
 *   no prefix cache          every agent computes the whole prefix
 *   no shared attention      rows read shared KV blocks one row at a time
 *   no cache, no batching    one request at a time, nothing cached (the naive loop)
 * Figures per run: wall seconds, generated tokens per second, prompt tokens computed and reused,
 * prefix hit ratio, peak KV bytes and KV bytes per agent (peak KV less the shared prefix counted
 * once, over the agents running at that peak), latency p50 and p99 per priority. Then the full
 * run's speed-up over each ablation. Every run uses the same KV budget (--kv-mem, default: room
 * for every agent's whole context without sharing, so no run waits for memory). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "hswarm/alloc.h"
#include "hswarm/engine.h"
#include "hswarm/error.h"
#include "hswarm/sched.h"

#define USAGE                                                                                    \
  "usage: hswarm bench swarm -m FILE [--agents N] [--prefix P] [--suffix S] [--gen G]\n"        \
  "                         [--priority-mix U:N:B] [--teams T] [--budget N] [--threads N]\n"    \
  "                         [--kv-mem BYTES] [--ablations all|none|LIST] [--mmap] [--json]\n"  \
  "  LIST: comma-separated of no-cache, no-shared, no-batching\n"

typedef struct variant {
  const char *name, *key;
  bool cache, shared, batching;
} variant;

static const variant variants[] = {
    {"full", "full", true, true, true},
    {"no prefix cache", "no-cache", false, true, true},
    {"no shared attention", "no-shared", true, false, true},
    {"no cache, no batching", "no-batching", false, true, false},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

typedef struct bench_opts {
  const char *model;
  uint64_t agents, prefix, suffix, gen, teams, budget, threads, kv_mem;
  uint64_t mix[HS_PRIORITY_COUNT];
  bool use_mmap, json;
  bool run[N_VARIANTS];
} bench_opts;

typedef struct figures {
  double wall, tok_s;
  hs_sched_metrics mt;
  uint64_t kv_peak_bytes, kv_per_agent_bytes, peak_running;
  uint64_t failed;
} figures;

static uint64_t n_failed;

static void on_done(const hs_sched_result *r, void *ud) {
  (void)ud;
  if (r->status) {
    if (!n_failed) fprintf(stderr, "hswarm bench swarm: a request failed: %s\n", r->error);
    n_failed++;
  }
}

static void tokens(int32_t *t, size_t n, uint64_t seed, uint32_t n_vocab) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t[i] = (int32_t)((x >> 33) % n_vocab);
  }
}

static int run_variant(const bench_opts *b, const variant *v, figures *f) {
  memset(f, 0, sizeof *f);
  hs_model_opts mo = {.n_threads = (unsigned)b->threads, .use_mmap = b->use_mmap,
                      .no_prefix_cache = !v->cache, .no_shared_attention = !v->shared};
  hs_model_params p;
  uint64_t block_bytes;
  if (cli_model_kv_block(b->model, &p, &block_bytes) != 0) return -1;
  const uint32_t n_vocab = p.n_vocab;
  const uint64_t ctx = b->prefix + b->suffix + b->gen;
  const uint64_t per_agent_blocks = (ctx + HS_KV_BLOCK_TOKENS - 1) / HS_KV_BLOCK_TOKENS;
  mo.kv_bytes = b->kv_mem ? b->kv_mem : (b->agents * per_agent_blocks + 4) * block_bytes;
  hs_model *m;
  if (hs_model_open(b->model, &mo, &m)) {
    cli_fail("bench swarm: %s", hs_engine_last_error());
    return -1;
  }
  hs_sched_opts so = {.token_budget = (uint32_t)b->budget, .max_running = (uint32_t)b->agents,
                      .max_queued = (uint32_t)b->agents, .no_batching = !v->batching,
                      .n_ctx = (uint32_t)(ctx + 1)};
  hs_sched *s;
  if (hs_sched_create(m, &so, &s)) {
    cli_fail("bench swarm: %s", hs_sched_last_error());
    hs_model_close(m);
    return -1;
  }
  int32_t *prompt = malloc((b->prefix + b->suffix + 1) * sizeof *prompt);
  if (!prompt) {
    hs_sched_destroy(s);
    hs_model_close(m);
    cli_fail("bench swarm: out of memory");
    return -1;
  }
  tokens(prompt, b->prefix, 1, n_vocab);
  n_failed = 0;
  const uint64_t mix_total = b->mix[0] + b->mix[1] + b->mix[2];
  double t0 = cli_seconds();
  int rc = 0;
  for (uint64_t a = 0; a < b->agents && !rc; a++) {
    tokens(prompt + b->prefix, b->suffix, 1000 + a, n_vocab);
    hs_sched_request r;
    hs_sched_request_init(&r);
    r.prompt = prompt;
    r.n_prompt = b->prefix + b->suffix;
    r.sampling.temperature = 0;
    r.max_tokens = (uint32_t)b->gen;
    r.ignore_eos = true;
    uint64_t k = a % mix_total;
    r.priority = k < b->mix[0] ? HS_PRIORITY_URGENT
                 : k < b->mix[0] + b->mix[1] ? HS_PRIORITY_NORMAL : HS_PRIORITY_BACKGROUND;
    r.team = (uint32_t)(a % b->teams);
    r.on_done = on_done;
    if (hs_sched_submit(s, &r, NULL)) {
      cli_fail("bench swarm: %s", hs_sched_last_error());
      rc = -1;
    }
  }
  const uint64_t prefix_blocks = v->cache ? b->prefix / HS_KV_BLOCK_TOKENS : 0;
  while (!rc) {
    int k = hs_sched_step(s);
    if (k < 0) {
      cli_fail("bench swarm: %s", hs_sched_last_error());
      rc = -1;
    }
    hs_sched_metrics mt;
    hs_sched_get_metrics(s, &mt);
    uint64_t used = mt.kv_blocks_used * block_bytes;
    if (used > f->kv_peak_bytes) {
      f->kv_peak_bytes = used;
      f->peak_running = mt.running;
      uint64_t own = mt.kv_blocks_used > prefix_blocks ? mt.kv_blocks_used - prefix_blocks : 0;
      f->kv_per_agent_bytes = mt.running ? own * block_bytes / mt.running : 0;
    }
    if (k == 0) break;
  }
  f->wall = cli_seconds() - t0;
  hs_sched_get_metrics(s, &f->mt);
  f->tok_s = f->wall > 0 ? (double)f->mt.generated_tokens / f->wall : 0;
  f->failed = n_failed;
  free(prompt);
  hs_sched_destroy(s);
  hs_model_close(m);
  if (!rc && n_failed) {
    cli_fail("bench swarm: %llu requests failed", (unsigned long long)n_failed);
    rc = -1;
  }
  return rc;
}

static void print_text(const bench_opts *b, const figures *f, int i) {
  const hs_sched_metrics *mt = &f->mt;
  fprintf(stdout,
          "%-22s %8.2f s  %8.1f tok/s  prompt %8llu computed %8llu reused (hit %.3f)  KV peak "
          "%7.1f MiB, %7.1f KiB/agent  latency",
          variants[i].name, f->wall, f->tok_s, (unsigned long long)mt->prompt_tokens_computed,
          (unsigned long long)mt->prompt_tokens_reused, mt->prefix_hit_ratio,
          (double)f->kv_peak_bytes / (1 << 20), (double)f->kv_per_agent_bytes / 1024);
  for (int c = 0; c < HS_PRIORITY_COUNT; c++)
    if (mt->latency_count[c])
      fprintf(stdout, " %s p50 %.2f s p99 %.2f s", hs_priority_name((hs_priority)c),
              mt->latency_p50[c], mt->latency_p99[c]);
  fputc('\n', stdout);
  (void)b;
}

static void print_json_run(const figures *f, int i, bool first) {
  const hs_sched_metrics *mt = &f->mt;
  printf("%s{\"name\":\"%s\",\"wall_seconds\":%.4f,\"generated_tokens\":%llu,"
         "\"generated_tokens_per_second\":%.2f,\"prompt_tokens\":%llu,"
         "\"prompt_tokens_computed\":%llu,\"prompt_tokens_reused\":%llu,"
         "\"prefix_hit_ratio\":%.4f,\"steps\":%llu,\"kv_peak_bytes\":%llu,"
         "\"kv_bytes_per_agent\":%llu,\"agents_running_at_peak\":%llu,\"latency\":{",
         first ? "" : ",", variants[i].key, f->wall, (unsigned long long)mt->generated_tokens,
         f->tok_s, (unsigned long long)mt->prompt_tokens,
         (unsigned long long)mt->prompt_tokens_computed,
         (unsigned long long)mt->prompt_tokens_reused, mt->prefix_hit_ratio,
         (unsigned long long)mt->steps, (unsigned long long)f->kv_peak_bytes,
         (unsigned long long)f->kv_per_agent_bytes, (unsigned long long)f->peak_running);
  bool firstc = true;
  for (int c = 0; c < HS_PRIORITY_COUNT; c++)
    if (mt->latency_count[c]) {
      printf("%s\"%s\":{\"count\":%llu,\"p50_seconds\":%.4f,\"p99_seconds\":%.4f}",
             firstc ? "" : ",", hs_priority_name((hs_priority)c),
             (unsigned long long)mt->latency_count[c], mt->latency_p50[c], mt->latency_p99[c]);
      firstc = false;
    }
  printf("}}");
}

static int parse_mix(const char *s, uint64_t *mix) {
  unsigned long long u, n, b;
  char tail;
  if (sscanf(s, "%llu:%llu:%llu%c", &u, &n, &b, &tail) != 3 || u + n + b == 0) return -1;
  mix[0] = u;
  mix[1] = n;
  mix[2] = b;
  return 0;
}

static int parse_ablations(const char *s, bool *run) {
  for (size_t i = 1; i < N_VARIANTS; i++) run[i] = !strcmp(s, "all");
  if (!strcmp(s, "all") || !strcmp(s, "none")) return 0;
  char buf[128];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    size_t i = 1;
    while (i < N_VARIANTS && strcmp(tok, variants[i].key)) i++;
    if (i == N_VARIANTS) return -1;
    run[i] = true;
  }
  return 0;
}

int cmd_bench_swarm(int argc, char **argv) {
  bench_opts b = {.agents = 64, .prefix = 2048, .suffix = 64, .gen = 32, .teams = 1,
                  .budget = 512, .mix = {0, 1, 0}};
  for (size_t i = 0; i < N_VARIANTS; i++) b.run[i] = true;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(USAGE, stdout);
      return 0;
    }
    if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) b.model = argv[++i];
    else if (!strcmp(a, "--agents") && has && !cli_parse_u64(argv[i + 1], 0, &b.agents)) i++;
    else if (!strcmp(a, "--prefix") && has && !cli_parse_u64(argv[i + 1], 0, &b.prefix)) i++;
    else if (!strcmp(a, "--suffix") && has && !cli_parse_u64(argv[i + 1], 0, &b.suffix)) i++;
    else if (!strcmp(a, "--gen") && has && !cli_parse_u64(argv[i + 1], 0, &b.gen)) i++;
    else if (!strcmp(a, "--teams") && has && !cli_parse_u64(argv[i + 1], 0, &b.teams)) i++;
    else if (!strcmp(a, "--budget") && has && !cli_parse_u64(argv[i + 1], 0, &b.budget)) i++;
    else if (!strcmp(a, "--threads") && has && !cli_parse_u64(argv[i + 1], 0, &b.threads)) i++;
    else if (!strcmp(a, "--kv-mem") && has && !cli_parse_u64(argv[i + 1], 1, &b.kv_mem)) i++;
    else if (!strcmp(a, "--priority-mix") && has && !parse_mix(argv[i + 1], b.mix)) i++;
    else if (!strcmp(a, "--ablations") && has && !parse_ablations(argv[i + 1], b.run)) i++;
    else if (!strcmp(a, "--json")) b.json = true;
    else if (!strcmp(a, "--mmap")) b.use_mmap = true;
    else {
      cli_fail("bench swarm: unknown, incomplete or malformed option '%s'", a);
      fputs(USAGE, stderr);
      return EXIT_USAGE;
    }
  }
  if (!b.model || b.agents < 1 || b.agents > 1000000 || b.prefix + b.suffix < 1 ||
      b.gen < 1 || b.prefix + b.suffix + b.gen > (1u << 20) || b.teams < 1 ||
      b.teams > 1000000 || b.budget < 1 || b.budget > 65536 || b.threads > 1024) {
    cli_fail("bench swarm: -m FILE is required; agents 1..1000000, prefix + suffix >= 1, gen >= 1, "
             "teams >= 1, budget 1..65536");
    fputs(USAGE, stderr);
    if (b.json) cli_json_error("bench swarm", cli_last_failure());
    return EXIT_USAGE;
  }
  figures f[N_VARIANTS];
  for (size_t i = 0; i < N_VARIANTS; i++) {
    if (!b.run[i]) continue;
    if (!b.json) fprintf(stderr, "running: %s...\n", variants[i].name);
    if (run_variant(&b, &variants[i], &f[i])) {
      if (b.json) cli_json_error("bench swarm", cli_last_failure());
      return EXIT_ERROR;
    }
    if (!b.json) print_text(&b, &f[i], (int)i);
  }
  if (b.json) {
    printf("{\"command\":\"bench swarm\",\"status\":\"ok\",\"model\":");
    cli_json_string(stdout, b.model);
    printf(",\"agents\":%llu,\"prefix\":%llu,\"suffix\":%llu,\"gen\":%llu,\"teams\":%llu,"
           "\"budget\":%llu,\"threads\":%llu,\"priority_mix\":[%llu,%llu,%llu],\"runs\":[",
           (unsigned long long)b.agents, (unsigned long long)b.prefix,
           (unsigned long long)b.suffix, (unsigned long long)b.gen, (unsigned long long)b.teams,
           (unsigned long long)b.budget, (unsigned long long)b.threads,
           (unsigned long long)b.mix[0], (unsigned long long)b.mix[1],
           (unsigned long long)b.mix[2]);
    bool first = true;
    for (size_t i = 0; i < N_VARIANTS; i++)
      if (b.run[i]) {
        print_json_run(&f[i], (int)i, first);
        first = false;
      }
    printf("],\"speedup\":{");
    first = true;
    for (size_t i = 1; i < N_VARIANTS; i++)
      if (b.run[i]) {
        printf("%s\"%s\":%.3f", first ? "" : ",", variants[i].key, f[i].wall / f[0].wall);
        first = false;
      }
    printf("}}\n");
  } else {
    for (size_t i = 1; i < N_VARIANTS; i++)
      if (b.run[i])
        printf("full is %.2fx faster than %s\n", f[i].wall / f[0].wall, variants[i].name);
  }
  return 0;
}
