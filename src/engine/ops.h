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

/* y[i] = x[i] * (1 / sqrt(mean(x^2) + eps)) * w[i], i < n. y may equal x. */
void hs_op_rmsnorm(float *y, const float *x, const float *w, size_t n, float eps);

/* Dot product of n floats, summed in 8 interleaved lanes then across lanes in a fixed order. */
float hs_op_dot(const float *a, const float *b, size_t n);

/* x[i] += y[i]. */
void hs_op_add(float *x, const float *y, size_t n);

/* out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may equal gate. */
void hs_op_swiglu(float *out, const float *gate, const float *up, size_t n);

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
