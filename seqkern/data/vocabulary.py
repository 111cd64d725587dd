"""A vocabulary of words or characters for language models, with <unk> and <eos>.

    vocab = Vocabulary.build(text, level="word", max_size=10000)
    ids = vocab.encode(text)         # int64 array; a word level line ends with <eos>
    vocab.decode(ids)                # back to text (<eos> as a newline)

Word level splits each line on whitespace and ends it with <eos> (the Penn Treebank's
convention); character level keeps every character, the newline included. Unknown tokens get
<unk>. Ids: <unk> 0, <eos> 1, then the tokens by falling count (ties by first appearance).
"""
from __future__ import annotations

import codecs
from collections import Counter

import numpy as np

from seqkern.data.text_files import compression

UNK, EOS = "<unk>", "<eos>"
LEVELS = ("word", "char")


class Vocabulary:
    def __init__(self, tokens, level="word"):
        if level not in LEVELS:
            raise ValueError(f"level: expected 'word' or 'char', got {level!r}")
        tokens = list(tokens)
        if tokens[:2] != [UNK, EOS]:
            raise ValueError(f"tokens: must start with {UNK!r}, {EOS!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens: must not repeat")
        self.level = level
        self.itos = tokens
        self.stoi = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, text, level="word", max_size=None, min_count=1):
        """The vocabulary of `text`: tokens seen at least min_count times, the most frequent
        first, at most max_size in all (the two specials included)."""
        if level not in LEVELS:
            raise ValueError(f"level: expected 'word' or 'char', got {level!r}")
        if not text or not text.strip():
            raise ValueError("text: is empty; a vocabulary needs at least one token")
        counts = Counter(text) if level == "char" else Counter(_words(text))
        for special in (UNK, EOS):
            counts.pop(special, None)
        ranked = [t for t, c in sorted(counts.items(), key=lambda tc: -tc[1]) if c >= min_count]
        if max_size is not None:
            if max_size < 3:
                raise ValueError(f"max_size: expected at least 3 (two specials and a token), got {max_size}")
            ranked = ranked[:max_size - 2]
        return cls([UNK, EOS, *ranked], level)

    @classmethod
    def from_file(cls, path, level="word", max_size=None, min_count=1, encoding="utf-8"):
        with open(path, "rb") as f:
            kind = compression(f.read(10))
        if kind:  # its bytes read as text would be a vocabulary of noise
            raise ValueError(f"{path}: compressed ({kind}): decompress it first")
        if codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"  # a byte-order mark (Windows editors write one) is no token
        with open(path, encoding=encoding, errors="replace") as f:
            return cls.build(f.read(), level, max_size, min_count)

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def encode(self, text):
        """The ids of text's tokens, as an int64 array."""
        if not isinstance(text, str):
            hint = " (join the tokens with spaces first)" if isinstance(text, (list, tuple)) else ""
            raise TypeError(f"text: expected a str, got {type(text).__name__}{hint}")
        if self.level == "word":
            get = self.stoi.get
            return np.fromiter((get(w, 0) for w in _words(text)), dtype=np.int64)
        # characters: a table from every code point up to the text's largest to its id (<unk>'s
        # 0 for the rest), then one lookup for the whole text, indexed by intp (np.unique's sort
        # had taken 5 s for 22 million characters, this 0.1; indexing by the uint32 codes
        # themselves, 0.8)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if not codes.size:
            return np.zeros(0, np.int64)
        table = np.zeros(int(codes.max()) + 1, np.int64)
        for token, i in self.stoi.items():
            if len(token) == 1 and ord(token) < table.size:
                table[ord(token)] = i
        return table[codes.astype(np.intp)]

    def decode(self, ids):
        """Text of the ids: characters joined as they are, words joined by spaces with each
        <eos> as the end of a line."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0
                         or ids.max() >= len(self.itos)):
            raise ValueError(f"ids: expected integers in 0..{len(self.itos) - 1}, got "
                             f"{ids.dtype} {ids.min()}..{ids.max()}")
        tokens = [self.itos[i] for i in ids.tolist()]
        if self.level == "char":
            return "".join(tokens)
        return " ".join(tokens).replace(f" {EOS} ", "\n").replace(f" {EOS}", "\n").replace(
            f"{EOS} ", "\n").replace(EOS, "\n")

    def __repr__(self):
        return f"Vocabulary({len(self)} {self.level}s)"


def _words(text):
    """Each line's whitespace-separated words followed by <eos> (blank lines give nothing)."""
    for line in text.splitlines():
        words = line.split()
        if words:
            yield from words
            yield EOS
