"""Models built on seqkern's kernels."""
from seqkern.models.count_vectors import PPMIVectors
from seqkern.models.ctc_tagger import CTCTagger
from seqkern.models.keyed_vectors import KeyedVectors
from seqkern.models.language_model import RNNLM, BetterRNNLM
from seqkern.models.line_sentences import LineSentence, PathLineSentences
from seqkern.models.seq2seq import AttentionSeq2Seq, PeekySeq2Seq, Seq2Seq
from seqkern.models.word2vec import Word2Vec

__all__ = ["AttentionSeq2Seq", "BetterRNNLM", "CTCTagger", "PeekySeq2Seq", "Seq2Seq", "KeyedVectors",
           "LineSentence", "PathLineSentences", "PPMIVectors", "RNNLM", "Word2Vec"]
