"""Embedding: rows of a weight matrix picked by token id (the book's TimeEmbedding)."""
from __future__ import annotations

import numpy as np

from seqkern._checks import check_count, float_dtype, random_generator
from seqkern._ops import embedding, embedding_backward
from seqkern.nn.module import Layer, on_cache_lines


class Embedding(Layer):
    """weight (num_embeddings, embedding_dim), drawn from N(0, 1) as in torch. padding_idx: that
    row starts at zero and gets no gradient, as in torch.

        y = emb.forward(ids)      # ids (...) ints -> y (..., embedding_dim)
        emb.backward(dy)          # adds into grads["weight"] (a scatter-add in C++)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32,
                 seed=None):
        for name, v in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            check_count(name, v)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx: expected a value in -{num_embeddings}.."
                                 f"{num_embeddings - 1}, got {padding_idx}")
            padding_idx = int(padding_idx) % num_embeddings
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        dtype = float_dtype(dtype)
        self.padding_idx = padding_idx
        weight = random_generator(seed).standard_normal((num_embeddings, embedding_dim))
        weight = weight.astype(dtype)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.params = {"weight": on_cache_lines(weight)}  # a tied Linear's weight too
        self.grads = {"weight": np.zeros_like(self.params["weight"])}
        self._ids = None

    def forward(self, ids):
        ids = np.asarray(ids)
        y = embedding(self.params["weight"], ids)
        self._ids = ids if self.training else None
        return y

    def backward(self, dy):
        """Adds dy's rows into the gradient rows of their ids; ids have no gradient (None)."""
        if self._ids is None:
            raise RuntimeError("backward: call forward in training mode first")
        embedding_backward(self._ids, dy, self.grads["weight"], self.padding_idx)
        return None

    __call__ = forward

    def __repr__(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{pad})"
