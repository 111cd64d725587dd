"""Inverted dropout: in training, each value is kept with probability 1-p and scaled by 1/(1-p)
(so that eval needs no rescaling); in eval mode it passes x through."""
from __future__ import annotations

import numpy as np

from seqkern._checks import random_generator
from seqkern.nn.module import Layer


class Dropout(Layer):
    def __init__(self, p=0.5, seed=None):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"p: expected a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.params, self.grads = {}, {}
        self._rng = random_generator(seed)
        self._mask = None

    def forward(self, x):
        x = np.asarray(x)
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = self._rng.random(x.shape, dtype=np.float32) >= self.p
        self._mask = keep * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, dy):
        if self._mask is None:
            return dy
        dy = np.asarray(dy)
        if dy.shape != self._mask.shape:  # NumPy would broadcast a (H,) or (1, H) silently
            raise ValueError(f"dy: expected the shape of y, {self._mask.shape}, got {dy.shape}")
        return dy * self._mask

    __call__ = forward

    def __repr__(self):
        return f"Dropout(p={self.p})"
