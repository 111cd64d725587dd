"""seqkern.gradcheck itself: it must pass right gradients and catch wrong ones."""
import numpy as np
import pytest

from seqkern.gradcheck import GradcheckError, check_op, gradcheck, numerical_gradient


def test_numerical_gradient_of_known_function():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    g = numerical_gradient(lambda a, b: np.sum(np.sin(a) * b), {"a": a, "b": b})
    np.testing.assert_allclose(g["a"], np.cos(a) * b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(g["b"], np.sin(a).sum(0), rtol=1e-8, atol=1e-10)


def test_gradcheck_catches_a_wrong_gradient():
    a = np.linspace(-1, 1, 5)
    f = lambda a: np.sum(a**3)  # noqa: E731
    assert gradcheck(f, {"a": a}, {"a": 3 * a**2})["a"] < 1e-8
    wrong = 3 * a**2
    wrong[2] += 1e-3
    with pytest.raises(GradcheckError, match=r"a: 1 of 5 elements differ; worst at \(2,\)"):
        gradcheck(f, {"a": a}, {"a": wrong})


def test_gradcheck_needs_float64():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda a: a.sum(), {"a": np.ones(3, np.float32)}, ["a"])


def test_check_op_catches_a_broken_backward():
    def forward(x, training=False):
        y = np.tanh(x)
        return (y, x) if training else (y,)

    def good(saved, dy):
        return {"x": dy * (1 - np.tanh(saved) ** 2)}

    def bad(saved, dy):
        return {"x": dy * (1 - np.tanh(saved))}

    x = np.linspace(-2, 2, 7)
    check_op(forward, good, {"x": x})
    with pytest.raises(GradcheckError):
        check_op(forward, bad, {"x": x})
