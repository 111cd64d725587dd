"""seqkern's fused RNN/LSTM/GRU vs torch.nn (CPU) vs the NumPy twin, in one process.

    python benchmarks/rnn.py                    # the standard shapes, every cell, both modes
    python benchmarks/rnn.py --cells lstm --shapes 100,64,512,512 --json out.json

float32, same thread count for every library, median of --repeat runs (after a warm-up).
"infer" is one forward pass; "train" is forward + full backward (input gradient included).
GFLOP/s counts 2*T*B*G*H*(I+H) per forward, three times that per training step. The NumPy twin
is timed only where it finishes in reasonable time (--numpy-max-flops).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import numpy as np

import seqkern as sk
from seqkern import bench
from seqkern._info import facts

STANDARD_SHAPES = [(100, 64, 256, 256), (50, 1, 256, 256), (200, 32, 128, 128),
                   (50, 8, 256, 256), (100, 64, 512, 512)]


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {facts()['simd']}"


def torch_version(threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch.__version__


def _num(v, width, decimals):
    """A right-aligned number, or '-' where there is none."""
    return f"{v:>{width}.{decimals}f}" if v is not None else f"{'-':>{width}}"


def run(cells, shapes, threads, repeat, numpy_max_flops, out=sys.stdout):
    sk.set_num_threads(threads)
    tv = torch_version(threads)
    print(f"# machine: {machine()}", file=out)
    print(f"# seqkern {sk.__version__} ({facts()['blas']}), "
          f"torch {tv or 'not installed'}, numpy {np.__version__}; threads={threads}, "
          f"float32, median of {repeat}", file=out)
    header = (f"{'cell':<5} {'T':>4} {'B':>4} {'I':>4} {'H':>4}  {'mode':<5} {'seqkern ms':>10} "
              f"{'torch ms':>9} {'ratio':>7} {'numpy ms':>9} {'GFLOP/s':>8} {'torch GF/s':>10}")
    print(header, file=out)
    rows = []
    for cell in cells:
        for (T, B, I, H) in shapes:
            p = bench.make_problem(cell, T, B, I, H)
            for train in (False, True):
                fl = bench.flops(cell, T, B, I, H, train)
                t_sk = bench.median_time(bench.seqkern_step(cell, p, train), repeat)
                step = bench.torch_step(cell, p, train)
                t_th = bench.median_time(step, repeat) if step else None
                t_np = (bench.median_time(bench.reference_step(cell, p, train), max(1, repeat // 3))
                        if fl <= numpy_max_flops else None)
                row = dict(cell=cell, T=T, B=B, I=I, H=H, mode="train" if train else "infer",
                           seqkern_ms=t_sk * 1e3, torch_ms=t_th and t_th * 1e3,
                           numpy_ms=t_np and t_np * 1e3, gflops=fl / t_sk / 1e9,
                           torch_gflops=t_th and fl / t_th / 1e9,
                           ratio=t_th and t_th / t_sk)
                rows.append(row)
                print(f"{cell:<5} {T:>4} {B:>4} {I:>4} {H:>4}  {row['mode']:<5} {t_sk * 1e3:>10.2f} "
                      f"{_num(row['torch_ms'], 9, 2)} {_num(row['ratio'], 6, 2)}x "
                      f"{_num(row['numpy_ms'], 9, 2)} {row['gflops']:>8.1f} "
                      f"{_num(row['torch_gflops'], 10, 1)}", file=out, flush=True)
    return {"machine": machine(), "threads": threads, "torch": tv, "seqkern": sk.__version__,
            "repeat": repeat, "rows": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--shapes", nargs="*", help="T,B,I,H each (default: the standard set)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--numpy-max-flops", type=float, default=2e9)
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args(argv)
    shapes = ([tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes
              else STANDARD_SHAPES)
    result = run(args.cells.split(","), shapes, args.threads, args.repeat, args.numpy_max_flops)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
