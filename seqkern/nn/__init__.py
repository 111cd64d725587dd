"""Layers with params, grads, forward and backward (the book's interface), torch's names."""
from seqkern.nn.attention import Attention
from seqkern.nn.dropout import Dropout
from seqkern.nn.embedding import Embedding
from seqkern.nn.grads import clip_grads
from seqkern.nn.linear import Linear
from seqkern.nn.loss import SoftmaxCrossEntropy
from seqkern.nn.module import Layer, Model
from seqkern.nn.recurrent import GRU, LSTM, RNN, book_lstm_weights

__all__ = ["Attention", "Dropout", "Embedding", "GRU", "LSTM", "Layer", "Linear", "Model", "RNN",
           "SoftmaxCrossEntropy", "book_lstm_weights", "clip_grads"]
