"""CUDA arrays through the rest of the functional API: softmax_cross_entropy, embedding,
attention and ctc_loss, and their backward, run on seqkern._cuda's kernels when the op's float
array (logits, weight or dweight, query, log_probs) is a CUDA array, torch's or CuPy's
(seqkern._device's adapters).

Ids, targets and lengths may be host or device arrays. They are checked on the host, as on the
CPU path (a device array is copied there), then sent to the device. The float arrays stay on the
device; outputs are arrays of the caller's library on its device, queued on its current stream.
The general and additive scores' products run on seqkern._cuda's GEMM. Results repeat bit for
bit: no kernel uses atomics.
"""
from __future__ import annotations

import math

import numpy as np

from seqkern import _device
from seqkern._device import kernel
from seqkern._checks import (
    Saved, as_ids, attention_args, check_dcontext, check_saved, cross_entropy_args,
    ctc_args, ctc_scale, host_array, loss_scale,
)


def _host_dtype(arrays, a):
    return np.dtype(np.float64 if arrays.is_double(a) else np.float32)


def _in_place(arrays, name, a, dtype, like):
    """a itself, checked to be a C-contiguous, aligned float array of `dtype` that a kernel can
    write."""
    checked = arrays.float_array(name, a, dtype, like=like)
    if arrays.ptr(checked) != arrays.ptr(a):  # float_array made a contiguous or aligned copy
        raise ValueError(f"{name}: expected a C-contiguous, aligned array (it is written in "
                         "place)")
    return checked


def softmax_cross_entropy(logits, targets, ignore_index, reduction, label_smoothing, training):
    arrays = _device._arrays_like(logits, "logits")
    a = cross_entropy_args(logits, targets, ignore_index, reduction, label_smoothing, arrays)
    cuda, (N, V), dt = _device._backend(), a.logits.shape, a.logits.dtype
    targets = arrays.asarray(a.targets)
    losses, lse = arrays.empty((N,), dt), arrays.empty((N,), dt)
    p = arrays.ptr
    kernel(cuda, "cross_entropy_forward", arrays, a.logits)(
        arrays.index(), arrays.stream(), N, V, p(a.logits), p(targets), a.ignore_index,
        a.label_smoothing, p(losses), p(lse))
    if a.reduction == "none":
        loss = losses.reshape(a.shape)
    else:  # "mean" over the rows not ignored (NaN if none), as reduce_losses
        count = int(np.count_nonzero(a.targets != a.ignore_index))
        loss = arrays.reduced(losses, (count or math.nan) if a.reduction == "mean" else 1)
    if not training:
        return loss
    return loss, Saved("softmax_cross_entropy", "cuda", a, lse=lse, targets=targets,
                       arrays=arrays)


def softmax_cross_entropy_backward(saved, dloss, out):
    check_saved(saved, "softmax_cross_entropy", "cuda")
    a, arrays, cuda = saved.args, saved.arrays, _device._backend()
    (N, V), dt = a.logits.shape, a.logits.dtype
    scale = loss_scale(a, host_array(dloss, arrays), _host_dtype(arrays, a.logits))  # (N,), host
    per_row = a.reduction == "none"
    scale = arrays.asarray(scale if per_row else scale[:1])
    if out is None:
        out = arrays.empty((N, V), dt)
    else:
        out = _in_place(arrays, "out", out, dt, "logits")
        if math.prod(out.shape) != N * V:
            raise ValueError(f"out: expected {N * V} values like the logits, got {tuple(out.shape)}")
    p = arrays.ptr
    kernel(cuda, "cross_entropy_backward", arrays, a.logits)(
        arrays.index(), arrays.stream(), N, V, p(a.logits), p(saved.targets), a.ignore_index,
        a.label_smoothing, p(saved.lse), p(scale), per_row, p(out))
    return out.reshape(*a.shape, V)


def embedding(weight, ids):
    arrays = _device._arrays_like(weight, "weight")
    weight = arrays.float_array("weight", weight, like="weight")
    if weight.ndim != 2:
        raise ValueError(f"weight: expected shape (num_embeddings, embedding_dim), got "
                         f"{tuple(weight.shape)}")
    (V, D), host = weight.shape, host_array(ids, arrays)
    flat = as_ids("ids", host.reshape(-1), V)
    out = arrays.empty((flat.size, D), weight.dtype)
    p = arrays.ptr
    kernel(_device._backend(), "embedding_forward", arrays, weight)(
        arrays.index(), arrays.stream(), flat.size, D, p(weight), p(arrays.asarray(flat)), p(out))
    return out.reshape(*host.shape, D)


def embedding_backward(ids, dy, dweight, padding_idx, overwrite):
    """The positions of each row are grouped here, on the host, in ascending order: the kernel
    then adds them in the CPU kernel's order, without atomics."""
    arrays = _device._arrays_like(dweight, "dweight")
    dweight = _in_place(arrays, "dweight", dweight, None, "dweight")
    if dweight.ndim != 2:
        raise ValueError("dweight: expected a C-contiguous array (num_embeddings, embedding_dim)")
    (V, D), host = dweight.shape, host_array(ids, arrays)
    flat = as_ids("ids", host.reshape(-1), V)
    dy = arrays.float_array("dy", dy, dweight.dtype, like="dweight")
    if tuple(dy.shape) != (*host.shape, D):
        raise ValueError(f"dy: expected shape ids.shape + (embedding_dim,) = "
                         f"{(*host.shape, D)}, got {tuple(dy.shape)}")
    if overwrite:
        arrays.fill_zeros(dweight)
    positions = np.flatnonzero(flat != (-1 if padding_idx is None else padding_idx))
    order = positions[np.argsort(flat[positions], kind="stable")]
    rows, starts = np.unique(flat[order], return_index=True)
    starts = np.append(starts, order.size).astype(np.int64)
    p = arrays.ptr
    kernel(_device._backend(), "embedding_backward", arrays, dweight)(
        arrays.index(), arrays.stream(), rows.size, D, p(dy), p(arrays.asarray(order)),
        p(arrays.asarray(starts)), p(arrays.asarray(rows)), p(dweight))
    return dweight


def _matmul(cuda, arrays, a, b, trans_b=False):
    """a (..., K) @ b (K, N) (or b^T when trans_b) on seqkern._cuda's GEMM: (..., N)."""
    K, N = a.shape[-1], b.shape[0] if trans_b else b.shape[1]
    out = arrays.empty((*a.shape[:-1], N), a.dtype)
    kernel(cuda, "matmul", arrays, a)(arrays.index(), arrays.stream(), False, trans_b,
                                       math.prod(a.shape[:-1]), N, K, arrays.ptr(a),
                                       arrays.ptr(b), arrays.ptr(out))
    return out


def _matmul_tn(cuda, arrays, a, b):
    """a^T b over the rows of a (..., M) and b (..., N): (M, N), a weight's gradient."""
    M, N = a.shape[-1], b.shape[-1]
    out = arrays.empty((M, N), a.dtype)
    kernel(cuda, "matmul", arrays, a)(arrays.index(), arrays.stream(), True, False, M, N,
                                       math.prod(a.shape[:-1]), arrays.ptr(a), arrays.ptr(b),
                                       arrays.ptr(out))
    return out


def attention(query, keys, values, lengths, score, w, w_q, w_k, v, scale, return_weights,
              training):
    arrays = _device._arrays_like(query, "query")
    a = attention_args(query, keys, values, lengths, score, w, w_q, w_k, v, scale, arrays)
    cuda, p = _device._backend(), arrays.ptr
    (B, Tq, _), Tk, Hv, dt = a.query.shape, a.keys.shape[1], a.values.shape[2], a.query.dtype
    if a.score == "additive":
        kept = {"pq": _matmul(cuda, arrays, a.query, a.w_q, trans_b=True),
                "pk": _matmul(cuda, arrays, a.keys, a.w_k, trans_b=True)}
        scores = (p(kept["pq"]), p(kept["pk"]), p(a.v))
        H = a.w_q.shape[0]
    else:
        kept = {"q": _matmul(cuda, arrays, a.query, a.w) if a.score == "general" else a.query}
        scores = (p(kept["q"]), p(a.keys), a.scale)
        H = a.keys.shape[2]
    shape = (B, Tq, Tk, H, Hv)
    context, lse = arrays.empty((B, Tq, Hv), dt), arrays.empty((B, Tq), dt)
    weights = arrays.empty((B, Tq, Tk), dt) if return_weights else None
    kernel(cuda, "attention_forward", arrays, a.query)(
        arrays.index(), arrays.stream(), a.score == "additive", shape, scores, p(a.values),
        p(a.lengths), (p(context), p(lse), p(weights)))
    if not training:
        return context, weights
    return context, weights, Saved("attention", "cuda", a, context=context, lse=lse,
                                   shape=shape, arrays=arrays, **kept)


def attention_backward(saved, dcontext):
    check_saved(saved, "attention", "cuda")
    a, arrays, cuda = saved.args, saved.arrays, _device._backend()
    dc, dt, p = check_dcontext(a, dcontext, arrays), a.query.dtype, arrays.ptr
    additive = a.score == "additive"
    if additive:
        q, k = saved.pq, saved.pk
        scores = (p(q), p(k), p(a.v))
    else:
        q, k = saved.q, a.keys
        scores = (p(q), p(k), a.scale)
    dq, dk = arrays.empty(tuple(q.shape), dt), arrays.empty(tuple(k.shape), dt)
    # dot and general scores with values=None: the kernel sums both of the keys' gradients
    shared = a.keys_are_values and not additive
    dv = dk if shared else arrays.empty(tuple(a.values.shape), dt)
    du = arrays.empty(tuple(a.v.shape), dt) if additive else None
    workspace = arrays.empty((cuda.attention_backward_workspace(saved.shape, additive),), dt)
    kernel(cuda, "attention_backward", arrays, a.query)(
        arrays.index(), arrays.stream(), additive, saved.shape, scores, p(a.values),
        p(a.lengths), (p(saved.context), p(saved.lse), p(dc)), (p(dq), p(dk), p(dv), p(du)),
        p(workspace))
    g = {"query": dq, "keys": dk}
    if additive:
        g["query"], g["keys"] = _matmul(cuda, arrays, dq, a.w_q), _matmul(cuda, arrays, dk, a.w_k)
        if a.keys_are_values:
            g["keys"] = g["keys"] + dv
        g.update(w_q=_matmul_tn(cuda, arrays, dq, a.query), w_k=_matmul_tn(cuda, arrays, dk, a.keys),
                 v=du)
    elif a.score == "general":
        g["query"] = _matmul(cuda, arrays, dq, a.w, trans_b=True)
        g["w"] = _matmul_tn(cuda, arrays, a.query, dq)
    if not a.keys_are_values:
        g["values"] = dv
    return {k: g[k] for k in ("query", "keys", "values", "w", "w_q", "w_k", "v") if k in g}


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity,
             training):
    arrays = _device._arrays_like(log_probs, "log_probs")
    a = ctc_args(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                 zero_infinity, arrays)
    cuda, p = _device._backend(), arrays.ptr
    (T, B, C), dt = a.log_probs.shape, a.log_probs.dtype
    L = 2 * int(a.target_lengths.max(initial=0)) + 1
    labels = tuple(arrays.asarray(x) for x in (a.targets, a.offsets, a.input_lengths,
                                               a.target_lengths))
    losses, log_alpha = arrays.empty((B,), dt), arrays.empty((B, T, L), dt)
    kernel(cuda, "ctc_forward", arrays, a.log_probs)(
        arrays.index(), arrays.stream(), (T, B, C, L), p(a.log_probs), tuple(map(p, labels)),
        a.blank, p(losses), p(log_alpha))
    loss = arrays.empty((B,) if reduction == "none" else (), dt)
    kernel(cuda, "ctc_reduce", arrays, a.log_probs)(
        arrays.index(), arrays.stream(), B, p(losses), p(labels[3]),
        {"none": 0, "sum": 1, "mean": 2}[reduction], a.zero_infinity, p(loss))
    if not training:
        return loss
    return loss, Saved("ctc_loss", "cuda", a, losses=losses, log_alpha=log_alpha, labels=labels,
                       L=L, arrays=arrays)


def ctc_loss_backward(saved, dloss):
    check_saved(saved, "ctc_loss", "cuda")
    a, arrays, cuda, p = saved.args, saved.arrays, _device._backend(), saved.arrays.ptr
    (T, B, C), dt = a.log_probs.shape, a.log_probs.dtype
    scale = arrays.asarray(ctc_scale(a, None, host_array(dloss, arrays),
                                     _host_dtype(arrays, a.log_probs)))
    shape = (T, B, C, saved.L)
    grad = arrays.empty((T, B, C), dt)
    workspace = arrays.empty((cuda.ctc_backward_workspace(*shape),), dt)
    kernel(cuda, "ctc_backward", arrays, a.log_probs)(
        arrays.index(), arrays.stream(), shape, p(a.log_probs), tuple(map(p, saved.labels)),
        a.blank, p(saved.losses), p(saved.log_alpha), p(scale), p(grad), p(workspace))
    return {"log_probs": grad}
