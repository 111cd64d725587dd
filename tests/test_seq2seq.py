"""Seq2seq: the toy data, whole-model gradients, greedy and beam decoding, the bidirectional
encoder over uneven lengths, BLEU, checkpoints, the command line, bad input."""
import datetime
import gzip
import subprocess
import sys

import numpy as np
import pytest

import seqkern as sk
from seqkern.data import PAD, START, Seq2SeqData, addition_pairs, date_pairs, load_pairs
from seqkern.gradcheck import numerical_gradient
from seqkern.metrics import corpus_bleu, sentence_bleu
from seqkern.models import AttentionSeq2Seq, PeekySeq2Seq, Seq2Seq
from seqkern.models.sampling import best_first

MODELS = [Seq2Seq, PeekySeq2Seq, AttentionSeq2Seq]


def small_data(n=60, seed=1):
    return Seq2SeqData.from_pairs(addition_pairs(n, seed=seed), 0.25, seed=seed)


# -- data ---------------------------------------------------------------------------------
def test_addition_and_date_pairs():
    pairs = addition_pairs(2000, seed=3)
    assert len({s for s, _ in pairs}) == 2000
    for s, t in pairs:
        a, b = s.split("+")
        assert int(a) + int(b) == int(t) and len(a) <= 3 and len(b) <= 3
    assert pairs == addition_pairs(2000, seed=3)
    dates = date_pairs(3000, seed=4)
    shapes = set()
    for s, t in dates:
        d = datetime.date.fromisoformat(t)
        assert 1950 <= d.year <= 2049 and (str(d.year) in s or f"{d.year % 100:02d}" in s)
        shapes.add("".join("9" if c.isdigit() else "a" if c.isalpha() else c for c in s))
    assert len({min(sh.split("9")[0], sh) for sh in shapes}) >= 8  # many formats
    assert any(s.split(",")[0] in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                   "Saturday", "Sunday") for s, _ in dates)


def test_split_vocabulary_and_encoding(tmp_path):
    data = Seq2SeqData.from_pairs(addition_pairs(1000), 0.1, seed=0)
    assert len(data.test) == 100 and len(data.train) == 900
    assert not {s for s, _ in data.test} & {s for s, _ in data.train}
    src, lengths, tgt = data.encode([("1+1", "2"), ("100+200", "300")])
    v = data.vocab
    assert src.shape == (2, 7) and lengths.tolist() == [3, 7]
    assert src[0, 3:].tolist() == [v.stoi[PAD]] * 4
    assert tgt[0].tolist() == [v.stoi[START], v.stoi["2"], v.stoi["<eos>"], v.stoi[PAD], v.stoi[PAD]]
    f = tmp_path / "pairs.tsv"
    f.write_text("hello world\tbonjour le monde\n\nbye\tau revoir\n")
    assert load_pairs(f) == [("hello world", "bonjour le monde"), ("bye", "au revoir")]
    f.write_bytes(b"hello world\tbonjour le monde\r\nbye\tau revoir\r\n")  # Windows lines
    assert load_pairs(f) == [("hello world", "bonjour le monde"), ("bye", "au revoir")]
    f.write_bytes("\ufeffhello world\tbonjour le monde\r\nbye\tau revoir\r\n".encode())
    assert load_pairs(f) == [("hello world", "bonjour le monde"), ("bye", "au revoir")]  # BOM
    f.write_text("no tab here\n")
    with pytest.raises(ValueError, match="expected source<TAB>target"):
        load_pairs(f)
    f.write_text("a\tb\n\tc\nd\t\n")  # an empty target is a pair; an empty source is not
    with pytest.raises(ValueError, match="pairs.tsv:2: the source is empty"):
        load_pairs(f)
    f.write_text("a\tb\nd\t\n")
    assert load_pairs(f) == [("a", "b"), ("d", "")]
    f.write_bytes(b"a\tb\n\xff\xfe\tc\n")
    with pytest.raises(ValueError, match=r"pairs.tsv:2: not UTF-8 \(invalid start byte at byte 0\)"):
        load_pairs(f)
    f.write_bytes(gzip.compress(b"a\tb\n"))  # said "not UTF-8" of its first byte
    with pytest.raises(ValueError, match=r"pairs.tsv: compressed \(gzip\): decompress it first"):
        load_pairs(f)
    f.write_text("a\tb\n", encoding="utf-16")
    with pytest.raises(ValueError, match="pairs.tsv: starts with a UTF-16 byte-order mark"):
        load_pairs(f)
    with pytest.raises(ValueError, match=r"characters outside the vocabulary: \['x'\]"):
        data.encode_sources(["1+x"])



def test_encoding_all_pairs_at_once_equals_each_pair_alone():
    pairs = [("día 1", "ça"), ("x", "日本語の文"), ("long source €", ""), ("ab", "b")]
    data = Seq2SeqData.from_pairs(pairs, 0.25, seed=0)
    v = data.vocab
    src, lengths, tgt = data.encode(pairs)
    assert src.shape == (4, 13) and tgt.shape == (4, 7)
    for k, (s, t) in enumerate(pairs):
        ids = v.encode(s)
        assert lengths[k] == len(s) and src[k, :len(s)].tolist() == ids.tolist()
        assert (src[k, len(s):] == v.stoi[PAD]).all()
        want = [v.stoi[START], *v.encode(t).tolist(), v.stoi["<eos>"]]
        assert tgt[k].tolist() == want + [v.stoi[PAD]] * (7 - len(want))
    with pytest.raises(ValueError, match=r"\['q'\] in 'aqua'"):  # the first source with one
        data.encode_sources(["ab", "aqua", "q"])
    with pytest.raises(ValueError, match="empty source"):
        data.encode_sources(["ab", ""])

# -- gradients ----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
def test_whole_model_gradcheck(cls, bidirectional, reverse):
    data = small_data()
    src, lengths, tgt = data.encode(data.train[:3])
    model = cls(data.vocab, wordvec_size=3, hidden_size=4, reverse_input=reverse,
                bidirectional_encoder=bidirectional, dtype=np.float64, seed=1)
    model.zero_grad()
    model.forward(src, lengths, tgt)
    model.backward()
    numeric = numerical_gradient(lambda **_: model.forward(src, lengths, tgt), model.params)
    for name, g in model.grads.items():
        np.testing.assert_allclose(g, numeric[name], rtol=1e-5, atol=1e-8, err_msg=name)


# -- decoding -----------------------------------------------------------------------------
def trained(cls, **kw):
    data = small_data(300, seed=2)
    model = cls(data.vocab, wordvec_size=8, hidden_size=16, dtype=np.float64, seed=3, **kw)
    opt = sk.optim.Adam(lr=0.01)
    src, lengths, tgt = data.encode(data.train)
    for _ in range(15):
        model.forward(src, lengths, tgt)
        model.zero_grad()
        model.backward()
        opt.update(model.params, model.grads)
    return data, model


def greedy(model, source, max_len):
    """Greedy decoding written out step by step, independent of the beam search."""
    src, lengths = model._check_src(*sk.data.encode_sources(model.vocab, [source]))
    out = []
    with model.evaluating():
        enc = model._encode(src, lengths)
        state, token = enc["state"], model.start
        for _ in range(max_len):
            logits, ctx = model._decode(np.array([[token]]), enc, state)
            token, state = int(np.argmax(logits[0, 0])), ctx["state"]
            if token == model.eos:
                break
            out.append(token)
    return model.vocab.decode(out)


@pytest.mark.parametrize("cls", MODELS)
def test_beam_one_is_greedy_and_batched_beam_equals_one_at_a_time(cls):
    data, model = trained(cls, reverse_input=True)
    sources = [s for s, _ in data.test[:12]]
    assert model.generate(sources, max_len=6) == [greedy(model, s, 6) for s in sources]
    batched = model.generate(sources, max_len=6, beam_size=3)
    assert batched == [model.generate([s], max_len=6, beam_size=3)[0] for s in sources]
    ids, lengths = data.encode_sources(sources)
    as_ids = model.generate(ids, max_len=6, beam_size=3, lengths=lengths)
    assert [data.vocab.decode(i) for i in as_ids] == batched


@pytest.mark.parametrize("cls", MODELS)
def test_a_large_batch_decodes_as_its_parts_do(cls, restore_threads):
    """A decoder step of 600 sources (on 2 threads, 300 rows a thread, w_hh over 1 MB: its
    recurrent product goes to BLAS over the whole batch, with the eval layer's packed input
    weights) gives the logits of the same step run 100 sources at a time. (It once dropped h0's
    product there: `seqkern seq2seq` read 0% test accuracy decoding 1,000 sources at a time.)"""
    sk.set_num_threads(2)
    data = Seq2SeqData.from_pairs(date_pairs(700, seed=3), 0.0, seed=3)
    model = cls(data.vocab, hidden_size=384, seed=3)
    sources = [s for s, _ in data.train[:600]]

    def first_step(chunk):
        ids, lengths = data.encode_sources(chunk)
        with model.evaluating():
            enc = model._encode(ids, lengths)
            start = np.full((1, len(chunk)), model.start, dtype=np.int64)
            return model._decode(start, enc, enc["state"])[0][0]

    whole = first_step(sources)
    parts = np.concatenate([first_step(sources[i:i + 100]) for i in range(0, 600, 100)])
    np.testing.assert_allclose(whole, parts, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_greedy_equals_the_beam_search_of_width_one(seed):
    """generate's greedy path against the beam search at K = 1 on logits with ties, -inf, NaN,
    rows that end at once and rows that never end."""
    data, model = trained(Seq2Seq)
    src, lengths = data.encode_sources([s for s, _ in data.test[:40]])
    V, rng = len(data.vocab), np.random.default_rng(seed)
    steps = [rng.integers(-3, 3, (1, 40, V)).astype(np.float32) for _ in range(7)]
    for x in steps:
        x[0, rng.random(40) < 0.2, model.eos] = 9.0  # some rows end here
        x[rng.random(x.shape) < 0.1] = -np.inf
        x[0, rng.random(40) < 0.05] = -np.inf        # no finite candidate
        x[0, rng.random(40) < 0.05, 0] = np.nan
        x[0, rng.random(40) < 0.03] = np.nan
        x[0, :3] = rng.integers(-3, 3, (3, V))      # rows 0-2 never end
        x[0, :3, model.eos] = -9.0
    decode, step = model._decode, [0]

    def scripted(tokens, enc, state):  # the decoder's state, these logits
        _, ctx = decode(tokens, enc, state)
        step[0] += 1
        return steps[step[0] - 1].copy(), ctx
    model._decode = scripted
    outs = []
    for search in (lambda: model._greedy(src, lengths, 7), lambda: model._beam_search(src, lengths, 7, 1)):
        step[0] = 0
        outs.append(search())
    assert outs[0] == outs[1]
    ended = {len(o) for o in outs[0]}
    assert 7 in ended and len(ended) > 1  # some ended early, some ran to the end
    # a row left with no finite candidate ends there (it was padded with <eos> to the end)
    assert not any(model.eos in o for o in outs[0])


@pytest.mark.parametrize("seed", range(5))
def test_beam_candidates_are_the_head_of_a_stable_sort(seed):
    """The beam search (and top-p sampling) read their candidates from best_first: the first
    entries of the stable sort of all of them, ties (at the cut too) and -inf included."""
    rng = np.random.default_rng(seed)
    row = rng.integers(-4, 4, 60).astype(np.float64)  # many ties
    row[rng.random(60) < 0.3] = -np.inf
    full = np.argsort(-row, kind="stable")
    for n in (1, 2, 5, 8, 59, 60, 80):
        head = best_first(row, n)
        assert len(head) >= min(n, row.size)
        np.testing.assert_array_equal(head, full[:len(head)])


def test_bidirectional_encoder_with_uneven_lengths_equals_each_alone():
    data, model = trained(AttentionSeq2Seq, bidirectional_encoder=True)
    pairs = [("1+1", "2"), ("123+456", "579"), ("45+6", "51")]
    src, lengths, tgt = data.encode(pairs)
    with model.evaluating():
        enc = model._encode(src, lengths)
        for b, (s, t) in enumerate(pairs):
            one = model._encode(*data.encode([(s, t)])[:2])
            n = len(s)
            np.testing.assert_allclose(enc["hs"][:n, b], one["hs"][:n, 0], rtol=1e-12, atol=1e-12)
            assert not enc["hs"][n:, b].any()
            for whole, alone in zip(enc["state"], one["state"]):
                np.testing.assert_allclose(whole[:, b], alone[:, 0], rtol=1e-12, atol=1e-12)
        full, _ = model._decode(tgt[:, :-1].T, enc, enc["state"])
        for b, pair in enumerate(pairs):
            s1, l1, t1 = data.encode([pair])
            e1 = model._encode(s1, l1)
            alone, _ = model._decode(t1[:, :-1].T, e1, e1["state"])
            T = alone.shape[0]
            np.testing.assert_allclose(full[:T, b], alone[:, 0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cls", [Seq2Seq, PeekySeq2Seq, AttentionSeq2Seq])
def test_generate_from_several_threads(cls):
    """Threads sharing one model mixed each other's mode and states (other outputs, or an
    AttributeError on a state another call had dropped); generate runs one call at a time."""
    import threading
    data, model = trained(cls)
    sources = [s for s, _ in data.test[:40]]
    greedy, beam = model.generate(sources, max_len=6), model.generate(sources[:8], 6, 3)
    got, errors = [], []

    def work():
        try:
            for _ in range(3):
                got.append(model.generate(sources, max_len=6) == greedy)
                got.append(model.generate(sources[:8], 6, 3) == beam)
        except Exception as e:  # noqa: BLE001 (collected for the assertion)
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and all(got) and len(got) == 36


def test_save_load_and_attention_map(tmp_path):
    data, model = trained(AttentionSeq2Seq, reverse_input=True)
    path = str(tmp_path / "s2s.npz")
    model.save(path)
    loaded = sk.load(path)
    assert type(loaded) is AttentionSeq2Seq and loaded.config == model.config
    sources = [s for s, _ in data.test[:5]]
    assert loaded.generate(sources, max_len=6, beam_size=2) == model.generate(sources, 6, 2)
    out, w = model.attention_map("12+34", max_len=6)
    assert w.shape == (len(out) + 1, 5)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-10)
    with pytest.raises(TypeError, match="source: expected one str .*, got list"):
        model.attention_map(["12+34"])  # was "ids: expected an integer array, got <U5"


def test_bad_input():
    with pytest.raises(ValueError, match="pairs: need at least 2 to split, got 1"):
        Seq2SeqData.from_pairs(addition_pairs(1), 0.1)
    with pytest.raises(ValueError, match="test_fraction: 0.999 of 50 pairs leaves none to train"):
        Seq2SeqData.from_pairs(addition_pairs(50), 0.999)  # (`seqkern seq2seq`: "no texts given")
    data = small_data()
    model = AttentionSeq2Seq(data.vocab, wordvec_size=3, hidden_size=4)
    src, lengths, tgt = data.encode(data.train[:3])
    with pytest.raises(ValueError, match=r"tgt: expected shape \(batch, T \+ 2\) with batch = 3"):
        model.forward(src, lengths, tgt[:2])
    with pytest.raises(ValueError, match="lengths: each must be in 1..S"):
        model.forward(src, lengths + 10, tgt)
    # lengths of another dtype: numpy's "`indices` must be an integer array" with reverse_input
    reversing = AttentionSeq2Seq(data.vocab, wordvec_size=3, hidden_size=4, reverse_input=True)
    expected = reversing.forward(src, lengths, tgt)
    assert reversing.forward(src, lengths.astype(np.float16), tgt) == expected
    with pytest.raises(ValueError, match="lengths: expected whole numbers"):
        reversing.forward(src, lengths - 0.5, tgt)
    with pytest.raises(TypeError, match="lengths: expected an integer array"):
        reversing.forward(src, lengths.astype(object), tgt)
    with pytest.raises(ValueError, match=r"lengths: expected shape \(batch,\)"):
        model.forward(src, lengths[:2], tgt)
    with pytest.raises(ValueError, match="characters outside the vocabulary"):
        model.generate(["12+ab"])
    with pytest.raises(ValueError, match="beam_size"):
        model.generate(["1+2"], beam_size=0)
    with pytest.raises(ValueError, match="max_len: expected an integer >= 0"):
        model.generate(["1+2"], max_len=-1)
    with pytest.raises(TypeError, match="got one str"):
        model.generate("1+2")
    with pytest.raises(ValueError, match="vocab: needs the token"):
        Seq2Seq(sk.data.Vocabulary.build("abc", level="char"))


# -- BLEU ---------------------------------------------------------------------------------
def test_bleu_against_hand_computed_examples():
    # Papineni et al.'s example: modified unigram precision 2/7, no brevity penalty
    refs = ["the cat is on the mat".split(), "there is a cat on the mat".split()]
    assert sentence_bleu(["the"] * 7, refs, max_n=1) == pytest.approx(2 / 7)
    hyp, ref = "the cat sat on the mat".split(), "the cat is on the mat".split()
    # unigrams 5/6, bigrams 3/5
    assert sentence_bleu(hyp, [ref], max_n=2) == pytest.approx(np.sqrt(5 / 6 * 3 / 5))
    # trigrams 1/4, 4-grams 0/3: zero without smoothing; 0.1/3 with method1
    assert sentence_bleu(hyp, [ref]) == 0.0
    want = (5 / 6 * 3 / 5 * 1 / 4 * 0.1 / 3) ** 0.25
    assert sentence_bleu(hyp, [ref], smoothing="method1") == pytest.approx(want)
    # brevity penalty: c = 2, r = 6
    assert sentence_bleu("the cat".split(), [ref], max_n=1) == pytest.approx(np.exp(1 - 3))
    # a corpus pools the counts: (2 + 5) / (7 + 6) unigram matches, lengths 13 vs 13
    assert corpus_bleu([["the"] * 7, hyp], [refs, [ref]], max_n=1) == pytest.approx(7 / 13)
    assert sentence_bleu(ref, [ref]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one entry per hypothesis"):
        corpus_bleu([hyp], [])
    with pytest.raises(ValueError, match="max_n: expected a positive integer, got 0"):
        sentence_bleu(hyp, [ref], max_n=0)
    for bad in (("the cat", [ref]), (hyp, ["the cat is on the mat"])):  # characters as tokens
        with pytest.raises(TypeError, match="expected lists of tokens, got a str"):
            sentence_bleu(*bad)


# -- command line -------------------------------------------------------------------------
def test_seq2seq_command(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("".join(f"{a} plus {b}\t{a + b}\n" for a in range(12) for b in range(12)))
    for task in ("addition", str(f)):
        r = subprocess.run(
            [sys.executable, "-m", "seqkern", "seq2seq", "--task", task, "--model", "peeky",
             "--reverse", "--epochs", "2", "--examples", "400", "--hidden", "16", "--beam", "2",
             "--save", str(tmp_path / "m.npz")],
            capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("test accuracy ") == 3  # two epochs and the beam evaluation
        assert ("BLEU" in r.stdout) == (task != "addition")
        assert isinstance(sk.load(str(tmp_path / "m.npz")), PeekySeq2Seq)
    r = subprocess.run(  # a plot that cannot be made stops the command before the training
        [sys.executable, "-m", "seqkern", "seq2seq", "--task", "addition", "--model", "peeky",
         "--plot-attention", str(tmp_path / "a.png")], capture_output=True, text=True,
        cwd=tmp_path, timeout=300)
    assert r.returncode != 0 and "needs --model attention" in r.stderr and "test accuracy" not in r.stdout


def random_corpus(seed, n=40):
    """Hypotheses of at least 4 words: for a shorter one nltk counts 1 n-gram of each missing
    order in the denominator, where Papineni et al. and sacrebleu (and seqkern) count none."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(12)]
    hyps, refs = [], []
    for _ in range(n):
        ref = list(rng.choice(words, rng.integers(6, 15)))
        hyp = [w if rng.random() < 0.7 else str(rng.choice(words)) for w in ref]
        hyp = hyp[:len(hyp) - int(rng.integers(0, 3))]
        hyps.append(hyp)
        refs.append([ref, list(rng.choice(words, rng.integers(3, 15)))])
    return hyps, refs


@pytest.mark.parametrize("method", [None, "method1", "method2", "method3"])
def test_bleu_matches_nltk(method):
    bleu = pytest.importorskip("nltk.translate.bleu_score")
    smoothing = getattr(bleu.SmoothingFunction(), method or "method0")
    for seed in range(5):
        hyps, refs = random_corpus(seed)
        assert corpus_bleu(hyps, refs, smoothing=method) == pytest.approx(
            bleu.corpus_bleu(refs, hyps, smoothing_function=smoothing), abs=1e-12)
        for h, r in zip(hyps[:10], refs[:10]):
            assert sentence_bleu(h, r, smoothing=method) == pytest.approx(
                bleu.sentence_bleu(r, h, smoothing_function=smoothing), abs=1e-12)


@pytest.mark.parametrize("method,theirs", [(None, "none"), ("method3", "exp")])
def test_bleu_matches_sacrebleu(method, theirs):
    sacrebleu = pytest.importorskip("sacrebleu")
    for seed in range(5):
        hyps, refs = random_corpus(seed)
        streams = [[" ".join(r[k]) for r in refs] for k in range(2)]
        want = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], streams, tokenize="none",
                                     force=True, smooth_method=theirs).score / 100
        assert corpus_bleu(hyps, refs, smoothing=method) == pytest.approx(want, abs=1e-9)
