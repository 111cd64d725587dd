"""Choosing the next token from a model's logits: greedy, or sampled with temperature, top-k
and top-p (nucleus) filtering."""
from __future__ import annotations

import numpy as np

from seqkern import _core


def check_sampling(temperature, top_k, top_p):
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k: expected a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p: expected a number in (0, 1] or None, got {top_p!r}")


def next_token(logits, rng, temperature=1.0, top_k=None, top_p=None, greedy=False):
    """One token id from logits (V,). greedy takes the argmax; otherwise softmax(logits / T)
    restricted to the top_k most likely tokens and then to the smallest set whose probability
    reaches top_p, renormalised, and sampled with rng. None where the logits give no
    distribution: a NaN among them, or a largest one that is not finite (a diverged model)."""
    logits = np.asarray(logits)
    if logits.dtype != np.float32:  # a model's own logits stay float32 until the subtraction
        logits = logits.astype(np.float64, copy=False)
    best = int(np.argmax(logits))  # the first NaN, if any
    if not np.isfinite(logits[best]):
        return None
    if greedy:
        return best
    # <= 0, so exp cannot overflow, however small T; computed in float64 (dividing by 1 changes
    # nothing, and is skipped), in place from here on
    z = np.subtract(logits, logits[best], dtype=np.float64)
    if temperature != 1:
        z /= temperature
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z, out=z)
    p /= p.sum()
    if top_p is not None and top_p < 1:
        keep = _nucleus(p, top_p)
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    # one uniform draw through the cumulative distribution: Generator.choice(p=p)'s own method
    # (the same tokens for a seed) without its checks of p, which took half of a 10,000-word
    # token's sampling (110 against 51 us), and with NumPy's running sums and search done in
    # C++ (_core.cdf_search: the same index; NumPy's cumsum alone took 37 us)
    return int(_core.cdf_search(p, rng.random()))


def best_first(row, n):
    """The head of np.argsort(-row, kind="stable") that holds its n largest values: those
    indices (and any that tie with the n-th), largest first, ties in index order, without
    sorting the rest."""
    if n >= row.size:
        return np.argsort(-row, kind="stable")
    nth = np.partition(row, row.size - n)[row.size - n]
    top = np.flatnonzero(row >= nth)
    return top[np.argsort(-row[top], kind="stable")]


def _nucleus(p, top_p):
    """The most likely tokens, in order, up to and including the first whose cumulative
    probability reaches top_p. Read from heads of the order, 64 tokens, then 16 times as many
    when those could reach top_p (none more likely than the last so far), else all of them, the
    cumulative sums being the same: sorting all of a 10,000-word vocabulary took 0.9 ms a token,
    and a trained model's nucleus is seldom that wide."""
    n = 64
    while True:
        head = best_first(p, n)
        cum = np.cumsum(p[head])
        end = int(np.searchsorted(cum, top_p))
        if end < len(head) or len(head) == p.size:
            return head[:end + 1]
        n = 16 * len(head)
        if cum[-1] + (n - len(head)) * p[head[-1]] < top_p:
            n = p.size
