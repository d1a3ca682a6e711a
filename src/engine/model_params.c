/* model_params.c: a model's hyperparameters from GGUF metadata, checked against its tensors.
 *
 * The idea: read every number the forward pass will rely on once, here, and check it against
 * the tensors before anything is allocated, so that a bad or unsupported file fails with one
 * message naming the key or tensor at fault instead of a wrong answer or a crash later. Keys are
 * named after the architecture ("llama.block_count"); integers may be stored with any integer
 * type (llama.cpp writes u32, other converters i32 or u64), floats as f32 or f64. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/last_error.h"
#include "hswarm/error.h"
#include "hswarm/model.h"

static _Thread_local hs_errbuf err;

const char *hs_model_last_error(void) { return err.msg; }

const char *hs_rope_scaling_name(hs_rope_scaling s) {
  switch (s) {
  case HS_ROPE_SCALING_NONE: return "none";
  case HS_ROPE_SCALING_LLAMA3: return "llama3";
  }
  return "unknown";
}

const char *hs_model_arch_name(hs_model_arch a) {
  switch (a) {
  case HS_MODEL_ARCH_LLAMA: return "llama";
  case HS_MODEL_ARCH_QWEN2: return "qwen2";
  case HS_MODEL_ARCH_QWEN3: return "qwen3";
  case HS_MODEL_ARCH_GEMMA3: return "gemma3";
  }
  return "unknown";
}

/* ---- metadata ---- */

/* A required (def NULL) or optional u32 key "<arch>.<suffix>". */
static int get_u32(const hs_gguf *g, const char *arch, const char *suffix, const uint32_t *def,
                   uint32_t *out) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  uint64_t v;
  int rc = hs_gguf_get_uint(g, key, &v);
  if (rc == HS_ENOENT && def) {
    *out = *def;
    return 0;
  }
  if (rc == HS_ENOENT) return hs_set_error(&err, HS_ECORRUPT, "missing metadata key '%s'", key);
  if (rc != 0)
    return hs_set_error(&err, HS_ECORRUPT, "metadata key '%s' is not a non-negative integer", key);
  if (v == 0 || v > UINT32_MAX)
    return hs_set_error(&err, HS_ECORRUPT, "metadata key '%s' is %" PRIu64 ", expected 1..%u",
                        key, v, (unsigned)UINT32_MAX);
  *out = (uint32_t)v;
  return 0;
}

static int get_f32(const hs_gguf *g, const char *arch, const char *suffix, const float *def,
                   float *out) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  double v;
  int rc = hs_gguf_get_f64(g, key, &v);
  if (rc == HS_ENOENT && def) {
    *out = *def;
    return 0;
  }
  if (rc == HS_ENOENT) return hs_set_error(&err, HS_ECORRUPT, "missing metadata key '%s'", key);
  if (rc != 0) return hs_set_error(&err, HS_ECORRUPT, "metadata key '%s' is not a float", key);
  if (!(v > 0) || v > 3.4e38)
    return hs_set_error(&err, HS_ECORRUPT, "metadata key '%s' is %g, expected a positive number",
                        key, v);
  *out = (float)v;
  return 0;
}

static int read_rope_scaling(const hs_gguf *g, const char *arch, hs_model_params *p) {
  char key[128];
  snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
  const char *type;
  int rc = hs_gguf_get_str(g, key, &type, NULL);
  if (rc == HS_ENOENT) return 0;
  if (rc != 0) return hs_set_error(&err, HS_ECORRUPT, "metadata key '%s' is not a string", key);
  if (!strcmp(type, "none")) return 0;
  if (strcmp(type, "llama3") != 0)
    return hs_set_error(&err, HS_EINVAL,
                        "rope scaling type '%s' (%s) is not supported (supported: none, llama3)",
                        type, key);
  p->rope_scaling = HS_ROPE_SCALING_LLAMA3;
  if ((rc = get_f32(g, arch, "rope.scaling.factor", NULL, &p->rope_scaling_factor)) ||
      (rc = get_f32(g, arch, "rope.scaling.low_freq_factor", NULL, &p->rope_low_freq_factor)) ||
      (rc = get_f32(g, arch, "rope.scaling.high_freq_factor", NULL, &p->rope_high_freq_factor)) ||
      (rc = get_u32(g, arch, "rope.scaling.original_context_length", NULL, &p->rope_orig_ctx)))
    return rc;
  if (p->rope_high_freq_factor <= p->rope_low_freq_factor)
    return hs_set_error(&err, HS_ECORRUPT,
                        "rope scaling high_freq_factor %g is not above low_freq_factor %g",
                        p->rope_high_freq_factor, p->rope_low_freq_factor);
  return 0;
}

/* ---- tensors ---- */

static void fmt_shape(char *buf, size_t size, uint32_t n, const uint64_t *ne) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, size - k, "[");
  for (uint32_t i = 0; i < n && k < size; i++)
    k += (size_t)snprintf(buf + k, size - k, "%s%" PRIu64, i ? ", " : "", ne[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
}

/* Checks that tensor name exists with shape ne0 (n == 1) or [ne0, ne1] (n == 2); trailing
 * dimensions of 1 are allowed. Vectors must be F32, F16 or BF16. */
static int check_tensor(const hs_gguf *g, const char *name, uint32_t n, uint64_t ne0,
                        uint64_t ne1) {
  const hs_gguf_tensor *t;
  uint64_t want[2] = {ne0, ne1};
  char ws[64], hs[128];
  fmt_shape(ws, sizeof ws, n, want);
  if (hs_gguf_tensor_find(g, name, &t, NULL) != 0)
    return hs_set_error(&err, HS_ECORRUPT, "missing tensor '%s' (expected shape %s)", name, ws);
  bool ok = true;
  for (uint32_t i = 0; i < HS_GGUF_MAX_DIMS; i++) ok = ok && t->ne[i] == (i < n ? want[i] : 1);
  if (!ok) {
    fmt_shape(hs, sizeof hs, t->n_dims, t->ne);
    return hs_set_error(&err, HS_ECORRUPT, "tensor '%s' has shape %s, expected %s", name, hs, ws);
  }
  if (hs_gguf_type_block_elems(t->type) == 0)
    return hs_set_error(&err, HS_ECORRUPT, "tensor '%s' has unsupported type %s (%u)", name,
                        hs_gguf_type_name(t->type), t->type);
  if (n == 1 && t->type != HS_QUANT_F32 && t->type != HS_QUANT_F16 &&
      t->type != HS_QUANT_BF16)
    return hs_set_error(&err, HS_ECORRUPT,
                        "tensor '%s' has type %s; a vector must be f32, f16 or bf16", name,
                        hs_gguf_type_name(t->type));
  return 0;
}

static int check_tensors(const hs_gguf *g, const hs_model_params *p) {
  const uint64_t e = p->n_embd, kv = (uint64_t)p->n_head_kv * p->head_dim, ff = p->n_ff;
  int rc;
  if ((rc = check_tensor(g, "token_embd.weight", 2, e, p->n_vocab)) ||
      (rc = check_tensor(g, "output_norm.weight", 1, e, 1)))
    return rc;
  if (!p->tied_embeddings && (rc = check_tensor(g, "output.weight", 2, e, p->n_vocab))) return rc;
  enum { ALL, BIAS, QKNORM, POST };
  static const struct {
    const char *suffix;
    int n, d0, d1; /* dims: 0 = n_embd, 1 = kv width, 2 = n_ff, 3 = q width, 4 = head size */
    int when;
  } blk[] = {
      {"attn_norm.weight", 1, 0, 0, ALL},   {"attn_q.weight", 2, 0, 3, ALL},
      {"attn_k.weight", 2, 0, 1, ALL},      {"attn_v.weight", 2, 0, 1, ALL},
      {"attn_output.weight", 2, 3, 0, ALL}, {"ffn_norm.weight", 1, 0, 0, ALL},
      {"ffn_gate.weight", 2, 0, 2, ALL},    {"ffn_up.weight", 2, 0, 2, ALL},
      {"ffn_down.weight", 2, 2, 0, ALL},    {"attn_q.bias", 1, 3, 0, BIAS},
      {"attn_k.bias", 1, 1, 0, BIAS},       {"attn_v.bias", 1, 1, 0, BIAS},
      {"attn_q_norm.weight", 1, 4, 0, QKNORM}, {"attn_k_norm.weight", 1, 4, 0, QKNORM},
      {"post_attention_norm.weight", 1, 0, 0, POST}, {"post_ffw_norm.weight", 1, 0, 0, POST},
  };
  const uint64_t dim[5] = {e, kv, ff, p->q_dim, p->head_dim};
  for (uint32_t i = 0; i < p->n_layer; i++) {
    for (size_t j = 0; j < sizeof blk / sizeof blk[0]; j++) {
      if ((blk[j].when == BIAS && !p->qkv_bias) || (blk[j].when == QKNORM && !p->qk_norm) ||
          (blk[j].when == POST && !p->post_norms))
        continue;
      char name[96];
      snprintf(name, sizeof name, "blk.%u.%s", i, blk[j].suffix);
      rc = check_tensor(g, name, (uint32_t)blk[j].n, dim[blk[j].d0],
                        blk[j].n == 2 ? dim[blk[j].d1] : 1);
      if (rc) return rc;
    }
  }
  return 0;
}

/* ---- the whole ---- */

int hs_model_params_read(const hs_gguf *g, hs_model_params *out) {
  if (!g || !out) return hs_set_error(&err, HS_EINVAL, "NULL argument");
  hs_model_params p;
  memset(&p, 0, sizeof p);
  const char *arch;
  int rc = hs_gguf_get_str(g, "general.architecture", &arch, NULL);
  if (rc == HS_ENOENT)
    return hs_set_error(&err, HS_ECORRUPT, "missing metadata key 'general.architecture'");
  if (rc != 0)
    return hs_set_error(&err, HS_ECORRUPT, "metadata key 'general.architecture' is not a string");
  static const struct {
    const char *name;
    hs_model_arch arch;
  } archs[] = {{"llama", HS_MODEL_ARCH_LLAMA},
               {"qwen2", HS_MODEL_ARCH_QWEN2},
               {"qwen3", HS_MODEL_ARCH_QWEN3},
               {"gemma3", HS_MODEL_ARCH_GEMMA3}};
  size_t ai = 0;
  while (ai < sizeof archs / sizeof archs[0] && strcmp(arch, archs[ai].name)) ai++;
  if (ai == sizeof archs / sizeof archs[0])
    return hs_set_error(&err, HS_EINVAL,
                        "architecture '%.64s' is not supported (supported: llama, qwen2, qwen3, "
                        "gemma3)",
                        arch);
  p.arch = archs[ai].arch;
  p.arch_name = archs[ai].name;
  p.qkv_bias = p.arch == HS_MODEL_ARCH_QWEN2;
  p.qk_norm = p.arch == HS_MODEL_ARCH_QWEN3 || p.arch == HS_MODEL_ARCH_GEMMA3;
  p.post_norms = p.ffn_gelu = p.arch == HS_MODEL_ARCH_GEMMA3;
  p.neox = p.arch != HS_MODEL_ARCH_LLAMA;
  const char *a = p.arch_name;
  if ((rc = get_u32(g, a, "embedding_length", NULL, &p.n_embd)) ||
      (rc = get_u32(g, a, "block_count", NULL, &p.n_layer)) ||
      (rc = get_u32(g, a, "attention.head_count", NULL, &p.n_head)) ||
      (rc = get_u32(g, a, "attention.head_count_kv", &p.n_head, &p.n_head_kv)) ||
      (rc = get_u32(g, a, "feed_forward_length", NULL, &p.n_ff)) ||
      (rc = get_u32(g, a, "context_length", NULL, &p.n_ctx_train)))
    return rc;
  char key_length[80];
  snprintf(key_length, sizeof key_length, "%s.attention.key_length", a);
  if (p.n_embd % p.n_head != 0 && hs_gguf_find_key(g, key_length, NULL) != 0)
    return hs_set_error(&err, HS_ECORRUPT,
                        "%s.embedding_length %u is not divisible by %s.attention.head_count %u "
                        "and %s is absent",
                        a, p.n_embd, a, p.n_head, key_length);
  if (p.n_head % p.n_head_kv != 0)
    return hs_set_error(&err, HS_ECORRUPT,
                        "%s.attention.head_count %u is not divisible by "
                        "%s.attention.head_count_kv %u",
                        a, p.n_head, a, p.n_head_kv);
  const uint32_t def_hd = p.n_embd / p.n_head;
  uint32_t vdim;
  if ((rc = get_u32(g, a, "attention.key_length", &def_hd, &p.head_dim)) ||
      (rc = get_u32(g, a, "attention.value_length", &p.head_dim, &vdim)))
    return rc;
  if (vdim != p.head_dim)
    return hs_set_error(&err, HS_EINVAL,
                        "%s.attention.value_length %u differs from %s.attention.key_length %u "
                        "(not supported)",
                        a, vdim, a, p.head_dim);
  if (p.head_dim == 0 || p.head_dim > 1024 || p.head_dim % 2 != 0)
    return hs_set_error(&err, HS_ECORRUPT, "head size %u is not an even number in [2, 1024]",
                        p.head_dim);
  p.q_dim = p.n_head * p.head_dim;
  p.attn_scale = 1.0f / sqrtf((float)p.head_dim);
  if (p.arch == HS_MODEL_ARCH_GEMMA3 && p.n_layer == 62) /* Gemma 3 27B's query_pre_attn_scalar */
    p.attn_scale = 1.0f / sqrtf((float)(p.n_embd / p.n_head));
  p.embed_scale = p.arch == HS_MODEL_ARCH_GEMMA3 ? sqrtf((float)p.n_embd) : 1.0f;
  const float def_base = 10000.0f, def_eps = p.arch == HS_MODEL_ARCH_GEMMA3 ? 1e-6f : 1e-5f;
  const float no_cap = 0.0f;
  const uint32_t no_swa = 0, def_period = 6;
  if ((rc = get_f32(g, a, "final_logit_softcapping", &no_cap, &p.logit_softcap)) ||
      (rc = get_u32(g, a, "attention.sliding_window", &no_swa, &p.n_swa)) ||
      (rc = get_u32(g, a, "attention.sliding_window_pattern", &def_period, &p.swa_period)) ||
      (rc = get_f32(g, a, "rope.freq_base_swa", &def_base, &p.rope_freq_base_swa)))
    return rc;
  if (!(p.logit_softcap >= 0.0f) || !isfinite(p.logit_softcap))
    return hs_set_error(&err, HS_ECORRUPT, "%s.final_logit_softcapping %g is not >= 0", a,
                        (double)p.logit_softcap);
  if (p.n_swa > 0 && p.arch != HS_MODEL_ARCH_GEMMA3)
    return hs_set_error(&err, HS_EINVAL,
                        "%s.attention.sliding_window is set, but sliding windows are supported "
                        "only for gemma3",
                        a);
  if (!(p.rope_freq_base_swa > 0.0f))
    return hs_set_error(&err, HS_ECORRUPT, "%s.rope.freq_base_swa %g is not > 0", a,
                        (double)p.rope_freq_base_swa);
  if ((rc = get_f32(g, a, "rope.freq_base", &def_base, &p.rope_freq_base)) ||
      (rc = get_f32(g, a, "attention.layer_norm_rms_epsilon", &def_eps, &p.rms_norm_eps)) ||
      (rc = get_u32(g, a, "rope.dimension_count", &p.head_dim, &p.n_rot)))
    return rc;
  if (p.n_rot > p.head_dim || p.n_rot % 2 != 0)
    return hs_set_error(&err, HS_ECORRUPT,
                        "%s.rope.dimension_count %u must be even and at most the head size %u", a,
                        p.n_rot, p.head_dim);
  if ((rc = read_rope_scaling(g, a, &p))) return rc;

  hs_gguf_value_type et;
  uint64_t nv;
  rc = hs_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &nv);
  if (rc == HS_ENOENT)
    return hs_set_error(&err, HS_ECORRUPT, "missing metadata key 'tokenizer.ggml.tokens'");
  if (rc != 0 || et != HS_GGUF_STRING)
    return hs_set_error(&err, HS_ECORRUPT,
                        "metadata key 'tokenizer.ggml.tokens' is not an array of strings");
  if (nv == 0 || nv > INT32_MAX)
    return hs_set_error(&err, HS_ECORRUPT, "tokenizer.ggml.tokens has %" PRIu64 " entries", nv);
  p.n_vocab = (uint32_t)nv;
  const hs_gguf_tensor *out_w;
  p.tied_embeddings = hs_gguf_tensor_find(g, "output.weight", &out_w, NULL) != 0;
  if ((rc = check_tensors(g, &p))) return rc;

  for (size_t i = 0; i < hs_gguf_tensor_count(g); i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i);
    p.n_params += t->n_elements;
    p.weight_bytes += t->size;
  }
  p.kv_bytes_per_token = 2ull * p.n_layer * p.n_head_kv * p.head_dim * 2ull;
  *out = p;
  return 0;
}
