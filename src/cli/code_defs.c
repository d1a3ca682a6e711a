/* code_defs.c: `hswarm defs FILE...`: what the code-intelligence layer sees in source files
 * (hswarm/code.h): each definition with its kind, qualified name, lines and signature, and with
 * --refs the references; --json for tools and tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "hswarm/alloc.h"
#include "hswarm/code.h"

static void defs_usage(FILE *f) {
  fputs("usage: hswarm defs FILE... [--lang NAME] [--refs] [--json]\n"
        "Parses each file (language by extension, or --lang c|python|javascript|typescript|tsx)\n"
        "and prints its definitions: lines, kind, qualified name, signature.\n"
        "  --refs   also print the references (calls, types, imports, includes)\n"
        "  --json   one JSON object: files[] with definitions[] and references[]\n",
        f);
}

static void print_json(const char *path, const hs_parsed *p, int refs, int first) {
  printf("%s{\"path\":", first ? "" : ",");
  cli_json_string(stdout, path);
  printf(",\"lang\":\"%s\",\"errors\":%u,\"first_error\":{\"line\":%u,\"column\":%u},"
         "\"definitions\":[",
         hs_lang_name(p->lang), p->n_errors, p->first_error_line, p->first_error_column);
  for (size_t i = 0; i < p->n_defs; i++) {
    const hs_def *d = &p->defs[i];
    printf("%s{\"kind\":\"%s\",\"name\":", i ? "," : "", hs_def_kind_name(d->kind));
    cli_json_string(stdout, d->name);
    printf(",\"qname\":");
    cli_json_string(stdout, d->qname);
    printf(",\"start_line\":%u,\"end_line\":%u,\"start_byte\":%u,\"end_byte\":%u,\"parent\":%d,"
           "\"signature\":",
           d->start_line, d->end_line, d->start_byte, d->end_byte, (int)d->parent);
    cli_json_string(stdout, d->signature);
    printf(",\"doc\":");
    cli_json_string(stdout, d->doc);
    printf(",\"hash\":\"%016llx\"}", (unsigned long long)d->hash);
  }
  printf("]");
  if (refs) {
    printf(",\"references\":[");
    for (size_t i = 0; i < p->n_refs; i++) {
      const hs_ref *r = &p->refs[i];
      printf("%s{\"kind\":\"%s\",\"name\":", i ? "," : "", hs_ref_kind_name(r->kind));
      cli_json_string(stdout, r->name);
      printf(",\"line\":%u,\"in\":", r->line);
      if (r->def >= 0)
        cli_json_string(stdout, p->defs[r->def].qname);
      else
        printf("null");
      printf("}");
    }
    printf("]");
  }
  printf("}");
}

static void print_text(const char *path, const hs_parsed *p, int refs) {
  if (p->n_errors)
    printf("%s: %u syntax error(s), the first at line %u column %u\n", path, p->n_errors,
           p->first_error_line, p->first_error_column);
  for (size_t i = 0; i < p->n_defs; i++) {
    const hs_def *d = &p->defs[i];
    printf("%s:%u-%u %s %s  %s\n", path, d->start_line, d->end_line, hs_def_kind_name(d->kind),
           d->qname, d->signature);
  }
  for (size_t i = 0; refs && i < p->n_refs; i++) {
    const hs_ref *r = &p->refs[i];
    printf("%s:%u %s %s (in %s)\n", path, r->line, hs_ref_kind_name(r->kind), r->name,
           r->def >= 0 ? p->defs[r->def].qname : "file");
  }
}

int cmd_defs(int argc, char **argv) {
  int json = 0, refs = 0;
  hs_lang forced = HS_LANG_UNKNOWN;
  char **files = hs_calloc((size_t)argc + 1, sizeof *files);
  int nfiles = 0;
  if (!files) return EXIT_ERROR;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      defs_usage(stdout);
      hs_free(files);
      return 0;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--refs")) {
      refs = 1;
    } else if (!strcmp(a, "--lang") && i + 1 < argc) {
      forced = hs_lang_from_name(argv[++i]);
      if (forced == HS_LANG_UNKNOWN) {
        fprintf(stderr, "hswarm defs: unknown language '%s'\n", argv[i]);
        defs_usage(stderr);
        hs_free(files);
        return EXIT_USAGE;
      }
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "hswarm defs: unknown option '%s'\n", a);
      defs_usage(stderr);
      hs_free(files);
      return EXIT_USAGE;
    } else {
      files[nfiles++] = argv[i];
    }
  }
  if (!nfiles) {
    fprintf(stderr, "hswarm defs: no file given\n");
    defs_usage(stderr);
    hs_free(files);
    return EXIT_USAGE;
  }
  int failed = 0, printed = 0;
  if (json) printf("{\"command\":\"defs\",\"files\":[");
  for (int i = 0; i < nfiles; i++) {
    hs_lang lang = forced ? forced : hs_lang_of_path(files[i]);
    if (lang == HS_LANG_UNKNOWN) {
      fprintf(stderr, "hswarm defs: %s: unknown language (use --lang)\n", files[i]);
      failed++;
      continue;
    }
    size_t len;
    char *text = cli_read_file(files[i], &len);
    if (!text) {
      fprintf(stderr, "hswarm defs: %s\n", cli_last_failure());
      failed++;
      continue;
    }
    hs_parsed *p;
    if (hs_code_parse(lang, text, len, &p) != 0) {
      fprintf(stderr, "hswarm defs: %s: %s\n", files[i], hs_code_last_error());
      failed++;
    } else {
      if (json)
        print_json(files[i], p, refs, !printed);
      else
        print_text(files[i], p, refs);
      printed++;
      hs_parsed_free(p);
    }
    hs_free(text);
  }
  if (json) printf("],\"failed\":%d,\"status\":\"%s\"}\n", failed, failed ? "error" : "ok");
  hs_free(files);
  return failed ? EXIT_ERROR : 0;
}
