"""`seqkern word2vec`: word2vec.c's command line. Each option is taken in word2vec.c's spelling
(`-train FILE -cbow 1 -hs 0 -binary 1 ...`) and with two dashes (`--train FILE --cbow`), so that
a script written for word2vec.c (its demo-word.sh) runs with `./word2vec` replaced by `seqkern
word2vec`. Two differences: without -cbow it trains skip-gram (word2vec.c: CBOW), and it has no
-classes (word2vec.c's k-means word classes)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import seqkern as sk
from seqkern.cli_args import (distinct_files, input_file, non_negative_finite, non_negative_int,
                              output_file, positive_finite, positive_int, switch, text_file)


def add_word2vec_command(sub):
    w2v = sub.add_parser("word2vec", help="train word vectors on a text file (word2vec.c's "
                                          "options, as -train FILE or --train FILE)")

    def option(name, **kw):
        w2v.add_argument(f"--{name}", f"-{name}", **kw)

    def yes_no(name, help):
        option(name, type=switch, nargs="?", const=1, default=0, metavar="0|1", help=help)

    option("train", required=True, type=text_file, help="text file, one sentence per line")
    option("output", required=True, type=output_file, help="where to write the vectors")
    yes_no("cbow", "CBOW (default: skip-gram; word2vec.c's default is CBOW)")
    option("size", type=positive_int, default=100, help="vector size")
    option("window", type=positive_int, default=5)
    option("negative", type=non_negative_int, default=5, help="noise words per pair")
    yes_no("hs", "hierarchical softmax (with -negative 0: alone)")
    option("sample", type=non_negative_finite, default=1e-3, help="subsampling threshold")
    option("min-count", type=non_negative_int, default=5)  # 0 keeps every word, as 1 does
    option("iter", type=positive_int, default=5, help="epochs")
    option("threads", type=positive_int, default=sk.get_num_threads())
    option("alpha", type=positive_finite, help="start learning rate (0.025 sg, 0.05 cbow)")
    option("seed", type=non_negative_int, default=1)
    yes_no("binary", "binary output format")
    option("save-vocab", type=output_file, metavar="FILE",
           help='also write the vocabulary, one "word count" line each')
    option("read-vocab", type=input_file, metavar="FILE",
           help='take the vocabulary from such a file instead of counting the text')
    option("debug", type=non_negative_int, default=2,
           help="0: quiet, 1: the vocabulary's size, 2: also progress (default)")
    option("classes", type=no_classes, default=0, help=argparse.SUPPRESS)
    w2v.set_defaults(func=cmd_word2vec)


def no_classes(text):
    if text != "0":
        raise argparse.ArgumentTypeError("word2vec.c's k-means word classes are not provided: "
                                         "write the vectors and cluster them")
    return 0


def read_vocab(path):
    """word2vec.c's vocabulary file: one "word count" line each (-save-vocab's, or gensim's
    fvocab). Its "</s>", word2vec.c's token for a line's end, is left out: seqkern's training
    reads no such token, so its vector would never train."""
    counts = {}
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                word, count = fields[0].decode(errors="surrogateescape"), int(fields[1])
            except (IndexError, ValueError):
                count = -1
            if len(fields) != 2 or count < 0:
                shown = line[:80].decode(errors="replace").rstrip()
                raise ValueError(f"{path}:{number}: expected \"word count\", got {shown!r}")
            if word != "</s>":
                counts[word] = counts.get(word, 0) + count
    if not counts:
        raise ValueError(f"{path}: no words")
    return counts


def cmd_word2vec(args):
    """Trains on a text file and writes the vectors; an interrupted run writes nothing (the files
    go to temporary names first and are renamed only when complete)."""
    distinct_files(args, inputs=("train", "read_vocab"), outputs=("output", "save_vocab"))
    alpha = args.alpha if args.alpha is not None else (0.05 if args.cbow else 0.025)
    model = sk.Word2Vec(vector_size=args.size, window=args.window, min_count=args.min_count,
                        sample=args.sample, sg=0 if args.cbow else 1, hs=args.hs,
                        negative=args.negative, alpha=alpha, epochs=args.iter,
                        workers=args.threads, seed=args.seed, progress=args.debug >= 2)
    if args.read_vocab:
        model.build_vocab_from_freq(read_vocab(args.read_vocab))
    else:
        model.build_vocab(corpus_file=args.train)
    if args.debug:
        print(f"word2vec: {len(model.wv):,} words in the vocabulary, "
              f"{int(model.counts.sum()):,} words of training text", file=sys.stderr)
    model.train(corpus_file=args.train, total_words=model.corpus_total_words,
                epochs=model.epochs)
    outputs = [args.output] + ([args.save_vocab] if args.save_vocab else [])
    temporary = []
    try:
        for path in outputs:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                                       prefix=".seqkern-", suffix=".part")
            os.close(fd)
            temporary.append(tmp)
        model.wv.save_word2vec_format(temporary[0], binary=bool(args.binary),
                                      fvocab=temporary[1] if args.save_vocab else None)
        for tmp, path in zip(temporary, outputs):
            os.replace(tmp, path)
    finally:
        for tmp in temporary:
            if os.path.exists(tmp):
                os.remove(tmp)
    if args.debug:
        print(f"word2vec: wrote {', '.join(outputs)}", file=sys.stderr)
    return 0
