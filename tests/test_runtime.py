"""Threads, SIMD dispatch, info and the command line."""
import os
import platform
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import seqkern as sk
from recurrent_cases import (OP_IDS, OPS, as_float64, assert_same, forward, forward_backward,
                             scaled_error)
from simd_levels import LEVELS, run_at_level
from seqkern import bench, reference


def test_default_threads_are_the_usable_cores():
    """The affinity mask's CPUs, capped by a CPU quota of the process's control group."""
    import math
    quota = sk._core.cgroup_cpu_quota()
    cpus = len(os.sched_getaffinity(0))
    assert sk.get_num_threads() == (min(cpus, math.ceil(quota)) if quota > 0 else cpus)


def _fake_cgroups(tmp_path, v2, root, path, quotas):
    """A mountinfo and a cgroup file naming one hierarchy mounted at tmp_path/mnt (its root
    `root`), the process in `path`, and quota files {dir under the mount: (quota, period)}."""
    mnt = tmp_path / "mnt"
    fs = "cgroup2 cgroup2 rw" if v2 else "cgroup cgroup rw,cpu,cpuacct"
    (tmp_path / "mountinfo").write_text(
        "25 1 0:23 / /proc rw,nosuid - proc proc rw\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        f"32 25 0:28 {root} {mnt} rw,nosuid - {fs}\n")
    own = ("0::" if v2 else "4:cpu,cpuacct:") + path
    (tmp_path / "cgroup").write_text(f"5:memory:/x\n{own}\n")
    for d, (quota, period) in quotas.items():
        (mnt / d).mkdir(parents=True, exist_ok=True)
        if v2:
            (mnt / d / "cpu.max").write_text(f"{quota} {period}\n")
        else:
            (mnt / d / "cpu.cfs_quota_us").write_text(f"{quota}\n")
            (mnt / d / "cpu.cfs_period_us").write_text(f"{period}\n")
    return str(tmp_path / "mountinfo"), str(tmp_path / "cgroup")


@pytest.mark.parametrize("v2,root,path,quotas,want", [
    (True, "/", "/a/b", {"a": (150000, 100000), "a/b": ("max", 100000)}, 1.5),  # a parent's binds
    (True, "/", "/a/b", {"a": (400000, 100000), "a/b": (200000, 100000)}, 2.0),  # the least
    (True, "/", "/a", {"a": ("max", 100000)}, 0.0),                              # no quota
    (False, "/docker/c1", "/docker/c1", {"": (250000, 100000)}, 2.5),  # a container's own root
    (False, "/", "/k/pod", {"k/pod": (-1, 100000), "k": (50000, 100000)}, 0.5),
    (False, "/", "/none", {}, 0.0),                                    # files missing
], ids=["v2-parent", "v2-least", "v2-max", "v1-container", "v1-parent", "v1-missing"])
def test_cgroup_cpu_quota_reads_v2_and_v1(tmp_path, v2, root, path, quotas, want):
    """A container's CPU limit (docker --cpus, a Kubernetes limit) leaves every host CPU in the
    affinity mask: the quota files say how many the process may use."""
    assert sk._core.cgroup_cpu_quota(*_fake_cgroups(tmp_path, v2, root, path, quotas)) == want


def test_default_threads_follow_a_real_cpu_quota(tmp_path):
    """A process in a cgroup (v1) limited to one CPU on this machine defaults to one thread, and
    `seqkern info` says why."""
    with open("/proc/self/cgroup") as f:
        own = next((line.split(":", 2)[2].strip() for line in f
                    if "cpu" in line.split(":")[1].split(",")), None)
    base = f"/sys/fs/cgroup/cpu{own}" if own is not None else None
    if base is None or len(os.sched_getaffinity(0)) < 2 or not os.access(base, os.W_OK):
        pytest.skip("needs a writable cgroup v1 cpu hierarchy and two CPUs")
    group = os.path.join(base, f"seqkern-test-{os.getpid()}")
    os.mkdir(group)
    try:
        with open(os.path.join(group, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(int(open(os.path.join(group, "cpu.cfs_period_us")).read())))
        def join():  # in the child, before it runs Python
            with open(os.path.join(group, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        script = "import seqkern; print(seqkern.get_num_threads(), seqkern.info()['cpu quota'])"
        out = subprocess.run([sys.executable, "-c", script],
                             capture_output=True, text=True, timeout=60, preexec_fn=join,
                             cwd=tmp_path)  # outside the source tree, which has no built _core
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[-1] == "1 1 CPUs (cgroup)"  # after info's own lines
    finally:
        os.rmdir(group)


# More threads than the CPUs the process may use (here its affinity cut to one CPU): the team's
# members then sleep at their barriers instead of spinning, with the same bits.
OVERSUBSCRIBED = """
import hashlib, os
import numpy as np
import seqkern as sk
from seqkern import bench
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
digests = []
for n in (1, 2, 3):
    sk.set_num_threads(n)
    d = hashlib.sha256()
    for cell, T, B, I, H in (("lstm", 8, 1, 40, 300), ("gru", 7, 3, 5, 70), ("rnn", 8, 1, 24, 200)):
        p = bench.make_problem(cell, T, B, I, H)  # teams (see the test of small-batch teams)
        y, h, *rest = getattr(sk, cell)(**p, training=True)
        g = getattr(sk, cell + "_backward")(rest[-1], y, h)
        d.update(y.tobytes() + g["h0"].tobytes())
    digests.append(d.hexdigest())
print(len(set(digests)))
"""


def test_more_threads_than_cpus_give_the_same_bits(tmp_path):
    out = subprocess.run([sys.executable, "-c", OVERSUBSCRIBED], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_and_several_threads_agree(cell, restore_threads):
    # Big enough that the GEMMs inside each batch slice would split if nesting were allowed.
    p = bench.make_problem(cell, 10, 32, 16, 64, dtype=np.float64, lengths=np.arange(32) % 10 + 1)
    sk.set_num_threads(1)
    one = forward_backward(sk, cell, p, {})
    sk.set_num_threads(3)
    assert sk.get_num_threads() == 3
    three = forward_backward(sk, cell, p, {})
    for a, b in zip(one[0], three[0]):
        assert scaled_error(a, b) < 1e-13
    for k in one[1]:
        assert scaled_error(one[1][k], three[1][k]) < 1e-13


def on_one_two_and_three_threads(cell, problem, options):
    """forward_backward's outputs and gradients with 1, 2 and 3 threads (3: more than this
    machine may have)."""
    results = []
    for n in (1, 2, 3):
        sk.set_num_threads(n)
        results.append(forward_backward(sk, cell, problem, options))
    return results


@pytest.mark.parametrize("cell,options", [("lstm", {}), ("gru", {}), ("gru", {"reset_after": False}),
                                          ("rnn", {})], ids=["lstm", "gru", "gru-before", "rnn"])
@pytest.mark.parametrize("T,B,I,H,lengths", [(7, 3, 5, 70, [7, 3, 5]), (6, 1, 4, 17, None),
                                             (5, 2, 3, 40, [2, 5]), (8, 1, 40, 300, None),
                                             (5, 1, 40, 300, None), (8, 1, 24, 384, None),
                                             (8, 1, 24, 200, None)],
                         ids=["H70", "B1-H17", "H40", "B1-team", "B1-short", "B1-H384",
                              "B1-H200"])
def test_small_batch_teams_give_the_same_bits_for_any_thread_count(cell, options, T, B, I, H,
                                                                   lengths, restore_threads):
    """With a few sequences per thread the threads split the hidden units: each computes its
    units' columns of every gate, then their cell update, and they meet at a barrier once a
    step. Every element still sums the same terms in the same order, so with 1, 2 and 3 threads
    (3: more than this machine may have, so members also wait on descheduled ones, and a member
    may get no units: H = 17 is two panels) what the time loops produce (outputs, state
    gradients) agrees bit for bit, in float32 too; a race between a member's cell and another's
    product would show here. At batch 1 on AVX-512 the members read grouped panels (H = 200: 13
    panels a gate block, groups of 2 or, with 3 members, of 4, the last one padded). One
    sequence of fewer than 8 steps (B1-short) runs on one thread, whose GEMVs the threads share
    in blocks of columns that do not depend on their number. The weight gradients come from
    BLAS GEMMs split by rows after the loop: equal to rounding."""
    p = bench.make_problem(cell, T, B, I, H, dtype=np.float32,
                           lengths=None if lengths is None else np.array(lengths))
    results = on_one_two_and_three_threads(cell, p, options)
    for outs, grads in results[1:]:
        for a, b in zip(outs, results[0][0]):
            np.testing.assert_array_equal(a, b)
        for k in grads:
            if k in ("h0", "c0"):
                np.testing.assert_array_equal(grads[k], results[0][1][k])
            else:
                assert scaled_error(grads[k], results[0][1][k]) < 1e-6, k
    ref = forward_backward(reference, cell, as_float64(p), options)
    for a, b in zip(results[0][0], ref[0]):
        assert scaled_error(a, b) < 3e-5


# Training steps under a busy Python thread that takes a core from one of seqkern's threads part
# of the time: for each dtype and thread count (1, 2, 3), a line of the dtype, the thread count,
# how many different digests four calls gave (of all their outputs and gradients), and the
# digest of what the time loops give (outputs, state gradients).
UNDER_LOAD = """
import hashlib, os, threading
import numpy as np
import seqkern as sk
from seqkern import bench
busy = threading.Event()
def hog():  # on the first CPU only (pid 0: this thread), so that one core stays the slower
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    while not busy.is_set():
        sum(range(1000))
hogger = threading.Thread(target=hog)
hogger.start()
cases = [(cell, kw, shape) for cell, kw in (("lstm", {}), ("gru", {}), ("gru", {"reset_after": False}),
                                            ("rnn", {}))
         for shape in ((40, 32, 24, 16), (20, 40, 16, 64), (17, 27, 30, 100), (9, 14, 40, 96))]
for dtype in (np.float32, np.float64):
    problems = [bench.make_problem(cell, *shape, dtype=dtype) for cell, _, shape in cases]
    for n in (1, 2, 3):
        sk.set_num_threads(n)
        calls = []
        for _ in range(4):
            every, loop = hashlib.sha256(), hashlib.sha256()
            for (cell, kw, _), p in zip(cases, problems):
                *outs, saved = getattr(sk, cell)(**p, **kw, training=True)
                g = getattr(sk, cell + "_backward")(saved, *bench.output_grads(cell, p))
                for a in outs + [g["h0"], g.get("c0")]:
                    if a is not None:
                        loop.update(a.tobytes())
                for k in sorted(g):
                    if g[k] is not None:
                        every.update(g[k].tobytes())
            every.update(loop.digest())
            calls.append((every.hexdigest(), loop.hexdigest()))
        print(np.dtype(dtype).name, n, len(set(calls)), calls[0][1])
busy.set()
hogger.join()
"""


@pytest.mark.parametrize("level", LEVELS)
def test_calls_repeat_their_bits_under_load_at_every_level(level, tmp_path):
    """A call's results repeat bit for bit at a given thread count, at every SIMD level, in
    float32 and float64, while a busy thread slows a core part of the time. Threads that split a
    batch of equal lengths re-split its rows every 8 steps by the speed each ran at (recurrent.h,
    RowBalance), so a thread's rows change within a call (T = 9: one re-split, of 14 rows), but
    only where the step products give each row the same sums whatever rows share them (seqkern's
    kernels, float32 at avx2 and avx512). There the time loops' outputs and state gradients also
    agree with one thread's, bit for bit: a row handed to another thread starts from the state
    its former owner wrote. On BLAS (float64, level baseline, aarch64) the split stays even: a
    re-split there changed the bits (a slice cut to one row went to GEMV; an aarch64 run once
    failed test_stack_with_frozen_weights_keeps_the_other_gradients so), and BLAS's sums follow
    the thread count. (A chance check: the old re-split failed here only when a core was slowed
    hard during a call, in two runs of several.)"""
    lines = [line.split() for line in run_at_level(level, UNDER_LOAD, tmp_path).splitlines()]
    assert [(dtype, n, same) for dtype, n, same, _ in lines] == [
        (dtype, n, "1") for dtype in ("float32", "float64") for n in "123"]
    if level != "baseline":
        assert len({loop for dtype, _, _, loop in lines if dtype == "float32"}) == 1


@pytest.mark.parametrize("cell,options", OPS, ids=OP_IDS)
@pytest.mark.parametrize("B,I,H", [(9, 40, 300), (13, 200, 200), (32, 64, 100), (20, 17, 130),
                                   (64, 30, 100), (90, 20, 40)])
def test_one_step_on_unpacked_weights_gives_the_same_bits_for_any_thread_count(
        cell, options, B, I, H, restore_threads):
    """A single step on weights no call packed (a cell's step in training: its weights change
    between calls) with 9 to 96 rows and more than 2400 outputs a gate block reads the weights in
    place at AVX-512 (in_place_gemm.h): one kernel for all of them on one thread, for each
    member's columns in a team of 2 or 3, for each thread's rows in a batch split (H = 40: too
    narrow for a team). Its outputs agree bit for bit, and with the twin; odd sizes cross the
    kernel's 16 x 16 tiles, 32-column slices and 12-row blocks."""
    p = bench.make_problem(cell, 1, B, I, H, dtype=np.float32)
    results = on_one_two_and_three_threads(cell, p, options)
    for outs, grads in results[1:]:
        for a, b in zip(outs, results[0][0]):
            if sk._core.simd_level() == "avx512":
                np.testing.assert_array_equal(a, b)
            assert scaled_error(a, b) < 1e-6
        for k in grads:
            assert scaled_error(grads[k], results[0][1][k]) < 1e-6, k
    ref = forward_backward(reference, cell, as_float64(p), options)
    assert_same(*results[0], *ref, 3e-5)


def test_concurrent_calls_from_python_threads():
    """Kernels release the GIL; calls racing for the pool still give the right answers."""
    p = bench.make_problem("lstm", 20, 16, 32, 48)
    want = forward(sk, "lstm", p, {})[0]
    results = [None] * 4

    def work(i):
        results[i] = forward(sk, "lstm", p, {})[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)


def test_woken_workers_keep_their_affinity(restore_threads):
    """A worker woken onto its caller's CPU (which the scheduler often picks) steps off it by
    leaving that CPU out of its affinity for a moment. Afterwards every thread of the process
    has the mask it started with, and the results are unchanged."""
    sk.set_num_threads(2)
    p = bench.make_problem("lstm", 6, 1, 8, 16)
    want = forward(sk, "lstm", p, {})[0]
    mask = os.sched_getaffinity(0)
    for _ in range(5):
        time.sleep(0.05)  # long past the workers' polling: they sleep and are woken
        np.testing.assert_array_equal(forward(sk, "lstm", p, {})[0], want)
    for tid in os.listdir("/proc/self/task"):
        assert os.sched_getaffinity(int(tid)) == mask


# Pre-activations across the whole float range exercise the clamps of the vectorized exp/tanh.
SIMD_CHECK = """
import numpy as np, seqkern as sk
from seqkern import reference
rng = np.random.default_rng(0)
x = (rng.standard_normal((3, 50, 1)) * np.logspace(-6, 3, 50)[None, :, None]).astype(np.float32)
I = np.ones((1, 1), np.float32)
for nl in ("tanh", "relu"):
    y, _ = sk.rnn(x, None, I, np.zeros((1, 1), np.float32), nonlinearity=nl)
    yr, _ = reference.rnn(x.astype(np.float64), None, I.astype(np.float64), np.zeros((1, 1)), nonlinearity=nl)
    err = np.abs(y - yr) / np.maximum(np.abs(yr), 1e-30)
    assert err.max() < 4e-7, (nl, err.max())
p = dict(x=x, h0=None, c0=None, w_ih=np.ones((4, 1), np.float32), w_hh=np.zeros((4, 1), np.float32))
y, _, c = sk.lstm(**p)
yr, _, cr = reference.lstm(**{k: (v.astype(np.float64) if v is not None else None) for k, v in p.items()})
assert np.abs(y - yr).max() < 1e-6 and np.abs(c - cr).max() < 1e-6
# H = 11: the fused LSTM cell's whole vectors and its tail, with biases and training gates
H = 11
p = dict(x=rng.standard_normal((4, 3, 5)), h0=rng.standard_normal((3, H)),
         c0=rng.standard_normal((3, H)), w_ih=rng.standard_normal((4 * H, 5)),
         w_hh=rng.standard_normal((4 * H, H)), b_ih=rng.standard_normal(4 * H),
         b_hh=rng.standard_normal(4 * H))
got = sk.lstm(**{k: v.astype(np.float32) for k, v in p.items()}, training=True)
want = reference.lstm(**p, training=True)
for a, b in zip(got[:3], want[:3]):
    assert np.abs(a - b).max() < 1e-5, np.abs(a - b).max()
# ... and its backward cell pass, with dy and the carried dh and dc, and without dy
for dy in (rng.standard_normal((4, 3, H)), None):
    dh, dc = rng.standard_normal((3, H)), rng.standard_normal((3, H))
    g32 = sk.lstm_backward(got[3], None if dy is None else dy.astype(np.float32),
                           dh.astype(np.float32), dc.astype(np.float32))
    g64 = reference.lstm_backward(want[3], dy, dh, dc)
    for name in g64:
        assert np.abs(g32[name] - g64[name]).max() < 1e-4 * max(1, np.abs(g64[name]).max()), name
# ... the GRU's (both resets) and the RNN's fused cells, forward and backward, lengths uneven
p = dict(x=rng.standard_normal((4, 3, 5)), h0=rng.standard_normal((3, H)),
         b_ih=rng.standard_normal(3 * H), b_hh=rng.standard_normal(3 * H))
cells = [("gru", dict(reset_after=r), 3) for r in (True, False)]
cells += [("rnn", dict(nonlinearity=nl), 1) for nl in ("tanh", "relu")]
for cell, kw, G in cells:
    q = dict(p, w_ih=rng.standard_normal((G * H, 5)), w_hh=rng.standard_normal((G * H, H)),
             b_ih=p["b_ih"][:G * H], b_hh=p["b_hh"][:G * H], lengths=np.array([4, 1, 3]), **kw)
    q32 = {k: v.astype(np.float32) if k[0] in "xwbh" else v for k, v in q.items()}
    got = getattr(sk, cell)(**q32, training=True)
    want = getattr(reference, cell)(**q, training=True)
    for a, b in zip(got[:2], want[:2]):
        assert np.abs(a - b).max() < 1e-5 * max(1, np.abs(b).max()), (cell, kw, np.abs(a - b).max())
    dy, dh = rng.standard_normal((4, 3, H)), rng.standard_normal((3, H))
    for dy in (dy, None):
        g32 = getattr(sk, cell + "_backward")(got[2], None if dy is None else dy.astype(np.float32),
                                              dh.astype(np.float32))
        g64 = getattr(reference, cell + "_backward")(want[2], dy, dh)
        for name in g64:
            err = np.abs(g32[name] - g64[name]).max()
            assert err < 1e-4 * max(1, np.abs(g64[name]).max()), (cell, kw, name, err)
# the cells adding each step's recurrent product kept apart (weights over 8 MB:
# InputProjection::apart), H with a tail at every width, in inference and training
for cell, kw, I, H, G in (("lstm", {}, 700, 604, 4), ("rnn", {}, 1200, 1004, 1),
                          ("gru", dict(reset_after=False), 700, 604, 3)):
    q = dict(x=rng.standard_normal((3, 40, I)), h0=rng.standard_normal((40, H)),
             w_ih=rng.standard_normal((G * H, I)) * 0.03,
             w_hh=rng.standard_normal((G * H, H)) * 0.03,
             b_ih=rng.standard_normal(G * H), b_hh=rng.standard_normal(G * H))
    if cell == "lstm":
        q["c0"] = rng.standard_normal((40, H))
    q32 = {k: v.astype(np.float32) for k, v in q.items()}
    for training in (False, True):
        got = getattr(sk, cell)(**q32, **kw, training=training)
        want = getattr(reference, cell)(**q, **kw, training=training)
        for a, b in zip(got[:2], want[:2]):
            assert np.abs(a - b).max() < 1e-5 * max(1, np.abs(b).max()), (cell, np.abs(a - b).max())
# the vectorized exp/log rows: cross-entropy (V = 13: whole vectors and a tail), attention, CTC
logits = rng.standard_normal((5, 13)) * 4
t = rng.integers(0, 13, 5)
_, s32 = sk.softmax_cross_entropy(logits.astype(np.float32), t, training=True)
_, s64 = reference.softmax_cross_entropy(logits, t, training=True)
assert np.abs(sk.softmax_cross_entropy_backward(s32) - reference.softmax_cross_entropy_backward(s64)).max() < 1e-6
for Tk in (11, 37):  # keys in a tail alone, and in whole vectors and a tail (the row's max)
    # scores of +-100 and more: exp overflows unless the shift is the row's true max
    q, k = rng.standard_normal((2, 3, 4)) * 30, rng.standard_normal((2, Tk, 4))
    c32, _ = sk.attention(q.astype(np.float32), k.astype(np.float32))
    c64, _ = reference.attention(q, k)
    assert np.abs(c32 - c64).max() < 1e-5
x = rng.standard_normal((20, 3, 6))
lp = x - np.log(np.exp(x).sum(axis=2, keepdims=True))
tg, il, tl = rng.integers(1, 6, (3, 7)), np.array([20, 15, 9]), np.array([7, 3, 5])
l32, c32 = sk.ctc_loss(lp.astype(np.float32), tg, il, tl, reduction="none", training=True)
l64, c64 = reference.ctc_loss(lp, tg, il, tl, reduction="none", training=True)
assert np.abs(l32 - l64).max() < 1e-4, np.abs(l32 - l64).max()
g32, g64 = sk.ctc_loss_backward(c32, np.ones(3))["log_probs"], reference.ctc_loss_backward(c64, np.ones(3))["log_probs"]
assert np.abs(g32 - g64).max() < 1e-5, np.abs(g32 - g64).max()
print(sk._core.simd_level())
"""


@pytest.mark.parametrize("level", LEVELS)
def test_vectorized_activations_are_accurate(level, tmp_path):
    """The float kernels of each SIMD level the machine has against the twins."""
    assert run_at_level(level, SIMD_CHECK, tmp_path).strip().endswith(level)


FLOAT64_CHECK = """
import numpy as np, seqkern as sk
from seqkern import reference
rng = np.random.default_rng(0)
# tanh and sigmoid over magnitudes 1e-8..1e3, both sides of tanh's switch at 0.625, and 0
x = rng.standard_normal((3, 400, 1)) * np.logspace(-8, 3, 400)[None, :, None]
x[:, :5, 0] = [0.625, -0.625, 0.62499999, 0.0, 19.0]
y, _ = sk.rnn(x, None, np.ones((1, 1)), np.zeros((1, 1)))
ulp = np.abs(y - np.tanh(x)) / np.spacing(np.abs(np.tanh(x)))
assert ulp.max() <= 2, ulp.max()
# one LSTM step whose i sees x and whose g is tanh(1): c = sigmoid(x) tanh(1)
_, _, c = sk.lstm(x[-1:], None, None, np.array([[1.0], [0], [0], [0]]), np.zeros((4, 1)),
                  b_ih=np.array([0, 0, 1.0, 0]))
with np.errstate(over="ignore"):
    want = np.tanh(1.0) / (1 + np.exp(-x[-1]))
rel = np.abs(c - want)[want > 1e-300] / want[want > 1e-300]  # (exp is clamped at e^709)
assert rel.max() < 5e-16, rel.max()
# every cell at H = 11 (vectors and a tail), forward and backward, against the twins
H, B = 11, 3
for cell, G, kw in (("lstm", 4, {}), ("gru", 3, {}), ("gru", 3, {"reset_after": False}),
                    ("rnn", 1, {"nonlinearity": "tanh"}), ("rnn", 1, {"nonlinearity": "relu"})):
    p = dict(x=rng.standard_normal((4, B, 5)), h0=rng.standard_normal((B, H)),
             w_ih=rng.standard_normal((G * H, 5)), w_hh=rng.standard_normal((G * H, H)),
             b_ih=rng.standard_normal(G * H), b_hh=rng.standard_normal(G * H), **kw)
    if cell == "lstm":
        p["c0"] = rng.standard_normal((B, H))
    *got, saved = getattr(sk, cell)(**p, training=True)
    *want, saved_r = getattr(reference, cell)(**p, training=True)
    dy = rng.standard_normal(got[0].shape)
    gg = getattr(sk, cell + "_backward")(saved, dy, *(np.ones_like(o) for o in got[1:]))
    gw = getattr(reference, cell + "_backward")(saved_r, dy, *(np.ones_like(o) for o in got[1:]))
    for a, b in list(zip(got, want)) + [(gg[k], gw[k]) for k in gw]:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=f"{cell} {kw}")
print(sk._core.simd_level())
"""


@pytest.mark.parametrize("level", LEVELS)
def test_float64_activations_and_cells_at_every_level(level, tmp_path):
    """The float64 tanh, sigmoid (within 2-3 ulp) and every cell's passes of each SIMD level."""
    assert run_at_level(level, FLOAT64_CHECK, tmp_path).strip().endswith(level)


NAN_CHECK = """
import numpy as np, seqkern as sk
from seqkern import reference
rng = np.random.default_rng(0)
H, B = 11, 4
for dtype in (np.float32, np.float64):
    for cell, G, kw in (("lstm", 4, {}), ("gru", 3, {}), ("gru", 3, {"reset_after": False}),
                        ("rnn", 1, {"nonlinearity": "tanh"}), ("rnn", 1, {"nonlinearity": "relu"})):
        x = rng.standard_normal((3, B, 5))
        x[1, 1, 2] = np.nan  # sequence 1 turns NaN from step 1 on; sequence 2 meets infinities
        x[0, 2, :2] = [np.inf, -np.inf]
        p = dict(x=x, h0=None, w_ih=0.3 * rng.standard_normal((G * H, 5)),
                 w_hh=0.3 * rng.standard_normal((G * H, H)), b_ih=None, b_hh=None, **kw)
        if cell == "lstm":
            p["c0"] = None
        got = getattr(sk, cell)(**{k: v.astype(dtype) if isinstance(v, np.ndarray) else v
                                   for k, v in p.items()})
        with np.errstate(invalid="ignore", over="ignore"):
            want = getattr(reference, cell)(**p)
        for a, b in zip(got, want):
            assert (np.isnan(a) == np.isnan(b)).all(), (cell, kw, dtype, np.isnan(a), np.isnan(b))
            assert np.isnan(a[1:, 1] if a.ndim == 3 else a[1]).all()  # from step 1 on
print(sk._core.simd_level())
"""


def run_user_script(script, tmp_path, **settings):
    """Runs a user's script in a fresh process with `settings` added to the environment and every
    warning shown, without the suite's own SEQKERN_TUNE (it warns below avx512, and renames the
    machine's kind above); returns the finished process, which must have succeeded."""
    env = {k: v for k, v in os.environ.items() if k != "SEQKERN_TUNE"}
    env.update(settings, PYTHONWARNINGS="always")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.parametrize("asked, warns", [("", False), ("AVX2", False), ("Baseline", False),
                                          ("avx-512", True), ("sse4", True)])
def test_simd_request_spelling(asked, warns, tmp_path):
    """SEQKERN_SIMD ignores letter case and, empty, counts as unset (a shell's `SEQKERN_SIMD=
    cmd`); an unknown name warns at the user's import line. Before, an empty value and "AVX2"
    warned "ignored" and ran the best level."""
    script = tmp_path / "user_script.py"
    script.write_text("import seqkern as sk\nprint(sk._core.simd_level())\n")
    out = run_user_script(script, tmp_path, SEQKERN_SIMD=asked)
    best = sk._core.simd_levels().split(",")[-1]
    expected = asked.lower() if asked and not warns else best
    if expected not in sk._core.simd_levels().split(","):
        pytest.skip(f"this machine has no {expected}")
    assert out.stdout.strip() == expected
    if warns:
        assert "user_script.py:1: RuntimeWarning: SEQKERN_SIMD=" in out.stderr, out.stderr
    else:
        assert out.stderr == ""


@pytest.mark.parametrize("asked, level, expected, warns", [
    ("", "avx512", None, False), ("Zen4", "avx512", "zen4", False),
    ("intel", "avx512", "intel", False), ("zen6", "avx512", None, True),
    ("zen5", "avx2", "none", True)])
def test_tuning_request(asked, level, expected, warns, tmp_path):
    """SEQKERN_TUNE makes level avx512 take the choices of another kind of cores, in any letter
    case, and `seqkern info` names them; an unknown word, or a level below avx512, warns at the
    user's import line and changes nothing."""
    if level not in sk._core.simd_levels().split(","):
        pytest.skip(f"this machine has no {level}")
    script = tmp_path / "user_script.py"
    script.write_text("import seqkern as sk\nprint(sk._core.avx512_cores())\n"
                      "from seqkern._info import facts\nprint(facts().get('tuning'))\n")
    out = run_user_script(script, tmp_path, SEQKERN_TUNE=asked, SEQKERN_SIMD=level)
    cores, tuning = out.stdout.split("\n")[:2]
    assert cores == (expected  # else the machine's own kind
                     or run_user_script(script, tmp_path, SEQKERN_SIMD=level).stdout.split("\n")[0])
    if cores == "none":
        assert tuning == "None"
    else:
        assert tuning == cores + (" (SEQKERN_TUNE)" if expected else "")
    if warns:
        assert "user_script.py:1: RuntimeWarning: SEQKERN_TUNE=" in out.stderr, out.stderr
    else:
        assert out.stderr == ""


@pytest.mark.parametrize("level", LEVELS)
def test_nan_passes_through_every_cell_at_every_level(level, tmp_path):
    """A NaN in a sequence's input makes its outputs NaN from that step on, as in the twins and
    torch (the float kernels' clamped exp and relu used to turn it into finite values)."""
    assert run_at_level(level, NAN_CHECK, tmp_path).strip().endswith(level)


# Recurrent layers of every cell, batch sizes that take each path (one thread alone, a team
# splitting columns, threads splitting the batch, BLAS rows), training and backward.
RECURRENT_RESULTS = """
import sys
import numpy as np
import seqkern as sk
sk.set_num_threads(2)
rng = np.random.default_rng(0)
f = lambda *s: (0.2 * rng.standard_normal(s)).astype(np.float32)  # tanh short of saturation
out = []
for cell, G in (("lstm", 4), ("gru", 3), ("rnn_tanh", 1)):
    for B in (1, 7, 40, 100):
        H = 70  # B = 7: a team (H >= 64 on 2 threads)
        x, ws = f(9, B, 24), [(f(G * H, 24), f(G * H, H), f(G * H), f(G * H)), (f(G * H, 24), f(G * H, H), f(G * H), f(G * H))]
        y, h, *c, saved = sk.recurrent_stack(cell, x, ws, bidirectional=True, training=True)
        g = sk.recurrent_stack_backward(saved, f(*y.shape), f(*h.shape), *(f(*v.shape) for v in c))
        out.append(np.concatenate([y.ravel(), g["x"].ravel()] + [w.ravel() for ws in g["weights"] for w in ws]))
np.save(sys.argv[1], np.concatenate(out))
"""


@pytest.mark.parametrize("level", ["avx2", "avx512"])
def test_kernel_benchmark_builds_and_checks_its_product(level, tmp_path):
    """benchmarks/packed_gemm.py compiles the micro-kernels into its own program, outside the
    extension's build, so a change of their interface breaks it silently unless it is built here.
    The program checks the product it timed against plain sums (exit status 1 when wrong)."""
    import shutil
    if level not in sk._core.simd_levels().split(",") or shutil.which("g++") is None:
        pytest.skip(f"needs g++ and {level}")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
    try:
        import packed_gemm
    finally:
        sys.path.pop(0)
    exe = packed_gemm.build(str(tmp_path))
    for M, K, N in ((1, 20, 33), (7, 300, 50), (13, 257, 16), (32, 64, 100)):
        out = subprocess.run([exe, str(M), str(K), str(N), "2", level], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert float(out.stdout.split()[4]) < 1e-5


def test_avx512_recurrent_layers_agree_with_avx2(tmp_path):
    """The AVX-512 micro-kernels sum k in the AVX2 kernels' order; the cell passes differ only in
    the reciprocal (AVX-512: estimate and Newton step), so the two levels agree to rounding."""
    got = {}
    for level in ("avx2", "avx512"):
        run_at_level(level, RECURRENT_RESULTS, tmp_path, str(tmp_path / f"{level}.npy"))
        got[level] = np.load(tmp_path / f"{level}.npy")
    scale = np.abs(got["avx2"]).max()
    assert np.abs(got["avx512"] - got["avx2"]).max() < 1e-5 * scale


# Training steps of every kernel family that runs on the threads, as one digest of the bits.
THREADS_DIGEST = """
import hashlib, sys
import numpy as np
if sys.argv[1] == "openmp":
    import torch  # loads GNU OpenMP: seqkern's chunks then run on its team
import seqkern as sk
sk.set_num_threads(2)
rng = np.random.default_rng(0)
f = lambda *s: (0.2 * rng.standard_normal(s)).astype(np.float32)  # tanh short of saturation
digest = hashlib.sha256()
for B in (1, 7, 64):
    x, ws = f(9, B, 24), [(f(4 * 40, 24), f(4 * 40, 40), f(160), f(160)), (f(160, 24), f(160, 40), f(160), f(160))]
    y, h, c, saved = sk.recurrent_stack("lstm", x, ws, bidirectional=True, training=True)
    g = sk.recurrent_stack_backward(saved, f(*y.shape), f(*h.shape), f(*c.shape))
    digest.update(y.tobytes() + g["x"].tobytes() + b"".join(w.tobytes() for ws in g["weights"] for w in ws))
logits = f(300, 1000)
_, saved = sk.softmax_cross_entropy(logits, rng.integers(0, 1000, 300), training=True)
digest.update(sk.softmax_cross_entropy_backward(saved).tobytes())
ctx, _ = sk.attention(f(4, 300, 32), f(4, 700, 32))
digest.update(ctx.tobytes())
loaded = "libgomp" in open("/proc/self/maps").read()
print(loaded, digest.hexdigest())
"""


def test_openmp_team_gives_the_pools_bits(tmp_path):
    """In a process with GNU OpenMP loaded (torch), the chunks run on its team instead of
    seqkern's pool: the split is the same, so the results are bitwise the same."""
    pytest.importorskip("torch")
    runs = {}
    for mode in ("pool", "openmp"):
        out = subprocess.run([sys.executable, "-c", THREADS_DIGEST, mode], capture_output=True,
                             text=True, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        runs[mode] = out.stdout.split()
    assert runs["pool"][0] == "False" and runs["openmp"][0] == "True"
    assert runs["pool"][1] == runs["openmp"][1]


FORK_AFTER_OPENMP = """
import os, numpy as np
import torch  # GNU OpenMP: seqkern's chunks run on its team in this process
import seqkern as sk
sk.set_num_threads(2)
rng = np.random.default_rng(0)
x = rng.standard_normal((20, 64, 128)).astype(np.float32)
w = [rng.standard_normal(s).astype(np.float32) * 0.1 for s in ((512, 128), (512, 128), (512,), (512,))]
y = sk.lstm(x, None, None, *w)[0]
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(sk.lstm(x, None, None, *w)[0], y) else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_runs_after_the_parent_used_openmp(tmp_path):
    """libgomp's team does not survive fork (a child's parallel region would wait forever): a
    child keeps to seqkern's own pool, with the same bits."""
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", FORK_AFTER_OPENMP], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "0"


def test_info_reports_the_build(capsys):
    facts = sk.info()
    printed = capsys.readouterr().out
    assert "OpenBLAS" in facts["blas"] and facts["threads"] == sk.get_num_threads()
    assert facts["simd"] in LEVELS and facts["simd"] in facts["simd levels"].split(",")
    for key in ("seqkern", "cpu", "blas", "threads", "simd", "cuda"):
        assert key in printed
    assert facts["cpu"].endswith(f"{os.cpu_count()} cores")


X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx fma avx2 bmi2
"""
ARM_CPUINFO = """processor\t: 0
Features\t: fp asimd evtstrm aes crc32 atomics asimddp sve svebf16 i8mm bf16
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd40
"""


@pytest.mark.parametrize("text,want", [
    (X86_CPUINFO, "AMD EPYC 7B13 (family 25 model 1, AVX2/FMA), 2 cores"),
    (X86_CPUINFO.replace("avx2", "avx2 avx512f"), "(family 25 model 1, AVX-512)"),
    (X86_CPUINFO.replace(" avx2", ""), "(family 25 model 1, baseline)"),
    (ARM_CPUINFO, "Neoverse V1 (SVE), 2 cores"),
    (ARM_CPUINFO.replace("0xd40", "0xd4f").replace("sve ", "sve sve2 "), "Neoverse V2 (SVE2)"),
    (ARM_CPUINFO.replace("0xd40", "0x123").replace(" sve svebf16", ""),
     "(implementer 0x41, part 0x123) (NEON), 2 cores"),
    ("", "unknown CPU (baseline), 2 cores")])
def test_cpu_line_names_the_model_and_its_widest_isa(text, want):
    """Benchmarks head their tables with this line: x86 names its model and family, aarch64
    (no model name in /proc/cpuinfo) its core by part number."""
    from seqkern._info import describe_cpu
    assert want in describe_cpu(text, 2)


@pytest.mark.parametrize("coretype", [None, "Haswell"])
def test_info_names_a_forced_blas_kernel(coretype, tmp_path):
    """OPENBLAS_CORETYPE overrides OpenBLAS's choice of kernels for the CPU; info says so."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run([sys.executable, "-m", "seqkern", "info"], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=120)
    blas = next(line for line in out.stdout.splitlines() if line.startswith("blas"))
    assert ("OPENBLAS_CORETYPE=Haswell" in blas) == (coretype is not None)
    if coretype and platform.machine() in ("x86_64", "AMD64"):  # an x86 core type
        assert "Haswell" in blas.split("(OPENBLAS_CORETYPE")[0]  # the kernels it then runs


@pytest.mark.parametrize("machine, hwcap2, environ, want", [
    ("aarch64", 1 << 23, {}, "NEOVERSEN1"),                     # SME: armv9sme's products are wrong
    ("aarch64", (1 << 23) | 0xFF, {}, "NEOVERSEN1"),
    ("aarch64", 0x77FFF, {}, None),                             # SVE2 and the rest, no SME
    ("aarch64", 1 << 23, {"OPENBLAS_CORETYPE": "A64FX"}, None),  # the user's choice stands
    ("x86_64", 1 << 23, {}, None),                              # (bit 23 means nothing there)
])
def test_openblas_core_type_for_sme_cpus(machine, hwcap2, environ, want):
    from seqkern._openblas import core_type_to_force
    assert core_type_to_force(machine, hwcap2, environ) == want


def test_openblas_steered_off_armv9sme_on_this_cpu(tmp_path):
    """On an SME CPU (QEMU's `max` under .ci/aarch64) seqkern loads OpenBLAS with NEOVERSEN1,
    info says so, and the variable is gone again once _core has loaded."""
    from seqkern import _openblas
    if platform.machine() != "aarch64" or not _openblas._hwcap2() & _openblas._HWCAP2_SME:
        pytest.skip("no SME on this CPU: OpenBLAS keeps its own choice")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    code = ("import os, seqkern as sk; print(sk.info()['blas']); "
            "print('OPENBLAS_CORETYPE' in os.environ)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    blas, left = out.stdout.splitlines()[-2:]
    assert "neoversen1" in blas.lower() and "set by seqkern" in blas and left == "False"


def test_bundled_blas_sits_next_to_the_extension():
    import seqkern._core as core

    folder = os.path.dirname(core.__file__)
    assert "libscipy_openblas.so" in os.listdir(folder)


def test_command_line_info_and_check(tmp_path):
    info = subprocess.run([sys.executable, "-m", "seqkern", "info"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert info.returncode == 0 and "blas" in info.stdout
    version = subprocess.run([sys.executable, "-m", "seqkern", "--version"], capture_output=True,
                             text=True, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout == f"seqkern {sk.__version__}\n"
    check = subprocess.run([sys.executable, "-m", "seqkern", "check", "--shape", "4", "2", "3",
                            "5", "--repeat", "1"], capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.count(" ok") == 8 and "GFLOP/s" in check.stdout  # 3 cells, 5 other ops


@pytest.mark.parametrize("command, bad", [
    (["demo"], ["--seed", "-1"]),
    (["demo"], ["--lr", "inf"]),
    (["train-lm", "--text", "{text}", "--save", "{out}"], ["--seed", "-1"]),
    (["train-lm", "--text", "{text}", "--save", "{out}"], ["--lr", "nan"]),
    (["train-lm", "--text", "{text}", "--save", "{out}"], ["--lr", "inf"]),
    (["train-lm", "--text", "{text}", "--save", "{out}"], ["--vocab-size", "2"]),
    (["sample", "--checkpoint", "{text}"], ["--seed", "-1"]),
    (["seq2seq", "--task", "addition"], ["--seed", "-1"]),
    (["seq2seq", "--task", "addition"], ["--lr", "inf"]),
    (["seq2seq", "--task", "addition"], ["--lr-decay", "-1"]),
    (["seq2seq", "--task", "addition"], ["--lr-decay", "nan"]),
    (["ctc"], ["--seed", "-1"]),
    (["ctc"], ["--lr", "inf"]),
    (["ctc"], ["--noise", "nan"]),
    (["word2vec", "--train", "{text}", "--output", "{out}"], ["--seed", "-1"]),
    (["word2vec", "--train", "{text}", "--output", "{out}"], ["--alpha", "inf"]),
    (["word2vec", "--train", "{text}", "--output", "{out}"], ["--sample", "nan"]),
    (["word2vec", "--train", "{text}", "--output", "{out}"], ["--sample", "-1"]),
    (["word2vec", "-train", "{text}", "-output", "{out}"], ["-negative", "-1"]),
    (["word2vec", "-train", "{text}", "-output", "{out}"], ["-cbow", "2"]),
])
def test_command_line_refuses_bad_numbers_before_any_work(command, bad, tmp_path, capsys):
    """Seeds numpy refuses, and learning rates, factors and noise that are not finite: refused by
    argparse with the flag's name, not trained into a model of NaNs nor failed inside numpy with
    a message naming no flag."""
    from seqkern import cli
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\n" * 20)
    argv = [a.format(text=text, out=tmp_path / "out") for a in command] + bad
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    named = re.search(r"argument (\S+): expected", capsys.readouterr().err)
    assert named and bad[0] in named[1].split("/")  # "--seed", or word2vec's "--seed/-seed"


@pytest.mark.parametrize("argv, message", [
    (["train-lm", "--text", "{text}", "--save", "{text}"],
     "--save {text}: the same file as --text"),
    (["word2vec", "-train", "{text}", "-output", "{text}"],
     "--output {text}: the same file as --train"),
    (["word2vec", "-train", "{text}", "-output", "{out}", "-save-vocab", "{out}"],
     "--save-vocab {out}: the same file as --output"),
    (["seq2seq", "--task", "{pairs}", "--save", "{pairs}"],
     "--save {pairs}: the same file as --task"),
])
def test_command_line_refuses_to_write_over_its_own_input(argv, message, tmp_path, capsys):
    """`--text corpus.txt --save corpus.txt` wrote the checkpoint over the text it trained on
    (and `seqkern word2vec` its vectors over the corpus): refused before any work, the file
    untouched."""
    from seqkern import cli
    text, pairs = tmp_path / "text.txt", tmp_path / "pairs.tsv"
    text.write_text("the cat sat on the mat\n" * 20)
    pairs.write_text("ab\tba\n" * 20)
    names = dict(text=text, pairs=pairs, out=tmp_path / "out.txt")
    before = text.read_bytes(), pairs.read_bytes()
    assert cli.main([a.format(**names) for a in argv]) == 1
    assert message.format(**names) in capsys.readouterr().err
    assert (text.read_bytes(), pairs.read_bytes()) == before
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("argv", [
    ["train-lm", "--text", "{text}", "--save", "{folder}"],
    ["seq2seq", "--task", "addition", "--save", "{folder}"],
    ["seq2seq", "--task", "addition", "--plot-attention", "{folder}"],
    ["ctc", "--save", "{folder}"],
    ["demo", "--save", "{folder}"],
    ["word2vec", "-train", "{text}", "-output", "{folder}"],
    ["word2vec", "-train", "{text}", "-output", "{out}", "-save-vocab", "{folder}"],
])
def test_command_line_refuses_a_folder_as_output(argv, tmp_path, capsys):
    """A folder given as an output was found when the file was written, after the training:
    `seqkern word2vec` then named its temporary file ("/.seqkern-bemehft9.part: Is a
    directory"), and train-lm its checkpoint after the first epoch."""
    from seqkern import cli
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\n" * 20)
    names = dict(text=text, folder=tmp_path, out=tmp_path / "out.txt")
    with pytest.raises(SystemExit) as e:
        cli.main([a.format(**names) for a in argv])
    assert e.value.code == 2
    assert f"{tmp_path}: is a folder; name a file in it" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["text.txt"]


def test_twin_runs_in_float32_too():
    p = bench.make_problem("gru", 4, 2, 3, 5, dtype=np.float32)
    y32, _ = reference.gru(**p)
    y64, _ = reference.gru(**as_float64(p))
    assert y32.dtype == np.float32 and scaled_error(y32, y64) < 1e-6


REUSE_SCRIPT = """
import sys
import numpy as np
import seqkern as sk

def address(a):
    return a.__array_interface__["data"][0]

dtype = np.dtype(sys.argv[1])
# > 1 MiB, and 128 KiB to 1 MiB (glibc heaps these and trims its heap under them at each free)
for shape in ((3, 128, 1024 + 7), (32, 1024 + 7)):
    a = sk._core.empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    assert address(a) % 64 == 0 and a.base is not None  # a block of the cache, not numpy's
    a[...] = 1.5
    first = address(a)
    del a
    b = sk._core.empty(shape, dtype)
    assert address(b) == first  # reused
    view = b[1:]
    del b
    c = sk._core.empty(shape, dtype)  # the view keeps b's block alive
    assert address(c) != first
    np.testing.assert_array_equal(view, 1.5)
    del view, c
for small in ((2, 3), (1,), (0,), (128 * 1024 // dtype.itemsize - 1,)):  # below 128 KiB
    d = sk._core.empty(small, dtype)  # not cached, but on a cache line too (a team's outputs)
    assert d.shape == small and d.dtype == dtype and d.flags.c_contiguous and d.flags.writeable
    assert address(d) % 64 == 0
    d[...] = 2.5
    np.testing.assert_array_equal(d, 2.5)
assert list(sk._core.empty((3,), np.dtype(object))) == [None] * 3  # numpy's, filled
assert sk._core.empty((0, 5), dtype).shape == (0, 5)
try:
    sk._core.empty((-1, 4), dtype)
    raise SystemExit("a negative shape was accepted")
except ValueError:
    pass
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_outputs_reuse_freed_memory(dtype, tmp_path):
    """_core.empty hands a freed block of 128 KiB or more to the next array of its size, and never
    one that an array or a view still uses; arrays of every size start on a cache line. In a
    fresh process: here the cache holds the blocks of earlier tests, and the next array may take
    one of those instead."""
    run = subprocess.run([sys.executable, "-c", REUSE_SCRIPT, dtype], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)  # the installed seqkern
    assert run.returncode == 0, run.stderr


BOUND_SCRIPT = """
import sys, time
import numpy as np
import seqkern as sk

def waiting():
    return sk._core.output_cache_stats()["waiting"]

# Arrays of many sizes, one at a time (lengths that vary from call to call): the freed blocks
# that wait hold no more than the most ever in use at once, here one array.
rng = np.random.default_rng(0)
for n in rng.integers(128 << 10, 4 << 20, 400):
    a = sk._core.empty((int(n),), np.dtype(np.uint8))
    a[::4096] = 1  # touched, as outputs are
    del a
stats = sk._core.output_cache_stats()
assert stats["in_use"] == 0 and stats["peak"] < 4 << 20, stats
assert 0 < stats["waiting"] <= stats["peak"], stats  # (all 400 kept: over 800 MB)

# Training calls of varying lengths, their outputs dropped: what waits stays within what one
# call had in use, and a call of a shape seen before is served from it.
w = [rng.standard_normal(s).astype(np.float32) for s in ((256, 32), (256, 64), (256,), (256,))]
for T in rng.integers(1, 200, 60):
    x = rng.standard_normal((int(T), 16, 32)).astype(np.float32)
    y, h, c, saved = sk.lstm(x, None, None, *w, training=True)
    sk.lstm_backward(saved, np.ones_like(y), None, None)
    del y, h, c, saved
    stats = sk._core.output_cache_stats()
    assert stats["in_use"] == 0 and stats["waiting"] <= stats["peak"], stats
def address(a):
    return a.__array_interface__["data"][0]

x = rng.standard_normal((150, 16, 32)).astype(np.float32)
def large(saved):  # the addresses of a training call's arrays from the cache
    return {address(a) for a in (saved.y, saved.gates, saved.cs)}

y, h, c, saved = sk.lstm(x, None, None, *w, training=True)
blocks = large(saved)
del y, h, c, saved
reused = sk._core.output_cache_stats()["reused"]
y, h, c, saved = sk.lstm(x, None, None, *w, training=True)
assert large(saved) == blocks and sk._core.output_cache_stats()["reused"] == reused + 3
del y, h, c, saved

# Blocks left unused for 10 s go back to the system at the next call.
assert waiting() > 0
time.sleep(10.5)
a = sk._core.empty((200 << 10,), np.dtype(np.uint8))
assert waiting() == 0, sk._core.output_cache_stats()
"""


def test_freed_outputs_waiting_for_reuse_stay_bounded(tmp_path):
    """The cache of freed output blocks holds at most what was ever in use at once (the oldest
    go first) and lets go of blocks unused for 10 s: calls of many shapes (a training loop
    over varying lengths) had filled it to 512 MiB, which the process then kept. In a fresh
    process, as the test above."""
    run = subprocess.run([sys.executable, "-c", BOUND_SCRIPT], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_outputs_stay_valid_across_calls():
    """A training call's saved arrays and outputs are not overwritten by the next call's."""
    p = bench.make_problem("lstm", 20, 16, 64, 128, seed=1)  # gates 640 KiB, y 160 KiB; h_n 8 KiB: small
    p2 = bench.make_problem("lstm", 40, 16, 64, 128, seed=2)  # gates 1.25 MiB: from the cache
    _, *_, saved1 = sk.lstm(**p2, training=True)
    gates1 = saved1.gates.copy()
    for q in (p, p2, p2):
        sk.lstm(**q, training=True)
    np.testing.assert_array_equal(saved1.gates, gates1)
    grads1 = sk.lstm_backward(saved1, *bench.output_grads("lstm", p2))
    del saved1
    _, *_, saved2 = sk.lstm(**p2, training=True)  # may reuse saved1's blocks
    np.testing.assert_array_equal(sk.lstm_backward(saved2, *bench.output_grads("lstm", p2))["w_hh"],
                                  grads1["w_hh"])


def test_a_source_tree_found_first_says_so(tmp_path):
    """Run from a checkout after `pip install .` (not in place), `import seqkern` finds the
    source tree, which has no compiled _core: the error says that and what to do, instead of
    Python's "cannot import name '_core' from partially initialized module". (-S: no site
    packages, so that an editable install's finder cannot come first.)"""
    import shutil
    (tmp_path / "seqkern").mkdir()
    package = os.path.dirname(sk.__file__)  # its modules, as a checkout holds them
    for name in os.listdir(package):
        if name.endswith(".py"):
            shutil.copy(os.path.join(package, name), tmp_path / "seqkern" / name)
    run = subprocess.run([sys.executable, "-S", "-c", "import seqkern"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 1
    assert "has no compiled _core. Python found seqkern's source tree before" in run.stderr
    assert "pip install -e ." in run.stderr

