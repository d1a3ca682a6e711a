/* cmd_perplexity.c: `hswarm perplexity -m MODEL -f TEXT`: how well a model predicts a text, by
 * llama.cpp's `llama-perplexity` protocol, so that the two figures can be compared directly.
 *
 * The text is tokenized as a prompt (BOS first when the vocabulary adds one) and cut into chunks
 * of --ctx tokens (the tail that does not fill a chunk is dropped; --chunks N keeps the first N).
 * Each chunk runs in a fresh sequence, its first token replaced by BOS when the vocabulary adds
 * one. Only the second half of each chunk is scored: for positions j in [ctx/2, ctx - 1) the
 * negative log-probability, under the logits at j, of the token at j + 1. The perplexity is
 * exp(mean of those), and its standard error is estimated as llama.cpp does (from the mean and
 * the mean square of the negative log-probabilities). Uses only the public API. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "hswarm/alloc.h"
#include "hswarm/engine.h"
#include "hswarm/error.h"

#define USAGE                                                                                  \
  "usage: hswarm perplexity -m FILE|NAME -f TEXT [--ctx N] [--chunks N] [--threads N] [--json]\n"

#define HELP                                                                                   \
  "\nThe perplexity of a model on a text, as llama.cpp's llama-perplexity measures it: chunks\n" \
  "of --ctx tokens (default 512), each from an empty context and starting with BOS where the\n" \
  "vocabulary adds one; the second half of each chunk is scored.\n"                              \
  "  -f, --file TEXT   the text (- for standard input)\n"                                     \
  "  --ctx N           tokens per chunk (default 512; at least 4)\n"                          \
  "  --chunks N        score only the first N chunks (default: every whole chunk)\n"         \
  "  --threads N       threads (default: all cores)\n"                                        \
  "  --json            one JSON object (fields in docs/json.md)\n"

/* log of the softmax of row[tok], in double: max, then the sum of exponentials. */
static double log_prob(const float *row, size_t n, int32_t tok) {
  float mx = row[0];
  for (size_t i = 1; i < n; i++) mx = row[i] > mx ? row[i] : mx;
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += exp((double)row[i] - mx);
  return (double)row[tok] - mx - log(sum);
}

int cmd_perplexity(int argc, char **argv) {
  const char *model = NULL, *file = NULL;
  uint64_t ctx = 512, chunks = 0, threads = 0;
  bool json = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const bool has = i + 1 < argc;
    if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) model = argv[++i];
    else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has) file = argv[++i];
    else if (!strcmp(a, "--ctx") && has) {
      if (cli_parse_u64(argv[++i], 0, &ctx) || ctx < 4 || ctx > (1u << 20)) {
        fprintf(stderr, "hswarm perplexity: --ctx needs a number of tokens from 4, got '%s'\n", argv[i]);
        return EXIT_USAGE;
      }
    } else if (!strcmp(a, "--chunks") && has) {
      if (cli_parse_u64(argv[++i], 0, &chunks) || chunks == 0) {
        fprintf(stderr, "hswarm perplexity: --chunks needs a positive number, got '%s'\n", argv[i]);
        return EXIT_USAGE;
      }
    } else if (!strcmp(a, "--threads") && has) {
      if (cli_parse_u64(argv[++i], 0, &threads) || threads > 1024) {
        fprintf(stderr, "hswarm perplexity: bad --threads '%s'\n", argv[i]);
        return EXIT_USAGE;
      }
    } else if (!strcmp(a, "--json")) json = true;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(USAGE HELP, stdout);
      return 0;
    } else {
      fprintf(stderr, "hswarm perplexity: unknown or incomplete argument '%s'\n" USAGE, a);
      return EXIT_USAGE;
    }
  }
  if (!model || !file) {
    fprintf(stderr, "hswarm perplexity: -m MODEL and -f TEXT are needed\n" USAGE);
    return EXIT_USAGE;
  }
  hs_model *m = NULL;
  hs_tokenizer *tk = NULL;
  char *text = NULL;
  int32_t *ids = NULL;
  float *logits = NULL;
  hs_batch_item *items = NULL;
  hs_seq *seq = NULL;
  int status = EXIT_ERROR;
  size_t len, n_ids;
  double t0 = cli_seconds();
  if (!(text = cli_read_file(file, &len))) goto out;
  if (cli_open_model(model, (unsigned)threads, false, &m, &tk)) goto out;
  if (cli_tokenize(tk, text, HS_TOKENIZE_ADD_BOS, &ids, &n_ids)) goto out;
  const size_t nv = hs_model_get_params(m)->n_vocab, n_ctx = (size_t)ctx, first = n_ctx / 2;
  size_t n_chunks = n_ids / n_ctx;
  if (n_chunks == 0) {
    cli_fail("%s gives %zu tokens, less than one chunk of %zu", file, n_ids, n_ctx);
    goto out;
  }
  if (chunks && chunks < n_chunks) n_chunks = (size_t)chunks;
  const bool add_bos = hs_tokenizer_get_add_bos(tk);
  const size_t n_scored = n_ctx - 1 - first;
  logits = hs_malloc(n_scored * nv * sizeof *logits);
  items = hs_malloc(n_ctx * sizeof *items);
  if (!logits || !items) {
    cli_fail("out of memory for %zu logits", n_scored * nv);
    goto out;
  }
  double nll = 0, nll2 = 0;
  size_t count = 0;
  for (size_t c = 0; c < n_chunks; c++) {
    if (hs_seq_create(m, (uint32_t)n_ctx, &seq)) {
      cli_fail("%s", hs_engine_last_error());
      goto out;
    }
    const int32_t *tok = ids + c * n_ctx;
    for (size_t j = 0; j < n_ctx; j++)
      items[j] = (hs_batch_item){seq, j == 0 && add_bos ? hs_tokenizer_bos(tk) : tok[j],
                                 j >= first && j < n_ctx - 1};
    if (hs_model_forward(m, items, n_ctx, logits, NULL)) {
      cli_fail("chunk %zu: %s", c, hs_engine_last_error());
      goto out;
    }
    double chunk_nll = 0;
    for (size_t k = 0; k < n_scored; k++) {
      double v = -log_prob(logits + k * nv, nv, tok[first + k + 1]);
      chunk_nll += v;
      nll2 += v * v;
    }
    nll += chunk_nll;
    count += n_scored;
    hs_seq_destroy(seq);
    seq = NULL;
    if (!json)
      fprintf(stderr, "chunk %zu of %zu: perplexity so far %.4f\n", c + 1, n_chunks,
              exp(nll / (double)count));
  }
  const double mean = nll / (double)count, mean2 = nll2 / (double)count;
  const double ppl = exp(mean);
  const double err = count > 1 ? ppl * sqrt((mean2 - mean * mean) / (double)(count - 1)) : 0;
  const double secs = cli_seconds() - t0;
  if (json)
    printf("{\"command\":\"perplexity\",\"status\":\"ok\",\"n_tokens\":%zu,\"n_ctx\":%zu,"
           "\"n_chunks\":%zu,\"n_scored\":%zu,\"perplexity\":%.6f,\"stderr\":%.6f,"
           "\"mean_nll\":%.8f,\"seconds\":%.3f}\n",
           n_ids, n_ctx, n_chunks, count, ppl, err, mean, secs);
  else
    printf("perplexity %.4f +/- %.4f over %zu chunks of %zu tokens (%zu tokens scored, %zu in "
           "the text), %.1f s\n",
           ppl, err, n_chunks, n_ctx, count, n_ids, secs);
  status = 0;
out:
  if (status && json) cli_json_error("perplexity", cli_last_failure());
  hs_seq_destroy(seq);
  hs_free(items);
  hs_free(logits);
  hs_free(ids);
  hs_free(text);
  hs_tokenizer_destroy(tk);
  hs_model_close(m);
  return status;
}
