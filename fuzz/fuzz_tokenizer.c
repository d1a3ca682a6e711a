/* fuzz_tokenizer.c: the tokenizers against arbitrary text, and the loader against arbitrary
 * tokenizer metadata.
 *
 * At the first call, four vocabularies are trained from a small built-in corpus (BPE with the
 * llama-bpe, qwen2 and default pre-tokenizers, and SPM) and loaded. Then each input is either
 *
 *   - text (the first byte picks the vocabulary and the encode flags, the rest is the text):
 *     encoding must succeed; every id must be in range; the count asked for with no buffer must
 *     be the count produced; a buffer one id too short must give HS_ENOSPC and the same prefix;
 *     decode(encode(x)) must be x for BPE (rendering special tokens when they were parsed, and
 *     leaving out an added BOS) and for SPM when x is well-formed UTF-8 without "▁" and no
 *     special tokens were parsed; the streaming detokenizer must emit only whole UTF-8
 *     characters, and exactly the decoding when that is well-formed;
 *   - or, when it starts with "GGUF", a GGUF file: if it opens and its tokenizer loads, a fixed
 *     set of texts is encoded with every flag combination and decoded and streamed, with the
 *     same range and size checks (round trips are not promised for hostile vocabularies); a
 *     failure to load must leave a message.
 *
 * A broken promise aborts, which the fuzzer reports as a crash. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"
#include "hswarm/tokenizer.h"

#include "../tests/support/utf8_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

static const char corpus[] =
    "The quick brown fox jumps over the lazy dog. It's 12:45 and we've got 1,234 apples!\n"
    "int main(int argc, char **argv) {\n    for (int i = 0; i < argc; i++) printf(\"%s\\n\", argv[i]);\n"
    "    return 0;\n}\n"
    "def f(x):\n    return [y * 2 for y in range(x) if y % 3 == 0]\n\n"
    "Grüße aus München. Ça va? ¿Dónde está? Привет, мир! Γειά σου κόσμε! \n"
    "你好，世界！こんにちは世界。안녕하세요. مرحبا بالعالم. שלום עולם. नमस्ते दुनिया।\n"
    "Emoji: 😀 🚀 👍🏽 👨‍👩‍👧 🇫🇷 — “quotes” ‘single’ … e\xcc\x81 a\xcc\x88\n"
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\n"
    "<|im_start|>user\nhello<|im_end|>\n<s>[INST] hi [/INST] ok</s>\n"
    "    indented    code\t\ttabs\r\nwindows lines\r\n  \n\n\n"
    "The quick brown fox jumps over the lazy dog. It's 12:45 and we've got 1,234 apples!\n";

enum { N_TOK = 4 };
static hs_tokenizer *toks[N_TOK];

static hs_tokenizer *train(hs_tokenizer_kind kind, const char *pre, uint32_t n_vocab) {
  hs_gguf_writer *w;
  check(hs_gguf_writer_create(&w) == 0);
  hs_vocab_train_opts o = {kind, n_vocab, pre};
  check(hs_vocab_train(corpus, sizeof corpus - 1, &o, w, NULL) == 0);
  void *buf;
  size_t size;
  check(hs_gguf_writer_write_mem(w, &buf, &size) == 0);
  hs_gguf_writer_destroy(w);
  hs_gguf *g;
  check(hs_gguf_open_mem(buf, size, "fuzz", &g) == 0);
  hs_tokenizer *t;
  check(hs_tokenizer_load(g, &t) == 0);
  hs_gguf_close(g);
  hs_free(buf);
  return t;
}

static void init(void) {
  if (toks[0]) return;
  toks[0] = train(HS_TOKENIZER_BPE, "llama-bpe", 700);
  toks[1] = train(HS_TOKENIZER_BPE, "qwen2", 600);
  toks[2] = train(HS_TOKENIZER_BPE, "default", 500);
  toks[3] = train(HS_TOKENIZER_SPM, NULL, 700);
}

/* Encodes; checks sizes and ranges; returns the ids (malloc) and their count. */
static int32_t *encode(const hs_tokenizer *t, const char *text, size_t len, unsigned flags,
                       size_t *n_out) {
  size_t need = 0;
  int rc = hs_tokenizer_encode(t, text, len, flags, NULL, 0, &need);
  check(rc == 0 || rc == HS_ENOSPC);
  check((rc == 0) == (need == 0));
  int32_t *ids = malloc((need + 1) * sizeof *ids);
  check(ids != NULL);
  size_t n = 0;
  check(hs_tokenizer_encode(t, text, len, flags, ids, need, &n) == 0 && n == need);
  uint32_t nv = hs_tokenizer_n_vocab(t);
  for (size_t i = 0; i < n; i++) check(ids[i] >= 0 && (uint32_t)ids[i] < nv);
  if (n > 0) {
    int32_t *short_ids = malloc(n * sizeof *short_ids);
    check(short_ids != NULL);
    size_t m = 0;
    check(hs_tokenizer_encode(t, text, len, flags, short_ids, n - 1, &m) == HS_ENOSPC && m == n);
    check(n == 1 || memcmp(short_ids, ids, (n - 1) * sizeof *ids) == 0);
    free(short_ids);
  }
  *n_out = n;
  return ids;
}

static char *decode(const hs_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                    size_t *len) {
  size_t need = 0;
  int rc = hs_tokenizer_decode(t, ids, n, flags, NULL, 0, &need);
  check(rc == 0 || rc == HS_ENOSPC);
  char *out = malloc(need + 1);
  check(out != NULL);
  check(hs_tokenizer_decode(t, ids, n, flags, out, need, len) == 0 && *len == need);
  return out;
}

/* Streams ids; every chunk must be whole characters; compares with the decoding when that is
 * well-formed. */
static void stream(const hs_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                   const char *dec, size_t dec_len) {
  hs_detok_stream st;
  hs_detok_stream_init(&st, flags);
  bool dec_valid = utf8_well_formed((const unsigned char *)dec, dec_len);
  size_t at = 0;
  for (size_t i = 0; i <= n; i++) {
    const char *s;
    size_t k = 0, tl = 0;
    if (i < n) check(hs_tokenizer_token_bytes(t, ids[i], flags, &s, &tl) == 0);
    size_t cap = 3 * (tl + 1) + 4;
    char *chunk = malloc(cap);
    check(chunk != NULL);
    int rc = i < n ? hs_detok_stream_push(t, &st, ids[i], chunk, cap, &k)
                   : hs_detok_stream_flush(&st, chunk, cap, &k);
    check(rc == 0 && k <= cap);
    check(utf8_well_formed((const unsigned char *)chunk, k));
    if (dec_valid) {
      check(at + k <= dec_len && memcmp(dec + at, chunk, k) == 0);
    }
    at += k;
    free(chunk);
  }
  if (dec_valid) check(at == dec_len);
}

static bool has_space_mark(const char *p, size_t n) {
  for (size_t i = 0; i + 2 < n; i++)
    if (!memcmp(p + i, "\xe2\x96\x81", 3)) return true;
  return false;
}

static void text_case(const hs_tokenizer *t, const char *text, size_t len, unsigned flags,
                      bool round_trip) {
  size_t n;
  int32_t *ids = encode(t, text, len, flags, &n);
  unsigned dflags = HS_DETOK_STRIP_LEADING_SPACE |
                    (flags & HS_TOKENIZE_PARSE_SPECIAL ? HS_DETOK_SPECIAL : 0);
  size_t dl;
  char *d = decode(t, ids, n, dflags, &dl);
  stream(t, ids, n, dflags, d, dl);
  if (round_trip) {
    size_t skip = (flags & HS_TOKENIZE_ADD_BOS) && hs_tokenizer_get_add_bos(t) &&
                  hs_tokenizer_bos(t) >= 0 ? 1 : 0;
    bool bpe = hs_tokenizer_get_kind(t) == HS_TOKENIZER_BPE;
    bool must = bpe || (!(flags & HS_TOKENIZE_PARSE_SPECIAL) && !has_space_mark(text, len) &&
                        utf8_well_formed((const unsigned char *)text, len));
    if (must && n >= skip) {
      size_t rl;
      char *r = decode(t, ids + skip, n - skip, dflags, &rl);
      check(rl == len && memcmp(r, text, len) == 0);
      free(r);
    }
  }
  free(d);
  free(ids);
}

static void gguf_case(const uint8_t *data, size_t size) {
  uint8_t *copy = malloc(size);
  check(copy != NULL);
  memcpy(copy, data, size);
  hs_gguf *g;
  if (hs_gguf_open_mem(copy, size, "fuzz", &g) == 0) {
    hs_tokenizer *t = (hs_tokenizer *)1;
    int rc = hs_tokenizer_load(g, &t);
    hs_gguf_close(g); /* the tokenizer must not depend on the file any more */
    if (rc) {
      check(t == NULL && rc < 0 && hs_tokenizer_last_error()[0] != 0);
    } else {
      static const char *const texts[] = {
          "", " ", "Hello world", "  x\n\n\ty  ", "<|eot_id|><s></s><unk>[INST]",
          "\xff\xe2\x82 caf\xc3\xa9 \xf0\x9f\x98\x80 123456", "a b c d e f g h i j k l m n o p"};
      for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        for (unsigned flags = 0; flags < 4; flags++)
          text_case(t, texts[i], strlen(texts[i]), flags, false);
      uint32_t nv = hs_tokenizer_n_vocab(t);
      check(nv > 0);
      for (uint32_t id = 0; id < nv && id < 4096; id++) {
        const char *s;
        size_t n;
        check(hs_tokenizer_token_text(t, (int32_t)id, &s, &n) == 0 && s[n] == 0);
        int32_t back;
        check(hs_tokenizer_find(t, s, n, &back) == 0 && back >= (int32_t)id);
        int ty = hs_tokenizer_token_type(t, (int32_t)id);
        check(ty >= 0 && ty <= HS_TOKEN_BYTE);
      }
      hs_tokenizer_destroy(t);
    }
  }
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
    gguf_case(data, size);
    return 0;
  }
  if (size == 0) return 0;
  const hs_tokenizer *t = toks[data[0] % N_TOK];
  unsigned flags = (data[0] >> 2) & 3;
  /* an exactly-sized copy, so that the sanitizers see any over-read */
  size_t len = size - 1;
  char *text = malloc(len ? len : 1);
  check(text != NULL);
  memcpy(text, data + 1, len);
  text_case(t, text, len, flags, true);
  free(text);
  return 0;
}
