/* code_kb.c: the knowledge-base commands (hswarm/kb.h): `hswarm index [DIR]` (incremental, with
 * a progress line and a summary), `hswarm sym NAME`, `hswarm callers NAME`, `hswarm callees
 * NAME` (--depth N: transitive). Each finds the repository containing the current directory (or
 * --repo DIR) and its index (or --index DIR); --json on each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "hswarm/engine.h"
#include "hswarm/gguf.h"
#include "hswarm/kb.h"
#include "hswarm/tokenizer.h"

typedef struct kb_args {
  const char *repo, *index, *name, *model, *task;
  int json, rebuild;
  uint64_t depth, limit, budget;
} kb_args;

static void kb_usage(FILE *f, const char *cmd) {
  if (!strcmp(cmd, "index"))
    fputs("usage: hswarm index [DIR] [--index DIR] [--rebuild] [--json]\n"
          "Indexes the repository containing DIR (default: the current directory): definitions\n"
          "and references of its C, Python, JavaScript and TypeScript files, in an index kept\n"
          "outside it (default: under ~/.cache/hswarm/index). Only changed files are parsed.\n"
          "  --rebuild   discard the index and build it again\n"
          "  -m MODEL    also embed every definition with MODEL (semantic search: search -m)\n",
          f);
  else if (!strcmp(cmd, "map"))
    fputs("usage: hswarm map [DIR] --task TEXT [--budget TOKENS] [-m MODEL] [--index DIR] "
          "[--json]\n"
          "The repo map of the repository containing DIR (default: the current directory): the\n"
          "signatures of its definitions ranked by PageRank over the reference graph,\n"
          "personalised towards what TEXT names, cut to TOKENS (default 1024) counted with\n"
          "MODEL's tokenizer (without -m: about 4 bytes per token).\n",
          f);
  else if (!strcmp(cmd, "slice"))
    fputs("usage: hswarm slice NAME [-m MODEL] [--repo DIR] [--index DIR] [--json]\n"
          "The function slice of NAME: its full text, then the signatures of what it calls and\n"
          "of what calls it; and its tokens against the whole files it draws on, counted with\n"
          "MODEL's tokenizer (without -m: about 4 bytes per token).\n",
          f);
  else if (!strcmp(cmd, "search"))
    fputs("usage: hswarm search QUERY [--limit N] [-m MODEL] [--repo DIR] [--index DIR] "
          "[--json]\n"
          "The definitions best matching QUERY's words (identifiers are split into words too)\n"
          "over names, signatures, doc comments and bodies: full text, ranked by BM25; with -m,\n"
          "merged with the definitions nearest to the query's embedding (index -m MODEL first).\n"
          "  --limit N   at most N results (1 to 1000; default 10)\n",
          f);
  else
    fprintf(f,
            "usage: hswarm %s NAME [--repo DIR] [--index DIR]%s [--json]\n"
            "NAME: a qualified name (Shape.area) or a plain one (area). Uses the index of the\n"
            "repository containing the current directory (or DIR); run `hswarm index` first.\n%s",
            cmd, strcmp(cmd, "sym") ? " [--depth N]" : "",
            strcmp(cmd, "sym") ? "  --depth N   follow the calls N levels (1 to 16; default 1)\n"
                               : "");
}

/* 0, or an exit code after a message. */
static int parse_args(const char *cmd, int argc, char **argv, kb_args *a) {
  *a = (kb_args){.depth = 1, .limit = 10, .budget = 1024};
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      kb_usage(stdout, cmd);
      return -1;
    } else if (!strcmp(s, "--json")) {
      a->json = 1;
    } else if (!strcmp(s, "--rebuild") && !strcmp(cmd, "index")) {
      a->rebuild = 1;
    } else if (!strcmp(s, "--repo") && i + 1 < argc) {
      a->repo = argv[++i];
    } else if (!strcmp(s, "--index") && i + 1 < argc) {
      a->index = argv[++i];
    } else if (!strcmp(s, "--depth") && i + 1 < argc && strcmp(cmd, "sym") && strcmp(cmd, "index")) {
      if (cli_parse_u64(argv[++i], 0, &a->depth) != 0 || a->depth < 1 || a->depth > 16) {
        fprintf(stderr, "hswarm %s: --depth must be 1 to 16\n", cmd);
        return EXIT_USAGE;
      }
    } else if (!strcmp(s, "--task") && i + 1 < argc && !strcmp(cmd, "map")) {
      a->task = argv[++i];
    } else if (!strcmp(s, "--budget") && i + 1 < argc && !strcmp(cmd, "map")) {
      if (cli_parse_u64(argv[++i], 0, &a->budget) != 0 || a->budget < 16 ||
          a->budget > 10000000) {
        fprintf(stderr, "hswarm map: --budget must be 16 to 10000000 tokens\n");
        return EXIT_USAGE;
      }
    } else if ((!strcmp(s, "-m") || !strcmp(s, "--model")) && i + 1 < argc &&
               (!strcmp(cmd, "slice") || !strcmp(cmd, "map") || !strcmp(cmd, "index") ||
                !strcmp(cmd, "search"))) {
      a->model = argv[++i];
    } else if (!strcmp(s, "--limit") && i + 1 < argc && !strcmp(cmd, "search")) {
      if (cli_parse_u64(argv[++i], 0, &a->limit) != 0 || a->limit < 1 || a->limit > 1000) {
        fprintf(stderr, "hswarm search: --limit must be 1 to 1000\n");
        return EXIT_USAGE;
      }
    } else if (s[0] == '-' && s[1]) {
      fprintf(stderr, "hswarm %s: unknown option '%s'\n", cmd, s);
      kb_usage(stderr, cmd);
      return EXIT_USAGE;
    } else if (!a->name) {
      a->name = s;
    } else {
      fprintf(stderr, "hswarm %s: unexpected argument '%s'\n", cmd, s);
      return EXIT_USAGE;
    }
  }
  if (strcmp(cmd, "index") != 0 && strcmp(cmd, "map") != 0 && !a->name) {
    fprintf(stderr, "hswarm %s: no %s given\n", cmd, strcmp(cmd, "search") ? "name" : "query");
    kb_usage(stderr, cmd);
    return EXIT_USAGE;
  }
  return 0;
}

/* Opens the index of the repository containing dir. NULL after a message. */
static hs_kb *open_kb(const char *cmd, const char *dir, const char *index, int create, int json) {
  char root[4096];
  if (hs_kb_find_root(dir ? dir : ".", root, sizeof root) != 0) {
    fprintf(stderr, "hswarm %s: %s\n", cmd, hs_kb_last_error());
    if (json) cli_json_error(cmd, hs_kb_last_error());
    return NULL;
  }
  hs_kb *kb;
  if (hs_kb_open(root, index, create, &kb) != 0) {
    fprintf(stderr, "hswarm %s: %s\n", cmd, hs_kb_last_error());
    if (json) cli_json_error(cmd, hs_kb_last_error());
    return NULL;
  }
  return kb;
}

/* The model of -m with its tokenizer, and a tag naming it (file name, size, width). NULL and
 * an exit code's message on failure. */
static hs_model *open_embedder(const char *cmd, const char *path, hs_tokenizer **tok, char *tag,
                               size_t cap, int json) {
  hs_model *m = NULL;
  if (cli_open_model(path, 0, true, &m, tok) != 0) {
    fprintf(stderr, "hswarm %s: %s\n", cmd, cli_last_failure());
    if (json) cli_json_error(cmd, cli_last_failure());
    return NULL;
  }
  struct stat st;
  const char *base = strrchr(path, '/');
  snprintf(tag, cap, "%s:%lld:%u", base ? base + 1 : path,
           stat(path, &st) == 0 ? (long long)st.st_size : -1LL, hs_model_get_params(m)->n_embd);
  return m;
}

static int show_progress;
static void progress(const hs_kb_index_stats *st, const char *path, uint64_t total, void *ud) {
  (void)path, (void)ud;
  if (!show_progress || (st->files % 64 != 0 && st->files != total)) return;
  int width = 30, done = total ? (int)(st->files * (uint64_t)width / total) : width;
  fprintf(stderr, "\r[%.*s%*s] %llu/%llu files, %llu parsed", done,
          "##############################", width - done, "", (unsigned long long)st->files,
          (unsigned long long)total, (unsigned long long)st->parsed);
  if (st->files == total) fputc('\n', stderr);
}

int cmd_index(int argc, char **argv) {
  kb_args a;
  int rc = parse_args("index", argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  hs_kb *kb = open_kb("index", a.name, a.index, a.rebuild ? 2 : 1, a.json);
  if (!kb) return EXIT_ERROR;
  show_progress = !a.json && isatty(2);
  hs_kb_index_opts o = {.progress = progress};
  hs_kb_index_stats st;
  if (hs_kb_index(kb, &o, &st) != 0) {
    fprintf(stderr, "hswarm index: %s\n", hs_kb_last_error());
    if (a.json) cli_json_error("index", hs_kb_last_error());
    hs_kb_close(kb);
    return EXIT_ERROR;
  }
  double lps = st.seconds > 0 ? (double)st.lines_parsed / st.seconds : 0;
  hs_kb_embed_stats es = {0};
  if (a.model) {
    hs_tokenizer *tok = NULL;
    char tag[512];
    hs_model *m = open_embedder("index", a.model, &tok, tag, sizeof tag, a.json);
    int erc = !m ? -1 : hs_kb_embed(kb, m, tok, tag, &es);
    if (m && erc) {
      fprintf(stderr, "hswarm index: %s\n", hs_kb_last_error());
      if (a.json) cli_json_error("index", hs_kb_last_error());
    }
    hs_tokenizer_destroy(tok);
    hs_model_close(m);
    if (erc) {
      hs_kb_close(kb);
      return EXIT_ERROR;
    }
  }
  if (a.json) {
    printf("{\"command\":\"index\",\"status\":\"ok\",\"vectors\":{\"embedded\":%llu,"
           "\"kept\":%llu,\"removed\":%llu,\"total\":%llu,\"seconds\":%.3f},\"root\":",
           (unsigned long long)es.embedded, (unsigned long long)es.kept,
           (unsigned long long)es.removed, (unsigned long long)es.vectors, es.seconds);
    cli_json_string(stdout, hs_kb_root(kb));
    printf(",\"index\":");
    cli_json_string(stdout, hs_kb_dir(kb));
    printf(",\"files\":%llu,\"parsed\":%llu,\"unchanged\":%llu,\"removed\":%llu,"
           "\"skipped_large\":%llu,\"skipped_binary\":%llu,\"unreadable\":%llu,"
           "\"with_syntax_errors\":%llu,\"definitions\":%llu,\"references\":%llu,"
           "\"lines_parsed\":%llu,\"seconds\":%.3f,\"lines_per_second\":%.0f}\n",
           (unsigned long long)st.files, (unsigned long long)st.parsed,
           (unsigned long long)st.unchanged, (unsigned long long)st.removed,
           (unsigned long long)st.skipped_large, (unsigned long long)st.skipped_binary,
           (unsigned long long)st.unreadable, (unsigned long long)st.with_errors,
           (unsigned long long)st.definitions, (unsigned long long)st.references,
           (unsigned long long)st.lines_parsed, st.seconds, lps);
  } else {
    printf("indexed %s into %s\n", hs_kb_root(kb), hs_kb_dir(kb));
    printf("%llu files: %llu parsed (%llu lines, %.0f lines/s), %llu unchanged, %llu removed\n",
           (unsigned long long)st.files, (unsigned long long)st.parsed,
           (unsigned long long)st.lines_parsed, lps, (unsigned long long)st.unchanged,
           (unsigned long long)st.removed);
    if (st.skipped_large || st.skipped_binary || st.unreadable || st.with_errors)
      printf("skipped: %llu too large, %llu binary, %llu unreadable; %llu with syntax errors "
             "(indexed for what parsed)\n",
             (unsigned long long)st.skipped_large, (unsigned long long)st.skipped_binary,
             (unsigned long long)st.unreadable, (unsigned long long)st.with_errors);
    printf("%llu definitions, %llu references in %.2f s\n", (unsigned long long)st.definitions,
           (unsigned long long)st.references, st.seconds);
    if (a.model)
      printf("vectors: %llu embedded, %llu kept, %llu removed: %llu in %.2f s\n",
             (unsigned long long)es.embedded, (unsigned long long)es.kept,
             (unsigned long long)es.removed, (unsigned long long)es.vectors, es.seconds);
  }
  hs_kb_close(kb);
  return 0;
}

static void json_sym(const hs_kb_sym *s) {
  printf("{\"kind\":");
  if ((int)s->kind >= 0)
    printf("\"%s\"", hs_def_kind_name(s->kind));
  else
    printf("\"file\"");
  printf(",\"name\":");
  cli_json_string(stdout, s->name);
  printf(",\"qname\":");
  cli_json_string(stdout, s->qname);
  printf(",\"path\":");
  cli_json_string(stdout, s->path);
  printf(",\"start_line\":%u,\"end_line\":%u,\"signature\":", s->start_line, s->end_line);
  cli_json_string(stdout, s->signature);
  printf(",\"doc\":");
  cli_json_string(stdout, s->doc);
  printf("}");
}

int cmd_sym(int argc, char **argv) {
  kb_args a;
  int rc = parse_args("sym", argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  hs_kb *kb = open_kb("sym", a.repo, a.index, 0, a.json);
  if (!kb) return EXIT_ERROR;
  hs_kb_syms *s;
  if (hs_kb_lookup(kb, a.name, &s) != 0) {
    fprintf(stderr, "hswarm sym: %s\n", hs_kb_last_error());
    if (a.json) cli_json_error("sym", hs_kb_last_error());
    hs_kb_close(kb);
    return EXIT_ERROR;
  }
  if (a.json) {
    printf("{\"command\":\"sym\",\"status\":\"ok\",\"name\":");
    cli_json_string(stdout, a.name);
    printf(",\"definitions\":[");
    for (size_t i = 0; i < s->n; i++) {
      printf("%s", i ? "," : "");
      json_sym(&s->items[i]);
    }
    printf("]}\n");
  } else {
    for (size_t i = 0; i < s->n; i++)
      printf("%s:%u-%u %s %s  %s\n", s->items[i].path, s->items[i].start_line,
             s->items[i].end_line, hs_def_kind_name(s->items[i].kind), s->items[i].qname,
             s->items[i].signature);
    if (!s->n) fprintf(stderr, "hswarm sym: no definition named %s\n", a.name);
  }
  rc = s->n ? 0 : EXIT_FAILED;
  hs_kb_syms_free(s);
  hs_kb_close(kb);
  return rc;
}

static int edges_cmd(const char *cmd, int forward, int argc, char **argv) {
  kb_args a;
  int rc = parse_args(cmd, argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  hs_kb *kb = open_kb(cmd, a.repo, a.index, 0, a.json);
  if (!kb) return EXIT_ERROR;
  hs_kb_edges *e;
  if (hs_kb_deps(kb, a.name, forward, (uint32_t)a.depth, &e) != 0) {
    fprintf(stderr, "hswarm %s: %s\n", cmd, hs_kb_last_error());
    if (a.json) cli_json_error(cmd, hs_kb_last_error());
    hs_kb_close(kb);
    return EXIT_ERROR;
  }
  if (a.json) {
    printf("{\"command\":\"%s\",\"status\":\"ok\",\"name\":", cmd);
    cli_json_string(stdout, a.name);
    printf(",\"depth\":%llu,\"edges\":[", (unsigned long long)a.depth);
    for (size_t i = 0; i < e->n; i++) {
      const hs_kb_edge *x = &e->items[i];
      printf("%s{\"depth\":%u,\"name\":", i ? "," : "", x->depth);
      cli_json_string(stdout, x->name);
      printf(",\"line\":%u,\"from\":", x->line);
      json_sym(&x->from);
      printf(",\"to\":");
      if (x->resolved)
        json_sym(&x->to);
      else
        printf("null");
      printf("}");
    }
    printf("]}\n");
  } else {
    for (size_t i = 0; i < e->n; i++) {
      const hs_kb_edge *x = &e->items[i];
      const char *from = x->from.id ? x->from.qname : "(file level)";
      if (forward)
        printf("%*s%s -> %s%s%s:%u\n", 2 * (int)(x->depth - 1), "", from, x->name,
               x->resolved ? " at " : " (not defined here), called at ",
               x->resolved ? x->to.path : x->from.path, x->resolved ? x->to.start_line : x->line);
      else
        printf("%*s%s:%u %s calls %s\n", 2 * (int)(x->depth - 1), "", x->from.path, x->line,
               from, x->name);
    }
    if (!e->n) fprintf(stderr, "hswarm %s: none for %s\n", cmd, a.name);
  }
  hs_kb_edges_free(e);
  hs_kb_close(kb);
  return 0;
}

int cmd_callers(int argc, char **argv) { return edges_cmd("callers", 0, argc, argv); }
int cmd_callees(int argc, char **argv) { return edges_cmd("callees", 1, argc, argv); }

int cmd_search(int argc, char **argv) {
  kb_args a;
  int rc = parse_args("search", argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  hs_kb *kb = open_kb("search", a.repo, a.index, 0, a.json);
  if (!kb) return EXIT_ERROR;
  hs_tokenizer *tok = NULL;
  hs_model *m = NULL;
  char tag[512];
  if (a.model && !(m = open_embedder("search", a.model, &tok, tag, sizeof tag, a.json))) {
    hs_kb_close(kb);
    return EXIT_ERROR;
  }
  hs_kb_hits *h;
  rc = m ? hs_kb_search_hybrid(kb, a.name, (size_t)a.limit, m, tok, tag, &h)
         : hs_kb_search(kb, a.name, (size_t)a.limit, &h);
  hs_tokenizer_destroy(tok);
  hs_model_close(m);
  if (rc != 0) {
    fprintf(stderr, "hswarm search: %s\n", hs_kb_last_error());
    if (a.json) cli_json_error("search", hs_kb_last_error());
    hs_kb_close(kb);
    return EXIT_ERROR;
  }
  if (a.json) {
    printf("{\"command\":\"search\",\"status\":\"ok\",\"query\":");
    cli_json_string(stdout, a.name);
    printf(",\"method\":");
    cli_json_string(stdout, h->method);
    printf(",\"semantic\":%s,\"hits\":[", a.model ? "true" : "false");
    for (size_t i = 0; i < h->n; i++) {
      printf("%s{\"score\":%.4f,\"definition\":", i ? "," : "", h->items[i].score);
      json_sym(&h->items[i].sym);
      printf("}");
    }
    printf("]}\n");
  } else {
    printf("search: %s%s\n", h->method,
           a.model ? "" : "; full text only (no semantic search without a model: -m)");
    for (size_t i = 0; i < h->n; i++) {
      const hs_kb_sym *s = &h->items[i].sym;
      printf("%7.3f %s:%u-%u %s %s  %s\n", h->items[i].score, s->path, s->start_line,
             s->end_line, hs_def_kind_name(s->kind), s->qname, s->signature);
    }
    if (!h->n) fprintf(stderr, "hswarm search: nothing matches %s\n", a.name);
  }
  rc = h->n ? 0 : EXIT_FAILED;
  hs_kb_hits_free(h);
  hs_kb_close(kb);
  return rc;
}

int cmd_slice(int argc, char **argv) {
  kb_args a;
  int rc = parse_args("slice", argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  hs_gguf *g = NULL;
  hs_tokenizer *tok = NULL;
  if (a.model && (hs_gguf_open(a.model, &g) != 0 || hs_tokenizer_load(g, &tok) != 0)) {
    const char *why = g ? hs_tokenizer_last_error() : hs_gguf_last_error();
    fprintf(stderr, "hswarm slice: %s: %s\n", a.model, why);
    if (a.json) cli_json_error("slice", why);
    hs_gguf_close(g);
    return EXIT_ERROR;
  }
  hs_kb *kb = open_kb("slice", a.repo, a.index, 0, a.json);
  hs_kb_slice *s = NULL;
  if (kb && hs_kb_slice_of(kb, a.name, tok, &s) != 0) {
    fprintf(stderr, "hswarm slice: %s\n", hs_kb_last_error());
    if (a.json) cli_json_error("slice", hs_kb_last_error());
  }
  rc = s ? 0 : EXIT_ERROR;
  if (s) {
    double saved = s->whole_tokens ? 100.0 * (1.0 - (double)s->slice_tokens /
                                                        (double)s->whole_tokens)
                                   : 0;
    if (a.json) {
      printf("{\"command\":\"slice\",\"status\":\"ok\",\"definition\":");
      json_sym(&s->target);
      printf(",\"text\":");
      cli_json_string_n(stdout, s->text, s->len);
      printf(",\"callees\":%zu,\"callers\":%zu,\"tokens\":%llu,\"whole_file_tokens\":%llu,"
             "\"files\":%zu,\"saved_percent\":%.1f,\"tokenizer\":\"%s\"}\n",
             s->n_callees, s->n_callers, (unsigned long long)s->slice_tokens,
             (unsigned long long)s->whole_tokens, s->n_files, saved,
             s->approximate ? "approximate (4 bytes per token)" : "model");
    } else {
      fwrite(s->text, 1, s->len, stdout);
      fprintf(stderr, "%llu tokens against %llu for the %zu whole file(s): %.1f%% saved%s\n",
              (unsigned long long)s->slice_tokens, (unsigned long long)s->whole_tokens,
              s->n_files, saved, s->approximate ? " (approximate counts: no -m)" : "");
    }
  }
  hs_kb_slice_free(s);
  hs_kb_close(kb);
  hs_tokenizer_destroy(tok);
  hs_gguf_close(g);
  return rc;
}

int cmd_map(int argc, char **argv) {
  kb_args a;
  int rc = parse_args("map", argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  hs_gguf *g = NULL;
  hs_tokenizer *tok = NULL;
  if (a.model && (hs_gguf_open(a.model, &g) != 0 || hs_tokenizer_load(g, &tok) != 0)) {
    const char *why = g ? hs_tokenizer_last_error() : hs_gguf_last_error();
    fprintf(stderr, "hswarm map: %s: %s\n", a.model, why);
    if (a.json) cli_json_error("map", why);
    hs_gguf_close(g);
    return EXIT_ERROR;
  }
  hs_kb *kb = open_kb("map", a.name ? a.name : a.repo, a.index, 0, a.json);
  hs_kb_map *m = NULL;
  if (kb && hs_kb_repo_map(kb, a.task, a.budget, tok, &m) != 0) {
    fprintf(stderr, "hswarm map: %s\n", hs_kb_last_error());
    if (a.json) cli_json_error("map", hs_kb_last_error());
  }
  if (m && a.json) {
    printf("{\"command\":\"map\",\"status\":\"ok\",\"task\":");
    cli_json_string(stdout, a.task);
    printf(",\"budget\":%llu,\"tokens\":%llu,\"files\":%zu,\"definitions\":%zu,"
           "\"graph\":{\"nodes\":%zu,\"edges\":%zu},\"personalized\":%zu,\"tokenizer\":\"%s\","
           "\"text\":",
           (unsigned long long)a.budget, (unsigned long long)m->tokens, m->files,
           m->definitions, m->nodes, m->edges, m->personalized,
           m->approximate ? "approximate (4 bytes per token)" : "model");
    cli_json_string_n(stdout, m->text, m->len);
    printf("}\n");
  } else if (m) {
    fwrite(m->text, 1, m->len, stdout);
    fprintf(stderr, "%zu definitions from %zu files, %llu of %llu tokens%s; %s\n",
            m->definitions, m->files, (unsigned long long)m->tokens,
            (unsigned long long)a.budget, m->approximate ? " (approximate counts: no -m)" : "",
            m->personalized ? "personalised towards the task"
                            : "not personalised (the task names nothing in the index)");
  }
  rc = m ? 0 : EXIT_ERROR;
  hs_kb_map_free(m);
  hs_kb_close(kb);
  hs_tokenizer_destroy(tok);
  hs_gguf_close(g);
  return rc;
}
