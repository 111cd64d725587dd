"""Central-difference gradient checks in float64, for any function of arrays.

    numerical_gradient(f, inputs)           # f(**inputs) -> float; d f / d each float64 array
    gradcheck(f, inputs, analytic)          # compares with the gradients you computed
    check_op(sk.lstm, sk.lstm_backward, inputs)   # a training forward/backward pair
"""
from __future__ import annotations

import numpy as np


class GradcheckError(AssertionError):
    pass


def numerical_gradient(f, inputs, names=None, eps=1e-6):
    """Central differences (f(a+eps) - f(a-eps)) / 2eps of scalar f(**inputs), per element.

    names: which inputs to differentiate (default: every float64 ndarray). Arrays are perturbed
    in place and restored.
    """
    if names is None:
        names = [k for k, v in inputs.items() if isinstance(v, np.ndarray) and v.dtype == np.float64]
    grads = {}
    for name in names:
        a = inputs[name]
        if not (isinstance(a, np.ndarray) and a.dtype == np.float64):
            raise TypeError(f"{name}: gradient checks need a float64 array, got {type(a).__name__}")
        g = np.zeros_like(a)
        flat, gflat = a.reshape(-1), g.reshape(-1)  # views: a is contiguous or reshape copies
        if not np.shares_memory(flat, a):
            raise ValueError(f"{name}: must be contiguous to be perturbed in place")
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            up = float(f(**inputs))
            flat[i] = orig - eps
            down = float(f(**inputs))
            flat[i] = orig
            gflat[i] = (up - down) / (2 * eps)
        grads[name] = g
    return grads


def gradcheck(f, inputs, analytic, eps=1e-6, rtol=1e-6, atol=1e-8):
    """Raises GradcheckError unless analytic[name] matches the numerical gradient of f for every
    name in analytic (None entries are skipped). Returns the max abs error per name."""
    names = [k for k, v in analytic.items() if v is not None]
    numeric = numerical_gradient(f, inputs, names, eps)
    errors = {}
    for name in names:
        got, want = np.asarray(analytic[name]), numeric[name]
        if got.shape != want.shape:
            raise GradcheckError(f"{name}: analytic gradient has shape {got.shape}, expected {want.shape}")
        err = np.abs(got - want)
        errors[name] = float(err.max(initial=0.0))
        bad = err > atol + rtol * np.abs(want)
        if bad.any():
            i = tuple(int(k) for k in np.unravel_index(np.argmax(err - rtol * np.abs(want)), err.shape))
            raise GradcheckError(
                f"{name}: {int(bad.sum())} of {err.size} elements differ; worst at {i}: "
                f"analytic {got[i]:.10g}, numerical {want[i]:.10g}")
    return errors


def check_op(forward, backward, inputs, eps=1e-6, rtol=1e-6, atol=1e-8, seed=0, **options):
    """Checks a training forward/backward pair in the shape of the functional API:
    forward(**inputs, training=True, **options) -> (*outputs, saved) and
    backward(saved, *douts) -> dict of gradients keyed by input name.

    The scalar tested is L = sum_k <w_k, outputs_k> with fixed random w_k, whose gradient with
    respect to each output is w_k. Returns the max abs error per input.
    """
    outs = forward(**inputs, training=True, **options)
    saved = outs[-1]
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(o.shape) for o in outs[:-1]]

    def loss(**kw):
        ys = forward(**kw, training=False, **options)
        return sum(float(np.sum(w * y)) for w, y in zip(weights, ys))

    grads = backward(saved, *weights)
    analytic = {k: v for k, v in grads.items() if k in inputs and isinstance(inputs[k], np.ndarray)}
    return gradcheck(loss, inputs, analytic, eps, rtol, atol)
