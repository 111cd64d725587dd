"""The book's common.optimizer: update(params, grads) on lists of arrays, in place, with the
book's formulas and defaults; and clip_grads."""
import numpy as np

from seqkern import _core


def _fusable(p, *others):
    """Whether a fused C++ step can update p and its state in place: float arrays of one dtype,
    all C-contiguous (anything else would be copied on the way in, and the update lost)."""
    return (p.dtype in (np.float32, np.float64) and p.flags.c_contiguous and p.flags.writeable
            and all(a.dtype == p.dtype and a.flags.c_contiguous and a.shape == p.shape for a in others))


class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for p, g in zip(params, grads):
            p -= self.lr * g


class Momentum:
    """v = momentum * v - lr * grad; param += v."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self.v):
            v *= self.momentum
            v -= self.lr * g
            self._move(p, g, v)

    def _move(self, p, g, v):
        p += v


class Nesterov(Momentum):
    """Nesterov's accelerated gradient in the book's form (Bengio et al. 2012): Momentum's v, and
    the parameter moved by momentum^2 * v - (1 + momentum) * lr * grad."""

    def _move(self, p, g, v):
        p += self.momentum * self.momentum * v
        p -= (1 + self.momentum) * self.lr * g


class AdaGrad:
    def __init__(self, lr=0.01):
        self.lr, self.h = lr, None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for p, g, h in zip(params, grads, self.h):
            h += g * g
            p -= self.lr * g / (np.sqrt(h) + 1e-7)


class RMSprop:
    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for p, g, h in zip(params, grads, self.h):
            h *= self.decay_rate
            h += (1 - self.decay_rate) * g * g
            p -= self.lr * g / (np.sqrt(h) + 1e-7)


class Adam:
    """Kingma and Ba's Adam as the book writes it: the bias corrections folded into the step
    size, 1e-7 added to sqrt(v)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        # The fused step (one pass instead of ten NumPy ones: 1 ms of ch07's 9 ms iterations)
        # adds its eps to sqrt(v) / sqrt(1 - beta2^t), so the book's 1e-7 added to sqrt(v) is
        # 1e-7 / sqrt(1 - beta2^t) there; the rest is the book's formula.
        eps = 1e-7 / np.sqrt(1.0 - self.beta2 ** self.iter)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            if _fusable(p, g, m, v):
                _core.adam_step(p, g, m, v, self.lr, self.beta1, self.beta2, eps, 0.0, False, self.iter)
                continue
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g ** 2 - v)
            p -= lr_t * m / (np.sqrt(v) + 1e-7)


def clip_grads(grads, max_norm):
    """Scales every gradient in place so that their joint L2 norm is at most max_norm."""
    total_norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for g in grads:
            g *= rate
