"""Gradient utilities for the layers' grads dicts."""
import numpy as np

from seqkern import _core


def clip_grads(grads, max_norm):
    """Scales every gradient in place so that their joint L2 norm is at most max_norm.

    grads: a dict of arrays (a layer's .grads) or an iterable of arrays. Returns the total norm
    before clipping, as torch.nn.utils.clip_grad_norm_ does. The sum of squares runs in C++ in
    double precision, over fixed blocks (reproducible for any thread count)."""
    arrays = list(grads.values()) if isinstance(grads, dict) else list(grads)
    if not max_norm > 0:
        raise ValueError(f"max_norm: expected a positive number, got {max_norm!r}")
    total = float(np.sqrt(sum(_sum_squares(g) for g in arrays)))
    rate = max_norm / (total + 1e-6)
    if rate < 1.0:
        for g in arrays:
            g *= g.dtype.type(rate)
    return total


def _sum_squares(g):
    if isinstance(g, np.ndarray) and g.dtype in (np.float32, np.float64) and g.flags.c_contiguous:
        return _core.sum_squares(g.reshape(-1))
    return float(np.sum(np.square(g, dtype=np.float64)))
