"""Fused attention (sk.attention + attention_backward) against PyTorch's fastest CPU path and the
NumPy twin, forward plus backward, and one training epoch of the date task, AttentionSeq2Seq
against the same model in torch modules.

    python benchmarks/attention.py [--json out.json] [--no-epoch]

Dot scores scaled by 1/sqrt(H), values separate from keys, float32, no lengths, weights not
returned. torch runs both scaled_dot_product_attention and explicit ops (bmm, softmax, bmm) and
the faster one counts. A second table times additive (Bahdanau) scores, v . tanh(W_q q + W_k k),
against the same in torch's explicit ops (which keep the (B, Tq, Tk, A) tensor of tanh). Times
are medians of calls made back to back in turns (seqkern.bench.paired_times); peak memory is
what the first forward+backward at a size adds to the process (the inputs excluded), measured
in a child process per library (Linux: the peak resident set is reset first).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import seqkern as sk
from seqkern import bench, reference
from seqkern.cli_args import output_file, positive_int
from seqkern.trainer import train_step

SIZES = [(64, 30, 30, 256), (32, 1, 512, 512), (8, 256, 256, 128), (4, 1024, 1024, 64)]
ADDITIVE_SIZES = [(32, 20, 30, 256, 128), (1, 50, 50, 256, 128), (8, 100, 100, 128, 64)]  # + A


def inputs(B, Tq, Tk, H, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(shape).astype(np.float32)
               for shape in ((B, Tq, H), (B, Tk, H), (B, Tk, H)))
    return q, k, v, rng.standard_normal((B, Tq, H)).astype(np.float32)


def seqkern_step(q, k, v, dc, impl=sk):
    scale = 1 / np.sqrt(q.shape[2])

    def step():
        _, _, saved = impl.attention(q, k, v, scale=scale, training=True)
        return impl.attention_backward(saved, dc)
    return step


def torch_steps(torch, q, k, v, dc):
    tq, tk, tv = (torch.from_numpy(a).requires_grad_() for a in (q, k, v))
    tdc = torch.from_numpy(dc)
    scale = 1 / np.sqrt(q.shape[2])

    def sdpa():
        for t in (tq, tk, tv):
            t.grad = None
        torch.nn.functional.scaled_dot_product_attention(tq, tk, tv).backward(tdc)

    def explicit():
        for t in (tq, tk, tv):
            t.grad = None
        w = torch.softmax(scale * tq @ tk.transpose(1, 2), dim=2)
        (w @ tv).backward(tdc)
    return {"sdpa": sdpa, "explicit": explicit}


def additive_weights(H, A, seed=1):
    """w_q (A, H), w_k (A, H), v (A,) of additive scores."""
    rng = np.random.default_rng(seed)
    return tuple((rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
                 for shape in ((A, H), (A, H), (A,)))


def additive_seqkern_step(q, k, v, dc, w, impl=sk):
    w_q, w_k, u = w

    def step():
        _, _, saved = impl.attention(q, k, v, score="additive", w_q=w_q, w_k=w_k, v=u,
                                     training=True)
        return impl.attention_backward(saved, dc)
    return step


def additive_torch_step(torch, q, k, v, dc, w):
    tq, tk, tv, tw_q, tw_k, tu = (torch.from_numpy(a).requires_grad_() for a in (q, k, v, *w))
    tdc = torch.from_numpy(dc)

    def step():
        for t in (tq, tk, tv, tw_q, tw_k, tu):
            t.grad = None
        scores = torch.tanh((tq @ tw_q.T)[:, :, None, :] + (tk @ tw_k.T)[:, None, :, :]) @ tu
        (torch.softmax(scores, dim=2) @ tv).backward(tdc)
    return step


def memory_child(lib, size):
    """In a child process: MiB that the first forward+backward at `size` adds to the peak
    resident set (after one at a tiny size, so that libraries' own set-up does not count)."""
    if lib == "torch":
        import torch
        torch.set_num_threads(sk.get_num_threads())
        make = lambda *a: torch_steps(torch, *a)["sdpa"]  # noqa: E731
    else:
        make = seqkern_step
    make(*inputs(2, 2, 2, 8))()
    step = make(*inputs(*size))
    before = bench.reset_peak_rss()
    step()
    print(json.dumps({"peak_mib": (bench.peak_rss_kib() - before) / 1024}))


def peak_memory(lib, size):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", lib,
                          *map(str, size)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def date_epoch(torch, batch=128, hidden=256, embed=16):
    """Seconds for one epoch of the date task: seqkern's AttentionSeq2Seq and the same model in
    torch modules (pack_padded_sequence encoder, bmm attention with the padding masked), same
    sizes, batches and Adam; the sources reversed in both."""
    from seqkern.data import Seq2SeqData, date_pairs

    data = Seq2SeqData.from_pairs(date_pairs(50000), 0.1, seed=0)
    src, lengths, tgt = data.encode(data.train)
    model = sk.models.AttentionSeq2Seq(data.vocab, embed, hidden, reverse_input=True)
    order = np.random.default_rng(0).permutation(len(src))
    batches = [order[i:i + batch] for i in range(0, len(src), batch)]
    opt = sk.optim.Adam(lr=1e-2)

    def sk_epoch():
        for idx in batches:
            train_step(model, opt, (src[idx], lengths[idx], tgt[idx]), clip=5.0)

    nn = torch.nn
    V = len(data.vocab)

    class TorchAttentionSeq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc_embed, self.dec_embed = nn.Embedding(V, embed), nn.Embedding(V, embed)
            self.encoder = nn.LSTM(embed, hidden, batch_first=True)
            self.decoder = nn.LSTM(embed, hidden, batch_first=True)
            self.out = nn.Linear(2 * hidden, V)

        def forward(self, src, lengths, dec_in):
            packed = nn.utils.rnn.pack_padded_sequence(self.enc_embed(src), lengths,
                                                       batch_first=True, enforce_sorted=False)
            hs, state = self.encoder(packed)
            hs, _ = nn.utils.rnn.pad_packed_sequence(hs, batch_first=True,
                                                     total_length=src.shape[1])
            y, _ = self.decoder(self.dec_embed(dec_in), state)
            s = y @ hs.transpose(1, 2)
            mask = torch.arange(src.shape[1])[None, None, :] >= lengths[:, None, None]
            context = torch.softmax(s.masked_fill(mask, float("-inf")), dim=2) @ hs
            return self.out(torch.cat([context, y], dim=2))

    tm = TorchAttentionSeq2Seq()
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    S = src.shape[1]
    rev = np.where(np.arange(S) < lengths[:, None], lengths[:, None] - 1 - np.arange(S), np.arange(S))
    tsrc = torch.from_numpy(np.take_along_axis(src, rev, axis=1))
    tlen, ttgt = torch.from_numpy(lengths), torch.from_numpy(tgt)

    def torch_epoch():
        for idx in batches:
            i = torch.from_numpy(idx)
            logits = tm(tsrc[i], tlen[i], ttgt[i, :-1])
            loss = nn.functional.cross_entropy(logits.reshape(-1, V), ttgt[i, 1:].reshape(-1),
                                               ignore_index=data.vocab.stoi["<pad>"])
            topt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(tm.parameters(), 5.0)
            topt.step()

    times = {"seqkern": [], "torch": []}
    for _ in range(2):  # alternating, the better of two
        for name, fn in (("seqkern", sk_epoch), ("torch", torch_epoch)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}, len(src)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=positive_int, default=sk.get_num_threads())
    ap.add_argument("--repeat", type=positive_int, default=7)
    ap.add_argument("--no-epoch", action="store_true", help="skip the date-task epoch")
    ap.add_argument("--json", type=output_file)
    ap.add_argument("--memory-child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sk.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(args.memory_child[0], tuple(map(int, args.memory_child[1:])))
    import torch

    torch.set_num_threads(args.threads)
    print(f"# {bench.machine()}, {args.threads} threads; torch {torch.__version__}; "
          f"float32 forward+backward, medians of calls back to back")
    print(f"{'(B, Tq, Tk, H)':<22}{'seqkern ms':>11}{'torch ms':>10}{'(path)':>10}{'ratio':>8}"
          f"{'numpy ms':>10}{'MiB seqkern':>13}{'MiB torch':>11}")
    rows = []
    for size in SIZES:
        q, k, v, dc = inputs(*size)
        steps = torch_steps(torch, q, k, v, dc)
        t_sk, t_sdpa, t_exp = bench.paired_times(
            [seqkern_step(q, k, v, dc), steps["sdpa"], steps["explicit"]], args.repeat)
        (t_np,) = bench.paired_times([seqkern_step(q, k, v, dc, reference)], 3, min_seconds=0)
        t_th, path = min((t_sdpa, "sdpa"), (t_exp, "explicit"))
        mem = {lib: peak_memory(lib, size) for lib in ("seqkern", "torch")}
        rows.append(dict(size=size, seqkern_ms=1e3 * t_sk, torch_ms=1e3 * t_th, torch_path=path,
                         sdpa_ms=1e3 * t_sdpa, explicit_ms=1e3 * t_exp, numpy_ms=1e3 * t_np,
                         ratio=t_th / t_sk, peak_mib=mem))
        print(f"{str(size):<22}{1e3 * t_sk:>11.3f}{1e3 * t_th:>10.3f}{path:>10}"
              f"{t_th / t_sk:>7.2f}x{1e3 * t_np:>10.2f}{mem['seqkern']:>13.1f}{mem['torch']:>11.1f}",
              flush=True)
    print(f"\nadditive scores\n{'(B, Tq, Tk, H, A)':<27}{'seqkern ms':>11}{'torch ms':>10}"
          f"{'ratio':>8}{'numpy ms':>10}")
    additive_rows = []
    for B, Tq, Tk, H, A in ADDITIVE_SIZES:
        q, k, v, dc = inputs(B, Tq, Tk, H)
        w = additive_weights(H, A)
        t_sk, t_th = bench.paired_times([additive_seqkern_step(q, k, v, dc, w),
                                         additive_torch_step(torch, q, k, v, dc, w)], args.repeat)
        (t_np,) = bench.paired_times([additive_seqkern_step(q, k, v, dc, w, reference)], 3,
                                     min_seconds=0)
        size = (B, Tq, Tk, H, A)
        additive_rows.append(dict(size=size, seqkern_ms=1e3 * t_sk, torch_ms=1e3 * t_th,
                                  numpy_ms=1e3 * t_np, ratio=t_th / t_sk))
        print(f"{str(size):<27}{1e3 * t_sk:>11.3f}{1e3 * t_th:>10.3f}{t_th / t_sk:>7.2f}x"
              f"{1e3 * t_np:>10.2f}", flush=True)
    epoch = None
    if not args.no_epoch:
        times, n = date_epoch(torch)
        epoch = dict(seconds=times, pairs=n)
        print(f"\ndate task, one epoch of {n:,} pairs (AttentionSeq2Seq, hidden 256, batch 128): "
              f"seqkern {times['seqkern']:.1f} s, torch {times['torch']:.1f} s, "
              f"{times['torch'] / times['seqkern']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=bench.machine(), threads=args.threads, rows=rows,
                           additive_rows=additive_rows, date_epoch=epoch), f, indent=1)


if __name__ == "__main__":
    main()
