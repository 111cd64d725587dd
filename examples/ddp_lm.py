"""A word-level LSTM language model trained with torch's DistributedDataParallel, the recurrent
layers on seqkern's kernels: a plain torch script plus one call, seqkern.torch.optimize(model).

    torchrun --nproc-per-node 2 examples/ddp_lm.py                     # one machine, 2 processes
    torchrun --nnodes 2 --node-rank 0 --master-addr HOST --nproc-per-node 4 examples/ddp_lm.py
    python examples/ddp_lm.py --data text.txt --epochs 3 --save lm.pt    # one process

Each process trains on its own columns of the batch (global batch = --batch-size x processes,
every column a stretch of the text, state carried between windows as in truncated BPTT) and
DistributedDataParallel averages the gradients, so N processes take the steps one process would
take over the global batch. The text is --data (a UTF-8 file) or, by default, the Python
standard library's own source. Rank 0 prints progress, evaluates and saves the model with
torch.save (a file that loads with weights_only=True where seqkern is not installed). Ctrl-C
stops every process cleanly.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

import seqkern.torch as skt
from seqkern.data import Vocabulary
from seqkern.data.corpora import split, stdlib_source
from seqkern.metrics import perplexity  # inf for a diverged loss, where math.exp overflows


class RNNModel(nn.Module):
    """Embedding -> dropout -> LSTM -> dropout -> Linear, the decoder tied to the embedding."""

    def __init__(self, ntoken, hidden, layers, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, hidden)
        self.rnn = nn.LSTM(hidden, hidden, layers, dropout=dropout)
        self.decoder = nn.Linear(hidden, ntoken)
        self.decoder.weight = self.encoder.weight

    def forward(self, x, hidden=None):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden


def columns(ids, n):
    """The token stream cut into n equal columns: (len // n, n), time-major."""
    rows = len(ids) // n
    return torch.from_numpy(np.ascontiguousarray(ids[:rows * n].reshape(n, rows).T)).long()


def evaluate(model, data, bptt, ntoken):
    model.eval()
    total, count, hidden = 0.0, 0, None
    with torch.no_grad():
        for i in range(0, len(data) - 1, bptt):
            x, y = data[i:i + bptt], data[i + 1:i + 1 + bptt]
            x = x[:len(y)]
            out, hidden = model(x, hidden)
            total += nn.functional.cross_entropy(out.view(-1, ntoken), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    return total / count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a UTF-8 text file (default: the Python standard library's source)")
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--batch-size", type=int, default=20, help="columns per process")
    ap.add_argument("--bptt", type=int, default=35)
    ap.add_argument("--lr", type=float, default=20.0)
    ap.add_argument("--clip", type=float, default=0.25)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", help="torch.save the trained model here (rank 0)")
    args = ap.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))  # the cores, shared out
    try:
        train(args, rank, world, distributed)
    except KeyboardInterrupt:
        if rank == 0:
            print("interrupted", flush=True)
    finally:
        if distributed:
            dist.destroy_process_group()


def train(args, rank, world, distributed):
    if args.data:
        with open(args.data, encoding="utf-8", errors="replace") as f:
            text = f.read()
    else:
        text, _ = stdlib_source()
    vocab = Vocabulary.build(text, level="word", max_size=args.vocab_size)  # same on every rank
    train_ids, val_ids = split(vocab.encode(text))
    data = columns(train_ids, args.batch_size * world)[:, rank * args.batch_size:(rank + 1) * args.batch_size]
    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts them)
    model = skt.optimize(RNNModel(len(vocab), args.hidden, args.layers, args.dropout))
    ddp = nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    if rank == 0:
        print(f"{world} process(es) x {torch.get_num_threads()} threads; vocabulary {len(vocab):,}; "
              f"{len(train_ids):,} training tokens, {len(val_ids):,} validation; "
              f"{args.layers}x{args.hidden} LSTM, global batch {args.batch_size * world} x {args.bptt}",
              flush=True)
    step, t0, seen = 0, time.perf_counter(), 0
    for epoch in range(1, args.epochs + 1):
        ddp.train()
        hidden = None
        for i in range(0, len(data) - 1 - args.bptt, args.bptt):
            x, y = data[i:i + args.bptt], data[i + 1:i + 1 + args.bptt]
            if hidden is not None:
                hidden = tuple(h.detach() for h in hidden)
            opt.zero_grad()
            out, hidden = ddp(x, hidden)
            loss = nn.functional.cross_entropy(out.view(-1, len(vocab)), y.reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            step += 1
            seen += y.numel() * world
            if rank == 0 and step % args.log_every == 0:
                rate = seen / (time.perf_counter() - t0)
                print(f"epoch {epoch} step {step} loss {loss.item():.3f} "
                      f"ppl {perplexity(loss.item()):.1f} tokens/s {rate:,.0f}", flush=True)
            if step == args.max_steps:
                break
        if rank == 0:
            val = evaluate(model, columns(val_ids, 10), args.bptt, len(vocab))
            print(f"epoch {epoch} val loss {val:.3f} val ppl {perplexity(val):.1f}", flush=True)
        if step == args.max_steps:
            break
    if rank == 0 and args.save:
        torch.save(model, args.save)
        print(f"saved {args.save}", flush=True)


if __name__ == "__main__":
    main()
