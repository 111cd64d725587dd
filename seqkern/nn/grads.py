"""Gradient utilities for the layers' grads dicts."""
import numpy as np


def clip_grads(grads, max_norm):
    """Scales every gradient in place so that their joint L2 norm is at most max_norm.

    grads: a dict of arrays (a layer's .grads) or an iterable of arrays. Returns the total norm
    before clipping, as torch.nn.utils.clip_grad_norm_ does."""
    arrays = list(grads.values()) if isinstance(grads, dict) else list(grads)
    if not max_norm > 0:
        raise ValueError(f"max_norm: expected a positive number, got {max_norm!r}")
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in arrays)))
    rate = max_norm / (total + 1e-6)
    if rate < 1.0:
        for g in arrays:
            g *= rate
    return total
