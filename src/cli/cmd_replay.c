/* cmd_replay.c: `hswarm replay LOG`: re-executes a logged run and reports whether it is identical,
 * or the first divergence (record number, agent, what differed). Exit status: 0 identical,
 * 1 diverged, 2 bad command line, 3 unreadable or corrupt log. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "hswarm/runtime.h"

int cmd_replay(int argc, char **argv) {
  const char *path = NULL;
  int json = 0, quiet = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--verbose"))
      quiet = 0;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      puts("usage: hswarm replay LOG [--json] [--verbose]\n"
           "  re-executes the run recorded in LOG (its scripts, seed and settings) without a\n"
           "  model and checks every event against the log; --verbose shows agents' log lines");
      return 0;
    } else if (argv[i][0] == '-' || path) {
      fprintf(stderr, "hswarm replay: unexpected argument '%s'\n", argv[i]);
      return EXIT_USAGE;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    fprintf(stderr, "usage: hswarm replay LOG [--json] [--verbose]\n");
    return EXIT_USAGE;
  }
  hs_replay_result res;
  double t0 = cli_seconds();
  int rc = hs_runtime_replay(path, quiet, &res);
  double wall = cli_seconds() - t0;
  if (rc != 0) {
    if (json) cli_json_error("replay", hs_runtime_replay_error());
    fprintf(stderr, "hswarm replay: %s\n", hs_runtime_replay_error());
    return EXIT_ERROR;
  }
  if (json) {
    printf("{\"command\":\"replay\",\"log\":");
    cli_json_string(stdout, path);
    printf(",\"status\":\"%s\",\"records\":%llu,\"wall_seconds\":%.6f,\"script_changed\":%s",
           res.identical ? "identical" : "diverged", (unsigned long long)res.records, wall,
           res.script_changed ? "true" : "false");
    if (!res.identical) {
      printf(",\"divergence\":{\"record\":%llu,\"agent\":%u,\"expected\":",
             (unsigned long long)res.record, res.agent);
      cli_json_string(stdout, res.expected);
      printf(",\"actual\":");
      cli_json_string(stdout, res.actual);
      printf("}");
    }
    printf("}\n");
  } else if (res.identical) {
    printf("replay identical: %llu records checked in %.3f s\n", (unsigned long long)res.records,
           wall);
  } else {
    printf("replay diverged at record %llu (agent %u)\n  log:    %s\n  replay: %s\n",
           (unsigned long long)res.record, res.agent, res.expected, res.actual);
    if (res.script_changed) printf("  note: the main script changed since the run was logged\n");
  }
  return res.identical ? 0 : EXIT_FAILED;
}
