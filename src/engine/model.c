/* model.c: binding a GGUF file to a model, and the sequences' KV caches (include/hswarm/engine.h).
 *
 * The idea: check everything once, here, so that the layer loop (forward.c) never has to. The
 * file is mapped (hs_gguf_open), its hyperparameters and tensor shapes are checked by
 * hs_model_params_read, and then every tensor the forward pass touches is bound: matrices stay
 * in the mapping in their own types, as pointers plus type and shape (after checking that the
 * kernels multiply that type with rows of that length); vectors (norms, biases), which may be
 * F32, F16 or BF16 in the file, are converted once into f32 copies owned by the model.
 *
 * Rotary frequencies are computed here too, in double: theta_i = base^(-2i / n_rot), then
 * divided by the file's rope_freqs.weight factors when it has that tensor (as llama.cpp's
 * converter writes Llama 3.1 files), or else changed by Llama 3.1's rule when the metadata asks
 * for llama3 scaling (see the comment at rope_llama3). The pair layout follows the architecture:
 * llama files have their Q/K rows permuted by the converter so that adjacent dimensions
 * (2i, 2i+1) rotate together; qwen2 files rotate (i, i + n_rot/2) (NeoX).
 *
 * A sequence is a KV cache of fixed capacity allocated at creation, laid out per layer and KV
 * head so that attention reads a block of positions of one head as one stretch (the layout is
 * attention.c's). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/model_impl.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/quant.h"

_Thread_local hs_errbuf hs_engine_err;
#define err hs_engine_err

const char *hs_engine_last_error(void) { return err.msg; }

/* ---- binding ---- */

static int bind_matrix(hs_model *m, const char *name, hs_weight *w) {
  const hs_gguf_tensor *t;
  if (hs_gguf_tensor_find(m->g, name, &t, NULL) != 0)
    return hs_set_error(&err, HS_ECORRUPT, "missing tensor '%s'", name);
  w->data = t->data;
  w->type = (int)t->type;
  w->cols = (uint32_t)t->ne[0];
  w->rows = (uint32_t)t->ne[1];
  if (!hs_cpu_matmul_supported(w->type, w->cols))
    return hs_set_error(&err, HS_ECORRUPT,
                        "tensor '%s' has type %s with rows of %u, which the kernels do not "
                        "multiply",
                        name, hs_gguf_type_name(t->type), w->cols);
  return 0;
}

/* An f32 copy of vector tensor name, which must have n elements; *out owned by the model. */
static int bind_vector(hs_model *m, const char *name, uint32_t n, float **out) {
  const hs_gguf_tensor *t;
  if (hs_gguf_tensor_find(m->g, name, &t, NULL) != 0)
    return hs_set_error(&err, HS_ECORRUPT, "missing tensor '%s'", name);
  if (t->n_elements != n)
    return hs_set_error(&err, HS_ECORRUPT, "tensor '%s' has %" PRIu64 " elements, expected %u",
                        name, t->n_elements, n);
  if (t->type != HS_QUANT_F32 && t->type != HS_QUANT_F16 && t->type != HS_QUANT_BF16)
    return hs_set_error(&err, HS_ECORRUPT, "tensor '%s' has type %s; expected f32, f16 or bf16",
                        name, hs_gguf_type_name(t->type));
  float *v = hs_malloc((size_t)n * sizeof *v);
  if (!v) return hs_set_error(&err, HS_ENOMEM, "out of memory for tensor '%s'", name);
  hs_quant_dequantize((int)t->type, t->data, v, n);
  *out = v;
  return 0;
}

/* Llama 3.1's rule, from the wavelength 2 pi / theta of each frequency: short wavelengths (below
 * orig_ctx / high_freq_factor) are kept, long ones (above orig_ctx / low_freq_factor) are divided
 * by factor, and those between are interpolated:
 *   s = (orig_ctx / wavelength - low) / (high - low),   theta' = (1 - s) theta / factor + s theta */
static double rope_llama3(const hs_model_params *p, double theta) {
  double wavelen = 2 * M_PI / theta, orig = p->rope_orig_ctx;
  double low = p->rope_low_freq_factor, high = p->rope_high_freq_factor;
  if (wavelen < orig / high) return theta;
  if (wavelen > orig / low) return theta / p->rope_scaling_factor;
  double s = (orig / wavelen - low) / (high - low);
  return (1 - s) * theta / p->rope_scaling_factor + s * theta;
}

static int bind_rope(hs_model *m) {
  const hs_model_params *p = &m->p;
  const uint32_t half = p->n_rot / 2;
  m->rope_theta = hs_malloc((half ? half : 1) * sizeof *m->rope_theta);
  if (!m->rope_theta) return hs_set_error(&err, HS_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < half; i++)
    m->rope_theta[i] = pow((double)p->rope_freq_base, -2.0 * i / p->n_rot);
  const hs_gguf_tensor *t;
  if (hs_gguf_tensor_find(m->g, "rope_freqs.weight", &t, NULL) == 0) {
    float *f;
    int rc = bind_vector(m, "rope_freqs.weight", half, &f);
    if (rc) return rc;
    for (uint32_t i = 0; i < half && rc == 0; i++) {
      if (!(f[i] > 0) || !isfinite(f[i]))
        rc = hs_set_error(&err, HS_ECORRUPT, "rope_freqs.weight[%u] is %g, expected > 0", i,
                          (double)f[i]);
      else
        m->rope_theta[i] /= f[i];
    }
    hs_free(f);
    return rc;
  }
  if (p->rope_scaling == HS_ROPE_SCALING_LLAMA3)
    for (uint32_t i = 0; i < half; i++) m->rope_theta[i] = rope_llama3(p, m->rope_theta[i]);
  if (p->n_swa > 0) { /* the windowed layers: their own base, no scaling */
    m->rope_theta_swa = hs_malloc((half ? half : 1) * sizeof *m->rope_theta_swa);
    if (!m->rope_theta_swa) return hs_set_error(&err, HS_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < half; i++)
      m->rope_theta_swa[i] = pow((double)p->rope_freq_base_swa, -2.0 * i / p->n_rot);
  }
  return 0;
}

static int bind(hs_model *m) {
  const hs_model_params *p = &m->p;
  int rc;
  const hs_gguf_tensor *t;
  if ((rc = hs_gguf_tensor_find(m->g, "token_embd.weight", &t, NULL)) != 0)
    return hs_set_error(&err, HS_ECORRUPT, "missing tensor 'token_embd.weight'");
  m->tok_embd = (hs_weight){t->data, (int)t->type, (uint32_t)t->ne[1], (uint32_t)t->ne[0]};
  if (hs_quant_row_bytes(m->tok_embd.type, m->tok_embd.cols) == 0)
    return hs_set_error(&err, HS_ECORRUPT, "token_embd.weight has unsupported type %s",
                        hs_gguf_type_name(t->type));
  if ((rc = bind_matrix(m, p->tied_embeddings ? "token_embd.weight" : "output.weight",
                        &m->output)) ||
      (rc = bind_vector(m, "output_norm.weight", p->n_embd, &m->output_norm)) ||
      (rc = bind_rope(m)))
    return rc;
  m->layers = hs_calloc(p->n_layer, sizeof *m->layers);
  if (!m->layers) return hs_set_error(&err, HS_ENOMEM, "out of memory for %u layers", p->n_layer);
  for (uint32_t i = 0; i < p->n_layer; i++) {
    hs_layer *L = &m->layers[i];
    char n[16][64];
    static const char *const suffix[] = {"attn_norm.weight",   "ffn_norm.weight",
                                         "attn_q.weight",      "attn_k.weight",
                                         "attn_v.weight",      "attn_output.weight",
                                         "ffn_gate.weight",    "ffn_up.weight",
                                         "ffn_down.weight",    "attn_q.bias",
                                         "attn_k.bias",        "attn_v.bias",
                                         "attn_q_norm.weight", "attn_k_norm.weight",
                                         "post_attention_norm.weight", "post_ffw_norm.weight"};
    for (int k = 0; k < 16; k++) snprintf(n[k], sizeof n[k], "blk.%u.%s", i, suffix[k]);
    if ((rc = bind_vector(m, n[0], p->n_embd, &L->attn_norm)) ||
        (rc = bind_vector(m, n[1], p->n_embd, &L->ffn_norm)) ||
        (rc = bind_matrix(m, n[2], &L->wq)) || (rc = bind_matrix(m, n[3], &L->wk)) ||
        (rc = bind_matrix(m, n[4], &L->wv)) || (rc = bind_matrix(m, n[5], &L->wo)) ||
        (rc = bind_matrix(m, n[6], &L->w_gate)) || (rc = bind_matrix(m, n[7], &L->w_up)) ||
        (rc = bind_matrix(m, n[8], &L->w_down)))
      return rc;
    if (p->qkv_bias &&
        ((rc = bind_vector(m, n[9], p->q_dim, &L->bq)) ||
         (rc = bind_vector(m, n[10], m->kv_dim, &L->bk)) ||
         (rc = bind_vector(m, n[11], m->kv_dim, &L->bv))))
      return rc;
    if (p->qk_norm && ((rc = bind_vector(m, n[12], p->head_dim, &L->q_norm)) ||
                       (rc = bind_vector(m, n[13], p->head_dim, &L->k_norm))))
      return rc;
    if (p->post_norms && ((rc = bind_vector(m, n[14], p->n_embd, &L->post_attn_norm)) ||
                          (rc = bind_vector(m, n[15], p->n_embd, &L->post_ffn_norm))))
      return rc;
    L->swa = hs_model_layer_is_swa(p, i);
  }
  return 0;
}

static void free_model(hs_model *m) {
  if (m->layers) {
    for (uint32_t i = 0; i < m->p.n_layer; i++) {
      hs_layer *L = &m->layers[i];
      hs_free(L->attn_norm);
      hs_free(L->ffn_norm);
      hs_free(L->bq);
      hs_free(L->bk);
      hs_free(L->bv);
      hs_free(L->q_norm);
      hs_free(L->k_norm);
      hs_free(L->post_attn_norm);
      hs_free(L->post_ffn_norm);
    }
    hs_free(m->layers);
  }
  hs_free(m->output_norm);
  hs_free(m->rope_theta);
  hs_free(m->rope_theta_swa);
  hs_workspace *w = &m->ws;
  hs_free(w->x);
  hs_free(w->xn);
  hs_free(w->q);
  hs_free(w->k);
  hs_free(w->v);
  hs_free(w->att);
  hs_free(w->tmp);
  hs_free(w->gate);
  hs_free(w->up);
  hs_free(w->rope_cs);
  hs_free(w->rope_cs_swa);
  hs_free(w->pos);
  hs_free(w->seq);
  hs_free(w->rows);
  hs_free(w->attn_order);
  hs_free(w->attn_chunks);
  hs_free(w->attn_scratch);
  hs_prefix_tree_free(&m->tree);
  hs_kv_pool_free(&m->kv);
  hs_cpu_scratch_free(&m->scratch);
  hs_threadpool_destroy(m->tp);
  hs_gguf_close(m->g);
  hs_free(m);
}

/* The KV pool (of the budget asked, or room for four default contexts) and the prefix tree. */
static int open_kv(hs_model *m, const hs_model_opts *o) {
  const hs_model_params *p = &m->p;
  hs_kv_type type = o ? o->kv_type : HS_KV_F16;
  if (type != HS_KV_F16 && type != HS_KV_F32)
    return hs_set_error(&err, HS_EINVAL, "unknown KV cache type %d", (int)type);
  size_t block = hs_kv_block_bytes(p->n_layer, p->n_head_kv, p->head_dim, type);
  size_t budget = o ? o->kv_bytes : 0;
  if (budget == 0) {
    uint32_t ctx = p->n_ctx_train < 4096 ? p->n_ctx_train : 4096;
    size_t n_blocks = 4 * (((size_t)ctx + HS_KV_BLOCK - 1) / HS_KV_BLOCK);
    budget = (n_blocks < 64 ? 64 : n_blocks) * block;
  }
  int rc = hs_kv_pool_init(&m->kv, p->n_layer, p->n_head_kv, p->head_dim, type, budget);
  if (rc == HS_EINVAL)
    return hs_set_error(&err, rc, "a KV budget of %zu bytes is less than one block (%zu bytes: %u "
                        "positions)", budget, block, HS_KV_BLOCK);
  if (rc)
    return hs_set_error(&err, rc, "out of memory for a KV cache of %zu bytes", budget);
  if (hs_prefix_tree_init(&m->tree)) return hs_set_error(&err, HS_ENOMEM, "out of memory");
  m->prefix_cache = !(o && o->no_prefix_cache);
  m->shared_attention = !(o && o->no_shared_attention);
  return 0;
}

int hs_model_open(const char *path, const hs_model_opts *o, hs_model **out) {
  if (!path || !out) return hs_set_error(&err, HS_EINVAL, "hs_model_open: NULL argument");
  *out = NULL;
  hs_model *m = hs_calloc(1, sizeof *m);
  if (!m) return hs_set_error(&err, HS_ENOMEM, "out of memory");
  int rc = o && o->use_mmap ? hs_gguf_open(path, &m->g) : hs_gguf_open_copy(path, &m->g);
  if (rc) {
    hs_set_error(&err, rc, "%s", hs_gguf_last_error());
    hs_free(m);
    return rc;
  }
  if ((rc = hs_model_params_read(m->g, &m->p))) {
    hs_set_error(&err, rc, "%s: %s", path, hs_model_last_error());
    free_model(m);
    return rc;
  }
  m->kv_dim = m->p.n_head_kv * m->p.head_dim;
  m->neox = m->p.neox;
  if ((rc = bind(m))) {
    char msg[HS_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", err.msg);
    hs_set_error(&err, rc, "%s: %s", path, msg);
    free_model(m);
    return rc;
  }
  unsigned nt = o ? o->n_threads : 0;
  if ((rc = hs_threadpool_create(nt, &m->tp))) {
    hs_set_error(&err, rc, "cannot start a thread pool of %u threads: %s", nt, hs_strerror(rc));
    free_model(m);
    return rc;
  }
  if ((rc = open_kv(m, o))) {
    free_model(m);
    return rc;
  }
  m->ws.attn_scratch_per_worker = hs_attention_scratch_floats(&m->p);
  m->ws.attn_scratch = hs_malloc(m->ws.attn_scratch_per_worker * sizeof(float) *
                                 hs_threadpool_size(m->tp));
  if (!m->ws.attn_scratch) {
    free_model(m);
    return hs_set_error(&err, HS_ENOMEM, "out of memory");
  }
  *out = m;
  return 0;
}

void hs_model_close(hs_model *m) {
  if (!m) return;
  free_model(m);
}

const hs_model_params *hs_model_get_params(const hs_model *m) { return m ? &m->p : NULL; }
const hs_gguf *hs_model_get_gguf(const hs_model *m) { return m ? m->g : NULL; }
unsigned hs_model_n_threads(const hs_model *m) { return m ? hs_threadpool_size(m->tp) : 0; }
