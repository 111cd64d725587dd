"""Pure NumPy twins of every seqkern kernel: same signatures, readable, float64-capable, slow.

When a kernel and its twin disagree, the twin is the spec until finite differences or torch
prove it wrong.
"""
from seqkern.reference.attention import attention, attention_backward
from seqkern.reference.ctc import ctc_beam_search, ctc_loss, ctc_loss_backward
from seqkern.reference.cross_entropy import (
    softmax_cross_entropy, softmax_cross_entropy_backward,
)
from seqkern.reference.embedding import embedding, embedding_backward
from seqkern.reference.gru import gru, gru_backward
from seqkern.reference.lstm import lstm, lstm_backward
from seqkern.reference.rnn import rnn, rnn_backward
from seqkern.reference.stack import recurrent_stack, recurrent_stack_backward

__all__ = ["attention", "attention_backward", "ctc_beam_search", "ctc_loss", "ctc_loss_backward", "embedding", "embedding_backward", "gru", "gru_backward", "lstm", "lstm_backward",
           "recurrent_stack", "recurrent_stack_backward", "rnn", "rnn_backward",
           "softmax_cross_entropy", "softmax_cross_entropy_backward"]
