"""float32 weights packed once (sk.prepack_weights, and seqkern.nn layers in eval mode): the same
results as calls that pack at each call, bit for bit, on every path a call can take, and to
rounding where such a call would not pack (BLAS); their life in a layer; bad input."""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import seqkern as sk
from seqkern import nn, reference
from seqkern.nn.module import Model
from simd_levels import run_at_level
from stack_problems import stack_problem

# cell, T, B, I, H, L, D, P, uneven; exact: whether a call without the panels runs every product
# on the packed kernels (else BLAS runs some, and the outputs agree to rounding); the path the
# products take (2 threads)
CASES = [
    ("lstm", 20, 1, 24, 40, 1, 1, 0, False, True),    # one thread, one row: blocks of 40 columns
    ("gru", 5, 1, 12, 20, 1, 1, 0, False, False),     # too few steps of one row to pack per call
    ("lstm", 30, 1, 64, 72, 1, 1, 0, False, True),    # a team splitting columns
    ("lstm", 10, 1, 16, 256, 1, 1, 0, False, True),   # a team's grouped copy, 512 KB a member
    ("lstm", 12, 1, 16, 128, 2, 2, 0, False, True),   # one row, the directions at once
    ("lstm", 9, 3, 33, 17, 2, 2, 0, True, True),      # teams, odd K, H % 16, lengths
    ("lstm", 3, 2, 2100, 128, 1, 1, 0, False, False),  # w_ih large: a team's one chunk of rows
    # a team's projection without kept panels packs w_ih pair by pair: few rows; two slices of
    # k; rows of x 2 KB apart, packed once for every pair
    ("lstm", 4, 2, 64, 128, 1, 1, 0, False, True),
    ("lstm", 5, 2, 300, 64, 1, 1, 0, False, True),
    ("lstm", 10, 2, 512, 96, 1, 1, 0, False, True),
    ("rnn_tanh", 12, 2, 512, 128, 1, 1, 0, False, True),
    ("gru", 10, 2, 512, 96, 1, 1, 0, False, True),
    # batch 1, a team of 2 whose members hold whole groups of 8 panels of every gate block: the
    # step products carry the projection of later rows (Rider): blocks of 8 rows and the rows
    # past them, one slice of k or several, a projection, lengths, two layers
    ("lstm", 16, 1, 96, 256, 1, 1, 0, False, True),
    ("lstm", 27, 1, 300, 256, 1, 1, 0, True, True),
    ("lstm", 40, 1, 520, 256, 2, 1, 0, False, True),
    ("lstm", 19, 1, 32, 256, 1, 1, 64, False, True),
    ("gru", 25, 1, 40, 256, 1, 1, 0, True, True),
    ("gru_reset_before", 17, 1, 256, 256, 1, 1, 0, False, True),
    ("rnn_relu", 33, 1, 130, 256, 1, 1, 0, False, True),
    ("lstm", 6, 40, 20, 24, 1, 1, 0, True, True),     # threads splitting the batch, per step
    ("lstm", 6, 40, 4000, 128, 1, 1, 0, True, True),  # w_ih large: up front, rows that ran
    ("lstm", 12, 3, 16, 40, 2, 1, 13, False, True),   # projections
    ("lstm", 2, 700, 16, 384, 1, 1, 0, False, True),  # rows enough for BLAS: w_hh unused
    ("lstm", 2, 700, 16, 256, 1, 1, 0, False, False),  # w_hh of 1 MB packed once: it serves
    ("lstm", 1, 1, 8, 16, 1, 1, 0, False, False),     # one step
    ("lstm", 1, 8, 16, 40, 2, 1, 0, False, False),
    ("gru", 7, 2, 30, 45, 1, 2, 0, True, True),
    ("gru", 15, 50, 8, 16, 2, 1, 0, False, True),
    ("gru_reset_before", 16, 5, 12, 33, 2, 1, 0, True, True),
    ("rnn_tanh", 20, 1, 64, 48, 1, 1, 0, False, True),
    ("rnn_relu", 5, 20, 10, 21, 2, 2, 0, True, True),
    # one step of 288 rows or more a thread on a step matrix over 1 MB (over 256 KB below
    # AVX-512): that product runs over the whole batch (BLAS) before the time loop, onto the
    # projection
    ("lstm", 1, 600, 16, 384, 1, 1, 0, False, False),
    ("gru", 1, 600, 16, 300, 1, 1, 0, False, False),
    ("gru_reset_before", 1, 600, 16, 384, 1, 1, 0, False, False),
    ("rnn_tanh", 1, 600, 16, 520, 1, 1, 0, False, False),
]


@pytest.mark.parametrize("first_state", ["zeros", "given"])
@pytest.mark.parametrize("cell,T,B,I,H,L,D,P,uneven,exact", CASES)
def test_packed_once_gives_the_bits_of_packing_at_each_call(cell, T, B, I, H, L, D, P, uneven,
                                                            exact, first_state, restore_threads):
    """Packed on 1, 2 or 3 threads and called on each: the products read the panels a call
    would have packed (by gate blocks, as a team packs them, also where a call's own packing
    makes one block), so every output equals the unpacked call's at the same thread count.
    What such a call hands to BLAS instead (one step, fewer than 12 steps of one row on one
    thread, a large w_ih's projection of a few rows) runs on the panels when given: equal to
    rounding. The first state is zeros (its product skipped) or given (a decoder's step)."""
    rng = np.random.default_rng(T * B + H)
    x, w, lengths = stack_problem(rng, cell, T, B, I, H, L, D, P, uneven)
    bidirectional = D == 2
    states = {}
    if first_state == "given":
        states["h0"] = rng.standard_normal((L * D, B, P or H)).astype(np.float32)
        if cell == "lstm":
            states["c0"] = rng.standard_normal((L * D, B, H)).astype(np.float32)
    packs = {}
    for n in (1, 2, 3):
        sk.set_num_threads(n)
        packs[n] = sk.prepack_weights(cell, w, bidirectional)
    for calling in (1, 2, 3):
        sk.set_num_threads(calling)
        want = sk.recurrent_stack(cell, x, w, lengths=lengths, bidirectional=bidirectional,
                                  **states)
        for packing, packed in packs.items():
            got = sk.recurrent_stack(cell, x, w, lengths=lengths, bidirectional=bidirectional,
                                     prepacked=packed, **states)
            for g, r in zip(got, want):
                if exact:
                    np.testing.assert_array_equal(g, r, err_msg=f"packed on {packing}")
                else:
                    np.testing.assert_allclose(g, r, rtol=1e-4, atol=5e-5)
    ref = reference.recurrent_stack(cell, x.astype(np.float64),
                                    [tuple(a.astype(np.float64) for a in t) for t in w],
                                    lengths=lengths, bidirectional=bidirectional,
                                    **{k: v.astype(np.float64) for k, v in states.items()})
    for g, r in zip(want, ref):
        assert np.abs(g - r).max() < 1e-4 * max(1.0, np.abs(r).max())


# Batch 1 on a team of 2 (at AVX-512, H = 256: whole groups of 8 panels a member), with the
# choices of Zen 4's cores: the step products carry the input projection of later rows (Rider),
# reading w_ih as it lies in a call that packs nothing, its panels in a packed one, and its
# bfloat16 pair panels (with the CPU's bf16 dot products). A team of 3 splits the panels in
# groups of other sizes and projects every row in the first step, as every team does with the
# choices of other cores.
RIDER_CHECK = """
import sys
import numpy as np
import seqkern as sk
from stack_problems import stack_problem
cell, T, I, P, short = sys.argv[1], *map(int, sys.argv[2:])
rng = np.random.default_rng(T + I)
x, w, _ = stack_problem(rng, cell, T, 1, I, 256, P=P, scale=0.05)
lengths = np.array([T - short], np.int32) if short else None
got = {}
for n in (2, 3):
    sk.set_num_threads(n)
    packed = sk.prepack_weights(cell, w)
    packed_bf16 = sk.prepack_weights(cell, w, precision="bfloat16")
    got[n] = [sk.recurrent_stack(cell, x, w, lengths=lengths, **kw)
              for kw in ({}, {"prepacked": packed}, {"precision": "bfloat16"},
                         {"precision": "bfloat16", "prepacked": packed_bf16})]
for call_2, call_3 in zip(got[2], got[3]):
    for a, b in zip(call_2, call_3):
        np.testing.assert_array_equal(a, b)
print(sk._core.avx512_cores())
"""


@pytest.mark.parametrize("tune", ["zen4", "zen5"])
@pytest.mark.parametrize("cell,T,I,P,short", [
    ("lstm", 16, 96, 0, 0),     # W's panels: one block of rows up front, one carried
    ("lstm", 33, 300, 0, 0),    # rows past the last block; two slices of k
    ("lstm", 50, 520, 0, 5),    # three slices; a sequence shorter than T
    ("lstm", 70, 64, 64, 0),    # a projection: the step's k loop of 64 values
    ("lstm", 40, 1024, 0, 0),   # w_ih's rows 4 KB apart: as it lies, not carried
    ("gru", 41, 256, 0, 0),
    ("gru_reset_before", 32, 40, 0, 3),
    ("rnn_tanh", 64, 130, 0, 0),
    ("rnn_relu", 19, 16, 0, 0),
])
def test_steps_carrying_the_projection_give_the_bits_of_projecting_first(cell, T, I, P, short,
                                                                         tune, tmp_path):
    """RIDER_CHECK in a fresh process whose AVX-512 kernels take the choices of Zen 4 (which
    rides) or Zen 5 (which does not), on any AVX-512 machine; every output is the same bits."""
    tests = os.path.dirname(__file__)  # (stack_problems)
    env = {"SEQKERN_TUNE": tune,
           "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    out = run_at_level("avx512", RIDER_CHECK, tmp_path, cell, str(T), str(I), str(P),
                       str(short), env=env)
    assert out.strip() == tune


@settings(max_examples=30, deadline=None)
@given(cell=st.sampled_from(["lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"]),
       T=st.sampled_from([1, 1, 2, 5]), B=st.sampled_from([1, 2, 7, 40, 150, 290, 600]),
       I=st.integers(1, 40), H=st.sampled_from([8, 45, 130, 200, 270]),
       layers=st.integers(1, 2), bidirectional=st.booleans(), given_state=st.booleans(),
       threads=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_packed_once_agrees_with_packing_at_each_call_at_any_shape(
        cell, T, B, I, H, layers, bidirectional, given_state, threads, seed):
    """Random stacks across the sizes where the calls change paths (a team or rows a thread,
    288 rows a thread, step matrices past 256 KB, one step or several), with the first state
    zeros or given: packed once, the outputs are the unpacked call's, to rounding."""
    if T > 2 and B > 150:
        B = 40  # (the large batches' paths are those of one or two steps)
    before = sk.get_num_threads()
    sk.set_num_threads(threads)
    try:
        packed_against_unpacked(cell, T, B, I, H, layers, bidirectional, given_state, seed)
    finally:
        sk.set_num_threads(before)


def packed_against_unpacked(cell, T, B, I, H, layers, bidirectional, given_state, seed):
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    x, w, _ = stack_problem(rng, cell, T, B, I, H, layers, D, scale=1.5 / np.sqrt(H))
    states = {}
    if given_state:
        states["h0"] = rng.standard_normal((layers * D, B, H)).astype(np.float32)
        if cell == "lstm":
            states["c0"] = rng.standard_normal((layers * D, B, H)).astype(np.float32)
    want = sk.recurrent_stack(cell, x, w, bidirectional=bidirectional, **states)
    got = sk.recurrent_stack(cell, x, w, bidirectional=bidirectional,
                             prepacked=sk.prepack_weights(cell, w, bidirectional), **states)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=2e-5)


def test_one_layer_functions_take_the_packed_stack():
    """A stack of one layer and direction runs through its cell's one-layer kernel call, with
    the packed matrices: the same bits as sk.lstm / sk.gru / sk.rnn."""
    rng = np.random.default_rng(5)
    for cell, call in (("lstm", lambda x, w: sk.lstm(x, None, None, *w)),
                       ("gru", lambda x, w: sk.gru(x, None, *w)),
                       ("gru_reset_before", lambda x, w: sk.gru(x, None, *w, reset_after=False)),
                       ("rnn_relu", lambda x, w: sk.rnn(x, None, *w, nonlinearity="relu"))):
        x, w, _ = stack_problem(rng, cell, 25, 2, 20, 36)
        got = sk.recurrent_stack(cell, x, w, prepacked=sk.prepack_weights(cell, w))
        np.testing.assert_array_equal(got[0], call(x, w[0])[0])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_benchmarks_eval_layer_runs_the_functional_call(cell, restore_threads):
    """benchmarks/rnn.py times a seqkern.nn layer in eval mode beside the functional call, on
    the same problem: the same outputs, bit for bit at the batch-1 floor's shape (both pack, on
    a team's grouped panels), and the layer's weights really were packed once."""
    from seqkern import bench
    sk.set_num_threads(2)
    for shape, exact in (((50, 1, 256, 256), True), ((6, 3, 5, 9), False)):
        p = bench.make_problem(cell, *shape)
        want = bench.seqkern_step(cell, p, False)()
        step = bench.eval_layer_step(cell, p)
        y, state = step()
        assert step.layer._prepacked is not None
        got = [y, *(s[0] for s in (state if isinstance(state, tuple) else (state,)))]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            if exact:
                np.testing.assert_array_equal(g, w)
            else:
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_python_threads_share_the_grouped_copy_of_packed_weights(restore_threads):
    """A team's products of one row read a grouped copy of the packed panels, made by the first
    call that needs it: calls from several Python threads at once on freshly packed weights, at
    once on 2 threads and then on 3 (another grouping), all give the bits of one call alone."""
    rng = np.random.default_rng(9)
    x, w, _ = stack_problem(rng, "lstm", 12, 1, 16, 128, 1, 1, 0, False)
    for threads in (2, 3, 2):
        sk.set_num_threads(threads)
        want = sk.recurrent_stack("lstm", x, w)[0]
        packed = sk.prepack_weights("lstm", w)
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda _: sk.recurrent_stack("lstm", x, w, prepacked=packed)[0],
                                 range(16)))
        for got in outs:
            np.testing.assert_array_equal(got, want)


def test_layers_pack_at_eval_and_drop_it_in_training():
    layer = nn.GRU(12, 20, num_layers=2, seed=0)
    x = np.random.default_rng(0).standard_normal((30, 1, 12)).astype(np.float32)
    y, _ = layer.eval()(x)
    assert layer._prepacked.precision == "float32"
    np.testing.assert_array_equal(y, sk.recurrent_stack("gru", x, layer._weights())[0])
    # Weights changed in place are seen after the next eval or load_state_dict (before it, the
    # products read the copy, wherever the SIMD level has kernels that pack).
    layer.params["weight_hh_l0"][...] = 0
    layer.eval()
    changed = sk.recurrent_stack("gru", x, layer._weights())[0]
    assert not np.array_equal(changed, y)
    np.testing.assert_array_equal(layer(x)[0], changed)
    layer.params["weight_ih_l1"][...] = 0
    layer.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(layer(x)[0], sk.recurrent_stack("gru", x, layer._weights())[0])
    layer.train()
    assert layer._prepacked is None
    layer.load_state_dict(layer.state_dict())  # training mode: nothing packed
    assert layer._prepacked is None
    # float64 layers run unpacked
    assert nn.LSTM(4, 8, dtype=np.float64).eval()._prepacked is None


class Net(Model):
    """A model holding a recurrent layer (module level, so that pickle finds it)."""

    def __init__(self):
        self.rnn = nn.LSTM(8, 16, num_layers=2, seed=0)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_layers_in_eval_mode_copy_and_pickle(precision):
    """copy.deepcopy (keeping the best model so far) and pickle of a layer in eval mode: the copy
    packs its own weights, and runs as the original does."""
    import copy
    import pickle

    net = Net().eval(precision=precision)
    x = np.random.default_rng(0).standard_normal((12, 2, 8)).astype(np.float32)
    want = net.rnn(x)[0]
    for other in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert other.rnn._prepacked is not net.rnn._prepacked
        assert other.rnn._prepacked.precision == precision
        np.testing.assert_array_equal(other.rnn(x)[0], want)
        other.rnn.params["weight_hh_l0"][...] = 0  # its own arrays
        other.eval(precision=precision)
    np.testing.assert_array_equal(net.rnn(x)[0], want)
    trained = copy.deepcopy(Net())
    assert trained.rnn.training and trained.rnn._prepacked is None


def test_evaluating_keeps_a_model_in_eval_mode_as_it_is():
    """with model.evaluating() (generation, decoding) inside eval(precision="bfloat16") keeps
    the bfloat16 weights, and in training mode packs for the block and drops them after."""
    layer = nn.LSTM(8, 16, seed=0).eval(precision="bfloat16")
    packed = layer._prepacked
    with layer.evaluating():
        assert layer._prepacked is packed
    assert layer.precision == "bfloat16" and layer._prepacked is packed and not layer.training
    layer.train()
    with layer.evaluating():
        assert layer._prepacked.precision == "float32"
    assert layer.training and layer._prepacked is None


def test_packed_weights_refuse_what_they_cannot_serve():
    rng = np.random.default_rng(1)
    x, w, _ = stack_problem(rng, "lstm", 4, 2, 8, 16)
    packed = sk.prepack_weights("lstm", w)
    with pytest.raises(ValueError, match="packed for another network"):
        sk.recurrent_stack("gru", x, stack_problem(rng, "gru", 4, 2, 8, 16)[1], prepacked=packed)
    with pytest.raises(ValueError, match="for inference"):
        sk.recurrent_stack("lstm", x, w, training=True, prepacked=packed)
    with pytest.raises(ValueError, match="float32 weights for a bfloat16 call"):
        sk.recurrent_stack("lstm", x, w, precision="bfloat16", prepacked=packed)
    with pytest.raises(ValueError, match="precision"):
        sk.prepack_weights("lstm", w, precision="float16")
    w64 = [tuple(a.astype(np.float64) for a in t) for t in w]
    with pytest.raises((TypeError, ValueError)):
        sk.recurrent_stack("lstm", x.astype(np.float64), w64, prepacked=packed)
    with pytest.raises(TypeError, match="packed weights serve float32 calls, got float64"):
        sk.prepack_weights("lstm", w64)
    with pytest.raises(ValueError, match="weights: expected num_layers"):
        sk.prepack_weights("lstm", [])
    with pytest.raises(TypeError, match="prepacked: expected what sk.prepack_weights returns, got str"):
        sk.recurrent_stack("lstm", x, w, prepacked="weights")


def test_calls_must_pass_the_arrays_packed():
    """Packed weights serve the arrays they were packed from (or views of them): a call with
    other arrays of the same shapes used to run on the packed copy's products with its own
    biases, the results of neither; now it is a ValueError naming the layer-direction."""
    rng = np.random.default_rng(2)
    for cell, L, D in (("lstm", 2, 2), ("gru", 1, 1), ("rnn_tanh", 1, 1), ("lstm", 1, 1)):
        x, w, _ = stack_problem(rng, cell, 6, 3, 8, 16, L, D)
        packed = sk.prepack_weights(cell, w, D == 2)
        views = [tuple(None if a is None else a[...] for a in t) for t in w]
        np.testing.assert_array_equal(
            sk.recurrent_stack(cell, x, views, bidirectional=D == 2, prepacked=packed)[0],
            sk.recurrent_stack(cell, x, w, bidirectional=D == 2)[0])
        k = L * D - 1
        other = list(w)
        other[k] = tuple(None if a is None else a.copy() for a in w[k])
        with pytest.raises(ValueError, match=rf"other weight arrays .*weights\[{k}\]"):
            sk.recurrent_stack(cell, x, other, bidirectional=D == 2, prepacked=packed)


def test_packed_weights_hold_their_arrays():
    """A packed stack keeps the arrays it was packed from alive, so that no new array can take
    their place in memory and pass for them."""
    import gc
    import weakref

    x, w, _ = stack_problem(np.random.default_rng(3), "gru", 4, 2, 8, 16)
    alive = weakref.ref(w[0][1])
    packed = sk.prepack_weights("gru", w)
    del w
    gc.collect()
    assert alive() is not None
    del packed
    gc.collect()
    assert alive() is None


def test_prepack_weights_takes_contiguous_float32_matrices():
    """Calls pass on C-contiguous float32 arrays as they are, and would copy anything else at
    every call: so prepack_weights refuses it, naming the matrix."""
    x, w, _ = stack_problem(np.random.default_rng(4), "lstm", 4, 2, 8, 16)
    w_ih, w_hh, b_ih, b_hh = w[0]
    with pytest.raises(TypeError, match=r"weights\[0\] w_hh: .*C-contiguous"):
        sk.prepack_weights("lstm", [(w_ih, np.asfortranarray(w_hh), b_ih, b_hh)])
    every_other = np.repeat(w_ih, 2, axis=1)[:, ::2]  # w_ih's values, strided
    with pytest.raises(TypeError, match=r"weights\[0\] w_ih: .*C-contiguous"):
        sk.prepack_weights("lstm", [(every_other, w_hh, b_ih, b_hh)])
    # biases are not packed: a strided one will do
    sk.prepack_weights("lstm", [(w_ih, w_hh, np.repeat(b_ih, 2)[::2], b_hh)])


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_layers_repack_weight_arrays_replaced_in_eval_mode(precision):
    """A layer in eval mode whose parameter arrays are replaced (params[name] = new array, or a
    new params dict), not changed in place, packs the new ones at its next call: it runs as a
    layer built with them."""
    x = np.random.default_rng(5).standard_normal((7, 2, 8)).astype(np.float32)
    layer = nn.LSTM(8, 16, num_layers=2, seed=0).eval(precision=precision)
    layer(x)
    new = {k: v * 0.5 for k, v in layer.params.items()}
    fresh = nn.LSTM(8, 16, num_layers=2, seed=1)
    fresh.params = {k: v.copy() for k, v in new.items()}
    fresh.eval(precision=precision)
    for k, v in new.items():
        layer.params[k] = v
    np.testing.assert_array_equal(layer(x)[0], fresh(x)[0])
    layer.params = {k: v * 2 for k, v in new.items()}
    fresh.params = {k: v * 2 for k, v in new.items()}
    np.testing.assert_array_equal(layer(x)[0], fresh(x)[0])


def test_layers_leave_odd_arrays_to_the_kernels():
    """A parameter assigned by hand as a non-contiguous array: float32 eval packs nothing and
    the kernels pack at each call; bfloat16, which needs the packed copy, says what is wrong
    and leaves the layer as it was."""
    x = np.random.default_rng(6).standard_normal((7, 2, 8)).astype(np.float32)
    layer = nn.GRU(8, 16, seed=0)
    layer.params["weight_hh_l0"] = np.asfortranarray(layer.params["weight_hh_l0"])
    layer.eval()
    assert layer._prepacked is None
    np.testing.assert_array_equal(layer(x)[0], sk.recurrent_stack(
        "gru", x, [tuple(np.ascontiguousarray(a) for a in layer._weights()[0])])[0])
    with pytest.raises(TypeError, match=r"weights\[0\] w_hh: .*C-contiguous"):
        layer.eval(precision="bfloat16")
    assert layer.precision == "float32" and layer._prepacked is None


OPS = ["eval", "eval bf16", "train", "replace", "in place", "load", "deepcopy", "pickle"]


@settings(max_examples=25, deadline=None)
@given(cell=st.sampled_from(["LSTM", "GRU", "RNN"]), layers=st.integers(1, 2),
       bidirectional=st.booleans(), ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=8),
       seed=st.integers(0, 2**16))
def test_a_layer_runs_as_a_fresh_one_after_any_sequence_of_changes(cell, layers, bidirectional,
                                                                    ops, seed):
    """Mode and precision changes, parameter arrays replaced, changed in place (then eval again,
    the documented rule), loaded, copied or pickled, in any order: after each, the layer gives
    the bits of a fresh layer built from the same values in the same mode and precision."""
    import copy
    import pickle

    rng = np.random.default_rng(seed)
    cls = getattr(nn, cell)
    layer = cls(6, 10, num_layers=layers, bidirectional=bidirectional, seed=seed)
    x = rng.standard_normal((5, 2, 6)).astype(np.float32)
    for op in ops:
        name = list(layer.params)[rng.integers(len(layer.params))]
        if op == "eval":
            layer.eval()
        elif op == "eval bf16":
            layer.eval(precision="bfloat16")
        elif op == "train":
            layer.train()
        elif op == "replace":
            layer.params[name] = layer.params[name] * np.float32(1.5)
        elif op == "in place":
            layer.params[name][...] *= np.float32(0.5)
            if not layer.training:
                layer.eval(precision=layer.precision)
        elif op == "load":
            layer.load_state_dict({k: v * np.float32(1.25) for k, v in layer.params.items()})
        elif op == "deepcopy":
            layer = copy.deepcopy(layer)
        else:
            layer = pickle.loads(pickle.dumps(layer))
        fresh = cls(6, 10, num_layers=layers, bidirectional=bidirectional)
        fresh.params = {k: v.copy() for k, v in layer.params.items()}
        if not layer.training:
            fresh.eval(precision=layer.precision)
        np.testing.assert_array_equal(layer(x)[0], fresh(x)[0], err_msg=f"after {op}")
