"""Intrinsic evaluation of word vectors: word-pair similarity (wordsim353 / SimLex-999 files)
and analogies (Google's questions-words.txt), scored as gensim 4 scores them, with the p-values
scipy.stats gives (computed here: seqkern does not import scipy)."""
from __future__ import annotations

import itertools
import math
from collections import namedtuple

import numpy as np

from seqkern.models.matutils import top_indices, unitvec


class Correlation(namedtuple("Correlation", "statistic pvalue")):
    """(statistic, pvalue), as scipy.stats' results unpack; .correlation is the statistic."""

    @property
    def correlation(self):
        return self.statistic


def _betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
    Lentz), on the side where it converges fast."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-15:
            break
    return front * (f - 1.0)


def _two_sided_p(r, n):
    """p-value of a correlation r over n pairs under independence: Student's t with n - 2
    degrees of freedom, t = r sqrt((n - 2) / (1 - r^2)) (scipy's pearsonr and spearmanr)."""
    df = n - 2
    if df <= 0 or not math.isfinite(r):
        return float("nan")
    if abs(r) >= 1.0:
        return 0.0
    t2 = r * r * df / (1.0 - r * r)
    return _betainc(df / 2.0, 0.5, df / (df + t2))


def pearson(a, b):
    """Pearson's r and its two-sided p-value."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    r = float(np.clip((a * b).sum() / denom, -1.0, 1.0)) if denom > 0 else float("nan")
    return Correlation(r, _two_sided_p(r, len(a)))


def spearman(a, b):
    """Spearman's rank correlation (Pearson's on the ranks, ties given their mean rank) and its
    two-sided p-value."""
    r = pearson(_ranks(a), _ranks(b)).statistic
    return Correlation(r, _two_sided_p(r, len(a)))


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


def _ok_vocab(wv, restrict_vocab, case_insensitive):
    """key -> row among the first restrict_vocab keys; with case_insensitive, upper-cased keys,
    the first (most frequent) spelling winning."""
    keys = wv.index_to_key[:restrict_vocab]
    fold = str.upper if case_insensitive else (lambda k: k)
    return {fold(k): wv.get_index(k) for k in reversed(keys)}


def evaluate_word_pairs(wv, path, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                        case_insensitive=True, dummy4unknown=False):
    """Correlation of the vectors' cosine similarities with human scores, over the lines
    "word1<delimiter>word2<delimiter>score" of a file ("#" lines are comments, malformed lines
    are skipped). Pairs with a word outside the first restrict_vocab are left out (or scored 0
    with dummy4unknown). Returns (pearson, spearman, oov_ratio in percent)."""
    ok = _ok_vocab(wv, restrict_vocab, case_insensitive)
    gold, model, oov = [], [], 0
    with open(path, encoding=encoding) as f:
        for line in f:
            if not line or line.startswith("#"):
                continue
            try:
                a, b, sim = (w.upper() if case_insensitive else w for w in line.split(delimiter))
                sim = float(sim)
            except (ValueError, TypeError):
                continue
            if a not in ok or b not in ok:
                oov += 1
                if dummy4unknown:
                    model.append(0.0)
                    gold.append(sim)
                continue
            gold.append(sim)
            model.append(float(np.dot(unitvec(wv.vectors[ok[a]]), unitvec(wv.vectors[ok[b]]))))
    if not gold:
        raise ValueError(f"No valid similarity judgements found in {path}: either invalid format "
                         f"or all are out-of-vocabulary in {wv}")
    oov_ratio = 100.0 * oov / (len(gold) if dummy4unknown else len(gold) + oov)
    return pearson(gold, model), spearman(gold, model), oov_ratio


def evaluate_word_analogies(wv, path, restrict_vocab=300000, case_insensitive=True,
                            dummy4unknown=False, similarity_function="most_similar"):
    """Accuracy on analogy questions "a b c d" (a is to b as c is to d) in sections started by
    ": name" lines: the answer is the nearest key to b - a + c among the first restrict_vocab
    (a, b, c excluded); questions with a word outside them are skipped (or counted wrong with
    dummy4unknown). Returns (accuracy, sections), each section {"section", "correct",
    "incorrect"} with lists of (a, b, c, d), and a last section "Total accuracy"."""
    if similarity_function not in ("most_similar", "most_similar_cosmul"):
        raise ValueError("similarity_function: expected 'most_similar' or 'most_similar_cosmul', "
                         f"got {similarity_function!r}")
    ok = _ok_vocab(wv, restrict_vocab, case_insensitive)
    limit = min(int(restrict_vocab), len(wv))
    norms = np.linalg.norm(wv.vectors[:limit], axis=1)
    sections, section = [], None
    with open(path, "rb") as f:
        for n, raw in enumerate(f):
            line = raw.decode("utf8")
            if line.startswith(": "):
                if section:
                    sections.append(section)
                section = {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}
                continue
            if not section:
                raise ValueError(f"Missing section header before line #{n} in {path}")
            words = [w.upper() if case_insensitive else w for w in line.split()]
            if len(words) != 4:
                continue
            a, b, c, expected = words
            if any(w not in ok for w in words):
                if dummy4unknown:
                    section["incorrect"].append((a, b, c, expected))
                continue
            predicted = _answer(wv, ok, norms, limit, (a, b, c), similarity_function, case_insensitive)
            section["correct" if predicted == expected else "incorrect"].append((a, b, c, expected))
    if section:
        sections.append(section)
    total = {"section": "Total accuracy",
             "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
             "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in sections))}
    seen = len(total["correct"]) + len(total["incorrect"])
    sections.append(total)
    return (len(total["correct"]) / seen if seen else 0.0), sections


def _answer(wv, ok, norms, limit, abc, similarity_function, case_insensitive):
    """The answer gensim's evaluation gives: among the 5 best of the first `limit` rows for
    most_similar(positive=[b, c], negative=[a]) (rows of a, b and c left out), the first whose
    (folded) key is in `ok` and is not a, b or c; failing that, the fifth."""
    ia, ib, ic = (ok[w] for w in abc)
    if similarity_function == "most_similar":  # rows stand for their keys
        best = [wv.key_to_index.get(k, k) for k, _ in
                wv.most_similar(positive=[ib, ic], negative=[ia], topn=5, restrict_vocab=limit)]
    else:
        vectors = wv.vectors[:limit]
        unit = {i: wv.vectors[i] / np.linalg.norm(wv.vectors[i]) for i in (ia, ib, ic)}
        pos = (1 + vectors @ unit[ib] / norms) / 2 * ((1 + vectors @ unit[ic] / norms) / 2)
        scores = pos / ((1 + vectors @ unit[ia] / norms) / 2 + 0.000001)
        best = [i for i in top_indices(scores, 8) if i not in (ia, ib, ic)][:5]
    predicted = None
    for i in best:
        predicted = wv.index_to_key[i].upper() if case_insensitive else wv.index_to_key[i]
        if predicted in ok and predicted not in abc:
            break
    return predicted
