"""The two vector helpers gensim's queries are built on (gensim.matutils' unitvec and argsort)."""
from __future__ import annotations

import numpy as np


def unitvec(v):
    """v / |v| in v's dtype (zero stays zero), as gensim makes it: its BLAS calls (dnrm2, dscal)
    take a float64 copy, so the length and the product by its reciprocal are float64 whatever
    v's dtype, rounded to it at the end. Dividing v itself differed by an ulp under NumPy 1.x,
    whose promotion keeps a float32 vector in float32 against a float64 scalar: enough to order
    most_similar's tied neighbours otherwise than gensim."""
    v = np.asarray(v)
    v64 = v.astype(np.float64)
    norm = np.sqrt(np.dot(v64, v64))
    if not norm > 0:
        return v
    return (v64 * (1.0 / norm)).astype(v.dtype if v.dtype.kind == "f" else np.float64)


def top_indices(scores, topn):
    """Indices of the topn largest scores, largest first."""
    x = -scores
    if topn >= len(x):
        return np.argsort(x)
    best = np.argpartition(x, topn)[:topn]
    return best.take(np.argsort(x.take(best)))
