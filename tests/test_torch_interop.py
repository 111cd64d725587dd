"""seqkern.torch: autograd Function and drop-in modules against torch.nn's own modules."""
import copy
import re

import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")
skt = pytest.importorskip("seqkern.torch")

PAIRS = [("lstm", skt.LSTM, torch.nn.LSTM, {}), ("gru", skt.GRU, torch.nn.GRU, {}),
         ("rnn_relu", skt.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
         ("lstm_proj", skt.LSTM, torch.nn.LSTM, {"proj_size": 4})]


def twins(ours, theirs, kw, dtype=torch.float64, **options):
    a = ours(5, 6, **kw, **options).to(dtype)
    b = theirs(5, 6, **kw, **options).to(dtype)
    b.load_state_dict(a.state_dict())
    return a, b


def loss_of(y, state):
    parts = [y if isinstance(y, torch.Tensor) else y.data]
    parts += list(state) if isinstance(state, tuple) else [state]
    return sum((p * torch.linspace(-1, 1, p.numel(), dtype=p.dtype).reshape(p.shape)).sum()
               for p in parts)


@pytest.mark.parametrize("name,ours,theirs,kw", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("options", [{}, {"num_layers": 2, "bidirectional": True},
                                     {"num_layers": 3, "batch_first": True}, {"bias": False}],
                         ids=["1x", "2x-bi", "3x-bfirst", "nobias"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("x_grad", [True, False], ids=["dx", "no_dx"])
def test_module_matches_torch(name, ours, theirs, kw, options, dtype, x_grad):
    """Outputs and gradients; an input that requires no gradient (raw features) gets none, and
    the kernels skip its products."""
    a, b = twins(ours, theirs, kw, dtype, **options)
    x = torch.randn(4, 3, 5, dtype=dtype, generator=torch.Generator().manual_seed(0))
    xa, xb = x.clone().requires_grad_(x_grad), x.clone().requires_grad_(x_grad)
    ya, sa = a(xa)
    yb, sb = b(xb)
    loss_of(ya, sa).backward()
    loss_of(yb, sb).backward()
    tol = 1e-10 if dtype == torch.float64 else 3e-5
    torch.testing.assert_close(ya, yb, rtol=tol, atol=tol)
    assert (xa.grad is None) != x_grad
    torch.testing.assert_close(xa.grad, xb.grad, rtol=tol, atol=tol)
    for (k, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=tol, atol=tol, msg=k)


@pytest.mark.parametrize("name,ours,theirs,kw", PAIRS, ids=[p[0] for p in PAIRS])
def test_packed_sequence_and_initial_state(name, ours, theirs, kw):
    a, b = twins(ours, theirs, kw, num_layers=2, bidirectional=True)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4, 5, dtype=torch.float64, generator=g)
    lengths = torch.tensor([2, 6, 1, 4])
    lstm = name.startswith("lstm")
    h0 = torch.randn(4, 4, kw.get("proj_size", 6), dtype=torch.float64, generator=g)
    state = (h0, torch.randn(4, 4, 6, dtype=torch.float64, generator=g)) if lstm else h0
    results = []
    for m in (a, b):
        xi = x.clone().requires_grad_()
        si = tuple(s.clone().requires_grad_() for s in state) if lstm else state.clone().requires_grad_()
        packed = torch.nn.utils.rnn.pack_padded_sequence(xi, lengths, enforce_sorted=False)
        y, s = m(packed, si)
        loss_of(y, s).backward()
        firsts = si if lstm else (si,)
        results.append([y.data, *(s if lstm else (s,)), xi.grad, *(f.grad for f in firsts)])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,ours,theirs,kw", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("frozen", ["weight", "weight_ih", "bias_ih"])
@pytest.mark.parametrize("layers", [1, 2], ids=["1-layer", "2x-bi"])
def test_frozen_weights_get_no_gradient_and_the_others_match_torch(name, ours, theirs, kw, frozen,
                                                                  layers):
    """Parameters whose names start with `frozen` do not require a gradient: they get none (the
    kernels skip their products), and x's and the other parameters' match torch's."""
    a, b = twins(ours, theirs, kw, num_layers=layers, bidirectional=layers == 2)
    for m in (a, b):
        for n, p in m.named_parameters():
            p.requires_grad_(not n.startswith(frozen))
    x = torch.randn(6, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    results = []
    for m in (a, b):
        xi = x.clone().requires_grad_(True)
        y, _ = m(xi)
        y.pow(2).sum().backward()
        assert all(p.grad is None for n, p in m.named_parameters() if n.startswith(frozen))
        results.append([y.detach(), xi.grad] + [p.grad for n, p in m.named_parameters()
                                                if not n.startswith(frozen)])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,ours,theirs,kw", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("how", ["no_grad", "inference_mode", "frozen"])
@pytest.mark.parametrize("layers", [1, 2], ids=["1-layer", "2x-bi"])
def test_calls_with_nothing_to_differentiate_match_torch(name, ours, theirs, kw, how, layers):
    """No autograd Function then (one layer and direction: the one-layer functions), and packed
    input is unpacked and packed back on NumPy."""
    a, b = twins(ours, theirs, kw, num_layers=layers, bidirectional=layers == 2)
    D = 2 if layers == 2 else 1
    if how == "frozen":
        for m in (a, b):
            m.requires_grad_(False)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 4, 5, dtype=torch.float64, generator=g)
    lengths = torch.tensor([2, 6, 1, 4])
    h0 = torch.randn(layers * D, 4, kw.get("proj_size", 6), dtype=torch.float64, generator=g)
    c0 = torch.randn(layers * D, 4, 6, dtype=torch.float64, generator=g)
    state = (h0, c0) if name.startswith("lstm") else h0
    context = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode,
               "frozen": torch.enable_grad}[how]
    with context():
        for inputs in ((x,), (x, state),
                       (torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False), state)):
            (ya, sa), (yb, sb) = a(*inputs), b(*inputs)
            if isinstance(ya, torch.nn.utils.rnn.PackedSequence):
                torch.testing.assert_close(ya.batch_sizes, yb.batch_sizes)
                torch.testing.assert_close(ya.unsorted_indices, yb.unsorted_indices)
                ya, yb = ya.data, yb.data
            assert not ya.requires_grad
            torch.testing.assert_close(ya, yb, rtol=1e-10, atol=1e-10)
            for u, v in zip(sa if isinstance(sa, tuple) else (sa,), sb if isinstance(sb, tuple) else (sb,)):
                torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,ours,theirs,kw", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bfirst"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zeros", "h0"])
def test_unbatched_input_matches_torch(name, ours, theirs, kw, batch_first, with_state):
    """(T, I) input is one sequence whatever batch_first says; its state is (L*D, S)."""
    a, b = twins(ours, theirs, kw, num_layers=2, bidirectional=True, batch_first=batch_first)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 5, dtype=torch.float64, generator=g)
    h0 = torch.randn(4, kw.get("proj_size", 6), dtype=torch.float64, generator=g)
    state = ((h0, torch.randn(4, 6, dtype=torch.float64, generator=g))
             if name.startswith("lstm") else h0) if with_state else None
    results = []
    for m in (a, b):
        xi = x.clone().requires_grad_()
        y, s = m(xi, state)
        loss_of(y, s).backward()
        results.append([y, *(s if isinstance(s, tuple) else (s,)), xi.grad,
                        *(p.grad for p in m.parameters())])
    assert results[0][0].shape == (7, 2 * kw.get("proj_size", 6))
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("proj_size", [0, 4], ids=["lstm", "lstm_proj"])
def test_lstm_state_as_a_list_matches_torch(proj_size):
    """torch's LSTM takes [h0, c0] as well as (h0, c0)."""
    a, b = twins(skt.LSTM, torch.nn.LSTM, {"proj_size": proj_size} if proj_size else {})
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, 5, dtype=torch.float64, generator=g)
    h0 = torch.randn(1, 3, proj_size or 6, dtype=torch.float64, generator=g)
    c0 = torch.randn(1, 3, 6, dtype=torch.float64, generator=g)
    results = []
    for m in (a, b):
        state = [h0.clone().requires_grad_(), c0.clone().requires_grad_()]
        y, s = m(x, state)
        loss_of(y, s).backward()
        results.append([y, *s, *(t.grad for t in state)])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,ours,theirs,kw", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("shape", [(3, 0, 5), (0, 2, 5)], ids=["no-rows", "no-steps"])
def test_empty_input_behaves_as_torch(name, ours, theirs, kw, shape):
    """An empty batch gives torch's empty outputs; no steps, torch's own error."""
    a, b = twins(ours, theirs, kw, num_layers=2)
    x = torch.zeros(shape, dtype=torch.float64)
    if shape[0] == 0:
        for m in (a, b):
            with pytest.raises(RuntimeError, match="sequence length"):
                m(x)
        return
    (ya, sa), (yb, sb) = a(x), b(x)
    torch.testing.assert_close(ya, yb)
    for u, v in zip(sa if isinstance(sa, tuple) else (sa,), sb if isinstance(sb, tuple) else (sb,)):
        torch.testing.assert_close(u, v)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("D", [2, 1], ids=["bidirectional", "one-layer"])
def test_function_passes_torch_gradcheck(cell, D):
    """The stack's kernels, and for one layer and direction the one-layer functions."""
    G = {"lstm": 4, "gru": 3}.get(cell, 1)
    g = torch.Generator().manual_seed(2)
    r = lambda *s: (0.5 * torch.randn(*s, dtype=torch.float64, generator=g)).requires_grad_()  # noqa: E731
    H, I = 3, 2
    weights = [(r(G * H, I), r(G * H, H), r(G * H), r(G * H)) for _ in range(D)]
    x, h0 = r(4, 2, I), r(D, 2, H)
    c0 = r(D, 2, H) if cell == "lstm" else None
    flat = [w for ws in weights for w in ws]

    def f(x, h0, c0, *flat):
        ws = [tuple(flat[i:i + 4]) for i in range(0, len(flat), 4)]
        return skt.recurrent_stack(cell, x, ws, h0, c0, lengths=[4, 2], bidirectional=D == 2)

    assert torch.autograd.gradcheck(f, (x, h0, c0, *flat))


def test_dropout_follows_torch_seed_and_eval():
    m = skt.LSTM(5, 6, num_layers=2, dropout=0.5)
    x = torch.randn(4, 3, 5)
    torch.manual_seed(0)
    y1, _ = m(x)
    torch.manual_seed(0)
    y2, _ = m(x)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    m.eval()
    ref = torch.nn.LSTM(5, 6, num_layers=2)
    ref.load_state_dict(m.state_dict())
    torch.testing.assert_close(m(x)[0], ref(x)[0])


@pytest.mark.parametrize("cls, kw, packed", [
    (torch.nn.LSTM, dict(num_layers=3, dropout=0.3, bidirectional=True), "unsorted"),
    (torch.nn.LSTM, dict(num_layers=2, dropout=0.5, proj_size=3), None),
    (torch.nn.GRU, dict(num_layers=2, dropout=0.4, batch_first=True), "sorted"),
    (torch.nn.RNN, dict(num_layers=2, dropout=1.0), None),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grad", [True, False])
def test_dropout_masks_are_torchs(cls, kw, packed, dtype, grad):
    """Dropout between layers draws torch's own masks (bernoulli_ per layer, on the layer's
    output or its packed rows): with one seed the optimized layer gives torch's outputs and
    leaves torch's generator where torch's forward leaves it (p = 1 draws nothing)."""
    torch.manual_seed(0)
    theirs = cls(5, 6, **kw).to(dtype)
    ours = skt.optimize(copy.deepcopy(theirs))
    batch_first = kw.get("batch_first", False)
    x = torch.randn(*((4, 6) if batch_first else (6, 4)), 5, dtype=dtype)
    if packed:
        lengths = torch.tensor([6, 5, 3, 2] if packed == "sorted" else [3, 6, 2, 5])
        x = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=batch_first,
                                                    enforce_sorted=packed == "sorted")
    results = []
    for m in (theirs, ours):
        torch.manual_seed(7)
        with torch.enable_grad() if grad else torch.no_grad():
            y, _ = m(x)
        y = torch.nn.utils.rnn.pad_packed_sequence(y)[0] if packed else y
        results.append((y.detach(), torch.rand(4)))
    (y, after), (y_ours, after_ours) = results
    torch.testing.assert_close(y_ours, y)
    assert torch.equal(after_ours, after)


def test_no_grad_keeps_nothing():
    m = skt.RNN(5, 6)
    with torch.no_grad():
        y, _ = m(torch.randn(3, 2, 5))
    assert y.grad_fn is None
    assert type(m(torch.randn(3, 2, 5))[0].grad_fn).__name__ == "OneLayerFunctionBackward"


def test_bad_arguments_raise_torchs_errors():
    a, b = skt.LSTM(5, 6), torch.nn.LSTM(5, 6)
    x = torch.randn(3, 2, 5)
    bad_state = (torch.zeros(1, 2, 7), torch.zeros(1, 2, 6))
    for m in (a, b):
        with pytest.raises(RuntimeError, match="Expected hidden"):
            m(x, bad_state)
        with pytest.raises(ValueError, match="2D or 3D"):
            m(torch.randn(3))


@pytest.mark.parametrize("name,ours,theirs,kw", PAIRS, ids=[p[0] for p in PAIRS])
def test_malformed_states_raise_torchs_errors(name, ours, theirs, kw):
    a, b = twins(ours, theirs, kw, torch.float32)
    x, h = torch.randn(3, 2, 5), torch.zeros(1, 2, 6)
    # ... and a state of another dtype than the input's: seqkern raised its own TypeError
    # ("h0: expected float32 like x"), or on one layer pybind11's "incompatible function arguments"
    h64 = h.double()
    other_dtype = (h, h64) if name.startswith("lstm") else h64
    for state in (3, [h], (h,), (h, h, h), h if name.startswith("lstm") else (h, h), other_dtype):
        with pytest.raises(Exception) as expected:
            b(x, state)
        with pytest.raises(type(expected.value)) as got:
            a(x, state)
        assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("name, cls, kw", [
    ("weight_hh_l0", skt.LSTM, {}), ("weight_ih_l0", skt.LSTM, {}),
    ("bias_ih_l{last}", skt.GRU, {}),
    ("weight_hr_l0", skt.LSTM, dict(proj_size=2)), ("weight_ih_l{last}_reverse", skt.RNN,
                                                   dict(bidirectional=True))])
def test_weights_replaced_by_users_as_torch_takes_them(name, cls, kw, layers):
    """Found by a differential fuzz against torch: a weight set to None raised StopIteration or
    AttributeError (torch: its TypeError), or ran a projected layer without its projection; a
    misshaped one raised the stack's message about weights[i], where torch's CPU forward writes
    outside its buffers ("munmap_chunk(): invalid pointer")."""
    name = name.format(last=layers - 1)
    torch_cls = cls.__mro__[2]
    x = torch.randn(4, 3, 5, requires_grad=True)
    ours, theirs = cls(5, 3, layers, **kw), torch_cls(5, 3, layers, **kw)
    for m in (ours, theirs):
        setattr(m, name, None)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([4, 2, 3]),
                                                     enforce_sorted=False)
    for given in (x, packed):  # (packed, torch's forward runs no check_input: another error)
        with pytest.raises((TypeError, AttributeError)) as expected:
            theirs(given)
        with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
            ours(given)
    ours = cls(5, 3, layers, **kw)
    shape = tuple(getattr(ours, name).shape)
    wrong = (shape[0] + 1,) + shape[1:]
    setattr(ours, name, torch.nn.Parameter(torch.randn(wrong)))
    for grad in (True, False):
        with pytest.raises(RuntimeError, match=re.escape(f"{name}: expected shape {shape}, got "
                                                         f"{wrong}")):
            ours(x if grad else x.detach())


def test_a_bias_set_on_a_layer_without_biases_is_ignored_as_torch_does():
    ours, theirs = twins(skt.LSTM, torch.nn.LSTM, {}, torch.float32, bias=False)
    for m in (ours, theirs):
        m.bias_ih_l0 = torch.nn.Parameter(torch.ones(24))  # not among the flat weights
    x = torch.randn(4, 3, 5)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0])


@given(kind=st.sampled_from(["LSTM", "GRU", "RNN_tanh", "RNN_relu", "LSTM_proj"]),
       T=st.integers(1, 5), B=st.integers(1, 4), I=st.integers(1, 6), H=st.integers(2, 5),
       layers=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans(),
       bias=st.booleans(), how=st.sampled_from(["padded", "packed", "packed_sorted", "unbatched"]),
       with_state=st.booleans(), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_random_configurations_match_torch(kind, T, B, I, H, layers, bidirectional, batch_first,
                                           bias, how, with_state, seed):
    """Any mix of the options, in float64: outputs, final states and the gradients of the input,
    the initial state and every weight equal torch's own module's."""
    name, _, extra = kind.partition("_")
    kw = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    kw.update({"proj": {"proj_size": H - 1}, "tanh": {"nonlinearity": "tanh"},
               "relu": {"nonlinearity": "relu"}, "": {}}[extra])
    theirs = getattr(torch.nn, name)(I, H, **kw).double()
    ours = skt.optimize(copy.deepcopy(theirs))
    g = torch.Generator().manual_seed(seed)
    D, S = 2 if bidirectional else 1, kw.get("proj_size", H)
    batch = () if how == "unbatched" else (B,)
    x = torch.randn(*((T,) + batch if not batch_first or not batch else batch + (T,)), I,
                    dtype=torch.float64, generator=g)
    h0 = torch.randn(layers * D, *batch, S, dtype=torch.float64, generator=g)
    c0 = torch.randn(layers * D, *batch, H, dtype=torch.float64, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    if how == "packed_sorted":
        lengths = lengths.sort(descending=True).values
    results = []
    for m in (theirs, ours):
        xi, hi, ci = (t.clone().requires_grad_() for t in (x, h0, c0))
        state = ((hi, ci) if name == "LSTM" else hi) if with_state else None
        inp = xi if how in ("padded", "unbatched") else torch.nn.utils.rnn.pack_padded_sequence(
            xi, lengths, batch_first=batch_first, enforce_sorted=how == "packed_sorted")
        y, s = m(inp, state)
        loss_of(y, s).backward()
        firsts = ((hi, ci) if name == "LSTM" else (hi,)) if with_state else ()
        results.append([y if isinstance(y, torch.Tensor) else y.data,
                        *(s if isinstance(s, tuple) else (s,)), xi.grad,
                        *(t.grad for t in firsts), *(p.grad for p in m.parameters())])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-9)


@given(kind=st.sampled_from(["LSTM", "GRU", "RNN_tanh", "RNN_relu", "LSTM_proj"]),
       T=st.integers(1, 12), B=st.sampled_from([1, 2, 3, 8, 9, 33]), I=st.integers(1, 150),
       H=st.sampled_from([7, 16, 17, 33, 100, 130]), layers=st.integers(1, 2),
       bidirectional=st.booleans(), bias=st.booleans(),
       how=st.sampled_from(["padded", "packed", "packed_sorted"]), with_state=st.booleans(),
       train=st.booleans(), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=40, deadline=None)
def test_random_float32_configurations_match_float64(kind, T, B, I, H, layers, bidirectional,
                                                     bias, how, with_state, train, seed):
    """float32 at sizes that reach the packed kernels (teams, grouped panels, panel tails, batch
    splits; eval calls without gradients too), against torch's module in float64: outputs,
    final states and, training, every gradient, within float32's rounding over T steps. (A
    fuzz of 3,200 such calls found none outside; torch's own float32 gradients were off by
    2e-2 of their largest in one, a relu RNN.)"""
    name, _, extra = kind.partition("_")
    kw = dict(num_layers=layers, bidirectional=bidirectional, bias=bias)
    kw.update({"proj": {"proj_size": H // 2}, "tanh": {"nonlinearity": "tanh"},
               "relu": {"nonlinearity": "relu"}, "": {}}[extra])
    torch.manual_seed(seed)
    reference = getattr(torch.nn, name)(I, H, **kw).double()
    ours = skt.optimize(copy.deepcopy(reference).float())
    g = torch.Generator().manual_seed(seed)
    D, S = 2 if bidirectional else 1, kw.get("proj_size", H)
    x = torch.randn(T, B, I, dtype=torch.float64, generator=g)
    h0 = torch.randn(layers * D, B, S, dtype=torch.float64, generator=g)
    c0 = torch.randn(layers * D, B, H, dtype=torch.float64, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    if how == "packed_sorted":
        lengths = lengths.sort(descending=True).values
    results = []
    for m, dtype in ((reference, torch.float64), (ours, torch.float32)):
        m.train(train)
        xi, hi, ci = (t.to(dtype, copy=True).requires_grad_(train) for t in (x, h0, c0))
        state = ((hi, ci) if name == "LSTM" else hi) if with_state else None
        inp = xi if how == "padded" else torch.nn.utils.rnn.pack_padded_sequence(
            xi, lengths, enforce_sorted=how == "packed_sorted")
        with torch.set_grad_enabled(train):
            y, s = m(inp, state)
        out = [y if isinstance(y, torch.Tensor) else y.data, *(s if isinstance(s, tuple) else (s,))]
        if train:
            loss_of(y, s).backward()
            firsts = ((hi, ci) if name == "LSTM" else (hi,)) if with_state else ()
            out += [xi.grad, *(t.grad for t in firsts), *(p.grad for p in m.parameters())]
        results.append([t.detach().double() for t in out])
    tol = 2e-4 * (1 + T / 10)
    for i, (want, got) in enumerate(zip(*results)):
        scale = max(1.0, float(want.abs().max()))
        assert float((got - want).abs().max()) <= tol * scale, f"output {i}"
