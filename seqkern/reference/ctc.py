"""NumPy twin of seqkern.ctc_loss / ctc_loss_backward: the alpha and beta recursions written
out, one sequence at a time, in log space."""
import numpy as np

from seqkern._checks import (
    Saved, check_count, check_saved, ctc_args, ctc_log_probs, ctc_reduce, ctc_scale,
)


def _extended(a, b):
    labels = a.targets[a.offsets[b]:a.offsets[b] + a.target_lengths[b]]
    ext = np.full(2 * len(labels) + 1, a.blank)
    ext[1::2] = labels
    return ext


def _alpha_beta(lp, ext, blank):
    """lp (Ti, C) of one sequence -> log alpha and log beta (Ti, L)."""
    Ti, L = lp.shape[0], len(ext)
    la, lb = np.full((Ti, L), -np.inf), np.full((Ti, L), -np.inf)
    la[0, :min(2, L)] = lp[0, ext[:min(2, L)]]
    lb[-1, max(0, L - 2):] = lp[-1, ext[max(0, L - 2):]]
    for t in range(1, Ti):
        for s in range(L):
            terms = [la[t - 1, s]] + ([la[t - 1, s - 1]] if s >= 1 else [])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(la[t - 1, s - 2])
            la[t, s] = np.logaddexp.reduce(terms) + lp[t, ext[s]]
    for t in range(Ti - 2, -1, -1):
        for s in range(L):
            terms = [lb[t + 1, s]] + ([lb[t + 1, s + 1]] if s + 1 < L else [])
            if s + 2 < L and ext[s] != blank and ext[s] != ext[s + 2]:
                terms.append(lb[t + 1, s + 2])
            lb[t, s] = np.logaddexp.reduce(terms) + lp[t, ext[s]]
    return la, lb


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False, training=False):
    a = ctc_args(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                 zero_infinity)
    T, B, C = a.log_probs.shape
    losses = np.empty(B, a.log_probs.dtype)
    grads = np.zeros((T, B, C))  # d losses_b / d log_probs, unscaled
    with np.errstate(invalid="ignore"):
        for b in range(B):
            Ti, ext = a.input_lengths[b], _extended(a, b)
            if Ti == 0:
                losses[b] = 0.0 if len(ext) == 1 else np.inf
                continue
            lp = a.log_probs[:Ti, b].astype(np.float64)
            la, lb = _alpha_beta(lp, ext, a.blank)
            nll = -np.logaddexp.reduce(la[-1, -2:] if len(ext) > 1 else la[-1, -1:])
            losses[b] = nll
            if not np.isfinite(nll):
                continue
            for c in set(ext.tolist()):
                lcab = np.logaddexp.reduce(la[:, ext == c] + lb[:, ext == c], axis=1)
                grads[:Ti, b, c] = -np.exp(lcab + nll - lp[:, c])
    loss = ctc_reduce(a, losses)
    if not training:
        return loss
    return loss, Saved("ctc_loss", "reference", a, losses=losses, grads=grads)


def ctc_loss_backward(saved, dloss=1.0):
    check_saved(saved, "ctc_loss", "reference")
    a = saved.args
    scale = ctc_scale(a, saved.losses, dloss)
    scale = np.where(np.isfinite(saved.losses), scale, 0.0)
    g = saved.grads * scale[None, :, None]
    return {"log_probs": g.astype(a.log_probs.dtype)}


def ctc_beam_search(log_probs, input_lengths, beam_width=8, blank=0):
    """Twin of seqkern.ctc_beam_search: the prefix beam search over label tuples, a dict of them
    per frame (ties in the ranking to the prefix reached first)."""
    check_count("beam_width", beam_width)
    lp, lengths = ctc_log_probs(log_probs, input_lengths, blank)
    lp = lp.astype(np.float64)
    add = np.logaddexp
    sequences, scores = [], []
    for b, n in enumerate(lengths):
        beams = {(): (0.0, -np.inf)}  # prefix -> (log p ending in blank, log p ending in label)
        for t in range(n):
            frame = lp[t, b]
            top = [int(c) for c in np.argsort(-frame, kind="stable")[:beam_width] if c != blank]
            new = {}

            def put(prefix, pb=-np.inf, pl=-np.inf):
                old = new.get(prefix, (-np.inf, -np.inf))
                new[prefix] = (add(old[0], pb), add(old[1], pl))

            for prefix, (pb, pl) in beams.items():
                total = add(pb, pl)
                put(prefix, pb=total + frame[blank])
                last = prefix[-1] if prefix else None
                for c in set(top) | ({last} if last is not None else set()):
                    if c == last:
                        put(prefix, pl=pl + frame[c])            # the label held on
                        put(prefix + (c,), pl=pb + frame[c])     # the label again after a blank
                    else:
                        put(prefix + (c,), pl=total + frame[c])
            ranked = sorted(new.items(), key=lambda kv: -add(*kv[1]))
            beams = dict(ranked[:beam_width])
        prefix, (pb, pl) = max(beams.items(), key=lambda kv: add(*kv[1]))
        sequences.append(list(prefix))
        scores.append(float(add(pb, pl)))
    return sequences, np.array(scores)
