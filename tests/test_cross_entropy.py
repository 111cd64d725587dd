"""sk.softmax_cross_entropy: kernel vs NumPy twin, finite differences, torch, bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import seqkern as sk
from seqkern import reference
from seqkern.gradcheck import gradcheck
from simd_levels import LEVELS, run_at_level

REDUCTIONS = ["mean", "sum", "none"]


def problem(shape, V, dtype, seed=0, ignored=0):
    rng = np.random.default_rng(seed)
    logits = (3 * rng.standard_normal((*shape, V))).astype(dtype)
    targets = rng.integers(0, V, shape)
    if ignored:
        targets.reshape(-1)[:ignored] = -100
    return logits, targets


def dloss_for(reduction, shape, dtype, seed=1):
    if reduction != "none":
        return 1.7
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@given(N=st.integers(1, 9), V=st.integers(1, 40), reduction=st.sampled_from(REDUCTIONS),
       smoothing=st.sampled_from([0.0, 0.1, 1.0]), dtype=st.sampled_from([np.float32, np.float64]),
       ignored=st.integers(0, 2))
def test_kernel_matches_twin(N, V, reduction, smoothing, dtype, ignored):
    logits, targets = problem((N,), V, dtype, seed=N * V, ignored=min(ignored, N - 1))
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    loss, saved = sk.softmax_cross_entropy(logits, targets, training=True, **kw)
    want, rsaved = reference.softmax_cross_entropy(logits, targets, training=True, **kw)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert np.shape(loss) == np.shape(want) and np.asarray(loss).dtype == dtype
    np.testing.assert_allclose(loss, want, rtol=tol, atol=tol)
    d = dloss_for(reduction, (N,), dtype)
    np.testing.assert_allclose(sk.softmax_cross_entropy_backward(saved, d),
                               reference.softmax_cross_entropy_backward(rsaved, d), rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("impl", [sk, reference], ids=["kernel", "twin"])
def test_finite_differences(reduction, smoothing, impl):
    logits, targets = problem((2, 3), 7, np.float64, ignored=1)
    d = dloss_for(reduction, (2, 3), np.float64)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    _, saved = impl.softmax_cross_entropy(logits, targets, training=True, **kw)
    analytic = {"logits": impl.softmax_cross_entropy_backward(saved, d)}

    def f(logits):
        return float(np.sum(d * impl.softmax_cross_entropy(logits, targets, **kw)))

    gradcheck(f, {"logits": logits}, analytic)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("V", [1, 13, 1000])
def test_matches_torch(dtype, reduction, smoothing, V):
    torch = pytest.importorskip("torch")
    logits, targets = problem((5, 3), V, dtype, ignored=2)
    d = dloss_for(reduction, (5, 3), dtype)
    loss, saved = sk.softmax_cross_entropy(logits, targets, reduction=reduction,
                                           label_smoothing=smoothing, training=True)
    g = sk.softmax_cross_entropy_backward(saved, d)
    x = torch.tensor(logits, requires_grad=True)
    want = torch.nn.functional.cross_entropy(x.reshape(-1, V), torch.tensor(targets.reshape(-1)),
                                             reduction=reduction, label_smoothing=smoothing)
    want = want.reshape(5, 3) if reduction == "none" else want
    (want * torch.tensor(d, dtype=want.dtype)).sum().backward()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=tol, atol=tol)


def masked(dtype):
    """Logits with classes masked out by -inf, as users mask a vocabulary: in a row whose target
    is kept (loss finite), in a row whose target is masked (inf), in a row masked but for its
    target (0), in a fully masked row (NaN, as torch's) and in an ignored row."""
    logits, targets = problem((6,), 7, dtype)
    targets[:] = [0, 4, 2, 5, 1, -100]
    logits[0, 3] = logits[1, [1, 4]] = -np.inf
    logits[2, [0, 1, 3, 4, 5, 6]] = -np.inf
    logits[3, :] = logits[5, 2] = -np.inf
    return logits, targets


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("impl", [sk, reference], ids=["kernel", "twin"])
def test_logits_masked_by_minus_infinity(impl, smoothing, dtype):
    """Without smoothing a class masked out adds nothing to the loss: it was 0 * -inf = NaN for
    the whole row (and so for a mean over the batch). With smoothing its share makes the row's
    loss inf, as in torch. The gradient is the softmax's minus the target distribution either
    way: finite."""
    logits, targets = masked(dtype)
    with np.errstate(invalid="ignore"):  # the fully masked row: NaN, as in torch
        losses = impl.softmax_cross_entropy(logits, targets, reduction="none",
                                            label_smoothing=smoothing)
    if smoothing == 0:
        assert 0 < losses[0] < np.inf and losses[1] == np.inf and losses[2] == 0
    else:
        assert (losses[:3] == np.inf).all()
    assert np.isnan(losses[3]) and 0 < losses[4] < np.inf and losses[5] == 0
    rows = [0, 2, 4, 5]  # the loss finite without smoothing
    loss, saved = impl.softmax_cross_entropy(logits[rows], targets[rows], training=True,
                                             label_smoothing=smoothing)
    assert np.isfinite(loss) == (smoothing == 0)
    g = impl.softmax_cross_entropy_backward(saved)
    assert np.isfinite(g).all() and not g[3].any()  # (row 3: the ignored one)
    if smoothing == 0:  # a masked class's probability is 0: so is its gradient, exactly
        assert (g[np.isneginf(logits[rows])] == 0).all()  # float32 gave 3e-39 (exp's clamp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_logits_masked_by_minus_infinity_match_torch(dtype, smoothing):
    torch = pytest.importorskip("torch")
    logits, targets = masked(dtype)
    got = sk.softmax_cross_entropy(logits, targets, reduction="none", label_smoothing=smoothing)
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(targets),
                                             reduction="none", label_smoothing=smoothing).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)  # inf and NaN in the same places
    finite = [0, 2, 4, 5]
    _, saved = sk.softmax_cross_entropy(logits[finite], targets[finite], training=True,
                                        label_smoothing=smoothing)
    x = torch.tensor(logits[finite], requires_grad=True)
    torch.nn.functional.cross_entropy(x, torch.tensor(targets[finite]),
                                      label_smoothing=smoothing).backward()
    g = sk.softmax_cross_entropy_backward(saved)
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert ((g == 0) == (x.grad.numpy() == 0)).all()  # zero where torch's is


MASKED_AT_LEVEL = """
import numpy as np, seqkern as sk
rng = np.random.default_rng(0)
for V in (3, 16, 37, 1000):  # a tail alone, whole vectors, both
    x = rng.standard_normal((4, V)).astype(np.float32)
    x[rng.random((4, V)) < 0.4] = -np.inf
    t = np.array([int(np.flatnonzero(np.isfinite(r))[0]) if np.isfinite(r).any() else 0 for r in x])
    x[np.arange(4), t] = 1.0
    _, saved = sk.softmax_cross_entropy(x, t, training=True)
    g = sk.softmax_cross_entropy_backward(saved)
    assert np.isfinite(g).all() and (g[np.isneginf(x)] == 0).all(), (V, g[np.isneginf(x)].max())
print(sk._core.simd_level())
"""


@pytest.mark.parametrize("level", LEVELS)
def test_masked_classes_get_no_gradient_at_every_simd_level(level, tmp_path):
    assert run_at_level(level, MASKED_AT_LEVEL, tmp_path).strip() == level


def test_ignore_index_other_than_default_and_all_ignored():
    logits, targets = problem((4,), 6, np.float64)
    targets[1] = 3
    a = sk.softmax_cross_entropy(logits, targets, ignore_index=3)
    keep = targets != 3
    assert a == pytest.approx(sk.softmax_cross_entropy(logits[keep], targets[keep]))
    assert np.isnan(sk.softmax_cross_entropy(logits, np.full(4, -100)))
    _, saved = sk.softmax_cross_entropy(logits, np.full(4, -100), training=True)
    assert not sk.softmax_cross_entropy_backward(saved).any()


def test_gradient_into_the_logits_buffer():
    logits, targets = problem((6,), 37, np.float32)
    _, saved = sk.softmax_cross_entropy(logits, targets, training=True)
    fresh = sk.softmax_cross_entropy_backward(saved)
    _, saved = sk.softmax_cross_entropy(logits, targets, training=True)
    inplace = sk.softmax_cross_entropy_backward(saved, out=logits)
    assert np.shares_memory(inplace, logits)
    np.testing.assert_array_equal(inplace, fresh)


def test_large_logits_do_not_overflow():
    logits = np.array([[1e4, 0.0, -1e4], [80.0, 90.0, 100.0]], np.float32)
    loss = sk.softmax_cross_entropy(logits, np.array([0, 0]), reduction="none")
    np.testing.assert_allclose(loss, [0.0, 20.0], atol=1e-4)


def test_uniform_logits_give_log_v():
    V = 123
    loss = sk.softmax_cross_entropy(np.zeros((10, V), np.float32), np.arange(10))
    assert loss == pytest.approx(np.log(V), rel=1e-6)


def test_same_result_for_any_thread_count():
    logits, targets = problem((300,), 500, np.float32)
    out = []
    for n in (1, 2, 3):
        sk.set_num_threads(n)
        loss, saved = sk.softmax_cross_entropy(logits, targets, training=True)
        out.append((loss, sk.softmax_cross_entropy_backward(saved)))
    sk.set_num_threads(2)
    for loss, g in out[1:]:
        assert loss == out[0][0]
        np.testing.assert_array_equal(g, out[0][1])


def test_bad_input():
    logits, targets = problem((4,), 5, np.float32)
    with pytest.raises(ValueError, match="targets: ids must be in 0..4 or -100"):
        sk.softmax_cross_entropy(logits, np.array([0, 1, 5, 2]))
    with pytest.raises(ValueError, match="targets: ids must be in"):
        sk.softmax_cross_entropy(logits, np.array([0, 1, -1, 2]))
    with pytest.raises(ValueError, match="targets: expected shape"):
        sk.softmax_cross_entropy(logits, targets[:3])
    with pytest.raises(TypeError, match="targets: expected an integer array"):
        sk.softmax_cross_entropy(logits, targets.astype(np.float32))
    with pytest.raises(TypeError, match="logits: expected float32 or float64"):
        sk.softmax_cross_entropy(logits.astype(np.int32), targets)
    with pytest.raises(ValueError, match="reduction"):
        sk.softmax_cross_entropy(logits, targets, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        sk.softmax_cross_entropy(logits, targets, label_smoothing=1.5)
    for index in (2.0, float("inf"), None, True):  # int() would have taken 2.0 as class 2
        with pytest.raises(TypeError, match="ignore_index: expected an integer"):
            sk.softmax_cross_entropy(logits, targets, ignore_index=index)
    assert np.isfinite(sk.softmax_cross_entropy(logits, targets, ignore_index=np.int64(2)))
    _, saved = sk.softmax_cross_entropy(logits, targets, reduction="none", training=True)
    with pytest.raises(ValueError, match="dloss: expected shape"):
        sk.softmax_cross_entropy_backward(saved, 1.0)
    with pytest.raises(ValueError, match="out:"):
        sk.softmax_cross_entropy_backward(saved, np.ones(4, np.float32), out=np.empty(3, np.float32))
    with pytest.raises(TypeError, match="saved"):
        sk.softmax_cross_entropy_backward(None)
