"""CUDA arrays through the functional API: sk.lstm, sk.gru, sk.rnn and their backward run on the
GPU, on seqkern._cuda's kernels, when x is a CUDA array: a torch CUDA tensor or a CuPy array.

The other arrays must be of the same library, on the same device, with x's dtype (float32 or
float64); `lengths` may be a host or a device array. Outputs are arrays of that library on that
device, allocated by it, and the kernels are queued on its current stream, so they order with
the caller's other work like the library's own operations. Neither library is imported unless
the caller passes its arrays, and seqkern._cuda only then.

recurrent_stack composes the one-layer calls as torch.nn.LSTM/GRU/RNN define a network (and as
seqkern.reference's twin does): layers in turn, the reverse direction on each sequence's steps
reversed, dropout masks between layers.

Not on CUDA (ValueError): the LSTM projection (w_hr), GRU with reset_after=False,
precision="bfloat16" and prepacked weights.
"""
from __future__ import annotations

import numpy as np

from seqkern._checks import (
    FLOATS, GATES, Saved, bias_grads, check_lengths, check_nonlinearity, check_saved,
    incoming_grads, is_device_array, recurrent_args, stack_args, stack_incoming_grads,
)


def _backend():
    try:
        from seqkern import _cuda
    except ImportError:
        raise RuntimeError("seqkern was built without its CUDA backend (seqkern._cuda): reinstall "
                           "it where nvcc is on the PATH, or pass NumPy arrays") from None
    return _cuda


def kernel(cuda, name, arrays, a):
    """seqkern._cuda's function `name` for a's dtype: name_float32 or name_float64."""
    return getattr(cuda, f"{name}_float64" if arrays.is_double(a) else f"{name}_float32")


def check_dtype(name, a, dtype, like, floats=FLOATS):
    """a's dtype must be one of `floats`, and dtype (the one of the argument named `like`) when
    given."""
    if a.dtype not in floats:
        raise TypeError(f"{name}: expected float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name}: expected {dtype} like {like}, got {a.dtype}")


class _Arrays:
    """What the array adapters below share. Each makes arrays of its library on x's device
    (recurrent_args' `arrays`: float_array, zeros, lengths) and gives their pointers, stream and
    device to the kernels."""

    def lengths(self, lengths, T, B, what="T"):
        """lengths (host or device) checked on the host, then as an int32 array on the device."""
        host = check_lengths(self.to_host(lengths) if is_device_array(lengths) else lengths, T, B,
                             what)
        return None if host is None else self.asarray(host)


class _TorchArrays(_Arrays):
    """Arrays of torch on x's device (x: the op's first float array)."""

    def __init__(self, x):
        import torch
        self.torch, self.device = torch, x.device
        self.dtypes = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}

    def float_array(self, name, a, dtype=None, like="x"):
        torch = self.torch
        if not isinstance(a, torch.Tensor) or a.device != self.device:
            where = a.device if isinstance(a, torch.Tensor) else type(a).__name__
            raise TypeError(f"{name}: expected a torch tensor on {self.device} like x, got {where}")
        check_dtype(name, a, dtype, like, self.dtypes)
        if a.requires_grad:
            a = a.detach()
        if not a.is_contiguous():
            return a.contiguous()  # a new tensor from the allocator: aligned
        # The kernels read whole, aligned values. torch's CUDA memory always is (its allocator's
        # blocks are, and views start at whole elements); a CPU tensor over foreign bytes, as
        # tests/fuzz_cuda_emulated.py passes, may start at an odd address, and is copied.
        if not a.is_cuda and a.data_ptr() % a.element_size():
            return a.clone()
        return a

    def zeros(self, shape, dtype):
        return self.torch.zeros(shape, dtype=dtype, device=self.device)

    def empty(self, shape, dtype):
        return self.torch.empty(shape, dtype=dtype, device=self.device)

    def asarray(self, host):
        return self.torch.from_numpy(np.require(host, requirements="CA")).to(self.device)

    @staticmethod
    def to_host(a):
        return a.detach().cpu().numpy()

    def concat_last(self, arrays):
        return self.torch.cat(arrays, dim=-1)

    def reduced(self, a, divisor):
        """sum(a) / divisor, a 0-d array of a's dtype, summed in float64 as on the CPU."""
        return (a.sum(dtype=self.torch.float64) / divisor).to(a.dtype)

    @staticmethod
    def fill_zeros(a):
        a.zero_()

    def is_double(self, a):
        return a.dtype == self.torch.float64

    def index(self):
        return self.device.index if self.device.index is not None else self.torch.cuda.current_device()

    def stream(self):
        return self.torch.cuda.current_stream(self.device).cuda_stream

    @staticmethod
    def ptr(a):
        return 0 if a is None else a.data_ptr()


class _CupyArrays(_Arrays):
    """Arrays of CuPy on x's device, with _TorchArrays' methods."""

    def __init__(self, x):
        import cupy
        self.cupy, self.device = cupy, x.device

    def float_array(self, name, a, dtype=None, like="x"):
        cupy = self.cupy
        if not isinstance(a, cupy.ndarray) or a.device != self.device:
            where = f"device {a.device.id}" if isinstance(a, cupy.ndarray) else type(a).__name__
            raise TypeError(f"{name}: expected a CuPy array on device {self.device.id} like x, "
                            f"got {where}")
        check_dtype(name, a, dtype, like)
        with self.device:
            a = self.cupy.ascontiguousarray(a)
            return a if a.data.ptr % a.itemsize == 0 else a.copy()

    def zeros(self, shape, dtype):
        with self.device:
            return self.cupy.zeros(shape, dtype)

    def empty(self, shape, dtype):
        with self.device:
            return self.cupy.empty(shape, dtype)

    def asarray(self, host):
        with self.device:
            return self.cupy.asarray(host)

    def to_host(self, a):
        return self.cupy.asnumpy(a)

    def concat_last(self, arrays):
        with self.device:
            return self.cupy.concatenate(arrays, axis=-1)

    def reduced(self, a, divisor):
        with self.device:
            return (a.sum(dtype=np.float64) / divisor).astype(a.dtype)

    @staticmethod
    def fill_zeros(a):
        a.fill(0)

    @staticmethod
    def is_double(a):
        return a.dtype == np.float64

    def index(self):
        return self.device.id

    def stream(self):
        with self.device:
            return self.cupy.cuda.get_current_stream().ptr

    @staticmethod
    def ptr(a):
        return 0 if a is None else a.data.ptr


def _arrays_like(x, name="x"):
    """The adapter of x's library; name: x's argument, for the error."""
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        return _TorchArrays(x)
    if module == "cupy":
        return _CupyArrays(x)
    raise TypeError(f"{name}: CUDA arrays must be torch tensors or CuPy arrays, got "
                    f"{type(x).__name__}")


def _check_cpu_only(precision, w_hr=None, reset_after=True):
    if precision != "float32":
        raise ValueError(f"precision: {precision!r} runs on the CPU only; CUDA computes in the "
                         "arrays' dtype (precision='float32')")
    if w_hr is not None:
        raise ValueError("w_hr: the LSTM projection (proj_size) runs on the CPU only")
    if not reset_after:
        raise ValueError("reset_after: the GRU with reset_after=False runs on the CPU only")


def lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, training, w_hr, precision):
    _check_cpu_only(precision, w_hr)
    arrays = _arrays_like(x)
    a = recurrent_args("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, arrays=arrays)
    return _forward("lstm", "lstm", a, arrays, training)


def gru(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, training, reset_after, precision):
    _check_cpu_only(precision, reset_after=reset_after)
    arrays = _arrays_like(x)
    a = recurrent_args("gru", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths, arrays=arrays)
    return _forward("gru", "gru", a, arrays, training)


def rnn(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, lengths, training, precision):
    check_nonlinearity(nonlinearity)
    _check_cpu_only(precision)
    arrays = _arrays_like(x)
    a = recurrent_args("rnn", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths, arrays=arrays)
    return _forward("rnn", f"rnn_{nonlinearity}", a, arrays, training)


def _layer(cuda, cell, a, arrays):
    """The (cell, shape, pointers) that open each _cuda call."""
    p = arrays.ptr
    return (cuda.cells[cell], (a.T, a.B, a.I, a.H),
            (p(a.x), p(a.w_ih), p(a.w_hh), p(a.b_ih), p(a.b_hh), p(a.lengths), p(a.h0), p(a.c0)))


def _forward(op, cell, a, arrays, training):
    """One layer forward on the device: (y, h_n[, c_n]), and saved last when training."""
    cuda = _backend()
    T, B, H, dt = a.T, a.B, a.H, a.x.dtype
    y, h_n = arrays.empty((T, B, H), dt), arrays.empty((B, H), dt)
    c_n = arrays.empty((B, H), dt) if op == "lstm" else None
    gates = arrays.empty((T, B, GATES[op] * H), dt)
    aux = arrays.empty((T, B, H), dt) if training and op != "rnn" else None
    code, shape, inputs = _layer(cuda, cell, a, arrays)
    workspace = arrays.empty((cuda.forward_workspace(code, T, B, H),), dt)
    run = kernel(cuda, "forward", arrays, a.x)
    p = arrays.ptr
    run(arrays.index(), arrays.stream(), code, shape, inputs, p(y), p(h_n), p(c_n), p(gates),
        p(aux), p(workspace))
    outs = (y, h_n, c_n) if op == "lstm" else (y, h_n)
    if not training:
        return outs
    return (*outs, Saved(op, "cuda", a, y=y, gates=gates, aux=aux, cell=cell, arrays=arrays))


def backward(op, saved, dy, dh_n, dc_n=None):
    """Gradients of a training forward on the device, in the dict the CPU backward returns."""
    check_saved(saved, op, "cuda")
    cuda, a, arrays = _backend(), saved.args, saved.arrays
    dy, dh_n, dc_n = incoming_grads(a, dy, dh_n, dc_n, arrays)
    dt, GH = a.x.dtype, GATES[op] * a.H
    dx, dh0 = arrays.empty(tuple(a.x.shape), dt), arrays.empty((a.B, a.H), dt)
    dc0 = arrays.empty((a.B, a.H), dt) if op == "lstm" else None
    dw_ih, dw_hh = arrays.empty(tuple(a.w_ih.shape), dt), arrays.empty(tuple(a.w_hh.shape), dt)
    db_ih = arrays.empty((GH,), dt) if a.b_ih is not None else None
    db_hh = arrays.empty((GH,), dt) if a.b_hh is not None else None
    code, shape, inputs = _layer(cuda, saved.cell, a, arrays)
    workspace = arrays.empty((cuda.backward_workspace(code, a.T, a.B, a.H),), dt)
    run = kernel(cuda, "backward", arrays, a.x)
    p = arrays.ptr
    run(arrays.index(), arrays.stream(), code, shape, inputs,
        (p(saved.y), p(saved.gates), p(saved.aux)), (p(dy), p(dh_n), p(dc_n)),
        (p(dx), p(dh0), p(dc0), p(dw_ih), p(dw_hh), p(db_ih), p(db_hh)), p(workspace))
    db_ih, db_hh = bias_grads(a, db_ih, db_hh)
    g = {"x": dx, "h0": dh0}
    if op == "lstm":
        g["c0"] = dc0
    g.update(w_ih=dw_ih, w_hh=dw_hh, b_ih=db_ih, b_hh=db_hh)
    return g


def _reverse_steps(arrays, a, lengths):
    """a (T, B, n) with each sequence's first lengths[b] steps in reverse order, the steps past
    them in place (the kernels ignore the inputs there and write zeros there); its own inverse.
    lengths: the host's copy, or None."""
    T, B = a.shape[:2]
    steps = np.arange(T)[:, None]
    n = np.full((1, B), T) if lengths is None else lengths[None, :]
    source = np.where(steps < n, n - 1 - steps, steps)
    return a[arrays.asarray(source), arrays.asarray(np.arange(B)[None, :])]


def _one_layer(a, x, k, training):
    """Layer-direction k of a checked stack on the device: (y, h_n, c_n or None[, saved])."""
    from seqkern import _ops  # the one-layer functions, which route CUDA arrays back here
    w, lengths = a.weights[k][:4], a.lengths
    if a.cell == "lstm":
        return _ops.lstm(x, a.h0[k], a.c0[k], *w, lengths=lengths, training=training)
    if a.cell == "gru":
        y, h, *saved = _ops.gru(x, a.h0[k], *w, lengths=lengths, training=training)
    else:
        y, h, *saved = _ops.rnn(x, a.h0[k], *w, nonlinearity=a.cell[4:], lengths=lengths,
                                training=training)
    return (y, h, None, *saved)


def recurrent_stack(cell, x, weights, h0, c0, lengths, bidirectional, dropout_masks, training,
                    precision, prepacked):
    if prepacked is not None:
        raise ValueError("prepacked: packed weights are for the CPU kernels")
    arrays = _arrays_like(x)
    a = stack_args(cell, x, weights, h0, c0, lengths, bidirectional, dropout_masks, arrays)
    _check_cpu_only(precision, a.weights[0][4], reset_after=cell != "gru_reset_before")
    host_lengths = None if a.lengths is None else arrays.to_host(a.lengths)
    h_n = arrays.empty(tuple(a.h0.shape), a.x.dtype)
    c_n = None if a.c0 is None else arrays.empty(tuple(a.c0.shape), a.x.dtype)
    layer_in, layers = a.x, []
    for l in range(a.L):
        ys = []
        for d in range(a.D):
            k = l * a.D + d
            x_k = _reverse_steps(arrays, layer_in, host_lengths) if d else layer_in
            y, h_n[k], c, *saved = _one_layer(a, x_k, k, training)
            if c is not None:
                c_n[k] = c
            ys.append(_reverse_steps(arrays, y, host_lengths) if d else y)
            layers.append(saved[0] if training else None)
        layer_in = arrays.concat_last(ys) if a.D == 2 else ys[0]
        if a.masks is not None and l < a.L - 1:
            layer_in = layer_in * a.masks[l]
    outs = (layer_in, h_n, c_n) if cell == "lstm" else (layer_in, h_n)
    if not training:
        return outs
    return (*outs, Saved("recurrent_stack", "cuda", a, layers=layers, arrays=arrays,
                         host_lengths=host_lengths))


def recurrent_stack_backward(saved, dy, dh_n, dc_n, need_x, need_h0, need_weights):
    """seqkern.recurrent_stack_backward of a stack that ran on the device: every gradient is
    computed, and those not wanted are returned as None."""
    from seqkern import _ops
    check_saved(saved, "recurrent_stack", "cuda")
    a, arrays, lengths = saved.args, saved.arrays, saved.host_lengths
    dy, dh_n, dc_n = stack_incoming_grads(a, dy, dh_n, dc_n, arrays)
    S, dt = a.S, a.x.dtype
    dout = arrays.zeros((a.T, a.B, a.D * S), dt) if dy is None else dy
    dh0 = arrays.empty(tuple(a.h0.shape), dt)
    dc0 = None if a.c0 is None else arrays.empty(tuple(a.c0.shape), dt)
    layer_backward = {"lstm": _ops.lstm_backward, "gru": _ops.gru_backward}.get(a.cell,
                                                                               _ops.rnn_backward)
    grads = [None] * (a.L * a.D)
    for l in reversed(range(a.L)):
        din = None
        for d in range(a.D):
            k = l * a.D + d
            dy_k = dout[:, :, d * S:(d + 1) * S] if a.D == 2 else dout
            incoming = (_reverse_steps(arrays, dy_k, lengths) if d else dy_k,
                        None if dh_n is None else dh_n[k])
            if a.cell == "lstm":
                incoming += (None if dc_n is None else dc_n[k],)
            g = layer_backward(saved.layers[k], *incoming)
            dx = _reverse_steps(arrays, g["x"], lengths) if d else g["x"]
            din = dx if din is None else din + dx
            dh0[k] = g["h0"]
            if a.cell == "lstm":
                dc0[k] = g["c0"]
            grads[k] = (g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"])
        if l > 0 and a.masks is not None:
            din = din * a.masks[l - 1]
        dout = din
    need_weights = need_weights or [(True,) * 4] * len(grads)
    out = {"x": dout if need_x else None, "h0": dh0 if need_h0 else None,
           "weights": [tuple(g if n else None for g, n in zip(gs, tuple(need) + (True,) * 4))
                       for gs, need in zip(grads, need_weights)]}
    if a.cell == "lstm":
        out["c0"] = dc0
    return out
