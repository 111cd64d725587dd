"""Decoding CTC outputs: best path (greedy) and prefix beam search (Hannun et al. 2014).

    sk.ctc_greedy_decode(log_probs, input_lengths, blank=0)         # -> [[labels], ...]
    sk.ctc_beam_search(log_probs, input_lengths, beam_width=8)      # -> ([[labels]], [log p])

log_probs (T, B, C) as for sk.ctc_loss; only each sequence's first input_lengths[b] frames count.
"""
from __future__ import annotations

import numpy as np

from seqkern import _core
from seqkern._checks import check_count, ctc_log_probs


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
    log-likelihood of its sequence. In C++, the sequences shared between the threads
    (csrc/cpu/ctc_decoding.cc); seqkern.reference.ctc_beam_search is its NumPy twin."""
    check_count("beam_width", beam_width)
    lp, lengths = ctc_log_probs(log_probs, input_lengths, blank)
    labels, scores = _core.ctc_beam_search(np.ascontiguousarray(lp, dtype=np.float64),
                                           np.ascontiguousarray(lengths, dtype=np.int64),
                                           int(beam_width), int(blank))
    return labels, scores
