#!/usr/bin/python3
"""quant_ref.py: an independent NumPy reference for dequantizing GGUF/ggml tensor types.

Usage: /usr/bin/python3 quant_ref.py TYPE IN OUT
  TYPE  ggml type id (0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1, 8 Q8_0, 10 Q2_K, 11 Q3_K,
        12 Q4_K, 13 Q5_K, 14 Q6_K, 20 IQ4_NL, 23 IQ4_XS, 30 BF16) or its name
  IN    file of packed raw blocks (little-endian, as stored in a GGUF tensor)
  OUT   written with the decoded values as little-endian float32

Written from the format definitions (ggml's block structs), vectorised over blocks, not from the C
code in src/engine/quant.c. Every product is done in float32 in the order the format prescribes
(scale times sub-scale first, then times the code, then minus the min term), so the output must
equal the C dequantizer bit for bit. Exit status: 0 on success, 2 on bad usage or input.
"""
import sys

import numpy as np

F32 = np.float32

# id: (name, elements per block, bytes per block)
TYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    20: ("IQ4_NL", 32, 18),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    23: ("IQ4_XS", 256, 136),
    14: ("Q6_K", 256, 210),
    30: ("BF16", 1, 2),
}


def half_bits_to_f32(h):
    """uint16 array of IEEE binary16 patterns -> float32 array, decoded from the bit fields
    (sign 1, exponent 5 with bias 15, mantissa 10) so that NaN payloads are kept exactly,
    whatever conversion instruction NumPy would pick."""
    h = h.astype(np.uint32)
    sign = (h >> 15) << 31
    exp = (h >> 10) & 31
    mant = h & 1023
    normal = sign | ((exp + 112) << 23) | (mant << 13)  # rebias 15 -> 127
    special = sign | np.uint32(0x7F800000) | (mant << 13)  # inf, NaN
    out = np.where(exp == 31, special, normal).view(F32)
    # zero and subnormals: mant * 2^-24, exact in float32
    sub = (mant.astype(F32) * F32(2.0**-24)) * np.where(sign != 0, F32(-1), F32(1))
    return np.where(exp == 0, sub, out).astype(F32)


def f16(raw):
    """uint8 array [..., 2] (little-endian halves) -> float32 array [...] (exact)."""
    return half_bits_to_f32(np.ascontiguousarray(raw).view("<u2")[..., 0])


def deq_q8_0(blk):  # blk: uint8 [nb, 34]
    d = f16(blk[:, 0:2])  # [nb]
    q = blk[:, 2:34].view(np.int8).astype(F32)  # [nb, 32]
    return d[:, None] * q


def deq_q4_0(blk):  # blk: uint8 [nb, 18]
    d = f16(blk[:, 0:2])
    qs = blk[:, 2:18]  # [nb, 16]
    lo = (qs & 0x0F).astype(np.int32) - 8  # elements 0..15
    hi = (qs >> 4).astype(np.int32) - 8  # elements 16..31
    q = np.concatenate([lo, hi], axis=1).astype(F32)  # [nb, 32]
    return d[:, None] * q


def nibbles(qs):
    """uint8 [nb, 16] -> int32 [nb, 32]: low nibbles are elements 0..15, high ones 16..31."""
    return np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.int32)


def fifth_bits(qh4):
    """uint8 [nb, 4] (a little-endian uint32) -> int32 [nb, 32]: bit j of the word, times 16."""
    word = np.ascontiguousarray(qh4).view("<u4")[:, 0].astype(np.int64)  # [nb]
    j = np.arange(32, dtype=np.int64)
    return (((word[:, None] >> j[None, :]) & 1) << 4).astype(np.int32)


def deq_q4_1(blk):  # f16 d, f16 m, qs[16]: d * q + m
    d, m = f16(blk[:, 0:2]), f16(blk[:, 2:4])
    q = nibbles(blk[:, 4:20]).astype(F32)
    return d[:, None] * q + m[:, None]


def deq_q5_0(blk):  # f16 d, qh[4], qs[16]: d * (q - 16)
    d = f16(blk[:, 0:2])
    q = (nibbles(blk[:, 6:22]) | fifth_bits(blk[:, 2:6])) - 16
    return d[:, None] * q.astype(F32)


def deq_q5_1(blk):  # f16 d, f16 m, qh[4], qs[16]: d * q + m
    d, m = f16(blk[:, 0:2]), f16(blk[:, 2:4])
    q = nibbles(blk[:, 8:24]) | fifth_bits(blk[:, 4:8])
    return d[:, None] * q.astype(F32) + m[:, None]


# ggml's kvalues_iq4nl: the 16 signed levels an IQ4_NL / IQ4_XS nibble indexes
IQ4NL_LEVELS = np.array([-127, -104, -83, -65, -49, -35, -22, -10,
                         1, 13, 25, 38, 53, 69, 89, 113], dtype=np.int32)


def deq_iq4_nl(blk):  # f16 d, qs[16]: d * levels[q]
    d = f16(blk[:, 0:2])
    return d[:, None] * IQ4NL_LEVELS[nibbles(blk[:, 2:18])].astype(F32)


def q4k_scales_mins(s12):
    """uint8 [nb, 12] -> (scale [nb, 8], min [nb, 8]) as ints 0..63."""
    s12 = s12.astype(np.int32)
    a, b, c = s12[:, 0:4], s12[:, 4:8], s12[:, 8:12]
    # sub-blocks 0..3: six low bits of bytes 0..3 (scales) and 4..7 (mins)
    # sub-blocks 4..7: low nibble / high nibble of bytes 8..11, plus the two top bits of
    #                  bytes 0..3 (scales) and 4..7 (mins) as bits 4 and 5
    sc = np.concatenate([a & 63, (c & 15) | ((a >> 6) << 4)], axis=1)
    mn = np.concatenate([b & 63, (c >> 4) | ((b >> 6) << 4)], axis=1)
    return sc, mn


def deq_q4_k(blk):  # blk: uint8 [nb, 144]
    nb = blk.shape[0]
    d = f16(blk[:, 0:2])
    dmin = f16(blk[:, 2:4])
    sc, mn = q4k_scales_mins(blk[:, 4:16])
    qs = blk[:, 16:144].reshape(nb, 4, 32)  # 4 chunks of 32 bytes
    # chunk c: low nibbles = sub-block 2c, high nibbles = sub-block 2c+1
    codes = np.stack([qs & 15, qs >> 4], axis=2).reshape(nb, 8, 32).astype(F32)  # [nb, 8, 32]
    dsub = d[:, None] * sc.astype(F32)  # [nb, 8]
    msub = dmin[:, None] * mn.astype(F32)  # [nb, 8]
    y = dsub[:, :, None] * codes - msub[:, :, None]
    return y.reshape(nb, 256)


def deq_q6_k(blk):  # blk: uint8 [nb, 210]
    nb = blk.shape[0]
    ql = blk[:, 0:128].reshape(nb, 2, 2, 32)  # [half, which 32-byte row, l]
    qh = blk[:, 128:192].reshape(nb, 2, 32)  # [half, l]
    scales = blk[:, 192:208].view(np.int8).astype(F32)  # [nb, 16]
    d = f16(blk[:, 208:210])
    # within a half, group g = 0..3 covers elements 32g..32g+31:
    #   g=0: low nibble of row 0, qh bits 0-1   g=1: low nibble of row 1, qh bits 2-3
    #   g=2: high nibble of row 0, qh bits 4-5  g=3: high nibble of row 1, qh bits 6-7
    lo = np.stack([ql[:, :, 0] & 15, ql[:, :, 1] & 15, ql[:, :, 0] >> 4, ql[:, :, 1] >> 4], axis=2)
    hi = np.stack([(qh >> (2 * g)) & 3 for g in range(4)], axis=2)  # [nb, 2, 4, 32]
    q = (lo.astype(np.int32) | (hi.astype(np.int32) << 4)) - 32
    q = q.reshape(nb, 16, 16).astype(F32)  # 16 sub-blocks of 16, in element order
    dsub = d[:, None] * scales  # [nb, 16]
    return (dsub[:, :, None] * q).reshape(nb, 256)


def two_bit_fields(qs):
    """uint8 [nb, 64] -> int32 [nb, 256]: element 128h + 32g + l is bits 2g, 2g+1 of
    qs[32h + l] (the Q2_K / Q3_K layout)."""
    nb = qs.shape[0]
    q = qs.reshape(nb, 2, 1, 32).astype(np.int32)              # [nb, h, 1, l]
    g = np.arange(4, dtype=np.int32).reshape(1, 1, 4, 1)
    return ((q >> (2 * g)) & 3).reshape(nb, 256)                # [nb, h, g, l] -> element order


def deq_q2_k(blk):  # scales[16], qs[64], f16 d, f16 dmin: (d * sc) * q - (dmin * m)
    nb = blk.shape[0]
    sc = (blk[:, 0:16] & 15).astype(F32)
    m = (blk[:, 0:16] >> 4).astype(F32)
    d, dmin = f16(blk[:, 80:82]), f16(blk[:, 82:84])
    q = two_bit_fields(blk[:, 16:80]).reshape(nb, 16, 16).astype(F32)
    dl = d[:, None] * sc
    ml = dmin[:, None] * m
    return (dl[:, :, None] * q - ml[:, :, None]).reshape(nb, 256)


def q3k_scales(s12):
    """uint8 [nb, 12] -> int32 [nb, 16], 0..63: value s takes its low four bits from the low
    (s < 8) or high nibble of byte s % 8, its top two from bits 2 (s // 4) of byte 8 + s % 4."""
    s12 = s12.astype(np.int32)
    out = np.zeros((s12.shape[0], 16), dtype=np.int32)
    for s in range(16):
        lo = (s12[:, s % 8] >> (0 if s < 8 else 4)) & 15
        hi = (s12[:, 8 + s % 4] >> (2 * (s // 4))) & 3
        out[:, s] = lo | (hi << 4)
    return out


def deq_q3_k(blk):  # hmask[32], qs[64], scales[12], f16 d: (d * (sc - 32)) * (q - 4)
    nb = blk.shape[0]
    low = two_bit_fields(blk[:, 32:96])
    hm = blk[:, 0:32].astype(np.int32).reshape(nb, 1, 1, 32)       # [nb, h, g, l]
    bit = (np.arange(2).reshape(1, 2, 1, 1) * 4 + np.arange(4).reshape(1, 1, 4, 1))
    high = ((hm >> bit) & 1).reshape(nb, 256)
    q = (low | (high << 2)) - 4
    d = f16(blk[:, 108:110])
    dl = d[:, None] * (q3k_scales(blk[:, 96:108]) - 32).astype(F32)  # [nb, 16]
    return (dl[:, :, None] * q.reshape(nb, 16, 16).astype(F32)).reshape(nb, 256)


def deq_q5_k(blk):  # f16 d, f16 dmin, scales[12], qh[32], qs[128]
    nb = blk.shape[0]
    d, dmin = f16(blk[:, 0:2]), f16(blk[:, 2:4])
    sc, mn = q4k_scales_mins(blk[:, 4:16])
    qs = blk[:, 48:176].reshape(nb, 4, 32).astype(np.int32)
    qh = blk[:, 16:48].astype(np.int32)                         # [nb, 32]
    q = np.empty((nb, 8, 32), dtype=np.int32)
    for s in range(8):
        q[:, s, :] = ((qs[:, s // 2, :] >> (4 * (s % 2))) & 15) | (((qh >> s) & 1) << 4)
    dl = d[:, None] * sc.astype(F32)
    ml = dmin[:, None] * mn.astype(F32)
    return (dl[:, :, None] * q.astype(F32) - ml[:, :, None]).reshape(nb, 256)


def deq_iq4_xs(blk):  # f16 d, u16 scales_h, scales_l[4], qs[128]: (d * (ls - 32)) * levels[q]
    nb = blk.shape[0]
    d = f16(blk[:, 0:2])
    sh = np.ascontiguousarray(blk[:, 2:4]).view("<u2")[:, 0].astype(np.int32)
    out = np.empty((nb, 8, 32), dtype=F32)
    for s in range(8):
        ls = ((blk[:, 4 + s // 2].astype(np.int32) >> (4 * (s % 2))) & 15) | (((sh >> (2 * s)) & 3) << 4)
        dl = d * (ls - 32).astype(F32)
        lv = IQ4NL_LEVELS[nibbles(blk[:, 8 + 16 * s: 24 + 16 * s])].astype(F32)
        out[:, s, :] = dl[:, None] * lv
    return out.reshape(nb, 256)


def dequantize(tid, data):
    name, be, bb = TYPES[tid]
    if len(data) % bb:
        raise ValueError(f"{len(data)} bytes is not a whole number of {name} blocks ({bb} bytes)")
    raw = np.frombuffer(data, dtype=np.uint8)
    if name == "F32":
        return raw.view("<f4").astype(F32)
    if name == "F16":
        return half_bits_to_f32(raw.view("<u2"))
    if name == "BF16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(F32)
    blk = raw.reshape(-1, bb)
    fn = {"Q8_0": deq_q8_0, "Q4_0": deq_q4_0, "Q4_K": deq_q4_k, "Q6_K": deq_q6_k,
          "Q4_1": deq_q4_1, "Q5_0": deq_q5_0, "Q5_1": deq_q5_1, "IQ4_NL": deq_iq4_nl,
          "Q2_K": deq_q2_k, "Q3_K": deq_q3_k, "Q5_K": deq_q5_k, "IQ4_XS": deq_iq4_xs}[name]
    return fn(blk).astype(F32).reshape(-1)


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    t = argv[1]
    by_name = {v[0]: k for k, v in TYPES.items()}
    tid = int(t) if t.isdigit() else by_name.get(t.upper(), -1)
    if tid not in TYPES:
        sys.stderr.write(f"quant_ref.py: unsupported type {t!r}\n")
        return 2
    with open(argv[2], "rb") as f:
        data = f.read()
    try:
        y = dequantize(tid, data)
    except ValueError as e:
        sys.stderr.write(f"quant_ref.py: {e}\n")
        return 2
    with open(argv[3], "wb") as f:
        f.write(y.astype("<f4").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
