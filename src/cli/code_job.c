/* code_job.c: `hswarm code`: the coding swarm, from a task on a repository to a verified patch.
 *
 * This file prepares and finishes the job; the swarm itself is Lua (lua/codejob.lua, read there
 * what happens between). Here: the options; the templates (files of a template directory) and
 * an optional work-items file read; the repository indexed (incrementally) and attached as the
 * code.* operations, with the model's tokenizer counting their tokens; the model served; the job
 * run as the first agent of a lockstep run; then its result: the report printed, and the diff
 * written (--out) or applied (--apply) only when every item verified and the final verification
 * passed. The repository is written nowhere else: an interrupted or failed run leaves it as it
 * was (Ctrl-C stops the run at the next step, kills running verifications, prints what was done
 * so far). Exit status: 0 verified (and written), 1 no verified result, 2 bad command line,
 * 3 the job could not run, 130 interrupted. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/swarm_model.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/kb.h"
#include "hswarm/patch.h"
#include "hswarm/runtime.h"
#include "hswarm/verify.h"

#define EXIT_INTERRUPTED 130

static const char USAGE[] =
    "usage: hswarm code --repo DIR --task TEXT --verify CMD [options]\n"
    "  --repo DIR            the repository (its root is found from DIR)\n"
    "  --task TEXT           what to do, in words\n"
    "  --verify CMD          the test command: the final check of the merged result, run in a\n"
    "                        private copy of the repository (exit status 0: passed)\n"
    "  --verify-item CMD     the command checking one work item's candidates (default: --verify);\n"
    "                        {name} and {file} are replaced by the item's definition and file\n"
    "  --items FILE          the work items as JSON instead of the coordinator's:\n"
    "                        [{\"name\": \"f\", \"why\": \"...\"}, {\"add\": \"g\", \"after\": \"f\"}]\n"
    "  -m, --model FILE      a GGUF model (default: the shipped models/coder.gguf)\n"
    "  --backend URL         or an OpenAI-compatible server's API (http://host:port/v1)\n"
    "  --api-key-file F      its bearer key; --remote-model NAME: the model to ask for\n"
    "  --templates DIR       prompt templates: system.txt, member.txt, coordinator.txt (one\n"
    "                        call listing the items) or coordinator_each.txt (one call per\n"
    "                        definition of the map: change it or not), and optionally\n"
    "                        member.gbnf, a grammar for members' answers\n"
    "                        (default: the shipped templates/code/tiny)\n"
    "  --agents N            members working at once, over all teams (default 64)\n"
    "  --team-size K         members per work item (default 8)\n"
    "  --rounds R            rounds per team at most (default 6)\n"
    "  --max-tokens N        tokens per member answer (default 256)\n"
    "  --temperature T       sampling temperature of the members (default 1.0)\n"
    "  --map-budget N        tokens of the repository map (default 1024)\n"
    "  --time-limit S        seconds per verification (default 60)\n"
    "  --full-copies         copy every file for verifications (default: hard links where the\n"
    "                        command cannot write; needed when tests write into tracked files)\n"
    "  --apply               apply the verified patch to the repository\n"
    "  --out FILE            write the verified patch as a unified diff to FILE\n"
    "  --index DIR           where the repository's index is (default: the cache)\n"
    "  --log FILE            write the event log (the trace: `hswarm replay`, `hswarm log`)\n"
    "  --seed N              the run's seed (default 0)\n"
    "  --threads N           threads of the model (default: all cores)\n"
    "  --verify-jobs N       verifications at once (default: all cores)\n"
    "  --quiet               do not print the job's log lines\n"
    "  --json                print the result as one JSON object\n";

typedef struct code_opts {
  const char *repo, *task, *verify, *verify_item, *items, *model, *templates, *out, *index, *log;
  cli_swarm_model_opts backend; /* --backend URL, --api-key-file F, --remote-model NAME */
  uint64_t agents, team_size, rounds, max_tokens, map_budget, seed, threads, verify_jobs;
  double temperature, time_limit;
  int apply, full_copies, quiet, json;
} code_opts;

static hs_runtime *running;
static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
  if (running) hs_runtime_request_stop(running);
}

static int number(const char *opt, const char *val, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (!val || cli_parse_u64(val, 0, out) != 0 || *out < lo || *out > hi) {
    fprintf(stderr, "hswarm code: %s needs a number from %llu to %llu (got '%s')\n", opt,
            (unsigned long long)lo, (unsigned long long)hi, val ? val : "nothing");
    return -1;
  }
  return 0;
}

static int real(const char *opt, const char *val, double lo, double hi, double *out) {
  char *end = NULL;
  double v = val ? strtod(val, &end) : 0;
  if (!val || end == val || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "hswarm code: %s needs a number from %g to %g (got '%s')\n", opt, lo, hi,
            val ? val : "nothing");
    return -1;
  }
  *out = v;
  return 0;
}

static int parse(int argc, char **argv, code_opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **str = !strcmp(a, "--repo")                            ? &o->repo
                       : !strcmp(a, "--task")                          ? &o->task
                       : !strcmp(a, "--verify")                        ? &o->verify
                       : !strcmp(a, "--verify-item")                   ? &o->verify_item
                       : !strcmp(a, "--items")                         ? &o->items
                       : !strcmp(a, "-m") || !strcmp(a, "--model")     ? &o->model
                       : !strcmp(a, "--templates")                     ? &o->templates
                       : !strcmp(a, "--out")                           ? &o->out
                       : !strcmp(a, "--index")                         ? &o->index
                       : !strcmp(a, "--log")                           ? &o->log
                                                                       : NULL;
    int rc = 0, remote = str ? 0 : cli_backend_opt(argc, argv, &i, &o->backend);
    if (remote < 0) return -1;
    if (remote) {
    } else if (str) {
      if (!v) {
        fprintf(stderr, "hswarm code: %s needs a value\n", a);
        return -1;
      }
      *str = v;
      i++;
    } else if (!strcmp(a, "--agents")) {
      rc = number(a, v, 1, 100000, &o->agents), i++;
    } else if (!strcmp(a, "--team-size")) {
      rc = number(a, v, 1, 1024, &o->team_size), i++;
    } else if (!strcmp(a, "--rounds")) {
      rc = number(a, v, 1, 1000, &o->rounds), i++;
    } else if (!strcmp(a, "--max-tokens")) {
      rc = number(a, v, 1, 65536, &o->max_tokens), i++;
    } else if (!strcmp(a, "--map-budget")) {
      rc = number(a, v, 16, 1u << 20, &o->map_budget), i++;
    } else if (!strcmp(a, "--seed")) {
      rc = number(a, v, 0, UINT64_MAX, &o->seed), i++;
    } else if (!strcmp(a, "--threads")) {
      rc = number(a, v, 0, 4096, &o->threads), i++;
    } else if (!strcmp(a, "--verify-jobs")) {
      rc = number(a, v, 0, 1024, &o->verify_jobs), i++;
    } else if (!strcmp(a, "--temperature")) {
      rc = real(a, v, 0, 10, &o->temperature), i++;
    } else if (!strcmp(a, "--time-limit")) {
      rc = real(a, v, 0.01, 86400, &o->time_limit), i++;
    } else if (!strcmp(a, "--apply")) {
      o->apply = 1;
    } else if (!strcmp(a, "--full-copies")) {
      o->full_copies = 1;
    } else if (!strcmp(a, "--quiet")) {
      o->quiet = 1;
    } else if (!strcmp(a, "--json")) {
      o->json = 1;
    } else {
      fprintf(stderr, "hswarm code: unknown option '%s'\n", a);
      return -1;
    }
    if (rc) return -1;
  }
  const char *missing = !o->repo ? "--repo" : !o->task && !o->items ? "--task" : !o->verify ? "--verify" : NULL;
  if (missing) {
    fprintf(stderr, "hswarm code: %s is required\n", missing);
    return -1;
  }
  if (o->apply && o->out) {
    fprintf(stderr, "hswarm code: give --apply or --out, not both\n");
    return -1;
  }
  return 0;
}

/* Adds the template file DIR/FILE to t under key when it exists: 1 added, 0 absent, -1 after
 * cli_fail. */
static int add_template(json_t *t, const char *dir, const char *file, const char *key) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  size_t n;
  char *text = cli_read_file(path, &n);
  json_t *s = text ? json_stringn(text, n) : NULL;
  hs_free(text);
  if (!s) {
    if (text) cli_fail("code: the template %s is not UTF-8 text", path);
    return -1;
  }
  json_object_set_new(t, key, s);
  return 1;
}

/* The template set of directory dir (templates/code/README.md), or NULL after cli_fail:
 * system.txt and member.txt; coordinator.txt and/or coordinator_each.txt (one of them unless the
 * items come from a file); member.gbnf optional. */
static json_t *load_templates(const char *dir, int need_coordinator) {
  static const struct { const char *file, *key; int required; } parts[] = {
      {"system.txt", "system", 1},           {"member.txt", "member", 1},
      {"coordinator.txt", "coordinator", 0}, {"coordinator_each.txt", "coordinator_each", 0},
      {"member.gbnf", "member_grammar", 0}};
  json_t *t = json_object();
  if (!t) return NULL;
  int coordinators = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    int got = add_template(t, dir, parts[i].file, parts[i].key);
    if (got < 0 || (got == 0 && parts[i].required)) {
      if (got == 0) cli_fail("code: the template set %s has no %s", dir, parts[i].file);
      json_decref(t);
      return NULL;
    }
    if (got > 0 && !strncmp(parts[i].key, "coordinator", 11)) coordinators++;
  }
  if (need_coordinator && coordinators == 0) {
    cli_fail("code: the template set %s has neither coordinator.txt nor coordinator_each.txt "
             "(or give the work items with --items)", dir);
    json_decref(t);
    return NULL;
  }
  return t;
}

/* The job's configuration (lua/codejob.lua's cfg), or NULL after cli_fail. */
static json_t *job_config(const code_opts *o, const char *root, const char *templates) {
  json_t *t = load_templates(templates, !o->items);
  if (!t) return NULL;
  json_t *items = NULL;
  if (o->items) {
    size_t n;
    char *text = cli_read_file(o->items, &n);
    if (!text || !(items = json_stringn(text, n))) {
      if (text) cli_fail("code: the work items file %s is not UTF-8 text", o->items);
      hs_free(text);
      json_decref(t);
      return NULL;
    }
    hs_free(text);
  }
  json_t *c = json_pack(
      "{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:f, s:I, s:f, s:b, s:i, s:I}", "task",
      o->task ? o->task : "carry out the work items", "verify", o->verify, "verify_item",
      o->verify_item ? o->verify_item : o->verify, "repo", root, "templates", t, "agents",
      (json_int_t)o->agents, "team_size", (json_int_t)o->team_size, "rounds",
      (json_int_t)o->rounds, "max_tokens", (json_int_t)o->max_tokens, "temperature",
      o->temperature, "map_budget", (json_int_t)o->map_budget, "time_limit", o->time_limit,
      "link", !o->full_copies, "coordinator_attempts", 3, "coordinator_max_tokens",
      (json_int_t)1024);
  if (!c) {
    cli_fail("code: the task or a command is not UTF-8 text");
    return NULL;
  }
  if (items) json_object_set_new(c, "items", items);
  return c;
}

/* One attempt of the coordinator asked one definition at a time: how many were asked, which
 * answers chose a change, and the answers that were unusable. */
static void print_decisions(size_t attempt, const json_t *decisions) {
  size_t i, chosen = 0;
  const json_t *d;
  json_array_foreach(decisions, i, d) chosen += json_is_true(json_object_get(d, "change"));
  printf("coordinator attempt %zu: %zu definitions asked, %zu to change%s", attempt,
         json_array_size(decisions), chosen, chosen ? ":" : "");
  json_array_foreach(decisions, i, d) {
    if (json_is_true(json_object_get(d, "change")))
      printf(" %s", json_string_value(json_object_get(d, "name")));
  }
  printf("\n");
  json_array_foreach(decisions, i, d) {
    const char *e = json_string_value(json_object_get(d, "error"));
    if (e) printf("  %s: %s\n", json_string_value(json_object_get(d, "name")), e);
  }
}

static void print_report(const json_t *res, double wall, const char *log) {
  const json_t *rep = json_object_get(res, "report");
  const json_t *items = json_object_get(rep, "items");
  size_t i;
  const json_t *it;
  const json_t *coord = json_object_get(rep, "coordinator");
  json_array_foreach(json_object_get(coord, "attempts"), i, it) {
    const char *e = json_string_value(json_object_get(it, "error"));
    const char *out = json_string_value(json_object_get(it, "output"));
    const json_t *decisions = json_object_get(it, "decisions");
    if (decisions) print_decisions(i + 1, decisions);
    if (e) printf("coordinator attempt %zu: %s%s%.200s\n", i + 1, e, out ? "; it wrote: " : "",
                  out ? out : "");
  }
  printf("work items: %zu (%s)\n", json_array_size(items),
         json_string_value(json_object_get(coord, "source")) &&
                 !strcmp(json_string_value(json_object_get(coord, "source")), "file")
             ? "from the items file"
             : "from the coordinator");
  json_array_foreach(items, i, it) {
    const json_t *s = json_object_get(it, "stats");
    printf("  %-24s %-10s %-26s rounds %lld, calls %lld, candidates %lld (%lld malformed), "
           "verified %lld of %lld\n",
           json_string_value(json_object_get(it, "name")),
           json_string_value(json_object_get(it, "file")) ? json_string_value(json_object_get(it, "file")) : "-",
           json_string_value(json_object_get(it, "status")),
           json_integer_value(json_object_get(s, "rounds")),
           json_integer_value(json_object_get(s, "calls")),
           json_integer_value(json_object_get(s, "candidates")),
           json_integer_value(json_object_get(s, "malformed")),
           json_integer_value(json_object_get(s, "verified")),
           json_integer_value(json_object_get(s, "verifications")));
    const char *e = json_string_value(json_object_get(it, "error"));
    if (e) printf("    %s\n", e);
  }
  long long sent = 0, whole = 0;
  json_array_foreach(items, i, it) {
    const json_t *s = json_object_get(it, "stats");
    sent += json_integer_value(json_object_get(s, "prompt_tokens"));
    whole += json_integer_value(json_object_get(s, "whole_file_tokens"));
  }
  printf("model calls: %lld (prompt tokens %lld, generated %lld)\n",
         json_integer_value(json_object_get(rep, "calls")),
         json_integer_value(json_object_get(rep, "prompt_tokens")),
         json_integer_value(json_object_get(rep, "completion_tokens")));
  if (whole > 0)
    printf("members' prompts: %lld tokens with function slices, %lld with whole files (%.1f%% "
           "saved)\n", sent, whole, 100.0 * (double)(whole - sent) / (double)whole);
  const json_t *fin = json_object_get(rep, "final");
  if (json_is_true(json_object_get(fin, "ran")))
    printf("final verification: %s (%.2f s)\n",
           json_is_true(json_object_get(fin, "passed")) ? "passed" : "FAILED",
           json_number_value(json_object_get(fin, "seconds")));
  else
    printf("final verification: not run (no patch)\n");
  if (!json_is_true(json_object_get(fin, "passed")) && json_string_value(json_object_get(fin, "output")))
    printf("%s\n", json_string_value(json_object_get(fin, "output")));
  printf("time: %.1f s\n", wall);
  if (log) printf("trace: %s (hswarm log %s)\n", log, log);
}

/* Applies the verified patch to the repository, Ctrl-C held off while the files are written
 * (each is written to a temporary file and renamed). 0, or -1 after cli_fail. */
static int apply_patch(const char *root, const char *text) {
  hs_patch *p = NULL;
  hs_patch_result *r = NULL;
  int rc = hs_patch_parse(text, strlen(text), &p);
  if (!rc) rc = hs_patch_apply(p, root, NULL, &r);
  if (rc || !r->ok) {
    cli_fail("code: the verified patch no longer applies to %s (did it change meanwhile?)%s%s",
             root, r && r->n_errors ? ": " : "", r && r->n_errors ? r->errors[0] : "");
    hs_patch_result_free(r);
    hs_patch_free(p);
    return -1;
  }
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);
  rc = hs_patch_write(r, root);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (rc) cli_fail("code: writing the patch failed: %s", hs_strerror(rc));
  hs_patch_result_free(r);
  hs_patch_free(p);
  return rc ? -1 : 0;
}

int cmd_code(int argc, char **argv) {
  code_opts o = {.agents = 64, .team_size = 8, .rounds = 6, .max_tokens = 256,
                 .map_budget = 1024, .temperature = 1.0, .time_limit = 60};
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (parse(argc, argv, &o) != 0) {
    fputs(USAGE, stderr);
    return EXIT_USAGE;
  }
  char root[4096], model_path[4200], script[4200], templates[4200];
  const char *dir;
  int status = EXIT_ERROR;
  hs_runtime *rt = NULL;
  void *kb = NULL;
  cli_swarm_model sm = {0};
  json_t *cfg = NULL, *res = NULL;
  char *result = NULL;
  if (hs_kb_find_root(o.repo, root, sizeof root) != 0) {
    cli_fail("code: --repo %s: %s", o.repo, hs_kb_last_error());
    goto done;
  }
  if (o.model && o.backend.backend) {
    cli_fail("code: give -m FILE or --backend URL, not both");
    goto done;
  }
  if (!o.model && !o.backend.backend) {
    if (!(dir = cli_data_dir("models/coder.gguf"))) {
      cli_fail("code: the shipped model models/coder.gguf is not found; give one with -m FILE");
      goto done;
    }
    snprintf(model_path, sizeof model_path, "%s/models/coder.gguf", dir);
    o.model = model_path;
  }
  if (!o.templates) {
    if (!(dir = cli_data_dir("templates/code/tiny/member.txt"))) {
      cli_fail("code: the shipped templates are not found; give a directory with --templates");
      goto done;
    }
    snprintf(templates, sizeof templates, "%s/templates/code/tiny", dir);
    o.templates = templates;
  }
  if (!(dir = cli_data_dir("lua/codejob.lua"))) {
    cli_fail("code: lua/codejob.lua is not found (installed under share/hswarm?)");
    goto done;
  }
  snprintf(script, sizeof script, "%s/lua/codejob.lua", dir);
  if (!(cfg = job_config(&o, root, o.templates))) goto done;

  hs_runtime_config rc;
  hs_runtime_config_init(&rc);
  rc.seed = o.seed;
  rc.log_path = o.log;
  rc.quiet = o.quiet || o.json;
  if (hs_runtime_create(&rc, &rt) != 0) {
    cli_fail("code: %s", hs_runtime_create_error());
    goto done;
  }
  int vrc = hs_verify_attach(rt, (unsigned)o.verify_jobs);
  if (vrc) {
    cli_fail("code: cannot start the command verifiers: %s", hs_strerror(vrc));
    goto done;
  }
  if (!o.quiet && !o.json) fprintf(stderr, "indexing %s\n", root);
  if (!(kb = cli_repo_attach(root, o.index, rt))) goto done;
  cli_swarm_model_opts mo = o.backend;
  mo.threads = (unsigned)o.threads;
  if (cli_swarm_model_open(o.model, &mo, rt, &sm) != 0) goto done;
  hs_kb_set_ops_tokenizer(kb, sm.tok);
  char *cfg_text = json_dumps(cfg, JSON_COMPACT);
  const char *args[1] = {cfg_text};
  int spawned = cfg_text && hs_runtime_spawn_main(rt, script, 1, args, NULL) == 0;
  free(cfg_text);
  if (!spawned) {
    cli_fail("code: %s", hs_runtime_last_error(rt));
    goto done;
  }
  double t0 = cli_seconds();
  running = rt;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int run_rc = hs_runtime_run(rt);
  running = NULL;
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  double wall = cli_seconds() - t0;
  if (interrupted || hs_runtime_was_stopped(rt)) {
    hs_runtime_stats s;
    hs_runtime_get_stats(rt, &s);
    fprintf(stderr, "hswarm code: interrupted after %.1f s: %llu agents had run; the repository "
            "is untouched (the items finished so far are in the log above%s%s)\n", wall,
            (unsigned long long)s.spawned, o.log ? " and in " : "", o.log ? o.log : "");
    if (o.json) cli_json_error("code", "interrupted: the repository is untouched");
    status = EXIT_INTERRUPTED;
    goto done;
  }
  long n = run_rc < 0 ? -1 : hs_runtime_main_result(rt, NULL, 0);
  if (n >= 0 && (result = malloc((size_t)n + 1))) hs_runtime_main_result(rt, result, (size_t)n + 1);
  json_error_t je;
  if (!result || !(res = json_loads(result, 0, &je))) {
    const char *fails[1];
    cli_fail("code: the job failed: %s",
             run_rc < 0 ? hs_runtime_last_error(rt)
             : hs_runtime_failures(rt, fails, 1) ? fails[0] : "it returned no result");
    goto done;
  }
  int ok = json_is_true(json_object_get(res, "ok"));
  const char *patch = json_string_value(json_object_get(res, "patch"));
  const char *diff = json_string_value(json_object_get(res, "diff"));
  const char *err = json_string_value(json_object_get(res, "error"));
  int wrote = 0;
  if (ok && o.out) {
    FILE *f = fopen(o.out, "wb");
    if (!f || fputs(diff ? diff : "", f) < 0 || fclose(f) != 0) {
      cli_fail("code: cannot write %s", o.out);
      goto done;
    }
    wrote = 1;
  } else if (ok && o.apply) {
    if (apply_patch(root, patch ? patch : "") != 0) goto done;
    wrote = 1;
  }
  if (o.json) {
    json_object_set_new(res, "command", json_string("code"));
    json_object_set_new(res, "wall_seconds", json_real(wall));
    json_object_set_new(res, "written", json_boolean(wrote));
    char *s = json_dumps(res, JSON_COMPACT);
    if (s) puts(s);
    free(s);
  } else {
    print_report(res, wall, o.log);
    if (ok && diff && !o.apply && !o.out) fputs(diff, stdout);
    if (ok && o.out) printf("wrote the patch to %s\n", o.out);
    if (ok && o.apply) printf("applied the patch to %s\n", root);
    if (!ok) printf("no verified result: %s; nothing was written\n", err ? err : "unknown");
  }
  status = ok ? 0 : EXIT_FAILED;
done:
  if (status == EXIT_ERROR && o.json) cli_json_error("code", cli_last_failure()); /* cli_fail printed it */
  cli_swarm_model_close(&sm);
  if (rt) hs_runtime_destroy(rt);
  if (kb) cli_repo_close(kb);
  json_decref(cfg);
  json_decref(res);
  free(result);
  return status;
}
