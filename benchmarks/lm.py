"""A word-level language model trained with seqkern and with PyTorch (CPU), side by side.

    python benchmarks/lm.py                      # GCIDE text, 2-layer 650-unit LSTM, tied
    python benchmarks/lm.py --steps 300 --json out.json     # 600 steps by default

Three models: seqkern's own (seqkern.models.BetterRNNLM), PyTorch's (its word_language_model
example, medium size) as it is, and the same torch model with seqkern.torch.optimize(model) added
("torch+sk"), the one line a torch user changes. The model is, in all three:
Embedding(V, 650) -> Dropout(0.5) -> LSTM(650, 650, 2 layers, dropout 0.5) -> Dropout(0.5) ->
Linear(650, V) with its weight tied to the embedding; SGD lr 20, gradients clipped to norm 0.25,
batches of 20 rows x 35 steps with the state carried between batches (truncated BPTT).

All start from the same weights and train on the same batches for the same number
of steps, in one process with the same thread count, in alternating blocks of steps (so that
noise on a shared machine hits both alike); the first block of each is not timed. Reported:
training and evaluation tokens/s (medians of the per-step times), validation perplexity of both
after the same steps (dropout masks differ, so they agree only statistically), and the peak
memory a training step adds (measured in a child process per library).

The text: GCIDE, the Collaborative International Dictionary of English (Debian's dict-gcide
package, fetched by benchmarks/word2vec.py's gcide_text), lower-cased words; the vocabulary is
its 10,000 most frequent words with <unk> for the rest, as the Penn Treebank's.
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
from seqkern.cli_args import output_file, positive_int
from seqkern.data import TBPTTBatches, Vocabulary

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from word2vec import gcide_text  # noqa: E402

V, BATCH, BPTT, HIDDEN, DROPOUT, LR, CLIP = 10_000, 20, 35, 650, 0.5, 20.0, 0.25
TRAIN_TOKENS, VAL_TOKENS = 1_000_000, 60_000
PEERS = {"torch": False, "torch+sk": True}  # torch's model as it is, and with seqkern.torch.optimize


def corpus(train_tokens, val_tokens):
    cache = os.path.join(tempfile.gettempdir(), "seqkern-gcide.txt")
    lines, chars = [], 0
    with open(gcide_text(cache), encoding="utf-8") as f:
        for line in f:
            lines.append(line)
            chars += len(line)
            if chars > 12 * (train_tokens + val_tokens):  # characters: plenty of tokens
                break
    text = "".join(lines)
    vocab = Vocabulary.build(text, level="word", max_size=V)
    ids = vocab.encode(text)[:train_tokens + val_tokens]
    return vocab, ids[:train_tokens], ids[train_tokens:]


def seqkern_model(vocab, seed=0):
    return sk.models.BetterRNNLM(vocab=vocab, wordvec_size=HIDDEN, hidden_size=HIDDEN,
                                 dropout=DROPOUT, seed=seed)


class TorchLM:
    """PyTorch's word_language_model RNNModel (LSTM, tied), with seqkern's initial weights."""

    def __init__(self, torch, sk_model, optimized=False):
        nn = torch.nn
        self.torch = torch

        class RNNModel(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(DROPOUT)
                self.encoder = nn.Embedding(V, HIDDEN)
                self.rnn = nn.LSTM(HIDDEN, HIDDEN, 2, dropout=DROPOUT)
                self.decoder = nn.Linear(HIDDEN, V)
                self.decoder.weight = self.encoder.weight

            def forward(self, x, hidden):
                emb = self.drop(self.encoder(x))
                out, hidden = self.rnn(emb, hidden)
                return self.decoder(self.drop(out)), hidden

        self.model = RNNModel()
        p = sk_model.params
        state = {"encoder.weight": p["embed.weight"], "decoder.weight": p["embed.weight"],
                 "decoder.bias": p["out.bias"]}
        state.update({f"rnn.{k[5:]}": v for k, v in p.items() if k.startswith("lstm.")})
        self.model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
        if optimized:  # the one line a torch user adds
            import seqkern.torch
            seqkern.torch.optimize(self.model)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.hidden = None

    def step(self, xs, ts):
        torch = self.torch
        self.model.train()
        x = torch.from_numpy(np.ascontiguousarray(xs.T))
        y = torch.from_numpy(np.ascontiguousarray(ts.T)).reshape(-1)
        if self.hidden is not None:
            self.hidden = tuple(h.detach() for h in self.hidden)
        self.opt.zero_grad()
        out, self.hidden = self.model(x, self.hidden)
        loss = torch.nn.functional.cross_entropy(out.view(-1, V), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.opt.step()
        return loss.item()

    def eval_loss(self, xs, ts, hidden):
        torch = self.torch
        with torch.no_grad():
            out, hidden = self.model(torch.from_numpy(np.ascontiguousarray(xs.T)), hidden)
            loss = torch.nn.functional.cross_entropy(
                out.view(-1, V), torch.from_numpy(np.ascontiguousarray(ts.T)).reshape(-1))
        return float(loss), hidden


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def train_all(sk_model, peers, batches, steps, block):
    """Alternating blocks of `block` steps of seqkern's model and of each torch model in `peers`
    (name -> TorchLM); returns the per-step times of each, first block out, and the losses."""
    trainer = sk.Trainer(sk_model, sk.optim.SGD(lr=LR), BATCH, BPTT, CLIP, progress=False)
    sk_model.train()
    sk_model.reset_state()
    data = list(batches)
    steppers = {"seqkern": trainer.step, **{name: th.step for name, th in peers.items()}}
    times = {name: [] for name in steppers}
    losses = {name: [] for name in steppers}
    for start in range(0, steps, block):
        chunk = [data[i % len(data)] for i in range(start, min(steps, start + block))]
        for name, step in steppers.items():
            for xs, ts in chunk:
                dt, loss = timed(step, xs, ts)
                if start > 0:
                    times[name].append(dt)
                losses[name].append(loss)
        print(f"  steps {start + len(chunk):4d}/{steps}: loss "
              + "  ".join(f"{name} {losses[name][-1]:.3f}" for name in steppers), file=sys.stderr, flush=True)
    return times, losses


def evaluate_all(sk_model, peers, val_ids, rounds=3):
    """Validation perplexity of every model (batch 10, bptt 35, eval mode) and per-batch times."""
    batches = list(TBPTTBatches(val_ids, 10, BPTT))
    times = {name: [] for name in ("seqkern", *peers)}
    ppl = {}
    for r in range(rounds):
        with sk.models.language_model._evaluating(sk_model):
            total = 0.0
            for xs, ts in batches:
                dt, logits = timed(sk_model.predict, xs)
                times["seqkern"].append(dt)
                total += float(sk.softmax_cross_entropy(logits, ts))
            ppl["seqkern"] = float(np.exp(total / len(batches)))
        for name, th in peers.items():
            th.model.eval()
            hidden, total = None, 0.0
            for xs, ts in batches:
                dt, (loss, hidden) = timed(th.eval_loss, xs, ts, hidden)
                times[name].append(dt)
                total += loss
            ppl[name] = float(np.exp(total / len(batches)))
    return ppl, times


def memory_child(lib, steps):
    """Run in a child process: the peak resident memory that `steps` training steps add to
    what the process held before them, in MiB (Linux: the peak is reset first)."""
    vocab, train_ids, _ = corpus(TRAIN_TOKENS, VAL_TOKENS)
    model = seqkern_model(vocab)
    batches = list(TBPTTBatches(train_ids, BATCH, BPTT))
    if lib in PEERS:
        import torch
        torch.set_num_threads(sk.get_num_threads())
        step = TorchLM(torch, model, optimized=PEERS[lib]).step
    else:
        step = sk.Trainer(model, sk.optim.SGD(lr=LR), BATCH, BPTT, CLIP, progress=False).step
    del vocab, train_ids
    before = bench.reset_peak_rss()
    for xs, ts in batches[:steps]:
        step(xs, ts)
    print(json.dumps({"peak_mib": (bench.peak_rss_kib() - before) / 1024}))


def peak_memory(lib, steps=5):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", lib,
                          "--steps", str(steps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=positive_int, default=600,
                    help="training steps for each library")
    ap.add_argument("--block", type=positive_int, default=10, help="steps per alternating block")
    ap.add_argument("--threads", type=positive_int, default=sk.get_num_threads())
    ap.add_argument("--json", type=output_file, help="write the results here")
    ap.add_argument("--memory-child", choices=("seqkern", *PEERS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sk.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(args.memory_child, args.steps)
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocab, train_ids, val_ids = corpus(TRAIN_TOKENS, VAL_TOKENS)
    batches = TBPTTBatches(train_ids, BATCH, BPTT)
    print(f"# {bench.machine()}, {args.threads} threads; seqkern {sk.__version__} "
          f"({sk._core.simd_level()}), torch {torch.__version__}")
    print(f"# GCIDE text: {len(train_ids):,} training tokens, {len(val_ids):,} validation, "
          f"vocabulary {len(vocab):,}; 2-layer LSTM {HIDDEN}, tied, dropout {DROPOUT}, "
          f"batch {BATCH} x {BPTT}, SGD lr {LR}, clip {CLIP}; {args.steps} steps each")
    model = seqkern_model(vocab)
    peers = {name: TorchLM(torch, model, optimized) for name, optimized in PEERS.items()}
    times, losses = train_all(model, peers, batches, args.steps, args.block)
    ppl, eval_times = evaluate_all(model, peers, val_ids)
    mem = {lib: peak_memory(lib) for lib in ("seqkern", *PEERS)}
    tokens, eval_tokens = BATCH * BPTT, 10 * BPTT
    names = ("seqkern", *PEERS)
    rows = []
    print(f"\n{'':<22}" + "".join(f"{n:>12}" for n in names) + f"{'seqkern/torch':>15}{'torch+sk/torch':>16}")
    for what, t, n in (("train tokens/s", times, tokens), ("eval tokens/s", eval_times, eval_tokens)):
        rate = {name: n / np.median(t[name]) for name in names}
        rows.append(dict(what=what, **rate, ratio=rate["seqkern"] / rate["torch"],
                         optimize_ratio=rate["torch+sk"] / rate["torch"]))
        print(f"{what:<22}" + "".join(f"{rate[name]:>12,.0f}" for name in names)
              + f"{rows[-1]['ratio']:>14.2f}x{rows[-1]['optimize_ratio']:>15.2f}x")
    print(f"{'train ms/step median':<22}" + "".join(f"{1e3 * np.median(times[name]):>12.1f}" for name in names))
    print(f"{'val perplexity':<22}" + "".join(f"{ppl[name]:>12.6g}" for name in names))
    print(f"{'peak MiB added':<22}" + "".join(f"{mem[name]:>12.0f}" for name in names))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=bench.machine(), threads=args.threads, steps=args.steps,
                           torch=torch.__version__, rows=rows, val_perplexity=ppl,
                           peak_mib=mem, train_step_s=times, eval_batch_s=eval_times,
                           train_loss=losses), f, indent=1)


if __name__ == "__main__":
    main()
