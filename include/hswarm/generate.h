/* hswarm/generate.h: single-sequence generation and embeddings on top of the engine (engine.h),
 * the tokenizer (tokenizer.h), the sampler (sampler.h) and constrained decoding (grammar.h).
 *
 * hs_generate runs one sequence: it appends the prompt to the sequence's KV cache (prefill, in
 * chunks), then samples tokens one at a time until a stop condition:
 *   - an end-of-generation token (unless ignore_eos), or one of stop_tokens: finish STOP;
 *   - a stop string appears in the text: finish STOP, the text is cut before it;
 *   - the grammar is done (nothing more may follow): finish STOP;
 *   - max_tokens generated, or the sequence's capacity reached: finish LENGTH (prompt plus
 *     generated tokens never exceed the capacity; the last generated token is not appended to
 *     the sequence);
 *   - the callback returned nonzero: finish CANCELLED.
 * Tokens are streamed to on_token with their text: only whole UTF-8 characters, and text that
 * could be the start of a stop string is held back until it is known not to be one (so a stop
 * string never reaches the callback). A prompt that does not fit in the sequence's remaining
 * capacity is an error (HS_ENOSPC) before anything is computed.
 *
 * Determinism: the k-th sampled token uses the sampler's counter (seed, position = the token's
 * position in the sequence), so a request's output depends only on its model, prompt and
 * parameters.
 *
 * Ownership: nothing passed in is kept after the call; the result's text is owned by the result
 * (hs_generate_result_free). */
#ifndef HSWARM_GENERATE_H
#define HSWARM_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/engine.h"
#include "hswarm/grammar.h"
#include "hswarm/sampler.h"
#include "hswarm/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_finish_reason {
  HS_FINISH_STOP = 0,      /* end-of-generation token, stop token, stop string, grammar done */
  HS_FINISH_LENGTH = 1,    /* max_tokens, or the context is full */
  HS_FINISH_CANCELLED = 2, /* the callback asked to stop (or hs_sched_cancel) */
  HS_FINISH_DEADLINE = 3   /* the scheduler's deadline passed first (hswarm/sched.h) */
} hs_finish_reason;

/* Called for each generated token. text/len: the newly released text (may be empty, e.g. while
 * a multi-byte character or a possible stop string is pending). Return nonzero to stop. */
typedef int (*hs_token_fn)(void *ctx, int32_t token, const char *text, size_t len);

typedef struct hs_generate_params {
  hs_sampler_params sampling;      /* hs_sampler_params_init defaults */
  uint32_t max_tokens;             /* 0: until the context is full                 default 256 */
  bool ignore_eos;                 /* keep going past end-of-generation tokens      default false */
  const char *const *stop;         /* n_stop stop strings (non-empty)                default none */
  size_t n_stop;
  const int32_t *stop_tokens;      /* extra token ids that end generation           default none */
  size_t n_stop_tokens;
  const hs_grammar *grammar;       /* constrain the output; NULL: free               default NULL */
  const hs_grammar_vocab *grammar_vocab; /* the tokenizer's grammar vocabulary (hs_generate_vocab_create);
                                            required with grammar */
  bool special_text;               /* control tokens' text appears in the output    default false */
  uint32_t prefill_chunk;          /* tokens per forward call during prefill         default 512 */
  hs_token_fn on_token;            /* may be NULL */
  void *ctx;
} hs_generate_params;

typedef struct hs_generate_result {
  hs_finish_reason finish;
  uint32_t n_prompt;     /* prompt tokens computed */
  uint32_t n_generated;  /* tokens sampled (including a final end-of-generation token) */
  double prefill_seconds, decode_seconds; /* wall time of prefill, and of the decode steps */
  char *text;            /* the whole output text (NUL-terminated, stop string excluded), hs_malloc */
  size_t text_len;
  int32_t *tokens;       /* the generated ids, hs_malloc */
} hs_generate_result;

/* Fills *p with the defaults above. */
void hs_generate_params_init(hs_generate_params *p);

/* Generates on seq (which may already hold tokens: the prompt continues them). On success *res
 * is filled (free it with hs_generate_result_free); on error it is zeroed. Errors: HS_EINVAL
 * (bad parameters, a token id outside the vocabulary, grammar without grammar_vocab), HS_ENOSPC
 * (prompt longer than the remaining context), HS_ENOMEM, or the engine's and grammar's errors
 * (a grammar that allows no token: HS_EINVAL). Message from hs_generate_last_error. */
int hs_generate(hs_model *m, const hs_tokenizer *t, hs_seq *seq, const int32_t *prompt,
                size_t n_prompt, const hs_generate_params *p, hs_generate_result *res);
void hs_generate_result_free(hs_generate_result *res);

/* The grammar vocabulary of a tokenizer: each token's output bytes, end-of-generation tokens
 * marked. Owned by the caller (hs_grammar_vocab_destroy). */
int hs_generate_vocab_create(const hs_tokenizer *t, hs_grammar_vocab **out);

typedef enum hs_pooling { HS_POOLING_MEAN = 0, HS_POOLING_LAST = 1 } hs_pooling;

/* An embedding of n tokens: the final normed hidden states pooled (mean over tokens, or the
 * last token), then scaled to unit L2 norm. out: n_embd floats. Uses a private sequence of
 * exactly n positions. HS_EINVAL for n == 0 or n above the model's training context. */
int hs_embed(hs_model *m, const int32_t *tokens, size_t n, hs_pooling pooling, float *out);

const char *hs_generate_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
