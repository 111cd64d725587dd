"""Shared helpers of the CUDA backend's tests (tests/test_cuda.py on a GPU, and
tests/test_cuda_emulated.py on the CPU emulator): problems, one training step, comparisons."""
import numpy as np

import seqkern as sk
from seqkern import bench

CELLS = {  # name: (function, gates, extra keyword arguments)
    "lstm": ("lstm", 4, {}),
    "gru": ("gru", 3, {}),
    "rnn_tanh": ("rnn", 1, {"nonlinearity": "tanh"}),
    "rnn_relu": ("rnn", 1, {"nonlinearity": "relu"}),
}

# (T, B, I, H): one step and one row, H below a warp and not a multiple of 8, batches over the
# kernels' batch tile (8 float32 rows, 4 float64), hidden sizes over one block of 32 columns
SHAPES = [(1, 1, 3, 5), (7, 3, 4, 37), (5, 9, 6, 33), (12, 2, 70, 64), (3, 17, 8, 40),
          (20, 64, 48, 130)]


def problem(cell, T, B, I, H, dtype, seed, bias=True, state=True, uneven=False):
    """NumPy arrays of one layer call (seqkern.bench's problem): inputs, incoming gradients and
    lengths."""
    name = CELLS[cell][0]
    lengths = np.random.default_rng(seed).integers(1, T + 1, B) if uneven else None
    p = bench.make_problem(name, T, B, I, H, dtype, seed, lengths)
    p.setdefault("c0", None)
    p["dy"], p["dh_n"], *dc_n = bench.output_grads(name, p, seed + 1)
    p["dc_n"] = dc_n[0] if dc_n else None
    if not bias:
        p["b_ih"] = p["b_hh"] = None
    if not state:
        p["h0"] = p["c0"] = None
    return p


def run(cell, p, module=sk):
    """Forward (training) and backward through the functional API of seqkern (any array type)
    or its NumPy twin (module=reference)."""
    name, _, kw = CELLS[cell]
    fn, bwd = getattr(module, name), getattr(module, name + "_backward")
    state = (p["h0"], p["c0"]) if cell == "lstm" else (p["h0"],)
    out = fn(p["x"], *state, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], lengths=p["lengths"],
             training=True, **kw)
    *outs, saved = out
    incoming = (p["dy"], p["dh_n"], p["dc_n"]) if cell == "lstm" else (p["dy"], p["dh_n"])
    return outs, bwd(saved, *incoming)


def assert_close(got, want, dtype, what):
    """Equal to rounding: float64 to 1e-10; float32, summed in another order, to 2e-4 of the
    value or 2e-5 of the array's largest."""
    rtol, atol = (1e-10, 1e-11) if dtype == np.float64 else (2e-4, 2e-5)
    np.testing.assert_allclose(got, want, rtol=rtol,
                               atol=atol * max(1.0, float(np.abs(want).max())), err_msg=what)


def assert_same(want, got, dtype, host):
    """The outputs and gradients of two `run`s equal to rounding; host(a) brings got's arrays
    to NumPy."""
    (want_outs, want_g), (got_outs, got_g) = want, got
    for name, w, g in zip(("y", "h_n", "c_n"), want_outs, got_outs):
        assert_close(host(g), w, dtype, name)
    assert want_g.keys() == got_g.keys()
    for k in want_g:
        if want_g[k] is None:
            assert got_g[k] is None, k
        else:
            assert_close(host(got_g[k]), want_g[k], dtype, k)


STACKS = [  # (cell, T, B, I, H, layers, bidirectional, lengths, dropout)
    ("lstm", 5, 3, 4, 6, 2, True, [5, 2, 3], True),
    ("gru", 4, 2, 3, 5, 3, False, [1, 4], False),
    ("rnn_tanh", 3, 4, 2, 7, 1, True, None, False),
    ("rnn_relu", 4, 3, 5, 4, 2, True, [2, 4, 3], True),
]


def stack_problem(cell, T, B, I, H, L, bi, lengths, dropout, seed=0):
    """NumPy float64 arguments of a recurrent_stack call, and its incoming gradients."""
    rng = np.random.default_rng(seed)
    G, D = {"lstm": 4, "gru": 3}.get(cell, 1), 2 if bi else 1
    r = lambda *shape: rng.standard_normal(shape) * 0.5  # noqa: E731
    weights = [(r(G * H, I if k < D else D * H), r(G * H, H) / np.sqrt(H), r(G * H), r(G * H))
               for k in range(L * D)]
    p = {"x": r(T, B, I), "weights": weights, "h0": r(L * D, B, H),
         "c0": r(L * D, B, H) if cell == "lstm" else None,
         "lengths": None if lengths is None else np.array(lengths),
         "dropout_masks": (rng.random((L - 1, T, B, D * H)) > 0.3) / 0.7 if dropout else None}
    incoming = (r(T, B, D * H), r(L * D, B, H)) + ((r(L * D, B, H),) if cell == "lstm" else ())
    return p, incoming


def stack_step(module, cell, p, incoming, bi):
    """Outputs and gradients of a training recurrent_stack call of module (seqkern or its twin)."""
    *outs, saved = module.recurrent_stack(cell, **p, bidirectional=bi, training=True)
    return outs, module.recurrent_stack_backward(saved, *incoming)


def assert_stacks_same(want, got, host):
    """Two stack_step results equal to float64 rounding; host(a) brings got's arrays to NumPy."""
    (want_outs, want_g), (got_outs, got_g) = want, got
    for w, g in zip(want_outs, got_outs):
        np.testing.assert_allclose(host(g), w, rtol=1e-10, atol=1e-11)
    for k in ("x", "h0", "c0"):
        if k in want_g:
            np.testing.assert_allclose(host(got_g[k]), want_g[k], rtol=1e-10, atol=1e-11,
                                       err_msg=k)
    for ws, gs in zip(want_g["weights"], got_g["weights"]):
        for w, g in zip(ws, gs):
            np.testing.assert_allclose(host(g), w, rtol=1e-10, atol=1e-11)
