/* act_quant.c: quantizing activation rows to 8-bit codes for the quantized weight kernels.
 *
 * Like llama.cpp, a quantized weight type is multiplied against activations quantized on the fly,
 * so that the inner products are exact integer sums: each block of `scale_block` elements (32 for
 * Q8_0/Q4_0 weights, 256 for Q4_K/Q6_K) gets
 *
 *   amax = max |x|,  d = amax / 127,  id = d != 0 ? 1 / d : 0,  q = rne(clamp(x * id, -127, 127))
 *
 * in f32 (rne: round to nearest, ties to even; a NaN product gives 0); d is then kept in f32 for
 * blocks of 256 and rounded to fp16 for blocks of 32 (the codes still come from the f32 d), as
 * llama.cpp's Q8_0 activation blocks store it, so that products match llama.cpp's. Every
 * ISA evaluates exactly these IEEE operations (a true division, no reciprocal estimate, no fused
 * multiply-add), so the bytes produced are identical whatever path runs, and kernels of different
 * ISAs see the same codes.
 *
 * Formats (rows are padded to a multiple of 64 bytes):
 *
 *   REF_Q8  blocks of 32: [0,4) f32 d, [4,8) int32 sum of the codes, [8,40) int8 q[32].
 *   REF_K   blocks of 256: [0,4) f32 d, [4,36) int16 bsums[16] (sums of 16 consecutive codes),
 *           [36,292) int8 q[256].
 *   L32     groups of 512 elements = 16 chunks of 32: byte 64*g + 4*c + b (g = 0..7, c = 0..15,
 *           b = 0..3) holds element 32*c + 4*g + b of the group, so the g-th 64-byte vector holds
 *           bytes 4g..4g+3 of every chunk, one chunk per 32-bit lane. Then side[16] at 512 and
 *           f32 dx[16] at 576: the scale of the block each chunk belongs to.
 *   L16     groups of 256 elements = 16 chunks of 16: byte 64*g + 4*c + b (g = 0..3) holds element
 *           16*c + 4*g + b; side[16] at 256, f32 dx[16] at 320.
 *   V32, V32K, V16  the "vector" formats of the direct matrix-vector kernels: the same groups,
 *           side vector and dx as L32 (V32, V32K) or L16 (V16), but each chunk's codes are
 *           contiguous: chunk c of a group at bytes [32*s, 32*s + 32) with s = c (V32) or
 *           s = hs_cpu_v32k_slot(c) (V32K, types.h), or [16*c, 16*c + 16) (V16).
 *   The side vector is per chunk: int32 -128*sum, -8*sum or -32*sum of the chunk's codes (the
 *   offset corrections of Q8_0, Q4_0 and Q6_K weights, used as the integer accumulator's start),
 *   or the f32 sum (Q4_K's mins), or zero. A last partial group is padded with zero codes, zero
 *   side and zero scales.
 */
#include <math.h>
#include <string.h>

#include "engine/cpu/types.h"
#include "hswarm/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HS_X86 1
#endif

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t hs_cpu_act_row_bytes(const hs_cpu_act_spec *spec, size_t n_cols) {
  switch (spec->fmt) {
  case HS_CPU_ACT_REF_Q8: return round64(n_cols / 32 * HS_CPU_REF_Q8_BLOCK_BYTES);
  case HS_CPU_ACT_REF_K: return round64(n_cols / 256 * HS_CPU_REF_K_BLOCK_BYTES);
  case HS_CPU_ACT_L32:
  case HS_CPU_ACT_V32:
  case HS_CPU_ACT_V32K:
    return (n_cols + HS_CPU_L32_GROUP_ELEMS - 1) / HS_CPU_L32_GROUP_ELEMS * HS_CPU_L32_GROUP_BYTES;
  case HS_CPU_ACT_L16:
  case HS_CPU_ACT_V16:
    return (n_cols + HS_CPU_L16_GROUP_ELEMS - 1) / HS_CPU_L16_GROUP_ELEMS * HS_CPU_L16_GROUP_BYTES;
  default: return 0;
  }
}

/* ---- scalar ---- */

/* The scale a block keeps: fp16-rounded for blocks of 32 (see the top of the file). */
static inline float kept_scale(float d, size_t n) {
  return n == 32 ? hs_quant_fp16_to_f32(hs_quant_f32_to_fp16(d)) : d;
}

/* Quantizes n elements (one scale block) into q; returns the kept scale. */
static float quant_block_scalar(const float *x, size_t n, int8_t *q) {
  float amax = 0.0f;
  for (size_t i = 0; i < n; i++) {
    float a = fabsf(x[i]);
    if (a > amax) amax = a; /* NaN is never greater: ignored, as the SIMD max does */
  }
  float d = amax / 127.0f;
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (size_t i = 0; i < n; i++) {
    float v = x[i] * id;
    if (v != v) v = 0.0f;
    if (v < -127.0f) v = -127.0f;
    if (v > 127.0f) v = 127.0f;
    q[i] = (int8_t)nearbyintf(v);
  }
  return kept_scale(d, n);
}

static int32_t side_int(hs_cpu_act_side side, int32_t sum) {
  switch (side) {
  case HS_CPU_SIDE_CORR128: return -128 * sum;
  case HS_CPU_SIDE_CORR8: return -8 * sum;
  case HS_CPU_SIDE_CORR32: return -32 * sum;
  default: return 0;
  }
}

static void ref_q8_row(const float *x, size_t n_cols, uint8_t *dst) {
  for (size_t b = 0; b < n_cols / 32; b++) {
    uint8_t *p = dst + b * HS_CPU_REF_Q8_BLOCK_BYTES;
    int8_t q[32];
    float d = quant_block_scalar(x + 32 * b, 32, q);
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) sum += q[i];
    memcpy(p, &d, 4);
    memcpy(p + 4, &sum, 4);
    memcpy(p + 8, q, 32);
  }
}

static void ref_k_row(const float *x, size_t n_cols, uint8_t *dst) {
  for (size_t b = 0; b < n_cols / 256; b++) {
    uint8_t *p = dst + b * HS_CPU_REF_K_BLOCK_BYTES;
    int8_t q[256];
    float d = quant_block_scalar(x + 256 * b, 256, q);
    memcpy(p, &d, 4);
    for (int s = 0; s < 16; s++) {
      int16_t bs = 0;
      for (int i = 0; i < 16; i++) bs = (int16_t)(bs + q[16 * s + i]);
      memcpy(p + 4 + 2 * s, &bs, 2);
    }
    memcpy(p + 36, q, 256);
  }
}

static int fmt_is_32(hs_cpu_act_fmt f) {
  return f == HS_CPU_ACT_L32 || f == HS_CPU_ACT_V32 || f == HS_CPU_ACT_V32K;
}

/* Byte offset in its group of byte i of chunk c's codes (lane and vector formats). */
static size_t code_off(hs_cpu_act_fmt f, size_t c, size_t i) {
  switch (f) {
  case HS_CPU_ACT_V32: return 32 * c + i;
  case HS_CPU_ACT_V32K: return 32 * hs_cpu_v32k_slot((unsigned)c) + i;
  case HS_CPU_ACT_V16: return 16 * c + i;
  default: return 64 * (i / 4) + 4 * c + i % 4; /* L32, L16 */
  }
}

/* Lane and vector formats, scalar. chunk: 32 (L32, V32, V32K) or 16 (L16, V16) elements. */
static void lane_row_scalar(const hs_cpu_act_spec *spec, const float *x, size_t n_cols,
                            uint8_t *dst) {
  size_t chunk = fmt_is_32(spec->fmt) ? 32 : 16;
  size_t group_elems = 16 * chunk;
  size_t group_bytes = fmt_is_32(spec->fmt) ? HS_CPU_L32_GROUP_BYTES : HS_CPU_L16_GROUP_BYTES;
  size_t sb = spec->scale_block;
  size_t n_groups = (n_cols + group_elems - 1) / group_elems;
  memset(dst, 0, n_groups * group_bytes);
  int8_t q[256];
  for (size_t b0 = 0; b0 < n_cols; b0 += sb) {
    float d = quant_block_scalar(x + b0, sb, q);
    for (size_t c0 = 0; c0 < sb; c0 += chunk) {
      size_t e = b0 + c0; /* first element of this chunk in the row */
      size_t g = e / group_elems, c = (e % group_elems) / chunk;
      uint8_t *gp = dst + g * group_bytes;
      int32_t sum = 0;
      for (size_t i = 0; i < chunk; i++) {
        gp[code_off(spec->fmt, c, i)] = (uint8_t)q[c0 + i];
        sum += q[c0 + i];
      }
      uint8_t *side = gp + 16 * chunk + 4 * c;
      if (spec->side == HS_CPU_SIDE_ASUM) {
        float fs = (float)sum;
        memcpy(side, &fs, 4);
      } else {
        int32_t v = side_int(spec->side, sum);
        memcpy(side, &v, 4);
      }
      memcpy(gp + 16 * chunk + 64 + 4 * c, &d, 4);
    }
  }
}

/* ---- AVX-512 ---- */
#ifdef HS_X86
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* Quantizes 16*k floats (k = 2 or 16: one scale block) to int8 codes in q; returns d. Exactly
 * the scalar rule: max of |x| (ignoring NaN), d = amax / 127, id = 1 / d, rne(clamp(x * id)). */
AVX512_TARGET static float quant_block_avx512(const float *x, int k, int8_t *q) {
  const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 vmax = _mm512_setzero_ps();
  for (int i = 0; i < k; i++) {
    __m512 a = _mm512_and_ps(_mm512_loadu_ps(x + 16 * i), absmask);
    vmax = _mm512_max_ps(a, vmax); /* a NaN in a yields vmax */
  }
  float amax = _mm512_reduce_max_ps(vmax);
  float d = amax / 127.0f;
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m512 vid = _mm512_set1_ps(id), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (int i = 0; i < k; i++) {
    __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * i), vid);
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    __m512i qi = _mm512_cvtps_epi32(v); /* MXCSR default: nearest, ties to even */
    _mm_storeu_si128((__m128i *)(q + 16 * i), _mm512_cvtepi32_epi8(qi));
  }
  return kept_scale(d, (size_t)(16 * k));
}

/* One row in a lane format: quantize each scale block in element order, then place each chunk's
 * 4-byte slices into its lane. */
AVX512_TARGET static void lane_row_avx512(const hs_cpu_act_spec *spec, const float *x,
                                          size_t n_cols, uint8_t *dst) {
  size_t chunk = fmt_is_32(spec->fmt) ? 32 : 16;
  size_t group_elems = 16 * chunk;
  size_t group_bytes = fmt_is_32(spec->fmt) ? HS_CPU_L32_GROUP_BYTES : HS_CPU_L16_GROUP_BYTES;
  size_t sb = spec->scale_block;
  size_t n_groups = (n_cols + group_elems - 1) / group_elems;
  size_t ndw = chunk / 4;
  int lanes = spec->fmt == HS_CPU_ACT_L32 || spec->fmt == HS_CPU_ACT_L16;
  /* zero only the last group's padding (every other byte is written below) */
  if (n_cols % group_elems) memset(dst + (n_groups - 1) * group_bytes, 0, group_bytes);
  _Alignas(64) int8_t q[256];
  for (size_t b0 = 0; b0 < n_cols; b0 += sb) {
    float d = quant_block_avx512(x + b0, (int)(sb / 16), q);
    for (size_t c0 = 0; c0 < sb; c0 += chunk) {
      size_t e = b0 + c0;
      size_t g = e / group_elems, c = (e % group_elems) / chunk;
      uint8_t *gp = dst + g * group_bytes;
      const int8_t *qc = q + c0;
      if (lanes)
        for (size_t w = 0; w < ndw; w++) memcpy(gp + 64 * w + 4 * c, qc + 4 * w, 4);
      else
        memcpy(gp + code_off(spec->fmt, c, 0), qc, chunk);
      /* sum of the chunk's codes */
      __m128i v = _mm_loadu_si128((const __m128i *)qc);
      __m512i s = _mm512_cvtepi8_epi32(v);
      if (chunk == 32) s = _mm512_add_epi32(s, _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(qc + 16))));
      int32_t sum = _mm512_reduce_add_epi32(s);
      uint8_t *side = gp + 16 * chunk + 4 * c;
      if (spec->side == HS_CPU_SIDE_ASUM) {
        float fs = (float)sum;
        memcpy(side, &fs, 4);
      } else {
        int32_t sv = side_int(spec->side, sum);
        memcpy(side, &sv, 4);
      }
      memcpy(gp + 16 * chunk + 64 + 4 * c, &d, 4);
    }
  }
}
#endif

void hs_cpu_act_quantize(hs_cpu_isa isa, const hs_cpu_act_spec *spec, const float *x,
                         size_t n_cols, size_t t0, size_t t1, uint8_t *act) {
  size_t stride = hs_cpu_act_row_bytes(spec, n_cols);
  for (size_t t = t0; t < t1; t++) {
    const float *xr = x + t * n_cols;
    uint8_t *dst = act + t * stride;
    switch (spec->fmt) {
    case HS_CPU_ACT_REF_Q8: ref_q8_row(xr, n_cols, dst); break;
    case HS_CPU_ACT_REF_K: ref_k_row(xr, n_cols, dst); break;
    case HS_CPU_ACT_L32:
    case HS_CPU_ACT_L16:
    case HS_CPU_ACT_V32:
    case HS_CPU_ACT_V32K:
    case HS_CPU_ACT_V16:
#ifdef HS_X86
      if (isa == HS_CPU_ISA_AVX512) {
        lane_row_avx512(spec, xr, n_cols, dst);
        break;
      }
#endif
      lane_row_scalar(spec, xr, n_cols, dst);
      break;
    default: break;
    }
  }
}
