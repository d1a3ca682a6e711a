#!/usr/bin/python3
"""gguf_ref.py: a small, independent GGUF reader for the Python references (tokenizer, model).

Written from the GGUF format definition, not from src/engine/gguf.c, so that the references do not
share the C reader's bugs. Reads the whole file (the references run on small synthetic files).

    g = GGUF(path)
    g.version, g.alignment
    g.kv["llama.embedding_length"]     -> int / float / bool / str / list
    g.tensors["blk.0.attn_q.weight"]   -> Tensor(name, type, ne, raw)  (ne[0] contiguous)
    g.array(name)                      -> numpy float32 array of shape ne[::-1], dequantized

Strings are decoded as UTF-8 with errors="surrogateescape", so token texts that are not valid
UTF-8 survive a round trip through .encode("utf-8", "surrogateescape").
"""
import struct
from collections import namedtuple

import numpy as np

import quant_ref

Tensor = namedtuple("Tensor", "name type ne raw")

# value type id -> struct format (scalars)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GGUF:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        self.pos = 0
        magic = self.data[:4]
        if magic != b"GGUF":
            raise ValueError("not a GGUF file: %r" % magic)
        self.pos = 4
        self.version = self._u32()
        if self.version not in (2, 3):
            raise ValueError("unsupported GGUF version %d" % self.version)
        n_tensors = self._u64()
        n_kv = self._u64()
        self.kv = {}
        for _ in range(n_kv):
            key = self._str()
            vtype = self._u32()
            self.kv[key] = self._value(vtype)
        self.alignment = int(self.kv.get("general.alignment", 32))
        infos = []
        for _ in range(n_tensors):
            name = self._str()
            n_dims = self._u32()
            ne = [self._u64() for _ in range(n_dims)]
            ttype = self._u32()
            offset = self._u64()
            infos.append((name, ne, ttype, offset))
        start = (self.pos + self.alignment - 1) // self.alignment * self.alignment
        self.tensors = {}
        for name, ne, ttype, offset in infos:
            _, blk_elems, blk_bytes = quant_ref.TYPES[ttype]
            n = int(np.prod(ne))
            size = n // blk_elems * blk_bytes
            raw = self.data[start + offset:start + offset + size]
            if len(raw) != size:
                raise ValueError("tensor %s runs past the end of the file" % name)
            self.tensors[name] = Tensor(name, ttype, ne, raw)

    def array(self, name):
        t = self.tensors[name]
        vals = quant_ref.dequantize(t.type, np.frombuffer(t.raw, dtype=np.uint8))
        return np.asarray(vals, dtype=np.float32).reshape(list(reversed(t.ne)))

    def _take(self, n):
        b = self.data[self.pos:self.pos + n]
        if len(b) != n:
            raise ValueError("truncated at offset %d" % self.pos)
        self.pos += n
        return b

    def _u32(self):
        return struct.unpack("<I", self._take(4))[0]

    def _u64(self):
        return struct.unpack("<Q", self._take(8))[0]

    def _str(self):
        n = self._u64()
        return self._take(n).decode("utf-8", "surrogateescape")

    def _value(self, vtype):
        if vtype in _SCALARS:
            fmt = _SCALARS[vtype]
            return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]
        if vtype == _STRING:
            return self._str()
        if vtype == _ARRAY:
            etype = self._u32()
            n = self._u64()
            if etype in _SCALARS:
                fmt = _SCALARS[etype]
                size = struct.calcsize(fmt)
                raw = self._take(size * n)
                return list(struct.unpack("<%d%s" % (n, fmt[1]), raw))
            return [self._value(etype) for _ in range(n)]
        raise ValueError("unknown value type %d at offset %d" % (vtype, self.pos))
