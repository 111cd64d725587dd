"""seqkern.nn layers: torch's names and semantics (checked against torch.nn with the same weights),
the book's params/grads interface, stateful truncated BPTT, dropout, clip_grads, bad input."""
import numpy as np
import pytest

import seqkern as sk
from seqkern import nn
from stack_cases import CELLS, TORCH_CELLS
from recurrent_cases import scaled_error

LAYERS = {"lstm": nn.LSTM, "gru": nn.GRU, "gru_reset_before": nn.GRU, "rnn_tanh": nn.RNN,
          "rnn_relu": nn.RNN}


def layer(cell, *args, **kwargs):
    if cell == "gru_reset_before":
        kwargs["reset_after"] = False
    if cell.startswith("rnn"):
        kwargs["nonlinearity"] = cell[4:]
    return LAYERS[cell](*args, **kwargs)


def torch_layer(cell, m):
    torch = pytest.importorskip("torch")
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    kw = {"nonlinearity": cell[4:]} if cell.startswith("rnn") else {}
    if m.proj_size:
        kw["proj_size"] = m.proj_size
    t = cls(m.input_size, m.hidden_size, m.num_layers, bias=m.bias, batch_first=m.batch_first,
            bidirectional=m.bidirectional, **kw).to(getattr(torch, m.dtype.name))
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    return t


def state_list(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("cell", TORCH_CELLS + ["lstm_proj"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tmajor", "bfirst"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_matches_torch(cell, num_layers, bidirectional, lengths, batch_first, dtype):
    """lstm_proj: an LSTM with proj_size = 2 < hidden_size."""
    torch = pytest.importorskip("torch")
    T, B, I, H = 5, 4, 3, 6
    kw = {"proj_size": 2} if cell == "lstm_proj" else {}
    cell = cell.removesuffix("_proj")
    m = layer(cell, I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional,
              dtype=dtype, seed=1, **kw)
    t = torch_layer(cell, m)
    rng = np.random.default_rng(2)
    D, S = 2 if bidirectional else 1, kw.get("proj_size", H)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    lens = np.array([5, 1, 3, 4]) if lengths else None
    state0 = [rng.standard_normal((num_layers * D, B, width)).astype(dtype)
              for width in ([S, H] if cell == "lstm" else [H])]
    dy = rng.standard_normal((B, T, D * S) if batch_first else (T, B, D * S)).astype(dtype)
    if lens is not None:  # torch's padded output is zero there: so is ours, gradient included
        steps = np.arange(T)[None, :] if batch_first else np.arange(T)[:, None]
        valid = steps < (lens[:, None] if batch_first else lens[None, :])
        dy = dy * valid[..., None]
    dstate = [rng.standard_normal(s.shape).astype(dtype) for s in state0]

    y, state = m.forward(x, tuple(state0) if cell == "lstm" else state0[0], lengths=lens)
    dx, dstate0 = m.backward(dy, tuple(dstate) if cell == "lstm" else dstate[0])

    xt = torch.from_numpy(x.copy()).requires_grad_()
    st0 = [torch.from_numpy(s.copy()).requires_grad_() for s in state0]
    inp = xt
    if lens is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lens), batch_first=batch_first,
                                                      enforce_sorted=False)
    yt, stt = t(inp, tuple(st0) if cell == "lstm" else st0[0])
    if lens is not None:
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(yt, batch_first=batch_first, total_length=T)
    stt = state_list(stt)
    torch.autograd.backward([yt, *stt], [torch.from_numpy(dy), *map(torch.from_numpy, dstate)])

    tol = 1e-11 if dtype == np.float64 else 3e-5
    pairs = [(y, yt), *zip(state_list(state), stt), (dx, xt.grad),
             *zip(state_list(dstate0), [s.grad for s in st0])]
    pairs += [(m.grads[k], p.grad) for k, p in t.named_parameters()]
    for i, (a, b) in enumerate(pairs):
        assert scaled_error(a, b.detach().numpy()) <= tol, i


@pytest.mark.parametrize("cell", CELLS)
def test_stateful_chunks_equal_one_long_forward_with_the_gradient_cut(cell):
    T, B, I, H = 12, 3, 4, 5
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I))
    full = layer(cell, I, H, 2, dtype=np.float64, seed=3)
    y_full, _ = full.forward(x)
    m = layer(cell, I, H, 2, dtype=np.float64, seed=3, stateful=True)
    ys = []
    for t0 in range(0, T, 5):
        entering = m.state  # what the next chunk starts from
        ys.append(m.forward(x[t0:t0 + 5])[0])
    np.testing.assert_allclose(np.concatenate(ys), y_full, atol=1e-12)
    # the last chunk's gradient stops at its entering state: a fresh layer started from that
    # state gives the same weight gradients
    dy = rng.standard_normal(ys[-1].shape)
    m.zero_grad()
    m.backward(dy)
    fresh = layer(cell, I, H, 2, dtype=np.float64, seed=3)
    fresh.forward(x[10:], entering)
    fresh.backward(dy)
    for k in fresh.grads:
        np.testing.assert_allclose(m.grads[k], fresh.grads[k], atol=1e-12)
    m.reset_state()
    np.testing.assert_allclose(m.forward(x[:5])[0], ys[0], atol=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
def test_a_stateful_layer_names_a_batch_of_another_size(batch_first):
    """The carried state fits one batch size: another one says so and how to start over (not
    an error about an h0 the caller never passed)."""
    m = nn.LSTM(4, 5, stateful=True, batch_first=batch_first)
    m.forward(np.zeros((3, 2, 4) if batch_first else (2, 3, 4), np.float32))  # a batch of 3
    other = np.zeros((4, 2, 4) if batch_first else (2, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"carries the state of a batch of 3: call reset_state"):
        m.forward(other)
    m.reset_state()
    m.forward(other)
    m.forward(other, m.state)  # a state passed by the caller is checked as given


def test_grads_accumulate_until_zero_grad():
    m = nn.GRU(3, 4, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    dy = np.ones((5, 2, 4))
    m.forward(x)
    m.backward(dy)
    once = {k: v.copy() for k, v in m.grads.items()}
    m.forward(x)
    m.backward(dy)
    for k in once:
        np.testing.assert_allclose(m.grads[k], 2 * once[k])
    m.zero_grad()
    assert all(not g.any() for g in m.grads.values())


def test_dropout_is_seeded_reused_in_backward_and_off_in_eval():
    x = np.random.default_rng(0).standard_normal((6, 3, 4)).astype(np.float32)
    a = nn.LSTM(4, 5, 3, dropout=0.5, seed=7)
    b = nn.LSTM(4, 5, 3, dropout=0.5, seed=7)
    ya, _ = a.forward(x)
    yb, _ = b.forward(x)
    np.testing.assert_array_equal(ya, yb)
    y_again, _ = a.forward(x)
    assert not np.array_equal(ya, y_again)  # a fresh mask per forward
    ref = nn.LSTM(4, 5, 3, seed=7)
    assert not np.allclose(ya, ref.forward(x)[0])
    a.eval()
    np.testing.assert_array_equal(a.forward(x)[0], ref.eval().forward(x)[0])
    with pytest.raises(RuntimeError, match="training mode"):
        a.backward(np.ones_like(ya))


def test_dropout_gradient_matches_finite_differences():
    m = nn.RNN(3, 4, 2, dropout=0.5, dtype=np.float64, seed=1)
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    rng_state = m._rng.bit_generator.state
    y, _ = m.forward(x)
    dx, _ = m.backward(np.ones_like(y))
    eps, num = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        for sign in (1, -1):
            m._rng.bit_generator.state = rng_state  # the same mask for every evaluation
            xp = x.copy()
            xp[i] += sign * eps
            num[i] += sign * m.forward(xp)[0].sum() / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


def test_params_follow_torch_names_init_and_forget_bias():
    m = nn.LSTM(3, 4, 2, bidirectional=True, forget_bias=1.0, seed=0)
    names = [f"{w}_l{l}{s}" for l in range(2) for s in ("", "_reverse")
             for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert list(m.params) == names
    assert m.params["weight_ih_l1"].shape == (16, 8)
    assert np.abs(m.params["weight_hh_l0"]).max() <= 0.5
    np.testing.assert_array_equal(m.params["bias_ih_l0"][4:8], 1.0)
    np.testing.assert_array_equal(m.params["bias_hh_l1_reverse"][4:8], 0.0)
    assert list(nn.GRU(3, 4, bias=False).params) == ["weight_ih_l0", "weight_hh_l0"]


def test_projected_lstm_params_follow_torch():
    m = nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2, bias=False)
    names = [f"{w}_l{l}{s}" for l in range(2) for s in ("", "_reverse")
             for w in ("weight_ih", "weight_hh", "weight_hr")]
    assert list(m.params) == names
    assert m.params["weight_ih_l1"].shape == (20, 4)
    assert m.params["weight_hh_l0"].shape == (20, 2)
    assert m.params["weight_hr_l1_reverse"].shape == (2, 5)
    y, (h, c) = m.forward(np.ones((4, 3, 3), np.float32))
    assert y.shape == (4, 3, 4) and h.shape == (4, 3, 2) and c.shape == (4, 3, 5)
    assert "proj_size=2" in repr(m)
    # the cells' own options show too: they change the arithmetic
    assert repr(nn.GRU(4, 5, reset_after=False)) == "GRU(4, 5, reset_after=False)"
    assert repr(nn.RNN(3, 2, nonlinearity="relu")) == "RNN(3, 2, nonlinearity='relu')"
    assert repr(nn.GRU(4, 5)) == "GRU(4, 5)" and repr(nn.RNN(3, 2)) == "RNN(3, 2)"
    torch = pytest.importorskip("torch")
    m.load_state_dict(torch.nn.LSTM(3, 5, 2, bias=False, bidirectional=True, proj_size=2).state_dict())


@pytest.mark.parametrize("proj_size", [5, 7, -1, 1.5])
def test_bad_proj_size_is_a_clear_error(proj_size):
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 5, proj_size=proj_size)


@pytest.mark.parametrize("cls,kw", [(nn.LSTM, {}), (nn.LSTM, {"proj_size": 2}), (nn.GRU, {}),
                                    (nn.RNN, {"bias": False, "bidirectional": True})])
@pytest.mark.parametrize("sizes", [(3, 5, 2**62), (3, 2**40, 1), (2**61, 5, 1)])
def test_layers_too_large_for_memory_fail_before_building(cls, kw, sizes):
    """A layer's parameters and gradients are counted first: num_layers=2**62 small layers,
    each of which would fit, are refused at once instead of growing the process until the OOM
    killer ends it."""
    with pytest.raises(MemoryError, match="the parameters and their gradients need"):
        cls(*sizes, **kw)


def test_state_dict_round_trip_and_torch_state_dict():
    m = nn.GRU(3, 4, 2, seed=0)
    other = nn.GRU(3, 4, 2, seed=1)
    other.load_state_dict(m.state_dict())
    x = np.ones((2, 1, 3), np.float32)
    np.testing.assert_array_equal(m.forward(x)[0], other.forward(x)[0])
    torch = pytest.importorskip("torch")
    t = torch.nn.GRU(3, 4, 2)
    m.load_state_dict(t.state_dict())  # tensors convert through np.asarray
    np.testing.assert_array_equal(m.params["weight_hh_l1"], t.weight_hh_l1.detach().numpy())
    with torch.no_grad():
        t.weight_hh_l1.mul_(2)
    # parameters that require grad: "Can't call numpy() on Tensor that requires grad" before
    m.load_state_dict(dict(t.named_parameters()))
    np.testing.assert_array_equal(m.params["weight_hh_l1"], t.weight_hh_l1.detach().numpy())


def test_load_state_dict_rejects_wrong_keys_and_shapes():
    m = nn.LSTM(3, 4)
    sd = m.state_dict()
    with pytest.raises(KeyError, match="missing"):
        m.load_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l0"})
    sd["weight_hh_l0"] = np.zeros((16, 5))
    with pytest.raises(ValueError, match=r"weight_hh_l0: expected shape \(16, 4\)"):
        m.load_state_dict(sd)


def test_clip_grads_scales_to_max_norm_and_returns_total():
    grads = {"a": np.full(4, 3.0), "b": np.full(9, 4.0 / 3.0)}  # norm sqrt(36 + 16) = sqrt(52)
    total = nn.clip_grads(grads, 1.0)
    assert total == pytest.approx(np.sqrt(52))
    assert np.sqrt(sum((g**2).sum() for g in grads.values())) == pytest.approx(1.0, rel=1e-5)
    small = [np.full(3, 0.1)]
    assert nn.clip_grads(small, 5.0) == pytest.approx(np.sqrt(0.03))
    np.testing.assert_array_equal(small[0], 0.1)
    with pytest.raises(ValueError, match="max_norm"):
        nn.clip_grads(small, 0)


def test_layer_bad_input_is_a_clear_error():
    m = nn.LSTM(3, 4, 2, bidirectional=True)
    x = np.zeros((5, 2, 3), np.float32)
    h = np.zeros((2, 2, 4), np.float32)  # needs num_layers * 2 = 4
    with pytest.raises(ValueError, match=r"h0: expected shape \(num_layers\*2, batch, hidden\) = \(4, 2, 4\)"):
        m.forward(x, (h, h))
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        m.forward(x, h)
    with pytest.raises(ValueError, match=r"lengths: each must be in 1..T = 1..5"):
        m.forward(x, lengths=[6, 2])
    with pytest.raises(ValueError, match=r"x: expected shape \(T, batch, input_size\) with "
                                         r"input_size = 3, each at least 1, got \(5, 2, 7\)"):
        m.forward(np.zeros((5, 2, 7), np.float32))
    first = nn.GRU(3, 4, batch_first=True)  # messages show the caller's layout, not the copy
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, T, input_size\) with "
                                         r"input_size = 3, each at least 1, got \(2, 0, 3\)"):
        first.forward(np.zeros((2, 0, 3), np.float32))
    with pytest.raises(ValueError, match=r"got \(5, 3\)"):
        first.forward(np.zeros((5, 3), np.float32))
    first.forward(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy: expected the shape of y, \(2, 5, 4\), got \(5, 2, 4\)"):
        first.backward(np.zeros((5, 2, 4), np.float32))
    with pytest.raises(TypeError, match="float64"):
        m.forward(x.astype(np.float64))
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.RNN(3, 0)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


def test_stack_bad_input_is_a_clear_error():
    x = np.zeros((3, 2, 4))
    w = (np.zeros((8, 4)), np.zeros((8, 2)), None, None)
    with pytest.raises(ValueError, match="cell: expected one of"):
        sk.recurrent_stack("lstmx", x, [w])
    with pytest.raises(ValueError, match=r"weights: expected num_layers \* 2"):
        sk.recurrent_stack("lstm", x, [w], bidirectional=True)
    with pytest.raises(ValueError, match="biases must be given for every layer"):
        sk.recurrent_stack("lstm", x, [w, (np.zeros((8, 2)), np.zeros((8, 2)), np.zeros(8), np.zeros(8))])
    with pytest.raises(ValueError, match=r"dropout_masks: expected shape"):
        sk.recurrent_stack("lstm", x, [w, (np.zeros((8, 2)), np.zeros((8, 2)), None, None)],
                           dropout_masks=np.ones((1, 3, 2, 3)))
    with pytest.raises(ValueError, match="w_hr must be given for every layer"):
        sk.recurrent_stack("lstm", x, [(*w, np.zeros((2, 2))), w], bidirectional=True)
    with pytest.raises(ValueError, match=r"expected \(w_ih, w_hh, b_ih, b_hh\), got 5"):
        sk.recurrent_stack("gru", x, [(np.zeros((6, 4)), np.zeros((6, 2)), None, None, None)])
    with pytest.raises(ValueError, match=r"w_hr: expected shape \(proj_size, hidden\) = \(1, 2\)"):
        sk.recurrent_stack("lstm", x, [(np.zeros((8, 4)), np.zeros((8, 1)), None, None,
                                        np.zeros((1, 3)))])
    with pytest.raises(ValueError, match=r"h0: expected shape \(num_layers\*1, batch, proj_size\)"):
        sk.recurrent_stack("lstm", x, [(np.zeros((8, 4)), np.zeros((8, 1)), None, None,
                                        np.zeros((1, 2)))], h0=np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="c0: only the lstm cell"):
        sk.recurrent_stack("gru", x, [(np.zeros((6, 4)), np.zeros((6, 2)), None, None)],
                           c0=np.zeros((1, 2, 2)))
    *_, saved = sk.recurrent_stack("lstm", x, [w], training=True)
    with pytest.raises(ValueError, match="reference implementation|kernel implementation"):
        from seqkern import reference
        reference.recurrent_stack_backward(saved)
