"""Text generation, a token at a time: seqkern's language model (generate, float32 and bfloat16)
against the same model in PyTorch (CPU), sampling each token as its word_language_model example
does, in one process.

    python benchmarks/generate.py                 # vocabulary 10,000; 1 x 100 and 2 x 650, tied
    python benchmarks/generate.py --shapes 10000,650,650,2 --length 100 --json out.json

Each shape is V,E,H,L: a vocabulary of V, embeddings of E, L LSTM layers of H, the output layer
tied to the embedding where E = H (as BetterRNNLM). Both libraries hold the same weights
(seqkern's initialization, copied into torch's modules). A call generates --length tokens from
a 3-token prefix: seqkern's model.generate(prefix, length, seed), in eval(precision=...) mode;
torch's, under no_grad, the prefix through Embedding -> LSTM -> Linear at once, then a token at a
time, each drawn by torch.multinomial from the softmax of the last logits, the LSTM's state
carried. Times are the steady state of seqkern.bench.steady_times (calls back to back in turns,
the three taking turns), per token; ratio: torch's time over seqkern's. Weights are random: the
speed of a step does not depend on what the model learnt.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import seqkern as sk
from seqkern import bench
from seqkern.cli_args import output_file, positive_int, sizes, steady_calls
from seqkern.models import RNNLM

SHAPES = [(10_000, 100, 100, 1), (10_000, 650, 650, 2)]


def models(V, E, H, L):
    """(seqkern RNNLM in eval mode at float32 and at bfloat16, torch modules (embedding, lstm,
    linear)), all with the same weights (the seed's)."""
    ours = [RNNLM(vocab_size=V, wordvec_size=E, hidden_size=H, num_layers=L, tie_weights=E == H,
                  seed=0).eval(precision=precision) for precision in ("float32", "bfloat16")]
    emb, lstm, out = torch.nn.Embedding(V, E), torch.nn.LSTM(E, H, L), torch.nn.Linear(H, V)
    p = ours[0].params
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(p["embed.weight"]))
        for name, w in lstm.named_parameters():
            w.copy_(torch.from_numpy(p["lstm." + name]))
        out.weight.copy_(torch.from_numpy(p["embed.weight" if E == H else "out.weight"]))
        out.bias.copy_(torch.from_numpy(p["out.bias"]))
    return ours, (emb.eval(), lstm.eval(), out.eval())


def torch_generate(emb, lstm, out, prefix, length, generator):
    """word_language_model's generate.py loop: the prefix at once, then a token at a time."""
    with torch.no_grad():
        x = torch.tensor(prefix, dtype=torch.long)[:, None]
        y, state = lstm(emb(x))
        logits = out(y[-1, 0])
        tokens = list(prefix)
        for _ in range(length):
            token = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
            tokens.append(int(token))
            y, state = lstm(emb(token[None]), state)
            logits = out(y[0, 0])
    return tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="*", type=sizes("V,E,H,L"),
                        help="V,E,H,L each (default: the standard set)")
    parser.add_argument("--length", type=positive_int, default=50, help="tokens a call")
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument("--calls", type=steady_calls, default=5)
    parser.add_argument("--turns", type=positive_int, default=4)
    parser.add_argument("--json", type=output_file)
    args = parser.parse_args()
    threads = args.threads or sk.get_num_threads()
    sk.set_num_threads(threads)
    torch.set_num_threads(threads)
    print(f"# machine: {bench.machine()}; bf16 dot products: {sk._core.bf16_native()}")
    print(f"# seqkern {sk.__version__}, torch {torch.__version__}; threads={threads}, "
          f"{args.length} tokens a call, {args.turns} turns of {args.calls} calls back to back")
    print(f"{'V':>6} {'E':>4} {'H':>4} {'L':>2}  {'sk f32':>8} {'sk bf16':>8} {'torch':>8}  "
          f"{'vs sk32':>8} {'vs sk16':>8}   (ms a token)")
    rows = []
    prefix = [1, 2, 3]
    for V, E, H, L in args.shapes or SHAPES:
        (f32, b16), (emb, lstm, out) = models(V, E, H, L)
        generator = torch.Generator().manual_seed(0)
        steps = [lambda: f32.generate(prefix, length=args.length, seed=0),
                 lambda: b16.generate(prefix, length=args.length, seed=0),
                 lambda: torch_generate(emb, lstm, out, prefix, args.length, generator)]
        sk32, sk16, th = (r[0] * 1e3 / args.length
                          for r in bench.steady_times(steps, args.calls, args.turns))
        row = {"V": V, "E": E, "H": H, "L": L, "seqkern_f32_ms_token": sk32,
               "seqkern_bf16_ms_token": sk16, "torch_f32_ms_token": th,
               "torch_vs_seqkern_f32": th / sk32, "torch_vs_seqkern_bf16": th / sk16}
        rows.append(row)
        print(f"{V:6} {E:4} {H:4} {L:2}  {sk32:8.3f} {sk16:8.3f} {th:8.3f}  {th / sk32:7.2f}x "
              f"{th / sk16:7.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": bench.machine(), "bf16_native": sk._core.bf16_native(),
                       "torch": torch.__version__, "threads": threads, "length": args.length,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
