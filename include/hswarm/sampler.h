/* hswarm/sampler.h: choosing the next token from a row of logits.
 *
 * A sampler is a pure function of (parameters, logits, recent history, token position): it keeps no
 * state, so a request's tokens depend only on its own seed and positions, never on which other
 * requests were sampled before it or alongside it (batch invariance, DESIGN.md section 2).
 *
 * Pipeline, in this fixed order:
 *   1. penalties on the last penalty_last_n tokens of history (llama.cpp semantics), for each
 *      distinct token t seen c > 0 times in that window:
 *        repetition:  logit[t] = logit[t] > 0 ? logit[t] / repetition_penalty
 *                                             : logit[t] * repetition_penalty
 *        then         logit[t] -= c * frequency_penalty + presence_penalty
 *   2. temperature == 0: greedy, the largest logit, ties to the lowest token id. Stop here.
 *   3. candidates sorted by (logit desc, token id asc); top_k > 0 keeps the first top_k.
 *   4. softmax with temperature: p = exp((logit - max) / temperature), in double.
 *   5. top_p < 1 keeps the shortest prefix whose probability mass is >= top_p (at least one).
 *   6. min_p > 0 keeps the tokens with p >= min_p * p_max.
 *   7. renormalise and draw u = hs_rand_uniform(seed, position, 0) by inverse CDF over the kept
 *      candidates in the sorted order of step 3.
 * Since the order is total (ids break ties), the result is fully determined by the arguments. */
#ifndef HSWARM_SAMPLER_H
#define HSWARM_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_sampler_params {
  float temperature;        /* >= 0; 0 = greedy                                   default 0.8 */
  int32_t top_k;            /* >= 0; 0 = off                                      default 0   */
  float top_p;              /* in (0, 1]; 1 = off                                 default 1   */
  float min_p;              /* in [0, 1]; 0 = off                                 default 0   */
  float repetition_penalty; /* > 0; 1 = off                                       default 1   */
  float presence_penalty;   /* finite; 0 = off                                    default 0   */
  float frequency_penalty;  /* finite; 0 = off                                    default 0   */
  size_t penalty_last_n;    /* window: last N history tokens; 0 = no penalties;
                               SIZE_MAX = the whole history                        default 64  */
  uint64_t seed;            /*                                                    default 0   */
} hs_sampler_params;

/* Fills *p with the defaults above. */
void hs_sampler_params_init(hs_sampler_params *p);

/* Counter-based random number: a double in [0, 1) computed only from its arguments (a SplitMix64
 * hash chain over seed, position, stream), with 53 random bits. */
double hs_rand_uniform(uint64_t seed, uint64_t position, uint64_t stream);

/* Number of floats of scratch hs_sample needs for a vocabulary of n_vocab: 2 * n_vocab. */
size_t hs_sampler_scratch_floats(size_t n_vocab);

/* Samples one token. logits: n_vocab floats, read only. history: n_history token ids (may be NULL
 * when n_history is 0), the tokens generated/seen so far, read only; only the last penalty_last_n
 * are used. position: the token position being sampled (the random draw's counter).
 * scratch: caller-owned, hs_sampler_scratch_floats(n_vocab) floats, overwritten; nothing is kept
 * after the call. hs_sample does not allocate.
 * Returns 0 with *out_token set, or HS_EINVAL (message from hs_sampler_last_error naming the
 * parameter) for: a NULL pointer, n_vocab 0 or above 2^24, a NaN or +inf logit, all logits -inf,
 * a history token outside [0, n_vocab), temperature negative or not finite, top_k negative, top_p
 * outside (0, 1], min_p outside [0, 1], repetition_penalty <= 0 or not finite, presence or
 * frequency penalty not finite. *out_token is untouched on error. */
int hs_sample(const hs_sampler_params *p, const float *logits, size_t n_vocab,
              const int32_t *history, size_t n_history, uint64_t position, float *scratch,
              int32_t *out_token);

/* The calling thread's message for the last failed hs_sample; "" if none yet. */
const char *hs_sampler_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
