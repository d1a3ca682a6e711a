/* hswarm/tokenizer.h: text <-> token ids for Llama-family GGUF models, and vocabulary training.
 *
 * A tokenizer is built from the `tokenizer.ggml.*` metadata of a GGUF file and interprets it the
 * way llama.cpp does, so that a real Llama 2, Llama 3, Mistral or Qwen2 file gives the same ids.
 * Two models are supported (`tokenizer.ggml.model`):
 *
 *   "gpt2"   byte-level BPE (Llama 3, Qwen2). Text is cut into pre-tokens by the regular
 *            expressions named by `tokenizer.ggml.pre`; each pre-token's bytes are written as
 *            GPT-2's printable stand-in characters (bytes_to_unicode) and merged by the ranks of
 *            `tokenizer.ggml.merges` ("a b" strings; lowest rank first, leftmost on ties).
 *            Pre-tokenizers (hs_tokenizer_pre_name gives the first name of each line):
 *              llama-bpe  (also llama3, llama-v3, falcon3): Llama 3's regex; a pre-token that is a
 *                         whole vocabulary entry is taken as is (llama.cpp's ignore_merges), and
 *                         add_bos_token defaults to true
 *              qwen2      (also megrez, deepseek-r1-qwen): Llama 3's regex with single digits
 *              default    (also an absent key): llama.cpp's default, four regexes applied one
 *                         after the other (punctuation runs, GPT-2's regex, digit runs, groups
 *                         of three ASCII digits)
 *              gpt-2      (also phi-2, roberta-bpe, mpt, olmo, jais): GPT-2's regex
 *            Any other name is HS_EINVAL with a message listing these.
 *   "llama"  SentencePiece (Llama 2, Mistral): spaces become U+2581 ("▁"), a leading "▁" is
 *            added (`tokenizer.ggml.add_space_prefix`, default true), and adjacent pieces are
 *            merged while their concatenation is in the vocabulary, best `tokenizer.ggml.scores`
 *            first (leftmost on ties); what is left outside the vocabulary is spelled with the
 *            `<0xNN>` byte tokens.
 *
 * Token types come from `tokenizer.ggml.token_type` (HS_TOKEN_*; all NORMAL when absent).
 * Special ids come from `tokenizer.ggml.{bos,eos,eot,eom,unknown,padding,seperator}_token_id`
 * with llama.cpp's defaults when absent (SPM: BOS 1, EOS 2, UNK 0; BPE: BOS = EOS = 11); an id
 * past the vocabulary is ignored (the default stays), and a default past it becomes -1 (none).
 * As llama.cpp does, tokens whose text is an end-of-turn marker ("<|eot_id|>", "<|im_end|>",
 * "<|endoftext|>", "<|end_of_text|>", "<end_of_turn>", "<|eom_id|>", ...) are made CONTROL
 * tokens, EOT is found by text when its key is absent (first of llama.cpp's list that exists),
 * and the end-of-generation set is EOS, EOT, EOM, those markers and the FIM pad/repo/separator
 * tokens.
 *
 * Special tokens in text. Texts of CONTROL and UNKNOWN tokens become single tokens only with
 * HS_TOKENIZE_PARSE_SPECIAL; USER_DEFINED tokens are always split out first, with or without the
 * flag, because llama.cpp (and Hugging Face's tokenizers) do so. Longer token texts are taken
 * first over the whole text (ties: lower id first), then shorter ones in what remains.
 *
 * Invalid UTF-8 (deliberate difference from llama.cpp, which replaces such bytes by U+FFFD and so
 * loses them): for the BPE pre-tokenizer every byte that is not part of a well-formed UTF-8
 * sequence counts as one character that is neither a letter, a digit nor a space (as U+FFFD
 * would), but the BPE then encodes the original bytes, so any byte string survives
 * decode(encode(x)) == x. Valid UTF-8 gives llama.cpp's ids. SPM works on bytes and needs no
 * special rule. Letters and digits are those of PCRE2's Unicode tables (Unicode 14 on Debian 12),
 * whitespace is Unicode's White_Space set as in llama.cpp.
 *
 * Lifetimes and threads. hs_tokenizer_load copies everything it needs: the hs_gguf may be closed
 * afterwards. A hs_tokenizer is immutable after load; any number of threads may encode and decode
 * with it at once (each call allocates its own scratch memory through hs_malloc). Strings it
 * returns stay valid until hs_tokenizer_destroy. Error messages are per thread
 * (hs_tokenizer_last_error), shared by every function of this header. */
#ifndef HSWARM_TOKENIZER_H
#define HSWARM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_tokenizer hs_tokenizer;

typedef enum hs_tokenizer_kind { HS_TOKENIZER_BPE = 0, HS_TOKENIZER_SPM = 1 } hs_tokenizer_kind;

/* Token types, as stored in tokenizer.ggml.token_type. hs_tokenizer_token_type returns 0 for a
 * stored value outside 1..6 (llama.cpp's "undefined": never split out of text, renders as ""). */
enum {
  HS_TOKEN_NORMAL = 1,
  HS_TOKEN_UNKNOWN = 2,
  HS_TOKEN_CONTROL = 3,
  HS_TOKEN_USER_DEFINED = 4,
  HS_TOKEN_UNUSED = 5,
  HS_TOKEN_BYTE = 6
};

/* ---- loading ---- */

/* Builds a tokenizer from g's tokenizer.ggml.* keys. On success *out is owned by the caller
 * (hs_tokenizer_destroy). Errors, each with a message naming the key at fault:
 *   HS_EINVAL    NULL argument; a tokenizer model or pre-tokenizer this library does not support
 *   HS_ECORRUPT  tokenizer.ggml.model or .tokens missing; an array of the wrong element type; a
 *                scores, token_type array whose length differs from tokens; gpt2 without
 *                merges; llama without scores; a key of the wrong type; a token too long
 *   HS_ENOMEM    out of memory */
int hs_tokenizer_load(const hs_gguf *g, hs_tokenizer **out);
void hs_tokenizer_destroy(hs_tokenizer *t); /* NULL is ignored */

/* The calling thread's last error message of this module (load, encode, decode, training,
 * corpus reading). Never NULL. */
const char *hs_tokenizer_last_error(void);

/* ---- the vocabulary ---- */

hs_tokenizer_kind hs_tokenizer_get_kind(const hs_tokenizer *t);
/* "llama-bpe", "qwen2", "default" or "gpt-2" for BPE (the canonical name, whatever alias the file
 * used), "" for SPM. Static. */
const char *hs_tokenizer_pre_name(const hs_tokenizer *t);
uint32_t hs_tokenizer_n_vocab(const hs_tokenizer *t);
/* Special token ids; -1 when the vocabulary has none. */
int32_t hs_tokenizer_bos(const hs_tokenizer *t);
int32_t hs_tokenizer_eos(const hs_tokenizer *t);
int32_t hs_tokenizer_eot(const hs_tokenizer *t);
int32_t hs_tokenizer_unk(const hs_tokenizer *t);
int32_t hs_tokenizer_pad(const hs_tokenizer *t);
/* tokenizer.ggml.add_bos_token / add_eos_token as llama.cpp resolves them (defaults: SPM BOS yes,
 * llama-bpe BOS yes, other BPE no; EOS no). */
bool hs_tokenizer_get_add_bos(const hs_tokenizer *t);
bool hs_tokenizer_get_add_eos(const hs_tokenizer *t);
/* End of generation: EOS, EOT, EOM and the end-of-turn control tokens listed above. */
bool hs_tokenizer_is_eog(const hs_tokenizer *t, int32_t id);
/* HS_TOKEN_* (or 0, see above) of id, HS_EINVAL if id is out of range. */
int hs_tokenizer_token_type(const hs_tokenizer *t, int32_t id);
/* The vocabulary string of id as stored in the file (BPE: in GPT-2's stand-in characters; SPM:
 * with "▁"), NUL-terminated (it may contain NULs: *len is its length), valid while t lives. An
 * empty string in the file reads "[EMPTY_<id>]", as in llama.cpp. HS_EINVAL for a bad id. */
int hs_tokenizer_token_text(const hs_tokenizer *t, int32_t id, const char **s, size_t *len);
/* Exact lookup of a vocabulary string: 0 and *id, or HS_ENOENT. When the file holds the same
 * string twice, the later id wins (as llama.cpp). */
int hs_tokenizer_find(const hs_tokenizer *t, const char *text, size_t len, int32_t *id);

/* ---- encoding ---- */

/* flags for hs_tokenizer_encode */
#define HS_TOKENIZE_ADD_BOS 1u       /* llama.cpp's add_special: BOS first when add_bos_token says
                                      * so, EOS last when add_eos_token says so */
#define HS_TOKENIZE_PARSE_SPECIAL 2u /* CONTROL / UNKNOWN token texts become their ids */

/* Encodes len bytes of text (any bytes; len < 2^31) into ids[0..cap). *n_out gets the number of
 * ids the whole encoding has; HS_ENOSPC when that is more than cap (ids then holds the first
 * cap). ids may be NULL when cap is 0 (to measure). text may be NULL when len is 0. Other errors:
 * HS_EINVAL (bad argument, with a message), HS_ENOMEM, HS_ELIMIT (the regex engine hit a
 * resource limit), HS_ECORRUPT (an SPM vocabulary without a token for a byte it must spell). */
int hs_tokenizer_encode(const hs_tokenizer *t, const char *text, size_t len, unsigned flags,
                        int32_t *ids, size_t cap, size_t *n_out);

/* ---- decoding ---- */

#define HS_DETOK_SPECIAL 1u              /* CONTROL and UNKNOWN tokens render as their text */
#define HS_DETOK_STRIP_LEADING_SPACE 2u  /* see hs_tokenizer_decode */

/* The bytes id contributes to output text: BPE stand-in characters mapped back to bytes; SPM
 * "▁" -> ' ' and <0xNN> -> that byte. CONTROL and UNKNOWN tokens give "" unless
 * HS_DETOK_SPECIAL; USER_DEFINED give their text; UNUSED, undefined and (BPE) BYTE tokens give
 * "". *s stays valid while t lives (it is not NUL-terminated in general). HS_EINVAL for a bad
 * id. */
int hs_tokenizer_token_bytes(const hs_tokenizer *t, int32_t id, unsigned flags, const char **s,
                             size_t *len);
/* The concatenated bytes of n ids into out[0..cap); *n_out as in encode (HS_ENOSPC when cap is
 * too small; out holds the first cap bytes). With HS_DETOK_STRIP_LEADING_SPACE, for a
 * vocabulary that adds a space prefix (SPM), one ' ' is removed from the start of the output of
 * the first id, or of the second when the first is BOS: the space the encoder added, so that
 * decode(encode(x)) == x for SPM too (when x holds no "▁" and no special token text).
 * (llama.cpp strips only when the sequence does not start with BOS.) No other clean-up of spaces
 * is made (llama.cpp's llama_detokenize also removes spaces before punctuation for some
 * vocabularies; token_to_piece, used for streaming, does not). */
int hs_tokenizer_decode(const hs_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                        char *out, size_t cap, size_t *n_out);

/* Streaming detokenization: only complete UTF-8 characters come out. A push appends the bytes
 * of one token and emits every complete character; an incomplete sequence at the end is held
 * (in pending) until a later token completes it; bytes that cannot start or continue a valid
 * sequence come out as U+FFFD, one per maximal ill-formed subpart (as Python's
 * decode("utf-8", "replace")), and flush turns what is still pending into one U+FFFD. So the
 * concatenated output is decode()'s output with ill-formed UTF-8 replaced, and no output chunk
 * ends inside a character. flags as for decode (HS_DETOK_SPECIAL, HS_DETOK_STRIP_LEADING_SPACE).
 * The struct is plain data owned by the caller; its fields are private (flags keeps an internal
 * bit above the public ones). */
typedef struct hs_detok_stream {
  unsigned char pending[8];
  size_t n_pending;
  unsigned flags;
  size_t n_tokens;
} hs_detok_stream;

void hs_detok_stream_init(hs_detok_stream *st, unsigned flags);
/* Pushes id; writes what is complete into out[0..cap), *n_out its length. HS_ENOSPC (with
 * *n_out the size needed) leaves the stream unchanged: push again with a larger buffer. At most
 * 4 + 3 * (token bytes) bytes come out. HS_EINVAL for a bad id or argument. */
int hs_detok_stream_push(const hs_tokenizer *t, hs_detok_stream *st, int32_t id, char *out,
                         size_t cap, size_t *n_out);
/* Emits U+FFFD if a partial sequence is pending (3 bytes at most) and resets the pending state.
 * HS_ENOSPC as for push. */
int hs_detok_stream_flush(hs_detok_stream *st, char *out, size_t cap, size_t *n_out);

/* ---- vocabulary training (for synthetic models) ---- */

typedef struct hs_vocab_train_opts {
  hs_tokenizer_kind kind;
  uint32_t n_vocab;  /* exact size of the result: BPE >= 263, SPM >= 260, at most 2^24 */
  const char *pre;   /* BPE pre-tokenizer used for training and written to the file; NULL:
                      * "llama-bpe". Ignored for SPM. */
} hs_vocab_train_opts;

typedef struct hs_vocab_train_result {
  uint32_t n_learned; /* tokens learned from the corpus: BPE merges that made a new token; SPM
                       * merged pieces plus single-character pieces */
  uint32_t n_padded;  /* filler tokens added because the corpus ran out of merges */
  uint32_t n_merges;  /* BPE: entries of tokenizer.ggml.merges (>= n_learned: a merge may make a
                       * string that already is a token); SPM: 0 */
} hs_vocab_train_result;

/* Learns a vocabulary of exactly o->n_vocab tokens from len bytes of corpus and adds the
 * tokenizer.ggml.* keys to w (which must not hold them yet).
 *
 * BPE (Llama-3 style): the 256 byte tokens (in GPT-2's order), then one token per merge learned
 * by pair frequency over the corpus's pre-tokens (pairs seen at least twice; most frequent
 * first, ties to the lower pair of ids), then the control tokens <|begin_of_text|>,
 * <|end_of_text|>, <|start_header_id|>, <|end_header_id|>, <|eot_id|>, <|im_start|>, <|im_end|>,
 * then control fillers <|reserved_special_token_N|> (N from 0). Keys: model "gpt2", pre,
 * tokens, token_type, merges, bos (begin_of_text), eos (end_of_text), eot (eot_id),
 * add_bos_token true, add_eos_token false.
 *
 * SPM (Llama-2 style): <unk>, <s>, </s>, the 256 <0xNN> byte tokens, then the learned pieces by
 * decreasing score: merged pieces (learned by BPE over "▁"-marked words, at most 16 characters,
 * score -k for the k-th, so that the SPM algorithm replays the merges in order), then single
 * characters (the most frequent, covering 99.95% of the corpus's characters, "▁" always; ASCII
 * control characters are left to byte tokens), then UNUSED fillers <unused_N>. Keys: model
 * "llama", tokens, scores, token_type, bos 1, eos 2, unknown 0, add_bos_token true,
 * add_eos_token false, add_space_prefix true.
 *
 * Deterministic: the same corpus and options give the same keys, byte for byte. res may be NULL.
 * Errors: HS_EINVAL (bad options, unknown pre), HS_ENOMEM, and the writer's errors. */
int hs_vocab_train(const char *corpus, size_t len, const hs_vocab_train_opts *o,
                   hs_gguf_writer *w, hs_vocab_train_result *res);

/* Reads a corpus into one new buffer (*buf, NUL-terminated, freed with hs_free; *len excludes
 * the NUL). path is a file (read as is) or a directory, read recursively: regular files in
 * byte-wise sorted path order, skipping entries whose names start with '.', symbolic links to
 * directories, and binary files (a NUL byte or ill-formed UTF-8 in their first 64 KiB); each
 * file of the tree that does not end with a newline gets one. Errors: HS_EINVAL, HS_ENOENT,
 * HS_EIO, HS_ENOMEM. */
int hs_vocab_read_corpus(const char *path, char **buf, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
