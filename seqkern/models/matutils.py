"""The two vector helpers gensim's queries are built on (gensim.matutils' unitvec and argsort)."""
from __future__ import annotations

import numpy as np


def unitvec(v):
    """v / |v| in v's dtype (zero stays zero), the length summed in float64."""
    v = np.asarray(v)
    norm = np.sqrt(np.dot(v.astype(np.float64), v.astype(np.float64)))
    return (v / norm).astype(v.dtype) if norm > 0 else v


def top_indices(scores, topn):
    """Indices of the topn largest scores, largest first."""
    x = -scores
    if topn >= len(x):
        return np.argsort(x)
    best = np.argpartition(x, topn)[:topn]
    return best.take(np.argsort(x.take(best)))
