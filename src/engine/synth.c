/* synth.c: synthetic Llama-family model files with random weights (include/hswarm/synth.h).
 *
 * The idea. A weight is a pure function of (seed, tensor name, element index): the tensor's key
 * is a hash of the seed and the name, and element i is a splitmix64 hash of key + i * golden
 * ratio, mapped to a uniform value in (-1, 1) and scaled. There is no generator state, so rows can
 * be generated in any order, by any thread, a chunk at a time, and a file of one shape holds the
 * same underlying values in every tensor type.
 *
 * Streaming. A 8B-parameter file does not fit in memory twice, and the GGUF writer wants every
 * tensor's bytes at hand when it writes. So the file is written twice over: first the writer
 * lays out the whole file with every tensor's data pointing into one read-only anonymous mapping
 * (the kernel's zero page: no memory is committed), which gives a correct header and a data
 * section of zeros; then the file is reopened with the reader, the header is checked with
 * hs_model_params_read (a wrong spec or vocabulary fails here, before any generating), and each
 * tensor is generated and quantized a chunk of rows at a time (about 4 MiB of f32 per chunk,
 * rows spread over the thread pool) and written in place with pwrite.
 *
 * Scales. A random transformer is easily degenerate (all logits nearly equal, or one token
 * always). Uniform weights with these standard deviations keep activations near unit size and
 * the logits spread: token embeddings 1 (4/sqrt(n_embd) when tied, as they are then also the
 * output matrix), output 4/sqrt(n_embd) (logits of standard deviation about 4, so the best and
 * second-best logits of greedy decoding are usually well apart), q and k 1.5/sqrt(n_embd)
 * (attention neither uniform nor one-hot), v, o, gate and up 1/sqrt(n_embd), down 1/sqrt(n_ff),
 * norm weights uniform in [0.75, 1.25], qwen2's q/k biases 0.5 and v bias 0.1. */
#include "hswarm/synth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/last_error.h"
#include "core/threadpool.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/quant.h"

static _Thread_local hs_errbuf err;

const char *hs_synth_last_error(void) { return err.msg; }

/* ---- presets and names ---- */

typedef struct preset {
  const char *name;
  hs_synth_spec spec;
} preset;

#define SPEC(a_, e_, l_, h_, hkv_, ff_, v_, ctx_, base_, l3_, tied_)                            \
  {.arch = a_, .n_embd = e_, .n_layer = l_, .n_head = h_, .n_head_kv = hkv_, .n_ff = ff_,      \
   .n_vocab = v_, .n_ctx_train = ctx_, .rope_freq_base = base_, .rms_norm_eps = 1e-5f,         \
   .rope_llama3 = l3_, .tied = tied_, .type = HS_SYNTH_Q8_0}

static const preset presets[] = {
    {"bench-250m", SPEC(HS_MODEL_ARCH_LLAMA, 1024, 16, 16, 4, 2816, 32000, 4096, 10000.0f, false,
                        false)},
    {"llama3-8b", SPEC(HS_MODEL_ARCH_LLAMA, 4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, true,
                       false)},
    {"tiny-llama", SPEC(HS_MODEL_ARCH_LLAMA, 64, 2, 4, 4, 128, 512, 2048, 10000.0f, false, true)},
    {"tiny-llama3", SPEC(HS_MODEL_ARCH_LLAMA, 64, 2, 4, 2, 160, 512, 8192, 500000.0f, true,
                         false)},
    {"tiny-qwen2", SPEC(HS_MODEL_ARCH_QWEN2, 64, 2, 4, 2, 192, 512, 4096, 1000000.0f, false,
                        false)},
    {"small-llama3", SPEC(HS_MODEL_ARCH_LLAMA, 256, 2, 4, 2, 512, 512, 8192, 500000.0f, true,
                          false)},
    {"small-qwen2", SPEC(HS_MODEL_ARCH_QWEN2, 256, 2, 4, 2, 512, 512, 4096, 1000000.0f, false,
                         false)},
    {"tiny-qwen3", {.arch = HS_MODEL_ARCH_QWEN3, .n_embd = 64, .n_layer = 2, .n_head = 4,
                    .n_head_kv = 2, .n_ff = 192, .n_vocab = 512, .n_ctx_train = 4096,
                    .rope_freq_base = 1000000.0f, .rms_norm_eps = 1e-6f, .type = HS_SYNTH_Q8_0,
                    .head_dim = 32}},
    {"tiny-gemma3", {.arch = HS_MODEL_ARCH_GEMMA3, .n_embd = 64, .n_layer = 3, .n_head = 4,
                     .n_head_kv = 1, .n_ff = 192, .n_vocab = 512, .n_ctx_train = 4096,
                     .rope_freq_base = 1000000.0f, .rms_norm_eps = 1e-6f, .type = HS_SYNTH_Q8_0,
                     .head_dim = 32, .n_swa = 16, .swa_period = 3, .rope_freq_base_swa = 10000.0f}},
    {"small-gemma3", {.arch = HS_MODEL_ARCH_GEMMA3, .n_embd = 640, .n_layer = 2, .n_head = 4,
                      .n_head_kv = 1, .n_ff = 1024, .n_vocab = 512, .n_ctx_train = 4096,
                      .rope_freq_base = 1000000.0f, .rms_norm_eps = 1e-6f, .type = HS_SYNTH_Q8_0,
                      .head_dim = 256, .n_swa = 32, .swa_period = 2,
                      .rope_freq_base_swa = 10000.0f}},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

int hs_synth_preset(const char *name, hs_synth_spec *out) {
  if (!name || !out) return hs_set_error(&err, HS_EINVAL, "synth: NULL argument");
  for (size_t i = 0; i < N_PRESETS; i++) {
    if (!strcmp(presets[i].name, name)) {
      *out = presets[i].spec;
      return 0;
    }
  }
  char list[256];
  size_t k = 0;
  for (size_t i = 0; i < N_PRESETS && k < sizeof list; i++)
    k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", presets[i].name);
  return hs_set_error(&err, HS_EINVAL, "unknown preset '%.64s' (known: %s)", name, list);
}

const char *hs_synth_preset_name(size_t i) { return i < N_PRESETS ? presets[i].name : NULL; }

static const char *const type_names[] = {"f32",  "f16",  "bf16",   "q8_0",   "q4_0", "q4_k",
                                         "q4_k_m", "q6_k", "q4_1",  "q5_0",  "q5_1", "iq4_nl",
                                         "q2_k", "q3_k", "q5_k",   "iq4_xs"};
#define N_TYPES (sizeof type_names / sizeof type_names[0])

const char *hs_synth_type_name(hs_synth_type t) {
  return (unsigned)t < N_TYPES ? type_names[t] : "unknown";
}

int hs_synth_type_parse(const char *name, hs_synth_type *out) {
  if (!name || !out) return hs_set_error(&err, HS_EINVAL, "synth: NULL argument");
  for (size_t i = 0; i < N_TYPES; i++) {
    if (!strcasecmp(name, type_names[i])) {
      *out = (hs_synth_type)i;
      return 0;
    }
  }
  return hs_set_error(&err, HS_EINVAL,
                      "unknown weight type '%.32s' (known: f32, f16, bf16, q8_0, q4_0, q4_k, "
                      "q4_k_m, q6_k, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, q5_k, iq4_xs)",
                      name);
}

static uint32_t synth_head_dim(const hs_synth_spec *s) {
  return s->head_dim ? s->head_dim : s->n_embd / s->n_head;
}

int hs_synth_spec_check(const hs_synth_spec *s) {
  if (!s) return hs_set_error(&err, HS_EINVAL, "synth: NULL spec");
  if (s->arch != HS_MODEL_ARCH_LLAMA && s->arch != HS_MODEL_ARCH_QWEN2 &&
      s->arch != HS_MODEL_ARCH_QWEN3 && s->arch != HS_MODEL_ARCH_GEMMA3)
    return hs_set_error(&err, HS_EINVAL, "synth: unknown architecture %d", (int)s->arch);
  if (s->n_swa && s->arch != HS_MODEL_ARCH_GEMMA3)
    return hs_set_error(&err, HS_EINVAL, "synth: a sliding window is for gemma3 only");
  const struct {
    const char *name;
    uint32_t v;
  } sizes[] = {{"n_embd", s->n_embd}, {"n_layer", s->n_layer},     {"n_head", s->n_head},
               {"n_head_kv", s->n_head_kv}, {"n_ff", s->n_ff},     {"n_vocab", s->n_vocab},
               {"n_ctx_train", s->n_ctx_train}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (sizes[i].v == 0) return hs_set_error(&err, HS_EINVAL, "synth: %s is 0", sizes[i].name);
  if (!s->head_dim && s->n_embd % s->n_head != 0)
    return hs_set_error(&err, HS_EINVAL, "synth: n_embd %u is not divisible by n_head %u",
                        s->n_embd, s->n_head);
  if (s->n_head % s->n_head_kv != 0)
    return hs_set_error(&err, HS_EINVAL, "synth: n_head %u is not divisible by n_head_kv %u",
                        s->n_head, s->n_head_kv);
  if (synth_head_dim(s) % 2 != 0 || synth_head_dim(s) > 1024)
    return hs_set_error(&err, HS_EINVAL, "synth: the head size %u is odd or above 1024",
                        synth_head_dim(s));
  if (s->n_embd > (1u << 20) || s->n_ff > (1u << 22) || s->n_vocab > (1u << 24) ||
      s->n_layer > 4096)
    return hs_set_error(&err, HS_EINVAL, "synth: a size is out of range");
  if (!(s->rope_freq_base > 0) || !(s->rms_norm_eps > 0))
    return hs_set_error(&err, HS_EINVAL, "synth: rope base and rms eps must be positive");
  if ((unsigned)s->type >= N_TYPES)
    return hs_set_error(&err, HS_EINVAL, "synth: unknown weight type %d", (int)s->type);
  if (!s->add_tokenizer && s->n_vocab < 258)
    return hs_set_error(&err, HS_EINVAL,
                        "synth: n_vocab %u is below 258 (256 bytes, BOS and EOS of the built-in "
                        "vocabulary)",
                        s->n_vocab);
  return 0;
}

/* ---- the minimal vocabulary ---- */

/* GPT-2's byte-to-unicode map: printable bytes stand for themselves, the others (0..32, 127..160,
 * 173) take code points 256, 257, ... in byte order. Writes the UTF-8 of byte b's character. */
static size_t byte_char(unsigned b, char out[4]) {
  unsigned cp;
  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
    cp = b;
  } else {
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
      if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
    cp = 256 + n;
  }
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  out[0] = (char)(0xc0 | (cp >> 6));
  out[1] = (char)(0x80 | (cp & 63));
  return 2;
}

int hs_synth_add_byte_tokenizer(hs_gguf_writer *w, uint32_t n_vocab) {
  if (!w) return hs_set_error(&err, HS_EINVAL, "synth: NULL writer");
  if (n_vocab < 258)
    return hs_set_error(&err, HS_EINVAL, "synth: the byte vocabulary needs n_vocab >= 258, got %u",
                        n_vocab);
  /* one buffer for all token texts: at most 16 bytes each */
  char *text = hs_malloc((size_t)n_vocab * 16);
  const char **strs = hs_malloc((size_t)n_vocab * sizeof *strs);
  size_t *lens = hs_malloc((size_t)n_vocab * sizeof *lens);
  int32_t *types = hs_malloc((size_t)n_vocab * sizeof *types);
  int rc = 0;
  if (!text || !strs || !lens || !types) {
    rc = hs_set_error(&err, HS_ENOMEM, "synth: out of memory for a vocabulary of %u", n_vocab);
    goto out;
  }
  for (uint32_t i = 0; i < n_vocab; i++) {
    char *t = text + (size_t)i * 16;
    if (i < 256)
      lens[i] = byte_char(i, t);
    else if (i == n_vocab - 2)
      lens[i] = (size_t)snprintf(t, 16, "<s>");
    else if (i == n_vocab - 1)
      lens[i] = (size_t)snprintf(t, 16, "</s>");
    else
      lens[i] = (size_t)snprintf(t, 16, "<tok_%u>", i);
    strs[i] = t;
    types[i] = i >= n_vocab - 2 ? 3 : 1;
  }
  if ((rc = hs_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", 4)) ||
      (rc = hs_gguf_writer_add_str(w, "tokenizer.ggml.pre", "default", 7)) ||
      (rc = hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", strs, lens, n_vocab)) ||
      (rc = hs_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", HS_GGUF_INT32, types,
                                   n_vocab)) ||
      (rc = hs_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", NULL, NULL, 0)) ||
      (rc = hs_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", n_vocab - 2)) ||
      (rc = hs_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", n_vocab - 1)))
    hs_set_error(&err, rc, "synth: vocabulary: %s", hs_gguf_writer_last_error());
out:
  hs_free(text);
  hs_free(strs);
  hs_free(lens);
  hs_free(types);
  return rc;
}

/* ---- the generator ---- */

static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t tensor_key(uint64_t seed, const char *name) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the name */
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 0x100000001b3ull;
  return splitmix(seed ^ splitmix(h));
}

/* Element i of a tensor: uniform in (-1, 1), 24 random bits. */
static float uniform(uint64_t key, uint64_t i) {
  uint64_t z = splitmix(key + i * 0x9e3779b97f4a7c15ull);
  return (float)(((double)(z >> 40) + 0.5) * (2.0 / 16777216.0) - 1.0);
}

/* ---- the tensors of a model ---- */

typedef enum role {
  R_EMBD, R_OUTPUT, R_NORM, R_Q, R_K, R_V, R_O, R_GATE, R_UP, R_DOWN, R_BQ, R_BK, R_BV, R_ROPE
} role;

typedef struct tdesc {
  char name[48];
  role r;
  uint32_t layer;
  uint64_t ne0, ne1;   /* ne1 = 1 for vectors */
  uint32_t type;
  float lo, hi;        /* values uniform in [lo, hi] (unless R_ROPE) */
  size_t size;
} tdesc;

/* Whether llama.cpp's Q4_K_M gives layer i of n more bits (attn_v, ffn_down). */
static bool more_bits(uint32_t i, uint32_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i >= n / 8 && (i - n / 8) % 3 == 2);
}

static uint32_t base_type(hs_synth_type t) {
  switch (t) {
  case HS_SYNTH_F32: return HS_QUANT_F32;
  case HS_SYNTH_F16: return HS_QUANT_F16;
  case HS_SYNTH_BF16: return HS_QUANT_BF16;
  case HS_SYNTH_Q8_0: return HS_QUANT_Q8_0;
  case HS_SYNTH_Q4_0: return HS_QUANT_Q4_0;
  case HS_SYNTH_Q4_K:
  case HS_SYNTH_Q4_K_M: return HS_QUANT_Q4_K;
  case HS_SYNTH_Q6_K: return HS_QUANT_Q6_K;
  case HS_SYNTH_Q4_1: return HS_QUANT_Q4_1;
  case HS_SYNTH_Q5_0: return HS_QUANT_Q5_0;
  case HS_SYNTH_Q5_1: return HS_QUANT_Q5_1;
  case HS_SYNTH_IQ4_NL: return HS_QUANT_IQ4_NL;
  case HS_SYNTH_Q2_K: return HS_QUANT_Q2_K;
  case HS_SYNTH_Q3_K: return HS_QUANT_Q3_K;
  case HS_SYNTH_Q5_K: return HS_QUANT_Q5_K;
  case HS_SYNTH_IQ4_XS: return HS_QUANT_IQ4_XS;
  }
  return HS_QUANT_F32;
}

/* The type of a tensor of role r in layer l with rows of ne0; *fallback set when the wanted
 * type does not fit the rows. */
static uint32_t tensor_type(const hs_synth_spec *s, role r, uint32_t l, uint64_t ne0,
                            bool *fallback) {
  *fallback = false;
  if (r == R_ROPE) return HS_QUANT_F32;
  bool vector = r == R_NORM || r == R_BQ || r == R_BK || r == R_BV;
  if (vector) /* F32 as llama.cpp's converter writes them (and llama.cpp needs them) */
    return s->half_vectors && s->type == HS_SYNTH_F16    ? HS_QUANT_F16
           : s->half_vectors && s->type == HS_SYNTH_BF16 ? HS_QUANT_BF16
                                                           : HS_QUANT_F32;
  uint32_t t = base_type(s->type);
  if (s->type == HS_SYNTH_Q4_K_M &&
      (r == R_OUTPUT || (r == R_EMBD && s->tied) ||
       ((r == R_V || r == R_DOWN) && more_bits(l, s->n_layer))))
    t = HS_QUANT_Q6_K;
  if (ne0 % hs_quant_block_elems((int)t) == 0) return t;
  *fallback = true;
  return ne0 % 32 == 0 ? HS_QUANT_Q8_0 : HS_QUANT_F16;
}

typedef struct plan {
  tdesc *t;
  size_t n;
  uint32_t n_fallback;
} plan;

static void add(const hs_synth_spec *s, plan *p, role r, uint32_t l, const char *name,
                uint64_t ne0, uint64_t ne1, float std) {
  tdesc *d = &p->t[p->n++];
  snprintf(d->name, sizeof d->name, "%s", name);
  d->r = r;
  d->layer = l;
  d->ne0 = ne0;
  d->ne1 = ne1;
  bool fb;
  d->type = tensor_type(s, r, l, ne0, &fb);
  p->n_fallback += fb;
  if (r == R_NORM) {
    d->lo = 0.75f;
    d->hi = 1.25f;
  } else {
    d->hi = std * 1.7320508f; /* uniform on [-a, a] has standard deviation a / sqrt(3) */
    d->lo = -d->hi;
  }
  d->size = hs_quant_row_bytes((int)d->type, ne0) * ne1;
}

static int make_plan(const hs_synth_spec *s, plan *p) {
  size_t per_layer = 13;
  p->n = 0;
  p->n_fallback = 0;
  p->t = hs_calloc(4 + (size_t)s->n_layer * per_layer, sizeof *p->t);
  if (!p->t) return hs_set_error(&err, HS_ENOMEM, "synth: out of memory");
  const uint64_t e = s->n_embd, hd = synth_head_dim(s), kv = (uint64_t)s->n_head_kv * hd,
                 qd = (uint64_t)s->n_head * hd, ff = s->n_ff, v = s->n_vocab;
  const bool qk_norm = s->arch == HS_MODEL_ARCH_QWEN3 || s->arch == HS_MODEL_ARCH_GEMMA3;
  const bool gemma = s->arch == HS_MODEL_ARCH_GEMMA3;
  const float ie = 1.0f / sqrtf((float)e), iff = 1.0f / sqrtf((float)ff);
  add(s, p, R_EMBD, 0, "token_embd.weight", e, v, s->tied ? 4.0f * ie : 1.0f);
  if (s->rope_llama3 && s->rope_freqs_tensor) add(s, p, R_ROPE, 0, "rope_freqs.weight", hd / 2, 1, 0);
  for (uint32_t l = 0; l < s->n_layer; l++) {
    char name[48];
#define BLK(r, suffix, ne0, ne1, std)                                                          \
  snprintf(name, sizeof name, "blk.%u." suffix, l);                                            \
  add(s, p, r, l, name, ne0, ne1, std)
    BLK(R_NORM, "attn_norm.weight", e, 1, 0);
    BLK(R_Q, "attn_q.weight", e, qd, 1.5f * ie);
    BLK(R_K, "attn_k.weight", e, kv, 1.5f * ie);
    BLK(R_V, "attn_v.weight", e, kv, ie);
    if (s->arch == HS_MODEL_ARCH_QWEN2) {
      BLK(R_BQ, "attn_q.bias", qd, 1, 0.5f);
      BLK(R_BK, "attn_k.bias", kv, 1, 0.5f);
      BLK(R_BV, "attn_v.bias", kv, 1, 0.1f);
    }
    if (qk_norm) {
      BLK(R_NORM, "attn_q_norm.weight", hd, 1, 0);
      BLK(R_NORM, "attn_k_norm.weight", hd, 1, 0);
    }
    BLK(R_O, "attn_output.weight", qd, e, 1.0f / sqrtf((float)qd));
    if (gemma) {
      BLK(R_NORM, "post_attention_norm.weight", e, 1, 0);
    }
    BLK(R_NORM, "ffn_norm.weight", e, 1, 0);
    BLK(R_GATE, "ffn_gate.weight", e, ff, ie);
    BLK(R_UP, "ffn_up.weight", e, ff, ie);
    BLK(R_DOWN, "ffn_down.weight", ff, e, iff);
    if (gemma) {
      BLK(R_NORM, "post_ffw_norm.weight", e, 1, 0);
    }
#undef BLK
  }
  add(s, p, R_NORM, 0, "output_norm.weight", e, 1, 0);
  if (!s->tied) add(s, p, R_OUTPUT, 0, "output.weight", e, v, 4.0f * ie);
  return 0;
}

/* Llama 3.1's frequency factors (the divisor of each rotary frequency). */
static double llama3_factor(const hs_synth_spec *s, uint32_t i, uint32_t n_rot) {
  const double factor = 8, low = 1, high = 4, orig = 8192;
  double freq = pow((double)s->rope_freq_base, -2.0 * i / n_rot);
  double wavelen = 2 * M_PI / freq;
  if (wavelen < orig / high) return 1;
  if (wavelen > orig / low) return factor;
  double smooth = (orig / wavelen - low) / (high - low);
  return 1 / ((1 - smooth) / factor + smooth);
}

/* ---- metadata ---- */

static int add_metadata(const hs_synth_spec *s, hs_gguf_writer *w) {
  const char *a = hs_model_arch_name(s->arch);
  char key[96];
  int rc;
#define U32(suffix, v)                                                                         \
  (snprintf(key, sizeof key, "%s." suffix, a), hs_gguf_writer_add_u32(w, key, v))
#define F32(suffix, v)                                                                         \
  (snprintf(key, sizeof key, "%s." suffix, a), hs_gguf_writer_add_f32(w, key, v))
  if ((rc = hs_gguf_writer_add_str(w, "general.architecture", a, strlen(a))) ||
      (rc = hs_gguf_writer_add_str(w, "general.name", "hswarm synthetic", 16)) ||
      (rc = hs_gguf_writer_add_u64(w, "hswarm.synth.seed", s->seed)) ||
      (rc = hs_gguf_writer_add_str(w, "hswarm.synth.type", hs_synth_type_name(s->type),
                                   strlen(hs_synth_type_name(s->type)))) ||
      (rc = U32("context_length", s->n_ctx_train)) ||
      (rc = U32("embedding_length", s->n_embd)) || (rc = U32("block_count", s->n_layer)) ||
      (rc = U32("feed_forward_length", s->n_ff)) ||
      (rc = U32("attention.head_count", s->n_head)) ||
      (rc = U32("attention.head_count_kv", s->n_head_kv)) ||
      (rc = U32("rope.dimension_count", synth_head_dim(s))) ||
      (rc = F32("rope.freq_base", s->rope_freq_base)) ||
      (rc = F32("attention.layer_norm_rms_epsilon", s->rms_norm_eps)))
    return hs_set_error(&err, rc, "synth: metadata: %s", hs_gguf_writer_last_error());
  if ((s->head_dim || s->arch == HS_MODEL_ARCH_QWEN3 || s->arch == HS_MODEL_ARCH_GEMMA3) &&
      ((rc = U32("attention.key_length", synth_head_dim(s))) ||
       (rc = U32("attention.value_length", synth_head_dim(s)))))
    return hs_set_error(&err, rc, "synth: metadata: %s", hs_gguf_writer_last_error());
  if (s->n_swa && ((rc = U32("attention.sliding_window", s->n_swa)) ||
                   (s->swa_period && (rc = U32("attention.sliding_window_pattern", s->swa_period))) ||
                   (s->rope_freq_base_swa > 0 && (rc = F32("rope.freq_base_swa", s->rope_freq_base_swa)))))
    return hs_set_error(&err, rc, "synth: metadata: %s", hs_gguf_writer_last_error());
  /* the tensor form replaces the keys, as in files from llama.cpp's converter (llama.cpp itself
   * rejects the scaling type "llama3") */
  if (s->rope_llama3 && !s->rope_freqs_tensor) {
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    if ((rc = hs_gguf_writer_add_str(w, key, "llama3", 6)) ||
        (rc = F32("rope.scaling.factor", 8.0f)) ||
        (rc = F32("rope.scaling.low_freq_factor", 1.0f)) ||
        (rc = F32("rope.scaling.high_freq_factor", 4.0f)) ||
        (rc = U32("rope.scaling.original_context_length", 8192)))
      return hs_set_error(&err, rc, "synth: metadata: %s", hs_gguf_writer_last_error());
  }
#undef U32
#undef F32
  if (s->add_tokenizer) {
    rc = s->add_tokenizer(w, s->tokenizer_ctx);
    if (rc) {
      if (rc > 0) rc = HS_EINVAL;
      return hs_set_error(&err, rc, "synth: the tokenizer callback failed (%s): %s",
                          hs_strerror(rc), hs_gguf_writer_last_error());
    }
    return 0;
  }
  return hs_synth_add_byte_tokenizer(w, s->n_vocab);
}

/* ---- generating a tensor's data ---- */

#define CHUNK_F32_BYTES (4u << 20)

typedef struct gen_job {
  const hs_synth_spec *s;
  const tdesc *d;
  uint64_t key;
  uint64_t row0;       /* first row of the chunk */
  size_t rows_per_task;
  size_t n_rows;       /* rows in the chunk */
  size_t row_bytes;
  uint8_t *out;        /* n_rows * row_bytes */
  float *scratch;      /* ne0 floats per worker */
  int rc;
} gen_job;

static void gen_rows(void *ctx, size_t task, unsigned worker) {
  gen_job *j = ctx;
  const tdesc *d = j->d;
  float *x = j->scratch + (size_t)worker * d->ne0;
  size_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task;
  if (r1 > j->n_rows) r1 = j->n_rows;
  const float mid = 0.5f * (d->lo + d->hi), half = 0.5f * (d->hi - d->lo);
  for (size_t r = r0; r < r1; r++) {
    uint64_t base = (j->row0 + r) * d->ne0;
    if (d->r == R_ROPE) {
      for (uint64_t i = 0; i < d->ne0; i++)
        x[i] = (float)llama3_factor(j->s, (uint32_t)i, (uint32_t)(2 * d->ne0));
    } else {
      for (uint64_t i = 0; i < d->ne0; i++) x[i] = mid + half * uniform(j->key, base + i);
    }
    if (hs_quant_quantize((int)d->type, x, j->out + r * j->row_bytes, d->ne0) != 0) j->rc = 1;
  }
}

static int write_all_at(int fd, const uint8_t *p, size_t n, uint64_t off) {
  while (n) {
    ssize_t k = pwrite(fd, p, n, (off_t)off);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 0;
}

static int fill_tensor(const hs_synth_spec *s, const tdesc *d, hs_threadpool *tp, int fd,
                       uint64_t file_off, uint8_t *buf, float *scratch, const char *path) {
  size_t row_bytes = hs_quant_row_bytes((int)d->type, d->ne0);
  size_t chunk_rows = CHUNK_F32_BYTES / (d->ne0 * 4);
  if (chunk_rows == 0) chunk_rows = 1;
  unsigned nw = hs_threadpool_size(tp);
  gen_job j = {.s = s, .d = d, .key = tensor_key(s->seed, d->name), .row_bytes = row_bytes,
               .out = buf, .scratch = scratch};
  for (uint64_t r = 0; r < d->ne1; r += chunk_rows) {
    j.row0 = r;
    j.n_rows = (size_t)(d->ne1 - r < chunk_rows ? d->ne1 - r : chunk_rows);
    j.rows_per_task = (j.n_rows + 4 * nw - 1) / (4 * nw);
    size_t n_tasks = (j.n_rows + j.rows_per_task - 1) / j.rows_per_task;
    hs_threadpool_run(tp, gen_rows, &j, n_tasks);
    if (j.rc)
      return hs_set_error(&err, HS_EINVAL, "synth: cannot quantize '%s' as %s", d->name,
                          hs_gguf_type_name(d->type));
    if (write_all_at(fd, buf, j.n_rows * row_bytes, file_off + r * row_bytes) != 0)
      return hs_set_error(&err, HS_EIO, "%s: write failed: %s", path, strerror(errno));
  }
  return 0;
}

/* ---- the whole file ---- */

int hs_synth_write(const hs_synth_spec *s, const char *path, hs_synth_info *info) {
  if (!s || !path) return hs_set_error(&err, HS_EINVAL, "synth: NULL argument");
  int rc = hs_synth_spec_check(s);
  if (rc) return rc;
  plan p;
  if ((rc = make_plan(s, &p))) return rc;
  hs_gguf_writer *w = NULL;
  hs_gguf *g = NULL;
  hs_threadpool *tp = NULL;
  void *zeros = MAP_FAILED;
  uint8_t *buf = NULL;
  float *scratch = NULL;
  int fd = -1;
  size_t max_size = 0, max_chunk = 0, max_ne0 = 0;
  for (size_t i = 0; i < p.n; i++) {
    const tdesc *d = &p.t[i];
    if (d->size > max_size) max_size = d->size;
    size_t rows = CHUNK_F32_BYTES / (d->ne0 * 4);
    if (rows == 0) rows = 1;
    if (rows > d->ne1) rows = (size_t)d->ne1;
    size_t chunk = rows * hs_quant_row_bytes((int)d->type, d->ne0);
    if (chunk > max_chunk) max_chunk = chunk;
    if (d->ne0 > max_ne0) max_ne0 = (size_t)d->ne0;
  }
  /* 1. the layout, over zeros */
  zeros = mmap(NULL, max_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (zeros == MAP_FAILED) {
    rc = hs_set_error(&err, HS_ENOMEM, "synth: cannot map %zu bytes: %s", max_size,
                      strerror(errno));
    goto out;
  }
  if ((rc = hs_gguf_writer_create(&w))) {
    hs_set_error(&err, rc, "synth: %s", hs_gguf_writer_last_error());
    goto out;
  }
  if ((rc = add_metadata(s, w))) goto out;
  for (size_t i = 0; i < p.n; i++) {
    const tdesc *d = &p.t[i];
    uint64_t ne[2] = {d->ne0, d->ne1};
    rc = hs_gguf_writer_add_tensor(w, d->name, d->ne1 > 1 ? 2 : 1, ne, d->type, zeros, d->size);
    if (rc) {
      hs_set_error(&err, rc, "synth: %s", hs_gguf_writer_last_error());
      goto out;
    }
  }
  if ((rc = hs_gguf_writer_write_file(w, path))) {
    hs_set_error(&err, rc, "%s", hs_gguf_writer_last_error());
    goto out;
  }
  hs_gguf_writer_destroy(w);
  w = NULL;
  munmap(zeros, max_size);
  zeros = MAP_FAILED;
  /* 2. check the header as a reader will */
  if ((rc = hs_gguf_open(path, &g))) {
    hs_set_error(&err, rc, "synth: reading back: %s", hs_gguf_last_error());
    goto out;
  }
  hs_model_params mp;
  if ((rc = hs_model_params_read(g, &mp))) {
    hs_set_error(&err, rc, "synth: %s: %s", path, hs_model_last_error());
    goto out;
  }
  /* 3. the weights, in place */
  if ((rc = hs_threadpool_create(0, &tp))) {
    hs_set_error(&err, rc, "synth: cannot start the thread pool");
    goto out;
  }
  buf = hs_malloc(max_chunk);
  scratch = hs_malloc(max_ne0 * sizeof *scratch * hs_threadpool_size(tp));
  if (!buf || !scratch) {
    rc = hs_set_error(&err, HS_ENOMEM, "synth: out of memory for a chunk of %zu bytes",
                      max_chunk);
    goto out;
  }
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = hs_set_error(&err, HS_EIO, "%s: cannot open for writing: %s", path, strerror(errno));
    goto out;
  }
  uint64_t data_off = hs_gguf_data_offset(g);
  for (size_t i = 0; i < p.n; i++) {
    const hs_gguf_tensor *t;
    if (hs_gguf_tensor_find(g, p.t[i].name, &t, NULL) != 0 || t->size != p.t[i].size) {
      rc = hs_set_error(&err, HS_ECORRUPT, "synth: tensor '%s' did not read back", p.t[i].name);
      goto out;
    }
    rc = fill_tensor(s, &p.t[i], tp, fd, data_off + t->offset, buf, scratch, path);
    if (rc) goto out;
  }
  if (close(fd) != 0) {
    fd = -1;
    rc = hs_set_error(&err, HS_EIO, "%s: close failed: %s", path, strerror(errno));
    goto out;
  }
  fd = -1;
  if (info) {
    info->n_params = mp.n_params;
    info->file_bytes = hs_gguf_file_size(g);
    info->n_tensors = (uint32_t)hs_gguf_tensor_count(g);
    info->n_fallback = p.n_fallback;
  }
out:
  if (fd >= 0) close(fd);
  if (zeros != MAP_FAILED) munmap(zeros, max_size);
  hs_gguf_writer_destroy(w);
  hs_gguf_close(g);
  hs_threadpool_destroy(tp);
  hs_free(buf);
  hs_free(scratch);
  hs_free(p.t);
  return rc;
}
