"""Optimizers with torch.optim's formulas and defaults, the book's interface:

    opt = seqkern.optim.Adam(lr=1e-3)
    opt.update(model.params, model.grads)     # dicts by name (or the book's lists), in place

Each parameter's step is one fused pass in C++ (threads over the array). State (momentum,
moments) is kept per parameter name; `lr` may be changed between steps (a schedule).
"""
from __future__ import annotations

import numpy as np

from seqkern import _core
from seqkern._checks import FLOATS, non_negative


class Optimizer:
    def __init__(self, lr, weight_decay=0.0):
        self.lr = non_negative("lr", lr)  # an infinite step makes every parameter inf or NaN
        self.weight_decay = non_negative("weight_decay", weight_decay)
        self.state = {}  # name -> dict of state arrays and counters

    def update(self, params, grads):
        """One step on every parameter: params and grads are dicts with the same keys, or lists
        in the same order. An array listed twice (a tied weight) is updated once."""
        if isinstance(params, dict):
            if params.keys() != grads.keys():
                raise KeyError(f"grads: keys differ from params: "
                               f"{sorted(set(params) ^ set(grads))}")
            pairs = [(k, params[k], grads[k]) for k in params]
        else:
            params, grads = list(params), list(grads)
            if len(params) != len(grads):
                raise ValueError(f"grads: expected {len(params)} arrays like params, got {len(grads)}")
            pairs = [(i, p, g) for i, (p, g) in enumerate(zip(params, grads))]
        seen = set()
        for key, p, g in pairs:
            if id(p) in seen:
                continue
            seen.add(id(p))
            _check(key, p, g)
            state = self.state.setdefault(key, {})
            _check_state(key, p, state)
            self._step(state, p, g)

    def _step(self, state, p, g):
        raise NotImplementedError

    def __repr__(self):
        opts = ", ".join(f"{k}={v}" for k, v in vars(self).items() if k != "state")
        return f"{type(self).__name__}({opts})"


def _described(a, written=False):
    """What an array argument is, for a message: dtype, shape and the layout that fails."""
    if not isinstance(a, np.ndarray):
        return type(a).__name__
    flags = [f for f, bad in (("not C-contiguous", not a.flags.c_contiguous),
                              ("read-only", written and not a.flags.writeable)) if bad]
    return " ".join([a.dtype.name, str(a.shape), *flags])


def _check(key, p, g):
    if not (isinstance(p, np.ndarray) and p.dtype in FLOATS and p.flags.c_contiguous
            and p.flags.writeable):
        raise TypeError(f"params[{key!r}]: expected a writeable C-contiguous float32/float64 "
                        f"array, got {_described(p, written=True)}")
    if not (isinstance(g, np.ndarray) and g.dtype == p.dtype and g.shape == p.shape
            and g.flags.c_contiguous):
        raise ValueError(f"grads[{key!r}]: expected a C-contiguous {p.dtype} array of shape "
                         f"{p.shape}, got {_described(g)}")


def _check_state(key, p, state):
    """The state kept for key (moments, sums) must fit p: the kernels update p.size elements of
    each in place, so an array of another size would be written past its end."""
    for name, a in state.items():
        if isinstance(a, np.ndarray) and (a.shape != p.shape or a.dtype != p.dtype):
            raise ValueError(f"params[{key!r}]: {p.dtype} {p.shape}, but this optimizer's "
                             f"{name!r} for it is {a.dtype} {a.shape} from earlier steps on "
                             f"another array: use a new optimizer for other parameters")


def _zeros(state, name, p):
    if name not in state:
        state[name] = np.zeros_like(p)
    return state[name]


class SGD(Optimizer):
    """p -= lr * d, d the gradient (+ weight_decay * p); with momentum, torch's buffer
    (its first step takes the gradient as is), dampening and Nesterov."""

    def __init__(self, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = non_negative("momentum", momentum)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: needs a momentum > 0 and zero dampening")
        self.dampening, self.nesterov = float(dampening), nesterov

    def _step(self, state, p, g):
        first = "momentum" not in state
        buf = _zeros(state, "momentum", p) if self.momentum else None
        _core.sgd_step(p, g, buf, self.lr, self.momentum, self.dampening, self.nesterov,
                       self.weight_decay, first)


class AdaGrad(Optimizer):
    """sum += g^2; p -= lr / (1 + (t-1) lr_decay) * g / (sqrt(sum) + eps)."""

    def __init__(self, lr=0.01, lr_decay=0.0, weight_decay=0.0, eps=1e-10):
        super().__init__(lr, weight_decay)
        self.lr_decay, self.eps = non_negative("lr_decay", lr_decay), non_negative("eps", eps)

    def _step(self, state, p, g):
        state["step"] = state.get("step", 0) + 1
        clr = self.lr / (1 + (state["step"] - 1) * self.lr_decay)
        _core.adagrad_step(p, g, _zeros(state, "sum", p), clr, self.eps, self.weight_decay)


class RMSprop(Optimizer):
    """sq = alpha sq + (1-alpha) g^2; p -= lr * g / (sqrt(sq) + eps), through a momentum buffer
    when momentum > 0."""

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0):
        super().__init__(lr, weight_decay)
        self.alpha, self.eps = non_negative("alpha", alpha), non_negative("eps", eps)
        self.momentum = non_negative("momentum", momentum)

    def _step(self, state, p, g):
        buf = _zeros(state, "momentum", p) if self.momentum else None
        _core.rmsprop_step(p, g, _zeros(state, "square_avg", p), buf, self.lr, self.alpha,
                           self.eps, self.momentum, self.weight_decay)


class Adam(Optimizer):
    """Adam with bias correction; weight_decay is L2 (added to the gradient), as torch's Adam."""

    decoupled = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        self.betas, self.eps = (float(betas[0]), float(betas[1])), non_negative("eps", eps)

    def _step(self, state, p, g):
        state["step"] = state.get("step", 0) + 1
        _core.adam_step(p, g, _zeros(state, "exp_avg", p), _zeros(state, "exp_avg_sq", p),
                        self.lr, *self.betas, self.eps, self.weight_decay, self.decoupled,
                        state["step"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay."""

    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr, betas, eps, weight_decay)


__all__ = ["SGD", "AdaGrad", "Adam", "AdamW", "Optimizer", "RMSprop"]
