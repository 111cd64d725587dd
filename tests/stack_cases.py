"""Shared helpers of the stack and layer tests: random stacks, flattening, torch twins."""
import numpy as np

from recurrent_cases import scaled_error

CELLS = ["lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"]
TORCH_CELLS = CELLS[:2] + CELLS[3:]
WEIGHT_NAMES = ("ih", "hh", "bih", "bhh", "hr")
G = {"lstm": 4, "gru": 3, "gru_reset_before": 3, "rnn_tanh": 1, "rnn_relu": 1}


def make_stack(cell, T, B, I, H, L, D, dtype=np.float64, lengths=False, bias=True, dropout=0.0,
               seed=0, proj=0):
    """Keyword arguments of recurrent_stack for a random problem; proj > 0 gives an lstm with
    projections to that size."""
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)

    def r(*shape):
        return rng.uniform(-1.5 * s, 1.5 * s, shape).astype(dtype)

    S = proj or H
    weights = []
    for l in range(L):
        for _ in range(D):
            In = I if l == 0 else D * S
            b = (r(G[cell] * H), r(G[cell] * H)) if bias else (None, None)
            w_hr = (r(proj, H),) if proj else ()
            weights.append((r(G[cell] * H, In), r(G[cell] * H, S), *b, *w_hr))
    p = {"cell": cell, "x": rng.standard_normal((T, B, I)).astype(dtype), "weights": weights,
         "h0": r(L * D, B, S), "c0": r(L * D, B, H) if cell == "lstm" else None,
         "lengths": rng.integers(1, T + 1, B) if lengths else None, "bidirectional": D == 2,
         "dropout_masks": None}
    if dropout and L > 1:
        keep = rng.random((L - 1, T, B, D * S)) >= dropout
        p["dropout_masks"] = (keep / (1 - dropout)).astype(dtype)
    return p


def output_grads(p, seed=1):
    """Random dy, dh_n, dc_n for a stack problem."""
    rng = np.random.default_rng(seed)
    T, B, _ = p["x"].shape
    LD, _, S = p["h0"].shape
    D = 2 if p["bidirectional"] else 1
    dt = p["x"].dtype
    dy = rng.standard_normal((T, B, D * S)).astype(dt)
    dh = rng.standard_normal((LD, B, S)).astype(dt)
    dc = rng.standard_normal(p["c0"].shape).astype(dt) if p["cell"] == "lstm" else None
    return dy, dh, dc


def run(impl, p):
    """Outputs and flattened gradients of one training step of impl.recurrent_stack."""
    *outs, saved = impl.recurrent_stack(**p, training=True)
    grads = impl.recurrent_stack_backward(saved, *output_grads(p))
    return outs, flatten(grads)


def flatten(grads):
    """{"x", "h0", "c0", "weights": [...]} -> one dict of arrays with names like w3_hh."""
    flat = {k: v for k, v in grads.items() if k != "weights" and v is not None}
    for k, ws in enumerate(grads["weights"]):
        for name, w in zip(WEIGHT_NAMES, ws):
            if w is not None:
                flat[f"w{k}_{name}"] = w
    return flat


def assert_close(outs_a, grads_a, outs_b, grads_b, tol):
    for i, (a, b) in enumerate(zip(outs_a, outs_b)):
        if b is None:
            assert a is None
            continue
        assert scaled_error(a, b) <= tol, f"output {i}: error {scaled_error(a, b):.3g}"
    assert grads_a.keys() == grads_b.keys()
    for k in grads_a:
        err = scaled_error(grads_a[k], grads_b[k])
        assert err <= tol, f"gradient {k}: error {err:.3g} > {tol}"
