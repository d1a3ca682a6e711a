"""gguf_out.py: writes a Llama-architecture GGUF file from trained weights (numpy float32 arrays).

Written from the GGUF format definition (version 3, little-endian, 32-byte alignment). Matrices
(2-D weights) are stored as Q8_0 (blocks of 32 values: an f16 scale max|x|/127 and 32 int8
values, rounded to nearest); 1-D weights (the RMS norms) as F32. The tokenizer is the byte-level
one of `hswarm model synth --tokenizer bytes`: tokens 0..255 are the bytes (GPT-2's printable
spelling), 256 and 257 unused fillers, 258 BOS "<s>", 259 EOS "</s>".
"""
import struct

import numpy as np

GGML_F32, GGML_Q8_0 = 0, 8
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
ALIGN = 32
BOS, EOS, N_VOCAB = 258, 259, 260


def byte_spellings():
    """GPT-2's bytes-to-unicode table: byte b -> the character that spells it."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + \
        list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _kv(key, vtype, value):
    out = _str(key) + struct.pack("<I", vtype)
    if vtype == T_U32:
        return out + struct.pack("<I", value)
    if vtype == T_F32:
        return out + struct.pack("<f", value)
    if vtype == T_BOOL:
        return out + struct.pack("<?", value)
    if vtype == T_STR:
        return out + _str(value)
    etype, items = value
    out += struct.pack("<IQ", etype, len(items))
    for it in items:
        out += _str(it) if etype == T_STR else struct.pack("<i", it)
    return out


def q8_0(w):
    """Row-major float32 matrix -> Q8_0 bytes (rows are a multiple of 32 long)."""
    x = w.reshape(-1, 32).astype(np.float32)
    amax = np.abs(x).max(axis=1)
    d = (amax / 127.0).astype(np.float16)
    df = d.astype(np.float32)
    inv = np.where(df > 0, 1.0 / np.where(df > 0, df, 1), 0.0)
    q = np.clip(np.rint(x * inv[:, None]), -127, 127).astype(np.int8)
    blocks = np.zeros((x.shape[0], 34), dtype=np.uint8)
    blocks[:, 0:2] = d.view(np.uint8).reshape(-1, 2)
    blocks[:, 2:] = q.view(np.uint8)
    return blocks.tobytes()


def write(path, cfg, tensors, name, extra_kv=()):
    """cfg: dict(dim, layers, heads, kv_heads, ffn, ctx); tensors: list of (name, array) with
    arrays in torch's layout ([n_out, n_in] for matrices)."""
    kvs = [
        ("general.architecture", T_STR, "llama"),
        ("general.name", T_STR, name),
        ("llama.context_length", T_U32, cfg["ctx"]),
        ("llama.embedding_length", T_U32, cfg["dim"]),
        ("llama.block_count", T_U32, cfg["layers"]),
        ("llama.feed_forward_length", T_U32, cfg["ffn"]),
        ("llama.attention.head_count", T_U32, cfg["heads"]),
        ("llama.attention.head_count_kv", T_U32, cfg["kv_heads"]),
        ("llama.rope.dimension_count", T_U32, cfg["dim"] // cfg["heads"]),
        ("llama.rope.freq_base", T_F32, 10000.0),
        ("llama.attention.layer_norm_rms_epsilon", T_F32, 1e-5),
        ("tokenizer.ggml.model", T_STR, "gpt2"),
        ("tokenizer.ggml.pre", T_STR, "default"),
        ("tokenizer.ggml.tokens", T_ARR,
         (T_STR, byte_spellings() + ["<tok_256>", "<tok_257>", "<s>", "</s>"])),
        ("tokenizer.ggml.token_type", T_ARR, (T_I32, [1] * 258 + [3, 3])),
        ("tokenizer.ggml.merges", T_ARR, (T_STR, [])),
        ("tokenizer.ggml.bos_token_id", T_U32, BOS),
        ("tokenizer.ggml.eos_token_id", T_U32, EOS),
        ("tokenizer.ggml.add_bos_token", T_BOOL, True),
        ("tokenizer.ggml.add_eos_token", T_BOOL, False),
    ] + list(extra_kv)
    infos, blobs, offset = b"", [], 0
    for tname, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if arr.ndim == 2:
            raw, ttype = q8_0(arr), GGML_Q8_0
        else:
            raw, ttype = arr.tobytes(), GGML_F32
        ne = list(arr.shape[::-1])
        infos += _str(tname) + struct.pack("<I", len(ne)) + \
            b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", ttype, offset)
        pad = (-len(raw)) % ALIGN
        blobs.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    head += b"".join(_kv(*kv) for kv in kvs) + infos
    head += b"\0" * ((-len(head)) % ALIGN)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


def read(path):
    """The tensors of a file written by write(): {name: float32 array in torch's layout}
    (Q8_0 matrices dequantized). Used to start a training from a shipped model."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 4
    _, n_tensors, n_kv = struct.unpack_from("<IQQ", data, pos)
    pos += 20

    def rd_str(p):
        (n,) = struct.unpack_from("<Q", data, p)
        return data[p + 8:p + 8 + n].decode("utf-8"), p + 8 + n

    sizes = {T_U32: 4, T_I32: 4, T_F32: 4, T_BOOL: 1}
    for _ in range(n_kv):
        _, pos = rd_str(pos)
        (vt,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if vt == T_STR:
            _, pos = rd_str(pos)
        elif vt == T_ARR:
            et, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for _ in range(n):
                if et == T_STR:
                    _, pos = rd_str(pos)
                else:
                    pos += sizes[et]
        else:
            pos += sizes[vt]
    infos = []
    for _ in range(n_tensors):
        name, pos = rd_str(pos)
        (nd,) = struct.unpack_from("<I", data, pos)
        ne = struct.unpack_from("<%dQ" % nd, data, pos + 4)
        ttype, off = struct.unpack_from("<IQ", data, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        infos.append((name, ne, ttype, off))
    base = pos + (-pos) % ALIGN
    out = {}
    for name, ne, ttype, off in infos:
        count = int(np.prod(ne))
        shape = tuple(ne[::-1])
        if ttype == GGML_F32:
            arr = np.frombuffer(data, np.float32, count, base + off)
        elif ttype == GGML_Q8_0:
            blocks = np.frombuffer(data, np.uint8, count // 32 * 34, base + off).reshape(-1, 34)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
            q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
            arr = (q * d).reshape(-1)
        else:
            raise ValueError("%s: tensor type %d not supported" % (name, ttype))
        out[name] = arr.reshape(shape).copy()
    return out
