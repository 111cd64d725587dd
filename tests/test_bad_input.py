"""Bad input raises a clear TypeError/ValueError naming the argument, before any kernel runs."""
import numpy as np
import pytest

import seqkern as sk
from seqkern import bench, reference


def lstm_problem(dtype=np.float32):
    return bench.make_problem("lstm", 5, 3, 4, 6, dtype=dtype)


@pytest.fixture(params=[sk, reference], ids=["kernel", "twin"])
def impl(request):
    return request.param


def call(impl, **changes):
    return impl.lstm(**dict(lstm_problem(), **changes))


def test_wrong_rank(impl):
    p = lstm_problem()
    with pytest.raises(ValueError, match=r"x: expected shape \(T, batch, input_size\)"):
        call(impl, x=p["x"][0])


def test_wrong_weight_shape_names_expected_shape(impl):
    p = lstm_problem()
    with pytest.raises(ValueError, match=r"w_hh: expected shape \(4\*hidden, hidden\) = \(24, 6\), got \(24, 5\)"):
        call(impl, w_hh=p["w_hh"][:, :5])
    with pytest.raises(ValueError, match=r"w_hh: expected shape \(4\*hidden, hidden\), got \(23, 6\)"):
        call(impl, w_hh=p["w_hh"][:23])
    with pytest.raises(ValueError, match=r"w_ih: expected shape \(4\*hidden, input_size\) = \(24, 4\)"):
        call(impl, w_ih=p["w_ih"][:, :3])
    with pytest.raises(ValueError, match=r"b_hh: expected shape \(4\*hidden,\) = \(24,\)"):
        call(impl, b_hh=p["b_hh"][:20])


def test_mismatched_batch(impl):
    p = lstm_problem()
    with pytest.raises(ValueError, match=r"h0: expected shape \(batch, hidden\) = \(3, 6\), got \(2, 6\)"):
        call(impl, h0=p["h0"][:2])
    with pytest.raises(ValueError, match=r"c0: expected shape"):
        call(impl, c0=p["c0"][:, :2])
    with pytest.raises(ValueError, match=r"lengths: expected shape \(batch,\) = \(3,\)"):
        call(impl, lengths=np.array([1, 2]))


def test_missing_array_says_none(impl):
    with pytest.raises(TypeError, match="x: expected float32 or float64, got None"):
        call(impl, x=None)


def test_wrong_dtype(impl):
    p = lstm_problem()
    with pytest.raises(TypeError, match="x: expected float32 or float64, got int64"):
        call(impl, x=np.ones((5, 3, 4), np.int64))
    with pytest.raises(TypeError, match="x: expected float32 or float64, got float16"):
        call(impl, x=p["x"].astype(np.float16))
    with pytest.raises(TypeError, match="w_ih: expected float32 like x, got float64"):
        call(impl, w_ih=p["w_ih"].astype(np.float64))
    with pytest.raises(TypeError, match="lengths: expected an integer array"):
        call(impl, lengths=np.array([True, False, True]))


@pytest.mark.parametrize("lengths", [[0, 2, 3], [1, 6, 2], [-1, 2, 2]])
def test_lengths_out_of_range(impl, lengths):
    with pytest.raises(ValueError, match=r"lengths: each must be in 1..T = 1..5"):
        call(impl, lengths=np.array(lengths))


def test_nan_in_lengths(impl):
    with pytest.raises(ValueError, match="lengths: expected whole numbers"):
        call(impl, lengths=np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="lengths: expected whole numbers"):
        call(impl, lengths=np.array([1.5, 2.0, 2.0]))
    y, *_ = call(impl, lengths=np.array([1.0, 5.0, 2.0]))  # whole floats are fine
    assert not y[1:, 0].any()


def test_empty_sequence(impl):
    with pytest.raises(ValueError, match="x: T, batch and input_size must be at least 1"):
        call(impl, x=np.zeros((0, 3, 4), np.float32))


def test_backward_checks_its_arguments(impl):
    *_, saved = call(impl, training=True)
    with pytest.raises(ValueError, match=r"dy: expected shape \(T, batch, hidden\) = \(5, 3, 6\)"):
        impl.lstm_backward(saved, np.zeros((5, 3, 5), np.float32))
    with pytest.raises(TypeError, match="dh_n: expected float32 like x"):
        impl.lstm_backward(saved, None, np.zeros((3, 6)))
    with pytest.raises(ValueError, match="saved: comes from lstm, not gru"):
        impl.gru_backward(saved)
    with pytest.raises(TypeError, match="saved: expected what lstm"):
        impl.lstm_backward({"y": 1})


def test_saved_of_the_other_implementation_is_refused():
    *_, saved = sk.lstm(**lstm_problem(), training=True)
    with pytest.raises(ValueError, match="kernel implementation of lstm, not the reference one"):
        reference.lstm_backward(saved)


def test_unknown_nonlinearity(impl):
    p = bench.make_problem("rnn", 3, 2, 2, 2)
    with pytest.raises(ValueError, match="nonlinearity: expected 'tanh' or 'relu', got 'sigmoid'"):
        impl.rnn(**p, nonlinearity="sigmoid")


def test_set_num_threads_rejects_nonsense():
    with pytest.raises(ValueError, match="at least 1"):
        sk.set_num_threads(0)
    with pytest.raises(TypeError):
        sk.set_num_threads(1.5)


def unaligned_copy(a):
    """a's values in a float32 array at an odd offset into a buffer (as after a binary file's
    header), so not aligned."""
    out = np.ndarray(a.shape, np.float32, buffer=np.zeros(4 * a.size + 1, np.uint8), offset=1)
    assert not out.flags.aligned
    out[...] = a
    return out


def test_core_takes_only_the_arrays_it_writes_through():
    """_core's own array arguments are the ndarrays passed, never converted copies (an output
    written into a copy would be lost): another dtype or byte order, a strided view or a list is
    a TypeError, a read-only output a ValueError. An unaligned array (a view at an odd offset
    into a buffer) is read from an aligned copy, and refused as an output."""
    from seqkern import _core

    x, w = np.ones((1, 1, 4), np.float32), np.full((4, 4), 0.25, np.float32)
    h0 = np.zeros((1, 4), np.float32)

    def forward(**change):
        a = dict(x=x, w_ih=w, w_hh=w, h0=h0, y=np.empty((1, 1, 4), np.float32),
                 h_n=np.empty((1, 4), np.float32))
        a.update(change)
        _core.rnn_forward(False, a["x"], a["w_ih"], a["w_hh"], None, None, None, a["h0"], a["y"],
                          a["h_n"], None)
        return a["y"]

    np.testing.assert_allclose(forward(), np.tanh(np.ones((1, 1, 4))), rtol=1e-6)
    for bad in (x.astype(np.float16), x.astype(">f4"), np.ones((1, 1, 8), np.float32)[..., ::2],
                x.tolist()):
        with pytest.raises(TypeError):
            forward(x=bad)
    with pytest.raises(TypeError):
        forward(y=np.empty((1, 1, 8), np.float32)[..., ::2])
    read_only = np.empty((1, 1, 4), np.float32)
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match="not writeable"):
        forward(y=read_only)
    np.testing.assert_array_equal(forward(x=unaligned_copy(x)), forward())
    with pytest.raises(ValueError, match="must be aligned"):
        forward(y=unaligned_copy(np.empty((1, 1, 4), np.float32)))


def test_unaligned_arrays_are_taken():
    """Arrays read at an odd offset from a buffer (a binary file's header before them) give the
    results of aligned ones."""
    p = lstm_problem()
    for a, b in zip(sk.lstm(**dict(p, x=unaligned_copy(p["x"]))), sk.lstm(**p)):
        np.testing.assert_array_equal(a, b)


SEEDED = {
    "nn.LSTM": lambda seed: sk.nn.LSTM(4, 5, seed=seed),
    "nn.Linear": lambda seed: sk.nn.Linear(4, 5, seed=seed),
    "nn.Embedding": lambda seed: sk.nn.Embedding(4, 5, seed=seed),
    "nn.Attention": lambda seed: sk.nn.Attention("general", 4, 4, seed=seed),
    "nn.Dropout": lambda seed: sk.nn.Dropout(0.5, seed=seed),
    "RNNLM": lambda seed: sk.models.RNNLM(vocab=sk.data.Vocabulary.build("a b"), seed=seed),
    "CTCTagger": lambda seed: sk.models.CTCTagger(3, 4, seed=seed),
    "PPMIVectors": lambda seed: sk.PPMIVectors([["a", "b", "a"]], vector_size=1, seed=seed),
    "addition_pairs": lambda seed: sk.data.addition_pairs(3, seed=seed),
    "spoken_digits": lambda seed: sk.data.spoken_digits(2, seed=seed),
}


@pytest.mark.parametrize("what", SEEDED)
@pytest.mark.parametrize("seed", [-1, 2.5, "x"])
def test_a_bad_seed_is_named(what, seed):
    """numpy's default_rng refused these with "expected non-negative integer" or a TypeError
    about SeedSequence's entropy, naming no argument."""
    with pytest.raises(ValueError, match=r"seed: expected None or an integer >= 0, got "):
        SEEDED[what](seed)
    SEEDED[what](None), SEEDED[what](7), SEEDED[what](np.random.default_rng(0))  # as numpy takes


@pytest.mark.parametrize("make", [
    lambda dt: sk.nn.LSTM(4, 5, dtype=dt), lambda dt: sk.nn.GRU(4, 5, dtype=dt),
    lambda dt: sk.nn.Linear(4, 5, dtype=dt), lambda dt: sk.nn.Embedding(4, 5, dtype=dt),
    lambda dt: sk.nn.Attention("general", 4, 4, dtype=dt),
    lambda dt: sk.models.RNNLM(vocab_size=5, dtype=dt)],
    ids=["LSTM", "GRU", "Linear", "Embedding", "Attention", "RNNLM"])
def test_a_layer_of_a_dtype_the_kernels_lack_is_refused(make):
    """A float16 layer was made, and every call then failed on its input's dtype."""
    for dt in (np.float16, "int32", "bogus", None):
        with pytest.raises(ValueError, match="dtype: expected float32 or float64, got "):
            make(dt)
    for dt in (np.float32, "float64"):
        make(dt)


@pytest.mark.parametrize("cls", [sk.nn.LSTM, sk.nn.GRU, sk.nn.RNN])
def test_a_recurrent_layer_names_its_dtype_and_takes_lists(cls):
    """An input of the other float type was blamed on the layer's weights ("weights[0] w_ih:
    expected float64 like x"), and a nested list, read as float64, failed so on a float32 layer."""
    x = np.linspace(-1, 1, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    for dtype, other in ((np.float32, np.float64), (np.float64, np.float32)):
        layer = cls(4, 5, dtype=dtype)
        with pytest.raises(TypeError, match=f"x: expected {np.dtype(dtype)} like the layer's "
                                            f"weights, got {np.dtype(other)}"):
            layer.forward(x.astype(other))
        y, _ = layer.forward(x.astype(dtype).tolist())
        np.testing.assert_array_equal(y, layer.forward(x.astype(dtype))[0])
        with pytest.raises(TypeError, match=f"dy: expected {np.dtype(dtype)} like the layer's"):
            layer.backward(y.astype(other))
        dx, _ = layer.backward(np.ones_like(y).tolist())
        assert dx.dtype == dtype


@pytest.mark.parametrize("make, name", [
    (lambda v: sk.models.RNNLM(vocab_size=5, wordvec_size=v), "wordvec_size"),
    (lambda v: sk.models.RNNLM(vocab_size=5, num_layers=v), "num_layers"),
    (lambda v: sk.models.AttentionSeq2Seq(sk.data.Seq2SeqData.from_pairs(
        sk.data.addition_pairs(4)).vocab, hidden_size=v), "hidden_size"),
    (lambda v: sk.models.CTCTagger(input_size=v, num_classes=3), "input_size")])
def test_a_model_size_is_checked_before_its_config(make, name):
    """int() in the config raised OverflowError on inf (found by tests/fuzz_api.py), and made 2
    of 2.5 there while the layers refused it."""
    for bad in (float("inf"), 2.5, 0):
        with pytest.raises(ValueError, match=f"{name}: expected a positive integer"):
            make(bad)
