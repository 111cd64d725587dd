"""Metrics of language models: cross-entropy, perplexity, KL divergence (natural logarithms).

    cross_entropy(logits, targets)     mean -log softmax(logits)[target], in nats
    perplexity(logits, targets)        exp of that; perplexity(loss) for a mean loss in nats
    kl_divergence(p, q)                sum p log(p / q) over the last axis of two distributions
"""
from __future__ import annotations

import math

import numpy as np

from seqkern._checks import as_float_array
from seqkern._ops import softmax_cross_entropy


def cross_entropy(logits, targets, ignore_index=-100):
    """Mean cross-entropy (nats) of softmax(logits (..., V)) against targets (...), rows with
    ignore_index left out; float64 accumulation."""
    return float(softmax_cross_entropy(logits, targets, ignore_index=ignore_index))


def perplexity(logits_or_loss, targets=None, ignore_index=-100):
    """exp(mean cross-entropy): from logits and targets, or from a mean loss in nats. A model
    that spreads its probability evenly over V tokens has perplexity V."""
    if targets is None:
        return math.exp(float(logits_or_loss))
    return math.exp(cross_entropy(logits_or_loss, targets, ignore_index))


def kl_divergence(p, q, reduction="mean"):
    """KL(p || q) = sum_j p_j log(p_j / q_j) over the last axis of probability arrays
    (...,  V); terms with p_j = 0 count zero. reduction: "none" gives (...), "sum" the total,
    "mean" the mean over the leading axes (torch's "batchmean")."""
    p, q = as_float_array("p", p), as_float_array("q", q)
    if p.shape != q.shape or p.ndim < 1:
        raise ValueError(f"q: expected the shape of p, {p.shape}, got {q.shape}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("p, q: expected probabilities (no negative values)")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    kl = terms.sum(axis=-1)
    if reduction == "none":
        return kl
    if reduction == "sum":
        return float(kl.sum())
    if reduction == "mean":
        return float(kl.mean())
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
