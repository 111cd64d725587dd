"""seqkern.torch's cells: LSTMCell and GRUCell (subclasses, and optimize) against torch.nn's own
cells, step by step, as decoders and time-series models call them; RNNCell, which runs torch's
op."""
import copy
import pickle
import subprocess
import sys
from contextlib import nullcontext

import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")
skt = pytest.importorskip("seqkern.torch")
from torch_helpers import uses_seqkern  # noqa: E402

# The cells that run on seqkern's kernels; seqkern.torch.RNNCell runs torch's own op
# (RNN_CELLS).
CELLS = [("lstm", skt.LSTMCell, torch.nn.LSTMCell, {}), ("gru", skt.GRUCell, torch.nn.GRUCell, {})]
IDS = [c[0] for c in CELLS]
RNN_CELLS = [("rnn_tanh", skt.RNNCell, torch.nn.RNNCell, {}),
             ("rnn_relu", skt.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"})]
RNN_IDS = [c[0] for c in RNN_CELLS]


def twins(ours, theirs, kw, I=5, H=6, dtype=torch.float64, **options):
    torch.manual_seed(0)
    a = ours(I, H, **kw, **options).to(dtype)
    b = theirs(I, H, **kw, **options).to(dtype)
    b.load_state_dict(a.state_dict())
    return a, b


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def unroll(cell, xs, state):
    """A decoder's loop: one cell call per step, each step's state fed to the next; returns the
    outputs and a loss that weighs every step's h (and c) differently."""
    loss, outs = 0.0, []
    for t, x in enumerate(xs):
        state = cell(x, state)
        outs.extend(as_tuple(state))
        for s in as_tuple(state):
            weights = torch.linspace(-1, 1, s.numel(), dtype=s.dtype).reshape(s.shape)
            loss = loss + (s * (t + 1) * weights).sum()
    return outs, loss


def state_for(name, shape, dtype, g):
    h = torch.randn(*shape, dtype=dtype, generator=g)
    return (h, torch.randn(*shape, dtype=dtype, generator=g)) if name == "lstm" else h


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS, ids=IDS)
@pytest.mark.parametrize("batch", [(3,), (1,), ()], ids=["B3", "B1", "unbatched"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zeros", "hx"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("x_grad", [True, False], ids=["dx", "no_dx"])
def test_cell_loop_matches_torch(name, ours, theirs, kw, batch, with_state, dtype, x_grad):
    """Four steps of a loop: outputs, and the gradients of the inputs (when they require one:
    else the kernels skip its products), the first state and every weight, against torch's own
    cell."""
    a, b = twins(ours, theirs, kw, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(4, *batch, 5, dtype=dtype, generator=g)
    s0 = state_for(name, (*batch, 6), dtype, g)
    results = []
    for m in (a, b):
        xi = xs.clone().requires_grad_(x_grad)
        si = tuple(s.clone().requires_grad_() for s in as_tuple(s0))
        state = (si if name == "lstm" else si[0]) if with_state else None
        outs, loss = unroll(m, xi, state)
        assert uses_seqkern(outs[-1]) == (m is a)
        loss.backward()
        assert (xi.grad is None) != x_grad
        results.append([*outs, xi.grad, *((s.grad for s in si) if with_state else ()),
                        *(p.grad for p in m.parameters())])
    tol = 1e-10 if dtype == torch.float64 else 3e-5
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=tol, atol=tol)


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS, ids=IDS)
@pytest.mark.parametrize("how", ["no_grad", "inference_mode", "frozen"])
def test_calls_with_nothing_to_differentiate_match_torch(name, ours, theirs, kw, how):
    a, b = twins(ours, theirs, kw, dtype=torch.float32, bias=False)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(7, 5, generator=g)
    s = state_for(name, (7, 6), torch.float32, g)
    if how == "frozen":
        for p in a.parameters():
            p.requires_grad_(False)
    ctx = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}.get(how)
    with ctx() if ctx else torch.enable_grad():
        got = as_tuple(a(x, s))
    assert all(t.grad_fn is None for t in got)
    with torch.no_grad():
        expected = as_tuple(b(x, s))
    for u, v in zip(got, expected):
        torch.testing.assert_close(u, v, rtol=3e-5, atol=3e-5)


@pytest.mark.parametrize("name,T", [(n, T) for n in IDS + RNN_IDS + ["lstm_proj"]
                                    for T in (None, 1, 3)
                                    if not (n == "lstm_proj" and T is None)])  # cells: no w_hr
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("state", [True, False], ids=["hx", "zeros"])
def test_one_layer_function_passes_torch_gradcheck(name, T, bias, state):
    """The Function behind cells (T None: a step, x (B, I)) and one-layer layer calls, on the
    weights' arrays as modules pass them (views of the tensors, so gradcheck's nudges show
    through); lstm_proj: a layer's projection (w_hr, P = 2)."""
    proj = name == "lstm_proj"
    cell = "lstm" if proj else name
    G = {"lstm": 4, "gru": 3}.get(cell, 1)
    g = torch.Generator().manual_seed(3)
    r = lambda *s: (0.5 * torch.randn(*s, dtype=torch.float64, generator=g)).requires_grad_()  # noqa: E731
    H, I = 4, 3
    S = 2 if proj else H
    x = r(2, I) if T is None else r(T, 2, I)
    h, c = (r(2, S), r(2, H) if cell == "lstm" else None) if state else (None, None)
    weights = (r(G * H, I), r(G * H, S)) + ((r(G * H), r(G * H)) if bias else (None, None))
    weights += (r(S, H),) if proj else ()
    arrays = tuple(None if w is None else w.detach().numpy() for w in weights)
    present = [t is not None for t in (x, h, c, *weights)]
    inputs = [t for t in (x, h, c, *weights) if t is not None]

    def f(*given):  # the given tensors, None where the call takes none
        it = iter(given)
        return skt.OneLayerFunction.apply(cell, arrays, *(next(it) if p else None for p in present))

    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS, ids=IDS)
def test_double_backward_falls_back_and_matches_torch(name, ours, theirs, kw, fresh_warnings):
    a, b = twins(ours, theirs, kw)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 5, dtype=torch.float64, generator=g)
    s = state_for(name, (3, 6), torch.float64, g)
    results = []
    for m in (a, b):
        xi = x.clone().requires_grad_()
        out = as_tuple(m(xi, s))
        warns = m is a
        with pytest.warns(skt.FallbackWarning, match="double backward") if warns else nullcontext():
            (dx,) = torch.autograd.grad(sum((o ** 2).sum() for o in out), xi, create_graph=True)
        results.append([dx, *torch.autograd.grad((dx ** 2).sum(), [xi, *m.parameters()])])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cls,kw", [(torch.nn.LSTM, {}), (torch.nn.LSTM, {"proj_size": 3}),
                                    (torch.nn.GRU, {}), (torch.nn.RNN, {"nonlinearity": "relu"})],
                         ids=["lstm", "lstm_proj", "gru", "rnn_relu"])
def test_one_layer_double_backward_falls_back_and_matches_torch(cls, kw, fresh_warnings):
    """A layer of one layer and direction runs on the same Function as the cells."""
    torch.manual_seed(0)
    theirs = cls(5, 6, **kw).double()
    ours = skt.optimize(copy.deepcopy(theirs))
    x = torch.randn(4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    results = []
    for m in (ours, theirs):
        xi = x.clone().requires_grad_()
        y, _ = m(xi)
        assert uses_seqkern(y) == (m is ours)
        warns = m is ours
        with pytest.warns(skt.FallbackWarning, match="double backward") if warns else nullcontext():
            (dx,) = torch.autograd.grad((y ** 2).sum(), xi, create_graph=True)
        results.append([dx, *torch.autograd.grad((dx ** 2).sum(), [xi, *m.parameters()])])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS, ids=IDS)
def test_strided_and_broadcast_inputs(name, ours, theirs, kw):
    """A column split from a batch of sequences (strided rows), a state expanded from one row,
    and an incoming gradient that is a stride-0 view (from .sum())."""
    a, b = twins(ours, theirs, kw, I=1)
    g = torch.Generator().manual_seed(5)
    series = torch.randn(4, 9, dtype=torch.float64, generator=g)
    x = series.split(1, dim=1)[3]  # (4, 1), rows 9 values apart
    h = torch.randn(1, 6, dtype=torch.float64, generator=g).expand(4, 6)
    s = (h, h) if name == "lstm" else h
    grads = []
    for m in (a, b):
        out = as_tuple(m(x, s))
        out[0].sum().backward()
        grads.append([*out, *(p.grad for p in m.parameters())])
    for u, v in zip(*grads):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS, ids=IDS)
def test_malformed_calls_raise_torchs_errors(name, ours, theirs, kw, fresh_warnings):
    a, b = twins(ours, theirs, kw, dtype=torch.float32)
    good_state = state_for(name, (2, 6), torch.float32, torch.Generator().manual_seed(6))
    wrong_h = torch.zeros(2, 7)
    calls = [
        (torch.randn(2, 4), None),  # input size 4, not 5
        (torch.randn(3, 2, 5), None),  # 3-D input
        (torch.randn(2, 5), (wrong_h, wrong_h) if name == "lstm" else wrong_h),
        (torch.randn(2, 5), (torch.zeros(3, 6), torch.zeros(3, 6)) if name == "lstm" else torch.zeros(3, 6)),
        (torch.randn(2, 5, dtype=torch.float64), good_state),  # dtype unlike the weights
        (torch.randn(5), good_state),  # unbatched input, batched state
        (torch.randn(2, 5), 3),  # not a tensor
        (torch.randn(2, 5), [wrong_h]),  # a list where a tensor (or an LSTM's pair) goes
        (torch.randn(2, 5), (torch.zeros(2, 6),)),  # one state, not two or a tensor
        (torch.randn(2, 5), (torch.zeros(2, 6),) * 3),
    ]
    for x, s in calls:
        with pytest.raises(Exception) as expected:
            b(x, s)
        with pytest.raises(type(expected.value)) as got:
            a(x, s)
        assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("cls", ["LSTMCell", "GRUCell"])
def test_a_batched_state_beside_an_unbatched_input_is_an_error_not_a_crash(cls, tmp_path):
    """torch's own LSTMCell crashes (SIGSEGV, torch 2.13) on an unbatched input with a state of
    shape (H, n), which its check lets through; seqkern's cells raise. (Other 2-D states get
    torch's error: test_malformed_calls_raise_torchs_errors.) Run in a child process: a crash
    would end pytest."""
    script = f"""
import torch, seqkern.torch as skt
for H, shape in ((1, (1, 1)), (3, (3, 3)), (3, (3, 2))):
    cell = skt.{cls}(4, H)
    h = torch.zeros(shape)
    try:
        cell(torch.randn(4), (h, h) if "{cls}" == "LSTMCell" else h)
    except RuntimeError as e:
        print(e)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)  # (not the source tree, which has no _core)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"{cls}: an unbatched (1-D) input takes 1-D states, got a state of shape {shape}"
        for shape in ((1, 1), (3, 3), (3, 2))]


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS, ids=IDS)
def test_empty_batch_behaves_as_torch(name, ours, theirs, kw):
    a, b = twins(ours, theirs, kw, dtype=torch.float32)
    x = torch.randn(0, 5)
    for u, v in zip(as_tuple(a(x)), as_tuple(b(x))):
        assert u.shape == v.shape == (0, 6)


@pytest.mark.parametrize("case", ["meta", "bfloat16", "autocast"])
def test_fallbacks_warn_and_match_torch(case, fresh_warnings):
    a, b = twins(skt.LSTMCell, torch.nn.LSTMCell, {}, dtype=torch.float32)
    x = torch.randn(3, 5)
    if case == "meta":
        a, b, x = a.to("meta"), b.to("meta"), x.to("meta")
    elif case == "bfloat16":
        a, b, x = a.to(torch.bfloat16), b.to(torch.bfloat16), x.to(torch.bfloat16)
    reasons = {"meta": "meta tensors", "bfloat16": "torch.bfloat16 tensors", "autocast": "CPU autocast"}

    def run(m):
        if case == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return m(x)
        return m(x)

    expected = run(b)
    with pytest.warns(skt.FallbackWarning, match=reasons[case]):
        got = run(a)
    if case != "meta":
        for u, v in zip(got, expected):
            torch.testing.assert_close(u, v)


class Seq2Seq(torch.nn.Module):
    """An encoder GRU and a decoder of cells, as in tutorials' attention decoders."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.GRU(4, 8)
        self.decoder = torch.nn.ModuleList([torch.nn.LSTMCell(4 + 8, 8), torch.nn.GRUCell(8, 8)])
        self.out = torch.nn.Linear(8, 4)

    def forward(self, src, steps):
        enc, h = self.encoder(src)
        h1, c1, h2, y = h[0], torch.zeros_like(h[0]), h[0], torch.zeros(src.shape[1], 4)
        ys = []
        for _ in range(steps):
            h1, c1 = self.decoder[0](torch.cat([y, enc.mean(0)], 1), (h1, c1))
            h2 = self.decoder[1](h1, h2)
            y = self.out(h2)
            ys.append(y)
        return torch.stack(ys)


def test_optimize_covers_cells_in_place_and_restore_undoes_it():
    torch.manual_seed(0)
    model = Seq2Seq()
    reference = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # built before optimize
    cells = list(model.decoder)
    params = [list(c.parameters()) for c in cells]
    src = torch.randn(5, 3, 4)
    skt.optimize(model)
    try:
        assert [type(c) for c in model.decoder] == [torch.nn.LSTMCell, torch.nn.GRUCell]
        assert all(p is q for c, ps in zip(model.decoder, params) for p, q in zip(c.parameters(), ps))
        assert uses_seqkern(model.decoder[0](torch.randn(3, 12, requires_grad=True))[0])
        ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
        for m, o in ((model, opt), (reference, ref_opt)):
            for _ in range(3):
                o.zero_grad()
                (m(src, 4) ** 2).mean().backward()
                o.step()
        for (k, p), q in zip(model.named_parameters(), reference.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=k)
        assert b"seqkern" not in pickle.dumps(model)
    finally:
        skt.restore(model)
    assert not uses_seqkern(model.decoder[0](torch.randn(3, 12, requires_grad=True))[0])


def test_optimize_leaves_rnn_cells_to_torch():
    model = torch.nn.Sequential(torch.nn.RNNCell(3, 4))
    skt.optimize(model)
    try:
        assert not uses_seqkern(model(torch.randn(2, 3, requires_grad=True)))
    finally:
        skt.restore(model)


@pytest.mark.parametrize("name,ours,theirs,kw", RNN_CELLS, ids=RNN_IDS)
def test_rnn_cell_subclass_runs_torchs_op(name, ours, theirs, kw):
    """seqkern.torch.RNNCell is torch's cell, bit for bit, gradients included."""
    a, b = twins(ours, theirs, kw, dtype=torch.float32)
    g = torch.Generator().manual_seed(4)
    xs = torch.randn(3, 2, 5, generator=g)
    results = []
    for m in (a, b):
        outs, loss = unroll(m, xs.clone().requires_grad_(), None)
        assert not uses_seqkern(outs[-1])
        loss.backward()
        results.append([*outs, *(p.grad for p in m.parameters())])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS + RNN_CELLS, ids=IDS + RNN_IDS)
def test_subclasses_pickle_as_torchs_cells_and_deepcopy_as_themselves(name, ours, theirs, kw):
    a, b = twins(ours, theirs, kw, dtype=torch.float32)
    assert isinstance(a, theirs) and repr(a) == repr(b)
    c = copy.deepcopy(a)
    assert type(c) is ours and c.weight_ih is not a.weight_ih
    p = pickle.loads(pickle.dumps(a))
    assert type(p) is theirs and p.state_dict().keys() == b.state_dict().keys()
    assert getattr(p, "nonlinearity", None) == getattr(b, "nonlinearity", None)
    x = torch.randn(2, 5)
    for u, v in zip(as_tuple(p(x)), as_tuple(a(x))):
        torch.testing.assert_close(u, v)


@given(name=st.sampled_from(IDS), B=st.integers(1, 5), I=st.integers(1, 19), H=st.integers(1, 19),
       bias=st.booleans(), unbatched=st.booleans(), with_state=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_random_cells_match_torch(name, B, I, H, bias, unbatched, with_state, seed):
    """Odd sizes (H not a multiple of any vector width), in float64: one step's outputs and the
    gradients of the input, the state and every weight."""
    _, ours, theirs, kw = CELLS[IDS.index(name)]
    a, b = twins(ours, theirs, kw, I=I, H=H, bias=bias)
    g = torch.Generator().manual_seed(seed)
    batch = () if unbatched else (B,)
    x = torch.randn(*batch, I, dtype=torch.float64, generator=g)
    s0 = state_for(name, (*batch, H), torch.float64, g)
    results = []
    for m in (a, b):
        xi = x.clone().requires_grad_()
        si = tuple(s.clone().requires_grad_() for s in as_tuple(s0))
        state = (si if name == "lstm" else si[0]) if with_state else None
        outs, loss = unroll(m, [xi], state)
        loss.backward()
        results.append([*outs, xi.grad, *((s.grad for s in si) if with_state else ()),
                        *(p.grad for p in m.parameters())])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-9)


@given(name=st.sampled_from(IDS), B=st.integers(1, 5), I=st.integers(1, 19), H=st.integers(1, 19),
       bias=st.booleans(), unbatched=st.booleans(), with_state=st.booleans(),
       f64=st.booleans(), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_random_steps_with_nothing_to_differentiate_match_torch(name, B, I, H, bias, unbatched,
                                                                 with_state, f64, seed):
    """The inference step (no_grad: arrays alone, one kernel call) at odd sizes, both dtypes."""
    _, ours, theirs, kw = CELLS[IDS.index(name)]
    dtype = torch.float64 if f64 else torch.float32
    a, b = twins(ours, theirs, kw, I=I, H=H, bias=bias, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    batch = () if unbatched else (B,)
    x = torch.randn(*batch, I, dtype=dtype, generator=g)
    s = state_for(name, (*batch, H), dtype, g) if with_state else None
    with torch.no_grad():
        got, expected = as_tuple(a(x, s)), as_tuple(b(x, s))
    tol = 1e-12 if f64 else 3e-6
    for u, v in zip(got, expected):
        assert u.shape == v.shape and u.dtype == v.dtype
        torch.testing.assert_close(u, v, rtol=tol, atol=tol)


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS, ids=IDS)
def test_inference_steps_take_strided_and_broadcast_inputs(name, ours, theirs, kw):
    """The arrays-alone step: a column split from a batch of sequences, a state expanded from
    one row (stride 0), and a transposed view as the input."""
    a, b = twins(ours, theirs, kw, I=4, dtype=torch.float32)
    g = torch.Generator().manual_seed(8)
    series = torch.randn(4, 9, generator=g)
    h = torch.randn(1, 6, generator=g).expand(4, 6)
    for x in (series.split(1, dim=1)[3].expand(4, 4), torch.randn(4, 4, generator=g).t()):
        s = (h, h) if name == "lstm" else h
        with torch.no_grad():
            got, expected = as_tuple(a(x, s)), as_tuple(b(x, s))
        for u, v in zip(got, expected):
            torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,ours,theirs,kw", CELLS, ids=IDS)
def test_steps_see_every_change_to_the_weights(name, ours, theirs, kw, monkeypatch):
    """The weights' arrays are kept from call to call: in-place updates, new tensors, loaded
    state, a dtype change and non-contiguous weights must all show in the next step."""
    steps = []
    step = skt._core.cell_step
    monkeypatch.setattr(skt._core, "cell_step", lambda *args: steps.append(1) or step(*args))
    a, b = twins(ours, theirs, kw, dtype=torch.float32)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 5, generator=g)
    s = state_for(name, (3, 6), torch.float32, g)

    def check(dtype=torch.float32):
        xs = x.to(dtype)
        ss = tuple(t.to(dtype) for t in s) if name == "lstm" else s.to(dtype)
        with torch.no_grad():
            ran = len(steps)
            got, expected = as_tuple(a(xs, ss)), as_tuple(b(xs, ss))
        assert len(steps) == ran + 1  # a's step on seqkern's kernel
        for u, v in zip(got, expected):
            torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-5)

    check()
    with torch.no_grad():  # in place, as an optimizer's step
        for m in (a, b):
            m.weight_hh.mul_(1.5)
            m.bias_ih.add_(0.25)
    check()
    new = torch.randn(b.weight_ih.shape, generator=g)
    for m in (a, b):  # new storage behind the same Parameter
        m.weight_ih.data = new.clone()
    check()
    other = ours(5, 6, **kw)
    for m in (a, b):
        m.load_state_dict(other.state_dict())
    check()
    for m in (a, b):  # transposed storage: a non-contiguous weight
        m.weight_hh = torch.nn.Parameter(m.weight_hh.detach().t().contiguous().t())
    assert not a.weight_hh.is_contiguous()
    check()
    with torch.no_grad():
        for m in (a, b):
            m.weight_hh.mul_(0.5)
    check()
    for m in (a, b):
        m.double()
    check(torch.float64)
