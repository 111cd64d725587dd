"""Metrics of language models: cross-entropy, perplexity, KL divergence (natural logarithms).

    cross_entropy(logits, targets)     mean -log softmax(logits)[target], in nats
    perplexity(logits, targets)        exp of that; perplexity(loss) for a mean loss in nats
    kl_divergence(p, q)                sum p log(p / q) over the last axis of two distributions
    corpus_bleu(hyps, refs)            BLEU of token lists; sentence_bleu for one hypothesis
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from seqkern._checks import as_float_array, check_count
from seqkern._ops import softmax_cross_entropy


def cross_entropy(logits, targets, ignore_index=-100):
    """Mean cross-entropy (nats) of softmax(logits (..., V)) against targets (...), rows with
    ignore_index left out; float64 accumulation."""
    return float(softmax_cross_entropy(logits, targets, ignore_index=ignore_index))


def perplexity(logits_or_loss, targets=None, ignore_index=-100):
    """exp(mean cross-entropy): from logits and targets, or from a mean loss in nats. A model
    that spreads its probability evenly over V tokens has perplexity V."""
    if targets is None:
        if np.ndim(logits_or_loss) != 0:
            raise ValueError("targets: needed with logits; perplexity(loss) takes a scalar loss")
        loss = float(logits_or_loss)
    else:
        loss = cross_entropy(logits_or_loss, targets, ignore_index)
    # a diverged model: inf, not OverflowError; a NaN loss stays NaN
    return math.inf if loss >= 709.0 else math.exp(loss)


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


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


SMOOTHING = (None, "method1", "method2", "method3")


def corpus_bleu(hypotheses, references, max_n=4, smoothing=None):
    """BLEU (Papineni et al. 2002) of a corpus: hypotheses is a list of token lists, references
    a list (one entry per hypothesis) of lists of reference token lists. Modified n-gram
    precisions (counts clipped by the most any one reference has) are pooled over the corpus for
    n = 1..max_n and combined by their geometric mean, times the brevity penalty exp(1 - r/c)
    when the total hypothesis length c is below r, the sum of each hypothesis' closest reference
    length (the shorter on a tie). smoothing (Chen & Cherry 2014) for n-gram orders with no
    match: None (BLEU is then 0), "method1" (0.1 matches instead of 0), "method2" (one added to
    the matches and the counts of orders 2 and up), "method3" (1/2^k for the k-th order with no
    match). Returns a float in [0, 1]."""
    if smoothing not in SMOOTHING:
        raise ValueError(f"smoothing: expected one of {SMOOTHING}, got {smoothing!r}")
    check_count("max_n", max_n)
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"references: expected one entry per hypothesis ({len(hypotheses)}), "
                         f"got {len(references)}")
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for hyp, refs in zip(hypotheses, references):
        # a string would count its characters as tokens: almost always a missing split()
        if isinstance(hyp, str) or isinstance(refs, str) or any(isinstance(x, str) for x in refs):
            raise TypeError("hypotheses, references: expected lists of tokens, got a str "
                            "(split it into words, or list() it to score characters)")
        hyp, refs = list(hyp), [list(x) for x in refs]
        if not refs:
            raise ValueError("references: every hypothesis needs at least one reference")
        c += len(hyp)
        r += min((abs(len(x) - len(hyp)), len(x)) for x in refs)[1]
        for n in range(1, max_n + 1):
            counts = _ngrams(hyp, n)
            most = Counter()
            for x in refs:
                most |= _ngrams(x, n)
            matches[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if c == 0 or matches[0] == 0:  # no word in common: 0 under any smoothing (as nltk)
        return 0.0
    logs, misses = [], 0
    for n in range(max_n):
        m, t = float(matches[n]), float(totals[n])
        if smoothing == "method2" and n > 0:
            m, t = m + 1, t + 1
        if m == 0:
            if smoothing is None or t == 0:
                return 0.0
            misses += 1
            m = 0.1 if smoothing == "method1" else 1.0 / 2 ** misses
        logs.append(math.log(m / t))
    bp = 1.0 if c >= r else math.exp(1 - r / c)
    return bp * math.exp(sum(logs) / max_n)


def sentence_bleu(hypothesis, references, max_n=4, smoothing=None):
    """BLEU of one hypothesis (a token list) against its references (a list of token lists)."""
    return corpus_bleu([hypothesis], [references], max_n, smoothing)
