/* cli.h: helpers shared by the hswarm subcommands (one file per subcommand in src/cli/). */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stdint.h>
#include <stdio.h>

#define EXIT_USAGE 2   /* bad command line */
#define EXIT_FAILED 1  /* the job ran and failed (main agent failed, replay diverged) */
#define EXIT_ERROR 3   /* the job could not run (unreadable file, runtime error) */

int cmd_run(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_serve(int argc, char **argv); /* cmd_serve.c */
#ifdef HS_WITH_CODE
int cmd_code(int argc, char **argv);  /* code_job.c */
int cmd_defs(int argc, char **argv);  /* code_defs.c */
int cmd_patch(int argc, char **argv); /* code_patch.c */
int cmd_index(int argc, char **argv); /* code_kb.c */
int cmd_sym(int argc, char **argv);
int cmd_callers(int argc, char **argv);
int cmd_callees(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_slice(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_bench_code(int argc, char **argv); /* code_bench.c */
int cmd_bench_copies(int argc, char **argv); /* cmd_bench_copies.c */
/* code_repo.c: the knowledge base of the repository containing repo (index: its directory, or
 * NULL for the default), brought up to date and attached to rt; NULL after cli_fail. Close it
 * after hs_runtime_destroy. */
struct hs_runtime;
void *cli_repo_attach(const char *repo, const char *index, struct hs_runtime *rt);
void cli_repo_close(void *kb);
#endif
int cmd_bench_engine(int argc, char **argv); /* argv[1] is "engine" */
int cmd_bench_swarm(int argc, char **argv);  /* argv[1] is "swarm" */
int cmd_bench_serve(int argc, char **argv);  /* argv[1] is "serve" (cmd_bench_serve.c) */

/* Parses a non-negative integer with an optional K/M/G suffix (powers of 1024 for sizes when
 * binary is 1, of 1000 otherwise). Returns 0 or -1. */
int cli_parse_u64(const char *s, int binary, uint64_t *out);

/* JSON output: writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);
void cli_json_string_n(FILE *f, const char *s, size_t n);
/* The --json answer of a command that could not do its job: {"command", "status":"error", "error"}. */
void cli_json_error(const char *command, const char *message);

/* Reports why a command could not do its job: prints "hswarm: MESSAGE" on stderr and keeps
 * MESSAGE for cli_last_failure (which --json error answers use). */
void cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *cli_last_failure(void);

/* Monotonic seconds. */
double cli_seconds(void);
/* Resident set size of this process, bytes (from /proc/self/statm). */
uint64_t cli_rss_bytes(void);
/* 1 if stderr is a terminal (progress lines are drawn only then). */
int cli_stderr_is_tty(void);

/* Where the shipped data (bench/lua, examples) is: the source tree for a build-tree binary, else
 * the install prefix's share/hswarm. Returns the directory holding `rel`, or NULL. */
const char *cli_data_dir(const char *rel);

/* The value of -m/--model: a path as given, or a model NAME ("smollm2-135m-instruct") found as
 * NAME.gguf in the models folders: $HS_MODELS_DIR, then the build tree's .deps/models (where
 * tools/models.sh puts the published models), then the install prefix's share/hswarm/models.
 * An argument that names an existing file, contains '/' or ends in ".gguf" is a path. Returns
 * arg itself when no folder has the name (opening it then fails naming arg), else a path that
 * stays valid for the process (at most 16 names are resolved). */
const char *cli_model_path(const char *arg);
/* The models folders above, in order, NULL-terminated (entries that are not set are left out). */
const char *const *cli_model_dirs(void);

/* The whole of a file ("-": standard input), NUL-terminated, at most CLI_MAX_FILE bytes; free
 * it with hs_free. NULL after cli_fail naming the file and the reason. */
#define CLI_MAX_FILE (64u << 20)
char *cli_read_file(const char *path, size_t *len);

#endif
