"""word2vec: skip-gram and CBOW with negative sampling (word2vec.c's algorithm, gensim's API).

    model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1, workers=2, seed=1)
    model = Word2Vec(corpus_file="text.txt", ...)          # streamed, one sentence per line
    model.wv.most_similar("king"); model.save("model.npz"); Word2Vec.load("model.npz")

The updates run in C++ (seqkern._core.w2v_train) on chunks of the corpus, Hogwild over
`workers` threads; with workers=1 a seed gives the same vectors bit for bit. The NumPy twin of
the update is seqkern.reference.word2vec.
"""
from __future__ import annotations

import json
import sys
import time
from collections import Counter

import numpy as np

from seqkern import _core
from seqkern.models.keyed_vectors import KeyedVectors

CHUNK_WORDS = 100_000   # words per C++ call: the unit of progress reports and of Ctrl-C
MAX_SENTENCE = 10_000   # longer lines are cut into pieces this long (as word2vec.c does)
NOISE_DOMAIN = 2**31 - 1


def line_sentences(path):
    """The sentences of a plain-text file: one per line, split on whitespace, streamed."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            if words:
                yield words


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
            corpus = self._corpus(sentences, corpus_file)
            self.build_vocab(corpus)
            self.train(corpus)

    @staticmethod
    def _corpus(sentences, corpus_file):
        """A re-iterable corpus: the file's lines, or the given sentences (a list, or anything
        that can be iterated more than once)."""
        if (sentences is None) == (corpus_file is None):
            raise ValueError("give sentences or corpus_file (one of them)")
        if corpus_file is not None:
            class Lines:
                def __iter__(self):
                    return line_sentences(corpus_file)
            return Lines()
        if iter(sentences) is sentences:
            raise TypeError("sentences: expected a re-iterable corpus (a list, not a generator): "
                            "it is read once for the vocabulary and once per epoch")
        return sentences

    # -- vocabulary ---------------------------------------------------------------------------
    def build_vocab(self, sentences=None, corpus_file=None):
        """Counts the words; keeps those seen min_count times or more, most frequent first.
        max_vocab_size bounds the words counted at once: past it, the rarest are pruned as the
        scan goes (gensim's behaviour), which can drop words that would have reached min_count."""
        corpus = self._corpus(sentences, corpus_file)
        counts, min_reduce, total = Counter(), 1, 0
        for sentence in corpus:
            if isinstance(sentence, str):
                raise TypeError("sentences: expected lists of words, got a string "
                                "(split it into words first)")
            counts.update(sentence)
            total += len(sentence)
            if self.max_vocab_size and len(counts) > self.max_vocab_size:
                counts = Counter({w: c for w, c in counts.items() if c > min_reduce})
                min_reduce += 1
        if total == 0:
            raise ValueError("build_vocab: the corpus is empty")
        kept = [(w, c) for w, c in counts.items() if c >= self.min_count]
        if not kept:
            raise ValueError(f"build_vocab: no word occurs min_count = {self.min_count} times "
                             f"({len(counts)} distinct words, the most frequent "
                             f"{max(counts.values())} times)")
        kept.sort(key=lambda wc: -wc[1])  # stable: ties keep first-seen order
        words = [w for w, _ in kept]
        self.counts = np.array([c for _, c in kept], np.int64)
        rng = np.random.default_rng(self.seed)
        vectors = (rng.random((len(words), self.vector_size), np.float32) - 0.5) / self.vector_size
        self.wv = KeyedVectors(words, vectors)
        self.syn1neg = np.zeros_like(vectors)
        self.seeds = np.array([(self.seed * 0x9E3779B97F4A7C15 + q + 1) % 2**64
                               for q in range(self.workers)], np.uint64)
        self.trained_words = 0
        return self

    # -- training -----------------------------------------------------------------------------
    def _chunks(self, corpus):
        """(ids int32, offsets int64) chunks of about CHUNK_WORDS in-vocabulary words;
        out-of-vocabulary words are dropped, long sentences cut at MAX_SENTENCE."""
        index = self.wv.key_to_index
        ids, offsets = [], [0]
        for sentence in corpus:
            known = [index[w] for w in sentence if w in index]
            for i in range(0, len(known), MAX_SENTENCE):
                piece = known[i:i + MAX_SENTENCE]
                ids.extend(piece)
                offsets.append(len(ids))
            if len(ids) >= CHUNK_WORDS:
                yield np.array(ids, np.int32), np.array(offsets, np.int64)
                ids, offsets = [], [0]
        if ids:
            yield np.array(ids, np.int32), np.array(offsets, np.int64)

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
        total = int(self.counts.sum()) * epochs  # in-vocabulary words to go through
        done, trained, start, last = 0, 0, time.perf_counter(), 0.0
        try:
            for epoch in range(epochs):
                for ids, offsets in self._chunks(corpus):
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
