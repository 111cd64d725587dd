"""word2vec: skip-gram and CBOW with negative sampling (word2vec.c's algorithm, gensim's API).

    model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1, workers=2, seed=1)
    model = Word2Vec(corpus_file="text.txt", ...)          # streamed, one sentence per line
    model.wv.most_similar("king"); model.save("model.npz"); Word2Vec.load("model.npz")

The updates run in C++ (seqkern._core.w2v_train) on chunks of the corpus, Hogwild over
`workers` threads; with workers=1 a seed gives the same vectors bit for bit. Skip-gram shares
each window's noise words among its context words (pWord2Vec's batching). The NumPy twin of the
update is seqkern.reference.word2vec. Text is split into words and looked up in C++
(seqkern._core.Vocabulary): a word is a run of bytes between ASCII whitespace.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from seqkern import _core
from seqkern.models.keyed_vectors import KeyedVectors

CHUNK_BYTES = 1 << 19   # text per C++ call (~90K words): the unit of progress reports and Ctrl-C
MAX_SENTENCE = 10_000   # longer lines are cut into pieces this long (as word2vec.c does)
NOISE_DOMAIN = 2**31 - 1


def text_chunks(sentences=None, corpus_file=None):
    """The corpus as UTF-8 text in pieces of about CHUNK_BYTES, one sentence per line: the file
    streamed in blocks, or the sentences' words joined by spaces. A piece ends at a newline, or
    at a space inside a line longer than a piece (which ends a sentence there)."""
    if corpus_file is not None:
        with open(corpus_file, "rb") as f:
            rest = b""
            while block := f.read(CHUNK_BYTES):
                block = rest + block
                cut = (block.rfind(b"\n") + 1 or max(block.rfind(b" "), block.rfind(b"\t")) + 1
                       or len(block))
                rest = block[cut:]
                yield block[:cut]
            if rest:
                yield rest
        return
    lines, size = [], 0
    for sentence in sentences:
        if isinstance(sentence, str):
            raise TypeError("sentences: expected lists of words, got a string "
                            "(split it into words first)")
        try:
            lines.append(" ".join(sentence))
        except TypeError:
            raise TypeError(f"sentences: words must be strings, got {sentence[:3]!r}...") from None
        size += len(lines[-1]) + 1
        if size >= CHUNK_BYTES:
            yield ("\n".join(lines) + "\n").encode()
            lines, size = [], 0
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def keep_probabilities(counts, sample):
    """word2vec.c's subsampling: each occurrence of a word with count c is kept with probability
    (sqrt(c / t) + 1) * t / c (at most 1), t = sample * total count; 1 everywhere for sample 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones(len(counts), np.float32)
    t = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / t) + 1) * t / counts).astype(np.float32)


def noise_table(counts, ns_exponent):
    """Cumulative noise distribution over the vocabulary: counts**ns_exponent, scaled so the last
    entry is 2**31 - 1 (gensim's cum_table); a noise word is the first entry above a draw."""
    weights = np.asarray(counts, dtype=np.float64) ** ns_exponent
    return np.round(np.cumsum(weights) / weights.sum() * NOISE_DOMAIN).astype(np.uint32)


class Word2Vec:
    """gensim's Word2Vec arguments: vector_size, window, min_count, max_vocab_size, sample, sg
    (1: skip-gram, 0: CBOW), cbow_mean, negative, ns_exponent, alpha, min_alpha, epochs,
    workers, seed. progress: print a line per second (percent, words/s, alpha) to stderr."""

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, window=5, min_count=5,
                 max_vocab_size=None, sample=1e-3, sg=0, cbow_mean=1, negative=5,
                 ns_exponent=0.75, alpha=0.025, min_alpha=0.0001, epochs=5, workers=3, seed=1,
                 progress=False):
        for name, v in (("vector_size", vector_size), ("window", window), ("negative", negative),
                        ("epochs", epochs), ("workers", workers), ("min_count", min_count)):
            if not isinstance(v, (int, np.integer)) or v < (0 if name == "min_count" else 1):
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if negative > 64:
            raise ValueError(f"negative: at most 64 noise words per pair, got {negative}")
        if sentences is not None and corpus_file is not None:
            raise ValueError("give sentences or corpus_file, not both")
        self.vector_size, self.window, self.min_count = vector_size, window, min_count
        self.max_vocab_size, self.sample, self.sg, self.cbow_mean = max_vocab_size, sample, sg, cbow_mean
        self.negative, self.ns_exponent = negative, ns_exponent
        self.alpha, self.min_alpha, self.epochs, self.workers = alpha, min_alpha, epochs, workers
        self.seed, self.progress = seed, progress
        self.counts = np.zeros(0, np.int64)
        self.wv = KeyedVectors([], np.zeros((0, vector_size), np.float32))
        self.syn1neg = np.zeros((0, vector_size), np.float32)
        self.seeds = np.zeros(0, np.uint64)
        self.trained_words = 0
        if sentences is not None or corpus_file is not None:
            self.build_vocab(sentences, corpus_file)
            self.train(sentences, corpus_file)

    @staticmethod
    def _corpus(sentences, corpus_file):
        """The corpus as a re-iterable source of text chunks (see text_chunks): the file, or
        the given sentences (a list, or anything that can be iterated more than once)."""
        if (sentences is None) == (corpus_file is None):
            raise ValueError("give sentences or corpus_file (one of them)")
        if sentences is not None and iter(sentences) is sentences:
            raise TypeError("sentences: expected a re-iterable corpus (a list, not a generator): "
                            "it is read once for the vocabulary and once per epoch")

        class Chunks:
            def __iter__(self):
                return text_chunks(sentences, corpus_file)
        return Chunks()

    # -- vocabulary ---------------------------------------------------------------------------
    def build_vocab(self, sentences=None, corpus_file=None):
        """Counts the words; keeps those seen min_count times or more, most frequent first.
        max_vocab_size bounds the words counted at once: past it, the rarest are pruned as the
        scan goes (gensim's behaviour), which can drop words that would have reached min_count."""
        vocab = _core.Vocabulary()
        for text in self._corpus(sentences, corpus_file):
            vocab.count(text, self.max_vocab_size or 0)
        if vocab.total == 0:
            raise ValueError("build_vocab: the corpus is empty")
        counts = vocab.counts
        order = np.argsort(-counts, kind="stable")  # ties keep first-seen order
        order = order[counts[order] >= self.min_count]
        if len(order) == 0:
            raise ValueError(f"build_vocab: no word occurs min_count = {self.min_count} times "
                             f"({len(counts)} distinct words, the most frequent "
                             f"{counts.max()} times)")
        all_words = vocab.words
        words = [all_words[i] for i in order]
        self.counts = counts[order]
        rng = np.random.default_rng(self.seed)
        # uniform in [-1, 1) / vector_size, as gensim 4 starts (word2vec.c: [-0.5, 0.5))
        vectors = (rng.random((len(words), self.vector_size), np.float32) * 2 - 1) / self.vector_size
        self.wv = KeyedVectors(words, vectors)
        self.syn1neg = np.zeros_like(vectors)
        self.seeds = np.array([(self.seed * 0x9E3779B97F4A7C15 + q + 1) % 2**64
                               for q in range(self.workers)], np.uint64)
        self.trained_words = 0
        return self

    # -- training -----------------------------------------------------------------------------
    def train(self, sentences=None, corpus_file=None, epochs=None):
        """Runs `epochs` passes (default: the constructor's), alpha falling linearly to
        min_alpha over all of them. Ctrl-C stops after the current chunk: the vectors keep what
        was learned so far and KeyboardInterrupt is raised again."""
        if len(self.wv) == 0:
            raise RuntimeError("train: build the vocabulary first (build_vocab)")
        corpus = self._corpus(sentences, corpus_file)
        self.wv.vectors = np.ascontiguousarray(self.wv.vectors, np.float32)  # updated in place
        self.syn1neg = np.ascontiguousarray(self.syn1neg, np.float32)
        epochs = self.epochs if epochs is None else epochs
        keep = keep_probabilities(self.counts, self.sample)
        cum_table = noise_table(self.counts, self.ns_exponent)
        vocab = _core.Vocabulary(self.wv.index_to_key)
        total = int(self.counts.sum()) * epochs  # in-vocabulary words to go through
        done, trained, start, last = 0, 0, time.perf_counter(), 0.0
        try:
            for epoch in range(epochs):
                for text in corpus:
                    ids, offsets = vocab.encode(text, MAX_SENTENCE)
                    a0 = self.alpha - (self.alpha - self.min_alpha) * done / total
                    done = min(total, done + len(ids))
                    a1 = self.alpha - (self.alpha - self.min_alpha) * done / total
                    trained += _core.w2v_train(self.window, self.negative, bool(self.sg),
                                               bool(self.cbow_mean), ids, offsets, keep,
                                               cum_table, a0, a1, self.seeds, self.wv.vectors,
                                               self.syn1neg)
                    now = time.perf_counter()
                    if self.progress and now - last >= 1.0:
                        last = now
                        print(f"word2vec: epoch {epoch + 1}/{epochs}, {100 * done / total:5.1f}%"
                              f" done, {done / (now - start):,.0f} words/s, alpha {a1:.5f}",
                              file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            print(f"word2vec: interrupted at {100 * done / total:.1f}%; the vectors keep what "
                  "was learned so far", file=sys.stderr, flush=True)
            raise
        finally:
            self.wv.changed()
            self.trained_words += trained
        if self.progress:
            elapsed = time.perf_counter() - start
            print(f"word2vec: {done:,} words in {elapsed:.1f} s ({done / elapsed:,.0f} words/s), "
                  f"{trained:,} after subsampling", file=sys.stderr, flush=True)
        return trained

    # -- the full training state --------------------------------------------------------------
    _PARAMS = ("vector_size", "window", "min_count", "max_vocab_size", "sample", "sg",
               "cbow_mean", "negative", "ns_exponent", "alpha", "min_alpha", "epochs", "workers",
               "seed", "trained_words")

    def save(self, path):
        """Everything needed to query or continue training, in one .npz file (no pickle)."""
        params = {k: getattr(self, k) for k in self._PARAMS}
        np.savez(path, params=json.dumps(params), words=np.array(self.wv.index_to_key, dtype=str),
                 counts=self.counts, vectors=self.wv.vectors, syn1neg=self.syn1neg,
                 seeds=self.seeds)

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as f:
            params = json.loads(str(f["params"]))
            trained = params.pop("trained_words")
            model = cls(**params)
            model.trained_words = trained
            model.counts = f["counts"]
            model.wv = KeyedVectors([str(w) for w in f["words"]], f["vectors"])
            model.syn1neg = np.array(f["syn1neg"])
            model.seeds = np.array(f["seeds"])
        return model
