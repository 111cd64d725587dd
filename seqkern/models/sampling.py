"""Choosing the next token from a model's logits: greedy, or sampled with temperature, top-k
and top-p (nucleus) filtering."""
from __future__ import annotations

import numpy as np


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
    reaches top_p, renormalised, and sampled with rng."""
    logits = np.asarray(logits, dtype=np.float64)
    if greedy:
        return int(np.argmax(logits))
    z = logits / temperature
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p is not None and top_p < 1:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = order[:int(np.searchsorted(cum, top_p)) + 1]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(p.size, p=p))
