#!/usr/bin/python3
"""make_tokenizer_corpus.py OUT_DIR [MB]: texts for comparing tokenizers (tools/crosscheck-llamacpp.sh).

Writes OUT_DIR/stdlib-NN.txt: the Python standard library's sources on this machine
(/usr/lib/python3.X, every .py file in sorted order, in pieces of about 1 MB cut at file
boundaries), and OUT_DIR/mixed.txt: about MB (default 2) megabytes of generated text with a fixed
seed: words in many scripts (Latin with accents, Greek, Cyrillic, Arabic, Hebrew, Devanagari,
Thai, CJK, Hangul, kana), emoji (single, with skin tones, ZWJ sequences, flags), combining marks,
runs of spaces, tabs, newlines and other Unicode spaces, and digit runs of every length.
"""
import glob
import os
import random
import sys
import sysconfig


def stdlib_pieces(out_dir, piece=1 << 20):
    root = sysconfig.get_paths()["stdlib"]
    files = sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True))
    buf, n, total = [], 0, 0
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                t = fh.read()
        except (UnicodeDecodeError, OSError):
            continue
        if "\0" in t:
            continue
        buf.append(t)
        total += len(t.encode())
        if sum(len(b) for b in buf) >= piece:
            with open(os.path.join(out_dir, "stdlib-%02d.txt" % n), "w", encoding="utf-8") as o:
                o.write("".join(buf))
            buf, n = [], n + 1
    if buf:
        with open(os.path.join(out_dir, "stdlib-%02d.txt" % n), "w", encoding="utf-8") as o:
            o.write("".join(buf))
    return total


RANGES = [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x17F), (0x391, 0x3C9), (0x410, 0x44F),
          (0x621, 0x64A), (0x5D0, 0x5EA), (0x905, 0x939), (0xE01, 0xE2E), (0x4E00, 0x9FA5),
          (0xAC00, 0xD7A3), (0x3041, 0x3096), (0x30A1, 0x30FA)]
EMOJI = ["\U0001F600", "\U0001F389", "\U0001F44D\U0001F3FD", "\U0001F468\u200D\U0001F469\u200D\U0001F467",
         "\U0001F1EB\U0001F1F7", "\u2764\uFE0F", "\U0001F9D1\u200D\U0001F4BB", "\U0001F40D"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n", "\r\n", "\u00A0", "\u3000", "\u2009", "    "]
COMBINING = ["\u0301", "\u0308", "\u0327", "\u20DD"]


def mixed(path, mb):
    rng = random.Random(1234)
    out, size = [], 0
    while size < mb << 20:
        r = rng.random()
        if r < 0.6:
            lo, hi = rng.choice(RANGES)
            w = "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 9)))
            if rng.random() < 0.05:
                w += rng.choice(COMBINING)
        elif r < 0.7:
            w = "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
        elif r < 0.8:
            w = str(rng.randint(0, 10 ** rng.randint(1, 12)))
        else:
            w = rng.choice(["'s", "'t", "'re", "...", "--", "(", ")", "{", "}", ";", "!=", "=>",
                            "¿", "«", "»", "—", "€", "%"])
        out.append(w)
        out.append(rng.choice(SPACES) if rng.random() < 0.8 else "")
        size += len(w.encode()) + 1
    with open(path, "w", encoding="utf-8") as o:
        o.write("".join(out))


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    os.makedirs(argv[1], exist_ok=True)
    total = stdlib_pieces(argv[1])
    mixed(os.path.join(argv[1], "mixed.txt"), int(argv[2]) if len(argv) > 2 else 2)
    print("standard library: %d bytes; mixed: %d bytes" %
          (total, os.path.getsize(os.path.join(argv[1], "mixed.txt"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
