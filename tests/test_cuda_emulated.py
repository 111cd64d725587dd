"""The CUDA backend's kernels and its Python layer (seqkern._device) on the CPU emulator
(tests/cuda_emulator/cuda_runtime.h), so that every machine checks their logic, GPU or not.

The kernels of csrc/cuda, compiled by g++ against the emulator, stand in for seqkern._cuda, and
NumPy arrays wrapped as "device" arrays stand in for torch's: sk.lstm / gru / rnn then take the
same path through seqkern._device as on a GPU. What only a GPU shows (speed, races hidden by the
barriers, the memory model) is left to tests/test_cuda.py.
"""
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import seqkern as sk
from cuda_cases import (
    CELLS, SHAPES, STACKS, assert_same, assert_stacks_same, problem, run, stack_problem, stack_step,
)
from cuda_ops_cases import (
    ATTENTION, CROSS_ENTROPY, CTC, EMBEDDING, SCORES, assert_results_same, attention_problem,
    attention_step, cross_entropy_step, ctc_step, embedding_step,
)
from seqkern import _device, reference

sys.path.insert(0, str(Path(__file__).resolve().parent / "cuda_emulator"))
import emulate_cuda  # noqa: E402


class Emulated:
    """A NumPy array posing as a CUDA array: what seqkern._device accepts and returns here."""

    def __init__(self, a):
        self.a = a

    __cuda_array_interface__ = property(lambda self: self.a.__array_interface__)
    shape = property(lambda self: self.a.shape)
    dtype = property(lambda self: self.a.dtype)
    ndim = property(lambda self: self.a.ndim)

    def __getitem__(self, key):
        return Emulated(self.a[unwrap(key)])

    def __setitem__(self, key, value):
        self.a[unwrap(key)] = unwrap(value)

    def __mul__(self, other):
        return Emulated(self.a * unwrap(other))

    def __add__(self, other):
        return Emulated(self.a + unwrap(other))

    def reshape(self, *shape):
        return Emulated(self.a.reshape(*shape))


def unwrap(v):
    if isinstance(v, tuple):
        return tuple(map(unwrap, v))
    return v.a if isinstance(v, Emulated) else v


class EmulatedArrays(_device._Arrays):
    """seqkern._device's array adapter (as _TorchArrays) for Emulated arrays."""

    def float_array(self, name, a, dtype=None, like="x"):
        if not isinstance(a, Emulated):
            raise TypeError(f"{name}: expected an emulated device array like x, got "
                            f"{type(a).__name__}")
        _device.check_dtype(name, a, dtype, like)
        c = np.ascontiguousarray(a.a)
        return Emulated(c if c.ctypes.data % c.itemsize == 0 else c.copy())

    def zeros(self, shape, dtype):
        return Emulated(np.zeros(shape, dtype))

    def empty(self, shape, dtype):
        return Emulated(np.full(shape, np.nan, dtype))  # NaN: a value never written shows

    @staticmethod
    def asarray(host):
        return Emulated(np.asarray(host))

    @staticmethod
    def to_host(a):
        return a.a

    @staticmethod
    def concat_last(arrays):
        return Emulated(np.concatenate([a.a for a in arrays], axis=-1))

    @staticmethod
    def is_double(a):
        return a.dtype == np.float64

    @staticmethod
    def reduced(a, divisor):
        return Emulated(np.asarray(np.sum(a.a, dtype=np.float64) / divisor).astype(a.dtype))

    @staticmethod
    def fill_zeros(a):
        a.a[...] = 0

    @staticmethod
    def index():
        return 0

    @staticmethod
    def stream():
        return 0

    @staticmethod
    def ptr(a):
        return 0 if a is None else a.a.ctypes.data


@pytest.fixture(scope="module")
def emulated_cuda(tmp_path_factory):
    if shutil.which(emulate_cuda.COMPILER) is None:
        pytest.skip(f"needs {emulate_cuda.COMPILER} to build the emulated kernels")
    pytest.importorskip("pybind11")  # a test extra; the emulated module binds through it
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("needs Python's C headers to build the emulated kernels")
    try:
        return emulate_cuda.build(tmp_path_factory.mktemp("cuda_emulated"))
    except subprocess.CalledProcessError as e:
        pytest.fail(f"the emulated kernels did not compile:\n{e.stderr[-4000:]}")


@pytest.fixture
def on_emulator(emulated_cuda, monkeypatch):
    """seqkern._device running the emulated kernels on Emulated arrays."""
    monkeypatch.setattr(_device, "_backend", lambda: emulated_cuda)
    monkeypatch.setattr(_device, "_arrays_like", lambda x, name="x": EmulatedArrays())


def emulated(p):
    return {k: v if v is None or k == "lengths" else Emulated(v) for k, v in p.items()}


def host(a):
    return a.a if isinstance(a, Emulated) else np.asarray(a)


# The shapes of tests/test_cuda.py but the largest, which takes 1.5-2 s a case (each emulated
# thread a fiber, each block in turn): it runs once, below.
EMULATED_SHAPES = [s for s in SHAPES if s[0] * s[1] * s[3] <= 10000]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", EMULATED_SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_emulated_kernels_match_the_numpy_twin(on_emulator, monkeypatch, cell, shape, dtype,
                                               order):
    """order: the emulator runs a block's threads from the first or from the last between
    barriers, so a missing barrier shows whichever thread reads another's write."""
    if order == "reverse":
        monkeypatch.setenv("SEQKERN_EMULATOR_REVERSE", "1")
    p = problem(cell, *shape, dtype, seed=sum(shape), uneven=shape[1] > 1)
    assert_same(run(cell, p, reference), run(cell, emulated(p)), dtype, host)


def test_emulated_kernels_match_the_numpy_twin_at_the_largest_shape(on_emulator):
    shape = max(SHAPES, key=lambda s: s[0] * s[1] * s[3])
    p = problem("lstm", *shape, np.float32, seed=sum(shape), uneven=True)
    assert_same(run("lstm", p, reference), run("lstm", emulated(p)), np.float32, host)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias, state, incoming", [(False, False, True), (True, True, False)])
def test_emulated_optional_arguments_match_the_numpy_twin(on_emulator, cell, bias, state,
                                                          incoming):
    p = problem(cell, 4, 5, 7, 45, np.float64, seed=3, bias=bias, state=state, uneven=True)
    if not incoming:
        p["dh_n"] = p["dc_n"] = None
    q = emulated(p)
    q["lengths"] = Emulated(p["lengths"])  # lengths may live on the device too
    assert_same(run(cell, p, reference), run(cell, q), np.float64, host)


@settings(max_examples=10, deadline=None)
@given(cell=st.sampled_from(list(CELLS)), T=st.integers(1, 4), B=st.integers(1, 10),
       I=st.integers(1, 12), H=st.integers(1, 40), uneven=st.booleans(), seed=st.integers(0, 99))
def test_emulated_random_shapes_match_the_numpy_twin(emulated_cuda, cell, T, B, I, H, uneven,
                                                     seed):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_device, "_backend", lambda: emulated_cuda)
        mp.setattr(_device, "_arrays_like", lambda x, name="x": EmulatedArrays())
        p = problem(cell, T, B, I, H, np.float64, seed, uneven=uneven)
        assert_same(run(cell, p, reference), run(cell, emulated(p)), np.float64, host)


def test_emulated_bad_input_raises(on_emulator):
    p = emulated(problem("lstm", 3, 2, 4, 5, np.float32, seed=0))
    with pytest.raises(TypeError, match="w_hh: expected an emulated device array"):
        sk.lstm(p["x"], None, None, p["w_ih"], p["w_hh"].a)
    with pytest.raises(ValueError, match=r"w_ih: expected shape \(4\*hidden, input_size\)"):
        sk.lstm(p["x"], None, None, Emulated(p["w_ih"].a[:, :3]), p["w_hh"])
    *_, saved = sk.lstm(p["x"], None, None, p["w_ih"], p["w_hh"], training=True)
    with pytest.raises(ValueError, match="saved: comes from lstm, not rnn"):
        sk.rnn_backward(saved)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_emulated_long_sequences_match_the_numpy_twin(on_emulator, cell):
    """T*B = 1040 rows in the weight gradients' sums: long enough for products that split k
    between blocks (the emulator reports 4 multiprocessors, so few tiles leave it idle)."""
    p = problem(cell, 130, 8, 6, 7, np.float64, seed=7, uneven=True)
    assert_same(run(cell, p, reference), run(cell, emulated(p)), np.float64, host)


@pytest.mark.parametrize("case", STACKS, ids=[c[0] for c in STACKS])
def test_emulated_stacks_match_the_numpy_twin(on_emulator, case):
    cell, bi = case[0], case[6]
    p, incoming = stack_problem(*case)
    want = stack_step(reference, cell, p, incoming, bi)
    q = {k: v if v is None or k in ("lengths", "weights") else Emulated(v) for k, v in p.items()}
    q["weights"] = [tuple(Emulated(w) for w in ws) for ws in p["weights"]]
    assert_stacks_same(want, stack_step(sk, cell, q, tuple(map(Emulated, incoming)), bi), host)


def test_cuda_arrays_without_the_cuda_module_raise_runtime_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "seqkern._cuda", None)  # as if built without nvcc
    monkeypatch.delattr(sk, "_cuda", raising=False)  # an earlier import bound it to the package
    monkeypatch.setattr(_device, "_arrays_like", lambda x, name="x": EmulatedArrays())
    p = emulated(problem("rnn_tanh", 2, 1, 3, 4, np.float32, seed=0))
    with pytest.raises(RuntimeError, match="built without its CUDA backend"):
        sk.rnn(p["x"], None, p["w_ih"], p["w_hh"])


def test_seqkern_check_checks_the_cuda_kernels(on_emulator, capsys):
    from seqkern import cli
    arrays = (Emulated, host)
    assert all(cli.cuda_check(cell, arrays) for cell in ("rnn", "lstm", "gru"))
    assert cli.cuda_check_other_ops(arrays)
    printed = capsys.readouterr().out
    assert printed.count("on CUDA vs NumPy twin") == 3 + 5 and "MISMATCH" not in printed


# softmax cross-entropy, embedding and attention (seqkern._device_ops)

@pytest.mark.parametrize("N, V", CROSS_ENTROPY)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction, smoothing, ignored", [("mean", 0.0, False), ("none", 0.1, True),
                                                           ("sum", 0.0, True), ("mean", 0.3, True)])
def test_emulated_cross_entropy_matches_the_numpy_twin(on_emulator, N, V, dtype, reduction,
                                                       smoothing, ignored):
    case = dict(N=N, V=V, dtype=dtype, seed=N + V, reduction=reduction,
                label_smoothing=smoothing, ignored=ignored)
    got = cross_entropy_step(sk, **case, dev=Emulated, host=host, dloss_on_device=ignored)
    assert_results_same(cross_entropy_step(reference, **case), got, dtype)


def test_emulated_cross_entropy_every_row_ignored_is_nan_as_on_the_cpu(on_emulator):
    logits = np.zeros((3, 4), np.float32)
    targets = np.full(3, -100)
    loss, saved = sk.softmax_cross_entropy(Emulated(logits), targets, training=True)
    assert np.isnan(host(loss)) and np.isnan(sk.softmax_cross_entropy(logits, targets))
    assert not host(sk.softmax_cross_entropy_backward(saved)).any()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_emulated_cross_entropy_of_masked_logits_as_on_the_cpu(on_emulator, smoothing):
    """Classes masked out by -inf: without smoothing they add nothing to the loss (0 * -inf had
    made it NaN), with smoothing it is inf; a fully masked row is NaN (tests/test_cross_entropy)."""
    logits = np.random.default_rng(3).standard_normal((5, 7)).astype(np.float32)
    targets = np.array([0, 4, 2, 5, 1])
    logits[0, 3] = logits[1, [1, 4]] = -np.inf
    logits[2, [0, 1, 3, 4, 5, 6]] = -np.inf
    logits[3, :] = -np.inf
    for reduction in ("none", "mean"):
        with np.errstate(invalid="ignore"):
            want = sk.softmax_cross_entropy(logits, targets, reduction=reduction,
                                            label_smoothing=smoothing)
        got = host(sk.softmax_cross_entropy(Emulated(logits), targets, reduction=reduction,
                                            label_smoothing=smoothing))
        np.testing.assert_allclose(got, want, rtol=1e-6)  # inf and NaN in the same places


def test_emulated_cross_entropy_backward_in_place(on_emulator):
    logits = np.random.default_rng(0).standard_normal((5, 9)).astype(np.float32)
    want = sk.softmax_cross_entropy_backward(sk.softmax_cross_entropy(logits, np.arange(5),
                                                                      training=True)[1])
    x = Emulated(logits.copy())
    _, saved = sk.softmax_cross_entropy(x, Emulated(np.arange(5)), training=True)
    assert sk.softmax_cross_entropy_backward(saved, out=x).a.base is x.a
    np.testing.assert_allclose(x.a, want, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="out: expected a C-contiguous, aligned array"):
        sk.softmax_cross_entropy_backward(saved, out=Emulated(np.zeros((9, 5), np.float32).T))


@pytest.mark.parametrize("V, D, ids_shape", EMBEDDING)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_emulated_embedding_matches_the_numpy_twin(on_emulator, V, D, ids_shape, dtype,
                                                   padding_idx):
    case = dict(V=V, D=D, ids_shape=ids_shape, dtype=dtype, seed=V + D, padding_idx=padding_idx)
    got = embedding_step(sk, **case, dev=Emulated, host=host)
    assert_results_same(embedding_step(reference, **case), got, dtype)


def test_emulated_embedding_sums_repeats_in_the_cpu_order_and_overwrites(on_emulator):
    rng = np.random.default_rng(1)
    ids = np.array([[3, 1, 3], [3, 0, 1]])
    dy = rng.standard_normal((2, 3, 5)).astype(np.float32) * 1e3
    for overwrite in (False, True):
        dw = rng.standard_normal((4, 5)).astype(np.float32)
        want = sk.embedding_backward(ids, dy, dw.copy(), overwrite=overwrite)
        got = sk.embedding_backward(Emulated(ids), Emulated(dy), Emulated(dw), overwrite=overwrite)
        np.testing.assert_array_equal(host(got), want)  # bit for bit: the same order of sums


@pytest.mark.parametrize("shape", ATTENTION)
@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_emulated_attention_matches_the_numpy_twin(on_emulator, shape, score, dtype):
    p = attention_problem(score, *shape, dtype, seed=sum(shape))
    assert_results_same(attention_step(reference, score, p),
                        attention_step(sk, score, p, dev=Emulated, host=host), dtype)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_emulated_attention_keys_as_values_without_lengths(on_emulator, monkeypatch, score,
                                                           order):
    if order == "reverse":
        monkeypatch.setenv("SEQKERN_EMULATOR_REVERSE", "1")
    p = attention_problem(score, 3, 5, 140, 6, 7, 0, np.float64, seed=4, lengths=False,
                          keys_are_values=True)
    p["lengths"] = None
    want = attention_step(reference, score, p, return_weights=False)
    got = attention_step(sk, score, p, dev=Emulated, host=host, return_weights=False)
    assert_results_same(want, got, np.float64)


def test_emulated_attention_lengths_on_the_device_and_bad_input(on_emulator):
    p = attention_problem("dot", 2, 3, 4, 5, 5, 6, np.float32, seed=0)
    want = attention_step(reference, "dot", p)
    p["lengths"] = Emulated(p["lengths"])
    assert_results_same(want, attention_step(sk, "dot", p, dev=Emulated, host=host), np.float32)
    q = Emulated(p["query"])
    with pytest.raises(TypeError, match="keys: expected an emulated device array"):
        sk.attention(q, p["keys"])
    with pytest.raises(ValueError, match=r"lengths: each must be in 1..Tk = 1..4, got"):
        sk.attention(q, Emulated(p["keys"]), lengths=[0, 4])
    _, _, saved = sk.attention(q, Emulated(p["keys"]), training=True)
    with pytest.raises(ValueError, match=r"dcontext: expected shape \(batch, Tq, Hv\)"):
        sk.attention_backward(saved, Emulated(np.zeros((2, 3, 4), np.float32)))
    with pytest.raises(ValueError, match="saved: comes from attention, not softmax_cross_entropy"):
        sk.softmax_cross_entropy_backward(saved)


@pytest.mark.parametrize("shape", CTC)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction, zero_infinity, padded", [("mean", False, True),
                                                              ("none", True, False),
                                                              ("sum", False, False)])
def test_emulated_ctc_matches_the_numpy_twin(on_emulator, shape, dtype, reduction, zero_infinity,
                                             padded):
    case = dict(zip("TBCS", shape), dtype=dtype, seed=sum(shape), reduction=reduction,
                zero_infinity=zero_infinity, padded=padded)
    want = ctc_step(reference, **case)
    got = ctc_step(sk, **case, dev=Emulated, host=host, dloss_on_device=reduction == "none")
    assert_results_same(want, got, dtype)


def test_emulated_ctc_reverse_thread_order_and_device_lengths(on_emulator, monkeypatch):
    monkeypatch.setenv("SEQKERN_EMULATOR_REVERSE", "1")
    rng = np.random.default_rng(2)
    lp = np.log(rng.dirichlet(np.ones(5), (9, 3))).astype(np.float32)
    targets, il, tl = rng.integers(1, 5, (3, 4)), np.array([9, 7, 8]), np.array([4, 2, 3])
    want_loss, saved = sk.ctc_loss(lp, targets, il, tl, training=True)
    want = sk.ctc_loss_backward(saved)["log_probs"]
    loss, saved = sk.ctc_loss(Emulated(lp), Emulated(targets), Emulated(il), Emulated(tl),
                              training=True)
    np.testing.assert_allclose(host(loss), want_loss, rtol=1e-5)
    np.testing.assert_allclose(host(sk.ctc_loss_backward(saved)["log_probs"]), want, rtol=1e-4,
                               atol=1e-6)
    with pytest.raises(ValueError, match="targets: the blank"):
        sk.ctc_loss(Emulated(lp), np.zeros((3, 1), np.int64), il, [1, 1, 1])


def test_emulated_unaligned_arrays_are_copied_or_refused_in_place(on_emulator):
    """The kernels read whole aligned values: an input at an odd address is copied first (the
    fuzz found UBSan's misaligned loads), an output written in place is refused."""
    def unaligned(a):
        return np.frombuffer(b"\0" + a.tobytes(), np.uint8)[1:].view(a.dtype).reshape(a.shape)

    p = problem("gru", 3, 2, 4, 5, np.float32, seed=1)
    want = sk.gru(p["x"], p["h0"], p["w_ih"], p["w_hh"])
    got = sk.gru(Emulated(unaligned(p["x"])), Emulated(p["h0"]), Emulated(p["w_ih"]),
                 Emulated(p["w_hh"]))
    for w, g in zip(want, got):
        np.testing.assert_allclose(host(g), w, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dweight: expected a C-contiguous, aligned array"):
        sk.embedding_backward([1], Emulated(np.ones((1, 3), np.float32)),
                              Emulated(unaligned(np.zeros((2, 3), np.float32))))
