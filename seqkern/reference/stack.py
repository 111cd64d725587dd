"""NumPy twin of seqkern.recurrent_stack / recurrent_stack_backward: layers and directions
routed through the one-layer twins, exactly as torch.nn.LSTM/GRU/RNN define them."""
import numpy as np

from seqkern._checks import Saved, check_precision, check_saved, stack_args, stack_incoming_grads
from seqkern.reference.gru import gru, gru_backward
from seqkern.reference.lstm import lstm, lstm_backward
from seqkern.reference.rnn import rnn, rnn_backward


def reverse_steps(a, lengths):
    """a (T, B, n) with each sequence's first lengths[b] steps in reverse order; zero past them.
    Applying it twice gives a back (up to the zeroed padding)."""
    T, B = a.shape[:2]
    out = np.zeros_like(a)
    for b in range(B):
        n = T if lengths is None else int(lengths[b])
        out[:n, b] = a[n - 1::-1, b]
    return out


def _layer(a, x, k, training, precision):
    """One layer-direction: (y, h_n, c_n or None[, saved])."""
    (*w, w_hr), lengths = a.weights[k], a.lengths
    if a.cell == "lstm":
        return lstm(x, a.h0[k], a.c0[k], *w, lengths=lengths, training=training, w_hr=w_hr,
                    precision=precision)
    if a.cell.startswith("gru"):
        y, h, *saved = gru(x, a.h0[k], *w, lengths=lengths, training=training,
                           reset_after=a.cell == "gru", precision=precision)
    else:
        y, h, *saved = rnn(x, a.h0[k], *w, nonlinearity=a.cell[4:], lengths=lengths,
                           training=training, precision=precision)
    return (y, h, None, *saved)


def _layer_backward(a, saved, dy, dh_n, dc_n):
    if a.cell == "lstm":
        return lstm_backward(saved, dy, dh_n, dc_n)
    return (gru_backward if a.cell.startswith("gru") else rnn_backward)(saved, dy, dh_n)


def recurrent_stack(cell, x, weights, h0=None, c0=None, lengths=None, bidirectional=False,
                    dropout_masks=None, training=False, precision="float32"):
    a = stack_args(cell, x, weights, h0, c0, lengths, bidirectional, dropout_masks)
    check_precision(precision, training, a.x.dtype)
    h_n, c_n = np.empty_like(a.h0), None if a.c0 is None else np.empty_like(a.c0)
    layer_in, layers = a.x, []
    for l in range(a.L):
        ys = []
        for d in range(a.D):
            k = l * a.D + d
            x_k = reverse_steps(layer_in, a.lengths) if d else layer_in
            y, h_n[k], c, *saved = _layer(a, x_k, k, training, precision)
            if c is not None:
                c_n[k] = c
            ys.append(reverse_steps(y, a.lengths) if d else y)
            layers.append(saved[0] if training else None)
        layer_in = np.concatenate(ys, axis=2)
        if a.masks is not None and l < a.L - 1:
            layer_in = layer_in * a.masks[l]
    outs = (layer_in, h_n, c_n) if cell == "lstm" else (layer_in, h_n)
    if not training:
        return outs
    return (*outs, Saved("recurrent_stack", "reference", a, layers=layers))


def recurrent_stack_backward(saved, dy=None, dh_n=None, dc_n=None):
    check_saved(saved, "recurrent_stack", "reference")
    a = saved.args
    dy, dh_n, dc_n = stack_incoming_grads(a, dy, dh_n, dc_n)
    S = a.S
    dout = np.zeros((a.T, a.B, a.D * S), a.x.dtype) if dy is None else dy
    dh0, dc0 = np.empty_like(a.h0), None if a.c0 is None else np.empty_like(a.c0)
    grads = [None] * (a.L * a.D)
    for l in reversed(range(a.L)):
        din = 0
        for d in range(a.D):
            k = l * a.D + d
            dy_k = dout[:, :, d * S:(d + 1) * S]
            g = _layer_backward(a, saved.layers[k], reverse_steps(dy_k, a.lengths) if d else dy_k,
                                None if dh_n is None else dh_n[k],
                                None if dc_n is None else dc_n[k])
            din = din + (reverse_steps(g["x"], a.lengths) if d else g["x"])
            dh0[k] = g["h0"]
            if a.cell == "lstm":
                dc0[k] = g["c0"]
            grads[k] = (g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"])
            if a.projected:
                grads[k] += (g["w_hr"],)
        if l > 0 and a.masks is not None:
            din = din * a.masks[l - 1]
        dout = din
    out = {"x": dout, "h0": dh0, "weights": grads}
    if a.cell == "lstm":
        out["c0"] = dc0
    return out
