"""Malformed calls to seqkern.torch's modules against torch's own, for test_fuzz.py: a valid call
with its input or state replaced by something wrong (another dtype or rank, a slice, NaN, None,
a list...), or one of the module's weights replaced (another shape or dtype, a transposed or
expanded tensor, None, a buffer). Both modules must then raise the same type of exception, or
both return the same outputs (and, where anything needs them, gradients). Run as a script in a
child process, so that a crash shows as the child's exit status:

    python tests/fuzz_torch.py SEED CALLS LAST_FILE

Before each call it writes the call's description to LAST_FILE; it prints one line "DIFF ..."
for each call where the two differ, and "DONE" at the end. Calls that crash torch itself (a
misshaped weight of a layer; a cell's state of shape (H, n) beside an unbatched input; an LSTM's
misshaped state beside a PackedSequence) are run on seqkern's module alone, which must raise a
RuntimeError. Beside a PackedSequence, torch's recurrent layers check no state (a misshaped one
reaches their kernels); seqkern's run torch's check_forward_args, whose RuntimeError is then
accepted."""
import sys
import warnings

import numpy as np
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import seqkern.torch as skt

KINDS = ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell")


def input_variants(t):
    if isinstance(t, PackedSequence):
        return {"float64": t.double(), "int": t.long(), "requires_grad": PackedSequence(
                    t.data.clone().requires_grad_(), *t[1:]),
                "batch_sizes_wrong": PackedSequence(t.data, t.batch_sizes + 1, *t[2:]),
                "unsorted_dropped": PackedSequence(t.data, t.batch_sizes),
                "data_short": PackedSequence(t.data[:-1], *t[1:]), "None": None}
    return {"float64": t.double(), "int": t.long(), "half": t.half(), "drop_first": t[0],
            "add_first": t[None], "empty": t[:0], "nan": torch.full_like(t, float("nan")),
            "transposed": t.transpose(0, -1), "one_less_column": t[..., :-1],
            "requires_grad": t.clone().requires_grad_(), "list": [t], "None": None, "int3": 3}


def weight_variants(p):
    return {"one_more_row": torch.randn(p.shape[0] + 1, *p.shape[1:]),
            "one_less_row": torch.randn(max(p.shape[0] - 1, 0), *p.shape[1:]),
            "float64": p.detach().double(), "half": p.detach().half(),
            "transposed": p.detach().t().clone() if p.dim() == 2 else p.detach()[None].clone(),
            "add_first": p.detach()[None].clone(),
            "expanded": p.detach().flatten()[:1].expand(p.shape),
            "frozen": p.detach().clone(), "None": None, "buffer": p.detach().clone()}


def build(rng):
    kind = str(rng.choice(KINDS))
    I, H, B, T = (int(v) for v in rng.integers(1, 5, 4))
    kw = {"bias": bool(rng.random() < 0.8)}
    if "Cell" not in kind:
        kw.update(num_layers=int(rng.integers(1, 3)), bidirectional=bool(rng.random() < 0.5),
                  batch_first=bool(rng.random() < 0.5))
        if kind == "LSTM" and H > 1 and rng.random() < 0.3:
            kw["proj_size"] = int(rng.integers(1, H))
    torch.manual_seed(int(rng.integers(1000)))
    theirs = getattr(torch.nn, kind)(I, H, **kw)
    ours = getattr(skt, kind)(I, H, **kw)
    ours.load_state_dict(theirs.state_dict())
    if "Cell" in kind:
        x = torch.randn(B, I) if rng.random() < 0.8 else torch.randn(I)
        size = x.shape[:-1] + (H,)
        sizes = (size, size)
    else:
        x = torch.randn((B, T, I) if kw["batch_first"] else (T, B, I))
        if rng.random() < 0.3:  # sequences of uneven lengths, packed in any order
            x = pack_padded_sequence(x, torch.tensor(rng.integers(1, T + 1, B)),
                                     batch_first=kw["batch_first"], enforce_sorted=False)
        D = 2 if kw["bidirectional"] else 1
        sizes = ((kw["num_layers"] * D, B, kw.get("proj_size") or H), (kw["num_layers"] * D, B, H))
    state = None
    if rng.random() < 0.7:
        state = (torch.randn(sizes[0]), torch.randn(sizes[1])) if kind.startswith("LSTM") \
            else torch.randn(sizes[0])
    return kind, H, theirs, ours, x, state


def mutate(rng, kind, theirs, x, state):
    """(x, state, weight change or None, description)."""
    what = rng.choice(["x", "state", "weight"])
    if what == "x":
        name = str(rng.choice(sorted(input_variants(x))))
        return input_variants(x)[name], state, None, f"x {name}"
    if what == "state" and state is not None:
        j = int(rng.integers(len(state))) if isinstance(state, tuple) else None
        target = state[j] if j is not None else state
        name = str(rng.choice(sorted(input_variants(target))))
        new = input_variants(target)[name]
        if j is not None:
            new = tuple(new if k == j else s for k, s in enumerate(state))
        return x, new, None, f"state[{j}] {name}"
    pname = str(rng.choice([n for n, _ in theirs.named_parameters()]))
    p = dict(theirs.named_parameters())[pname]
    name = str(rng.choice(sorted(weight_variants(p))))
    return x, state, (pname, name, weight_variants(p)[name]), f"{pname} {name}"


def replace_weight(m, change):
    pname, how, new = change
    with torch.no_grad():
        if how == "None":
            setattr(m, pname, None)
        elif how == "buffer":
            delattr(m, pname)
            m.register_buffer(pname, new)
        elif new.is_floating_point():
            setattr(m, pname, torch.nn.Parameter(new, requires_grad=how != "frozen"))
        else:
            setattr(m, pname, new)


def run(m, x, state, change):
    """('ok', outputs, gradients) or ('error', type name, message)."""
    try:
        if change is not None:
            replace_weight(m, change)
        data = x.data if isinstance(x, PackedSequence) else x
        if isinstance(data, torch.Tensor):
            data = data.detach().clone().requires_grad_(data.requires_grad)
            x = PackedSequence(data, *x[1:]) if isinstance(x, PackedSequence) else data
        out = m(x, state)
        leaves = [t for t in torch.utils._pytree.tree_leaves(out)
                  if isinstance(t, torch.Tensor) and t.is_floating_point()]
        loss = sum((t.float() ** 2).sum() for t in leaves)
        grads = []
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            loss.backward()
            grads = [data.grad if isinstance(data, torch.Tensor) else None]
            grads += [p.grad for p in m.parameters()]
        return ("ok", leaves, grads)
    except Exception as e:  # noqa: BLE001 (compared with torch's, not raised)
        return ("error", type(e).__name__, str(e)[:200])


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and a.dtype == b.dtype and torch.allclose(
        a.double(), b.double(), atol=1e-4, rtol=1e-3, equal_nan=True)


def crashes_torch(kind, H, x, state, change, theirs):
    """The calls torch 2.13 does not check and then crashes on (or writes outside its buffers)."""
    if change is not None and "Cell" not in kind and change[1] in (
            "one_more_row", "one_less_row", "transposed", "add_first"):
        return change[2].shape != getattr(theirs, change[0]).shape
    states = state if isinstance(state, tuple) else (state,)
    if kind == "LSTM" and isinstance(x, PackedSequence) and isinstance(state, tuple):
        # unchecked beside packed input, a misshaped state reaches torch's kernel, which
        # crashed on one with an extra leading dimension beside a projection (seed 101)
        n, B = theirs.num_layers * (2 if theirs.bidirectional else 1), int(x.batch_sizes[0])
        want = ((n, B, theirs.proj_size or H), (n, B, H))
        if any(isinstance(s, torch.Tensor) and s.shape != w for s, w in zip(state, want)):
            return True
    return ("Cell" in kind and isinstance(x, torch.Tensor) and x.dim() == 1 and any(
        isinstance(s, torch.Tensor) and s.dim() == 2 and s.shape[0] == H for s in states))


def main(seed, calls, last_file):
    rng = np.random.default_rng(seed)
    for i in range(calls):
        kind, H, theirs, ours, x, state = build(rng)
        x, state, change, description = mutate(rng, kind, theirs, x, state)
        call = f"seed {seed} call {i}: {kind} {description}"
        with open(last_file, "w") as f:
            f.write(call + "\n")
        if "nan" in description:
            continue  # NaN weights or inputs: seqkern skips products with a zero first state
        if crashes_torch(kind, H, x, state, change, theirs):
            got = run(ours, x, state, change)
            if got[:2] != ("error", "RuntimeError"):
                ours = got[:3] if got[0] == "error" else "ran"
                print(f"DIFF {call}: torch crashes; seqkern {ours}", flush=True)
            continue
        a, b = run(theirs, x, state, change), run(ours, x, state, change)
        if (isinstance(x, PackedSequence) and description.startswith("state")
                and b[:2] == ("error", "RuntimeError") and "Expected hidden" in b[2]):
            continue  # torch checks no state beside packed input; seqkern runs its check
        if a[0] != b[0] or a[0] == "error" and a[1] != b[1]:
            print(f"DIFF {call}: torch {a[1:] if a[0] == 'error' else 'ran'}, "
                  f"seqkern {b[1:] if b[0] == 'error' else 'ran'}", flush=True)
        elif a[0] == "ok" and not (len(a[1]) == len(b[1]) and len(a[2]) == len(b[2]) and all(
                same(u, v) for u, v in zip(a[1] + a[2], b[1] + b[2]))):
            print(f"DIFF {call}: other outputs or gradients", flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
