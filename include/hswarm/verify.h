/* hswarm/verify.h: command verifiers ("twin" verification): a command, such as a test suite, run
 * in a private copy of a working directory, with limits, its output captured as feedback.
 *
 *   hs_verify_opts o;  hs_verify_opts_init(&o);
 *   o.workdir = "/path/to/project";  o.time_limit_s = 30;
 *   hs_verify_file f = {"src/add.c", new_text, new_len};   // the candidate's change
 *   o.files = &f;  o.n_files = 1;
 *   hs_verify_result r;
 *   hs_verify_command("make test", &o, &r);   // r.exit_code, r.output (feedback), r.timed_out
 *   hs_verify_result_free(&r);
 *
 * The command runs under /bin/sh -c in a fresh temporary directory holding a private copy of
 * workdir (every file copied; with o.link_copies, when running as root, files the command,
 * running as nobody, cannot write are hard-linked instead: hswarm/worktree.h; either way the
 * command cannot change the original) with o.files written
 * over it. The sandbox, each part applied where the system allows it and reported otherwise in
 * r.sandbox (a sentence naming what was not applied):
 *   - a new session and process group; a new PID namespace (every process the command starts
 *     dies with it); when running as root, the command runs as nobody (65534), so that the
 *     process limit applies;
 *   - no network: a new network namespace with only a loopback interface that is down;
 *   - limits: wall time (the whole process group is killed: r.timed_out), CPU seconds, address
 *     space, processes (RLIMIT_NPROC, counted per user), file size;
 *   - output: stdout and stderr together, the first max_output bytes kept (r.truncated: more
 *     came and was read and discarded, so a flood neither blocks the command nor fills memory).
 * The temporary directory is removed afterwards.
 *
 * Ownership: the options' strings are borrowed for the call; the result's output and sandbox text
 * are owned by the result (hs_verify_result_free). Threads: any; calls are independent. */
#ifndef HSWARM_VERIFY_H
#define HSWARM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_verify_file {
  const char *path; /* relative to the copy; directories are created; no ".." component */
  const char *data;
  size_t len;
} hs_verify_file;

typedef struct hs_verify_opts {
  const char *workdir;         /* copied into the private directory; NULL: start empty */
  const hs_verify_file *files; /* written over the copy */
  size_t n_files;
  double time_limit_s;         /* wall time (default 60) */
  uint64_t cpu_seconds;        /* RLIMIT_CPU (default 60) */
  uint64_t memory_bytes;       /* RLIMIT_AS (default 4 GiB) */
  uint64_t max_processes;      /* RLIMIT_NPROC (default 256) */
  uint64_t max_file_bytes;     /* RLIMIT_FSIZE (default 1 GiB) */
  size_t max_output;           /* output bytes kept (default 64 KiB) */
  bool allow_network;          /* default false */
  bool link_copies;            /* hard-link what the command cannot write (hswarm/worktree.h):
                                  a fraction of the copying; existing files are then read-only
                                  to the command (it may replace them, not write into them) */
  const int *cancel;           /* optional: when *cancel becomes nonzero (read atomically, looked
                                  at every 50 ms) the command is killed: r.cancelled */
} hs_verify_opts;

void hs_verify_opts_init(hs_verify_opts *o);

typedef struct hs_verify_result {
  bool passed;        /* exited with status 0, in time, not cancelled */
  int exit_code;      /* the exit status, or -1 when killed by a signal */
  int signal;         /* the signal that ended it, or 0 */
  bool timed_out;     /* the wall-time limit was reached and the command killed */
  bool truncated;     /* output beyond max_output was discarded */
  bool cancelled;     /* killed because *o.cancel became nonzero */
  char *output;       /* stdout and stderr, NUL-terminated */
  size_t output_len;
  double seconds;     /* wall time */
  char *sandbox;      /* "" when every protection applied, else what did not */
} hs_verify_result;

/* Runs cmd. 0 when the command ran (whatever its outcome: see r), or a negative HS_E* code when it
 * could not be run (bad option or file path, the copy failed, fork failed) with a message from
 * hs_verify_last_error; r is then zeroed. */
int hs_verify_command(const char *cmd, const hs_verify_opts *o, hs_verify_result *r);
void hs_verify_result_free(hs_verify_result *r);
const char *hs_verify_last_error(void);

/* The runtime operation "verify" (agents: ctx.call("verify", json), or lua/verify.lua). Request:
 * {"cmd": "...", "workdir": "...", "files": {"path": "text", ...}, "time_limit": s,
 * "cpu_seconds": n, "memory": bytes, "max_processes": n, "max_output": bytes,
 * "allow_network": bool}; only cmd is required. Result (text): a first line
 * "passed EXIT SIGNAL TIMED_OUT TRUNCATED SECONDS" (0/1 flags), a second line with the sandbox
 * notes, then the output.
 *
 * Commands run on a pool of `jobs` threads (0: the number of online CPUs), so a team's
 * candidates, and many teams, are verified at the same time. The operation is step-bound
 * (hswarm/runtime.h): in lockstep mode every command started during a step runs concurrently and
 * all are delivered at the next step, so the run stays deterministic; in free-running mode each
 * result is delivered when its command ends. Requests wait in order of arrival when every thread
 * is busy. The process limit (RLIMIT_NPROC) counts per user: when running as root, concurrent
 * commands all run as nobody and share it. Destroying the runtime kills the running commands and
 * joins the threads. Errors: HS_EINVAL (kind taken, jobs > 1024), HS_ENOMEM, HS_EIO (threads). */
struct hs_runtime;
int hs_verify_attach(struct hs_runtime *rt, unsigned jobs);

#ifdef __cplusplus
}
#endif
#endif
