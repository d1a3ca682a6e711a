/* cmd_bench.c: `hswarm bench runtime`: measures the agent runtime through Lua agents and the real
 * mailboxes (the scripts in bench/lua), each figure with the event log off and on:
 *   spawn    time and resident memory per agent for N isolated or light agents alive at once
 *   latency  one-way delivery latency (p50, p99) of a handle passed between two agents
 *   fanout   messages per second through fan-out/fan-in with light agents
 *   arena    ns per ctx.memory.write + read + #view + release from Lua
 * Timing of a phase inside a script uses the "mark" operation (ctx.call("mark", name)), whose start
 * function reads the monotonic clock; latency uses the runtime's latency probe. Figures are medians
 * over --repeat runs (default 3; spawn at 10^6 runs once). */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hswarm/error.h"
#include "hswarm/runtime.h"

/* Named points in time, taken by scripts with ctx.call("mark", name). */
#define MAX_MARKS 8
typedef struct marks {
  char name[MAX_MARKS][16];
  double at[MAX_MARKS];
  int n;
} marks;

static int mark_start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                      size_t len, void *ud) {
  (void)agent;
  marks *m = ud;
  if (m->n < MAX_MARKS) {
    snprintf(m->name[m->n], sizeof m->name[m->n], "%.*s", (int)len, (const char *)req);
    m->at[m->n++] = cli_seconds();
  }
  return hs_runtime_op_complete(rt, token, 0, NULL, 0);
}

/* Seconds from mark a to mark b, or -1 if either is missing. */
static double mark_span(const marks *m, const char *a, const char *b) {
  double ta = -1, tb = -1;
  for (int i = 0; i < m->n; i++) {
    if (!strcmp(m->name[i], a)) ta = m->at[i];
    if (!strcmp(m->name[i], b)) tb = m->at[i];
  }
  return ta < 0 || tb < 0 || tb < ta ? -1 : tb - ta;
}

typedef struct samples {
  uint64_t *v;
  size_t n, cap;
} samples;

static void on_latency(uint64_t ns, void *ud) {
  samples *s = ud;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 65536;
    uint64_t *v = realloc(s->v, cap * sizeof *v);
    if (!v) return;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct bench_ctx {
  char script_dir[4096];
  char log_path[4096];
  int json, repeat, first_result;
  uint64_t budget;   /* instruction budget per activation (0: none, no count hook) */
  FILE *out;
} bench_ctx;

/* Creates a runtime for one measurement, with the mark operation and optionally a log. */
static hs_runtime *make_runtime(bench_ctx *b, hs_mode mode, int log_on, marks *m) {
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.mode = mode;
  cfg.quiet = 1;
  cfg.log_path = log_on ? b->log_path : NULL;
  cfg.mailbox_capacity = 1u << 20;
  cfg.instruction_budget = b->budget;
  hs_runtime *rt;
  if (hs_runtime_create(&cfg, &rt) != 0) {
    fprintf(stderr, "hswarm bench: %s\n", hs_runtime_create_error());
    return NULL;
  }
  if (hs_runtime_register_op(rt, "mark", 0, mark_start, m) != 0) {
    hs_runtime_destroy(rt);
    return NULL;
  }
  return rt;
}

static int start_script(bench_ctx *b, hs_runtime *rt, const char *name, const char *a1,
                        const char *a2) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", b->script_dir, name);
  const char *args[2] = {a1, a2};
  if (hs_runtime_spawn_main(rt, path, 2, args, NULL) != 0) {
    fprintf(stderr, "hswarm bench: %s\n", hs_runtime_last_error(rt));
    return -1;
  }
  return 0;
}

static int check_ok(hs_runtime *rt, const char *what) {
  char res[64];
  if (hs_runtime_main_result(rt, res, sizeof res) >= 0) return 0;
  const char *f[1];
  fprintf(stderr, "hswarm bench: %s failed: %s\n", what,
          hs_runtime_failures(rt, f, 1) ? f[0] : hs_runtime_last_error(rt));
  return -1;
}

static void result_begin(bench_ctx *b, const char *name, const char *mode, const char *kind,
                         int log_on) {
  if (!b->json) return;
  fprintf(b->out, "%s{\"bench\":\"%s\",\"mode\":\"%s\",\"kind\":\"%s\",\"log\":%s", 
          b->first_result ? "" : ",", name, mode, kind, log_on ? "true" : "false");
  b->first_result = 0;
}

/* ---- spawn ----
 * Each measurement runs in a child process, so that its resident memory starts clean (memory
 * freed by an earlier measurement would otherwise be reused and hide the cost). */
typedef struct spawn_fig {
  double seconds, rss_per_agent, heap_per_agent;
  int ok;
} spawn_fig;

static spawn_fig spawn_once(bench_ctx *b, const char *kind, uint64_t n, int log_on) {
  spawn_fig f = {0};
  marks m = {0};
  hs_runtime *rt = make_runtime(b, HS_MODE_LOCKSTEP, log_on, &m);
  if (!rt) return f;
  char nbuf[32];
  snprintf(nbuf, sizeof nbuf, "%llu", (unsigned long long)n);
  malloc_trim(0); /* hand back the parent's free heap: reusing it would hide resident growth */
  uint64_t rss0 = cli_rss_bytes();
  hs_runtime_stats s0;
  hs_runtime_get_stats(rt, &s0);
  double t0 = cli_seconds();
  if (start_script(b, rt, "spawn.lua", nbuf, kind) != 0) return f;
  int rc = hs_runtime_step(rt); /* step 0: the root spawns every agent */
  if (rc > 0) rc = hs_runtime_step(rt); /* step 1: each runs until it blocks in recv */
  double t1 = cli_seconds();
  uint64_t rss1 = cli_rss_bytes();
  hs_runtime_stats s;
  hs_runtime_get_stats(rt, &s);
  if (rc < 0 || s.alive != n || check_ok(rt, "spawn")) {
    fprintf(stderr, "hswarm bench: spawn of %llu %s agents: %llu alive %s\n",
            (unsigned long long)n, kind, (unsigned long long)s.alive,
            rc < 0 ? hs_runtime_last_error(rt) : "");
    return f;
  }
  f.seconds = t1 - t0;
  f.rss_per_agent = (double)(rss1 - rss0) / (double)n;
  f.heap_per_agent = (double)(s.lua_bytes - s0.lua_bytes) / (double)n;
  f.ok = 1;
  return f; /* the child exits without tearing down: the OS reclaims everything at once */
}

static int bench_spawn(bench_ctx *b, const char *kind, uint64_t n, int log_on, int reps) {
  double secs[9], rss[9], heap[9];
  for (int r = 0; r < reps; r++) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      close(fd[0]);
      spawn_fig f = spawn_once(b, kind, n, log_on);
      ssize_t w = write(fd[1], &f, sizeof f);
      _exit(w == (ssize_t)sizeof f ? 0 : 1);
    }
    close(fd[1]);
    spawn_fig f = {0};
    ssize_t got = read(fd[0], &f, sizeof f);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof f || !f.ok) return -1;
    secs[r] = f.seconds;
    rss[r] = f.rss_per_agent;
    heap[r] = f.heap_per_agent;
  }
  double t = median(secs, reps), per = median(rss, reps), lua = median(heap, reps);
  result_begin(b, "spawn", "lockstep", kind, log_on);
  if (b->json)
    fprintf(b->out, ",\"agents\":%llu,\"seconds\":%.6f,\"us_per_agent\":%.3f,"
                    "\"rss_bytes_per_agent\":%.0f,\"lua_bytes_per_agent\":%.0f,"
                    "\"rss_total_mib\":%.1f}",
            (unsigned long long)n, t, t * 1e6 / (double)n, per, lua,
            per * (double)n / 1048576.0);
  else
    printf("spawn    %-8s %-8s log %-3s  %8llu agents  %8.3f s  %7.2f us/agent  %6.0f B/agent "
           "resident (%.0f MiB; Lua heap %.0f B/agent)\n",
           "lockstep", kind, log_on ? "on" : "off", (unsigned long long)n, t,
           t * 1e6 / (double)n, per, per * (double)n / 1048576.0, lua);
  fflush(stdout);
  return 0;
}

/* ---- latency ---- */
static int bench_latency(bench_ctx *b, hs_mode mode, const char *kind, uint64_t n, int log_on) {
  double p50s[9], p99s[9], means[9];
  for (int r = 0; r < b->repeat; r++) {
    marks m = {0};
    samples s = {0};
    hs_runtime *rt = make_runtime(b, mode, log_on, &m);
    if (!rt) return -1;
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%llu", (unsigned long long)n);
    if (start_script(b, rt, "latency.lua", nbuf, kind) != 0) return -1;
    hs_runtime_set_latency_probe(rt, on_latency, &s);
    double t0 = cli_seconds();
    int rc = hs_runtime_run(rt);
    double t1 = cli_seconds();
    if (rc < 0 || check_ok(rt, "latency") || s.n < 2 * n) {
      hs_runtime_destroy(rt);
      free(s.v);
      return -1;
    }
    hs_runtime_destroy(rt);
    qsort(s.v, s.n, sizeof *s.v, cmp_u64);
    p50s[r] = (double)s.v[s.n / 2];
    p99s[r] = (double)s.v[s.n * 99 / 100];
    means[r] = (t1 - t0) * 1e9 / (double)s.n;
    free(s.v);
  }
  double p50 = median(p50s, b->repeat), p99 = median(p99s, b->repeat);
  double mean = median(means, b->repeat);
  const char *mname = mode == HS_MODE_FREE ? "free" : "lockstep";
  result_begin(b, "latency", mname, kind, log_on);
  if (b->json)
    fprintf(b->out, ",\"messages\":%llu,\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"wall_ns_per_message\":%.0f}",
            (unsigned long long)(2 * n), p50, p99, mean);
  else
    printf("latency  %-8s %-8s log %-3s  %8llu msgs    p50 %7.0f ns  p99 %7.0f ns  (wall %.0f ns "
           "per message)\n",
           mname, kind, log_on ? "on" : "off", (unsigned long long)(2 * n), p50, p99, mean);
  fflush(stdout);
  return 0;
}

/* ---- fanout ---- */
static int bench_fanout(bench_ctx *b, hs_mode mode, uint64_t workers, uint64_t rounds,
                        uint64_t burst, int log_on) {
  double trip[9], send[9], drain[9];
  for (int r = 0; r < b->repeat; r++) {
    marks m = {0};
    hs_runtime *rt = make_runtime(b, mode, log_on, &m);
    if (!rt) return -1;
    char w[32], rr[32], bb[32];
    snprintf(w, sizeof w, "%llu", (unsigned long long)workers);
    snprintf(rr, sizeof rr, "%llu", (unsigned long long)rounds);
    snprintf(bb, sizeof bb, "%llu", (unsigned long long)burst);
    const char *args[3] = {w, rr, bb};
    char path[4200];
    snprintf(path, sizeof path, "%s/fanout.lua", b->script_dir);
    if (hs_runtime_spawn_main(rt, path, 3, args, NULL) != 0) {
      fprintf(stderr, "hswarm bench: %s\n", hs_runtime_last_error(rt));
      hs_runtime_destroy(rt);
      return -1;
    }
    int rc = hs_runtime_run(rt);
    double t_rounds = mark_span(&m, "rounds", "burst"), t_send = mark_span(&m, "burst", "sent");
    double t_drain = mark_span(&m, "sent", "end");
    if (rc < 0 || check_ok(rt, "fanout") || t_rounds <= 0 || t_send <= 0 || t_drain <= 0) {
      hs_runtime_destroy(rt);
      return -1;
    }
    hs_runtime_destroy(rt);
    trip[r] = (double)(2 * workers * rounds) / t_rounds;
    send[r] = (double)(workers * burst) / t_send;
    drain[r] = (double)(workers * burst + workers) / t_drain;
  }
  double rt_rate = median(trip, b->repeat), s_rate = median(send, b->repeat);
  double d_rate = median(drain, b->repeat);
  const char *mname = mode == HS_MODE_FREE ? "free" : "lockstep";
  result_begin(b, "fanout", mname, "light", log_on);
  if (b->json)
    fprintf(b->out, ",\"workers\":%llu,\"rounds\":%llu,\"burst\":%llu,"
                    "\"round_trip_messages_per_second\":%.0f,"
                    "\"multicast_sends_per_second\":%.0f,\"burst_takes_per_second\":%.0f}",
            (unsigned long long)workers, (unsigned long long)rounds, (unsigned long long)burst,
            rt_rate, s_rate, d_rate);
  else
    printf("fanout   %-8s %-8s log %-3s  %llu workers: round trips %.2fM msg/s (%llu rounds); "
           "multicast sends %.2fM msg/s; burst takes %.2fM msg/s (%llu each)\n",
           mname, "light", log_on ? "on" : "off", (unsigned long long)workers, rt_rate / 1e6,
           (unsigned long long)rounds, s_rate / 1e6, d_rate / 1e6, (unsigned long long)burst);
  fflush(stdout);
  return 0;
}

/* ---- arena ---- */
static int bench_arena(bench_ctx *b, uint64_t n, uint64_t size, int log_on) {
  double ns[9];
  for (int r = 0; r < b->repeat; r++) {
    marks m = {0};
    hs_runtime *rt = make_runtime(b, HS_MODE_LOCKSTEP, log_on, &m);
    if (!rt) return -1;
    char nb[32], sb[32];
    snprintf(nb, sizeof nb, "%llu", (unsigned long long)n);
    snprintf(sb, sizeof sb, "%llu", (unsigned long long)size);
    if (start_script(b, rt, "arena.lua", nb, sb) != 0) return -1;
    int rc = hs_runtime_run(rt);
    double span = mark_span(&m, "start", "end");
    if (rc < 0 || check_ok(rt, "arena") || span <= 0) {
      hs_runtime_destroy(rt);
      return -1;
    }
    hs_runtime_destroy(rt);
    ns[r] = span * 1e9 / (double)n;
  }
  double v = median(ns, b->repeat);
  result_begin(b, "arena", "lockstep", "isolated", log_on);
  if (b->json)
    fprintf(b->out, ",\"ops\":%llu,\"bytes\":%llu,\"ns_per_write_read_release\":%.1f}",
            (unsigned long long)n, (unsigned long long)size, v);
  else
    printf("arena    %-8s %-8s log %-3s  %8llu ops     %6llu B blobs: %7.1f ns per "
           "write+read+len+release\n",
           "lockstep", "isolated", log_on ? "on" : "off", (unsigned long long)n,
           (unsigned long long)size, v);
  fflush(stdout);
  return 0;
}

static void bench_usage(FILE *f) {
  fputs("usage: hswarm bench swarm -m FILE [--agents N] [--prefix P] [--suffix S] [--gen G] ... [--json]\n"
        "       hswarm bench serve -m FILE [--clients 64] [--requests 256] [--system-tokens 1024] [--gen 32] [--json]\n"
        "       hswarm bench engine -m FILE [--prompt N] [--gen N] [--repeat N] [--threads N] [--json]\n"
        "       hswarm bench copies DIR [--reps N] [--json]\n"
        "       hswarm bench runtime [--json] [--quick] [--repeat N] [--only NAME] [--budget N]\n"
        "  NAME: spawn, latency, fanout or arena\n"
        "  --quick: small sizes (about 10 s); default: the full set, up to 10^6 agents\n"
        "  --budget N: Lua instructions per activation (default 100000000; 0: no count hook)\n",
        f);
}

int cmd_bench(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "engine")) return cmd_bench_engine(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "swarm")) return cmd_bench_swarm(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "serve")) return cmd_bench_serve(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "copies")) return cmd_bench_copies(argc, argv);
#ifdef HS_WITH_CODE
  if (argc >= 2 && !strcmp(argv[1], "code")) return cmd_bench_code(argc, argv);
#endif
  if (argc < 2 || strcmp(argv[1], "runtime") != 0) {
    bench_usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
    return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : EXIT_USAGE;
  }
  bench_ctx b = {.repeat = 3, .first_result = 1, .out = stdout};
  hs_runtime_config defaults;
  hs_runtime_config_init(&defaults);
  b.budget = defaults.instruction_budget;
  int quick = 0;
  const char *only = NULL;
  for (int i = 2; i < argc; i++) {
    uint64_t v;
    if (!strcmp(argv[i], "--json"))
      b.json = 1;
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--repeat") && i + 1 < argc && !cli_parse_u64(argv[i + 1], 0, &v) &&
             v >= 1 && v <= 9)
      b.repeat = (int)v, i++;
    else if (!strcmp(argv[i], "--budget") && i + 1 < argc && !cli_parse_u64(argv[i + 1], 0, &v))
      b.budget = v, i++;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else {
      bench_usage(stderr);
      return EXIT_USAGE;
    }
  }
  const char *dir = cli_data_dir("bench/lua/spawn.lua");
  if (!dir) {
    fprintf(stderr, "hswarm bench: cannot find bench/lua (looked in the source tree and the "
                    "install prefix)\n");
    return EXIT_ERROR;
  }
  snprintf(b.script_dir, sizeof b.script_dir, "%s/bench/lua", dir);
  snprintf(b.log_path, sizeof b.log_path, "/tmp/hswarm-bench-%d.log", (int)getpid());
  if (b.json) {
    printf("{\"command\":\"bench runtime\",\"cores\":%ld,\"memory_bytes\":%llu,\"repeat\":%d,"
           "\"instruction_budget\":%llu,\"results\":[",
           sysconf(_SC_NPROCESSORS_ONLN),
           (unsigned long long)sysconf(_SC_PHYS_PAGES) * (unsigned long long)sysconf(_SC_PAGESIZE),
           b.repeat, (unsigned long long)b.budget);
  } else {
    printf("hswarm bench runtime: medians of %d runs; %ld cores; instruction budget %llu%s\n",
           b.repeat, sysconf(_SC_NPROCESSORS_ONLN), (unsigned long long)b.budget,
           b.budget ? "" : " (none: no count hook)");
  }
  int rc = 0;
  uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
  for (int log_on = 0; log_on <= 1 && rc == 0; log_on++) {
    if (!only || !strcmp(only, "spawn")) {
      static const char *kinds[2] = {"isolated", "light"};
      for (int k = 0; k < 2 && rc == 0; k++) {
        uint64_t top = quick ? 10000 : 1000000;
        for (uint64_t n = 10000; n <= top && rc == 0; n *= 10) {
          /* isolated agents take about 21 KB each (measured): run 10^6 only if that fits */
          if (k == 0 && n == 1000000 && n * 21000ull > phys / 100 * 95) {
            if (!b.json)
              printf("spawn    lockstep isolated log %-3s   1000000 agents  not run: needs about "
                     "%llu GiB, this machine has %llu GiB\n",
                     log_on ? "on" : "off", (unsigned long long)(n * 21000ull >> 30),
                     (unsigned long long)(phys >> 30));
            continue;
          }
          rc = bench_spawn(&b, kinds[k], n, log_on, n >= 1000000 ? 1 : b.repeat);
        }
      }
    }
    if ((!only || !strcmp(only, "latency")) && rc == 0) {
      uint64_t n = quick ? 20000 : 200000;
      for (int mode = 1; mode >= 0 && rc == 0; mode--) {
        rc = bench_latency(&b, (hs_mode)mode, "light", n, log_on);
        if (rc == 0) rc = bench_latency(&b, (hs_mode)mode, "isolated", n, log_on);
      }
    }
    if ((!only || !strcmp(only, "fanout")) && rc == 0) {
      for (int mode = 1; mode >= 0 && rc == 0; mode--)
        rc = bench_fanout(&b, (hs_mode)mode, quick ? 1000 : 10000, quick ? 10 : 50,
                          quick ? 20 : 50, log_on);
    }
    if ((!only || !strcmp(only, "arena")) && rc == 0) {
      rc = bench_arena(&b, quick ? 100000 : 1000000, 64, log_on);
      if (rc == 0) rc = bench_arena(&b, quick ? 20000 : 200000, 4096, log_on);
    }
  }
  unlink(b.log_path);
  if (b.json) printf("],\"status\":\"%s\"}\n", rc == 0 ? "ok" : "failed");
  return rc == 0 ? 0 : EXIT_FAILED;
}
