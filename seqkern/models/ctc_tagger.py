"""CTCTagger: Linear (or Embedding) input -> bidirectional LSTM stack -> Linear -> log-softmax
-> CTC, book-style (forward/backward, params/grads), time-major as the kernels.

    model = CTCTagger(input_size=16, num_classes=11, hidden_size=128, num_layers=2)
    loss = model.forward(x, input_lengths, targets, target_lengths)   # x (T, B, F)
    model.backward()
    model.decode(x, input_lengths)            # greedy label lists; beam_width > 1: beam search
"""
from __future__ import annotations

import numpy as np

from seqkern import checkpoint
from seqkern._checks import base_seed, check_count, check_integer, float_dtype
from seqkern._ops import ctc_loss, ctc_loss_backward
from seqkern.ctc_decoding import ctc_beam_search, ctc_greedy_decode
from seqkern.nn import LSTM, Embedding, Linear, Model
from seqkern.nn.module import serialized
from seqkern.reference.cross_entropy import log_softmax


class CTCTagger(Model, checkpoint.Saveable):
    """input_size features per frame through a Linear layer (or, with embedding=True, token
    ids < input_size through an Embedding) to hidden_size, then a bidirectional LSTM of
    num_layers over each sequence's own length, and a Linear layer to num_classes (class `blank`
    is CTC's blank)."""

    vocab = None

    def __init__(self, input_size, num_classes, hidden_size=128, num_layers=2, embedding=False,
                 dropout=0.0, blank=0, dtype=np.float32, seed=0):
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            check_count(name, v)  # before int() below, which truncated 2.5 and raised on inf
        check_count("num_classes", num_classes, least=2)  # the blank and at least one label
        check_integer("blank", blank)
        if not 0 <= blank < num_classes:
            raise ValueError(f"blank: expected a class in 0..{num_classes - 1}, got {blank}")
        self.config = dict(input_size=int(input_size), num_classes=int(num_classes),
                           hidden_size=int(hidden_size), num_layers=int(num_layers),
                           embedding=bool(embedding), dropout=float(dropout), blank=int(blank),
                           dtype=float_dtype(dtype).name)
        self.blank = int(blank)
        H = hidden_size
        seed = base_seed(seed)  # seed=None (or a Generator) once ended in None + 1
        self.input = (Embedding(input_size, H, dtype=dtype, seed=seed) if embedding
                      else Linear(input_size, H, dtype=dtype, seed=seed))
        self.lstm = LSTM(H, H, num_layers, dropout=dropout, bidirectional=True, dtype=dtype,
                         seed=seed + 1)
        self.out = Linear(2 * H, num_classes, dtype=dtype, seed=seed + 2)
        self._saved = None

    def log_probs(self, x, input_lengths):
        """(T, B, num_classes) log-probabilities of each frame's class."""
        h = self.input.forward(x)
        y, _ = self.lstm.forward(h, lengths=input_lengths)
        return log_softmax(self.out.forward(y))

    def forward(self, x, input_lengths, targets, target_lengths):
        """Mean CTC loss (each sequence's over its target length, then the batch mean)."""
        lp = self.log_probs(x, input_lengths)
        loss, self._saved = ctc_loss(lp, targets, input_lengths, target_lengths, self.blank,
                                     training=True)
        return float(loss)

    def backward(self, dout=1.0):
        if self._saved is None:
            raise RuntimeError("backward: call forward first")
        g = ctc_loss_backward(self._saved, dout)["log_probs"]
        lp = self._saved.args.log_probs
        dlogits = g - np.exp(lp) * g.sum(axis=-1, keepdims=True)  # through the log-softmax
        dx, _ = self.lstm.backward(self.out.backward(dlogits))
        self.input.backward(dx)

    @serialized
    def decode(self, x, input_lengths, beam_width=1):
        """Label lists: best path (beam_width=1) or prefix beam search."""
        with self.evaluating():
            lp = self.log_probs(x, input_lengths)
        if beam_width == 1:
            return ctc_greedy_decode(lp, input_lengths, self.blank)
        return ctc_beam_search(lp, input_lengths, beam_width, self.blank)[0]

    def __repr__(self):
        c = self.config
        return (f"{type(self).__name__}(input_size={c['input_size']}, "
                f"num_classes={c['num_classes']}, hidden_size={c['hidden_size']}, "
                f"num_layers={c['num_layers']}, embedding={c['embedding']}, blank={c['blank']})")
