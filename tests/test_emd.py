"""The earth mover's distance (_core.emd, the transport problem under KeyedVectors.wmdistance)
against a linear-programming solution (scipy's HiGHS) and POT's network simplex: random masses
with zeros, ties and repeated costs, one-element sides, the plan's marginals, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqkern import _core


def lp_cost(a, b, C):
    """The optimal cost by linear programming: flows >= 0 with row sums a and column sums b."""
    optimize = pytest.importorskip("scipy.optimize")
    sparse = pytest.importorskip("scipy.sparse")
    n, m = C.shape
    rows = sparse.vstack([sparse.kron(sparse.eye(n), np.ones((1, m))),
                          sparse.kron(np.ones((1, n)), sparse.eye(m))])
    res = optimize.linprog(C.ravel(), A_eq=rows, b_eq=np.concatenate([a, b]), bounds=(0, None),
                           method="highs")
    assert res.status == 0
    return res.fun


def masses(rng, k, zeros):
    w = rng.random(k) * (rng.random(k) > zeros)
    w[rng.integers(k)] += 0.1
    return w / w.sum()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 14), m=st.integers(1, 14),
       zeros=st.sampled_from([0.0, 0.3]), kind=st.sampled_from(["random", "ties", "grid"]))
def test_emd_is_the_optimal_transport(seed, n, m, zeros, kind):
    rng = np.random.default_rng(seed)
    a, b = masses(rng, n, zeros), masses(rng, m, zeros)
    if kind == "random":
        C = rng.random((n, m)) * 10
    elif kind == "ties":  # few distinct costs: degenerate pivots
        C = rng.integers(0, 3, (n, m)).astype(np.float64)
    else:  # equal masses and distances of points on a line: many optimal plans
        a, b = np.full(n, 1 / n), np.full(m, 1 / m)
        C = np.abs(np.arange(n)[:, None] / n - np.arange(m)[None] / m)
    cost, plan = _core.emd(a, b, C, return_flow=True)
    assert cost == pytest.approx(lp_cost(a, b, C), abs=1e-10)
    assert plan.min() >= 0
    np.testing.assert_allclose(plan.sum(axis=1), a, atol=1e-14)
    np.testing.assert_allclose(plan.sum(axis=0), b, atol=1e-14)
    assert cost == pytest.approx(float(np.sum(plan * C)), abs=1e-14)
    assert _core.emd(a, b, C) == cost


@pytest.mark.parametrize("n,m", [(60, 35), (200, 120), (300, 300)])
def test_emd_equals_pots_on_word_sized_problems(n, m):
    """Distances between points in 50 dimensions, as the word mover's distance builds them."""
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(n)
    a, b = masses(rng, n, 0.0), masses(rng, m, 0.0)
    x, y = rng.standard_normal((n, 50)), rng.standard_normal((m, 50))
    C = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
    assert _core.emd(a, b, C) == pytest.approx(ot.emd2(a, b, C), abs=1e-12)


def test_emd_refuses_bad_input():
    a, b, C = np.array([0.5, 0.5]), np.array([1.0]), np.ones((2, 1))
    for args, why in (((a, b, np.ones((1, 2))), "C"), ((a, np.array([0.5]), C), "equal total"),
                      ((np.array([1.5, -0.5]), b, C), "a: expected finite masses"),
                      ((a, np.array([np.nan]), C), "b: expected finite masses"),
                      ((a, b, np.full((2, 1), np.inf)), "C: expected finite"),
                      ((a[:0], b[:0], np.ones((0, 0))), "nonempty")):
        with pytest.raises(ValueError, match=why):
            _core.emd(*args)
