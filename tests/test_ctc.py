"""sk.ctc_loss: kernel vs NumPy twin, finite differences, torch's ctc_loss (losses, and
gradients through a log-softmax), decoders, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import seqkern as sk
from seqkern import reference
from seqkern.gradcheck import gradcheck

REDUCTIONS = ["mean", "sum", "none"]


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def problem(T, B, C, S, seed=0, dtype=np.float64, blank=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, C))
    labels = [c for c in range(C) if c != blank]
    targets = rng.choice(labels, (B, S))
    if S >= 3:
        targets[0, 1] = targets[0, 0]  # a repeat: needs a blank between
    input_lengths = rng.integers(1, T + 1, B)
    target_lengths = rng.integers(0, S + 1, B)
    return x.astype(dtype), targets, input_lengths, target_lengths


def dloss(reduction, B, seed=2):
    return np.random.default_rng(seed).standard_normal(B) if reduction == "none" else 1.3


@given(T=st.integers(1, 12), B=st.integers(1, 4), C=st.integers(2, 7), S=st.integers(0, 5),
       reduction=st.sampled_from(REDUCTIONS), zero_infinity=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 10000))
def test_kernel_matches_twin(T, B, C, S, reduction, zero_infinity, dtype, seed):
    x, targets, il, tl = problem(T, B, C, S, seed)
    lp = log_softmax(x).astype(dtype)
    kw = dict(reduction=reduction, zero_infinity=zero_infinity)
    loss, saved = sk.ctc_loss(lp, targets, il, tl, training=True, **kw)
    want, rsaved = reference.ctc_loss(lp, targets, il, tl, training=True, **kw)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(loss, want, rtol=tol, atol=tol)
    d = dloss(reduction, B)
    np.testing.assert_allclose(sk.ctc_loss_backward(saved, d)["log_probs"],
                               reference.ctc_loss_backward(rsaved, d)["log_probs"], rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("impl", [sk, reference], ids=["kernel", "twin"])
def test_finite_differences(reduction, impl):
    x, targets, _, _ = problem(6, 3, 4, 3, seed=1)
    lp = log_softmax(x)
    il, tl = np.array([6, 5, 4]), np.array([3, 0, 2])
    d = dloss(reduction, 3)
    _, saved = impl.ctc_loss(lp, targets, il, tl, reduction=reduction, training=True)
    analytic = impl.ctc_loss_backward(saved, d)

    def f(log_probs):  # log_probs perturbed freely: the true derivative, no softmax
        return float(np.sum(d * impl.ctc_loss(log_probs, targets, il, tl, reduction=reduction)))

    gradcheck(f, {"log_probs": lp}, analytic)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("concatenated", [False, True])
def test_matches_torch(dtype, reduction, zero_infinity, concatenated):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    T, B, C, S = 60, 6, 30, 20
    x = rng.standard_normal((T, B, C)).astype(dtype)
    targets = rng.integers(1, C, (B, S))
    targets[1, 3:6] = 7                                    # repeats
    il = np.array([60, 45, 30, 12, 60, 5])
    tl = np.array([20, 15, 0, 10, 7, 20])                  # an empty target; 5 frames for 20 labels
    if concatenated:
        targets_in = np.concatenate([targets[b, :n] for b, n in enumerate(tl)])
    else:
        targets_in = targets
    xt = torch.tensor(x, requires_grad=True)
    lpt = torch.log_softmax(xt, dim=2)
    want = torch.nn.functional.ctc_loss(lpt, torch.tensor(targets_in), torch.tensor(il),
                                        torch.tensor(tl), reduction=reduction,
                                        zero_infinity=zero_infinity)
    lp = lpt.detach().numpy()
    loss, saved = sk.ctc_loss(lp, targets_in, il, tl, reduction=reduction,
                              zero_infinity=zero_infinity, training=True)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=tol, atol=tol)
    if not zero_infinity:
        assert np.isinf(np.asarray(sk.ctc_loss(lp, targets_in, il, tl, reduction="none"))[5])
        return
    d = dloss(reduction, B)
    (want * torch.tensor(d, dtype=want.dtype)).sum().backward()
    g = sk.ctc_loss_backward(saved, d)["log_probs"]
    dx = g - np.exp(lp) * g.sum(axis=2, keepdims=True)    # through the log-softmax
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)


def test_greedy_decode_hand_cases():
    C = 4
    def frames(path):
        lp = np.full((len(path), 1, C), -10.0)
        lp[np.arange(len(path)), 0, path] = 0.0
        return lp
    assert sk.ctc_greedy_decode(frames([1, 1, 0, 1, 2, 2, 0, 0, 3]), [9]) == [[1, 1, 2, 3]]
    assert sk.ctc_greedy_decode(frames([0, 0, 0]), [3]) == [[]]
    assert sk.ctc_greedy_decode(frames([2, 2, 2, 1]), [3]) == [[2]]  # past input length ignored
    assert sk.ctc_greedy_decode(frames([2, 0, 2]), [3], blank=2) == [[0]]


def test_beam_search():
    rng = np.random.default_rng(0)
    T, B, C = 30, 5, 6
    # peaked frames: the best class holds most of each frame's mass
    x = rng.standard_normal((T, B, C))
    x[np.arange(T)[:, None], np.arange(B)[None, :], rng.integers(0, C, (T, B))] += 6
    lp = log_softmax(x)
    il = np.array([30, 17, 1, 25, 30])
    seqs, scores = sk.ctc_beam_search(lp, il, beam_width=1)
    assert seqs == sk.ctc_greedy_decode(lp, il)
    # flatter frames and a real beam: the best score is a lower bound of the exact likelihood
    lp = log_softmax(rng.standard_normal((T, B, C)))
    seqs, scores = sk.ctc_beam_search(lp, il, beam_width=8)
    for b, (seq, score) in enumerate(zip(seqs, scores)):
        exact = -sk.ctc_loss(lp[:, b:b + 1], np.array(seq, dtype=np.int64), il[b:b + 1],
                             [len(seq)], reduction="sum")
        assert score <= exact + 1e-9
        assert score >= exact - 5.0  # and not far from it
    with pytest.raises(ValueError, match="beam_width"):
        sk.ctc_beam_search(lp, il, beam_width=0)


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 30), B=st.integers(1, 4), C=st.integers(2, 10), beam=st.integers(1, 9),
       spread=st.sampled_from([0.5, 2.0, 6.0]), seed=st.integers(0, 2**16), data=st.data())
def test_beam_search_matches_twin(T, B, C, beam, spread, seed, data):
    """The C++ search against the NumPy twin: the same best prefixes and scores, for input
    lengths from 0 to T, any blank, flat and peaked frames."""
    rng = np.random.default_rng(seed)
    lp = log_softmax(spread * rng.standard_normal((T, B, C)))
    il = rng.integers(0, T + 1, B)
    blank = data.draw(st.integers(0, C - 1))
    seqs, scores = sk.ctc_beam_search(lp, il, beam, blank)
    want_seqs, want_scores = reference.ctc_beam_search(lp, il, beam, blank)
    assert seqs == want_seqs
    np.testing.assert_allclose(scores, want_scores, rtol=1e-12, atol=1e-12)


def test_beam_search_takes_nan_and_infinite_frames():
    """NaN ranks last in the C++ search's sorts (a plain > is no order with NaN, and a sort
    given one may read out of bounds): such frames decode, and finite sequences still match."""
    rng = np.random.default_rng(1)
    lp = rng.standard_normal((20, 3, 6))
    lp[rng.random(lp.shape) < 0.2] = np.nan
    lp[rng.random(lp.shape) < 0.1] = -np.inf
    seqs, scores = sk.ctc_beam_search(lp, [20, 10, 0], 5)
    assert len(seqs) == 3 and scores[2] == 0.0 and seqs[2] == []


def test_bad_input():
    x, targets, il, tl = problem(8, 3, 5, 4, seed=4)
    lp = log_softmax(x)
    with pytest.raises(ValueError, match=r"input_lengths: each must be in 0..T = 0..8"):
        sk.ctc_loss(lp, targets, il + 8, tl)
    with pytest.raises(ValueError, match=r"target_lengths: each must be in 0..S = 0..4"):
        sk.ctc_loss(lp, targets, il, tl + 5)
    bad = targets.copy()
    bad[0, 0] = 0
    with pytest.raises(ValueError, match=r"targets: the blank \(0\) cannot be a label"):
        sk.ctc_loss(lp, bad, il, np.full(3, 4))
    bad[0, 0] = 5
    with pytest.raises(ValueError, match=r"targets: ids must be in 0..4"):
        sk.ctc_loss(lp, bad, il, np.full(3, 4))
    with pytest.raises(ValueError, match=r"targets: expected shape \(batch, S\) with batch = 3"):
        sk.ctc_loss(lp, targets[:2], il, tl)
    with pytest.raises(ValueError, match=r"input_lengths: expected shape \(batch,\)"):
        sk.ctc_loss(lp, targets, il[:2], tl)
    with pytest.raises(ValueError, match="1-D targets must hold"):
        sk.ctc_loss(lp, targets.reshape(-1), il, tl)
    with pytest.raises(ValueError, match="blank: expected a class"):
        sk.ctc_loss(lp, targets, il, tl, blank=5)
    for blank in (1.5, None, False):
        with pytest.raises(TypeError, match="blank: expected an integer"):
            sk.ctc_loss(lp, targets, il, tl, blank=blank)
        with pytest.raises(TypeError, match="blank: expected an integer"):
            sk.ctc_greedy_decode(lp, il, blank=blank)
    with pytest.raises(TypeError, match="log_probs: expected float32 or float64"):
        sk.ctc_loss(lp.astype(np.int64), targets, il, tl)
