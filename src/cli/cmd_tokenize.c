/* cmd_tokenize.c: `hswarm tokenize -m FILE TEXT` and `hswarm detokenize -m FILE IDS...`: the
 * model's tokenizer from the command line. Only the file's metadata is read (no weights are
 * bound), so these work on any GGUF file with a tokenizer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"

#define TOK_USAGE                                                                                \
  "usage: hswarm tokenize -m FILE [--ids] [--special] [--no-bos] [--json] (-f TEXTFILE | [--] TEXT)\n" \
  "  prints one token per line (id, then its text); --ids: only the ids, on one line\n"         \
  "  --special: special-token texts in TEXT become their tokens; --no-bos: no BOS token\n"     \
  "  -f TEXTFILE: the text is the file's contents (- for standard input)\n"
#define DETOK_USAGE                                                                              \
  "usage: hswarm detokenize -m FILE ID... [--special] [--keep-space-prefix] [--json]\n"         \
  "  prints the text of the token ids; --special: control tokens as their text\n"              \
  "  --keep-space-prefix: keep the space a SentencePiece vocabulary adds in front of a text\n"  \
  "  (by default it is removed, so that detokenize gives back what tokenize was given)\n"

/* 0, or -1 after cli_fail. */
static int open_tokenizer(const char *path, hs_gguf **g, hs_tokenizer **t) {
  if (hs_gguf_open(path, g)) {
    cli_fail("%s", hs_gguf_last_error());
    return -1;
  }
  if (hs_tokenizer_load(*g, t)) {
    cli_fail("%s: %s", path, hs_tokenizer_last_error());
    hs_gguf_close(*g);
    *g = NULL;
    return -1;
  }
  return 0;
}

/* Prints a token's text with control characters escaped, between quotes. */
static void print_piece(const char *s, size_t n) {
  putchar('\'');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') fputs("\\n", stdout);
    else if (c == '\t') fputs("\\t", stdout);
    else if (c == '\\') fputs("\\\\", stdout);
    else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
    else putchar(c);
  }
  putchar('\'');
}

/* After cli_fail: the --json answer, and the exit status. */
static int failed(bool json, const char *command) {
  if (json) cli_json_error(command, cli_last_failure());
  return EXIT_ERROR;
}

int cmd_tokenize(int argc, char **argv) {
  const char *model = NULL, *text = NULL, *text_file = NULL;
  bool ids_only = false, special = false, no_bos = false, json = false, after_dashes = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (after_dashes && !text) {
      text = a;
      continue;
    }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(TOK_USAGE, stdout);
      return 0;
    }
    if (!strcmp(a, "--") && !text) after_dashes = true; /* the text follows, even "-x" */
    else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) model = argv[++i];
    else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && i + 1 < argc) text_file = argv[++i];
    else if (!strcmp(a, "--ids")) ids_only = true;
    else if (!strcmp(a, "--special")) special = true;
    else if (!strcmp(a, "--no-bos")) no_bos = true;
    else if (!strcmp(a, "--json")) json = true;
    else if (a[0] == '-' && a[1] && !text) {
      fprintf(stderr, "hswarm tokenize: unknown option '%s'\n%s", a, TOK_USAGE);
      return EXIT_USAGE;
    } else if (!text) text = a;
    else {
      fprintf(stderr, "hswarm tokenize: give the text as one argument\n%s", TOK_USAGE);
      return EXIT_USAGE;
    }
  }
  if (!model || !text == !text_file) {
    fputs(TOK_USAGE, stderr);
    return EXIT_USAGE;
  }
  char *file_text = NULL;
  if (text_file) {
    size_t len;
    if (!(file_text = cli_read_file(text_file, &len))) return failed(json, "tokenize");
    text = file_text;
  }
  hs_gguf *g = NULL;
  hs_tokenizer *t = NULL;
  if (open_tokenizer(model, &g, &t)) {
    hs_free(file_text);
    return failed(json, "tokenize");
  }
  int32_t *ids = NULL;
  size_t n = 0;
  unsigned flags = (no_bos ? 0 : HS_TOKENIZE_ADD_BOS) | (special ? HS_TOKENIZE_PARSE_SPECIAL : 0);
  int status = 0;
  if (cli_tokenize(t, text, flags, &ids, &n)) {
    status = failed(json, "tokenize");
  } else if (json) {
    printf("{\"command\":\"tokenize\",\"status\":\"ok\",\"ids\":[");
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
    printf("],\"pieces\":[");
    for (size_t i = 0; i < n; i++) {
      const char *s;
      size_t len;
      hs_tokenizer_token_bytes(t, ids[i], HS_DETOK_SPECIAL, &s, &len);
      if (i) putchar(',');
      cli_json_string_n(stdout, s, len);
    }
    printf("]}\n");
  } else if (ids_only) {
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
  } else {
    for (size_t i = 0; i < n; i++) {
      const char *s;
      size_t len;
      hs_tokenizer_token_bytes(t, ids[i], HS_DETOK_SPECIAL, &s, &len);
      printf("%6d ", ids[i]);
      print_piece(s, len);
      putchar('\n');
    }
  }
  hs_free(ids);
  hs_free(file_text);
  hs_tokenizer_destroy(t);
  hs_gguf_close(g);
  return status;
}

int cmd_detokenize(int argc, char **argv) {
  const char *model = NULL;
  bool special = false, json = false, keep_space = false;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(argc > 0 ? argc : 1));
  size_t n = 0;
  if (!ids) return EXIT_ERROR;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(DETOK_USAGE, stdout);
      free(ids);
      return 0;
    }
    if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) model = argv[++i];
    else if (!strcmp(a, "--special")) special = true;
    else if (!strcmp(a, "--keep-space-prefix")) keep_space = true;
    else if (!strcmp(a, "--json")) json = true;
    else {
      char *end;
      errno = 0;
      long v = strtol(a, &end, 10);
      if (!*a || *end || errno || v < 0 || v > INT32_MAX) {
        fprintf(stderr, "hswarm detokenize: '%s' is not a token id\n%s", a, DETOK_USAGE);
        free(ids);
        return EXIT_USAGE;
      }
      ids[n++] = (int32_t)v;
    }
  }
  if (!model) {
    fputs(DETOK_USAGE, stderr);
    free(ids);
    return EXIT_USAGE;
  }
  hs_gguf *g = NULL;
  hs_tokenizer *t = NULL;
  if (open_tokenizer(model, &g, &t)) {
    free(ids);
    return failed(json, "detokenize");
  }
  unsigned flags = (special ? HS_DETOK_SPECIAL : 0) | (keep_space ? 0 : HS_DETOK_STRIP_LEADING_SPACE);
  size_t need = 0;
  int status = 0;
  int rc = hs_tokenizer_decode(t, ids, n, flags, NULL, 0, &need);
  char *out = NULL;
  if (rc == 0 || rc == HS_ENOSPC) {
    out = malloc(need + 1);
    rc = out ? hs_tokenizer_decode(t, ids, n, flags, out, need + 1, &need) : HS_ENOMEM;
  }
  if (rc) {
    cli_fail("detokenize: %s", rc == HS_ENOMEM && !out ? "out of memory" : hs_tokenizer_last_error());
    status = failed(json, "detokenize");
  } else if (json) {
    printf("{\"command\":\"detokenize\",\"status\":\"ok\",\"text\":");
    cli_json_string_n(stdout, out, need);
    printf("}\n");
  } else {
    fwrite(out, 1, need, stdout);
    putchar('\n');
  }
  free(out);
  free(ids);
  hs_tokenizer_destroy(t);
  hs_gguf_close(g);
  return status;
}
