/* bench_tokenizer.c: speed of vocabulary training, encoding and decoding (hswarm/tokenizer.h).
 *
 *   bench_tokenizer --corpus PATH --text PATH [--kind bpe|spm] [--pre NAME] [--n-vocab N]
 *                   [--reps R] [--json]
 *
 * A vocabulary of N tokens (default 32000, BPE llama-bpe) is trained from PATH (a file or a
 * directory, read with hs_vocab_read_corpus), written to memory and loaded; then the text at
 * --text (also read with hs_vocab_read_corpus) is encoded and decoded R times (default 5), and the
 * median times are reported with throughput in MB/s of input text. Timings are wall clock on one
 * thread. With --json, exactly one JSON object goes to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"
#include "hswarm/tokenizer.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int usage(void) {
  fprintf(stderr, "usage: bench_tokenizer --corpus PATH --text PATH [--kind bpe|spm] [--pre NAME] "
                  "[--n-vocab N] [--reps R] [--json]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *corpus_path = NULL, *text_path = NULL, *pre = NULL;
  hs_tokenizer_kind kind = HS_TOKENIZER_BPE;
  unsigned long n_vocab = 32000;
  int reps = 5, json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--json")) json = 1;
    else if (i + 1 >= argc) return usage();
    else if (!strcmp(a, "--corpus")) corpus_path = argv[++i];
    else if (!strcmp(a, "--text")) text_path = argv[++i];
    else if (!strcmp(a, "--pre")) pre = argv[++i];
    else if (!strcmp(a, "--n-vocab")) n_vocab = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(a, "--reps")) reps = atoi(argv[++i]);
    else if (!strcmp(a, "--kind")) {
      const char *k = argv[++i];
      if (!strcmp(k, "bpe")) kind = HS_TOKENIZER_BPE;
      else if (!strcmp(k, "spm")) kind = HS_TOKENIZER_SPM;
      else return usage();
    } else return usage();
  }
  if (!corpus_path || !text_path || reps < 1 || reps > 101) return usage();
  char *corpus, *text;
  size_t corpus_len, text_len;
  if (hs_vocab_read_corpus(corpus_path, &corpus, &corpus_len) ||
      hs_vocab_read_corpus(text_path, &text, &text_len)) {
    fprintf(stderr, "bench_tokenizer: %s\n", hs_tokenizer_last_error());
    return 1;
  }
  hs_gguf_writer *w;
  if (hs_gguf_writer_create(&w)) return 1;
  hs_vocab_train_opts o = {kind, (uint32_t)n_vocab, pre};
  hs_vocab_train_result r;
  double t0 = now_s();
  if (hs_vocab_train(corpus, corpus_len, &o, w, &r)) {
    fprintf(stderr, "bench_tokenizer: %s\n", hs_tokenizer_last_error());
    return 1;
  }
  double train_s = now_s() - t0;
  void *buf;
  size_t size;
  hs_gguf *g;
  hs_tokenizer *t;
  if (hs_gguf_writer_write_mem(w, &buf, &size) || hs_gguf_open_mem(buf, size, "bench", &g)) return 1;
  t0 = now_s();
  if (hs_tokenizer_load(g, &t)) {
    fprintf(stderr, "bench_tokenizer: %s\n", hs_tokenizer_last_error());
    return 1;
  }
  double load_s = now_s() - t0;
  size_t cap = text_len + 16, n = 0, dn = 0;
  int32_t *ids = malloc(cap * sizeof *ids);
  char *out = malloc(text_len * 2 + 16);
  double enc[101], dec[101];
  for (int i = 0; i < reps; i++) {
    t0 = now_s();
    if (hs_tokenizer_encode(t, text, text_len, 0, ids, cap, &n)) {
      fprintf(stderr, "bench_tokenizer: %s\n", hs_tokenizer_last_error());
      return 1;
    }
    enc[i] = now_s() - t0;
    t0 = now_s();
    if (hs_tokenizer_decode(t, ids, n, HS_DETOK_STRIP_LEADING_SPACE, out, text_len * 2 + 16, &dn))
      return 1;
    dec[i] = now_s() - t0;
  }
  double enc_s = median(enc, reps), dec_s = median(dec, reps);
  int round_trip = dn == text_len && memcmp(out, text, text_len) == 0;
  double mb = (double)text_len / 1e6;
  if (json) {
    printf("{\"kind\":\"%s\",\"pre\":\"%s\",\"n_vocab\":%lu,\"corpus_bytes\":%zu,"
           "\"train_s\":%.4f,\"n_learned\":%u,\"n_padded\":%u,\"load_s\":%.4f,"
           "\"text_bytes\":%zu,\"tokens\":%zu,\"bytes_per_token\":%.3f,\"encode_s\":%.4f,"
           "\"encode_mb_s\":%.2f,\"decode_s\":%.4f,\"decode_mb_s\":%.2f,\"round_trip\":%s}\n",
           kind == HS_TOKENIZER_BPE ? "bpe" : "spm", hs_tokenizer_pre_name(t), n_vocab,
           corpus_len, train_s, r.n_learned, r.n_padded, load_s, text_len, n,
           (double)text_len / (double)(n ? n : 1), enc_s, mb / enc_s, dec_s, mb / dec_s,
           round_trip ? "true" : "false");
  } else {
    printf("vocabulary: %s %s, %lu tokens (%u learned, %u padded) from %.2f MB in %.3f s; "
           "load %.3f s\n",
           kind == HS_TOKENIZER_BPE ? "BPE" : "SPM", hs_tokenizer_pre_name(t), n_vocab,
           r.n_learned, r.n_padded, (double)corpus_len / 1e6, train_s, load_s);
    printf("encode: %.2f MB -> %zu tokens (%.2f bytes/token) in %.4f s = %.2f MB/s (median of %d)\n",
           mb, n, (double)text_len / (double)(n ? n : 1), enc_s, mb / enc_s, reps);
    printf("decode: %.4f s = %.2f MB/s; round trip %s\n", dec_s, mb / dec_s,
           round_trip ? "exact" : "DIFFERS");
  }
  free(ids);
  free(out);
  hs_tokenizer_destroy(t);
  hs_gguf_close(g);
  hs_free(buf);
  hs_gguf_writer_destroy(w);
  hs_free(corpus);
  hs_free(text);
  return round_trip || kind == HS_TOKENIZER_SPM ? 0 : 1;
}
