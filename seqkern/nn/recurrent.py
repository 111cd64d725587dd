"""Recurrent layers: LSTM, GRU, RNN with torch.nn's constructor arguments and parameter names,
and the book's layer interface (params, grads, forward, backward).

    lstm = seqkern.nn.LSTM(input_size, hidden_size, num_layers=2, bidirectional=True)
    y, (h_n, c_n) = lstm.forward(x, lengths=lengths)     # x (T, B, I), or (B, T, I) batch_first
    dx, (dh0, dc0) = lstm.backward(dy)                    # grads accumulate in lstm.grads

The whole stack runs in one C++ call (seqkern.recurrent_stack).
"""
from __future__ import annotations

import numpy as np

from seqkern._checks import (as_float_array, check_count, check_memory, check_precision,
                             float_dtype, random_generator)
from seqkern._ops import prepack_weights, recurrent_stack, recurrent_stack_backward, swap01
from seqkern.nn.module import Layer

# Parameter names in the order of a stack weight tuple (w_ih, w_hh, b_ih, b_hh, w_hr).
_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


class Recurrent(Layer):
    """What LSTM, GRU and RNN share. Subclasses set the gate count and the stack cell."""

    gates = 1
    proj_size = 0  # LSTM only: width of h after the projection, 0 for none
    # Inference state, as class defaults so that layers pickled before these existed load.
    precision = "float32"  # of inference; eval(precision=...) sets it
    _prepacked = None      # eval mode, float32: the weights packed (prepack_weights)

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, stateful=False, dtype=np.float32, seed=None):
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            check_count(name, v)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.dtype = float_dtype(dtype)
        self._check_size(input_size, hidden_size, num_layers, bias, bidirectional)
        self.cell = cell
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.stateful = bidirectional, stateful
        self.training = True
        self._rng = random_generator(seed)
        # the parameter names of each layer-direction in stack order: made once (formatting
        # them at every call took 1.9 us of a 17 us one-step call)
        self._stack_names = [self._names(l, d) for l, d in self._layer_dirs()]
        self.params = self._init_params()
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = None    # the carried state in stateful mode
        self._saved = None
        self._y_shape = None        # y's shape in the caller's layout, for backward's dy

    def _check_size(self, I, H, L, bias, bidirectional):
        """The parameters and their gradients, counted before the first is made: a layer's
        arrays each fit, but num_layers=2**62 of them would not."""
        G, S, D = self.gates, self.proj_size or H, 2 if bidirectional else 1
        per_layer = G * H * (S + 2 * bool(bias)) + S * H * (self.proj_size > 0)
        values = D * (L * per_layer + G * H * (I + (L - 1) * D * S))
        check_memory("the parameters and their gradients", 2 * values * self.dtype.itemsize)

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def state_size(self):
        """Width of h and of each direction's output."""
        return self.proj_size or self.hidden_size

    def _names(self, l, d):
        """Parameter names of one layer-direction in stack tuple order, None where absent."""
        suffix = f"_l{l}" + ("_reverse" if d else "")
        present = (True, True, self.bias, self.bias, self.proj_size > 0)
        names = [p + suffix if there else None for p, there in zip(_PARAMS, present)]
        return names if self.proj_size else names[:4]

    def _init_params(self):
        """torch's default: every parameter uniform in +-1/sqrt(hidden_size), in torch's order."""
        G, H, S, D = self.gates, self.hidden_size, self.state_size, self.num_directions
        k = 1.0 / np.sqrt(H)
        params = {}
        for (l, _), names in zip(self._layer_dirs(), self._stack_names):
            I = self.input_size if l == 0 else D * S
            shapes = [(G * H, I), (G * H, S), (G * H,), (G * H,), (S, H)]
            for name, shape in zip(names, shapes):
                if name is not None:
                    params[name] = self._rng.uniform(-k, k, shape).astype(self.dtype)
        return params

    def _weights(self):
        """The stack's weight list: (w_ih, w_hh, b_ih, b_hh[, w_hr]) per layer-direction."""
        params = self.params
        return [tuple(None if n is None else params[n] for n in names)
                for names in self._stack_names]

    # -- the book's interface -------------------------------------------------------------
    def forward(self, x, state=None, lengths=None):
        """x (T, B, I), or (B, T, I) when batch_first; state as returned (None: zeros, or the
        carried state when stateful). Returns (y, state): y (T, B, D*S) (or batch first), S the
        state size (proj_size or hidden_size)."""
        x = as_float_array("x", x, self.dtype, like="the layer's weights")
        self._saved = None
        self._check_input(x)
        if self.batch_first:
            x = swap01(x)
        carried = state is None and self.stateful
        if carried:
            state = self.state
        h0, c0 = self._split_state("state", state)
        if carried and h0 is not None and h0.shape[1] != x.shape[1]:
            raise ValueError(f"x: a batch of {x.shape[1]}, but this stateful layer carries the "
                             f"state of a batch of {h0.shape[1]}: call reset_state() before a "
                             "batch of another size")
        masks = self._dropout_masks(x.shape) if self.training else None
        weights = self._weights()
        if self._prepacked is not None and not _packed_from(weights, self._prepacked):
            self._pack(None)  # weight matrices replaced since eval(): pack the new ones
        y, *finals = recurrent_stack(self.cell, x, weights, h0, c0, lengths, self.bidirectional,
                                     masks, training=self.training,
                                     prepacked=None if self.training else self._prepacked)
        if self.training:
            *finals, self._saved = finals
            self._y_shape = self._batch_order(y).shape
        final = self._join_state(*finals)
        if self.stateful:
            self.state = final    # carried to the next chunk; its gradient is cut there
        return self._batch_order(y), final

    def backward(self, dy=None, dstate=None):
        """Gradients of the last training forward. dy like y, dstate like its state (either may
        be None). Adds the weight gradients to self.grads; returns (dx, dstate0)."""
        if self._saved is None:
            raise RuntimeError("backward: call forward in training mode first")
        if dy is not None:
            dy = as_float_array("dy", dy, self.dtype, like="the layer's weights")
            if dy.shape != self._y_shape:
                raise ValueError(f"dy: expected the shape of y, {self._y_shape}, got {dy.shape}")
            if self.batch_first:
                dy = swap01(dy)
        dh_n, dc_n = self._split_state("dstate", dstate)
        g = recurrent_stack_backward(self._saved, dy, dh_n, dc_n)
        for names, ws in zip(self._stack_names, g["weights"]):
            for name, dw in zip(names, ws):
                if name is not None:
                    self.grads[name] += dw
        return self._batch_order(g["x"]), self._join_state(g["h0"], g.get("c0"))

    __call__ = forward

    def _check_input(self, x):
        """x's shape in the caller's layout, checked here so that a message names that layout
        and input_size (the stack's own checks see the time-major copy, and blame w_ih)."""
        if x.ndim != 3 or 0 in x.shape or x.shape[2] != self.input_size:
            layout = "(batch, T, input_size)" if self.batch_first else "(T, batch, input_size)"
            raise ValueError(f"x: expected shape {layout} with input_size = {self.input_size}, "
                             f"each at least 1, got {x.shape}")

    def _layer_dirs(self):
        return [(l, d) for l in range(self.num_layers) for d in range(self.num_directions)]

    def _dropout_masks(self, x_shape):
        if self.dropout == 0.0 or self.num_layers == 1 or len(x_shape) != 3:
            return None
        T, B = x_shape[:2]
        shape = (self.num_layers - 1, T, B, self.num_directions * self.state_size)
        keep = self._rng.random(shape) >= self.dropout
        return keep.astype(self.dtype) / self.dtype.type(1.0 - self.dropout)

    def _split_state(self, name, state):
        return state, None

    def _join_state(self, h, c=None):
        return h

    def _batch_order(self, a):
        return swap01(a) if self.batch_first else a

    # -- training helpers -----------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (mode True, always float32), or inference at the current precision."""
        super().train(mode)
        if mode:
            self._pack("float32")
        else:
            self._saved = None
        return self

    def _pack(self, precision):
        """Eval mode, float32 layers: packs the weight arrays at `precision` (None: the current
        one). Float32 weights that are not C-contiguous
        float32 arrays (assigned to params by hand) are left to the kernels to pack at each
        call; bfloat16 needs them packed, and prepack_weights says what is wrong."""
        precision = self.precision if precision is None else precision
        check_precision(precision, False, self.dtype)
        packed = None
        if not self.training and self.dtype == np.float32:
            weights = self._weights()
            if precision == "bfloat16" or all(
                    w is None or (type(w) is np.ndarray and w.dtype == np.float32
                                  and w.flags.c_contiguous) for ws in weights for w in ws):
                packed = prepack_weights(self.cell, weights, self.bidirectional, precision)
        self.precision, self._prepacked = precision, packed

    def __getstate__(self):
        """Copies and pickles leave out the packed weights (a C++ object); __setstate__ packs
        the copy's own in eval mode."""
        state = self.__dict__.copy()
        state["_prepacked"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if not self.training:
            self._pack(None)

    def reset_state(self):
        """Forget the carried state (stateful mode): the next forward starts from zeros."""
        self.state = None

    def __repr__(self):
        opts = [f"{self.input_size}, {self.hidden_size}"]
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("dropout", 0.0), ("bidirectional", False), ("proj_size", 0),
                              ("stateful", False), ("reset_after", True),
                              ("nonlinearity", "tanh")):
            if getattr(self, name, default) != default:  # (the cells' own options: GRU, RNN)
                opts.append(f"{name}={getattr(self, name)!r}")
        return f"{type(self).__name__}({', '.join(opts)})"


class LSTM(Recurrent):
    """torch.nn.LSTM's arguments; state is (h, c): h (num_layers*D, B, S), c (num_layers*D, B, H).

    proj_size: when > 0, h = W_hr (o * tanh(c)) has this width S < hidden_size (parameters
    weight_hr_l{l}[_reverse], as in torch); otherwise S = hidden_size.
    forget_bias: when given, the forget-gate biases start at this value (split as b_ih = value,
    b_hh = 0) instead of torch's uniform init; 1.0 is the common choice."""

    gates = 4

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, stateful=False, forget_bias=None,
                 dtype=np.float32, seed=None):
        if not isinstance(proj_size, (int, np.integer)) or proj_size < 0:
            raise ValueError(f"proj_size: expected a non-negative integer, got {proj_size!r}")
        self.proj_size = int(proj_size)
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, stateful, dtype, seed)
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size: must be smaller than hidden_size = {hidden_size}, "
                             f"got {proj_size}")
        if forget_bias is not None:
            if not bias:
                raise ValueError("forget_bias: the layer has no biases (bias=False)")
            H = hidden_size
            for name, p in self.params.items():
                if name.startswith("bias_"):
                    p[H:2 * H] = forget_bias if name.startswith("bias_ih") else 0.0

    def _split_state(self, name, state):
        if state is None:
            return None, None
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"{name}: expected a tuple (h, c) for LSTM, got {type(state).__name__}")
        return state

    def _join_state(self, h, c=None):
        return (h, c)


class GRU(Recurrent):
    """torch.nn.GRU's arguments (gate order r, z, n); state is h. reset_after=True (default) is
    PyTorch/cuDNN's n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); False is the original
    n = tanh(W_in x + b_in + W_hn (r*h) + b_hn) of Cho et al. 2014."""

    gates = 3

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, stateful=False, reset_after=True,
                 dtype=np.float32, seed=None):
        self.reset_after = bool(reset_after)
        super().__init__("gru" if reset_after else "gru_reset_before", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, stateful, dtype, seed)


class RNN(Recurrent):
    """torch.nn.RNN's arguments, nonlinearity "tanh" or "relu"; state is h."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, stateful=False,
                 dtype=np.float32, seed=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__("rnn_" + nonlinearity, input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, stateful, dtype, seed)


def _packed_from(weights, packed):
    """Whether `packed` (a _core.PackedStack) holds these weight matrices, the same array objects
    (w_ih, w_hh, w_hr or None) entry by entry; the biases are not packed."""
    return all(w[0] is p[0] and w[1] is p[1] and (w[4] if len(w) == 5 else None) is p[2]
               for w, p in zip(weights, packed.packed_from))


def book_lstm_weights(Wx, Wh, b):
    """The book's LSTM weights (Wx (D, 4H), Wh (H, 4H), b (4H,), gate blocks f, g, i, o along
    the columns) as (w_ih (4H, D), w_hh (4H, H), b_ih (4H,), b_hh (4H,)) in torch's layout and
    gate order i, f, g, o (b_hh zeros), for sk.lstm or a layer's load_state_dict."""
    Wx, Wh, b = np.asarray(Wx), np.asarray(Wh), np.asarray(b)
    if Wx.ndim != 2 or Wx.shape[1] % 4:
        raise ValueError(f"Wx: expected shape (input_size, 4*hidden), got {Wx.shape}")
    H = Wx.shape[1] // 4
    if Wh.shape != (H, 4 * H):
        raise ValueError(f"Wh: expected shape (hidden, 4*hidden) = {(H, 4 * H)}, got {Wh.shape}")
    if b.shape != (4 * H,):
        raise ValueError(f"b: expected shape (4*hidden,) = {(4 * H,)}, got {b.shape}")
    order = np.concatenate([np.arange(2 * H, 3 * H), np.arange(0, H), np.arange(H, 2 * H),
                            np.arange(3 * H, 4 * H)])  # i, f, g, o from f, g, i, o
    return (np.ascontiguousarray(Wx[:, order].T), np.ascontiguousarray(Wh[:, order].T),
            np.ascontiguousarray(b[order]), np.zeros_like(b))
