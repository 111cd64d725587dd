"""Layers with params, grads, forward and backward (the book's interface), torch's names."""
from seqkern.nn.grads import clip_grads
from seqkern.nn.recurrent import GRU, LSTM, RNN

__all__ = ["GRU", "LSTM", "RNN", "clip_grads"]
