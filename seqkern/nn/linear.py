"""Linear: y = x W^T + b over the last axis of any input (the book's Affine / TimeAffine)."""
from __future__ import annotations

import numpy as np

from seqkern import _core
from seqkern._checks import (as_float_array, check_count, check_precision, float_dtype,
                             random_generator)
from seqkern.nn.module import Layer, on_cache_lines


class Linear(Layer):
    """weight (out_features, in_features), bias (out_features,), both uniform in
    +-1/sqrt(in_features) as in torch. The products run on seqkern's BLAS and thread pool;
    backward adds the weight gradient into grads in the same GEMM (no temporary). In
    eval(precision="bfloat16") the forward product runs on a copy of the weight rounded to
    bfloat16 (README: "Low precision"), the input rows rounded as they are read, the bias and the
    sums float32."""

    precision = "float32"  # of inference; eval(precision=...) sets it
    _bf16 = None  # the weight rounded and packed (_core.Bf16Matrix), in bfloat16 eval mode
    _bf16_from = None  # the weight array it was packed from

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, seed=None):
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            check_count(name, v)
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = float_dtype(dtype)
        rng = random_generator(seed)
        k = 1.0 / np.sqrt(in_features)
        self.params = {"weight": on_cache_lines(rng.uniform(-k, k, (out_features, in_features))
                                                .astype(dtype))}
        if bias:
            self.params["bias"] = rng.uniform(-k, k, out_features).astype(dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._x = None
        self._y_shape = None  # of the last training forward's y, for backward's dy

    def forward(self, x):
        """x (..., in_features) -> y (..., out_features)."""
        w = self.params["weight"]
        x = as_float_array("x", x, w.dtype, like="the layer's weights")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., in_features) = (..., {self.in_features}), "
                             f"got {x.shape}")
        x2 = x.reshape(-1, self.in_features)
        y2 = _core.empty((x2.shape[0], self.out_features), w.dtype)
        if "bias" in self.params:
            y2[...] = self.params["bias"]
        if self._bf16 is not None and not self.training:
            if w is not self._bf16_from:  # the weight array replaced since eval(): pack the new one
                self._pack(None)
            _core.bf16_linear(x2, self._bf16, y2, "bias" in self.params)
        else:
            _core.gemm(False, True, 1.0, x2, w, 1.0 if "bias" in self.params else 0.0, y2)
        self._x = x2 if self.training else None
        self._y_shape = (*x.shape[:-1], self.out_features)
        return y2.reshape(self._y_shape)

    def backward(self, dy):
        """dy (..., out_features) -> dx (..., in_features); adds dW = dy^T x and db = sum dy."""
        if self._x is None:
            raise RuntimeError("backward: call forward in training mode first")
        w = self.params["weight"]
        dy = as_float_array("dy", dy, w.dtype, like="the layer's weights")
        if dy.shape != self._y_shape:
            raise ValueError(f"dy: expected the shape of y, {self._y_shape}, got {dy.shape}")
        dy2 = dy.reshape(-1, self.out_features)
        _core.gemm(True, False, 1.0, dy2, self._x, 1.0, self.grads["weight"])
        if "bias" in self.params:
            self.grads["bias"] += dy2.sum(axis=0)
        dx = _core.empty(self._x.shape, w.dtype)
        _core.gemm(False, False, 1.0, dy2, w, 0.0, dx)
        return dx.reshape(*dy.shape[:-1], self.in_features)

    __call__ = forward

    def train(self, mode=True):
        """Training mode (mode True, always float32), or inference at the current precision."""
        super().train(mode)
        if mode:
            self._pack("float32")
        return self

    def _pack(self, precision):
        """Eval mode, precision "bfloat16": rounds and packs the weight (None: at the current
        precision; load_state_dict and a replaced weight array pack again)."""
        precision = self.precision if precision is None else precision
        check_precision(precision, False, self.params["weight"].dtype)
        self._bf16 = self._bf16_from = None
        if not self.training and precision == "bfloat16":
            w = self.params["weight"]
            self._bf16 = _core.Bf16Matrix(np.ascontiguousarray(w, np.float32))
            self._bf16_from = w
        self.precision = precision

    def __getstate__(self):
        """Copies and pickles leave out the packed weight (a C++ object); __setstate__ packs the
        copy's own in eval mode."""
        state = self.__dict__.copy()
        state.pop("_bf16", None)
        state.pop("_bf16_from", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if not self.training:
            self._pack(None)

    def __repr__(self):
        bias = "" if "bias" in self.params else ", bias=False"
        return f"Linear({self.in_features}, {self.out_features}{bias})"
