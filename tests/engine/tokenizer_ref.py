#!/usr/bin/python3
"""tokenizer_ref.py: an independent reference for the tokenizers (src/engine/tokenizer*.c).

Written from the definitions of the algorithms as llama.cpp applies them to GGUF metadata, not
from the C code, and kept deliberately plain (lists, dicts, the `regex` module):

  byte-level BPE ("gpt2"): text -> special-token partition -> pre-tokens by the regexes of
      tokenizer.ggml.pre (applied one after the other, the text between matches kept as pieces)
      -> each pre-token's bytes as GPT-2's stand-in characters -> merges applied by rank, lowest
      first, leftmost on ties (recomputed from scratch at every step) -> vocabulary lookups.
  SentencePiece ("llama"): ' ' -> U+2581 plus a leading one per fragment after a special token
      or at the start -> symbols by UTF-8 lead byte -> merge the adjacent pair whose concatenation
      has the best score, leftmost on ties -> byte fallback <0xNN>.

Ill-formed UTF-8: the input bytes are decoded with errors="surrogateescape", so every ill-formed
byte becomes one lone surrogate (category Cs: not a letter, digit, space or punctuation) for
the regexes, and the pieces are encoded back to the original bytes.

Usage: tokenizer_ref.py MODEL.gguf IN OUT
  IN:  records (u32 flags, u32 length, bytes); flags: 1 add BOS/EOS, 2 parse special tokens
  OUT: per record: u32 n, n x i32 ids; u32 m, m bytes: the decoding of those ids (special
       tokens rendered when flag 2 was set, the SPM space prefix stripped); u32 k, k bytes: that
       decoding with ill-formed UTF-8 replaced by U+FFFD (Python's "replace").
"""
import struct
import sys

import regex

import gguf_ref

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"

# Hugging Face / OpenAI regexes (the definitions), and llama.cpp's "default" sequence
CONTRACTIONS_I = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
LLAMA3 = (CONTRACTIONS_I + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (CONTRACTIONS_I + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
GPT2_NO_TAIL = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
DEFAULT = [r"[\p{P}\$\+<=>\^~\|]+", GPT2_NO_TAIL, r"\p{N}+", r"[0-9][0-9][0-9]"]

PRE = {}
for name in ("llama-bpe", "llama3", "llama-v3", "falcon3"):
    PRE[name] = ("llama-bpe", [LLAMA3])
for name in ("qwen2", "megrez", "deepseek-r1-qwen"):
    PRE[name] = ("qwen2", [QWEN2])
for name in ("gpt-2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais"):
    PRE[name] = ("gpt-2", [GPT2])
PRE["default"] = ("default", DEFAULT)

EOT_NAMES = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
             "<|end_of_text|>", "<EOT>", "_<EOT>", "<\uff5cend\u2581of\u2581sentence\uff5c>",
             "<end_of_utterance>"]
EOM_NAMES = ["<|eom_id|>"]
FIM_NAMES = {
    "pre": ["<|fim_prefix|>", "<fim-prefix>", "<\uff5cfim\u2581begin\uff5c>", "<PRE>"],
    "suf": ["<|fim_suffix|>", "<fim-suffix>", "<\uff5cfim\u2581hole\uff5c>", "<SUF>"],
    "mid": ["<|fim_middle|>", "<fim-middle>", "<\uff5cfim\u2581end\uff5c>", "<MID>"],
    "pad": ["<|fim_pad|>", "<fim-pad>", "<PAD>"],
    "rep": ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"],
    "sep": ["<|file_sep|>"],
}
EOG_NAMES = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
             "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
             "<end_of_utterance>"]


def byte_map():
    """GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest get
    256, 257, ... in byte order."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
            + list(range(ord("\xae"), ord("\xff") + 1)))
    m = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in m:
            m[b] = chr(256 + n)
            n += 1
    return m


BYTE_TO_CHAR = byte_map()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def sesc(b):
    return b.decode("utf-8", "surrogateescape")


def unsesc(s):
    return s.encode("utf-8", "surrogateescape")


class Tokenizer:
    def __init__(self, path):
        kv = gguf_ref.GGUF(path).kv
        model = kv["tokenizer.ggml.model"]
        if model == "gpt2":
            self.kind = "bpe"
        elif model == "llama":
            self.kind = "spm"
        else:
            raise ValueError("unsupported model %r" % model)
        texts = [unsesc(t) for t in kv["tokenizer.ggml.tokens"]]
        self.texts = [t if t else b"[EMPTY_%d]" % i for i, t in enumerate(texts)]
        n = len(self.texts)
        raw_types = kv.get("tokenizer.ggml.token_type", [NORMAL] * n)
        self.types = [t if 1 <= t <= 6 else 0 for t in raw_types]
        self.scores = kv.get("tokenizer.ggml.scores", [0.0] * n)
        self.lookup = {}
        for i, t in enumerate(self.texts):
            self.lookup[t] = i  # the later id wins
        if self.kind == "spm":
            self.bos, self.eos, self.unk = 1, 2, 0
            self.add_space_prefix, self.add_bos, self.add_eos = True, True, False
        else:
            self.bos, self.eos, self.unk = 11, 11, -1
            self.add_space_prefix, self.add_bos, self.add_eos = False, False, False
            pre = kv.get("tokenizer.ggml.pre", "default")
            self.pre_name, self.regexes = PRE[pre]
            self.ignore_merges = self.pre_name == "llama-bpe"
            if self.ignore_merges:
                self.add_bos = True
        self.add_space_prefix = kv.get("tokenizer.ggml.add_space_prefix", self.add_space_prefix)
        ids = {}
        for name, key in (("bos", "bos"), ("eos", "eos"), ("eot", "eot"), ("eom", "eom"),
                          ("unk", "unknown"), ("pad", "padding")):
            ids[name] = kv.get("tokenizer.ggml.%s_token_id" % key)
        for name in ("bos", "eos", "unk"):
            if ids[name] is not None and 0 <= ids[name] < n:
                setattr(self, name, ids[name])
        self.eot = ids["eot"] if ids["eot"] is not None and 0 <= ids["eot"] < n else -1
        self.eom = ids["eom"] if ids["eom"] is not None and 0 <= ids["eom"] < n else -1
        self.add_bos = kv.get("tokenizer.ggml.add_bos_token", self.add_bos)
        self.add_eos = kv.get("tokenizer.ggml.add_eos_token", self.add_eos)

        def find(names):
            for s in names:
                i = self.lookup.get(s.encode("utf-8"))
                if i is not None:
                    self.types[i] = CONTROL
                    return i
            return -1

        if self.eot < 0:
            self.eot = find(EOT_NAMES)
        if self.eom < 0:
            self.eom = find(EOM_NAMES)
        for key in ("pre", "suf", "mid", "pad", "rep", "sep"):
            given = kv.get("tokenizer.ggml.fim_%s_token_id" % key)
            if given is None or not 0 <= given < n:
                find(FIM_NAMES[key])
        for s in EOG_NAMES:
            i = self.lookup.get(s.encode("utf-8"))
            if i is not None:
                self.types[i] = CONTROL
        for name in ("bos", "eos", "unk"):
            if getattr(self, name) >= n:
                setattr(self, name, -1)
        # special tokens, longest text first, then lower id
        self.specials = sorted((i for i in range(n) if self.types[i] in (CONTROL, USER_DEFINED, UNKNOWN)),
                               key=lambda i: (-len(self.texts[i]), i))
        if self.kind == "bpe":
            self.ranks = {}
            for r, m in enumerate(kv["tokenizer.ggml.merges"]):
                pos = m.find(" ", 1)
                if pos < 0:
                    continue
                self.ranks.setdefault((m[:pos], m[pos + 1:]), r)
            self.slookup = {sesc(t): i for t, i in self.lookup.items()}
            self.cache = {}

    # ---- special tokens: llama.cpp's sequential partition ----

    def partition(self, text, parse):
        frags = [(False, text)] if text else []
        for sid in self.specials:
            ty = self.types[sid]
            if ty != USER_DEFINED and not parse:
                continue
            tok = self.texts[sid]
            out = []
            for is_tok, f in frags:
                if is_tok:
                    out.append((is_tok, f))
                    continue
                start = 0
                while True:
                    at = f.find(tok, start)
                    if at < 0:
                        break
                    if at > start:
                        out.append((False, f[start:at]))
                    out.append((True, sid))
                    start = at + len(tok)
                if start < len(f):
                    out.append((False, f[start:]))
            frags = out
        return frags

    # ---- BPE ----

    def split(self, data):
        pieces = [sesc(data)]
        for rx in self.regexes:
            out = []
            for p in pieces:
                pos = 0
                for m in regex.finditer(rx, p):
                    if m.start() > pos:
                        out.append(p[pos:m.start()])
                    out.append(m.group())
                    pos = m.end()
                if pos < len(p):
                    out.append(p[pos:])
            pieces = out
        return [unsesc(p) for p in pieces]

    def bpe_word(self, word):
        if word in self.cache:
            return self.cache[word]
        chars = "".join(BYTE_TO_CHAR[b] for b in word)
        if self.ignore_merges and chars in self.slookup:
            res = [self.slookup[chars]]
        else:
            syms = list(chars)
            while len(syms) > 1:
                best = None
                for i in range(len(syms) - 1):
                    r = self.ranks.get((syms[i], syms[i + 1]))
                    if r is not None and (best is None or r < best[0]):
                        best = (r, i)
                if best is None:
                    break
                i = best[1]
                syms[i:i + 2] = [syms[i] + syms[i + 1]]
            res = []
            for s in syms:
                if s in self.slookup:
                    res.append(self.slookup[s])
                    continue
                for b in s.encode("utf-8"):
                    i = self.lookup.get(bytes([b]))
                    if i is not None:
                        res.append(i)
        self.cache[word] = res
        return res

    # ---- SPM ----

    def spm(self, data, prefix):
        s = (SPACE.encode() if prefix else b"") + data.replace(b" ", SPACE.encode())
        # symbols: [start, length, version]; the list keeps the live ones in order
        syms, i = [], 0
        while i < len(s):
            lead = s[i] >> 4
            ln = 4 if lead == 15 else 3 if lead == 14 else 2 if lead in (12, 13) else 1
            ln = min(ln, len(s) - i)
            syms.append([i, ln])
            i += ln
        # best-score-first merging; a heap of candidates, each checked against the current
        # neighbours when it comes up (the symbol's start position identifies it)
        import heapq
        alive = {sy[0]: sy[1] for sy in syms}  # start -> length
        order = [sy[0] for sy in syms]
        nxt = {order[k]: (order[k + 1] if k + 1 < len(order) else None) for k in range(len(order))}
        prv = {order[k]: (order[k - 1] if k > 0 else None) for k in range(len(order))}
        heap = []

        def cand(a):
            b = nxt.get(a)
            if a is None or b is None:
                return
            piece = s[a:b + alive[b]]
            t = self.lookup.get(piece)
            if t is not None:
                heapq.heappush(heap, (-self.scores[t], a, piece))

        for a in order:
            cand(a)
        while heap:
            _, a, piece = heapq.heappop(heap)
            if a not in alive:
                continue
            b = nxt.get(a)
            if b is None or s[a:b + alive[b]] != piece:
                continue
            alive[a] += alive.pop(b)
            nb = nxt.pop(b)
            prv.pop(b)
            nxt[a] = nb
            if nb is not None:
                prv[nb] = a
            if prv[a] is not None:
                cand(prv[a])
            cand(a)
        out = []
        a = order[0] if order else None
        while a is not None:
            piece = s[a:a + alive[a]]
            t = self.lookup.get(piece)
            if t is not None:
                out.append(t)
            else:
                for b in piece:
                    t = self.lookup.get(b"<0x%02X>" % b)
                    if t is None:
                        t = self.lookup.get(bytes([b]), self.unk)
                    out.append(t)
            a = nxt[a]
        return out

    # ---- encode / decode ----

    def encode(self, data, flags):
        add, parse = bool(flags & 1), bool(flags & 2)
        out = []
        if add and self.add_bos and self.bos >= 0:
            out.append(self.bos)
        prev_special = True
        for is_tok, f in self.partition(data, parse):
            if is_tok:
                out.append(f)
                prev_special = True
                continue
            if self.kind == "bpe":
                for w in self.split(f):
                    out.extend(self.bpe_word(w))
            else:
                out.extend(self.spm(f, self.add_space_prefix and prev_special))
            prev_special = False
        if add and self.add_eos and self.eos >= 0:
            out.append(self.eos)
        return out

    def token_bytes(self, i, special):
        ty, t = self.types[i], self.texts[i]
        if ty in (CONTROL, UNKNOWN):
            return t if special else b""
        if ty == USER_DEFINED:
            return t
        if ty == NORMAL:
            if self.kind == "bpe":
                return b"".join(bytes([CHAR_TO_BYTE[c]]) if c in CHAR_TO_BYTE else unsesc(c)
                                for c in sesc(t))
            return t.replace(SPACE.encode(), b" ")
        if ty == BYTE and self.kind == "spm":
            return bytes([int(t[3:5], 16)])
        return b""

    def decode(self, ids, special):
        out = []
        strip_at = -1  # the first token, or the second after BOS, loses one leading space
        if self.add_space_prefix and ids:
            strip_at = 1 if ids[0] == self.bos else 0
        for k, i in enumerate(ids):
            b = self.token_bytes(i, special)
            if k == strip_at and b.startswith(b" "):
                b = b[1:]
            out.append(b)
        return b"".join(out)


def main():
    tok = Tokenizer(sys.argv[1])
    data = open(sys.argv[2], "rb").read()
    out = []
    pos = 0
    while pos < len(data):
        flags, n = struct.unpack_from("<II", data, pos)
        pos += 8
        text = data[pos:pos + n]
        pos += n
        ids = tok.encode(text, flags)
        dec = tok.decode(ids, bool(flags & 2))
        rep = dec.decode("utf-8", "replace").encode("utf-8")
        out.append(struct.pack("<I%di" % len(ids), len(ids), *ids))
        out.append(struct.pack("<I", len(dec)) + dec)
        out.append(struct.pack("<I", len(rep)) + rep)
    with open(sys.argv[3], "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
