"""Cases the CUDA tests of softmax cross-entropy, embedding and attention share (on a GPU:
tests/test_cuda_ops.py; on the CPU emulator: tests/test_cuda_emulated.py). Each `*_step` runs one
op forward and backward through `module` (seqkern with device arrays, or the NumPy twins in
seqkern.reference) and returns NumPy results: dev(a) makes the op's arrays, host(a) brings the
results back."""
import numpy as np

from cuda_cases import assert_close


# (N, V): one row and one class, a row shorter than a block's 256 threads, rows longer than it
CROSS_ENTROPY = [(1, 1), (7, 5), (33, 300), (4, 1000)]


def cross_entropy_step(module, N, V, dtype, seed, reduction="mean", label_smoothing=0.0,
                       ignored=False, dev=np.asarray, host=np.asarray, dloss_on_device=False):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, V)) * 3).astype(dtype)
    targets = rng.integers(0, V, N)
    if ignored:
        targets[::3] = -100
    dloss = rng.standard_normal(N).astype(dtype) if reduction == "none" else np.asarray(0.7, dtype)
    loss, saved = module.softmax_cross_entropy(dev(logits), targets, reduction=reduction,
                                               label_smoothing=label_smoothing, training=True)
    d = module.softmax_cross_entropy_backward(saved, dev(dloss) if dloss_on_device else dloss)
    return {"loss": host(loss), "dlogits": host(d)}


# (V, D, ids shape): a single id, columns over a block's 256, repeated ids in a 2-D batch
EMBEDDING = [(1, 1, (1,)), (10, 7, (4, 6)), (50, 300, (13,)), (6, 33, (3, 20))]


def embedding_step(module, V, D, ids_shape, dtype, seed, padding_idx=None, dev=np.asarray,
                   host=np.asarray):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((V, D)).astype(dtype)
    ids = rng.integers(0, V, ids_shape)
    dy = rng.standard_normal((*ids_shape, D)).astype(dtype)
    dweight = rng.standard_normal((V, D)).astype(dtype)  # accumulated into
    y = module.embedding(dev(weight), ids)
    dw = dev(dweight)
    out = module.embedding_backward(ids, dev(dy), dw, padding_idx=padding_idx)
    return {"y": host(y), "dweight": host(out), "in place": host(dw)}


# (B, Tq, Tk, Hq, Hk, Hv): one of each; keys in one chunk and over a chunk of 128 (the kernels'
# block), widths not a multiple of 8 and values wider than a block's 512 columns
ATTENTION = [(1, 1, 1, 3, 3, 2), (3, 4, 7, 5, 5, 6), (2, 3, 130, 16, 16, 9),
             (2, 140, 5, 8, 8, 520), (4, 6, 9, 12, 12, 12)]
SCORES = ["dot", "general", "additive"]


def attention_problem(score, B, Tq, Tk, Hq, Hk, Hv, dtype, seed, lengths=True,
                      keys_are_values=False):
    rng = np.random.default_rng(seed)
    r = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    if score == "dot" or keys_are_values:
        Hk = Hq if score == "dot" else Hk
    Hv = Hk if keys_are_values else Hv
    p = {"query": r(B, Tq, Hq), "keys": r(B, Tk, Hk),
         "values": None if keys_are_values else r(B, Tk, Hv),
         "lengths": rng.integers(1, Tk + 1, B) if lengths else None, "dcontext": r(B, Tq, Hv),
         "weights": {}, "scale": None}
    if score == "dot":
        p["scale"] = 1 / np.sqrt(Hq)
    elif score == "general":
        p["weights"] = {"w": r(Hq, Hk) * 0.5}
    else:
        A = 11
        p["weights"] = {"w_q": r(A, Hq) * 0.5, "w_k": r(A, Hk) * 0.5, "v": r(A)}
    return p


def attention_step(module, score, p, dev=np.asarray, host=np.asarray, return_weights=True):
    ctx, weights, saved = module.attention(
        dev(p["query"]), dev(p["keys"]), None if p["values"] is None else dev(p["values"]),
        lengths=p["lengths"], score=score, scale=p["scale"], return_weights=return_weights,
        training=True, **{k: dev(w) for k, w in p["weights"].items()})
    g = module.attention_backward(saved, dev(p["dcontext"]))
    out = {"context": host(ctx), **{"d" + k: host(v) for k, v in g.items()}}
    if return_weights:
        out["weights"] = host(weights)
    return out


def assert_results_same(want, got, dtype):
    assert sorted(want) == sorted(got)
    for k in want:
        assert_close(np.asarray(got[k]), np.asarray(want[k]), dtype, k)


# (T, B, C, S): one step, one class besides blank; a batch with repeated labels, lengths 0 and
# sequences too short for their targets (infinite losses); L = 2S + 1 over a block's 256 threads
CTC = [(1, 1, 2, 1), (12, 5, 4, 4), (30, 3, 6, 130)]


def ctc_step(module, T, B, C, S, dtype, seed, reduction="mean", zero_infinity=False,
             padded=True, dev=np.asarray, host=np.asarray, dloss_on_device=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, C))
    log_probs = (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)
    target_lengths = rng.integers(0, S + 1, B)
    target_lengths[0] = S
    input_lengths = rng.integers(0, T + 1, B)
    input_lengths[0] = T
    targets = rng.integers(1, min(C, 3) if S > 2 else C, (B, S))  # few classes: repeats
    if not padded:
        targets = np.concatenate([targets[b, :n] for b, n in enumerate(target_lengths)])
    dloss = rng.standard_normal(B).astype(dtype) if reduction == "none" else np.asarray(0.6, dtype)
    loss, saved = module.ctc_loss(dev(log_probs), targets, input_lengths, target_lengths,
                                  reduction=reduction, zero_infinity=zero_infinity, training=True)
    g = module.ctc_loss_backward(saved, dev(dloss) if dloss_on_device else dloss)
    return {"loss": host(loss), "dlog_probs": host(g["log_probs"])}
