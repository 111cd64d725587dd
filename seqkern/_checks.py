"""Argument checks shared by the kernels (seqkern._ops) and their NumPy twins (seqkern.reference).

Every check raises before any kernel runs, naming the argument and the expected shape, so bad
input is a Python exception and never a crash. Non-contiguous arrays are copied here, once.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from seqkern import _core

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# Gates per cell and how their weight rows are described in messages.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _got(a, arr):
    """What a message says was given: None or the array's dtype."""
    return "None" if a is None else str(arr.dtype)


_HOST_TYPES = (np.ndarray, np.generic, list, tuple, int, float)


def is_device_array(a):
    """Whether `a` lives on a CUDA device: a torch CUDA tensor (whose __cuda_array_interface__
    refuses tensors that require grad), or anything exposing __cuda_array_interface__."""
    if a is None or isinstance(a, _HOST_TYPES):  # the common host arguments, without lookups
        return False
    if getattr(a, "is_cuda", False) is True:
        return True
    try:
        return hasattr(a, "__cuda_array_interface__")
    except Exception:  # noqa: BLE001 - a property that refuses is no device array we can take
        return False


def as_float_array(name, a, dtype=None, like="x"):
    """a as a C-contiguous float32/float64 array; dtype, when given, must match (that of the
    argument named `like`). Nested lists, which have no dtype, take the one given."""
    try:
        arr = np.asarray(a, dtype if isinstance(a, (list, tuple)) else None)
    except (TypeError, RuntimeError, ValueError):
        if is_device_array(a):
            raise TypeError(f"{name}: a CUDA array in a call that runs on the CPU (lstm, gru, rnn, "
                            "recurrent_stack, softmax_cross_entropy, embedding, attention and "
                            "ctc_loss run on CUDA when their x, logits, weight, query or "
                            "log_probs is a CUDA array): pass a NumPy array") from None
        raise
    if arr.dtype not in FLOATS:
        raise TypeError(f"{name}: expected float32 or float64, got {_got(a, arr)}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{name}: expected {dtype} like {like}, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def check_shape(name, arr, expected, described):
    if arr.shape != tuple(expected):  # torch.Size is a tuple too
        raise ValueError(f"{name}: expected shape {described} = {tuple(expected)}, "
                         f"got {tuple(arr.shape)}")


def check_nonlinearity(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")


def check_lengths(lengths, T, B, what="T"):
    """lengths as a contiguous int32 array of B values in 1..T (or None); `what` names T in the
    message (attention's key lengths: "Tk")."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    kind = arr.dtype.kind
    if kind not in "iuf":
        raise TypeError(f"lengths: expected an integer array, got {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths: expected shape (batch,) = ({B},), got {arr.shape}")
    if kind == "f" and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
        raise ValueError("lengths: expected whole numbers, got NaN, inf or fractions")
    lo, hi, _ = _core.length_summary(
        np.ascontiguousarray(arr, dtype=np.float64 if kind == "f" else np.int64))
    if B and (lo < 1 or hi > T):
        raise ValueError(f"lengths: each must be in 1..{what} = 1..{T}, got {lo}..{hi}")
    return np.ascontiguousarray(arr, dtype=np.int32)


class HostArrays:
    """How the checks make their arrays on the host: NumPy, C-contiguous. seqkern._device has the
    same methods for CUDA arrays."""

    float_array = staticmethod(as_float_array)
    lengths = staticmethod(check_lengths)
    to_host = staticmethod(np.asarray)

    @staticmethod
    def zeros(shape, dtype):
        return np.zeros(shape, dtype)


HOST = HostArrays()


def optional_array(name, a, dtype, expected, described, arrays=HOST):
    """None stays None; anything else must be a float array of dtype and shape expected (made by
    `arrays`)."""
    if a is None:
        return None
    arr = arrays.float_array(name, a, dtype)
    check_shape(name, arr, expected, described)
    return arr


@dataclass
class RecurrentArgs:
    """Checked, contiguous arguments of one recurrent layer call."""

    x: np.ndarray
    h0: np.ndarray
    c0: Optional[np.ndarray]
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: Optional[np.ndarray]
    b_hh: Optional[np.ndarray]
    lengths: Optional[np.ndarray]
    w_hr: Optional[np.ndarray] = None  # LSTM projection (P, H)

    @property
    def T(self):
        return self.x.shape[0]

    @property
    def B(self):
        return self.x.shape[1]

    @property
    def I(self):  # noqa: E743 - the book's name for the input size
        return self.x.shape[2]

    @property
    def H(self):
        return self.w_hh.shape[1] if self.w_hr is None else self.w_hr.shape[1]

    @property
    def S(self):
        """Width of h and y: the projection size P for an LSTM with w_hr, else H."""
        return self.w_hh.shape[1]

    def summary(self):
        return f"T={self.T} B={self.B} I={self.I} H={self.H} {self.x.dtype}"


_RECURRENT_LABELS = {}


def _recurrent_labels(G, state):
    """The shape descriptions of recurrent_args' messages for G gates and a state named `state`,
    formatted once (at every call their f-strings cost a small call 0.3 us)."""
    labels = _RECURRENT_LABELS.get((G, state))
    if labels is None:
        g = "" if G == 1 else f"{G}*"
        labels = _RECURRENT_LABELS[G, state] = (
            f"({g}hidden, hidden)", f"({g}hidden, {state})", f"({g}hidden, input_size)",
            f"({g}hidden,)", f"(batch, {state})")
    return labels


def recurrent_args(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, w_hr=None,
                   arrays=HOST) -> RecurrentArgs:
    """Checks the arguments of sk.rnn / sk.lstm / sk.gru (c0 and w_hr only for lstm); `arrays`
    makes the checked arrays (HOST: NumPy)."""
    G = GATES[cell]
    float_array = arrays.float_array
    x = float_array("x", x)
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (T, batch, input_size), got {x.shape}")
    T, B, I = x.shape
    if T == 0 or B == 0 or I == 0:
        raise ValueError(f"x: T, batch and input_size must be at least 1, got {x.shape}")
    dtype = x.dtype
    w_hh = float_array("w_hh", w_hh, dtype)
    if w_hh.ndim != 2 or w_hh.shape[0] == 0 or w_hh.shape[0] % G:
        raise ValueError(f"w_hh: expected shape {_recurrent_labels(G, 'hidden')[0]}, "
                         f"got {w_hh.shape}")
    H = w_hh.shape[0] // G
    S, state = H, "hidden"  # width of h: H, or proj_size with an LSTM projection
    if w_hr is not None:  # h = W_hr (o*tanh(c))
        S, state = w_hh.shape[1], "proj_size"
        w_hr = float_array("w_hr", w_hr, dtype)
        check_shape("w_hr", w_hr, (S, H), "(proj_size, hidden)")
    _, d_hh, d_ih, d_b, d_h = _recurrent_labels(G, state)
    check_shape("w_hh", w_hh, (G * H, S), d_hh)
    w_ih = float_array("w_ih", w_ih, dtype)
    check_shape("w_ih", w_ih, (G * H, I), d_ih)
    b_ih = optional_array("b_ih", b_ih, dtype, (G * H,), d_b, arrays)
    b_hh = optional_array("b_hh", b_hh, dtype, (G * H,), d_b, arrays)
    h0 = optional_array("h0", h0, dtype, (B, S), d_h, arrays)
    if h0 is None:
        h0 = arrays.zeros((B, S), dtype)
    if cell == "lstm":
        c0 = optional_array("c0", c0, dtype, (B, H), "(batch, hidden)", arrays)
        if c0 is None:
            c0 = arrays.zeros((B, H), dtype)
    lengths = arrays.lengths(lengths, T, B)
    return RecurrentArgs(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, w_hr)


def incoming_grads(a: "RecurrentArgs", dy, dh_n, dc_n=None, arrays=HOST):
    """The checked incoming gradients of a backward call; None stays None (zeros)."""
    dt, state = a.x.dtype, "hidden" if a.w_hr is None else "proj_size"
    return (
        optional_array("dy", dy, dt, (a.T, a.B, a.S), f"(T, batch, {state})", arrays),
        optional_array("dh_n", dh_n, dt, (a.B, a.S), f"(batch, {state})", arrays),
        optional_array("dc_n", dc_n, dt, (a.B, a.H), "(batch, hidden)", arrays),
    )


def bias_grads(a: "RecurrentArgs", db_ih, db_hh):
    """Bias gradients, None for a bias the forward did not have."""
    return (db_ih if a.b_ih is not None else None, db_hh if a.b_hh is not None else None)


def check_saved(saved, op, impl):
    """saved must come from a training forward of the same op and implementation."""
    if not isinstance(saved, Saved):
        raise TypeError(f"saved: expected what {op}(..., training=True) returned, got {type(saved).__name__}")
    if saved.op != op:
        raise ValueError(f"saved: comes from {saved.op}, not {op}")
    if saved.impl != impl:
        raise ValueError(f"saved: comes from the {saved.impl} implementation of {op}, not the {impl} one")


class Saved:
    """What a training forward keeps for its backward. Arrays are held by reference, not copied:
    y (returned to the caller too), the inputs and the weights must not be modified in place
    before backward runs."""

    order = None  # the batch order the kernels ran in, when not the caller's (seqkern._ops)
    one_layer = None  # a recurrent_stack of one layer: the one-layer call's saved (seqkern._ops)

    def __init__(self, op, impl, args: RecurrentArgs, **arrays):
        self.op = op
        self.impl = impl
        self.args = args
        self.__dict__.update(arrays)

    def __repr__(self):
        return f"<saved {self.impl} {self.op} {self.args.summary()}>"


# The cells of a stack (seqkern.recurrent_stack), as torch names its modes.
STACK_CELLS = {"rnn_tanh": "rnn", "rnn_relu": "rnn", "lstm": "lstm", "gru": "gru",
               "gru_reset_before": "gru"}


@dataclass
class StackArgs:
    """Checked, contiguous arguments of a recurrent stack call. weights[k] = (w_ih, w_hh, b_ih,
    b_hh, w_hr) of layer l = k // D, direction d = k % D (1: reverse); w_hr is None without an
    LSTM projection."""

    cell: str
    x: np.ndarray
    weights: list
    h0: np.ndarray
    c0: Optional[np.ndarray]
    lengths: Optional[np.ndarray]
    masks: Optional[np.ndarray]
    L: int
    D: int
    H: int  # hidden size: width of the gates and of c
    S: int  # state width: width of h and of each direction's y (proj_size with w_hr, else H)

    T = RecurrentArgs.T
    B = RecurrentArgs.B
    I = RecurrentArgs.I  # noqa: E741
    summary = RecurrentArgs.summary

    @property
    def projected(self):
        return self.weights[0][4] is not None


PRECISIONS = ("float32", "bfloat16")


def check_precision(precision, training, dtype):
    """precision is one of PRECISIONS; bfloat16 only for float32 inference."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(map(repr, PRECISIONS))}, "
                         f"got {precision!r}")
    if precision == "bfloat16" and training:
        raise ValueError("precision='bfloat16' is for inference: training runs in float32")
    if precision == "bfloat16" and np.dtype(dtype) != np.float32:
        raise ValueError(f"precision='bfloat16' takes float32 arrays, got {np.dtype(dtype)}")


@functools.lru_cache(maxsize=256)
def _stack_labels(G, L, D, state):
    """The names and shape descriptions that stack_args' messages use, per layer-direction, then
    those of h0, c0 and the masks: formatted once per configuration (at every call they cost a
    one-layer call 3 us)."""
    g = "" if G == 1 else f"{G}*"
    labels = []
    for k in range(L * D):
        name = f"weights[{k}]"
        into = "input_size" if k < D else f"{D}*{state}"
        labels.append((name, f"{name} w_ih", f"({g}hidden, {into})", f"{name} w_hh",
                       f"({g}hidden, {state})", f"{name} b_ih", f"{name} b_hh", f"({g}hidden,)",
                       f"{name} w_hr"))
    labels.append((f"(num_layers*{D}, batch, {state})", f"(num_layers*{D}, batch, hidden)",
                   f"(num_layers-1, T, batch, {D}*{state})"))
    return labels


def stack_args(cell, x, weights, h0, c0, lengths, bidirectional, dropout_masks,
               arrays=HOST) -> StackArgs:
    """Checks the arguments of seqkern.recurrent_stack and its twin; `arrays` makes the checked
    arrays (HOST: NumPy)."""
    if cell not in STACK_CELLS:
        raise ValueError(f"cell: expected one of {', '.join(map(repr, STACK_CELLS))}, got {cell!r}")
    G = GATES[STACK_CELLS[cell]]
    g = "" if G == 1 else f"{G}*"
    D = 2 if bidirectional else 1
    x = arrays.float_array("x", x)
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"x: expected shape (T, batch, input_size), each at least 1, got {x.shape}")
    T, B, I = x.shape
    weights = list(weights)
    items = "(w_ih, w_hh, b_ih, b_hh[, w_hr])" if cell == "lstm" else "(w_ih, w_hh, b_ih, b_hh)"
    if not weights or len(weights) % D:
        raise ValueError(f"weights: expected num_layers * {D} {items} tuples, got {len(weights)}")
    L = len(weights) // D
    for k, w in enumerate(weights):
        if len(w) != 4 and not (cell == "lstm" and len(w) == 5):
            raise ValueError(f"weights[{k}]: expected {items}, got {len(w)} items")
    weights = [(*w, None) if len(w) == 4 else tuple(w) for w in weights]
    w_hh = weights[0][1]  # the first layer's w_hh sets hidden for all
    w_hh0 = tuple(w_hh.shape) if hasattr(w_hh, "shape") else np.shape(w_hh)
    if len(w_hh0) != 2 or w_hh0[0] == 0 or w_hh0[0] % G:
        raise ValueError(f"weights[0] w_hh: expected shape ({g}hidden, hidden), got {w_hh0}")
    H = S = w_hh0[0] // G
    state = "hidden"
    has_bias, projected = weights[0][2] is not None, weights[0][4] is not None
    if projected:
        S, state = w_hh0[1], "proj_size"
    labels = _stack_labels(G, L, D, state)
    checked = []
    for k, (w_ih, w_hh, b_ih, b_hh, w_hr) in enumerate(weights):
        name, n_ih, d_ih, n_hh, d_hh, n_bih, n_bhh, d_b, n_hr = labels[k]
        if (b_ih is not None) != has_bias or (b_hh is not None) != has_bias:
            raise ValueError(f"{name}: biases must be given for every layer or for none")
        if (w_hr is not None) != projected:
            raise ValueError(f"{name}: w_hr must be given for every layer or for none")
        I_k = I if k < D else D * S
        w_ih = arrays.float_array(n_ih, w_ih, x.dtype)
        check_shape(n_ih, w_ih, (G * H, I_k), d_ih)
        w_hh = arrays.float_array(n_hh, w_hh, x.dtype)
        check_shape(n_hh, w_hh, (G * H, S), d_hh)
        b_ih = optional_array(n_bih, b_ih, x.dtype, (G * H,), d_b, arrays)
        b_hh = optional_array(n_bhh, b_hh, x.dtype, (G * H,), d_b, arrays)
        w_hr = optional_array(n_hr, w_hr, x.dtype, (S, H), "(proj_size, hidden)", arrays)
        checked.append((w_ih, w_hh, b_ih, b_hh, w_hr))
    d_h0, d_c0, d_masks = labels[-1]
    h0 = optional_array("h0", h0, x.dtype, (L * D, B, S), d_h0, arrays)
    h0 = arrays.zeros((L * D, B, S), x.dtype) if h0 is None else h0
    if cell == "lstm":
        c0 = optional_array("c0", c0, x.dtype, (L * D, B, H), d_c0, arrays)
        c0 = arrays.zeros((L * D, B, H), x.dtype) if c0 is None else c0
    elif c0 is not None:
        raise ValueError(f"c0: only the lstm cell has a cell state, got one for {cell}")
    lengths = arrays.lengths(lengths, T, B)
    masks = optional_array("dropout_masks", dropout_masks, x.dtype, (L - 1, T, B, D * S), d_masks,
                           arrays)
    return StackArgs(cell, x, checked, h0, c0, lengths, masks, L, D, H, S)


def stack_incoming_grads(a: StackArgs, dy, dh_n, dc_n=None, arrays=HOST):
    """The checked incoming gradients of a stack backward call; None stays None (zeros)."""
    dt, state = a.x.dtype, "proj_size" if a.projected else "hidden"
    layers = f"num_layers*{a.D}, batch"
    return (
        optional_array("dy", dy, dt, (a.T, a.B, a.D * a.S), f"(T, batch, {a.D}*{state})", arrays),
        optional_array("dh_n", dh_n, dt, (a.L * a.D, a.B, a.S), f"({layers}, {state})", arrays),
        optional_array("dc_n", dc_n, dt, (a.L * a.D, a.B, a.H), f"({layers}, hidden)", arrays),
    )


REDUCTIONS = ("mean", "sum", "none")


def as_ids(name, a, size, allowed=None):
    """a as a C-contiguous int64 array of ids in 0..size-1 (or equal to `allowed`)."""
    arr = np.asarray(a)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer array, got {_got(a, arr)}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    bad = _core.first_bad_id(arr, size, allowed)
    if bad >= 0:
        also = "" if allowed is None else f" or {allowed}"
        raise ValueError(f"{name}: ids must be in 0..{size - 1}{also}, got {arr.flat[bad]}")
    return arr


@dataclass
class CrossEntropyArgs:
    """Checked arguments of softmax_cross_entropy: logits (N, V) and targets (N) flattened from
    logits (..., V) and targets (...)."""

    logits: np.ndarray
    targets: np.ndarray
    shape: tuple  # the batch shape (...) of the caller's arrays
    ignore_index: int
    reduction: str
    label_smoothing: float

    def summary(self):
        return f"N={self.logits.shape[0]} V={self.logits.shape[1]} {self.logits.dtype}"


def host_array(a, arrays=HOST):
    """An argument checked on the host (ids, targets, lengths, an incoming loss gradient) as a
    host array: a device array is copied back (the CPU path's checks then apply as they are)."""
    return arrays.to_host(a) if is_device_array(a) else np.asarray(a)


def cross_entropy_args(logits, targets, ignore_index, reduction, label_smoothing, arrays=HOST):
    """targets: checked on the host (a device array's copy) and returned as an int64 host array."""
    logits = arrays.float_array("logits", logits, like="logits")
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(f"logits: expected shape (..., classes) with classes >= 1, got {tuple(logits.shape)}")
    shape, V = tuple(logits.shape[:-1]), logits.shape[-1]
    targets = host_array(targets, arrays)
    if targets.shape != shape:
        raise ValueError(f"targets: expected shape logits.shape[:-1] = {shape}, got {targets.shape}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing!r}")
    check_integer("ignore_index", ignore_index)
    targets = as_ids("targets", targets.reshape(-1), V, allowed=int(ignore_index))
    return CrossEntropyArgs(logits.reshape(-1, V), targets, shape, int(ignore_index), reduction,
                            float(label_smoothing))


def reduce_losses(a: CrossEntropyArgs, losses):
    """The per-row losses (N) reduced as a.reduction asks: the shape (...) for "none", else a
    scalar of the logits' dtype; "mean" averages over the rows not ignored (NaN if none)."""
    if a.reduction == "none":
        return losses.reshape(a.shape)
    total = np.sum(losses, dtype=np.float64)
    if a.reduction == "mean":
        count = int(np.count_nonzero(a.targets != a.ignore_index))
        total = total / count if count else np.nan
    return a.logits.dtype.type(total)


def loss_scale(a: CrossEntropyArgs, dloss, dtype=None):
    """d total / d losses_n for each row (N), from the incoming gradient of the reduced loss: a
    host array of the logits' dtype (or `dtype`, NumPy's, for device logits)."""
    dt, N = dtype or a.logits.dtype, a.logits.shape[0]
    if a.reduction == "none":
        d = np.asarray(dloss, dtype=dt)
        if d.shape != a.shape:
            raise ValueError(f"dloss: expected shape {a.shape} (reduction='none'), got {d.shape}")
        return np.ascontiguousarray(d.reshape(N))
    d = np.asarray(dloss, dtype=dt)
    if d.size != 1:
        raise ValueError(f"dloss: expected a scalar (reduction={a.reduction!r}), got shape {d.shape}")
    d = float(d.reshape(()))
    if a.reduction == "mean":
        count = int(np.count_nonzero(a.targets != a.ignore_index))
        d = d / count if count else 0.0
    return np.full(N, d, dtype=dt)


SCORES = ("dot", "general", "additive")


@dataclass
class AttentionArgs:
    """Checked arguments of sk.attention: values is keys when the caller gave none."""

    query: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    keys_are_values: bool
    lengths: Optional[np.ndarray]
    score: str
    w: Optional[np.ndarray]
    w_q: Optional[np.ndarray]
    w_k: Optional[np.ndarray]
    v: Optional[np.ndarray]
    scale: float

    def summary(self):
        (B, Tq, Hq), Tk = self.query.shape, self.keys.shape[1]
        return f"{self.score} B={B} Tq={Tq} Tk={Tk} Hq={Hq} {self.query.dtype}"


def attention_args(query, keys, values, lengths, score, w, w_q, w_k, v, scale,
                   arrays=HOST) -> AttentionArgs:
    float_array = arrays.float_array
    query = float_array("query", query, None, "query")
    if query.ndim != 3 or 0 in query.shape:
        raise ValueError(f"query: expected shape (batch, Tq, Hq), each at least 1, got {tuple(query.shape)}")
    B, Tq, Hq = query.shape
    keys = float_array("keys", keys, query.dtype, "query")
    if keys.ndim != 3 or keys.shape[0] != B or 0 in keys.shape:
        raise ValueError(f"keys: expected shape (batch, Tk, Hk) with batch = {B}, got {tuple(keys.shape)}")
    Tk, Hk = keys.shape[1:]
    keys_are_values = values is None
    if keys_are_values:
        values = keys
    else:
        values = float_array("values", values, query.dtype, "query")
        if values.ndim != 3 or values.shape[:2] != (B, Tk) or values.shape[2] == 0:
            raise ValueError(f"values: expected shape (batch, Tk, Hv) = ({B}, {Tk}, Hv), "
                             f"got {tuple(values.shape)}")
    if score not in SCORES:
        raise ValueError(f"score: expected one of {SCORES}, got {score!r}")
    given = {"w": w, "w_q": w_q, "w_k": w_k, "v": v}
    needed = {"dot": (), "general": ("w",), "additive": ("w_q", "w_k", "v")}[score]
    for name, a in given.items():
        if (a is None) == (name in needed):
            which = "needs" if a is None else "takes no"
            raise ValueError(f"{name}: the {score} score {which} {name}")
    dt = query.dtype
    if score == "dot" and Hq != Hk:
        raise ValueError(f"keys: dot scores need Hk = Hq = {Hq}, got {Hk}")
    if score == "general":
        w = float_array("w", w, dt, "query")
        check_shape("w", w, (Hq, Hk), "(Hq, Hk)")
    if score == "additive":
        w_q = float_array("w_q", w_q, dt, "query")
        if w_q.ndim != 2 or w_q.shape[1] != Hq or w_q.shape[0] == 0:
            raise ValueError(f"w_q: expected shape (A, Hq) = (A, {Hq}), got {tuple(w_q.shape)}")
        A = w_q.shape[0]
        w_k = float_array("w_k", w_k, dt, "query")
        check_shape("w_k", w_k, (A, Hk), "(A, Hk)")
        v = float_array("v", v, dt, "query")
        check_shape("v", v, (A,), "(A,)")
        if scale is not None:
            raise ValueError("scale: applies to dot and general scores only")
    if scale is None:
        scale = 1.0
    elif not np.isfinite(scale):
        raise ValueError(f"scale: expected a finite number or None, got {scale!r}")
    lengths = arrays.lengths(lengths, Tk, B, "Tk")
    return AttentionArgs(query, keys, values, keys_are_values, lengths, score, w, w_q, w_k, v,
                         float(scale))


def check_dcontext(a: AttentionArgs, dcontext, arrays=HOST):
    B, Tq, Hv = a.query.shape[0], a.query.shape[1], a.values.shape[2]
    d = arrays.float_array("dcontext", dcontext, a.query.dtype, like="query")
    check_shape("dcontext", d, (B, Tq, Hv), "(batch, Tq, Hv)")
    return d


@dataclass
class CtcArgs:
    """Checked arguments of sk.ctc_loss, targets concatenated."""

    log_probs: np.ndarray     # (T, B, C)
    targets: np.ndarray       # (sum of target_lengths,) int64
    offsets: np.ndarray       # (B,) where each sequence's labels start
    input_lengths: np.ndarray
    target_lengths: np.ndarray
    blank: int
    reduction: str
    zero_infinity: bool

    def summary(self):
        T, B, C = self.log_probs.shape
        return f"T={T} B={B} C={C} {self.log_probs.dtype}"


def _length_array(name, a, B, hi, what):
    arr = np.asarray(a)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer array, got {_got(a, arr)}")
    if arr.shape != (B,):
        raise ValueError(f"{name}: expected shape (batch,) = ({B},), got {arr.shape}")
    if B and (arr.min() < 0 or arr.max() > hi):
        raise ValueError(f"{name}: each must be in 0..{what} = 0..{hi}, got {arr.min()}..{arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def ctc_log_probs(log_probs, input_lengths, blank, arrays=HOST):
    """(log_probs (T, B, C), input_lengths (B,) in 0..T, a host array) checked, for the loss and
    the decoders."""
    lp = arrays.float_array("log_probs", log_probs, like="log_probs")
    if lp.ndim != 3 or 0 in lp.shape:
        raise ValueError(f"log_probs: expected shape (T, batch, classes), each at least 1, got "
                         f"{tuple(lp.shape)}")
    T, B, C = lp.shape
    check_integer("blank", blank)
    if not 0 <= blank < C:
        raise ValueError(f"blank: expected a class in 0..{C - 1}, got {blank}")
    return lp, _length_array("input_lengths", host_array(input_lengths, arrays), B, T, "T")


def check_integer(name, v):
    """v must be an integer (Python's or NumPy's, not a bool): int() would truncate 2.5."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {v!r}")


def non_negative(name, v):
    """v as a float, which must be a finite number >= 0: a learning rate (an infinite one makes
    every parameter inf or NaN, and gensim trains a model of NaNs on a NaN alpha), a momentum,
    an eps, a subsampling threshold."""
    if not (isinstance(v, (int, float, np.number)) and 0 <= v < np.inf):
        raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    return float(v)


def float_dtype(dtype):
    """A layer's dtype: float32 or float64, the kernels' (float16 made a layer whose every call
    then failed on its input's dtype)."""
    try:
        dt = None if dtype is None else np.dtype(dtype)  # (np.dtype(None) would be float64)
    except TypeError:  # not a dtype at all
        dt = None
    if dt is None or dt not in FLOATS:
        raise ValueError(f"dtype: expected float32 or float64, got "
                         f"{dt.name if dt is not None else repr(dtype)}")
    return dt


def random_generator(seed, name="seed"):
    """np.random.default_rng(seed), which takes None, an integer >= 0, a sequence of them or a
    Generator; its refusal of anything else (-1, 2.5) named no argument, this one names it."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected None or an integer >= 0, got {seed!r}") from None


def base_seed(seed):
    """The integer from which a model seeds its layers (seed, seed + 1, ...): an integer seed
    itself, else (None, a Generator) one drawn from random_generator(seed)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    return int(random_generator(seed).integers(2**31))


def check_count(name, v, least=1):
    """v must be an integer (Python's or NumPy's) of at least `least` (1 or 0)."""
    if not isinstance(v, (int, np.integer)) or v < least:
        expected = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise ValueError(f"{name}: expected {expected}, got {v!r}")


def check_memory(what, nbytes):
    """MemoryError when nbytes exceed the machine's physical memory. For many allocations of a
    size the caller chose (a layer per num_layers): each alone succeeds, and the process would
    grow until the kernel's OOM killer, not Python, ended it."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): NumPy's own errors
        return
    if nbytes > total:
        raise MemoryError(f"{what} need {nbytes:,} bytes, more than this machine's "
                          f"{total:,} bytes of memory")


def ctc_args(log_probs, targets, input_lengths, target_lengths, blank, reduction,
             zero_infinity, arrays=HOST) -> CtcArgs:
    """The integer arguments are checked, and returned, as host arrays."""
    lp, input_lengths = ctc_log_probs(log_probs, input_lengths, blank, arrays)
    T, B, C = lp.shape
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    targets, target_lengths = host_array(targets, arrays), host_array(target_lengths, arrays)
    if targets.dtype == np.bool_ or not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets: expected an integer array, got {targets.dtype}")
    if targets.ndim == 2:
        if targets.shape[0] != B:
            raise ValueError(f"targets: expected shape (batch, S) with batch = {B}, got {targets.shape}")
        target_lengths = _length_array("target_lengths", target_lengths, B, targets.shape[1], "S")
        flat = np.concatenate([targets[b, :n] for b, n in enumerate(target_lengths)]) if B else targets[:0, 0]
    elif targets.ndim == 1:
        target_lengths = _length_array("target_lengths", target_lengths, B, targets.size, "len(targets)")
        if target_lengths.sum() != targets.size:
            raise ValueError(f"targets: 1-D targets must hold sum(target_lengths) = "
                             f"{int(target_lengths.sum())} labels, got {targets.size}")
        flat = targets
    else:
        raise ValueError(f"targets: expected shape (batch, S) or (sum of target_lengths,), got {targets.shape}")
    flat = as_ids("targets", flat.reshape(-1), C)
    if (flat == blank).any():
        raise ValueError(f"targets: the blank ({blank}) cannot be a label")
    offsets = np.concatenate([[0], np.cumsum(target_lengths)[:-1]]).astype(np.int64)
    return CtcArgs(lp, np.ascontiguousarray(flat), np.ascontiguousarray(offsets), input_lengths,
                   target_lengths, int(blank), reduction, bool(zero_infinity))


def ctc_reduce(a: CtcArgs, losses):
    """The reduced loss: "none" (B,), "sum", or "mean" (each loss over its target length, at
    least 1, then the batch mean) as torch does."""
    if a.zero_infinity:
        losses = np.where(np.isinf(losses), 0, losses).astype(losses.dtype)
    if a.reduction == "none":
        return losses
    if a.reduction == "sum":
        return a.log_probs.dtype.type(np.sum(losses, dtype=np.float64))
    return a.log_probs.dtype.type(np.mean(losses / np.maximum(a.target_lengths, 1)))


def ctc_scale(a: CtcArgs, losses, dloss, dtype=None):
    """d reduced loss / d losses_b (B,), a host array of the log_probs' dtype (or `dtype`,
    NumPy's, for device log_probs); zero for an infinite loss under zero_infinity (losses None:
    not zeroed, as for the kernels, which give no gradient to an infinite loss anyway)."""
    B, dt = a.log_probs.shape[1], dtype or a.log_probs.dtype
    d = np.asarray(dloss, dtype=dt)
    if a.reduction == "none":
        if d.shape != (B,):
            raise ValueError(f"dloss: expected shape (batch,) = ({B},) (reduction='none'), got {d.shape}")
        scale = d.copy()
    else:
        if d.size != 1:
            raise ValueError(f"dloss: expected a scalar (reduction={a.reduction!r}), got shape {d.shape}")
        scale = np.full(B, float(d.reshape(())), dt)
        if a.reduction == "mean":
            scale /= B * np.maximum(a.target_lengths, 1)
    if a.zero_infinity and losses is not None:
        scale[np.isinf(losses)] = 0
    return np.ascontiguousarray(scale, dtype=dt)
