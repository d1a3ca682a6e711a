/* test_vocab_train.c: vocabulary training and corpus reading (src/engine/vocab_train.c,
 * src/engine/vocab_corpus.c).
 *
 * Merges worked out by hand on tiny corpora (frequency order, ties to the lower pair of ids,
 * SPM scores that make SentencePiece replay them), the exact vocabulary size with padding
 * reported and named as documented, determinism byte for byte, compression of held-out text,
 * Llama-3-sized vocabularies, pieces that must never be learned because SentencePiece would join
 * them into a special token, option errors, out-of-memory on every allocation, and the corpus
 * reader's walk (sorted, hidden and binary files skipped, newlines between files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"
#include "hswarm/tokenizer.h"

#include "support/counting_alloc.h"

static char *corpus;
static size_t corpus_len;

static int group_setup(void **state) {
  hs_alloc_set_hooks(&counting_hooks);
  if (make_tmpdir("hs_vtrain")) return -1;
  const char *d = getenv("HS_TEST_DATA");
  if (!d) return -1;
  char path[1024];
  snprintf(path, sizeof path, "%s/tokenizer/train", d);
  if (hs_vocab_read_corpus(path, &corpus, &corpus_len)) {
    fprintf(stderr, "%s\n", hs_tokenizer_last_error());
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  hs_free(corpus);
  return remove_tmpdir_and_hooks();
}

/* Trains into a new GGUF in memory. */
static void train_mem(const char *text, size_t len, hs_tokenizer_kind kind, const char *pre,
                      uint32_t n_vocab, hs_vocab_train_result *res, void **buf, size_t *size) {
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  hs_vocab_train_opts o = {kind, n_vocab, pre};
  int rc = hs_vocab_train(text, len, &o, w, res);
  if (rc) fail_msg("training: %s", hs_tokenizer_last_error());
  assert_int_equal(hs_gguf_writer_write_mem(w, buf, size), 0);
  hs_gguf_writer_destroy(w);
}

static hs_tokenizer *train(const char *text, size_t len, hs_tokenizer_kind kind, const char *pre,
                           uint32_t n_vocab, hs_vocab_train_result *res) {
  void *buf;
  size_t size;
  train_mem(text, len, kind, pre, n_vocab, res, &buf, &size);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, "trained", &g), 0);
  hs_tokenizer *t;
  if (hs_tokenizer_load(g, &t)) fail_msg("load: %s", hs_tokenizer_last_error());
  hs_gguf_close(g);
  hs_free(buf);
  return t;
}

static void expect_text(const hs_tokenizer *t, int32_t id, const char *want) {
  const char *s;
  size_t n;
  assert_int_equal(hs_tokenizer_token_text(t, id, &s, &n), 0);
  if (n != strlen(want) || memcmp(s, want, n) != 0)
    fail_msg("token %d is '%.*s', expected '%s'", id, (int)n, s, want);
}

static size_t count_tokens(const hs_tokenizer *t, const char *s, size_t n, unsigned flags) {
  size_t k = 0;
  int rc = hs_tokenizer_encode(t, s, n, flags, NULL, 0, &k);
  assert_true(rc == 0 || rc == HS_ENOSPC);
  return k;
}

/* ---- merges by hand ---- */

static void test_bpe_merges_by_hand(void **state) {
  /* pre-tokens (llama-bpe): "ab", " ab" x4, " cd" x3; pairs: ab 5, Ġa 4, Ġc 3, cd 3 */
  static const char text[] = "ab ab ab ab ab cd cd cd";
  hs_vocab_train_result r;
  hs_tokenizer *t = train(text, sizeof text - 1, HS_TOKENIZER_BPE, NULL, 300, &r);
  /* 1: ab (5). 2: Ġ+ab (4). 3: Ġc and cd tie at 3; 'c' (66) < 'Ġ' (220) in GPT-2's byte order,
   * so cd first. 4: Ġ+cd (3). Then no pair is seen twice. */
  assert_int_equal(r.n_learned, 4);
  assert_int_equal(r.n_merges, 4);
  assert_int_equal(r.n_padded, 300 - 256 - 7 - 4);
  expect_text(t, 0, "!");
  expect_text(t, 66, "c");
  expect_text(t, 220, "\xc4\xa0");
  expect_text(t, 256, "ab");
  expect_text(t, 257, "\xc4\xa0" "ab");
  expect_text(t, 258, "cd");
  expect_text(t, 259, "\xc4\xa0" "cd");
  expect_text(t, 260, "<|begin_of_text|>");
  expect_text(t, 264, "<|eot_id|>");
  expect_text(t, 266, "<|im_end|>");
  expect_text(t, 267, "<|reserved_special_token_0|>");
  expect_text(t, 299, "<|reserved_special_token_32|>");
  assert_int_equal(hs_tokenizer_bos(t), 260);
  assert_int_equal(hs_tokenizer_eos(t), 261);
  assert_int_equal(hs_tokenizer_eot(t), 264);
  assert_int_equal(hs_tokenizer_token_type(t, 259), HS_TOKEN_NORMAL);
  assert_int_equal(hs_tokenizer_token_type(t, 260), HS_TOKEN_CONTROL);
  assert_int_equal(hs_tokenizer_token_type(t, 299), HS_TOKEN_CONTROL);
  assert_string_equal(hs_tokenizer_pre_name(t), "llama-bpe");
  int32_t ids[8];
  size_t n;
  assert_int_equal(hs_tokenizer_encode(t, "ab cd", 5, HS_TOKENIZE_ADD_BOS, ids, 8, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(ids[0], 260);
  assert_int_equal(ids[1], 256);
  assert_int_equal(ids[2], 259);
  hs_tokenizer_destroy(t);
}

static void test_spm_merges_by_hand(void **state) {
  /* "▁ab" x5, "▁cd" x3; characters: ▁ first, then a, b (5), c, d (3) */
  static const char text[] = "ab ab ab ab ab cd cd cd";
  hs_vocab_train_result r;
  hs_tokenizer *t = train(text, sizeof text - 1, HS_TOKENIZER_SPM, NULL, 300, &r);
  /* ▁a and ab tie at 5: (▁, a) has the lower ids; then ▁a+b; then ▁c and cd tie at 3 */
  assert_int_equal(r.n_learned, 4 + 5);
  assert_int_equal(r.n_padded, 300 - 259 - 9);
  assert_int_equal(r.n_merges, 0);
  expect_text(t, 0, "<unk>");
  expect_text(t, 1, "<s>");
  expect_text(t, 2, "</s>");
  expect_text(t, 3, "<0x00>");
  expect_text(t, 258, "<0xFF>");
  expect_text(t, 259, "\xe2\x96\x81" "a");
  expect_text(t, 260, "\xe2\x96\x81" "ab");
  expect_text(t, 261, "\xe2\x96\x81" "c");
  expect_text(t, 262, "\xe2\x96\x81" "cd");
  expect_text(t, 263, "\xe2\x96\x81");
  expect_text(t, 264, "a");
  expect_text(t, 267, "d");
  expect_text(t, 268, "<unused_0>");
  expect_text(t, 299, "<unused_31>");
  assert_int_equal(hs_tokenizer_token_type(t, 0), HS_TOKEN_UNKNOWN);
  assert_int_equal(hs_tokenizer_token_type(t, 1), HS_TOKEN_CONTROL);
  assert_int_equal(hs_tokenizer_token_type(t, 3), HS_TOKEN_BYTE);
  assert_int_equal(hs_tokenizer_token_type(t, 262), HS_TOKEN_NORMAL);
  assert_int_equal(hs_tokenizer_token_type(t, 299), HS_TOKEN_UNUSED);
  int32_t ids[8];
  size_t n;
  /* SentencePiece's best-score-first replays the merges: ▁ab ▁cd */
  assert_int_equal(hs_tokenizer_encode(t, "ab cd", 5, HS_TOKENIZE_ADD_BOS, ids, 8, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(ids[0], 1);
  assert_int_equal(ids[1], 260);
  assert_int_equal(ids[2], 262);
  /* "x" is no piece: byte fallback; a tab is never a piece */
  assert_int_equal(hs_tokenizer_encode(t, "x\t", 2, 0, ids, 8, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(ids[0], 263);
  assert_int_equal(ids[1], 3 + 'x');
  assert_int_equal(ids[2], 3 + '\t');
  hs_tokenizer_destroy(t);
}

/* ---- size, padding, determinism ---- */

static void check_size(hs_tokenizer_kind kind, const char *pre, uint32_t n_vocab) {
  hs_vocab_train_result r;
  void *buf;
  size_t size;
  train_mem(corpus, corpus_len, kind, pre, n_vocab, &r, &buf, &size);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, "t", &g), 0);
  hs_gguf_value_type et;
  uint64_t count;
  assert_int_equal(hs_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &count), 0);
  assert_int_equal(count, n_vocab);
  assert_int_equal(hs_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &count), 0);
  assert_int_equal(count, n_vocab);
  uint32_t fixed = kind == HS_TOKENIZER_BPE ? 256 + 7 : 259;
  assert_int_equal(fixed + r.n_learned + r.n_padded, n_vocab);
  if (kind == HS_TOKENIZER_BPE) {
    assert_int_equal(hs_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &count), 0);
    assert_int_equal(count, r.n_merges);
    assert_true(r.n_merges >= r.n_learned);
  } else {
    assert_int_equal(hs_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &count), 0);
    assert_int_equal(count, n_vocab);
  }
  hs_tokenizer *t;
  assert_int_equal(hs_tokenizer_load(g, &t), 0);
  assert_int_equal(hs_tokenizer_n_vocab(t), n_vocab);
  if (r.n_padded) {
    char want[64];
    if (kind == HS_TOKENIZER_BPE)
      snprintf(want, sizeof want, "<|reserved_special_token_%u|>", r.n_padded - 1);
    else
      snprintf(want, sizeof want, "<unused_%u>", r.n_padded - 1);
    expect_text(t, (int32_t)n_vocab - 1, want);
    assert_int_equal(hs_tokenizer_token_type(t, (int32_t)n_vocab - 1),
                     kind == HS_TOKENIZER_BPE ? HS_TOKEN_CONTROL : HS_TOKEN_UNUSED);
  }
  /* the training corpus round-trips */
  size_t n = count_tokens(t, corpus, corpus_len, 0);
  int32_t *ids = malloc(n * sizeof *ids);
  assert_int_equal(hs_tokenizer_encode(t, corpus, corpus_len, 0, ids, n, &n), 0);
  char *out = malloc(corpus_len + 1);
  size_t dl;
  assert_int_equal(hs_tokenizer_decode(t, ids, n, HS_DETOK_STRIP_LEADING_SPACE, out, corpus_len,
                                       &dl), 0);
  assert_int_equal(dl, corpus_len);
  assert_memory_equal(out, corpus, corpus_len);
  free(ids);
  free(out);
  hs_tokenizer_destroy(t);
  hs_gguf_close(g);
  hs_free(buf);
}

static void test_exact_size_and_padding(void **state) {
  long live = live_blocks;
  check_size(HS_TOKENIZER_BPE, NULL, 263);    /* no room to learn */
  check_size(HS_TOKENIZER_BPE, NULL, 700);    /* the corpus suffices */
  check_size(HS_TOKENIZER_BPE, "qwen2", 9000); /* padded */
  check_size(HS_TOKENIZER_SPM, NULL, 260);
  check_size(HS_TOKENIZER_SPM, NULL, 700);
  check_size(HS_TOKENIZER_SPM, NULL, 9000);
  hs_vocab_train_result r;
  void *buf;
  size_t size;
  train_mem(corpus, corpus_len, HS_TOKENIZER_BPE, NULL, 700, &r, &buf, &size);
  assert_int_equal(r.n_padded, 0);
  hs_free(buf);
  train_mem(corpus, corpus_len, HS_TOKENIZER_BPE, NULL, 9000, &r, &buf, &size);
  assert_true(r.n_padded > 0);
  hs_free(buf);
  train_mem(corpus, corpus_len, HS_TOKENIZER_SPM, NULL, 9000, &r, &buf, &size);
  assert_true(r.n_padded > 0);
  hs_free(buf);
  train_mem("", 0, HS_TOKENIZER_SPM, NULL, 300, &r, &buf, &size);
  assert_int_equal(r.n_learned, 1); /* "▁" alone */
  assert_int_equal(r.n_padded, 40);
  hs_free(buf);
  assert_int_equal(live_blocks, live);
}

static void test_determinism(void **state) {
  for (int k = 0; k < 2; k++) {
    hs_tokenizer_kind kind = k ? HS_TOKENIZER_SPM : HS_TOKENIZER_BPE;
    hs_vocab_train_result r1, r2;
    void *b1, *b2, *b3;
    size_t s1, s2, s3;
    train_mem(corpus, corpus_len, kind, NULL, 2000, &r1, &b1, &s1);
    train_mem(corpus, corpus_len, kind, NULL, 2000, &r2, &b2, &s2);
    assert_int_equal(s1, s2);
    assert_memory_equal(b1, b2, s1);
    assert_memory_equal(&r1, &r2, sizeof r1);
    /* and a different corpus gives a different vocabulary */
    train_mem(corpus, corpus_len / 2, kind, NULL, 2000, &r2, &b3, &s3);
    assert_true(s3 != s1 || memcmp(b1, b3, s1) != 0);
    hs_free(b1);
    hs_free(b2);
    hs_free(b3);
  }
}

/* A trained vocabulary compresses text it has not seen. */
static void test_compression(void **state) {
  const char *d = getenv("HS_TEST_DATA");
  char path[1024];
  static const char *const held[] = {"heldout/prose.txt", "heldout/code.py"};
  for (int k = 0; k < 3; k++) {
    hs_tokenizer_kind kind = k == 2 ? HS_TOKENIZER_SPM : HS_TOKENIZER_BPE;
    hs_tokenizer *t = train(corpus, corpus_len, kind, k == 1 ? "default" : NULL, 2000, NULL);
    for (size_t i = 0; i < 2; i++) {
      snprintf(path, sizeof path, "%s/tokenizer/%s", d, held[i]);
      char *text;
      size_t len;
      assert_int_equal(hs_vocab_read_corpus(path, &text, &len), 0);
      size_t n = count_tokens(t, text, len, 0);
      printf("  %s %s: %zu bytes -> %zu tokens (%.2f bytes/token)\n",
             kind == HS_TOKENIZER_BPE ? "BPE" : "SPM", held[i], len, n, (double)len / (double)n);
      assert_true(n < len);
      assert_true(2 * n < len); /* at least two bytes per token on average */
      hs_free(text);
    }
    hs_tokenizer_destroy(t);
  }
}

/* Llama-3-sized vocabularies: trained, padded, loaded and used. */
static void test_large_vocabulary(void **state) {
  for (int k = 0; k < 2; k++) {
    hs_tokenizer_kind kind = k ? HS_TOKENIZER_SPM : HS_TOKENIZER_BPE;
    hs_vocab_train_result r;
    clock_t c0 = clock();
    hs_tokenizer *t = train(corpus, corpus_len, kind, NULL, 128256, &r);
    printf("  %s 128256: %u learned, %u padded, %.2f s to train and load\n",
           k ? "SPM" : "BPE", r.n_learned, r.n_padded, (double)(clock() - c0) / CLOCKS_PER_SEC);
    assert_int_equal(hs_tokenizer_n_vocab(t), 128256);
    assert_true(r.n_padded > 100000);
    int32_t id;
    assert_int_equal(hs_tokenizer_find(t, kind ? "<unused_0>" : "<|reserved_special_token_0|>",
                                       kind ? 10 : 28, &id), 0);
    int32_t ids[64];
    size_t n;
    assert_int_equal(hs_tokenizer_encode(t, "Hello <|eot_id|>", 16, HS_TOKENIZE_PARSE_SPECIAL,
                                         ids, 64, &n), 0);
    assert_true(n >= 2);
    if (!k) assert_int_equal(ids[n - 1], hs_tokenizer_eot(t));
    hs_tokenizer_destroy(t);
  }
}

/* SentencePiece joins any two pieces whose concatenation is in the vocabulary, so the trainer
 * must never learn "<s", "s>", "<0x4", "1>", "<unused_"...: plain text stays plain. */
static void test_spm_never_forms_specials(void **state) {
  char *text = NULL;
  size_t len = 0;
  static const char unit[] = "<s>x</s> <unk> <0x41><0x0A> <unused_0> <unused_12> <s> </s>\n";
  for (int i = 0; i < 200; i++) {
    text = realloc(text, len + sizeof unit);
    memcpy(text + len, unit, sizeof unit - 1);
    len += sizeof unit - 1;
  }
  hs_vocab_train_result r;
  hs_tokenizer *t = train(text, len, HS_TOKENIZER_SPM, NULL, 1000, &r);
  assert_true(r.n_learned > 10);
  size_t n = count_tokens(t, unit, sizeof unit - 1, 0);
  int32_t *ids = malloc(n * sizeof *ids);
  assert_int_equal(hs_tokenizer_encode(t, unit, sizeof unit - 1, 0, ids, n, &n), 0);
  for (size_t i = 0; i < n; i++) {
    int ty = hs_tokenizer_token_type(t, ids[i]);
    if (ty != HS_TOKEN_NORMAL && !(ty == HS_TOKEN_BYTE && ids[i] == 3 + '\n'))
      fail_msg("plain text gave token %d of type %d", ids[i], ty);
  }
  char out[256];
  size_t dl;
  assert_int_equal(hs_tokenizer_decode(t, ids, n, HS_DETOK_STRIP_LEADING_SPACE, out, sizeof out,
                                       &dl), 0);
  assert_int_equal(dl, sizeof unit - 1);
  assert_memory_equal(out, unit, dl);
  free(ids);
  free(text);
  hs_tokenizer_destroy(t);
}

static void test_bad_options(void **state) {
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  hs_vocab_train_opts o = {HS_TOKENIZER_BPE, 262, NULL};
  assert_int_equal(hs_vocab_train("x", 1, &o, w, NULL), HS_EINVAL);
  assert_msg_has(hs_tokenizer_last_error(), "n_vocab >= 263");
  o.kind = HS_TOKENIZER_SPM;
  o.n_vocab = 259;
  assert_int_equal(hs_vocab_train("x", 1, &o, w, NULL), HS_EINVAL);
  assert_msg_has(hs_tokenizer_last_error(), "n_vocab >= 260");
  o.n_vocab = (1u << 24) + 1;
  assert_int_equal(hs_vocab_train("x", 1, &o, w, NULL), HS_EINVAL);
  o.kind = (hs_tokenizer_kind)7;
  o.n_vocab = 1000;
  assert_int_equal(hs_vocab_train("x", 1, &o, w, NULL), HS_EINVAL);
  o.kind = HS_TOKENIZER_BPE;
  o.pre = "tekken";
  assert_int_equal(hs_vocab_train("x", 1, &o, w, NULL), HS_EINVAL);
  assert_msg_has(hs_tokenizer_last_error(), "unknown pre-tokenizer 'tekken'");
  o.pre = NULL;
  assert_int_equal(hs_vocab_train(NULL, 1, &o, w, NULL), HS_EINVAL);
  assert_int_equal(hs_vocab_train("x", 1, &o, NULL, NULL), HS_EINVAL);
  /* a writer that already has the keys */
  assert_int_equal(hs_gguf_writer_add_str(w, "tokenizer.ggml.tokens", "x", 1), 0);
  assert_int_equal(hs_vocab_train("x", 1, &o, w, NULL), HS_EINVAL);
  assert_msg_has(hs_tokenizer_last_error(), "tokenizer.ggml.tokens");
  hs_gguf_writer_destroy(w);
}

static void test_out_of_memory(void **state) {
  static const char text[] = "the cat sat on the mat; the cat ate the rat. 123 456 123 456\n"
                             "Grüße, мир! the cat sat on the mat; the cat ate the rat.\n";
  for (int k = 0; k < 2; k++) {
    long live = live_blocks;
    int failures = 0;
    hs_tokenizer_kind kind = k ? HS_TOKENIZER_SPM : HS_TOKENIZER_BPE;
    for (long n = 1; n < 100000; n++) {
      hs_gguf_writer *w;
      assert_int_equal(hs_gguf_writer_create(&w), 0);
      hs_vocab_train_opts o = {kind, 300, NULL};
      hs_alloc_fail_after(n);
      int rc = hs_vocab_train(text, sizeof text - 1, &o, w, NULL);
      hs_alloc_fail_after(0);
      hs_gguf_writer_destroy(w);
      assert_int_equal(live_blocks, live);
      if (rc == 0) break;
      assert_int_equal(rc, HS_ENOMEM);
      failures++;
    }
    if (failures < 10) fail_msg("only %d allocations", failures);
  }
}

/* ---- reading corpora ---- */

static void write_file(const char *rel, const void *p, size_t n) {
  char path[1024];
  tmp_path(path, sizeof path, rel);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void test_read_corpus(void **state) {
  long live = live_blocks;
  char path[1024], sub[1024];
  tmp_path(path, sizeof path, "tree");
  assert_int_equal(mkdir(path, 0755), 0);
  tmp_path(sub, sizeof sub, "tree/sub");
  assert_int_equal(mkdir(sub, 0755), 0);
  tmp_path(sub, sizeof sub, "tree/.git");
  assert_int_equal(mkdir(sub, 0755), 0);
  write_file("tree/b.txt", "second\n", 7);
  write_file("tree/a.txt", "first", 5);
  write_file("tree/sub/c.md", "third \xc3\xa9\n", 9);
  write_file("tree/.hidden", "hidden\n", 7);
  write_file("tree/.git/config", "git\n", 4);
  write_file("tree/bin.dat", "bi\0nary", 7);
  write_file("tree/latin1.txt", "caf\xe9\n", 5);
  write_file("tree/empty.txt", "", 0);
  tmp_path(sub, sizeof sub, "tree/sub/loop");
  assert_int_equal(symlink(path, sub), 0);
  char *buf;
  size_t len;
  assert_int_equal(hs_vocab_read_corpus(path, &buf, &len), 0);
  static const char want[] = "first\nsecond\nthird \xc3\xa9\n";
  assert_int_equal(len, sizeof want - 1);
  assert_memory_equal(buf, want, len);
  assert_int_equal(buf[len], 0);
  hs_free(buf);
  /* a file named directly is read as it is */
  tmp_path(path, sizeof path, "tree/latin1.txt");
  assert_int_equal(hs_vocab_read_corpus(path, &buf, &len), 0);
  assert_int_equal(len, 5);
  hs_free(buf);
  tmp_path(path, sizeof path, "tree/a.txt");
  assert_int_equal(hs_vocab_read_corpus(path, &buf, &len), 0);
  assert_int_equal(len, 5);
  hs_free(buf);
  tmp_path(path, sizeof path, "tree/empty.txt");
  assert_int_equal(hs_vocab_read_corpus(path, &buf, &len), 0);
  assert_int_equal(len, 0);
  assert_int_equal(buf[0], 0);
  hs_free(buf);
  tmp_path(path, sizeof path, "tree/nope");
  assert_int_equal(hs_vocab_read_corpus(path, &buf, &len), HS_ENOENT);
  assert_msg_has(hs_tokenizer_last_error(), "nope");
  assert_int_equal(hs_vocab_read_corpus(NULL, &buf, &len), HS_EINVAL);
  assert_int_equal(live_blocks, live);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bpe_merges_by_hand),     cmocka_unit_test(test_spm_merges_by_hand),
      cmocka_unit_test(test_exact_size_and_padding), cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_compression),            cmocka_unit_test(test_large_vocabulary),
      cmocka_unit_test(test_spm_never_forms_specials), cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_out_of_memory),          cmocka_unit_test(test_read_corpus),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
