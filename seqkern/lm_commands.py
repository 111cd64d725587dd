"""The language-model commands: `seqkern demo`, `seqkern train-lm` and `seqkern sample`.

`seqkern demo` is the README's main job: with no download it trains a character-level LSTM on
the Python standard library's own source files, printing `unigram perplexity X` first and a line
with `val perplexity Y` after each epoch, then samples Python at two temperatures.
"""
from __future__ import annotations

import math
import platform
import sys
import time

import numpy as np

import seqkern as sk
from seqkern.cli_args import (distinct_files, fraction, input_file, non_negative_int,
                              output_file, positive_finite, positive_float, positive_int,
                              probability, text_file, vocabulary_size)
from seqkern.data import Vocabulary, split, stdlib_source
from seqkern.models.language_model import RNNLM


def unigram_perplexity(train_ids, val_ids, vocab_size):
    """Perplexity on val_ids of the model that predicts every token from its training
    frequency alone (add-one smoothed, so unseen tokens keep some probability)."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    return math.exp(-logp[val_ids].mean())


def cmd_demo(args):
    if args.threads:
        sk.set_num_threads(args.threads)
    text, files = stdlib_source(args.chars)
    vocab = Vocabulary.build(text, level="char")
    train_ids, val_ids = split(vocab.encode(text), 0.1)
    print(f"corpus: {files} files of the Python {platform.python_version()} standard library, "
          f"{len(text):,} characters ({len(train_ids):,} to train on, {len(val_ids):,} to "
          f"validate), {len(vocab)} distinct")
    unigram = unigram_perplexity(train_ids, val_ids, len(vocab))
    print(f"unigram perplexity {unigram:.2f}")
    model = sk.models.RNNLM(vocab=vocab, wordvec_size=args.embed, hidden_size=args.hidden,
                            num_layers=args.layers, seed=args.seed)
    n_params = sum(p.size for p in model.params.values())
    print(f"model: character LSTM, {args.layers} x {args.hidden} units, {n_params / 1e6:.2f}M "
          f"parameters; Adam lr {args.lr:g}, batches of {args.batch} x {args.bptt} characters, "
          f"{sk.get_num_threads()} threads, {args.minutes:g} minutes")
    trainer = sk.Trainer(model, sk.optim.Adam(lr=args.lr), batch_size=args.batch,
                         bptt=args.bptt, clip=args.clip, lr_decay=2.0,
                         max_seconds=args.minutes * 60, checkpoint=args.save)
    t0 = time.perf_counter()
    trainer.fit(train_ids, val_ids, epochs=args.epochs)
    if not trainer.history or "val_perplexity" not in trainer.history[-1]:
        print("stopped before the first epoch ended: nothing validated"
              + (", nothing saved" if args.save else ""))
        return 130
    best = trainer.best[0]
    print(f"trained {time.perf_counter() - t0:.0f} s: best val perplexity {best:.2f} "
          f"({math.log2(best):.2f} bits per character), {unigram / best:.1f}x below the "
          f"unigram model")
    for temperature in (0.7, 1.0):
        print(f"\n--- sample, temperature {temperature} ---")
        print(model.generate("def ", length=args.sample_length, temperature=temperature,
                             seed=args.seed))
    return 0


def read_text(path):
    """A text file as UTF-8 (a leading byte-order mark dropped). Bytes that are not UTF-8 read
    as U+FFFD and are counted on stderr."""
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8-sig", errors="replace")
    replaced = text.count("\ufffd") - data.count("\ufffd".encode())
    if replaced:
        print(f"{path}: {replaced:,} {'place is' if replaced == 1 else 'places are'} not UTF-8 "
              "(read as U+FFFD)", file=sys.stderr)
    return text


def cmd_train_lm(args):
    distinct_files(args, inputs=("text",), outputs=("save",))
    text = read_text(args.text)
    vocab = Vocabulary.build(text, level=args.level, max_size=args.vocab_size)
    train_ids, val_ids = split(vocab.encode(text), args.val_fraction)
    print(f"{args.text}: {len(train_ids):,} tokens to train on, {len(val_ids):,} to validate, "
          f"vocabulary {len(vocab):,} {args.level}s")
    if len(val_ids) < 2:
        raise ValueError(f"--val-fraction: {args.val_fraction:g} holds out {len(val_ids)} "
                         "token(s); validation needs at least 2")
    print(f"unigram perplexity {unigram_perplexity(train_ids, val_ids, len(vocab)):.2f}")
    model = sk.models.RNNLM(vocab=vocab, wordvec_size=args.embed or args.hidden,
                            hidden_size=args.hidden, num_layers=args.layers,
                            dropout=args.dropout, tie_weights=args.tie, seed=args.seed)
    optimizer = sk.optim.SGD(lr=args.lr) if args.optimizer == "sgd" else sk.optim.Adam(lr=args.lr)
    trainer = sk.Trainer(model, optimizer, batch_size=args.batch, bptt=args.bptt,
                         clip=args.clip, checkpoint=args.save)
    trainer.fit(train_ids, val_ids, epochs=args.epochs)
    print(f"saved {args.save}" if trainer.best else "nothing saved")
    return 0 if trainer.best else 130


def cmd_sample(args):
    model = sk.load(args.checkpoint)
    if not isinstance(model, RNNLM):  # a seq2seq model or a CTC tagger generates otherwise
        raise ValueError(f"{args.checkpoint}: is a {type(model).__name__} checkpoint, not a "
                         "language model's (train-lm's or demo's --save)")
    if model.vocab is None:
        raise ValueError(f"{args.checkpoint}: holds no vocabulary to sample text with")
    model.eval(precision=args.precision)
    print(model.generate(args.prefix, length=args.length, temperature=args.temperature,
                         top_k=args.top_k, top_p=args.top_p, greedy=args.greedy, seed=args.seed))
    return 0


def add_lm_commands(sub):
    demo = sub.add_parser("demo", help="train a character LSTM on Python's own source and "
                                       "sample from it (about two minutes)")
    demo.add_argument("--minutes", type=positive_float, default=2.0, help="training time (default 2)")
    demo.add_argument("--epochs", type=positive_int, default=20, help="most epochs within the time")
    demo.add_argument("--chars", type=positive_int, default=1_500_000, help="corpus size in characters")
    demo.add_argument("--hidden", type=positive_int, default=512)
    demo.add_argument("--embed", type=positive_int, default=64)
    demo.add_argument("--layers", type=positive_int, default=1)
    demo.add_argument("--batch", type=positive_int, default=32)
    demo.add_argument("--bptt", type=positive_int, default=64)
    demo.add_argument("--lr", type=positive_finite, default=3e-3)
    demo.add_argument("--clip", type=positive_float, default=1.0)
    demo.add_argument("--threads", type=positive_int, help="default: every core")
    demo.add_argument("--seed", type=non_negative_int, default=0)
    demo.add_argument("--sample-length", type=non_negative_int, default=400)
    demo.add_argument("--save", type=output_file, help="also write the best checkpoint here")
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser("train-lm", help="train a language model on a text file")
    train.add_argument("--text", required=True, type=text_file, help="UTF-8 text; the last part validates")
    train.add_argument("--save", required=True, type=output_file, help="checkpoint (.npz) of the best epoch")
    train.add_argument("--level", choices=("char", "word"), default="word")
    train.add_argument("--layers", type=positive_int, default=2)
    train.add_argument("--hidden", type=positive_int, default=650)
    train.add_argument("--embed", type=positive_int, help="embedding size (default: --hidden)")
    train.add_argument("--dropout", type=probability, default=0.5)
    train.add_argument("--tie", action="store_true", help="tie input and output embeddings")
    train.add_argument("--epochs", type=positive_int, default=4)
    train.add_argument("--bptt", type=positive_int, default=35)
    train.add_argument("--batch", type=positive_int, default=20)
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    train.add_argument("--lr", type=positive_finite, default=20.0)
    train.add_argument("--clip", type=positive_float, default=0.25)
    train.add_argument("--vocab-size", type=vocabulary_size,
                       help="keep the most frequent tokens only")
    train.add_argument("--val-fraction", type=fraction, default=0.1)
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.set_defaults(func=cmd_train_lm)

    sample = sub.add_parser("sample", help="generate text with a trained language model")
    sample.add_argument("--checkpoint", required=True, type=input_file)
    sample.add_argument("--prefix", default="")
    sample.add_argument("--length", type=non_negative_int, default=200,
                        help="most tokens to generate (a word-level model's sample ends with its "
                             "line: at <eos>)")
    sample.add_argument("--temperature", type=positive_float, default=1.0)
    sample.add_argument("--top-k", type=positive_int)
    sample.add_argument("--top-p", type=float)
    sample.add_argument("--greedy", action="store_true")
    sample.add_argument("--seed", type=non_negative_int, default=0)
    sample.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: the weights rounded, faster (README: Low precision)")
    sample.set_defaults(func=cmd_sample)
