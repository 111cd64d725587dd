"""bfloat16 inference: seqkern.nn layers in eval(precision="bfloat16") against the same layer in
float32, torch.nn in float32, and torch.nn under torch.autocast("cpu", dtype=torch.bfloat16), in
one process.

    python benchmarks/bf16.py [--shapes T,B,I,H ...] [--cells lstm,gru] [--json out.json]
    python benchmarks/bf16.py --cells linear --shapes 1,1,650,10000   # a language model's logits

Every library runs the same weights (torch's initialization) on the same input, inference only.
Times are the steady state of seqkern.bench.steady_times: calls back to back in turns, the four
steps taking turns. The error columns are the largest difference from torch's float32 output.
On a CPU without AVX-512, oneDNN has no bfloat16 LSTM and torch raises under autocast: that
column then reads n/a. `linear`: nn.Linear(I, H) over x (T, B, I), H its outputs.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import seqkern as sk
from seqkern import bench, nn
from seqkern.cli_args import names_of, output_file, positive_int, sizes, steady_calls

SHAPES = [(50, 1, 256, 256), (50, 8, 256, 256), (100, 64, 256, 256), (100, 64, 512, 512)]
LAYERS = {"lstm": (nn.LSTM, torch.nn.LSTM), "gru": (nn.GRU, torch.nn.GRU),
          "linear": (nn.Linear, torch.nn.Linear)}


def output(y):
    """A layer's output: the recurrent layers' first item, a Linear's whole result."""
    return y[0] if isinstance(y, tuple) else y


def steps(cell, T, B, I, H):
    """(seqkern float32, seqkern bfloat16, torch float32, torch autocast or None) steps and the
    errors."""
    ours, theirs = LAYERS[cell]
    ref = theirs(I, H).eval()
    f32 = ours(I, H)
    f32.load_state_dict({k: v.detach() for k, v in ref.state_dict().items()})
    b16 = ours(I, H)
    b16.load_state_dict({k: v.detach() for k, v in ref.state_dict().items()})
    f32.eval()
    b16.eval(precision="bfloat16")
    x = torch.randn(T, B, I)
    xs = x.numpy()

    def torch_f32():
        with torch.no_grad():
            return output(ref(x))

    def torch_bf16():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return output(ref(x))

    want = torch_f32().numpy()
    errors = {"seqkern bf16": float(np.abs(output(b16(xs)) - want).max()),
              "torch autocast": None}
    try:
        errors["torch autocast"] = float(np.abs(torch_bf16().float().numpy() - want).max())
    except RuntimeError:
        torch_bf16 = None
    return [lambda: f32(xs), lambda: b16(xs), torch_f32, torch_bf16], errors


def cell_text(value, fmt, width, suffix=""):
    """value formatted with its suffix, or n/a for None, right-aligned in width."""
    return ("n/a" if value is None else format(value, fmt) + suffix).rjust(width)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="*", type=sizes("T,B,I,H"),
                        help="T,B,I,H each (default: the standard set)")
    parser.add_argument("--cells", type=names_of(tuple(LAYERS)), default="lstm,gru")
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument("--calls", type=steady_calls, default=15)
    parser.add_argument("--turns", type=positive_int, default=6)
    parser.add_argument("--json", type=output_file)
    args = parser.parse_args()
    threads = args.threads or sk.get_num_threads()
    sk.set_num_threads(threads)
    torch.set_num_threads(threads)
    shapes = args.shapes or SHAPES
    print(f"# machine: {bench.machine()}; bf16 dot products: {sk._core.bf16_native()}")
    print(f"# seqkern {sk.__version__}, torch {torch.__version__}; threads={threads}, "
          f"{args.turns} turns of {args.calls} calls back to back")
    print(f"{'cell':5} {'T':>4} {'B':>4} {'I':>4} {'H':>4}  {'sk f32':>8} {'sk bf16':>8} "
          f"{'torch':>8} {'autocast':>8}  {'vs torch':>8} {'vs autoc':>8} {'vs sk32':>8}  "
          f"{'err sk':>8} {'err autoc':>9}")
    rows = []
    for cell in args.cells:
        for T, B, I, H in shapes:
            fns, errors = steps(cell, T, B, I, H)
            sk32, sk16, th32, th16 = (r and r[0] * 1e3
                                      for r in bench.steady_times(fns, args.calls, args.turns))
            vs_autocast = th16 / sk16 if th16 else None
            row = {"cell": cell, "T": T, "B": B, "I": I, "H": H, "seqkern_f32_ms": sk32,
                   "seqkern_bf16_ms": sk16, "torch_f32_ms": th32, "torch_autocast_ms": th16,
                   "bf16_vs_torch_f32": th32 / sk16, "bf16_vs_torch_autocast": vs_autocast,
                   "bf16_vs_seqkern_f32": sk32 / sk16,
                   "max_error_seqkern_bf16": errors["seqkern bf16"],
                   "max_error_torch_autocast": errors["torch autocast"]}
            rows.append(row)
            print(f"{cell:5} {T:4} {B:4} {I:4} {H:4}  {sk32:8.3f} {sk16:8.3f} {th32:8.3f} "
                  f"{cell_text(th16, '.3f', 8)}  {th32 / sk16:7.2f}x "
                  f"{cell_text(vs_autocast, '.2f', 8, 'x')} {sk32 / sk16:7.2f}x  "
                  f"{errors['seqkern bf16']:8.1e} {cell_text(errors['torch autocast'], '.1e', 9)}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": bench.machine(), "bf16_native": sk._core.bf16_native(),
                       "torch": torch.__version__, "threads": threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
