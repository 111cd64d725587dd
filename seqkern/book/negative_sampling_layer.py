"""The book's ch04 negative_sampling_layer: EmbeddingDot, UnigramSampler and
NegativeSamplingLoss, with the book's params and grads (NegativeSamplingLoss holds W once per
scored word, each with its own gradient, which the book's Trainer sums). The sampler draws what
the book's does, much faster; the loss scores the target and all noise words at once."""
import collections

import numpy as np

from seqkern._checks import as_ids, check_count
from seqkern.book.layers import Embedding


class EmbeddingDot:
    """score[n] = W[idx[n]] . h[n]."""

    def __init__(self, W):
        self.embed = Embedding(W)
        self.params = self.embed.params
        self.grads = self.embed.grads
        self.cache = None

    def forward(self, h, idx):
        target_W = self.embed.forward(idx)
        self.cache = (h, target_W)
        return np.sum(target_W * h, axis=1)

    def backward(self, dout):
        h, target_W = self.cache
        dout = dout.reshape(-1, 1)
        self.embed.backward(dout * h)
        return dout * target_W


class UnigramSampler:
    """sample_size distinct noise words per target, drawn in turn with probability proportional
    to count ** power among the words not drawn yet and not the target (the book's
    np.random.choice(replace=False) per row). Drawing from the whole distribution and skipping
    repeats and the target gives the same distribution, without renormalizing per row."""

    def __init__(self, corpus, power, sample_size):
        check_count("sample_size", sample_size)
        self.sample_size = sample_size
        counts = collections.Counter(int(w) for w in corpus)
        self.vocab_size = len(counts)
        self.word_p = np.array([counts[i] for i in range(self.vocab_size)], dtype=np.float64) ** power
        self.word_p /= np.sum(self.word_p)
        self._cdf = np.cumsum(self.word_p)
        self._drawable = self.word_p > 0  # False for NaN too (a NaN power or total)

    def _draw(self, n):
        return np.minimum(np.searchsorted(self._cdf, np.random.rand(n) * self._cdf[-1], side="right"),
                          self.vocab_size - 1)

    def get_negative_sample(self, target):
        target = as_ids("target", target, self.vocab_size)
        if target.ndim != 1:
            raise ValueError(f"target: expected a 1-D array (batch,) of word ids, got shape "
                             f"{target.shape}")
        batch_size, k = target.shape[0], self.sample_size
        # Rows with fewer than k drawable words besides their target would draw forever (the
        # book's np.random.choice raises ValueError there).
        others = np.count_nonzero(self._drawable) - self._drawable[target]
        if batch_size and others.min() < k:
            raise ValueError(f"sample_size {k}: needs {k} words of nonzero probability besides the "
                             f"target, found {others.min()}")
        draws = self._draw(batch_size * 4 * k).reshape(batch_size, 4 * k)
        # Each row keeps its first k draws that are new to the row and not its target: a draw is
        # new where a stable sort of (row, word) puts it first among its equals. Rows left short
        # draw more, in row order, as a loop over the rows would (a Python loop over the rows
        # was a fifth of chapter 4's iteration).
        keys = np.arange(batch_size)[:, None] * self.vocab_size + draws
        order = np.argsort(keys, axis=None, kind="stable")
        sorted_keys = keys.reshape(-1)[order]
        first = np.empty(keys.size, dtype=bool)
        first[order] = np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))
        keep = first.reshape(draws.shape) & (draws != target[:, None])
        keep &= np.cumsum(keep, axis=1) <= k
        out = np.empty((batch_size, k), dtype=np.int32)
        full = keep.sum(axis=1) == k
        out[full] = draws[full][keep[full]].reshape(-1, k)
        for i in np.flatnonzero(~full):
            chosen = draws[i][keep[i]].tolist()
            seen = {int(target[i]), *chosen}
            while len(chosen) < k:
                for w in self._draw(4 * k).tolist():
                    if w not in seen:
                        seen.add(w)
                        chosen.append(w)
                        if len(chosen) == k:
                            break
            out[i] = chosen
        return out


class NegativeSamplingLoss:
    """Binary cross-entropy of the target's score (label 1) plus those of sample_size noise
    words (label 0), each averaged over the batch, summed."""

    def __init__(self, W, corpus, power=0.75, sample_size=5):
        self.sample_size = sample_size
        self.sampler = UnigramSampler(corpus, power, sample_size)
        self.embed_dot_layers = [EmbeddingDot(W) for _ in range(sample_size + 1)]
        self.params, self.grads = [], []
        for layer in self.embed_dot_layers:
            self.params += layer.params
            self.grads += layer.grads
        self.cache = None

    def forward(self, h, target):
        W = self.params[0]
        words = np.concatenate([target[:, None], self.sampler.get_negative_sample(target)], axis=1)
        rows = W[words]                                   # (N, k + 1, D)
        score = np.einsum("nkd,nd->nk", rows, h)
        y = 1 / (1 + np.exp(-score))
        labels = np.zeros_like(y)
        labels[:, 0] = 1
        N = len(target)
        p = np.where(labels > 0, y, 1 - y)
        self.cache = (h, words, rows, y, labels)
        return float(-np.sum(np.log(p + 1e-7)) / N)

    def backward(self, dout=1):
        h, words, rows, y, labels = self.cache
        dscore = (y - labels) * dout / len(words)         # (N, k + 1)
        for j, layer in enumerate(self.embed_dot_layers):  # each scored word's own gradient
            layer.embed.idx = words[:, j]
            layer.embed.backward(dscore[:, j:j + 1] * h)
        return np.einsum("nk,nkd->nd", dscore, rows)
