"""seqkern.Word2Vec vs gensim's Word2Vec in its fastest mode (corpus_file=), in one process.

    python benchmarks/word2vec.py                       # the Wikipedia sample from gensim's tests
    python benchmarks/word2vec.py --corpus gcide        # 4.6M tokens of Webster's 1913 (Debian)
    python benchmarks/word2vec.py --corpus linux-doc    # 2.3M tokens of the kernel's docs (Debian)
    python benchmarks/word2vec.py --corpus text.txt --seeds 3 --json out.json

Each run is a fresh process, as a user runs either library: it reads the corpus, trains and
writes the vectors in word2vec's text format; the time is that whole process's. Both train with
the same settings: dim 100, window 5,
negative 5, sample 1e-3, min_count 5, 5 epochs, --threads workers, skip-gram and CBOW, with
negative sampling (modes sg, cbow) or hierarchical softmax alone (hs=1, negative=0: modes sg-hs,
cbow-hs). A third row of the negative-sampling modes trains seqkern under the learning rate
gensim's corpus_file mode really applies (see run_seqkern_gensim_schedule), to tell the
schedule's effect on quality from the kernels'. Quality:
Spearman on wordsim353 and SimLex-999 and analogy accuracy on questions-words.txt (gensim's test
files, scored by seqkern.models.evaluation, which reproduces gensim's scores), with gensim run
under several seeds to show its own seed-to-seed spread. Needs `pip install gensim`.
"""
from __future__ import annotations

import argparse
import gzip
import glob
import json
import os
import re
import subprocess
import statistics
import sys
import time

import numpy as np

import seqkern as sk
from seqkern import bench
from seqkern.cli_args import names_of, output_file, positive_int

SETTINGS = dict(vector_size=100, window=5, negative=5, sample=1e-3, min_count=5, epochs=5)
MODES = {"sg": dict(sg=1), "cbow": dict(sg=0), "sg-hs": dict(sg=1, hs=1, negative=0),
         "cbow-hs": dict(sg=0, hs=1, negative=0)}


def gensim_data():
    import gensim
    return os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")


def wikipedia_sample(cache):
    """Plain text of the small English Wikipedia dump in gensim's test data (WikiCorpus
    tokenization, one article per line), written once to `cache`."""
    if not os.path.exists(cache):
        from gensim.corpora.wikicorpus import WikiCorpus
        dump = os.path.join(gensim_data(),
                            "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
        with open(cache + ".part", "w") as f:
            for tokens in WikiCorpus(dump, dictionary={}).get_texts():
                f.write(" ".join(tokens) + "\n")
        os.replace(cache + ".part", cache)
    return cache


def debian_package(name, work):
    """Debian's package `name` fetched with `apt-get download` and unpacked into work."""
    os.makedirs(work, exist_ok=True)
    subprocess.run(["apt-get", "download", name], cwd=work, check=True)
    subprocess.run(["dpkg-deb", "-x", glob.glob(os.path.join(work, f"{name}_*.deb"))[0], work],
                   check=True)
    return work


def gcide_text(cache):
    """The larger corpus: the Collaborative International Dictionary of English (Webster's 1913
    with WordNet additions, GPL) from Debian's `dict-gcide` package, fetched with `apt-get
    download`. Each entry becomes a line, lower-cased, letters only (as text8 is), without the
    pronunciations and the source tags: 252,764 lines, 4,590,153 tokens."""
    if not os.path.exists(cache):
        work = debian_package("dict-gcide", cache + ".d")
        with gzip.open(os.path.join(work, "usr/share/dictd/gcide.dict.dz"), "rt",
                       encoding="utf-8", errors="replace") as f:
            entries = re.split(r"\n\s*\n", f.read())
        with open(cache + ".part", "w") as f:
            for entry in entries:
                entry = re.sub(r"\\[^\\\n]*\\", "", entry)  # \Ab*di"cate\ pronunciations
                entry = re.sub(r"\[[^\]\n]*\]", "", entry)  # [1913 Webster], [PJC]
                tokens = re.findall(r"[a-z]+", entry.lower())
                if tokens:
                    f.write(" ".join(tokens) + "\n")
        os.replace(cache + ".part", cache)
    return cache


def linux_doc_text(cache):
    """A corpus of another kind: technical prose, the Linux kernel's documentation (GPL) from
    Debian's `linux-doc-6.1` package, fetched with `apt-get download`: the reStructuredText
    sources that its HTML ships, each paragraph a line, lower-cased, letters only, literal
    blocks (indented) and heading underlines left out: 95,551 lines, 2,340,780 tokens."""
    if not os.path.exists(cache):
        work = debian_package("linux-doc-6.1", cache + ".d")
        sources = os.path.join(work, "usr/share/doc/linux-doc-6.1/html/_sources")
        with open(cache + ".part", "w") as out:
            for path in sorted(glob.glob(os.path.join(sources, "**/*.rst.txt"), recursive=True)):
                paragraph = []
                for line in open(path, encoding="utf-8", errors="replace"):
                    if line.strip() and not line.startswith(("    ", "\t")):
                        if not re.match(r"^[=\-~^*#+`]{3,}\s*$", line):
                            paragraph.append(line.strip())
                        continue
                    tokens = re.findall(r"[a-z]+", " ".join(paragraph).lower())
                    if len(tokens) >= 3:
                        out.write(" ".join(tokens) + "\n")
                    paragraph = []
        os.replace(cache + ".part", cache)
    return cache


def quality(wv):
    """wordsim353's and SimLex-999's Spearman and the analogy accuracy; None for a test none of
    whose questions the vocabulary holds (a corpus of other words, or in another language)."""
    data = gensim_data()

    def pairs(name):
        try:
            return wv.evaluate_word_pairs(os.path.join(data, name))[1][0]
        except ValueError:  # "No valid similarity judgements found": no pair in the vocabulary
            return None

    accuracy, sections = wv.evaluate_word_analogies(os.path.join(data, "questions-words.txt"))
    total = sections[-1]  # "Total accuracy"
    return dict(wordsim353=pairs("wordsim353.tsv"), simlex999=pairs("simlex999.txt"),
                analogy=accuracy if total["correct"] or total["incorrect"] else None)


def train_gensim(corpus, mode, threads, seed):
    from gensim.models import Word2Vec
    return Word2Vec(corpus_file=corpus, workers=threads, seed=seed, **{**SETTINGS, **mode}).wv


def train_seqkern(corpus, mode, threads, seed):
    sk.set_num_threads(threads)
    return sk.Word2Vec(corpus_file=corpus, workers=threads, seed=seed, **{**SETTINGS, **mode}).wv


def train_seqkern_gensim_schedule(corpus, mode, threads, seed):
    """seqkern under the learning rate that gensim's corpus_file mode applies. Each of its W
    workers measures its progress by its own words against the whole corpus, so within epoch e
    alpha falls only from alpha * (1 - e/E) to alpha * (1 - (e + 1/W)/E) before the next epoch
    starts higher again: larger steps than the linear decay over all words that seqkern (and
    gensim with one worker, or with an iterable) uses."""
    sk.set_num_threads(threads)
    m = sk.Word2Vec(workers=threads, seed=seed, **{**SETTINGS, **mode})
    m.build_vocab(corpus_file=corpus)
    alpha, epochs = m.alpha, m.epochs
    for e in range(epochs):
        m.alpha = alpha * (1 - e / epochs)
        m.min_alpha = alpha * (1 - (e + 1 / threads) / epochs)
        m.train(corpus_file=corpus, total_words=m.corpus_total_words, epochs=1)
    return m.wv


LIBRARIES = {"gensim": train_gensim, "seqkern": train_seqkern,
             "seqkern, gensim's alpha": train_seqkern_gensim_schedule}


def worker(lib, corpus, mode, threads, seed, out):
    """One run in this (fresh) process: train, then write the vectors as text."""
    LIBRARIES[lib](corpus, MODES[mode], threads, seed).save_word2vec_format(out)


def run(lib, corpus, mode, threads, seed):
    """(seconds of a fresh process that trains and writes the vectors, the vectors)."""
    out = os.path.join(os.path.dirname(corpus), f".word2vec-bench-{os.getpid()}.txt")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", lib, corpus, mode,
                    str(threads), str(seed), out], check=True)
    elapsed = time.perf_counter() - t0
    wv = sk.KeyedVectors.load_word2vec_format(out)
    os.remove(out)
    return elapsed, wv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="plain text, one sentence per line, 'gcide' or "
                                     "'linux-doc' (default: the Wikipedia sample)")
    ap.add_argument("--modes", type=names_of(tuple(MODES)), default="sg,cbow,sg-hs,cbow-hs",
                    help=f"of {', '.join(MODES)}")
    ap.add_argument("--threads", type=positive_int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--seeds", type=positive_int, default=3,
                    help="runs of each library (seeds 1..n)")
    ap.add_argument("--json", type=output_file, help="also write the table here")
    ap.add_argument("--worker", nargs=6, metavar=("LIBRARY", "CORPUS", "MODE", "THREADS", "SEED",
                                                  "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        lib, corpus, mode, threads, seed, out = args.worker
        return worker(lib, corpus, mode, int(threads), int(seed), out)
    cache = os.path.join(os.path.expanduser("~"), ".cache")
    os.makedirs(cache, exist_ok=True)
    if args.corpus == "gcide":
        corpus = gcide_text(os.path.join(cache, "seqkern-gcide.txt"))
    elif args.corpus == "linux-doc":
        corpus = linux_doc_text(os.path.join(cache, "seqkern-linux-doc.txt"))
    else:
        corpus = args.corpus or wikipedia_sample(os.path.join(cache, "seqkern-wiki-sample.txt"))
    tokens = sum(len(line.split()) for line in open(corpus, encoding="utf-8", errors="replace"))
    sk.set_num_threads(args.threads)
    import gensim
    print(f"# {bench.machine()}")
    print(f"# corpus {corpus}: {tokens:,} tokens; {SETTINGS}, threads={args.threads}, "
          f"seeds 1..{args.seeds}; seqkern {sk.__version__}, gensim {gensim.__version__}")
    print(f"{'mode':<7} {'library':<24} {'seconds':>8} {'words/s':>10} {'ratio':>6} "
          f"{'ws353':>12} {'simlex':>12} {'analogy':>12}")
    rows = []
    for mode in args.modes:
        libraries = [lib for lib, fn in LIBRARIES.items()
                     if "hs" not in mode or fn is not train_seqkern_gensim_schedule]
        runs = {lib: [] for lib in libraries}
        for seed in range(1, args.seeds + 1):  # libraries in turn, so that drift hits all
            for lib in libraries:
                elapsed, wv = run(lib, corpus, mode, args.threads, seed)
                runs[lib].append(dict(seconds=elapsed, **quality(wv)))
        t_gensim = statistics.median(r["seconds"] for r in runs["gensim"])
        for lib, res in runs.items():
            t = statistics.median(r["seconds"] for r in res)
            row = dict(mode=mode, library=lib, seconds=t, words_per_s=tokens * SETTINGS["epochs"] / t,
                       ratio=t_gensim / t, runs=res)
            for k in ("wordsim353", "simlex999", "analogy"):
                vals = [r[k] for r in res]
                known = None not in vals
                row[k] = float(np.mean(vals)) if known else None
                row[k + "_spread"] = float(max(vals) - min(vals)) if known else None
            rows.append(row)
            q = "  ".join(f"{row[k]:.3f}±{row[k + '_spread'] / 2:.3f}" if row[k] is not None
                          else f"{'n/a':>11}" for k in ("wordsim353", "simlex999", "analogy"))
            print(f"{mode:<7} {lib:<24} {t:>8.2f} {row['words_per_s']:>10,.0f} "
                  f"{row['ratio']:>5.2f}x {q}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=bench.machine(), corpus=corpus, tokens=tokens, settings=SETTINGS,
                           threads=args.threads, rows=rows), f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
