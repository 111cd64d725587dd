"""Small helpers of the NumPy twins."""
import numpy as np

from seqkern._checks import check_saved, incoming_grads


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


def backward_inputs(saved, op, dy, dh_n, dc_n=None):
    """Checks a backward call; returns args, the step mask, and dy, dh_n, dc_n as fresh arrays
    (zeros where None) that the backward loop may update in place."""
    check_saved(saved, op, "reference")
    a = saved.args
    dy, dh_n, dc_n = incoming_grads(a, dy, dh_n, dc_n)

    def array(g, shape):
        return np.zeros(shape, a.x.dtype) if g is None else g.copy()

    return a, active(a), array(dy, (a.T, a.B, a.S)), array(dh_n, (a.B, a.S)), array(dc_n, (a.B, a.H))
