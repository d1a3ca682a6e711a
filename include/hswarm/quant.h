/* hswarm/quant.h: tensor data types ("quantization formats") exactly as GGUF and ggml define them.
 *
 * Types are named by ggml's numeric ids; this enum is the one list of tensor types of the engine:
 *
 *   id  name   elements/block  bytes/block
 *    0  F32          1             4
 *    1  F16          1             2        IEEE binary16
 *   30  BF16         1             2        top half of a binary32
 *    2  Q4_0        32            18        f16 d, 16 bytes of 4-bit codes;   x = d * (q - 8)
 *    3  Q4_1        32            20        f16 d, f16 m, 16 bytes of 4-bit codes; x = d * q + m
 *    6  Q5_0        32            22        f16 d, 32 high bits, 16 bytes of low nibbles;
 *                                                                              x = d * (q - 16)
 *    7  Q5_1        32            24        f16 d, f16 m, 32 high bits, 16 bytes; x = d * q + m
 *    8  Q8_0        32            34        f16 d, 32 signed bytes;           x = d * q
 *   20  IQ4_NL      32            18        f16 d, 16 bytes of 4-bit indices into a fixed table
 *                                           of 16 signed levels;              x = d * kvalues[q]
 *   10  Q2_K       256            84        16 4-bit scales and mins, 2-bit codes, f16 d, dmin;
 *                                                                              x = d*sc*q - dmin*m
 *   11  Q3_K       256           110        high-bit mask, 2-bit codes, 16 6-bit scales, f16 d;
 *                                                                              x = d*(sc-32)*(q-4)
 *   12  Q4_K       256           144        f16 d, f16 dmin, 12 bytes of 6-bit scales and mins,
 *                                           128 bytes of 4-bit codes;          x = d*sc*q - dmin*m
 *   14  Q6_K       256           210        128 bytes low nibbles, 64 bytes high 2-bit pairs,
 *                                           16 int8 scales, f16 d;             x = d*sc*(q - 32)
 *   13  Q5_K       256           176        Q4_K with a fifth bit per code (32 bytes of high bits)
 *   23  IQ4_XS     256           136        f16 d, 8 6-bit scales, IQ4_NL's levels;
 *                                                                   x = d*(sc-32)*kvalues[q]
 *
 * All multi-byte fields are little-endian (as in GGUF files); the code assumes a little-endian host.
 * The full bit layouts are described at the top of src/engine/quant.c.
 *
 * Buffers: every function reads src and writes dst, both owned by the caller; nothing is kept.
 * src and dst must not overlap. The quantized side is a packed array of n / block_elems blocks
 * with no padding and no alignment requirement. */
#ifndef HSWARM_QUANT_H
#define HSWARM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hs_quant_type {
  HS_QUANT_F32 = 0,
  HS_QUANT_F16 = 1,
  HS_QUANT_Q4_0 = 2,
  HS_QUANT_Q4_1 = 3,
  HS_QUANT_Q5_0 = 6,
  HS_QUANT_Q5_1 = 7,
  HS_QUANT_Q8_0 = 8,
  HS_QUANT_IQ4_NL = 20,
  HS_QUANT_Q2_K = 10,
  HS_QUANT_Q3_K = 11,
  HS_QUANT_Q4_K = 12,
  HS_QUANT_Q5_K = 13,
  HS_QUANT_Q6_K = 14,
  HS_QUANT_IQ4_XS = 23,
  HS_QUANT_BF16 = 30
};

/* Elements and bytes per block of a supported type; 0 for any other id. */
size_t hs_quant_block_elems(int ggml_type);
size_t hs_quant_block_bytes(int ggml_type);

/* Bytes taken by n elements of a type; 0 if the type is unsupported or n is not a multiple of its
 * block. */
size_t hs_quant_row_bytes(int ggml_type, size_t n);

/* Decodes n elements (a multiple of the type's block) of src into n floats at dst.
 * Returns 0, or HS_EINVAL for an unsupported type, a bad n, or a NULL pointer with n > 0. */
int hs_quant_dequantize(int ggml_type, const void *src, float *dst, size_t n);

/* Encodes n floats (a multiple of the type's block) of src into hs_quant_row_bytes(type, n)
 * bytes at dst. F32, F16 and BF16 convert each value with round-to-nearest-even. Q8_0, Q4_0,
 * Q4_1, Q5_0 and Q5_1 use ggml's reference rule (scale from the block's largest magnitude, or
 * from its range for the types with a min). The K types (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS)
 * use the simple scheme described for Q4_K below. IQ4_NL takes the scale that maps the value of largest
 * magnitude to the table's extreme level and picks the nearest level for each element (llama.cpp
 * searches a few scales more). Q4_K and Q6_K use a
 * simple quantizer (per sub-block scale and min from min/max, rounded and clamped): its output is
 * a valid block of the format but not bit-identical to llama.cpp's, whose search is more precise.
 * Non-finite inputs to the quantized types give unspecified (but memory-safe) codes.
 * Returns 0, or HS_EINVAL as for hs_quant_dequantize. */
int hs_quant_quantize(int ggml_type, const float *src, void *dst, size_t n);

/* The 16 signed levels of IQ4_NL (ggml's kvalues_iq4nl), by 4-bit index. */
extern const int8_t hs_quant_iq4nl_levels[16];

/* Scalar conversions. The narrowing ones round to nearest, ties to even; overflow gives
 * infinity; NaN stays NaN (quiet, sign kept); subnormals are produced and read exactly. */
float hs_quant_fp16_to_f32(uint16_t h);
uint16_t hs_quant_f32_to_fp16(float f);
float hs_quant_bf16_to_f32(uint16_t h);
uint16_t hs_quant_f32_to_bf16(float f);

#ifdef __cplusplus
}
#endif
#endif
