"""Data for sequence-to-sequence models: the book's toy tasks, generated with no download, and
a loader for any `source<TAB>target` file.

    data = Seq2SeqData.from_pairs(addition_pairs(50000), test_fraction=0.1, seed=0)
    src, lengths, tgt = data.encode(data.train)   # ids: src (N, S), lengths (N,), tgt (N, T + 2)

Both sides share one character vocabulary: <unk>, <eos>, <pad>, <s>, then the characters.
Targets are <s> target <eos>, padded with <pad> (which the loss ignores).
"""
from __future__ import annotations

import datetime

import numpy as np

from seqkern._checks import random_generator
from seqkern.data.text_files import not_plain_text
from seqkern.data.vocabulary import EOS, UNK, Vocabulary

PAD, START = "<pad>", "<s>"

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _unique(draw, n, rng):
    """n distinct pairs from draw(rng), in the order first drawn."""
    seen, pairs = set(), []
    while len(pairs) < n:
        pair = draw(rng)
        if pair[0] not in seen:
            seen.add(pair[0])
            pairs.append(pair)
    return pairs


def addition_pairs(n=50000, seed=0):
    """("16+75", "91"): sums of two numbers of 1-3 digits (digit count uniform), no repeats."""
    def draw(rng):
        a, b = (int(rng.integers(10 ** (d - 1) if d > 1 else 0, 10 ** d))
                for d in rng.integers(1, 4, 2))
        return f"{a}+{b}", str(a + b)
    if n > 900_000:
        raise ValueError(f"n: at most 900,000 distinct sums, got {n}")
    return _unique(draw, n, random_generator(seed))


DATE_FORMATS = [
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",                    # September 27, 1994
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",                # Sep 27, 1994
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",                     # 27 September 1994
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3].lower()} {d.year}",         # 27 sep 1994
    lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",                       # 9/27/94
    lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",                         # 09/27/1994
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                         # 27.09.1994
    lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",                         # 1994/09/27
    lambda d: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()][:3].upper()}, {d.day} {MONTHS[d.month - 1][:3].upper()} {d.year}",
    lambda d: f"{d.day}-{MONTHS[d.month - 1][:3]}-{d.year}",                 # 27-Sep-1994
    lambda d: f"{WEEKDAYS[d.weekday()].lower()} {d.month}/{d.day}/{d.year}",
]


def date_pairs(n=50000, seed=0):
    """("Tuesday, September 27, 1994", "1994-09-27"): dates from 1950 to 2049 (two-digit years
    are read in that span) in one of 12 human formats, no repeated source."""
    start = datetime.date(1950, 1, 1).toordinal()
    days = datetime.date(2049, 12, 31).toordinal() - start + 1

    def draw(rng):
        d = datetime.date.fromordinal(start + int(rng.integers(days)))
        return DATE_FORMATS[int(rng.integers(len(DATE_FORMATS)))](d), d.isoformat()
    return _unique(draw, n, random_generator(seed))


def load_pairs(path):
    """(source, target) pairs from a `source<TAB>target` file, one pair a line."""
    problem = not_plain_text(path)
    if problem:
        raise ValueError(problem)
    pairs = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                # (a byte-order mark, as Windows editors write, is not the first source's)
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{number}: not UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            if line.count("\t") != 1:
                raise ValueError(f"{path}:{number}: expected source<TAB>target, got {line!r}")
            source, target = line.split("\t")
            if not source:  # found here, with its line, not when its batch comes to be encoded
                raise ValueError(f"{path}:{number}: the source is empty (nothing to encode)")
            pairs.append((source, target))
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


class Seq2SeqData:
    """Pairs split into train and test, and their shared character vocabulary."""

    def __init__(self, train, test, vocab):
        self.train, self.test, self.vocab = train, test, vocab

    @classmethod
    def from_pairs(cls, pairs, test_fraction=0.1, seed=0):
        pairs = list(pairs)
        if len(pairs) < 2:
            raise ValueError(f"pairs: need at least 2 to split, got {len(pairs)}")
        order = random_generator(seed).permutation(len(pairs))
        n_test = max(1, int(round(len(pairs) * test_fraction)))
        if n_test == len(pairs):
            raise ValueError(f"test_fraction: {test_fraction:g} of {len(pairs)} pairs leaves none "
                             "to train on")
        test = [pairs[i] for i in order[:n_test]]
        train = [pairs[i] for i in order[n_test:]]
        chars = sorted({c for s, t in pairs for c in s + t})
        return cls(train, test, Vocabulary([UNK, EOS, PAD, START, *chars], level="char"))

    def encode_sources(self, sources):
        """(ids (N, S) padded with <pad>, lengths (N,)). A character outside the vocabulary is
        a ValueError naming it."""
        return encode_sources(self.vocab, sources)

    def encode(self, pairs):
        """(src (N, S), lengths (N,), tgt (N, T + 2)): targets as <s> target <eos>, padded."""
        src, lengths = self.encode_sources([s for s, _ in pairs])
        v = self.vocab
        ids, t_lengths = _encode_each(v, [t for _, t in pairs])
        width = int(t_lengths.max()) + 2
        tgt = np.full((len(pairs), width), v.stoi[PAD], dtype=np.int64)
        tgt[:, 0] = v.stoi[START]
        column = np.arange(width)
        tgt[(column >= 1) & (column <= t_lengths[:, None])] = ids
        tgt[np.arange(len(pairs)), t_lengths + 1] = v.stoi[EOS]
        return src, lengths, tgt


def _encode_each(vocab, texts):
    """(the ids of every text, end to end; each text's length in ids). A character vocabulary
    encodes them all in one call: a call per text of some 30 characters cost more in its setup
    than in its work (50,000 date pairs: 1.6 s)."""
    if not texts:
        raise ValueError("nothing to encode: no texts given")
    if vocab.level == "char":
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        return vocab.encode("".join(texts)), lengths
    ids = [vocab.encode(t) for t in texts]
    return np.concatenate(ids), np.array([len(i) for i in ids], dtype=np.int64)


def encode_sources(vocab, sources):
    ids, lengths = _encode_each(vocab, sources)
    if (lengths == 0).any():
        raise ValueError("sources: an empty source has nothing to encode")
    unknown = np.flatnonzero(ids == vocab.stoi[UNK])
    if len(unknown):
        s = sources[int(np.searchsorted(np.cumsum(lengths), unknown[0], side="right"))]
        bad = sorted({c for c in s if c not in vocab})
        raise ValueError(f"sources: characters outside the vocabulary: {bad} in {s!r}")
    src = np.full((len(sources), int(lengths.max())), vocab.stoi[PAD], dtype=np.int64)
    src[np.arange(src.shape[1]) < lengths[:, None]] = ids
    return src, lengths
