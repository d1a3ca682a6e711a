/* ops.h: the elementwise and row operations of the forward pass (ops.c). Internal.
 *
 * Every function works on one row (a token's vector) and reduces in a fixed order that does not
 * depend on where the row sits in a batch, so rows computed alone or in a batch agree bit for
 * bit. Buffers belong to the caller; in-place use is allowed where noted. */
#ifndef HS_ENGINE_OPS_H
#define HS_ENGINE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* y[i] = x[i] * (1 / sqrt(mean(x^2) + eps)) * w[i], i < n. y may equal x. */
void hs_op_rmsnorm(float *y, const float *x, const float *w, size_t n, float eps);

/* Dot product of n floats, summed in 8 interleaved lanes then across lanes in a fixed order. */
float hs_op_dot(const float *a, const float *b, size_t n);

/* x[i] += y[i]. */
void hs_op_add(float *x, const float *y, size_t n);

/* out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)), exp by hs_op_exp16. out may equal
 * gate. */
void hs_op_swiglu(float *out, const float *gate, const float *up, size_t n);
/* out[i] = gelu(gate[i]) * up[i], GELU in its tanh form:
 *   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).  out may alias gate. */
void hs_op_geglu(float *out, const float *gate, const float *up, size_t n);
/* x[i] = c * tanh(x[i] / c)  (final logit soft-capping). */
void hs_op_softcap(float *x, size_t n, float c);

/* p16[i] = e^x with x = p16[i] - sub, for 16 lanes (the softmax of attention.c, SwiGLU), in plain
 * vector arithmetic (GCC/Clang vector extensions; vector values stay locals, loaded and stored
 * through memcpy) so that every ISA's compilation gives the same bits: x = n ln2 + r with
 * n = round(x / ln2) (by the 1.5 * 2^23 rounding trick), r reduced in two steps (Cody and Waite: ln2 = C1 + C2, C1 exact in few bits), e^r = 1 + r + r^2 P(r) with
 * the degree-5 minimax polynomial of Cephes' expf (about 1 ulp on [-ln2/2, ln2/2]), and 2^n put
 * in the exponent bits. Inputs are clamped to [-87, 88]; below -87 the result is 0 (e^-87 is
 * 1.6e-38, far below what a softmax term can contribute). */
static inline __attribute__((always_inline)) void hs_op_exp16(float *p16, float sub) {
  typedef float v16 __attribute__((vector_size(64)));
  typedef int32_t vi16 __attribute__((vector_size(64)));
  v16 x;
  memcpy(&x, p16, sizeof x);
  x = x - sub;
  const v16 lo = (v16){0} - 87.0f, hi = (v16){0} + 88.0f;
  vi16 under = x < lo, m = under;
  x = (v16)(((vi16)x & ~m) | ((vi16)lo & m));
  m = x > hi;
  x = (v16)(((vi16)x & ~m) | ((vi16)hi & m));
  const v16 magic = (v16){0} + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  v16 t = x * 1.44269504088896341f + magic;
  v16 n = t - magic;
  v16 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  v16 p = (v16){0} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * r) * r + r + 1.0f;
  vi16 ni = (vi16)t - (vi16)magic; /* n, from the low mantissa bits of t */
  v16 scale = (v16)((ni + 127) << 23);
  v16 y = p * scale;
  y = (v16)((vi16)y & ~under);
  memcpy(p16, &y, sizeof y);
}

/* In-place softmax of n > 0 floats: exp(x - max) / sum. */
void hs_op_softmax(float *x, size_t n);

/* Rotary-embedding table of one position: cs[2i] = cos(pos * theta[i]), cs[2i+1] = sin(...),
 * i < n_rot/2, computed in double and rounded once. */
void hs_op_rope_table(float *cs, const double *theta, uint32_t n_rot, uint32_t pos);

/* Rotates n_heads heads of head_dim floats at x (head h at x + h*head_dim) in place by the table
 * cs (from hs_op_rope_table): the first n_rot dimensions of each head, in pairs (x[2i], x[2i+1])
 * ("normal", llama), or (x[i], x[i + n_rot/2]) when neox (qwen2), with the angle of pair i:
 *   a' = a cos - b sin,  b' = a sin + b cos. */
void hs_op_rope(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, bool neox,
                const float *cs);

/* The embedding row of token t: row t of a table of n_cols-element rows of a tensor type,
 * dequantized into out[n_cols]. 0, or HS_EINVAL for an unsupported type. */
int hs_op_embed(float *out, int type, const void *table, size_t n_cols, uint32_t t);

#endif
