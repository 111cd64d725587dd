"""gensim users switch by changing one import: gensim 4's documented usage runs on seqkern's
Word2Vec and KeyedVectors, queries give gensim's keys and scores, online training, callbacks,
the training loss, hierarchical softmax, memory-mapped loads."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from seqkern.models import KeyedVectors, Word2Vec
from seqkern.models.word2vec import RULE_DISCARD, RULE_KEEP

# gensim.test.utils.common_texts, gensim's own tiny corpus
COMMON_TEXTS = [
    ["human", "interface", "computer"], ["survey", "user", "computer", "system", "response", "time"],
    ["eps", "user", "interface", "system"], ["system", "human", "system", "eps"],
    ["user", "response", "time"], ["trees"], ["graph", "trees"], ["graph", "minors", "trees"],
    ["graph", "minors", "survey"]]

# gensim's documented usage (the word2vec module's docstring, its tutorials' everyday calls),
# written once; only the import line differs between libraries.
USAGE = """
import warnings
import numpy as np
{imports}
common_texts = {texts!r}
calls = 0
def ok(value=None):
    global calls
    calls += 1
    return value

model = ok(Word2Vec(sentences=common_texts, vector_size=100, window=5, min_count=1, workers=4))
ok(model.save("word2vec.model"))
model = ok(Word2Vec.load("word2vec.model"))
ok(model.train([["hello", "world"]], total_examples=1, epochs=1))
vector = ok(model.wv['computer'])
sims = ok(model.wv.most_similar('computer', topn=10))
word_vectors = ok(model.wv)
ok(word_vectors.save("word2vec.wordvectors"))
wv = ok(KeyedVectors.load("word2vec.wordvectors", mmap='r'))
vector = ok(wv['computer'])
ok(model.wv.save_word2vec_format("vectors.txt", fvocab="vocab.txt", binary=False))
wv_from_text = ok(KeyedVectors.load_word2vec_format("vectors.txt", fvocab="vocab.txt", binary=False))
ok(model.wv.save_word2vec_format("vectors.bin", binary=True))
wv_from_bin = ok(KeyedVectors.load_word2vec_format("vectors.bin", binary=True, limit=5))
assert len(wv_from_bin) == 5
ok(model.build_vocab([["brand", "new", "words", "computer"]] * 5, update=True))
ok(model.train([["brand", "new", "words", "computer"]] * 5, total_examples=5, epochs=model.epochs))
assert "brand" in model.wv.key_to_index
ok(model.corpus_count), ok(model.corpus_total_words)

class Recorder:
    def __init__(self): self.events = []
    def on_train_begin(self, model): self.events.append("train_begin")
    def on_epoch_begin(self, model): self.events.append("epoch_begin")
    def on_batch_begin(self, model): pass
    def on_batch_end(self, model): pass
    def on_epoch_end(self, model): self.events.append("epoch_end")
    def on_train_end(self, model): self.events.append("train_end")
rec = Recorder()
keep_eps = lambda word, count, min_count: 2 if word == "eps" else 0   # utils.RULE_KEEP
# sample=0: at the default 1e-3 each of these few words is kept 6-7% of the time, and
# whether any sentence trained (a loss above 0) was the random stream's luck
model2 = ok(Word2Vec(common_texts, min_count=3, hs=1, negative=0, compute_loss=True, sample=0,
                     callbacks=[rec], max_final_vocab=6, trim_rule=keep_eps, epochs=3, seed=1))
assert "eps" in model2.wv.key_to_index and len(model2.wv) <= 7
assert rec.events == ["train_begin"] + ["epoch_begin", "epoch_end"] * 3 + ["train_end"], rec.events
assert ok(model2.get_latest_training_loss()) > 0
model3 = ok(Word2Vec(vector_size=20, min_count=1, sg=1, hs=1, negative=3, cbow_mean=0,
                     sorted_vocab=1, null_word=0, shrink_windows=False, batch_words=1000, seed=2,
                     workers=1, compute_loss=True))
ok(model3.build_vocab(common_texts, progress_per=100, trim_rule=None))
ok(model3.train(common_texts, total_examples=model3.corpus_count, epochs=2, start_alpha=0.03,
                end_alpha=0.001, compute_loss=True, callbacks=()))
model4 = ok(Word2Vec(vector_size=10, min_count=1))
ok(model4.build_vocab_from_freq({{"apple": 10, "banana": 5, "cherry": 1}}))
assert model4.wv.index_to_key == ["apple", "banana", "cherry"]

ok(model.wv.get_vector('computer', norm=True))
ok(model.wv.get_normed_vectors())
ok(model.wv.fill_norms())
ok(model.wv.get_index('computer')), ok(model.wv.has_index_for('computer'))
ok(model.wv.vectors), ok(model.wv.vector_size), ok(model.wv.index_to_key), ok(model.wv.key_to_index)
ok(model.wv.get_vecattr('computer', 'count'))
ok(model.wv.most_similar(positive=['computer', 'user'], negative=['human'], topn=3, restrict_vocab=10))
ok(model.wv.most_similar_cosmul(positive=['computer', 'user'], negative=['human']))
ok(model.wv.similar_by_word('computer', topn=3))
ok(model.wv.similar_by_vector(model.wv['computer'], topn=3))
ok(model.wv.similarity('computer', 'human'))
ok(model.wv.n_similarity(['computer', 'human'], ['system', 'user']))
ok(model.wv.distance('computer', 'human'))
ok(model.wv.distances('computer', ['human', 'user']))
ok(model.wv.cosine_similarities(model.wv['computer'], model.wv[['human', 'user']]))
ok(model.wv.rank('computer', 'human'))
ok(model.wv.closer_than('computer', 'human'))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ok(model.wv.doesnt_match(['computer', 'human', 'interface', 'no-such-word']))
ok(model.predict_output_word(['computer', 'human'], topn=3))
ok(model.wv.add_vector('extra', np.ones(100, np.float32)))
ok(model.wv.add_vectors(['extra2', 'extra3'], np.ones((2, 100), np.float32)))
print(calls)
"""


def run_usage(tmp_path, imports):
    script = tmp_path / "usage.py"
    script.write_text(USAGE.format(imports=imports, texts=COMMON_TEXTS))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)


def test_gensims_documented_usage_runs_unchanged_but_for_the_import(tmp_path):
    out = run_usage(tmp_path, "from seqkern import Word2Vec, KeyedVectors")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) == 50  # every call, none skipped
    files = sorted(os.listdir(tmp_path))
    assert "word2vec.model" in files and "word2vec.wordvectors" in files  # exactly where asked


def test_the_usage_script_is_gensims_own(tmp_path):
    """The same script under gensim, so that the usage above is gensim's and not ours."""
    pytest.importorskip("gensim")
    out = run_usage(tmp_path, "from gensim.models import Word2Vec, KeyedVectors")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) == 50


def structured_vectors(n=300, dim=16, seed=0):
    """Vectors with clusters (so that neighbours are well separated) and a few exact ties."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((10, dim))
    v = centers[rng.integers(0, 10, n)] + 0.4 * rng.standard_normal((n, dim))
    keys = [f"w{i}" for i in range(n)]
    return keys, v.astype(np.float32)


@pytest.fixture(scope="module")
def both():
    gensim = pytest.importorskip("gensim")
    keys, v = structured_vectors()
    ours = KeyedVectors(v.shape[1])
    ours.add_vectors(keys, v)
    theirs = gensim.models.KeyedVectors(v.shape[1])
    theirs.add_vectors(keys, v)
    return ours, theirs


def same_ranking(a, b):
    assert [k for k, _ in a] == [k for k, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=1e-6, atol=1e-6)


QUERIES = [
    ("most_similar", dict(positive="w3")),
    ("most_similar", dict(positive=["w3", "w7"], negative=["w11"], topn=7)),
    ("most_similar", dict(positive=[("w3", 2.0), "w9"], negative="w4", topn=5)),
    ("most_similar", dict(positive=["w3"], restrict_vocab=120, topn=12)),
    ("most_similar", dict(positive=["w3"], clip_start=10, clip_end=200)),
    ("most_similar_cosmul", dict(positive=["w3", "w7"], negative=["w11"], topn=7)),
    ("most_similar_cosmul", dict(positive="w5")),
    ("similar_by_word", dict(word="w8", topn=4)),
    ("similar_by_vector", dict(vector=np.linspace(-1, 1, 16).astype(np.float32), topn=6)),
]


@pytest.mark.parametrize("method,kwargs", QUERIES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(QUERIES)])
def test_queries_give_gensims_keys_and_scores(both, method, kwargs):
    ours, theirs = both
    same_ranking(getattr(ours, method)(**kwargs), getattr(theirs, method)(**kwargs))


@given(st.integers(0, 2**32 - 1), st.sampled_from([3, 10, 60]), st.sampled_from([1, 2, 5]),
       st.sampled_from(["ties", "rounded", "plain"]))
@example(seed=2_967_363_162, V=60, dim=2, kind="rounded")  # tied by an ulp under NumPy 1.x
@settings(max_examples=60, deadline=None)
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")  # zero norms, init_sims
def test_random_queries_rank_as_gensim_with_ties_and_zeros(seed, V, dim, kind):
    """Duplicated vectors (ties) and rounded ones (many ties, zero vectors: NaN scores): the
    keys come in gensim's order and the scores match, NaN for NaN."""
    gensim = pytest.importorskip("gensim")
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((V, dim)).astype(np.float32)
    if kind == "ties":
        v[1] = v[0]
    elif kind == "rounded":
        v = np.round(v)
    keys = [f"k{i}" for i in range(V)]
    ours, theirs = KeyedVectors(dim), gensim.models.KeyedVectors(dim)
    ours.add_vectors(keys, v)
    theirs.add_vectors(keys, v)
    q = rng.standard_normal(dim).astype(np.float32)
    calls = [("most_similar", dict(positive=[keys[0]], topn=5)),
             ("most_similar", dict(positive=[keys[1]], negative=[keys[2]], topn=5)),
             ("most_similar", dict(positive=[keys[0]], restrict_vocab=max(2, V // 2), topn=5)),
             ("most_similar_cosmul", dict(positive=[keys[0], keys[2]], topn=5)),
             ("similar_by_vector", dict(vector=q, topn=5))]
    for method, kwargs in calls:
        a, b = getattr(ours, method)(**kwargs), getattr(theirs, method)(**kwargs)
        assert [k for k, _ in a] == [k for k, _ in b], (method, kwargs)
        np.testing.assert_allclose([x for _, x in a], [x for _, x in b], rtol=1e-5, atol=1e-6)
    assert ours.rank(keys[0], keys[1]) == theirs.rank(keys[0], keys[1])
    assert ours.closer_than(keys[0], keys[1]) == theirs.closer_than(keys[0], keys[1])
    assert ours.doesnt_match(keys[:3]) == theirs.doesnt_match(keys[:3])


def test_scores_and_lists_equal_gensims(both):
    ours, theirs = both
    np.testing.assert_allclose(ours.most_similar("w3", topn=None), theirs.most_similar("w3", topn=None), rtol=1e-6, atol=1e-7)
    for a, b in (("w1", "w2"), ("w5", "w250"), ("w0", "w0")):
        assert ours.similarity(a, b) == pytest.approx(theirs.similarity(a, b), abs=1e-6)
        assert ours.distance(a, b) == pytest.approx(theirs.distance(a, b), abs=1e-6)
        assert ours.rank(a, b) == theirs.rank(a, b)
        assert ours.closer_than(a, b) == theirs.closer_than(a, b)
    assert ours.n_similarity(["w1", "w2", "nope"], ["w9"]) == pytest.approx(
        theirs.n_similarity(["w1", "w2", "nope"], ["w9"]), abs=1e-6)
    np.testing.assert_allclose(ours.distances("w4"), theirs.distances("w4"), atol=1e-6)
    np.testing.assert_allclose(ours.distances("w4", ["w1", "w8"]), theirs.distances("w4", ["w1", "w8"]), atol=1e-6)
    np.testing.assert_allclose(ours.get_normed_vectors(), theirs.get_normed_vectors(), atol=1e-7)
    np.testing.assert_allclose(ours.get_vector("w6", norm=True), theirs.get_vector("w6", norm=True), atol=1e-7)
    np.testing.assert_allclose(ours.get_mean_vector(["w1", "w2"]), theirs.get_mean_vector(["w1", "w2"]), atol=1e-7)
    with pytest.raises(ValueError, match="same number of elements"):  # was IndexError
        ours.get_mean_vector(["w1"], weights=2.0)
    with pytest.raises(ValueError, match=r"keys: a vector must have shape \(\d+,\)"):
        ours.similar_by_vector(np.ones(1, np.float32))  # would broadcast into the mean
    with pytest.raises(TypeError, match="expected keys, vectors or"):
        ours.similar_by_vector(np.float32(1.0))  # was IndexError
    words = ["w1", "w2", "w3", "w4", "w150"]
    assert ours.doesnt_match(words) == theirs.doesnt_match(words)
    with pytest.warns(UserWarning, match="not present"):
        assert ours.doesnt_match(words + ["missing"]) == theirs.doesnt_match(words)


def test_online_training_adds_words_and_keeps_old_vectors():
    m = Word2Vec(COMMON_TEXTS, vector_size=12, min_count=1, seed=3, workers=1, epochs=5)
    old = m.wv.vectors.copy()
    old_keys, old_counts = list(m.wv.index_to_key), m.counts.copy()
    more = [["computer", "quantum", "qubit"], ["quantum", "qubit", "graph"]] * 3
    m.build_vocab(more, update=True)
    assert m.wv.index_to_key[:len(old_keys)] == old_keys
    assert m.wv.index_to_key[len(old_keys):] == ["quantum", "qubit"]
    np.testing.assert_array_equal(m.wv.vectors[:len(old_keys)], old)  # untouched until trained
    assert m.wv.get_vecattr("computer", "count") == old_counts[old_keys.index("computer")] + 3
    assert m.wv.get_vecattr("quantum", "count") == 6
    assert m.syn1neg.shape == m.wv.vectors.shape and not m.syn1neg[len(old_keys):].any()
    fresh = m.wv.vectors[len(old_keys):].copy()
    assert np.abs(fresh).max() <= 1 / 12 and np.abs(fresh).max() > 0  # gensim's initialisation
    m.train(more, total_examples=len(more), epochs=m.epochs)
    assert not np.array_equal(m.wv.vectors[len(old_keys):], fresh)  # the new words train
    assert m.wv.most_similar("quantum", topn=1)[0][0] is not None
    with pytest.raises(RuntimeError, match="no prior vocabulary"):
        Word2Vec(min_count=1).build_vocab(more, update=True)
    for update in (lambda: m.build_vocab(more, update=True),
                   lambda: m.build_vocab_from_freq({"graph": 2}, update=True)):
        with pytest.warns(UserWarning, match="brings no new words") as caught:
            update()
        assert caught[0].filename == __file__  # the caller's line, not seqkern's


def test_callbacks_run_in_gensims_order_and_loss_falls():
    events, losses = [], []

    class Monitor:
        def on_train_begin(self, model):
            events.append("train_begin")

        def on_epoch_begin(self, model):
            events.append("epoch_begin")

        def on_batch_begin(self, model):
            events.append("batch_begin")

        def on_batch_end(self, model):
            events.append("batch_end")

        def on_epoch_end(self, model):
            events.append("epoch_end")
            losses.append(model.get_latest_training_loss())

        def on_train_end(self, model):
            events.append("train_end")

    corpus = [[f"{'ab'[i % 2]}{j}" for j in np.random.default_rng(i).integers(0, 10, 8)] for i in range(2000)]
    Word2Vec(corpus, vector_size=16, min_count=1, sg=1, compute_loss=True, callbacks=[Monitor()],
             epochs=4, workers=1, seed=1)
    epoch = ["epoch_begin", "batch_begin", "batch_end", "epoch_end"]
    assert events == ["train_begin"] + epoch * 4 + ["train_end"]
    per_epoch = np.diff([0.0] + losses)  # a running total, as gensim's
    assert np.all(per_epoch > 0) and per_epoch[-1] < 0.9 * per_epoch[0], per_epoch


def test_training_loss_is_on_gensims_scale():
    gensim = pytest.importorskip("gensim")
    corpus = [[f"{'ab'[i % 2]}{j}" for j in np.random.default_rng(i).integers(0, 10, 8)] for i in range(2000)]
    for kw in (dict(sg=1), dict(sg=1, hs=1, negative=0)):
        ours = Word2Vec(corpus, vector_size=16, min_count=1, compute_loss=True, epochs=2, workers=1, seed=1, **kw)
        theirs = gensim.models.Word2Vec(corpus, vector_size=16, min_count=1, compute_loss=True, epochs=2,
                                        workers=1, seed=1, **kw)
        assert 0.5 < ours.get_latest_training_loss() / theirs.get_latest_training_loss() < 2.0, kw


def topic_corpus(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return [[f"{'ab'[i % 2]}{rng.integers(10)}" for _ in range(8)] for i in range(n)]


@pytest.mark.parametrize("sg,negative", [(1, 0), (0, 0), (1, 5)], ids=["sg-hs", "cbow-hs", "sg-hs+neg"])
def test_hierarchical_softmax_learns_planted_topics(sg, negative):
    m = Word2Vec(topic_corpus(), vector_size=16, window=3, min_count=1, sg=sg, hs=1, negative=negative,
                 workers=2, epochs=5, seed=3)
    within = np.mean([m.wv.similarity(f"a{i}", f"a{j}") for i in range(10) for j in range(i)])
    across = np.mean([m.wv.similarity(f"a{i}", f"b{j}") for i in range(10) for j in range(10)])
    assert within > across + 0.3, (within, across)
    assert m.syn1.shape == m.wv.vectors.shape and np.abs(m.syn1).max() > 0.01
    assert (m.syn1neg.size > 0) == bool(negative)


def test_vocabulary_options_follow_gensim():
    texts = [["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"]]
    assert Word2Vec(min_count=1, max_final_vocab=3).build_vocab(texts).wv.index_to_key == ["a", "b", "c"]
    rule = lambda w, c, m: RULE_KEEP if w == "e" else (RULE_DISCARD if w == "a" else 0)  # noqa: E731
    assert Word2Vec(min_count=3, trim_rule=None).build_vocab(texts, trim_rule=rule).wv.index_to_key == ["b", "c", "e"]
    unsorted = Word2Vec(min_count=1, sorted_vocab=0).build_vocab([["x", "y", "y"]])
    assert unsorted.wv.index_to_key == ["x", "y"]
    assert Word2Vec(min_count=1, null_word=1).build_vocab(texts).wv.index_to_key[-1] == "\0"
    m = Word2Vec(min_count=1).build_vocab(texts * 3)
    assert (m.corpus_count, m.corpus_total_words) == (3, 45)


@pytest.mark.parametrize("min_count", [1, 2, 5])
def test_vocabulary_order_is_gensims(min_count):
    """Descending count, and among equal counts the word seen last first (gensim 4 sorts with
    np.lexsort((-index, -count))), on a corpus with many ties."""
    gensim = pytest.importorskip("gensim")
    rng = np.random.default_rng(min_count)
    words = [f"w{i}" for i in range(400)]
    texts = [list(rng.choice(words, rng.integers(1, 12))) for _ in range(300)]
    want = gensim.models.Word2Vec(min_count=min_count)
    want.build_vocab(texts)
    assert Word2Vec(min_count=min_count).build_vocab(texts).wv.index_to_key == want.wv.index_to_key


def test_sort_by_frequency_vectors_for_all_and_word_vec_as_gensims():
    """KeyedVectors' sort_by_descending_frequency, vectors_for_all (duplicates, missing keys,
    made-up or copied counts) and the deprecated word_vec give gensim's keys, vectors and
    counts."""
    gensim = pytest.importorskip("gensim")
    rng = np.random.default_rng(0)
    keys = [f"k{i}" for i in range(10)]
    vectors = rng.standard_normal((10, 4)).astype(np.float32)
    counts = [3, 5, 3, 1, 5, 2, 2, 9, 1, 3]
    made = []
    for cls in (gensim.models.KeyedVectors, KeyedVectors):
        kv = cls(4)
        kv.add_vectors(keys, vectors)
        for k, c in zip(keys, counts):
            kv.set_vecattr(k, "count", c)
        kv.sort_by_descending_frequency()
        made.append(kv)
    theirs, ours = made
    assert ours.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)
    for copy in (False, True):
        a, b = (kv.vectors_for_all(["k3", "zz", "k1", "k3", "k7"], copy_vecattrs=copy) for kv in made)
        assert b.index_to_key == a.index_to_key
        np.testing.assert_array_equal(b.vectors, a.vectors)
        assert [b.get_vecattr(k, "count") for k in keys if k in b] == \
            [a.get_vecattr(k, "count") for k in keys if k in a]
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(ours.word_vec("k1"), theirs.get_vector("k1"))


def test_norms_follow_a_new_array_of_vectors():
    """most_similar after `kv.vectors = new_array` ranks by the new vectors' lengths (it used
    the old array's); after changes in place, fill_norms(force=True) as in gensim."""
    kv = KeyedVectors(4)
    kv.add_vectors(["a", "b", "c"], np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]], np.float32))
    assert kv.most_similar("a", topn=1)[0][0] == "c"
    kv.vectors = np.array([[1, 0, 0, 0], [3, 0.3, 0, 0], [0, 2, 0, 0]], np.float32)
    (key, score), = kv.most_similar("a", topn=1)
    assert key == "b" and score == pytest.approx(3 / np.hypot(3, 0.3), rel=1e-6)
    kv.vectors[2] = [2, 0, 0, 0]
    kv.fill_norms(force=True)
    assert kv.most_similar("a", topn=2)[0] == ("c", pytest.approx(1.0))


def test_train_requires_gensims_arguments():
    m = Word2Vec(min_count=1).build_vocab(COMMON_TEXTS)
    with pytest.raises(ValueError, match="total_examples or total_words"):
        m.train(COMMON_TEXTS, epochs=1)
    with pytest.raises(ValueError, match="explicit epochs"):
        m.train(COMMON_TEXTS, total_examples=9)
    with pytest.raises(RuntimeError, match="build vocabulary"):
        Word2Vec(min_count=1).train(COMMON_TEXTS, total_examples=9, epochs=1)
    trained, raw = m.train(COMMON_TEXTS, total_examples=9, epochs=2)
    assert raw == 2 * 29 and 0 < trained <= raw


def test_save_load_with_mmap_and_unsupported_files(tmp_path):
    m = Word2Vec(COMMON_TEXTS, vector_size=8, min_count=1, hs=1, seed=2)
    m.save(str(tmp_path / "w2v"))
    m.wv.save(str(tmp_path / "kv"))
    back = Word2Vec.load(str(tmp_path / "w2v"), mmap="r")
    np.testing.assert_array_equal(back.wv.vectors, m.wv.vectors)
    np.testing.assert_array_equal(back.syn1, m.syn1)
    assert back.hs == 1 and back.wv.get_vecattr("system", "count") == 4
    with pytest.raises(ValueError, match=r"read-only \(loaded with mmap='r'\): load it without"):
        back.train(COMMON_TEXTS, total_examples=9, epochs=1)  # numpy's "array is not writeable"
    kv = KeyedVectors.load(str(tmp_path / "kv"), mmap="r")
    assert isinstance(kv.vectors, np.memmap) and not kv.vectors.flags.writeable
    assert kv.most_similar("system", topn=3) == m.wv.most_similar("system", topn=3)
    with pytest.raises(ValueError, match="not a Word2Vec|holds a KeyedVectors"):
        Word2Vec.load(str(tmp_path / "kv"))
    data = (tmp_path / "w2v").read_bytes()
    for cut, why in ((12, "damaged or cut short"), (100, "damaged or cut short"),
                     (len(data) - 100, "cut short: its array")):
        (tmp_path / "cut").write_bytes(data[:cut])
        for mmap in (None, "r"):
            with pytest.raises(ValueError, match=why):
                Word2Vec.load(str(tmp_path / "cut"), mmap=mmap)
    (tmp_path / "pickled").write_bytes(b"\x80\x04\x95 not for us")
    with pytest.raises(ValueError, match="pickle"):
        KeyedVectors.load(str(tmp_path / "pickled"))
    with pytest.raises(AttributeError, match="removed in gensim 4.*key_to_index"):
        kv.vocab  # gensim 3 code
    for old, new in (("index2word", "index_to_key"), ("syn0", "vectors"),
                     ("vectors_norm", "get_normed_vectors")):
        with pytest.raises(AttributeError, match=f"{old} was removed in gensim 4.*{new}"):
            getattr(kv, old)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        kv.nothing
    with pytest.warns(DeprecationWarning, match="deprecated `init_sims` .Use fill_norms"):
        m.wv.init_sims()  # gensim 4 warns so
    # errors name the path given (they had named the temporary file, or the rename)
    with pytest.raises(IsADirectoryError, match=f"is a folder; name a file in it: '{tmp_path}'"):
        m.save(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such folder: '.*nowhere'"):
        m.wv.save(str(tmp_path / "nowhere" / "kv"))


@pytest.mark.parametrize("ext", [".gz", ".bz2", ".xz"])
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_word2vec_files_compressed_by_name(tmp_path, ext, binary):
    """As gensim (smart_open): a name ending .gz, .bz2 or .xz is written and read compressed,
    the vocabulary file too; gensim reads seqkern's and seqkern reads gensim's."""
    keys, v = structured_vectors(n=40, dim=5)
    wv = KeyedVectors(5)
    wv.add_vectors(keys, v, extras={"count": np.arange(40, 0, -1)})
    path, voc = str(tmp_path / f"v{ext}"), str(tmp_path / f"voc{ext}")
    wv.save_word2vec_format(path, fvocab=voc, binary=binary)
    magic = {".gz": b"\x1f\x8b", ".bz2": b"BZh", ".xz": b"\xfd7zXZ"}[ext]
    assert open(path, "rb").read(len(magic)) == magic and open(voc, "rb").read(len(magic)) == magic
    back = KeyedVectors.load_word2vec_format(path, fvocab=voc, binary=binary)
    assert back.index_to_key == keys
    np.testing.assert_array_equal(back.vectors, v)
    assert back.get_vecattr(keys[3], "count") == 37
    gensim = pytest.importorskip("gensim")
    if ext == ".xz":  # smart_open reads .xz only with its own extra installed
        return
    theirs = gensim.models.KeyedVectors.load_word2vec_format(path, binary=binary)
    assert theirs.index_to_key == keys
    os.rename(path, str(tmp_path / "renamed"))  # compressed, but not by name: said so
    with pytest.raises(ValueError, match=r"renamed: compressed \((gzip|bzip2)\), but its name"):
        KeyedVectors.load_word2vec_format(str(tmp_path / "renamed"), binary=binary)
    theirs.save_word2vec_format(str(tmp_path / f"g{ext}"), binary=binary)
    np.testing.assert_allclose(
        KeyedVectors.load_word2vec_format(str(tmp_path / f"g{ext}"), binary=binary).vectors, v,
        rtol=1e-6)


def test_word2vec_format_options(tmp_path):
    keys, v = structured_vectors(n=6, dim=3)
    wv = KeyedVectors(3)
    wv.add_vectors(keys, v, extras={"count": np.array([1, 9, 5, 5, 2, 7])})
    wv.save_word2vec_format(str(tmp_path / "v.txt"), fvocab=str(tmp_path / "voc.txt"))
    lines = (tmp_path / "v.txt").read_text().splitlines()
    assert lines[0] == "6 3" and [ln.split()[0] for ln in lines[1:]] == ["w1", "w5", "w2", "w3", "w4", "w0"]
    for dtype in (np.uint32, np.float32):  # by descending value whatever its type, ties in order
        other = KeyedVectors(3)
        other.add_vectors(keys, v, extras={"count": np.array([1, 9, 5, 5, 2, 7], dtype)})
        other.save_word2vec_format(str(tmp_path / "o.txt"))
        assert (tmp_path / "o.txt").read_text().splitlines() == lines
    back = KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"), fvocab=str(tmp_path / "voc.txt"))
    assert back.get_vecattr("w5", "count") == 7
    (tmp_path / "badvoc.txt").write_text("w1 9\nw5\n")
    with pytest.raises(ValueError, match="badvoc.txt: line 2: expected 'word count'"):
        KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"), fvocab=str(tmp_path / "badvoc.txt"))
    np.testing.assert_array_equal(back["w2"], v[2])  # str(float32) round-trips exactly
    (tmp_path / "nohead.txt").write_text("\n".join(lines[1:]) + "\n")
    assert len(KeyedVectors.load_word2vec_format(str(tmp_path / "nohead.txt"), no_header=True)) == 6
    (tmp_path / "bad.txt").write_bytes(b"1 2\n\xff\xfeword 1.0 2.0\n")
    with pytest.raises(UnicodeDecodeError):
        KeyedVectors.load_word2vec_format(str(tmp_path / "bad.txt"))
    assert KeyedVectors.load_word2vec_format(str(tmp_path / "bad.txt"), unicode_errors="ignore").index_to_key == ["word"]
    # Keys are decoded as bytes.decode(encoding, unicode_errors) decodes them (in C++), in
    # both formats
    raw = [b"\xe9t\xe9", b"b\xff", b"plain"]
    (tmp_path / "keys.txt").write_bytes(b"3 2\n" + b"".join(k + b" 1 2\n" for k in raw))
    (tmp_path / "keys.bin").write_bytes(
        b"3 2\n" + b"".join(k + b" " + np.ones(2, "<f4").tobytes() + b"\n" for k in raw))
    for name, binary in (("keys.txt", False), ("keys.bin", True)):
        for encoding in ("utf8", "latin-1", "cp1252"):
            for errors in ("strict", "replace", "ignore", "backslashreplace"):
                try:
                    want = [k.decode(encoding, errors) for k in raw]
                except UnicodeDecodeError:
                    with pytest.raises(UnicodeDecodeError):
                        KeyedVectors.load_word2vec_format(str(tmp_path / name), binary=binary,
                                                          encoding=encoding, unicode_errors=errors)
                    continue
                got = KeyedVectors.load_word2vec_format(str(tmp_path / name), binary=binary,
                                                        encoding=encoding, unicode_errors=errors)
                assert got.index_to_key == want, (name, encoding, errors)
        with pytest.raises(LookupError):
            KeyedVectors.load_word2vec_format(str(tmp_path / name), binary=binary,
                                              encoding="no-such-codec")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"), limit=2)) == 2


# A pretrained file's vectors brought into a new model, then trained further and used to score
# sentences: the gensim 4 recipe (vectors_lockf made one per word, intersect_word2vec_format,
# train, score), written once; only the import line differs between libraries.
TRANSFER = """
import numpy as np
{imports}
texts = {texts!r}
pretrained = Word2Vec(texts * 20, vector_size=16, min_count=1, hs=1, negative=0, seed=3, workers=1)
pretrained.wv.save_word2vec_format("pretrained.txt")
model = Word2Vec(vector_size=16, min_count=1, hs=1, negative=0, seed=4, workers=1)
model.build_vocab(texts + [["brand", "new"]])
model.wv.vectors_lockf = np.ones(len(model.wv), dtype=np.float32)
model.wv.intersect_word2vec_format("pretrained.txt", lockf=0.0)
assert np.array_equal(model.wv["computer"], pretrained.wv["computer"])
before = model.wv.vectors.copy()
model.train(texts + [["brand", "new"]] * 20, total_examples=29, epochs=5)
frozen = model.wv.vectors_lockf == 0
assert frozen.sum() == len(pretrained.wv) and not frozen[model.wv.key_to_index["brand"]]
assert np.array_equal(model.wv.vectors[frozen], before[frozen])
assert not np.array_equal(model.wv["brand"], before[model.wv.key_to_index["brand"]])
scores = model.score([["human", "interface", "computer"], ["graph", "trees"], []], total_sentences=3)
assert scores.dtype == np.float32 and scores.shape == (3,) and scores[2] == 0 and scores[0] < 0
print("transfer ok")
"""


@pytest.mark.parametrize("library", ["seqkern", "gensim"])
def test_gensims_transfer_recipe_runs_unchanged_but_for_the_import(tmp_path, library):
    """The same script under both libraries, so that the recipe is gensim's and not ours."""
    imports = "from seqkern import Word2Vec, KeyedVectors"
    if library == "gensim":
        pytest.importorskip("gensim")
        imports = "from gensim.models import Word2Vec, KeyedVectors"
    script = tmp_path / "transfer.py"
    script.write_text(TRANSFER.format(imports=imports, texts=COMMON_TEXTS))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["transfer", "ok"]


def same_hs_models(gensim, sg, cbow_mean, V=120, dim=13, window=3, seed=0):
    """A gensim and a seqkern hierarchical-softmax model with the same vocabulary, tree and
    vectors. Counts all differ (and so do the sums the tree merges), so the two libraries' ways
    of breaking ties cannot give different trees."""
    rng = np.random.default_rng(seed)
    freq = dict(zip([f"w{i}" for i in range(V)],
                    rng.choice(np.arange(1000, 10**6), V, replace=False).tolist()))
    kwargs = dict(vector_size=dim, window=window, min_count=1, hs=1, negative=0, sg=sg,
                  cbow_mean=cbow_mean)
    theirs, ours = gensim.models.Word2Vec(**kwargs), Word2Vec(**kwargs)
    theirs.build_vocab_from_freq(freq)
    ours.build_vocab_from_freq(freq)
    assert ours.wv.index_to_key == theirs.wv.index_to_key
    offsets, points, codes = ours.tree
    for i in range(V):
        assert points[offsets[i]:offsets[i + 1]].tolist() == theirs.wv.expandos["point"][i].tolist()
        assert codes[offsets[i]:offsets[i + 1]].tolist() == theirs.wv.expandos["code"][i].tolist()
    theirs.wv.vectors[:] = rng.standard_normal(theirs.wv.vectors.shape) * 0.5
    theirs.syn1[:] = rng.standard_normal(theirs.syn1.shape) * 0.5
    ours.wv.vectors[:] = theirs.wv.vectors
    ours.syn1[:len(theirs.syn1)] = theirs.syn1
    return ours, theirs


@pytest.mark.parametrize("sg,cbow_mean", [(1, 1), (0, 1), (0, 0)], ids=["sg", "cbow-mean", "cbow-sum"])
def test_score_equals_gensims(sg, cbow_mean):
    """The same model in both libraries scores the same sentences alike: words outside the
    vocabulary dropped before the windows, empty and one-word sentences, a sentence past 10,000
    known words cut there. gensim sums in float32, and its dot products round otherwise, so a
    score may fall on the other side of one of the table's steps (at most 0.012 apart); about
    one score in 10,000 does."""
    gensim = pytest.importorskip("gensim")
    ours, theirs = same_hs_models(gensim, sg, cbow_mean)
    rng = np.random.default_rng(1)
    words = ours.wv.index_to_key + ["unknown", "words"]
    sentences = [[], ["w3"], ["unknown"], list(rng.choice(words, 10_050))]
    sentences += [list(rng.choice(words, rng.integers(2, 40))) for _ in range(60)]
    a = ours.score(sentences)
    b = theirs.score(sentences, total_sentences=len(sentences))
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(sentences),)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=0.05)  # 10,050 words: 400,000 float32 sums
    assert np.median(np.abs(a - b) / np.maximum(1, np.abs(b))) < 1e-6
    assert a[0] == a[2] == 0 and a.min() < -100
    assert np.array_equal(ours.score(sentences[4:6], total_sentences=5), a[4:6])


def test_score_refuses_as_gensim_and_stops_at_total_sentences():
    with pytest.raises(RuntimeError, match="build vocabulary"):
        Word2Vec(hs=1, negative=0).score([["a"]])
    with pytest.raises(RuntimeError, match="hierarchical softmax"):
        Word2Vec(COMMON_TEXTS, min_count=1).score([["system"]])
    model = Word2Vec(COMMON_TEXTS, min_count=1, hs=1, negative=0, seed=1)
    with pytest.warns(UserWarning, match="terminating after 4 sentences"):
        scores = model.score(COMMON_TEXTS, total_sentences=4)
    np.testing.assert_array_equal(scores, model.score(COMMON_TEXTS)[:4])
    before = model.wv.vectors.copy(), model.syn1.copy()
    model.score(COMMON_TEXTS)
    assert np.array_equal(model.wv.vectors, before[0]) and np.array_equal(model.syn1, before[1])


def test_score_tells_documents_by_the_model_of_their_topic():
    """Taddy's classification by inversion, the use gensim documents for score (its deepir
    notebook): one vocabulary over all the documents, a copy of the model trained on each
    topic's, and each held-out sentence goes to the copy that scores it higher."""
    import copy
    rng = np.random.default_rng(2)
    topics = [[f"a{i}" for i in range(30)], [f"b{i}" for i in range(30)]]
    shared = [f"s{i}" for i in range(10)]

    def sentences(topic, n):
        return [list(rng.choice(topics[topic] + shared, 12)) for _ in range(n)]

    train = [sentences(0, 300), sentences(1, 300)]
    base = Word2Vec(vector_size=20, min_count=1, hs=1, negative=0, sg=1, seed=5, workers=1,
                    epochs=10)
    base.build_vocab(train[0] + train[1])
    models = [copy.deepcopy(base) for _ in train]
    for model, docs in zip(models, train):
        model.train(docs, total_examples=len(docs), epochs=model.epochs)
    for topic in (0, 1):
        held_out = sentences(topic, 50)
        scores = np.stack([m.score(held_out) for m in models])
        assert np.mean(np.argmax(scores, axis=0) == topic) > 0.95


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_intersect_word2vec_format_as_gensim(tmp_path, binary):
    """gensim's merge of a word2vec file: present keys take the file's vectors (the last of a
    key the file repeats), others keep theirs, no key is added, and the merged keys' lock
    factors become lockf. gensim 4.4 reads the text file only: its binary branch calls
    np.fromstring's binary mode, which NumPy 2 removed."""
    gensim = pytest.importorskip("gensim")
    ours, theirs = same_hs_models(gensim, 1, 1, V=30, dim=6)
    rng = np.random.default_rng(3)
    keys = ["w1", "w7", "stranger", "w7", "w29"]
    values = rng.standard_normal((len(keys), 6)).astype(np.float32)
    for name, as_binary in (("text", False), ("binary", True)):
        lines = [f"{len(keys)} 6".encode()]
        for k, v in zip(keys, values):
            body = v.tobytes() if as_binary else " ".join(map(repr, v.tolist())).encode()
            lines.append(k.encode() + b" " + body)
        (tmp_path / name).write_bytes(b"\n".join(lines) + b"\n")
    theirs.wv.vectors_lockf = np.ones(len(theirs.wv), np.float32)  # gensim's needs this first
    theirs.wv.intersect_word2vec_format(str(tmp_path / "text"), lockf=0.25)
    before = ours.wv.vectors.copy()
    ours.wv.intersect_word2vec_format(str(tmp_path / ("binary" if binary else "text")),
                                      lockf=0.25, binary=binary)
    np.testing.assert_array_equal(ours.wv.vectors, theirs.wv.vectors)
    np.testing.assert_array_equal(ours.wv.vectors_lockf, theirs.wv.vectors_lockf)
    assert "stranger" not in ours.wv.key_to_index and len(ours.wv) == 30
    np.testing.assert_array_equal(ours.wv["w7"], values[3])
    assert (ours.wv.vectors != before).any(axis=1).sum() == 3
    (tmp_path / "wide").write_bytes(b"1 7\nw1 " + b"0 " * 7 + b"\n")
    with pytest.raises(ValueError, match="incompatible vector size 7"):
        ours.wv.intersect_word2vec_format(str(tmp_path / "wide"))


def test_vectors_lockf_follows_the_vocabulary(tmp_path):
    """One factor per word grows with the vocabulary (new words train), follows a reorder,
    and is saved with the model; a shared factor of 0 freezes every input vector."""
    model = Word2Vec(COMMON_TEXTS, min_count=1, hs=1, seed=1, workers=1, sample=0)
    V = len(model.wv)
    model.wv.vectors_lockf = np.zeros(V, np.float32)
    model.build_vocab([["brand", "new"]] * 3, update=True)
    assert model.wv.vectors_lockf.tolist() == [0.0] * V + [1.0, 1.0]
    before = model.wv.vectors.copy()
    model.train(COMMON_TEXTS + [["brand", "new", "system"]] * 3, total_examples=12, epochs=3)
    assert np.array_equal(model.wv.vectors[:V], before[:V])
    assert not np.array_equal(model.wv.vectors[V:], before[V:])
    model.save(str(tmp_path / "m"))
    back = Word2Vec.load(str(tmp_path / "m"), mmap="r")
    assert back.wv.vectors_lockf.tolist() == model.wv.vectors_lockf.tolist()
    back.wv.vectors_lockf[0] = 1.0  # writable even from a mapped file
    kv = KeyedVectors(2)
    kv.add_vectors(["x", "y", "z"], np.ones((3, 2), np.float32), extras={"count": np.array([1, 3, 2])})
    kv.vectors_lockf = np.array([0.0, 0.5, 1.0], np.float32)
    kv.sort_by_descending_frequency()
    assert kv.index_to_key == ["y", "z", "x"] and kv.vectors_lockf.tolist() == [0.5, 1.0, 0.0]
    model.wv.vectors_lockf = np.zeros(1, np.float32)
    before = model.wv.vectors.copy()
    model.train(COMMON_TEXTS, total_examples=9, epochs=2)
    assert np.array_equal(model.wv.vectors, before) and model.syn1.any()
    for bad in (np.zeros(0, np.float32), np.ones((2, 2), np.float32), np.array([np.nan], np.float32)):
        model.wv.vectors_lockf = bad
        with pytest.raises(ValueError, match="vectors_lockf"):
            model.train(COMMON_TEXTS, total_examples=9, epochs=1)


@pytest.mark.parametrize("norm", [True, False])
def test_wmdistance_equals_gensims(both, norm):
    """gensim's Word Mover's Distance (through POT) on the same vectors: documents of 1 to 300
    words with repeats and words outside the vocabulary, identical documents, one same word."""
    pytest.importorskip("ot")
    ours, theirs = both
    rng = np.random.default_rng(4)
    keys = ours.index_to_key
    pairs = [(["w3"], ["w3", "w3"]), (["w3", "w5"], ["w5", "w3"]), (["w3"], ["w9"]),
             (["w1", "nowhere", "w1", "w2"], ["w2", "w7", "w7"])]
    for length in (2, 8, 40, 300):
        pairs += [(list(rng.choice(keys, length)), list(rng.choice(keys, length // 2 + 1)))
                  for _ in range(5)]
    for d1, d2 in pairs:
        assert ours.wmdistance(d1, d2, norm=norm) == pytest.approx(
            theirs.wmdistance(d1, d2, norm=norm), abs=1e-9)


def test_wmdistance_is_a_distance_between_bags_of_words():
    """Without an oracle: two one-word documents are as far apart as their unit vectors, a
    document is 0 from itself in any order, the distance is symmetric, and a document with no
    known word is infinitely far, with a warning."""
    keys, v = structured_vectors(n=50, dim=8)
    kv = KeyedVectors(8)
    kv.add_vectors(keys, v)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert kv.wmdistance(["w1"], ["w2"]) == pytest.approx(float(np.linalg.norm(unit[1] - unit[2])))
    assert kv.wmdistance(["w1"], ["w2"], norm=False) == pytest.approx(float(np.linalg.norm(v[1] - v[2])))
    doc = ["w4", "w8", "w4", "w15", "w23"]
    assert kv.wmdistance(doc, doc[::-1]) == 0
    other = ["w9", "w30", "w9"]
    assert kv.wmdistance(doc, other) == pytest.approx(kv.wmdistance(other, doc), abs=1e-12)
    # half the mass stays, half goes from w1 to w2
    assert kv.wmdistance(["w1", "w2"], ["w2", "w2"]) == pytest.approx(
        0.5 * float(np.linalg.norm(unit[1] - unit[2])))
    with pytest.warns(UserWarning, match="no words that were in the vocabulary"):
        assert kv.wmdistance(["unknown"], doc) == float("inf")
    kv.add_vectors(["twin"], v[1:2])  # another word with w1's vector: 0 away (gensim: inf)
    assert kv.wmdistance(["w1"], ["twin"]) == 0


def test_reset_from_shares_the_vocabulary_with_fresh_weights():
    """gensim's reset_from: one vocabulary (the same objects) for models trained side by side,
    each with its own fresh weights, corpus counts and tables; then it trains (gensim 4.4's
    stops in a worker: its new vectors lack vectors_lockf)."""
    texts = COMMON_TEXTS * 5
    other = Word2Vec(texts, min_count=1, hs=1, seed=1, sample=0)
    model = Word2Vec([["unrelated", "words"]] * 3, min_count=1, hs=1, seed=2, sample=0)
    model.reset_from(other)
    assert model.wv.key_to_index is other.wv.key_to_index
    assert model.wv.index_to_key is other.wv.index_to_key
    assert model.corpus_count == other.corpus_count == 45
    assert model.corpus_total_words == other.corpus_total_words
    assert model.wv.vectors.shape == other.wv.vectors.shape
    assert not np.array_equal(model.wv.vectors, other.wv.vectors)
    assert not model.syn1.any() and not model.syn1neg.any()
    np.testing.assert_array_equal(model.cum_table, other.cum_table)
    for a, b in zip(model.tree, other.tree):
        np.testing.assert_array_equal(a, b)
    trained, _ = model.train(texts, total_examples=model.corpus_count, epochs=2)
    assert trained > 0 and model.syn1.any()
    assert model.wv.most_similar("system", topn=2)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), max_vocab_size=st.integers(1, 6),
       min_count=st.integers(0, 3))
def test_vocabulary_pruning_is_gensims(seed, max_vocab_size, min_count):
    """max_vocab_size: the same pruning as gensim's scan, once a sentence, empty sentences
    included: the same words, counts and order on random corpora."""
    gensim = pytest.importorskip("gensim")
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(12)]
    sentences = [list(rng.choice(words, int(rng.integers(0, 7)), p=np.arange(12, 0, -1) / 78))
                 for _ in range(int(rng.integers(1, 12)))]
    if not any(sentences):
        sentences[0] = ["w0"]
    theirs = gensim.models.Word2Vec(min_count=min_count, max_vocab_size=max_vocab_size)
    ours = Word2Vec(min_count=min_count, max_vocab_size=max_vocab_size)
    theirs.build_vocab(sentences)
    if not len(theirs.wv):  # gensim keeps an empty vocabulary, to fail at train
        with pytest.raises(ValueError, match="no word occurs|left no word"):
            ours.build_vocab(sentences)
        return
    ours.build_vocab(sentences)
    assert ours.wv.index_to_key == theirs.wv.index_to_key
    assert list(ours.counts) == [theirs.wv.get_vecattr(w, "count") for w in theirs.wv.index_to_key]


@pytest.mark.parametrize("ext", ["", ".gz", ".bz2"])
def test_line_sentences_as_gensims(tmp_path, ext):
    """LineSentence and PathLineSentences give gensim's sentences: a path or a file object,
    compressed by name, empty lines skipped, long lines cut, limit lines a file, a folder's
    files in name order."""
    gensim = pytest.importorskip("gensim")
    from seqkern.models import LineSentence, PathLineSentences
    import bz2
    import gzip
    text = "the cat  sat\n\nthé naïve ünïcode words\n" + " ".join(f"w{i}" for i in range(25)) + "\nlast line"
    opener = {"": open, ".gz": gzip.open, ".bz2": bz2.open}[ext]
    (tmp_path / "d").mkdir()
    for name in ("b.txt", "a.txt"):
        with opener(tmp_path / "d" / (name + ext), "wb") as f:
            f.write((name + " " + text).encode())
    path = str(tmp_path / "d" / ("a.txt" + ext))
    for kwargs in ({}, {"max_sentence_length": 7}, {"limit": 2}):
        ours = list(LineSentence(path, **kwargs))
        assert ours == list(gensim.models.word2vec.LineSentence(path, **kwargs))
        assert list(PathLineSentences(str(tmp_path / "d"), **kwargs)) == list(
            gensim.models.word2vec.PathLineSentences(str(tmp_path / "d"), **kwargs))
    assert ours == [["a.txt", "the", "cat", "sat"]]  # limit=2: the second line is empty
    assert list(LineSentence(path))[1] == ["thé", "naïve", "ünïcode", "words"]
    with opener(path, "rb") as f:  # a file object, read again at each pass
        stream = LineSentence(f)
        assert list(stream) == list(stream) == list(LineSentence(path))
    model = Word2Vec(LineSentence(path), min_count=1, vector_size=8, seed=1)
    assert "ünïcode" in model.wv.key_to_index
    with pytest.raises(ValueError, match="neither a file nor a path"):
        PathLineSentences(str(tmp_path / "missing"))


def test_gensims_small_corpus_habits():
    """What gensim's own tests expect of a small corpus: the same seed trains the same vectors
    with the default workers (a corpus below one job's words runs on one thread, both ways of
    building), load called on a model raises, a file cut short is an EOFError, a model whose
    output layer is gone cannot predict, 2-D arrays of vectors in most_similar, and the mean
    of one key is that key's vector."""
    for sg in (0, 1):
        a = Word2Vec(COMMON_TEXTS, vector_size=4, min_count=1, sg=sg, negative=2, seed=3)
        b = Word2Vec(vector_size=4, min_count=1, sg=sg, negative=2, seed=3)
        b.build_vocab(COMMON_TEXTS)
        b.train(COMMON_TEXTS, total_examples=b.corpus_count, epochs=b.epochs)
        assert a.workers == 3 and np.array_equal(a.wv.vectors, b.wv.vectors)
        np.testing.assert_array_equal(a.syn1neg, b.syn1neg)
    with pytest.raises(AttributeError, match="called on a class object"):
        a.load("anything")
    assert a.wv.n_similarity(["graph"], ["trees"]) == a.wv.similarity("graph", "trees")
    rows = a.wv.vectors[:3]
    assert a.wv.most_similar(positive=rows, topn=2) == a.wv.most_similar(positive=list(rows), topn=2)


def test_cut_files_and_missing_output_layers_raise_as_gensim(tmp_path):
    model = Word2Vec(COMMON_TEXTS, min_count=1, vector_size=4)
    for binary in (False, True):
        path = tmp_path / f"cut{binary}"
        model.wv.save_word2vec_format(str(path), binary=binary)
        data = path.read_bytes()
        path.write_bytes(b"13" + data[2:])  # gensim's test: a count past the end
        for error in (EOFError, ValueError):
            with pytest.raises(error, match="ends inside entry 12 of 13"):
                KeyedVectors.load_word2vec_format(str(path), binary=binary)
    bare = Word2Vec()  # gensim's test: vectors read from a file, no output layer
    bare.wv = model.wv
    with pytest.raises(RuntimeError, match="not found"):
        bare.predict_output_word(["system", "human"])
    assert model.predict_output_word([model.wv.get_index("system"), "human"], topn=3) == \
        model.predict_output_word(["system", "human"], topn=3)


def test_gensims_wmd_similarity_index_takes_seqkerns_vectors():
    """gensim.similarities.WmdSimilarity over seqkern's KeyedVectors (it calls wmdistance):
    the same neighbours and similarities as over gensim's own vectors with POT."""
    gensim = pytest.importorskip("gensim")
    pytest.importorskip("ot")
    from gensim.similarities import WmdSimilarity
    model = Word2Vec(COMMON_TEXTS * 10, min_count=1, vector_size=16, seed=1)
    theirs = gensim.models.KeyedVectors(16)
    theirs.add_vectors(model.wv.index_to_key, model.wv.vectors)
    query = ["human", "computer", "interface", "unknown"]
    ours = WmdSimilarity(COMMON_TEXTS, model.wv, num_best=4)[query]
    expected = WmdSimilarity(COMMON_TEXTS, theirs, num_best=4)[query]
    assert [i for i, _ in ours] == [i for i, _ in expected]
    np.testing.assert_allclose([v for _, v in ours], [v for _, v in expected], rtol=1e-9)


def test_training_logs_gensims_lines(caplog):
    """With logging at INFO, as gensim's tutorials set it: the vocabulary, every epoch, the run,
    and gensim's warnings for hs with negative sampling and for alpha rising between calls."""
    import logging
    with caplog.at_level(logging.INFO, logger="seqkern.models.word2vec"):
        model = Word2Vec(COMMON_TEXTS, min_count=1, hs=1, negative=5, epochs=3, alpha=0.025)
        model.train(COMMON_TEXTS, total_examples=9, epochs=1, start_alpha=0.05)
    text = caplog.text
    assert "collected 12 word types from a corpus of 29 raw words and 9 sentences" in text
    assert all(f"EPOCH {e}: training on 29 raw words" in text for e in range(3))
    assert "Both hierarchical softmax and negative sampling are activated" in text
    assert text.count("Effective 'alpha' higher than previous training cycles") == 1
    assert "training on 87 raw words" in text


def test_words_outside_the_vocabulary_count_as_read_as_in_gensim():
    """train returns (effective words, raw words) with gensim's raw count, words that min_count
    dropped included. The learning rate falls with the known words over all words, so it ends
    above min_alpha by the share of words outside the vocabulary (README: the schedule)."""
    model = Word2Vec(min_count=3, sample=0).build_vocab(COMMON_TEXTS)
    assert model.train(COMMON_TEXTS, total_examples=model.corpus_count, epochs=2) == (26, 58)
    assert model.min_alpha_yet_reached == pytest.approx(
        model.alpha - (model.alpha - model.min_alpha) * 26 / 58)
    gensim = pytest.importorskip("gensim")
    theirs = gensim.models.Word2Vec(min_count=3, sample=0)
    theirs.build_vocab(COMMON_TEXTS)
    assert theirs.train(COMMON_TEXTS, total_examples=theirs.corpus_count, epochs=2) == (26, 58)
