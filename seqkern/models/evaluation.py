"""Intrinsic evaluation of word vectors: word-pair similarity (wordsim353 / SimLex-999 files)
and analogies (Google's questions-words.txt), scored as gensim scores them."""
from __future__ import annotations

import numpy as np


def spearman(a, b):
    """Spearman's rank correlation: Pearson's on the ranks, ties given their mean rank."""
    return pearson(_ranks(a), _ranks(b))


def pearson(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def _ranks(x):
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):  # ties: their mean rank
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def _lookup(wv, case_insensitive):
    """word -> index; with case_insensitive, lowercased words, the most frequent form winning."""
    if not case_insensitive:
        return wv.key_to_index
    table = {}
    for i, key in enumerate(wv.index_to_key):
        table.setdefault(key.lower(), i)
    return table


def evaluate_word_pairs(wv, path, delimiter="\t", case_insensitive=True):
    """Correlation of the model's cosine similarities with human scores for the pairs of a
    file: lines "word1<TAB>word2<TAB>score", "#" comments. Pairs with an unknown word are left
    out. Returns (pearson, spearman, oov_percent)."""
    index = _lookup(wv, case_insensitive)
    normed = wv.normed_vectors()
    ours, theirs, total = [], [], 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split(delimiter)
            if len(parts) < 3:
                raise ValueError(f"{path}: line {n}: expected word1, word2 and a score")
            a, b = (p.lower() if case_insensitive else p for p in parts[:2])
            total += 1
            if a not in index or b not in index:
                continue
            ours.append(float(normed[index[a]] @ normed[index[b]]))
            theirs.append(float(parts[2]))
    if len(ours) < 2:
        raise ValueError(f"{path}: fewer than two pairs with both words in the vocabulary")
    return pearson(ours, theirs), spearman(ours, theirs), 100.0 * (total - len(ours)) / total


def evaluate_word_analogies(wv, path, restrict_vocab=300_000, case_insensitive=True):
    """Accuracy on analogy questions "a b c d" (a is to b as c is to d) in sections started by
    ": name" lines: the answer is the word nearest to b - a + c among the first restrict_vocab
    words (a, b, c excluded); questions with a word outside them are skipped. Returns
    (accuracy, sections), sections a list of {"section", "correct", "incorrect"}."""
    limit = min(int(restrict_vocab), len(wv))
    index = {k: i for k, i in _lookup(wv, case_insensitive).items() if i < limit}
    normed = wv.normed_vectors()[:limit]
    sections, current = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith(":"):
                current = {"section": line[1:].strip(), "correct": 0, "incorrect": 0}
                sections.append(current)
                continue
            words = line.split()
            if not words:
                continue
            if current is None or len(words) != 4:
                raise ValueError(f"{path}: line {n}: expected a ': section' line, then four words")
            if case_insensitive:
                words = [w.lower() for w in words]
            if any(w not in index for w in words):
                continue
            a, b, c, d = (index[w] for w in words)
            query = normed[b] - normed[a] + normed[c]
            scores = normed @ (query / max(np.linalg.norm(query), 1e-30))
            scores[[a, b, c]] = -np.inf
            current["correct" if int(np.argmax(scores)) == d else "incorrect"] += 1
    correct = sum(s["correct"] for s in sections)
    seen = correct + sum(s["incorrect"] for s in sections)
    return (correct / seen if seen else 0.0), sections
