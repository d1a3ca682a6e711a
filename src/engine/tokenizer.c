/* tokenizer.c: a tokenizer from GGUF metadata, its accessors, and encode's outer loop.
 *
 * Loading follows llama.cpp's reading of the tokenizer.ggml.* keys step by step, because every
 * step changes ids: the model picks the defaults (SPM: BOS 1, EOS 2, UNK 0, a space prefix and
 * BOS added; BPE: BOS = EOS = 11, nothing added), the pre-tokenizer name may change them
 * (llama-bpe adds BOS and takes whole-vocabulary pre-tokens as they are), explicit keys override
 * them, then tokens are found by text: EOT when no key names it, EOM, the FIM tokens, and the
 * end-of-turn markers, and each one found that way is made a CONTROL token (so it is no longer
 * split out of plain text and renders as "" unless asked). Only then is the special-token trie
 * built. Duplicate token strings keep llama.cpp's "last id wins" for lookups by text; an empty
 * token string is renamed "[EMPTY_<id>]" as llama.cpp does.
 *
 * Encoding first cuts the input at special-token texts (tokenizer_special.c), then hands each raw
 * fragment to the BPE or SPM encoder. SPM adds its space prefix to every fragment that starts
 * the text or follows a special token (llama.cpp's is_prev_special). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

_Thread_local hs_errbuf hs_tokenizer_err;
#define ERR (&hs_tokenizer_err)

const char *hs_tokenizer_last_error(void) { return hs_tokenizer_err.msg; }

void hs_tokenizer_destroy(hs_tokenizer *t) {
  if (!t) return;
  hs_strtab_free(&t->tab);
  hs_free(t->score);
  hs_free(t->type);
  hs_free(t->piece);
  hs_free(t->piece_off);
  hs_free(t->piece_len);
  hs_free(t->eog);
  hs_free(t->specials);
  hs_free(t->special_next);
  hs_free(t->trie);
  hs_pretok_destroy(t->pretok);
  hs_u64map_free(&t->merges);
  hs_free(t->merge_rank);
  hs_free(t->merge_sym);
  hs_free(t);
}

/* ---- reading keys ---- */

static const char *K_MODEL = "tokenizer.ggml.model";
static const char *K_PRE = "tokenizer.ggml.pre";
static const char *K_TOKENS = "tokenizer.ggml.tokens";
static const char *K_SCORES = "tokenizer.ggml.scores";
static const char *K_TYPES = "tokenizer.ggml.token_type";

/* An optional bool key: 0 (v unchanged when absent) or HS_ECORRUPT. */
static int opt_bool(const hs_gguf *g, const char *key, bool *v) {
  bool b;
  int rc = hs_gguf_get_bool(g, key, &b);
  if (rc == HS_ENOENT) return 0;
  if (rc) return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is not a bool", key);
  *v = b;
  return 0;
}

/* An optional token-id key. As llama.cpp, a value past the vocabulary is ignored. */
static int opt_id(const hs_gguf *g, const char *key, uint32_t n_vocab, int32_t *id) {
  uint64_t v;
  int rc = hs_gguf_get_uint(g, key, &v);
  if (rc == HS_ENOENT) return 0;
  if (rc) {
    int64_t s;
    if (hs_gguf_get_int(g, key, &s) == 0) return 0; /* negative: out of range, ignored */
    return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is not an integer token id", key);
  }
  if (v < n_vocab) *id = (int32_t)v;
  return 0;
}

/* An optional array: 0 with *count (0 when absent) or HS_ECORRUPT. accept: 's' strings,
 * 'f' floats, 'i' integers. */
static int opt_array(const hs_gguf *g, const char *key, char accept, uint64_t *count) {
  hs_gguf_value_type et;
  *count = 0;
  int rc = hs_gguf_get_arr(g, key, &et, count);
  if (rc == HS_ENOENT) return 0;
  if (rc) return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is not an array", key);
  bool ok;
  const char *want;
  switch (accept) {
  case 's':
    ok = et == HS_GGUF_STRING;
    want = "strings";
    break;
  case 'f':
    ok = et == HS_GGUF_FLOAT32 || et == HS_GGUF_FLOAT64;
    want = "floats";
    break;
  default:
    ok = et <= HS_GGUF_INT32 && et != HS_GGUF_FLOAT32;
    ok = ok || et == HS_GGUF_UINT64 || et == HS_GGUF_INT64;
    want = "integers";
    break;
  }
  if (!ok)
    return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is an array of %s, expected %s", key,
                        hs_gguf_value_type_name(et), want);
  return 0;
}

/* ---- building ---- */

static int read_vocab(hs_tokenizer *t, const hs_gguf *g) {
  uint64_t n;
  int rc = opt_array(g, K_TOKENS, 's', &n);
  if (rc) return rc;
  size_t idx;
  if (hs_gguf_find_key(g, K_TOKENS, &idx) != 0)
    return hs_set_error(ERR, HS_ECORRUPT, "missing metadata key '%s'", K_TOKENS);
  if (n == 0) return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is empty", K_TOKENS);
  if (n > INT32_MAX)
    return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' has %" PRIu64 " entries (at most %d)",
                        K_TOKENS, n, INT32_MAX);
  t->n_vocab = (uint32_t)n;
  uint64_t ns, nt;
  if ((rc = opt_array(g, K_SCORES, 'f', &ns)) || (rc = opt_array(g, K_TYPES, 'i', &nt))) return rc;
  bool has_scores = hs_gguf_find_key(g, K_SCORES, &idx) == 0;
  bool has_types = hs_gguf_find_key(g, K_TYPES, &idx) == 0;
  if (has_scores && ns != n)
    return hs_set_error(ERR, HS_ECORRUPT,
                        "metadata key '%s' has %" PRIu64 " entries but '%s' has %" PRIu64,
                        K_SCORES, ns, K_TOKENS, n);
  if (has_types && nt != n)
    return hs_set_error(ERR, HS_ECORRUPT,
                        "metadata key '%s' has %" PRIu64 " entries but '%s' has %" PRIu64,
                        K_TYPES, nt, K_TOKENS, n);
  if (t->kind == HS_TOKENIZER_SPM && !has_scores)
    return hs_set_error(ERR, HS_ECORRUPT,
                        "missing metadata key '%s' (the 'llama' tokenizer model needs it)",
                        K_SCORES);
  t->score = hs_calloc((size_t)n, sizeof *t->score);
  t->type = hs_malloc((size_t)n);
  if (!t->score || !t->type) return hs_set_error(ERR, HS_ENOMEM, "out of memory for the vocabulary");
  for (uint32_t i = 0; i < t->n_vocab; i++) {
    const char *s;
    size_t len;
    if (hs_gguf_arr_str(g, K_TOKENS, i, &s, &len) != 0)
      return hs_set_error(ERR, HS_ECORRUPT, "cannot read entry %u of '%s'", i, K_TOKENS);
    char empty[32];
    if (len == 0) {
      len = (size_t)snprintf(empty, sizeof empty, "[EMPTY_%u]", i);
      s = empty;
    }
    if (len >= UINT32_MAX / 2)
      return hs_set_error(ERR, HS_ECORRUPT, "entry %u of '%s' is too long", i, K_TOKENS);
    if (hs_strtab_add(&t->tab, s, len, true, NULL))
      return hs_set_error(ERR, HS_ENOMEM, "out of memory for the vocabulary");
    if (has_scores) {
      double d = 0;
      if (hs_gguf_arr_f64(g, K_SCORES, i, &d) != 0)
        return hs_set_error(ERR, HS_ECORRUPT, "cannot read entry %u of '%s'", i, K_SCORES);
      t->score[i] = isnan(d) ? -INFINITY : (float)d;
    }
    t->type[i] = HS_TOKEN_NORMAL;
    if (has_types) {
      int64_t v = 0;
      if (hs_gguf_arr_int(g, K_TYPES, i, &v) != 0) v = 0; /* a u64 past INT64_MAX: undefined */
      t->type[i] = v >= HS_TOKEN_NORMAL && v <= HS_TOKEN_BYTE ? (uint8_t)v : 0;
    }
  }
  return 0;
}

static int32_t find_text(const hs_tokenizer *t, const char *s) {
  uint32_t e = hs_strtab_find(&t->tab, s, strlen(s));
  return e != HS_TOK_NONE && e < t->n_vocab ? (int32_t)e : -1;
}

/* The first token of list present in the vocabulary, made CONTROL (llama.cpp's detection). */
static void detect(hs_tokenizer *t, int32_t *id, const char *const *list) {
  if (*id >= 0) return;
  for (; *list; list++) {
    int32_t e = find_text(t, *list);
    if (e >= 0) {
      *id = e;
      t->type[e] = HS_TOKEN_CONTROL;
      return;
    }
  }
}

static void eog_add(hs_tokenizer *t, int32_t id) {
  if (id >= 0 && (uint32_t)id < t->n_vocab) t->eog[id >> 3] |= (uint8_t)(1u << (id & 7));
}

static int read_specials(hs_tokenizer *t, const hs_gguf *g) {
  static const struct {
    const char *key;
    size_t off;
  } keys[] = {
      {"tokenizer.ggml.bos_token_id", offsetof(hs_tokenizer, bos)},
      {"tokenizer.ggml.eos_token_id", offsetof(hs_tokenizer, eos)},
      {"tokenizer.ggml.eot_token_id", offsetof(hs_tokenizer, eot)},
      {"tokenizer.ggml.eom_token_id", offsetof(hs_tokenizer, eom)},
      {"tokenizer.ggml.unknown_token_id", offsetof(hs_tokenizer, unk)},
      {"tokenizer.ggml.seperator_token_id", offsetof(hs_tokenizer, sep)},
      {"tokenizer.ggml.padding_token_id", offsetof(hs_tokenizer, pad)},
      {"tokenizer.ggml.fim_pre_token_id", offsetof(hs_tokenizer, fim_pre)},
      {"tokenizer.ggml.fim_suf_token_id", offsetof(hs_tokenizer, fim_suf)},
      {"tokenizer.ggml.fim_mid_token_id", offsetof(hs_tokenizer, fim_mid)},
      {"tokenizer.ggml.fim_pad_token_id", offsetof(hs_tokenizer, fim_pad)},
      {"tokenizer.ggml.fim_rep_token_id", offsetof(hs_tokenizer, fim_rep)},
      {"tokenizer.ggml.fim_sep_token_id", offsetof(hs_tokenizer, fim_sep)},
      {"tokenizer.ggml.prefix_token_id", offsetof(hs_tokenizer, fim_pre)},
      {"tokenizer.ggml.suffix_token_id", offsetof(hs_tokenizer, fim_suf)},
      {"tokenizer.ggml.middle_token_id", offsetof(hs_tokenizer, fim_mid)},
  };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    int rc = opt_id(g, keys[i].key, t->n_vocab, (int32_t *)((char *)t + keys[i].off));
    if (rc) return rc;
  }
  int rc;
  if ((rc = opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos)) ||
      (rc = opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos)))
    return rc;

  /* found by text, as llama.cpp does (its lists, in its order) */
  static const char *const eot[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                    "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
                                    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                    "<end_of_utterance>", NULL};
  static const char *const eom[] = {"<|eom_id|>", NULL};
  static const char *const fpre[] = {"<|fim_prefix|>", "<fim-prefix>",
                                     "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
                                     NULL};
  static const char *const fsuf[] = {"<|fim_suffix|>", "<fim-suffix>",
                                     "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>", NULL};
  static const char *const fmid[] = {"<|fim_middle|>", "<fim-middle>",
                                     "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", NULL};
  static const char *const fpad[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
  static const char *const frep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
  static const char *const fsep[] = {"<|file_sep|>", NULL};
  detect(t, &t->eot, eot);
  detect(t, &t->eom, eom);
  detect(t, &t->fim_pre, fpre);
  detect(t, &t->fim_suf, fsuf);
  detect(t, &t->fim_mid, fmid);
  detect(t, &t->fim_pad, fpad);
  detect(t, &t->fim_rep, frep);
  detect(t, &t->fim_sep, fsep);

  /* a default id past a small vocabulary means none */
  int32_t *ids[] = {&t->bos, &t->eos, &t->eot, &t->eom, &t->unk, &t->sep, &t->pad};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
    if (*ids[i] >= 0 && (uint32_t)*ids[i] >= t->n_vocab) *ids[i] = -1;

  t->eog = hs_calloc(((size_t)t->n_vocab + 7) / 8, 1);
  if (!t->eog) return hs_set_error(ERR, HS_ENOMEM, "out of memory for the vocabulary");
  eog_add(t, t->fim_pad);
  eog_add(t, t->fim_rep);
  eog_add(t, t->fim_sep);
  static const char *const eog[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>",
                                    "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
                                    "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
                                    NULL};
  for (const char *const *p = eog; *p; p++) {
    int32_t e = find_text(t, *p);
    if (e >= 0) {
      eog_add(t, e);
      t->type[e] = HS_TOKEN_CONTROL;
    }
  }
  eog_add(t, t->eos);
  eog_add(t, t->eot);
  eog_add(t, t->eom);
  return 0;
}

int hs_tokenizer_load(const hs_gguf *g, hs_tokenizer **out) {
  if (!g || !out) return hs_set_error(ERR, HS_EINVAL, "hs_tokenizer_load: NULL argument");
  *out = NULL;
  const char *model;
  size_t model_len;
  int rc = hs_gguf_get_str(g, K_MODEL, &model, &model_len);
  if (rc == HS_ENOENT) return hs_set_error(ERR, HS_ECORRUPT, "missing metadata key '%s'", K_MODEL);
  if (rc) return hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is not a string", K_MODEL);
  hs_tokenizer_kind kind;
  if (model_len == 4 && memcmp(model, "gpt2", 4) == 0) {
    kind = HS_TOKENIZER_BPE;
  } else if (model_len == 5 && memcmp(model, "llama", 5) == 0) {
    kind = HS_TOKENIZER_SPM;
  } else {
    return hs_set_error(ERR, HS_EINVAL,
                        "unsupported tokenizer model '%.*s' in '%s' (supported: gpt2 (byte-level "
                        "BPE), llama (SentencePiece))",
                        model_len > 64 ? 64 : (int)model_len, model, K_MODEL);
  }
  hs_tokenizer *t = hs_calloc(1, sizeof *t);
  if (!t) return hs_set_error(ERR, HS_ENOMEM, "out of memory for the tokenizer");
  hs_strtab_init(&t->tab);
  hs_u64map_init(&t->merges);
  t->kind = kind;
  t->eot = t->eom = t->sep = t->pad = -1;
  t->fim_pre = t->fim_suf = t->fim_mid = t->fim_pad = t->fim_rep = t->fim_sep = -1;
  if (kind == HS_TOKENIZER_SPM) {
    t->bos = 1;
    t->eos = 2;
    t->unk = 0;
    t->add_space_prefix = true;
    t->add_bos = true;
  } else {
    t->bos = t->eos = 11;
    t->unk = -1;
    const char *pre = NULL;
    size_t pre_len = 0;
    rc = hs_gguf_get_str(g, K_PRE, &pre, &pre_len);
    if (rc && rc != HS_ENOENT) {
      rc = hs_set_error(ERR, HS_ECORRUPT, "metadata key '%s' is not a string", K_PRE);
      goto fail;
    }
    if ((rc = hs_pretok_lookup(rc ? NULL : pre, pre_len, &t->pre))) goto fail;
    if (t->pre == HS_PRE_LLAMA3) {
      t->ignore_merges = true;
      t->add_bos = true;
    }
    if ((rc = hs_pretok_create(t->pre, &t->pretok))) goto fail;
  }
  if ((rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix))) goto fail;
  if ((rc = read_vocab(t, g))) goto fail;
  if ((rc = read_specials(t, g))) goto fail;
  if ((rc = hs_tok_special_build(t))) goto fail;
  if ((rc = hs_tok_pieces_build(t))) goto fail;
  if (kind == HS_TOKENIZER_BPE) {
    if ((rc = hs_tok_bpe_prepare(t, g))) goto fail;
  } else {
    hs_tok_spm_prepare(t);
  }
  *out = t;
  return 0;
fail:
  hs_tokenizer_destroy(t);
  return rc;
}

/* ---- accessors ---- */

hs_tokenizer_kind hs_tokenizer_get_kind(const hs_tokenizer *t) { return t->kind; }

const char *hs_tokenizer_pre_name(const hs_tokenizer *t) {
  return t->kind == HS_TOKENIZER_SPM ? "" : hs_pretok_type_name(t->pre);
}

uint32_t hs_tokenizer_n_vocab(const hs_tokenizer *t) { return t->n_vocab; }
int32_t hs_tokenizer_bos(const hs_tokenizer *t) { return t->bos; }
int32_t hs_tokenizer_eos(const hs_tokenizer *t) { return t->eos; }
int32_t hs_tokenizer_eot(const hs_tokenizer *t) { return t->eot; }
int32_t hs_tokenizer_unk(const hs_tokenizer *t) { return t->unk; }
int32_t hs_tokenizer_pad(const hs_tokenizer *t) { return t->pad; }
bool hs_tokenizer_get_add_bos(const hs_tokenizer *t) { return t->add_bos; }
bool hs_tokenizer_get_add_eos(const hs_tokenizer *t) { return t->add_eos; }

bool hs_tokenizer_is_eog(const hs_tokenizer *t, int32_t id) {
  if (!t || id < 0 || (uint32_t)id >= t->n_vocab) return false;
  return (t->eog[id >> 3] >> (id & 7)) & 1;
}

int hs_tokenizer_token_type(const hs_tokenizer *t, int32_t id) {
  if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
    return hs_set_error(ERR, HS_EINVAL, "token id %" PRId32 " is out of range", id);
  return t->type[id];
}

int hs_tokenizer_token_text(const hs_tokenizer *t, int32_t id, const char **s, size_t *len) {
  if (!t || !s || id < 0 || (uint32_t)id >= t->n_vocab)
    return hs_set_error(ERR, HS_EINVAL, "token id %" PRId32 " is out of range", id);
  *s = hs_strtab_str(&t->tab, (uint32_t)id);
  if (len) *len = t->tab.len[id];
  return 0;
}

int hs_tokenizer_find(const hs_tokenizer *t, const char *text, size_t len, int32_t *id) {
  if (!t || !id || (!text && len)) return hs_set_error(ERR, HS_EINVAL, "hs_tokenizer_find: NULL argument");
  uint32_t e = hs_strtab_find(&t->tab, text ? text : "", len);
  if (e == HS_TOK_NONE || e >= t->n_vocab)
    return hs_set_error(ERR, HS_ENOENT, "no token has the text '%.*s'", len > 64 ? 64 : (int)len,
                        text ? text : "");
  *id = (int32_t)e;
  return 0;
}

/* ---- encoding ---- */

int hs_tokenizer_encode(const hs_tokenizer *t, const char *text, size_t len, unsigned flags,
                        int32_t *ids, size_t cap, size_t *n_out) {
  if (n_out) *n_out = 0;
  if (!t || !n_out || (!text && len) || (!ids && cap))
    return hs_set_error(ERR, HS_EINVAL, "hs_tokenizer_encode: NULL argument");
  if (flags & ~(HS_TOKENIZE_ADD_BOS | HS_TOKENIZE_PARSE_SPECIAL))
    return hs_set_error(ERR, HS_EINVAL, "hs_tokenizer_encode: unknown flags 0x%x", flags);
  if (len > INT32_MAX)
    return hs_set_error(ERR, HS_EINVAL, "hs_tokenizer_encode: text of %zu bytes (at most %d)", len,
                        INT32_MAX);
  hs_tok_sink sink = {ids, cap, 0};
  hs_tok_item *items = NULL;
  size_t n_items = 0;
  int rc = 0;
  if (len) {
    rc = hs_tok_special_partition(t, text, len, (flags & HS_TOKENIZE_PARSE_SPECIAL) != 0, &items,
                                  &n_items);
    if (rc) return rc;
  }
  bool add_special = (flags & HS_TOKENIZE_ADD_BOS) != 0;
  if (add_special && t->add_bos && t->bos >= 0) hs_tok_sink_put(&sink, t->bos);
  hs_tok_scratch scratch = {0};
  bool prev_special = true;
  for (size_t i = 0; i < n_items && rc == 0; i++) {
    const hs_tok_item *it = &items[i];
    if (it->id >= 0) {
      hs_tok_sink_put(&sink, it->id);
      prev_special = true;
      continue;
    }
    if (t->kind == HS_TOKENIZER_BPE) {
      rc = hs_tok_bpe_encode(t, &scratch, text + it->start, it->len, &sink);
    } else {
      rc = hs_tok_spm_encode(t, &scratch, text + it->start, it->len,
                             t->add_space_prefix && prev_special, &sink);
    }
    prev_special = false;
  }
  hs_tok_scratch_free(&scratch);
  hs_free(items);
  if (rc) return rc;
  if (add_special && t->add_eos && t->eos >= 0) hs_tok_sink_put(&sink, t->eos);
  *n_out = sink.n;
  if (sink.n > cap)
    return hs_set_error(ERR, HS_ENOSPC, "the encoding has %zu ids, the buffer holds %zu", sink.n,
                        cap);
  return 0;
}
