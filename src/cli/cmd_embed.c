/* cmd_embed.c: `hswarm embed -m FILE TEXT [--pooling mean|last] [--json]`: the embedding of a
 * text (hs_embed: the final normed hidden states pooled over its tokens, unit length), printed
 * as one line of numbers, or as a JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define USAGE                                                                                    \
  "usage: hswarm embed -m FILE TEXT [--pooling mean|last] [--no-bos] [--threads N] [--mmap]\n"  \
  "                    [--json]\n"                                                              \
  "  prints the unit-length embedding of TEXT: the model's final hidden states averaged over\n" \
  "  its tokens (mean, the default) or taken at its last token\n"

int cmd_embed(int argc, char **argv) {
  const char *model = NULL, *text = NULL;
  hs_pooling pooling = HS_POOLING_MEAN;
  bool json = false, no_bos = false, use_mmap = false;
  uint64_t threads = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(USAGE, stdout);
      return 0;
    }
    if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
      model = argv[++i];
    } else if (!strcmp(a, "--pooling") && has) {
      const char *v = argv[++i];
      if (!strcmp(v, "mean")) pooling = HS_POOLING_MEAN;
      else if (!strcmp(v, "last")) pooling = HS_POOLING_LAST;
      else {
        fprintf(stderr, "hswarm embed: unknown pooling '%s' (mean or last)\n%s", v, USAGE);
        return EXIT_USAGE;
      }
    } else if (!strcmp(a, "--threads") && has) {
      if (cli_parse_u64(argv[++i], 0, &threads) || threads > 1024) {
        fprintf(stderr, "hswarm embed: bad --threads\n%s", USAGE);
        return EXIT_USAGE;
      }
    } else if (!strcmp(a, "--no-bos")) {
      no_bos = true;
    } else if (!strcmp(a, "--mmap")) {
      use_mmap = true;
    } else if (!strcmp(a, "--json")) {
      json = true;
    } else if (a[0] != '-' && !text) {
      text = a;
    } else {
      fprintf(stderr, "hswarm embed: unknown or extra argument '%s'\n%s", a, USAGE);
      return EXIT_USAGE;
    }
  }
  if (!model || !text) {
    fputs(USAGE, stderr);
    return EXIT_USAGE;
  }
  hs_model *m = NULL;
  hs_tokenizer *t = NULL;
  int32_t *ids = NULL;
  size_t n = 0;
  float *v = NULL;
  int status = EXIT_ERROR;
  if (cli_open_model(model, (unsigned)threads, use_mmap, &m, &t)) goto done;
  if (cli_tokenize(t, text, no_bos ? 0 : HS_TOKENIZE_ADD_BOS, &ids, &n)) goto done;
  const uint32_t d = hs_model_get_params(m)->n_embd;
  if (!(v = hs_malloc(sizeof(float) * d))) {
    cli_fail("embed: out of memory");
    goto done;
  }
  if (hs_embed(m, ids, n, pooling, v)) {
    cli_fail("embed: %s", hs_generate_last_error());
    goto done;
  }
  if (json) {
    printf("{\"command\":\"embed\",\"status\":\"ok\",\"pooling\":\"%s\",\"tokens\":%zu,"
           "\"dimensions\":%u,\"embedding\":[",
           pooling == HS_POOLING_MEAN ? "mean" : "last", n, d);
    for (uint32_t j = 0; j < d; j++) printf("%s%.9g", j ? "," : "", (double)v[j]);
    printf("]}\n");
  } else {
    for (uint32_t j = 0; j < d; j++) printf("%s%.9g", j ? " " : "", (double)v[j]);
    printf("\n");
  }
  status = 0;
done:
  if (status && json) cli_json_error("embed", cli_last_failure());
  hs_free(v);
  hs_free(ids);
  hs_tokenizer_destroy(t);
  hs_model_close(m);
  return status;
}
