"""seqkern's packed recurrent-step micro-kernels against OpenBLAS on one core, one product at a
time: C (M, N) += A (M, K) @ W^T with W packed once (seqkern) or packed inside every call
(OpenBLAS, as a per-step BLAS call would), for the row counts a recurrent step sees.

    python benchmarks/packed_gemm.py                 # the standard shapes
    python benchmarks/packed_gemm.py --shapes 32,256,1024 8,512,2048

Compiles benchmarks/packed_gemm.cc with csrc/cpu/packed_gemm_avx2.cc and packed_gemm_avx512.cc
(needs g++ and an AVX2/FMA CPU) and times each SIMD level the machine has. Kernel changes are
5-10% effects, below what end-to-end timings on a shared machine resolve; this measures the
kernel alone, best of 7 rounds.

A product of a few rows reads each value of W for a few FMAs, and is bound by how fast the core
reads W: beside the best kernel's rate through W (W GB/s) stands a plain read of the same packed
bytes (read GB/s). At AVX-512, products of up to 3 rows also run as a team member's do, on
panels grouped 8 by 8 into one stream (grouped: GFLOP/s). A batch-1 LSTM step on 2 threads is
M = 1, K = H, N = 2H there: each member's half of w_hh.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import seqkern as sk
from seqkern import bench
from seqkern.cli_args import output_file, sizes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = [(1, 256, 512), (2, 256, 512), (3, 256, 512), (1, 256, 1024), (4, 256, 1024),
          (8, 256, 1024), (14, 256, 1024), (24, 256, 1024), (32, 256, 1024), (48, 256, 1024),
          (32, 512, 2048)]


PANEL = 16  # columns of a packed panel (kPanelColumns)
AVX512_FLAGS = ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl"]


def build(out_dir):
    exe = os.path.join(out_dir, "packed_gemm")
    cpu = os.path.join(ROOT, "csrc", "cpu")
    objects = []
    for src, extra in (("benchmarks/packed_gemm.cc", []), ("csrc/cpu/packed_gemm_avx2.cc", []),
                       ("csrc/cpu/packed_gemm_avx512.cc", AVX512_FLAGS)):
        objects.append(os.path.join(out_dir, os.path.basename(src) + ".o"))
        subprocess.run(["g++", "-O3", "-mavx2", "-mfma", *extra, "-std=c++17", "-c",
                        "-I", os.path.join(ROOT, "csrc", "include"), "-I", cpu,
                        os.path.join(ROOT, src), "-o", objects[-1]], check=True)
    subprocess.run(["g++", *objects, "-o", exe], check=True)
    return exe


def reps_for(M, K, N):
    return max(3, int(2e8 / (2 * M * K * N)))  # about 0.2 GFLOP per round


def seqkern_seconds(exe, M, K, N, level):
    """The kernel's best time, that of a plain read of its packed W, and that of the grouped
    kernel (None where not timed)."""
    out = subprocess.run([exe, str(M), str(K), str(N), str(reps_for(M, K, N)), level], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[3]), float(out[5]), float(out[6]) or None


def openblas_seconds(M, K, N):
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (M, K)).astype(np.float32)
    w = rng.uniform(-1, 1, (N, K)).astype(np.float32)
    c = np.zeros((M, N), np.float32)
    reps, best = reps_for(M, K, N), float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            sk._core.gemm(False, True, 1.0, a, w, 0.0, c)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="*", type=sizes("M,K,N"),
                    help="M,K,N each (default: the standard set)")
    ap.add_argument("--json", type=output_file, help="also write the table here")
    args = ap.parse_args(argv)
    shapes = args.shapes or SHAPES
    sk.set_num_threads(1)
    levels = [v for v in ("avx2", "avx512") if v in sk._core.simd_levels().split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        print(f"# GFLOP/s on one core: seqkern's kernels at each SIMD level, OpenBLAS "
              f"({sk._core.blas_name().strip()}); ratio: OpenBLAS time / seqkern's best; "
              f"W GB/s: packed W over seqkern's best time; read GB/s: a plain read of it")
        print(f"{'M':>4} {'K':>5} {'N':>5}  " + " ".join(f"{v:>7}" for v in levels)
              + f" {'grouped':>7} {'OpenBLAS':>8} {'ratio':>6} {'W GB/s':>7} {'read GB/s':>9}")
        rows = []
        for M, K, N in shapes:
            flop = 2 * M * K * N
            w_bytes = 4 * K * -(-N // PANEL) * PANEL  # packed: whole panels
            timed = [seqkern_seconds(exe, M, K, N, v) for v in levels]
            ours = [t for t, _, _ in timed]
            read = min(r for _, r, _ in timed)
            grouped = timed[-1][2]
            best = min(ours + [grouped] if grouped else ours)
            theirs = openblas_seconds(M, K, N)
            rows.append(dict(M=M, K=K, N=N, openblas_gflops=flop / theirs / 1e9,
                             **{f"{v}_gflops": flop / t / 1e9 for v, t in zip(levels, ours)},
                             grouped_gflops=grouped and flop / grouped / 1e9,
                             ratio=theirs / best, w_gbps=w_bytes / best / 1e9,
                             read_gbps=w_bytes / read / 1e9))
            print(f"{M:>4} {K:>5} {N:>5}  " + " ".join(f"{flop / t / 1e9:>7.1f}" for t in ours)
                  + (f" {flop / grouped / 1e9:>7.1f}" if grouped else f" {'-':>7}")
                  + f" {flop / theirs / 1e9:>8.1f} {theirs / best:>5.2f}x"
                  + f" {w_bytes / best / 1e9:>7.1f} {w_bytes / read / 1e9:>9.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": bench.machine(), "blas": sk._core.blas_name().strip(),
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
