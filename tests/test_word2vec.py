"""word2vec: the C++ updates against their NumPy twin, the twin's update against the gradient of
its loss, vocabulary / subsampling / noise statistics, learning planted structure, the
word2vec.c file formats, full-state save/load and bad input."""
import os
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqkern import _core
from seqkern.gradcheck import numerical_gradient
from seqkern.models import KeyedVectors, Word2Vec
from seqkern.models.word2vec import LineSentence, keep_probabilities, noise_table
from seqkern.reference import word2vec as twin
from simd_levels import LEVELS, run_at_level


def chunk(seed=0, V=17, n_sentences=12):
    """A random chunk: ids, offsets (uneven sentences, one empty), vocabulary counts."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 15, n_sentences)
    ids = rng.integers(0, V, lengths.sum()).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    counts = np.bincount(ids, minlength=V) + 1
    return ids, offsets, counts


def kv(keys, vectors):
    """A KeyedVectors built as gensim users build one."""
    out = KeyedVectors(np.shape(vectors)[1])
    out.add_vectors(list(keys), np.asarray(vectors, np.float32))
    return out


@pytest.mark.parametrize("sg,cbow_mean", [(1, 1), (0, 1), (0, 0)], ids=["sg", "cbow-mean", "cbow-sum"])
@pytest.mark.parametrize("sample", [0.0, 0.005], ids=["all", "subsampled"])
@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("hs,negative,shrink", [(0, 4, True), (1, 0, True), (1, 3, False)],
                         ids=["neg", "hs", "hs+neg-full-windows"])
def test_kernel_matches_twin(sg, cbow_mean, sample, parts, hs, negative, shrink):
    """Same seeds, so the same subsampling, windows and noise words: the same vectors (to
    float32 rounding, the twin summing in another order), the same random states after, and
    the same loss."""
    ids, offsets, counts = chunk()
    V, dim = len(counts), 11
    rng = np.random.default_rng(1)
    syn0 = ((rng.random((V, dim)) - 0.5) / dim).astype(np.float32)
    syn1neg = (rng.standard_normal((V, dim)) * 0.1).astype(np.float32)
    syn1 = (rng.standard_normal((V, dim)) * 0.1).astype(np.float32)
    keep, cum = keep_probabilities(counts, sample), noise_table(counts, 0.75)
    tree = _core.huffman_tree(counts.astype(np.int64)) if hs else None
    seeds = np.arange(1, parts + 1, dtype=np.uint64) * np.uint64(977)
    args = (3, negative, bool(sg), bool(cbow_mean), shrink)
    if parts > 1:  # parts run at once in C++ and may touch the same rows: compare one at a time
        import seqkern as sk
        threads = sk.get_num_threads()
        sk.set_num_threads(1)
    try:
        a0, a1, ah, s_a = syn0.copy(), syn1neg.copy(), syn1.copy(), seeds.copy()
        n_a, loss_a = _core.w2v_train(*args, ids, offsets, keep, cum, 0.05, 0.01, s_a, a0,
                                      a1 if negative else None, tree, ah if hs else None, True, None)
    finally:
        if parts > 1:
            sk.set_num_threads(threads)
    b0, b1, bh, s_b = syn0.copy(), syn1neg.copy(), syn1.copy(), seeds.copy()
    n_b, loss_b = twin.w2v_train(*args, ids, offsets, keep, cum, 0.05, 0.01, s_b, b0, b1, tree, bh, True)
    assert n_a == n_b
    assert (n_a < len(ids)) if sample else (n_a == len(ids))
    np.testing.assert_array_equal(s_a, s_b)
    np.testing.assert_allclose(a0, b0, atol=2e-6)
    np.testing.assert_allclose(a1, b1, atol=2e-6)
    np.testing.assert_allclose(ah, bh, atol=2e-6)
    assert loss_a == pytest.approx(loss_b, rel=1e-5) and loss_a > 0
    assert np.abs(a0 - syn0).max() > 1e-3  # training moved the vectors
    if hs:
        assert np.abs(ah - syn1).max() > 1e-3


@pytest.mark.parametrize("sg,cbow_mean", [(1, 1), (0, 1), (0, 0)], ids=["sg", "cbow-mean", "cbow-sum"])
@pytest.mark.parametrize("hs,negative", [(0, 4), (1, 2)], ids=["neg", "hs+neg"])
@pytest.mark.parametrize("n_lockf", [17, 5], ids=["per-word", "cycled"])
def test_lock_factors_scale_the_input_updates(sg, cbow_mean, hs, negative, n_lockf):
    """gensim's vectors_lockf: word w's input updates times lockf[w % len(lockf)], as the twin
    does; a factor of 0 leaves a vector exactly as it was, and factors of 1 are no factors."""
    ids, offsets, counts = chunk(seed=3)
    V, dim = len(counts), 9
    rng = np.random.default_rng(5)
    syn0 = ((rng.random((V, dim)) - 0.5) / dim).astype(np.float32)
    syn1neg = (rng.standard_normal((V, dim)) * 0.1).astype(np.float32)
    syn1 = (rng.standard_normal((V, dim)) * 0.1).astype(np.float32)
    keep, cum = keep_probabilities(counts, 0.0), noise_table(counts, 0.75)
    tree = _core.huffman_tree(counts.astype(np.int64)) if hs else None
    lockf = np.array([0.0, 1.0, 0.5, 2.0, 0.0] * 4, np.float32)[:n_lockf]
    args = (3, negative, bool(sg), bool(cbow_mean), True, ids, offsets, keep, cum, 0.05, 0.01)

    def run(train, factors):
        a0, a1, ah, seeds = syn0.copy(), syn1neg.copy(), syn1.copy(), np.array([11], np.uint64)
        train(*args, seeds, a0, a1, tree, ah if hs else None, True, None, factors)
        return a0, a1, ah

    a0, a1, ah = run(_core.w2v_train, lockf)
    b0, b1, bh = run(twin.w2v_train, lockf)
    np.testing.assert_allclose(a0, b0, atol=2e-6)
    np.testing.assert_allclose(a1, b1, atol=2e-6)
    np.testing.assert_allclose(ah, bh, atol=2e-6)
    frozen = lockf[np.arange(V) % n_lockf] == 0
    np.testing.assert_array_equal(a0[frozen], syn0[frozen])
    assert np.abs(a0[~frozen] - syn0[~frozen]).max() > 1e-3
    plain = run(_core.w2v_train, None)
    ones = run(_core.w2v_train, np.ones(n_lockf, np.float32))
    for x, y in zip(plain, ones):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="lockf"):
        run(_core.w2v_train, np.ones(0, np.float32))


def grid(rng, shape):
    """Values on a grid of 1/8 in [-1, 1]: the dot products of a few are exact in float32 in any
    order, so table lookups of the same sums read the same entries."""
    return (rng.integers(-8, 9, shape) / 8).astype(np.float32)


@pytest.mark.parametrize("sg,cbow_mean", [(1, 1), (0, 1), (0, 0)], ids=["sg", "cbow-mean", "cbow-sum"])
@pytest.mark.parametrize("window", [1, 3, 40])
@pytest.mark.parametrize("threads", [1, 2])
def test_score_kernel_matches_twin(sg, cbow_mean, window, threads):
    """gensim's Word2Vec.score in C++ against the twin: uneven sentences (one empty, one of a
    word), scores past |f| = 6 left out (the vectors are large enough for some), the same
    figures on one thread or two. A CBOW mean's division rounds, so there a dot product may
    fall on either side of a table step: one step is at most 0.012."""
    import seqkern as sk
    V, dim = 17, 11
    rng = np.random.default_rng(7)
    lengths = np.concatenate([[0, 1], rng.integers(2, 60, 38)])
    ids = rng.integers(0, V, lengths.sum()).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    counts = np.bincount(ids, minlength=V) + 1
    syn0, syn1 = 2 * grid(rng, (V, dim)), 2 * grid(rng, (V - 1, dim))
    tree = _core.huffman_tree(counts.astype(np.int64))
    before = sk.get_num_threads()
    sk.set_num_threads(threads)
    try:
        a = _core.w2v_score(window, bool(sg), bool(cbow_mean), ids, offsets, syn0, tree, syn1)
    finally:
        sk.set_num_threads(before)
    b = twin.w2v_score(window, bool(sg), bool(cbow_mean), ids, offsets, syn0, tree, syn1)
    assert a.dtype == np.float32 and a.shape == (len(offsets) - 1,)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=0.03 if cbow_mean and not sg else 0)
    assert a[0] == 0 and (a[1] == 0) == bool(sg)  # a word alone: no pairs; CBOW's zero input
    assert np.all(a <= 0) and a.min() < -10
    f = syn0 @ syn1.T
    assert np.abs(f).max() >= 6  # some scores were left out


def test_score_table_is_gensims():
    """The twin's table against gensim's own, read through a two-word vocabulary: its one inner
    node is both words' path, with opposite branches, so the sentence "a b" scores the entries
    of f and -f."""
    gensim = pytest.importorskip("gensim")
    from gensim.models.word2vec_inner import score_sentence_sg
    model = gensim.models.Word2Vec(vector_size=1, window=1, min_count=1, hs=1, negative=0, sg=1)
    model.build_vocab_from_freq({"a": 2, "b": 1})
    ours = twin.log_sigmoid_table()
    for f in np.linspace(-5.99, 5.99, 301, dtype=np.float32):
        model.wv.vectors[:] = 1
        model.syn1[0] = f
        expected = score_sentence_sg(model, ["a", "b"], np.zeros(1, np.float32))
        entries = ours[int((np.float64(f) + 6.0) * 83)], ours[int((np.float64(-f) + 6.0) * 83)]
        assert np.float32(entries[0]) + np.float32(entries[1]) == np.float32(expected)


def test_score_binding_refuses_bad_input():
    ids, offsets, counts = chunk(seed=6)
    V, dim = len(counts), 4
    syn0, syn1 = np.zeros((V, dim), np.float32), np.zeros((V - 1, dim), np.float32)
    tree = _core.huffman_tree(counts.astype(np.int64))
    bad_ids = ids.copy()
    bad_ids[0] = V
    for call, why in (
            (lambda: _core.w2v_score(0, True, True, ids, offsets, syn0, tree, syn1), "window"),
            (lambda: _core.w2v_score(2, True, True, bad_ids, offsets, syn0, tree, syn1), "ids"),
            (lambda: _core.w2v_score(2, True, True, ids, offsets[::-1].copy(), syn0, tree, syn1),
             "offsets"),
            (lambda: _core.w2v_score(2, True, True, ids[:-1], offsets, syn0, tree, syn1), "offsets"),
            (lambda: _core.w2v_score(2, True, True, ids, offsets, syn0[:-1], tree, syn1), "tree"),
            (lambda: _core.w2v_score(2, True, True, ids, offsets, syn0, tree, syn1[:, :3].copy()),
             "syn1")):
        with pytest.raises(ValueError, match=why):
            call()


@pytest.mark.parametrize("sg", [1, 0], ids=["sg", "cbow"])
def test_part_bounds_match_the_twin(sg):
    """Parts given by sentence bounds (a corpus file's pieces, one for each worker; one part
    empty here) train those sentences with their own streams, as the twin does."""
    ids, offsets, counts = chunk(seed=4)
    V, dim = len(counts), 7
    rng = np.random.default_rng(2)
    syn0 = ((rng.random((V, dim)) - 0.5) / dim).astype(np.float32)
    syn1neg = (rng.standard_normal((V, dim)) * 0.1).astype(np.float32)
    keep, cum = keep_probabilities(counts, 0.0), noise_table(counts, 0.75)
    seeds = np.array([5, 6, 7, 8], np.uint64)
    bounds = np.array([0, 1, 1, 9, 12], np.int64)
    args = (2, 3, bool(sg), True, True, ids, offsets, keep, cum, 0.05, 0.01)
    import seqkern as sk
    threads = sk.get_num_threads()
    sk.set_num_threads(1)
    try:
        runs = {}
        for name, b in (("bounds", bounds), ("equal", None)):
            a0, a1, s_a = syn0.copy(), syn1neg.copy(), seeds.copy()
            runs[name] = _core.w2v_train(*args, s_a, a0, a1, None, None, True, b), a0, a1, s_a
        with pytest.raises(ValueError, match="bounds"):
            _core.w2v_train(*args, seeds.copy(), syn0.copy(), syn1neg.copy(), None, None, False,
                            np.array([0, 5, 3, 9, 12], np.int64))
        with pytest.raises(ValueError, match="bounds"):
            _core.w2v_train(*args, seeds.copy(), syn0.copy(), syn1neg.copy(), None, None, False,
                            np.array([0, 12], np.int64))
    finally:
        sk.set_num_threads(threads)
    b0, b1, s_b = syn0.copy(), syn1neg.copy(), seeds.copy()
    n_b, loss_b = twin.w2v_train(*args, s_b, b0, b1, None, None, True, bounds=bounds)
    (n_a, loss_a), a0, a1, s_a = runs["bounds"]
    assert n_a == n_b == len(ids)
    np.testing.assert_array_equal(s_a, s_b)
    np.testing.assert_allclose(a0, b0, atol=2e-6)
    np.testing.assert_allclose(a1, b1, atol=2e-6)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    assert np.abs(runs["equal"][1] - a0).max() > 1e-4  # the bounds chose other sentences


def test_pieces_encode_with_each_parts_sentences():
    """A chunk of pieces, one for each part: the sentences of all of them in order, and bounds
    that give part q the sentences of piece q (none for an empty piece)."""
    from seqkern.models.word2vec import _encode
    vocab = _core.Vocabulary(["a", "b"])
    ids, offsets, bounds, words = _encode(vocab, [b"a b\nb\n", b"", b"a\nzz\na b a\n"])
    np.testing.assert_array_equal(ids, [0, 1, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(offsets, [0, 2, 3, 4, 7])
    np.testing.assert_array_equal(bounds, [0, 2, 2, 4])
    assert words == 8  # zz too: the schedule counts every word read
    assert _encode(vocab, b"a b\nb\n")[2] is None


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_file_pieces_give_each_part_its_own_range(tmp_path, monkeypatch, parts):
    """A corpus file read for `parts` workers: stream q's pieces, joined, are the lines of the
    q-th of `parts` equal byte ranges (moved to line starts); together, every line once, none
    cut; each piece ends at a newline; one piece of each stream at a time."""
    from seqkern.models import word2vec as w2v
    monkeypatch.setattr(w2v, "CHUNK_BYTES", 600)  # pieces longer than a line
    rng = np.random.default_rng(parts)
    lines = [" ".join(f"w{i}" for i in rng.integers(0, 50, rng.integers(1, 15)))
             for _ in range(200)]
    text = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "corpus.txt"
    path.write_bytes(text)
    chunks = list(w2v.file_pieces(str(path), parts))
    assert chunks and all(len(c) == parts for c in chunks)
    streams = [b"".join(c[q] for c in chunks) for q in range(parts)]
    assert b"".join(streams) == text
    for q, stream in enumerate(streams):
        start = sum(len(x) for x in streams[:q])
        assert start == 0 or text[start - 1:start] == b"\n"
        assert abs(start - len(text) * q // parts) < 200  # within a line of the range's start
        assert all(p.endswith(b"\n") for c in chunks for p in c[q:q + 1] if p)
    model = Word2Vec(corpus_file=str(path), vector_size=8, min_count=1, workers=parts, epochs=1,
                     seed=1)
    assert model.train(corpus_file=str(path), total_words=model.corpus_total_words,
                       epochs=1)[1] == len(text.split())  # every word read once


@pytest.mark.parametrize("parts", [2, 3])
def test_file_pieces_share_a_corpus_of_one_line(tmp_path, monkeypatch, parts):
    """text8's layout, one line of words: each part starts after a space near its range's start
    (a line start further than a piece away does not count), so every worker gets its share;
    together the streams are the file, every word once and none cut."""
    from seqkern.models import word2vec as w2v
    monkeypatch.setattr(w2v, "CHUNK_BYTES", 600)
    words = [f"w{i}" for i in np.random.default_rng(parts).integers(0, 50, 3000)]
    text = " ".join(words).encode()  # no newline at all
    path = tmp_path / "one_line.txt"
    path.write_bytes(text)
    chunks = list(w2v.file_pieces(str(path), parts))
    streams = [b"".join(c[q] for c in chunks) for q in range(parts)]
    assert b"".join(streams) == text
    for q, stream in enumerate(streams):
        start = sum(len(x) for x in streams[:q])
        assert abs(start - len(text) * q // parts) < 10  # within a word of the range's start
        assert start == 0 or text[start - 1:start] == b" "
    model = Word2Vec(corpus_file=str(path), vector_size=8, min_count=1, workers=parts, epochs=1)
    assert model.train(corpus_file=str(path), total_words=model.corpus_total_words,
                       epochs=1)[1] == len(words)


@pytest.mark.parametrize("sg", [1, 0], ids=["sg", "cbow"])
def test_parts_copies_of_the_top_rows_merge_to_the_twin(sg):
    """With several parts, each keeps the tree's top rows (here all 16 of them) in a copy of
    its own, merged into syn1 every 512 words and at its end. Run one part after the other,
    that is the twin's sequential training: parts of ~1500 words cross three merges each."""
    rng = np.random.default_rng(3)
    V, dim = 17, 9
    ids = rng.integers(0, V, 3000).astype(np.int32)
    offsets = np.array([0, 700, 1500, 1501, 2300, 3000], np.int64)
    counts = np.bincount(ids, minlength=V) + 1
    syn0 = ((rng.random((V, dim)) - 0.5) / dim).astype(np.float32)
    syn1 = (rng.standard_normal((V, dim)) * 0.1).astype(np.float32)
    keep, cum = keep_probabilities(counts, 0.0), noise_table(counts, 0.75)
    tree = _core.huffman_tree(counts.astype(np.int64))
    seeds = np.array([11, 12], np.uint64)
    args = (3, 0, bool(sg), True, True, ids, offsets, keep, cum, 0.02, 0.01)
    import seqkern as sk
    threads = sk.get_num_threads()
    sk.set_num_threads(1)
    try:
        a0, ah, s_a = syn0.copy(), syn1.copy(), seeds.copy()
        n_a, loss_a = _core.w2v_train(*args, s_a, a0, None, tree, ah, True, None)
    finally:
        sk.set_num_threads(threads)
    b0, bh, s_b = syn0.copy(), syn1.copy(), seeds.copy()
    n_b, loss_b = twin.w2v_train(*args, s_b, b0, None, tree, bh, True)
    assert n_a == n_b == len(ids)
    np.testing.assert_array_equal(s_a, s_b)
    np.testing.assert_allclose(ah, bh, atol=1e-5)
    np.testing.assert_allclose(a0, b0, atol=1e-5)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    assert np.abs(ah - syn1).max() > 1e-2


@pytest.mark.parametrize("labels", [[1, 0, 0], [0, 1, 1]], ids=["negative-sampling", "hs-path"])
def test_update_is_a_gradient_step_on_the_loss(labels):
    """One window (three inputs, three outputs with their labels): the twin's updates of the
    inputs and the outputs are -alpha times the gradient of window_loss (central differences in
    float64)."""
    rng = np.random.default_rng(2)
    dim, alpha = 6, 0.1
    inputs = rng.standard_normal((3, dim)) * 0.5
    outputs = rng.standard_normal((3, dim)) * 0.5
    g = numerical_gradient(lambda inputs, outputs: twin.window_loss(inputs, outputs, labels),
                           {"inputs": inputs, "outputs": outputs})
    d_in, d_out, loss = twin.update_window(inputs.astype(np.float32), outputs.astype(np.float32),
                                           labels, alpha)
    np.testing.assert_allclose(d_in, -alpha * g["inputs"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_out, -alpha * g["outputs"], rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(twin.window_loss(inputs, outputs, labels), rel=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_huffman_tree_matches_twin_and_is_optimal(seed):
    """word2vec.c's tree: the C++ and NumPy builds agree; the codes are prefix-free and complete
    (Kraft sum 1); the weighted path length is Huffman's (the sum of the inner nodes' counts);
    a more frequent word never has a longer code."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 1000, 50) if seed else np.array([5, 5, 5, 5, 1])  # ties too
    offsets, points, codes = _core.huffman_tree(counts.astype(np.int64))
    t_offsets, t_points, t_codes = twin.huffman_tree(counts)
    np.testing.assert_array_equal(offsets, t_offsets)
    np.testing.assert_array_equal(points, t_points)
    np.testing.assert_array_equal(codes, t_codes)
    lengths = np.diff(offsets)
    words = ["".join(map(str, codes[offsets[w]:offsets[w + 1]])) for w in range(len(counts))]
    assert all(not b.startswith(a) for a in words for b in words if a is not b)
    assert sum(2.0 ** -lengths) == pytest.approx(1.0)
    assert np.all(points[offsets[:-1]] == len(counts) - 2)  # every path starts at the root
    heap = sorted(counts.tolist())
    cost = 0
    while len(heap) > 1:
        a, b = heap.pop(0), heap.pop(0)
        cost += a + b
        heap.append(a + b)
        heap.sort()
    assert int((counts * lengths).sum()) == cost
    order = np.argsort(-counts, kind="stable")
    assert np.all(np.diff(lengths[order]) >= 0)


def test_gains_saturate_past_six():
    """word2vec.c's sigmoid table ends at |f| = 6: past it negative sampling's gain is 0 or
    alpha, and hierarchical softmax leaves the score out (gain 0), as word2vec.c does."""
    f = np.array([[7.0, 7.0], [-7.0, -7.0], [0.0, 0.0]])
    np.testing.assert_array_equal(twin.gains(f, [1, 0], 0.5), [[0.0, -0.5], [0.5, 0.0], [0.25, -0.25]])
    np.testing.assert_array_equal(twin.gains(f, [1, 0], 0.5, skip=True), [[0, 0], [0, 0], [0.25, -0.25]])


def test_vocabulary_counts_order_and_pruning():
    sentences = [["a", "b", "a", "c"], ["b", "a", "d"], ["e"]]
    m = Word2Vec(min_count=2).build_vocab(sentences)
    assert m.wv.index_to_key == ["a", "b"] and list(m.counts) == [3, 2]
    m = Word2Vec(min_count=1).build_vocab(sentences)
    assert m.wv.index_to_key == ["a", "b", "e", "d", "c"]  # gensim 4's: equal counts, last seen first
    # gensim's pruning, checked after each sentence: line 1 leaves 3 words > 2, and those
    # counted fewer than once go (none); line 2 leaves 4, fewer than twice go (c, d); line 3
    # leaves a (3), b (2), e (1), fewer than 3 times go (b, e). gensim 4.4 gives the same.
    m = Word2Vec(min_count=1, max_vocab_size=2).build_vocab(sentences)
    assert m.wv.index_to_key == ["a"] and list(m.counts) == [3]
    # gensim's own test_prune_vocab: the last line's words count up within it, and one more check
    # after the corpus's last newline would prune again
    sentences = [["graph", "system"], ["graph", "system"], ["system", "eps"], ["graph", "system"],
                 ["minors", "survey", "minors", "survey", "minors"]]
    m = Word2Vec(min_count=0, max_vocab_size=2).build_vocab(sentences)
    assert m.wv.index_to_key == ["system", "minors", "graph"] and list(m.counts) == [4, 3, 3]


def test_subsampling_follows_word2vec_c():
    counts = np.array([1000, 100, 10, 1])
    keep = keep_probabilities(counts, 1e-2)
    t = 1e-2 * counts.sum()
    np.testing.assert_allclose(keep, np.minimum(1, (np.sqrt(counts / t) + 1) * t / counts), rtol=1e-6)
    assert keep[0] < keep[1] < 1 and keep[3] == 1
    np.testing.assert_array_equal(keep_probabilities(counts, 0), 1)


def test_subsampling_draws_do_not_repeat_every_2_16():
    """word2vec.c draws subsampling from its LCG's low 16 bits, which repeat every 2^16 draws;
    seqkern's draws come from its top bits and do not (the twin's; test_kernel_matches_twin
    checks that the kernel draws the same, subsampled runs ending in the same random states).
    They are uniform on [0, 1) too."""
    stream = twin.Stream(1)
    u = np.array([stream.uniform24() for _ in range(2**16 + 4096)])
    assert np.count_nonzero(u[:4096] == u[2**16:]) < 16
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert abs(np.mean(u < 0.1) - 0.1) < 0.01


def test_noise_words_follow_the_unigram_power():
    counts = np.array([500, 100, 20, 4, 1])
    cum = noise_table(counts, 0.75)
    assert cum[-1] == 2**31 - 1 and np.all(np.diff(cum.astype(np.int64)) > 0)
    stream = twin.Stream(7)
    draws = np.bincount([twin.noise_word(stream, cum) for _ in range(20000)], minlength=5)
    want = counts**0.75 / (counts**0.75).sum()
    np.testing.assert_allclose(draws / draws.sum(), want, atol=0.01)


def topic_corpus(n=3000, seed=0):
    """Two topics: sentences draw their words from one topic only."""
    rng = np.random.default_rng(seed)
    return [[f"{'ab'[i % 2]}{rng.integers(10)}" for _ in range(8)] for i in range(n)]


@pytest.mark.parametrize("sg", [1, 0], ids=["sg", "cbow"])
def test_learns_planted_topics(sg):
    m = Word2Vec(topic_corpus(), vector_size=16, window=3, min_count=1, sg=sg, workers=2,
                 epochs=5, seed=3)
    within = np.mean([m.wv.similarity(f"a{i}", f"a{j}") for i in range(10) for j in range(i)])
    across = np.mean([m.wv.similarity(f"a{i}", f"b{j}") for i in range(10) for j in range(10)])
    assert within > across + 0.3, (within, across)
    assert m.wv.most_similar("a3", topn=3)[0][0].startswith("a")
    assert m.wv.doesnt_match(["a1", "a2", "a3", "b4"]) == "b4"


def test_one_worker_and_a_seed_give_the_same_bits():
    a = Word2Vec(topic_corpus(500), vector_size=8, min_count=1, workers=1, seed=5, epochs=2)
    b = Word2Vec(topic_corpus(500), vector_size=8, min_count=1, workers=1, seed=5, epochs=2)
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    c = Word2Vec(topic_corpus(500), vector_size=8, min_count=1, workers=1, seed=6, epochs=2)
    assert not np.array_equal(a.wv.vectors, c.wv.vectors)


def test_corpus_file_equals_the_same_sentences(tmp_path):
    sentences = topic_corpus(300)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(s) for s in sentences) + "\n\n")
    a = Word2Vec(corpus_file=str(path), vector_size=8, min_count=1, workers=1, seed=2, epochs=1)
    b = Word2Vec(sentences, vector_size=8, min_count=1, workers=1, seed=2, epochs=1)
    assert a.wv.index_to_key == b.wv.index_to_key
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)


def test_vocabulary_scan_and_encoding():
    """Words are runs between ASCII whitespace, a newline ends a sentence; unknown words are
    skipped, emptied sentences dropped, long ones cut."""
    v = _core.Vocabulary()
    v.count("b a\tb\r\n\n  ünï b \n".encode())
    assert v.words == ["b", "a", "ünï"] and list(v.counts) == [3, 1, 1] and v.total == 5
    known = _core.Vocabulary(["a", "b", "c"])
    ids, offsets, _ = known.encode(b"a b x\n\nx y\n c a\n", 10)
    assert list(ids) == [0, 1, 2, 0] and list(offsets) == [0, 2, 4]
    ids, offsets, _ = known.encode(b"a b c a b\nc", 2)
    assert list(ids) == [0, 1, 2, 0, 1, 2] and list(offsets) == [0, 2, 4, 5, 6]


@given(lines=st.lists(st.lists(st.sampled_from(["a", "bb", "ü", "x", "a\tb", "\r", " "]),
                              max_size=12), max_size=8),
       max_sentence=st.integers(1, 5))
def test_encoding_matches_splitting_in_python(lines, max_sentence):
    """Vocabulary.encode against str.split on ASCII whitespace, lookup and cutting in Python."""
    text = "\n".join("".join(words) if i % 2 else " ".join(words) for i, words in enumerate(lines))
    words = ["a", "bb", "ü"]
    index = {w: i for i, w in enumerate(words)}
    ids, offsets = [], [0]
    for line in text.split("\n"):
        known = [index[w] for w in line.split() if w in index]
        for k in range(0, len(known), max_sentence):
            ids.extend(known[k:k + max_sentence])
            offsets.append(len(ids))
    got_ids, got_offsets, read = _core.Vocabulary(words).encode(text.encode(), max_sentence)
    assert list(got_ids) == ids and list(got_offsets) == offsets
    assert read == len(text.encode().split())  # every word, known or not


def test_encoding_is_the_same_on_any_thread_count():
    import seqkern as sk
    rng = np.random.default_rng(4)
    words = [f"w{i}" for i in range(50)]
    text = "\n".join(" ".join(rng.choice(words + ["oov"], rng.integers(0, 30)))
                     for _ in range(500)).encode()
    vocab = _core.Vocabulary(words)
    threads = sk.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            sk.set_num_threads(n)
            results.append(vocab.encode(text, 7))
    finally:
        sk.set_num_threads(threads)
    for ids, offsets, words in results[1:]:
        np.testing.assert_array_equal(ids, results[0][0])
        np.testing.assert_array_equal(offsets, results[0][1])
        assert words == results[0][2]


def test_file_chunks_end_at_a_line_or_inside_a_long_line(tmp_path, monkeypatch):
    from seqkern.models import word2vec
    monkeypatch.setattr(word2vec, "CHUNK_BYTES", 64)
    text = b"short line\n" + b" ".join(b"w%d" % i for i in range(100)) + b"\nend\n"
    path = tmp_path / "c.txt"
    path.write_bytes(text)
    chunks = list(word2vec.text_chunks(corpus_file=str(path)))
    assert b"".join(chunks) == text and len(chunks) > 5
    assert all(c.endswith((b"\n", b" ")) for c in chunks)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_word2vec_format_round_trip(tmp_path, binary):
    wv = kv(["the", "ünïcode", "x"], np.random.default_rng(0).standard_normal((3, 5)))
    path = tmp_path / "v.bin"
    wv.save_word2vec_format(path, binary=binary)
    back = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert back.index_to_key == wv.index_to_key
    np.testing.assert_allclose(back.vectors, wv.vectors, rtol=1e-6 if not binary else 0)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_keys_a_word2vec_file_cannot_hold_are_refused_before_writing(tmp_path, binary):
    """A key with a space or a newline in it would not read back (gensim writes "new york" and
    reads "new", then the vector's bytes as the next key): ValueError, and neither the vectors'
    file nor fvocab is touched. A tab, non-ASCII bytes or an empty key read back whole."""
    for bad in ("new york", "line\nbreak"):
        wv = kv(["a", bad, "b"], np.ones((3, 4)))
        for i, key in enumerate(wv.index_to_key):
            wv.set_vecattr(key, "count", 10 - i)
        for name in ("v.bin", "v.bin.gz"):
            path, vocab = tmp_path / name, tmp_path / "vocab.txt"
            path.write_bytes(b"old")
            with pytest.raises(ValueError, match=re.escape(f"keys: {bad!r} cannot be read back")):
                wv.save_word2vec_format(path, fvocab=vocab, binary=binary)
            assert path.read_bytes() == b"old" and not vocab.exists()
    good = kv(["tab\tkey", "ünïcode", "", "x"], np.random.default_rng(0).standard_normal((4, 3)))
    good.save_word2vec_format(tmp_path / "g", binary=binary)
    back = KeyedVectors.load_word2vec_format(tmp_path / "g", binary=binary)
    assert back.index_to_key == good.index_to_key
    np.testing.assert_allclose(back.vectors, good.vectors, rtol=1e-6)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_reads_and_writes_gensim_files(tmp_path, binary):
    gensim = pytest.importorskip("gensim")
    keys = ["alpha", "beta", "gamma"]
    vecs = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    theirs = gensim.models.KeyedVectors(4)
    theirs.add_vectors(keys, vecs)
    theirs.save_word2vec_format(str(tmp_path / "g"), binary=binary)
    ours = KeyedVectors.load_word2vec_format(tmp_path / "g", binary=binary)
    assert ours.index_to_key == keys
    np.testing.assert_allclose(ours.vectors, vecs, rtol=1e-6)
    ours.save_word2vec_format(tmp_path / "s", binary=binary)
    back = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "s"), binary=binary)
    np.testing.assert_allclose(back[keys], vecs, rtol=1e-6)


def test_save_load_continues_training(tmp_path):
    m = Word2Vec(topic_corpus(300), vector_size=8, min_count=1, workers=1, seed=4, epochs=1)
    m.save(tmp_path / "word2vec.model")
    assert os.listdir(tmp_path) == ["word2vec.model"]  # exactly where asked
    back = Word2Vec.load(tmp_path / "word2vec.model")
    assert back.wv.index_to_key == m.wv.index_to_key and back.sg == m.sg
    np.testing.assert_array_equal(back.wv.vectors, m.wv.vectors)
    m.train(topic_corpus(300), total_examples=300, epochs=1)
    back.train(topic_corpus(300), total_examples=300, epochs=1)
    np.testing.assert_array_equal(back.wv.vectors, m.wv.vectors)


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        Word2Vec([[], []], min_count=1)
    with pytest.raises(ValueError, match="min_count = 5"):
        Word2Vec([["a", "b"]], min_count=5)
    with pytest.raises(TypeError, match="re-iterable"):
        Word2Vec(iter([["a"]]), min_count=1)
    with pytest.raises(TypeError, match=re.escape(  # gensim 4's message (it was gensim 3's)
            "Using a generator as corpus_iterable can't support 6 passes. Try a re-iterable")):
        Word2Vec((s for s in [["a"]]), min_count=1)
    with pytest.raises(TypeError, match="lists of words"):
        Word2Vec(["a sentence as a string"], min_count=1)
    with pytest.raises(TypeError, match="words must be strings"):
        Word2Vec([[1, 2, 3], [4]], min_count=1)
    with pytest.raises(TypeError, match="sentences: expected lists of words, got "):
        Word2Vec(np.arange(3), min_count=1)  # an IndexError from the message's own sentence[:3]
    with pytest.raises(ValueError, match="vector_size"):
        Word2Vec(vector_size=0)
    bad = tmp_path / "bad.txt"
    bad.write_text("not a header\n")
    with pytest.raises(ValueError, match="header"):
        KeyedVectors.load_word2vec_format(bad)
    bad.write_text("2 3\nw 1 2 3\nv 1 2\n")
    with pytest.raises(ValueError, match="line 3"):
        KeyedVectors.load_word2vec_format(bad)
    bad.write_text("2 3\nw 1 2 3\nv 1 x 3\n")
    with pytest.raises(ValueError, match="line 3: a value is not a number"):
        KeyedVectors.load_word2vec_format(bad)
    bad.write_bytes(b"2 3\nw " + np.ones(3, "<f4").tobytes() + b"v " + np.ones(2, "<f4").tobytes())
    with pytest.raises(ValueError, match="ends inside entry 1 of 2"):
        KeyedVectors.load_word2vec_format(bad, binary=True)
    assert KeyedVectors.load_word2vec_format(bad, binary=True, limit=1).index_to_key == ["w"]
    for header in (b"3000000000 300", b"3 3000000000"):  # found before allocating terabytes
        for binary in (True, False):
            bad.write_bytes(header + b"\nw 1 2 3\n")
            with pytest.raises(ValueError, match="more than its 8 bytes after it can hold"):
                KeyedVectors.load_word2vec_format(bad, binary=binary)
    bad.write_text("2 3\nw 1.50 2.50 3.50\nv 1.00 2.00 3.00\n")
    with pytest.raises(ValueError, match="a text file read with binary=True"):
        KeyedVectors.load_word2vec_format(bad, binary=True)
    kv(["w", "v"], np.random.default_rng(0).standard_normal((2, 100))).save_word2vec_format(
        str(bad), binary=True)  # read as text, it said "ends inside entry 0 of 2"
    with pytest.raises(ValueError, match="bytes that are no text: a binary file read with "
                                         "binary=False"):
        KeyedVectors.load_word2vec_format(bad)
    for header in (b"-1 3", b"1 0", b"1 -3"):
        bad.write_bytes(header + b"\nw 1 2 3\n")
        with pytest.raises(ValueError, match="expected a vector count >= 0 and a vector size >= 1"):
            KeyedVectors.load_word2vec_format(bad)
    wv = kv(["a"], np.ones((1, 2)))
    with pytest.raises(KeyError, match="not present"):
        wv["zzz"]
    with pytest.raises(ValueError, match="hs=0 and negative=0"):
        Word2Vec(hs=0, negative=0)



def test_bad_settings_are_clear_errors_not_crashes():
    """Settings that once crashed the process: a NaN or infinite ns_exponent made a noise table
    of zeros, and the first draw divided by its total (SIGFPE); a window of 2**40 sized its
    buffers by the window (std::bad_alloc on a worker thread: abort); a huge workers built a
    seed per worker until the kernel killed the process; a string seed was repeated 2**63 times."""
    corpus = topic_corpus(40)
    for e in (np.inf, -np.inf, np.nan, "0.75"):
        with pytest.raises(ValueError, match="ns_exponent: expected a finite number"):
            Word2Vec(corpus, min_count=1, ns_exponent=e)
    for name in ("alpha", "min_alpha", "sample"):  # gensim trains a model of NaNs
        for e in (np.inf, np.nan, -0.5):
            with pytest.raises(ValueError, match=f"{name}: expected a finite number >= 0"):
                Word2Vec(corpus, min_count=1, **{name: e})
    for name in ("start_alpha", "end_alpha"):
        with pytest.raises(ValueError, match=f"{name}: expected a finite number >= 0"):
            Word2Vec(corpus, min_count=1).train(corpus, total_examples=len(corpus), epochs=1,
                                                **{name: np.nan})
    with pytest.raises(ValueError, match="workers: at most 4096"):
        Word2Vec(workers=2**40)
    with pytest.raises(ValueError, match=r"window: at most 2\*\*31 - 1"):
        Word2Vec(window=2**40)
    with pytest.raises(TypeError, match="seed: expected an integer"):
        Word2Vec(seed="x")
    with pytest.raises(ValueError, match="seed: expected an integer >= 0, got -1"):
        Word2Vec(corpus, min_count=1, seed=-1)  # numpy's refusal, naming no argument
    for name in ("sg", "hs", "cbow_mean"):
        with pytest.raises(ValueError, match=f"{name}: expected 0 or 1"):
            Word2Vec(**{name: 2})
    m = Word2Vec(corpus, vector_size=8, min_count=1, window=2**31 - 1, epochs=1, workers=2)
    assert np.isfinite(m.wv.vectors).all()
    m.cum_table[:] = 0  # a public attribute, as in gensim: checked before the kernel divides by it
    with pytest.raises(ValueError, match="cum_table: expected one nondecreasing entry per word"):
        m.train(corpus, total_examples=len(corpus), epochs=1)
    m = Word2Vec(corpus, vector_size=8, min_count=1, hs=1, negative=0, epochs=1)
    m.syn1 = m.syn1[:2]  # public too: the tree's inner nodes would index past its rows
    with pytest.raises(ValueError, match="syn1: expected a row per inner node"):
        m.train(corpus, total_examples=len(corpus), epochs=1)


@pytest.mark.parametrize("e", [-300.0, -1.0, 0.0, 0.75, 300.0])
def test_noise_table_of_any_finite_exponent(e):
    """counts ** e overflows to inf / inf = NaN past e ~ 100 in float64; the table is computed
    relative to the largest count instead. It rises to 2**31 - 1, and each word's share is its
    count ** e over the sum (exact in log space); words never seen are never drawn."""
    counts = np.array([5000, 300, 300, 20, 1, 0])
    cum = noise_table(counts, e).astype(np.int64)
    assert cum[-1] == 2**31 - 1 and (np.diff(cum) >= 0).all()
    logw = e * np.log(np.maximum(counts, 1e-300))
    logw[counts == 0] = -np.inf if e != 0 else 0.0
    p = np.exp(logw - logw.max())
    p /= p.sum()
    np.testing.assert_allclose(np.diff(cum, prepend=0) / (2**31 - 1), p, atol=1e-9)


SIMD_COPY_CHECK = """
import numpy as np, seqkern as sk
from seqkern import _core
from seqkern.models.word2vec import keep_probabilities, noise_table
from seqkern.reference import word2vec as twin
import sys
assert sk._core.simd_level() == sys.argv[1]
rng = np.random.default_rng(0)
ids = rng.integers(0, 9, 120).astype(np.int32)
offsets = np.array([0, 40, 41, 120], np.int64)
counts = np.bincount(ids, minlength=9) + 1
syn0 = ((rng.random((9, 29)) - 0.5) / 29).astype(np.float32)
syn1 = (rng.standard_normal((9, 29)) * 0.1).astype(np.float32)
keep, cum = keep_probabilities(counts, 0.01), noise_table(counts, 0.75)
for sg in (True, False):
    a0, a1, b0, b1 = syn0.copy(), syn1.copy(), syn0.copy(), syn1.copy()
    sa, sb = np.array([5], np.uint64), np.array([5], np.uint64)
    tree = _core.huffman_tree(counts.astype(np.int64))
    h = (rng.standard_normal((9, 29)) * 0.1).astype(np.float32)
    ah, bh = h.copy(), h.copy()
    na = _core.w2v_train(2, 3, sg, True, True, ids, offsets, keep, cum, 0.05, 0.01, sa, a0, a1, tree, ah, True, None)
    nb = twin.w2v_train(2, 3, sg, True, True, ids, offsets, keep, cum, 0.05, 0.01, sb, b0, b1, tree, bh, True)
    assert na[0] == nb[0] and sa[0] == sb[0] and abs(na[1] - nb[1]) < 1e-4 * nb[1]
    assert np.abs(a0 - b0).max() < 2e-6 and np.abs(a1 - b1).max() < 2e-6 and np.abs(ah - bh).max() < 2e-6
    lockf = np.array([0.0, 1.0, 0.5], np.float32)
    a0, b0, sa, sb = syn0.copy(), syn0.copy(), np.array([5], np.uint64), np.array([5], np.uint64)
    _core.w2v_train(2, 3, sg, True, True, ids, offsets, keep, cum, 0.05, 0.01, sa, a0, syn1.copy(), None, None, False, None, lockf)
    twin.w2v_train(2, 3, sg, True, True, ids, offsets, keep, cum, 0.05, 0.01, sb, b0, syn1.copy(), None, None, False, None, lockf)
    assert np.abs(a0 - b0).max() < 2e-6
    g0, g1 = (rng.integers(-8, 9, (9, 29)) / 8).astype(np.float32), (rng.integers(-8, 9, (8, 29)) / 8).astype(np.float32)
    sa = _core.w2v_score(3, sg, False, ids, offsets, g0, tree, g1)
    sb = twin.w2v_score(3, sg, False, ids, offsets, g0, tree, g1)
    assert np.allclose(sa, sb, rtol=1e-6, atol=0) and sa.min() < -10
print("ok")
"""


@pytest.mark.parametrize("level", LEVELS)
def test_each_simd_copy_matches_twin(level, tmp_path):
    """Each SIMD level's copy of the loop that the machine has, forced with SEQKERN_SIMD."""
    assert run_at_level(level, SIMD_COPY_CHECK, tmp_path, level).strip().splitlines()[-1] == "ok"


def test_spearman_and_pearson():
    from seqkern.models.evaluation import pearson, spearman
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]).statistic == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]).statistic == pytest.approx(-1.0)
    # ties get their mean rank: ranks (1.5, 1.5, 3) against (1, 2, 3)
    assert spearman([5, 5, 9], [1, 2, 3]).statistic == pytest.approx(pearson([1.5, 1.5, 3], [1, 2, 3]).statistic)
    assert pearson([1, 2, 3], [2, 4, 7])[0] == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1])


@pytest.mark.parametrize("n", [3, 5, 12, 60, 400])
def test_p_values_match_scipy(n):
    stats = pytest.importorskip("scipy.stats")
    from seqkern.models.evaluation import pearson, spearman
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n)
    for b in (a + rng.standard_normal(n) * 3, rng.standard_normal(n), np.round(a * 2 + rng.standard_normal(n))):
        for ours, theirs in ((pearson(a, b), stats.pearsonr(a, b)), (spearman(a, b), stats.spearmanr(a, b))):
            assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9, abs=1e-12)
            assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-6, abs=1e-14)


def planted_vectors():
    """king - man + woman = queen exactly; paris - france + italy = rome."""
    keys = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy", "Car"]
    v = {"man": [1, 0, 0, 0], "woman": [1, 1, 0, 0], "king": [1, 0, 1, 0], "queen": [1, 1, 1, 0],
         "france": [0, 0, 0, 1], "paris": [0, 0, 1, 1], "italy": [0, 1, 0, 1], "rome": [0, 1, 1, 1],
         "Car": [-1, -1, -1, -1]}
    return kv(keys, np.array([v[k] for k in keys], np.float32))


def test_word_pairs_and_analogies_on_planted_vectors(tmp_path):
    wv = planted_vectors()
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# comment\nking\tqueen\t9\nman\tcar\t1\nparis\trome\t8\nking\tzzz\t5\n")
    (p, _), (s, _), oov = wv.evaluate_word_pairs(pairs)
    ours = [wv.similarity("king", "queen"), wv.similarity("man", "Car"), wv.similarity("paris", "rome")]
    # king-queen and paris-rome tie at cosine 2/sqrt(6): ranks (2.5, 1, 2.5) against (3, 1, 2)
    assert s == pytest.approx(np.sqrt(3) / 2) and oov == pytest.approx(25.0)
    assert p == pytest.approx(np.corrcoef(ours, [9, 1, 8])[0, 1])
    questions = tmp_path / "q.txt"
    questions.write_text(": family\nman woman king queen\nman king woman queen\n"
                         ": capitals\nfrance paris italy rome\nfrance paris italy car\n"
                         "france paris xx yy\n")
    acc, sections = wv.evaluate_word_analogies(questions)
    assert [(s["section"], len(s["correct"]), len(s["incorrect"])) for s in sections] == [
        ("family", 2, 0), ("capitals", 1, 1), ("Total accuracy", 3, 1)]
    assert sections[1]["incorrect"] == [("FRANCE", "PARIS", "ITALY", "CAR")]
    assert acc == pytest.approx(3 / 4)
    acc, _ = wv.evaluate_word_analogies(questions, restrict_vocab=4)  # only the family words
    assert acc == 1.0


def test_evaluation_matches_gensim():
    gensim = pytest.importorskip("gensim")
    data = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    rng = np.random.default_rng(0)
    words = [line.split("\t")[0].lower() for line in open(os.path.join(data, "wordsim353.tsv"))
             if not line.startswith("#")][:150]
    words += [w.lower() for line in open(os.path.join(data, "questions-words.txt"))
              if not line.startswith(":") for w in line.split()][:400]
    keys = list(dict.fromkeys(words))
    wv = kv(keys, rng.standard_normal((len(keys), 12)))
    theirs = gensim.models.KeyedVectors(12)
    theirs.add_vectors(keys, wv.vectors)
    p, s, oov = wv.evaluate_word_pairs(os.path.join(data, "wordsim353.tsv"))
    tp, ts, toov = theirs.evaluate_word_pairs(os.path.join(data, "wordsim353.tsv"))
    assert (*p, *s, oov) == pytest.approx((*tp, *ts, toov), rel=1e-6, abs=1e-9)
    assert s.correlation == ts.correlation
    questions = os.path.join(data, "questions-words.txt")
    for kw in ({}, {"dummy4unknown": True}, {"restrict_vocab": 300, "case_insensitive": False}):
        acc, sections = wv.evaluate_word_analogies(questions, **kw)
        tacc, tsections = theirs.evaluate_word_analogies(questions, **kw)
        assert acc == pytest.approx(tacc) and sections == tsections, kw
    # gensim 4.4 accepts similarity_function and answers with 3CosAdd whatever it says; seqkern
    # answers with most_similar_cosmul's scores, as the name asks
    acc, sections = wv.evaluate_word_analogies(questions, similarity_function="most_similar_cosmul")
    right = 0
    for s in sections[:-1]:
        for a, b, c, d in s["correct"] + s["incorrect"]:
            best = [k.upper() for k, _ in wv.most_similar_cosmul([b.lower(), c.lower()], [a.lower()], topn=5)]
            right += best[0] == d
            assert (a, b, c, d) in s["correct" if best[0] == d else "incorrect"]
    assert right > 0 and acc == pytest.approx(right / sum(len(s["correct"] + s["incorrect"]) for s in sections[:-1]))


@pytest.mark.parametrize("sentences, read", [
    ([["new york", "is", "big"], ["a", "b"]], 6),        # a phrase as one word: read as two
    ([["", "is", "big"], ["a", "b"]], 4),                # an empty word (str.split(" ") on "  ")
    ([("tab\there", "x"), ["line\nbreak"]], 5),
])
def test_a_word_holding_whitespace_is_split_with_a_warning(sentences, read, caplog):
    """Words are split at ASCII whitespace, as word2vec.c reads text: gensim keeps "new york" one
    word, seqkern reads two. It did so silently; now it says so (sentences that are lists or
    tuples: their words are counted as they pass)."""
    given = sum(map(len, sentences))
    with caplog.at_level("WARNING", logger="seqkern.models.word2vec"):
        m = Word2Vec(sentences, vector_size=4, min_count=1, workers=1)
    assert m.corpus_total_words == read
    assert f"the sentences hold {given} words, read as {read}" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="seqkern.models.word2vec"):
        Word2Vec([["new_york", "is", "big"], ("a", "b")], vector_size=4, min_count=1, workers=1)
        Word2Vec([iter(["a", "b c"])], vector_size=4, min_count=1, workers=1)  # not counted
    assert "the sentences hold" not in caplog.text


def test_words_that_are_not_utf8_stay_apart_and_train(tmp_path, caplog):
    """A word is a run of bytes (word2vec.c's rule). In a Latin-1 corpus "caf\\xe9" and
    "caf\\xe8" were both read as "caf\\ufffd": one key with the last one's count, which
    training then looked up as the bytes of U+FFFD, found nowhere in the text, and never
    trained. Now each keeps its own key (stray bytes as surrogate escapes), counted and trained,
    and the files written from them hold the corpus's bytes."""
    rng = np.random.default_rng(0)
    words = ["café", "cafè", "naïve", "über", "plain", "word", "thing"]
    lines = [" ".join(rng.choice(words, 12)) for _ in range(300)]
    corpus = tmp_path / "latin.txt"
    corpus.write_bytes("\n".join(lines).encode("latin-1"))
    settings = dict(vector_size=8, min_count=1, sample=0, workers=1, seed=3)
    with caplog.at_level("WARNING", logger="seqkern.models.word2vec"):
        m = Word2Vec(corpus_file=str(corpus), epochs=1, **settings)
    assert "4 of the 7 words are not UTF-8" in caplog.text
    as_bytes = {k.encode(errors="surrogateescape"): k for k in m.wv.index_to_key}
    assert sorted(as_bytes) == sorted(w.encode("latin-1") for w in words)
    text = corpus.read_bytes().split()
    for b, k in as_bytes.items():
        assert m.wv.get_vecattr(k, "count") == text.count(b)
    untrained = Word2Vec(**settings)
    untrained.build_vocab(corpus_file=str(corpus))
    assert untrained.wv.index_to_key == m.wv.index_to_key
    assert (np.abs(m.wv.vectors - untrained.wv.vectors).max(axis=1) > 0).all()  # every word
    for binary in (False, True):
        path = tmp_path / f"v.{'bin' if binary else 'txt'}"
        m.wv.save_word2vec_format(str(path), binary=binary)
        back = KeyedVectors.load_word2vec_format(str(path), binary=binary, encoding="latin-1")
        assert sorted(back.index_to_key) == sorted(words)
        np.testing.assert_allclose(back["cafè"], m.wv[as_bytes["caf\xe8".encode("latin-1")]],
                                   rtol=1e-6)
    m.save(str(tmp_path / "w2v.model"))
    assert Word2Vec.load(str(tmp_path / "w2v.model")).wv.index_to_key == m.wv.index_to_key
    m.build_vocab([m.wv.index_to_key * 3], update=True)  # the keys as sentences: online training
    m.train([m.wv.index_to_key * 3], total_examples=1, epochs=1)


def test_command_line_trains_and_writes_vectors(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in topic_corpus(400)) + "\n")
    out = tmp_path / "v.bin"
    run = subprocess.run([sys.executable, "-m", "seqkern", "word2vec", "--train", str(corpus),
                          "--output", str(out), "--size", "8", "--iter", "1", "--min-count", "1",
                          "--binary", "--threads", "1"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "words/s" in run.stderr and "wrote" in run.stderr
    wv = KeyedVectors.load_word2vec_format(out, binary=True)
    assert len(wv) == 20 and wv.vector_size == 8
    utf16 = tmp_path / "utf16.txt"  # its bytes would train on noise: refused at once
    utf16.write_text(corpus.read_text(), encoding="utf-16")
    run = subprocess.run([sys.executable, "-m", "seqkern", "word2vec", "--train", str(utf16),
                          "--output", str(tmp_path / "u.bin")], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 2 and "UTF-16 byte-order mark" in run.stderr
    assert not (tmp_path / "u.bin").exists()


def test_command_line_takes_word2vec_c_options(tmp_path):
    """word2vec.c's demo-word.sh line, with ./word2vec replaced: its single-dash options and
    0/1 switches (before, "-hs" read as "-h s" and failed on help), its -save-vocab and
    -read-vocab files ("word count" lines; word2vec.c's "</s>" is left out), and -classes, which
    seqkern does not provide, refused before any work."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in topic_corpus(400)) + "\n")

    def w2v(*args):
        return subprocess.run([sys.executable, "-m", "seqkern", "word2vec", "-train", str(corpus),
                               *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)

    run = w2v("-output", "v.bin", "-cbow", "1", "-size", "8", "-window", "8", "-negative", "25",
              "-hs", "0", "-sample", "1e-4", "-threads", "1", "-binary", "1", "-iter", "1",
              "-min-count", "1", "-save-vocab", "vocab.txt")
    assert run.returncode == 0, run.stderr
    wv = KeyedVectors.load_word2vec_format(tmp_path / "v.bin", binary=True,
                                           fvocab=tmp_path / "vocab.txt")
    assert len(wv) == 20 and wv.vector_size == 8
    counts = Counter(corpus.read_text().split())
    assert {k: wv.get_vecattr(k, "count") for k in wv.index_to_key} == counts
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("</s> 400\n" + vocab.read_text())  # as word2vec.c writes it
    run = w2v("-output", "v.txt", "-read-vocab", str(vocab), "-hs", "1", "-negative", "0",
              "-size", "8", "-iter", "1", "-debug", "0", "-min-count", "0")  # 0: as 1 (was refused)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert sorted(KeyedVectors.load_word2vec_format(tmp_path / "v.txt").index_to_key) == \
        sorted(counts)
    run = w2v("--output", "v2.bin", "--cbow", "--binary", "--size", "8", "--iter", "1")
    assert run.returncode == 0, run.stderr
    assert KeyedVectors.load_word2vec_format(tmp_path / "v2.bin", binary=True).vector_size == 8
    for bad, message in ((["-classes", "500"], "k-means word classes are not provided"),
                         (["-cbow", "2"], "expected 0 or 1"),
                         (["-read-vocab", str(corpus)], 'c.txt:1: expected "word count"')):
        run = w2v("-output", "bad.bin", *bad)
        assert run.returncode != 0 and message in run.stderr, run.stderr
    assert not (tmp_path / "bad.bin").exists()


@pytest.mark.parametrize("compress", ["gzip", "bz2", "lzma"])
def test_a_compressed_corpus_file_is_refused_not_trained_as_bytes(compress, tmp_path):
    """corpus_file= (and `seqkern word2vec -train`) read a file's bytes as text: a compressed
    file trained a vocabulary of compressed bytes, with only the warning about words that are
    not UTF-8. Now it is refused, naming LineSentence, which reads it compressed (as gensim's,
    through smart_open); a text that merely starts like bzip2's header ("BZh") is text."""
    import importlib
    text = "\n".join(" ".join(s) for s in topic_corpus(200)) + "\n"
    path = tmp_path / f"c.txt.{ {'gzip': 'gz', 'bz2': 'bz2', 'lzma': 'xz'}[compress] }"
    path.write_bytes(importlib.import_module(compress).compress(text.encode()))
    with pytest.raises(ValueError, match="compressed .*: decompress it first, or pass "
                                         "LineSentence"):
        Word2Vec(corpus_file=str(path), vector_size=4, min_count=1)
    m = Word2Vec(LineSentence(str(path)), vector_size=4, min_count=1, workers=1)
    assert sorted(m.wv.index_to_key) == sorted(set(text.split()))
    run = subprocess.run([sys.executable, "-m", "seqkern", "word2vec", "-train", str(path),
                          "-output", str(tmp_path / "v.txt")], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 2 and "decompress it first" in run.stderr, run.stderr
    assert not (tmp_path / "v.txt").exists()
    bzh = tmp_path / "bzh.txt"
    bzh.write_text("BZh9 is not a header\n" * 20)
    assert "BZh9" in Word2Vec(corpus_file=str(bzh), vector_size=4, min_count=1).wv
    utf16 = tmp_path / "u.txt"
    utf16.write_text(text, encoding="utf-16")
    with pytest.raises(ValueError, match="UTF-16 byte-order mark"):
        Word2Vec(corpus_file=str(utf16), vector_size=4, min_count=1)


def test_command_line_ctrl_c_leaves_no_output(tmp_path):
    import signal
    import time
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in topic_corpus(20000)) + "\n")
    out = tmp_path / "v.txt"
    proc = subprocess.Popen([sys.executable, "-m", "seqkern", "word2vec", "--train", str(corpus),
                             "--output", str(out), "--iter", "1000", "--min-count", "1"],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            # SIGINT's default, even under a `pytest &` that ignores it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline:  # wait for training to start (its first progress line)
        line = proc.stderr.readline()
        if "words/s" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_ctrl_c_inside_a_finalizer_still_stops_training(monkeypatch, interrupt_in_finalizer):
    """An interrupt dropped inside a finalizer (one run by a callback, here) stops train() before
    its next chunk of text, as Ctrl-C anywhere else does."""
    import signal

    import seqkern.models.word2vec as w2v

    batches = []
    monkeypatch.setattr(w2v, "CHUNK_BYTES", 4096)  # many chunks an epoch

    class DropsAnInterrupt:
        def on_batch_end(self, model):
            batches.append(1)
            interrupt_in_finalizer.drop()

    model = Word2Vec(vector_size=8, min_count=1, workers=1, seed=1)
    corpus = topic_corpus(2000)
    model.build_vocab(corpus)
    with pytest.raises(KeyboardInterrupt):
        model.train(corpus, total_examples=model.corpus_count, epochs=3,
                    callbacks=[DropsAnInterrupt()])
    assert interrupt_in_finalizer.dropped == [KeyboardInterrupt] and batches == [1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_cooccurrence_and_ppmi_match_the_dense_definitions():
    """The book's example sentence, against dense loops written from the definitions."""
    from seqkern.models.count_vectors import cooccurrence, ppmi
    ids = [0, 1, 2, 3, 4, 1, 5, 6]  # you say goodbye and i say hello .
    V, window = 7, 2
    dense = np.zeros((V, V))
    for i, w in enumerate(ids):
        for j in range(max(0, i - window), min(len(ids), i + window + 1)):
            if j != i:
                dense[w, ids[j]] += 1
    rows, cols, counts = cooccurrence([ids], V, window)
    got = np.zeros((V, V))
    got[rows, cols] = counts
    np.testing.assert_array_equal(got, dense)
    N, S = dense.sum(), dense.sum(axis=0)
    want = np.zeros_like(dense)
    for i in range(V):
        for j in range(V):
            if dense[i, j]:
                want[i, j] = max(0, np.log2(dense[i, j] * N / (S[j] * S[i]) + 1e-8))
    got = np.zeros((V, V))
    got[rows, cols] = ppmi(rows, cols, counts, V)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_truncated_svd_finds_the_leading_singular_values():
    from seqkern.models.count_vectors import truncated_svd
    rng = np.random.default_rng(0)
    A = rng.random((40, 40)) * (rng.random((40, 40)) < 0.2)
    A = A + A.T
    rows, cols = np.nonzero(A)
    U, S = truncated_svd(rows, cols, A[rows, cols], 40, 5, seed=1)
    want = np.linalg.svd(A, compute_uv=False)[:5]
    np.testing.assert_allclose(S, want, rtol=1e-5)  # randomized: close, not exact
    np.testing.assert_allclose(U.T @ U, np.eye(5), atol=1e-10)


def test_ppmi_vectors_learn_planted_topics():
    from seqkern.models import PPMIVectors
    m = PPMIVectors(topic_corpus(1000), window=2, vector_size=8)
    within = np.mean([m.wv.similarity(f"a{i}", f"a{j}") for i in range(10) for j in range(i)])
    across = np.mean([m.wv.similarity(f"a{i}", f"b{j}") for i in range(10) for j in range(10)])
    assert within > across + 0.3, (within, across)
    with pytest.raises(ValueError, match="empty"):
        PPMIVectors([[]])
    # sentences as strings made character vectors; window 0 vectors of an all-zero matrix
    for sentences in ("a b a", ["a b a", "b a"], (s for s in ["a b a"])):
        with pytest.raises(TypeError, match="sentences: expected lists of words, got a string"):
            PPMIVectors(sentences)
    for name in ("window", "min_count", "vector_size"):
        for bad in (0, 1.5):
            with pytest.raises(ValueError, match=f"{name}: expected a positive integer"):
                PPMIVectors([["a", "b"]], **{name: bad})
    assert PPMIVectors(iter([["a", "b"], ["b", "a"]]), vector_size=1).wv.vectors.shape == (2, 1)
    # a window past the longest sentence counts what the whole sentence holds (2**62 looped
    # over every distance: found by tests/fuzz_api.py)
    wide, whole = (PPMIVectors([["a", "b", "c"], ["b", "c"]], window=w, vector_size=2)
                   for w in (2**62, 2))
    np.testing.assert_array_equal(wide.ppmi, whole.ppmi)


@given(binary=st.booleans(), cut=st.floats(0, 1), flips=st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4), header=st.sampled_from(
    [None, b"0 4", b"-1 4", b"5 0", b"99999999999 4", b"5 3000000000", b"abc", b"", b"5"]),
       limit=st.sampled_from([None, 1, 3, 100]))
@settings(max_examples=150, deadline=None)
def test_damaged_word2vec_files_raise_clear_errors(tmp_path_factory, binary, cut, flips, header, limit):
    """A word2vec file cut anywhere, with bytes changed, or with another header: the C++ parser
    either reads it or raises ValueError (UnicodeDecodeError for a key that is no longer UTF-8),
    never crashes, and never allocates what the header alone claims."""
    wv = KeyedVectors(4)
    wv.add_vectors(["a", "bb", "ccc", "\u65e5\u672c", "e"], np.arange(20, dtype=np.float32).reshape(5, 4) / 7)
    path = str(tmp_path_factory.mktemp("w2v") / "v")
    wv.save_word2vec_format(path, binary=binary)
    data = bytearray(open(path, "rb").read())
    if header is not None:
        data = bytearray(header) + data[data.index(b"\n"):]
    data = data[:max(1, int(len(data) * cut))] if cut < 1 else data
    for where, value in flips:
        data[min(len(data) - 1, int(len(data) * where))] = value
    open(path, "wb").write(bytes(data))
    try:
        KeyedVectors.load_word2vec_format(path, binary=binary, limit=limit)
    except ValueError:  # UnicodeDecodeError is one
        pass
