"""Small helpers of the NumPy twins."""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def active(args):
    """(T, B, 1) bool: step t of sequence b runs (t < lengths[b])."""
    t = np.arange(args.T)[:, None]
    lengths = args.lengths if args.lengths is not None else np.full(args.B, args.T)
    return (t < lengths[None, :])[:, :, None]


def bias(b, n, dtype):
    """An optional bias as an array (zeros when absent)."""
    return b if b is not None else np.zeros(n, dtype)


def zeros_if_none(a, shape, dtype):
    return np.zeros(shape, dtype) if a is None else a


def bias_grads(args, db_ih, db_hh):
    """Bias gradients, None for a bias the forward did not have."""
    return (db_ih if args.b_ih is not None else None, db_hh if args.b_hh is not None else None)
