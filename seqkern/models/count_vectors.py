"""The count-based baseline of word2vec's chapter: a sparse co-occurrence matrix, its positive
pointwise mutual information (PPMI), and dense vectors from a truncated SVD of it, with the same
`wv` interface as Word2Vec. NumPy only: the matrix stays in coordinate form and the SVD is
randomized (Halko, Martinsson and Tropp 2011), so it suits small corpora and vocabularies of up
to some tens of thousands of words.

    model = PPMIVectors(sentences, window=2, min_count=1, vector_size=100)
    model.wv.most_similar("you")
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from seqkern._checks import check_count, random_generator
from seqkern.models.keyed_vectors import KeyedVectors


def cooccurrence(sentences_ids, V, window):
    """Counts of (word, context) at distance 1..window inside each sentence, both directions.
    Returns (rows, cols, counts) of the nonzero entries, sorted by (row, col)."""
    codes = []
    for ids in sentences_ids:
        ids = np.asarray(ids, np.int64)
        for d in range(1, min(window, len(ids) - 1) + 1):  # (a window of 2**62 looped so)
            a, b = ids[:-d], ids[d:]
            codes.append(a * V + b)
            codes.append(b * V + a)
    if not codes:
        return (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.float64),)
    keys, counts = np.unique(np.concatenate(codes), return_counts=True)
    return keys // V, keys % V, counts.astype(np.float64)


def ppmi(rows, cols, counts, V, eps=1e-8):
    """max(0, log2(C(w,c) * N / (C(w) C(c)))) on the nonzero entries, N the total count and C(w)
    the row sums (as the book's ppmi does); zeros stay zero."""
    row_sums = np.bincount(rows, weights=counts, minlength=V)
    col_sums = np.bincount(cols, weights=counts, minlength=V)
    pmi = np.log2(counts * counts.sum() / (row_sums[rows] * col_sums[cols]) + eps)
    return np.maximum(pmi, 0.0)


def _product(rows, cols, vals, dense, V):
    """M @ dense for M given by its nonzero entries."""
    out = np.zeros((V, dense.shape[1]))
    np.add.at(out, rows, vals[:, None] * dense[cols])
    return out


def truncated_svd(rows, cols, vals, V, k, oversample=20, power_iterations=4, seed=0):
    """Leading k singular triplets (U (V, k), S (k,)) of the square matrix given by its nonzero
    entries, by randomized range finding with power iterations."""
    rng = random_generator(seed)
    width = min(V, k + oversample)
    Q, _ = np.linalg.qr(_product(rows, cols, vals, rng.standard_normal((V, width)), V))
    for _ in range(power_iterations):  # M^T = M's transpose: swap rows and cols
        Q, _ = np.linalg.qr(_product(cols, rows, vals, Q, V))
        Q, _ = np.linalg.qr(_product(rows, cols, vals, Q, V))
    small = _product(cols, rows, vals, Q, V).T  # Q^T M, (width, V)
    U_small, S, _ = np.linalg.svd(small, full_matrices=False)
    return (Q @ U_small)[:, :k], S[:k]


class PPMIVectors:
    """Word vectors from the SVD of the PPMI co-occurrence matrix: vectors = U[:, :vector_size]
    (as the book does). Vocabulary as Word2Vec builds it (min_count, most frequent first)."""

    def __init__(self, sentences, window=2, min_count=1, vector_size=100, seed=0):
        for name, v in (("window", window), ("min_count", min_count),
                        ("vector_size", vector_size)):
            check_count(name, v)  # window 0 made vectors of an all-zero matrix
        sentences = [sentences] if isinstance(sentences, str) else list(sentences)
        if any(isinstance(s, str) for s in sentences):
            # a str is a sequence of characters, which made character vectors silently
            raise TypeError("sentences: expected lists of words, got a string (split it into "
                            "words first)")
        sentences = [list(s) for s in sentences]
        counts = Counter(w for s in sentences for w in s)
        if not counts:
            raise ValueError("PPMIVectors: the corpus is empty")
        words = [w for w, c in sorted(counts.items(), key=lambda wc: -wc[1]) if c >= min_count]
        if not words:
            raise ValueError(f"PPMIVectors: no word occurs min_count = {min_count} times")
        index = {w: i for i, w in enumerate(words)}
        V = len(words)
        ids = [[index[w] for w in s if w in index] for s in sentences]
        self.rows, self.cols, self.counts = cooccurrence(ids, V, window)
        self.ppmi = ppmi(self.rows, self.cols, self.counts, V)
        k = min(vector_size, V)
        U, self.singular_values = truncated_svd(self.rows, self.cols, self.ppmi, V, k, seed=seed)
        self.wv = KeyedVectors._of(words, U.astype(np.float32))
