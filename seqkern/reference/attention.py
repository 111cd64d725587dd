"""NumPy twin of seqkern.attention / attention_backward: the whole score matrix, masked with
-inf, an ordinary softmax, and the chain rule written out."""
import numpy as np

from seqkern._checks import Saved, attention_args, check_dcontext, check_saved


def _scores(a):
    """(B, Tq, Tk) scores, and what their backward needs."""
    if a.score == "additive":
        t = np.tanh((a.query @ a.w_q.T)[:, :, None, :] + (a.keys @ a.w_k.T)[:, None, :, :])
        return t @ a.v, {"t": t}
    q = a.query @ a.w if a.score == "general" else a.query
    return a.scale * q @ a.keys.transpose(0, 2, 1), {"q": q}


def _mask(a):
    """(B, 1, Tk) bool: the key is inside its sequence."""
    Tk = a.keys.shape[1]
    lengths = a.lengths if a.lengths is not None else np.full(a.keys.shape[0], Tk)
    return (np.arange(Tk)[None, :] < lengths[:, None])[:, None, :]


def attention(query, keys, values=None, lengths=None, score="dot", w=None, w_q=None, w_k=None,
              v=None, scale=None, return_weights=False, training=False):
    a = attention_args(query, keys, values, lengths, score, w, w_q, w_k, v, scale)
    s, parts = _scores(a)
    s = np.where(_mask(a), s, -np.inf)
    p = np.exp(s - s.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    context = p @ a.values
    weights = p if return_weights else None
    if not training:
        return context, weights
    return context, weights, Saved("attention", "reference", a, p=p, **parts)


def attention_backward(saved, dcontext):
    check_saved(saved, "attention", "reference")
    a, p = saved.args, saved.p
    dc = check_dcontext(a, dcontext)
    dv = p.transpose(0, 2, 1) @ dc
    dp = dc @ a.values.transpose(0, 2, 1)
    ds = p * (dp - (p * dp).sum(axis=2, keepdims=True))
    g = {}
    if a.score == "additive":
        t = saved.t                                      # (B, Tq, Tk, A)
        dpre = ds[..., None] * a.v * (1 - t * t)        # d loss / d (pq_i + pk_j)
        dpq, dpk = dpre.sum(axis=2), dpre.sum(axis=1)
        g["query"], g["keys"] = dpq @ a.w_q, dpk @ a.w_k
        g.update(w_q=np.einsum("bia,bih->ah", dpq, a.query),
                 w_k=np.einsum("bja,bjh->ah", dpk, a.keys),
                 v=np.einsum("bij,bija->a", ds, t))
    else:
        dq = a.scale * ds @ a.keys
        g["keys"] = a.scale * ds.transpose(0, 2, 1) @ saved.q
        g["query"] = dq @ a.w.T if a.score == "general" else dq
        if a.score == "general":
            g["w"] = np.einsum("bih,bik->hk", a.query, dq)
    if a.keys_are_values:
        g["keys"] = g["keys"] + dv
    else:
        g["values"] = dv
    return {k: g[k] for k in ("query", "keys", "values", "w", "w_q", "w_k", "v") if k in g}
