"""Fused RNN/LSTM/GRU kernels three ways: against the NumPy twin, against central differences in
float64 (twin and kernel), and against torch.nn with the same weights."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import seqkern as sk
from recurrent_cases import (
    OP_IDS, OPS, TORCH_OP_IDS, TORCH_OPS, as_float64, assert_same, forward, forward_backward, random_lengths,
    scaled_error, torch_forward_backward,
)
from seqkern import bench, reference
from seqkern.gradcheck import check_op

F32_TOL = 2e-5   # float32 kernel vs float64 twin, relative to the size of each output/gradient
F64_TOL = 1e-12  # float64 kernel vs float64 twin

# Odd shapes on purpose: T=1, B=1, H not a multiple of 8, uneven lengths.
SHAPES = [(1, 1, 1, 1), (1, 3, 5, 7), (6, 1, 4, 9), (7, 4, 3, 13), (5, 5, 17, 8), (12, 3, 6, 33)]


def problem(cell, T, B, I, H, dtype=np.float64, lengths=False, bias=True, seed=0):
    rng = np.random.default_rng(seed + 1000)
    p = bench.make_problem(cell, T, B, I, H, dtype=dtype, seed=seed,
                           lengths=random_lengths(rng, T, B) if lengths else None)
    if not bias:
        p["b_ih"] = p["b_hh"] = None
    return p


def assert_matches_twin(cell, options, make):
    """seqkern against the NumPy twin (in float64) on make(dtype)'s problem, in float64 and in
    float32, each within its tolerance."""
    for dtype, tol in ((np.float64, F64_TOL), (np.float32, F32_TOL)):
        p = make(dtype)
        ref = forward_backward(reference, cell, as_float64(p), options)
        assert_same(*forward_backward(sk, cell, p, options), *ref, tol)


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_kernel_matches_twin(cell, options, shape, lengths):
    p64 = problem(cell, *shape, lengths=lengths)
    ref = forward_backward(reference, cell, p64, options)
    assert_same(*forward_backward(sk, cell, p64, options), *ref, F64_TOL)
    p32 = problem(cell, *shape, dtype=np.float32, lengths=lengths)
    ref32 = forward_backward(reference, cell, as_float64(p32), options)
    assert_same(*forward_backward(sk, cell, p32, options), *ref32, F32_TOL)


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@given(T=st.integers(1, 40), B=st.integers(1, 12), I=st.integers(1, 40), H=st.integers(1, 40),
       lengths=st.booleans(), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_kernel_matches_twin_any_shape(cell, options, T, B, I, H, lengths, bias, seed):
    p64 = problem(cell, T, B, I, H, lengths=lengths, bias=bias, seed=seed)
    ref = forward_backward(reference, cell, p64, options)
    assert_same(*forward_backward(sk, cell, p64, options), *ref, F64_TOL)
    p32 = problem(cell, T, B, I, H, dtype=np.float32, lengths=lengths, bias=bias, seed=seed)
    ref32 = forward_backward(reference, cell, as_float64(p32), options)
    assert_same(*forward_backward(sk, cell, p32, options), *ref32, F32_TOL)


@pytest.mark.parametrize("cell,options", OPS + [("lstm", {"w_hr": "proj"})], ids=OP_IDS + ["lstm-proj"])
@pytest.mark.parametrize("B", [3, 40], ids=["team", "batch-split"])
def test_kernel_matches_twin_with_lengths_longest_first(cell, options, B):
    """Sorted lengths (ties included) let each step's product stop at the last running row, and
    here, with about half of the (step, sequence) pairs run, the backward's products after its
    time loop take the rows that ran only, gathered (StepRows, DeferredRows)."""
    rng = np.random.default_rng(B)
    T, H = 24, 64  # B = 3 on 2 threads: work enough for a team, 2 panels of units a member
    lengths = np.sort(rng.integers(1, T + 1, B))[::-1].copy()
    lengths[1] = lengths[0]
    options = dict(options)
    for dtype, tol in ((np.float64, F64_TOL), (np.float32, F32_TOL)):
        p = bench.make_problem(cell, T, B, 6, H, dtype=dtype, seed=B, lengths=lengths)
        if "w_hr" in options:  # an LSTM projection to 4 values
            options["w_hr"] = rng.uniform(-0.3, 0.3, (4, H)).astype(dtype)
            p["w_hh"] = np.ascontiguousarray(p["w_hh"][:, :4])
            p["h0"] = np.ascontiguousarray(p["h0"][:, :4])
        ref = forward_backward(reference, cell, as_float64(p), as_float64(options))
        assert_same(*forward_backward(sk, cell, p, options), *ref, tol)


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("lengths", ["full", "unsorted", "longest-first", "longest-first-most"])
def test_kernel_matches_twin_over_many_rows(cell, options, lengths):
    """T*B >= 1024 rows: the LSTM's backward gathers [x | h_{t-1}] for one weight-gradient
    product (kGatherRows), and the LSTM's and RNN's, with a small w_ih, compute dx inside their
    time loops, zeroing the rows of finished sequences after it: lengths unsorted, longest first
    with about half of the (step, sequence) pairs run (the compact layout), and longest first
    with nearly all run."""
    rng = np.random.default_rng(7)
    T, B = 16, 80
    L = {"full": None, "unsorted": random_lengths(rng, T, B),
         "longest-first": np.sort(random_lengths(rng, T, B))[::-1].copy(),
         "longest-first-most": np.r_[np.full(B - 3, T), [T - 1, 5, 2]]}[lengths]
    assert_matches_twin(cell, options, lambda dtype: bench.make_problem(
        cell, T, B, 5, 12, dtype=dtype, seed=3, lengths=L))


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("lengths", ["full", "longest-first"])
def test_kernel_matches_twin_past_blas_rows(cell, options, lengths):
    """600 sequences (300 rows a thread on 2 threads, past kBlasRows) with a small step matrix
    (kPackedAnyRowsBytes): the step products stay on the packed kernels, each step projecting its
    own inputs, instead of going to BLAS."""
    rng = np.random.default_rng(11)
    T, B = 4, 600
    L = None if lengths == "full" else np.sort(random_lengths(rng, T, B))[::-1].copy()
    assert_matches_twin(cell, options, lambda dtype: bench.make_problem(
        cell, T, B, 7, 19, dtype=dtype, seed=5, lengths=L))


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("B,H", [(1, 37), (1, 150), (3, 150), (2, 128), (3, 256)], ids=str)
def test_kernel_matches_twin_on_a_team(cell, options, B, H):
    """Batches small enough for the threads to share each step's product by columns, with work
    enough for a team: every other step visits the panels last to first (StepSlice::descending),
    here over a partial panel (H = 37) and over groups of four panels with one left (H = 150).
    Up to 3 sequences, at AVX-512, a member whose share starts on a multiple of 4 or 8 panels
    (H = 128, 256 on 2 threads) reads them grouped (kGroupedRows), 1 to 3 rows a product as the
    uneven lengths end."""
    assert_matches_twin(cell, options, lambda dtype: problem(
        cell, 40, B, 64, H, dtype=dtype, lengths=B > 1, seed=B))


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("B", [8, 12])
def test_kernel_matches_twin_at_4_to_7_sequences_a_thread(cell, options, B):
    """H = 200 (kColumnSplitMid) and 4 to 7 sequences a thread on 2 threads: a team on most
    CPUs, the batch split on Zen 4 (packed_gemm.h, column_split), uneven lengths."""
    assert_matches_twin(cell, options, lambda dtype: problem(
        cell, 12, B, 32, 200, dtype=dtype, lengths=True, seed=B))


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
def test_kernel_matches_twin_past_4_mb_on_a_batch_split(cell, options):
    """Weights of 4 to 8 MB (the LSTM 6.7 MB, the GRU 5 MB; the RNN 1.7 MB) on a batch split of
    10 sequences a thread: each step's input projection in the time loop on AMD's AVX-512 cores
    (kStepProjectionBytesWide), one GEMM up front elsewhere, uneven lengths."""
    assert_matches_twin(cell, options, lambda dtype: problem(
        cell, 3, 20, 700, 384, dtype=dtype, lengths=True, seed=7))


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("lengths", ["full", "uneven", "longest first"])
def test_kernel_matches_twin_past_8_mb_on_a_batch_split(cell, options, lengths):
    """Weights over 8 MB (kStepProjectionBytesWide) on a batch split of 20 sequences a thread:
    every step's input projection up front on every CPU, and each step's recurrent product apart
    from it, added by the cell (InputProjection::apart), in training and in inference; lengths
    longest first project only the rows that run (StepRows::compact)."""
    I, H = {"lstm": (700, 600), "gru": (600, 700), "rnn": (1200, 1000)}[cell]
    T, B = 4, 40
    make = {"full": lambda rng: None, "uneven": lambda rng: random_lengths(rng, T, B),
            "longest first": lambda rng: np.sort(random_lengths(rng, T, B))[::-1].copy()}[lengths]

    def make_problem(dtype):
        p = problem(cell, T, B, I, H, dtype=dtype, seed=11)
        p["lengths"] = make(np.random.default_rng(5))
        return p

    assert_matches_twin(cell, options, make_problem)
    p32 = make_problem(np.float32)
    got = forward(sk, cell, p32, options)
    want = forward(reference, cell, as_float64(p32), options)
    for i, (a, b) in enumerate(zip(got, want)):
        assert scaled_error(a, b) <= F32_TOL, (i, scaled_error(a, b))


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("B", [3, 20])
def test_kernel_matches_twin_on_a_team_of_large_weights(cell, options, B):
    """H = 1024 (kColumnSplitLarge): a team up to 16 sequences a thread, and past
    kStepProjectionBytes of weights, the input projection of every step up front (one GEMM)
    rather than in the team's first step."""
    assert_matches_twin(cell, options, lambda dtype: problem(
        cell, 2, B, 24, 1024, dtype=dtype, lengths=True, seed=B))


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("B", [20, 95, 100])
def test_kernel_matches_twin_in_one_step(cell, options, B):
    """One step (a cell's call, a batched decoder's): a team up to 48 sequences a thread
    (kColumnSplitRowsOneStep, B = 20 and 95 on 2 threads), the batch split beyond (100)."""
    assert_matches_twin(cell, options, lambda dtype: problem(
        cell, 1, B, 40, 150, dtype=dtype, seed=B))


@pytest.mark.parametrize("impl", [sk, reference], ids=["kernel", "twin"])
@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("shape,lengths", [((1, 1, 2, 3), None), ((4, 3, 3, 5), [4, 1, 3]),
                                           ((3, 2, 2, 2), [2, 3])], ids=["T1", "uneven", "short"])
def test_gradients_match_finite_differences(impl, cell, options, shape, lengths):
    p = problem(cell, *shape, seed=3)
    p["lengths"] = None if lengths is None else np.array(lengths)
    if cell == "rnn" and options["nonlinearity"] == "relu":
        p["b_ih"] = p["b_ih"] + 0.3  # keep pre-activations away from relu's kink
    errors = check_op(getattr(impl, cell), getattr(impl, cell + "_backward"), p, **options)
    assert set(errors) >= {"x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"}


@pytest.mark.parametrize("cell,options", TORCH_OPS, ids=TORCH_OP_IDS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 5e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_matches_torch(cell, options, dtype, tol, lengths, bias):
    pytest.importorskip("torch")
    p = problem(cell, 9, 4, 7, 11, dtype=dtype, lengths=lengths, bias=bias, seed=5)
    assert_same(*forward_backward(sk, cell, p, options), *torch_forward_backward(cell, p, options), tol)


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("B", [3, 40], ids=["team", "batch-split"])
def test_inference_equals_training_forward(cell, options, B):
    p = problem(cell, 24, B, 4, 64, dtype=np.float32, lengths=True)  # B = 3: a team
    infer = forward(sk, cell, p, options)
    *train, _ = forward(sk, cell, p, options, training=True)
    for a, b in zip(infer, train):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
def test_lengths_semantics(cell, options):
    """Past a sequence's length: y is zero, the state is that of its last step, and running the
    sequence alone, cut to its length, gives the same numbers."""
    p = problem(cell, 8, 3, 4, 6, lengths=False)
    p["lengths"] = np.array([8, 3, 5])
    outs = forward(sk, cell, p, options)
    y, finals = outs[0], outs[1:]
    for b, n in enumerate(p["lengths"]):
        assert not y[n:, b].any()
        alone = dict(p, x=p["x"][:n, b:b + 1], h0=p["h0"][b:b + 1], lengths=None)
        if cell == "lstm":
            alone["c0"] = p["c0"][b:b + 1]
        outs_b = forward(sk, cell, alone, options)
        np.testing.assert_allclose(y[:n, b], outs_b[0][:, 0], rtol=1e-12, atol=1e-14)
        for f, f_b in zip(finals, outs_b[1:]):
            np.testing.assert_allclose(f[b], f_b[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
def test_gradient_is_zero_past_lengths(cell, options):
    p = problem(cell, 6, 2, 3, 4, lengths=False)
    p["lengths"] = np.array([6, 2])
    _, grads = forward_backward(sk, cell, p, options)
    assert not grads["x"][2:, 1].any()


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
def test_missing_state_and_gradients_mean_zeros(cell, options):
    p = problem(cell, 4, 2, 3, 5)
    zero = dict(p, h0=np.zeros_like(p["h0"]))
    none = dict(p, h0=None)
    if cell == "lstm":
        zero["c0"], none["c0"] = np.zeros_like(p["c0"]), None
    for a, b in zip(forward(sk, cell, zero, options), forward(sk, cell, none, options)):
        np.testing.assert_array_equal(a, b)
    *outs, saved = forward(sk, cell, p, options, training=True)
    backward = getattr(sk, cell + "_backward")
    g_none = backward(saved)
    g_zero = backward(saved, *[np.zeros_like(o) for o in outs])
    for k in g_none:
        if g_none[k] is not None:
            np.testing.assert_array_equal(g_none[k], g_zero[k])
            assert not g_none[k].any()


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
def test_non_contiguous_input_gives_the_same_answer(cell, options):
    p = problem(cell, 5, 3, 4, 6, dtype=np.float32, lengths=True)
    strided = dict(p)
    strided["x"] = np.asfortranarray(p["x"])
    strided["w_hh"] = np.ascontiguousarray(p["w_hh"].T).T  # same values, transposed layout
    wide = np.zeros((p["w_ih"].shape[0], 2 * p["w_ih"].shape[1]), np.float32)
    wide[:, ::2] = p["w_ih"]
    strided["w_ih"] = wide[:, ::2]
    assert not strided["x"].flags.c_contiguous and not strided["w_ih"].flags.c_contiguous
    for a, b in zip(forward(sk, cell, p, options), forward(sk, cell, strided, options)):
        np.testing.assert_array_equal(a, b)


def test_one_bias_only():
    p = problem("lstm", 4, 2, 3, 5)
    p["b_hh"] = None
    ref = forward_backward(reference, "lstm", p, {})
    got = forward_backward(sk, "lstm", p, {})
    assert_same(*got, *ref, F64_TOL)
    assert got[1]["b_hh"] is None and got[1]["b_ih"] is not None


def test_gru_bias_gradients_differ_in_the_n_block():
    p = problem("gru", 5, 3, 4, 6)
    _, g = forward_backward(sk, "gru", p, {})
    H = 6
    np.testing.assert_allclose(g["b_ih"][:2 * H], g["b_hh"][:2 * H], rtol=1e-12)
    assert not np.allclose(g["b_ih"][2 * H:], g["b_hh"][2 * H:])


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
def test_results_are_bitwise_reproducible(cell, options):
    p = problem(cell, 20, 16, 32, 64, dtype=np.float32, lengths=True)
    a = forward_backward(sk, cell, p, options)
    b = forward_backward(sk, cell, p, options)
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)
    for k in a[1]:
        if a[1][k] is not None:
            np.testing.assert_array_equal(a[1][k], b[1][k])


def test_gru_reset_before_is_the_cho_formula():
    """One step written out: n = tanh(W_in x + b_in + W_hn (r*h) + b_hn); differs from reset_after."""
    p = problem("gru", 1, 3, 4, 5)
    H = 5
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    x, h, w_ih, w_hh, b_ih, b_hh = (p[k] for k in ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"))
    gi, gh = x[0] @ w_ih.T + b_ih, h @ w_hh[:2 * H].T + b_hh[:2 * H]
    r, z = sig(gi[:, :H] + gh[:, :H]), sig(gi[:, H:2 * H] + gh[:, H:])
    n = np.tanh(gi[:, 2 * H:] + (r * h) @ w_hh[2 * H:].T + b_hh[2 * H:])
    want = (1 - z) * n + z * h
    y, h_n = sk.gru(**p, reset_after=False)
    np.testing.assert_allclose(y[0], want, atol=1e-12)
    assert not np.allclose(sk.gru(**p)[0], y)


def proj_problem(T, B, I, H, P, dtype=np.float64, lengths=None, seed=0):
    """An LSTM problem with torch's proj_size: w_hh (4H, P), w_hr (P, H), h0 (B, P)."""
    p = problem("lstm", T, B, I, H, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 7)
    p["w_hh"] = (rng.standard_normal((4 * H, P)) / np.sqrt(P)).astype(dtype)
    p["w_hr"] = (rng.standard_normal((P, H)) / np.sqrt(H)).astype(dtype)
    p["h0"] = p["h0"][:, :P].copy()
    p["lengths"] = lengths
    return p


@pytest.mark.parametrize("shape", [(1, 1, 2, 3, 1), (6, 4, 5, 9, 4), (5, 3, 3, 6, 5)], ids=str)
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_lstm_projection_matches_twin_and_finite_differences(shape, lengths):
    T, B = shape[:2]
    lens = random_lengths(np.random.default_rng(3), T, B) if lengths else None
    p = proj_problem(*shape, lengths=lens)
    assert_same(*forward_backward(sk, "lstm", p, {}), *forward_backward(reference, "lstm", p, {}),
                F64_TOL)
    p32 = proj_problem(*shape, dtype=np.float32, lengths=lens)
    assert_same(*forward_backward(sk, "lstm", p32, {}),
                *forward_backward(reference, "lstm", as_float64(p32), {}), F32_TOL)
    for impl in (sk, reference):
        check_op(impl.lstm, impl.lstm_backward, proj_problem(*shape, lengths=lens))


def test_lstm_projection_matches_twin_in_one_step_of_a_batch_split():
    """T = 1 and 50 sequences a thread: the products of h0 and of dg over the whole batch."""
    for dtype, tol in ((np.float64, F64_TOL), (np.float32, F32_TOL)):
        p = proj_problem(1, 100, 6, 40, 13, dtype=dtype)
        assert_same(*forward_backward(sk, "lstm", p, {}),
                    *forward_backward(reference, "lstm", as_float64(p), {}), tol)


def test_lstm_projection_matches_torch_proj_size():
    torch = pytest.importorskip("torch")
    p = proj_problem(6, 3, 4, 7, 3)
    m = torch.nn.LSTM(4, 7, proj_size=3).double()
    with torch.no_grad():
        for name, key in (("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh"), ("bias_ih_l0", "b_ih"),
                          ("bias_hh_l0", "b_hh"), ("weight_hr_l0", "w_hr")):
            getattr(m, name).copy_(torch.from_numpy(p[key]))
    x = torch.from_numpy(p["x"].copy()).requires_grad_()
    y, (h, c) = m(x, (torch.from_numpy(p["h0"])[None], torch.from_numpy(p["c0"])[None]))
    dy = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(torch.from_numpy(dy))
    y_sk, h_sk, c_sk, saved = sk.lstm(**p, training=True)
    g = sk.lstm_backward(saved, dy)
    np.testing.assert_allclose(y_sk, y.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(c_sk, c[0].detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(g["x"], x.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(g["w_hr"], m.weight_hr_l0.grad.numpy(), atol=1e-11)
    np.testing.assert_allclose(g["w_hh"], m.weight_hh_l0.grad.numpy(), atol=1e-11)


def test_lstm_projection_bad_shapes():
    p = proj_problem(3, 2, 4, 5, 3)
    with pytest.raises(ValueError, match=r"w_hr: expected shape \(proj_size, hidden\) = \(3, 5\)"):
        sk.lstm(**dict(p, w_hr=np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"h0: expected shape \(batch, proj_size\) = \(2, 3\)"):
        sk.lstm(**dict(p, h0=np.zeros((2, 5))))


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("T,B,H", [(1, 16, 40), (4, 3, 24), (3, 64, 33)], ids=str)
def test_a_first_state_not_wanted_skips_only_its_gradient(cell, T, B, H):
    """one_layer_train_backward without h0's gradient skips the first step's recurrent product
    (a cell's step: its only one); every other gradient keeps its bits."""
    from seqkern import _core
    rng = np.random.default_rng(T * B + H)
    G = {"lstm": 4, "rnn_tanh": 1, "rnn_relu": 1}.get(cell, 3)
    r = lambda *s: (0.5 * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
    x, h0, c0 = r(T, B, 7), r(B, H), r(B, H) if cell == "lstm" else None
    w_ih, w_hh, b_ih, b_hh = r(G * H, 7), r(G * H, H), r(G * H), r(G * H)
    args = (getattr(_core.Cell, cell), x, h0, c0, w_ih, w_hh, None)
    *outs, saved = _core.one_layer_train(*args, b_ih, b_hh)
    dy, dh, dc = r(T, B, H), r(B, H), r(B, H) if cell == "lstm" else None
    every = _core.one_layer_train_backward(*args, saved, dy, dh, dc, (True,) * 7)
    some = _core.one_layer_train_backward(*args, saved, dy, dh, dc, (True, False) + (True,) * 5)
    assert every[1] is not None and some[1] is None
    for i in (0, 2, 3, 4, 5, 6):
        if every[i] is not None or some[i] is not None:
            np.testing.assert_array_equal(some[i], every[i])


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("T,B,H", [(1, 1, 300), (1, 20, 150), (1, 100, 150), (4, 3, 24),
                                   (3, 64, 33), (2, 600, 19)], ids=str)
def test_a_zero_first_state_skips_only_its_product(cell, options, T, B, H):
    """A first state of zeros (given, or None) skips the first step's recurrent product; every
    path's detection reads all of it: a state zero but for its last value matches the twin. The
    shapes take a team of one row, one step on a team, one step of a batch split, a small layer,
    a batch split, and the packed kernels past BLAS's rows."""
    for dtype, tol in ((np.float64, F64_TOL), (np.float32, F32_TOL)):
        p = problem(cell, T, B, 7, H, dtype=dtype, seed=T + B)
        zeros = dict(p, h0=np.zeros_like(p["h0"]))
        last = dict(p, h0=np.zeros_like(p["h0"]))
        last["h0"][-1, -1] = 0.5
        for case in (p, zeros, last):
            assert_same(*forward_backward(sk, cell, case, options),
                        *forward_backward(reference, cell, as_float64(case), options), tol)
        for a, b in zip(forward(sk, cell, zeros, options), forward(sk, cell, dict(p, h0=None), options)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("T,B", [(1, 3), (3, 2)], ids=str)
def test_a_zero_first_state_keeps_nan_gradients(cell, options, T, B):
    """A NaN in the first step's incoming gradient reaches w_hh's gradient through the zero state
    (NaN * 0), as in torch: the product is skipped only for a finite first step's dg. Each row of
    w_hh's gradient is NaN where its gate's bias gradient (the sum of its dg) is NaN."""
    p = problem(cell, T, B, 5, 6, dtype=np.float32, seed=3)
    p["h0"] = np.zeros_like(p["h0"])
    dy, *rest = bench.output_grads(cell, p)
    dy[0, 0, 0] = np.nan
    *_, saved = forward(sk, cell, p, options, training=True)
    g = getattr(sk, cell + "_backward")(saved, dy, *rest)
    if options.get("nonlinearity") != "relu":  # (relu's derivative may select dg = 0)
        assert np.isnan(g["b_hh"]).any()
    np.testing.assert_array_equal(np.isnan(g["w_hh"]).all(axis=1), np.isnan(g["b_hh"]))
    np.testing.assert_array_equal(np.isnan(g["w_hh"]).any(axis=1), np.isnan(g["b_hh"]))


@pytest.mark.parametrize("cell", ["lstm", "lstm_projected", "gru", "gru_reset_before", "rnn_tanh"])
@pytest.mark.parametrize("T,B,H", [(1, 16, 40), (4, 3, 24), (16, 64, 33)], ids=str)
def test_frozen_weights_skip_only_their_gradients(cell, T, B, H):
    """one_layer_train_backward without a weight's gradient (torch's requires_grad=False: frozen
    weights) skips its products; every other gradient keeps its bits. (16, 64, 33) has rows enough
    for the products of both weight gradients in one (DeferredRows::weight_grads)."""
    from seqkern import _core
    rng = np.random.default_rng(T * B + H)
    projected = cell == "lstm_projected"
    kind = "lstm" if projected else cell
    G = {"lstm": 4, "rnn_tanh": 1}.get(kind, 3)
    S = 5 if projected else H
    r = lambda *s: (0.5 * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
    x, h0, c0 = r(T, B, 7), r(B, S), r(B, H) if kind == "lstm" else None
    w_ih, w_hh, b_ih, b_hh = r(G * H, 7), r(G * H, S), r(G * H), r(G * H)
    w_hr = r(S, H) if projected else None
    args = (getattr(_core.Cell, kind), x, h0, c0, w_ih, w_hh, w_hr)
    *outs, saved = _core.one_layer_train(*args, b_ih, b_hh)
    dy, dh, dc = r(T, B, S), r(B, S), r(B, H) if kind == "lstm" else None
    n = 8 if projected else 7
    every = _core.one_layer_train_backward(*args, saved, dy, dh, dc, (True,) * n)
    for frozen in ((3,), (4,), (3, 4), (3, 4, 7) if projected else (3, 4, 5, 6)):
        need = tuple(i not in frozen for i in range(n))
        some = _core.one_layer_train_backward(*args, saved, dy, dh, dc, need)
        for i in range(len(every)):
            if i in frozen:
                assert some[i] is None, (frozen, i)
            elif every[i] is not None:
                np.testing.assert_array_equal(some[i], every[i])
