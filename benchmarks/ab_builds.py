"""Two builds of seqkern, paired: each runs in its own child process, and the parent calls them in
turns (order alternating, a pause between calls), so that a shared machine's drift hits both
alike. Prints, per case, each build's median time and the median of the per-round ratios (A's
time / B's; above 1: B is faster) with its interquartile range. Two processes of one build read
0.99-1.02 this way on our 2-core machines, where medians of separate runs move by up to 1.4x; on
a noisy day (Zen 5, 2026-12-02) 0.93-1.01, so run both orders, more than once, before trusting
a few percent. --calls N times N calls back to back (the steady state) instead of one. Modes:
infer, train, backward (the backward call alone), eval and bf16 (a seqkern.nn layer in eval mode,
float32 or bfloat16). Cells: lstm, gru, rnn, and the variants gru_before (reset before, Cho et
al.'s) and rnn_relu. --dtype float64 runs the functional modes on float64 arrays.

A build is a directory that `pip install --no-deps --no-build-isolation --target DIR .` filled.
The children drop an editable install's import hook first: it would otherwise win over the
directory on sys.path, and both children would import the editable build.

    python benchmarks/ab_builds.py /tmp/v/old /tmp/v/new --cells lstm --modes train \\
        --shapes 29,128,16,256 10,128,16,256
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

MODES = ("infer", "train", "backward", "eval", "bf16")
# a variant's cell and the keyword it passes to the functional op and to the layer alike
VARIANTS = {"gru_before": ("gru", {"reset_after": False}),
            "rnn_relu": ("rnn", {"nonlinearity": "relu"})}


def layer_step(bench, cell, p, precision, variant):
    """Inference through the seqkern.nn layer of `cell` holding problem p's weights, in
    eval(precision=precision), as a user's model holds them (a build that packs at eval packs
    them once)."""
    from seqkern import nn
    T, B, I = p["x"].shape
    layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](I, p["w_hh"].shape[1],
                                                                 **variant)
    layer.load_state_dict(bench.layer_state(p))
    layer.eval(precision=precision)
    return lambda: layer(p["x"])


def child(args):
    """Runs in a build's process: one line in per call (the case's index), one line out (seconds)."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
    import seqkern as sk
    from seqkern import bench

    assert os.path.realpath(sk.__file__).startswith(os.path.realpath(args.build)), sk.__file__
    steps = []
    for name in args.cells.split(","):
        cell, variant = VARIANTS.get(name, (name, {}))
        for shape in args.shapes:
            p = dict(bench.make_problem(cell, *map(int, shape.split(","))), **variant)
            p = {k: v.astype(args.dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                 else v for k, v in p.items()}
            for mode in args.modes.split(","):
                if mode in ("eval", "bf16"):  # a seqkern.nn layer in eval mode
                    steps.append(layer_step(bench, cell, p,
                                            "bfloat16" if mode == "bf16" else "float32", variant))
                elif mode == "backward":  # the backward call alone, on one saved forward
                    *outs, saved = getattr(sk, cell)(**p, training=True)
                    grads = bench.output_grads(cell, p)
                    steps.append(lambda s=saved, g=grads, c=cell: getattr(sk, c + "_backward")(s, *g))
                else:
                    steps.append(bench.seqkern_step(cell, p, mode == "train"))
    for line in sys.stdin:
        step = steps[int(line)]
        step()  # the call before is another build's: warm this one's caches first
        t = time.perf_counter()
        for _ in range(args.calls):
            step()
        print((time.perf_counter() - t) / args.calls, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("builds", nargs="*", help="two directories, each holding a build")
    ap.add_argument("--cells", default="lstm")
    ap.add_argument("--modes", default="train", help=f"comma-separated, of {MODES}")
    ap.add_argument("--shapes", nargs="+", default=["29,128,16,256"], help="T,B,I,H each")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--calls", type=int, default=1,
                    help="calls back to back per turn (the steady state); the mean is timed")
    ap.add_argument("--json", help="also write the table here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--build", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if len(args.builds) != 2:
        ap.error("give two build directories")
    if any(m not in MODES for m in args.modes.split(",")):
        ap.error(f"--modes: each of {MODES}")
    cases = [f"{c} {m} {s}" for c in args.cells.split(",") for s in args.shapes for m in args.modes.split(",")]
    procs = []
    for build in args.builds:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "1", "--build", build, "--cells", args.cells,
               "--modes", args.modes, "--calls", str(args.calls), "--dtype", args.dtype, "--shapes", *args.shapes]
        env = dict(os.environ, PYTHONPATH=os.path.abspath(build))
        procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                      cwd=os.path.dirname(os.path.abspath(build))))
    times = np.zeros((len(cases), 2, args.rounds))
    try:
        for r in range(args.rounds):
            for i in range(len(cases)):
                for k in (0, 1) if r % 2 == 0 else (1, 0):
                    procs[k].stdin.write(f"{i}\n")
                    procs[k].stdin.flush()
                    times[i, k, r] = float(procs[k].stdout.readline())
                    time.sleep(0.003)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()
    names = [os.path.basename(os.path.normpath(b)) for b in args.builds]
    width = max(map(len, cases))
    print(f"{'case':{width}s}  {names[0]:>10s} {names[1]:>10s}  (ms, medians)  {names[0]}/{names[1]} paired (IQR)")
    rows = []
    for i, case in enumerate(cases):
        a, b = times[i]
        q = np.percentile(a / b, [25, 50, 75])
        print(f"{case:{width}s}  {np.median(a) * 1e3:10.2f} {np.median(b) * 1e3:10.2f}  "
              f"{q[1]:.3f} ({q[0]:.3f}-{q[2]:.3f})")
        rows.append({"case": case, "ms": [np.median(a) * 1e3, np.median(b) * 1e3], "ratio": q.tolist()})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"builds": args.builds, "rounds": args.rounds, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
