"""seqkern.torch as training scripts meet it: torch's classes, optimize/restore, checkpoints that
load without seqkern, and torch's own implementation for every call the kernels do not take."""
import copy
import os
import re
import subprocess
import sys
import warnings
from contextlib import nullcontext

import pytest

torch = pytest.importorskip("torch")
skt = pytest.importorskip("seqkern.torch")
from torch_helpers import uses_seqkern  # noqa: E402

# The model of PyTorch's word_language_model example, as a user's own module file.
MODEL_SOURCE = '''
import torch.nn as nn


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)

    def forward(self, x, hidden=None):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden
'''

# What the user's evaluation script does on a machine where seqkern is not installed.
LOAD_SOURCE = '''
import sys
sys.modules["seqkern"] = None          # importing seqkern now fails
import torch
import torch.nn as nn
import lm_model
with torch.serialization.safe_globals([lm_model.RNNModel, nn.Dropout, nn.Embedding, nn.LSTM,
                                       nn.Linear]):
    model = torch.load(sys.argv[1], weights_only=True)
model.rnn.flatten_parameters()
model.eval()
x, y = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    out, _ = model(x)
print(type(model.rnn).__module__, type(model.rnn).__name__,
      repr(torch.nn.functional.cross_entropy(out.flatten(0, 1), y.flatten()).item()))
'''


@pytest.fixture
def user_model(tmp_path, monkeypatch):
    (tmp_path / "lm_model.py").write_text(MODEL_SOURCE)
    (tmp_path / "load.py").write_text(LOAD_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import lm_model
    yield lm_model
    sys.modules.pop("lm_model", None)


def corpus(ntoken=50, T=12, B=6, seed=0):
    """A generated token stream in which each token is mostly the previous one plus 1."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.cumsum(torch.randint(0, 3, (T + 1, B), generator=g), 0) % ntoken
    return ids[:-1], ids[1:]


def train(model, steps=30, lr=20.0):
    """The example's loop: SGD, clipping at 0.25, state carried with detach."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = corpus()
    hidden = None
    for _ in range(steps):
        opt.zero_grad()
        out, hidden = model(x, hidden)
        hidden = tuple(h.detach() for h in hidden)
        loss = torch.nn.functional.cross_entropy(out.flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
    return loss.item()


def eval_loss(model):
    model.eval()
    x, y = corpus(seed=1)
    with torch.no_grad():
        out, _ = model(x)
    return torch.nn.functional.cross_entropy(out.flatten(0, 1), y.flatten()).item()


@pytest.mark.parametrize("make,cls,kw", [(skt.LSTM, torch.nn.LSTM, {"proj_size": 3}),
                                         (skt.GRU, torch.nn.GRU, {}),
                                         (skt.RNN, torch.nn.RNN, {"nonlinearity": "relu"})])
def test_subclasses_keep_torchs_attributes(make, cls, kw):
    torch.manual_seed(0)
    a = make(5, 6, 2, bidirectional=True, batch_first=True, **kw)
    torch.manual_seed(0)
    b = cls(5, 6, 2, bidirectional=True, batch_first=True, **kw)
    assert isinstance(a, cls) and repr(a) == repr(b)
    assert a.state_dict().keys() == b.state_dict().keys()
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=k)  # torch's init, same draws
    a.flatten_parameters()
    assert all(w is getattr(a, n) for w, n in zip(a._flat_weights, a._flat_weights_names))
    assert [len(ws) for ws in a.all_weights] == [len(ws) for ws in b.all_weights]
    assert (a.proj_size, a.batch_first) == (b.proj_size, True)
    seen = []
    a.register_forward_hook(lambda m, inputs, out: seen.append(out[0].shape))
    x = torch.randn(3, 4, 5)
    y, _ = a(x)
    assert uses_seqkern(y) and seen == [y.shape]
    torch.testing.assert_close(y, b(x)[0])


def test_weights_set_after_construction_are_used():
    a = skt.GRU(5, 6)
    b = torch.nn.GRU(5, 6)
    a.weight_hh_l0 = torch.nn.Parameter(torch.randn(18, 6))  # torch keeps _flat_weights in step
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 2, 5)
    torch.testing.assert_close(a(x)[0], b(x)[0])


class Jitter(torch.nn.Module):
    """A parametrization with side effects, as spectral_norm (its power iteration, in training)
    and weight dropout have: it counts its runs and draws a random number at each."""

    def __init__(self):
        super().__init__()
        self.runs = 0

    def forward(self, w):
        self.runs += 1
        return w * (1 + 0.01 * torch.rand(()))


@pytest.mark.parametrize("make, names, x", [
    (lambda: torch.nn.LSTM(5, 6, 2, bidirectional=True), ["weight_hh_l1_reverse", "bias_ih_l0"],
     (4, 3, 5)),
    (lambda: torch.nn.GRU(5, 6, bias=False), ["weight_ih_l0"], (4, 3, 5)),
    (lambda: torch.nn.RNN(5, 6, batch_first=True), ["weight_hh_l0"], (3, 4, 5)),
    (lambda: torch.nn.LSTM(5, 6, proj_size=3), ["weight_hr_l0"], (4, 3, 5)),
    (lambda: torch.nn.LSTMCell(5, 6), ["weight_hh", "bias_ih"], (3, 5)),
    (lambda: torch.nn.GRUCell(5, 6), ["weight_ih"], (3, 5)),
])
@pytest.mark.parametrize("mode", ["train", "no_grad", "float16"])
def test_weights_computed_on_access_run_as_often_as_in_torch(make, names, x, mode,
                                                              fresh_warnings):
    """A parametrized weight is computed at each access: torch's layers compute it four times a
    call (_update_flat_weights), its cells once. The optimized module computes it as often and
    in the same order, so spectral_norm's buffers and the random stream end as torch leaves
    them, and so do the outputs and gradients; a fallback does not compute it once more."""
    from torch.nn.utils import parametrize

    runs = []
    for optimized in (False, True):
        torch.manual_seed(0)
        m = make()
        for name in names:
            parametrize.register_parametrization(m, name, Jitter())
        if optimized:
            skt.optimize(m)
            m_optimized = m
        inp = torch.randn(*x)
        if mode == "float16":
            m, inp = m.to(torch.float16), inp.to(torch.float16)
        torch.manual_seed(1)
        falls_back = optimized and mode == "float16"
        with torch.no_grad() if mode != "train" else nullcontext(), \
                pytest.warns(skt.FallbackWarning) if falls_back else nullcontext():
            out = m(inp)
        out = out[0] if isinstance(out, tuple) else out
        if mode == "train":
            out.sum().backward()
        runs.append(([p.runs for ps in m.parametrizations.values() for p in ps], torch.rand(3),
                     out.detach().float(),
                     [p.grad for p in m.parameters()] if mode == "train" else []))
    skt.restore(m_optimized)  # a parametrized module lives until a garbage collection: torch's
    # classes get their own forward back only when no optimized module is left
    (counts, after, out, grads), (counts_o, after_o, out_o, grads_o) = runs
    assert counts == counts_o and torch.equal(after, after_o)
    torch.testing.assert_close(out_o, out)
    for g, g_o in zip(grads, grads_o):
        torch.testing.assert_close(g_o, g)


def test_deepcopy_stays_seqkern_and_pickle_is_torchs():
    a = skt.LSTM(5, 6)
    c = copy.deepcopy(a)
    assert type(c) is skt.LSTM and c.weight_ih_l0 is not a.weight_ih_l0
    torch.testing.assert_close(c.weight_ih_l0, a.weight_ih_l0)
    import pickle
    b = pickle.loads(pickle.dumps(a))
    assert type(b) is torch.nn.LSTM
    assert b._flat_weights[0] is b.weight_ih_l0
    x = torch.randn(3, 2, 5)
    torch.testing.assert_close(a(x)[0], b(x)[0])


@pytest.mark.parametrize("how", ["subclass", "optimize"])
def test_script_save_then_weights_only_load_without_seqkern(user_model, tmp_path, how):
    """The word_language_model script: build, train, torch.save(model); then another process
    without seqkern loads it with weights_only, calls flatten_parameters and evaluates."""
    torch.manual_seed(0)
    model = user_model.RNNModel(50, 16, 24, 2)
    reference = copy.deepcopy(model)
    if how == "subclass":
        model.rnn = skt.LSTM(16, 24, 2, dropout=0.2)
        model.rnn.load_state_dict(reference.rnn.state_dict())
    else:
        skt.optimize(model)
    model.train()
    x, _ = corpus()
    assert uses_seqkern(model(x)[0])
    torch.manual_seed(1)
    loss = train(model)
    assert loss < 3.0  # from log(50) = 3.9
    path = tmp_path / "model.pt"
    with open(path, "wb") as f:
        torch.save(model, f)
    torch.save(corpus(seed=1), tmp_path / "data.pt")
    expected = eval_loss(model)
    out = subprocess.run([sys.executable, str(tmp_path / "load.py"), str(path), str(tmp_path / "data.pt")],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    module, name, loss_there = out.stdout.split()
    assert (module, name) == ("torch.nn.modules.rnn", "LSTM")
    assert float(loss_there) == pytest.approx(expected, rel=1e-5)
    # and in this process, with torch's own safe globals only
    import torch.nn as nn
    with torch.serialization.safe_globals([user_model.RNNModel, nn.Dropout, nn.Embedding, nn.LSTM, nn.Linear]):
        loaded = torch.load(path, weights_only=True)
    loaded.rnn.flatten_parameters()
    assert type(loaded.rnn) is torch.nn.LSTM
    assert eval_loss(loaded) == pytest.approx(expected, rel=1e-5)


class Tagger(torch.nn.Module):
    """Nested recurrent modules of all three kinds, one of them inside a ModuleList."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 8)
        self.blocks = torch.nn.ModuleList([torch.nn.GRU(8, 10, bidirectional=True),
                                           torch.nn.RNN(20, 10, nonlinearity="relu")])
        self.inner = torch.nn.Sequential(torch.nn.Linear(10, 10))
        self.lstm = torch.nn.LSTM(10, 12, 2, batch_first=True)
        self.out = torch.nn.Linear(12, 5)

    def forward(self, ids):
        h, _ = self.blocks[0](self.embed(ids))
        h, _ = self.blocks[1](h)
        h, _ = self.lstm(self.inner(h).transpose(0, 1))
        return self.out(h)


def tagger_step(model, opt):
    ids = torch.arange(28).reshape(7, 4) % 20
    opt.zero_grad()
    out = model(ids)
    loss = torch.nn.functional.cross_entropy(out.flatten(0, 1), torch.arange(28) % 5)
    loss.backward()
    opt.step()
    return out


def test_optimize_in_place_keeps_classes_parameters_and_optimizer():
    torch.manual_seed(0)
    model = Tagger()
    twin = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)      # built before optimize
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-2)
    params = dict(model.named_parameters())
    hooks = []
    model.lstm.register_forward_hook(lambda *a: hooks.append(1))
    types = [type(m) for m in model.modules()]
    assert skt.optimize(model) is model
    try:
        assert [type(m) for m in model.modules()] == types
        assert all(p is params[k] for k, p in model.named_parameters())
        for _ in range(3):
            out = tagger_step(model, opt)
            ref = tagger_step(twin, twin_opt)
            assert uses_seqkern(out)
            torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
        assert len(hooks) == 3
        for (k, p), q in zip(model.state_dict().items(), twin.state_dict().values()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=k)
        assert not uses_seqkern(twin(torch.zeros(3, 2, dtype=torch.int64)))  # others untouched
    finally:
        skt.restore(model)
    assert not uses_seqkern(model(torch.zeros(3, 2, dtype=torch.int64)))
    assert torch.nn.LSTM.forward is skt._TORCH_FORWARD[torch.nn.LSTM]


def test_optimized_model_pickles_as_plain_torch():
    model = skt.optimize(Tagger())
    try:
        import pickle
        state = pickle.dumps(model)
        assert b"seqkern" not in state
    finally:
        skt.restore(model)


def reference_and_ours(cls=torch.nn.LSTM, **kw):
    torch.manual_seed(0)
    theirs = cls(5, 6, **kw)
    ours = {torch.nn.LSTM: skt.LSTM, torch.nn.GRU: skt.GRU, torch.nn.RNN: skt.RNN}[cls](5, 6, **kw)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize("case", ["meta", "float16", "bfloat16", "autocast", "torch.func",
                                  "trace", "compile"])
def test_fallbacks_warn_once_and_match_torch(case, fresh_warnings):
    ours, theirs = reference_and_ours(num_layers=2)
    x = torch.randn(4, 3, 5)
    if case == "meta":
        ours, theirs, x = ours.to("meta"), theirs.to("meta"), x.to("meta")
    elif case in ("float16", "bfloat16"):
        dtype = getattr(torch, case)
        ours, theirs, x = ours.to(dtype), theirs.to(dtype), x.to(dtype)
    reasons = {"meta": "meta tensors", "float16": "torch.float16 tensors",
               "bfloat16": "torch.bfloat16 tensors", "autocast": "CPU autocast",
               "torch.func": "torch.func", "trace": "TorchScript", "compile": "torch.compile"}

    def run(m):
        if case == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return m(x)[0]
        if case == "torch.func":
            return torch.func.grad(lambda x: m(x)[0].sum())(x)
        if case == "trace":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.trace(m, x)(x)[0]
        if case == "compile":
            return torch.compile(m, backend="eager")(x)[0]
        return m(x)[0]

    try:
        expected = run(theirs)
    except RuntimeError as e:  # oneDNN has no bf16 LSTM on CPUs without AVX-512
        with pytest.warns(skt.FallbackWarning, match=reasons[case]):
            with pytest.raises(type(e), match=re.escape(str(e))):
                run(ours)
        return
    with pytest.warns(skt.FallbackWarning, match=reasons[case]):
        got = run(ours)
    if case != "meta":
        torch.testing.assert_close(got, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error", skt.FallbackWarning)  # once per reason
        run(ours)


class Scriptable(torch.nn.Module):
    """A model torch.jit.script compiles: a recurrent layer, then a linear head."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.head = rnn, torch.nn.Linear(rnn.hidden_size * (1 + rnn.bidirectional), 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y)


@pytest.mark.parametrize("make", ["subclass", "optimize"])
@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN])
def test_torch_jit_script_compiles_torchs_forward(cls, make):
    # Before, scripting a model holding a seqkern.torch layer failed in TorchScript's compiler
    # ("Unknown type name '_CELL_CLASSES'").
    ours, theirs = reference_and_ours(cls, num_layers=2, bidirectional=cls is torch.nn.GRU)
    if make == "optimize":
        ours = copy.deepcopy(theirs)
    model, reference = Scriptable(ours), Scriptable(theirs)
    model.head.load_state_dict(reference.head.state_dict())
    if make == "optimize":
        skt.optimize(model)
    x = torch.randn(4, 3, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), reference(x))
    scripted(x).sum().backward()  # the scripted model trains the model's own parameters
    reference(x).sum().backward()
    torch.testing.assert_close(model.rnn.weight_hh_l0.grad, reference.rnn.weight_hh_l0.grad)
    if make == "optimize":
        skt.restore(model)


@pytest.mark.parametrize("make", ["subclass", "optimize"])
def test_torch_export_records_torchs_graph(make, fresh_warnings):
    ours, theirs = reference_and_ours(num_layers=2)
    reference = Scriptable(theirs)
    model = copy.deepcopy(reference)
    if make == "subclass":
        model.rnn = ours
    else:
        skt.optimize(model)
    x = torch.randn(4, 3, 5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's, about _flat_weights
            exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), reference(x))
    finally:
        skt.restore(model)


@pytest.mark.parametrize("make", [lambda: skt.LSTM(5, 6), lambda: skt.GRU(5, 6, 2),
                                  lambda: skt.LSTMCell(5, 6)], ids=["one layer", "stack", "cell"])
def test_a_second_backward_through_a_freed_graph_raises_as_torchs(make):
    """Truncated BPTT that forgets to detach the carried state backpropagates into the last
    chunk's freed graph: torch raises "Trying to backward through the graph a second time", the
    error that tells users so; seqkern's Functions ran that backward again, adding the last
    chunk's gradients once more."""
    m = make()
    x = torch.randn(3, 5) if isinstance(m, torch.nn.LSTMCell) else torch.randn(4, 3, 5)
    state = None
    for step in range(2):
        out = m(x, state)
        y = out[0] if isinstance(out, tuple) else out
        state = out if isinstance(m, torch.nn.LSTMCell) else out[1]  # not detached
        if step == 0:
            y.sum().backward()
        else:
            with pytest.raises(RuntimeError, match="backward through the graph a second time"):
                y.sum().backward()
    y = m(x)[0]  # (a layer's y, a cell's h)
    y.sum().backward(retain_graph=True)
    y.sum().backward()  # retained: runs twice, as torch's does


@pytest.mark.parametrize("layers", [1, 2], ids=["one layer", "stack"])
def test_the_kernels_buffers_go_when_torch_frees_the_graphs(layers):
    """A training loop holds its last step's graph (loss, output) while the next forward runs.
    torch frees a node's saved tensors at its backward; seqkern's buffers (ctx.saved) lived as
    long as the graph, two steps' at once (2-layer LSTM (100, 64, 512, 512): peak RSS 936 MB,
    torch's 718). Now each training forward drops those of the graphs already backpropagated,
    and keeps those retained (retain_graph) or still waiting."""
    torch.manual_seed(0)
    ours = skt.LSTM(64, 128, layers)
    theirs = torch.nn.LSTM(64, 128, layers)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(20, 32, 64)  # buffers of 20 * 32 * 512 * layers floats: over 1 MiB
    kept, _ = ours(x)  # a graph held and never backpropagated holds back no other's release
    y1, _ = ours(x)
    y1.sum().backward()
    y2, _ = ours(x)
    assert y1.grad_fn.saved is None and y2.grad_fn.saved is not None
    assert kept.grad_fn.saved is not None
    y2.sum().backward(retain_graph=True)
    y3, _ = ours(x)  # y2's graph was retained: its buffers stay
    assert y2.grad_fn.saved is not None
    ours.zero_grad()
    y2.sum().backward()
    (y3 ** 2).sum().backward()
    theirs(x)[0].sum().backward()  # torch's, the gradients of y2 and y3's losses
    theirs(x)[0].pow(2).sum().backward()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-4)
    # activation checkpointing, whose saved-tensor hooks recompute the forward in backward
    for reentrant in (False, True):
        grads = []
        for m in (ours, theirs):
            m.zero_grad()
            xx = x.clone().requires_grad_()
            y = torch.utils.checkpoint.checkpoint(lambda a: m(a)[0], xx, use_reentrant=reentrant)
            (y ** 2).sum().backward()
            grads.append([xx.grad] + [p.grad for p in m.parameters()])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_quantize_dynamic_as_the_readme_says():
    """quantize_dynamic matches exact classes: an optimize'd nn.LSTM becomes torch's int8 LSTM,
    a seqkern.torch.LSTM stays itself (float32, on seqkern's kernels)."""
    ours, theirs = reference_and_ours(num_layers=2)
    quantize = torch.ao.quantization.quantize_dynamic
    x = torch.randn(4, 3, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 deprecates eager-mode quantization
        model = Scriptable(theirs)
        expected = quantize(copy.deepcopy(model), {torch.nn.LSTM}, dtype=torch.qint8)
        optimized = skt.optimize(copy.deepcopy(model))
        try:
            q = quantize(optimized, {torch.nn.LSTM}, dtype=torch.qint8, inplace=True)
            assert type(q.rnn) is type(expected.rnn) is torch.ao.nn.quantized.dynamic.LSTM
            torch.testing.assert_close(q(x), expected(x))
        finally:
            skt.restore(optimized)
        kept = quantize(Scriptable(ours), {torch.nn.LSTM}, dtype=torch.qint8)
    assert type(kept.rnn) is skt.LSTM
    y, _ = kept.rnn(x)
    assert uses_seqkern(y)


@pytest.mark.parametrize("cls", [skt.LSTMCell, skt.GRUCell, skt.RNNCell])
def test_torch_jit_script_compiles_a_cell(cls):
    torch.manual_seed(0)
    cell = cls(5, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(cell)
    x = torch.randn(3, 5)
    torch.testing.assert_close(scripted(x), cell(x))


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN])
def test_double_backward_falls_back_and_matches_torch(cls, fresh_warnings):
    ours, theirs = reference_and_ours(cls, num_layers=2, bidirectional=True)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 3, 5, generator=g, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 4])
    results = []
    for m in (ours.double(), theirs.double()):
        xi = x.clone().requires_grad_()
        packed = torch.nn.utils.rnn.pack_padded_sequence(xi, lengths, enforce_sorted=False)
        y, _ = m(packed)
        assert uses_seqkern(y.data) == (m is ours)
        with pytest.warns(skt.FallbackWarning, match="double backward") if m is ours else nullcontext():
            (dx,) = torch.autograd.grad((y.data ** 2).sum(), xi, create_graph=True)
        penalty = (dx ** 2).sum()  # a gradient penalty, as in WGAN-GP
        results.append([dx, *torch.autograd.grad(penalty, [xi, *m.parameters()])])
    for u, v in zip(*results):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-10)


def test_input_of_another_dtype_raises_torchs_error(fresh_warnings):
    ours, theirs = reference_and_ours()
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    with pytest.raises(ValueError) as expected:
        theirs(x)
    with pytest.raises(ValueError) as got:
        ours(x)
    assert str(got.value) == str(expected.value)


def test_optimize_rejects_non_modules():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        skt.optimize([torch.nn.LSTM(2, 3)])


def test_kernels_follow_torchs_thread_count():
    import seqkern as sk
    before, sk_before = torch.get_num_threads(), sk.get_num_threads()
    try:
        torch.set_num_threads(1)
        skt.GRU(3, 4)(torch.randn(2, 1, 3))
        assert sk.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        sk.set_num_threads(sk_before)


def test_fallback_warning_names_the_callers_line(fresh_warnings):
    m = skt.LSTM(3, 4).to(torch.bfloat16)
    with pytest.warns(skt.FallbackWarning) as record:
        m(torch.randn(2, 1, 3, dtype=torch.bfloat16))
    assert record[0].filename == __file__
