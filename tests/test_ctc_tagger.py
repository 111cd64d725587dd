"""CTCTagger and the spoken-digits task: data properties, whole-model gradients, decoding,
checkpoints, the command line."""
import subprocess
import sys

import numpy as np
import pytest

import seqkern as sk
from seqkern.data import pad_batch, spoken_digits
from seqkern.gradcheck import numerical_gradient
from seqkern.models import CTCTagger


def test_spoken_digits():
    examples = spoken_digits(300, feature_size=8, seed=1)
    lengths = set()
    for x, labels in examples:
        assert x.dtype == np.float32 and x.shape[1] == 8
        assert 3 <= len(labels) <= 10 and labels.min() >= 1 and labels.max() <= 10
        assert 2 * len(labels) <= len(x) <= 6 * len(labels) + 3 * (len(labels) + 1)
        lengths.add(len(x))
    assert len(lengths) > 20  # uneven lengths
    again = spoken_digits(3, feature_size=8, seed=1)
    np.testing.assert_array_equal(again[0][0], examples[0][0])
    x, il, tg, tl = pad_batch(examples[:4])
    assert x.shape == (il.max(), 4, 8) and tg.shape == (4, tl.max())
    assert not x[il[0]:, 0].any()


def test_bad_arguments_are_named():
    # each was taken: features of width 0, a model whose only class is the blank, a blank that
    # is no class (found at the first loss), n = 2.5 as a bare TypeError
    for call, message in (
            (lambda: spoken_digits(2, feature_size=0), "feature_size: expected a "),
            (lambda: spoken_digits(2, noise=-1), "noise: expected a finite number"),
            (lambda: spoken_digits(2.5), "n: expected an integer >= 0"),
            (lambda: CTCTagger(4, num_classes=1), "num_classes: expected an integer >= 2"),
            (lambda: CTCTagger(4, 11, blank=11), r"blank: expected a class in 0..10"),
            (lambda: CTCTagger(4, 11, blank=-1), r"blank: expected a class in 0..10")):
        with pytest.raises(ValueError, match=message):
            call()
    assert spoken_digits(0) == [] and len(spoken_digits(2, noise=0)) == 2
    CTCTagger(4, 11, hidden_size=3, blank=10)


@pytest.mark.parametrize("embedding", [False, True])
def test_whole_model_gradcheck(embedding):
    rng = np.random.default_rng(0)
    model = CTCTagger(5, 4, hidden_size=3, num_layers=2, embedding=embedding, dtype=np.float64,
                      seed=1)
    T, B = 7, 3
    x = rng.integers(0, 5, (T, B)) if embedding else rng.standard_normal((T, B, 5))
    il, tg, tl = np.array([7, 5, 4]), np.array([[1, 2, 2], [3, 0, 0], [1, 3, 0]]), np.array([3, 1, 2])
    model.zero_grad()
    model.forward(x, il, tg, tl)
    model.backward()
    numeric = numerical_gradient(lambda **_: model.forward(x, il, tg, tl), model.params)
    for name, g in model.grads.items():
        np.testing.assert_allclose(g, numeric[name], rtol=1e-5, atol=1e-8, err_msg=name)


def test_learns_and_decodes(tmp_path):
    train = spoken_digits(600, feature_size=8, noise=0.3, seed=2)
    model = CTCTagger(8, 11, hidden_size=32, num_layers=1, seed=0)
    opt = sk.optim.Adam(lr=1e-2)
    for epoch in range(6):
        for i in range(0, len(train), 20):
            model.forward(*pad_batch(train[i:i + 20]))
            model.zero_grad()
            model.backward()
            opt.update(model.params, model.grads)
    test = spoken_digits(50, feature_size=8, noise=0.3, seed=3)
    x, il, _, _ = pad_batch(test)
    greedy = model.decode(x, il)
    exact = np.mean([g == t.tolist() for g, (_, t) in zip(greedy, test)])
    assert exact > 0.5
    assert model.decode(x, il, beam_width=3) is not None
    path = str(tmp_path / "ctc.npz")
    model.save(path)
    assert sk.load(path).decode(x, il) == greedy
    assert repr(sk.load(path)) == ("CTCTagger(input_size=8, num_classes=11, hidden_size=32, "
                                   "num_layers=1, embedding=False, blank=0)")


def test_ctc_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "seqkern", "ctc", "--epochs", "2", "--train", "300",
                        "--test", "50", "--hidden", "16", "--layers", "1", "--beam", "2"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("test accuracy ") == 3 and "label error rate" in r.stdout
