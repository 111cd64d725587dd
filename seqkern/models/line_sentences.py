"""gensim's sentence streams over text files, for Word2Vec(sentences) and build_vocab:

    LineSentence("corpus.txt")           # one sentence a line, words split at whitespace
    LineSentence(open_file)              # a file object (rewound at each pass)
    PathLineSentences("folder/")         # every file of a folder, in name order

Names ending .gz, .bz2 or .xz are read compressed, as gensim (smart_open) reads them. Lines are
decoded as UTF-8; an empty line gives no sentence; a line longer than max_sentence_length words
gives several. limit: the first that many lines of each file. Word2Vec(corpus_file=...) reads a
file faster (in C++, each worker its own part); these serve gensim code that passes them.
"""
from __future__ import annotations

import itertools
import os

from seqkern.models.keyed_vectors import _opener

MAX_WORDS_IN_BATCH = 10_000  # gensim's max_sentence_length default


def _sentences(lines, limit, max_sentence_length):
    for line in itertools.islice(lines, limit):
        words = (line.decode("utf8") if isinstance(line, bytes) else line).split()
        for i in range(0, len(words), max_sentence_length):
            yield words[i:i + max_sentence_length]


def _open(path):
    return (_opener(path) or open)(path, "rb")


class LineSentence:
    """The sentences of one file (a path, or a file object with seek), one a line."""

    def __init__(self, source, max_sentence_length=MAX_WORDS_IN_BATCH, limit=None):
        self.source, self.max_sentence_length, self.limit = source, max_sentence_length, limit

    def __iter__(self):
        if hasattr(self.source, "seek"):
            self.source.seek(0)
            yield from _sentences(self.source, self.limit, self.max_sentence_length)
            return
        with _open(self.source) as f:
            yield from _sentences(f, self.limit, self.max_sentence_length)


class PathLineSentences:
    """LineSentence over every file of a folder (not its subfolders), in file-name order, or
    over one file."""

    def __init__(self, source, max_sentence_length=MAX_WORDS_IN_BATCH, limit=None):
        self.source, self.max_sentence_length, self.limit = source, max_sentence_length, limit
        if os.path.isfile(source):
            self.input_files = [source]
        elif os.path.isdir(source):
            self.input_files = sorted(os.path.join(source, name) for name in os.listdir(source))
        else:
            raise ValueError("input is neither a file nor a path")

    def __iter__(self):
        for path in self.input_files:
            with _open(path) as f:
                yield from _sentences(f, self.limit, self.max_sentence_length)
