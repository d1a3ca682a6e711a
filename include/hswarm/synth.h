/* hswarm/synth.h: synthetic model files: valid GGUF files of a chosen Llama-family shape with
 * random weights, for tests and benchmarks (nothing downloads weights).
 *
 * Weights are a pure function of (seed, tensor name, element index): a counter-based hash, so
 * the same seed and shape give the same underlying values whatever the tensor type, the order of
 * writing or the number of threads; files of one shape in different types hold the same weights
 * quantized differently. Scales are chosen so that a random model is not degenerate: logits of
 * greedy decoding have a clear margin between the best and the second token most of the time.
 *
 * Files are written in a streaming way: the file is laid out once (the GGUF writer over a
 * read-only zero mapping, so no weight memory is held), then each tensor is generated and
 * quantized a few MiB of rows at a time and written in place. Memory stays a few MiB whatever the
 * model size (llama3-8b at Q4_K, 4.6 GB, needs only the disk space).
 *
 * The tokenizer keys (tokenizer.ggml.*) come from a callback, so that a real vocabulary can be
 * wired in; without one a minimal valid byte-level vocabulary is written (see
 * hs_synth_add_byte_tokenizer). The file's vocabulary must have n_vocab tokens.
 *
 * Errors: negative HS_E* codes with a message from hs_synth_last_error: HS_EINVAL (bad spec,
 * NULL argument, unknown preset or type name), HS_EIO (the file cannot be written), HS_ENOMEM,
 * or the callback's own code. */
#ifndef HSWARM_SYNTH_H
#define HSWARM_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/gguf.h"
#include "hswarm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Weight types of a synthetic file. Matrices take the type; vectors (norms, biases) are F32
 * (as in files from llama.cpp's converter), or with hs_synth_spec.half_vectors F16/BF16 too. A
 * matrix whose rows do not fit the type's block (Q4_K and Q6_K need a multiple of 256
 * columns, Q8_0 and Q4_0 of 32) falls back to Q8_0, then to F16. */
typedef enum hs_synth_type {
  HS_SYNTH_F32 = 0,
  HS_SYNTH_F16,
  HS_SYNTH_BF16,
  HS_SYNTH_Q8_0,
  HS_SYNTH_Q4_0,
  HS_SYNTH_Q4_K,
  HS_SYNTH_Q4_K_M, /* Q4_K, with Q6_K for output.weight (or a tied token_embd.weight) and for
                      attn_v/ffn_down of the layers llama.cpp's Q4_K_M gives more bits: the first
                      and last eighth of the layers and every third one between */
  HS_SYNTH_Q6_K,
  /* added with the published models: each type for every matrix (with the fallbacks above) */
  HS_SYNTH_Q4_1,
  HS_SYNTH_Q5_0,
  HS_SYNTH_Q5_1,
  HS_SYNTH_IQ4_NL,
  HS_SYNTH_Q2_K,
  HS_SYNTH_Q3_K,
  HS_SYNTH_Q5_K,
  HS_SYNTH_IQ4_XS
} hs_synth_type;

/* Writes the tokenizer.ggml.* metadata into w; returns 0 or a negative HS_E* code (which
 * hs_synth_write returns). ctx is the spec's tokenizer_ctx. */
typedef int (*hs_synth_tokenizer_fn)(hs_gguf_writer *w, void *ctx);

typedef struct hs_synth_spec {
  hs_model_arch arch;         /* llama, qwen2 (q/k/v biases), qwen3 (q/k norms) or gemma3 (q/k
                                 norms, post norms, GELU, sliding window; see model.h) */
  uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx_train;
  float rope_freq_base;       /* > 0 */
  float rms_norm_eps;         /* > 0 */
  bool rope_llama3;           /* llama3 rope scaling with Llama 3.1's values (factor 8, low freq
                                 factor 1, high freq factor 4, original context 8192) */
  bool rope_freqs_tensor;     /* with rope_llama3: write the factors as the tensor
                                 rope_freqs.weight [n_rot/2] instead of the rope.scaling.* keys,
                                 as llama.cpp's converter writes Llama 3.1 files (llama.cpp does
                                 not accept the scaling type "llama3" in metadata) */
  bool tied;                  /* no output.weight: the output reuses token_embd.weight */
  bool half_vectors;          /* with F16/BF16: vectors in that type too, to exercise their
                                 conversion at load (llama.cpp refuses such files) */
  hs_synth_type type;
  uint64_t seed;
  /* Added with qwen3 and gemma3; zero keeps the old behaviour. */
  uint32_t head_dim;          /* written as attention.key_length/value_length; 0: n_embd / n_head
                                 (always written for qwen3 and gemma3) */
  uint32_t n_swa;             /* gemma3: attention.sliding_window (0: no window) */
  uint32_t swa_period;        /* gemma3: attention.sliding_window_pattern (0: not written, 6) */
  float rope_freq_base_swa;   /* gemma3: rope.freq_base_swa (0: not written, 10000) */
  /* NULL: the minimal byte-level vocabulary (hs_synth_add_byte_tokenizer with n_vocab). */
  hs_synth_tokenizer_fn add_tokenizer;
  void *tokenizer_ctx;        /* passed to add_tokenizer; borrowed for the call only */
} hs_synth_spec;

/* What hs_synth_write wrote (optional out-parameter). */
typedef struct hs_synth_info {
  uint64_t n_params;          /* elements of all tensors */
  uint64_t file_bytes;
  uint32_t n_tensors;
  uint32_t n_fallback;        /* matrices written in a fallback type (see hs_synth_type) */
} hs_synth_info;

/* Fills *out with a named preset (seed 0, type Q8_0, default tokenizer):
 *   bench-250m   llama, n_embd 1024, 16 layers, 16 heads, 4 KV heads, n_ff 2816, vocab 32000,
 *                ctx 4096, rope base 10000
 *   llama3-8b    llama, 4096, 32 layers, 32 heads, 8 KV heads, n_ff 14336, vocab 128256, ctx 8192,
 *                rope base 500000, llama3 scaling
 *   tiny-llama   llama, 64, 2 layers, 4 heads, 4 KV heads, n_ff 128, vocab 512, tied embeddings
 *   tiny-llama3  llama, 64, 2 layers, 4 heads, 2 KV heads (GQA), n_ff 160, vocab 512, ctx 8192,
 *                rope base 500000, llama3 scaling
 *   tiny-qwen2   qwen2, 64, 2 layers, 4 heads, 2 KV heads, n_ff 192, vocab 512, rope base 1e6
 *   small-llama3 llama, 256, 2 layers, 4 heads, 2 KV heads, n_ff 512, vocab 512, llama3 scaling
 *                (rows fit every quantized type)
 *   small-qwen2  qwen2, 256, 2 layers, 4 heads, 2 KV heads, n_ff 512, vocab 512
 *   tiny-qwen3   qwen3, 64, 2 layers, 4 heads of 32 (q is 128 wide), 2 KV heads, n_ff 192,
 *                vocab 512, rope base 1e6
 *   tiny-gemma3  gemma3, 64, 3 layers (period 3: layers 0, 1 windowed, 2 global), 4 heads of 32,
 *                1 KV head, n_ff 192, vocab 512, window 16, rope bases 1e6 and 1e4 (untied:
 *                tied, the scaled embedding of the input token dominates and greedy repeats it)
 *   small-gemma3 gemma3, 640 wide (not a multiple of 256, as Gemma 3 270M), 2 layers (period 2),
 *                4 heads of 256, 1 KV head, n_ff 1024, vocab 512, window 32 (untied, as tiny-gemma3)
 * Returns 0 or HS_EINVAL for an unknown name. */
int hs_synth_preset(const char *name, hs_synth_spec *out);
/* Name of preset i (0, 1, ...), NULL past the last. Static. */
const char *hs_synth_preset_name(size_t i);

/* "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q4_k_m", "q6_k", "q4_1", "q5_0", "q5_1",
 * "iq4_nl", "q2_k", "q3_k", "q5_k", "iq4_xs"; static. */
const char *hs_synth_type_name(hs_synth_type t);
/* Parses a name as above (case-insensitive). 0 or HS_EINVAL. */
int hs_synth_type_parse(const char *name, hs_synth_type *out);

/* Checks a spec: every size positive, n_embd divisible by n_head, n_head by n_head_kv, an even
 * head size, n_vocab at least 258 with the default tokenizer. 0 or HS_EINVAL with a message. */
int hs_synth_spec_check(const hs_synth_spec *s);

/* Writes the model described by s to path (created or truncated), then reopens it and checks it
 * with hs_model_params_read. info may be NULL. On failure the file may be left partial. */
int hs_synth_write(const hs_synth_spec *s, const char *path, hs_synth_info *info);

/* The minimal vocabulary: tokenizer.ggml.model "gpt2", pre "default", tokens = the 256 byte
 * characters in GPT-2's byte-to-unicode order, then "<tok_N>" up to n_vocab - 2, then "<s>" (BOS)
 * and "</s>" (EOS); token_type 1 (normal) except 3 (control) for BOS/EOS; empty merges;
 * bos_token_id and eos_token_id. n_vocab >= 258, else HS_EINVAL. */
int hs_synth_add_byte_tokenizer(hs_gguf_writer *w, uint32_t n_vocab);

/* The calling thread's last error message of this module. Never NULL. */
const char *hs_synth_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
