"""sk.attention: kernel vs NumPy twin (one and several blocks of queries and keys), finite
differences, torch (explicit ops for every score, scaled_dot_product_attention for dot), bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import seqkern as sk
from seqkern import reference
from seqkern.gradcheck import gradcheck

SCORES = ["dot", "general", "additive"]


def problem(score, B, Tq, Tk, Hq, Hk, Hv, A=5, dtype=np.float64, seed=0, values=True,
            lengths=None):
    rng = np.random.default_rng(seed)
    Hk = Hq if score == "dot" else Hk
    p = {"query": rng.standard_normal((B, Tq, Hq)).astype(dtype),
         "keys": rng.standard_normal((B, Tk, Hk)).astype(dtype),
         "values": rng.standard_normal((B, Tk, Hv)).astype(dtype) if values else None,
         "lengths": lengths, "score": score}
    if score == "general":
        p["w"] = (rng.standard_normal((Hq, Hk)) / np.sqrt(Hq)).astype(dtype)
    if score == "additive":
        p["w_q"] = rng.standard_normal((A, Hq)).astype(dtype)
        p["w_k"] = rng.standard_normal((A, Hk)).astype(dtype)
        p["v"] = rng.standard_normal(A).astype(dtype)
    else:
        p["scale"] = 1 / np.sqrt(Hk)
    return p


def compare(p, tol, seed=1):
    c, w, saved = sk.attention(**p, return_weights=True, training=True)
    cr, wr, rsaved = reference.attention(**p, return_weights=True, training=True)
    dc = np.random.default_rng(seed).standard_normal(c.shape).astype(c.dtype)
    g, gr = sk.attention_backward(saved, dc), reference.attention_backward(rsaved, dc)
    assert sorted(g) == sorted(gr)
    np.testing.assert_allclose(c, cr, rtol=tol, atol=tol)
    np.testing.assert_allclose(w, wr, rtol=tol, atol=tol)
    for name in gr:
        scale = max(1.0, float(np.abs(gr[name]).max()))
        np.testing.assert_allclose(g[name], gr[name], rtol=tol, atol=tol * scale, err_msg=name)


@given(score=st.sampled_from(SCORES), B=st.integers(1, 3), Tq=st.integers(1, 9),
       Tk=st.integers(1, 9), Hq=st.integers(1, 9), Hk=st.integers(1, 9), Hv=st.integers(1, 9),
       values=st.booleans(), masked=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 1000))
def test_kernel_matches_twin(score, B, Tq, Tk, Hq, Hk, Hv, values, masked, dtype, seed):
    lengths = np.random.default_rng(seed).integers(1, Tk + 1, B) if masked else None
    p = problem(score, B, Tq, Tk, Hq, Hk, Hv, dtype=dtype, seed=seed, values=values,
                lengths=lengths)
    compare(p, 1e-12 if dtype == np.float64 else 2e-5)


@given(B=st.integers(1, 3), Tq=st.integers(64, 140), Tk=st.integers(1, 70), H=st.integers(1, 40),
       Hv=st.integers(1, 40), values=st.booleans(), masked=st.booleans(), seed=st.integers(0, 1000))
def test_calls_of_64_queries_and_more_match_the_twin(B, Tq, Tk, H, Hv, values, masked, seed):
    """From 64 queries a float32 call at level avx512 runs the products with a key block's K or V
    on the packed kernels (each block packed once per thread, and used by each block of 128
    queries): odd sizes, masked keys."""
    lengths = np.random.default_rng(seed).integers(1, Tk + 1, B) if masked else None
    p = problem("dot", B, Tq, Tk, H, H, Hv, dtype=np.float32, seed=seed, values=values,
                lengths=lengths)
    compare(p, 2e-5)


@pytest.mark.parametrize("shape", [(2, 130, 600, 16), (3, 1, 513, 8), (1, 65, 257, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_several_blocks_of_queries_and_keys(shape, dtype):
    """Past 64 queries and 256 keys the kernel works in blocks, with the running max and sum."""
    B, Tq, Tk, H = shape
    lengths = np.minimum(Tk, np.array([Tk, Tk // 2 + 3, 300]))[:B]
    p = problem("dot", B, Tq, Tk, H, H, 5, dtype=dtype, lengths=lengths)
    p["query"] *= 3  # peaked rows: the max moves between blocks
    compare(p, 1e-12 if dtype == np.float64 else 2e-5)


@pytest.mark.parametrize("values", [True, False], ids=["values", "keys-as-values"])
@pytest.mark.parametrize("Tq", [1, 128, 129, 300])
def test_first_block_of_queries_writes_dk_and_dv(values, Tq):
    """The backward's first block of queries writes its keys' rows of dk and dv (beta 0: nothing
    zeroes them before), later blocks add to them, masked keys' rows are zeros; with the keys as
    the values dk and dv are one array, which dk's product adds to."""
    p = problem("dot", 2, Tq, 300, 8, 8, 8, dtype=np.float64, values=values,
                lengths=np.array([300, 100]))
    compare(p, 1e-12)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("values", [True, False], ids=["values", "keys-as-values"])
def test_backward_splits_the_keys_of_a_small_batch(threads, values, restore_threads):
    """With fewer sequences than threads the backward splits each sequence's keys into blocks
    (halved down to 64 keys until every thread has one), each writing its own share of dq,
    summed after; blocks past a sequence's length get zero gradient. dk and dv are one array
    when the keys are the values."""
    sk.set_num_threads(threads)
    for B, lengths in ((1, [90]), (2, [300, 100])):
        p = problem("dot", B, 70, 300, 8, 8, 6, values=values, lengths=np.array(lengths))
        p["query"] *= 3
        compare(p, 1e-12)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("values", [True, False], ids=["values", "keys-as-values"])
def test_additive_backward_splits_the_queries_of_a_small_batch(threads, values, restore_threads):
    """Additive scores: with fewer sequences than threads the backward splits each sequence's
    queries into blocks, each adding its share of the keys', values' and v's gradients to rows
    of its own, summed after in block order (one block per query where the threads outnumber
    them)."""
    sk.set_num_threads(threads)
    for B, Tq, lengths in ((1, 9, [40]), (2, 2, [40, 13]), (1, 1, [40])):
        p = problem("additive", B, Tq, 40, 6, 7, 5, A=19, values=values,
                    lengths=np.array(lengths))
        compare(p, 1e-12)


def test_additive_blocks_of_queries_shrink_with_many_keys():
    """Additive scores take queries in blocks of up to 16, which shrink so that the forward's
    probabilities (queries x keys) and the backward's tanh values (x A) stay within 2^18 values:
    40,000 keys make forward blocks of 6 queries (13 queries: 6, 6 and 1) and backward blocks of
    one."""
    p = problem("additive", 2, 13, 40000, 3, 2, 2, A=4, lengths=np.array([40000, 29999]))
    compare(p, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_additive_forward_is_the_same_on_any_thread_count(dtype, restore_threads):
    """The forward's blocks of 16 queries split between the threads, a thread's range starting
    anywhere in a sequence; each computes its sequences' key exponentials once: the same
    outputs, bit for bit, on 1, 2, 3 and 5 threads, and a close match to the twin."""
    p = problem("additive", 3, 40, 37, 6, 7, 5, A=33, dtype=dtype, lengths=np.array([37, 5, 20]))
    outs = []
    for threads in (1, 2, 3, 5):
        sk.set_num_threads(threads)
        outs.append(sk.attention(**p, return_weights=True))
    for got in outs[1:]:
        for g, w in zip(got, outs[0]):
            np.testing.assert_array_equal(g, w)
    want = reference.attention(**p, return_weights=True)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for g, w in zip(outs[0], want):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_additive_scores_of_a_single_key_get_no_gradient(dtype):
    """With one key its weight is 1 whatever the score, so the score's gradient, and with it the
    query's, w_q's, w_k's and v's, is exactly 0: the backward's row sum D comes from the same
    dP as each ds (with D = dO . O summed in another order, 300 queries gave w_k 1e-4)."""
    p = problem("additive", 2, 300, 1, 17, 40, 40, A=33, dtype=dtype)
    _, _, saved = sk.attention(**p, training=True)
    dc = np.random.default_rng(3).standard_normal((2, 300, 40)).astype(dtype)
    g = sk.attention_backward(saved, dc)
    for name in ("query", "w_q", "w_k", "v"):
        assert not np.any(g[name]), name
    np.testing.assert_allclose(g["values"], reference.attention_backward(
        reference.attention(**p, training=True)[2], dc)["values"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_additive_scores_past_the_exponentials_range_match_the_twin(dtype):
    """Calls of two queries a sequence or more take tanh(q + k) as 1 - 2 / (exp(2q) exp(2k) +
    1) where the query's projection and all its sequence's keys' (up to its length) lie within
    20 (150 in float64), the tanh itself elsewhere: one query past the bound, a sequence with one
    key past it, one with such a key past its length only, and a single query (always the tanh)
    in one call."""
    big = 40.0 if dtype == np.float32 else 400.0
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for Tq in (20, 1):
        p = problem("additive", 3, Tq, 30, 6, 7, 5, A=9, dtype=dtype,
                    lengths=np.array([30, 12, 25]))
        p["query"][0, Tq // 2] *= big
        p["keys"][1, 11] *= big
        p["keys"][2, 27] *= big
        compare(p, tol)


@pytest.mark.parametrize("score", ["dot", "general"])
@pytest.mark.parametrize("values", [True, False], ids=["values", "keys-as-values"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,lengths", [((2, 70, 300, 8), [300, 100]), ((1, 5, 600, 6), [550]),
                                           ((3, 1, 1, 4), None)])
def test_backward_reads_returned_weights_as_it_would_recompute_them(score, values, dtype, shape,
                                                                    lengths, restore_threads):
    """A training call that returns its weights has its backward read them instead of
    recomputing them from the scores and the log-sum-exp: the same gradients to rounding, with
    one block of keys or several, on 1 and 2 threads (the backward's blocks of keys differ)."""
    B, Tq, Tk, H = shape
    p = problem(score, B, Tq, Tk, H, H, 5, dtype=dtype, values=values,
                lengths=None if lengths is None else np.array(lengths))
    p["query"] *= 3
    dc = np.random.default_rng(7).standard_normal((B, Tq, 5 if values else H)).astype(dtype)
    for threads in (1, 2):
        sk.set_num_threads(threads)
        returned = sk.attention(**p, return_weights=True, training=True)[2]
        recomputed = sk.attention(**p, training=True)[2]
        assert returned.weights is not None and recomputed.weights is None
        g, gr = sk.attention_backward(returned, dc), sk.attention_backward(recomputed, dc)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        for name in gr:
            scale = max(1.0, float(np.abs(gr[name]).max()))
            np.testing.assert_allclose(g[name], gr[name], rtol=tol, atol=tol * scale, err_msg=name)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("values", [True, False], ids=["values", "keys-as-values"])
@pytest.mark.parametrize("impl", [sk, reference], ids=["kernel", "twin"])
def test_finite_differences(score, values, impl):
    p = problem(score, 2, 3, 4, 3, 2, 2, A=3, values=values, lengths=np.array([4, 2]))
    context, _, saved = impl.attention(**p, training=True)
    dc = np.random.default_rng(5).standard_normal(context.shape)
    analytic = impl.attention_backward(saved, dc)
    arrays = {k: v for k, v in p.items() if isinstance(v, np.ndarray) and k != "lengths"}
    options = {k: v for k, v in p.items() if k not in arrays}

    def f(**kw):
        return float(np.sum(dc * impl.attention(**kw, **options)[0]))

    gradcheck(f, arrays, analytic)


def torch_attention(torch, p, lengths):
    """The same attention with explicit torch ops (masked_fill + softmax)."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()
         if isinstance(v, np.ndarray) and k != "lengths"}
    q, k = t["query"], t["keys"]
    values = t.get("values", k)
    if p["score"] == "additive":
        pre = (q @ t["w_q"].T)[:, :, None, :] + (k @ t["w_k"].T)[:, None, :, :]
        s = torch.tanh(pre) @ t["v"]
    else:
        qq = q @ t["w"] if p["score"] == "general" else q
        s = p["scale"] * qq @ k.transpose(1, 2)
    if lengths is not None:
        mask = torch.arange(k.shape[1])[None, None, :] >= torch.tensor(lengths)[:, None, None]
        s = s.masked_fill(mask, float("-inf"))
    w = torch.softmax(s, dim=2)
    return t, w @ values, w


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("values", [True, False], ids=["values", "keys-as-values"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(score, masked, values, dtype):
    torch = pytest.importorskip("torch")
    lengths = np.array([6, 1, 4]) if masked else None
    p = problem(score, 3, 5, 6, 4, 7, 3, dtype=dtype, values=values, lengths=lengths)
    c, w, saved = sk.attention(**p, return_weights=True, training=True)
    dc = np.random.default_rng(3).standard_normal(c.shape).astype(dtype)
    g = sk.attention_backward(saved, dc)
    t, tc, tw = torch_attention(torch, p, lengths)
    tc.backward(torch.tensor(dc))
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(c, tc.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=tol, atol=tol)
    assert sorted(g) == sorted(t)
    for name, tensor in t.items():
        np.testing.assert_allclose(g[name], tensor.grad.numpy(), rtol=tol, atol=tol * 10, err_msg=name)


@pytest.mark.parametrize("masked", [False, True])
def test_dot_matches_scaled_dot_product_attention(masked):
    torch = pytest.importorskip("torch")
    lengths = np.array([300, 17]) if masked else None
    p = problem("dot", 2, 70, 300, 16, 16, 8, dtype=np.float32, lengths=lengths)
    c, _, saved = sk.attention(**p, training=True)
    dc = np.random.default_rng(4).standard_normal(c.shape).astype(np.float32)
    g = sk.attention_backward(saved, dc)
    q, k, v = (torch.tensor(p[n], requires_grad=True) for n in ("query", "keys", "values"))
    mask = None
    if masked:
        mask = torch.arange(300)[None, None, :] < torch.tensor(lengths)[:, None, None]
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out.backward(torch.tensor(dc))
    np.testing.assert_allclose(c, out.detach().numpy(), rtol=1e-5, atol=1e-5)
    for name, t in (("query", q), ("keys", k), ("values", v)):
        np.testing.assert_allclose(g[name], t.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_no_weights_matrix_unless_asked():
    p = problem("dot", 2, 3, 4, 3, 3, 2)
    context, weights = sk.attention(**p)
    assert weights is None and context.shape == (2, 3, 2)


def test_bad_input():
    p = problem("dot", 2, 3, 4, 3, 3, 2)
    with pytest.raises(ValueError, match=r"keys: expected shape \(batch, Tk, Hk\) with batch = 2"):
        sk.attention(p["query"], p["keys"][:1])
    with pytest.raises(ValueError, match=r"values: expected shape"):
        sk.attention(p["query"], p["keys"], p["values"][:, :3])
    with pytest.raises(ValueError, match=r"lengths: each must be in 1..Tk = 1..4"):
        sk.attention(p["query"], p["keys"], lengths=np.array([0, 4]))  # a query with no key
    with pytest.raises(ValueError, match=r"lengths: each must be in 1..Tk = 1..4"):
        sk.attention(p["query"], p["keys"], lengths=np.array([5, 4]))
    with pytest.raises(ValueError, match="keys: dot scores need Hk = Hq"):
        sk.attention(p["query"], p["keys"][:, :, :2])
    with pytest.raises(ValueError, match="w: the general score needs w"):
        sk.attention(p["query"], p["keys"], score="general")
    with pytest.raises(ValueError, match="w: the dot score takes no w"):
        sk.attention(p["query"], p["keys"], w=np.eye(3))
    with pytest.raises(ValueError, match="score: expected one of"):
        sk.attention(p["query"], p["keys"], score="cosine")
    with pytest.raises(TypeError, match="keys: expected float64 like query"):
        sk.attention(p["query"], p["keys"].astype(np.float32))
    _, _, saved = sk.attention(p["query"], p["keys"], training=True)
    with pytest.raises(ValueError, match=r"dcontext: expected shape \(batch, Tq, Hv\)"):
        sk.attention_backward(saved, np.ones((2, 3, 2)))


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_layer_is_the_functional_op_on_its_params(score, dtype):
    """seqkern.nn.Attention holds its params in its dtype (the additive ones were float64 under
    NumPy 2, scaled after the cast, and refused float32 input), forwards sk.attention with them
    (in training, dot and general scores asking for the weights for the backward to read), and
    backward adds their gradients into grads (twice: twice the gradient)."""
    B, Tq, Tk, H = 2, 3, 4, 5
    layer = sk.nn.Attention(score, query_size=H, key_size=H, attention_size=6, dtype=dtype,
                            seed=0)
    assert all(p.dtype == dtype for p in layer.params.values())
    p = problem("dot", B, Tq, Tk, H, H, H, dtype=dtype, seed=3, values=False,
                lengths=np.array([4, 2]))
    context = layer.forward(p["query"], p["keys"], lengths=p["lengths"])
    want, _, saved = sk.attention(p["query"], p["keys"], lengths=p["lengths"], score=score,
                                  return_weights=score != "additive", training=True,
                                  **layer.params)
    np.testing.assert_array_equal(context, want)
    assert layer.weights is None
    dcontext = np.random.default_rng(4).standard_normal(context.shape).astype(dtype)
    g = sk.attention_backward(saved, dcontext)
    for _ in range(2):
        dquery, dkeys, dvalues = layer.backward(dcontext)
    np.testing.assert_array_equal(dquery, g["query"])
    np.testing.assert_array_equal(dkeys, g["keys"])
    assert dvalues is None
    for name, grad in layer.grads.items():
        np.testing.assert_allclose(grad, 2 * g[name], rtol=1e-6)


@pytest.mark.parametrize("score", SCORES)
def test_attention_layer_asks_for_small_weights_in_training(score, monkeypatch):
    """In training, the layer's dot and general scores over up to 512 keys ask for the weights
    (up to a size): the backward reads them instead of recomputing them (one product of its
    five), to rounding the same gradients. Kept in self.weights only with keep_weights."""
    def asked(B, Tq, Tk, training=True, keep=False):
        layer = sk.nn.Attention(score, query_size=4, key_size=4, attention_size=3, seed=0,
                                keep_weights=keep)
        layer.training = training
        p = problem("dot", B, Tq, Tk, 4, 4, 4, dtype=np.float32, seed=1, values=False)
        layer.forward(p["query"], p["keys"])
        assert (layer.weights is not None) == keep
        return training and getattr(layer._saved, "weights", None) is not None

    reads = score != "additive"
    assert asked(2, 70, 300) == reads and asked(1, 1, 512) == reads
    assert not asked(1, 5, 513) and not asked(2, 70, 300, training=False)
    assert asked(2, 70, 300, keep=True) == reads and not asked(1, 5, 600, keep=False)
    monkeypatch.setattr(sk.nn.attention, "_WEIGHTS_VALUES", 2 * 70 * 300 - 1)
    assert not asked(2, 70, 300) and asked(2, 70, 300, keep=True) == reads

    class OnDevice:  # an array posing as a CUDA one, whose backward recomputes the weights
        def __init__(self, a):
            self.a = a

        __cuda_array_interface__ = property(lambda self: self.a.__array_interface__)
        shape = property(lambda self: self.a.shape)
        ndim = property(lambda self: self.a.ndim)

    q, k = np.zeros((2, 3, 4), np.float32), np.zeros((2, 5, 4), np.float32)
    assert sk.nn.attention._weights_pay(q, k) and not sk.nn.attention._weights_pay(OnDevice(q), k)

    layer = sk.nn.Attention(score, query_size=4, key_size=4, attention_size=3, seed=0,
                            dtype=np.float64)
    p = problem("dot", 2, 70, 300, 4, 4, 4, seed=2, values=False, lengths=np.array([300, 120]))
    dc = np.random.default_rng(3).standard_normal((2, 70, 4))
    layer.forward(p["query"], p["keys"], lengths=p["lengths"])
    got = layer.backward(dc)
    _, _, saved = sk.attention(p["query"], p["keys"], lengths=p["lengths"], score=score,
                               training=True, **layer.params)
    want = sk.attention_backward(saved, dc)
    for name, g in zip(("query", "keys"), got):
        np.testing.assert_allclose(g, want[name], rtol=1e-10, atol=1e-12, err_msg=name)
