"""seqkern's fused RNN/LSTM/GRU vs torch.nn (CPU) vs the NumPy twin, in one process.

    python benchmarks/rnn.py                    # the standard shapes, every cell, both modes
    python benchmarks/rnn.py --cells lstm --shapes 100,64,512,512 --json out.json
    python benchmarks/rnn.py --layers-only      # multi-layer, bidirectional and packed cases

float32, same thread count for every library. The headline is the steady state: seqkern and
torch take --turns turns each, running --calls calls back to back per turn as a training or
inference loop does, and report the median call after each turn's first ("ms"). Beside it,
"first": the median of each turn's first call, right after the other library's turn.
"infer" is one forward pass; "train" is forward + full backward (input gradient included).
Inference rows also time a seqkern.nn layer in eval mode on the same weights ("eval"), a third
library in the turns: its float32 weights were packed once, at eval(), as a served model holds
them, where the functional call packs them at every call; torch's column is a torch.nn module.
GFLOP/s counts 2*T*B*G*H*(I+H) per forward, three times that per training step. The NumPy twin
is timed only where it finishes in reasonable time (--numpy-max-flops).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import seqkern as sk
from seqkern import bench
from seqkern._info import facts
from seqkern.cli_args import (names_of, non_negative_finite, output_file, positive_int, sizes,
                              steady_calls)

STANDARD_SHAPES = [(100, 64, 256, 256), (50, 1, 256, 256), (200, 32, 128, 128),
                   (50, 8, 256, 256), (100, 64, 512, 512)]
# Whole networks through seqkern.nn vs torch.nn: (T, B, I, H, layers, bidirectional, packed).
# Packed batches have lengths uniform in [T/2, T] (pack_padded_sequence for torch).
LAYER_CASES = [(100, 32, 256, 256, 2, True, False), (100, 32, 256, 256, 2, True, True),
               (100, 64, 256, 256, 1, False, True)]


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


def _ratio(v, width):
    """A right-aligned ratio such as 1.23x, or '-' where there is none."""
    return f"{v:>{width - 1}.2f}x" if v is not None else f"{'-':>{width}}"


def print_setup(threads, calls, turns, out=sys.stdout):
    sk.set_num_threads(threads)
    tv = torch_version(threads)
    machine = bench.machine()
    print(f"# machine: {machine}", file=out)
    print(f"# seqkern {sk.__version__} ({facts()['blas']}), "
          f"torch {tv or 'not installed'}, numpy {np.__version__}; threads={threads}, "
          f"float32, {turns} turns of {calls} calls back to back", file=out)
    return {"machine": machine, "threads": threads, "torch": tv, "seqkern": sk.__version__,
            "calls": calls, "turns": turns}


def run(cells, shapes, numpy_max_flops, calls, turns, out=sys.stdout):
    """Single layers through the functional API: seqkern vs torch.nn vs the NumPy twin; in
    inference also a seqkern.nn layer in eval mode."""
    header = (f"{'cell':<5} {'T':>4} {'B':>4} {'I':>4} {'H':>4}  {'mode':<5} {'seqkern ms':>10} "
              f"{'torch ms':>9} {'ratio':>7} {'first ratio':>11} {'numpy ms':>9} {'GFLOP/s':>8} "
              f"{'torch GF/s':>10} {'eval ms':>8} {'eval ratio':>10}")
    print(header, file=out)
    rows = []
    for cell in cells:
        for (T, B, I, H) in shapes:
            p = bench.make_problem(cell, T, B, I, H)
            for train in (False, True):
                fl = bench.flops(cell, T, B, I, H, train)
                (t_sk, f_sk), th, ev = bench.steady_times(
                    [bench.seqkern_step(cell, p, train), bench.torch_step(cell, p, train),
                     None if train else bench.eval_layer_step(cell, p)], calls, turns)
                t_th, f_th = th or (None, None)
                t_ev = ev and ev[0]
                t_np = (bench.paired_times([bench.reference_step(cell, p, train)],
                                           max(1, turns // 2), min_seconds=0)[0]
                        if fl <= numpy_max_flops else None)
                row = dict(cell=cell, T=T, B=B, I=I, H=H, mode="train" if train else "infer",
                           seqkern_ms=t_sk * 1e3, torch_ms=t_th and t_th * 1e3,
                           seqkern_first_ms=f_sk * 1e3, torch_first_ms=f_th and f_th * 1e3,
                           numpy_ms=t_np and t_np * 1e3, gflops=fl / t_sk / 1e9,
                           torch_gflops=t_th and fl / t_th / 1e9,
                           ratio=t_th and t_th / t_sk, first_ratio=f_th and f_th / f_sk,
                           eval_ms=t_ev and t_ev * 1e3, eval_ratio=t_th and t_ev and t_th / t_ev)
                rows.append(row)
                print(f"{cell:<5} {T:>4} {B:>4} {I:>4} {H:>4}  {row['mode']:<5} {t_sk * 1e3:>10.2f} "
                      f"{_num(row['torch_ms'], 9, 2)} {_ratio(row['ratio'], 7)} "
                      f"{_ratio(row['first_ratio'], 11)} "
                      f"{_num(row['numpy_ms'], 9, 2)} {row['gflops']:>8.1f} "
                      f"{_num(row['torch_gflops'], 10, 1)} {_num(row['eval_ms'], 8, 2)} "
                      f"{_ratio(row['eval_ratio'], 10)}", file=out, flush=True)
    return rows


def run_layers(cells, cases, calls, turns, out=sys.stdout):
    """Multi-layer / bidirectional / packed networks: seqkern.nn vs torch.nn."""
    print(f"{'cell':<5} {'T':>4} {'B':>4} {'I':>4} {'H':>4} {'L':>2} {'dir':>3} {'packed':>6}  "
          f"{'mode':<5} {'seqkern ms':>10} {'torch ms':>9} {'ratio':>7} {'first ratio':>11} "
          f"{'GFLOP/s':>8}", file=out)
    rows = []
    for cell in cells:
        cell_name = "rnn_tanh" if cell == "rnn" else cell
        for (T, B, I, H, L, bi, packed) in cases:
            lengths = bench.random_lengths(T, B) if packed else None
            steps = int(lengths.sum()) if packed else None
            for train in (False, True):
                ours, theirs = bench.layer_steps(cell_name, T, B, I, H, L, bi, lengths, train)
                fl = bench.stack_flops(cell_name, T, B, I, H, L, bi, train, steps)
                (t_sk, f_sk), th = bench.steady_times([ours, theirs], calls, turns)
                t_th, f_th = th or (None, None)
                row = dict(cell=cell, T=T, B=B, I=I, H=H, layers=L, bidirectional=bi,
                           packed=packed, mode="train" if train else "infer",
                           seqkern_ms=t_sk * 1e3, torch_ms=t_th and t_th * 1e3,
                           ratio=t_th and t_th / t_sk, first_ratio=f_th and f_th / f_sk,
                           gflops=fl / t_sk / 1e9)
                rows.append(row)
                print(f"{cell:<5} {T:>4} {B:>4} {I:>4} {H:>4} {L:>2} {2 if bi else 1:>3} "
                      f"{'yes' if packed else 'no':>6}  {row['mode']:<5} {t_sk * 1e3:>10.2f} "
                      f"{_num(row['torch_ms'], 9, 2)} {_ratio(row['ratio'], 7)} "
                      f"{_ratio(row['first_ratio'], 11)} {row['gflops']:>8.1f}", file=out, flush=True)
    return rows


def run_efficiency(repeat, T=100, B=64, I=512, H=512, out=sys.stdout):
    """The LSTM training step against the GEMM roofline, and what each library keeps for
    backward. The roofline is one SGEMM of the step's gate shape, (T*B, 4H, I), through
    seqkern's own BLAS and thread pool. Kept bytes: seqkern's saved arrays (gates, cell states,
    outputs) against torch's tensors saved for backward (parameters and the input excluded)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((T * B, I), dtype=np.float32)
    b = rng.standard_normal((4 * H, I), dtype=np.float32)
    c = np.empty((T * B, 4 * H), np.float32)
    p = bench.make_problem("lstm", T, B, I, H)
    # in turns, so that the ratio to the roofline holds when the machine's speed drifts
    t_gemm, t_step, t_torch = bench.paired_times(
        [lambda: sk._core.gemm(False, True, 1.0, a, b, 0.0, c), bench.seqkern_step("lstm", p, True),
         bench.torch_step("lstm", p, True)], repeat)
    gemm_gflops = 2 * T * B * 4 * H * I / t_gemm / 1e9
    step_gflops = bench.flops("lstm", T, B, I, H, True) / t_step / 1e9
    ours, theirs = bench.kept_for_backward("lstm", p)
    bound = T * B * (4 + 2) * H * 4
    print(f"roofline: SGEMM ({T * B}x{4 * H}x{I}) {gemm_gflops:.1f} GFLOP/s; LSTM {(T, B, I, H)} "
          f"training step {step_gflops:.1f} GFLOP/s = {step_gflops / gemm_gflops:.0%} of it"
          + (f" (torch: {bench.flops('lstm', T, B, I, H, True) / t_torch / 1e9:.1f})" if t_torch else ""),
          file=out)
    print(f"kept for backward: seqkern {ours / 2**20:.1f} MiB, torch "
          + (f"{theirs / 2**20:.1f} MiB" if theirs is not None else "-")
          + f" (T*B*(G+2)*H floats = {bound / 2**20:.1f} MiB)", file=out, flush=True)
    return dict(gemm_gflops=gemm_gflops, step_gflops=step_gflops,
                efficiency=step_gflops / gemm_gflops, torch_gflops=t_torch and
                bench.flops("lstm", T, B, I, H, True) / t_torch / 1e9,
                seqkern_kept_bytes=ours, torch_kept_bytes=theirs, bound_bytes=bound)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=names_of(("lstm", "gru", "rnn")), default="lstm,gru,rnn")
    ap.add_argument("--shapes", nargs="*", type=sizes("T,B,I,H"),
                    help="T,B,I,H each (default: the standard set)")
    ap.add_argument("--threads", type=positive_int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--calls", type=steady_calls, default=15, help="calls back to back per turn")
    ap.add_argument("--turns", type=positive_int, default=4, help="turns of each library")
    ap.add_argument("--repeat", type=positive_int, default=7,
                    help="rounds of the roofline measurement")
    ap.add_argument("--roofline-shape", type=sizes("T,B,I,H"), default=(100, 64, 512, 512),
                    help="the LSTM of the roofline measurement (default: 100,64,512,512)")
    ap.add_argument("--numpy-max-flops", type=non_negative_finite, default=2e9)
    ap.add_argument("--json", type=output_file, help="also write the table here")
    ap.add_argument("--no-layers", action="store_true", help="skip the multi-layer cases")
    ap.add_argument("--layers-only", action="store_true", help="only the multi-layer cases")
    args = ap.parse_args(argv)
    shapes = args.shapes or STANDARD_SHAPES
    cells = args.cells
    result = print_setup(args.threads, args.calls, args.turns)
    if not args.layers_only:
        result["rows"] = run(cells, shapes, args.numpy_max_flops, args.calls, args.turns)
    if not args.no_layers:
        result["layer_rows"] = run_layers(cells, LAYER_CASES, args.calls, args.turns)
    if not args.layers_only and "lstm" in cells:
        result["efficiency"] = run_efficiency(args.repeat, *args.roofline_shape)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
