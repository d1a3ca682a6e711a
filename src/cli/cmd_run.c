/* cmd_run.c: `hswarm run SCRIPT.lua [ARGS...]`: runs a swarm whose first agent is SCRIPT's main.
 * Draws a live progress line on a terminal, prints a summary at the end (or one JSON object with
 * --json). Exit status: 0 when the first agent ended normally, 1 when it failed, 2 for a bad
 * command line, 3 when the run could not be carried out. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/swarm_model.h"
#include "hswarm/error.h"
#include "hswarm/runtime.h"
#include "hswarm/verify.h"

static void run_usage(FILE *f) {
  fputs("usage: hswarm run SCRIPT.lua [ARGS...] [options]\n"
        "  --seed N              seed of every agent's math.random (default 0)\n"
        "  --mode lockstep|free  execution mode (default lockstep: deterministic)\n"
        "  --log FILE            write the event log (for `hswarm replay`)\n"
        "  --json                print one JSON object on stdout\n"
        "  --max-steps N         stop after N steps\n"
        "  --mailbox N           mailbox capacity per agent (default 4096)\n"
        "  --agent-memory SIZE   Lua memory cap of an isolated agent (default 64M)\n"
        "  --team-memory SIZE    Lua memory cap of a light team's state (default 16G)\n"
        "  --budget N            Lua instructions per activation (default 100000000; 0: no\n"
        "                        limit and no count hook, faster, but a runaway loop stalls)\n"
        "  --arena SIZE          shared arena byte limit (default 4G)\n"
        "  --quiet               do not print agents' log lines\n"
        "  -m, --model FILE      serve a GGUF model to the agents (ctx.llm, ctx.call(\"llm\"))\n"
        "  --backend URL         or an OpenAI-compatible server's API (e.g. http://host:8080/v1)\n"
        "  --api-key-file F      its bearer key (the file's first line)\n"
        "  --remote-model NAME   the model to ask it for (default: the first it lists)\n"
        "  --backend-concurrency N  requests in flight at once (default 16)\n"
        "  --threads N           threads of the model (default: all cores)\n"
        "  --kv-mem SIZE         the model's KV cache (default: 256 full contexts)\n"
        "  --verify-jobs N       command verifiers run at once (default or 0: all cores)\n"
#ifdef HS_WITH_CODE
        "  --repo DIR            index the repository containing DIR and give the run the\n"
        "                        code.* operations (require(\"code\"))\n"
        "  --index DIR           where that repository's index is (default: the cache)\n"
#endif
        ,
        f);
}

/* The repository's knowledge base (--repo), closed after the runtime that uses it. */
static void close_repo(void *kb) {
#ifdef HS_WITH_CODE
  cli_repo_close(kb);
#else
  (void)kb;
#endif
}

static hs_runtime *running;
static void on_signal(int sig) {
  (void)sig;
  if (running) hs_runtime_request_stop(running);
}

typedef struct progress {
  double start, last;
  int tty;
} progress;

static void on_progress(const hs_runtime_stats *s, void *ud) {
  progress *p = ud;
  if (!p->tty) return;
  double now = cli_seconds();
  if (now - p->last < 0.1) return;
  p->last = now;
  fprintf(stderr,
          "\r\033[Kstep %llu | agents alive %llu of %llu | messages %llu | failed %llu | %.1f s",
          (unsigned long long)s->step, (unsigned long long)s->alive,
          (unsigned long long)s->spawned, (unsigned long long)s->messages_delivered,
          (unsigned long long)s->failed, now - p->start);
}

static int set_u64(const char *opt, const char *val, int binary, uint64_t *out) {
  if (!val || cli_parse_u64(val, binary, out) != 0) {
    fprintf(stderr, "hswarm run: %s needs a non-negative number (got '%s')\n", opt,
            val ? val : "nothing");
    return -1;
  }
  return 0;
}

int cmd_run(int argc, char **argv) {
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  const char *script = NULL;
  const char **args = calloc((size_t)argc + 1, sizeof *args);
  int nargs = 0, json = 0;
  uint64_t v, threads = 0, kv_mem = 0, verify_jobs = 0;
  const char *repo = NULL, *index_dir = NULL;
  void *kb = NULL;
  const char *model = NULL;
  cli_swarm_model_opts backend = {0};
  if (!args) return EXIT_ERROR;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      run_usage(stdout);
      free(args);
      return 0;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--quiet")) {
      cfg.quiet = 1;
    } else if (!strcmp(a, "--seed")) {
      if (set_u64(a, val, 0, &cfg.seed)) goto usage;
      i++;
    } else if (!strcmp(a, "--mode")) {
      if (val && !strcmp(val, "lockstep"))
        cfg.mode = HS_MODE_LOCKSTEP;
      else if (val && !strcmp(val, "free"))
        cfg.mode = HS_MODE_FREE;
      else {
        fprintf(stderr, "hswarm run: --mode must be lockstep or free\n");
        goto usage;
      }
      i++;
    } else if (!strcmp(a, "--log")) {
      if (!val) goto usage;
      cfg.log_path = val;
      i++;
    } else if (!strcmp(a, "--max-steps")) {
      if (set_u64(a, val, 0, &cfg.max_steps)) goto usage;
      i++;
    } else if (!strcmp(a, "--mailbox")) {
      if (set_u64(a, val, 0, &v) || v == 0 || v > UINT32_MAX) goto usage;
      cfg.mailbox_capacity = (uint32_t)v;
      i++;
    } else if (!strcmp(a, "--agent-memory")) {
      if (set_u64(a, val, 1, &cfg.agent_memory)) goto usage;
      i++;
    } else if (!strcmp(a, "--team-memory")) {
      if (set_u64(a, val, 1, &cfg.team_memory)) goto usage;
      i++;
    } else if (!strcmp(a, "--budget")) {
      if (set_u64(a, val, 0, &cfg.instruction_budget)) goto usage;
      i++;
    } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && val) {
      model = val;
      i++;
    } else if ((v = (uint64_t)cli_backend_opt(argc, argv, &i, &backend)) != 0) {
      if (v != 1) goto usage;
    } else if (!strcmp(a, "--threads")) {
      if (set_u64(a, val, 0, &threads)) goto usage;
      i++;
#ifdef HS_WITH_CODE
    } else if (!strcmp(a, "--repo") && val) {
      repo = val;
      i++;
    } else if (!strcmp(a, "--index") && val) {
      index_dir = val;
      i++;
#endif
    } else if (!strcmp(a, "--verify-jobs")) {
      if (set_u64(a, val, 0, &verify_jobs)) goto usage;
      if (verify_jobs > 1024) {
        fprintf(stderr, "hswarm run: --verify-jobs is at most 1024 (got %s)\n", val);
        goto usage;
      }
      i++;
    } else if (!strcmp(a, "--kv-mem")) {
      if (set_u64(a, val, 1, &kv_mem)) goto usage;
      i++;
    } else if (!strcmp(a, "--arena")) {
      if (set_u64(a, val, 1, &cfg.arena_bytes)) goto usage;
      i++;
    } else if (a[0] == '-' && a[1] == '-' && !script) {
      fprintf(stderr, "hswarm run: unknown option '%s'\n", a);
      goto usage;
    } else if (!script) {
      script = a;
    } else {
      args[nargs++] = a;
    }
  }
  if (!script) {
    fprintf(stderr, "hswarm run: no script given\n");
    goto usage;
  }

  hs_runtime *rt;
  if (hs_runtime_create(&cfg, &rt) != 0) {
    fprintf(stderr, "hswarm run: %s\n", hs_runtime_create_error());
    if (json) cli_json_error("run", hs_runtime_create_error());
    free(args);
    return EXIT_ERROR;
  }
  int vrc = hs_verify_attach(rt, (unsigned)verify_jobs);
  if (vrc != 0) {
    fprintf(stderr, "hswarm run: cannot start the command verifiers: %s\n", hs_strerror(vrc));
    hs_runtime_destroy(rt);
    free(args);
    return EXIT_ERROR;
  }
#ifdef HS_WITH_CODE
  if (repo && !(kb = cli_repo_attach(repo, index_dir, rt))) {
    fprintf(stderr, "hswarm run: %s\n", cli_last_failure());
    if (json) cli_json_error("run", cli_last_failure());
    hs_runtime_destroy(rt);
    free(args);
    return EXIT_ERROR;
  }
#else
  (void)repo, (void)index_dir;
#endif
  cli_swarm_model sm = {0};
  if (model && backend.backend) {
    fprintf(stderr, "hswarm run: give -m FILE or --backend URL, not both\n");
    hs_runtime_destroy(rt);
    close_repo(kb);
    free(args);
    return EXIT_USAGE;
  }
  cli_swarm_model_opts mo = backend;
  mo.threads = (unsigned)threads;
  mo.kv_bytes = kv_mem;
  if ((model || mo.backend) && cli_swarm_model_open(model, &mo, rt, &sm) != 0) {
    if (json) cli_json_error("run", cli_last_failure());
    hs_runtime_destroy(rt);
    close_repo(kb);
    free(args);
    return EXIT_ERROR;
  }
  if (hs_runtime_spawn_main(rt, script, nargs, args, NULL) != 0) {
    fprintf(stderr, "hswarm run: %s\n", hs_runtime_last_error(rt));
    if (json) cli_json_error("run", hs_runtime_last_error(rt));
    cli_swarm_model_close(&sm);
    hs_runtime_destroy(rt);
    close_repo(kb);
    free(args);
    return EXIT_ERROR;
  }
  progress p = {.start = cli_seconds(), .tty = cli_stderr_is_tty()};
  hs_runtime_set_progress(rt, on_progress, &p);
  running = rt;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int rc = hs_runtime_run(rt);
  double wall = cli_seconds() - p.start;
  running = NULL;
  if (p.tty) fputs("\r\033[K", stderr);

  hs_runtime_stats s;
  hs_runtime_get_stats(rt, &s);
  char result[4096];
  long rlen = hs_runtime_main_result(rt, result, sizeof result);
  const char *fails[10];
  size_t nfails = hs_runtime_failures(rt, fails, 10);
  hs_agent_status main_status = hs_runtime_agent_status(rt, 1);
  /* "stopped": cut by --max-steps or a signal while the first agent was still alive */
  const char *verdict = rc < 0                                ? "error"
                        : main_status == HS_AGENT_FAILED      ? "failed"
                        : main_status == HS_AGENT_EXITED      ? "ok"
                        : hs_runtime_was_stopped(rt)          ? "stopped"
                                                              : "blocked";
  int status = rc < 0 ? EXIT_ERROR
               : main_status == HS_AGENT_FAILED || !strcmp(verdict, "blocked") ? EXIT_FAILED
                                                                              : 0;

  if (json) {
    printf("{\"command\":\"run\",\"script\":");
    cli_json_string(stdout, script);
    printf(",\"mode\":\"%s\",\"seed\":%llu,\"status\":\"%s\",\"steps\":%llu,",
           cfg.mode == HS_MODE_FREE ? "free" : "lockstep", (unsigned long long)cfg.seed, verdict,
           (unsigned long long)s.step);
    printf("\"agents\":{\"spawned\":%llu,\"exited\":%llu,\"failed\":%llu,\"blocked\":%llu},",
           (unsigned long long)s.spawned, (unsigned long long)s.exited,
           (unsigned long long)s.failed, (unsigned long long)s.blocked);
    printf("\"messages\":{\"sent\":%llu,\"delivered\":%llu},\"activations\":%llu,",
           (unsigned long long)s.messages_sent, (unsigned long long)s.messages_delivered,
           (unsigned long long)s.activations);
    printf("\"wall_seconds\":%.6f,\"log\":", wall);
    cli_json_string(stdout, cfg.log_path);
    printf(",\"log_records\":%llu,\"result\":", (unsigned long long)s.log_records);
    if (rlen >= 0)
      cli_json_string_n(stdout, result, (size_t)rlen < sizeof result ? (size_t)rlen : sizeof result - 1);
    else
      fputs("null", stdout);
    printf(",\"error\":");
    cli_json_string(stdout, rc < 0 ? hs_runtime_last_error(rt) : NULL);
    printf(",\"failures\":[");
    for (size_t i = 0; i < nfails; i++) {
      if (i) putchar(',');
      cli_json_string(stdout, fails[i]);
    }
    printf("]}\n");
  } else {
    static const struct { const char *verdict, *words; } say[] = {
        {"error", "stopped by an error"}, {"failed", "failed"}, {"ok", "finished"},
        {"stopped", "stopped (step limit or signal)"},
        {"blocked", "ended with the first agent blocked"}};
    const char *words = verdict;
    for (size_t i = 0; i < sizeof say / sizeof say[0]; i++)
      if (!strcmp(say[i].verdict, verdict)) words = say[i].words;
    printf("run %s: %llu steps, %llu agents (%llu exited, %llu failed, %llu blocked), "
           "%llu messages, %.3f s\n",
           words,
           (unsigned long long)s.step, (unsigned long long)s.spawned,
           (unsigned long long)s.exited, (unsigned long long)s.failed,
           (unsigned long long)s.blocked, (unsigned long long)s.messages_delivered, wall);
    if (rlen >= 0) printf("result: %s%s\n", result, (size_t)rlen >= sizeof result ? "..." : "");
    for (size_t i = 0; i < nfails; i++) printf("failed: %s\n", fails[i]);
    if (s.failed > nfails)
      printf("... and %llu more failures\n", (unsigned long long)(s.failed - nfails));
    if (rc < 0) fprintf(stderr, "hswarm run: %s\n", hs_runtime_last_error(rt));
    if (cfg.log_path) printf("event log: %s (%llu records)\n", cfg.log_path,
                             (unsigned long long)s.log_records);
  }
  cli_swarm_model_close(&sm);
  hs_runtime_destroy(rt);
  close_repo(kb);
  free(args);
  return status;
usage:
  run_usage(stderr);
  free(args);
  return EXIT_USAGE;
}
