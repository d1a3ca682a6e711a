/* ops.c: the elementwise and row operations of the forward pass: RMSNorm, dot products,
 * residual add, SwiGLU, softmax, rotary embeddings, embedding lookup (see ops.h).
 *
 * The idea: each reduction runs in 8 interleaved lanes (GCC/Clang vector extensions, which the
 * compiler maps to whatever SIMD the target has, two SSE registers on baseline x86-64) and the
 * lanes are then summed in one fixed order. The order depends only on the row's length, never on
 * the batch or the thread, and with -ffp-contract=off no multiply-add is fused behind our back,
 * so a row gives the same bits wherever it is computed. Loads go through memcpy (the compiler
 * turns it into unaligned vector loads); nothing here assumes alignment. */
#include "engine/ops.h"

#include <math.h>
#include <string.h>

#include "hswarm/error.h"
#include "hswarm/quant.h"

typedef float v8 __attribute__((vector_size(32)));

/* Vector values are only ever locals: passing them to functions would depend on the target's
 * ABI for 32-byte vectors (GCC warns), so loads, stores and the lane sum are macros. */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(v8))
#define STORE8(p, v) memcpy((p), &(v), sizeof(v8))
/* The lanes summed in a fixed tree: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)). */
#define HSUM8(v) ((((v)[0] + (v)[4]) + ((v)[2] + (v)[6])) + (((v)[1] + (v)[5]) + ((v)[3] + (v)[7])))

float hs_op_dot(const float *a, const float *b, size_t n) {
  v8 acc = {0}, va, vb;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    LOAD8(va, a + i);
    LOAD8(vb, b + i);
    acc += va * vb;
  }
  float s = HSUM8(acc);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

void hs_op_rmsnorm(float *y, const float *x, const float *w, size_t n, float eps) {
  float ss = hs_op_dot(x, x, n);
  float scale = (float)(1.0 / sqrt((double)ss / (double)n + (double)eps));
  size_t i = 0;
  v8 vs = {scale, scale, scale, scale, scale, scale, scale, scale}, vx, vw;
  for (; i + 8 <= n; i += 8) {
    LOAD8(vx, x + i);
    LOAD8(vw, w + i);
    vx = vx * vs * vw;
    STORE8(y + i, vx);
  }
  for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

void hs_op_add(float *x, const float *y, size_t n) {
  size_t i = 0;
  v8 vx, vy;
  for (; i + 8 <= n; i += 8) {
    LOAD8(vx, x + i);
    LOAD8(vy, y + i);
    vx += vy;
    STORE8(x + i, vx);
  }
  for (; i < n; i++) x[i] += y[i];
}

void hs_op_swiglu(float *out, const float *gate, const float *up, size_t n) {
  float t[16];
  for (size_t i = 0; i < n; i += 16) {
    size_t m = n - i < 16 ? n - i : 16;
    for (size_t k = 0; k < 16; k++) t[k] = k < m ? -gate[i + k] : 0.0f;
    hs_op_exp16(t, 0.0f);
    for (size_t k = 0; k < m; k++) out[i + k] = gate[i + k] / (1.0f + t[k]) * up[i + k];
  }
}

/* tanh(z) = 1 - 2 / (1 + e^(2z)) for 16 values at once (e^(2z) by the shared polynomial; it
 * saturates to 0 or infinity, giving -1 or 1). */
static void tanh16(float *t, size_t m) {
  for (size_t k = 0; k < 16; k++) t[k] = k < m ? 2.0f * t[k] : 0.0f;
  hs_op_exp16(t, 0.0f);
  for (size_t k = 0; k < m; k++) t[k] = 1.0f - 2.0f / (1.0f + t[k]);
}

void hs_op_geglu(float *out, const float *gate, const float *up, size_t n) {
  const float c = 0.7978845608028654f; /* sqrt(2/pi) */
  float t[16];
  for (size_t i = 0; i < n; i += 16) {
    size_t m = n - i < 16 ? n - i : 16;
    for (size_t k = 0; k < m; k++) {
      float x = gate[i + k];
      t[k] = c * (x + 0.044715f * x * x * x);
    }
    tanh16(t, m);
    for (size_t k = 0; k < m; k++) out[i + k] = 0.5f * gate[i + k] * (1.0f + t[k]) * up[i + k];
  }
}

void hs_op_softcap(float *x, size_t n, float c) {
  float t[16];
  for (size_t i = 0; i < n; i += 16) {
    size_t m = n - i < 16 ? n - i : 16;
    for (size_t k = 0; k < m; k++) t[k] = x[i + k] / c;
    tanh16(t, m);
    for (size_t k = 0; k < m; k++) x[i + k] = c * t[k];
  }
}

void hs_op_softmax(float *x, size_t n) {
  float mx = x[0];
  for (size_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  float sum = 0;
  for (size_t i = 0; i < n; i++) {
    x[i] = expf(x[i] - mx);
    sum += x[i];
  }
  float inv = 1.0f / sum;
  for (size_t i = 0; i < n; i++) x[i] *= inv;
}

void hs_op_rope_table(float *cs, const double *theta, uint32_t n_rot, uint32_t pos) {
  for (uint32_t i = 0; i < n_rot / 2; i++) {
    double a = (double)pos * theta[i];
    cs[2 * i] = (float)cos(a);
    cs[2 * i + 1] = (float)sin(a);
  }
}

void hs_op_rope(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, bool neox,
                const float *cs) {
  const uint32_t half = n_rot / 2;
  for (uint32_t h = 0; h < n_heads; h++) {
    float *xh = x + (size_t)h * head_dim;
    if (neox) {
      for (uint32_t i = 0; i < half; i++) {
        float a = xh[i], b = xh[i + half], c = cs[2 * i], s = cs[2 * i + 1];
        xh[i] = a * c - b * s;
        xh[i + half] = a * s + b * c;
      }
    } else {
      for (uint32_t i = 0; i < half; i++) {
        float a = xh[2 * i], b = xh[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
        xh[2 * i] = a * c - b * s;
        xh[2 * i + 1] = a * s + b * c;
      }
    }
  }
}

int hs_op_embed(float *out, int type, const void *table, size_t n_cols, uint32_t t) {
  size_t rb = hs_quant_row_bytes(type, n_cols);
  if (rb == 0) return HS_EINVAL;
  return hs_quant_dequantize(type, (const uint8_t *)table + (size_t)t * rb, out, n_cols);
}
