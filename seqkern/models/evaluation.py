"""Intrinsic evaluation of word vectors: word-pair similarity (wordsim353 / SimLex-999 files)
and analogies (Google's questions-words.txt), scored as gensim 4 scores them, with the p-values
scipy.stats gives (computed here: seqkern does not import scipy)."""
from __future__ import annotations

import itertools
import math
from collections import namedtuple

import numpy as np

from seqkern import _core
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
    sections, asked = [], []  # asked: (section, (a, b, c, expected)) of the questions scored
    with open(path, "rb") as f:
        for n, raw in enumerate(f):
            line = raw.decode("utf8")
            if line.startswith(": "):
                sections.append({"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []})
                continue
            if not sections:
                raise ValueError(f"Missing section header before line #{n} in {path}")
            words = [w.upper() if case_insensitive else w for w in line.split()]
            if len(words) != 4:
                continue
            if any(w not in ok for w in words):
                if dummy4unknown:
                    asked.append((sections[-1], tuple(words), None))
                continue
            asked.append((sections[-1], tuple(words), True))
    quads = [q for _, q, scored in asked if scored]
    predicted = iter(_answers(wv, ok, limit, quads, similarity_function, case_insensitive))
    for section, quad, scored in asked:
        right = scored and next(predicted) == quad[3]
        section["correct" if right else "incorrect"].append(quad)
    total = {"section": "Total accuracy",
             "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
             "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in sections))}
    seen = len(total["correct"]) + len(total["incorrect"])
    sections.append(total)
    return (len(total["correct"]) / seen if seen else 0.0), sections


# Scores of this many bytes at most are computed at once, into reused buffers: the questions'
# products with the first `limit` rows are one matrix product per block of questions, where a
# query at a time read every vector from memory for one row of scores (2,000 questions over
# 50,000 x 100 vectors: 2.9 s, now 0.7-0.9 s; blocks of 8 MB took 0.9-1.1 s).
_SCORE_BYTES = 32 << 20


def _answers(wv, ok, limit, quads, similarity_function, case_insensitive):
    """The answer gensim's evaluation gives to each (a, b, c, expected): among the 5 best of the
    first `limit` rows for most_similar(positive=[b, c], negative=[a]) (or 3CosMul), rows of a,
    b and c left out, the first whose (folded) key is in `ok` and is not a, b or c; failing
    that, the fifth."""
    if not quads:
        return []
    vectors = np.ascontiguousarray(wv.vectors[:limit])
    if vectors.dtype not in (np.float32, np.float64):
        vectors = vectors.astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    rows = np.array([[ok[w] for w in q[:3]] for q in quads])  # (n, 3): a, b, c
    unit = vectors[rows] / norms[rows][..., None]
    if similarity_function == "most_similar":  # as most_similar's mean of unit vectors
        mean = ((unit[:, 1] + unit[:, 2]) - unit[:, 0]).astype(np.float64) / 3.0
        length = np.sqrt(np.einsum("ij,ij->i", mean, mean))
        mean /= np.where(length > 0, length, 1.0)[:, None]  # unitvec leaves a zero vector be
        queries = [mean.astype(np.float32).astype(vectors.dtype)]
    else:
        queries = [np.ascontiguousarray(unit[:, k]) for k in (1, 2, 0)]
    block = max(1, _SCORE_BYTES // (vectors.itemsize * limit * len(queries)))
    cos = [np.empty((min(block, len(quads)), limit), vectors.dtype) for _ in queries]
    out = []
    for q0 in range(0, len(quads), block):
        n = min(block, len(quads) - q0)
        for q, c in zip(queries, cos):  # cosines with every row, on seqkern's threads
            _core.gemm(False, True, 1.0, q[q0:q0 + n], vectors, 0.0, c[:n])
            np.divide(c[:n], norms, out=c[:n])
        if similarity_function == "most_similar":
            scores = cos[0][:n]
        else:
            scores = (1 + cos[0][:n]) / 2 * ((1 + cos[1][:n]) / 2) / ((1 + cos[2][:n]) / 2 + 0.000001)
        for k, row in enumerate(scores):
            skip = set(rows[q0 + k].tolist())
            # most_similar reads 5 past the skipped rows, the 3CosMul evaluation always 8
            head = top_indices(row, 5 + len(skip) if len(queries) == 1 else 8)
            best = [i for i in head if i not in skip][:5]
            fold = quads[q0 + k][:3]
            predicted = None
            for i in best:
                predicted = wv.index_to_key[i].upper() if case_insensitive else wv.index_to_key[i]
                if predicted in ok and predicted not in fold:
                    break
            out.append(predicted)
    return out
