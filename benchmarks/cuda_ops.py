"""seqkern's CUDA attention, softmax cross-entropy, embedding and CTC against torch on one GPU,
and a 2-layer LSTM language model's step built from them against torch's modules.

Steady state as in cuda_rnn.py: each implementation runs `--calls` calls back to back, timed with
CUDA events, the implementations alternating in blocks; the table gives medians per call.
"train" is the forward that keeps what backward needs plus the backward with every gradient.
torch runs attention two ways and the faster counts: scaled_dot_product_attention (its fused
kernels; dot scores only) and explicit operations (matmul, masked softmax, matmul). Every peer
runs in plain float32 (torch's matmul takes TF32 only when told to). CTC's "train" for torch is
its loss and gradient with respect to the log-probabilities (cuDNN's or its own kernel).

    python benchmarks/cuda_ops.py [--json FILE] [--quick]
"""
from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

import seqkern as sk
from seqkern.cli_args import output_file, positive_int
from cuda_rnn import measure

ATTENTION = [  # (score, B, Tq, Tk, H): benchmarks/attention.py's sizes, and a seq2seq decoder's
    ("dot", 64, 30, 30, 256), ("dot", 32, 1, 512, 512), ("dot", 8, 256, 256, 128),
    ("dot", 4, 1024, 1024, 64), ("general", 64, 30, 30, 256), ("additive", 64, 30, 30, 256),
]
CROSS_ENTROPY = [(700, 10000), (4096, 32000)]  # (N, V): a PTB batch (35 x 20), a larger one
EMBEDDING = [(10000, 650, 700), (50000, 512, 8192)]  # (V, D, N)
CTC = [(50, 16, 20, 10), (200, 32, 29, 50), (1000, 8, 100, 200)]  # (T, B, C, S): ctc.py's
# (T, B, V, H): a 2-layer LSTM language model's training step (lm.py's model, PTB's sizes), and a
# smaller batch
LM = [(35, 20, 10000, 650), (35, 4, 10000, 650)]


def attention_steps(score, B, Tq, Tk, H, train):
    g = torch.Generator(device="cuda").manual_seed(0)
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
    q, k, v, dc = r(B, Tq, H), r(B, Tk, H), r(B, Tk, H), r(B, Tq, H)
    lengths = torch.randint(Tk // 2 + 1, Tk + 1, (B,), device="cuda", generator=g)
    w = {"dot": {}, "general": {"w": r(H, H) / H ** 0.5},
         "additive": {"w_q": r(H, H) / H ** 0.5, "w_k": r(H, H) / H ** 0.5, "v": r(H)}}[score]
    scale = 1 / H ** 0.5 if score == "dot" else None

    def ours():
        out = sk.attention(q, k, v, lengths=lengths, score=score, scale=scale, training=train, **w)
        if train:
            sk.attention_backward(out[2], dc)

    tq, tk, tv = (a.clone().requires_grad_(train) for a in (q, k, v))
    tw = {n: a.clone().requires_grad_(train) for n, a in w.items()}
    keep = torch.arange(Tk, device="cuda")[None, :] < lengths[:, None]  # (B, Tk)

    def explicit():
        with torch.set_grad_enabled(train):
            if score == "dot":
                s = tq @ tk.transpose(1, 2) * scale
            elif score == "general":
                s = tq @ tw["w"] @ tk.transpose(1, 2)
            else:
                s = torch.tanh((tq @ tw["w_q"].T)[:, :, None] + (tk @ tw["w_k"].T)[:, None]) @ tw["v"]
            ctx = torch.softmax(s.masked_fill(~keep[:, None], -torch.inf), dim=-1) @ tv
            if train:
                ctx.backward(dc)

    steps = {"seqkern": ours, "explicit": explicit}
    if score == "dot":
        def sdpa():
            with torch.set_grad_enabled(train):
                ctx = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=keep[:, None], scale=scale)
                if train:
                    ctx.backward(dc)
        steps["sdpa"] = sdpa
    return steps


def cross_entropy_steps(N, V, train):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(N, V, device="cuda", generator=g)
    targets = torch.randint(0, V, (N,), device="cuda", generator=g)
    tl = logits.clone().requires_grad_(train)

    def ours():
        out = sk.softmax_cross_entropy(logits, targets, training=train)
        if train:
            sk.softmax_cross_entropy_backward(out[1])

    def theirs():
        with torch.set_grad_enabled(train):
            loss = F.cross_entropy(tl, targets)
            if train:
                loss.backward()
    return {"seqkern": ours, "torch": theirs}


def embedding_steps(V, D, N, train):
    g = torch.Generator(device="cuda").manual_seed(0)
    weight = torch.randn(V, D, device="cuda", generator=g)
    ids = torch.randint(0, V, (N,), device="cuda", generator=g)
    dy, dweight = torch.randn(N, D, device="cuda", generator=g), torch.empty_like(weight)
    tw = weight.clone().requires_grad_(train)

    def ours():
        sk.embedding(weight, ids)
        if train:
            sk.embedding_backward(ids, dy, dweight, overwrite=True)

    def theirs():
        with torch.set_grad_enabled(train):
            y = F.embedding(ids, tw)
            if train:
                tw.grad = None
                y.backward(dy)
    return {"seqkern": ours, "torch": theirs}


def ctc_steps(T, B, C, S, train):
    g = torch.Generator(device="cuda").manual_seed(0)
    log_probs = torch.randn(T, B, C, device="cuda", generator=g).log_softmax(2)
    targets = torch.randint(1, C, (B, S), device="cuda", generator=g)
    il = torch.full((B,), T, dtype=torch.long)
    tl = torch.full((B,), S, dtype=torch.long)
    tlp = log_probs.clone().requires_grad_(train)

    def ours():
        out = sk.ctc_loss(log_probs, targets, il, tl, training=train)
        if train:
            sk.ctc_loss_backward(out[1])

    def theirs():
        with torch.set_grad_enabled(train):
            loss = F.ctc_loss(tlp, targets, il, tl)
            if train:
                tlp.grad = None
                loss.backward()
    return {"seqkern": ours, "torch": theirs}


def lm_steps(T, B, V, H, train):
    """A 2-layer LSTM language model, the book's and lm.py's: embedding, LSTM, a linear decoder
    tied to nothing, cross-entropy. seqkern's ops against torch's modules (cuDNN for the LSTM)
    on the same weights; the decoder's products are torch's matmul on both sides."""
    g = torch.Generator(device="cuda").manual_seed(0)
    emb, lstm = torch.nn.Embedding(V, H).cuda(), torch.nn.LSTM(H, H, num_layers=2).cuda()
    dec = torch.nn.Linear(H, V).cuda()
    ids = torch.randint(0, V, (T, B), device="cuda", generator=g)
    targets = torch.randint(0, V, (T, B), device="cuda", generator=g)
    weights = [tuple(getattr(lstm, f"{n}_l{l}").detach() for n in
                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) for l in range(2)]
    w_emb, w_dec, b_dec = emb.weight.detach(), dec.weight.detach(), dec.bias.detach()
    d_emb = torch.empty_like(w_emb)

    def ours():
        x = sk.embedding(w_emb, ids)
        if not train:
            y, _, _ = sk.recurrent_stack("lstm", x, weights)
            logits = torch.addmm(b_dec, y.reshape(T * B, H), w_dec.T)
            sk.softmax_cross_entropy(logits, targets.reshape(-1))
            return
        y, _, _, saved = sk.recurrent_stack("lstm", x, weights, training=True)
        rows = y.reshape(T * B, H)
        logits = torch.addmm(b_dec, rows, w_dec.T)
        _, ce = sk.softmax_cross_entropy(logits, targets.reshape(-1), training=True)
        dlogits = sk.softmax_cross_entropy_backward(ce)
        dlogits.T @ rows, dlogits.sum(0)  # the decoder's gradients, as autograd computes them
        g = sk.recurrent_stack_backward(saved, (dlogits @ w_dec).reshape(T, B, H))
        sk.embedding_backward(ids, g["x"], d_emb, overwrite=True)

    def theirs():
        with torch.set_grad_enabled(train):
            for m in (emb, lstm, dec):
                m.zero_grad(set_to_none=True)
            y, _ = lstm(emb(ids))
            loss = F.cross_entropy(dec(y).reshape(T * B, V), targets.reshape(-1))
            if train:
                loss.backward()
    return {"seqkern": ours, "torch": theirs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=output_file, help="write the rows here")
    ap.add_argument("--calls", type=positive_int, default=10)
    ap.add_argument("--blocks", type=positive_int, default=5)
    ap.add_argument("--quick", action="store_true", help="one size of each op")
    args = ap.parse_args()
    gpu = torch.cuda.get_device_name()
    print(f"# {gpu}, torch {torch.__version__}, seqkern {sk.__version__}; float32, medians of "
          f"{args.blocks} blocks of {args.calls} calls")
    print(f"{'op':<14}{'shape':<24}{'mode':<7}{'seqkern ms':>11}{'torch ms':>10}{'(path)':>10}"
          f"{'ratio':>8}")
    cases = ([("attention", a[0], a[1:]) for a in ATTENTION]
             + [("cross_entropy", "", s) for s in CROSS_ENTROPY]
             + [("embedding", "", s) for s in EMBEDDING] + [("ctc", "", s) for s in CTC]
             + [("lm", "", s) for s in LM])
    if args.quick:
        cases = [cases[0], cases[len(ATTENTION)], cases[len(ATTENTION) + len(CROSS_ENTROPY)],
                 cases[-len(LM) - 1], cases[-1]]
    rows = []
    for op, score, shape in cases:
        for mode in ("infer", "train"):
            train = mode == "train"
            if op == "attention":
                steps = attention_steps(score, *shape, train)
            else:
                steps = {"cross_entropy": cross_entropy_steps, "embedding": embedding_steps,
                         "ctc": ctc_steps, "lm": lm_steps}[op](*shape, train)
            t = measure(steps, args.calls, args.blocks)
            theirs, path = min((ms, name) for name, ms in t.items() if name != "seqkern")
            name = f"{op} {score}".strip()
            rows.append({"op": name, "shape": shape, "mode": mode, "seqkern_ms": t["seqkern"],
                         "times_ms": t, "torch_path": path, "ratio": theirs / t["seqkern"]})
            print(f"{name:<14}{str(shape):<24}{mode:<7}{t['seqkern']:11.3f}{theirs:10.3f}"
                  f"{path:>10}{theirs / t['seqkern']:7.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": gpu, "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
