"""seqkern.nn's Embedding, Linear, Dropout, SoftmaxCrossEntropy and the Model container: finite
differences in float64, torch with the same weights, weight tying, bad input."""
import numpy as np
import pytest

import seqkern as sk
from seqkern import nn, reference
from seqkern.gradcheck import gradcheck


def test_embedding_matches_twin_and_sums_repeats_in_order():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((11, 20)).astype(np.float32)
    ids = rng.integers(0, 11, (40, 3))
    ids[:5] = 4  # many repeats of one id
    np.testing.assert_array_equal(sk.embedding(w, ids), reference.embedding(w, ids))
    dy = rng.standard_normal((40, 3, 20)).astype(np.float32)
    got = sk.embedding_backward(ids, dy, np.zeros_like(w), padding_idx=2)
    want = reference.embedding_backward(ids, dy, np.zeros_like(w), padding_idx=2)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert not got[2].any()
    results = []
    big_ids = rng.integers(0, 50, 5000)
    big_dy = rng.standard_normal((5000, 300)).astype(np.float32)
    for n in (1, 2, 3):  # column blocks per thread: every column sums its rows in one order
        sk.set_num_threads(n)
        results.append(sk.embedding_backward(big_ids, big_dy, np.zeros((50, 300), np.float32)))
    sk.set_num_threads(2)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    for shape in ((50, 300), (4000, 100)):  # overwrite: zeroed first, on the threads when large
        stale = np.full(shape, 7.0, np.float32)
        got = sk.embedding_backward(big_ids, big_dy[:, :shape[1]], stale, overwrite=True)
        want = reference.embedding_backward(big_ids, big_dy[:, :shape[1]], np.zeros(shape, np.float32))
        assert got is stale
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_layer_matches_torch(padding_idx):
    torch = pytest.importorskip("torch")
    emb = nn.Embedding(7, 5, padding_idx=padding_idx, seed=0)
    if padding_idx is not None:
        assert not emb.params["weight"][padding_idx].any()
    t = torch.nn.Embedding(7, 5, padding_idx=padding_idx)
    t.load_state_dict({"weight": torch.from_numpy(emb.params["weight"])})
    ids = np.array([[1, 2, 1], [6, 1, 0]])
    y = emb.forward(ids)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    assert emb.backward(dy) is None
    ty = t(torch.from_numpy(ids))
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_allclose(emb.grads["weight"], t.weight.grad.numpy(), atol=1e-6)


def test_embedding_gradcheck_and_bad_input():
    emb = nn.Embedding(6, 4, dtype=np.float64, seed=0)
    ids = np.array([[0, 5, 5], [2, 0, 3]])
    dy = np.random.default_rng(2).standard_normal((2, 3, 4))
    emb.forward(ids)
    emb.backward(dy)

    def f(weight):
        return float(np.sum(dy * sk.embedding(weight, ids)))

    gradcheck(f, {"weight": emb.params["weight"]}, {"weight": emb.grads["weight"]})
    with pytest.raises(ValueError, match=r"ids: ids must be in 0..5, got 6"):
        emb.forward(np.array([1, 6]))
    with pytest.raises(ValueError, match="ids: ids must be in"):
        emb.forward(np.array([-1]))
    with pytest.raises(TypeError, match="ids: expected an integer array"):
        emb.forward(np.array([1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)
    with pytest.raises(ValueError, match="dy: expected shape"):
        sk.embedding_backward(ids, dy[:, :2], np.zeros((6, 4)))
    with pytest.raises(TypeError, match="dweight: expected float32 or float64, got int32"):
        sk.embedding_backward(ids, dy, np.zeros((6, 4), np.int32))
    with pytest.raises(TypeError, match="dy: expected float32 like dweight, got float64"):
        sk.embedding_backward(ids, dy, np.zeros((6, 4), np.float32))


def test_embedding_of_width_zero():
    ids = np.array([[1, 2], [0, 0]])
    y = sk.embedding(np.ones((3, 0), np.float32), ids)
    assert y.shape == (2, 2, 0)
    assert sk.embedding_backward(ids, y, np.zeros((3, 0), np.float32)).shape == (3, 0)


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 1, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(shape, bias):
    lin = nn.Linear(4, 3, bias=bias, dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal((*shape[:-1], 3))
    y = lin.forward(x)
    assert y.shape == (*shape[:-1], 3)
    dx = lin.backward(dy)
    inputs = {"x": x, **{k: v for k, v in lin.params.items()}}

    def f(x, **params):
        out = x @ params["weight"].T + (params["bias"] if bias else 0)
        return float(np.sum(dy * out))

    np.testing.assert_allclose(y, x @ lin.params["weight"].T + (lin.params["bias"] if bias else 0))
    gradcheck(f, inputs, {"x": dx, **lin.grads})


def test_linear_matches_torch_and_accumulates():
    torch = pytest.importorskip("torch")
    lin = nn.Linear(13, 9, seed=3)
    t = torch.nn.Linear(13, 9)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 7, 13)).astype(np.float32)
    dy = rng.standard_normal((5, 7, 9)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ty = t(tx)
    ty.backward(torch.from_numpy(dy))
    for _ in range(2):  # two backward passes add up
        y = lin.forward(x)
        dx = lin.backward(dy)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lin.grads["weight"], 2 * t.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lin.grads["bias"], 2 * t.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"x: expected shape \(..., in_features\)"):
        lin.forward(x[..., :12])
    with pytest.raises(TypeError, match="x: expected float32 like the layer's weights, got float64"):
        lin.forward(x.astype(np.float64))
    lin.forward(x)
    with pytest.raises(ValueError, match=r"dy: expected the shape of y, \(5, 7, 9\), got \(7, 5, 9\)"):
        lin.backward(dy.transpose(1, 0, 2))
    with pytest.raises(ValueError, match=r"dy: expected the shape of y, \(5, 7, 9\), got \(5, 8\)"):
        lin.backward(dy[:, 0, :8])  # 40 values: a reshape to rows of 9 would fail obscurely
    lin.eval()
    lin.forward(x)
    with pytest.raises(RuntimeError, match="training mode"):
        lin.backward(dy)


def test_dropout_is_inverted_seeded_and_off_in_eval():
    x = np.ones((200, 100), np.float32)
    d = nn.Dropout(0.3, seed=5)
    y = d.forward(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(d.backward(x), y)  # the same mask
    with pytest.raises(ValueError, match=r"dy: expected the shape of y, \(200, 100\), got \(100,\)"):
        d.backward(x[0])  # would broadcast
    np.testing.assert_array_equal(nn.Dropout(0.3, seed=5).forward(x), y)
    d.eval()
    assert d.forward(x) is x or np.array_equal(d.forward(x), x)
    np.testing.assert_array_equal(d.backward(x), x)
    with pytest.raises(ValueError, match="p: expected a probability"):
        nn.Dropout(1.0)


def test_softmax_cross_entropy_layer():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4, 6)).astype(np.float32)
    targets = rng.integers(0, 6, (3, 4))
    layer = nn.SoftmaxCrossEntropy(label_smoothing=0.1)
    loss = layer.forward(logits, targets)
    assert loss == pytest.approx(sk.softmax_cross_entropy(logits, targets, label_smoothing=0.1))
    g = layer.backward()
    _, saved = reference.softmax_cross_entropy(logits, targets, label_smoothing=0.1, training=True)
    np.testing.assert_allclose(g, reference.softmax_cross_entropy_backward(saved), atol=1e-7)
    over = nn.SoftmaxCrossEntropy(label_smoothing=0.1, overwrite_logits=True)
    copy = logits.copy()
    over.forward(copy, targets)
    assert np.shares_memory(over.backward(), copy)
    np.testing.assert_array_equal(copy, g)


class Tiny(nn.Model):
    def __init__(self):
        self.embed = nn.Embedding(5, 3, dtype=np.float64, seed=0)
        self.out = nn.Linear(3, 5, dtype=np.float64, seed=1)


def test_model_gathers_dotted_names_and_ties():
    m = Tiny()
    assert list(m.params) == ["embed.weight", "out.weight", "out.bias"]
    m.tie("embed.weight", "out.weight")
    assert list(m.params) == ["embed.weight", "out.bias"]  # the shared array once
    assert m.out.params["weight"] is m.embed.params["weight"]
    assert m.out.grads["weight"] is m.embed.grads["weight"]
    ids = np.array([[0, 1, 1]])
    dy = np.ones((1, 3, 5))
    x = m.embed.forward(ids)
    m.out.forward(x)
    dx = m.out.backward(dy)
    from_out = m.embed.grads["weight"].copy()
    np.testing.assert_allclose(from_out, dy.reshape(-1, 5).T @ x.reshape(-1, 3))
    m.embed.backward(dx)
    both = from_out.copy()
    np.add.at(both, ids.reshape(-1), dx.reshape(-1, 3))
    np.testing.assert_allclose(m.grads["embed.weight"], both)  # both gradients in one array
    m.zero_grad()
    assert not m.grads["embed.weight"].any()
    with pytest.raises(ValueError, match="differ in shape"):
        m.tie("embed.weight", "out.bias")
    with pytest.raises(KeyError, match="no such parameter"):
        m.tie("embed.nothing", "out.weight")
    sd = m.state_dict()
    m.params["out.bias"][...] = 7
    m.load_state_dict(sd)
    assert not (m.params["out.bias"] == 7).any()
    with pytest.raises(KeyError, match="missing"):
        m.load_state_dict({})


def test_book_lstm_weights():
    """The book's gate order (f, g, i, o) and (D, 4H) layout, run one step by hand, equals
    sk.lstm with the converted weights."""
    rng = np.random.default_rng(0)
    D, H, B = 3, 4, 2
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    x, h, c = rng.standard_normal((B, D)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    A = x @ Wx + h @ Wh + b
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    f, g, i, o = sig(A[:, :H]), np.tanh(A[:, H:2 * H]), sig(A[:, 2 * H:3 * H]), sig(A[:, 3 * H:])
    c_next = f * c + g * i
    h_next = o * np.tanh(c_next)
    y, h_n, c_n = sk.lstm(x[None], h, c, *nn.book_lstm_weights(Wx, Wh, b))
    np.testing.assert_allclose(h_n, h_next, rtol=1e-12)
    np.testing.assert_allclose(c_n, c_next, rtol=1e-12)
    with pytest.raises(ValueError, match="Wh: expected shape"):
        nn.book_lstm_weights(Wx, Wh[:, :-1], b)
