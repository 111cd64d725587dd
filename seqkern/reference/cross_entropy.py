"""NumPy twin of seqkern.softmax_cross_entropy / softmax_cross_entropy_backward."""
import numpy as np

from seqkern._checks import (
    Saved, check_saved, cross_entropy_args, loss_scale, reduce_losses,
)


def log_softmax(x):
    """log softmax over the last axis, shifted by the row max so exp never overflows."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits, targets, ignore_index=-100, reduction="mean",
                          label_smoothing=0.0, training=False):
    a = cross_entropy_args(logits, targets, ignore_index, reduction, label_smoothing)
    N, V = a.logits.shape
    eps = a.label_smoothing
    logp = log_softmax(a.logits)
    kept = a.targets != a.ignore_index
    rows = np.flatnonzero(kept)
    q = np.full((N, V), eps / V, a.logits.dtype)          # the target distribution
    q[rows, a.targets[kept]] += 1.0 - eps
    # -sum_j q_j log p_j over the rows kept; q_j = 0 terms left out, as torch's nll_loss leaves
    # them (a logit of -inf, a class masked out, would make them 0 * -inf = NaN)
    losses = np.zeros(N, a.logits.dtype)
    losses[rows] = -(1.0 - eps) * logp[rows, a.targets[kept]]
    if eps:
        losses[rows] -= eps / V * logp[rows].sum(axis=1)
    loss = reduce_losses(a, losses.astype(a.logits.dtype))
    if not training:
        return loss
    return loss, Saved("softmax_cross_entropy", "reference", a, probs=np.exp(logp), q=q, kept=kept)


def softmax_cross_entropy_backward(saved, dloss=1.0, out=None):
    check_saved(saved, "softmax_cross_entropy", "reference")
    a = saved.args
    scale = loss_scale(a, dloss)
    g = (saved.probs - saved.q) * (scale * saved.kept)[:, None]
    if out is not None:
        out.reshape(g.shape)[...] = g
        g = out
    return g.reshape(*a.shape, a.logits.shape[1])
