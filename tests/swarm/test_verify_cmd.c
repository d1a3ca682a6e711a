/* test_verify_cmd.c: command verifiers (src/swarm/verify_cmd.c, hswarm/verify.h): the command
 * sees a private copy of the directory with the candidate's files written over it and cannot
 * change the original; exit status and output come back; the limits hold: wall time, a command
 * that forks forever, one that leaves processes behind, an output flood, memory; no network
 * where the system allows it (the result says so where it does not); bad paths are refused; a
 * command is killed when its cancel flag is set. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/error.h"
#include "hswarm/verify.h"

static char dir[256];

static void write_text(const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/hs_verify_test_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  write_text("a.txt", "hello\n");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static hs_verify_result run(const char *cmd, hs_verify_opts *o) {
  hs_verify_result r;
  int rc = hs_verify_command(cmd, o, &r);
  if (rc) fail_msg("%s: %s", cmd, hs_verify_last_error());
  print_message("%-40.40s exit %d signal %d timed out %d truncated %d %.2f s [%s] %.60s\n", cmd,
                r.exit_code, r.signal, r.timed_out, r.truncated, r.seconds, r.sandbox, r.output);
  return r;
}

static void test_private_copy(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  o.workdir = dir;
  hs_verify_file f = {"sub/dir/b.txt", "candidate", 9};
  o.files = &f;
  o.n_files = 1;
  hs_verify_result r = run("cat a.txt sub/dir/b.txt && echo changed > a.txt && cat a.txt", &o);
  assert_true(r.passed);
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(r.output, "hello\ncandidatechanged\n");
  hs_verify_result_free(&r);
  /* the original is untouched and got no b.txt */
  char p[512];
  snprintf(p, sizeof p, "%s/sub", dir);
  assert_int_not_equal(access(p, F_OK), 0);
  FILE *fa = fopen(strcat(strcpy(p, dir), "/a.txt"), "r");
  char line[32] = "";
  assert_non_null(fgets(line, sizeof line, fa));
  fclose(fa);
  assert_string_equal(line, "hello\n");
}

static char *read_original(const char *name, char *buf, size_t cap) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  buf[0] = 0;
  if (!fgets(buf, (int)cap, f)) buf[0] = 0;
  fclose(f);
  return buf;
}

/* Hard-linked copies (link_copies): the candidate's file replaces a linked one without touching
 * the original; the command cannot write into a linked file (as root: it runs as nobody and the
 * file is root's) but may replace its name; either way the originals keep their text. */
static void test_linked_copy(void **state) {
  (void)state;
  write_text("c.txt", "original c\n");
  write_text("d.txt", "original d\n");
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  o.workdir = dir;
  o.link_copies = true;
  hs_verify_file f = {"c.txt", "candidate c\n", 12};
  o.files = &f;
  o.n_files = 1;
  hs_verify_result r = run("cat c.txt; (echo written > a.txt) 2>/dev/null; "
                           "rm -f d.txt && echo replaced > d.txt && cat d.txt", &o);
  assert_true(r.passed);
  assert_string_equal(r.output, "candidate c\nreplaced\n");
  hs_verify_result_free(&r);
  char buf[64];
  assert_string_equal(read_original("a.txt", buf, sizeof buf), "hello\n");
  assert_string_equal(read_original("c.txt", buf, sizeof buf), "original c\n");
  assert_string_equal(read_original("d.txt", buf, sizeof buf), "original d\n");
  if (geteuid() == 0) { /* linked, and read-only to nobody */
    r = run("echo written > a.txt", &o);
    assert_false(r.passed);
    assert_non_null(strstr(r.output, "Permission denied"));
    hs_verify_result_free(&r);
  }
  /* a symbolic link in the way of a candidate's path is refused, not followed */
  char p[512], q[512];
  snprintf(p, sizeof p, "%s/out", dir);
  snprintf(q, sizeof q, "%s/elsewhere", dir);
  assert_int_equal(mkdir(q, 0755), 0);
  assert_int_equal(symlink(q, p), 0);
  hs_verify_file g = {"out/x.txt", "x", 1};
  o.files = &g;
  hs_verify_result r2;
  assert_int_not_equal(hs_verify_command("true", &o, &r2), 0);
  assert_non_null(strstr(hs_verify_last_error(), "in the way"));
  snprintf(q, sizeof q, "%s/elsewhere/x.txt", dir);
  assert_int_not_equal(access(q, F_OK), 0);
  unlink(p);
  snprintf(q, sizeof q, "%s/elsewhere", dir);
  rmdir(q);
  snprintf(p, sizeof p, "%s/c.txt", dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/d.txt", dir);
  unlink(p);
}

static void test_failure_and_output(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  hs_verify_result r = run("echo out; echo err >&2; exit 3", &o);
  assert_false(r.passed);
  assert_int_equal(r.exit_code, 3);
  assert_false(r.timed_out);
  assert_non_null(strstr(r.output, "out\n"));
  assert_non_null(strstr(r.output, "err\n"));
  hs_verify_result_free(&r);
}

static void test_time_limit(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  o.time_limit_s = 0.5;
  hs_verify_result r = run("echo start; sleep 30", &o);
  assert_true(r.timed_out);
  assert_false(r.passed);
  assert_true(r.seconds < 3.0);
  assert_string_equal(r.output, "start\n");
  hs_verify_result_free(&r);
}

static int cancel_flag;
static void *cancel_later(void *arg) {
  (void)arg;
  usleep(300 * 1000);
  __atomic_store_n(&cancel_flag, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* Another thread cancels a running command: it is killed long before its time limit. */
static void test_cancel(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  o.time_limit_s = 30;
  o.cancel = &cancel_flag;
  cancel_flag = 0;
  pthread_t t;
  pthread_create(&t, NULL, cancel_later, NULL);
  hs_verify_result r = run("echo start; sleep 60", &o);
  pthread_join(t, NULL);
  assert_true(r.cancelled);
  assert_false(r.timed_out);
  assert_false(r.passed);
  assert_true(r.seconds < 20.0);
  assert_string_equal(r.output, "start\n");
  hs_verify_result_free(&r);
  /* an untouched flag changes nothing */
  cancel_flag = 0;
  r = run("echo fine", &o);
  assert_true(r.passed);
  assert_false(r.cancelled);
  hs_verify_result_free(&r);
}

static void test_fork_forever(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  o.time_limit_s = 1.0;
  o.max_processes = 64;
  hs_verify_result r = run("f() { f | f & }; f; sleep 30", &o);
  assert_false(r.passed);
  assert_true(r.seconds < 4.0);
  hs_verify_result_free(&r);
  /* nothing is left running: the next command runs and ends at once */
  r = run("echo next", &o);
  assert_true(r.passed);
  hs_verify_result_free(&r);
}

static void test_leftover_processes(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  o.time_limit_s = 3.0;
  /* a background process keeps the output open: with a PID namespace it dies with the command;
   * without one, the wall-time limit ends it */
  hs_verify_result r = run("(sleep 30 &); echo started", &o);
  assert_string_equal(r.output, "started\n");
  if (strstr(r.sandbox, "no PID namespace")) {
    assert_true(r.seconds < 6.0);
  } else {
    assert_true(r.passed);
    assert_true(r.seconds < 2.0);
  }
  hs_verify_result_free(&r);
}

static void test_output_flood(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  o.max_output = 1000;
  hs_verify_result r = run("head -c 20000000 /dev/zero | tr '\\0' y", &o);
  assert_true(r.passed);
  assert_true(r.truncated);
  assert_int_equal(r.output_len, 1000);
  assert_int_equal(strlen(r.output), 1000);
  hs_verify_result_free(&r);
}

static void test_memory_limit(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  o.memory_bytes = 64ull << 20;
  o.time_limit_s = 20;
  /* a string doubling forever: awk fails to allocate well before the time limit */
  hs_verify_result r = run("awk 'BEGIN { s = \"x\"; while (1) s = s s }'", &o);
  assert_false(r.passed);
  assert_false(r.timed_out);
  hs_verify_result_free(&r);
}

static void test_no_network(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  hs_verify_result r = run("cat /proc/net/dev", &o);
  assert_true(r.passed);
  if (strstr(r.sandbox, "no network namespace")) {
    print_message("the network is not isolated here: %s\n", r.sandbox);
  } else {
    /* only the loopback interface: two header lines and "lo" */
    int lines = 0;
    for (const char *p = r.output; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 3);
    assert_non_null(strstr(r.output, "lo:"));
  }
  hs_verify_result_free(&r);
}

static void test_bad_input(void **state) {
  (void)state;
  hs_verify_opts o;
  hs_verify_opts_init(&o);
  hs_verify_file f = {"../escape.txt", "x", 1};
  o.files = &f;
  o.n_files = 1;
  hs_verify_result r;
  assert_int_equal(hs_verify_command("true", &o, &r), HS_EINVAL);
  assert_non_null(strstr(hs_verify_last_error(), "../escape.txt"));
  assert_null(r.output);
  f.path = "/etc/passwd";
  assert_int_equal(hs_verify_command("true", &o, &r), HS_EINVAL);
  o.n_files = 0;
  o.workdir = "/nonexistent/dir";
  assert_int_equal(hs_verify_command("true", &o, &r), HS_ENOENT);
  assert_int_equal(hs_verify_command("", NULL, &r), HS_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_private_copy),     cmocka_unit_test(test_linked_copy),     cmocka_unit_test(test_failure_and_output),
      cmocka_unit_test(test_time_limit),       cmocka_unit_test(test_fork_forever),
      cmocka_unit_test(test_leftover_processes), cmocka_unit_test(test_output_flood),
      cmocka_unit_test(test_memory_limit),     cmocka_unit_test(test_no_network),
      cmocka_unit_test(test_bad_input),        cmocka_unit_test(test_cancel),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
