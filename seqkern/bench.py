"""Timing helpers shared by `seqkern demo` and benchmarks/rnn.py: problems, steps, medians.

A "step" is a zero-argument callable doing one inference pass or one training step (forward
plus full backward, input gradient included) of one implementation: seqkern, its NumPy twin, or
torch (when installed).
"""
from __future__ import annotations

import time

import numpy as np

import seqkern as sk
from seqkern import reference
from seqkern._checks import GATES
from seqkern._info import cpu


def flops(cell, T, B, I, H, train):
    """2*T*B*G*H*(I+H) for inference; a training step counts three times that."""
    f = 2 * T * B * GATES[cell] * H * (I + H)
    return 3 * f if train else f


def make_problem(cell, T, B, I, H, dtype=np.float32, seed=0, lengths=None):
    """Random inputs in the functional API's names, weights ~ U(-1/sqrt(H), 1/sqrt(H))."""
    rng = np.random.default_rng(seed)
    G, k = GATES[cell], 1 / np.sqrt(H)
    p = {
        "x": rng.standard_normal((T, B, I)).astype(dtype),
        "h0": (0.5 * rng.standard_normal((B, H))).astype(dtype),
        "w_ih": rng.uniform(-k, k, (G * H, I)).astype(dtype),
        "w_hh": rng.uniform(-k, k, (G * H, H)).astype(dtype),
        "b_ih": rng.uniform(-k, k, G * H).astype(dtype),
        "b_hh": rng.uniform(-k, k, G * H).astype(dtype),
        "lengths": lengths,
    }
    if cell == "lstm":
        p["c0"] = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    return p


def output_grads(cell, problem, seed=1):
    """Random incoming gradients (dy, dh_n[, dc_n]) for a problem."""
    rng = np.random.default_rng(seed)
    T, B, _ = problem["x"].shape
    S = problem["w_hh"].shape[1]  # width of h (an LSTM's proj_size when it has w_hr)
    dt = problem["x"].dtype
    d = [rng.standard_normal((T, B, S)).astype(dt), rng.standard_normal((B, S)).astype(dt)]
    if cell == "lstm":
        d.append(rng.standard_normal(problem["c0"].shape).astype(dt))
    return d


def functional_step(module, cell, problem, train):
    """A step of seqkern (module=seqkern) or its twin (module=seqkern.reference)."""
    forward = getattr(module, cell)
    backward = getattr(module, cell + "_backward")
    douts = output_grads(cell, problem)
    if not train:
        return lambda: forward(**problem)

    def step():
        *_, saved = forward(**problem, training=True)
        return backward(saved, *douts)

    return step


def seqkern_step(cell, problem, train):
    return functional_step(sk, cell, problem, train)


def reference_step(cell, problem, train):
    return functional_step(reference, cell, problem, train)


def _torch_layer(torch, kind, *args, **kwargs):
    """torch.nn.LSTM / GRU / RNN for kind "lstm", "gru" or "rnn", built with these arguments."""
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](*args, **kwargs)


def layer_state(problem):
    """A one-layer problem's weights under the parameter names of torch.nn's layers (and
    seqkern.nn's): weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0."""
    return {name.replace("w_", "weight_").replace("b_", "bias_") + "_l0": problem[name]
            for name in ("w_ih", "w_hh", "b_ih", "b_hh")}


def eval_layer_step(cell, problem):
    """One inference pass of a one-layer seqkern.nn layer in eval mode that holds the problem's
    weights, as a served model holds them: its float32 weights were packed once, at eval(), so
    the call skips the packing that the functional call does at every call (the same outputs,
    bit for bit where that call packs too; to rounding where it hands a product to BLAS)."""
    from seqkern import nn

    I, H = problem["w_ih"].shape[1], problem["w_hh"].shape[1]
    m = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](I, H)
    m.load_state_dict(layer_state(problem))
    m.eval()
    x, lengths, state = problem["x"], problem.get("lengths"), problem["h0"][None]
    if cell == "lstm":
        state = (state, problem["c0"][None])

    def step():
        return m(x, state, lengths=lengths)

    step.layer = m
    return step


def torch_step(cell, problem, train):
    """The same step through torch.nn.LSTM/GRU/RNN with the same weights; None without torch.
    Variable lengths go through pack_padded_sequence, as a torch user would."""
    try:
        import torch
    except ImportError:
        return None
    T, B, I = problem["x"].shape
    H = problem["w_hh"].shape[1]
    m = _torch_layer(torch, cell, I, H)
    with torch.no_grad():
        for name, w in layer_state(problem).items():
            getattr(m, name).copy_(torch.from_numpy(w))
    m = m.to(torch.from_numpy(problem["x"]).dtype)
    x = torch.from_numpy(problem["x"]).requires_grad_(train)
    state = torch.from_numpy(problem["h0"])[None]
    if cell == "lstm":
        state = (state, torch.from_numpy(problem["c0"])[None])
    lengths = problem.get("lengths")
    douts = [torch.from_numpy(d) for d in output_grads(cell, problem)]

    def run():
        inp = x
        if lengths is not None:
            inp = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lengths),
                                                          enforce_sorted=False)
        y, s = m(inp, state)
        if lengths is not None:
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=T)
        return y, s

    if not train:
        def step():
            with torch.no_grad():
                return run()
        return step

    def step():
        y, s = run()
        outs = [y, *(s if isinstance(s, tuple) else (s,))]
        outs = [outs[0]] + [o[0] for o in outs[1:]]
        torch.autograd.backward(outs, douts)
        m.zero_grad(set_to_none=True)
        x.grad = None

    return step


def kept_for_backward(cell, problem):
    """Bytes each library keeps between a training forward and its backward for this problem:
    (seqkern, torch or None). Arrays and tensors the caller already holds (inputs, weights) are
    not counted; outputs that backward needs are."""
    *_, saved = getattr(sk, cell)(**problem, training=True)
    given = {id(v) for v in problem.values() if isinstance(v, np.ndarray)}
    ours = sum(v.nbytes for v in vars(saved).values()
               if isinstance(v, np.ndarray) and id(v) not in given)
    ours += sum(v.nbytes for v in vars(saved.args).values()
                if isinstance(v, np.ndarray) and id(v) not in given)
    try:
        import torch
    except ImportError:
        return ours, None
    T, B, I = problem["x"].shape
    H = problem["w_hh"].shape[1]
    m = _torch_layer(torch, cell, I, H)
    x = torch.from_numpy(problem["x"]).requires_grad_()
    skip = {p.data_ptr() for p in m.parameters()} | {x.data_ptr()}
    storages = {}

    def pack(t):
        if t.data_ptr() not in skip:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        m(x)
    return ours, sum(storages.values())


def paired_times(steps, repeat=5, min_seconds=0.3, warmup=1, settle_below=0.25, settle=0.05,
                 turn_seconds=0.01):
    """Median wall time in seconds of each step in `steps` (None stays None), timed in turns so
    that the drift of a shared machine hits all of them alike and their ratios hold even when
    absolute times move; at least `repeat` turns each. A step shorter than settle_below seconds
    first runs untimed for `settle` seconds in each of its turns: on these VMs a core that another
    library's threads just left (torch's OpenMP workers keep spinning) or that sat idle runs
    slowly for a while, and that would be charged to whichever library comes next (measured:
    seqkern's LSTM (50,1,256,256) takes 2-6x its time in the first 10 ms after torch's, 1.1-1.8x
    at 10-20 ms, and settles after 20 ms; 5-10% on a 50 ms step; above 0.25 s it is lost in the
    noise and an untimed run would cost too much). A settled turn then times as many calls as fit
    in turn_seconds (up to 20), each one a sample: single calls of a millisecond step scatter by
    +-20% from one to the next, and one sample per 100 ms of settling left the median of a
    7-turn run that noisy."""
    live = [s for s in steps if s is not None]
    for _ in range(warmup):
        for step in live:
            step()
    times = [[] for _ in live]
    turns = 0
    start = time.perf_counter()
    while turns < repeat or time.perf_counter() - start < min_seconds:
        for step, ts in zip(live, times):
            calls = 1
            if not ts or ts[-1] < settle_below:
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < settle:
                    step()
                if ts:
                    calls = int(min(20, max(1, turn_seconds // ts[-1])))
            for _ in range(calls):
                t0 = time.perf_counter()
                step()
                ts.append(time.perf_counter() - t0)
        turns += 1
        if turns >= 1000:
            break
    medians = iter(float(np.median(ts)) for ts in times)
    return [None if s is None else next(medians) for s in steps]


def steady_times(steps, calls=15, turns=4, warmup=1):
    """Two medians in seconds for each step in `steps` (None stays None): (steady, first). In each
    of `turns` turns every step runs `calls` times back to back, the steps taking turns so that a
    shared machine's drift hits them alike. steady: the median of the calls after each turn's
    first, as a training or inference loop makes them; first: the median of each turn's first
    call, right after another library's turn (its threads may still be spinning, or the cores
    idle)."""
    if calls < 2 or turns < 1:
        raise ValueError(f"calls, turns: expected at least 2 calls in at least 1 turn (the steady "
                         f"state leaves out each turn's first call), got {calls} and {turns}")
    live = [s for s in steps if s is not None]
    for _ in range(warmup):
        for step in live:
            step()
    runs = [[] for _ in live]
    for _ in range(turns):
        for step, ts in zip(live, runs):
            turn = []
            for _ in range(calls):
                t0 = time.perf_counter()
                step()
                turn.append(time.perf_counter() - t0)
            ts.append(turn)
    out = iter((float(np.median([t for turn in ts for t in turn[1:]])),
                float(np.median([turn[0] for turn in ts]))) for ts in runs)
    return [None if s is None else next(out) for s in steps]


def stack_flops(cell, T, B, I, H, layers, bidirectional, train, steps=None):
    """flops() summed over layers and directions; steps (total real steps, sum of lengths)
    replaces T*B for variable-length batches."""
    D = 2 if bidirectional else 1
    gates = GATES[cell.split("_")[0]]
    rows = steps if steps is not None else T * B
    f = sum(2 * rows * gates * H * ((I if l == 0 else D * H) + H) * D for l in range(layers))
    return 3 * f if train else f


def random_lengths(T, B, seed=0):
    """Lengths uniform in [T/2, T], the benchmark's variable-length batches."""
    return np.random.default_rng(seed).integers(max(1, T // 2), T + 1, size=B)


def layer_steps(cell, T, B, I, H, layers, bidirectional, lengths, train):
    """One inference pass or training step of seqkern.nn and of torch.nn (None without torch)
    on the same multi-layer network; lengths go through pack_padded_sequence for torch."""
    from seqkern import nn

    kind, _, nonlin = cell.partition("_")
    opts = {"nonlinearity": nonlin} if kind == "rnn" else {}
    m = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](
        I, H, layers, bidirectional=bidirectional, seed=0, **opts).train(train)
    x = np.random.default_rng(1).standard_normal((T, B, I)).astype(np.float32)
    D = 2 if bidirectional else 1
    dy = np.random.default_rng(2).standard_normal((T, B, D * H)).astype(np.float32)

    def ours():
        y, _ = m.forward(x, lengths=lengths)
        if train:
            m.backward(dy)

    try:
        import torch
    except ImportError:
        return ours, None
    tm = _torch_layer(torch, kind, I, H, layers, bidirectional=bidirectional, **opts)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    xt = torch.from_numpy(x).requires_grad_(train)
    dyt = torch.from_numpy(dy)

    def theirs():
        with torch.set_grad_enabled(train):
            inp = xt
            if lengths is not None:
                inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.as_tensor(lengths),
                                                              enforce_sorted=False)
            y, _ = tm(inp)
            if lengths is not None:
                y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=T)
            if train:
                y.backward(dyt)
                tm.zero_grad(set_to_none=True)
                xt.grad = None

    return ours, theirs


def machine():
    """The CPU this runs on, for the benchmarks' headers: `seqkern info`'s cpu line."""
    return cpu()


def _status_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def reset_peak_rss():
    """Resets the process's peak resident set to its current one (Linux) and returns it, KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS")


def peak_rss_kib():
    """The peak resident set since the last reset_peak_rss, KiB."""
    return _status_kib("VmHWM")
