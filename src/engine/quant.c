/* quant.c: scalar reference for GGUF/ggml tensor data types (see include/hswarm/quant.h).
 *
 * This is the plain C definition of each format that faster kernels are checked against. Every
 * quantized type splits a row into blocks of a fixed number of elements; a block is a packed,
 * unaligned byte record, little-endian. "f16" below is an IEEE binary16 field.
 *
 * Q8_0  (32 elements, 34 bytes)
 *   [0..2)   f16 d
 *   [2..34)  int8 qs[32]                 x[j] = d * qs[j]
 *
 * Q4_0  (32 elements, 18 bytes)
 *   [0..2)   f16 d
 *   [2..18)  uint8 qs[16]                x[j]    = d * ((qs[j] & 15) - 8)     j = 0..15
 *                                        x[j+16] = d * ((qs[j] >> 4) - 8)
 *
 * Q4_1  (32 elements, 20 bytes)
 *   [0..2)   f16 d
 *   [2..4)   f16 m
 *   [4..20)  uint8 qs[16]                x[j] = d * (qs[j] & 15) + m,  x[j+16] = d * (qs[j] >> 4) + m
 *
 * Q5_0  (32 elements, 22 bytes)
 *   [0..2)   f16 d
 *   [2..6)   uint32 qh (little-endian): bit j is the fifth bit of element j
 *   [6..22)  uint8 qs[16]: element j's low four bits in the low nibble of qs[j], element j+16's
 *            in the high nibble                      x[j] = d * (q[j] - 16),  q = 0..31
 *
 * Q5_1  (32 elements, 24 bytes)
 *   [0..2) f16 d, [2..4) f16 m, [4..8) uint32 qh, [8..24) qs[16] as Q5_0;   x[j] = d * q[j] + m
 *
 * IQ4_NL  (32 elements, 18 bytes)
 *   [0..2)   f16 d
 *   [2..18)  uint8 qs[16], nibbles as Q4_0, each an index into 16 fixed signed levels
 *            (hs_quant_iq4nl_levels, from -127 to 113)      x[j] = d * levels[q[j]]
 *
 * Q4_K  (256 elements, 144 bytes): 8 sub-blocks of 32 elements, each with a 6-bit scale sc[s]
 * and a 6-bit min m[s], both multiplied by the block's f16 super-scales.
 *   [0..2)    f16 d
 *   [2..4)    f16 dmin
 *   [4..16)   uint8 scales[12]: for s = 0..3   sc[s] = scales[s] & 63,  m[s] = scales[s+4] & 63
 *                               for s = 4..7   sc[s] = (scales[s+4] & 15) | (scales[s-4] >> 6) << 4
 *                                              m[s]  = (scales[s+4] >> 4) | (scales[s]   >> 6) << 4
 *             (bytes 0..3 hold sc[0..3] and the top bits of sc[4..7], bytes 4..7 hold m[0..3] and
 *             the top bits of m[4..7], bytes 8..11 the low nibbles of sc[4..7] and m[4..7]).
 *   [16..144) uint8 qs[128]: four chunks of 32 bytes; chunk c holds sub-block 2c in its low
 *             nibbles and sub-block 2c+1 in its high nibbles, element l of each at byte l.
 *   x = (d * sc[s]) * q - (dmin * m[s]),   q = 0..15
 *
 * Q6_K  (256 elements, 210 bytes): 16 sub-blocks of 16 elements, each with an int8 scale.
 *   [0..128)   uint8 ql[128]  low 4 bits of each 6-bit code
 *   [128..192) uint8 qh[64]   high 2 bits
 *   [192..208) int8 scales[16]
 *   [208..210) f16 d
 *   The block is two halves of 128 elements (h = 0, 1), using ql[64h..], qh[32h..]. Inside a half,
 *   element e = 32g + l (g = 0..3, l = 0..31) takes its low nibble from ql[64h + l + 32*(g & 1)]
 *   (the low nibble for g < 2, the high nibble for g >= 2) and its high two bits from bits 2g, 2g+1
 *   of qh[32h + l]. Its scale is scales[(128h + e) / 16], i.e. one per 16 consecutive elements.
 *   x = (d * scales[s]) * (q - 32),   q = 0..63
 *
 * Q2_K  (256 elements, 84 bytes): 16 sub-blocks of 16 with a 4-bit scale and a 4-bit min each.
 *   [0..16)   uint8 scales[16]: sub-block s: sc = scales[s] & 15, m = scales[s] >> 4
 *   [16..80)  uint8 qs[64]: 2-bit codes. Halves h = 0, 1 (128 elements, qs[32h..32h+32)); inside a
 *             half, element 32g + l (g = 0..3, l = 0..31) is bits 2g, 2g+1 of qs[32h + l]
 *   [80..82)  f16 d, [82..84) f16 dmin
 *   x = (d * sc) * q - (dmin * m),   q = 0..3
 *
 * Q3_K  (256 elements, 110 bytes): 16 sub-blocks of 16 with a 6-bit signed scale each.
 *   [0..32)   uint8 hmask[32]: bit g + 4h of hmask[l] (l = 0..31) is the third bit of element
 *             128h + 32g + l
 *   [32..96)  uint8 qs[64]: the low two bits, laid out as Q2_K's
 *   [96..108) uint8 scales[12]: 16 6-bit values; the low four bits of value s are the low (s < 8)
 *             or high (s >= 8) nibble of scales[s % 8], the top two bits are bits 2 (s / 4) ..
 *             of scales[8 + s % 4]
 *   [108..110) f16 d
 *   x = (d * (scale - 32)) * (q - 4),   q = 0..7 (low bits, plus 4 when the hmask bit is set)
 *
 * Q5_K  (256 elements, 176 bytes): 8 sub-blocks of 32, scales and mins as Q4_K.
 *   [0..2) f16 d, [2..4) f16 dmin, [4..16) scales[12] (as Q4_K), [16..48) uint8 qh[32],
 *   [48..176) qs[128] low nibbles as Q4_K's; the fifth bit of element 64c + l (chunk c's
 *   sub-block 2c) is bit 2c of qh[l], of element 64c + 32 + l bit 2c + 1
 *   x = (d * sc) * q - (dmin * m),   q = 0..31
 *
 * IQ4_XS  (256 elements, 136 bytes): 8 sub-blocks of 32, each a 6-bit signed scale and IQ4_NL's
 * levels.
 *   [0..2) f16 d, [2..4) uint16 scales_h (bits 2s, 2s+1: the top two bits of scale s),
 *   [4..8) uint8 scales_l[4] (nibble s % 2 of scales_l[s / 2]: the low four bits),
 *   [8..136) qs[128]: sub-block s at qs[16s..16s+16), nibbles as IQ4_NL
 *   x = (d * (scale - 32)) * levels[q]
 *
 * The dequantizers evaluate the products in exactly the order written above, in float, so the
 * result is fully determined (tests/engine/quant_ref.py checks it bit for bit).
 *
 * The quantizers for Q8_0 and Q4_0 follow ggml's reference rule. Those for Q4_K and Q6_K are a
 * simple, correct scheme rather than llama.cpp's error-minimising search: per sub-block they take
 * the range from the min and max, derive the super-scale from the largest sub-block scale, round the
 * 6-bit (or 8-bit) sub-block scales against the stored f16 super-scale, and round each code
 * against the scale it will actually be decoded with. */
#include "hswarm/quant.h"

#include <math.h>
#include <string.h>

#include "engine/quant_internal.h"
#include "hswarm/error.h"

#define QK 32 /* elements per Q8_0 / Q4_0 block */
#define QKK 256 /* elements per K-quant super-block */

const int8_t hs_quant_iq4nl_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};

/* ---- scalar conversions ---- */

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

float hs_quant_fp16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 31u;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    /* zero or subnormal: mant * 2^-24, exact in binary32 */
    float v = (float)mant * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13)); /* inf or NaN */
  return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t hs_quant_f32_to_fp16(float f) {
  uint32_t x = f32_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t a = x & 0x7fffffffu;
  if (a > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
    return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) /* >= 65520 rounds to infinity (also infinity itself) */
    return (uint16_t)(sign | 0x7c00u);
  if (a < 0x38800000u) {
    /* below 2^-14: a half subnormal, round(|f| * 2^24). |f| = m * 2^(e - 150). */
    uint32_t e = a >> 23;
    if (e < 102) return sign; /* |f| < 2^-25: rounds to zero (ties at exactly 2^-25 go to 0) */
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q); /* q == 0x400 is the smallest normal, encoded correctly */
  }
  uint32_t h = (a - (112u << 23)) >> 13;
  uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* carry may bump the exponent */
  return (uint16_t)(sign | h);
}

float hs_quant_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t hs_quant_f32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
  x += 0x7fffu + ((x >> 16) & 1u); /* round to nearest even; overflow carries into infinity */
  return (uint16_t)(x >> 16);
}

static float load_f16(const uint8_t *p) {
  return hs_quant_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

static void store_f16(uint8_t *p, uint16_t h) {
  p[0] = (uint8_t)(h & 0xff);
  p[1] = (uint8_t)(h >> 8);
}

/* ---- block table ---- */

size_t hs_quant_block_elems(int t) {
  switch (t) {
  case HS_QUANT_F32: case HS_QUANT_F16: case HS_QUANT_BF16: return 1;
  case HS_QUANT_Q4_0: case HS_QUANT_Q4_1: case HS_QUANT_Q5_0: case HS_QUANT_Q5_1:
  case HS_QUANT_Q8_0: case HS_QUANT_IQ4_NL: return QK;
  case HS_QUANT_Q4_K: case HS_QUANT_Q6_K: case HS_QUANT_Q2_K: case HS_QUANT_Q3_K:
  case HS_QUANT_Q5_K: case HS_QUANT_IQ4_XS: return QKK;
  default: return 0;
  }
}

size_t hs_quant_block_bytes(int t) {
  switch (t) {
  case HS_QUANT_F32: return 4;
  case HS_QUANT_F16: case HS_QUANT_BF16: return 2;
  case HS_QUANT_Q4_0: return 18;
  case HS_QUANT_Q4_1: return 20;
  case HS_QUANT_Q5_0: return 22;
  case HS_QUANT_Q5_1: return 24;
  case HS_QUANT_Q8_0: return 34;
  case HS_QUANT_IQ4_NL: return 18;
  case HS_QUANT_Q4_K: return 144;
  case HS_QUANT_Q6_K: return 210;
  case HS_QUANT_Q2_K: return 84;
  case HS_QUANT_Q3_K: return 110;
  case HS_QUANT_Q5_K: return 176;
  case HS_QUANT_IQ4_XS: return 136;
  default: return 0;
  }
}

size_t hs_quant_row_bytes(int t, size_t n) {
  size_t be = hs_quant_block_elems(t);
  if (be == 0 || n % be != 0) return 0;
  return n / be * hs_quant_block_bytes(t);
}

/* ---- dequantization, one block at a time ---- */

static void deq_q8_0(const uint8_t *b, float *y) {
  float d = load_f16(b);
  for (int j = 0; j < QK; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

static void deq_q4_0(const uint8_t *b, float *y) {
  float d = load_f16(b);
  const uint8_t *qs = b + 2;
  for (int j = 0; j < QK / 2; j++) {
    y[j] = (float)((qs[j] & 15) - 8) * d;
    y[j + QK / 2] = (float)((qs[j] >> 4) - 8) * d;
  }
}

static void deq_q4_1(const uint8_t *b, float *y) {
  float d = load_f16(b), m = load_f16(b + 2);
  const uint8_t *qs = b + 4;
  for (int j = 0; j < QK / 2; j++) {
    y[j] = d * (float)(qs[j] & 15) + m;
    y[j + QK / 2] = d * (float)(qs[j] >> 4) + m;
  }
}

/* The 5-bit codes (0..31) of a Q5_0 / Q5_1 block from its qh word and qs bytes. */
static void q5_codes(const uint8_t *qh4, const uint8_t *qs, int q[QK]) {
  uint32_t qh = (uint32_t)qh4[0] | (uint32_t)qh4[1] << 8 | (uint32_t)qh4[2] << 16 |
                (uint32_t)qh4[3] << 24;
  for (int j = 0; j < QK / 2; j++) {
    q[j] = (qs[j] & 15) | (int)((qh >> j) & 1u) << 4;
    q[j + QK / 2] = (qs[j] >> 4) | (int)((qh >> (j + QK / 2)) & 1u) << 4;
  }
}

static void deq_q5_0(const uint8_t *b, float *y) {
  float d = load_f16(b);
  int q[QK];
  q5_codes(b + 2, b + 6, q);
  for (int j = 0; j < QK; j++) y[j] = (float)(q[j] - 16) * d;
}

static void deq_q5_1(const uint8_t *b, float *y) {
  float d = load_f16(b), m = load_f16(b + 2);
  int q[QK];
  q5_codes(b + 4, b + 8, q);
  for (int j = 0; j < QK; j++) y[j] = d * (float)q[j] + m;
}

static void deq_iq4_nl(const uint8_t *b, float *y) {
  float d = load_f16(b);
  const uint8_t *qs = b + 2;
  for (int j = 0; j < QK / 2; j++) {
    y[j] = d * (float)hs_quant_iq4nl_levels[qs[j] & 15];
    y[j + QK / 2] = d * (float)hs_quant_iq4nl_levels[qs[j] >> 4];
  }
}

void hs_quant_q4k_scale_min(const uint8_t *sc, int s, int *scale, int *min) {
  if (s < 4) {
    *scale = sc[s] & 63;
    *min = sc[s + 4] & 63;
  } else {
    *scale = (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4);
    *min = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
  }
}

static void deq_q4_k(const uint8_t *b, float *y) {
  float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t *scales = b + 4, *qs = b + 16;
  for (int c = 0; c < 4; c++) { /* chunk c: sub-blocks 2c (low nibbles) and 2c+1 (high) */
    int sc0, m0, sc1, m1;
    hs_quant_q4k_scale_min(scales, 2 * c, &sc0, &m0);
    hs_quant_q4k_scale_min(scales, 2 * c + 1, &sc1, &m1);
    float d0 = d * (float)sc0, mm0 = dmin * (float)m0;
    float d1 = d * (float)sc1, mm1 = dmin * (float)m1;
    for (int l = 0; l < 32; l++) {
      y[64 * c + l] = d0 * (float)(qs[32 * c + l] & 15) - mm0;
      y[64 * c + 32 + l] = d1 * (float)(qs[32 * c + l] >> 4) - mm1;
    }
  }
}

/* The 6-bit code (0..63) of element i (0..255) of a Q6_K block. */
static int q6k_code(const uint8_t *ql, const uint8_t *qh, int i) {
  int h = i / 128, e = i % 128, g = e / 32, l = e % 32;
  int lo = ql[64 * h + l + 32 * (g & 1)];
  lo = (g < 2) ? (lo & 15) : (lo >> 4);
  int hi = (qh[32 * h + l] >> (2 * g)) & 3;
  return lo | (hi << 4);
}

static void deq_q6_k(const uint8_t *b, float *y) {
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t *scales = (const int8_t *)(b + 192);
  float d = load_f16(b + 208);
  for (int i = 0; i < QKK; i++)
    y[i] = d * (float)scales[i / 16] * (float)(q6k_code(ql, qh, i) - 32);
}

/* The 2-bit field of element i (0..255) in Q2_K / Q3_K's qs[64]. */
static int q2_bits(const uint8_t *qs, int i) {
  int h = i / 128, e = i % 128, g = e / 32, l = e % 32;
  return (qs[32 * h + l] >> (2 * g)) & 3;
}

static void deq_q2_k(const uint8_t *b, float *y) {
  const uint8_t *scales = b, *qs = b + 16;
  float d = load_f16(b + 80), dmin = load_f16(b + 82);
  for (int s = 0; s < 16; s++) {
    float dl = d * (float)(scales[s] & 15), ml = dmin * (float)(scales[s] >> 4);
    for (int l = 0; l < 16; l++) y[16 * s + l] = dl * (float)q2_bits(qs, 16 * s + l) - ml;
  }
}

void hs_quant_q3k_scales(const uint8_t *p, int sc[16]) {
  for (int s = 0; s < 16; s++) {
    int lo = (s < 8 ? p[s] : p[s - 8] >> 4) & 15;
    int hi = (p[8 + s % 4] >> (2 * (s / 4))) & 3;
    sc[s] = lo | hi << 4;
  }
}

/* The 3-bit code (0..7) of element i of a Q3_K block. */
static int q3k_code(const uint8_t *hmask, const uint8_t *qs, int i) {
  int h = i / 128, g = (i % 128) / 32, l = i % 32;
  return q2_bits(qs, i) | ((hmask[l] >> (g + 4 * h)) & 1) << 2;
}

static void deq_q3_k(const uint8_t *b, float *y) {
  const uint8_t *hmask = b, *qs = b + 32;
  int sc[16];
  hs_quant_q3k_scales(b + 96, sc);
  float d = load_f16(b + 108);
  for (int s = 0; s < 16; s++) {
    float dl = d * (float)(sc[s] - 32);
    for (int l = 0; l < 16; l++) y[16 * s + l] = dl * (float)(q3k_code(hmask, qs, 16 * s + l) - 4);
  }
}

static void deq_q5_k(const uint8_t *b, float *y) {
  float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + 48;
  for (int c = 0; c < 4; c++) {
    int sc0, m0, sc1, m1;
    hs_quant_q4k_scale_min(scales, 2 * c, &sc0, &m0);
    hs_quant_q4k_scale_min(scales, 2 * c + 1, &sc1, &m1);
    float d0 = d * (float)sc0, mm0 = dmin * (float)m0;
    float d1 = d * (float)sc1, mm1 = dmin * (float)m1;
    for (int l = 0; l < 32; l++) {
      int q0 = (qs[32 * c + l] & 15) | ((qh[l] >> (2 * c)) & 1) << 4;
      int q1 = (qs[32 * c + l] >> 4) | ((qh[l] >> (2 * c + 1)) & 1) << 4;
      y[64 * c + l] = d0 * (float)q0 - mm0;
      y[64 * c + 32 + l] = d1 * (float)q1 - mm1;
    }
  }
}

int hs_quant_iq4xs_scale(const uint8_t *b, int s) {
  int hi = ((b[2] | b[3] << 8) >> (2 * s)) & 3;
  return ((b[4 + s / 2] >> (4 * (s % 2))) & 15) | hi << 4;
}

static void deq_iq4_xs(const uint8_t *b, float *y) {
  float d = load_f16(b);
  const uint8_t *qs = b + 8;
  for (int s = 0; s < 8; s++) {
    float dl = d * (float)(hs_quant_iq4xs_scale(b, s) - 32);
    for (int j = 0; j < 16; j++) {
      y[32 * s + j] = dl * (float)hs_quant_iq4nl_levels[qs[16 * s + j] & 15];
      y[32 * s + 16 + j] = dl * (float)hs_quant_iq4nl_levels[qs[16 * s + j] >> 4];
    }
  }
}

int hs_quant_dequantize(int t, const void *src, float *dst, size_t n) {
  size_t be = hs_quant_block_elems(t), bb = hs_quant_block_bytes(t);
  if (be == 0 || n % be != 0) return HS_EINVAL;
  if (n > 0 && (!src || !dst)) return HS_EINVAL;
  const uint8_t *p = src;
  size_t nb = n / be;
  for (size_t i = 0; i < nb; i++, p += bb, dst += be) {
    switch (t) {
    case HS_QUANT_F32: memcpy(dst, p, 4); break;
    case HS_QUANT_F16: *dst = load_f16(p); break;
    case HS_QUANT_BF16: *dst = hs_quant_bf16_to_f32((uint16_t)(p[0] | (p[1] << 8))); break;
    case HS_QUANT_Q8_0: deq_q8_0(p, dst); break;
    case HS_QUANT_Q4_0: deq_q4_0(p, dst); break;
    case HS_QUANT_Q4_1: deq_q4_1(p, dst); break;
    case HS_QUANT_Q5_0: deq_q5_0(p, dst); break;
    case HS_QUANT_Q5_1: deq_q5_1(p, dst); break;
    case HS_QUANT_IQ4_NL: deq_iq4_nl(p, dst); break;
    case HS_QUANT_Q4_K: deq_q4_k(p, dst); break;
    case HS_QUANT_Q6_K: deq_q6_k(p, dst); break;
    case HS_QUANT_Q2_K: deq_q2_k(p, dst); break;
    case HS_QUANT_Q3_K: deq_q3_k(p, dst); break;
    case HS_QUANT_Q5_K: deq_q5_k(p, dst); break;
    case HS_QUANT_IQ4_XS: deq_iq4_xs(p, dst); break;
    default: return HS_EINVAL;
    }
  }
  return 0;
}

/* ---- quantization, one block at a time ---- */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Rounds x to the nearest int (halves away from zero) and clamps to [lo, hi]; NaN gives lo. */
static int round_clamp(float x, int lo, int hi) {
  if (!(x >= (float)lo)) return lo;
  if (x >= (float)hi) return hi;
  return clampi((int)lroundf(x), lo, hi);
}

static void q_q8_0(const float *x, uint8_t *b) {
  float amax = 0.0f;
  for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
  float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, hs_quant_f32_to_fp16(d));
  for (int j = 0; j < QK; j++) b[2 + j] = (uint8_t)(int8_t)round_clamp(x[j] * id, -127, 127);
}

/* The value of largest magnitude among x[0..n), with its sign (the first of equal magnitudes;
 * 0 when all are 0 or NaN). */
static float signed_absmax(const float *x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; j++)
    if (fabsf(x[j]) > amax) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  return max;
}

static void q_q4_0(const float *x, uint8_t *b) {
  float max = signed_absmax(x, QK);
  float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, hs_quant_f32_to_fp16(d));
  for (int j = 0; j < QK / 2; j++) {
    /* code = trunc(x/d + 8.5), i.e. round(x/d) + 8, clamped to 0..15 */
    int q0 = round_clamp(floorf(x[j] * id + 8.5f), 0, 15);
    int q1 = round_clamp(floorf(x[j + QK / 2] * id + 8.5f), 0, 15);
    b[2 + j] = (uint8_t)(q0 | (q1 << 4));
  }
}

/* min and max of a block (NaN ignored) */
static void block_range(const float *x, float *lo, float *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int j = 0; j < QK; j++) {
    if (x[j] < *lo) *lo = x[j];
    if (x[j] > *hi) *hi = x[j];
  }
  if (*lo > *hi) *lo = *hi = 0.0f; /* all NaN */
}

static void q_q4_1(const float *x, uint8_t *b) {
  float lo, hi;
  block_range(x, &lo, &hi);
  float d = (hi - lo) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, hs_quant_f32_to_fp16(d));
  store_f16(b + 2, hs_quant_f32_to_fp16(lo));
  for (int j = 0; j < QK / 2; j++) {
    int q0 = round_clamp(floorf((x[j] - lo) * id + 0.5f), 0, 15);
    int q1 = round_clamp(floorf((x[j + QK / 2] - lo) * id + 0.5f), 0, 15);
    b[4 + j] = (uint8_t)(q0 | (q1 << 4));
  }
}

/* Stores 5-bit codes q[32] as qh (4 bytes) and qs (16 bytes). */
static void q5_store(const int q[QK], uint8_t *qh4, uint8_t *qs) {
  uint32_t qh = 0;
  for (int j = 0; j < QK / 2; j++) {
    qs[j] = (uint8_t)((q[j] & 15) | ((q[j + QK / 2] & 15) << 4));
    qh |= (uint32_t)(q[j] >> 4) << j;
    qh |= (uint32_t)(q[j + QK / 2] >> 4) << (j + QK / 2);
  }
  for (int k = 0; k < 4; k++) qh4[k] = (uint8_t)(qh >> (8 * k));
}

static void q_q5_0(const float *x, uint8_t *b) {
  float max = signed_absmax(x, QK);
  float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, hs_quant_f32_to_fp16(d));
  int q[QK];
  for (int j = 0; j < QK; j++) q[j] = round_clamp(floorf(x[j] * id + 16.5f), 0, 31);
  q5_store(q, b + 2, b + 6);
}

static void q_q5_1(const float *x, uint8_t *b) {
  float lo, hi;
  block_range(x, &lo, &hi);
  float d = (hi - lo) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, hs_quant_f32_to_fp16(d));
  store_f16(b + 2, hs_quant_f32_to_fp16(lo));
  int q[QK];
  for (int j = 0; j < QK; j++) q[j] = round_clamp(floorf((x[j] - lo) * id + 0.5f), 0, 31);
  q5_store(q, b + 4, b + 8);
}

/* The index of the level nearest to v (the first of two equally near). */
static int iq4nl_nearest(float v) {
  int best = 0;
  float bd = INFINITY;
  for (int k = 0; k < 16; k++) {
    float dist = fabsf(v - (float)hs_quant_iq4nl_levels[k]);
    if (dist < bd) {
      bd = dist;
      best = k;
    }
  }
  return best;
}

static void q_iq4_nl(const float *x, uint8_t *b) {
  float max = signed_absmax(x, QK);
  /* the largest magnitude lands on the extreme level of its sign */
  float d = max < 0 ? max / -127.0f : max / 113.0f;
  uint16_t dh = hs_quant_f32_to_fp16(d);
  float dr = hs_quant_fp16_to_f32(dh), id = dr != 0.0f ? 1.0f / dr : 0.0f;
  store_f16(b, dh);
  for (int j = 0; j < QK / 2; j++) {
    int q0 = iq4nl_nearest(x[j] * id), q1 = iq4nl_nearest(x[j + QK / 2] * id);
    b[2 + j] = (uint8_t)(q0 | (q1 << 4));
  }
}

static void q_q4_k(const float *x, uint8_t *b) {
  float scale[8], minv[8], smax = 0.0f, mmax = 0.0f;
  for (int s = 0; s < 8; s++) {
    float lo = 0.0f, hi = 0.0f; /* the range always includes 0, so the min term is >= 0 */
    for (int l = 0; l < 32; l++) {
      lo = fminf(lo, x[32 * s + l]);
      hi = fmaxf(hi, x[32 * s + l]);
    }
    scale[s] = (hi - lo) / 15.0f;
    minv[s] = -lo;
    smax = fmaxf(smax, scale[s]);
    mmax = fmaxf(mmax, minv[s]);
  }
  uint16_t dh = hs_quant_f32_to_fp16(smax / 63.0f), mh = hs_quant_f32_to_fp16(mmax / 63.0f);
  float d = hs_quant_fp16_to_f32(dh), dmin = hs_quant_fp16_to_f32(mh);
  int sc[8], m[8];
  for (int s = 0; s < 8; s++) {
    /* round the sub-block scale up so that the whole range still fits in 0..15 */
    sc[s] = d > 0.0f ? round_clamp(ceilf(scale[s] / d), 0, 63) : 0;
    m[s] = dmin > 0.0f ? round_clamp(minv[s] / dmin, 0, 63) : 0;
  }
  store_f16(b, dh);
  store_f16(b + 2, mh);
  uint8_t *p = b + 4;
  for (int s = 0; s < 4; s++) {
    p[s] = (uint8_t)((sc[s] & 63) | ((sc[s + 4] >> 4) << 6));
    p[s + 4] = (uint8_t)((m[s] & 63) | ((m[s + 4] >> 4) << 6));
    p[s + 8] = (uint8_t)((sc[s + 4] & 15) | ((m[s + 4] & 15) << 4));
  }
  uint8_t *qs = b + 16;
  memset(qs, 0, 128);
  for (int s = 0; s < 8; s++) {
    float ds = d * (float)sc[s], ms = dmin * (float)m[s];
    for (int l = 0; l < 32; l++) {
      int q = ds > 0.0f ? round_clamp((x[32 * s + l] + ms) / ds, 0, 15) : 0;
      qs[32 * (s / 2) + l] |= (uint8_t)(q << (4 * (s & 1)));
    }
  }
}

static void q_q6_k(const float *x, uint8_t *b) {
  float scale[16], smax = 0.0f;
  for (int s = 0; s < 16; s++) {
    float amax = 0.0f;
    for (int l = 0; l < 16; l++) amax = fmaxf(amax, fabsf(x[16 * s + l]));
    scale[s] = amax / 31.0f; /* codes -31..31 (the format allows -32) */
    smax = fmaxf(smax, scale[s]);
  }
  uint16_t dh = hs_quant_f32_to_fp16(smax / 127.0f);
  float d = hs_quant_fp16_to_f32(dh);
  int8_t *scales = (int8_t *)(b + 192);
  uint8_t *ql = b, *qh = b + 128;
  memset(b, 0, 192);
  for (int s = 0; s < 16; s++) scales[s] = (int8_t)(d > 0.0f ? round_clamp(scale[s] / d, 0, 127) : 0);
  store_f16(b + 208, dh);
  for (int i = 0; i < QKK; i++) {
    float ds = d * (float)scales[i / 16];
    int q = (ds > 0.0f ? round_clamp(x[i] / ds, -32, 31) : 0) + 32;
    int h = i / 128, e = i % 128, g = e / 32, l = e % 32;
    ql[64 * h + l + 32 * (g & 1)] |= (uint8_t)((q & 15) << (g < 2 ? 0 : 4));
    qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * g));
  }
}

/* Per sub-block of n elements: the range [lo, hi] (always including 0, so the min term is >= 0). */
static void sub_range(const float *x, int n, float *lo, float *hi) {
  *lo = 0.0f;
  *hi = 0.0f;
  for (int l = 0; l < n; l++) {
    *lo = fminf(*lo, x[l]);
    *hi = fmaxf(*hi, x[l]);
  }
}

/* Packs Q4_K-style 6-bit scales and mins of 8 sub-blocks into 12 bytes. */
static void pack_scale_min12(const int sc[8], const int m[8], uint8_t *p) {
  for (int s = 0; s < 4; s++) {
    p[s] = (uint8_t)((sc[s] & 63) | ((sc[s + 4] >> 4) << 6));
    p[s + 4] = (uint8_t)((m[s] & 63) | ((m[s + 4] >> 4) << 6));
    p[s + 8] = (uint8_t)((sc[s + 4] & 15) | ((m[s + 4] & 15) << 4));
  }
}

/* Sub-block scales and mins for nsub sub-blocks of sub elements and codes 0..qmax, with scale and
 * min levels 0..smax against f16 super-scales: the scheme of q_q4_k, shared by Q2_K and Q5_K. */
static void scales_mins(const float *x, int nsub, int sub, int qmax, int smax, uint16_t *dh,
                        uint16_t *mh, int *sc, int *m) {
  float scale[16], minv[16], smx = 0.0f, mmx = 0.0f;
  for (int s = 0; s < nsub; s++) {
    float lo, hi;
    sub_range(x + sub * s, sub, &lo, &hi);
    scale[s] = (hi - lo) / (float)qmax;
    minv[s] = -lo;
    smx = fmaxf(smx, scale[s]);
    mmx = fmaxf(mmx, minv[s]);
  }
  *dh = hs_quant_f32_to_fp16(smx / (float)smax);
  *mh = hs_quant_f32_to_fp16(mmx / (float)smax);
  float d = hs_quant_fp16_to_f32(*dh), dmin = hs_quant_fp16_to_f32(*mh);
  for (int s = 0; s < nsub; s++) {
    sc[s] = d > 0.0f ? round_clamp(ceilf(scale[s] / d), 0, smax) : 0;
    m[s] = dmin > 0.0f ? round_clamp(minv[s] / dmin, 0, smax) : 0;
  }
}

static void q_q2_k(const float *x, uint8_t *b) {
  uint16_t dh, mh;
  int sc[16], m[16];
  scales_mins(x, 16, 16, 3, 15, &dh, &mh, sc, m);
  float d = hs_quant_fp16_to_f32(dh), dmin = hs_quant_fp16_to_f32(mh);
  memset(b, 0, 84);
  for (int s = 0; s < 16; s++) b[s] = (uint8_t)(sc[s] | m[s] << 4);
  for (int i = 0; i < QKK; i++) {
    float ds = d * (float)sc[i / 16], ms = dmin * (float)m[i / 16];
    int q = ds > 0.0f ? round_clamp((x[i] + ms) / ds, 0, 3) : 0;
    int h = i / 128, e = i % 128, g = e / 32, l = e % 32;
    b[16 + 32 * h + l] |= (uint8_t)(q << (2 * g));
  }
  store_f16(b + 80, dh);
  store_f16(b + 82, mh);
}

static void q_q3_k(const float *x, uint8_t *b) {
  float scale[16], smax = 0.0f;
  for (int s = 0; s < 16; s++) {
    float amax = 0.0f;
    for (int l = 0; l < 16; l++) amax = fmaxf(amax, fabsf(x[16 * s + l]));
    scale[s] = amax / 4.0f; /* codes -4..3 */
    smax = fmaxf(smax, scale[s]);
  }
  uint16_t dh = hs_quant_f32_to_fp16(smax / 31.0f);
  float d = hs_quant_fp16_to_f32(dh);
  int sc[16];
  for (int s = 0; s < 16; s++) sc[s] = d > 0.0f ? round_clamp(scale[s] / d, 0, 31) : 0;
  memset(b, 0, 110);
  uint8_t *hmask = b, *qs = b + 32, *p = b + 96;
  for (int s = 0; s < 16; s++) {
    int v = sc[s] + 32; /* stored biased by 32 */
    p[s % 8] |= (uint8_t)((v & 15) << (s < 8 ? 0 : 4));
    p[8 + s % 4] |= (uint8_t)((v >> 4) << (2 * (s / 4)));
  }
  for (int i = 0; i < QKK; i++) {
    float ds = d * (float)sc[i / 16];
    int c = (ds > 0.0f ? round_clamp(x[i] / ds, -4, 3) : 0) + 4;
    int h = i / 128, e = i % 128, g = e / 32, l = e % 32;
    qs[32 * h + l] |= (uint8_t)((c & 3) << (2 * g));
    hmask[l] |= (uint8_t)((c >> 2) << (g + 4 * h));
  }
  store_f16(b + 108, dh);
}

static void q_q5_k(const float *x, uint8_t *b) {
  uint16_t dh, mh;
  int sc[8], m[8];
  scales_mins(x, 8, 32, 31, 63, &dh, &mh, sc, m);
  float d = hs_quant_fp16_to_f32(dh), dmin = hs_quant_fp16_to_f32(mh);
  store_f16(b, dh);
  store_f16(b + 2, mh);
  pack_scale_min12(sc, m, b + 4);
  uint8_t *qh = b + 16, *qs = b + 48;
  memset(qh, 0, 32 + 128);
  for (int s = 0; s < 8; s++) {
    float ds = d * (float)sc[s], ms = dmin * (float)m[s];
    for (int l = 0; l < 32; l++) {
      int q = ds > 0.0f ? round_clamp((x[32 * s + l] + ms) / ds, 0, 31) : 0;
      qs[32 * (s / 2) + l] |= (uint8_t)((q & 15) << (4 * (s & 1)));
      qh[l] |= (uint8_t)((q >> 4) << s);
    }
  }
}

static void q_iq4_xs(const float *x, uint8_t *b) {
  float dls[8], dmax = 0.0f;
  for (int s = 0; s < 8; s++) {
    float max = signed_absmax(x + 32 * s, 32);
    dls[s] = max < 0 ? max / -127.0f : max / 113.0f;
    dmax = fmaxf(dmax, dls[s]);
  }
  uint16_t dh = hs_quant_f32_to_fp16(dmax / 31.0f);
  float d = hs_quant_fp16_to_f32(dh);
  memset(b, 0, 136);
  store_f16(b, dh);
  uint16_t scales_h = 0;
  for (int s = 0; s < 8; s++) {
    int ls = (d > 0.0f ? round_clamp(dls[s] / d, 0, 31) : 0) + 32;
    b[4 + s / 2] |= (uint8_t)((ls & 15) << (4 * (s % 2)));
    scales_h |= (uint16_t)((ls >> 4) << (2 * s));
    float dl = d * (float)(ls - 32), id = dl != 0.0f ? 1.0f / dl : 0.0f;
    for (int j = 0; j < 16; j++) {
      int q0 = iq4nl_nearest(x[32 * s + j] * id), q1 = iq4nl_nearest(x[32 * s + 16 + j] * id);
      b[8 + 16 * s + j] = (uint8_t)(q0 | q1 << 4);
    }
  }
  store_f16(b + 2, scales_h);
}

int hs_quant_quantize(int t, const float *src, void *dst, size_t n) {
  size_t be = hs_quant_block_elems(t), bb = hs_quant_block_bytes(t);
  if (be == 0 || n % be != 0) return HS_EINVAL;
  if (n > 0 && (!src || !dst)) return HS_EINVAL;
  uint8_t *p = dst;
  size_t nb = n / be;
  for (size_t i = 0; i < nb; i++, p += bb, src += be) {
    switch (t) {
    case HS_QUANT_F32: memcpy(p, src, 4); break;
    case HS_QUANT_F16: store_f16(p, hs_quant_f32_to_fp16(*src)); break;
    case HS_QUANT_BF16: store_f16(p, hs_quant_f32_to_bf16(*src)); break;
    case HS_QUANT_Q8_0: q_q8_0(src, p); break;
    case HS_QUANT_Q4_0: q_q4_0(src, p); break;
    case HS_QUANT_Q4_1: q_q4_1(src, p); break;
    case HS_QUANT_Q5_0: q_q5_0(src, p); break;
    case HS_QUANT_Q5_1: q_q5_1(src, p); break;
    case HS_QUANT_IQ4_NL: q_iq4_nl(src, p); break;
    case HS_QUANT_Q4_K: q_q4_k(src, p); break;
    case HS_QUANT_Q6_K: q_q6_k(src, p); break;
    case HS_QUANT_Q2_K: q_q2_k(src, p); break;
    case HS_QUANT_Q3_K: q_q3_k(src, p); break;
    case HS_QUANT_Q5_K: q_q5_k(src, p); break;
    case HS_QUANT_IQ4_XS: q_iq4_xs(src, p); break;
    default: return HS_EINVAL;
    }
  }
  return 0;
}
