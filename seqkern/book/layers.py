"""The book's common.layers, with its constructors, params/grads lists and semantics: each
layer's grads are overwritten by backward. Embedding's scatter-add runs in C++."""
import numpy as np

from seqkern import _core, _ops
from seqkern.book.functions import cross_entropy_error, softmax


class MatMul:
    """x W on seqkern's BLAS (NumPy's would wake its own thread pool, which then spins on the
    cores seqkern's kernels need)."""

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.x = None

    def forward(self, x):
        W, = self.params
        self.x = np.ascontiguousarray(x, W.dtype)
        return _ops._matmul(self.x, np.ascontiguousarray(W))

    def backward(self, dout):
        W, = self.params
        dout = np.ascontiguousarray(dout, W.dtype)
        self.grads[0][...] = _ops._matmul_tn(self.x, dout)
        return _ops._matmul(dout, np.ascontiguousarray(W), trans_b=True)


class Affine:
    """x W + b, as MatMul."""

    def __init__(self, W, b):
        self.matmul = MatMul(W)
        self.params = [W, b]
        self.grads = [self.matmul.grads[0], np.zeros_like(b)]

    def forward(self, x):
        W, b = self.params
        self.matmul.x = x = np.ascontiguousarray(x, W.dtype)
        out = _core.empty((*x.shape[:-1], W.shape[1]), W.dtype)
        out[...] = b  # then added to: one pass over out, not NumPy's product and sum apart
        _core.gemm(False, False, 1.0, _ops._rows(x), np.ascontiguousarray(W), 1.0, _ops._rows(out))
        return out

    def backward(self, dout):
        self.grads[1][...] = np.sum(dout, axis=0)
        return self.matmul.backward(dout)


class Softmax:
    def __init__(self):
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x):
        self.out = softmax(x)
        return self.out

    def backward(self, dout):
        dx = self.out * dout
        return dx - self.out * np.sum(dx, axis=1, keepdims=True)


class SoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        if self.t.size == self.y.size:  # one-hot targets: their class ids
            self.t = self.t.argmax(axis=1)
        return cross_entropy_error(self.y, self.t)

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        return dx * dout / batch_size


class Sigmoid:
    def __init__(self):
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class SigmoidWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = 1 / (1 + np.exp(-x))
        self.loss = cross_entropy_error(np.c_[1 - self.y, self.y], self.t)
        return self.loss

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        return (self.y - self.t) * dout / batch_size


class Dropout:
    """Inverted at test time as the book does: masks at training, (1 - ratio) scaling at test."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout):
        return dout * self.mask


class Embedding:
    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx = None

    def forward(self, idx):
        W, = self.params
        self.idx = idx
        return W[idx]

    def backward(self, dout):
        dW, = self.grads
        _ops.embedding_backward(self.idx, np.asarray(dout, dW.dtype), dW, overwrite=True)
        return None
