"""Layers with params, grads, forward and backward (the book's interface), torch's names."""
from seqkern.nn.dropout import Dropout
from seqkern.nn.embedding import Embedding
from seqkern.nn.grads import clip_grads
from seqkern.nn.linear import Linear
from seqkern.nn.loss import SoftmaxCrossEntropy
from seqkern.nn.module import Layer, Model
from seqkern.nn.recurrent import GRU, LSTM, RNN

__all__ = ["Dropout", "Embedding", "GRU", "LSTM", "Layer", "Linear", "Model", "RNN",
           "SoftmaxCrossEntropy", "clip_grads"]
