/* tokenizer_pretok.c: the pre-tokenizers of byte-level BPE, with PCRE2.
 *
 * Before merging, a BPE tokenizer cuts text into pre-tokens with regular expressions, and merges
 * never cross their borders. llama.cpp describes each pre-tokenizer as a list of regexes applied
 * one after the other: the first cuts the text, the second cuts each of those pieces, and so on;
 * at every stage the text between two matches is a piece too, so the pieces always cover the
 * text, and a lookahead sees only its own piece. Llama 3, Qwen2 and GPT-2 use one regex;
 * llama.cpp's "default" uses four; StarCoder's (also SmolLM's) cuts every digit alone, then
 * applies GPT-2's.
 *
 * The regexes are those of llama.cpp with two rewrites that keep their meaning and pin down
 * details where engines differ:
 *   - `(?i:'s|'t|...)` is spelled `'[sS]|'[tT]|...` as llama.cpp does (a caseless match would
 *     also accept U+017F "ſ" and the Kelvin sign);
 *   - `\s` and `\S` are spelled as the explicit set of Unicode's White_Space characters, which
 *     is llama.cpp's notion of whitespace (PCRE2's \s also matches U+180E).
 * \p{L} and \p{N} are PCRE2's (Unicode 14 on Debian 12), compiled in UTF mode with JIT.
 *
 * Ill-formed UTF-8: PCRE2 matches only valid UTF-8, so when the input has ill-formed bytes the
 * regexes run on a copy where each such byte is replaced by 0x01. That keeps every offset, and
 * 0x01, a control character, belongs to exactly the classes U+FFFD would (not a letter, digit,
 * space, newline or punctuation), so every ill-formed byte acts as one "other" character, as it
 * would in llama.cpp after its replacement by U+FFFD; the pieces handed on are the original
 * bytes. */
#include <stdio.h>
#include <string.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define ERR (&hs_tokenizer_err)

/* Unicode White_Space, for use inside a character class. */
#define WS "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

/* Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static const char re_llama3[] =
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS
                 "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";

/* Qwen2: the same with single digits. */
static const char re_qwen2[] =
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS
                 "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static const char re_gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS
                              "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";

/* llama.cpp's default: punctuation runs, GPT-2, digit runs, three ASCII digits. */
static const char re_punct[] = "[\\p{P}\\$\\+<=>\\^~\\|]+";
static const char re_digits[] = "\\p{N}+";
static const char re_three[] = "[0-9][0-9][0-9]";
/* StarCoder / SmolLM: single digits first */
static const char re_digit[] = "\\p{N}";

#define MAX_STAGES 4

struct hs_pretok {
  hs_pre_type type;
  unsigned n_stages;
  pcre2_code *code[MAX_STAGES];
  pcre2_general_context *gc;
  pcre2_match_context *mc; /* no match or heap limit: the work is linear in the input */
};

/* ---- names ---- */

static const struct {
  const char *name;
  hs_pre_type type;
} names[] = {
    {"llama-bpe", HS_PRE_LLAMA3}, {"llama3", HS_PRE_LLAMA3},      {"llama-v3", HS_PRE_LLAMA3},
    {"falcon3", HS_PRE_LLAMA3},   {"qwen2", HS_PRE_QWEN2},        {"megrez", HS_PRE_QWEN2},
    {"deepseek-r1-qwen", HS_PRE_QWEN2}, {"default", HS_PRE_DEFAULT}, {"gpt-2", HS_PRE_GPT2},
    {"phi-2", HS_PRE_GPT2},       {"roberta-bpe", HS_PRE_GPT2},   {"mpt", HS_PRE_GPT2},
    {"olmo", HS_PRE_GPT2},        {"jais", HS_PRE_GPT2},          {"smollm", HS_PRE_STARCODER},
    {"starcoder", HS_PRE_STARCODER},
};

int hs_pretok_lookup(const char *name, size_t len, hs_pre_type *type) {
  if (!name) {
    *type = HS_PRE_DEFAULT;
    return 0;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0) {
      *type = names[i].type;
      return 0;
    }
  }
  return hs_set_error(ERR, HS_EINVAL,
                      "unknown pre-tokenizer '%.*s' in 'tokenizer.ggml.pre' (supported: "
                      "llama-bpe (also llama3, llama-v3, falcon3), qwen2 (also megrez, "
                      "deepseek-r1-qwen), default, gpt-2 (also phi-2, roberta-bpe, mpt, olmo, "
                      "jais), smollm (also starcoder))",
                      len > 64 ? 64 : (int)len, name);
}

const char *hs_pretok_type_name(hs_pre_type type) {
  switch (type) {
  case HS_PRE_LLAMA3: return "llama-bpe";
  case HS_PRE_QWEN2: return "qwen2";
  case HS_PRE_GPT2: return "gpt-2";
  case HS_PRE_STARCODER: return "smollm";
  case HS_PRE_DEFAULT: return "default";
  }
  return "default";
}

/* ---- PCRE2 through the library's allocator ---- */

static void *pc_malloc(PCRE2_SIZE size, void *data) {
  (void)data;
  return hs_malloc(size);
}

static void pc_free(void *p, void *data) {
  (void)data;
  hs_free(p);
}

void hs_pretok_destroy(hs_pretok *p) {
  if (!p) return;
  for (unsigned i = 0; i < p->n_stages; i++) pcre2_code_free(p->code[i]);
  pcre2_match_context_free(p->mc);
  pcre2_general_context_free(p->gc);
  hs_free(p);
}

int hs_pretok_create(hs_pre_type type, hs_pretok **out) {
  *out = NULL;
  const char *stages[MAX_STAGES];
  unsigned n = 0;
  switch (type) {
  case HS_PRE_LLAMA3: stages[n++] = re_llama3; break;
  case HS_PRE_QWEN2: stages[n++] = re_qwen2; break;
  case HS_PRE_GPT2: stages[n++] = re_gpt2; break;
  case HS_PRE_STARCODER:
    stages[n++] = re_digit;
    stages[n++] = re_gpt2;
    break;
  case HS_PRE_DEFAULT:
    stages[n++] = re_punct;
    stages[n++] = re_gpt2;
    stages[n++] = re_digits;
    stages[n++] = re_three;
    break;
  }
  hs_pretok *p = hs_calloc(1, sizeof *p);
  if (!p) return hs_set_error(ERR, HS_ENOMEM, "out of memory for the pre-tokenizer");
  p->type = type;
  p->gc = pcre2_general_context_create(pc_malloc, pc_free, NULL);
  if (!p->gc) {
    hs_free(p);
    return hs_set_error(ERR, HS_ENOMEM, "out of memory for the pre-tokenizer");
  }
  p->mc = pcre2_match_context_create(p->gc);
  pcre2_compile_context *cc = p->mc ? pcre2_compile_context_create(p->gc) : NULL;
  if (!cc) {
    hs_pretok_destroy(p);
    return hs_set_error(ERR, HS_ENOMEM, "out of memory for the pre-tokenizer");
  }
  for (unsigned i = 0; i < n; i++) {
    int code;
    PCRE2_SIZE at;
    p->code[i] = pcre2_compile((PCRE2_SPTR)stages[i], PCRE2_ZERO_TERMINATED,
                               PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C, &code, &at, cc);
    if (!p->code[i]) {
      pcre2_compile_context_free(cc);
      hs_pretok_destroy(p);
      if (code == PCRE2_ERROR_HEAP_FAILED)
        return hs_set_error(ERR, HS_ENOMEM, "out of memory compiling the pre-tokenizer");
      PCRE2_UCHAR msg[160];
      pcre2_get_error_message(code, msg, sizeof msg);
      return hs_set_error(ERR, HS_EINVAL, "pre-tokenizer '%s': regex %u does not compile at %zu: %s",
                          hs_pretok_type_name(type), i, (size_t)at, (const char *)msg);
    }
    p->n_stages = i + 1;
    /* JIT is an optimisation: without it (no JIT support, or out of memory) the interpreter
     * gives the same matches */
    (void)pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
  }
  pcre2_compile_context_free(cc);
  /* every alternative of these regexes backtracks at most over one run of one character class,
   * once per match, so the default limits (10 million steps, 20 MB of backtracking frames) would
   * only refuse long inputs, not catch runaway matching */
  pcre2_set_match_limit(p->mc, UINT32_MAX);
  pcre2_set_heap_limit(p->mc, UINT32_MAX);
  *out = p;
  return 0;
}

/* ---- splitting ---- */

typedef struct split_ctx {
  const hs_pretok *p;
  const char *orig;       /* the caller's text */
  const char *subject;    /* the same, or its copy with ill-formed bytes replaced */
  pcre2_match_data *md;
  hs_pretok_emit emit;
  void *ctx;
} split_ctx;

static int match_error(int rc) {
  if (rc == PCRE2_ERROR_NOMEMORY)
    return hs_set_error(ERR, HS_ENOMEM, "out of memory in the pre-tokenizer");
  PCRE2_UCHAR msg[160];
  pcre2_get_error_message(rc, msg, sizeof msg);
  return hs_set_error(ERR, HS_ELIMIT, "pre-tokenizer: regex match failed: %s", (const char *)msg);
}

static int piece(split_ctx *c, unsigned stage, size_t start, size_t len);

/* Applies regex `stage` to subject[start, start+len) and hands each match and each gap to the
 * next stage. */
static int run_stage(split_ctx *c, unsigned stage, size_t start, size_t len) {
  const unsigned char *subj = (const unsigned char *)c->subject + start;
  size_t off = 0;
  while (off < len) {
    int rc = pcre2_match(c->p->code[stage], subj, len, off, PCRE2_NO_UTF_CHECK, c->md, c->p->mc);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return match_error(rc);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
    size_t ms = ov[0], me = ov[1];
    if (me <= ms) { /* never loop on an empty match (these patterns have none) */
      if (ms >= len) break;
      size_t step = hs_utf8_valid_len(subj + ms, len - ms, NULL);
      me = ms + (step ? step : 1);
    }
    if (ms > off) {
      int r = piece(c, stage + 1, start + off, ms - off);
      if (r) return r;
    }
    int r = piece(c, stage + 1, start + ms, me - ms);
    if (r) return r;
    off = me;
  }
  if (off < len) return piece(c, stage + 1, start + off, len - off);
  return 0;
}

static int piece(split_ctx *c, unsigned stage, size_t start, size_t len) {
  if (stage < c->p->n_stages) return run_stage(c, stage, start, len);
  return c->emit(c->ctx, c->orig + start, len);
}

int hs_pretok_split(const hs_pretok *p, const char *text, size_t len, hs_pretok_emit emit,
                    void *ctx) {
  if (len == 0) return 0;
  /* find the first ill-formed byte, if any */
  const unsigned char *u = (const unsigned char *)text;
  size_t i = 0;
  while (i < len) {
    if (u[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = hs_utf8_valid_len(u + i, len - i, NULL);
    if (!k) break;
    i += k;
  }
  char *copy = NULL;
  if (i < len) {
    copy = hs_malloc(len);
    if (!copy) return hs_set_error(ERR, HS_ENOMEM, "out of memory in the pre-tokenizer");
    memcpy(copy, text, i);
    while (i < len) {
      if (u[i] < 0x80) {
        copy[i] = (char)u[i];
        i++;
        continue;
      }
      size_t k = hs_utf8_valid_len(u + i, len - i, NULL);
      if (k) {
        memcpy(copy + i, u + i, k);
        i += k;
      } else {
        copy[i++] = 0x01;
      }
    }
  }
  split_ctx c = {p, text, copy ? copy : text, NULL, emit, ctx};
  c.md = pcre2_match_data_create(1, p->gc);
  if (!c.md) {
    hs_free(copy);
    return hs_set_error(ERR, HS_ENOMEM, "out of memory in the pre-tokenizer");
  }
  int rc = piece(&c, 0, 0, len);
  pcre2_match_data_free(c.md);
  hs_free(copy);
  return rc;
}
