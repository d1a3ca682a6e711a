/* cmd_bench_copies.c: `hswarm bench copies DIR [--reps N] [--json]`: what a private copy of DIR
 * costs a command verifier: a hard-linked tree (hswarm/worktree.h, as `hswarm code` uses), a
 * full copy by the same walk, and `cp -a` (what the verifier did before), each made --reps times
 * into a fresh directory beside the system's temporary files and removed; medians reported. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hswarm/worktree.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int sh(const char *fmt, const char *a, const char *b) {
  char cmd[8400];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  return system(cmd);
}

/* One copy of src by method (0 linked tree, 1 full walk, 2 cp -a): its seconds, or -1. */
static double one_copy(const char *src, int method, hs_worktree_stats *st) {
  const char *tmp = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/hswarm-copies-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) return -1;
  double t0 = cli_seconds();
  int rc;
  if (method < 2)
    rc = hs_worktree_copy(src, dir, method == 0 ? HS_WORKTREE_LINK_FOR_NOBODY : HS_WORKTREE_COPY,
                          st);
  else
    rc = sh("cp -a -- '%s/.' '%s'", src, dir);
  double t = cli_seconds() - t0;
  if (rc) fprintf(stderr, "hswarm bench copies: %s\n",
                  method < 2 ? hs_worktree_last_error() : "cp -a failed");
  sh("rm -rf -- '%s'%s", dir, "");
  return rc ? -1 : t;
}

int cmd_bench_copies(int argc, char **argv) {
  const char *src = NULL;
  unsigned long reps = 5;
  int json = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = strtoul(argv[++i], NULL, 10);
    } else if (argv[i][0] != '-' && !src) {
      src = argv[i];
    } else {
      fprintf(stderr, "hswarm bench copies: unknown option '%s'\n", argv[i]);
      src = NULL;
      break;
    }
  }
  if (!src || reps < 1 || reps > 1000 || strchr(src, '\'')) {
    fputs("usage: hswarm bench copies DIR [--reps N] [--json]\n", stderr);
    return EXIT_USAGE;
  }
  static const char *const names[] = {"linked", "full", "cp_a"};
  double med[3];
  hs_worktree_stats st[2];
  for (int m = 0; m < 3; m++) {
    double *t = calloc(reps, sizeof *t);
    if (!t) return EXIT_ERROR;
    for (unsigned long r = 0; r < reps; r++) {
      if ((t[r] = one_copy(src, m, m < 2 ? &st[m] : NULL)) < 0) {
        free(t);
        return EXIT_ERROR;
      }
    }
    qsort(t, reps, sizeof *t, cmp_double);
    med[m] = t[reps / 2];
    free(t);
  }
  if (json) {
    printf("{\"command\":\"bench copies\",\"dir\":");
    cli_json_string(stdout, src);
    printf(",\"reps\":%lu,\"root\":%s,\"files\":%llu,\"dirs\":%llu,\"linked\":%llu,"
           "\"copied_when_linking\":%llu,\"bytes\":%llu",
           reps, geteuid() == 0 ? "true" : "false",
           (unsigned long long)(st[1].copied + st[1].linked), (unsigned long long)st[1].dirs,
           (unsigned long long)st[0].linked, (unsigned long long)st[0].copied,
           (unsigned long long)st[1].bytes_copied);
    for (int m = 0; m < 3; m++) printf(",\"%s_seconds\":%.6f", names[m], med[m]);
    printf(",\"cp_a_over_linked\":%.2f}\n", med[0] > 0 ? med[2] / med[0] : 0.0);
  } else {
    printf("%s: %llu files, %llu directories, %.1f MB (%s)\n", src,
           (unsigned long long)(st[1].copied + st[1].linked), (unsigned long long)st[1].dirs,
           st[1].bytes_copied / 1e6, geteuid() == 0 ? "root: links allowed" :
           "not root: the linked tree copies every file");
    printf("linked tree   %8.3f s  (%llu linked, %llu copied)\n", med[0],
           (unsigned long long)st[0].linked, (unsigned long long)st[0].copied);
    printf("full copy     %8.3f s\n", med[1]);
    printf("cp -a         %8.3f s  (%.1fx the linked tree)\n", med[2],
           med[0] > 0 ? med[2] / med[0] : 0.0);
    printf("medians of %lu runs each\n", reps);
  }
  return 0;
}
