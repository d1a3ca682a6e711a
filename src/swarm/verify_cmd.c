/* verify_cmd.c: command verifiers (hswarm/verify.h): a command run in a private copy of a
 * directory, sandboxed and limited, with its output captured.
 *
 * Process layout. The parent forks a "keeper" that starts a new session (so that one kill of the
 * process group reaches everything), leaves the network (a new network namespace) and, when it
 * can, enters a new PID namespace; its child, pid 1 there, sets the limits, drops to nobody when
 * running as root, and executes /bin/sh -c CMD. When pid 1 of a PID namespace dies the kernel kills
 * every process left in it, so a command that forks forever or daemonizes cannot outlive the
 * verification. The keeper waits for it and exits the same way. What could not be applied is
 * written by the keeper or the command's process into a notes pipe before exec (closed on exec),
 * and becomes r.sandbox.
 *
 * The parent reads the output pipe with poll until end of file, keeping max_output bytes and
 * discarding the rest; at the wall-time limit it kills the process group, reads what is left for
 * at most one more second, and reaps the keeper. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "hswarm/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/worktree.h"

extern char **environ;

#define NOBODY 65534

static _Thread_local char err_msg[512];

const char *hs_verify_last_error(void) { return err_msg; }

static int fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_msg, sizeof err_msg, fmt, ap);
  va_end(ap);
  return code;
}

void hs_verify_opts_init(hs_verify_opts *o) {
  *o = (hs_verify_opts){.time_limit_s = 60,
                        .cpu_seconds = 60,
                        .memory_bytes = 4ull << 30,
                        .max_processes = 256,
                        .max_file_bytes = 1ull << 30,
                        .max_output = 64 << 10};
}

void hs_verify_result_free(hs_verify_result *r) {
  if (!r) return;
  hs_free(r->output);
  hs_free(r->sandbox);
  memset(r, 0, sizeof *r);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the private directory ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void remove_tree(const char *dir) { nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS); }

static int safe_relative(const char *p) {
  if (!p || !*p || p[0] == '/') return 0;
  for (const char *s = p; *s;) {
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if ((n == 2 && !strncmp(s, "..", 2)) || n == 0) return 0;
    s += n + (e ? 1 : 0);
  }
  return 1;
}

static int write_file(const char *root, const hs_verify_file *f) {
  if (!safe_relative(f->path))
    return fail(HS_EINVAL, "verify: file path \"%s\" must be relative, without \"..\"",
                f->path ? f->path : "(null)");
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%s", root, f->path) >= (int)sizeof path)
    return fail(HS_EINVAL, "verify: file path too long");
  int as_nobody = geteuid() == 0;
  for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) { /* parents */
    *s = 0;
    struct stat st;
    int made = mkdir(path, 0755) == 0;
    int e = errno;
    if (!made && (e != EEXIST || lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))) {
      *s = '/'; /* a symbolic link here could lead the write out of the copy */
      return fail(HS_EIO, "verify: cannot create the directory of %s: %s", f->path,
                  e == EEXIST ? "a file or link is in the way" : strerror(e));
    }
    if (made && as_nobody && lchown(path, NOBODY, NOBODY) != 0) e = errno, made = -1;
    *s = '/';
    if (made < 0) return fail(HS_EIO, "verify: cannot give %s to nobody: %s", f->path, strerror(e));
  }
  /* The copy's file may be a hard link to the original (hswarm/worktree.h): replace the name,
   * never write through it. */
  if (unlink(path) != 0 && errno != ENOENT)
    return fail(HS_EIO, "verify: cannot replace %s: %s", f->path, strerror(errno));
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return fail(HS_EIO, "verify: cannot write %s: %s", f->path, strerror(errno));
  for (size_t off = 0; off < f->len;) {
    ssize_t k = write(fd, f->data + off, f->len - off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      close(fd);
      return fail(HS_EIO, "verify: cannot write %s: %s", f->path, strerror(errno));
    }
    off += (size_t)k;
  }
  if (as_nobody && fchown(fd, NOBODY, NOBODY) != 0) {
    int e = errno;
    close(fd);
    return fail(HS_EIO, "verify: cannot give %s to nobody: %s", f->path, strerror(e));
  }
  close(fd);
  return 0;
}

/* ---- the sandboxed command ---- */

static void note(int fd, const char *s) {
  ssize_t k = write(fd, s, strlen(s));
  (void)k;
}

/* In the process that will exec the command: limits, user, directory, descriptors. */
static void become_command(const char *cmd, const hs_verify_opts *o, const char *dir, int out,
                           int notes) {
  struct rlimit rl;
  rl = (struct rlimit){o->cpu_seconds, o->cpu_seconds};
  setrlimit(RLIMIT_CPU, &rl);
  rl = (struct rlimit){o->memory_bytes, o->memory_bytes};
  setrlimit(RLIMIT_AS, &rl);
  rl = (struct rlimit){o->max_processes, o->max_processes};
  setrlimit(RLIMIT_NPROC, &rl);
  rl = (struct rlimit){o->max_file_bytes, o->max_file_bytes};
  setrlimit(RLIMIT_FSIZE, &rl);
  rl = (struct rlimit){0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  if (chdir(dir) != 0) _exit(126);
  if (geteuid() == 0) {
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
      note(notes, "cannot drop root privileges (the process limit does not bind root); ");
  }
  int null = open("/dev/null", O_RDONLY);
  if (null >= 0) dup2(null, 0);
  dup2(out, 1);
  dup2(out, 2);
  execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
  _exit(127);
}

/* Closes every descriptor above 2 except a and b. Other threads may be running commands of their
 * own: their pipes' write ends, inherited by this fork, would otherwise stay open in the keeper
 * (which never executes anything, so close-on-exec does not apply) and hold their readers until
 * this command ends. */
static void close_others(int a, int b) {
  if (a > b) {
    int t = a;
    a = b;
    b = t;
  }
  if (syscall(SYS_close_range, (unsigned)b + 1, ~0u, 0u) != 0) { /* kernels before 5.9 */
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
      if (fd != a && fd != b) close(fd);
    return;
  }
  for (int fd = 3; fd < b; fd++)
    if (fd != a) close(fd);
}

/* The keeper: new session, no network, a PID namespace if possible, then the command as its
 * pid 1 (or itself, without a PID namespace). Never returns. */
static void keeper(const char *cmd, const hs_verify_opts *o, const char *dir, int out, int notes) {
  close_others(out, notes);
  setsid();
  if (!o->allow_network && unshare(CLONE_NEWNET) != 0)
    note(notes, "no network namespace (the command can reach the network); ");
  if (unshare(CLONE_NEWPID) != 0) {
    note(notes, "no PID namespace (processes the command leaves behind outside its process "
                "group survive it); ");
    become_command(cmd, o, dir, out, notes);
  }
  pid_t pid = fork();
  if (pid < 0) _exit(125);
  if (pid == 0) become_command(cmd, o, dir, out, notes);
  close(out);
  close(notes);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (WIFSIGNALED(status)) {
    signal(WTERMSIG(status), SIG_DFL);
    raise(WTERMSIG(status));
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 125);
}

/* Appends what fd has to *buf (keeping at most max bytes); 0 at end of file, 1 if more may come. */
static int drain(int fd, hs_verify_result *r, size_t max, size_t *cap) {
  char chunk[16384];
  ssize_t k = read(fd, chunk, sizeof chunk);
  if (k < 0) return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (k == 0) return 0;
  size_t keep = r->output_len < max ? max - r->output_len : 0;
  if ((size_t)k > keep) r->truncated = true;
  if (keep > (size_t)k) keep = (size_t)k;
  if (keep) {
    if (r->output_len + keep + 1 > *cap) {
      size_t nc = (r->output_len + keep + 1) * 2;
      char *p = hs_realloc(r->output, nc);
      if (!p) {
        r->truncated = true;
        return 1;
      }
      r->output = p;
      *cap = nc;
    }
    memcpy(r->output + r->output_len, chunk, keep);
    r->output_len += keep;
  }
  return 1;
}

static char *read_notes(int fd) {
  char buf[1024];
  size_t n = 0;
  ssize_t k;
  while (n < sizeof buf - 1 && (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
  while (n && (buf[n - 1] == ' ' || buf[n - 1] == ';')) n--;
  buf[n] = 0;
  /* the notes of the keeper and of the command's process may repeat: keep them as written */
  char *s = hs_malloc(n + 1);
  if (s) memcpy(s, buf, n + 1);
  return s;
}

static int run_sandboxed(const char *cmd, const hs_verify_opts *o, const char *dir,
                         hs_verify_result *r) {
  int out[2], notes[2];
  if (pipe2(out, O_CLOEXEC) != 0) return fail(HS_EIO, "verify: pipe: %s", strerror(errno));
  if (pipe2(notes, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return fail(HS_EIO, "verify: pipe: %s", strerror(errno));
  }
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) {
    close(out[0]), close(out[1]), close(notes[0]), close(notes[1]);
    return fail(HS_EIO, "verify: fork: %s", strerror(errno));
  }
  if (pid == 0) {
    close(out[0]);
    close(notes[0]);
    keeper(cmd, o, dir, out[1], notes[1]);
  }
  close(out[1]);
  close(notes[1]);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  size_t cap = 0;
  double deadline = t0 + o->time_limit_s, hard_end = 0;
  for (;;) {
    double t = now_s();
    if (!r->timed_out && !r->cancelled && o->cancel &&
        __atomic_load_n(o->cancel, __ATOMIC_ACQUIRE)) {
      r->cancelled = true;
      deadline = t;
    }
    if (!r->timed_out && t >= deadline) {
      r->timed_out = true;
      kill(-pid, SIGKILL); /* the keeper's process group: with a PID namespace, everything */
      kill(pid, SIGKILL);
      hard_end = t + 1.0;
    }
    if (r->timed_out && t >= hard_end) break; /* something escaped and holds the pipe */
    double wait = (r->timed_out ? hard_end : deadline) - t;
    if (o->cancel && wait > 0.05) wait = 0.05;
    struct pollfd p = {out[0], POLLIN, 0};
    int k = poll(&p, 1, wait > 0 ? (int)(wait * 1000) + 1 : 0);
    if (k > 0 && !drain(out[0], r, o->max_output, &cap)) break;
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  kill(-pid, SIGKILL); /* stragglers of the group, if any */
  r->seconds = now_s() - t0;
  r->sandbox = read_notes(notes[0]);
  close(notes[0]);
  if (!r->output) r->output = hs_calloc(1, 1);
  if (!r->output || !r->sandbox) return fail(HS_ENOMEM, "verify: out of memory");
  r->output[r->output_len] = 0;
  if (WIFSIGNALED(status)) {
    r->exit_code = -1;
    r->signal = WTERMSIG(status);
  } else {
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  if (r->cancelled) r->timed_out = false; /* it was killed for the cancel, not the clock */
  r->passed = !r->timed_out && !r->cancelled && r->exit_code == 0;
  return 0;
}

int hs_verify_command(const char *cmd, const hs_verify_opts *o, hs_verify_result *r) {
  if (!r) return fail(HS_EINVAL, "verify: no result");
  memset(r, 0, sizeof *r);
  hs_verify_opts d;
  if (!o) {
    hs_verify_opts_init(&d);
    o = &d;
  }
  if (!cmd || !*cmd) return fail(HS_EINVAL, "verify: no command");
  if (!(o->time_limit_s > 0)) return fail(HS_EINVAL, "verify: time_limit_s must be > 0");
  const char *tmp = getenv("TMPDIR");
  char root[4096], work[4200];
  snprintf(root, sizeof root, "%s/hswarm-verify-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(root)) return fail(HS_EIO, "verify: cannot create a directory in %s: %s",
                                  tmp && *tmp ? tmp : "/tmp", strerror(errno));
  snprintf(work, sizeof work, "%s/work", root);
  int rc = mkdir(work, 0755) == 0 ? 0 : fail(HS_EIO, "verify: mkdir: %s", strerror(errno));
  if (!rc && o->workdir) {
    struct stat st;
    if (stat(o->workdir, &st) != 0 || !S_ISDIR(st.st_mode))
      rc = fail(HS_ENOENT, "verify: workdir %s is not a directory", o->workdir);
    else if (hs_worktree_copy(o->workdir, work,
                                  o->link_copies ? HS_WORKTREE_LINK_FOR_NOBODY : HS_WORKTREE_COPY,
                                  NULL) != 0)
      rc = fail(HS_EIO, "verify: copying %s failed: %s", o->workdir, hs_worktree_last_error());
  }
  for (size_t i = 0; !rc && i < o->n_files; i++) rc = write_file(work, &o->files[i]);
  if (!rc && geteuid() == 0 && (chown(root, NOBODY, NOBODY) != 0 || chown(work, NOBODY, NOBODY)))
    rc = fail(HS_EIO, "verify: cannot give the copy to nobody: %s", strerror(errno));
  if (!rc) rc = run_sandboxed(cmd, o, work, r);
  remove_tree(root);
  if (rc) hs_verify_result_free(r);
  return rc;
}
