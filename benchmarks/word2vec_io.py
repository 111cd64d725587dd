"""Writing and reading word2vec.c vector files: seqkern's KeyedVectors against gensim's, in one
process, text and binary.

    python benchmarks/word2vec_io.py                       # 46,618 x 100 and 300,000 x 300
    python benchmarks/word2vec_io.py --shapes 1000000,300 --json out.json

The vectors are random normal values scaled as trained ones (about 0.3), the keys made-up words
of 3 to 14 letters. Each library writes and reads the same data in turns (--rounds of each,
alternating), the file going to a temporary folder; the table gives the medians and gensim's
time over seqkern's. Reading is checked to give back what was written.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import seqkern as sk
from seqkern import bench
from seqkern.cli_args import output_file, positive_int, sizes
from seqkern.models import KeyedVectors

SHAPES = [(46618, 100), (300000, 300)]


def make_vectors(V, dim, seed=0):
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    lengths = rng.integers(3, 15, V)
    chars = letters[rng.integers(0, 26, int(lengths.sum()))].tobytes().decode()
    ends = np.cumsum(lengths)
    keys = [f"{chars[e - n:e]}{i}" for i, (e, n) in enumerate(zip(ends, lengths))]
    return keys, (rng.standard_normal((V, dim)) * 0.3).astype(np.float32)


def library_ops(name, keys, vectors, path, binary):
    """(write, read) callables of one library; read returns (keys, vectors)."""
    if name == "seqkern":
        kv = KeyedVectors(vectors.shape[1])
        kv.add_vectors(keys, vectors)

        def read():
            back = KeyedVectors.load_word2vec_format(path, binary=binary)
            return back.index_to_key, back.vectors
    else:
        import gensim

        kv = gensim.models.KeyedVectors(vectors.shape[1])
        kv.add_vectors(keys, vectors)

        def read():
            back = gensim.models.KeyedVectors.load_word2vec_format(path, binary=binary)
            return back.index_to_key, back.vectors
    return (lambda: kv.save_word2vec_format(path, binary=binary)), read


def run(shapes, rounds, out=sys.stdout):
    try:
        import gensim
        peers = ["seqkern", "gensim"]
        print(f"# gensim {gensim.__version__}", file=out)
    except ImportError:
        peers = ["seqkern"]
        print("# gensim not installed: seqkern alone", file=out)
    print(f"{'V':>8} {'dim':>4} {'format':<6} {'op':<5} {'seqkern s':>10} {'gensim s':>9} "
          f"{'ratio':>7}", file=out)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for V, dim in shapes:
            keys, vectors = make_vectors(V, dim)
            for binary in (False, True):
                fmt = "binary" if binary else "text"
                ops = {p: library_ops(p, keys, vectors, os.path.join(tmp, f"{p}.{fmt}"), binary)
                       for p in peers}
                times = {(p, op): [] for p in peers for op in ("write", "read")}
                for _ in range(rounds):
                    for p in peers:
                        write, read = ops[p]
                        t0 = time.perf_counter()
                        write()
                        times[p, "write"].append(time.perf_counter() - t0)
                        t0 = time.perf_counter()
                        got_keys, got = read()
                        times[p, "read"].append(time.perf_counter() - t0)
                        assert list(got_keys) == keys, p
                        np.testing.assert_allclose(got, vectors, rtol=1e-6 if not binary else 0)
                for op in ("write", "read"):
                    ours = statistics.median(times["seqkern", op])
                    theirs = statistics.median(times["gensim", op]) if "gensim" in peers else None
                    row = dict(V=V, dim=dim, format=fmt, op=op, seqkern_s=ours, gensim_s=theirs,
                               ratio=theirs and theirs / ours)
                    rows.append(row)
                    print(f"{V:>8} {dim:>4} {fmt:<6} {op:<5} {ours:>10.3f} "
                          + (f"{theirs:>9.3f} {theirs / ours:>6.2f}x" if theirs else f"{'-':>9} {'-':>7}"),
                          file=out, flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="*", type=sizes("V,dim"),
                    help="V,dim each (default: 46618,100 300000,300)")
    ap.add_argument("--rounds", type=positive_int, default=5, help="turns of each library")
    ap.add_argument("--threads", type=positive_int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--json", type=output_file, help="also write the table here")
    args = ap.parse_args(argv)
    shapes = args.shapes or SHAPES
    sk.set_num_threads(args.threads)
    machine = f"{bench.machine()}, SIMD {sk._core.simd_level()}"
    print(f"# machine: {machine}; threads={args.threads}; medians of {args.rounds} rounds")
    rows = run(shapes, args.rounds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "threads": args.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
