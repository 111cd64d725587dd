"""seqkern.book: the layers of "Deep Learning from Scratch 2" on seqkern's kernels, each against a
plain NumPy model of the book's semantics written here (forward, backward, grads overwritten,
state carried when stateful, dh after backward), by central differences, and a whole peeky
seq2seq and attention seq2seq trained a few steps against the same models on the NumPy layers."""
import signal

import numpy as np
import pytest

import seqkern.book as book
from seqkern.gradcheck import numerical_gradient


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- the book's semantics, one step at a time -------------------------------------------------
def ref_rnn(xs, Wx, Wh, b, h):
    hs, cache = [], []
    for t in range(xs.shape[1]):
        h_prev, h = h, np.tanh(h @ Wh + xs[:, t] @ Wx + b)
        hs.append(h)
        cache.append((xs[:, t], h_prev, h))

    def backward(dhs):
        dWx, dWh, db, dh = 0, 0, 0, 0
        dxs = np.empty_like(xs)
        for t in reversed(range(xs.shape[1])):
            x, h_prev, h_next = cache[t]
            dt = (dhs[:, t] + dh) * (1 - h_next ** 2)
            db, dWh, dWx = db + dt.sum(0), dWh + h_prev.T @ dt, dWx + x.T @ dt
            dh, dxs[:, t] = dt @ Wh.T, dt @ Wx.T
        return dxs, (dWx, dWh, db), dh
    return np.stack(hs, 1), h, backward


def ref_lstm(xs, Wx, Wh, b, h, c):
    H = Wh.shape[0]
    hs, cache = [], []
    for t in range(xs.shape[1]):
        A = xs[:, t] @ Wx + h @ Wh + b
        f, g, i, o = sigmoid(A[:, :H]), np.tanh(A[:, H:2 * H]), sigmoid(A[:, 2 * H:3 * H]), sigmoid(A[:, 3 * H:])
        c_next = f * c + g * i
        h_next = o * np.tanh(c_next)
        cache.append((xs[:, t], h, c, i, f, g, o, c_next))
        h, c = h_next, c_next
        hs.append(h)

    def backward(dhs):
        dWx, dWh, db, dh, dc = 0, 0, 0, 0, 0
        dxs = np.empty_like(xs)
        for t in reversed(range(xs.shape[1])):
            x, h_prev, c_prev, i, f, g, o, c_next = cache[t]
            dh_next = dhs[:, t] + dh
            tanh_c = np.tanh(c_next)
            ds = dc + dh_next * o * (1 - tanh_c ** 2)
            dc = ds * f
            dA = np.hstack((ds * c_prev * f * (1 - f), ds * i * (1 - g ** 2), ds * g * i * (1 - i),
                            dh_next * tanh_c * o * (1 - o)))
            dWh, dWx, db = dWh + h_prev.T @ dA, dWx + x.T @ dA, db + dA.sum(0)
            dxs[:, t], dh = dA @ Wx.T, dA @ Wh.T
        return dxs, (dWx, dWh, db), dh
    return np.stack(hs, 1), (h, c), backward


def ref_gru(xs, Wx, Wh, b, h):
    H = Wh.shape[0]
    hs, cache = [], []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        z = sigmoid(x @ Wx[:, :H] + h @ Wh[:, :H] + b[:H])
        r = sigmoid(x @ Wx[:, H:2 * H] + h @ Wh[:, H:2 * H] + b[H:2 * H])
        hh = np.tanh(x @ Wx[:, 2 * H:] + (r * h) @ Wh[:, 2 * H:] + b[2 * H:])
        cache.append((x, h, z, r, hh))
        h = (1 - z) * h + z * hh
        hs.append(h)

    def backward(dhs):
        dWx, dWh, db, dh = 0, 0, 0, 0
        dxs = np.empty_like(xs)
        for t in reversed(range(xs.shape[1])):
            x, h_prev, z, r, hh = cache[t]
            dn = dhs[:, t] + dh
            dt_h = dn * z * (1 - hh ** 2)
            dhr = dt_h @ Wh[:, 2 * H:].T
            dt_z = dn * (hh - h_prev) * z * (1 - z)
            dt_r = dhr * h_prev * r * (1 - r)
            dWx = dWx + np.hstack((x.T @ dt_z, x.T @ dt_r, x.T @ dt_h))
            dWh = dWh + np.hstack((h_prev.T @ dt_z, h_prev.T @ dt_r, (r * h_prev).T @ dt_h))
            db = db + np.hstack((dt_z.sum(0), dt_r.sum(0), dt_h.sum(0)))
            dh = dn * (1 - z) + r * dhr + dt_z @ Wh[:, :H].T + dt_r @ Wh[:, H:2 * H].T
            dxs[:, t] = dt_h @ Wx[:, 2 * H:].T + dt_z @ Wx[:, :H].T + dt_r @ Wx[:, H:2 * H].T
        return dxs, (dWx, dWh, db), dh
    return np.stack(hs, 1), h, backward


CELLS = {"rnn": (book.TimeRNN, ref_rnn, 1), "lstm": (book.TimeLSTM, ref_lstm, 4),
         "gru": (book.TimeGRU, ref_gru, 3)}


def weights(G, D, H, rng, dtype=np.float64):
    return [(rng.standard_normal(s) * 0.4).astype(dtype) for s in ((D, G * H), (H, G * H), (G * H,))]


@pytest.mark.parametrize("cell", list(CELLS))
# (2, 3, 37, 35): weight conversions past their 32 x 32 tiles, with the GRU's negated block
@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (1, 1, 2, 3), (4, 1, 5, 7), (2, 7, 5, 9),
                                     (1, 6, 3, 5), (2, 3, 37, 35)])
def test_time_layers_match_the_books_semantics(cell, N, T, D, H):
    cls, ref, G = CELLS[cell]
    rng = np.random.default_rng(N * T + D)
    params = weights(G, D, H, rng)
    layer = cls(*params, stateful=True)
    ids = [id(p) for p in layer.params + layer.grads]
    state = np.zeros((N, H))
    states = (state, state) if cell == "lstm" else (state,)
    for chunk in range(2):  # stateful: the second chunk starts where the first ended
        xs = rng.standard_normal((N, T, D))
        dhs = rng.standard_normal((N, T, H))
        hs = layer.forward(xs)
        want, final, backward = ref(xs, *params, *states)
        np.testing.assert_allclose(hs, want, rtol=1e-10, atol=1e-12)
        dxs = layer.backward(dhs)
        want_dxs, want_grads, want_dh = backward(dhs)
        np.testing.assert_allclose(dxs, want_dxs, rtol=1e-10, atol=1e-12)
        for got, w in zip(layer.grads, want_grads):  # overwritten each time, not accumulated
            np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.dh, want_dh, rtol=1e-10, atol=1e-12)
        states = final if cell == "lstm" else (final,)
    assert [id(p) for p in layer.params + layer.grads] == ids
    layer.reset_state()
    np.testing.assert_allclose(layer.forward(xs), ref(xs, *params, *([np.zeros((N, H))] * (2 if cell == "lstm" else 1)))[0],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("N,T", [(2, 4), (2, 1), (1, 3)])  # T = 1 or N = 1: generation's calls
def test_not_stateful_starts_from_zero_and_weights_are_read_at_each_call(cell, N, T):
    """Each call reads the weights as they are then: after an optimizer's update of every value,
    and after one value of Wh, then of b, all in place (also where the kernels' copy of the
    weights is kept between calls, and the GRU's negated block)."""
    cls, ref, G = CELLS[cell]
    rng = np.random.default_rng(1)
    params = weights(G, 3, 5, rng, np.float32)
    layer = cls(*params)
    xs = rng.standard_normal((N, T, 3)).astype("f")
    a = layer.forward(xs)
    np.testing.assert_array_equal(layer.forward(xs), a)
    changes = [lambda: book.SGD(lr=0.5).update(layer.params, [np.ones_like(p) for p in layer.params]),
               lambda: layer.params[1].reshape(-1).__setitem__(-1, 3.0),
               lambda: layer.params[2].reshape(-1).__setitem__(-1, 3.0)]
    for k, change in enumerate(changes):  # each in place
        change()
        states = [np.zeros((N, 5))] * (2 if cell == "lstm" else 1)
        want = ref(xs.astype(np.float64), *(p.astype(np.float64) for p in params), *states)[0]
        got = layer.forward(xs)
        assert got.dtype == np.float32
        if k != 1 or T > 1:  # Wh meets h0 = 0 only, in one step
            assert np.abs(got - a).max() > 1e-4
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
        a = got


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (29, 128, 16), (2, 3, 4, 5), (7, 1, 3)])
@pytest.mark.parametrize("dtype", ["f", "d", "int64", "int8"])
def test_swap01_equals_numpys_transposed_copy(shape, dtype):
    from seqkern import _core
    from seqkern._ops import swap01
    a = (np.arange(np.prod(shape)) % 97).astype(dtype).reshape(shape)
    for view in (a, a[:, ::-1]):  # the threaded copy, and the fallback for a strided array
        out = swap01(view)
        assert out.flags.c_contiguous and out.dtype == a.dtype
        np.testing.assert_array_equal(out, np.swapaxes(view, 0, 1))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.swap_leading_axes(a, np.empty((shape[1], shape[0] + 1, *shape[2:]), dtype))


@pytest.mark.parametrize("shape,axis", [((50, 64, 256), 1), ((3, 40, 64, 16), 2), ((300, 128), 0),
                                        ((4, 5, 6), 1)])
def test_take_rows_is_numpys_take_and_sorting_undoes(shape, axis):
    """The stack's sort of the batch (longest first) and back, on the threads above 128 KB."""
    from seqkern import _core, _ops
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype("f")
    order = rng.permutation(shape[axis])
    got = _ops._sort(a, order, axis)
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, np.take(a, order, axis=axis))
    np.testing.assert_array_equal(_ops._unsort(got, order, axis), a)
    with pytest.raises(ValueError, match="outside"):
        _core.take_rows(np.zeros((2, 3, 4), "f"), [0, 3], np.zeros((2, 2, 4), "f"))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.take_rows(np.zeros((2, 3, 4), "f"), [0, 1], np.zeros((2, 3, 4), "f"))


@pytest.mark.parametrize("cell", list(CELLS))
def test_time_layers_pass_central_differences(cell):
    cls, _, G = CELLS[cell]
    rng = np.random.default_rng(2)
    params = weights(G, 3, 4, rng)
    xs = rng.standard_normal((2, 3, 3))
    proj = rng.standard_normal((2, 3, 4))

    def loss(xs, Wx, Wh, b):
        return float(np.sum(cls(Wx, Wh, b).forward(xs) * proj))

    num = numerical_gradient(loss, {"xs": xs, "Wx": params[0], "Wh": params[1], "b": params[2]})
    layer = cls(*params)
    layer.forward(xs)
    dxs = layer.backward(proj)
    np.testing.assert_allclose(dxs, num["xs"], rtol=1e-6, atol=1e-8)
    for got, key in zip(layer.grads, ("Wx", "Wh", "b")):
        np.testing.assert_allclose(got, num[key], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls,ref,G", [(book.LSTM, ref_lstm, 4), (book.GRU, ref_gru, 3), (book.RNN, ref_rnn, 1)])
def test_one_step_layers(cls, ref, G):
    rng = np.random.default_rng(3)
    params = weights(G, 3, 4, rng)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    layer = cls(*params)
    if cls is book.LSTM:
        c = rng.standard_normal((2, 4))
        h_next, c_next = layer.forward(x, h, c)
        want, (wh, wc), _ = ref(x[:, None], *params, h, c)
        np.testing.assert_allclose(c_next, wc, rtol=1e-10)
        dx, dh, dc = layer.backward(np.ones((2, 4)), np.zeros((2, 4)))
    else:
        h_next = layer.forward(x, h)
        want, wh, _ = ref(x[:, None], *params, h)
        dx, dh = layer.backward(np.ones((2, 4)))
    np.testing.assert_allclose(h_next, wh, rtol=1e-10)
    _, backward = ref(x[:, None], *params, *((h, c) if cls is book.LSTM else (h,)))[1:]
    want_dx, want_grads, want_dh = backward(np.ones((2, 1, 4)))
    np.testing.assert_allclose(dx, want_dx[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh, want_dh, rtol=1e-10, atol=1e-12)
    for got, w in zip(layer.grads, want_grads):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12)


def test_bilstm_embedding_affine_softmax_loss_and_dropout():
    rng = np.random.default_rng(4)
    N, T, D, H, V = 2, 4, 3, 5, 7
    p1, p2 = weights(4, D, H, rng), weights(4, D, H, rng)
    xs = rng.standard_normal((N, T, D))
    bi = book.TimeBiLSTM(*p1, *p2)
    out = bi.forward(xs)
    z = np.zeros((N, H))
    f = ref_lstm(xs, *p1, z, z)[0]
    r = ref_lstm(xs[:, ::-1], *p2, z, z)[0][:, ::-1]
    np.testing.assert_allclose(out, np.concatenate([f, r], 2), rtol=1e-10)
    assert bi.params[0] is p1[0] and len(bi.grads) == 6
    W = rng.standard_normal((V, D))
    emb = book.TimeEmbedding(W)
    ids = np.array([[1, 2, 1, 6], [0, 1, 1, 3]])
    np.testing.assert_array_equal(emb.forward(ids), W[ids])
    dout = rng.standard_normal((N, T, D))
    emb.backward(dout)
    want = np.zeros_like(W)
    np.add.at(want, ids, dout)
    np.testing.assert_allclose(emb.grads[0], want, rtol=1e-12)
    emb.backward(dout)  # overwritten, not accumulated
    np.testing.assert_allclose(emb.grads[0], want, rtol=1e-12)
    Wa, ba = rng.standard_normal((D, V)), rng.standard_normal(V)
    aff = book.TimeAffine(Wa, ba)
    np.testing.assert_allclose(aff.forward(xs), xs @ Wa + ba, rtol=1e-12)
    dx = aff.backward(dout @ Wa)
    np.testing.assert_allclose(aff.grads[1], (dout @ Wa).sum((0, 1)), rtol=1e-10)
    np.testing.assert_allclose(dx, dout @ Wa @ Wa.T, rtol=1e-10)
    logits = rng.standard_normal((N, T, V))
    ts = np.array([[1, -1, 3, 0], [6, 2, -1, 1]])  # -1: ignored
    loss_layer = book.TimeSoftmaxWithLoss()
    loss = loss_layer.forward(logits, ts)
    p = np.exp(logits - logits.max(2, keepdims=True))
    p /= p.sum(2, keepdims=True)
    keep = ts != -1
    picked = p.reshape(-1, V)[np.arange(N * T), np.where(keep, ts, 0).reshape(-1)].reshape(N, T)
    assert loss == pytest.approx(-np.log(picked[keep]).sum() / keep.sum(), rel=1e-10)
    want = p.copy()
    for n in range(N):
        for t in range(T):
            want[n, t, ts[n, t]] -= keep[n, t]
    want *= keep[:, :, None] / keep.sum()
    np.testing.assert_allclose(loss_layer.backward(), want, rtol=1e-9, atol=1e-12)
    drop = book.TimeDropout(0.5)
    np.random.seed(0)
    y = drop.forward(np.ones((50, 4, 3), "f"))
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.3 < (y > 0).mean() < 0.7
    drop.train_flg = False
    np.testing.assert_array_equal(drop.forward(xs), xs)


def ref_attention(hs_enc, hs_dec):
    s = np.einsum("nth,nsh->nst", hs_enc, hs_dec)
    a = np.exp(s - s.max(2, keepdims=True))
    a /= a.sum(2, keepdims=True)
    return np.einsum("nst,nth->nsh", a, hs_enc), a


def test_time_attention_matches_the_books_steps_and_differences():
    rng = np.random.default_rng(5)
    hs_enc, hs_dec = rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 3, 4))
    layer = book.TimeAttention()
    out = layer.forward(hs_enc, hs_dec)
    want, a = ref_attention(hs_enc, hs_dec)
    np.testing.assert_allclose(out, want, rtol=1e-10)
    assert len(layer.attention_weights) == 3
    np.testing.assert_allclose(layer.attention_weights[1], a[:, 1], rtol=1e-10)
    steps = [book.Attention() for _ in range(3)]  # the book's per-step layers give the same
    for t, step in enumerate(steps):
        np.testing.assert_allclose(step.forward(hs_enc, hs_dec[:, t]), want[:, t], rtol=1e-10)
    proj = rng.standard_normal(out.shape)
    d_enc, d_dec = layer.backward(proj)
    want_enc = sum(step.backward(proj[:, t])[0] for t, step in enumerate(steps))
    np.testing.assert_allclose(d_enc, want_enc, rtol=1e-9, atol=1e-12)
    num = numerical_gradient(lambda hs_enc, hs_dec: float(np.sum(ref_attention(hs_enc, hs_dec)[0] * proj)),
                             {"hs_enc": hs_enc, "hs_dec": hs_dec})
    np.testing.assert_allclose(d_enc, num["hs_enc"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(d_dec, num["hs_dec"], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name,kw", [("SGD", {}), ("Momentum", {}), ("Nesterov", {}), ("AdaGrad", {}),
                                     ("RMSprop", {}), ("Adam", {"lr": 0.01})])
def test_optimizers_follow_the_books_formulas(name, kw):
    rng = np.random.default_rng(6)
    p = [rng.standard_normal(4), rng.standard_normal((2, 3))]
    ids = [id(x) for x in p]
    opt = getattr(book, name)(**kw)
    state = [np.zeros_like(x) for x in p]
    state2 = [np.zeros_like(x) for x in p]
    want = [x.copy() for x in p]
    for it in range(1, 4):
        g = [rng.standard_normal(x.shape) for x in p]
        opt.update(p, g)
        for k, (w, gk) in enumerate(zip(want, g)):
            if name == "SGD":
                w -= 0.01 * gk
            elif name == "Momentum":
                state[k] = 0.9 * state[k] - 0.01 * gk
                w += state[k]
            elif name == "Nesterov":
                state[k] = 0.9 * state[k] - 0.01 * gk
                w += 0.81 * state[k] - 1.9 * 0.01 * gk
            elif name == "AdaGrad":
                state[k] += gk * gk
                w -= 0.01 * gk / (np.sqrt(state[k]) + 1e-7)
            elif name == "RMSprop":
                state[k] = 0.99 * state[k] + 0.01 * gk * gk
                w -= 0.01 * gk / (np.sqrt(state[k]) + 1e-7)
            else:
                state[k] += 0.1 * (gk - state[k])
                state2[k] += 0.001 * (gk ** 2 - state2[k])
                lr_t = 0.01 * np.sqrt(1 - 0.999 ** it) / (1 - 0.9 ** it)
                w -= lr_t * state[k] / (np.sqrt(state2[k]) + 1e-7)
        for got, w in zip(p, want):
            np.testing.assert_allclose(got, w, rtol=1e-12)
    assert [id(x) for x in p] == ids


@pytest.mark.parametrize("layout", ["float32", "strided"])
def test_adam_in_float32_and_on_strided_params(layout):
    """float32 arrays take the fused step, strided ones the NumPy formulas: both the book's."""
    rng = np.random.default_rng(7)
    p = [rng.standard_normal((64, 33)).astype("f"), rng.standard_normal(5).astype("f")]
    if layout == "strided":
        p[0] = np.asfortranarray(p[0])
    want = [x.astype(np.float64) for x in p]
    m, v = [np.zeros_like(x) for x in want], [np.zeros_like(x) for x in want]
    opt = book.Adam(lr=0.01)
    for it in range(1, 6):
        g = [rng.standard_normal(x.shape).astype("f") for x in p]
        opt.update(p, g)
        lr_t = 0.01 * np.sqrt(1 - 0.999 ** it) / (1 - 0.9 ** it)
        for k in range(2):
            m[k] += 0.1 * (g[k] - m[k])
            v[k] += 0.001 * (g[k].astype(np.float64) ** 2 - v[k])
            want[k] -= lr_t * m[k] / (np.sqrt(v[k]) + 1e-7)
    for got, w in zip(p, want):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


def test_clip_grads_scales_in_place():
    g = [np.full(4, 3.0), np.full(2, 4.0)]
    norm = np.sqrt(4 * 9 + 2 * 16)
    book.clip_grads(g, 1.0)
    np.testing.assert_allclose(g[0], 3.0 / (norm + 1e-6))
    small = [np.full(3, 0.1)]
    book.clip_grads(small, 1.0)
    np.testing.assert_array_equal(small[0], 0.1)


BOOK_NAMES = ["Affine", "Dropout", "Embedding", "GPU", "GRU", "LSTM", "MatMul", "RNN", "Sigmoid",
              "SigmoidWithLoss", "Simple_TimeAffine", "Simple_TimeSoftmaxWithLoss", "Softmax",
              "SoftmaxWithLoss", "TimeAffine", "TimeBiLSTM", "TimeDropout", "TimeEmbedding",
              "TimeGRU", "TimeLSTM", "TimeRNN", "TimeSigmoidWithLoss", "TimeSoftmaxWithLoss",
              "cross_entropy_error", "np", "sigmoid", "softmax"]


def test_star_import_gives_every_name_of_the_books_time_layers():
    """The names `from common.time_layers import *` gives the book's code (listed from the book's
    repository), np among them."""
    names = {}
    exec("from seqkern.book import *", names)
    assert set(BOOK_NAMES) <= set(names)
    assert names["np"] is np and names["GPU"] is False


# -- whole models: the same seq2seq on seqkern.book and on NumPy layers of the book's semantics --
class RefTimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.stateful, self.h, self.c, self.dh = stateful, None, None, None

    def forward(self, xs):
        N, H = xs.shape[0], self.params[1].shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), xs.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), xs.dtype)
        hs, (self.h, self.c), self._backward = ref_lstm(xs, *self.params, self.h, self.c)
        return hs

    def backward(self, dhs):
        dxs, grads, self.dh = self._backward(dhs)
        for g, w in zip(self.grads, grads):
            g[...] = w
        return dxs

    def set_state(self, h, c=None):
        self.h, self.c = h, c


class RefTimeEmbedding:
    def __init__(self, W):
        self.params, self.grads = [W], [np.zeros_like(W)]

    def forward(self, ids):
        self.ids = ids
        return self.params[0][ids]

    def backward(self, dout):
        self.grads[0][...] = 0
        np.add.at(self.grads[0], self.ids, dout)


class RefTimeAffine:
    def __init__(self, W, b):
        self.params, self.grads = [W, b], [np.zeros_like(W), np.zeros_like(b)]

    def forward(self, x):
        self.x = x
        return x @ self.params[0] + self.params[1]

    def backward(self, dout):
        self.grads[0][...] = np.einsum("ntd,ntm->dm", self.x, dout)
        self.grads[1][...] = dout.sum((0, 1))
        return dout @ self.params[0].T


class RefTimeSoftmaxWithLoss:
    def forward(self, xs, ts):
        p = np.exp(xs - xs.max(2, keepdims=True))
        self.p, self.ts = p / p.sum(2, keepdims=True), ts
        N, T, _ = xs.shape
        return float(-np.log(self.p[np.arange(N)[:, None], np.arange(T), ts]).mean())

    def backward(self):
        d = self.p.copy()
        N, T, _ = d.shape
        d[np.arange(N)[:, None], np.arange(T), self.ts] -= 1
        return d / (N * T)


class RefTimeAttention:
    """The book's per-step Attention layers (NumPy) over the decoder's steps."""

    def forward(self, hs_enc, hs_dec):
        self.steps = [book.Attention() for _ in range(hs_dec.shape[1])]
        return np.stack([s.forward(hs_enc, hs_dec[:, t]) for t, s in enumerate(self.steps)], 1)

    def backward(self, dout):
        parts = [s.backward(dout[:, t]) for t, s in enumerate(self.steps)]
        return sum(p[0] for p in parts), np.stack([p[1] for p in parts], 1)


SEQKERN = dict(TimeLSTM=book.TimeLSTM, TimeEmbedding=book.TimeEmbedding, TimeAffine=book.TimeAffine,
               TimeSoftmaxWithLoss=book.TimeSoftmaxWithLoss, TimeAttention=book.TimeAttention)
NUMPY = dict(TimeLSTM=RefTimeLSTM, TimeEmbedding=RefTimeEmbedding, TimeAffine=RefTimeAffine,
             TimeSoftmaxWithLoss=RefTimeSoftmaxWithLoss, TimeAttention=RefTimeAttention)


class Seq2seq:
    """The book's chapter 7-8 model: an encoder LSTM, and a decoder LSTM started from its last
    state that either peeks at it at every step (the peeky decoder) or attends over its states."""

    def __init__(self, layers, kind, V=11, D=8, H=12, seed=0):
        rng = np.random.default_rng(seed)
        r = lambda *s: (rng.standard_normal(s) / np.sqrt(s[0])).astype("f")  # noqa: E731
        self.kind = kind
        extra = H if kind == "peeky" else 0
        self.enc_embed = layers["TimeEmbedding"](r(V, D))
        self.enc_lstm = layers["TimeLSTM"](r(D, 4 * H), r(H, 4 * H), np.zeros(4 * H, "f"), stateful=False)
        self.dec_embed = layers["TimeEmbedding"](r(V, D))
        self.dec_lstm = layers["TimeLSTM"](r(D + extra, 4 * H), r(H, 4 * H), np.zeros(4 * H, "f"), stateful=True)
        self.attention = layers["TimeAttention"]() if kind == "attention" else None
        self.affine = layers["TimeAffine"](r(2 * H, V), np.zeros(V, "f"))
        self.loss = layers["TimeSoftmaxWithLoss"]()
        self.layers = [self.enc_embed, self.enc_lstm, self.dec_embed, self.dec_lstm, self.affine]
        self.params = [p for layer in self.layers for p in layer.params]
        self.grads = [g for layer in self.layers for g in layer.grads]

    def forward(self, xs, ts):
        self.enc_hs = self.enc_lstm.forward(self.enc_embed.forward(xs))
        h = self.enc_hs[:, -1]
        self.dec_lstm.set_state(h)
        out = self.dec_embed.forward(ts[:, :-1])
        T = out.shape[1]
        self.hs_rep = np.repeat(h[:, None], T, axis=1)
        if self.kind == "peeky":
            out = np.concatenate([self.hs_rep, out], 2)
        dec = self.dec_lstm.forward(out)
        side = self.hs_rep if self.kind == "peeky" else self.attention.forward(self.enc_hs, dec)
        return self.loss.forward(self.affine.forward(np.concatenate([side, dec], 2)), ts[:, 1:])

    def backward(self):
        H = self.dec_lstm.params[1].shape[0]
        dout = self.affine.backward(self.loss.backward())
        dside, ddec = dout[:, :, :H], dout[:, :, H:]
        denc_hs = np.zeros_like(self.enc_hs)
        if self.kind == "attention":
            denc_hs, ddec_att = self.attention.backward(dside)
            ddec = ddec + ddec_att
            dh = 0
        else:
            dh = dside.sum(1)
        dx = self.dec_lstm.backward(ddec)
        if self.kind == "peeky":
            dh = dh + dx[:, :, :H].sum(1)
            dx = dx[:, :, H:]
        self.dec_embed.backward(dx)
        denc_hs = denc_hs.copy()
        denc_hs[:, -1] += dh + self.dec_lstm.dh
        self.enc_embed.backward(self.enc_lstm.backward(denc_hs))


@pytest.mark.parametrize("kind", ["peeky", "attention"])
def test_seq2seq_trains_as_on_numpy_layers(kind):
    """Five Adam steps with clipping on addition-like data: the same losses and weights as the
    same model on the NumPy layers, to float32 rounding."""
    rng = np.random.default_rng(7)
    xs = rng.integers(0, 11, (16, 7))
    ts = rng.integers(0, 11, (16, 5))
    models = [Seq2seq(SEQKERN, kind), Seq2seq(NUMPY, kind)]
    opts = [book.Adam(0.01), book.Adam(0.01)]
    for step in range(5):
        losses = []
        for model, opt in zip(models, opts):
            losses.append(model.forward(xs, ts))
            model.backward()
            book.clip_grads(model.grads, 5.0)
            opt.update(model.params, model.grads)
        assert losses[0] == pytest.approx(losses[1], rel=2e-5), step
    for a, b in zip(*(m.params for m in models)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert losses[0] < np.log(11)


def test_negative_sampling_loss_matches_the_books_layers():
    rng = np.random.default_rng(8)
    V, D, N, k = 12, 5, 6, 3
    corpus = rng.integers(0, V, 400)
    corpus[:V] = np.arange(V)
    W = rng.standard_normal((V, D)) * 0.5
    h, target = rng.standard_normal((N, D)), rng.integers(0, V, N)
    layer = book.NegativeSamplingLoss(W, corpus, power=0.75, sample_size=k)
    np.random.seed(3)
    loss = layer.forward(h, target)
    np.random.seed(3)
    negative = layer.sampler.get_negative_sample(target)
    dh = layer.backward()
    assert len(layer.params) == k + 1 and all(p is W for p in layer.params)
    want, want_dh = 0.0, 0
    for j, (words, label) in enumerate([(target, 1)] + [(negative[:, i], 0) for i in range(k)]):
        dot, sig = book.EmbeddingDot(W), book.SigmoidWithLoss()
        want += sig.forward(dot.forward(h, words), np.full(N, label))
        want_dh = want_dh + dot.backward(sig.backward())
        np.testing.assert_allclose(layer.grads[j], dot.grads[0], rtol=1e-10, atol=1e-12)
    assert loss == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(dh, want_dh, rtol=1e-10)


def test_unigram_sampler_draws_distinct_words_by_the_books_distribution():
    counts = np.array([400, 200, 100, 50, 25, 25])
    corpus = np.repeat(np.arange(6), counts)
    sampler = book.UnigramSampler(corpus, 0.75, 2)
    np.random.seed(0)
    target = np.zeros(20000, int)
    s = sampler.get_negative_sample(target)
    assert s.dtype == np.int32 and s.shape == (20000, 2)
    assert (s != 0).all() and (s[:, 0] != s[:, 1]).all()
    p = counts[1:] ** 0.75 / (counts[1:] ** 0.75).sum()  # the first draw: p without the target
    np.testing.assert_allclose(np.bincount(s[:, 0], minlength=6)[1:] / 20000, p, atol=0.01)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_and_affine_on_seqkerns_gemm(dtype):
    rng = np.random.default_rng(9)
    x, W, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    dout = rng.standard_normal((5, 4))
    x, W, b, dout = (a.astype(dtype) for a in (x, W, b, dout))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    mm, aff = book.MatMul(W), book.Affine(W, b)
    np.testing.assert_allclose(mm.forward(x), x @ W, **tol)
    np.testing.assert_allclose(mm.backward(dout), dout @ W.T, **tol)
    np.testing.assert_allclose(mm.grads[0], x.T @ dout, **tol)
    np.testing.assert_allclose(aff.forward(x), x @ W + b, **tol)
    np.testing.assert_allclose(aff.backward(dout), dout @ W.T, **tol)
    np.testing.assert_allclose(aff.grads[0], x.T @ dout, **tol)
    np.testing.assert_allclose(aff.grads[1], dout.sum(0), **tol)
    assert aff.params[0] is W and aff.grads[0].dtype == dtype


@pytest.mark.parametrize("variant", ["fortran params", "fortran grads", "float32 grads"])
def test_time_lstm_takes_other_layouts_too(variant):
    """Arrays that TimeLSTM's one-call path does not take (weights or grads not C-contiguous or
    of another dtype: the generic path or copies) and a strided dhs give the contiguous results."""
    rng = np.random.default_rng(7)
    N, T, D, H = 3, 4, 5, 6
    params = weights(4, D, H, rng)
    xs, dhs = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, 2 * H))[:, :, ::2]
    want = book.TimeLSTM(*[p.copy() for p in params])
    want_hs = want.forward(xs)
    want_dxs = want.backward(np.ascontiguousarray(dhs))
    layer = book.TimeLSTM(*[np.asfortranarray(p) if variant == "fortran params" else p.copy()
                            for p in params])
    if variant == "fortran grads":
        layer.grads[:] = [np.asfortranarray(g) for g in layer.grads]
    elif variant == "float32 grads":
        layer.grads[:] = [g.astype(np.float32) for g in layer.grads]
    ids = [id(g) for g in layer.grads]
    np.testing.assert_allclose(layer.forward(xs), want_hs, rtol=1e-12)
    np.testing.assert_allclose(layer.backward(dhs), want_dxs, rtol=1e-12)
    assert [id(g) for g in layer.grads] == ids
    tol = 1e-6 if variant == "float32 grads" else 1e-12
    for got, w in zip(layer.grads, want.grads):
        np.testing.assert_allclose(got, w, rtol=tol, atol=1e-12 if tol < 1e-6 else 1e-6)
    np.testing.assert_allclose(layer.dh, want.dh, rtol=1e-12)


def test_recurrent_layers_explain_bad_input():
    rng = np.random.default_rng(8)
    params = weights(4, 5, 3, rng, np.float32)
    layer = book.TimeLSTM(*params)
    with pytest.raises(RuntimeError, match="forward first"):
        layer.backward(np.zeros((2, 4, 3), "f"))
    with pytest.raises(ValueError, match=r"xs: expected shape \(N, T, D\)"):
        layer.forward(np.zeros((2, 5), "f"))
    with pytest.raises(ValueError, match=r"xs: expected shape \(N, T, 5\)"):
        layer.forward(np.zeros((2, 4, 6), "f"))
    layer.forward(np.zeros((2, 4, 5), "f"))
    with pytest.raises(ValueError, match="dhs must have the shape"):
        layer.backward(np.zeros((2, 4, 4), "f"))
    with pytest.raises(TypeError, match="float32 or float64"):
        book.TimeGRU(*(p.astype(np.float16) for p in weights(3, 5, 3, rng))).forward(
            np.zeros((2, 4, 5), np.float16))
    with pytest.raises(ValueError, match="Wh: expected a 2-D array"):
        book.TimeRNN(params[0], None, params[2]).forward(np.zeros((2, 4, 5), "f"))
    stateful = book.TimeLSTM(*params, stateful=True)
    stateful.set_state(np.zeros((3, 3), "f"))
    with pytest.raises(ValueError, match=r"h: expected shape \(2, 3\)"):
        stateful.forward(np.zeros((2, 4, 5), "f"))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, D\)"):
        book.LSTM(*params).forward(np.zeros(5, "f"), np.zeros((1, 3), "f"), np.zeros((1, 3), "f"))
    # the weights' shapes, each named with what it should be
    Wx, Wh, b = params
    xs = np.zeros((2, 4, 5), "f")
    with pytest.raises(ValueError, match=r"Wx: expected shape \(D, 12\), got \(5, 11\)"):
        book.TimeLSTM(Wx[:, :11], Wh, b).forward(xs)
    with pytest.raises(ValueError, match=r"Wh: expected shape \(H, 4\*H\), got \(3, 11\)"):
        book.TimeLSTM(Wx, Wh[:, :11], b).forward(xs)
    with pytest.raises(ValueError, match=r"b: expected shape \(12,\), got \(11,\)"):
        book.TimeLSTM(Wx, Wh, b[:11].copy()).forward(xs)
    stateful.set_state(np.zeros((2, 3), "f"), np.zeros((3, 3), "f"))
    with pytest.raises(ValueError, match=r"c: expected shape \(2, 3\), got \(3, 3\)"):
        stateful.forward(xs)
    # a backward whose weights or grads were replaced by arrays of other shapes since the forward
    layer = book.TimeLSTM(*params)
    layer.forward(xs)
    layer.params[1] = Wh[:, :11].copy()
    with pytest.raises(ValueError, match="Wx, Wh no longer have the forward's shapes"):
        layer.backward(np.zeros((2, 4, 3), "f"))
    layer.params[1] = Wh
    layer.grads[2] = np.zeros(11, "f")
    with pytest.raises(ValueError, match="grads must have the shapes of params"):
        layer.backward(np.zeros((2, 4, 3), "f"))
    step = book.LSTM(*params)
    step.forward(np.zeros((1, 5), "f"), np.zeros((1, 3), "f"), np.zeros((1, 3), "f"))
    with pytest.raises(ValueError, match=r"dh, dc must have the shape \(1, 3\)"):
        step.backward(np.zeros((2, 3), "f"), np.zeros((1, 3), "f"))


@pytest.mark.parametrize("corpus, power, k", [
    ([0, 0, 1, 7, 7], 0.75, 2),  # ids missing from 0..V-1 count zero: one word besides the target
    ([0, 1, 1, 2, 2, 2], np.inf, 1),  # inf / inf: every probability NaN
    ([0, 1, 2], 0.75, 3),  # more noise words than the vocabulary holds
])
def test_unigram_sampler_raises_where_the_book_would_rather_than_drawing_forever(corpus, power, k):
    """The book's np.random.choice(replace=False) raises ValueError when fewer than sample_size
    words besides the target can be drawn; redrawing until a row has k words would never end."""
    with np.errstate(invalid="ignore", over="ignore"):
        sampler = book.UnigramSampler(np.array(corpus), power, k)

    def hung(*_):
        raise TimeoutError("get_negative_sample still drawing after 10 s")

    previous = signal.signal(signal.SIGALRM, hung)  # the draw loop is Python: the alarm stops it
    signal.alarm(10)
    try:
        with pytest.raises(ValueError, match=f"sample_size {k}: needs {k} words of nonzero"):
            sampler.get_negative_sample(np.array([0, 1]))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_unigram_sampler_names_bad_arguments():
    # numpy's "cannot reshape array of size 0 into shape (0)" for sample_size 0, its reshape
    # error for a 2-D target, its IndexError for an id past the vocabulary
    with pytest.raises(ValueError, match="sample_size: expected a positive integer, got 0"):
        book.UnigramSampler(np.array([0, 1, 2]), 0.75, 0)
    sampler = book.UnigramSampler(np.array([0, 1, 2, 3, 1]), 0.75, 2)
    with pytest.raises(ValueError, match=r"target: expected a 1-D array \(batch,\) of word ids, "
                                         r"got shape \(1, 2\)"):
        sampler.get_negative_sample(np.array([[1, 2]]))
    with pytest.raises(ValueError, match="target: ids must be in 0..3, got 9"):
        sampler.get_negative_sample(np.array([1, 9]))
    assert sampler.get_negative_sample([1, 2]).shape == (2, 2)
