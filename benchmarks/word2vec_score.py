"""Word2Vec.score (the log-probability of sentences under a hierarchical-softmax model): seqkern's
against gensim's on the same model, in one process.

    python benchmarks/word2vec_score.py                    # 20,000 words, 20,000 sentences
    python benchmarks/word2vec_score.py --vocab 50000 --sentences 100000 --json out.json

Both libraries get the same model: one vocabulary of distinct Zipf-like counts (so that both
build the same Huffman tree), gensim's random vectors and output rows copied into seqkern's.
The sentences are --length words drawn by those counts. Each library scores all of them,
--calls times back to back a turn, the libraries taking --turns turns (bench.steady_times); the
table gives the medians and gensim's time over seqkern's, and checks that the scores agree.
gensim runs its `workers` threads, seqkern its pool, both --threads.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import seqkern as sk
from seqkern import bench
from seqkern.models import Word2Vec


def same_models(V, dim, window, sg, threads, seed=0):
    """(seqkern model, gensim model or None) with one vocabulary, tree and set of vectors."""
    rng = np.random.default_rng(seed)
    counts = (10**7 / np.arange(1, V + 1)).astype(np.int64) * V + np.arange(V, 0, -1)
    freq = {f"w{i}": int(c) for i, c in enumerate(counts)}
    kwargs = dict(vector_size=dim, window=window, min_count=1, hs=1, negative=0, sg=sg,
                  workers=threads)
    ours = Word2Vec(**kwargs).build_vocab_from_freq(freq)
    ours.syn1[:] = rng.standard_normal(ours.syn1.shape) * 0.3
    try:
        import gensim
    except ImportError:
        return ours, None
    theirs = gensim.models.Word2Vec(**kwargs)
    theirs.build_vocab_from_freq(freq)
    theirs.wv.vectors[:] = ours.wv.vectors
    theirs.syn1[:] = ours.syn1[:len(theirs.syn1)]
    return ours, theirs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--sentences", type=int, default=20000)
    ap.add_argument("--length", type=int, default=20, help="words a sentence")
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args(argv)
    sk.set_num_threads(args.threads)
    machine = f"{bench.machine()}, SIMD {sk._core.simd_level()}"
    print(f"# machine: {machine}; threads={args.threads}; {args.sentences:,} sentences of "
          f"{args.length} words, vocabulary {args.vocab:,}, dim {args.dim}, window "
          f"{args.window}; medians of {args.turns} turns of {args.calls} calls")
    print(f"{'mode':<5} {'seqkern s':>10} {'gensim s':>9} {'ratio':>7} {'words/s':>12}")
    rows = []
    for sg in (1, 0):
        ours, theirs = same_models(args.vocab, args.dim, args.window, sg, args.threads)
        rng = np.random.default_rng(1)
        words = np.array(ours.wv.index_to_key)
        p = ours.counts / ours.counts.sum()
        sentences = [list(words[rng.choice(len(words), args.length, p=p)])
                     for _ in range(args.sentences)]
        steps = [lambda: ours.score(sentences, total_sentences=len(sentences)),
                 theirs and (lambda: theirs.score(sentences, total_sentences=len(sentences)))]
        if theirs is not None:  # the same figures, but for gensim's float32 sums
            a, b = steps[0](), steps[1]()
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=0.05)
        (mine, _), other = bench.steady_times(steps, calls=args.calls, turns=args.turns)
        theirs_s = other and other[0]
        mode = "sg" if sg else "cbow"
        rows.append(dict(mode=mode, seqkern_s=mine, gensim_s=theirs_s,
                         ratio=theirs_s and theirs_s / mine))
        words_s = args.sentences * args.length / mine
        print(f"{mode:<5} {mine:>10.3f} " + (f"{theirs_s:>9.3f} {theirs_s / mine:>6.2f}x"
                                             if theirs_s else f"{'-':>9} {'-':>7}")
              + f" {words_s:>12,.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "threads": args.threads, "args": vars(args),
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
