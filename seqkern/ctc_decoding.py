"""Decoding CTC outputs: best path (greedy) and prefix beam search (Hannun et al. 2014).

    sk.ctc_greedy_decode(log_probs, input_lengths, blank=0)         # -> [[labels], ...]
    sk.ctc_beam_search(log_probs, input_lengths, beam_width=8)      # -> ([[labels]], [log p])

log_probs (T, B, C) as for sk.ctc_loss; only each sequence's first input_lengths[b] frames count.
"""
from __future__ import annotations

import numpy as np

from seqkern._checks import ctc_log_probs


def ctc_greedy_decode(log_probs, input_lengths, blank=0):
    """The most likely class of each frame, repeats collapsed and blanks removed."""
    lp, lengths = ctc_log_probs(log_probs, input_lengths, blank)
    best = lp.argmax(axis=2)  # (T, B)
    out = []
    for b, n in enumerate(lengths):
        path = best[:n, b]
        keep = np.ones(n, bool)
        keep[1:] = path[1:] != path[:-1]
        out.append([int(c) for c in path[keep] if c != blank])
    return out


def ctc_beam_search(log_probs, input_lengths, beam_width=8, blank=0):
    """Prefix beam search: each prefix keeps the log-probability of its paths ending in a blank
    and in a label, merged over paths that collapse to it; the beam_width most probable prefixes
    survive each frame, and at each frame only the beam_width most likely classes (and the
    prefix's last label) extend them. Returns (best label lists, their log-probabilities); each
    log-probability sums only paths the search kept, so it never exceeds the exact CTC
    log-likelihood of its sequence."""
    if not isinstance(beam_width, (int, np.integer)) or beam_width < 1:
        raise ValueError(f"beam_width: expected a positive integer, got {beam_width!r}")
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
