"""Small helpers of the NumPy twins."""
import numpy as np

from seqkern._checks import check_saved, incoming_grads


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def round_bf16(a):
    """float32 a rounded to the nearest bfloat16 (ties to even; NaN stays NaN), as float32."""
    b = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    quiet = ((b >> 16 | 0x40) << 16).astype(np.uint32)
    return np.where(np.isnan(a), quiet, rounded).view(np.float32)


def product(a, w, precision):
    """a @ w.T: at precision bfloat16, both rounded first (the products are then exact in
    float32 and only the sums round)."""
    if precision == "bfloat16":
        return round_bf16(a) @ round_bf16(w).T
    return a @ w.T


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
