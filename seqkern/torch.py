"""PyTorch interop: autograd Functions and drop-in nn.Modules backed by seqkern's CPU kernels.

    import seqkern.torch as skt
    lstm = skt.LSTM(256, 512, num_layers=2, bidirectional=True)   # like torch.nn.LSTM
    out, (h_n, c_n) = lstm(x)                                       # x a tensor or PackedSequence
    out.sum().backward()

Importing this module needs torch; the rest of seqkern never does. seqkern is not built against
torch: tensors cross as NumPy arrays that share their memory (CPU float32/float64 only).
"""
from __future__ import annotations

import math

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqkern._ops import recurrent_stack as _stack
from seqkern._ops import recurrent_stack_backward as _stack_backward

_FLOATS = (torch.float32, torch.float64)


def _np(t):
    """A tensor's data as a NumPy array (no copy for contiguous CPU tensors); None stays None."""
    if t is None:
        return None
    if t.device.type != "cpu" or t.dtype not in _FLOATS:
        raise TypeError(f"seqkern.torch: expected CPU float32/float64 tensors, got {t.dtype} on {t.device}")
    return t.detach().numpy()


class RecurrentStackFunction(torch.autograd.Function):
    """Autograd Function over seqkern.recurrent_stack. Inputs: cell, bidirectional, x, h0, c0
    (None unless lstm), lengths (or None), dropout_masks (or None), present (which items of a
    weight tuple (w_ih, w_hh, b_ih, b_hh[, w_hr]) are given), then the given weights flattened
    layer-direction by layer-direction. Outputs y, h_n and, for lstm, c_n."""

    @staticmethod
    def forward(ctx, cell, bidirectional, x, h0, c0, lengths, masks, present, *flat):
        n = sum(present)
        weights = []
        for i in range(0, len(flat), n):
            given = iter(flat[i:i + n])
            weights.append(tuple(_np(next(given)) if p else None for p in present))
        training = any(ctx.needs_input_grad)
        out = _stack(cell, _np(x), weights, _np(h0), _np(c0),
                     None if lengths is None else lengths.numpy(), bidirectional, _np(masks),
                     training=training)
        if training:
            *out, ctx.saved = out
        ctx.present, ctx.lstm = present, cell == "lstm"
        return tuple(torch.from_numpy(o) for o in out)

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n=None):
        g = _stack_backward(ctx.saved, _np(dy), _np(dh_n), _np(dc_n))
        flat = [torch.from_numpy(w) for ws in g["weights"]
                for w, p in zip(ws, ctx.present) if p]
        dc0 = torch.from_numpy(g["c0"]) if ctx.lstm else None
        return (None, None, torch.from_numpy(g["x"]), torch.from_numpy(g["h0"]), dc0, None, None,
                None, *flat)


def recurrent_stack(cell, x, weights, h0=None, c0=None, lengths=None, bidirectional=False,
                    dropout_masks=None):
    """seqkern.recurrent_stack on tensors, differentiable by autograd. weights: a list of
    (w_ih, w_hh, b_ih, b_hh[, w_hr]) tensors per layer-direction (biases None when absent)."""
    present = tuple(w is not None for w in weights[0])
    flat = [w for ws in weights for w in ws if w is not None]
    D = 2 if bidirectional else 1
    L = len(weights) // D
    w_hh = weights[0][1]
    if h0 is None:
        h0 = x.new_zeros(L * D, x.shape[1], w_hh.shape[1])
    if cell == "lstm" and c0 is None:
        c0 = x.new_zeros(L * D, x.shape[1], w_hh.shape[0] // 4)
    if lengths is not None:
        lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
    return RecurrentStackFunction.apply(cell, bidirectional, x, h0, c0, lengths, dropout_masks,
                                        present, *flat)


class _Recurrent(torch.nn.Module):
    """torch.nn.LSTM/GRU/RNN's constructor, parameters, inputs and outputs; seqkern inside."""

    gates = 1

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"device: seqkern.torch modules run on the CPU, got {device}")
        if proj_size and cell != "lstm":
            raise ValueError("proj_size: only LSTM has projections")
        if not 0 <= proj_size < hidden_size:
            raise ValueError(f"proj_size: must be in [0, hidden_size = {hidden_size}), got {proj_size}")
        self.cell = cell
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        D, G, H, S = 2 if bidirectional else 1, self.gates, hidden_size, proj_size or hidden_size
        for l in range(num_layers):
            for d in range(D):
                sfx = f"_l{l}" + ("_reverse" if d else "")
                I = input_size if l == 0 else D * S
                shapes = {"weight_ih": (G * H, I), "weight_hh": (G * H, S)}
                if bias:
                    shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
                if proj_size:
                    shapes.update(weight_hr=(S, H))
                for name, shape in shapes.items():
                    self.register_parameter(name + sfx, torch.nn.Parameter(torch.empty(shape, dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self):
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            torch.nn.init.uniform_(p, -k, k)

    def _weights(self):
        """(w_ih, w_hh, b_ih, b_hh[, w_hr]) per layer-direction; absent biases are None."""
        D = 2 if self.bidirectional else 1
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")[:5 if self.proj_size else 4]
        out = []
        for l in range(self.num_layers):
            for d in range(D):
                sfx = f"_l{l}" + ("_reverse" if d else "")
                out.append(tuple(getattr(self, n + sfx, None) for n in names))
        return out

    def forward(self, input, hx=None):
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            x, lengths = pad_packed_sequence(input)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
        h0, c0 = self._split(hx, unbatched)
        D = 2 if self.bidirectional else 1
        masks = None
        if self.training and self.dropout > 0 and self.num_layers > 1:
            shape = (self.num_layers - 1, x.shape[0], x.shape[1], D * (self.proj_size or self.hidden_size))
            masks = (torch.rand(shape, dtype=x.dtype) >= self.dropout).to(x.dtype) / (1 - self.dropout)
        y, *finals = recurrent_stack(self.cell, x.contiguous(), self._weights(), h0, c0, lengths,
                                     self.bidirectional, masks)
        if unbatched:
            y, finals = y.squeeze(1), [f.squeeze(1) for f in finals]
        if packed:
            y = pack_padded_sequence(y, lengths, enforce_sorted=False)
        elif self.batch_first:
            y = y.transpose(0, 1)
        return y, self._join(finals)

    def _split(self, hx, unbatched):
        if hx is not None and unbatched:
            hx = hx.unsqueeze(1)
        return hx, None

    def _join(self, finals):
        return finals[0]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("proj_size", 0)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


class LSTM(_Recurrent):
    """Drop-in torch.nn.LSTM (proj_size included) on seqkern's kernels."""

    gates = 4

    def __init__(self, *args, **kwargs):
        super().__init__("lstm", *args, **kwargs)

    def _split(self, hx, unbatched):
        if hx is None:
            return None, None
        h0, c0 = hx
        return (h0.unsqueeze(1), c0.unsqueeze(1)) if unbatched else (h0, c0)

    def _join(self, finals):
        return tuple(finals)


class GRU(_Recurrent):
    """Drop-in torch.nn.GRU on seqkern's kernels."""

    gates = 3

    def __init__(self, *args, **kwargs):
        super().__init__("gru", *args, **kwargs)


class RNN(_Recurrent):
    """Drop-in torch.nn.RNN on seqkern's kernels; nonlinearity "tanh" or "relu"."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", *args, **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__("rnn_" + nonlinearity, input_size, hidden_size, num_layers, *args, **kwargs)
