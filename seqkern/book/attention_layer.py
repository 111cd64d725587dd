"""The book's ch08 attention_layer: WeightSum, AttentionWeight and Attention as the book writes
them (NumPy, one decoder step), and TimeAttention, all T decoder steps in one call of seqkern's
fused attention kernel (dot scores, softmax and the weighted sum; no per-step Python loop)."""
import numpy as np

from seqkern import _ops
from seqkern.book.layers import Softmax


class WeightSum:
    """c = sum over t of a[:, t] hs[:, t] for hs (N, T, H) and weights a (N, T)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, a):
        ar = a[:, :, None]
        self.cache = (hs, ar)
        return np.sum(hs * ar, axis=1)

    def backward(self, dc):
        hs, ar = self.cache
        dt = dc[:, None, :]
        return dt * ar, np.sum(dt * hs, axis=2)


class AttentionWeight:
    """a = softmax over t of hs[:, t] . h, for hs (N, T, H) and h (N, H)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.softmax = Softmax()
        self.cache = None

    def forward(self, hs, h):
        hr = h[:, None, :]
        self.cache = (hs, hr)
        return self.softmax.forward(np.sum(hs * hr, axis=2))

    def backward(self, da):
        hs, hr = self.cache
        dt = self.softmax.backward(da)[:, :, None]
        return dt * hr, np.sum(dt * hs, axis=1)


class Attention:
    """One decoder step: the context of h over the encoder's hs; attention_weight keeps a."""

    def __init__(self):
        self.params, self.grads = [], []
        self.attention_weight_layer = AttentionWeight()
        self.weight_sum_layer = WeightSum()
        self.attention_weight = None

    def forward(self, hs, h):
        a = self.attention_weight_layer.forward(hs, h)
        self.attention_weight = a
        return self.weight_sum_layer.forward(hs, a)

    def backward(self, dout):
        dhs0, da = self.weight_sum_layer.backward(dout)
        dhs1, dh = self.attention_weight_layer.backward(da)
        return dhs0 + dhs1, dh


class TimeAttention:
    """The context of every decoder state hs_dec (N, T, H) over the encoder states hs_enc
    (N, Te, H): dot scores, unscaled, as the book's. attention_weights: a list of T arrays
    (N, Te), the book's, for visualize_attention.py."""

    def __init__(self):
        self.params, self.grads = [], []
        self.saved = None
        self.attention_weights = None

    def forward(self, hs_enc, hs_dec):
        out, weights, self.saved = _ops.attention(np.ascontiguousarray(hs_dec), np.ascontiguousarray(hs_enc),
                                                  return_weights=True, training=True)
        self.attention_weights = list(weights.transpose(1, 0, 2))
        return out

    def backward(self, dout):
        g = _ops.attention_backward(self.saved, np.ascontiguousarray(dout))
        return g["keys"], g["query"]
