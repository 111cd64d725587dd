"""seqkern's CUDA kernels against cuDNN through torch.nn, one layer, float32, on one GPU.

Steady state: each implementation runs `--calls` calls back to back, timed with CUDA events;
the implementations alternate in blocks, `--blocks` times, and the table gives each one's median
time per call. Training is a forward that keeps what backward needs plus the backward with every
gradient (input, state, weights, biases), as torch's autograd computes them.

torch's cuDNN runs its products in TF32 unless told not to (torch.backends.cudnn.allow_tf32, True
by default); seqkern's products are plain float32. The "cudnn fp32" column is cuDNN with TF32 off,
the like-for-like peer; "cudnn" is the default a user gets.

    python benchmarks/cuda_rnn.py [--json FILE] [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch

import seqkern as sk
from seqkern.bench import flops
from seqkern.cli_args import output_file, positive_int

SHAPES = [  # (cell, T, B, I, H)
    ("lstm", 100, 64, 256, 256), ("lstm", 100, 64, 512, 512), ("lstm", 200, 32, 128, 128),
    ("lstm", 50, 8, 256, 256), ("lstm", 50, 1, 256, 256), ("lstm", 100, 256, 1024, 1024),
    ("gru", 100, 64, 256, 256), ("gru", 50, 1, 256, 256),
    ("rnn", 100, 64, 256, 256), ("rnn", 50, 1, 256, 256),
]
MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
FUNCTIONS = {"lstm": (sk.lstm, sk.lstm_backward), "gru": (sk.gru, sk.gru_backward),
             "rnn": (sk.rnn, sk.rnn_backward)}


def problem(cell, T, B, I, H):
    g = torch.Generator(device="cuda").manual_seed(0)
    module = MODULES[cell](I, H).cuda()
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
    p = {"x": r(T, B, I), "h0": r(B, H), "c0": r(B, H), "dy": r(T, B, H), "dh_n": r(B, H),
         "dc_n": r(B, H)}
    return module, p


def torch_step(cell, module, p, train):
    state = (p["h0"][None], p["c0"][None]) if cell == "lstm" else p["h0"][None]
    if not train:
        def infer():
            with torch.no_grad():
                module(p["x"], state)
        return infer
    x = p["x"].clone().requires_grad_()

    def step():
        module.zero_grad(set_to_none=True)
        y, s = module(x, state)
        outs = [y, *s] if cell == "lstm" else [y, s]
        grads = [p["dy"], p["dh_n"][None], p["dc_n"][None]][:len(outs)]
        torch.autograd.backward(outs, grads)
    return step


def seqkern_step(cell, module, p, train):
    fn, bwd = FUNCTIONS[cell]
    w = [getattr(module, n).detach() for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                                 "bias_hh_l0")]
    state = (p["h0"], p["c0"]) if cell == "lstm" else (p["h0"],)
    incoming = (p["dy"], p["dh_n"], p["dc_n"]) if cell == "lstm" else (p["dy"], p["dh_n"])
    if not train:
        return lambda: fn(p["x"], *state, *w)

    def step():
        *_, saved = fn(p["x"], *state, *w, training=True)
        bwd(saved, *incoming)
    return step


def block_ms(step, calls):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        step()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / calls


def measure(steps, calls, blocks):
    """Median ms per call of each step, the steps alternating in blocks of `calls` calls."""
    for step in steps.values():  # warm-up: cuDNN's plans, the allocators' pools
        block_ms(step, 3)
    times = {name: [] for name in steps}
    for _ in range(blocks):
        for name, step in steps.items():
            times[name].append(block_ms(step, calls))
    return {name: statistics.median(t) for name, t in times.items()}


def with_tf32(allowed, step):
    def run():
        torch.backends.cudnn.allow_tf32 = allowed
        step()
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=output_file, help="write the rows here")
    ap.add_argument("--calls", type=positive_int, default=10)
    ap.add_argument("--blocks", type=positive_int, default=5)
    ap.add_argument("--quick", action="store_true", help="the first three shapes only")
    args = ap.parse_args()
    gpu = torch.cuda.get_device_name()
    print(f"# {gpu}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
          f"seqkern {sk.__version__}")
    print(f"{'cell':5} {'T':>4} {'B':>4} {'I':>5} {'H':>5} {'mode':6} {'seqkern ms':>10} "
          f"{'cudnn ms':>9} {'ratio':>7} {'cudnn fp32 ms':>13} {'ratio':>7} {'GFLOP/s':>8}")
    rows = []
    for cell, T, B, I, H in SHAPES[:3] if args.quick else SHAPES:
        module, p = problem(cell, T, B, I, H)
        for mode in ("infer", "train"):
            train = mode == "train"
            ours = seqkern_step(cell, module, p, train)
            theirs = torch_step(cell, module, p, train)
            t = measure({"seqkern": ours, "cudnn": with_tf32(True, theirs),
                         "cudnn_fp32": with_tf32(False, theirs)}, args.calls, args.blocks)
            torch.backends.cudnn.allow_tf32 = True
            rate = flops(cell, T, B, I, H, train) / t["seqkern"] / 1e6
            row = {"cell": cell, "T": T, "B": B, "I": I, "H": H, "mode": mode,
                   "seqkern_ms": t["seqkern"], "cudnn_ms": t["cudnn"],
                   "cudnn_fp32_ms": t["cudnn_fp32"], "gflops": rate}
            rows.append(row)
            print(f"{cell:5} {T:4} {B:4} {I:5} {H:5} {mode:6} {t['seqkern']:10.3f} "
                  f"{t['cudnn']:9.3f} {t['cudnn'] / t['seqkern']:6.2f}x {t['cudnn_fp32']:13.3f} "
                  f"{t['cudnn_fp32'] / t['seqkern']:6.2f}x {rate:8.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": gpu, "torch": torch.__version__,
                       "cudnn": torch.backends.cudnn.version(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
