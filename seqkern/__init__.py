"""seqkern: fused recurrent kernels (RNN, LSTM, GRU) in C++ with NumPy twins.

    import seqkern as sk
    y, h_n, c_n = sk.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    y, h_n, c_n, saved = sk.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, training=True)
    grads = sk.lstm_backward(saved, dy, dh_n, dc_n)

Shapes, weight layout (PyTorch/cuDNN) and error behaviour: see the README and DESIGN.md.
"""
from seqkern._openblas import kernels_for_this_cpu as _kernels_for_this_cpu

try:
    with _kernels_for_this_cpu():
        from seqkern import _core
except ImportError as e:
    if e.name != "seqkern":  # _core is there but failed to load: that error says why
        raise
    import os as _os  # the source tree, found before the installed package
    _here = _os.path.dirname(_os.path.abspath(__file__))
    raise ImportError(
        f"seqkern: {_here} has no compiled _core. Python found seqkern's source tree before the "
        "installed package: the current folder comes first for `python -c`, `python -m` and "
        "the REPL. Run from another folder (the tests: `pytest`), or install in place with "
        "`pip install -e .`") from e
from seqkern._info import get_num_threads, info, set_num_threads
from seqkern._ops import (
    attention, attention_backward, ctc_loss, ctc_loss_backward, embedding, embedding_backward, gru, gru_backward, lstm, lstm_backward, prepack_weights,
    recurrent_stack, recurrent_stack_backward, rnn, rnn_backward, softmax_cross_entropy,
    softmax_cross_entropy_backward,
)
from seqkern import data, metrics, nn, optim
from seqkern.checkpoint import load
from seqkern.ctc_decoding import ctc_beam_search, ctc_greedy_decode
from seqkern.models import KeyedVectors, PPMIVectors, Word2Vec
from seqkern.trainer import Trainer

__version__ = _core.__version__

__all__ = [
    "KeyedVectors", "PPMIVectors", "Trainer", "Word2Vec", "attention", "attention_backward",
    "ctc_beam_search", "ctc_greedy_decode", "ctc_loss", "ctc_loss_backward", "data", "embedding", "embedding_backward",
    "get_num_threads", "gru", "gru_backward", "info", "load", "lstm", "lstm_backward", "prepack_weights", "recurrent_stack",
    "metrics", "nn", "optim", "recurrent_stack_backward", "rnn", "rnn_backward", "set_num_threads", "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
]
