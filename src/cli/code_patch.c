/* code_patch.c: `hswarm patch apply FILE`: a function-level patch (hswarm/patch.h) applied to the
 * files under a root directory; prints the unified diff, writes the files unless --dry-run, and
 * writes nothing at all when any operation fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "hswarm/alloc.h"
#include "hswarm/patch.h"

static void patch_usage(FILE *f) {
  fputs("usage: hswarm patch apply FILE [--root DIR] [--file PATH] [--dry-run] [--json]\n"
        "Applies the function-level patch in FILE (\"-\": standard input) to the files under DIR\n"
        "(default: the current directory) and prints the unified diff. Nothing is written when\n"
        "any operation fails (a missing or ambiguous definition, a conflict, a syntax error).\n"
        "  --file PATH   the file of operations that name none (\"@@ replace f\" without \"in\")\n"
        "  --dry-run     print the diff, write nothing\n"
        "  --json        one JSON object: applied, written, files, diff, errors\n"
        "Format: \"@@ replace NAME [in PATH]\", \"@@ add after NAME [in PATH]\" (each followed by\n"
        "the complete definition), \"@@ delete NAME [in PATH]\", \"@@ end\".\n",
        f);
}

static void print_json(const hs_patch_result *r, int written, const char *error) {
  printf("{\"command\":\"patch apply\",\"status\":\"%s\",\"applied\":%s,\"written\":%s,"
         "\"files\":[",
         r && r->ok && !error ? "ok" : "failed", r && r->ok ? "true" : "false",
         written ? "true" : "false");
  for (size_t i = 0; r && i < r->n_files; i++) {
    printf("%s", i ? "," : "");
    cli_json_string(stdout, r->files[i].path);
  }
  printf("],\"diff\":");
  cli_json_string(stdout, r && r->diff ? r->diff : "");
  printf(",\"errors\":[");
  size_t n = 0;
  for (size_t i = 0; r && i < r->n_errors; i++, n++) {
    printf("%s", n ? "," : "");
    cli_json_string(stdout, r->errors[i]);
  }
  if (error) {
    printf("%s", n ? "," : "");
    cli_json_string(stdout, error);
  }
  printf("]}\n");
}

int cmd_patch(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    patch_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  if (strcmp(argv[1], "apply") != 0) {
    fprintf(stderr, "hswarm patch: unknown subcommand '%s'\n", argv[1]);
    patch_usage(stderr);
    return EXIT_USAGE;
  }
  const char *file = NULL, *root = ".", *default_path = NULL;
  int dry = 0, json = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--dry-run")) {
      dry = 1;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--root") && i + 1 < argc) {
      root = argv[++i];
    } else if (!strcmp(a, "--file") && i + 1 < argc) {
      default_path = argv[++i];
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      patch_usage(stdout);
      return 0;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "hswarm patch apply: unknown option '%s'\n", a);
      patch_usage(stderr);
      return EXIT_USAGE;
    } else if (!file) {
      file = a;
    } else {
      fprintf(stderr, "hswarm patch apply: one patch file at a time\n");
      return EXIT_USAGE;
    }
  }
  if (!file) {
    fprintf(stderr, "hswarm patch apply: no patch file given\n");
    patch_usage(stderr);
    return EXIT_USAGE;
  }
  size_t len;
  char *text = cli_read_file(file, &len);
  if (!text) {
    fprintf(stderr, "hswarm patch apply: cannot read %s\n", cli_last_failure());
    if (json) print_json(NULL, 0, "cannot read the patch file");
    return EXIT_ERROR;
  }
  hs_patch *p;
  if (hs_patch_parse(text, len, &p) != 0) {
    fprintf(stderr, "hswarm patch apply: %s: %s\n", file, hs_patch_last_error());
    if (json) print_json(NULL, 0, hs_patch_last_error());
    hs_free(text);
    return EXIT_FAILED;
  }
  hs_free(text);
  hs_patch_result *r;
  if (hs_patch_apply(p, root, default_path, &r) != 0) {
    fprintf(stderr, "hswarm patch apply: %s\n", hs_patch_last_error());
    if (json) print_json(NULL, 0, hs_patch_last_error());
    hs_patch_free(p);
    return EXIT_ERROR;
  }
  hs_patch_free(p);
  int written = 0, rc = 0;
  const char *werr = NULL;
  if (r->ok && !dry) {
    if (hs_patch_write(r, root) == 0)
      written = 1;
    else
      werr = hs_patch_last_error(), rc = EXIT_ERROR;
  }
  if (json) {
    print_json(r, written, werr);
  } else {
    fputs(r->diff, stdout);
    for (size_t i = 0; i < r->n_errors; i++)
      fprintf(stderr, "hswarm patch apply: %s\n", r->errors[i]);
    if (werr) fprintf(stderr, "hswarm patch apply: %s\n", werr);
    if (!r->ok) fprintf(stderr, "hswarm patch apply: nothing written\n");
  }
  if (!r->ok) rc = EXIT_FAILED;
  hs_patch_result_free(r);
  return rc;
}
