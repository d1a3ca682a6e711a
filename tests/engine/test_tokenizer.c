/* test_tokenizer.c: the tokenizers (src/engine/tokenizer*.c, detok.c) against an independent
 * Python reference, and on their own.
 *
 * Vocabularies are trained (hs_vocab_train) from tests/data/tokenizer/train plus the project's
 * README and docs: byte-level BPE with each pre-tokenizer (llama-bpe, qwen2, default, gpt-2) and
 * SPM. Each is written to a GGUF file and loaded by both the C tokenizer and
 * tests/engine/tokenizer_ref.py (run with Debian's /usr/bin/python3 and the `regex` module,
 * reading the file with its own GGUF reader). For every test text (code, prose, many scripts,
 * combining marks, emoji, right-to-left text, whitespace runs, digit runs, contractions, special
 * token strings, ill-formed UTF-8, random bytes) and every flag combination the two must give
 * identical ids and identical decodings; decode(encode(x)) must give x back byte for byte (BPE
 * always; SPM when x holds no "▁", after the leading-space rule); and the streaming detokenizer
 * must give the decoding with ill-formed UTF-8 replaced, in chunks that never end inside a
 * character.
 *
 * Then hand-made vocabularies whose ids are worked out by hand (merge ranks and ties,
 * ignore_merges, SPM scores and byte fallback, special-token placement order, user-defined
 * tokens), error messages for broken metadata, buffer-size contracts, long inputs that would be
 * quadratic with a naive merge loop, and out-of-memory on every allocation of load and encode,
 * with a counting allocator that proves nothing leaks. A missing interpreter or module is a
 * failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"
#include "hswarm/tokenizer.h"

#include "support/utf8_check.h"

#include "support/counting_alloc.h"

#define PYTHON "/usr/bin/python3"

/* every hook call counted, to run out-of-memory on each allocation of an operation */
static long n_alloc_calls;
static void *calls_malloc(size_t n) {
  n_alloc_calls++;
  return count_malloc(n);
}
static void *calls_realloc(void *p, size_t n) {
  n_alloc_calls++;
  return count_realloc(p, n);
}
static const hs_alloc_hooks calls_hooks = {calls_malloc, calls_realloc, count_free};

/* ---- the trained vocabularies ---- */

enum { V_LLAMA3, V_QWEN2, V_DEFAULT, V_GPT2, V_SPM, N_VOCABS };
static const struct {
  const char *name;
  hs_tokenizer_kind kind;
  const char *pre;
  uint32_t n_vocab;
} vocab_spec[N_VOCABS] = {
    {"llama-bpe", HS_TOKENIZER_BPE, "llama-bpe", 3000}, {"qwen2", HS_TOKENIZER_BPE, "qwen2", 3000},
    {"default", HS_TOKENIZER_BPE, "default", 2500},     {"gpt-2", HS_TOKENIZER_BPE, "gpt-2", 2000},
    {"spm", HS_TOKENIZER_SPM, NULL, 3000},
};
static hs_tokenizer *tok[N_VOCABS];
static char vocab_path[N_VOCABS][512];
static char *corpus;
static size_t corpus_len;

static const char *env_dir(const char *name) {
  const char *d = getenv(name);
  if (!d || !*d) fail_msg("%s is not set (CTest sets it)", name);
  return d;
}

static void append(char **buf, size_t *len, const char *more, size_t n) {
  *buf = realloc(*buf, *len + n + 1);
  assert_non_null(*buf);
  memcpy(*buf + *len, more, n);
  *len += n;
  (*buf)[*len] = 0;
}

/* corpus + file or directory at path (through hs_vocab_read_corpus) */
static void read_into(char **buf, size_t *len, const char *path) {
  char *b;
  size_t n;
  int rc = hs_vocab_read_corpus(path, &b, &n);
  if (rc) fail_msg("reading %s: %s", path, hs_tokenizer_last_error());
  append(buf, len, b, n);
  hs_free(b);
}

static hs_tokenizer *load_path(const char *path) {
  hs_gguf *g;
  assert_int_equal(hs_gguf_open(path, &g), 0);
  hs_tokenizer *t = NULL;
  int rc = hs_tokenizer_load(g, &t);
  if (rc) fail_msg("loading %s: %s", path, hs_tokenizer_last_error());
  hs_gguf_close(g);
  return t;
}

static int group_setup(void **state) {
  hs_alloc_set_hooks(&calls_hooks);
  if (make_tmpdir("hs_tok")) return -1;
  if (access(PYTHON, X_OK) != 0 || system(PYTHON " -c 'import regex, numpy' 2>/dev/null") != 0) {
    fprintf(stderr, "test_tokenizer: %s with the regex and numpy modules is required "
                    "(apt-get install python3-regex python3-numpy)\n", PYTHON);
    return -1;
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/tokenizer/train", env_dir("HS_TEST_DATA"));
  read_into(&corpus, &corpus_len, path);
  snprintf(path, sizeof path, "%s/README.md", env_dir("HS_SOURCE_DIR"));
  read_into(&corpus, &corpus_len, path);
  snprintf(path, sizeof path, "%s/docs", env_dir("HS_SOURCE_DIR"));
  read_into(&corpus, &corpus_len, path);
  for (int v = 0; v < N_VOCABS; v++) {
    hs_gguf_writer *w;
    if (hs_gguf_writer_create(&w)) return -1;
    hs_vocab_train_opts o = {vocab_spec[v].kind, vocab_spec[v].n_vocab, vocab_spec[v].pre};
    hs_vocab_train_result r;
    if (hs_vocab_train(corpus, corpus_len, &o, w, &r)) {
      fprintf(stderr, "training %s: %s\n", vocab_spec[v].name, hs_tokenizer_last_error());
      return -1;
    }
    snprintf(vocab_path[v], sizeof vocab_path[v], "%s/%s.gguf", tmpdir, vocab_spec[v].name);
    if (hs_gguf_writer_write_file(w, vocab_path[v])) return -1;
    hs_gguf_writer_destroy(w);
    tok[v] = load_path(vocab_path[v]);
  }
  return 0;
}

static int group_teardown(void **state) {
  for (int v = 0; v < N_VOCABS; v++) hs_tokenizer_destroy(tok[v]);
  free(corpus);
  return remove_tmpdir_and_hooks();
}

/* ---- helpers ---- */

typedef struct ids_t {
  int32_t *v;
  size_t n;
} ids_t;

static ids_t encode(const hs_tokenizer *t, const void *text, size_t len, unsigned flags) {
  size_t n = 0;
  int rc = hs_tokenizer_encode(t, text, len, flags, NULL, 0, &n);
  if (rc != 0 && rc != HS_ENOSPC) fail_msg("encode: %s", hs_tokenizer_last_error());
  ids_t r = {malloc((n + 1) * sizeof(int32_t)), 0};
  assert_non_null(r.v);
  rc = hs_tokenizer_encode(t, text, len, flags, r.v, n, &r.n);
  if (rc) fail_msg("encode: %s", hs_tokenizer_last_error());
  assert_int_equal(r.n, n);
  return r;
}

static char *decode(const hs_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                    size_t *len) {
  size_t need = 0;
  int rc = hs_tokenizer_decode(t, ids, n, flags, NULL, 0, &need);
  assert_true(rc == 0 || rc == HS_ENOSPC);
  char *out = malloc(need + 1);
  assert_non_null(out);
  assert_int_equal(hs_tokenizer_decode(t, ids, n, flags, out, need, len), 0);
  assert_int_equal(*len, need);
  return out;
}

/* A strict UTF-8 check written here, independently of the library. */
/* Streams ids through the detokenizer; checks every chunk is whole characters; returns the
 * concatenation. */
static char *stream(const hs_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                    size_t *len) {
  hs_detok_stream st;
  hs_detok_stream_init(&st, flags);
  char *all = NULL;
  size_t total = 0;
  char chunk[4096];
  for (size_t i = 0; i <= n; i++) {
    size_t k;
    int rc = i < n ? hs_detok_stream_push(t, &st, ids[i], chunk, sizeof chunk, &k)
                   : hs_detok_stream_flush(&st, chunk, sizeof chunk, &k);
    if (rc) fail_msg("stream at %zu: %s", i, hs_tokenizer_last_error());
    if (!utf8_well_formed((unsigned char *)chunk, k)) fail_msg("stream chunk %zu is not whole UTF-8", i);
    append(&all, &total, chunk, k);
  }
  if (!all) append(&all, &total, "", 0);
  *len = total;
  return all;
}

/* ---- the test texts ---- */

typedef struct text {
  char *p;
  size_t n;
} text;

static text texts[256];
static size_t n_texts;

static void add_text(const void *p, size_t n) {
  assert_true(n_texts < sizeof texts / sizeof texts[0]);
  texts[n_texts].p = malloc(n + 1);
  memcpy(texts[n_texts].p, p, n);
  texts[n_texts].n = n;
  n_texts++;
}

static void add_str(const char *s) { add_text(s, strlen(s)); }

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 32);
}

static void add_file(const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tokenizer/%s", env_dir("HS_TEST_DATA"), rel);
  char *b;
  size_t n;
  assert_int_equal(hs_vocab_read_corpus(path, &b, &n), 0);
  add_text(b, n);
  hs_free(b);
}

static void build_texts(void) {
  if (n_texts) return;
  add_file("train/prose.txt");
  add_file("train/code_c.c");
  add_file("train/code_py.py");
  add_file("train/code_js.js");
  add_file("train/unicode.txt");
  add_file("heldout/prose.txt");
  add_file("heldout/code.py");
  add_str("");
  add_str(" ");
  add_str("a");
  add_str("Hello world");
  add_str(" Hello  world   !");
  add_str("I'm sure you're right; they'll say we've done it, she'd agree, it's John's.");
  add_str("I'M SURE YOU'RE RIGHT; THEY'LL SAY WE'VE DONE IT, SHE'D AGREE, IT'S JOHN'S.");
  add_str("'s 's'S'd'D 'll'LL 're 'Re 'vE ' s '' '''");
  add_str("1 12 123 1234 12345 123456 1234567 3.14159 1,000,000 0x7fff 1e-9 2024-01-31");
  add_str("\xd9\xa3\xd9\xa4\xd9\xa5 \xe0\xa5\xa7\xe0\xa5\xa8\xe0\xa5\xa9 \xe2\x85\xab 12\xc2\xbd");
  add_str("a  b   c\t\td\n\n\ne \r\n \n  \t \n\x0b\x0c end  ");
  add_str("\n\n\n    indented\n\tTab\r\n\r\n  \n");
  add_str("\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81 "
          "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf");
  add_str("e\xcc\x81 a\xcc\x88 Z\xcc\xa4\xcd\x94\xcd\xa7\xcc\x91 \xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8"
          "\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87");
  add_str("\xf0\x9f\x98\x80\xf0\x9f\x9a\x80 \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d"
          "\xf0\x9f\x91\xa7 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xf0\x9f\x87\xab\xf0\x9f\x87\xb7!!");
  add_str("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\xa2\xd7\x95\xd7\x9c\xd7\x9d and "
          "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 (RTL) \xe2\x80\x8f\xe2\x80\x8e mixed");
  add_str("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
  add_str("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHello<|im_end|>");
  add_str("<s>[INST] What is 2+2? [/INST] 4</s><s>[INST] and <unk>? [/INST]");
  add_str("<|eot_id <|eot_id|<|eot_id|>|> <|im_end|><|im_end|>x<|end_of_text|>");
  add_str("<|reserved_special_token_0|> <|reserved_special_token_9|>");
  add_str("\xff\xfe abc \xc3\x28 \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 \xc0\x80 end \x80\x80 \xc3");
  add_str("\xf4\x90\x80\x80 \xf8\x88\x80\x80\x80 x\xe2\x82\xac\xe2\x82\xe2\x82\xac");
  add_text("nul\0inside\0\0text", 17);
  add_str("\x01\x02\x1b[31mred\x1b[0m\x7f\x1c\x1d\x1e\x1f \xc2\x85 \xc2\xa0 \xe2\x80\xa8 "
          "\xe3\x80\x80 \xe1\xa0\x8e x");
  add_str("snake_case camelCase PascalCase kebab-case SCREAMING_CASE __dunder__ a.b.c "
          "x->y ::scope ++i i-- !== >>= <<= ** // /* */ #include <stdio.h>");
  /* whitespace and digit runs (kept a few hundred long for the naive Python merge loop) */
  char buf[8192];
  memset(buf, ' ', 600);
  memcpy(buf + 600, "word", 4);
  add_text(buf, 604);
  memset(buf, '\t', 300);
  add_text(buf, 300);
  for (int i = 0; i < 900; i++) buf[i] = " \t\n\r"[rnd() % 4];
  add_text(buf, 900);
  for (int i = 0; i < 700; i++) buf[i] = (char)('0' + rnd() % 10);
  add_text(buf, 700);
  memset(buf, 'a', 500);
  add_text(buf, 500);
  /* random bytes, and random picks from an alphabet of awkward pieces */
  for (int r = 0; r < 4; r++) {
    for (int i = 0; i < 1500; i++) buf[i] = (char)rnd();
    add_text(buf, 1500);
  }
  static const char *const alphabet[] = {
      " ", "  ", "\n", "\t", "'", "s", "t", "re", "ll", "a", "Z", "7", "42", ".", ",", "!",
      "<", "|", ">", "<|eot_id|>", "<s>", "\xc3\xa9", "\xe2\x96\x81", "\xe4\xb8\xad",
      "\xf0\x9f\x98\x80", "\xcc\x81", "\xd9\x85", "\xff", "\xe2\x82", "_", "$", "~", "^", "\r\n",
      "\xc2\xa0", "`", "\\", "0", "999", "don't", "We'Ll"};
  for (int r = 0; r < 6; r++) {
    size_t n = 0;
    while (n < 2500) {
      const char *p = alphabet[rnd() % (sizeof alphabet / sizeof alphabet[0])];
      size_t k = strlen(p);
      memcpy(buf + n, p, k);
      n += k;
    }
    add_text(buf, n);
  }
}

static bool has_space_mark(const text *x) {
  for (size_t i = 0; i + 2 < x->n; i++)
    if (!memcmp(x->p + i, "\xe2\x96\x81", 3)) return true;
  return false;
}

/* SPM's round trip: no "▁" in the text, and well-formed UTF-8 (llama.cpp's SPM cuts symbols by
 * lead byte alone, so an ill-formed lead byte can swallow part of the "▁" of a space, and the
 * byte fallback then spells that "▁" literally). */
static bool spm_round_trips(const text *x) {
  return !has_space_mark(x) && utf8_well_formed((const unsigned char *)x->p, x->n);
}

/* ---- comparison with the Python reference ---- */

static void put_u32(FILE *f, uint32_t v) { assert_int_equal(fwrite(&v, 4, 1, f), 1); }

static uint32_t get_u32(const unsigned char **p, const unsigned char *end) {
  assert_true(*p + 4 <= end);
  uint32_t v;
  memcpy(&v, *p, 4);
  *p += 4;
  return v;
}

static void compare_with_python(int v) {
  build_texts();
  const hs_tokenizer *t = tok[v];
  char in[1024], out[1024], cmd[4096];
  snprintf(in, sizeof in, "%s/%s.in", tmpdir, vocab_spec[v].name);
  snprintf(out, sizeof out, "%s/%s.out", tmpdir, vocab_spec[v].name);
  FILE *f = fopen(in, "wb");
  assert_non_null(f);
  for (size_t i = 0; i < n_texts; i++)
    for (unsigned flags = 0; flags < 4; flags++) {
      put_u32(f, flags);
      put_u32(f, (uint32_t)texts[i].n);
      if (texts[i].n) assert_int_equal(fwrite(texts[i].p, 1, texts[i].n, f), texts[i].n);
    }
  assert_int_equal(fclose(f), 0);
  snprintf(cmd, sizeof cmd, PYTHON " '%s/tests/engine/tokenizer_ref.py' '%s' '%s' '%s'",
           env_dir("HS_SOURCE_DIR"), vocab_path[v], in, out);
  if (system(cmd) != 0) fail_msg("the Python reference failed: %s", cmd);
  f = fopen(out, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *data = malloc((size_t)size + 1);
  assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  const unsigned char *p = data, *end = data + size;
  size_t total_ids = 0, total_bytes = 0;
  for (size_t i = 0; i < n_texts; i++) {
    const text *x = &texts[i];
    for (unsigned flags = 0; flags < 4; flags++) {
      uint32_t n = get_u32(&p, end);
      assert_true(p + 4 * (size_t)n <= end);
      ids_t c = encode(t, x->p, x->n, flags);
      if (c.n != n || memcmp(c.v, p, 4 * (size_t)n) != 0) {
        size_t k = 0;
        while (k < c.n && k < n && memcmp(&c.v[k], p + 4 * k, 4) == 0) k++;
        int32_t py = 0;
        if (k < n) memcpy(&py, p + 4 * k, 4);
        fail_msg("%s: text %zu (%zu bytes) flags %u: C gives %zu ids, Python %u; first "
                 "difference at %zu: C %d, Python %d",
                 vocab_spec[v].name, i, x->n, flags, c.n, n, k, k < c.n ? c.v[k] : -1,
                 k < n ? py : -1);
      }
      p += 4 * (size_t)n;
      total_ids += n;
      total_bytes += x->n;
      /* the decoding, as the reference computes it */
      unsigned dflags = HS_DETOK_STRIP_LEADING_SPACE |
                        (flags & HS_TOKENIZE_PARSE_SPECIAL ? HS_DETOK_SPECIAL : 0);
      uint32_t m = get_u32(&p, end);
      assert_true(p + m <= end);
      size_t dl;
      char *d = decode(t, c.v, c.n, dflags, &dl);
      if (dl != m || memcmp(d, p, m) != 0)
        fail_msg("%s: text %zu flags %u: C decodes to %zu bytes, Python to %u", vocab_spec[v].name,
                 i, flags, dl, m);
      p += m;
      /* round trip, leaving out an added BOS */
      size_t skip = (flags & HS_TOKENIZE_ADD_BOS) && hs_tokenizer_get_add_bos(t) ? 1 : 0;
      bool must = hs_tokenizer_get_kind(t) == HS_TOKENIZER_BPE ||
                  (spm_round_trips(x) && !(flags & HS_TOKENIZE_PARSE_SPECIAL));
      if (must) {
        size_t rl;
        char *r = decode(t, c.v + skip, c.n - skip, dflags, &rl);
        if (rl != x->n || memcmp(r, x->p, rl) != 0)
          fail_msg("%s: text %zu flags %u: decode(encode(x)) != x (%zu vs %zu bytes)",
                   vocab_spec[v].name, i, flags, rl, x->n);
        free(r);
      }
      /* streaming: the decoding with ill-formed UTF-8 replaced, as Python's "replace" */
      uint32_t k = get_u32(&p, end);
      assert_true(p + k <= end);
      size_t sl;
      char *s = stream(t, c.v, c.n, dflags, &sl);
      if (sl != k || memcmp(s, p, k) != 0)
        fail_msg("%s: text %zu flags %u: the stream gives %zu bytes, expected %u",
                 vocab_spec[v].name, i, flags, sl, k);
      if (utf8_well_formed((const unsigned char *)d, dl)) assert_memory_equal(s, d, dl);
      p += k;
      free(s);
      free(d);
      free(c.v);
    }
  }
  assert_ptr_equal(p, end);
  free(data);
  printf("  %s: %zu texts x 4 flag sets identical to the reference (%.2f bytes/token)\n",
         vocab_spec[v].name, n_texts, (double)total_bytes / (double)(total_ids ? total_ids : 1));
}

static void test_reference_llama3(void **state) { compare_with_python(V_LLAMA3); }
static void test_reference_qwen2(void **state) { compare_with_python(V_QWEN2); }
static void test_reference_default(void **state) { compare_with_python(V_DEFAULT); }
static void test_reference_gpt2(void **state) { compare_with_python(V_GPT2); }
static void test_reference_spm(void **state) { compare_with_python(V_SPM); }

/* ---- hand-made vocabularies ---- */

/* A GGUF in memory with the given tokenizer keys. Strings of tokens and merges are
 * NUL-terminated C strings. types and scores may be NULL. */
typedef struct handvocab {
  const char *model, *pre;
  const char *const *tokens;
  size_t n_tokens;
  const int32_t *types;
  const float *scores;
  const char *const *merges;
  size_t n_merges;
  int bos, eos; /* -1: no key */
} handvocab;

static hs_tokenizer *hand_load(const handvocab *h) {
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "tokenizer.ggml.model", h->model, strlen(h->model)), 0);
  if (h->pre) assert_int_equal(hs_gguf_writer_add_str(w, "tokenizer.ggml.pre", h->pre, strlen(h->pre)), 0);
  assert_int_equal(hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", h->tokens, NULL, h->n_tokens), 0);
  if (h->types)
    assert_int_equal(hs_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", HS_GGUF_INT32, h->types, h->n_tokens), 0);
  if (h->scores)
    assert_int_equal(hs_gguf_writer_add_arr(w, "tokenizer.ggml.scores", HS_GGUF_FLOAT32, h->scores, h->n_tokens), 0);
  if (h->merges)
    assert_int_equal(hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", h->merges, NULL, h->n_merges), 0);
  if (h->bos >= 0) assert_int_equal(hs_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)h->bos), 0);
  if (h->eos >= 0) assert_int_equal(hs_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)h->eos), 0);
  void *buf;
  size_t size;
  assert_int_equal(hs_gguf_writer_write_mem(w, &buf, &size), 0);
  hs_gguf_writer_destroy(w);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, "hand", &g), 0);
  hs_tokenizer *t = NULL;
  int rc = hs_tokenizer_load(g, &t);
  if (rc) fail_msg("hand vocabulary: %s", hs_tokenizer_last_error());
  hs_gguf_close(g);
  hs_free(buf);
  return t;
}

static void expect_ids(const hs_tokenizer *t, const char *s, unsigned flags, const int32_t *want,
                       size_t n_want) {
  ids_t c = encode(t, s, strlen(s), flags);
  if (c.n != n_want || memcmp(c.v, want, n_want * sizeof *want) != 0) {
    char got[512] = "";
    for (size_t i = 0; i < c.n && strlen(got) < 480; i++)
      snprintf(got + strlen(got), sizeof got - strlen(got), " %d", c.v[i]);
    fail_msg("'%s' flags %u gives [%s ]", s, flags, got);
  }
  free(c.v);
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

/* BPE: 0..3 are letters, then merges' results; the space stand-in is U+0120 'Ġ'. */
static void test_bpe_by_hand(void **state) {
  long live = live_blocks;
  static const char *const toks[] = {
      "a", "b", "c", "\xc4\xa0", /* 0-3: a b c Ġ */
      "ab", "bc", "abc", "\xc4\xa0" "a", "aa", /* 4-8 */
      "\xc4\xa0" "ab", "cab", "<ctl>", "ca", /* 9-12 */
  };
  static const char *const merges[] = {"b c", "\xc4\xa0 a", "a b", "a a", "\xc4\xa0" "a b",
                                       "c ab", "c a"};
  /* ranks: bc 0, Ġa 1, ab 2, aa 3, Ġab 4, cab 5, ca 6; "abc" is a token no merge makes */
  static const int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1};
  handvocab h = {"gpt2", "default", toks, 13, types, NULL, merges, 7, 11, 11};
  hs_tokenizer *t = hand_load(&h);
  assert_string_equal(hs_tokenizer_pre_name(t), "default");
  /* "abc": bc (rank 0) beats ab (rank 2): a + bc, and no merge "a bc" */
  expect_ids(t, "abc", 0, IDS(0, 5));
  /* "aaa": leftmost of equal ranks: (aa) a */
  expect_ids(t, "aaa", 0, IDS(8, 0));
  /* " ab": Ġa (1) beats ab (2), then Ġa+b (4) */
  expect_ids(t, " ab", 0, IDS(9));
  /* "cab": ab (2) then c+ab (5); ca (6) never gets a chance */
  expect_ids(t, "cab", 0, IDS(10));
  /* control text is plain text without PARSE_SPECIAL: <, c, t, l, > have no tokens but "c" */
  expect_ids(t, "<ctl>", HS_TOKENIZE_PARSE_SPECIAL, IDS(11));
  /* BOS is 11 by key, but add_bos_token defaults to false for non-llama3 BPE */
  expect_ids(t, "a", HS_TOKENIZE_ADD_BOS, IDS(0));
  hs_tokenizer_destroy(t);

  /* llama-bpe: a pre-token that is a whole token is taken as is (ignore_merges) */
  h.pre = "llama3"; /* an alias */
  t = hand_load(&h);
  assert_string_equal(hs_tokenizer_pre_name(t), "llama-bpe");
  assert_true(hs_tokenizer_get_add_bos(t));
  expect_ids(t, "abc", 0, IDS(6));
  expect_ids(t, "abc", HS_TOKENIZE_ADD_BOS, IDS(11, 6));
  hs_tokenizer_destroy(t);
  assert_int_equal(live_blocks, live);
}

/* Special tokens are placed longest first over the whole text, then shorter ones in what is
 * left; USER_DEFINED tokens are always split out, CONTROL only with PARSE_SPECIAL. */
static void test_special_placement(void **state) {
  long live = live_blocks;
  static const char *const toks[] = {"a", "b", "c", "d", "ab", "bcd", "<x>", "<", "x", ">", "xy"};
  static const int32_t types[] = {1, 1, 1, 1, 4, 4, 3, 1, 1, 1, 4};
  handvocab h = {"gpt2", "gpt-2", toks, 11, types, NULL, (const char *const[]){"x y"}, 1, -1, -1};
  hs_tokenizer *t = hand_load(&h);
  /* "bcd" (3 bytes) goes first: a, <bcd>; a leftmost-longest scan would give <ab>, c, d */
  expect_ids(t, "abcd", 0, IDS(0, 5));
  expect_ids(t, "ababcd", 0, IDS(4, 0, 5));
  /* the control token only when asked */
  expect_ids(t, "a<x>b", 0, IDS(0, 7, 8, 9, 1));
  expect_ids(t, "a<x>b", HS_TOKENIZE_PARSE_SPECIAL, IDS(0, 6, 1));
  /* user-defined "xy" is split out before BPE would merge it anyway */
  expect_ids(t, "<xy>", 0, IDS(7, 10, 9));
  assert_int_equal(hs_tokenizer_token_type(t, 6), HS_TOKEN_CONTROL);
  assert_int_equal(hs_tokenizer_token_type(t, 4), HS_TOKEN_USER_DEFINED);
  /* gpt2 defaults BOS = EOS = 11, past this vocabulary: none */
  assert_int_equal(hs_tokenizer_bos(t), -1);
  assert_int_equal(hs_tokenizer_eos(t), -1);
  /* rendering: control "" unless asked, user-defined always */
  const char *s;
  size_t n;
  assert_int_equal(hs_tokenizer_token_bytes(t, 6, 0, &s, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(hs_tokenizer_token_bytes(t, 6, HS_DETOK_SPECIAL, &s, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(s, "<x>", 3);
  assert_int_equal(hs_tokenizer_token_bytes(t, 5, 0, &s, &n), 0);
  assert_memory_equal(s, "bcd", 3);
  hs_tokenizer_destroy(t);
  assert_int_equal(live_blocks, live);
}

/* SPM: the best-scoring pair first, leftmost on ties, byte fallback, the space prefix. */
static void test_spm_by_hand(void **state) {
  long live = live_blocks;
  const char *toks[3 + 256 + 8];
  int32_t types[3 + 256 + 8];
  float scores[3 + 256 + 8];
  static char bytes[256][7];
  toks[0] = "<unk>", toks[1] = "<s>", toks[2] = "</s>";
  types[0] = 2, types[1] = 3, types[2] = 3;
  for (int b = 0; b < 256; b++) {
    snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
    toks[3 + b] = bytes[b];
    types[3 + b] = 6;
  }
  for (int i = 0; i < 259; i++) scores[i] = 0;
  static const char *const pieces[] = {"\xe2\x96\x81", "a", "b", "ab", "\xe2\x96\x81" "a",
                                       "\xe2\x96\x81" "ab", "aa", "c"};
  static const float piece_scores[] = {-10, -11, -12, -1, -2, -3, -1, -13};
  for (int i = 0; i < 8; i++) {
    toks[259 + i] = pieces[i];
    types[259 + i] = 1;
    scores[259 + i] = piece_scores[i];
  }
  enum { SP = 259, A, B, AB, SA, SAB, AA, C };
  handvocab h = {"llama", NULL, toks, 267, types, scores, NULL, 0, -1, -1};
  hs_tokenizer *t = hand_load(&h);
  assert_int_equal(hs_tokenizer_get_kind(t), HS_TOKENIZER_SPM);
  assert_string_equal(hs_tokenizer_pre_name(t), "");
  /* "▁ab": ab (-1) beats ▁a (-2); then ▁+ab = ▁ab (-3) */
  expect_ids(t, "ab", 0, IDS(SAB));
  /* BOS 1 by default, added */
  expect_ids(t, "ab", HS_TOKENIZE_ADD_BOS, IDS(1, SAB));
  /* "▁aaa": ▁a (-2) vs aa (-1) at 1 and at 2: aa at 1 (leftmost), then ▁ + aa has no piece */
  expect_ids(t, "aaa", 0, IDS(SP, AA, A));
  /* é is not a piece: its two bytes */
  expect_ids(t, "\xc3\xa9", 0, IDS(SP, 3 + 0xc3, 3 + 0xa9));
  /* a space inside, and after a special token a new prefix */
  expect_ids(t, "a b", 0, IDS(SA, SP, B));
  expect_ids(t, "c<s>c", HS_TOKENIZE_PARSE_SPECIAL, IDS(SP, C, 1, SP, C));
  expect_ids(t, "c<s>c", 0, IDS(SP, C, 3 + '<', 3 + 's', 3 + '>', C));
  /* decoding: bytes, spaces, and the leading-space rule */
  int32_t ids[] = {1, SA, SP, B, 3 + 0xc3, 3 + 0xa9};
  size_t n;
  char *d = decode(t, ids, 6, 0, &n);
  assert_int_equal(n, 6);
  assert_memory_equal(d, " a b\xc3\xa9", 6);
  free(d);
  d = decode(t, ids, 6, HS_DETOK_STRIP_LEADING_SPACE, &n);
  assert_int_equal(n, 5);
  assert_memory_equal(d, "a b\xc3\xa9", 5);
  free(d);
  d = decode(t, ids + 1, 5, HS_DETOK_STRIP_LEADING_SPACE | HS_DETOK_SPECIAL, &n);
  assert_memory_equal(d, "a b\xc3\xa9", 5);
  free(d);
  d = decode(t, ids, 6, HS_DETOK_SPECIAL, &n);
  assert_int_equal(n, 9);
  assert_memory_equal(d, "<s> a b\xc3\xa9", 9);
  free(d);
  hs_tokenizer_destroy(t);
  assert_int_equal(live_blocks, live);
}

/* The streaming detokenizer on byte tokens that cut characters. */
static void test_stream_by_hand(void **state) {
  const hs_tokenizer *t = tok[V_SPM];
  int32_t byte[256];
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    assert_int_equal(hs_tokenizer_find(t, name, 6, &byte[b]), 0);
  }
  hs_detok_stream st;
  hs_detok_stream_init(&st, 0);
  char out[64];
  size_t n;
  /* 😀 = F0 9F 98 80, one byte per push */
  static const unsigned char emoji[] = {0xf0, 0x9f, 0x98, 0x80};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(hs_detok_stream_push(t, &st, byte[emoji[i]], out, sizeof out, &n), 0);
    assert_int_equal(n, i < 3 ? 0 : 4);
  }
  assert_memory_equal(out, emoji, 4);
  /* a byte that can never start a character comes out at once as U+FFFD */
  assert_int_equal(hs_detok_stream_push(t, &st, byte[0xff], out, sizeof out, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(out, "\xef\xbf\xbd", 3);
  /* a beginning broken by an ASCII byte: one U+FFFD for the two bytes, then the byte */
  assert_int_equal(hs_detok_stream_push(t, &st, byte[0xe2], out, sizeof out, &n), 0);
  assert_int_equal(hs_detok_stream_push(t, &st, byte[0x82], out, sizeof out, &n), 0);
  assert_int_equal(n, 0);
  /* a buffer too small: HS_ENOSPC with the size needed, and nothing changes */
  assert_int_equal(hs_detok_stream_push(t, &st, byte['x'], out, 2, &n), HS_ENOSPC);
  assert_int_equal(n, 4);
  assert_int_equal(hs_detok_stream_push(t, &st, byte['x'], out, sizeof out, &n), 0);
  assert_int_equal(n, 4);
  assert_memory_equal(out, "\xef\xbf\xbdx", 4);
  /* a surrogate's encoding is ill-formed from its second byte */
  assert_int_equal(hs_detok_stream_push(t, &st, byte[0xed], out, sizeof out, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(hs_detok_stream_push(t, &st, byte[0xa0], out, sizeof out, &n), 0);
  assert_int_equal(n, 6);
  assert_memory_equal(out, "\xef\xbf\xbd\xef\xbf\xbd", 6);
  /* flush: a pending beginning is one U+FFFD */
  assert_int_equal(hs_detok_stream_push(t, &st, byte[0xf0], out, sizeof out, &n), 0);
  assert_int_equal(hs_detok_stream_push(t, &st, byte[0x9f], out, sizeof out, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(hs_detok_stream_flush(&st, out, 2, &n), HS_ENOSPC);
  assert_int_equal(hs_detok_stream_flush(&st, out, sizeof out, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(hs_detok_stream_flush(&st, out, sizeof out, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(hs_detok_stream_push(t, &st, -1, out, sizeof out, &n), HS_EINVAL);
  assert_int_equal(hs_detok_stream_push(t, &st, (int32_t)hs_tokenizer_n_vocab(t), out,
                                        sizeof out, &n), HS_EINVAL);
}

/* Accessors, EOG, lookups, the buffer-size contracts. */
static void test_vocabulary_queries(void **state) {
  const hs_tokenizer *t = tok[V_LLAMA3];
  int32_t bos = hs_tokenizer_bos(t), eos = hs_tokenizer_eos(t), eot = hs_tokenizer_eot(t);
  int32_t im_end, im_start, hello;
  assert_int_equal(hs_tokenizer_find(t, "<|im_end|>", 10, &im_end), 0);
  assert_int_equal(hs_tokenizer_find(t, "<|im_start|>", 12, &im_start), 0);
  assert_int_equal(hs_tokenizer_find(t, "<|nope|>", 8, &hello), HS_ENOENT);
  assert_true(bos >= 0 && eos >= 0 && eot >= 0);
  const char *s;
  size_t n;
  assert_int_equal(hs_tokenizer_token_text(t, bos, &s, &n), 0);
  assert_string_equal(s, "<|begin_of_text|>");
  assert_int_equal(hs_tokenizer_token_text(t, eot, &s, &n), 0);
  assert_string_equal(s, "<|eot_id|>");
  assert_true(hs_tokenizer_is_eog(t, eos));
  assert_true(hs_tokenizer_is_eog(t, eot));
  assert_true(hs_tokenizer_is_eog(t, im_end));
  assert_false(hs_tokenizer_is_eog(t, bos));
  assert_false(hs_tokenizer_is_eog(t, im_start));
  assert_false(hs_tokenizer_is_eog(t, 0));
  assert_false(hs_tokenizer_is_eog(t, -1));
  assert_int_equal(hs_tokenizer_token_type(t, bos), HS_TOKEN_CONTROL);
  assert_int_equal(hs_tokenizer_token_type(t, 0), HS_TOKEN_NORMAL);
  assert_int_equal(hs_tokenizer_token_type(t, -1), HS_EINVAL);
  assert_int_equal(hs_tokenizer_token_text(t, (int32_t)hs_tokenizer_n_vocab(t), &s, &n), HS_EINVAL);
  assert_int_equal(hs_tokenizer_unk(t), -1);
  assert_true(hs_tokenizer_get_add_bos(t));
  assert_false(hs_tokenizer_get_add_eos(t));
  /* the GPT-2 spelling of a space, and its bytes */
  int32_t sp;
  assert_int_equal(hs_tokenizer_find(t, "\xc4\xa0", 2, &sp), 0);
  assert_int_equal(hs_tokenizer_token_bytes(t, sp, 0, &s, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(s[0], ' ');
  /* SPM defaults */
  const hs_tokenizer *m = tok[V_SPM];
  assert_int_equal(hs_tokenizer_bos(m), 1);
  assert_int_equal(hs_tokenizer_eos(m), 2);
  assert_int_equal(hs_tokenizer_unk(m), 0);
  assert_int_equal(hs_tokenizer_eot(m), -1);
  assert_true(hs_tokenizer_is_eog(m, 2));
  assert_int_equal(hs_tokenizer_token_type(m, 0), HS_TOKEN_UNKNOWN);
  assert_int_equal(hs_tokenizer_token_type(m, 3 + 'A'), HS_TOKEN_BYTE);

  /* encode: HS_ENOSPC keeps the first cap ids and says how many there are */
  const char *txt = "The quick brown fox jumps over the lazy dog.";
  ids_t all = encode(t, txt, strlen(txt), HS_TOKENIZE_ADD_BOS);
  assert_true(all.n > 4);
  int32_t part[4] = {-7, -7, -7, -7};
  size_t got;
  assert_int_equal(hs_tokenizer_encode(t, txt, strlen(txt), HS_TOKENIZE_ADD_BOS, part, 3, &got),
                   HS_ENOSPC);
  assert_int_equal(got, all.n);
  assert_memory_equal(part, all.v, 3 * sizeof(int32_t));
  assert_int_equal(part[3], -7);
  assert_int_equal(hs_tokenizer_encode(t, txt, 5, 0x10, part, 4, &got), HS_EINVAL);
  assert_int_equal(hs_tokenizer_encode(t, NULL, 5, 0, part, 4, &got), HS_EINVAL);
  assert_int_equal(hs_tokenizer_encode(t, NULL, 0, 0, NULL, 0, &got), 0);
  assert_int_equal(got, 0);
  assert_int_equal(hs_tokenizer_encode(t, NULL, 0, HS_TOKENIZE_ADD_BOS, part, 4, &got), 0);
  assert_int_equal(got, 1);
  assert_int_equal(part[0], bos);
  /* decode: the same contract */
  char out[8];
  assert_int_equal(hs_tokenizer_decode(t, all.v, all.n, 0, out, sizeof out, &got), HS_ENOSPC);
  assert_int_equal(got, strlen(txt));
  assert_memory_equal(out, txt, sizeof out);
  int32_t bad[2] = {0, (int32_t)hs_tokenizer_n_vocab(t)};
  assert_int_equal(hs_tokenizer_decode(t, bad, 2, 0, out, sizeof out, &got), HS_EINVAL);
  assert_msg_has(hs_tokenizer_last_error(), "position 1");
  free(all.v);
}

/* 100 KB runs: a naive merge loop would take minutes (quadratic); these must be quick. */
static void test_long_inputs(void **state) {
  size_t n = 100000;
  char *buf = malloc(n);
  static const char fill[] = {' ', 'a', '7', '\n', '\t', 'x'};
  for (int v = 0; v < N_VOCABS; v++) {
    for (size_t f = 0; f <= sizeof fill; f++) {
      if (f < sizeof fill) {
        memset(buf, fill[f], n);
      } else {
        for (size_t i = 0; i < n; i++) buf[i] = (char)rnd();
      }
      clock_t c0 = clock();
      ids_t c = encode(tok[v], buf, n, 0);
      double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
      if (secs > 20) fail_msg("%s: 100 KB of fill %zu took %.1f s", vocab_spec[v].name, f, secs);
      size_t dl;
      char *d = decode(tok[v], c.v, c.n, HS_DETOK_STRIP_LEADING_SPACE, &dl);
      text x = {buf, n};
      if (hs_tokenizer_get_kind(tok[v]) == HS_TOKENIZER_BPE || spm_round_trips(&x)) {
        assert_int_equal(dl, n);
        assert_memory_equal(d, buf, n);
      }
      if (f == 0) assert_true(c.n < n / 2); /* learned merges of spaces apply */
      free(d);
      free(c.v);
    }
  }
  free(buf);
}

/* ---- broken metadata ---- */

static void expect_load_error(const handvocab *h, int code, const char *part1, const char *part2,
                              void (*extra)(hs_gguf_writer *)) {
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  if (h->model) assert_int_equal(hs_gguf_writer_add_str(w, "tokenizer.ggml.model", h->model, strlen(h->model)), 0);
  if (h->pre) assert_int_equal(hs_gguf_writer_add_str(w, "tokenizer.ggml.pre", h->pre, strlen(h->pre)), 0);
  if (h->tokens)
    assert_int_equal(hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", h->tokens, NULL, h->n_tokens), 0);
  if (h->types)
    assert_int_equal(hs_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", HS_GGUF_INT32, h->types, h->n_tokens - 1), 0);
  if (h->scores)
    assert_int_equal(hs_gguf_writer_add_arr(w, "tokenizer.ggml.scores", HS_GGUF_FLOAT32, h->scores, h->n_tokens + 1), 0);
  if (h->merges)
    assert_int_equal(hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", h->merges, NULL, h->n_merges), 0);
  if (extra) extra(w);
  void *buf;
  size_t size;
  assert_int_equal(hs_gguf_writer_write_mem(w, &buf, &size), 0);
  hs_gguf_writer_destroy(w);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, "bad", &g), 0);
  long live = live_blocks;
  hs_tokenizer *t = (hs_tokenizer *)1;
  assert_int_equal(hs_tokenizer_load(g, &t), code);
  assert_null(t);
  assert_int_equal(live_blocks, live);
  assert_msg_has(hs_tokenizer_last_error(), part1);
  if (part2) assert_msg_has(hs_tokenizer_last_error(), part2);
  hs_gguf_close(g);
  hs_free(buf);
}

static void tokens_as_ints(hs_gguf_writer *w) {
  static const int32_t v[2] = {1, 2};
  assert_int_equal(hs_gguf_writer_add_arr(w, "tokenizer.ggml.tokens", HS_GGUF_INT32, v, 2), 0);
}
static void bos_as_string(hs_gguf_writer *w) {
  assert_int_equal(hs_gguf_writer_add_str(w, "tokenizer.ggml.bos_token_id", "1", 1), 0);
}
static void add_bos_as_int(hs_gguf_writer *w) {
  assert_int_equal(hs_gguf_writer_add_u32(w, "tokenizer.ggml.add_bos_token", 1), 0);
}
static void scores_as_strings(hs_gguf_writer *w) {
  static const char *const s[3] = {"x", "y", "z"};
  assert_int_equal(hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.scores", s, NULL, 3), 0);
}

static void test_load_errors(void **state) {
  static const char *const toks[] = {"a", "b", "c"};
  static const char *const merges[] = {"a b"};
  static const int32_t types[] = {1, 1, 1};
  static const float scores[] = {0, 0, 0, 0};
  handvocab h = {NULL, NULL, toks, 3, NULL, NULL, merges, 1, -1, -1};
  expect_load_error(&h, HS_ECORRUPT, "missing metadata key", "tokenizer.ggml.model", NULL);
  h.model = "bert";
  expect_load_error(&h, HS_EINVAL, "unsupported tokenizer model 'bert'", "gpt2", NULL);
  h.model = "gpt2";
  h.pre = "smaug-xl";
  expect_load_error(&h, HS_EINVAL, "unknown pre-tokenizer 'smaug-xl' in 'tokenizer.ggml.pre'",
                    "llama-bpe", NULL);
  h.pre = "qwen2";
  h.tokens = NULL;
  expect_load_error(&h, HS_ECORRUPT, "missing metadata key", "'tokenizer.ggml.tokens'", NULL);
  expect_load_error(&h, HS_ECORRUPT, "'tokenizer.ggml.tokens' is an array of int32", "strings",
                    tokens_as_ints);
  h.tokens = toks;
  h.merges = NULL;
  expect_load_error(&h, HS_ECORRUPT, "missing metadata key 'tokenizer.ggml.merges'", "gpt2", NULL);
  h.merges = merges;
  h.types = types; /* written with one entry too few */
  expect_load_error(&h, HS_ECORRUPT, "'tokenizer.ggml.token_type' has 2 entries",
                    "'tokenizer.ggml.tokens' has 3", NULL);
  h.types = NULL;
  h.scores = scores; /* written with one entry too many */
  expect_load_error(&h, HS_ECORRUPT, "'tokenizer.ggml.scores' has 4 entries", NULL, NULL);
  h.scores = NULL;
  expect_load_error(&h, HS_ECORRUPT, "'tokenizer.ggml.scores' is an array of string", "floats",
                    scores_as_strings);
  expect_load_error(&h, HS_ECORRUPT, "'tokenizer.ggml.bos_token_id' is not an integer", NULL,
                    bos_as_string);
  expect_load_error(&h, HS_ECORRUPT, "'tokenizer.ggml.add_bos_token' is not a bool", NULL,
                    add_bos_as_int);
  h.model = "llama";
  h.merges = NULL;
  expect_load_error(&h, HS_ECORRUPT, "missing metadata key 'tokenizer.ggml.scores'", "llama", NULL);
  static const char *const none[1] = {NULL};
  h.tokens = none;
  h.n_tokens = 0;
  h.model = "gpt2";
  h.merges = merges;
  expect_load_error(&h, HS_ECORRUPT, "'tokenizer.ggml.tokens' is empty", NULL, NULL);
  hs_tokenizer *t;
  assert_int_equal(hs_tokenizer_load(NULL, &t), HS_EINVAL);
}

/* ---- out of memory ---- */

static void test_out_of_memory_load(void **state) {
  for (int v = 0; v < N_VOCABS; v++) {
    hs_gguf *g;
    assert_int_equal(hs_gguf_open(vocab_path[v], &g), 0);
    long live = live_blocks;
    long c0 = n_alloc_calls;
    hs_tokenizer *t;
    assert_int_equal(hs_tokenizer_load(g, &t), 0);
    long calls = n_alloc_calls - c0;
    hs_tokenizer_destroy(t);
    assert_int_equal(live_blocks, live);
    int failures = 0;
    for (long k = 1; k <= calls; k++) {
      hs_alloc_fail_after(k);
      t = NULL;
      int rc = hs_tokenizer_load(g, &t);
      hs_alloc_fail_after(0);
      if (rc == 0) {
        /* only a failed JIT compilation is survivable: the interpreter matches the same */
        ids_t c = encode(t, "Hello, world", 12, 0);
        ids_t r = encode(tok[v], "Hello, world", 12, 0);
        assert_int_equal(c.n, r.n);
        assert_memory_equal(c.v, r.v, c.n * sizeof(int32_t));
        free(c.v);
        free(r.v);
        hs_tokenizer_destroy(t);
      } else {
        assert_int_equal(rc, HS_ENOMEM);
        assert_null(t);
        assert_msg_has(hs_tokenizer_last_error(), "out of memory");
        failures++;
      }
      assert_int_equal(live_blocks, live);
    }
    assert_true(failures >= 5);
    hs_gguf_close(g);
  }
}

static void test_out_of_memory_encode(void **state) {
  static const char txt[] = "<|eot_id|>Hi  there,\n\t\xff friend! 12345 <s>\xe4\xbd\xa0\xe5\xa5\xbd";
  for (int v = 0; v < N_VOCABS; v++) {
    ids_t want = encode(tok[v], txt, sizeof txt - 1, HS_TOKENIZE_PARSE_SPECIAL);
    long live = live_blocks;
    long c0 = n_alloc_calls;
    ids_t again = encode(tok[v], txt, sizeof txt - 1, HS_TOKENIZE_PARSE_SPECIAL);
    long calls = n_alloc_calls - c0;
    free(again.v);
    int failures = 0;
    for (long k = 1; k <= calls; k++) {
      int32_t ids[256];
      size_t n;
      hs_alloc_fail_after(k);
      int rc = hs_tokenizer_encode(tok[v], txt, sizeof txt - 1, HS_TOKENIZE_PARSE_SPECIAL, ids, 256, &n);
      hs_alloc_fail_after(0);
      if (rc == 0) {
        assert_int_equal(n, want.n);
        assert_memory_equal(ids, want.v, n * sizeof(int32_t));
      } else {
        assert_int_equal(rc, HS_ENOMEM);
        failures++;
      }
      assert_int_equal(live_blocks, live);
    }
    assert_true(failures >= 1);
    free(want.v);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reference_llama3),   cmocka_unit_test(test_reference_qwen2),
      cmocka_unit_test(test_reference_default),  cmocka_unit_test(test_reference_gpt2),
      cmocka_unit_test(test_reference_spm),      cmocka_unit_test(test_bpe_by_hand),
      cmocka_unit_test(test_special_placement),  cmocka_unit_test(test_spm_by_hand),
      cmocka_unit_test(test_stream_by_hand),     cmocka_unit_test(test_vocabulary_queries),
      cmocka_unit_test(test_long_inputs),        cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_out_of_memory_load), cmocka_unit_test(test_out_of_memory_encode),
  };
  int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
  for (size_t i = 0; i < n_texts; i++) free(texts[i].p);
  return rc;
}
