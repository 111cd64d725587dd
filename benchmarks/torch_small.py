"""Small torch.nn recurrent layers and cells with seqkern.torch.optimize against torch's own.

    python benchmarks/torch_small.py [--json out.json]

Issue 19 asks that an optimized layer never run slower than torch's. At small sizes a call's
time is mostly fixed cost (argument checks, tensors viewed as arrays, autograd's bookkeeping),
so this sweeps small configurations: each torch module against optimize(copy.deepcopy(module)),
the same weights, in alternating rounds of back-to-back calls (the order reversed every other
round). "infer" is a forward under no_grad; "train" is a forward and y.sum().backward().
Reported: each library's median time a call and the median of the per-round ratios, torch time
/ seqkern time (above 1: seqkern is faster). Cells (LSTMCell, GRUCell) are called as a
decoder's loop calls them, one step with a state given; their shape column reads (T, B, I, H)
with T = 1. nn.RNNCell is not timed: optimize leaves it to torch, and seqkern.torch.RNNCell runs
torch's op too.
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np

from seqkern import bench
from seqkern.cli_args import output_file, positive_int

# (T, B, I, H, layers, bidirectional, packed)
CONFIGS = [(5, 4, 16, 16, 1, False, False), (1, 1, 64, 64, 1, False, False),
           (20, 8, 32, 64, 2, True, False), (12, 3, 10, 20, 1, False, True),
           (35, 16, 64, 128, 2, False, False), (8, 2, 8, 8, 3, True, True)]
# cells: (B, I, H); (97, 51, 51) is PyTorch's time_sequence_prediction example
CELL_CONFIGS = [(1, 64, 64), (8, 64, 64), (97, 51, 51), (1, 256, 256), (32, 256, 256)]


def sequence_lengths(T, B, seed=0):
    """Lengths in 1..T, longest first, the first of them T (as pack_padded_sequence wants)."""
    lengths = np.sort(np.random.default_rng(seed).integers(1, T + 1, B))[::-1].copy()
    lengths[0] = T
    return lengths


def timed_rounds(torch, modules, call, train, rounds, calls):
    """Per-round mean seconds a call of each module, the modules taking turns, in reverse order
    every other round (the module that runs second in a pair of small calls runs warmer)."""
    times = [[] for _ in modules]
    for r in range(rounds):
        order = list(zip(modules, times))
        for m, ts in order if r % 2 == 0 else order[::-1]:
            with torch.enable_grad() if train else torch.no_grad():
                t0 = time.perf_counter()
                for _ in range(calls):
                    call(m, train)
                ts.append((time.perf_counter() - t0) / calls)
    return [np.array(ts) for ts in times]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument("--rounds", type=positive_int, default=9)
    ap.add_argument("--calls", type=positive_int, default=30, help="calls back to back in a round")
    ap.add_argument("--json", type=output_file)
    args = ap.parse_args(argv)
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    import seqkern.torch as skt

    torch.set_num_threads(args.threads)
    print(f"# {bench.machine()}, {args.threads} threads; torch {torch.__version__}; float32; "
          f"{args.rounds} alternating rounds of {args.calls} calls")
    print(f"{'module':<9}{'(T,B,I,H)':>16}{'layers':>7}{'bi':>4}{'packed':>7}{'mode':>7}"
          f"{'seqkern us':>12}{'torch us':>10}{'ratio':>8}")
    rows = []

    def measure(theirs, call, **row):
        ours = skt.optimize(copy.deepcopy(theirs))
        for train in (False, True):
            for m in (theirs, ours):  # warm-up
                with torch.enable_grad() if train else torch.no_grad():
                    call(m, train)
            t_th, t_sk = timed_rounds(torch, (theirs, ours), call, train, args.rounds, args.calls)
            row.update(module=type(theirs).__name__, mode="train" if train else "infer",
                       seqkern_us=1e6 * float(np.median(t_sk)),
                       torch_us=1e6 * float(np.median(t_th)), ratio=float(np.median(t_th / t_sk)))
            rows.append(dict(row))
            print(f"{row['module']:<9}{str(row['shape']):>16}{row['layers']:>7}"
                  f"{int(row['bidirectional']):>4}{int(row['packed']):>7}{row['mode']:>7}"
                  f"{row['seqkern_us']:>12.1f}{row['torch_us']:>10.1f}{row['ratio']:>7.2f}x",
                  flush=True)

    for cls in (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN):
        for T, B, I, H, layers, bidirectional, packed in CONFIGS:
            torch.manual_seed(0)
            x = torch.randn(T, B, I, requires_grad=True)
            lengths = torch.as_tensor(sequence_lengths(T, B))

            def call(m, train):
                out, _ = m(pack_padded_sequence(x, lengths) if packed else x)
                if train:
                    (out.data if packed else out).sum().backward()

            measure(cls(I, H, layers, bidirectional=bidirectional), call, shape=(T, B, I, H),
                    layers=layers, bidirectional=bidirectional, packed=packed)
    for cls in (torch.nn.LSTMCell, torch.nn.GRUCell):
        for B, I, H in CELL_CONFIGS:
            torch.manual_seed(0)
            x = torch.randn(B, I, requires_grad=True)
            h = torch.randn(B, H)
            state = (h, torch.randn(B, H)) if cls is torch.nn.LSTMCell else h

            def call(m, train):
                out = m(x, state)
                if train:
                    (out[0] if isinstance(out, tuple) else out).sum().backward()

            measure(cls(I, H), call, shape=(1, B, I, H), layers=1, bidirectional=False,
                    packed=False)
    ratios = [r["ratio"] for r in rows]
    print(f"ratios {min(ratios):.2f}-{max(ratios):.2f}x; under 1: "
          f"{sum(r < 1 for r in ratios)} of {len(ratios)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=bench.machine(), threads=args.threads,
                           torch=torch.__version__, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
