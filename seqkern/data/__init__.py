"""Data for the language models: vocabularies, token streams, TBPTT batches, built-in text."""
from seqkern.data.batches import TBPTTBatches
from seqkern.data.corpora import split, stdlib_source
from seqkern.data.seq2seq import (
    PAD, START, Seq2SeqData, addition_pairs, date_pairs, encode_sources, load_pairs,
)
from seqkern.data.spoken_digits import pad_batch, spoken_digits
from seqkern.data.vocabulary import EOS, UNK, Vocabulary

__all__ = ["EOS", "PAD", "START", "Seq2SeqData", "TBPTTBatches", "UNK", "Vocabulary",
           "addition_pairs", "date_pairs", "encode_sources", "load_pairs", "pad_batch", "split",
           "spoken_digits",
           "stdlib_source"]
