"""seqkern.recurrent_stack (layers x directions x lengths x dropout in one C++ call) against its
NumPy twin, and both against central differences in float64."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import seqkern as sk
from seqkern import reference
from seqkern.gradcheck import gradcheck
from stack_cases import CELLS, WEIGHT_NAMES, assert_close, flatten, make_stack, output_grads, run

F32_TOL, F64_TOL = 3e-5, 1e-12


def as_f64(p):
    q = dict(p)
    for k in ("x", "h0", "c0", "dropout_masks"):
        if q[k] is not None:
            q[k] = q[k].astype(np.float64)
    q["weights"] = [tuple(None if w is None else w.astype(np.float64) for w in ws)
                    for ws in p["weights"]]
    return q


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_stack_matches_twin(cell, layers, bidirectional, lengths):
    D = 2 if bidirectional else 1
    p = make_stack(cell, 6, 4, 5, 7, layers, D, lengths=lengths, dropout=0.3)
    assert_close(*run(sk, p), *run(reference, p), F64_TOL)
    p32 = make_stack(cell, 6, 4, 5, 7, layers, D, np.float32, lengths=lengths, dropout=0.3)
    assert_close(*run(sk, p32), *run(reference, as_f64(p32)), F32_TOL)


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_projected_lstm_stack_matches_twin(layers, bidirectional, lengths):
    """torch's proj_size: h and each direction's y have width P = 3 < H = 7, c keeps H."""
    D = 2 if bidirectional else 1
    p = make_stack("lstm", 6, 4, 5, 7, layers, D, lengths=lengths, dropout=0.3, proj=3)
    outs, grads = run(sk, p)
    assert outs[0].shape == (6, 4, 3 * D) and outs[2].shape == (layers * D, 4, 7)
    assert grads["w0_hr"].shape == (3, 7)
    assert_close(outs, grads, *run(reference, p), F64_TOL)
    p32 = make_stack("lstm", 6, 4, 5, 7, layers, D, np.float32, lengths=lengths, dropout=0.3, proj=3)
    assert_close(*run(sk, p32), *run(reference, as_f64(p32)), F32_TOL)


@given(T=st.integers(1, 8), B=st.integers(1, 5), I=st.integers(1, 9), H=st.integers(1, 9),
       P=st.integers(1, 9), L=st.integers(1, 3), D=st.integers(1, 2), lengths=st.booleans(),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_projected_lstm_stack_any_configuration(T, B, I, H, P, L, D, lengths, bias, seed):
    p = make_stack("lstm", T, B, I, H, L, D, lengths=lengths, bias=bias, dropout=0.5, seed=seed,
                   proj=P)
    assert_close(*run(sk, p), *run(reference, p), F64_TOL)


@pytest.mark.parametrize("cell", CELLS)
@given(T=st.integers(1, 12), B=st.integers(1, 6), I=st.integers(1, 12), H=st.integers(1, 12),
       L=st.integers(1, 3), D=st.integers(1, 2), lengths=st.booleans(), bias=st.booleans(),
       dropout=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 2**16))
def test_stack_matches_twin_any_configuration(cell, T, B, I, H, L, D, lengths, bias, dropout, seed):
    p = make_stack(cell, T, B, I, H, L, D, lengths=lengths, bias=bias, dropout=dropout, seed=seed)
    assert_close(*run(sk, p), *run(reference, p), F64_TOL)


@pytest.mark.parametrize("cell", CELLS)
def test_inference_matches_training_forward(cell):
    p = make_stack(cell, 5, 3, 4, 6, 3, 2, np.float32, lengths=True, dropout=0.5)
    *train, _ = sk.recurrent_stack(**p, training=True)
    for a, b in zip(sk.recurrent_stack(**p), train):
        np.testing.assert_array_equal(a, b)


def test_reverse_direction_starts_at_each_sequence_end():
    """A one-layer reverse-only view: the reverse half of a bidirectional stack on x equals a
    forward run on each sequence reversed in place."""
    p = make_stack("lstm", 6, 3, 2, 4, 1, 2, lengths=True)
    y, h_n, c_n = sk.recurrent_stack(**p)
    x, lengths = p["x"], p["lengths"]
    w_ih, w_hh, b_ih, b_hh = p["weights"][1]
    for b in range(3):
        n = lengths[b]
        yb, hb, cb = sk.lstm(x[n - 1::-1, b:b + 1], p["h0"][1, b:b + 1], p["c0"][1, b:b + 1],
                             w_ih, w_hh, b_ih, b_hh)
        np.testing.assert_allclose(y[:n, b, 4:], yb[::-1, 0], atol=1e-12)
        assert not y[n:, b].any()
        np.testing.assert_allclose(h_n[1, b], hb[0], atol=1e-12)


def stack_loss(impl, p, douts):
    """The scalar <dy, y> + <dh, h_n> (+ <dc, c_n>) as a function of named float64 arrays."""
    names = list(flatten({"x": p["x"], "h0": p["h0"], "c0": p["c0"], "weights": p["weights"]}))

    def loss(**arrays):
        q = dict(p, x=arrays["x"], h0=arrays["h0"], c0=arrays.get("c0"))
        q["weights"] = [tuple(arrays.get(f"w{k}_{n}") for n in WEIGHT_NAMES[:len(w)])
                        for k, w in enumerate(p["weights"])]
        outs = impl.recurrent_stack(**q)
        return sum(float(np.sum(d * o)) for d, o in zip(douts, outs) if d is not None)

    inputs = flatten({"x": p["x"], "h0": p["h0"], "c0": p["c0"], "weights": p["weights"]})
    return loss, {k: inputs[k] for k in names}


@pytest.mark.parametrize("impl", [sk, reference], ids=["kernel", "twin"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("L,D,lengths", [(2, 2, True), (3, 1, False), (1, 2, True)],
                         ids=["2x-bi-lengths", "3x-uni", "1x-bi-lengths"])
def test_stack_gradients_match_finite_differences(impl, cell, L, D, lengths):
    p = make_stack(cell, 4, 3, 3, 3, L, D, lengths=lengths, dropout=0.4, seed=5)
    check_stack_gradients(impl, p)


@pytest.mark.parametrize("impl", [sk, reference], ids=["kernel", "twin"])
@pytest.mark.parametrize("L,D", [(2, 2), (1, 1)], ids=["2x-bi", "1x-uni"])
def test_projected_lstm_stack_gradients_match_finite_differences(impl, L, D):
    check_stack_gradients(impl, make_stack("lstm", 4, 3, 3, 4, L, D, lengths=True, dropout=0.4,
                                           seed=6, proj=2))


def check_stack_gradients(impl, p):
    douts = output_grads(p)
    *_, saved = impl.recurrent_stack(**p, training=True)
    analytic = flatten(impl.recurrent_stack_backward(saved, *douts))
    loss, inputs = stack_loss(impl, p, douts)
    gradcheck(loss, inputs, analytic, rtol=1e-5, atol=1e-7)


def check_without_gradients(p):
    """need_x=False, need_h0=False and both: those gradients are None (their products skipped),
    every other one the same bits as with them."""
    dy, dh, dc = output_grads(p)
    *_, saved = sk.recurrent_stack(**p, training=True)
    full = flatten(sk.recurrent_stack_backward(saved, dy, dh, dc))
    for skipped in ({"x"}, {"h0"}, {"x", "h0"}):
        *_, saved = sk.recurrent_stack(**p, training=True)
        grads = sk.recurrent_stack_backward(saved, dy, dh, dc,
                                            **{f"need_{k}": False for k in skipped})
        assert all(grads[k] is None for k in skipped)
        part = flatten(grads)
        assert part.keys() == full.keys() - skipped
        for k in part:
            np.testing.assert_array_equal(part[k], full[k], err_msg=k)


@pytest.mark.parametrize("cell", CELLS)
@given(T=st.integers(1, 8), B=st.integers(1, 5), I=st.integers(1, 9), H=st.integers(1, 9),
       L=st.integers(1, 3), D=st.integers(1, 2), lengths=st.booleans(), seed=st.integers(0, 2**16))
def test_stack_without_x_or_h0_gradient_keeps_the_others(cell, T, B, I, H, L, D, lengths, seed):
    check_without_gradients(make_stack(cell, T, B, I, H, L, D, np.float32, lengths=lengths,
                                       dropout=0.5, seed=seed))


# The ways x's gradient is made: in the backward time loop (w_ih small), after it from the
# gathered rows of a long batch, or from the rows that ran (lengths), and with a projection.
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T, B, I, H, lengths", [(3, 2, 5, 7, True), (40, 32, 24, 16, False),
                                                 (40, 32, 24, 16, True), (3, 4, 700, 64, True)])
def test_stack_without_x_or_h0_gradient_on_each_path(cell, T, B, I, H, lengths):
    for D in (1, 2):
        check_without_gradients(make_stack(cell, T, B, I, H, 2, D, np.float32, lengths=lengths))
        check_without_gradients(make_stack(cell, T, B, I, H, 1, D, np.float32, lengths=lengths))
    if cell == "lstm":
        check_without_gradients(make_stack(cell, T, B, I, H, 1, 1, np.float32, proj=5))


def check_frozen_weights(p):
    """need_weights: a frozen weight's gradient is None (its products skipped), every other one
    the same bits as with it: a whole layer-direction frozen, a bias alone (the LSTM's and RNN's
    one bias gradient then reaches the other), and the recurrent weights of the last one."""
    dy, dh, dc = output_grads(p)
    *_, saved = sk.recurrent_stack(**p, training=True)
    full = flatten(sk.recurrent_stack_backward(saved, dy, dh, dc))
    K, n = len(p["weights"]), len(p["weights"][0])
    for frozen in ({(0, i) for i in range(n)}, {(0, 2)}, {(K - 1, 1), (K - 1, 3)}):
        need = [tuple((k, i) not in frozen for i in range(n)) for k in range(K)]
        *_, saved = sk.recurrent_stack(**p, training=True)
        part = flatten(sk.recurrent_stack_backward(saved, dy, dh, dc, need_weights=need))
        gone = {f"w{k}_{WEIGHT_NAMES[i]}" for k, i in frozen}
        assert part.keys() == full.keys() - gone
        for k in part:
            np.testing.assert_array_equal(part[k], full[k], err_msg=k)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T, B, I, H, lengths", [(3, 2, 5, 7, True), (40, 32, 24, 16, False)])
def test_stack_with_frozen_weights_keeps_the_other_gradients(cell, T, B, I, H, lengths):
    for L, D in ((2, 2), (2, 1), (1, 2), (1, 1)):
        check_frozen_weights(make_stack(cell, T, B, I, H, L, D, np.float32, lengths=lengths))
    if cell == "lstm":
        check_frozen_weights(make_stack(cell, T, B, I, H, 2, 1, np.float32, proj=5))


@pytest.mark.parametrize("cell", CELLS)
def test_stack_gives_bitwise_same_results_for_any_repeat(cell):
    p = make_stack(cell, 9, 7, 5, 11, 2, 2, np.float32, lengths=True)
    a, ga = run(sk, p)
    b, gb = run(sk, p)
    for u, v in zip(a + list(ga.values()), b + list(gb.values())):
        if u is not None:
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_one_layer_stack_gives_the_stack_kernels_bits(cell, lengths):
    """A stack of one layer and direction runs its cell's one-layer function; its outputs are
    those of the stack kernel (_core.stack_forward) to the bit."""
    from seqkern import _core

    p = make_stack(cell, 9, 6, 5, 11, 1, 1, np.float32, lengths=lengths)
    T, B, H = 9, 6, 11
    w_ih, w_hh, b_ih, b_hh = p["weights"][0][:4]
    h0 = np.zeros((1, B, H), np.float32) if p["h0"] is None else p["h0"]
    c0 = None
    if cell == "lstm":
        c0 = np.zeros((1, B, H), np.float32) if p["c0"] is None else p["c0"]
    lens = None if p["lengths"] is None else np.asarray(p["lengths"], np.int32)
    order = np.arange(B) if lens is None else np.argsort(-lens, kind="stable")  # longest first

    def take(a, axis=1):
        return np.ascontiguousarray(np.take(a, order, axis))

    y, h_n = np.empty((T, B, H), np.float32), np.empty((1, B, H), np.float32)
    c_n = np.empty((1, B, H), np.float32) if cell == "lstm" else None
    _core.stack_forward(getattr(_core.Cell, cell), 1, take(p["x"]), [w_ih], [w_hh],
                        [] if b_ih is None else [b_ih], [] if b_hh is None else [b_hh], [],
                        None if lens is None else take(lens, 0), take(h0),
                        None if c0 is None else take(c0), None, y, h_n, c_n, None, None, None,
                        None, None)
    outs = sk.recurrent_stack(cell, p["x"], p["weights"], p["h0"], p["c0"], p["lengths"])
    for got, want in zip(outs, (y, h_n, c_n)):
        np.testing.assert_array_equal(got, np.take(want, np.argsort(order), 1))
