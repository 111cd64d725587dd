"""Word vectors with gensim's query interface and the word2vec.c file formats.

    wv = KeyedVectors(["king", "queen", ...], vectors)       # vectors (V, dim) float32
    wv["king"]; wv.most_similar(positive=["king", "woman"], negative=["man"], topn=5)
    wv.save_word2vec_format("vecs.bin", binary=True)
    wv = KeyedVectors.load_word2vec_format("vecs.bin", binary=True)
"""
from __future__ import annotations

import numpy as np

from seqkern.models import evaluation


class KeyedVectors:
    """index_to_key (V words, most frequent first for trained models), vectors (V, dim)."""

    def __init__(self, keys, vectors):
        vectors = np.asarray(vectors, dtype=np.float32)
        keys = list(keys)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"vectors: expected shape ({len(keys)}, dim), got {vectors.shape}")
        self.index_to_key = keys
        self.key_to_index = {k: i for i, k in enumerate(keys)}
        if len(self.key_to_index) != len(keys):
            raise ValueError("keys: every word must appear once")
        self.vectors = vectors
        self._normed = None

    @property
    def vector_size(self):
        return self.vectors.shape[1]

    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, key):
        return key in self.key_to_index

    def index(self, key):
        try:
            return self.key_to_index[key]
        except KeyError:
            raise KeyError(f"word {key!r} not in vocabulary") from None

    def __getitem__(self, key):
        """The vector of a word, or (n, dim) for a list of words."""
        if isinstance(key, str):
            return self.vectors[self.index(key)]
        return np.stack([self.vectors[self.index(k)] for k in key])

    def changed(self):
        """Call after modifying vectors in place (training does): drops the cached unit vectors."""
        self._normed = None

    def normed_vectors(self):
        """vectors scaled to unit length (zero rows stay zero), computed once."""
        if self._normed is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._normed = self.vectors / np.where(norms == 0, 1, norms)
        return self._normed

    def similarity(self, w1, w2):
        """Cosine similarity of two words."""
        n = self.normed_vectors()
        return float(n[self.index(w1)] @ n[self.index(w2)])

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """Words closest by cosine to the mean of the unit vectors of `positive` minus those of
        `negative` (the analogy a - b + c is positive=[a, c], negative=[b]); the query words
        themselves are left out. restrict_vocab: search only the first that many words (the most
        frequent, in a trained model). Returns [(word, cosine)], best first."""
        positive = [positive] if isinstance(positive, str) else list(positive or [])
        negative = [negative] if isinstance(negative, str) else list(negative or [])
        if not positive and not negative:
            raise ValueError("most_similar: give at least one positive or negative word")
        n = self.normed_vectors()
        query = sum(n[self.index(w)] for w in positive) - sum(
            (n[self.index(w)] for w in negative), np.zeros(self.vector_size, np.float32))
        query = query / max(np.linalg.norm(query), 1e-30)
        limit = len(self) if restrict_vocab is None else min(int(restrict_vocab), len(self))
        scores = n[:limit] @ query
        skip = {self.key_to_index[w] for w in positive + negative}
        order = np.argsort(-scores, kind="stable")
        out = []
        for i in order:
            if int(i) in skip:
                continue
            out.append((self.index_to_key[i], float(scores[i])))
            if len(out) == topn:
                break
        return out

    def doesnt_match(self, words):
        """The word farthest from the mean of the given words' unit vectors."""
        words = list(words)
        if not words:
            raise ValueError("doesnt_match: give at least one word")
        n = self.normed_vectors()
        vecs = np.stack([n[self.index(w)] for w in words])
        mean = vecs.mean(axis=0)
        mean /= max(np.linalg.norm(mean), 1e-30)
        return words[int(np.argmin(vecs @ mean))]

    def evaluate_word_pairs(self, path, case_insensitive=True):
        """(pearson, spearman, oov_percent) against a wordsim353 / SimLex-999 style file; see
        seqkern.models.evaluation."""
        return evaluation.evaluate_word_pairs(self, path, case_insensitive=case_insensitive)

    def evaluate_word_analogies(self, path, restrict_vocab=300_000, case_insensitive=True):
        """(accuracy, sections) on a questions-words.txt style file; see
        seqkern.models.evaluation."""
        return evaluation.evaluate_word_analogies(self, path, restrict_vocab, case_insensitive)

    # -- word2vec.c / gensim files ------------------------------------------------------------
    def save_word2vec_format(self, path, binary=False):
        """The word2vec.c format: a "V dim" header line, then one word and its values per line
        (text), or the word, a space and dim little-endian float32 values (binary)."""
        V, dim = self.vectors.shape
        with open(path, "wb") as f:
            f.write(f"{V} {dim}\n".encode())
            for word, vec in zip(self.index_to_key, self.vectors):
                if binary:
                    f.write(word.encode() + b" " + vec.astype("<f4").tobytes() + b"\n")
                else:
                    f.write((word + " " + " ".join(repr(float(v)) for v in vec) + "\n").encode())

    @classmethod
    def load_word2vec_format(cls, path, binary=False):
        """Reads what save_word2vec_format, word2vec.c or gensim write."""
        with open(path, "rb") as f:
            header = f.readline().split()
            try:
                V, dim = int(header[0]), int(header[1])
            except (IndexError, ValueError):
                raise ValueError(f"{path}: expected a 'vocab_size vector_size' header line, "
                                 f"got {b' '.join(header)[:80]!r}") from None
            keys, vectors = [], np.empty((V, dim), np.float32)
            for i in range(V):
                if binary:
                    word = bytearray()
                    while (ch := f.read(1)) != b" ":
                        if not ch:
                            raise ValueError(f"{path}: ends inside entry {i} of {V}")
                        if ch != b"\n":  # word2vec.c puts a newline after each vector
                            word += ch
                    raw = f.read(4 * dim)
                    if len(raw) != 4 * dim:
                        raise ValueError(f"{path}: ends inside the vector of entry {i} of {V}")
                    vectors[i] = np.frombuffer(raw, "<f4")
                    keys.append(word.decode("utf-8", errors="replace"))
                else:
                    parts = f.readline().rstrip(b"\n").split(b" ")
                    parts = [p for p in parts if p]
                    if len(parts) != dim + 1:
                        raise ValueError(f"{path}: line {i + 2}: expected a word and {dim} "
                                         f"values, got {len(parts)} fields")
                    keys.append(parts[0].decode("utf-8", errors="replace"))
                    vectors[i] = np.array(parts[1:], dtype=np.float32)
        return cls(keys, vectors)
