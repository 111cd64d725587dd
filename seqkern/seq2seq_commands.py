"""`seqkern seq2seq`: trains an encoder-decoder on a toy task of the book (addition, dates) or on
a `source<TAB>target` file, printing after each epoch a line with `test accuracy Z%` (exact
match of greedy decoding over the held-out split)."""
from __future__ import annotations

import importlib.util
import sys
import time

import numpy as np

import seqkern as sk
from seqkern._interrupt import Interrupt
from seqkern.data import Seq2SeqData, addition_pairs, date_pairs, load_pairs
from seqkern.cli_args import (distinct_files, fraction, non_negative_int, output_file,
                              positive_finite, positive_float, positive_int)
from seqkern.metrics import corpus_bleu
from seqkern.trainer import train_step

MODELS = {"plain": sk.models.Seq2Seq, "peeky": sk.models.PeekySeq2Seq,
          "attention": sk.models.AttentionSeq2Seq}


def decode_accuracy(model, data, pairs, beam_size=1, batch=1000):
    """(exact-match accuracy, decoded strings) over pairs."""
    outputs = []
    max_len = max(len(t) for _, t in pairs) + 1
    for i in range(0, len(pairs), batch):
        chunk = [s for s, _ in pairs[i:i + batch]]
        outputs += model.generate(chunk, max_len=max_len, beam_size=beam_size)
    acc = float(np.mean([o == t for o, (_, t) in zip(outputs, pairs)]))
    return acc, outputs


def train_epoch(model, optimizer, arrays, batch_size, clip, rng, interrupt):
    src, lengths, tgt = arrays
    order = rng.permutation(len(src))
    total, steps, t0, last = 0.0, 0, time.perf_counter(), 0.0
    for i in range(0, len(src), batch_size):
        interrupt.check()
        idx = order[i:i + batch_size]
        loss = train_step(model, optimizer, (src[idx], lengths[idx], tgt[idx]), clip)
        total, steps = total + loss, steps + 1
        if time.perf_counter() - last > 10:
            last = time.perf_counter()
            print(f"  {100 * (i + len(idx)) / len(src):3.0f}% | loss {total / steps:.4f}",
                  file=sys.stderr, flush=True)
    return total / steps, time.perf_counter() - t0


def cmd_seq2seq(args):
    distinct_files(args, inputs=("task",) if args.task not in ("addition", "date") else (),
                   outputs=("save", "plot_attention"))
    if args.plot_attention:  # found now, not after the training
        if args.model != "attention":
            raise SystemExit("--plot-attention: needs --model attention")
        if importlib.util.find_spec("matplotlib") is None:
            raise SystemExit("--plot-attention needs matplotlib: pip install matplotlib")
    if args.task == "addition":
        pairs = addition_pairs(args.examples, seed=args.seed)
    elif args.task == "date":
        pairs = date_pairs(args.examples, seed=args.seed)
    else:
        pairs = load_pairs(args.task)
    data = Seq2SeqData.from_pairs(pairs, args.test_fraction, seed=args.seed)
    model = MODELS[args.model](data.vocab, wordvec_size=args.embed, hidden_size=args.hidden,
                               reverse_input=args.reverse,
                               bidirectional_encoder=args.bidirectional, seed=args.seed)
    print(f"task {args.task}: {len(data.train):,} training pairs, {len(data.test):,} test pairs, "
          f"{len(data.vocab)} symbols; {model}")
    optimizer = sk.optim.Adam(lr=args.lr)
    arrays = data.encode(data.train)
    rng = np.random.default_rng(args.seed)
    file_task = args.task not in ("addition", "date")
    try:
        with Interrupt() as interrupt:
            for epoch in range(1, args.epochs + 1):
                optimizer.lr = args.lr * args.lr_decay ** (epoch - 1)
                loss, seconds = train_epoch(model, optimizer, arrays, args.batch, args.clip, rng,
                                            interrupt)
                acc, outputs = decode_accuracy(model, data, data.test)
                line = (f"epoch {epoch}/{args.epochs} | loss {loss:.4f} | test accuracy "
                        f"{100 * acc:.2f}% | {seconds:.1f} s")
                if file_task:
                    bleu = corpus_bleu([o.split() for o in outputs],
                                       [[t.split()] for _, t in data.test])
                    line += f" | BLEU {100 * bleu:.2f}"
                print(line, flush=True)
                for (s, t), o in list(zip(data.test, outputs))[:args.show]:
                    print(f"    {s!r} -> {o!r} {'ok' if o == t else 'expected ' + repr(t)}")
    except KeyboardInterrupt:
        print("interrupted: stopping", flush=True)
    if args.beam > 1:
        acc, _ = decode_accuracy(model, data, data.test, beam_size=args.beam)
        print(f"beam {args.beam}: test accuracy {100 * acc:.2f}%")
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")
    if args.plot_attention:
        plot_attention(model, max((s for s, _ in data.test[:20]), key=len), args.plot_attention)
    return 0


def plot_attention(model, source, path):
    """A heatmap of the attention weights of one example (matplotlib, an optional extra): the
    longest of the first 20 test sources."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    output, weights = model.attention_map(source)
    fig, ax = plt.subplots(figsize=(0.4 * len(source) + 2, 0.4 * len(output) + 2))
    ax.imshow(weights, cmap="Greys_r", vmin=0, vmax=1)
    ax.set_xticks(range(len(source)), list(source))
    ax.set_yticks(range(len(output) + 1), list(output) + ["<eos>"])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    fig.savefig(path)
    print(f"attention of {source!r} -> {output!r} written to {path}")


def add_seq2seq_command(sub):
    p = sub.add_parser("seq2seq", help="train an encoder-decoder on a toy task or a TSV file")
    p.add_argument("--task", required=True, help="addition, date, or a source<TAB>target file")
    p.add_argument("--model", choices=sorted(MODELS), default="attention")
    p.add_argument("--reverse", action="store_true", help="read each source back to front")
    p.add_argument("--bidirectional", action="store_true", help="bidirectional encoder")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--beam", type=positive_int, default=1, help="beam width of a final evaluation")
    p.add_argument("--save", type=output_file, help="checkpoint (.npz) of the trained model")
    p.add_argument("--plot-attention", metavar="PNG", type=output_file, help="heatmap of one test example")
    p.add_argument("--hidden", type=positive_int, default=256)
    p.add_argument("--embed", type=positive_int, default=16)
    p.add_argument("--batch", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_finite, default=1e-2, help="Adam's learning rate")
    p.add_argument("--lr-decay", type=positive_finite, default=0.9,
                   help="the learning rate is multiplied by this after each epoch")
    p.add_argument("--clip", type=positive_float, default=5.0)
    p.add_argument("--examples", type=positive_int, default=50000, help="pairs generated for a toy task")
    p.add_argument("--test-fraction", type=fraction, default=0.1)
    p.add_argument("--show", type=non_negative_int, default=3, help="decoded test examples printed")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(func=cmd_seq2seq)
