"""Word vectors with gensim 4's KeyedVectors interface and the word2vec.c file formats.

    wv = KeyedVectors(vector_size=100); wv.add_vectors(["king", "queen"], vectors)
    wv["king"]; wv.most_similar(positive=["king", "woman"], negative=["man"], topn=5)
    wv.save("vectors.kv"); wv = KeyedVectors.load("vectors.kv", mmap="r")
    wv.save_word2vec_format("vecs.bin", binary=True)
    wv = KeyedVectors.load_word2vec_format("vecs.bin", binary=True)

Every query computes what gensim 4 computes, in the same order of operations, so that keys come
in gensim's order and scores agree with gensim's to float32 rounding (tested against gensim when
it is installed). seqkern's own files (save/load) hold no pickle.
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import mmap
import os
import shutil
import tempfile
import warnings
from collections import Counter
from numbers import Integral

import numpy as np

from seqkern import _core
from seqkern.data.text_files import compression
from seqkern.models import array_file, evaluation
from seqkern.models.matutils import top_indices, unitvec

_KEY_TYPES = (str, int, np.integer)


def _as_list(x):
    """gensim's _ensure_list: None -> [], a single key or vector -> [it], a 2-D array -> its
    rows, else a list."""
    if x is None:
        return []
    if isinstance(x, _KEY_TYPES) or (isinstance(x, np.ndarray) and x.ndim != 2):
        return [x]
    return list(x)


def frequency_order(counts):
    """The order of gensim 4's vocabulary: descending count, and among equal counts the key seen
    last first (its np.lexsort((-index, -count)))."""
    counts = np.asarray(counts, np.int64)
    return np.lexsort((-np.arange(len(counts)), -counts))


# gensim 3's names for what gensim 4 calls otherwise
_GENSIM3_NAMES = {"vocab": "key_to_index, index_to_key and get_vecattr(key, 'count')",
                  "index2word": "index_to_key", "index2entity": "index_to_key",
                  "syn0": "vectors", "vectors_norm": "get_normed_vectors()",
                  "syn0norm": "get_normed_vectors()"}


class KeyedVectors:
    """vectors (n, vector_size) and their keys: index_to_key (list), key_to_index (dict), plus
    per-key attributes (get_vecattr/set_vecattr: a trained model's "count")."""

    def __init__(self, vector_size, count=0, dtype=np.float32, mapfile_path=None):
        self.vector_size = int(vector_size)
        self.index_to_key = [None] * count
        self.next_index = 0
        self.key_to_index = {}
        self.vectors = np.zeros((count, self.vector_size), dtype=dtype)
        self.norms = None
        self.expandos = {}
        self.mapfile_path = mapfile_path
        # gensim's lock factors: training scales key i's updates by vectors_lockf[i % len] (0.0
        # freezes a vector). One factor for all keys, or one per key (intersect_word2vec_format
        # makes them so); one per key grows with the keys (new keys 1.0) and follows a reorder.
        self.vectors_lockf = np.ones(1, np.float32)

    @classmethod
    def _of(cls, keys, vectors, counts=None):
        """A KeyedVectors over `vectors` as given (no copy, a memmap stays one), keys in row
        order."""
        vectors = np.asanyarray(vectors)
        keys = list(keys)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"vectors: expected shape ({len(keys)}, dim), got {vectors.shape}")
        kv = cls(vectors.shape[1], dtype=vectors.dtype)
        kv.vectors = vectors
        kv.index_to_key = keys
        kv.key_to_index = {k: i for i, k in enumerate(keys)}
        if len(kv.key_to_index) != len(keys):
            raise ValueError("keys: every key must appear once")
        kv.next_index = len(keys)
        if counts is not None:
            kv.expandos["count"] = np.asarray(counts, np.int64)
        return kv

    def __str__(self):
        return f"{type(self).__name__}<vector_size={self.vector_size}, {len(self)} keys>"

    __repr__ = __str__

    def __getattr__(self, name):
        """Only for names not found: gensim 3's, gone since gensim 4 as there, tell gensim 3 code
        what replaced them."""
        if name in _GENSIM3_NAMES:
            raise AttributeError(f"KeyedVectors.{name} was removed in gensim 4 (and seqkern "
                                 f"follows gensim 4): use {_GENSIM3_NAMES[name]} instead")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __len__(self):
        return len(self.index_to_key)

    # -- keys and vectors ---------------------------------------------------------------------
    def get_index(self, key, default=None):
        """The row of `key`; an int key within range is its own row; else default, or KeyError."""
        i = self.key_to_index.get(key, -1)
        if i >= 0:
            return i
        if isinstance(key, (int, np.integer)) and 0 <= key < len(self.index_to_key):
            return int(key)
        if default is not None:
            return default
        raise KeyError(f"Key '{key}' not present")

    def has_index_for(self, key):
        return self.get_index(key, -1) >= 0

    __contains__ = has_index_for

    def get_vector(self, key, norm=False):
        """The vector of `key` (read-only view), scaled to unit length with norm=True."""
        i = self.get_index(key)
        if norm:
            self.fill_norms()
            out = self.vectors[i] / self.norms[i]
        else:
            out = self.vectors[i]
        out.setflags(write=False)  # writing through it would leave the norms stale
        return out

    def __getitem__(self, key_or_keys):
        if isinstance(key_or_keys, _KEY_TYPES):
            return self.get_vector(key_or_keys)
        return np.vstack([self.get_vector(k) for k in key_or_keys])

    def __setitem__(self, keys, weights):
        if not isinstance(keys, list):
            keys, weights = [keys], np.asarray(weights).reshape(1, -1)
        self.add_vectors(keys, weights, replace=True)

    def add_vector(self, key, vector):
        """Adds one vector (in a preallocated free slot when there is one); returns its row."""
        i = self.next_index
        if i < len(self) and self.index_to_key[i] is None:
            self.index_to_key[i] = key
            self.key_to_index[key] = i
            self.vectors[i] = vector
            self.next_index += 1
            return i
        i = len(self)
        self.add_vectors([key], [vector])
        self.next_index = i + 1
        return i

    def add_vectors(self, keys, weights, extras=None, replace=False):
        """Appends the keys not present yet with their vectors (rows of `weights`); keys present
        keep their vectors unless replace=True. extras: attribute name -> values per key."""
        if isinstance(keys, _KEY_TYPES):
            keys, weights = [keys], np.asarray(weights).reshape(1, -1)
        weights = np.asarray(weights)
        if weights.ndim != 2 or weights.shape != (len(keys), self.vector_size):
            raise ValueError(f"weights: expected shape ({len(keys)}, {self.vector_size}), got {weights.shape}")
        extras = {k: np.asarray(v) for k, v in (extras or {}).items()}
        present = np.array([k in self.key_to_index for k in keys], dtype=bool)
        for i in np.flatnonzero(~present):
            self.key_to_index[keys[i]] = len(self.index_to_key)
            self.index_to_key.append(keys[i])
        n_old = len(self.vectors)
        self.vectors = np.vstack((self.vectors, weights[~present].astype(self.vectors.dtype)))
        if len(self.vectors_lockf) == n_old > 1:
            self.vectors_lockf = np.concatenate((self.vectors_lockf,
                                                 np.ones(len(self.vectors) - n_old, np.float32)))
        for name in set(self.expandos) | set(extras):
            old = self.expandos.get(name)
            new = extras[name][~present] if name in extras else None
            if old is None:
                old = np.zeros(len(self) - int((~present).sum()), new.dtype)
            if new is None:
                new = np.zeros(int((~present).sum()), old.dtype)
            self.expandos[name] = np.concatenate((old, new.astype(old.dtype)))
        if replace and present.any():
            rows = [self.key_to_index[keys[i]] for i in np.flatnonzero(present)]
            self.vectors[rows] = weights[present]
            for name, values in extras.items():
                self.expandos[name][rows] = values[present]
        self.norms = None

    def set_vecattr(self, key, attr, val):
        """Sets a per-key attribute (stored as one array per attribute, as gensim does)."""
        if attr not in self.expandos:
            self.expandos[attr] = np.zeros(len(self), np.asarray(val).dtype)
        elif len(self.expandos[attr]) < len(self):
            grown = np.zeros(len(self), self.expandos[attr].dtype)
            grown[:len(self.expandos[attr])] = self.expandos[attr]
            self.expandos[attr] = grown
        self.expandos[attr][self.get_index(key)] = val

    def get_vecattr(self, key, attr):
        return self.expandos[attr][self.get_index(key)].item()

    def sort_by_descending_frequency(self):
        """Reorders the keys (and vectors and attributes) in frequency_order of "count"."""
        if not len(self):
            return
        order = frequency_order(self.expandos["count"])
        self.index_to_key = [self.index_to_key[i] for i in order]
        self.key_to_index = {k: i for i, k in enumerate(self.index_to_key)}
        for name in self.expandos:
            self.expandos[name] = self.expandos[name][order]
        if len(self.vectors_lockf) == len(self) > 1:
            self.vectors_lockf = self.vectors_lockf[order]
        if len(self.vectors):
            self.vectors = self.vectors[order]
        self.norms = None

    def vectors_for_all(self, keys, allow_inference=True, copy_vecattrs=False):
        """A new KeyedVectors with the vectors of `keys` present here, in their first order,
        duplicates dropped; "count" made up descending (gensim's) unless copy_vecattrs copies
        the attributes."""
        index = self.key_to_index  # looked up first: has_index_for is for the other keys (ints)
        present = self.has_index_for if allow_inference else index.__contains__
        vocab = [k for k in dict.fromkeys(keys) if k in index or present(k)]
        rows = [index[k] if k in index else self.get_index(k) for k in vocab]
        counts = np.arange(len(vocab), 0, -1, dtype=np.int64)
        kv = KeyedVectors._of(vocab, self.vectors[rows].reshape(len(vocab), self.vector_size),
                              counts)
        if copy_vecattrs:
            for name, values in self.expandos.items():
                kv.expandos[name] = values[rows].copy()
        return kv

    def word_vec(self, *args, **kwargs):
        """gensim 3's name of get_vector (deprecated there)."""
        warnings.warn("Use get_vector instead", DeprecationWarning, stacklevel=2)
        return self.get_vector(*args, **kwargs)

    _norms_of = None  # the array of vectors self.norms are the lengths of

    def fill_norms(self, force=False):
        """Computes the vectors' lengths (norms) unless known for the array self.vectors holds
        (after `kv.vectors = new_array`, most_similar used the old array's lengths); call with
        force=True after changing vectors in place."""
        if self.norms is None or force or self._norms_of is not self.vectors:
            self.norms = np.linalg.norm(self.vectors, axis=1)
            self._norms_of = self.vectors

    def changed(self):
        """Forget the norms: the vectors were changed in place (training calls it)."""
        self.norms = None

    def get_normed_vectors(self):
        self.fill_norms()
        return self.vectors / self.norms[..., np.newaxis]

    def init_sims(self, replace=False):
        """gensim 3's name: fill_norms; replace=True also scales the vectors to unit length.
        Deprecated, with gensim 4's warning."""
        warnings.warn("Call to deprecated `init_sims` (Use fill_norms() instead. See "
                      "https://github.com/RaRe-Technologies/gensim/wiki/Migrating-from-Gensim-3.x-to-4).",
                      DeprecationWarning, stacklevel=2)
        self.fill_norms()
        if replace:
            self.unit_normalize_all()

    def unit_normalize_all(self):
        self.fill_norms()
        self.vectors /= self.norms[..., np.newaxis]
        self.norms = np.ones(len(self.vectors))

    def get_mean_vector(self, keys, weights=None, pre_normalize=True, post_normalize=False,
                        ignore_missing=True):
        """Weighted mean of the keys' vectors (unit vectors with pre_normalize; keys may also be
        vectors), divided by the sum of |weights|; unit length with post_normalize."""
        if len(keys) == 0:
            raise ValueError("cannot compute mean with no input")
        # in the vectors' dtype, as gensim's, so that the mean of one key is its vector exactly
        # (n_similarity([a], [b]) == similarity(a, b))
        weights = (np.ones(len(keys), self.vectors.dtype) if weights is None
                   else np.asarray(weights, self.vectors.dtype) if isinstance(weights, list)
                   else np.asarray(weights))
        if weights.ndim != 1 or len(keys) != len(weights):
            raise ValueError("keys and weights array must have same number of elements")
        mean = np.zeros(self.vector_size, self.vectors.dtype)
        total = 0
        for w, key in zip(weights, keys):
            if isinstance(key, np.ndarray):
                if key.shape != mean.shape:  # another shape would broadcast into a wrong mean
                    raise ValueError(f"keys: a vector must have shape ({self.vector_size},), got "
                                     f"{key.shape}")
                mean += w * key
                total += abs(w)
            elif key in self:
                mean += w * self.get_vector(key, norm=pre_normalize)
                total += abs(w)
            elif not ignore_missing:
                raise KeyError(f"Key '{key}' not present in vocabulary")
        if total > 0:
            mean = mean / total
        return unitvec(mean).astype(np.float32) if post_normalize else mean

    # -- similarity queries -------------------------------------------------------------------
    def most_similar(self, positive=None, negative=None, topn=10, clip_start=0, clip_end=None,
                     restrict_vocab=None, indexer=None):
        """Keys nearest by cosine to the mean of the unit vectors of `positive` minus those of
        `negative` (keys, vectors, or (key, weight) pairs); the query keys are left out. The
        analogy a - b + c is positive=[a, c], negative=[b]. restrict_vocab: the first that many
        rows only. topn=None (or 0) returns every score. indexer: an object with
        most_similar(vector, topn), asked instead of the full scan."""
        if isinstance(topn, Integral) and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        self.fill_norms()
        clip_end = clip_end or len(self.vectors)
        if restrict_vocab:
            clip_start, clip_end = 0, restrict_vocab
        keys = []
        weight = np.concatenate((np.ones(len(positive)), -np.ones(len(negative))))
        for i, item in enumerate(positive + negative):
            if isinstance(item, (*_KEY_TYPES, np.ndarray)):
                keys.append(item)
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                keys.append(item[0])
                weight[i] = item[1]
            else:
                raise TypeError(f"positive, negative: expected keys, vectors or (key, weight) "
                                f"pairs, got {item!r:.80}")
        mean = self.get_mean_vector(keys, weight, pre_normalize=True, post_normalize=True,
                                    ignore_missing=False)
        skip = {self.get_index(k) for k in keys if isinstance(k, _KEY_TYPES) and self.has_index_for(k)}
        if indexer is not None and isinstance(topn, int):
            return indexer.most_similar(mean, topn)
        dists = self.vectors[clip_start:clip_end] @ mean / self.norms[clip_start:clip_end]
        if not topn:
            return dists
        best = top_indices(dists, topn + len(skip))
        out = [(self.index_to_key[i + clip_start], float(dists[i])) for i in best
               if i + clip_start not in skip]
        return out[:topn]

    def similar_by_key(self, key, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_word(self, word, topn=10, restrict_vocab=None):
        return self.similar_by_key(word, topn, restrict_vocab)

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """Levy and Goldberg's 3CosMul: the product of the positive keys' cosines, shifted to
        [0, 1], over that of the negative keys' (+ 1e-6). As in gensim 4, restrict_vocab is
        accepted and not applied."""
        if isinstance(topn, Integral) and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        self.fill_norms()
        skip = {self.get_index(w) for w in positive + negative
                if not isinstance(w, np.ndarray) and w in self.key_to_index}
        positive = [self.get_vector(w, norm=True) if isinstance(w, str) else w for w in positive]
        negative = [self.get_vector(w, norm=True) if isinstance(w, str) else w for w in negative]
        if not positive:
            raise ValueError("cannot compute similarity with no input")
        pos = [(1 + self.vectors @ term / self.norms) / 2 for term in positive]
        neg = [(1 + self.vectors @ term / self.norms) / 2 for term in negative]
        dists = np.prod(pos, axis=0) / (np.prod(neg, axis=0) + 0.000001)
        if not topn:
            return dists
        best = top_indices(dists, topn + len(skip))
        return [(self.index_to_key[i], float(dists[i])) for i in best if i not in skip][:topn]

    def most_similar_to_given(self, key1, keys_list):
        return keys_list[int(np.argmax([self.similarity(key1, k) for k in keys_list]))]

    def rank_by_centrality(self, words, use_norm=True):
        """(cosine to the mean, word) for the words present, most central first; missing words
        are left out with a warning."""
        self.fill_norms()
        used = [w for w in words if w in self]
        if len(used) != len(words):
            warnings.warn(f"vectors for words {set(words) - set(used)} are not present in the "
                          "model, ignoring these words", stacklevel=3)
        if not used:
            raise ValueError("cannot select a word from an empty list")
        vectors = np.vstack([self.get_vector(w, norm=use_norm) for w in used]).astype(np.float32)
        mean = unitvec(vectors.mean(axis=0)).astype(np.float32)
        return sorted(zip(vectors @ mean, used), reverse=True)

    def doesnt_match(self, words):
        """The word least like the others (farthest from their mean direction)."""
        return self.rank_by_centrality(words)[-1][1]

    @staticmethod
    def cosine_similarities(vector_1, vectors_all):
        """Cosines between one vector and each row of vectors_all."""
        return vectors_all @ vector_1 / (np.linalg.norm(vector_1) * np.linalg.norm(vectors_all, axis=1))

    def distances(self, word_or_vector, other_words=()):
        """1 - cosine from a key (or vector) to other_words, or to every key when none given."""
        v = self.get_vector(word_or_vector) if isinstance(word_or_vector, _KEY_TYPES) else word_or_vector
        others = self.vectors if not other_words else self.vectors[[self.get_index(w) for w in other_words]]
        return 1 - self.cosine_similarities(v, others)

    def distance(self, w1, w2):
        return 1 - self.similarity(w1, w2)

    def similarity(self, w1, w2):
        """Cosine similarity of two keys."""
        return np.dot(unitvec(self[w1]), unitvec(self[w2]))

    def n_similarity(self, ws1, ws2):
        """Cosine between the mean vectors of two lists of keys (missing keys ignored)."""
        if not (len(ws1) and len(ws2)):
            raise ZeroDivisionError("At least one of the passed list is empty.")
        m1 = self.get_mean_vector(ws1, pre_normalize=False)
        m2 = self.get_mean_vector(ws2, pre_normalize=False)
        return np.dot(unitvec(m1), unitvec(m2))

    def relative_cosine_similarity(self, wa, wb, topn=10):
        sims = self.similar_by_word(wa, topn)
        if not sims:
            raise ValueError("Cannot calculate relative cosine similarity without any similar words.")
        return float(self.similarity(wa, wb)) / sum(s for _, s in sims)

    def closer_than(self, key1, key2):
        """Keys closer to key1 than key2 is, in row order."""
        d = self.distances(key1)
        i1, i2 = self.get_index(key1), self.get_index(key2)
        return [self.index_to_key[i] for i in np.flatnonzero(d < d[i2]) if i != i1]

    words_closer_than = closer_than

    def rank(self, key1, key2):
        """1 + the number of keys closer to key1 than key2 is."""
        return len(self.closer_than(key1, key2)) + 1

    def wmdistance(self, document1, document2, norm=True):
        """gensim's Word Mover's Distance (Kusner et al., 2015) between two documents (lists of
        keys): the least total distance their words travel when each document's normalized
        bag of words moves onto the other's, each unit of mass going between two words' vectors
        (unit vectors with norm) at their Euclidean distance. Keys outside the vocabulary are
        dropped; a document left empty gives inf (with a warning), two documents of one same
        word 0. The transport problem is solved exactly in C++ (_core.emd), without POT."""
        docs = [[k for k in d if k in self.key_to_index] for d in (document1, document2)]
        if not docs[0] or not docs[1]:
            warnings.warn("At least one of the documents had no words that were in the "
                          "vocabulary.", stacklevel=2)
            return float("inf")
        bags = [Counter(d) for d in docs]
        if len(bags[0]) == len(bags[1]) == 1 and bags[0].keys() == bags[1].keys():
            return 0.0
        rows = [np.fromiter((self.key_to_index[k] for k in bag), np.int64, len(bag)) for bag in bags]
        if norm:
            self.fill_norms()
        v1, v2 = ((self.vectors[r] / self.norms[r, None] if norm else self.vectors[r])
                  .astype(np.float64) for r in rows)  # as get_vector gives them
        # |a - b| from |a|^2 + |b|^2 - 2 a.b in float64 (a product instead of n m differences);
        # a word in both documents is 0 away from itself exactly
        cost = np.sqrt(np.maximum(0.0, np.einsum("ij,ij->i", v1, v1)[:, None]
                                  + np.einsum("ij,ij->i", v2, v2)[None] - 2 * (v1 @ v2.T)))
        cost[rows[0][:, None] == rows[1][None]] = 0.0
        if not np.all(np.isfinite(cost)):
            raise ValueError("wmdistance: the documents' vectors are not finite (or too large "
                             "to square)")
        mass = [np.fromiter(bag.values(), np.float64, len(bag)) / len(doc)
                for bag, doc in zip(bags, docs)]
        distance = _core.emd(mass[0], mass[1], cost)
        if np.isnan(distance):
            raise RuntimeError("wmdistance: the transport problem did not converge")
        return distance

    def intersect_word2vec_format(self, fname, lockf=0.0, binary=False, encoding="utf8",
                                  unicode_errors="strict"):
        """gensim's: the keys present both here and in the word2vec file fname take the file's
        vectors (the last, for a key the file repeats), and their vectors_lockf factor becomes
        lockf: 0.0 (the default) keeps them as read in later training, 1.0 lets them train. No key
        is added. vectors_lockf becomes one factor per key first, where it held one for all
        (gensim raises IndexError there)."""
        if len(self.vectors_lockf) not in (1, len(self)):
            raise ValueError(f"vectors_lockf: expected one factor, or one per key ({len(self)}), "
                             f"got {len(self.vectors_lockf)}")
        with _mapped(fname) as data:
            keys, vectors, _ = _parse_word2vec_body(fname, data, binary, encoding, unicode_errors,
                                                    None, False, self.vector_size)
        rows = {}  # row here -> the file's last entry of that key
        for i, key in enumerate(keys):
            row = self.key_to_index.get(key)
            if row is not None:
                rows[row] = i
        if len(self.vectors_lockf) != len(self) and len(self) > 1:
            self.vectors_lockf = np.full(len(self), self.vectors_lockf[0], np.float32)
        here = np.fromiter(rows.keys(), np.int64, len(rows))
        self.vectors[here] = vectors[np.fromiter(rows.values(), np.int64, len(rows))]
        self.vectors_lockf[here] = lockf
        self.changed()

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """(pearson, spearman, oov_ratio) against a wordsim353 / SimLex-999 style file, as
        gensim: pearson and spearman are (statistic, pvalue) pairs."""
        return evaluation.evaluate_word_pairs(self, pairs, delimiter, encoding, restrict_vocab,
                                              case_insensitive, dummy4unknown)

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True,
                                dummy4unknown=False, similarity_function="most_similar"):
        """(accuracy, sections) on a questions-words.txt style file, as gensim: each section
        {"section", "correct": [(a, b, c, d)], "incorrect": [...]}, the last "Total accuracy"."""
        return evaluation.evaluate_word_analogies(self, analogies, restrict_vocab, case_insensitive,
                                                  dummy4unknown, similarity_function)

    # -- files --------------------------------------------------------------------------------
    def save(self, fname):
        """Writes the keys, vectors and per-key attributes to exactly `fname` (no pickle)."""
        array_file.save(fname, "KeyedVectors", self._meta(), self._arrays())

    def _meta(self):
        return {"keys": self.index_to_key, "next_index": self.next_index}

    def _arrays(self, prefix=""):
        return {prefix + "vectors": self.vectors, prefix + "vectors_lockf": self.vectors_lockf,
                **{f"{prefix}attr.{k}": v for k, v in self.expandos.items()}}

    @classmethod
    def _from_saved(cls, meta, arrays, prefix=""):
        kv = cls._of(meta["keys"], arrays[prefix + "vectors"])
        kv.next_index = meta["next_index"]
        kv.expandos = {k[len(prefix) + 5:]: v for k, v in arrays.items() if k.startswith(prefix + "attr.")}
        if prefix + "vectors_lockf" in arrays:  # files of earlier versions have none: all 1.0
            kv.vectors_lockf = np.array(arrays[prefix + "vectors_lockf"], np.float32)  # writable
        return kv

    @classmethod
    def load(cls, fname, mmap=None):
        """What save wrote. mmap="r" maps the vectors read-only instead of reading them, so that
        processes loading the same file share them."""
        meta, arrays = array_file.load(fname, "KeyedVectors", mmap)
        return cls._from_saved(meta, arrays)

    def save_word2vec_format(self, fname, fvocab=None, binary=False, total_vec=None,
                             write_header=True, prefix="", append=False, sort_attr="count"):
        """The word2vec.c format: a "count dim" header line, then per key its text and values
        (text: values as numpy prints float32; binary: dim little-endian float32). Keys are
        written by descending sort_attr when the vectors have it, else in row order; fvocab:
        also write "key count" lines there."""
        total_vec = len(self) if total_vec is None else total_vec
        mode = "ab" if append else "wb"
        if sort_attr in self.expandos:
            counts = np.asarray(self.expandos[sort_attr])
            # descending, ties in row order (a stable sort of the negated values)
            order = np.argsort(-(counts.astype(np.int64) if counts.dtype.kind in "ub" else counts),
                               kind="stable")
        else:
            if fvocab is not None:
                raise ValueError(f"Cannot store vocabulary with '{sort_attr}' because that attribute does not exist")
            order = range(len(self))
        keys = [f"{prefix}{k}".encode(errors="surrogateescape") for k in self.index_to_key]
        bad = _core.unreadable_key(keys)
        if bad >= 0:  # refused before any file is opened (gensim writes it, and reads garbage)
            raise ValueError(f"keys: {keys[bad].decode(errors='replace')!r} cannot be read back "
                             "from a word2vec file: a key ends at a space, an entry at a newline")
        if fvocab is not None:
            with (_opener(fvocab) or open)(fvocab, mode) as f:
                for i in order:
                    f.write(keys[i] + f" {counts[i]}\n".encode())
        opener = _opener(fname)
        # a compressed file is written plain to a temporary file first: the header and entries
        # are formatted in C++ straight to a descriptor
        header = f"{total_vec} {self.vector_size}\n".encode() if write_header else b""
        with tempfile.TemporaryFile() if opener else open(fname, mode) as f:
            _core.write_vectors(f.fileno(), header, keys,
                                np.ascontiguousarray(self.vectors, np.float32),
                                np.asarray(order, np.int64), binary)
            if opener:
                f.seek(0)
                with opener(fname, mode) as out:
                    shutil.copyfileobj(f, out, 1 << 24)

    @classmethod
    def load_word2vec_format(cls, fname, fvocab=None, binary=False, encoding="utf8",
                             unicode_errors="strict", limit=None, datatype=np.float32,
                             no_header=False):
        """Reads what save_word2vec_format, word2vec.c or gensim write. limit: the first that
        many vectors only; fvocab: "key count" lines giving the counts (otherwise, as gensim,
        count = number of vectors - row); no_header: a text file without its header line."""
        return _read_word2vec_format(cls, fname, fvocab, binary, encoding, unicode_errors, limit,
                                     datatype, no_header)


# Compressed word2vec files by their names' endings, as gensim (smart_open) reads and writes them.
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _opener(path):
    """gzip's, bz2's or lzma's open for a name ending .gz, .bz2 or .xz; None for others."""
    return _OPENERS.get(os.path.splitext(os.fspath(path))[1].lower())


@contextlib.contextmanager
def _mapped(fname):
    """The bytes of fname, mapped read-only (no copy in memory). A compressed file is inflated
    into a temporary file first, so that a large one costs disk, not twice its size in memory."""
    opener = _opener(fname)
    with tempfile.TemporaryFile() if opener else open(fname, "rb") as f:
        if opener:
            with opener(fname, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 24)
            f.flush()
        with (mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size
              else contextlib.nullcontext(b"")) as data:
            yield data


def _read_word2vec_format(cls, fname, fvocab, binary, encoding, unicode_errors, limit, datatype,
                          no_header):
    counts = None
    if fvocab is not None:
        counts = {}
        with (_opener(fvocab) or open)(fvocab, "rb") as f:
            for number, line in enumerate(f, 1):
                fields = line.decode(encoding, unicode_errors).split()
                if len(fields) != 2 or not fields[1].isdigit():
                    raise ValueError(f"{fvocab}: line {number}: expected 'word count', got "
                                     f"{line[:80]!r}")
                counts[fields[0]] = int(fields[1])
    with _mapped(fname) as data:
        keys, vectors, V = _parse_word2vec_body(fname, data, binary, encoding, unicode_errors,
                                                limit, no_header)
    vectors = vectors.astype(datatype, copy=False)
    if len(set(keys)) != len(keys):  # gensim keeps the first vector of a repeated word
        first = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        rows = sorted(first.values())
        keys, vectors = [keys[i] for i in rows], vectors[rows]
    kv = cls._of(keys, vectors)
    kv.expandos["count"] = (np.array([counts.get(k, 0) for k in keys], np.int64)
                            if counts is not None
                            else np.arange(V, V - len(keys), -1, dtype=np.int64))
    return kv


def _control_bytes(chunk):
    """Whether bytes hold control characters that no text file has (all of them but tab, the
    line ends, vertical tab and form feed): the raw floats of a binary word2vec file do, about
    one byte in ten."""
    return bool(bytes(chunk).translate(None, _TEXT_BYTES))


_TEXT_BYTES = bytes(b for b in range(256) if b >= 0x20 and b != 0x7F or b in b"\t\n\v\f\r")


class TruncatedFileError(ValueError, EOFError):
    """A word2vec file that ends before the vectors its header announces: a ValueError, as
    seqkern reports a damaged file, and an EOFError, as gensim reports this one."""


def _parse_word2vec_body(fname, data, binary, encoding, unicode_errors, limit, no_header,
                         vector_size=None):
    """(keys, vectors float32, count from the header) of a word2vec file's bytes (or map).
    vector_size: the size the vectors must have (gensim's error otherwise, before the body is
    read)."""
    if no_header:
        if binary:
            raise NotImplementedError("no_header=True is only for text files (as in gensim)")
        first = data[:data.find(b"\n")].split() if data.find(b"\n") >= 0 else data[:].split()
        lines = int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord("\n")))
        V, dim, offset = lines + (data[-1:] != b"\n"), len(first) - 1, 0
    else:
        offset = data.find(b"\n") + 1 or len(data)
        header = data[:offset].split()
        try:
            V, dim = int(header[0]), int(header[1])
        except (IndexError, ValueError):
            kind = compression(data[:10])
            if kind:  # read compressed by its name's suffix only, as gensim reads it
                raise ValueError(f"{fname}: compressed ({kind}), but its name does not end "
                                 ".gz, .bz2 or .xz: rename it, or decompress it") from None
            raise ValueError(f"{fname}: expected a 'vocab_size vector_size' header line, "
                             f"got {b' '.join(header)[:80]!r}") from None
    if vector_size is not None and dim != vector_size:
        raise ValueError(f"incompatible vector size {dim} in file {fname}")
    if V < 0 or dim < 1:
        raise ValueError(f"{fname}: expected a vector count >= 0 and a vector size >= 1, got "
                         f"{V} and {dim}")
    if limit:
        V = min(V, limit)
    # A header that claims more than the file can hold (damage, or a file of another kind)
    # would have the (V, dim) vectors allocated before the parser finds the end: above 4 MB,
    # check first. The smallest entry is a one-byte word, a space and the values (4 bytes each
    # in binary; in text, one digit after a space each, then a newline).
    smallest = 2 + 4 * dim if binary else 2 + 2 * dim
    if V * dim > 1 << 20 and (V - 1) * smallest + smallest - 1 > len(data) - offset:
        raise ValueError(f"{fname}: the header announces {V:,} vectors of {dim:,} values, more "
                         f"than its {len(data) - offset:,} bytes after it can hold")
    vectors, keys, bad, fields = _core.parse_vectors(data, offset, V, dim, binary, encoding,
                                                      unicode_errors)
    if bad >= 0:
        if not binary and _control_bytes(data[offset:offset + 4 * dim + 256]):
            raise ValueError(f"{fname}: its first entry holds bytes that are no text: a binary "
                             "file read with binary=False?")
        if fields == -1:
            raise TruncatedFileError(f"{fname}: ends inside entry {bad} of {V}")
        if fields == -3:  # no writer puts one inside a word
            raise ValueError(f"{fname}: a word holds a newline: a text file read with "
                             "binary=True?")
        line = f"line {bad + 2 - no_header}"
        if fields == -2:
            raise ValueError(f"{fname}: {line}: a value is not a number")
        raise ValueError(f"{fname}: {line}: expected a word and {dim} values, got {fields} fields")
    return keys, vectors, V
