"""Models built on seqkern's kernels."""
from seqkern.models.count_vectors import PPMIVectors
from seqkern.models.keyed_vectors import KeyedVectors
from seqkern.models.language_model import RNNLM, BetterRNNLM
from seqkern.models.word2vec import Word2Vec

__all__ = ["BetterRNNLM", "KeyedVectors", "PPMIVectors", "RNNLM", "Word2Vec"]
