"""sk.ctc_loss forward+backward against torch's CPU ctc_loss, steady state.

    python benchmarks/ctc.py [--json out.json]

(T, B, C, S) = (50, 16, 20, 10), (200, 32, 29, 50) (character speech recognition) and
(1000, 8, 100, 200); float32 log-softmax outputs, targets of S labels, full input lengths.
Medians of calls back to back in turns (seqkern.bench.paired_times).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import seqkern as sk
from seqkern import bench
from seqkern.cli_args import output_file, positive_int

SIZES = [(50, 16, 20, 10), (200, 32, 29, 50), (1000, 8, 100, 200)]


def inputs(T, B, C, S, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, C)).astype(np.float32)
    lp = x - np.log(np.exp(x).sum(axis=2, keepdims=True))
    targets = rng.integers(1, C, (B, S))
    return lp.astype(np.float32), targets, np.full(B, T), np.full(B, S)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=positive_int, default=sk.get_num_threads())
    ap.add_argument("--repeat", type=positive_int, default=7)
    ap.add_argument("--json", type=output_file)
    args = ap.parse_args(argv)
    import torch

    sk.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"# {bench.machine()}, {args.threads} threads; torch {torch.__version__}; float32 "
          f"ctc_loss forward+backward, medians of calls back to back")
    print(f"{'(T, B, C, S)':<22}{'seqkern ms':>11}{'torch ms':>10}{'ratio':>8}")
    rows = []
    for size in SIZES:
        lp, targets, il, tl = inputs(*size)

        def ours():
            _, saved = sk.ctc_loss(lp, targets, il, tl, training=True)
            return sk.ctc_loss_backward(saved)

        t_lp = torch.from_numpy(lp).requires_grad_()
        t_args = [torch.from_numpy(a) for a in (targets, il, tl)]

        def theirs():
            t_lp.grad = None
            torch.nn.functional.ctc_loss(t_lp, *t_args).backward()

        t_sk, t_th = bench.paired_times([ours, theirs], args.repeat)
        rows.append(dict(size=size, seqkern_ms=1e3 * t_sk, torch_ms=1e3 * t_th, ratio=t_th / t_sk))
        print(f"{str(size):<22}{1e3 * t_sk:>11.3f}{1e3 * t_th:>10.3f}{t_th / t_sk:>7.2f}x",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=bench.machine(), threads=args.threads, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
