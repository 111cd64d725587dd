"""The CUDA backend: sk.lstm / gru / rnn and their backward on CUDA arrays (torch and CuPy).

Checked three ways, as every op: against the NumPy twins (seqkern.reference), by central
differences in float64 on the GPU, and against cuDNN through torch.nn. Skipped
where seqkern._cuda is not built or no GPU is visible; the error for an unknown CUDA array type
runs everywhere.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cuda_cases
import seqkern as sk
from cuda_cases import (
    CELLS, SHAPES, STACKS, assert_stacks_same, problem, run, stack_problem, stack_step,
)
from cuda_ops_cases import (
    ATTENTION, CROSS_ENTROPY, CTC, EMBEDDING, SCORES, assert_results_same, attention_problem,
    attention_step, cross_entropy_step, ctc_step, embedding_step,
)
from seqkern import reference


class FakeDeviceArray:
    """Claims to live on a GPU without being a torch or CuPy array."""

    __cuda_array_interface__ = {"shape": (2, 1, 3), "typestr": "<f4", "data": (0, False),
                                "version": 3}


def test_unknown_cuda_array_types_raise_type_error():
    with pytest.raises(TypeError, match="torch tensors or CuPy arrays"):
        sk.lstm(FakeDeviceArray(), None, None, np.zeros((8, 3), "f"), np.zeros((8, 2), "f"))


class RefusingDeviceArray(FakeDeviceArray):
    """A CUDA array that, like torch's and CuPy's, refuses to become a NumPy array."""

    def __array__(self, *args, **kwargs):
        raise TypeError("can't convert a device array to numpy")


def test_cuda_arrays_given_to_cpu_only_ops_raise_a_clear_type_error():
    a = RefusingDeviceArray()
    with pytest.raises(TypeError, match="log_probs: a CUDA array in a call that runs on the CPU"):
        sk.ctc_greedy_decode(a, [2])
    with pytest.raises(TypeError, match="log_probs: CUDA arrays must be torch tensors or CuPy"):
        sk.ctc_loss(a, np.zeros((1, 2), np.int64), [2], [2])
    with pytest.raises(TypeError, match="keys: a CUDA array"):
        sk.attention(np.zeros((1, 2, 3), "f"), a)
    with pytest.raises(TypeError, match="query: CUDA arrays must be torch tensors or CuPy arrays"):
        sk.attention(a, np.zeros((1, 2, 3), "f"))
    with pytest.raises(TypeError, match="logits: CUDA arrays must be torch tensors or CuPy"):
        sk.softmax_cross_entropy(a, np.zeros(2, np.int64))


def _gpu():
    try:
        from seqkern import _cuda
    except ImportError:
        return False
    return _cuda.device_count() > 0


torch = pytest.importorskip("torch")
needs_gpu = pytest.mark.skipif(not (_gpu() and torch.cuda.is_available()),
                               reason="needs seqkern._cuda and a CUDA GPU")

def to_gpu(p):
    return {k: None if v is None or k == "lengths" else torch.from_numpy(v).cuda()
            for k, v in p.items()} | {"lengths": p["lengths"]}


def host(a):
    return a.cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def assert_same(want, got, dtype):
    cuda_cases.assert_same(want, got, dtype, host)


@needs_gpu
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("uneven", [False, True])
def test_matches_the_numpy_twin(cell, shape, dtype, uneven):
    p = problem(cell, *shape, dtype, seed=sum(shape), uneven=uneven)
    assert_same(run(cell, p, reference), run(cell, to_gpu(p)), dtype)


@needs_gpu
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias, state, incoming", [(False, False, True), (True, True, False)])
def test_optional_arguments_match_the_numpy_twin(cell, bias, state, incoming):
    p = problem(cell, 6, 5, 7, 45, np.float64, seed=3, bias=bias, state=state, uneven=True)
    if not incoming:
        p["dh_n"] = p["dc_n"] = None
    q = to_gpu(p)
    q["lengths"] = torch.from_numpy(p["lengths"]).cuda()  # lengths may live on the device too
    assert_same(run(cell, p, reference), run(cell, q), np.float64)


@needs_gpu
@settings(max_examples=20, deadline=None)
@given(cell=st.sampled_from(list(CELLS)), T=st.integers(1, 9), B=st.integers(1, 12),
       I=st.integers(1, 20), H=st.integers(1, 70), uneven=st.booleans(), seed=st.integers(0, 99))
def test_random_shapes_match_the_numpy_twin(cell, T, B, I, H, uneven, seed):
    p = problem(cell, T, B, I, H, np.float64, seed, uneven=uneven)
    assert_same(run(cell, p, reference), run(cell, to_gpu(p)), np.float64)


@needs_gpu
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_central_differences_on_the_gpu(cell):
    """loss = sum(y dy) + sum(h_n dh_n) (+ sum(c_n dc_n)), differentiated along random directions
    of every input, entirely on the device in float64."""
    p = to_gpu(problem(cell, 4, 3, 5, 9, np.float64, seed=11, uneven=True))
    name, _, kw = CELLS[cell]
    fn = getattr(sk, name)
    names = ["x", "h0"] + (["c0"] if cell == "lstm" else []) + ["w_ih", "w_hh", "b_ih", "b_hh"]

    def loss(q):
        state = (q["h0"], q["c0"]) if cell == "lstm" else (q["h0"],)
        outs = fn(q["x"], *state, q["w_ih"], q["w_hh"], q["b_ih"], q["b_hh"],
                  lengths=q["lengths"], **kw)
        grads = (p["dy"], p["dh_n"], p["dc_n"])
        return sum(float((o * g).sum()) for o, g in zip(outs, grads))

    _, g = run(cell, p)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name in names:
        d = torch.randn(p[name].shape, dtype=torch.float64, device="cuda", generator=gen)
        eps = 1e-6
        plus, minus = dict(p), dict(p)
        plus[name], minus[name] = p[name] + eps * d, p[name] - eps * d
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        analytic = float((g[name] * d).sum())
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric)), name


TORCH_CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


@needs_gpu
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("uneven", [False, True])
def test_matches_cudnn_through_torch(cell, uneven):
    """torch.nn's module on CUDA (cuDNN), float64, packed sequences when uneven."""
    T, B, I, H = 9, 6, 10, 24
    kw = {"nonlinearity": cell[4:]} if cell.startswith("rnn") else {}
    m = getattr(torch.nn, TORCH_CELLS[cell])(I, H, **kw).double().cuda()
    p = to_gpu(problem(cell, T, B, I, H, np.float64, seed=5, uneven=uneven))
    for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
        getattr(m, name.replace("w_", "weight_").replace("b_", "bias_") + "_l0").data.copy_(p[name])
    x = p["x"].clone().requires_grad_()
    h0 = p["h0"].clone().requires_grad_()
    c0 = p["c0"].clone().requires_grad_() if cell == "lstm" else None
    state = (h0[None], c0[None]) if cell == "lstm" else h0[None]
    if uneven:
        lengths = torch.from_numpy(p["lengths"])
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        y, state_n = m(packed, state)
        y = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=T)[0]
    else:
        y, state_n = m(x, state)
    outs = (y,) + (state_n if cell == "lstm" else (state_n,))
    outs = [o.squeeze(0) if o.dim() == 3 and o is not y else o for o in outs]
    incoming = [p["dy"], p["dh_n"], p["dc_n"]]
    torch.autograd.backward(outs, incoming[:len(outs)])
    ours_outs, g = run(cell, p)
    for theirs, ours in zip(outs, ours_outs):
        torch.testing.assert_close(ours, theirs.detach(), rtol=1e-9, atol=1e-10)
    expected = {"x": x.grad, "h0": h0.grad, "w_ih": m.weight_ih_l0.grad,
                "w_hh": m.weight_hh_l0.grad, "b_ih": m.bias_ih_l0.grad, "b_hh": m.bias_hh_l0.grad}
    if cell == "lstm":
        expected["c0"] = c0.grad
    for k, v in expected.items():
        torch.testing.assert_close(g[k], v, rtol=1e-9, atol=1e-10, msg=k)


@needs_gpu
def test_cupy_arrays_give_the_torch_results():
    cupy = pytest.importorskip("cupy")
    p = problem("lstm", 6, 5, 7, 40, np.float32, seed=2, uneven=True)
    on_torch = run("lstm", to_gpu(p))
    q = {k: None if v is None else cupy.asarray(v) for k, v in p.items()}
    on_cupy = run("lstm", q)
    assert isinstance(on_cupy[0][0], cupy.ndarray)
    for a, b in zip(on_torch[0], on_cupy[0]):
        np.testing.assert_array_equal(host(a), cupy.asnumpy(b))
    for k in on_torch[1]:
        np.testing.assert_array_equal(host(on_torch[1][k]), cupy.asnumpy(on_cupy[1][k]))


@needs_gpu
def test_results_repeat_bit_for_bit_and_follow_the_current_stream():
    p = to_gpu(problem("gru", 15, 33, 20, 100, np.float32, seed=4, uneven=True))
    first = run("gru", p)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        second = run("gru", p)
    torch.cuda.current_stream().wait_stream(stream)
    for a, b in zip(first[0], second[0]):
        assert torch.equal(a, b)
    for k in first[1]:
        assert (first[1][k] is None and second[1][k] is None) or torch.equal(first[1][k],
                                                                             second[1][k])


@needs_gpu
def test_outputs_are_torch_tensors_on_the_inputs_device():
    p = to_gpu(problem("rnn_tanh", 3, 2, 4, 5, np.float32, seed=1))
    (y, h_n), g = run("rnn_tanh", p)
    for a in (y, h_n, *g.values()):
        assert isinstance(a, torch.Tensor) and a.device == p["x"].device and a.dtype == torch.float32


@needs_gpu
def test_inputs_that_require_grad_and_strided_inputs_are_taken():
    p = to_gpu(problem("lstm", 5, 4, 6, 7, np.float64, seed=9))
    ref = sk.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    x = p["x"].transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()
    w_hh = p["w_hh"].t().contiguous().t()
    out = sk.lstm(x, p["h0"], p["c0"], p["w_ih"], w_hh, p["b_ih"], p["b_hh"])
    for a, b in zip(ref, out):
        assert torch.equal(a, b)


@needs_gpu
def test_bad_input_raises_before_any_kernel_runs():
    p = to_gpu(problem("lstm", 4, 3, 5, 6, np.float32, seed=0))
    args = lambda **kw: {**{k: p[k] for k in ("h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")}, **kw}  # noqa: E731
    x = p["x"]
    with pytest.raises(TypeError, match="w_hh: expected a torch tensor on cuda"):
        sk.lstm(x, **args(w_hh=p["w_hh"].cpu()))
    with pytest.raises(TypeError, match="w_ih: expected torch.float32 like x"):
        sk.lstm(x, **args(w_ih=p["w_ih"].double()))
    with pytest.raises(TypeError, match="x: expected float32 or float64"):
        sk.lstm(x.half(), **args())
    with pytest.raises(ValueError, match=r"w_hh: expected shape \(4\*hidden, hidden\)"):
        sk.lstm(x, **args(w_hh=p["w_hh"][:, :5]))
    with pytest.raises(ValueError, match="lengths: each must be in 1..T"):
        sk.lstm(x, **args(), lengths=torch.tensor([1, 5, 2], device="cuda"))
    with pytest.raises(ValueError, match="w_hr: the LSTM projection"):
        sk.lstm(x, **args(), w_hr=torch.zeros(3, 6, device="cuda"))
    with pytest.raises(ValueError, match="precision"):
        sk.lstm(x, **args(), precision="bfloat16")
    with pytest.raises(ValueError, match="reset_after"):
        q = to_gpu(problem("gru", 4, 3, 5, 6, np.float32, seed=0))
        sk.gru(q["x"], q["h0"], q["w_ih"], q["w_hh"], reset_after=False)
    *_, saved = sk.lstm(x, **args(), training=True)
    with pytest.raises(ValueError, match="dy: expected shape"):
        sk.lstm_backward(saved, p["dy"][:2])
    with pytest.raises(ValueError, match="saved: comes from lstm, not gru"):
        sk.gru_backward(saved)


def stack_to_gpu(p, incoming):
    cuda = lambda a: None if a is None else torch.from_numpy(a).cuda()  # noqa: E731
    q = {k: v if k in ("lengths", "weights") else cuda(v) for k, v in p.items()}
    q["weights"] = [tuple(map(cuda, ws)) for ws in p["weights"]]
    return q, tuple(map(cuda, incoming))


@needs_gpu
@pytest.mark.parametrize("case", STACKS, ids=[c[0] for c in STACKS])
def test_stacks_match_the_numpy_twin(case):
    cell, bi = case[0], case[6]
    p, incoming = stack_problem(*case)
    want = stack_step(reference, cell, p, incoming, bi)
    assert_stacks_same(want, stack_step(sk, cell, *stack_to_gpu(p, incoming), bi), host)


@needs_gpu
def test_two_layer_bidirectional_lstm_matches_cudnn():
    T, B, I, H = 6, 4, 5, 8
    m = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True).double().cuda()
    p, incoming = stack_problem("lstm", T, B, I, H, 2, True, [6, 3, 5, 1], False, seed=4)
    q, (dy, dh_n, dc_n) = stack_to_gpu(p, incoming)
    weights = []
    for l in range(2):
        for suffix in ("", "_reverse"):
            weights.append(tuple(getattr(m, f"{n}_l{l}{suffix}").detach()
                                 for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    x = q["x"].clone().requires_grad_()
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.from_numpy(p["lengths"]),
                                                     enforce_sorted=False)
    out, (h_n, c_n) = m(packed, (q["h0"], q["c0"]))
    y = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)[0]
    torch.autograd.backward([y, h_n, c_n], [dy, dh_n, dc_n])
    *ours, saved = sk.recurrent_stack("lstm", q["x"], weights, q["h0"], q["c0"],
                                      lengths=p["lengths"], bidirectional=True, training=True)
    g = sk.recurrent_stack_backward(saved, dy, dh_n, dc_n)
    for a, b in zip(ours, (y, h_n, c_n)):
        torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(g["x"], x.grad, rtol=1e-9, atol=1e-10)
    for k, (l, suffix) in enumerate([(0, ""), (0, "_reverse"), (1, ""), (1, "_reverse")]):
        for got, n in zip(g["weights"][k], ("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
            torch.testing.assert_close(got, getattr(m, f"{n}_l{l}{suffix}").grad, rtol=1e-9,
                                       atol=1e-10)


@needs_gpu
def test_stacks_refuse_what_runs_on_the_cpu_only():
    p, _ = stack_problem("gru", 4, 2, 3, 5, 1, False, None, False)
    q, _ = stack_to_gpu(p, ())
    with pytest.raises(ValueError, match="reset_after"):
        sk.recurrent_stack("gru_reset_before", q["x"], q["weights"])
    with pytest.raises(ValueError, match="prepacked"):
        sk.recurrent_stack("gru", q["x"], q["weights"], prepacked=object())


@needs_gpu
def test_seqkern_check_finds_and_checks_the_gpu(capsys):
    from seqkern import cli
    arrays = cli.cuda_arrays()
    assert arrays is not None
    assert all(cli.cuda_check(cell, arrays) for cell in ("rnn", "lstm", "gru"))
    assert cli.cuda_check_other_ops(arrays)
    assert capsys.readouterr().out.count("ok") == 3 + 5


# softmax cross-entropy, embedding and attention on the GPU (seqkern._device_ops)

def gpu(a):
    return torch.from_numpy(np.ascontiguousarray(a)).cuda()


@needs_gpu
@pytest.mark.parametrize("N, V", CROSS_ENTROPY + [(300, 10000)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction, smoothing, ignored", [("mean", 0.0, False), ("none", 0.1, True),
                                                           ("sum", 0.0, True), ("mean", 0.3, True)])
def test_cross_entropy_matches_the_numpy_twin(N, V, dtype, reduction, smoothing, ignored):
    case = dict(N=N, V=V, dtype=dtype, seed=N + V, reduction=reduction,
                label_smoothing=smoothing, ignored=ignored)
    got = cross_entropy_step(sk, **case, dev=gpu, host=host, dloss_on_device=ignored)
    assert_results_same(cross_entropy_step(reference, **case), got, dtype)


@needs_gpu
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction):
    rng = np.random.default_rng(3)
    logits = gpu(rng.standard_normal((2, 7, 50)) * 2).requires_grad_()
    targets = torch.from_numpy(rng.integers(0, 50, (2, 7))).cuda()
    targets[0, 2] = -100
    want = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction=reduction,
                                             label_smoothing=0.2)
    dloss = torch.rand_like(want)
    want.backward(dloss)
    loss, saved = sk.softmax_cross_entropy(logits, targets, reduction=reduction,
                                           label_smoothing=0.2, training=True)
    torch.testing.assert_close(loss, want.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sk.softmax_cross_entropy_backward(saved, dloss), logits.grad,
                               rtol=1e-12, atol=1e-12)


@needs_gpu
@pytest.mark.parametrize("V, D, ids_shape", EMBEDDING)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_embedding_matches_the_numpy_twin(V, D, ids_shape, dtype, padding_idx):
    case = dict(V=V, D=D, ids_shape=ids_shape, dtype=dtype, seed=V + D, padding_idx=padding_idx)
    got = embedding_step(sk, **case, dev=gpu, host=host)
    assert_results_same(embedding_step(reference, **case), got, dtype)


@needs_gpu
def test_embedding_matches_torch_and_repeats_bit_for_bit():
    rng = np.random.default_rng(5)
    weight = gpu(rng.standard_normal((100, 64)).astype(np.float32)).requires_grad_()
    ids = torch.from_numpy(rng.integers(0, 100, (35, 20))).cuda()
    dy = gpu(rng.standard_normal((35, 20, 64)).astype(np.float32))
    y = torch.nn.functional.embedding(ids, weight, padding_idx=3)
    y.backward(dy)
    assert torch.equal(sk.embedding(weight, ids), y.detach())
    dw = [sk.embedding_backward(ids, dy, torch.empty_like(weight), padding_idx=3, overwrite=True)
          for _ in range(2)]
    assert torch.equal(dw[0], dw[1])
    torch.testing.assert_close(dw[0], weight.grad, rtol=1e-5, atol=1e-5)


@needs_gpu
@pytest.mark.parametrize("shape", ATTENTION + [(8, 40, 300, 64, 64, 64)])
@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_attention_matches_the_numpy_twin(shape, score, dtype):
    p = attention_problem(score, *shape, dtype, seed=sum(shape))
    assert_results_same(attention_step(reference, score, p),
                        attention_step(sk, score, p, dev=gpu, host=host), dtype)


@needs_gpu
@pytest.mark.parametrize("score", SCORES)
def test_attention_matches_torch_autograd(score):
    """The same scores written with torch's operations, masked, through torch.autograd."""
    p = attention_problem(score, 3, 5, 9, 6, 7, 4, np.float64, seed=8)
    t = {k: gpu(v).requires_grad_() for k, v in p.items() if k in ("query", "keys", "values")}
    w = {k: gpu(v).requires_grad_() for k, v in p["weights"].items()}
    q, k = t["query"], t["keys"]
    if score == "dot":
        s = q @ k.transpose(1, 2) * p["scale"]
    elif score == "general":
        s = q @ w["w"] @ k.transpose(1, 2)
    else:
        s = torch.tanh((q @ w["w_q"].T)[:, :, None] + (k @ w["w_k"].T)[:, None]) @ w["v"]
    mask = torch.arange(9, device="cuda")[None, :] >= gpu(p["lengths"])[:, None]
    a = torch.softmax(s.masked_fill(mask[:, None], -torch.inf), dim=-1)
    (a @ t["values"]).backward(gpu(p["dcontext"]))
    got = attention_step(sk, score, p, dev=gpu, host=host)
    np.testing.assert_allclose(got["weights"], host(a.detach()), rtol=1e-10, atol=1e-12)
    for name, v in {**t, **w}.items():
        np.testing.assert_allclose(got["d" + name], host(v.grad), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


@needs_gpu
def test_attention_gradients_match_central_differences_on_the_gpu():
    p = attention_problem("additive", 2, 3, 6, 4, 5, 3, np.float64, seed=2)
    names = ["query", "keys", "values", "w_q", "w_k", "v"]
    t = {k: gpu(v) for k, v in [*p.items(), *p["weights"].items()] if k in names}
    dc = gpu(p["dcontext"])

    def loss(q):
        ctx, _ = sk.attention(q["query"], q["keys"], q["values"], lengths=p["lengths"],
                              score="additive", w_q=q["w_q"], w_k=q["w_k"], v=q["v"])
        return float((ctx * dc).sum())

    got = attention_step(sk, "additive", p, dev=gpu, host=host)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name in names:
        d = torch.randn(t[name].shape, dtype=torch.float64, device="cuda", generator=gen)
        eps = 1e-6
        numeric = (loss({**t, name: t[name] + eps * d}) - loss({**t, name: t[name] - eps * d})) / (2 * eps)
        analytic = float((torch.from_numpy(got["d" + name]).cuda() * d).sum())
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric)), name


@needs_gpu
def test_other_ops_cupy_arrays_give_the_torch_results():
    cupy = pytest.importorskip("cupy")
    p = attention_problem("general", 2, 4, 6, 5, 7, 3, np.float32, seed=1)
    on_torch = attention_step(sk, "general", p, dev=gpu, host=host)
    on_cupy = attention_step(sk, "general", p, dev=cupy.asarray, host=cupy.asnumpy)
    for k in on_torch:
        np.testing.assert_array_equal(on_torch[k], on_cupy[k])
    case = dict(N=9, V=40, dtype=np.float32, seed=0, reduction="none", ignored=True)
    for a, b in zip(cross_entropy_step(sk, **case, dev=gpu, host=host).values(),
                    cross_entropy_step(sk, **case, dev=cupy.asarray, host=cupy.asnumpy).values()):
        np.testing.assert_array_equal(a, b)


@needs_gpu
def test_other_ops_bad_input_raises():
    q = gpu(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(TypeError, match="keys: expected a torch tensor on cuda"):
        sk.attention(q, q.cpu())
    with pytest.raises(ValueError, match="lengths: each must be in 1..T"):
        sk.attention(q, q, lengths=torch.tensor([0, 3], device="cuda"))
    with pytest.raises(ValueError, match="targets: ids must be in 0..3"):
        sk.softmax_cross_entropy(q, torch.full((2, 3), 4, device="cuda"))
    with pytest.raises(ValueError, match="ids: ids must be in 0..2, got 3"):
        sk.embedding(q[0], torch.tensor([3], device="cuda"))
    with pytest.raises(ValueError, match="dweight: expected a C-contiguous, aligned array"):
        sk.embedding_backward([0], q[0, :1], q[0].T)


@needs_gpu
@pytest.mark.parametrize("shape", CTC)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction, zero_infinity, padded", [("mean", False, True),
                                                              ("none", True, False),
                                                              ("sum", False, False)])
def test_ctc_matches_the_numpy_twin(shape, dtype, reduction, zero_infinity, padded):
    case = dict(zip("TBCS", shape), dtype=dtype, seed=sum(shape), reduction=reduction,
                zero_infinity=zero_infinity, padded=padded)
    want = ctc_step(reference, **case)
    got = ctc_step(sk, **case, dev=gpu, host=host, dloss_on_device=reduction == "none")
    assert_results_same(want, got, dtype)


@needs_gpu
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ctc_matches_torch_through_a_log_softmax(reduction):
    """torch's CUDA gradient (cuDNN's or its own) differs from the true derivative by a term that
    cancels through a log-softmax: compared there, float64."""
    rng = np.random.default_rng(3)
    T, B, C, S = 60, 6, 30, 20
    x = gpu(rng.standard_normal((T, B, C))).requires_grad_()
    targets = torch.from_numpy(rng.integers(1, C, (B, S))).cuda()
    targets[1, 3:6] = 7
    il, tl = torch.tensor([60, 45, 30, 12, 60, 5]), torch.tensor([20, 15, 0, 10, 7, 20])
    lp = torch.log_softmax(x, dim=2)
    want = torch.nn.functional.ctc_loss(lp, targets, il, tl, reduction=reduction,
                                        zero_infinity=True)
    d = torch.rand_like(want)
    (want * d).sum().backward()
    loss, saved = sk.ctc_loss(lp.detach(), targets, il, tl, reduction=reduction,
                              zero_infinity=True, training=True)
    torch.testing.assert_close(loss, want.detach(), rtol=1e-10, atol=1e-10)
    g = sk.ctc_loss_backward(saved, d)["log_probs"]
    dx = g - lp.detach().exp() * g.sum(dim=2, keepdim=True)
    torch.testing.assert_close(dx, x.grad, rtol=1e-10, atol=1e-10)
