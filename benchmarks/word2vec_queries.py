"""gensim's model queries beyond similarity: Word2Vec.score (the log-probability of sentences
under a hierarchical-softmax model) and KeyedVectors.wmdistance (the Word Mover's Distance;
gensim's runs on POT), seqkern's against gensim's on the same model, in one process.

    python benchmarks/word2vec_queries.py                  # vocabulary 20,000, dim 100
    python benchmarks/word2vec_queries.py --vocab 50000 --sentences 100000 --json out.json

Both libraries get the same model: one vocabulary of distinct Zipf-like counts (so that both
build the same Huffman tree), seqkern's vectors and output rows copied into gensim's. Sentences
and documents are words drawn by those counts. score: --sentences sentences of --length words,
all scored in one call. wmdistance: --pairs pairs of documents of each --doc-lengths (the
second half as long), one call a pair. Each step runs --calls times back to back a turn, the
libraries taking --turns turns (bench.steady_times); the table gives the medians and gensim's
time over seqkern's, and checks that the results agree. Threads: --threads for both (gensim's
`workers` in score; POT runs one).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import seqkern as sk
from seqkern import bench
from seqkern.cli_args import output_file, positive_int, steady_calls
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


def draw(model, rng, n, length):
    """n lists of `length` words drawn by the model's counts."""
    words = np.array(model.wv.index_to_key)
    p = model.counts / model.counts.sum()
    return [list(words[rng.choice(len(words), length, p=p)]) for _ in range(n)]


def row(what, mine, theirs, per, out):
    print(f"{what:<16} {mine * 1e3:>11.3f} " + (f"{theirs * 1e3:>10.3f} {theirs / mine:>6.2f}x"
                                                if theirs else f"{'-':>10} {'-':>7}")
          + f"  {per}", file=out, flush=True)
    return dict(what=what, seqkern_s=mine, gensim_s=theirs, ratio=theirs and theirs / mine)


def main(argv=None, out=sys.stdout):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=positive_int, default=20000)
    ap.add_argument("--dim", type=positive_int, default=100)
    ap.add_argument("--window", type=positive_int, default=5)
    ap.add_argument("--sentences", type=positive_int, default=20000)
    ap.add_argument("--length", type=positive_int, default=20, help="words a sentence")
    ap.add_argument("--pairs", type=positive_int, default=20)
    ap.add_argument("--doc-lengths", type=positive_int, nargs="*", default=[5, 20, 60, 200, 500])
    ap.add_argument("--calls", type=steady_calls, default=5)
    ap.add_argument("--turns", type=positive_int, default=4)
    ap.add_argument("--threads", type=positive_int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--json", type=output_file, help="also write the table here")
    args = ap.parse_args(argv)
    sk.set_num_threads(args.threads)
    machine = f"{bench.machine()}, SIMD {sk._core.simd_level()}"
    print(f"# machine: {machine}; threads={args.threads}; vocabulary {args.vocab:,}, dim "
          f"{args.dim}; medians of {args.turns} turns of {args.calls} calls", file=out)
    print(f"{'query':<16} {'seqkern ms':>11} {'gensim ms':>10} {'ratio':>7}", file=out)
    rows = []
    for sg in (1, 0):
        ours, theirs = same_models(args.vocab, args.dim, args.window, sg, args.threads)
        sentences = draw(ours, np.random.default_rng(1), args.sentences, args.length)
        steps = [lambda: ours.score(sentences, total_sentences=len(sentences)),
                 theirs and (lambda: theirs.score(sentences, total_sentences=len(sentences)))]
        if theirs is not None:  # the same figures, but for gensim's float32 sums
            np.testing.assert_allclose(steps[0](), steps[1](), rtol=1e-4, atol=0.05)
        (mine, _), other = bench.steady_times(steps, calls=args.calls, turns=args.turns)
        words_s = args.sentences * args.length / mine
        rows.append(row(f"score {'sg' if sg else 'cbow'}", mine, other and other[0],
                        f"{args.sentences:,} sentences of {args.length} words, "
                        f"{words_s:,.0f} words/s", out))
    try:
        import ot  # noqa: F401 (gensim's wmdistance imports it)
    except ImportError:
        theirs = None
    rng = np.random.default_rng(2)
    for length in args.doc_lengths:
        docs = list(zip(draw(ours, rng, args.pairs, length),
                        draw(ours, rng, args.pairs, max(1, length // 2))))
        steps = [lambda: [ours.wv.wmdistance(a, b) for a, b in docs],
                 theirs and (lambda: [theirs.wv.wmdistance(a, b) for a, b in docs])]
        if theirs is not None:
            np.testing.assert_allclose(steps[0](), steps[1](), rtol=0, atol=1e-9)
        (mine, _), other = bench.steady_times(steps, calls=args.calls, turns=args.turns)
        unique = np.mean([len(set(a)) + len(set(b)) for a, b in docs])
        rows.append(row(f"wmdistance {length}", mine / args.pairs,
                        other and other[0] / args.pairs,
                        f"a pair of {length} and {max(1, length // 2)} words, "
                        f"{unique:.0f} distinct", out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "threads": args.threads, "args": vars(args),
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
