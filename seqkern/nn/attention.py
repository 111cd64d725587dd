"""Attention: the book's AttentionLayer / TimeAttention on the fused kernel (sk.attention)."""
from __future__ import annotations

import numpy as np

from seqkern._checks import SCORES, float_dtype, random_generator
from seqkern._ops import attention, attention_backward
from seqkern.nn.module import Layer


class Attention(Layer):
    """context = att.forward(query (B, Tq, Hq), keys (B, Tk, Hk), values=None, lengths=None).

    score "dot" (scale, Hq = Hk), "general" (params["w"] (Hq, Hk)) or "additive" (params "w_q"
    (A, Hq), "w_k" (A, Hk), "v" (A,), A = attention_size). values=None: the keys are the values
    (the book's seq2seq). With keep_weights, the last forward's weights (B, Tq, Tk) stay in
    self.weights (for plotting). backward(dcontext) returns (dquery, dkeys, dvalues), dvalues None
    when the keys were the values (their gradient is in dkeys)."""

    def __init__(self, score="dot", query_size=None, key_size=None, attention_size=None,
                 scale=None, keep_weights=False, dtype=np.float32, seed=None):
        if score not in SCORES:
            raise ValueError(f"score: expected one of {SCORES}, got {score!r}")
        self.score, self.scale, self.keep_weights = score, scale, keep_weights
        dtype = float_dtype(dtype)
        rng = random_generator(seed)
        self.params = {}
        if score == "general":
            self.params["w"] = (rng.standard_normal((query_size, key_size))
                                / np.sqrt(query_size)).astype(dtype)
        elif score == "additive":
            A = attention_size or key_size
            # scaled before the cast: under NumPy 2 a float32 array over np.sqrt's float64 scalar
            # is float64, and the layer then refused float32 input
            self.params["w_q"] = (rng.uniform(-1, 1, (A, query_size)) / np.sqrt(query_size)).astype(dtype)
            self.params["w_k"] = (rng.uniform(-1, 1, (A, key_size)) / np.sqrt(key_size)).astype(dtype)
            self.params["v"] = (rng.uniform(-1, 1, A) / np.sqrt(A)).astype(dtype)
        self.grads = {k: np.zeros_like(p) for k, p in self.params.items()}
        self.weights = None
        self._saved = None

    def forward(self, query, keys, values=None, lengths=None):
        out = attention(query, keys, values, lengths, self.score, scale=self.scale,
                        return_weights=self.keep_weights, training=self.training, **self.params)
        context, self.weights = out[0], out[1]
        self._saved = out[2] if self.training else None
        return context

    def backward(self, dcontext):
        if self._saved is None:
            raise RuntimeError("backward: call forward in training mode first")
        g = attention_backward(self._saved, dcontext)
        for name in self.grads:
            self.grads[name] += g[name]
        return g["query"], g["keys"], g.get("values")

    __call__ = forward

    def __repr__(self):
        return f"Attention(score={self.score!r})"
