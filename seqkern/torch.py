"""PyTorch interop: torch.nn.LSTM/GRU/RNN and their cells on seqkern's CPU kernels.

    import seqkern.torch as skt
    lstm = skt.LSTM(256, 512, num_layers=2, bidirectional=True)   # a torch.nn.LSTM subclass
    out, (h_n, c_n) = lstm(x)                                       # x a tensor or PackedSequence
    cell = skt.LSTMCell(256, 512)                                   # a torch.nn.LSTMCell subclass
    h, c = cell(x_t, (h, c))                                        # one step

    model = skt.optimize(model)     # every CPU nn.LSTM/GRU/RNN and LSTMCell/GRUCell inside
    skt.restore(model)              # and back to torch's own implementation

The modules are torch's own classes (or subclasses that pickle as them), so checkpoints load
with `torch.load(weights_only=True)` where seqkern is not installed. Whatever the kernels do not
take (CUDA or meta tensors, half precision, torch.compile, torch.func, TorchScript, autocast,
double backward) runs torch's implementation instead, with one FallbackWarning per reason.
The kernels run with torch's thread count (torch.set_num_threads, OMP_NUM_THREADS).

Importing this module needs torch; the rest of seqkern never does. seqkern is not built against
torch: tensors cross as NumPy arrays that share their memory.
"""
from __future__ import annotations

import collections
import copy
import functools
import os
import sys
import threading
import warnings
import weakref

import numpy as np
import torch
from torch import _VF
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqkern import _core, _ops
from seqkern._checks import GATES, STACK_CELLS, RecurrentArgs
from seqkern._info import get_num_threads, set_num_threads

_FLOATS = (torch.float32, torch.float64)
_LAYER_CLASSES = (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN)
_CELL_CLASSES = (torch.nn.LSTMCell, torch.nn.GRUCell, torch.nn.RNNCell)
_TORCH_CLASSES = _LAYER_CLASSES + _CELL_CLASSES
# What optimize() swaps in: not nn.RNNCell, whose torch forward is one fused op that the
# kernels' fixed cost (an autograd Function, arrays in and out) outweighs at the sizes it is
# used at, and whose larger products torch runs on MKL: benchmarks/torch_small.py, Ice Lake, 2
# threads, one step, torch / seqkern time, (B, H) = (1, 64), (8, 64), (97, 51), (1, 256):
# inference 0.73-1.13x, training 0.82-0.85x (ninth session there); larger, paired, (128, 128),
# (64, 512), (256, 256): inference 0.68-0.95x, training 0.56-0.80x; only (32, 256) inference
# won (1.08-1.54x over the sessions). On Zen 5, training 0.61-1.02x. So seqkern.torch.RNNCell
# runs torch's op as well. The LSTM and GRU cells, with more work per step than torch fuses,
# are 1.02-1.76x in inference and 1.09-1.47x in training in the same run.
_OPTIMIZED_CLASSES = _LAYER_CLASSES + (torch.nn.LSTMCell, torch.nn.GRUCell)
# torch's own forward of each class, kept before optimize() wraps it.
_TORCH_FORWARD = {cls: cls.forward for cls in _TORCH_CLASSES}
_optimized: weakref.WeakSet = weakref.WeakSet()
_warned: set = set()


class FallbackWarning(UserWarning):
    """A seqkern module ran torch's own implementation for a call the kernels do not take."""


# Frames in these folders are not the user's: a warning names the first frame outside them.
_INTERNAL = tuple(os.path.dirname(f) + os.sep for f in (torch.__file__, os.path.abspath(__file__)))


def _fall_back(reason):
    if reason in _warned:
        return
    _warned.add(reason)
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"seqkern.torch: {reason}; running torch's own implementation", FallbackWarning,
                  stacklevel=level)


def _np(t):
    """A tensor's data as a NumPy array (no copy for contiguous CPU tensors); None stays None."""
    if t is None:
        return None
    if not t.is_cpu or t.dtype not in _FLOATS:
        raise TypeError(f"seqkern.torch: expected CPU float32/float64 tensors, got {t.dtype} on {t.device}")
    # numpy() refuses a tensor that requires grad only while grad mode is on; detach() costs
    # 0.5 us a tensor, which a one-step call paid for its input and four weights (optimized
    # (1,1,64,64) modules under no_grad, paired, old / new: RNN 1.02-1.05x, GRU 1.08x, LSTM
    # 1.02-1.04x; training steps 1.00-1.03x)
    return t.detach().numpy() if t.requires_grad and torch.is_grad_enabled() else t.numpy()


# NumPy views of each optimized module's weights, kept from call to call: numpy() costs 1-1.5 us
# a tensor, and a one-step cell call paid it for four weights. A module's views serve while it
# holds the same tensors, contiguous, at the same addresses and shapes: in-place changes
# (optimizer steps, load_state_dict) show through them, and new tensors or storage (.to(),
# `.data =`, load_state_dict(assign=True), parametrizations, which compute their weights at
# each access) make new ones.
_views: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _kept_arrays(module, weights):
    """The arrays _weight_arrays made of the module's weights, if they still serve, else None.
    Arrays are only made of weights that a call took, so those are CPU float tensors that fit
    the module, all of one dtype."""
    kept = _views.get(module)
    if kept is None:
        return None
    flat = [w for ws in weights for w in ws]
    if (len(flat) == len(kept[0]) and all(a is b for a, b in zip(kept[0], flat))
            and kept[1] == _where(flat)):
        return kept[2]
    return None


def _where(flat):
    """Where each of the tensors' values lie, and their shapes (None for an absent weight)."""
    return [None if w is None else (w.data_ptr(), w.shape) for w in flat]


def _weight_arrays(module, weights):
    """The module's weights (as _weights gives them) as C-contiguous NumPy arrays, one tuple per
    layer-direction (None where a weight is absent)."""
    arrays = _kept_arrays(module, weights)
    return _new_weight_arrays(module, weights) if arrays is None else arrays


def _new_weight_arrays(module, weights):
    """_weight_arrays where _kept_arrays has none: made now, and kept when they can serve later."""
    # detached: grad mode may be on here, and numpy() refuses tensors that require grad then
    arrays = [tuple(None if w is None else _plain(w.detach()) for w in ws) for ws in weights]
    flat = [w for ws in weights for w in ws]
    if all(w is None or w.is_contiguous() for w in flat):  # a copy would miss later changes
        _views[module] = (flat, _where(flat), arrays)
    return arrays


# Graphs whose kernels' buffers (ctx.saved) are large, oldest first. torch frees a node's saved
# tensors once its backward has run (unless retain_graph); ctx.saved, a Python attribute, lived on
# as long as the graph did, and a training loop holds its last step's graph (its loss and output)
# while the next forward runs: two steps' buffers at once. Each training forward first drops the
# buffers of the graphs torch has freed. (2-layer LSTM (100, 64, 512, 512), six training steps:
# peak RSS 936 MB before, torch 718.)
_tracked = collections.deque()  # weak references, in the order of the forward calls
_tracked_lock = threading.Lock()
_TRACKED_BYTES = 1 << 20  # smaller buffers (a cell's step) are not worth a check


def _track(ctx, nbytes):
    if nbytes >= _TRACKED_BYTES:
        with _tracked_lock:
            _tracked.append(weakref.ref(ctx))


def _release_backpropagated():
    """Drops ctx.saved of the tracked graphs whose backward has run; forgets the graphs gone.
    Those still waiting for their backward, or retained, stay tracked (all are looked at: one
    graph kept for long must not hold back the others)."""
    if not _tracked:
        return
    with _tracked_lock:
        for _ in range(len(_tracked)):
            ref = _tracked.popleft()
            ctx = ref()
            if ctx is None:
                continue
            try:
                ctx._raw_saved_tensors  # raises once torch has freed them
            except RuntimeError:
                ctx.saved = None
                continue
            _tracked.append(ref)


class RecurrentStackFunction(torch.autograd.Function):
    """Autograd Function over seqkern.recurrent_stack. Inputs: cell, bidirectional, x, h0 and c0
    (None for zeros; c0 only for lstm), lengths (or None), dropout_masks (or None), present
    (which items of a weight tuple (w_ih, w_hh, b_ih, b_hh[, w_hr]) are given), then the given
    weights flattened layer-direction by layer-direction. Outputs y, h_n and, for lstm, c_n."""

    @staticmethod
    def forward(ctx, cell, bidirectional, x, h0, c0, lengths, masks, present, *flat):
        _release_backpropagated()
        training = any(ctx.needs_input_grad)
        weights = _unflatten([_np(w) for w in flat], present)
        lengths_np = None if lengths is None else lengths.numpy()
        out = _ops.recurrent_stack(cell, _np(x), weights, _np(h0), _np(c0), lengths_np,
                                   bidirectional, _np(masks), training=training)
        if training:
            *out, ctx.saved = out
            ctx.save_for_backward(x, h0, c0, *flat)
            _track(ctx, x.shape[0] * x.shape[1] * x.element_size()
                   * sum(ws[1].shape[0] for ws in weights))  # about the gates' pre-activations
        ctx.args = cell, bidirectional, lengths, masks, present
        return tuple(torch.from_numpy(o) for o in out)

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n=None):
        ctx.saved_tensors  # torch's error for a second backward through a freed graph
        cell, bidirectional, lengths, masks, present = ctx.args
        if torch.is_grad_enabled():  # create_graph=True: gradients must be differentiable
            _fall_back("double backward (create_graph=True)")
            return (None, None) + _torch_stack_grads(ctx, dy, dh_n, dc_n)
        need = ctx.needs_input_grad  # False for h0, c0 not given (None) too
        flags = iter(need[8:])  # the flat weights' (frozen: False), as the weights' tuples
        need_weights = [tuple(p and next(flags) for p in present)
                        for _ in range(len(need[8:]) // sum(present))]
        g = _ops.recurrent_stack_backward(ctx.saved, _np(dy), _np(dh_n), _np(dc_n),
                                          need_x=need[2], need_h0=need[3],
                                          need_weights=need_weights)
        wanted = lambda i, a: torch.from_numpy(a) if need[i] else None  # noqa: E731
        flat = [w for ws in g["weights"] for w, p in zip(ws, present) if p]
        return (None, None, wanted(2, g["x"]), wanted(3, g["h0"]),
                wanted(4, g["c0"]) if cell == "lstm" else None, None, None, None,
                *(wanted(8 + i, w) for i, w in enumerate(flat)))


def _unflatten(flat, present):
    """Weights flattened over layer-directions -> one tuple per layer-direction, None where a
    weight is absent (present[i] False)."""
    n, out = sum(present), []
    for i in range(0, len(flat), n):
        given = iter(flat[i:i + n])
        out.append(tuple(next(given) if p else None for p in present))
    return out


def _torch_stack(cell, x, weights, h0, c0, lengths, bidirectional, masks):
    """recurrent_stack's forward with torch's own ops, layer by layer (so that seqkern's dropout
    masks apply between layers): differentiable to any order."""
    D = 2 if bidirectional else 1
    L = len(weights) // D
    run = {"lstm": _VF.lstm, "gru": _VF.gru, "rnn_tanh": _VF.rnn_tanh, "rnn_relu": _VF.rnn_relu}[cell]
    has_bias = weights[0][2] is not None
    if lengths is not None:
        order = torch.sort(lengths, descending=True, stable=True).indices
        back = torch.empty_like(order).scatter_(0, order, torch.arange(len(order)))
    if h0 is None:
        h0 = x.new_zeros(L * D, x.shape[1], weights[0][1].shape[1])
    if cell == "lstm" and c0 is None:
        c0 = x.new_zeros(L * D, x.shape[1], weights[0][1].shape[0] // 4)
    hs, cs = [], []
    for l in range(L):
        params = [w for ws in weights[l * D:(l + 1) * D] for w in ws if w is not None]
        h = h0[l * D:(l + 1) * D]
        hx = (h, c0[l * D:(l + 1) * D]) if cell == "lstm" else h
        if lengths is None:
            y, *finals = run(x, hx, params, has_bias, 1, 0.0, True, bidirectional, False)
        else:
            packed = pack_padded_sequence(x.index_select(1, order), lengths[order])
            hx = tuple(s.index_select(1, order) for s in hx) if cell == "lstm" else hx.index_select(1, order)
            y, *finals = run(packed.data, packed.batch_sizes, hx, params, has_bias, 1, 0.0, True,
                             bidirectional)
            y = pad_packed_sequence(PackedSequence(y, packed.batch_sizes), total_length=x.shape[0])[0]
            y = y.index_select(1, back)
            finals = [f.index_select(1, back) for f in finals]
        hs.append(finals[0])
        if cell == "lstm":
            cs.append(finals[1])
        x = y * masks[l] if masks is not None and l < L - 1 else y
    return (x, torch.cat(hs)) + ((torch.cat(cs),) if cell == "lstm" else ())


def _torch_stack_grads(ctx, dy, dh_n, dc_n):
    """Gradients of RecurrentStackFunction's inputs from a recomputation with torch's ops, so
    that they carry a graph of their own (double backward)."""
    cell, bidirectional, lengths, masks, present = ctx.args
    inputs = ctx.saved_tensors
    x, h0, c0, *flat = inputs
    with torch.enable_grad():
        outs = _torch_stack(cell, x, _unflatten(flat, present), h0, c0, lengths, bidirectional, masks)
        grads_out = (dy, dh_n) + ((dc_n,) if cell == "lstm" else ())
        wanted = [t for t in inputs if t is not None and t.requires_grad]
        got = iter(torch.autograd.grad(outs, wanted, grads_out, create_graph=True, allow_unused=True))
    x_g, h0_g, c0_g, *flat_g = (next(got) if t is not None and t.requires_grad else None for t in inputs)
    return (x_g, h0_g, c0_g, None, None, None, *flat_g)


def recurrent_stack(cell, x, weights, h0=None, c0=None, lengths=None, bidirectional=False,
                    dropout_masks=None):
    """seqkern.recurrent_stack on tensors, differentiable by autograd. weights: a list of
    (w_ih, w_hh, b_ih, b_hh[, w_hr]) tensors per layer-direction (biases None when absent)."""
    return _stack(cell, x, weights, h0, c0, lengths, bidirectional, dropout_masks,
                  _differentiable(x, (h0, c0), weights))


def _stack(cell, x, weights, h0, c0, lengths, bidirectional, dropout_masks, differentiable):
    """recurrent_stack, told whether autograd has anything to differentiate."""
    if not differentiable:
        # nothing to differentiate: the kernels without autograd's Function and its bookkeeping,
        # which made small layers slower than torch's (LSTM (5,4,16,16) 351 -> 210 us, torch
        # 289 us; (1,1,64,64) 195 -> 107, torch 217: paired medians on Zen 3)
        lengths = None if lengths is None else torch.as_tensor(lengths, dtype=torch.int64).cpu().numpy()
        out = _ops.recurrent_stack(cell, _np(x), [tuple(_np(w) for w in ws) for ws in weights],
                                   _np(h0), _np(c0), lengths, bidirectional, _np(dropout_masks))
        return tuple(torch.from_numpy(o) for o in out)
    if lengths is not None:
        lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
    present = tuple(w is not None for w in weights[0])
    flat = [w for ws in weights for w in ws if w is not None]
    return RecurrentStackFunction.apply(cell, bidirectional, x, h0, c0, lengths, dropout_masks,
                                        present, *flat)


@functools.lru_cache(maxsize=None)
def _weight_names(num_layers, bidirectional, projected):
    """The weights' attribute names, (weight_ih, weight_hh, bias_ih, bias_hh[, weight_hr]) per
    layer-direction."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")[:5 if projected else 4]
    D = 2 if bidirectional else 1
    return tuple(tuple(f"{n}_l{l}{'_reverse' if d else ''}" for n in names)
                 for l in range(num_layers) for d in range(D))


_CELL_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_CELL_ENUM = {name: getattr(_core.Cell, name) for name in STACK_CELLS}


def _weights(module):
    """The module's weights as (w_ih, w_hh, b_ih, b_hh[, w_hr]) per layer-direction (a cell's one
    tuple of four; absent biases are None), read as torch's forward reads them. Registered
    parameters are read from the module's dict (nn.Module's __getattr__ took 8 us for a layer's
    four). A layer with weights computed on access (torch.nn.utils.parametrize, pruning) has
    them computed by torch's own _update_flat_weights, as often and in the order its forward
    does: a parametrization that updates buffers (spectral_norm's power iteration, in training)
    or draws random numbers then leaves the state torch's forward leaves. A cell's forward reads
    each weight once, in this order, as torch's does."""
    params = module._parameters
    if isinstance(module, _CELL_CLASSES):
        return [tuple(params[n] if n in params else getattr(module, n, None)
                      for n in _CELL_WEIGHTS)]
    names = _weight_names(module.num_layers, module.bidirectional, bool(module.proj_size))
    if all(n in params for n in module._flat_weights_names):
        weights = [tuple(params.get(n) for n in ws) for ws in names]
    else:
        module._update_flat_weights()
        flat = dict(zip(module._flat_weights_names, module._flat_weights))
        weights = [tuple(flat.get(n) for n in ws) for ws in names]
    if not module.bias:  # a bias set on such a module is not among torch's flat weights either
        weights = [(w_ih, w_hh, None, None, *rest) for w_ih, w_hh, _, _, *rest in weights]
    return weights


def _fallback_reason(input, hx):
    """Why this call cannot run seqkern's kernels, or None when it can, as far as its mode, input
    and state tell: asked before the weights are read, so that a fallback does not compute
    weights computed on access (parametrizations) once more than torch's forward does."""
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return "TorchScript"
    if torch.compiler.is_compiling():
        return "torch.compile"
    if torch._C._are_functorch_transforms_active():
        return "torch.func transforms"
    x = input.data if isinstance(input, PackedSequence) else input
    states = hx if isinstance(hx, tuple) else (hx,)
    reason = _tensors_fallback_reason([x, *(s for s in states if s is not None)])
    if not reason and torch.is_autocast_enabled("cpu"):
        reason = "CPU autocast"
    return reason


def _tensors_fallback_reason(tensors):
    """Why the kernels cannot take these tensors (a call's, or its weights'), or None."""
    if torch.overrides.has_torch_function(tensors):
        return "tensor subclasses"
    for t in tensors:
        if not t.is_cpu:
            return f"{t.device.type} tensors"
    for t in tensors:
        if t.dtype not in _FLOATS:
            return f"{t.dtype} tensors"
    return None


def _differentiable(x, hx, weights):
    """Whether autograd has anything to differentiate in a call with these tensors."""
    if not torch.is_grad_enabled():
        return False
    states = hx if isinstance(hx, tuple) else (hx,)
    return any(t is not None and t.requires_grad for t in (x, *states, *(w for ws in weights for w in ws)))


def _follow_torch_threads():
    """Run the kernels with torch's thread count (torch.set_num_threads, OMP_NUM_THREADS)."""
    threads = torch.get_num_threads()
    if threads != get_num_threads():
        set_num_threads(threads)


def _unpacked(data, batch_sizes):
    """pad_packed_sequence(PackedSequence(data, batch_sizes)) for a call with nothing to
    differentiate, on NumPy (torch's op took 50 us on a small batch, this 3 us), and the (T, B)
    mask of the rows the packed data fills, which packs the output back."""
    sizes, values = batch_sizes.numpy(), _np(data)
    rows = np.arange(sizes[0]) < sizes[:, None]
    x = np.zeros((len(sizes), int(sizes[0]), *values.shape[1:]), dtype=values.dtype)
    x[rows] = values
    return torch.from_numpy(x), torch.from_numpy(rows.sum(axis=0)), rows


def _dropout_masks(module, T, B, dtype, batch_sizes):
    """The (layers - 1, T, B, directions * S) masks between layers, drawn as torch's forward
    draws them: one bernoulli_(1 - p) per layer on a tensor shaped as the layer's output (the
    packed rows of a PackedSequence, placed here in their (T, B) steps), then divided by 1 - p.
    A seed then gives torch's masks, and torch's generator ends where torch's forward leaves
    it. p = 1 draws nothing (torch multiplies by zeros)."""
    p, L = module.dropout, module.num_layers - 1
    features = (2 if module.bidirectional else 1) * (module.proj_size or module.hidden_size)
    if p == 1:
        return torch.zeros((L, T, B, features), dtype=dtype)
    if batch_sizes is None:
        masks = torch.empty((L, T, B, features), dtype=dtype)
        for layer in masks:
            layer.bernoulli_(1 - p)
    else:
        masks = torch.zeros((L, T, B, features), dtype=dtype)
        steps = torch.arange(B) < batch_sizes[:, None]
        for layer in masks:
            layer[steps] = torch.empty((int(batch_sizes.sum()), features),
                                       dtype=dtype).bernoulli_(1 - p)
    return masks.div_(1 - p)


def _forward(module, input, hx, torch_forward):
    """torch.nn.LSTM/GRU/RNN.forward's semantics (its own checks and hidden-state permutations)
    on seqkern's kernels, or torch_forward itself when the kernels cannot take the call."""
    if not _state_fits(tuple(hx) if isinstance(hx, list) else hx, module.mode == "LSTM"):
        return torch_forward(module, input, hx)  # torch's own error for what it does not take
    if isinstance(hx, list):
        hx = tuple(hx)  # torch's LSTM takes [h, c] as well as (h, c)
    reason = _fallback_reason(input, hx)
    weights = None if reason else _weights(module)
    reason = reason or _tensors_fallback_reason([w for ws in weights for w in ws if w is not None])
    if reason:
        _fall_back(reason)
        return torch_forward(module, input, hx)
    w_ih, w_hh, b_ih, b_hh = weights[0][:4]
    if w_ih is None or w_hh is None or module.bias and (b_ih is None or b_hh is None):
        return torch_forward(module, input, hx)  # torch's error for a weight set to None
    dtype = (input.data if isinstance(input, PackedSequence) else input).dtype
    if w_ih.dtype != dtype or any(s is not None and s.dtype != dtype
                                  for s in (hx if isinstance(hx, tuple) else (hx,))):
        return torch_forward(module, input, hx)  # torch's own error for mixed dtypes
    if not isinstance(input, PackedSequence) and input.numel() == 0:
        return torch_forward(module, input, hx)  # nothing to run: torch's empty result, or its error
    packed = isinstance(input, PackedSequence)
    differentiable = _differentiable(input.data if packed else input, hx, weights)
    _follow_torch_threads()
    cell = module.mode.lower()  # torch's modes: "LSTM", "GRU", "RNN_TANH", "RNN_RELU"
    lstm = cell == "lstm"
    D = 2 if module.bidirectional else 1
    rows = None  # packed without gradients: where the packed rows sit in the padded (T, B) steps
    if packed:
        data, batch_sizes, sorted_indices, unsorted_indices = input
        if differentiable:
            x, lengths = pad_packed_sequence(PackedSequence(data, batch_sizes))  # sorted by length
        else:
            x, lengths, rows = _unpacked(data, batch_sizes)
        unbatched = False
    else:
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(module).__name__}: Expected input to be 2D or 3D, "
                             f"got {input.dim()}D instead")
        batch_sizes = sorted_indices = unsorted_indices = lengths = None
        unbatched = input.dim() == 2  # (T, I) whatever batch_first says, as torch reads it
        if unbatched:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if module.batch_first else input
    as_given = data if packed else (x.transpose(0, 1) if module.batch_first else x)
    module.check_input(as_given, batch_sizes)  # torch's own errors for torch's misuses
    if hx is not None:
        if unbatched:
            hx = tuple(h.unsqueeze(1) for h in hx) if lstm else hx.unsqueeze(1)
        module.check_forward_args(as_given, hx, batch_sizes)
        hx = module.permute_hidden(hx, sorted_indices)
    h0, c0 = hx if lstm and hx is not None else (hx, None)
    masks = None
    if module.training and module.dropout > 0 and module.num_layers > 1:
        masks = _dropout_masks(module, x.shape[0], x.shape[1], x.dtype, batch_sizes)
    G, S = GATES[STACK_CELLS[cell]], module.proj_size or module.hidden_size
    if (len(weights) == 1 and lengths is None
            and _weights_fit(weights[0], G, x.shape[2], module.hidden_size, S, x.dtype)):
        y, *finals = _one_layer(cell, x.contiguous(), None if h0 is None else h0[0],
                                None if c0 is None else c0[0], weights[0],
                                _weight_arrays(module, weights)[0], differentiable)
        finals = [f[None] for f in finals]
    else:
        try:
            y, *finals = _stack(cell, x.contiguous(), weights, h0, c0, lengths,
                                module.bidirectional, masks, differentiable)
        except (TypeError, ValueError, RuntimeError):  # its argument checks: a weight's fault?
            if _missing_weight(module, weights) or any(
                    w is not None and w.dtype != dtype for ws in weights for w in ws):
                return torch_forward(module, input, hx)  # torch's error for None or mixed dtypes
            _check_weight_shapes(module, weights)
            raise
    hidden = tuple(finals) if lstm else finals[0]
    if packed:
        y_data = pack_padded_sequence(y, lengths).data if rows is None else torch.from_numpy(y.numpy()[rows])
        return (PackedSequence(y_data, batch_sizes, sorted_indices, unsorted_indices),
                module.permute_hidden(hidden, unsorted_indices))
    if unbatched:
        return y.squeeze(1), tuple(h.squeeze(1) for h in hidden) if lstm else hidden.squeeze(1)
    return (y.transpose(0, 1) if module.batch_first else y), hidden


def _missing_weight(module, weights):
    """Whether a weight the module's configuration needs is None (set so by the user)."""
    needed = (True, True, module.bias, module.bias, bool(module.proj_size))
    return any(need and w is None for ws in weights for need, w in zip(needed, ws))


def _check_weight_shapes(module, weights):
    """Each weight's shape, which torch's CPU forward does not check (a misshaped weight_hh made
    it write outside its buffers, "munmap_chunk(): invalid pointer"): a RuntimeError that names
    the weight, as torch's cells do."""
    G = GATES[STACK_CELLS[module.mode.lower()]]
    H = module.hidden_size
    S, D = module.proj_size or H, 2 if module.bidirectional else 1
    names = _weight_names(module.num_layers, module.bidirectional, bool(module.proj_size))
    for i, (ws, ns) in enumerate(zip(weights, names)):
        I = module.input_size if i < D else D * S
        for w, name, shape in zip(ws, ns, ((G * H, I), (G * H, S), (G * H,), (G * H,), (S, H))):
            if w is not None and w.shape != shape:
                raise RuntimeError(f"{name}: expected shape {shape}, got {tuple(w.shape)}")


def _weights_fit(weights, G, I, H, S, dtype):
    """Whether one layer's (w_ih, w_hh, b_ih, b_hh[, w_hr]) have the shapes (G gate blocks, input
    I, hidden H, state S) and the dtype that its call needs (the matrices present)."""
    shapes = ((G * H, I), (G * H, S), (G * H,), (G * H,), (S, H))
    required = weights[:2] + weights[4:]  # (a projected layer's tuple holds w_hr)
    return all(w is not None for w in required) and all(
        w is None or (w.shape == shape and w.dtype == dtype) for w, shape in zip(weights, shapes))


def _state_fits(hx, lstm):
    """Whether a call's state is what the kernels take: None, an LSTM's tuple of two tensors, or
    another cell's tensor. torch's forward runs any other (and raises its own error)."""
    if hx is None:
        return True
    if lstm:
        return isinstance(hx, tuple) and len(hx) == 2 and all(isinstance(s, torch.Tensor) for s in hx)
    return isinstance(hx, torch.Tensor)


def _one_layer(cell, x, h, c, weights, arrays, differentiable):
    """One layer and direction on tensors whose shapes fit (_weights_fit): x (T, B, I), h and c
    (B, S) and (B, H) or None for zeros (c for lstm only), weights (w_ih, w_hh, b_ih, b_hh[,
    w_hr]) and the same as arrays (_weight_arrays). Returns y, h_n and, for lstm, c_n. The calls
    a stack of one layer makes, without the stack's argument lists and checks: a one-step layer
    call (a decoder's) took 2-6 us less in inference and 20-46 us less in training (paired, Zen
    5, 2 threads)."""
    if differentiable:
        return OneLayerFunction.apply(cell, arrays, x, h, c, *weights)
    out = _one_layer_arrays(cell, *(_plain(t) for t in (x, h, c)), arrays)
    return tuple(torch.from_numpy(o) for o in out)


def _plain(t):
    """A tensor's data as a C-contiguous array where nothing needs its gradient (grad mode off,
    or the tensor does not require one); None stays None."""
    return None if t is None else np.ascontiguousarray(t.numpy())


def _one_layer_arrays(cell, x, h, c, w):
    """_one_layer's inference on seqkern's kernels, C-contiguous arrays in and out (the weights'
    w as _weight_arrays makes them)."""
    w_ih, w_hh, b_ih, b_hh, w_hr = w if len(w) == 5 else (*w, None)  # a cell's have no w_hr
    B, S, H = x.shape[1], w_hh.shape[1], w_hh.shape[0] // GATES[STACK_CELLS[cell]]
    if h is None:
        h = np.zeros((B, S), x.dtype)
    if cell == "lstm" and c is None:
        c = np.zeros((B, H), x.dtype)
    a = RecurrentArgs(x, h, c if cell == "lstm" else None, w_ih, w_hh, b_ih, b_hh, None, w_hr)
    return _ops.one_layer(cell, a, None, False)


class OneLayerFunction(torch.autograd.Function):
    """Autograd Function over one layer and direction: a layer's call (x (T, B, I); outputs y,
    h_n and, for lstm, c_n) or a cell's step (x (B, I); outputs h' and, for lstm, c'). Inputs:
    cell, the weights' arrays (_weight_arrays' tuple), x, h, c (None for zeros; c for lstm
    only), then w_ih, w_hh, b_ih, b_hh (None when absent) and, for an lstm with a
    projection, w_hr. Gradients of outputs that were not used come as None (zeros to the
    kernels). One binding each way (_core.one_layer_train and one_layer_train_backward), in place
    of one_layer's argument records, buffers and gradient dict (and a cell's (1, B, I) view of
    x). Ice Lake, 2 threads, a forward and y.sum().backward(), blocks of back-to-back calls
    alternating with the old path's, old / new time, each order once: cells, (B, I, H) (1, 64,
    64) RNNCell 1.12x and 1.17x, LSTMCell 1.15x and 1.12x, GRUCell 1.14x and 1.12x; GRUCell (97,
    51, 51) 1.16x and 1.10x; (32, 256, 256) 1.01-1.22x; layers, (T, B, I, H) (1, 1, 64, 64) RNN
    1.12x and 1.10x, LSTM 1.04x and 1.06x, GRU 1.10x and 1.12x; LSTM (5, 4, 16, 16) 1.13x and
    1.08x; larger (GRU (35, 16, 64, 128), LSTM (1, 32, 256, 256)) 0.94-1.02x."""

    @staticmethod
    def forward(ctx, cell, arrays, x, h, c, *weights):
        _release_backpropagated()
        ctx.set_materialize_grads(False)
        # inside forward, grad mode is off: numpy() takes tensors that require grad
        w_ih, w_hh, b_ih, b_hh, w_hr = arrays if len(arrays) == 5 else (*arrays, None)
        ctx.inputs = (_CELL_ENUM[cell], *(_plain(t) for t in (x, h, c)), w_ih, w_hh, w_hr)
        *out, ctx.saved = _core.one_layer_train(*ctx.inputs, b_ih, b_hh)
        ctx.save_for_backward(x, h, c, *weights)  # for a double backward only
        ctx.cell = cell
        if x.dim() == 3:  # a layer's call (a cell's step keeps little)
            _track(ctx, x.shape[0] * x.shape[1] * w_hh.shape[0] * x.element_size())
        return tuple(torch.from_numpy(o) for o in out)

    @staticmethod
    def backward(ctx, *grads):
        ctx.saved_tensors  # torch's error for a second backward through a freed graph
        if ctx.inputs[1].ndim == 2:  # a cell's step: no y
            grads = (None, *grads)
        dy, dh_n, dc_n = (*grads, None)[:3]
        if torch.is_grad_enabled():  # create_graph=True: gradients must be differentiable
            _fall_back("double backward (create_graph=True)")
            return (None, None) + _torch_one_layer_grads(ctx, dy, dh_n, dc_n)
        got = _core.one_layer_train_backward(
            *ctx.inputs, ctx.saved, *(None if g is None else _plain(g) for g in (dy, dh_n, dc_n)),
            ctx.needs_input_grad[2:])
        return (None, None, *(None if g is None else torch.from_numpy(g) for g in got))


def _torch_one_layer_grads(ctx, dy, dh_n, dc_n):
    """Gradients of OneLayerFunction's inputs from a recomputation with torch's ops, so that they
    carry a graph of their own (double backward). A cell's step (x (B, I)) has no y: dy is
    None."""
    x, h, c, *weights = inputs = ctx.saved_tensors
    lstm, step = ctx.cell == "lstm", x.dim() == 2
    with torch.enable_grad():
        outs = _torch_stack(ctx.cell, x[None] if step else x,
                            [tuple(weights) + (None,) * (5 - len(weights))],
                            None if h is None else h[None], None if c is None else c[None],
                            None, False, None)
        outs = (outs[0], outs[1][0]) + ((outs[2][0],) if lstm else ())
        incoming = (dy, dh_n, dc_n)
        if step:
            outs, incoming = outs[1:], incoming[1:]
        grads = [g if g is not None else torch.zeros_like(o) for g, o in zip(incoming, outs)]
        wanted = [t for t in inputs if t is not None and t.requires_grad]
        got = iter(torch.autograd.grad(outs, wanted, grads, create_graph=True, allow_unused=True))
    return tuple(next(got) if t is not None and t.requires_grad else None for t in inputs)


def _cell_forward(module, input, hx, torch_forward):
    """torch.nn.LSTMCell/GRUCell.forward's semantics on seqkern's kernels (a one-step
    call of one layer), or torch_forward itself when the kernels cannot take the call (torch's
    forward then raises its own error for a malformed one). The step is a decoder's inner loop,
    so every microsecond of fixed cost counts: weights that a call took before (_kept_arrays)
    are not checked again, and a call with nothing to differentiate runs on arrays alone."""
    lstm = isinstance(module, torch.nn.LSTMCell)
    if lstm and isinstance(hx, list):
        hx = tuple(hx)  # torch's LSTMCell takes [h, c] as well as (h, c)
    if not isinstance(input, torch.Tensor) or not _state_fits(hx, lstm):
        return torch_forward(module, input, hx)  # torch's own error for what it does not take
    h, c = (None, None) if hx is None else hx if lstm else (hx, None)
    reason = _fallback_reason(input, hx)
    weights = None if reason else _weights(module)
    if weights is not None and any(w is None for w in weights[0][:4 if module.bias else 2]):
        return torch_forward(module, input, hx)  # torch's TypeError for a weight set to None
    arrays = None if reason else _kept_arrays(module, weights)
    if not reason and arrays is None:
        reason = _tensors_fallback_reason([w for w in weights[0] if w is not None])
    if reason:
        _fall_back(reason)
        return torch_forward(module, input, hx)
    cell = "lstm" if lstm else "gru"  # (an RNN cell runs torch's op: RNNCell.forward)
    H, dtype, dim = module.hidden_size, input.dtype, input.dim()
    if dim not in (1, 2):
        return torch_forward(module, input, hx)
    unchecked = [s for s in (h, c) if dim == 1 and s is not None and s.dim() == 2
                 and s.shape[0] == H]
    if unchecked:
        # torch 2.13 checks a 2-D state beside an unbatched input on its first axis: other sizes
        # raise "inconsistent hidden_size" there, but one of (H, n) passes, and then its LSTM
        # cell's kernel crashes the process (its GRU cell raises a shape error of its sums)
        raise RuntimeError(f"{type(module).__name__}: an unbatched (1-D) input takes 1-D states, "
                           f"got a state of shape {tuple(unchecked[0].shape)}")
    size = (H,) if dim == 1 else (input.shape[0], H)  # of h and c
    if (input.numel() == 0 or input.shape[-1] != module.input_size
            or weights[0][0].dtype != dtype
            or h is not None and (h.shape != size or h.dtype != dtype)
            or c is not None and (c.shape != size or c.dtype != dtype)
            or arrays is None and not _weights_fit(weights[0], GATES[STACK_CELLS[cell]],
                                                   module.input_size, H, H, dtype)):
        return torch_forward(module, input, hx)
    _follow_torch_threads()
    [arrays] = arrays or _new_weight_arrays(module, weights)
    if not _differentiable(input, hx, weights):
        # arrays alone, x (B, I): an unbatched input is a batch of one
        x, h, c = (None if t is None else _plain(t).reshape(-1, t.shape[-1]) for t in (input, h, c))
        out = [torch.from_numpy(o.reshape(size))
               for o in _core.cell_step(_CELL_ENUM[cell], x, h, c, *arrays)]
    else:
        if dim == 1:  # unbatched: a batch of one
            input, h, c = (None if s is None else s[None] for s in (input, h, c))
        out = OneLayerFunction.apply(cell, arrays, input, h, c, *weights[0])
        if dim == 1:
            out = [o[0] for o in out]
    return tuple(out) if lstm else out[0]


class _Seqkern:
    """Mixin of the subclasses: forward on seqkern, pickled as the torch class it extends (so a
    saved model loads where seqkern is absent), deep-copied as itself."""

    # torch's positional arguments for a placeholder of the class on the meta device: input and
    # hidden size 1, then the defaults up to the device (a layer's num_layers, bias, batch_first,
    # dropout, bidirectional, proj_size; a cell's bias)
    _placeholder = (1, 1, 1, True, False, 0.0, False, 0, "meta")

    def forward(self, input, hx=None):
        return _run(self)(self, input, hx, _TORCH_FORWARD[self._torch_class])

    def __reduce_ex__(self, protocol):
        # Rebuilt as the torch class: the placeholder (no memory, no draw from torch's
        # generator), then this module's state. weights_only loads allow it wherever they allow
        # the torch class itself.
        return self._torch_class, self._placeholder, self.__getstate__()

    def __prepare_scriptable__(self):
        # torch.jit.script compiles a module's class. TorchScript cannot call seqkern's kernels,
        # so it gets the torch class, sharing this module's parameters, buffers and hooks. (torch
        # puts the returned module in the parent's place: README, "In torch training scripts".)
        twin = self._torch_class.__new__(self._torch_class)
        twin.__dict__.update(self.__dict__)
        return twin

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new


class LSTM(_Seqkern, torch.nn.LSTM):
    """torch.nn.LSTM (proj_size included) on seqkern's kernels; pickles as torch.nn.LSTM."""

    _torch_class = torch.nn.LSTM


class GRU(_Seqkern, torch.nn.GRU):
    """torch.nn.GRU on seqkern's kernels; pickles as torch.nn.GRU."""

    _torch_class = torch.nn.GRU


class RNN(_Seqkern, torch.nn.RNN):
    """torch.nn.RNN ("tanh" or "relu") on seqkern's kernels; pickles as torch.nn.RNN."""

    _torch_class = torch.nn.RNN


class LSTMCell(_Seqkern, torch.nn.LSTMCell):
    """torch.nn.LSTMCell on seqkern's kernels; pickles as torch.nn.LSTMCell."""

    _torch_class = torch.nn.LSTMCell
    _placeholder = (1, 1, True, "meta")


class GRUCell(_Seqkern, torch.nn.GRUCell):
    """torch.nn.GRUCell on seqkern's kernels; pickles as torch.nn.GRUCell."""

    _torch_class = torch.nn.GRUCell
    _placeholder = (1, 1, True, "meta")


class RNNCell(_Seqkern, torch.nn.RNNCell):
    """torch.nn.RNNCell ("tanh" or "relu"), run by torch's own fused op, which is faster than a
    call into seqkern's kernels at a step's sizes (see _OPTIMIZED_CLASSES); pickles as
    torch.nn.RNNCell. It is here so that code written against seqkern.torch's cells has all
    three."""

    _torch_class = torch.nn.RNNCell
    _placeholder = (1, 1, True, "tanh", "meta")
    forward = _TORCH_FORWARD[torch.nn.RNNCell]


def _run(module):
    """The seqkern forward of a module: a layer's or a cell's."""
    return _cell_forward if isinstance(module, _CELL_CLASSES) else _forward


def _dispatching_forward(cls):
    torch_forward = _TORCH_FORWARD[cls]
    run = _cell_forward if cls in _CELL_CLASSES else _forward

    @functools.wraps(torch_forward)
    def forward(self, input, hx=None):
        if self in _optimized and not torch.compiler.is_compiling():
            return run(self, input, hx, torch_forward)
        return torch_forward(self, input, hx)

    forward.__seqkern__ = True
    return forward


def optimize(model):
    """Make every nn.LSTM/GRU/RNN and nn.LSTMCell/GRUCell inside `model` (itself included) run
    seqkern's kernels, in place; returns `model`. (nn.RNNCell stays torch's: see
    _OPTIMIZED_CLASSES.) Classes, parameters (the same tensors), hooks and state_dict are
    untouched, so optimizers built before the call keep working and torch.save(model) is as
    before. A module moved to CUDA, or called in a way the kernels do not take, runs torch's
    own implementation (with a FallbackWarning). Copies of `model` made later are plain torch."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"optimize: expected a torch.nn.Module, got {type(model).__name__}")
    for cls in _OPTIMIZED_CLASSES:
        if not getattr(cls.forward, "__seqkern__", False):
            cls.forward = _dispatching_forward(cls)
    for m in model.modules():
        if isinstance(m, _OPTIMIZED_CLASSES):
            _optimized.add(m)
    return model


def restore(model):
    """Undo optimize(model): its recurrent modules run torch's own implementation again. When no
    optimized module is left, torch's classes get their own forward back. Returns `model`."""
    for m in model.modules():
        _optimized.discard(m)
    if not len(_optimized):
        for cls, forward in _TORCH_FORWARD.items():
            cls.forward = forward
    return model
