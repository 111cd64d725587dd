"""The functional API: check arguments, allocate outputs, call the C++ kernels in seqkern._core.

Shapes (one layer, one direction, time-major; G = 1 rnn, 4 lstm, 3 gru):
    x (T, B, I)    w_ih (G*H, I)    w_hh (G*H, H)    b_ih, b_hh (G*H,) or None
    h0, c0, h_n, c_n (B, H)         y (T, B, H), zero past lengths[b]
    lengths (B,) ints in 1..T or None
"""
from __future__ import annotations

import dataclasses

import numpy as np

from seqkern import _core, _device, _device_ops
from seqkern._checks import (
    GATES, STACK_CELLS, RecurrentArgs, Saved, as_float_array, as_ids, attention_args, bias_grads,
    check_dcontext, check_nonlinearity, check_precision, check_saved, cross_entropy_args,
    ctc_args, ctc_reduce, ctc_scale, incoming_grads, is_device_array, loss_scale, recurrent_args,
    reduce_losses, stack_args, stack_incoming_grads,
)


def _empty_like(a):
    """np.empty_like for the outputs: _core.empty reuses freed memory for large arrays."""
    return _core.empty(a.shape, a.dtype)


def swap01(a):
    """a (A, B, ...) as a new C-contiguous (B, A, ...): between batch-major and time-major arrays,
    copied on seqkern's threads when a is C-contiguous (NumPy's copy of a transposed view runs on
    one: 1.05 ms for (29, 128, 256) floats, 0.21 ms this way)."""
    a = np.asarray(a)
    if a.ndim < 2 or not a.flags.c_contiguous or a.dtype.hasobject:
        return np.ascontiguousarray(a.swapaxes(0, 1))
    out = _core.empty((a.shape[1], a.shape[0], *a.shape[2:]), a.dtype)
    _core.swap_leading_axes(a, out)
    return out


# Which of (w_ih, w_hh, b_ih, b_hh, w_hr) want a gradient: all of them (need_w's default).
_ALL_WEIGHTS = (True,) * 5


def _weight_grads(a, need_x=True, need_h0=True, need_w=_ALL_WEIGHTS):
    """Empty arrays for dx, dh0, dw_ih and dw_hh, each None when not needed (need_w: which of
    the weights want theirs)."""
    return (_empty_like(a.x) if need_x else None, _empty_like(a.h0) if need_h0 else None,
            _empty_like(a.w_ih) if need_w[0] else None, _empty_like(a.w_hh) if need_w[1] else None)


def _one_bias_grad(a, need_w, G):
    """The LSTM's and RNN's bias gradient (both biases get it), or None when neither bias is
    there or wants it."""
    wanted = a.b_ih is not None and need_w[2] or a.b_hh is not None and need_w[3]
    return _core.empty((G * a.H,), a.x.dtype) if wanted else None


def _one_bias_grads(db, need_w):
    """The LSTM's and RNN's one bias gradient as (db_ih, db_hh), each None where not wanted."""
    db_ih = db if need_w[2] else None
    db_hh = (db.copy() if db_ih is not None else db) if need_w[3] else None
    return db_ih, db_hh


def _one_layer_prepacked(cell, a, precision, training):
    """The weights of a one-layer call (checked arguments) as its precision has them: None at
    float32 (the kernels pack at the call), else rounded and packed (a _core.PackedStack)."""
    check_precision(precision, training, a.x.dtype)
    if precision == "float32":
        return None
    return _core.PackedStack(getattr(_core.Cell, cell), 1, a.I, a.H, [a.w_ih], [a.w_hh],
                             [] if a.w_hr is None else [a.w_hr], precision)


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None, training=False, w_hr=None,
         precision="float32"):
    """LSTM over a whole sequence; gate order i, f, g, o (PyTorch/cuDNN).

    w_hr (P, H): torch's proj_size projection, h = w_hr @ (o*tanh(c)); then w_hh is (4H, P) and
    h0, h_n, y carry P values. Returns (y, h_n, c_n), and saved last when training=True.
    precision="bfloat16": inference on weights rounded to bfloat16 (see recurrent_stack).
    A CUDA x (torch or CuPy) runs on the GPU (seqkern._device).
    """
    if is_device_array(x):
        return _device.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, training, w_hr, precision)
    a = recurrent_args("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, w_hr)
    prepacked = _one_layer_prepacked("lstm", a, precision, training)
    return _lstm(*_one_layer_longest_first(a), training, prepacked)


def _lstm(a, order, training, prepacked=None):
    """lstm on checked arguments, the batch in `order` (None: the caller's); prepacked: its
    weights packed once (a _core.PackedStack of one layer), or None."""
    T, B, H = a.T, a.B, a.H
    y = _core.empty((T, B, a.S), a.x.dtype)
    h_n, c_n = _core.empty((B, a.S), a.x.dtype), _core.empty((B, H), a.x.dtype)
    gates = _core.empty((T, B, 4 * H), a.x.dtype) if training else None
    cs = _core.empty((T, B, H), a.x.dtype) if training else None
    _core.lstm_forward(a.x, a.w_ih, a.w_hh, a.b_ih, a.b_hh, a.w_hr, a.lengths, a.h0, a.c0, y, h_n,
                       c_n, gates, cs, prepacked)
    outs = _unsort(y, order), _unsort(h_n, order, axis=0), _unsort(c_n, order, axis=0)
    if not training:
        return outs
    return (*outs, Saved("lstm", "kernel", a, y=y, gates=gates, cs=cs, order=order))


def lstm_backward(saved, dy=None, dh_n=None, dc_n=None):
    """Gradients of a training lstm call: dict with x, h0, c0, w_ih, w_hh, b_ih, b_hh (and w_hr
    when the forward had one)."""
    if getattr(saved, "impl", None) == "cuda":
        return _device.backward("lstm", saved, dy, dh_n, dc_n)
    check_saved(saved, "lstm", "kernel")
    return _lstm_backward(saved, *incoming_grads(saved.args, dy, dh_n, dc_n))


def _lstm_backward(saved, dy, dh_n, dc_n, need_x=True, need_h0=True, need_w=_ALL_WEIGHTS):
    """lstm_backward with checked incoming gradients (need_x=False: x's gradient is None, its
    product skipped; need_h0=False: h0's, and the first step's recurrent product; need_w: which
    of (w_ih, w_hh, b_ih, b_hh, w_hr) want theirs, the others None, their products skipped)."""
    a, order = saved.args, saved.order
    dy, dh_n, dc_n = _sort(dy, order), _sort(dh_n, order, axis=0), _sort(dc_n, order, axis=0)
    dx, dh0, dw_ih, dw_hh = _weight_grads(a, need_x, need_h0, need_w)
    dc0 = _empty_like(a.c0)
    db = _one_bias_grad(a, need_w, 4)
    dw_hr = _empty_like(a.w_hr) if a.w_hr is not None and need_w[4] else None
    _core.lstm_backward(a.x, a.w_ih, a.w_hh, a.w_hr, a.lengths, a.h0, a.c0, saved.y, saved.gates,
                        saved.cs, dy, dh_n, dc_n, dx, dh0, dc0, dw_ih, dw_hh, dw_hr, db)
    g = _grads(a, _unsort(dx, order), _unsort(dh0, order, axis=0), dw_ih, dw_hh,
               *_one_bias_grads(db, need_w), c0=_unsort(dc0, order, axis=0))
    if a.w_hr is not None:
        g["w_hr"] = dw_hr
    return g


def gru(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None, training=False, reset_after=True,
        precision="float32"):
    """GRU over a whole sequence; gate order r, z, n. reset_after=True is PyTorch/cuDNN's
    n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); False is Cho et al.'s
    n = tanh(W_in x + b_in + W_hn (r*h) + b_hn).

    Returns (y, h_n), and saved last when training=True (for gru_backward).
    precision="bfloat16": inference on weights rounded to bfloat16 (see recurrent_stack).
    A CUDA x (torch or CuPy) runs on the GPU (seqkern._device).
    """
    if is_device_array(x):
        return _device.gru(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, training, reset_after,
                           precision)
    a = recurrent_args("gru", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths)
    prepacked = _one_layer_prepacked("gru" if reset_after else "gru_reset_before", a, precision,
                                     training)
    return _gru(*_one_layer_longest_first(a), training, reset_after, prepacked)


def _gru(a, order, training, reset_after, prepacked=None):
    """gru on checked arguments, the batch in `order` (None: the caller's); prepacked as
    _lstm's."""
    T, B, H = a.T, a.B, a.H
    y = _core.empty((T, B, H), a.x.dtype)
    h_n = _core.empty((B, H), a.x.dtype)
    gates = _core.empty((T, B, 3 * H), a.x.dtype) if training else None
    aux = _core.empty((T, B, H), a.x.dtype) if training else None
    _core.gru_forward(bool(reset_after), a.x, a.w_ih, a.w_hh, a.b_ih, a.b_hh, a.lengths, a.h0, y,
                      h_n, gates, aux, prepacked)
    outs = _unsort(y, order), _unsort(h_n, order, axis=0)
    if not training:
        return outs
    return (*outs, Saved("gru", "kernel", a, y=y, gates=gates, aux=aux, reset_after=reset_after,
                         order=order))


def gru_backward(saved, dy=None, dh_n=None):
    """Gradients of a training gru call: dict with x, h0, w_ih, w_hh, b_ih, b_hh."""
    if getattr(saved, "impl", None) == "cuda":
        return _device.backward("gru", saved, dy, dh_n)
    check_saved(saved, "gru", "kernel")
    return _gru_backward(saved, *incoming_grads(saved.args, dy, dh_n)[:2])


def _gru_backward(saved, dy, dh_n, need_x=True, need_h0=True, need_w=_ALL_WEIGHTS):
    """gru_backward with checked incoming gradients (need_x, need_h0, need_w: as
    _lstm_backward's)."""
    a, order = saved.args, saved.order
    dy, dh_n = _sort(dy, order), _sort(dh_n, order, axis=0)
    dx, dh0, dw_ih, dw_hh = _weight_grads(a, need_x, need_h0, need_w)
    db_ih = _core.empty((3 * a.H,), a.x.dtype) if a.b_ih is not None and need_w[2] else None
    db_hh = _core.empty((3 * a.H,), a.x.dtype) if a.b_hh is not None and need_w[3] else None
    _core.gru_backward(saved.reset_after, a.x, a.w_ih, a.w_hh, a.lengths, a.h0, saved.y,
                       saved.gates, saved.aux, dy, dh_n, dx, dh0, dw_ih, dw_hh, db_ih, db_hh)
    return _grads(a, _unsort(dx, order), _unsort(dh0, order, axis=0), dw_ih, dw_hh, db_ih, db_hh)


def rnn(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", lengths=None,
        training=False, precision="float32"):
    """Elman RNN over a whole sequence, h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu.

    Returns (y, h_n), and saved last when training=True (for rnn_backward).
    precision="bfloat16": inference on weights rounded to bfloat16 (see recurrent_stack).
    A CUDA x (torch or CuPy) runs on the GPU (seqkern._device).
    """
    if is_device_array(x):
        return _device.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, lengths, training,
                           precision)
    check_nonlinearity(nonlinearity)
    a = recurrent_args("rnn", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths)
    prepacked = _one_layer_prepacked(f"rnn_{nonlinearity}", a, precision, training)
    return _rnn(*_one_layer_longest_first(a), training, nonlinearity, prepacked)


def _rnn(a, order, training, nonlinearity, prepacked=None):
    """rnn on checked arguments, the batch in `order` (None: the caller's); prepacked as
    _lstm's."""
    y = _core.empty((a.T, a.B, a.H), a.x.dtype)
    h_n = _core.empty((a.B, a.H), a.x.dtype)
    _core.rnn_forward(nonlinearity == "relu", a.x, a.w_ih, a.w_hh, a.b_ih, a.b_hh, a.lengths, a.h0,
                      y, h_n, prepacked)
    outs = _unsort(y, order), _unsort(h_n, order, axis=0)
    if not training:
        return outs
    return (*outs, Saved("rnn", "kernel", a, y=y, nonlinearity=nonlinearity, order=order))


def rnn_backward(saved, dy=None, dh_n=None):
    """Gradients of a training rnn call: dict with x, h0, w_ih, w_hh, b_ih, b_hh."""
    if getattr(saved, "impl", None) == "cuda":
        return _device.backward("rnn", saved, dy, dh_n)
    check_saved(saved, "rnn", "kernel")
    return _rnn_backward(saved, *incoming_grads(saved.args, dy, dh_n)[:2])


def _rnn_backward(saved, dy, dh_n, need_x=True, need_h0=True, need_w=_ALL_WEIGHTS):
    """rnn_backward with checked incoming gradients (need_x, need_h0, need_w: as
    _lstm_backward's)."""
    a, order = saved.args, saved.order
    dy, dh_n = _sort(dy, order), _sort(dh_n, order, axis=0)
    dx, dh0, dw_ih, dw_hh = _weight_grads(a, need_x, need_h0, need_w)
    db = _one_bias_grad(a, need_w, 1)
    _core.rnn_backward(saved.nonlinearity == "relu", a.x, a.w_ih, a.w_hh, a.lengths, a.h0,
                       saved.y, dy, dh_n, dx, dh0, dw_ih, dw_hh, db)
    return _grads(a, _unsort(dx, order), _unsort(dh0, order, axis=0), dw_ih, dw_hh,
                  *_one_bias_grads(db, need_w))


def _grads(a, dx, dh0, dw_ih, dw_hh, db_ih, db_hh, **extra):
    """The gradient dict, with None for biases the forward did not have."""
    db_ih, db_hh = bias_grads(a, db_ih, db_hh)
    return {"x": dx, "h0": dh0, **extra, "w_ih": dw_ih, "w_hh": dw_hh, "b_ih": db_ih, "b_hh": db_hh}


def prepack_weights(cell, weights, bidirectional=False, precision="float32"):
    """A stack's weights (recurrent_stack's list) packed once for the kernels' products, for
    recurrent_stack(..., prepacked=...) inference calls back to back, which then skip the packing
    each call does otherwise; biases are not part of it. precision="float32": the same results
    as calls without it, bit for bit where those pack (the products such calls hand to BLAS,
    one step or a large w_ih's projection of a few rows, run on the packed weights too, equal to
    rounding); "bfloat16": rounded (README: "Low precision"). The weights are copied: after
    changing them in place, pack them again. Calls must pass the arrays packed (or views of
    them): others get a ValueError. So the weight matrices must be C-contiguous float32 arrays,
    which calls pass on as they are (any other array would be a new copy at every call)."""
    check_precision(precision, False, np.float32)
    weights = list(weights)
    try:  # an input of the first layer's width and dtype, for stack_args' checks
        first = np.asarray(weights[0][0])
    except (IndexError, KeyError, TypeError):
        first = np.zeros((1, 1), np.float32)  # stack_args names what is wrong
    dtype = first.dtype if first.dtype in (np.float32, np.float64) else np.float32
    x = np.zeros((1, 1, first.shape[1] if first.ndim == 2 else 1), dtype)
    a = stack_args(cell, x, weights, None, None, None, bidirectional, None)
    if a.x.dtype != np.float32:
        raise TypeError(f"weights: packed weights serve float32 calls, got {a.x.dtype} weights")
    for k, (given, checked) in enumerate(zip(weights, a.weights)):
        w_hr = given[4] if len(given) == 5 else None
        for name, w, c in (("w_ih", given[0], checked[0]), ("w_hh", given[1], checked[1]),
                           ("w_hr", w_hr, checked[4])):
            if c is not w:  # stack_args converted it
                raise TypeError(f"weights[{k}] {name}: prepack_weights takes C-contiguous "
                                f"float32 arrays (np.ascontiguousarray makes one), got "
                                f"{type(w).__name__} {getattr(w, 'shape', '')}")
    return _packed_stack(a, precision)


def _packed_stack(a, precision):
    """The checked stack arguments' weight matrices, packed (_core.PackedStack)."""
    lists = _weight_lists(a.weights)
    return _core.PackedStack(getattr(_core.Cell, a.cell), a.L, a.I, a.H, lists[0], lists[1],
                             lists[4], precision)


def recurrent_stack(cell, x, weights, h0=None, c0=None, lengths=None, bidirectional=False,
                    dropout_masks=None, training=False, precision="float32", prepacked=None):
    """A whole recurrent network (torch.nn.LSTM/GRU/RNN semantics) in one C++ call.

    cell: "lstm", "gru", "gru_reset_before" (gru with reset_after=False), "rnn_tanh" or
    "rnn_relu". With D = 2 when bidirectional, else 1, and S the state width (proj_size P for an
    LSTM with projections, else H):
        weights        list of (w_ih, w_hh, b_ih, b_hh), entry l*D + d for layer l, direction d
                       (1: reverse); layer 0's w_ih is (G*H, I), later ones (G*H, D*S). An LSTM
                       with projections (torch's proj_size) has (w_ih, w_hh, b_ih, b_hh, w_hr),
                       w_hh (4*H, P) and w_hr (P, H)
        h0             (L*D, B, S) or None (zeros)
        c0             (L*D, B, H) or None (zeros); lstm only
        dropout_masks  (L-1, T, B, D*S) multipliers for the outputs of layers 0..L-2, or None
        y              (T, B, D*S), directions side by side, zero past lengths[b]
    Returns (y, h_n, c_n) for lstm, (y, h_n) otherwise, and saved last when training=True.

    precision="bfloat16" (inference, float32 arrays): the products run on the weights rounded to
    bfloat16, and each product's input rows (x_t, h_{t-1}) rounded too; states, gates, outputs
    and the sums stay float32 (README: "Low precision").

    CUDA arrays (torch or CuPy) run on the GPU, each layer-direction a one-layer CUDA call
    (seqkern._device).

    The weights are packed at each call; prepacked=prepack_weights(cell, weights,
    bidirectional, precision) packs them once for inference calls back to back (its precision is
    the call's), which must pass the arrays packed (or views of them): others are a ValueError.
    """
    if is_device_array(x):  # CUDA arrays: layers composed on the GPU (seqkern._device)
        return _device.recurrent_stack(cell, x, weights, h0, c0, lengths, bidirectional,
                                       dropout_masks, training, precision, prepacked)
    a, order = _longest_first(stack_args(cell, x, weights, h0, c0, lengths, bidirectional,
                                         dropout_masks))
    if prepacked is not None:
        if not isinstance(prepacked, _core.PackedStack):
            raise TypeError(f"prepacked: expected what sk.prepack_weights returns, got "
                            f"{type(prepacked).__name__}")
        key = (getattr(_core.Cell, cell), a.L, a.D, a.I, a.H, a.S if a.projected else 0)
        if tuple(prepacked.key) != key:
            raise ValueError("prepacked: packed for another network (cell, layers, directions, "
                             "sizes)")
        if precision != "float32" and precision != prepacked.precision:
            raise ValueError(f"prepacked: {prepacked.precision} weights for a {precision} call")
        if training:
            raise ValueError("prepacked: packed weights are for inference (training=False)")
        precision = prepacked.precision
    check_precision(precision, training, a.x.dtype)
    if prepacked is None and precision == "bfloat16":
        prepacked = _packed_stack(a, precision)
    if a.L * a.D == 1:
        return _one_layer_stack(a, order, training, prepacked)
    T, B, H, S, L, D, dt = a.T, a.B, a.H, a.S, a.L, a.D, a.x.dtype
    G = GATES[STACK_CELLS[cell]]
    lstm = cell == "lstm"
    y = _core.empty((T, B, D * S), dt)
    h_n = _empty_like(a.h0)
    c_n = _empty_like(a.c0) if lstm else None
    saved = {}
    if training:
        gated = STACK_CELLS[cell] != "rnn"
        saved = {
            "ys": _core.empty((L * D, T, B, S), dt),
            "gates": _core.empty((L * D, T, B, G * H), dt) if gated else None,
            "aux": _core.empty((L * D, T, B, H), dt) if gated else None,
            "inputs": _core.empty((L - 1, T, B, D * S), dt) if L > 1 else None,
        }
    _core.stack_forward(getattr(_core.Cell, cell), L, a.x, *_weight_lists(a.weights), a.lengths,
                        a.h0, a.c0, a.masks, y, h_n, c_n, saved.get("ys"), saved.get("gates"),
                        saved.get("aux"), saved.get("inputs"), prepacked)
    outs = tuple(_unsort(o, order) for o in (y, h_n, c_n))
    outs = outs if lstm else outs[:2]
    if not training:
        return outs
    return (*outs, Saved("recurrent_stack", "kernel", a, order=order, **saved))


def one_layer(cell, a, order, training, prepacked=None):
    """The one-layer function of a stack's cell ("lstm", "gru", "gru_reset_before", "rnn_tanh",
    "rnn_relu") on checked arguments: _lstm, _gru or _rnn's outputs."""
    kind = STACK_CELLS[cell]
    if kind == "lstm":
        return _lstm(a, order, training, prepacked)
    if kind == "gru":
        return _gru(a, order, training, cell == "gru", prepacked)
    return _rnn(a, order, training, cell[4:], prepacked)


def one_layer_backward(saved, dy, dh_n, dc_n=None, need_x=True, need_h0=True,
                       need_w=_ALL_WEIGHTS):
    """Gradients of a training one_layer call from checked incoming gradients (dc_n: lstm's);
    need_x=False: x's is None, its products skipped; need_h0=False: h0's is None, and the first
    step's recurrent product skipped; need_w: as _lstm_backward's."""
    if saved.op == "lstm":
        return _lstm_backward(saved, dy, dh_n, dc_n, need_x, need_h0, need_w)
    backward = _gru_backward if saved.op == "gru" else _rnn_backward
    return backward(saved, dy, dh_n, need_x, need_h0, need_w)


def _one_layer_stack(a, order, training, prepacked=None):
    """A stack of one layer and direction, through the one-layer function of its cell: the same
    results without the stack's per-layer lists and buffers, which cost a small call 14-26 us
    ((1,1,64,64) LSTM: 25.6 against 11.6 us). prepacked: recurrent_stack's."""
    w_ih, w_hh, b_ih, b_hh, w_hr = a.weights[0]
    one = RecurrentArgs(a.x, a.h0[0], None if a.c0 is None else a.c0[0], w_ih, w_hh, b_ih, b_hh,
                        a.lengths, w_hr)
    outs = one_layer(a.cell, one, order, training, prepacked)
    if not training:
        return (outs[0], *(f[None] for f in outs[1:]))
    *outs, inner = outs
    return (outs[0], *(f[None] for f in outs[1:]),
            Saved("recurrent_stack", "kernel", a, order=order, one_layer=inner))


def _one_layer_stack_backward(saved, dy, dh_n, dc_n, need_x, need_h0, need_w):
    """recurrent_stack_backward of a _one_layer_stack call (checked incoming gradients)."""
    inner, lstm = saved.one_layer, saved.args.cell == "lstm"
    first = lambda g: None if g is None else g[0]  # noqa: E731  (1, B, n) -> (B, n)
    g = one_layer_backward(inner, dy, first(dh_n), first(dc_n), need_x, need_h0, need_w)
    weights = (g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"])
    out = {"x": g["x"], "h0": None if g["h0"] is None else g["h0"][None],
           "weights": [weights + (g["w_hr"],) if saved.args.projected else weights]}
    if lstm:
        out["c0"] = g["c0"][None]
    return out


def recurrent_stack_backward(saved, dy=None, dh_n=None, dc_n=None, *, need_x=True, need_h0=True,
                             need_weights=None):
    """Gradients of a training recurrent_stack call: dict with x, h0, c0 (lstm) and weights, a
    list of (dw_ih, dw_hh, db_ih, db_hh[, dw_hr]) tuples like the forward's (biases None when
    absent). need_x=False: x's is None, and the first layer's products for it are skipped (an
    input that needs no gradient: raw features, a frozen embedding). need_h0=False: h0's is None,
    and every layer's first-step recurrent product is skipped (no state given, a detached one).
    need_weights: None (every weight's), or a list like the weights of (w_ih, w_hh, b_ih, b_hh[,
    w_hr]) flags: False gives None for that weight (frozen), its products skipped."""
    if getattr(saved, "impl", None) == "cuda":
        return _device.recurrent_stack_backward(saved, dy, dh_n, dc_n, need_x, need_h0,
                                                need_weights)
    check_saved(saved, "recurrent_stack", "kernel")
    a, order = saved.args, saved.order
    dy, dh_n, dc_n = stack_incoming_grads(a, dy, dh_n, dc_n)
    # (a.weights' tuples have w_hr's place, None without projections)
    need_weights = [tuple(n) + (True,) * (5 - len(n))
                    for n in need_weights or [()] * len(a.weights)]
    if saved.one_layer is not None:
        return _one_layer_stack_backward(saved, dy, dh_n, dc_n, need_x, need_h0, need_weights[0])
    dy, dh_n, dc_n = (_sort(g, order) for g in (dy, dh_n, dc_n))
    dx, dh0 = _empty_like(a.x) if need_x else None, _empty_like(a.h0) if need_h0 else None
    dc0 = _empty_like(a.c0) if a.cell == "lstm" else None
    grads = [tuple(None if w is None or not n else _empty_like(w) for w, n in zip(ws, need))
             for ws, need in zip(a.weights, need_weights)]
    _core.stack_backward(getattr(_core.Cell, a.cell), a.L, a.x, *_weight_lists(a.weights),
                         a.lengths, a.h0, a.c0, a.masks, saved.ys, saved.gates, saved.aux,
                         saved.inputs, dy, dh_n, dc_n, dx, dh0, dc0, *_grad_lists(a.weights, grads))
    out = {"x": _unsort(dx, order), "h0": _unsort(dh0, order),
           "weights": [g if a.projected else g[:4] for g in grads]}
    if a.cell == "lstm":
        out["c0"] = _unsort(dc0, order)
    return out


def _longest_first(a):
    """The stack's arguments with the batch reordered longest sequence first, and that order
    (None when it already is, or without lengths). The kernels then stop each step's product
    at the last sequence still running, instead of computing finished rows and dropping them."""
    order = _longest_first_order(a.lengths)
    if order is None:
        return a, None
    sorted_args = dataclasses.replace(
        a, x=_sort(a.x, order), h0=_sort(a.h0, order), c0=_sort(a.c0, order),
        lengths=np.ascontiguousarray(a.lengths[order]), masks=_sort(a.masks, order, axis=2))
    return sorted_args, order


def _longest_first_order(lengths):
    """The batch order that puts the longest sequence first (stable), or None when there are no
    lengths or they already run longest first."""
    if lengths is None or _core.length_summary(lengths)[2]:
        return None
    return np.argsort(-lengths, kind="stable")


def _one_layer_longest_first(a):
    """A one-layer call's arguments with the batch reordered longest sequence first, and that
    order (None when it already is, or without lengths), as recurrent_stack does: the kernels
    then stop each step's product at the last running sequence, split the steps that run evenly
    between threads and keep only the rows that ran for backward."""
    order = _longest_first_order(a.lengths)
    if order is None:
        return a, None
    return dataclasses.replace(a, x=_sort(a.x, order), h0=_sort(a.h0, order, axis=0),
                               c0=_sort(a.c0, order, axis=0),
                               lengths=np.ascontiguousarray(a.lengths[order])), order


def _take(a, index, axis):
    """np.take(a, index, axis) as a new C-contiguous array, its rows gathered on seqkern's threads
    when a is C-contiguous and large (NumPy's fancy indexing copies on one thread: 429 us for
    (50, 64, 256) floats sorted along the batch, 118 us this way; below 128 KB it is faster)."""
    if not a.flags.c_contiguous or a.dtype.hasobject or a.nbytes < 1 << 17:
        return np.ascontiguousarray(np.take(a, index, axis=axis))
    out = _core.empty(a.shape[:axis] + (len(index),) + a.shape[axis + 1:], a.dtype)
    lead = int(np.prod(a.shape[:axis]))
    _core.take_rows(a.reshape(lead, a.shape[axis], -1), index, out.reshape(lead, len(index), -1))
    return out


def _inverse(order):
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return inverse


def _sort(a, order, axis=1):
    """a with its batch axis (1: (n, B, ...); 0: (B, ...)) in `order`; None and order None leave
    it as is."""
    return a if a is None or order is None else _take(a, order, axis)


def _unsort(a, order, axis=1):
    """Undoes _sort: the batch back in the caller's order."""
    return a if a is None or order is None else _take(a, _inverse(order), axis)


def _weight_lists(weights):
    """[(w_ih, w_hh, b_ih, b_hh, w_hr), ...] -> five lists, a bias or projection list empty when
    there are none."""
    return tuple([w for w in column if w is not None] for column in zip(*weights))


def _grad_lists(weights, grads):
    """_weight_lists of the gradients: a list empty where the weights have no such item, else one
    entry per layer-direction, None where its gradient is not wanted."""
    return tuple([] if all(w is None for w in ws) else list(gs)
                 for ws, gs in zip(zip(*weights), zip(*grads)))


def softmax_cross_entropy(logits, targets, ignore_index=-100, reduction="mean",
                          label_smoothing=0.0, training=False):
    """Cross-entropy of softmax(logits) against class ids, torch.nn.functional.cross_entropy's
    semantics, fused in C++ (each row's log-sum-exp, loss and, in backward, gradient in passes
    over that row while it is in cache; the probabilities are never stored).

        logits (..., V)    targets (...) ints in 0..V-1 or ignore_index
    Returns the loss (a scalar of the logits' dtype, or (...) for reduction="none"), and saved
    last when training=True. CUDA logits (torch or CuPy) run on the GPU (seqkern._device_ops)."""
    if is_device_array(logits):
        return _device_ops.softmax_cross_entropy(logits, targets, ignore_index, reduction,
                                                 label_smoothing, training)
    a = cross_entropy_args(logits, targets, ignore_index, reduction, label_smoothing)
    N = a.logits.shape[0]
    losses, lse = np.empty(N, a.logits.dtype), np.empty(N, a.logits.dtype)
    _core.softmax_cross_entropy_forward(a.logits, a.targets, a.ignore_index, a.label_smoothing,
                                        losses, lse)
    loss = reduce_losses(a, losses)
    if not training:
        return loss
    return loss, Saved("softmax_cross_entropy", "kernel", a, lse=lse)


def softmax_cross_entropy_backward(saved, dloss=1.0, out=None):
    """d loss / d logits (shape of logits) of a training softmax_cross_entropy call. dloss: the
    incoming gradient (a scalar, or (...) for reduction="none"). out: where to write it, e.g.
    the logits themselves when they are no longer needed (saves a buffer and a pass)."""
    if getattr(saved, "impl", None) == "cuda":
        return _device_ops.softmax_cross_entropy_backward(saved, dloss, out)
    check_saved(saved, "softmax_cross_entropy", "kernel")
    a = saved.args
    scale = loss_scale(a, dloss)
    if out is None:
        out = _core.empty(a.logits.shape, a.logits.dtype)
    elif not (isinstance(out, np.ndarray) and out.dtype == a.logits.dtype
              and out.size == a.logits.size and out.flags.c_contiguous):
        raise ValueError(f"out: expected a C-contiguous {a.logits.dtype} array of "
                         f"{a.logits.size} values")
    _core.softmax_cross_entropy_backward(a.logits, a.targets, a.ignore_index, a.label_smoothing,
                                         saved.lse, scale, out.reshape(a.logits.shape))
    return out.reshape(*a.shape, a.logits.shape[1])


def embedding(weight, ids):
    """Rows of weight (V, D) picked by ids (...) in 0..V-1: an array (..., D). A CUDA weight
    (torch or CuPy) runs on the GPU (seqkern._device_ops)."""
    if is_device_array(weight):
        return _device_ops.embedding(weight, ids)
    weight = as_float_array("weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"weight: expected shape (num_embeddings, embedding_dim), got {weight.shape}")
    flat = as_ids("ids", np.reshape(ids, -1), weight.shape[0])
    out = _core.empty((flat.size, weight.shape[1]), weight.dtype)
    _core.embedding_forward(weight, flat, out)
    return out.reshape(*np.shape(ids), weight.shape[1])


def embedding_backward(ids, dy, dweight, padding_idx=None, overwrite=False):
    """Adds dy (..., D) into the rows of dweight (V, D) picked by ids (...), in place; rows of
    padding_idx get nothing. Repeated ids are summed in a fixed order (reproducible).
    overwrite=True zeroes dweight first (on the threads). A CUDA dweight runs on the GPU."""
    if is_device_array(dweight):
        return _device_ops.embedding_backward(ids, dy, dweight, padding_idx, overwrite)
    if not (isinstance(dweight, np.ndarray) and dweight.ndim == 2 and dweight.flags.c_contiguous):
        raise ValueError("dweight: expected a C-contiguous array (num_embeddings, embedding_dim)")
    as_float_array("dweight", dweight)  # float32 or float64, updated in place
    V, D = dweight.shape
    flat = as_ids("ids", np.reshape(ids, -1), V)
    dy = as_float_array("dy", dy, dweight.dtype, like="dweight")
    if dy.shape != (*np.shape(ids), D):
        raise ValueError(f"dy: expected shape ids.shape + (embedding_dim,) = "
                         f"{(*np.shape(ids), D)}, got {dy.shape}")
    _core.embedding_backward(dy.reshape(flat.size, D), flat,
                             -1 if padding_idx is None else padding_idx, dweight, overwrite)
    return dweight


def _rows(a):
    """(B, T, H) -> (B*T, H), a view."""
    return a.reshape(-1, a.shape[-1])


def _matmul(a, b, trans_b=False):
    """a (..., K) @ b (K, N) (or b^T when trans_b) on seqkern's BLAS: (..., N)."""
    N = b.shape[0] if trans_b else b.shape[1]
    out = _core.empty((*a.shape[:-1], N), a.dtype)
    _core.gemm(False, trans_b, 1.0, _rows(a), b, 0.0, _rows(out))
    return out


def _matmul_tn(a, b):
    """a^T b over the rows of a (..., M) and b (..., N): (M, N), a weight's gradient."""
    out = np.empty((a.shape[-1], b.shape[-1]), a.dtype)
    _core.gemm(True, False, 1.0, _rows(a), _rows(b), 0.0, out)
    return out


def attention(query, keys, values=None, lengths=None, score="dot", w=None, w_q=None, w_k=None,
              v=None, scale=None, return_weights=False, training=False):
    """Attention of each query over its sequence's keys, softmax and weighted sum fused in C++
    (online softmax over blocks of keys: no (B, Tq, Tk) matrix unless return_weights).

        query (B, Tq, Hq)   keys (B, Tk, Hk)   values (B, Tk, Hv), or None: the keys
        lengths (B,) in 1..Tk: keys at positions >= lengths[b] are masked
        score "dot":      scale * q . k                      (Hq = Hk)
              "general":  scale * q W k^T,   w (Hq, Hk)      (Luong)
              "additive": v . tanh(W_q q + W_k k),  w_q (A, Hq), w_k (A, Hk), v (A,)  (Bahdanau)
        scale None: 1 (no scaling)
    Returns (context (B, Tq, Hv), weights (B, Tq, Tk) or None), and saved last when training.
    With training and return_weights, dot and general scores' backward reads the weights instead
    of recomputing them (one product of its five, and their exponentials): they must not be
    changed before it runs. A CUDA query (torch or CuPy) runs on the GPU (seqkern._device_ops),
    whose backward always recomputes them."""
    if is_device_array(query):
        return _device_ops.attention(query, keys, values, lengths, score, w, w_q, w_k, v, scale,
                                     return_weights, training)
    a = attention_args(query, keys, values, lengths, score, w, w_q, w_k, v, scale)
    B, Tq, Tk = a.query.shape[0], a.query.shape[1], a.keys.shape[1]
    dt = a.query.dtype
    context = _core.empty((B, Tq, a.values.shape[2]), dt)
    lse = np.empty((B, Tq), dt) if training else None
    weights = _core.empty((B, Tq, Tk), dt) if return_weights else None
    kept = {}
    if a.score == "additive":
        kept = {"pq": _matmul(a.query, a.w_q, trans_b=True), "pk": _matmul(a.keys, a.w_k, trans_b=True)}
        _core.additive_attention_forward(kept["pq"], kept["pk"], a.v, a.values, a.lengths,
                                         context, lse, weights)
    else:
        q = _matmul(a.query, a.w) if a.score == "general" else a.query
        # weights returned to a training caller are the backward's too (read, not recomputed)
        kept = {"q": q, "weights": weights}
        _core.attention_forward(q, a.keys, a.values, a.lengths, a.scale, context, lse, weights)
    if not training:
        return context, weights
    return context, weights, Saved("attention", "kernel", a, context=context, lse=lse, **kept)


def attention_backward(saved, dcontext):
    """Gradients of a training attention call: dict with query, keys, values (when given) and
    the score's weights (w, or w_q, w_k, v). With values=None, keys holds both roles' sum."""
    if getattr(saved, "impl", None) == "cuda":
        return _device_ops.attention_backward(saved, dcontext)
    check_saved(saved, "attention", "kernel")
    a = saved.args
    dc = check_dcontext(a, dcontext)
    dv = _empty_like(a.values)
    g = {}
    if a.score == "additive":
        dpq, dpk, du = _empty_like(saved.pq), _empty_like(saved.pk), np.empty_like(a.v)
        _core.additive_attention_backward(saved.pq, saved.pk, a.v, a.values, a.lengths,
                                          saved.lse, dc, dpq, dpk, du, dv)
        g["query"], g["keys"] = _matmul(dpq, a.w_q), _matmul(dpk, a.w_k)
        if a.keys_are_values:
            g["keys"] += dv
        g.update(w_q=_matmul_tn(dpq, a.query), w_k=_matmul_tn(dpk, a.keys), v=du)
    else:
        dq, dk = _empty_like(saved.q), _empty_like(a.keys)
        _core.attention_backward(saved.q, a.keys, a.values, a.lengths, a.scale, saved.context,
                                 saved.lse, saved.weights, dc, dq, dk,
                                 dk if a.keys_are_values else dv)
        g["query"], g["keys"] = dq, dk
        if a.score == "general":
            g["query"] = _matmul(dq, a.w, trans_b=True)
            g["w"] = _matmul_tn(a.query, dq)
    if not a.keys_are_values:
        g["values"] = dv
    return {k: g[k] for k in ("query", "keys", "values", "w", "w_q", "w_k", "v") if k in g}


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False, training=False):
    """Connectionist temporal classification loss, torch.nn.functional.ctc_loss's semantics:
    forward-backward in log space in C++, threads over the batch.

        log_probs (T, B, C)   log-softmax outputs
        targets   (B, S) padded, or (sum of target_lengths,) concatenated; labels in 0..C-1
                  other than blank
        input_lengths (B,) in 0..T, target_lengths (B,)
        reduction "mean" (each loss over its target length, then the batch mean), "sum", "none"
    An input too short for its target gives inf (0 with zero_infinity). Returns the loss, and
    saved last when training=True. CUDA log_probs (torch or CuPy) run on the GPU
    (seqkern._device_ops)."""
    if is_device_array(log_probs):
        return _device_ops.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank,
                                    reduction, zero_infinity, training)
    a = ctc_args(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                 zero_infinity)
    T, B, _ = a.log_probs.shape
    L = 2 * int(a.target_lengths.max(initial=0)) + 1
    losses = np.empty(B, a.log_probs.dtype)
    log_alpha = _core.empty((B, T, L), a.log_probs.dtype)
    _core.ctc_loss_forward(a.log_probs, a.targets, a.offsets, a.input_lengths, a.target_lengths,
                           a.blank, losses, log_alpha)
    loss = ctc_reduce(a, losses)
    if not training:
        return loss
    return loss, Saved("ctc_loss", "kernel", a, losses=losses, log_alpha=log_alpha)


def ctc_loss_backward(saved, dloss=1.0):
    """Gradient of a training ctc_loss call: dict with log_probs (T, B, C), the derivative with
    respect to log_probs themselves (torch's CPU gradient adds exp(log_probs), a term that
    cancels through a log-softmax). An infinite loss gets a zero gradient."""
    if getattr(saved, "impl", None) == "cuda":
        return _device_ops.ctc_loss_backward(saved, dloss)
    check_saved(saved, "ctc_loss", "kernel")
    a = saved.args
    grad = _core.empty(a.log_probs.shape, a.log_probs.dtype)
    _core.ctc_loss_backward(a.log_probs, a.targets, a.offsets, a.input_lengths,
                            a.target_lengths, a.blank, saved.losses, saved.log_alpha,
                            ctc_scale(a, saved.losses, dloss), grad)
    return {"log_probs": grad}
