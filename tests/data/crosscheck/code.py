#!/usr/bin/env python3
"""Count words in files.

Usage: wc.py FILE...
"""
import sys
from collections import Counter


class WordCounter:
    def __init__(self, lower: bool = True) -> None:
        self.counts: Counter[str] = Counter()
        self.lower = lower

    def feed(self, text: str) -> None:
        for word in text.split():
            if self.lower:
                word = word.lower()
            self.counts[word] += 1

    def top(self, n=10):
        return self.counts.most_common(n)


def main(argv):
    wc = WordCounter()
    for path in argv[1:]:
        with open(path, encoding="utf-8") as f:
            wc.feed(f.read())
    for word, n in wc.top():
        print(f"{n:>8d}  {word!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
