"""bfloat16 inference (precision="bfloat16"): the kernels of every SIMD level against the twin,
the error against float32, the packed weights' life in seqkern.nn layers, and bad input."""
import platform
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqkern as sk
from seqkern import _core, nn, reference
from seqkern.reference._common import round_bf16
from simd_levels import LEVELS, run_at_level
from stack_problems import GATES, stack_problem

CASES = [  # cell, T, B, I, H, L, D, P, uneven
    ("lstm", 1, 1, 1, 1, 1, 1, 0, False),
    ("lstm", 9, 1, 33, 17, 2, 2, 0, True),     # a team splitting columns, odd K, H % 16
    ("lstm", 6, 40, 20, 24, 1, 1, 0, True),    # threads splitting the batch
    ("lstm", 5, 3, 16, 40, 2, 1, 13, False),   # projections
    ("gru", 7, 2, 30, 45, 1, 2, 0, True),
    ("gru", 4, 50, 8, 16, 2, 1, 0, False),
    ("gru_reset_before", 6, 5, 12, 33, 2, 1, 0, True),
    ("rnn_tanh", 8, 1, 64, 48, 1, 1, 0, False),
    ("rnn_relu", 5, 20, 10, 21, 2, 2, 0, True),
]


def twin_error(cell, T, B, I, H, L, D, P, uneven, seed=0, scale=0.4):
    """Largest difference of y, h_n (and c_n) between the kernels and the twin at bfloat16,
    relative to the largest value where that exceeds 1 (relu's outputs grow); weights drawn
    from +-scale."""
    x, w, lengths = stack_problem(np.random.default_rng(seed), cell, T, B, I, H, L, D, P, uneven,
                                  scale)
    got = sk.recurrent_stack(cell, x, w, lengths=lengths, bidirectional=D == 2,
                             precision="bfloat16")
    want = reference.recurrent_stack(cell, x, w, lengths=lengths, bidirectional=D == 2,
                                     precision="bfloat16")
    return max(float(np.abs(g - r).max() / max(1.0, np.abs(r).max())) for g, r in zip(got, want))


# The products of rounded values are exact in float32: only the order of the sums differs, by a
# few float32 roundings. But the next step rounds h to bfloat16 again, and a value within that
# much of a rounding midpoint now and then lands on the other side of it (a flip): one input of
# the next product then moves by one bfloat16 step, at most 2^-8 for |h| < 1, and the sum by at
# most FLIP_SCALE * 2^-8 with weights drawn from +-FLIP_SCALE (then through an activation of
# slope 1 at most, and on through later steps, shrunk by weights that small). The bound allows
# two such flips on one output. Measured over 4,500 random shapes like the test's: 1-2% of them
# saw a flip, the largest error 3.8e-4, one flip's bound 3.9e-4. With weights of +-0.4, one
# flip can move an output by 1.6e-3, and 3.3e-3 was seen (2 of 300 shapes over 1e-3).
FLIP_SCALE = 0.1
FLIPS = 2 * FLIP_SCALE * 2**-8


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_kernels_match_the_twin(case):
    assert twin_error(*case) < 2e-6  # these small cases have no flip


@settings(max_examples=25, deadline=None)
@given(cell=st.sampled_from(sorted(GATES)), T=st.integers(1, 6), B=st.integers(1, 20),
       I=st.integers(1, 40), H=st.integers(1, 40), L=st.integers(1, 2), D=st.integers(1, 2),
       uneven=st.booleans(), seed=st.integers(0, 2**16))
def test_any_shape_matches_the_twin(cell, T, B, I, H, L, D, uneven, seed):
    assert twin_error(cell, T, B, I, H, L, D, 0, uneven, seed, FLIP_SCALE) < FLIPS


LEVEL_CHECK = """
import numpy as np, seqkern as sk
from seqkern import reference
rng = np.random.default_rng(0)
worst = 0.0
for cell, G, B, H in (("lstm", 4, 1, 37), ("lstm", 4, 30, 64), ("gru", 3, 3, 29),
                      ("gru_reset_before", 3, 40, 20), ("rnn_relu", 1, 2, 50)):
    x = rng.standard_normal((7, B, 19)).astype(np.float32)
    ws = [tuple(rng.uniform(-SCALE, SCALE, s).astype(np.float32)
                for s in ((G * H, i), (G * H, H), (G * H,), (G * H,)))
          for i in (19, 19, 2 * H, 2 * H)]
    got = sk.recurrent_stack(cell, x, ws, bidirectional=True, precision="bfloat16")
    want = reference.recurrent_stack(cell, x, ws, bidirectional=True, precision="bfloat16")
    worst = max([worst] + [float(np.abs(g - r).max() / max(1.0, np.abs(r).max()))
                            for g, r in zip(got, want)])
print(worst, sk._core.bf16_native(), sk._core.bf16_amx())
"""


@pytest.mark.parametrize("level", LEVELS)
def test_every_simd_level_matches_the_twin(level, tmp_path):
    """AMX tiles or native bf16 dot products (avx512 with AMX-BF16 or avx512_bf16), widened FMAs
    (avx2) and plain C++."""
    check = LEVEL_CHECK.replace("SCALE", repr(FLIP_SCALE))
    worst, native, amx = run_at_level(level, check, tmp_path).split()
    assert float(worst) < FLIPS
    assert native == str(level == "avx512" and cpu_has_bf16())
    assert amx == str(level == "avx512" and cpu_has_amx())


def cpu_flags():
    """The words of /proc/cpuinfo (its flags among them), or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read().split()
    except OSError:
        return None


def cpu_has_bf16():
    """Whether the CPU has AVX-512 BF16, whatever level this process was forced to."""
    flags = cpu_flags()
    return _core.bf16_native() if flags is None else "avx512_bf16" in flags


def cpu_has_amx():
    """Whether the CPU has AMX-BF16 and the kernel lets processes use it (Linux 5.16 on)."""
    flags = cpu_flags()
    if flags is None:
        return _core.bf16_amx()
    release = tuple(int(n) for n in re.findall(r"\d+", platform.release())[:2])
    return "amx_bf16" in flags and release >= (5, 16)


BATCH_CHECK = """
import numpy as np, seqkern as sk
rng = np.random.default_rng(0)
for cell, G in (("lstm", 4), ("gru", 3), ("gru_reset_before", 3), ("rnn_tanh", 1)):
    I, H = 270, 264  # two slices of k
    x = rng.standard_normal((3, 40, I)).astype(np.float32)
    ws = [tuple(rng.uniform(-0.1, 0.1, s).astype(np.float32)
                for s in ((G * H, I), (G * H, H), (G * H,), (G * H,)))]
    for B in (3, 8, 40):
        batch = sk.recurrent_stack(cell, x[:, :B], ws, precision="bfloat16")[0]
        for b in range(0, B, 3):
            alone = sk.recurrent_stack(cell, x[:, b:b + 1], ws, precision="bfloat16")[0]
            assert np.array_equal(alone[:, 0], batch[:, b]), (cell, B, b)
# weights past 4 MB: a batch projects every step up front, in chunks of rows (7 * 40 = 280 rows
# in two), lengths or not
I = H = 512
x = rng.standard_normal((7, 40, I)).astype(np.float32)
ws = [tuple(rng.uniform(-0.05, 0.05, s).astype(np.float32)
            for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,)))]
lengths = np.sort(rng.integers(1, 8, 40))[::-1].copy()
lengths[0] = 7
for lens in (None, lengths):
    batch = sk.recurrent_stack("lstm", x, ws, lengths=lens, precision="bfloat16")[0]
    for b in range(0, 40, 13):
        n = 7 if lens is None else lens[b]
        alone = sk.recurrent_stack("lstm", x[:n, b:b + 1], ws, precision="bfloat16")[0]
        assert np.array_equal(alone[:, 0], batch[:n, b]), (lens is None, b)
print("same")
"""


@pytest.mark.parametrize("level", ["baseline", "avx2", "avx512"])
def test_a_sequence_gets_the_same_output_in_any_batch(level, tmp_path):
    """A sequence alone (one row a product) and in a batch of 3, 8 or 40 (products of a few
    rows; of 20 or 40, in blocks of rows that take the panels two at a time) gets the same bits.
    Where products widen the weights, those of many rows run on the widened copy and those of
    few on the bf16 kernel, which sum alike; past 4 MB of weights, a batch's input projection runs
    before the time loop, on chunks of the batch's steps."""
    assert run_at_level(level, BATCH_CHECK, tmp_path).split() == ["same"]


def test_round_bf16_is_ties_to_even():
    bits = np.array([0x3F800000, 0x3F808000, 0x3F818000, 0x3F807FFF, 0x7F7FFFFF, 0xFFC00001],
                    np.uint32)
    got = round_bf16(bits.view(np.float32)).view(np.uint32) >> 16
    assert list(got[:5]) == [0x3F80, 0x3F80, 0x3F82, 0x3F80, 0x7F80]  # the largest rounds to inf
    assert np.isnan(round_bf16(bits.view(np.float32))[5])


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_error_against_float32_is_bounded(cls):
    """torch's default initialization, unit inputs: what README's "Low precision" states."""
    layer = cls(96, 160, num_layers=2, seed=3)
    x = np.random.default_rng(0).standard_normal((30, 6, 96)).astype(np.float32)
    y32, _ = layer.eval()(x)
    y16, _ = layer.eval(precision="bfloat16")(x)
    d = y16 - y32
    assert np.sqrt((d ** 2).mean() / (y32 ** 2).mean()) < 1e-2
    assert np.abs(d).max() < 3e-2


def test_one_layer_functions_take_precision():
    rng = np.random.default_rng(1)
    x, [(w_ih, w_hh, b_ih, b_hh)], lengths = stack_problem(rng, "lstm", 6, 3, 10, 12, uneven=True)
    got = sk.lstm(x, None, None, w_ih, w_hh, b_ih, b_hh, lengths=lengths, precision="bfloat16")
    want = reference.lstm(x, None, None, w_ih, w_hh, b_ih, b_hh, lengths=lengths,
                          precision="bfloat16")
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, atol=2e-6)
    x, [w], _ = stack_problem(rng, "gru", 6, 3, 10, 12)
    for reset_after in (True, False):
        got = sk.gru(x, None, *w, reset_after=reset_after, precision="bfloat16")
        want = reference.gru(x, None, *w, reset_after=reset_after, precision="bfloat16")
        np.testing.assert_allclose(got[0], want[0], atol=2e-6)
    x, [w], _ = stack_problem(rng, "rnn_relu", 6, 3, 10, 12)
    got = sk.rnn(x, None, *w, nonlinearity="relu", precision="bfloat16")
    np.testing.assert_allclose(got[0], reference.rnn(x, None, *w, nonlinearity="relu",
                                                     precision="bfloat16")[0], atol=2e-6)


def test_packed_weights_serve_calls_back_to_back():
    rng = np.random.default_rng(2)
    x, w, _ = stack_problem(rng, "lstm", 5, 2, 8, 16, L=2, D=2)
    packed = sk.prepack_weights("lstm", w, bidirectional=True, precision="bfloat16")
    first = sk.recurrent_stack("lstm", x, w, bidirectional=True, prepacked=packed)
    again = sk.recurrent_stack("lstm", x, w, bidirectional=True, prepacked=packed)
    per_call = sk.recurrent_stack("lstm", x, w, bidirectional=True, precision="bfloat16")
    for a, b, c in zip(first, again, per_call):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    with pytest.raises(ValueError, match="prepacked: packed for another network"):
        sk.recurrent_stack("lstm", x, w[:2], bidirectional=True, prepacked=packed)


@pytest.mark.parametrize("cell,H,P", [("lstm", 100, 0), ("lstm", 384, 0), ("lstm", 384, 200),
                                      ("gru", 384, 0), ("gru_reset_before", 384, 0),
                                      ("rnn_tanh", 768, 0)])
def test_weights_packed_for_one_team_serve_any_other(cell, H, P, restore_threads):
    """With bf16 dot products, weights are packed at eval in groups of panels that the team of
    that moment's members start on (H = 384: 24 panels a gate, groups of 8 for 1 or 3 threads,
    4 for 2; the GRU resetting before its product packs its n rows, and the LSTM its projection,
    as matrices of their own). A call on another team size cuts the groups where its shares
    start: the same sums, bit for bit, on every thread count."""
    rng = np.random.default_rng(3)
    x, w, _ = stack_problem(rng, cell, 4, 1, 24, H, P=P, scale=FLIP_SCALE)
    outputs = []
    for packing in (1, 2, 3):
        sk.set_num_threads(packing)
        packed = sk.prepack_weights(cell, w, precision="bfloat16")
        for calling in (1, 2, 3):
            sk.set_num_threads(calling)
            outputs.append(sk.recurrent_stack(cell, x, w, prepacked=packed)[0])
    for y in outputs[1:]:
        np.testing.assert_array_equal(y, outputs[0])
    want = reference.recurrent_stack(cell, x, w, precision="bfloat16")[0]
    assert np.abs(outputs[0] - want).max() < FLIPS


def test_layers_take_the_copy_at_eval_and_drop_it_in_training():
    layer = nn.LSTM(12, 20, num_layers=2, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3, 12)).astype(np.float32)
    want = reference.recurrent_stack("lstm", x, layer._weights(), bidirectional=True,
                                     precision="bfloat16")[0]
    y, _ = layer.eval(precision="bfloat16")(x)
    assert layer.precision == "bfloat16"
    np.testing.assert_allclose(y, want, atol=2e-6)
    # A copy: weights changed in place are seen after the next eval or load_state_dict.
    layer.params["weight_hh_l0"][...] = 0
    np.testing.assert_array_equal(layer(x)[0], y)
    layer.load_state_dict(layer.state_dict())
    changed = reference.recurrent_stack("lstm", x, layer._weights(), bidirectional=True,
                                        precision="bfloat16")[0]
    np.testing.assert_allclose(layer(x)[0], changed, atol=2e-6)
    # Training holds no copy; plain eval packs float32 ones.
    layer.train()
    assert layer.precision == "float32" and layer._prepacked is None
    y32, _ = layer.eval()(x)
    assert layer._prepacked.precision == "float32"
    np.testing.assert_allclose(y32, reference.recurrent_stack("lstm", x, layer._weights(),
                                                              bidirectional=True)[0], atol=1e-5)


LINEAR_CHECK = """
import numpy as np, seqkern as sk
from seqkern import nn
from seqkern.reference._common import round_bf16
rng = np.random.default_rng(0)
worst = 0.0
for M, K, N, bias in ((1, 7, 5, True), (1, 100, 1000, False), (3, 33, 17, True),
                      (4, 256, 600, True), (35, 650, 2000, True), (100, 64, 48, False)):
    layer = nn.Linear(K, N, bias=bias, seed=M).eval(precision="bfloat16")
    x = rng.standard_normal((M, K)).astype(np.float32)
    got = {}
    for threads in (1, 2):
        sk.set_num_threads(threads)
        got[threads] = layer(x)
    assert np.array_equal(got[1], got[2]), (M, K, N)
    w = layer.params["weight"]
    want = round_bf16(x).astype(np.float64) @ round_bf16(w).astype(np.float64).T
    if bias:
        want += layer.params["bias"]
    scale = np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64).T + 1.0
    worst = max(worst, float((np.abs(got[1] - want) / scale).max()))
print(worst)
"""


@pytest.mark.parametrize("level", LEVELS)
def test_linear_matches_the_rounded_product_at_every_level(level, tmp_path):
    """nn.Linear in bfloat16 eval mode: the product of x and the weight both rounded to
    bfloat16, summed in float32 (within 1e-5 of the sum of |x| |w|), on native dot products,
    widened FMAs or plain C++; the same bits on 1 and 2 threads."""
    assert float(run_at_level(level, LINEAR_CHECK, tmp_path)) < 1e-5


def test_linear_error_against_float32_is_bounded():
    """torch's default initialization, unit inputs: what README's "Low precision" states."""
    layer = nn.Linear(650, 10000, seed=3)
    x = np.random.default_rng(0).standard_normal((20, 650)).astype(np.float32)
    y32 = layer.eval()(x)
    y16 = layer.eval(precision="bfloat16")(x)
    d = y16 - y32
    assert np.sqrt((d ** 2).mean() / (y32 ** 2).mean()) < 1e-2
    assert np.abs(d).max() < 3e-2


def test_linear_takes_the_copy_at_eval_and_drops_it_in_training():
    import copy
    import pickle
    layer = nn.Linear(40, 30, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 40)).astype(np.float32)

    def want(w):
        return (round_bf16(x).astype(np.float64) @ round_bf16(w).astype(np.float64).T
                + layer.params["bias"])

    y = layer.eval(precision="bfloat16")(x)
    assert layer.precision == "bfloat16"
    np.testing.assert_allclose(y, want(layer.params["weight"]), atol=1e-5)
    for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert other.precision == "bfloat16"
        np.testing.assert_array_equal(other(x), y)
    # A copy: a weight changed in place is seen after the next eval or load_state_dict; a
    # weight array replaced, at the next call.
    layer.params["weight"][...] *= 2
    np.testing.assert_array_equal(layer(x), y)
    layer.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(layer(x), want(layer.params["weight"]), atol=1e-5)
    layer.params["weight"] = -layer.params["weight"]
    np.testing.assert_allclose(layer(x), want(layer.params["weight"]), atol=1e-5)
    # Training holds no copy, and runs float32, as plain eval does.
    layer.train()
    assert layer.precision == "float32" and layer._bf16 is None
    w = layer.params["weight"].astype(np.float64)
    np.testing.assert_allclose(layer.eval()(x), x @ w.T + layer.params["bias"], atol=1e-5)
    assert layer._bf16 is None


def test_models_pass_precision_to_their_layers():
    from seqkern.nn.module import Model

    class Net(Model):
        def __init__(self):
            self.rnn = nn.GRU(8, 16, seed=0)
            self.head = nn.Linear(16, 4, seed=0)

    net = Net().eval(precision="bfloat16")
    assert net.rnn.precision == "bfloat16" and net.rnn._prepacked.precision == "bfloat16"
    assert net.head.precision == "bfloat16" and net.head._bf16 is not None
    net.train()
    assert net.rnn.precision == "float32"
    assert net.head.precision == "float32" and net.head._bf16 is None


def test_bad_precision_arguments():
    rng = np.random.default_rng(3)
    x, [w], _ = stack_problem(rng, "lstm", 3, 2, 4, 5)
    with pytest.raises(ValueError, match="precision: expected one of 'float32', 'bfloat16'"):
        sk.lstm(x, None, None, *w, precision="float16")
    with pytest.raises(ValueError, match="for inference"):
        sk.lstm(x, None, None, *w, training=True, precision="bfloat16")
    with pytest.raises(ValueError, match="float32 arrays"):
        sk.lstm(x.astype(np.float64), None, None, *(a.astype(np.float64) for a in w),
                precision="bfloat16")
    with pytest.raises(ValueError, match="float32 arrays"):
        nn.LSTM(4, 5, dtype=np.float64).eval(precision="bfloat16")
    with pytest.raises(ValueError, match="float32 arrays"):
        nn.Linear(4, 5, dtype=np.float64).eval(precision="bfloat16")
    with pytest.raises(ValueError, match="precision"):
        nn.LSTM(4, 5).eval(precision="int8")


def test_info_names_the_route():
    from seqkern._info import facts
    route = facts()["bf16"]
    assert (route == "AMX tiles") == _core.bf16_amx()
    assert (route in ("AMX tiles", "native dot products")) == _core.bf16_native()
