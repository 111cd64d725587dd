"""Shared helpers of the recurrent tests: problems, the three-way comparisons, torch modules."""
import numpy as np

from seqkern import bench

# (cell, options): every functional op, relu and GRU's reset-before variant included.
OPS = [("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {}),
       ("gru", {"reset_after": False})]
OP_IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru", "gru-reset-before"]
# torch has every op but the reset-before GRU.
TORCH_OPS, TORCH_OP_IDS = OPS[:4], OP_IDS[:4]


def forward(module, cell, problem, options, training=False):
    return getattr(module, cell)(**problem, training=training, **options)


def forward_backward(module, cell, problem, options):
    """Outputs (tuple) and gradients (dict) of one training step with random incoming gradients."""
    *outs, saved = forward(module, cell, problem, options, training=True)
    grads = getattr(module, cell + "_backward")(saved, *bench.output_grads(cell, problem))
    return outs, grads


def scaled_error(got, want, size=0.0):
    """max |got - want| relative to the size of want (at least 1, and at least `size`)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(1.0, size, np.max(np.abs(want), initial=0.0))
    return float(np.max(np.abs(got - want), initial=0.0) / scale)


# Gradients summed over every step and sequence: a value of one of them can cancel far below the
# size of the terms it sums (a relu RNN's 1x1 w_hh: -0.2825 from 144 products of up to 12.8 x
# |dg|, off by 2.2e-5 in float32, 4 ulps of the terms), so they are measured against the largest
# of them all, whose terms are of the same kind.
SUMMED = ("w_ih", "w_hh", "w_hr", "b_ih", "b_hh")


def assert_same(outs_a, grads_a, outs_b, grads_b, tol):
    for i, (a, b) in enumerate(zip(outs_a, outs_b)):
        assert scaled_error(a, b) <= tol, f"output {i}: error {scaled_error(a, b):.3g} > {tol}"
    assert grads_a.keys() == grads_b.keys()
    summed = max((float(np.max(np.abs(grads_b[k]), initial=0.0)) for k in SUMMED
                  if grads_b.get(k) is not None), default=0.0)
    for k in grads_a:
        if grads_b[k] is None:
            assert grads_a[k] is None, k
            continue
        err = scaled_error(grads_a[k], grads_b[k], summed if k in SUMMED else 0.0)
        assert err <= tol, f"gradient {k}: error {err:.3g} > {tol}"


def as_float64(problem):
    return {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype == np.float32 else v)
            for k, v in problem.items()}


def random_lengths(rng, T, B):
    return rng.integers(1, T + 1, size=B)


def torch_module(cell, problem, options):
    """torch.nn.LSTM/GRU/RNN holding the problem's weights, in the problem's dtype."""
    import torch

    T, B, I = problem["x"].shape
    H = problem["w_hh"].shape[1]
    has_bias = problem.get("b_ih") is not None
    if cell == "rnn":
        m = torch.nn.RNN(I, H, nonlinearity=options["nonlinearity"], bias=has_bias)
    else:
        m = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H, bias=has_bias)
    m = m.to(torch.from_numpy(problem["x"]).dtype)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(problem["w_ih"]))
        m.weight_hh_l0.copy_(torch.from_numpy(problem["w_hh"]))
        if has_bias:
            m.bias_ih_l0.copy_(torch.from_numpy(problem["b_ih"]))
            m.bias_hh_l0.copy_(torch.from_numpy(problem["b_hh"]))
    return m


def torch_forward_backward(cell, problem, options):
    """torch's outputs and gradients, in the functional API's names, for the same step."""
    import torch

    m = torch_module(cell, problem, options)
    T = problem["x"].shape[0]
    x = torch.from_numpy(problem["x"].copy()).requires_grad_(True)
    h0 = torch.from_numpy(problem["h0"].copy())[None].requires_grad_(True)
    state = h0
    if cell == "lstm":
        c0 = torch.from_numpy(problem["c0"].copy())[None].requires_grad_(True)
        state = (h0, c0)
    lengths = problem.get("lengths")
    inp = x
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lengths), enforce_sorted=False)
    y, s = m(inp, state)
    if lengths is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=T)
    finals = [t[0] for t in (s if cell == "lstm" else (s,))]
    outs = [y, *finals]
    douts = [torch.from_numpy(d) for d in bench.output_grads(cell, problem)]
    torch.autograd.backward(outs, douts)
    g = {"x": x.grad, "h0": h0.grad[0]}
    if cell == "lstm":
        g["c0"] = c0.grad[0]
    g.update(w_ih=m.weight_ih_l0.grad, w_hh=m.weight_hh_l0.grad,
             b_ih=m.bias_ih_l0.grad if m.bias else None, b_hh=m.bias_hh_l0.grad if m.bias else None)
    to_np = lambda t: None if t is None else t.detach().numpy()  # noqa: E731
    return [to_np(o) for o in outs], {k: to_np(v) for k, v in g.items()}
