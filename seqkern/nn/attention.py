"""Attention: the book's AttentionLayer / TimeAttention on the fused kernel (sk.attention)."""
from __future__ import annotations

import numpy as np

from seqkern._checks import SCORES, float_dtype, is_device_array, random_generator
from seqkern._ops import attention, attention_backward
from seqkern.nn.module import Layer


# Keys (attention.cc's kKBlock: one block of keys, whose weights the forward has at hand) and
# weights (16 MB of float32; torch's explicit ops keep these probabilities at any size) up to
# which a training forward asks for its weights: its backward then skips one product of five
# and the exponentials. Paired per call on Zen 4, 2 threads, sk.attention forward and backward,
# recomputed / read time: (8,256,256,128) 1.13x, (64,30,30,256) 1.15x, (32,1,512,512) 1.12x,
# (16,50,50,256) 1.19x, (8,128,512,64) 1.13x, (32,256,256,64) 1.10x, (64,256,256,128) 1.14x.
_WEIGHTS_KEYS = 512
_WEIGHTS_VALUES = 1 << 22


def _weights_pay(query, keys):
    """Whether a training call on these arrays ((B, Tq, Hq), (B, Tk, Hk)) asks for its weights:
    not on a CUDA device, whose backward recomputes them whatever the call returned."""
    if is_device_array(query) or np.ndim(query) != 3 or np.ndim(keys) != 3:
        return False  # (sk.attention reports a bad shape)
    B, Tq, Tk = np.shape(query)[0], np.shape(query)[1], np.shape(keys)[1]
    return Tk <= _WEIGHTS_KEYS and B * Tq * Tk <= _WEIGHTS_VALUES


class Attention(Layer):
    """context = att.forward(query (B, Tq, Hq), keys (B, Tk, Hk), values=None, lengths=None).

    score "dot" (scale, Hq = Hk), "general" (params["w"] (Hq, Hk)) or "additive" (params "w_q"
    (A, Hq), "w_k" (A, Hk), "v" (A,), A = attention_size). values=None: the keys are the values
    (the book's seq2seq). With keep_weights, the last forward's weights (B, Tq, Tk) stay in
    self.weights (for plotting). In training, dot and general scores over up to 512 keys ask
    sk.attention for the weights (up to 2**22 of them) whether kept or not: the backward then
    reads them instead of recomputing them. backward(dcontext) returns (dquery, dkeys, dvalues),
    dvalues None when the keys were the values (their gradient is in dkeys)."""

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
        ask = self.keep_weights or self.training and self.score != "additive" and \
            _weights_pay(query, keys)
        out = attention(query, keys, values, lengths, self.score, scale=self.scale,
                        return_weights=ask, training=self.training, **self.params)
        context, self.weights = out[0], out[1] if self.keep_weights else None
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
