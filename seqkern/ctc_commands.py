"""`seqkern ctc`: trains a CTCTagger (bidirectional LSTM + CTC) on the synthetic spoken-digits
task (seqkern.data.spoken_digits) and prints after each epoch a line with `test accuracy Z%`
(exact sequence match of greedy decoding) and the label error rate (edit distance / target
length) over the held-out examples."""
from __future__ import annotations

import time

import numpy as np

import seqkern as sk
from seqkern._interrupt import Interrupt
from seqkern.data import pad_batch, spoken_digits
from seqkern.cli_args import (non_negative_finite, non_negative_int, output_file, positive_finite,
                              positive_float, positive_int)
from seqkern.trainer import train_step


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def evaluate(model, test, batch=500, beam_width=1):
    """(exact-match accuracy, label error rate) of decoding over the test examples."""
    exact = errors = labels = 0
    for i in range(0, len(test), batch):
        chunk = test[i:i + batch]
        x, lengths, _, _ = pad_batch(chunk)
        for out, (_, want) in zip(model.decode(x, lengths, beam_width), chunk):
            exact += out == want.tolist()
            errors += edit_distance(out, want.tolist())
            labels += len(want)
    return exact / len(test), errors / labels


def cmd_ctc(args):
    train = spoken_digits(args.train, args.features, args.noise, seed=args.seed)
    test = spoken_digits(args.test, args.features, args.noise, seed=args.seed + 1)
    model = sk.models.CTCTagger(args.features, 11, args.hidden, args.layers, seed=args.seed)
    optimizer = sk.optim.Adam(lr=args.lr)
    print(f"spoken digits: {len(train):,} training and {len(test):,} test examples, "
          f"{args.features} features per frame, noise {args.noise}; bidirectional LSTM "
          f"{args.layers} x {args.hidden}")
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    try:
        with Interrupt() as interrupt:
            for epoch in range(1, args.epochs + 1):
                t0, total, steps = time.perf_counter(), 0.0, 0
                order = rng.permutation(len(train))
                for idx in np.array_split(order, max(1, len(train) // args.batch)):
                    interrupt.check()
                    loss = train_step(model, optimizer, pad_batch([train[i] for i in idx]),
                                      args.clip)
                    total, steps = total + loss, steps + 1
                acc, ler = evaluate(model, test)
                print(f"epoch {epoch}/{args.epochs} | loss {total / steps:.4f} | test accuracy "
                      f"{100 * acc:.2f}% | label error rate {100 * ler:.2f}% | "
                      f"{time.perf_counter() - t0:.1f} s", flush=True)
    except KeyboardInterrupt:
        print("interrupted: stopping", flush=True)
    print(f"trained {time.perf_counter() - start:.0f} s")
    if args.beam > 1:
        acc, ler = evaluate(model, test, beam_width=args.beam)
        print(f"beam {args.beam}: test accuracy {100 * acc:.2f}% | label error rate {100 * ler:.2f}%")
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")
    return 0


def add_ctc_command(sub):
    p = sub.add_parser("ctc", help="train a bidirectional LSTM with CTC on synthetic spoken digits")
    p.add_argument("--epochs", type=positive_int, default=5)
    p.add_argument("--train", type=positive_int, default=20000, help="training examples")
    p.add_argument("--test", type=positive_int, default=5000, help="held-out examples")
    p.add_argument("--features", type=positive_int, default=16)
    p.add_argument("--noise", type=non_negative_finite, default=0.6)
    p.add_argument("--hidden", type=positive_int, default=128)
    p.add_argument("--layers", type=positive_int, default=2)
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_finite, default=3e-3)
    p.add_argument("--clip", type=positive_float, default=5.0)
    p.add_argument("--beam", type=positive_int, default=1, help="beam width of a final evaluation")
    p.add_argument("--save", type=output_file, help="checkpoint (.npz) of the trained model")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(func=cmd_ctc)
