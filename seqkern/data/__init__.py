"""Data for the language models: vocabularies, token streams, TBPTT batches, built-in text."""
from seqkern.data.batches import TBPTTBatches
from seqkern.data.corpora import split, stdlib_source
from seqkern.data.vocabulary import EOS, UNK, Vocabulary

__all__ = ["EOS", "TBPTTBatches", "UNK", "Vocabulary", "split", "stdlib_source"]
