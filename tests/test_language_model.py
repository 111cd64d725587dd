"""Language models end to end: data, batching, whole-model gradients, optimizers against torch,
training, generation, checkpoints, metrics, the command line, bad input."""
import gzip
import io
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import seqkern as sk
from seqkern import _core
from seqkern import metrics, optim
from seqkern.data import EOS, PAD, START, UNK, TBPTTBatches, Vocabulary
from seqkern.gradcheck import numerical_gradient
from seqkern.models import RNNLM, BetterRNNLM
from seqkern.models.sampling import _nucleus, next_token

TEXT = "the cat sat on the mat\nthe dog sat on the log\n\na cat and a dog\n"


# -- data ---------------------------------------------------------------------------------
def test_vocabulary_word_and_char():
    v = Vocabulary.build(TEXT, level="word")
    assert v.itos[:5] == [UNK, EOS, "the", "cat", "sat"]  # by count, ties by first appearance
    ids = v.encode(TEXT + "an unseen word\n")
    assert ids[-4:].tolist() == [0, 0, 0, 1]
    assert v.decode(v.encode(TEXT)) == "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n"
    c = Vocabulary.build(TEXT, level="char", max_size=6)
    assert len(c) == 6 and c.itos[2] == " "
    assert c.decode(c.encode("tt z")) == "tt " + UNK
    assert Vocabulary.build("ü ü x", level="char").encode("üx").tolist() == [2, 4]
    # characters outside the vocabulary, above its largest code point or below it, are <unk>
    emoji = Vocabulary.build("a😀b\x00", level="char")
    assert emoji.encode("😀ba\x00日🙂\x01").tolist() == [emoji.stoi["😀"], emoji.stoi["b"],
                                                       emoji.stoi["a"], emoji.stoi["\x00"],
                                                       0, 0, 0]
    assert emoji.encode("").dtype == np.int64 and emoji.encode("").shape == (0,)
    with pytest.raises(ValueError, match="text: is empty"):
        Vocabulary.build("  \n", level="word")
    with pytest.raises(ValueError, match="level"):
        Vocabulary.build(TEXT, level="byte")
    with pytest.raises(TypeError, match=r"text: expected a str, got list \(join the tokens"):
        v.encode(["the", "cat"])
    for bad in ([len(v)], [-1], [1.0]):  # -1 would wrap to the last token
        with pytest.raises(ValueError, match=f"ids: expected integers in 0..{len(v) - 1}"):
            v.decode(bad)


def test_vocabulary_from_a_file(tmp_path):
    """from_file reads text; a compressed file read so was a vocabulary of its bytes."""
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    assert Vocabulary.from_file(path).itos == Vocabulary.build(TEXT).itos
    path.write_bytes(gzip.compress(TEXT.encode()))
    with pytest.raises(ValueError, match=r"t.txt: compressed \(gzip\): decompress it first"):
        Vocabulary.from_file(path, level="char")
    # a byte-order mark, as Windows editors write, made a token of "\ufeff" + the first word
    path.write_bytes(b"\xef\xbb\xbf" + TEXT.encode())
    for level in ("word", "char"):
        assert Vocabulary.from_file(path, level).itos == Vocabulary.build(TEXT, level).itos


def test_tbptt_batches_follow_the_book():
    """The book's RnnlmTrainer.get_batch: rows start at i * (n // B) and every batch moves each
    row T steps on, wrapping around; targets are the next tokens."""
    ids = np.arange(103) * 7
    B, T = 4, 5
    batches = TBPTTBatches(ids, B, T)
    xs_all, ts_all = ids[:-1], ids[1:]
    n = len(xs_all)
    jump, time_idx = n // B, 0
    assert len(batches) == n // (B * T)
    for _ in range(2):  # two epochs: the position carries on, as in the book
        for xs, ts in batches:
            want_x, want_t = np.empty((B, T), int), np.empty((B, T), int)
            for t in range(T):
                for i, offset in enumerate([i * jump for i in range(B)]):
                    want_x[i, t] = xs_all[(offset + time_idx) % n]
                    want_t[i, t] = ts_all[(offset + time_idx) % n]
                time_idx += 1
            np.testing.assert_array_equal(xs, want_x)
            np.testing.assert_array_equal(ts, want_t)
    with pytest.raises(ValueError, match="too few"):
        TBPTTBatches(ids[:10], 4, 5)
    with pytest.raises(ValueError, match="bptt: expected a positive integer"):
        TBPTTBatches(ids, 4, 0)


# -- whole-model gradients ----------------------------------------------------------------
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_whole_model_gradcheck(tie, num_layers):
    model = RNNLM(vocab_size=7, wordvec_size=4, hidden_size=4, num_layers=num_layers,
                  tie_weights=tie, dtype=np.float64, seed=3)
    rng = np.random.default_rng(0)
    xs, ts = rng.integers(0, 7, (2, 3)), rng.integers(0, 7, (2, 3))
    model.zero_grad()
    model.forward(xs, ts)
    model.backward()
    params = model.params

    def loss(**arrays):
        model.reset_state()
        return model.forward(xs, ts)

    numeric = numerical_gradient(loss, params)
    for name, g in model.grads.items():
        np.testing.assert_allclose(g, numeric[name], rtol=1e-5, atol=1e-8, err_msg=name)


def test_uniform_model_has_perplexity_v():
    V = 37
    model = RNNLM(vocab_size=V, wordvec_size=3, hidden_size=5)
    model.out.params["weight"][...] = 0
    model.out.params["bias"][...] = 0
    ids = np.random.default_rng(0).integers(0, V, 500)
    assert model.perplexity(ids, batch_size=4, bptt=7) == pytest.approx(V, rel=1e-5)
    logits = np.zeros((10, V), np.float32)
    assert metrics.perplexity(logits, np.arange(10)) == pytest.approx(V, rel=1e-6)
    assert metrics.perplexity(np.log(V)) == pytest.approx(V)
    assert metrics.perplexity(1000.0) == np.inf  # a diverged loss
    assert np.isnan(metrics.perplexity(np.nan))  # not inf: the loss itself is undefined
    with pytest.raises(ValueError, match="targets: needed with logits"):
        metrics.perplexity(logits)


def test_perplexity_counts_every_prediction_once():
    """Rows of the stream, the last one padded, each read from a zero state in chunks of bptt
    steps: the same as each row read whole on its own, pooled over all 22 predictions."""
    model = RNNLM(vocab_size=11, wordvec_size=4, hidden_size=6, seed=2)
    ids = np.random.default_rng(5).integers(0, 11, 23)
    rows = [ids[0:9], ids[8:17], ids[16:23]]  # 3 rows of 8, 8 and 6 predictions
    total = sum(np.log(model.perplexity(r, batch_size=1, bptt=100)) * (len(r) - 1) for r in rows)
    assert model.perplexity(ids, batch_size=3, bptt=3) == pytest.approx(np.exp(total / 22), rel=1e-5)
    assert np.isfinite(model.perplexity(ids[:2]))  # one prediction is enough
    with pytest.raises(ValueError, match="at least 2 tokens"):
        model.perplexity(ids[:1])


def test_kl_divergence_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(6), 4), rng.dirichlet(np.ones(6), 4)
    p[0, 2] = 0
    p[0] /= p[0].sum()
    want = torch.nn.functional.kl_div(torch.tensor(np.log(q)), torch.tensor(p),
                                      reduction="batchmean")
    assert metrics.kl_divergence(p, q) == pytest.approx(float(want), rel=1e-10)
    assert metrics.kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(metrics.kl_divergence(p, q, reduction="none").sum(),
                               metrics.kl_divergence(p, q, reduction="sum"))
    assert metrics.cross_entropy(np.log(q), np.array([0, 1, 2, 3])) == pytest.approx(
        -np.mean(np.log(q[np.arange(4), [0, 1, 2, 3]])), rel=1e-10)


# -- optimizers ---------------------------------------------------------------------------
TORCH_OPTIMIZERS = [
    ("SGD", dict(lr=0.1), dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
     dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("AdaGrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1),
     dict(lr=0.1, lr_decay=0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1), dict(lr=0.01, alpha=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5), dict(lr=0.01, momentum=0.5)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1),
     dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("AdamW", dict(lr=0.01), dict(lr=0.01)),
]


@pytest.mark.parametrize("name,ours,theirs", TORCH_OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizer_matches_torch(name, ours, theirs, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((70, 33)).astype(dtype), "b": rng.standard_normal(5).astype(dtype)}
    tparams = [torch.tensor(v.copy(), requires_grad=True) for v in params.values()]
    opt = getattr(optim, name)(**ours)
    topt = getattr(torch.optim, "Adagrad" if name == "AdaGrad" else name)(tparams, **theirs)
    for _ in range(5):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        for t, g in zip(tparams, grads.values()):
            t.grad = torch.tensor(g)
        topt.step()
        opt.update(params, grads)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for v, t in zip(params.values(), tparams):
        np.testing.assert_allclose(v, t.detach().numpy(), rtol=tol, atol=tol)


def test_optimizer_updates_a_tied_array_once_and_checks_input():
    w = np.ones(3)
    optim.SGD(lr=1.0).update([w, w], [np.ones(3), np.ones(3)])
    np.testing.assert_array_equal(w, 0)
    # each message says what it got
    with pytest.raises(ValueError, match=r"grads\['a'\]: expected .* \(3,\), got float64 \(4,\)$"):
        optim.Adam().update({"a": np.ones(3)}, {"a": np.ones(4)})
    with pytest.raises(ValueError, match=r"grads\['a'\]: .*, got float32 \(3,\)$"):
        optim.Adam().update({"a": np.ones(3)}, {"a": np.ones(3, np.float32)})
    with pytest.raises(TypeError, match=r"params\['a'\]: .*, got float64 \(3,\) not C-contiguous$"):
        optim.Adam().update({"a": np.ones((3, 4))[:, 1]}, {"a": np.ones(3)})
    with pytest.raises(TypeError, match=r"params\['a'\]: .*, got float64 \(3,\) read-only$"):
        optim.Adam().update({"a": np.frombuffer(np.ones(3).tobytes())}, {"a": np.ones(3)})
    with pytest.raises(TypeError, match=r"params\['a'\]: .*, got list$"):
        optim.Adam().update({"a": [1.0]}, {"a": [1.0]})
    with pytest.raises(KeyError):
        optim.SGD().update({"a": np.ones(3)}, {"b": np.ones(3)})
    for lr in (np.inf, np.nan, -1.0):  # an infinite step makes every parameter inf or NaN
        with pytest.raises(ValueError, match="lr: expected a finite number >= 0"):
            optim.Adam(lr=lr)
    # refused as torch.optim refuses them (a momentum of -1 stepped back and forth)
    for name, kw in (("SGD", "momentum"), ("AdaGrad", "lr_decay"), ("AdaGrad", "eps"),
                     ("RMSprop", "alpha"), ("RMSprop", "eps"), ("RMSprop", "momentum"),
                     ("Adam", "eps"), ("AdamW", "eps")):
        for bad in (-1.0, np.nan, np.inf, None):
            with pytest.raises(ValueError, match=f"{kw}: expected a finite number >= 0"):
                getattr(optim, name)(**{kw: bad})



@pytest.mark.parametrize("name,kw", [("SGD", dict(momentum=0.9)), ("AdaGrad", {}),
                                     ("RMSprop", dict(momentum=0.5)), ("Adam", {})])
def test_optimizer_state_of_another_array_is_refused(name, kw):
    """The moments kept for a key are updated in place over p.size elements: an optimizer that
    stepped on a (4,) array and then got a larger one under the same key (another model's list,
    a grown vocabulary) wrote past the end of its state (a segfault)."""
    opt = getattr(optim, name)(lr=0.01, **kw)
    opt.update([np.zeros(4, np.float32)], [np.ones(4, np.float32)])
    for other in (np.zeros(1 << 20, np.float32), np.zeros(4, np.float64)):
        with pytest.raises(ValueError, match=r"params\[0\]: .* from earlier steps on another"):
            opt.update([other], [np.ones_like(other)])
    opt.update([np.zeros(4, np.float32)], [np.ones(4, np.float32)])  # the same shape: fine


# -- training and generation --------------------------------------------------------------
def test_tiny_model_memorises_a_sequence():
    """A deterministic cycle of 12 tokens is learnt to near-zero loss and generated back."""
    cycle = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8])
    ids = np.tile(cycle, 60)
    model = RNNLM(vocab_size=10, wordvec_size=16, hidden_size=32, seed=1)
    trainer = sk.Trainer(model, optim.Adam(lr=0.02), batch_size=4, bptt=12, clip=1.0,
                         progress=False, out=open(os.devnull, "w"))
    trainer.fit(ids, epochs=15)
    model.reset_state()
    loss = model.forward(ids[None, :48], ids[None, 1:49])
    assert loss < 0.05
    out = model.generate(cycle[:4], length=20, greedy=True)
    np.testing.assert_array_equal(out, np.tile(cycle, 3)[:24])


def test_generate_and_perplexity_from_several_threads():
    """A threaded server sharing one model: its calls mixed each other's carried LSTM state and
    mode (other text, or "a batch of 1, but this stateful layer carries the state of a batch of
    10"). They run one at a time now."""
    import threading
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 12, 600)
    model = RNNLM(vocab_size=12, wordvec_size=8, hidden_size=32, num_layers=2, seed=1)
    expected = {s: model.generate([1, 2], length=120, seed=s).tolist() for s in range(6)}
    ppl = model.perplexity(ids)
    got, errors = [], []

    def work(s):
        try:
            for _ in range(3):
                got.append(model.generate([1, 2], length=120, seed=s).tolist() == expected[s])
                got.append(model.perplexity(ids) == ppl)
        except Exception as e:  # noqa: BLE001 (collected for the assertion)
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and all(got) and len(got) == 36


def test_trainer_checkpoint_folder_is_checked_up_front(tmp_path):
    model = RNNLM(vocab_size=5, wordvec_size=2, hidden_size=3)
    with pytest.raises(FileNotFoundError, match="checkpoint: no such folder: '.*no'"):
        sk.Trainer(model, optim.SGD(lr=1.0), checkpoint=str(tmp_path / "no" / "lm.npz"))
    with pytest.raises(IsADirectoryError, match="checkpoint: is a folder; name a file in it"):
        sk.Trainer(model, optim.SGD(lr=1.0), checkpoint=str(tmp_path))
    # model.save names the caller's path: it had named its temporary file, or the rename
    with pytest.raises(FileNotFoundError, match=r"no such folder: '.*no'$"):
        model.save(str(tmp_path / "no" / "lm.npz"))
    with pytest.raises(IsADirectoryError, match=f"is a folder; name a file in it: '{tmp_path}'$"):
        model.save(tmp_path)
    assert os.listdir(tmp_path) == []  # no temporary file left
    sk.Trainer(model, optim.SGD(lr=1.0), checkpoint=str(tmp_path / "lm.npz"))


@pytest.mark.parametrize("kwargs, error, message", [
    # each used to be taken, then failed at the first step or epoch (or silently did the wrong
    # thing: lr_decay 0.5 raised the rate, -2 made it negative, max_seconds -1 ran one step)
    (dict(optimizer=None), TypeError, "optimizer: expected a seqkern.optim optimizer"),
    (dict(batch_size=2.5), ValueError, "batch_size: expected a positive integer, got 2.5"),
    (dict(eval_batch_size=0), ValueError, "eval_batch_size: expected a positive integer"),
    (dict(clip=-1), ValueError, "clip: expected None, 0 "),
    (dict(clip=float("nan")), ValueError, "clip: expected None, 0 "),
    (dict(lr_decay=0.5), ValueError, "lr_decay: expected a number >= 1"),
    (dict(lr_decay=-2), ValueError, "lr_decay: expected a number >= 1"),
    (dict(max_seconds=-1), ValueError, "max_seconds: expected None or a positive number"),
])
def test_trainer_checks_its_arguments_up_front(kwargs, error, message):
    model = RNNLM(vocab_size=5, wordvec_size=2, hidden_size=3)
    args = {"optimizer": optim.SGD(lr=1.0), **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        sk.Trainer(model, **args)
    trainer = sk.Trainer(model, optim.SGD(lr=1.0), batch_size=1, bptt=2, clip=0)  # 0: no clipping
    for epochs in (-1, 1.5):
        with pytest.raises(ValueError, match="epochs: expected an integer >= 0"):
            trainer.fit(np.arange(8) % 5, epochs=epochs)


def test_trainer_reports_a_diverged_model_as_infinite_perplexity():
    """A learning rate far too large drives the mean loss past 709 nats, whose exp overflows a
    float: the epoch line says inf (math.exp had raised OverflowError and ended the run)."""
    vocab = Vocabulary.build(TEXT * 20, level="char")
    ids = vocab.encode(TEXT * 20)
    model = RNNLM(vocab=vocab, wordvec_size=8, hidden_size=16)
    out = io.StringIO()
    trainer = sk.Trainer(model, optim.SGD(lr=1e6), batch_size=2, bptt=10, clip=None,
                         progress=False, out=out)
    trainer.fit(ids[:800], ids[800:], epochs=2)
    assert trainer.history[0]["train_perplexity"] == math.inf
    assert "train perplexity inf" in out.getvalue()
    assert model.perplexity(ids[800:], 10, 10) == math.inf


def test_trainer_decays_lr_keeps_best_and_stops_on_ctrl_c(tmp_path):
    vocab = Vocabulary.build(TEXT * 20, level="char")
    ids = vocab.encode(TEXT * 20)
    ckpt = str(tmp_path / "lm.npz")

    class Interrupting(optim.SGD):  # Ctrl-C at the 40th step
        calls = 0

        def update(self, params, grads):
            Interrupting.calls += 1
            if Interrupting.calls == 40:
                raise KeyboardInterrupt
            super().update(params, grads)

    model = RNNLM(vocab=vocab, wordvec_size=8, hidden_size=16)
    lines = tmp_path / "out.txt"
    with open(lines, "w") as out:
        trainer = sk.Trainer(model, Interrupting(lr=50.0), batch_size=2, bptt=10, clip=0.25,
                             checkpoint=ckpt, progress=False, out=out)
        returned = trainer.fit(ids[:800], ids[800:], epochs=100)
    assert returned is model
    text = lines.read_text()
    assert "val perplexity" in text and "interrupted" in text
    best = min(h["val_perplexity"] for h in trainer.history)
    assert trainer.best[0] == best
    lrs = [h["lr"] for h in trainer.history]
    for h, nxt in zip(trainer.history, lrs[1:]):  # the lr falls by 4 after an epoch that did not improve
        improved = h["val_perplexity"] == min(x["val_perplexity"] for x in trainer.history[:h["epoch"]])
        assert nxt == (h["lr"] if improved else h["lr"] / 4)
    saved = sk.load(ckpt)  # the best epoch's weights, also what the model holds now
    for k, v in saved.params.items():
        np.testing.assert_array_equal(v, model.params[k])
    assert model.perplexity(ids[800:], 10, 10) == pytest.approx(best, rel=1e-5)
    assert not any(f.startswith(".seqkern-") for f in os.listdir(tmp_path))


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.9, 0.999, 1.0 - 1e-12])
def test_nucleus_is_the_head_of_the_sorted_probabilities(top_p):
    """top-p keeps the smallest head of the tokens sorted by probability (ties in id order)
    whose sum reaches top_p; next_token finds it from partial sorts, here against a full one,
    over flat and peaked logits with ties."""
    rng = np.random.default_rng(int(top_p * 1000))
    for V, spread in ((7, 1.0), (300, 0.3), (5000, 3.0), (5000, 0.05)):
        logits = np.round(rng.standard_normal(V) * spread, 1)  # many ties
        p = np.exp(logits - logits.max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")
        want = order[:int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
        np.testing.assert_array_equal(_nucleus(p, top_p), want)


def test_sampling_draws_tokens_at_their_probabilities():
    """next_token draws through the cumulative distribution: over many draws each token comes up
    at its softmax probability, and a zero-probability token (cut by top_k) never does."""
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    rng = np.random.default_rng(0)
    draws = np.array([next_token(logits, rng) for _ in range(20000)])
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / draws.size, [0.1, 0.2, 0.3, 0.4],
                               atol=0.012)
    cut = np.array([next_token(logits, rng, top_k=2) for _ in range(2000)])
    assert set(cut.tolist()) == {2, 3}


def test_cdf_search_finds_numpys_index():
    """_core.cdf_search gives the index np.searchsorted(cumsum(p) / its last value, u, "right")
    gives, so that a seed draws the tokens NumPy's code drew: random distributions of 1 to 3,000
    tokens, some with zeros, u at random and at the running sums themselves and just below."""
    rng = np.random.default_rng(7)
    for trial in range(600):
        n = int(rng.integers(1, 3000)) if trial % 3 else int(rng.integers(1, 12))
        z = rng.standard_normal(n) * rng.choice([0.1, 1.0, 10.0, 100.0])
        if trial % 5 == 0:
            z[1:][rng.random(n - 1) < 0.5] = -np.inf
        p = np.exp(z - z.max())
        p /= p.sum()
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        us = [*rng.random(10), 0.0, *cdf[:5], *np.nextafter(cdf[:5], 0)]
        for u in (u for u in us if u < 1):
            assert _core.cdf_search(p, u) == int(cdf.searchsorted(u, side="right")), (n, u)


def test_sampling_at_extreme_temperatures_and_from_logits_without_a_distribution():
    """A temperature so small that logits / T overflows still takes the most likely token (the
    logits are shifted by their largest first); logits holding NaN, or with no finite largest,
    give no token (None), and generation stops there instead of drawing garbage (top_p raised
    IndexError)."""
    logits = np.array([1.0, 3.0, -2.0, 2.5])
    rng = np.random.default_rng(0)
    for t in (1e-300, 1e-40):
        assert {next_token(logits, rng, temperature=t) for _ in range(50)} == {1}
    uniform = [next_token(logits, rng, temperature=1e300) for _ in range(4000)]
    np.testing.assert_allclose(np.bincount(uniform) / 4000, 0.25, atol=0.03)
    for bad in ([np.nan, 1.0, 2.0], [-np.inf, -np.inf], [np.inf, 0.0], [1.0, np.nan]):
        for kw in ({}, {"greedy": True}, {"top_k": 1}, {"top_p": 0.5}):
            assert next_token(np.array(bad), rng, **kw) is None
    vocab = Vocabulary.build(TEXT, level="char")
    model = RNNLM(vocab=vocab, wordvec_size=8, hidden_size=16)
    for w in model.params.values():
        w[...] = np.nan
    for kw in ({}, {"greedy": True}, {"top_p": 0.9}):
        assert model.generate(TEXT[:5], length=10, **kw) == TEXT[:5]


def test_generation_options_and_save_load(tmp_path):
    vocab = Vocabulary.build(TEXT, level="word")
    model = BetterRNNLM(vocab=vocab, wordvec_size=8, hidden_size=8, seed=2)
    assert model.out.params["weight"] is model.embed.params["weight"]
    a = model.generate("the cat", length=30, temperature=0.8, top_k=5, seed=7)
    assert a.startswith("the cat") and a == model.generate("the cat", length=30, temperature=0.8,
                                                           top_k=5, seed=7)
    ids = model.generate(vocab.encode("the cat"), length=30, temperature=2.0, seed=1)
    assert ids.dtype == np.int64 and (len(ids) == 32 or ids[-1] == vocab.stoi[EOS])
    assert EOS not in ids[:-1].tolist()
    g1 = model.generate([2], length=10, greedy=True)
    np.testing.assert_array_equal(model.generate([2], length=10, top_k=1, seed=3), g1)
    np.testing.assert_array_equal(model.generate([2], length=10, top_p=1e-9, seed=4), g1)
    assert model.generate("the cat", length=0) == "the cat"
    # the prefix comes back as given: its unknown words had come back as "<unk>"
    for prefix in ("the zebra", "the  cat\n", "zebra"):
        text = model.generate(prefix, length=6, seed=2)
        assert text.startswith(prefix) and "<unk>" not in text[:len(prefix) + 1]
        words = model.generate(vocab.encode(prefix), length=6, seed=2)  # the same continuation
        rest = text[len(prefix):]
        assert rest.split() == [vocab.itos[i] for i in words[len(vocab.encode(prefix)):]
                                if i != vocab.stoi[EOS]]
        assert not rest or rest[0] == " " or prefix[-1].isspace()
    chars = Vocabulary.build(TEXT, level="char")
    char_model = RNNLM(vocab=chars, wordvec_size=4, hidden_size=8, seed=1)
    assert char_model.generate("中文 ", length=5, seed=0).startswith("中文 ")
    with pytest.raises(ValueError, match="length: expected an integer >= 0, got -1"):
        model.generate("the", length=-1)
    # a list of words or None failed inside int() ("invalid literal for int() ... 'the'")
    for bad in (["the", "cat"], None, [2.0]):
        with pytest.raises(TypeError, match="prefix: expected text .a str. or token ids"):
            model.generate(bad, length=3)
    with pytest.raises(ValueError, match=f"prefix: ids must be in 0..{len(vocab) - 1}, got -1"):
        model.generate([2, -1], length=3)
    assert 1 <= len(model.generate([], length=3, seed=1)) <= 3  # empty: starts after <eos>
    path = str(tmp_path / "lm.npz")
    model.save(path)
    loaded = sk.load(path)
    assert type(loaded) is BetterRNNLM and loaded.vocab.itos == vocab.itos
    assert loaded.out.params["weight"] is loaded.embed.params["weight"]
    assert loaded.generate("the", length=20, temperature=1.0, top_p=0.9, seed=5) == \
        model.generate("the", length=20, temperature=1.0, top_p=0.9, seed=5)
    other = BetterRNNLM(vocab=vocab, wordvec_size=6, hidden_size=6)
    with pytest.raises(ValueError, match="config differs: hidden_size 8 .this model: 6."):
        other.load_params(path)
    with pytest.raises(ValueError, match="holds a BetterRNNLM, not a RNNLM"):
        RNNLM(vocab=vocab, wordvec_size=8, hidden_size=8).load_params(path)


def test_checkpoint_from_another_version_or_not_one(tmp_path):
    import json

    model = RNNLM(vocab_size=5, wordvec_size=2, hidden_size=3)
    path = str(tmp_path / "m.npz")
    model.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta["version"] = 99
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(str(tmp_path / "v99.npz"), **arrays)
    with pytest.raises(ValueError, match="format version 99"):
        sk.load(str(tmp_path / "v99.npz"))
    np.savez(str(tmp_path / "other.npz"), x=np.ones(2))
    with pytest.raises(ValueError, match="not a seqkern checkpoint"):
        sk.load(str(tmp_path / "other.npz"))
    np.save(str(tmp_path / "array.npy"), np.ones(2))
    data = open(path, "rb").read()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    (tmp_path / "text.npz").write_text("hello")
    for name in ("array.npy", "cut.npz", "text.npz"):
        with pytest.raises(ValueError, match="not a seqkern checkpoint"):
            sk.load(str(tmp_path / name))
    with pytest.raises(FileNotFoundError):
        sk.load(str(tmp_path / "absent.npz"))


def test_bad_input():
    model = RNNLM(vocab_size=5, wordvec_size=2, hidden_size=3)
    with pytest.raises(ValueError, match=r"ids: ids must be in 0..4, got 5"):
        model.forward(np.array([[1, 5]]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match=r"targets: ids must be in 0..4"):
        model.forward(np.array([[1, 2]]), np.array([[1, 7]]))
    with pytest.raises(ValueError, match=r"xs: expected token ids of shape \(batch, T\)"):
        model.forward(np.zeros((2, 0), int), np.zeros((2, 0), int))
    with pytest.raises(ValueError, match="xs: expected token ids"):
        model.predict(np.array([1, 2]))
    with pytest.raises(ValueError, match="ts: expected the shape of xs"):
        model.forward(np.array([[1, 2]]), np.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match="temperature"):
        model.generate([1], temperature=0)
    with pytest.raises(ValueError, match="prefix: text needs a model with a vocab"):
        model.generate("abc")
    with pytest.raises(ValueError, match="tie_weights: needs wordvec_size == hidden_size"):
        RNNLM(vocab_size=5, wordvec_size=2, hidden_size=3, tie_weights=True)
    with pytest.raises(ValueError, match="vocab: has"):
        RNNLM(vocab_size=5, vocab=Vocabulary.build(TEXT))


# -- command line -------------------------------------------------------------------------
def run(args, cwd):
    return subprocess.run([sys.executable, "-m", "seqkern", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_demo_prints_the_words_scripts_parse(tmp_path):
    r = run(["demo", "--minutes", "0.3", "--chars", "60000", "--hidden", "32", "--embed", "16",
             "--batch", "8", "--bptt", "32", "--epochs", "2", "--sample-length", "40"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.count("unigram perplexity ") == 1
    assert out.count("val perplexity ") >= 1
    unigram = float(out.split("unigram perplexity ")[1].split()[0])
    val = float(out.split("val perplexity ")[1].split()[0])
    assert val < unigram  # it learns something even in seconds
    assert "temperature 0.7" in out and "temperature 1.0" in out


def test_demo_stopped_in_its_first_epoch_says_so(tmp_path):
    """Ctrl-C before the first epoch's validation: the demo printed "interrupted: stopping" and
    ended without a word on what was left (no perplexity, no checkpoint)."""
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "seqkern", "demo", "--save", "d.npz"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline:  # the model's line comes right before training
        if proc.stdout.readline().startswith("model: "):
            break
    time.sleep(1.0)  # an epoch of the default demo takes half a minute or more
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, out
    assert "stopped before the first epoch ended: nothing validated, nothing saved" in out
    assert not (tmp_path / "d.npz").exists()


def test_train_lm_and_sample(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT * 30)
    ckpt = str(tmp_path / "lm.npz")
    r = run(["train-lm", "--text", str(text), "--save", ckpt, "--layers", "1", "--hidden", "16",
             "--epochs", "2", "--batch", "4", "--bptt", "5", "--tie", "--dropout", "0.1"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "unigram perplexity" in r.stdout and r.stdout.count("val perplexity") == 2
    r = run(["sample", "--checkpoint", ckpt, "--prefix", "the cat", "--length", "10",
             "--temperature", "0.7", "--top-k", "3", "--seed", "1"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("the cat")
    r = run(["sample", "--checkpoint", ckpt, "--prefix", "the cat", "--length", "10",
             "--greedy", "--precision", "bfloat16"], tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("the cat"), r.stderr
    r = run(["sample", "--checkpoint", str(text)], tmp_path)  # one line, no traceback
    assert r.returncode == 1 and r.stderr.startswith("seqkern sample: error: ")
    assert "not a seqkern checkpoint" in r.stderr and "Traceback" not in r.stderr
    for bad in (["--length", "-1"], ["--temperature", "0"], ["--top-k", "x"]):
        r = run(["sample", "--checkpoint", ckpt, *bad], tmp_path)
        assert r.returncode == 2 and f"argument {bad[0]}: expected" in r.stderr
    r = run(["sample", "--checkpoint", ckpt, "--precision", "float16"], tmp_path)
    assert r.returncode == 2 and "argument --precision: invalid choice" in r.stderr
    r = run(["sample", "--checkpoint", str(tmp_path / "absent.npz")], tmp_path)
    assert r.returncode == 2 and "absent.npz: no such file" in r.stderr
    # another model's checkpoint: a seq2seq model's generate() ended in a TypeError's traceback
    seq2seq_vocab = Vocabulary([UNK, EOS, PAD, START, "a", "b"], "char")
    for other in (sk.models.AttentionSeq2Seq(seq2seq_vocab, 4, 4), sk.models.CTCTagger(3, 4, 5)):
        other.save(str(tmp_path / "other.npz"))
        r = run(["sample", "--checkpoint", str(tmp_path / "other.npz")], tmp_path)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert f"is a {type(other).__name__} checkpoint, not a language model's" in r.stderr
    # an unwritable --save fails before any training
    r = run(["train-lm", "--text", str(text), "--save", str(tmp_path / "no" / "lm.npz")], tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "perplexity" not in r.stdout
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    r = run(["train-lm", "--text", str(empty), "--save", ckpt], tmp_path)
    assert r.returncode != 0 and "text: is empty" in r.stderr
    utf16 = tmp_path / "utf16.txt"  # would read as noise: refused before any training
    utf16.write_text(TEXT, encoding="utf-16")
    r = run(["train-lm", "--text", str(utf16), "--save", ckpt], tmp_path)
    assert r.returncode == 2 and "UTF-16 byte-order mark" in r.stderr and "perplexity" not in r.stdout
    latin = tmp_path / "latin.txt"  # a stray byte that is not UTF-8: read as U+FFFD, and said
    latin.write_bytes("café ".encode("latin-1") + (TEXT * 30).encode())
    r = run(["train-lm", "--text", str(latin), "--save", ckpt, "--hidden", "8", "--epochs", "1",
             "--batch", "4", "--bptt", "5"], tmp_path)
    assert r.returncode == 0 and "latin.txt: 1 place is not UTF-8" in r.stderr
    # a validation part of one token: refused before training, not after its first epoch
    r = run(["train-lm", "--text", str(text), "--save", ckpt, "--hidden", "8", "--batch", "4",
             "--bptt", "5", "--val-fraction", "0.0001"], tmp_path)
    assert r.returncode == 1 and "--val-fraction: 0.0001 holds out 1 token(s)" in r.stderr
    assert "train perplexity" not in r.stdout
    with pytest.raises(ValueError, match="val_ids: 1 token"):
        sk.Trainer(RNNLM(vocab_size=5, wordvec_size=2, hidden_size=3), optim.SGD(lr=1.0),
                   batch_size=1, bptt=2).fit(np.arange(5) % 5, np.array([1]))


def test_ctrl_c_inside_a_finalizer_still_stops_training(monkeypatch, interrupt_in_finalizer):
    """Python raises a SIGINT's KeyboardInterrupt wherever the main thread is, and inside a
    finalizer it is printed and dropped: tqdm's bar, deleted at the end of each epoch, once let
    train-lm train on after Ctrl-C. The trainer's own handler also sets a flag that stops
    training before the next step. Here the interrupt lands in a finalizer run as epoch 1's bar
    closes: training stops after that epoch, not after 5."""
    import signal

    import seqkern.trainer as trainer_module

    close = trainer_module._Progress.close

    def close_then_interrupt(self):
        close(self)
        if not interrupt_in_finalizer.dropped:
            interrupt_in_finalizer.drop()

    monkeypatch.setattr(trainer_module._Progress, "close", close_then_interrupt)
    ids = np.arange(400) % 7
    model = RNNLM(vocab_size=7, wordvec_size=4, hidden_size=8, seed=0)
    trainer = sk.Trainer(model, optim.SGD(lr=0.5), batch_size=4, bptt=5, progress=False,
                         out=io.StringIO())
    trainer.fit(ids[:300], ids[300:], epochs=5)
    assert interrupt_in_finalizer.dropped == [KeyboardInterrupt]
    assert [h["epoch"] for h in trainer.history] == [1]
    assert "interrupted: stopping" in trainer.out.getvalue()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


@pytest.mark.parametrize("command", [
    ["seq2seq", "--task", "addition", "--examples", "200", "--hidden", "8", "--batch", "16"],
    ["ctc", "--train", "64", "--test", "8", "--hidden", "8", "--layers", "1", "--batch", "16"]])
def test_ctrl_c_inside_a_finalizer_stops_seq2seq_and_ctc(command, monkeypatch, capsys,
                                                         interrupt_in_finalizer):
    """The seq2seq and ctc commands train in their own loops: an interrupt dropped inside a
    finalizer during their first step still stops them before the second."""
    import importlib

    from seqkern.cli import main

    module = importlib.import_module(f"seqkern.{command[0]}_commands")
    steps = []

    def step_then_interrupt(*args, **kwargs):
        steps.append(1)
        loss = train_step(*args, **kwargs)
        interrupt_in_finalizer.drop()
        return loss

    train_step = module.train_step
    monkeypatch.setattr(module, "train_step", step_then_interrupt)
    assert main(command + ["--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert interrupt_in_finalizer.dropped == [KeyboardInterrupt] and steps == [1]
    assert "interrupted: stopping" in out and "epoch 1/3" not in out


def test_ctrl_c_stops_training_within_a_second(tmp_path):
    """A real SIGINT to `seqkern train-lm` after its first epoch: the process ends within a
    second and the best checkpoint loads."""
    import signal
    import time

    text = tmp_path / "t.txt"
    text.write_text(TEXT * 400)
    ckpt = str(tmp_path / "lm.npz")
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqkern", "train-lm", "--text", str(text), "--save", ckpt,
         "--level", "char", "--layers", "1", "--hidden", "64", "--epochs", "1000", "--batch", "8",
         "--bptt", "20", "--optimizer", "adam", "--lr", "0.003"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        # a shell without job control starts `pytest &` with SIGINT ignored, and children
        # inherit that: give the child the default, as a terminal's Ctrl-C finds it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stdout:
            if "val perplexity" in line:
                break
        else:  # a crash before the first epoch ended, not a slow stop: say so
            raise AssertionError(f"train-lm ended (status {proc.wait()}) before an epoch's line: "
                                 f"{proc.stderr.read()[-2000:]!r}")
        time.sleep(0.3)  # inside the next epoch's steps
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"no exit 30 s after SIGINT; stdout {out[-1000:]!r}, "
                                 f"stderr {err[-2000:]!r}") from None
        stopped = time.perf_counter() - t0
    finally:
        proc.kill()
    print(f"stopped {stopped:.3f} s after SIGINT")
    assert stopped < 1.0, f"took {stopped:.2f} s to stop; stderr {err[-2000:]!r}"
    assert "interrupted" in out and proc.returncode == 0, (proc.returncode, out[-1000:], err[-2000:])
    assert sk.load(ckpt).vocab.level == "char"
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".seqkern-")]
