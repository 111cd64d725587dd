"""The book's common.time_layers on seqkern's kernels: the same classes, constructors, params and
grads lists (the same array objects for the layer's life; grads overwritten by backward),
batch-major shapes (N, T, D), the book's gate orders (LSTM f, g, i, o with Wx (D, 4H), Wh (H, 4H);
GRU z, r, h~ with the reset gate applied before Wh). Each call reads the weights as they are
then and converts them to the kernels' layout (time-major, torch's gate order), so the book's
optimizers may change them in place between calls; TimeLSTM's generation calls read them in the
book's layout directly."""
import numpy as np

from seqkern import _core, _ops
from seqkern.book.layers import Affine, Embedding, SigmoidWithLoss


# torch's gate order from the book's: LSTM i, f, g, o from f, g, i, o; GRU r, z, n from z, r, h~.
_LSTM_ORDER, _GRU_ORDER = (2, 0, 1, 3), (1, 0, 2)


class _Recurrent:
    """What TimeRNN, TimeLSTM and TimeGRU share: params (Wx, Wh, b), stateful, h and dh, and the
    conversion of the book's weights to the kernels' and of the kernels' gradients back."""

    order = (0,)  # the book's gate blocks in the kernel's order
    negate = -1  # the kernel's block whose weights are the book's negated (GRU), or -1
    states = ("h",)  # carried between calls when stateful
    kernel, kernel_backward, options = staticmethod(_ops.rnn), staticmethod(_ops.rnn_backward), {}

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.h, self.dh = None, None
        self.stateful = stateful
        self.saved = None
        self._seen = self._converted = None

    def _kernel_weights(self):
        """(w_ih (G*H, D), w_hh (G*H, H), b_ih (G*H,)) in torch's layout and gate order. Converted
        again only when a weight differs from the copy taken at the last conversion: generation
        calls one step at a time with unchanged weights, and training changes them every step."""
        if self._seen is None:
            self._seen = [np.empty(p.shape, p.dtype) for p in self.params]
        changed = [_core.update_copy(np.ascontiguousarray(p), s) for p, s in zip(self.params, self._seen)]
        if self._converted is None or any(changed):
            Wx, Wh, b = self._seen  # contiguous copies of the weights as they are now
            self._converted = (self._to_kernel(Wx), self._to_kernel(Wh),
                               self._to_kernel(b[None]).reshape(-1))  # the bias as one row
        return self._converted

    def _to_kernel(self, w):
        """w (R, G*H) in the book's layout as a new (G*H, R) array in the kernels'."""
        out = np.empty(w.shape[::-1], w.dtype)
        _core.convert_gate_blocks(w, out, self.order, self.negate, True)
        return out

    def _store_grads(self, g):
        """Writes the kernels' weight gradients into grads, in the book's layout and order."""
        for src, out in zip((g["w_ih"], g["w_hh"], g["b_ih"][:, None]), (*self.grads[:2], self.grads[2][None])):
            if out.flags.c_contiguous and out.dtype == src.dtype:
                _core.convert_gate_blocks(src, out, self.order, self.negate, False)
            else:  # a grads array the kernels' dtype or layout does not fit: through a copy
                tmp = np.empty(out.shape, src.dtype)
                _core.convert_gate_blocks(src, tmp, self.order, self.negate, False)
                out[...] = tmp

    def _initial(self, name, N, H, dtype):
        state = getattr(self, name)
        if not self.stateful or state is None:
            state = np.zeros((N, H), dtype=dtype)
            setattr(self, name, state)
        return state

    def forward(self, xs):
        """hs (N, T, H) from xs (N, T, D); the final states are kept (h, and c for the LSTM)."""
        N, T, D = xs.shape
        H = self.params[1].shape[0]
        first = [self._initial(name, N, H, xs.dtype) for name in self.states]
        y, *finals, self.saved = self.kernel(_ops.swap01(xs), *first,
                                             *self._kernel_weights(), training=True, **self.options)
        for name, final in zip(self.states, finals):
            setattr(self, name, final)
        return _ops.swap01(y)

    def _backward(self, dhs, *d_finals):
        """(dxs (N, T, D), then the initial states' gradients) of the last forward, from dhs
        (N, T, H) or None (zeros) and the final states' gradients; the weights' overwrite grads."""
        g = self.kernel_backward(self.saved, None if dhs is None else _ops.swap01(dhs), *d_finals)
        self._store_grads(g)
        return (_ops.swap01(g["x"]), *(g[name + "0"] for name in self.states))

    def backward(self, dhs):
        dxs, self.dh, *_ = self._backward(dhs)
        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None


class TimeRNN(_Recurrent):
    """T steps of h = tanh(h Wh + x Wx + b)."""


class TimeLSTM(_Recurrent):
    """T steps of the book's LSTM; c is carried with h when stateful. Forward and backward are one
    _core call each, which converts between the book's layouts and the kernels' on the threads.
    The calls of the book's generation loops, one step (any N) or a short pass over one sequence
    (an encoder reading one question), run on the book's weights where they are instead."""

    order = _LSTM_ORDER
    states = ("h", "c")
    kernel, kernel_backward = staticmethod(_ops.lstm), staticmethod(_ops.lstm_backward)

    def __init__(self, Wx, Wh, b, stateful=False):
        super().__init__(Wx, Wh, b, stateful)
        self.c = None
        self._saved = None  # what _core.lstm_book_forward kept, when it ran the last forward

    def forward(self, xs):
        N, T, D = xs.shape
        H = self.params[1].shape[0]
        h = np.ascontiguousarray(self._initial("h", N, H, xs.dtype))
        c = np.ascontiguousarray(self._initial("c", N, H, xs.dtype))
        out = _core.lstm_book_forward(np.ascontiguousarray(xs), h, c, *self.params)
        if out is None:  # arrays the generic path must check (and explain)
            self._saved = None
            return super().forward(xs)
        hs, self.h, self.c, self._saved = out
        return hs

    def _backward(self, dhs, *d_finals):
        if self._saved is None:
            return super()._backward(dhs, *d_finals)
        dtype = self.params[0].dtype
        dhs, dh_n, dc_n = (None if d is None else np.ascontiguousarray(d, dtype)
                           for d in (dhs, *d_finals, None, None)[:3])
        out = _core.lstm_book_backward(self._saved, *self.params[:2], dhs, dh_n, dc_n, *self.grads)
        if out is None:  # grads the kernels' dtype or layout does not fit: through copies
            tmp = [np.empty(p.shape, dtype) for p in self.params]
            out = _core.lstm_book_backward(self._saved, *self.params[:2], dhs, dh_n, dc_n, *tmp)
            if out is None:
                raise TypeError("TimeLSTM.backward: params must stay C-contiguous arrays of the "
                                "forward's dtype")
            for g, t in zip(self.grads, tmp):
                g[...] = t
        return out

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None


class TimeGRU(_Recurrent):
    """T steps of the book's GRU: z = sigmoid(x Wxz + h Whz + bz), r likewise,
    h~ = tanh(x Wxh + (r*h) Whh + bh), h = (1 - z) h + z h~. The kernel's update gate is 1 - z,
    so its weights are the book's negated."""

    order = _GRU_ORDER
    kernel, kernel_backward = staticmethod(_ops.gru), staticmethod(_ops.gru_backward)
    options = {"reset_after": False}

    negate = 1  # the z block, second in the kernel's order r, z, n


class _Step:
    """One step of a Time layer (the book's RNN, LSTM and GRU classes): the kernels over T = 1.
    forward(x, h_prev[, c_prev]) returns the next state(s); backward(dh_next[, dc_next]) returns
    dx and the gradients of the previous state(s)."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.time = self.time_class(*self.params, stateful=True)
        self.time.grads = self.grads  # the same arrays, overwritten by backward

    def forward(self, x, *state):
        self.time.set_state(*state)
        self.time.forward(x[:, None, :])
        finals = tuple(getattr(self.time, name) for name in self.time.states)
        return finals if len(finals) > 1 else finals[0]

    def backward(self, *d_next):
        dxs, *d_prev = self.time._backward(None, *d_next)
        return (dxs[:, 0], *d_prev)


class RNN(_Step):
    time_class = TimeRNN


class LSTM(_Step):
    time_class = TimeLSTM


class GRU(_Step):
    time_class = TimeGRU


class TimeBiLSTM:
    """Two TimeLSTMs, the second over the reversed sequence; outputs side by side (N, T, 2H)."""

    def __init__(self, Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False):
        self.forward_lstm = TimeLSTM(Wx1, Wh1, b1, stateful)
        self.backward_lstm = TimeLSTM(Wx2, Wh2, b2, stateful)
        self.params = self.forward_lstm.params + self.backward_lstm.params
        self.grads = self.forward_lstm.grads + self.backward_lstm.grads

    def forward(self, xs):
        o1 = self.forward_lstm.forward(xs)
        o2 = self.backward_lstm.forward(xs[:, ::-1])
        return np.concatenate((o1, o2[:, ::-1]), axis=2)

    def backward(self, dhs):
        H = dhs.shape[2] // 2
        dxs = self.forward_lstm.backward(dhs[:, :, :H])
        return dxs + self.backward_lstm.backward(dhs[:, ::-1, H:])[:, ::-1]


class TimeEmbedding:
    """Rows of W (V, D) for ids (N, T); the gradient's scatter-add runs in C++."""

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.layer = Embedding(W)
        self.layer.grads = self.grads
        self.W = W

    def forward(self, xs):
        return self.layer.forward(xs)

    def backward(self, dout):
        return self.layer.backward(dout)


class TimeAffine:
    """x (N, T, D) W (D, M) + b: the book's Affine over the N*T rows at once."""

    def __init__(self, W, b):
        self.layer = Affine(W, b)
        self.params, self.grads = self.layer.params, self.layer.grads
        self.shape = None

    def forward(self, x):
        N, T, D = self.shape = x.shape
        return self.layer.forward(x.reshape(N * T, D)).reshape(N, T, -1)

    def backward(self, dout):
        return self.layer.backward(dout.reshape(-1, dout.shape[-1])).reshape(self.shape)


class TimeSoftmaxWithLoss:
    """Mean cross-entropy of softmax(xs) (N, T, V) against ts (N, T) (or one-hot), positions
    where ts is ignore_label (-1) left out; the fused softmax cross-entropy kernel."""

    def __init__(self):
        self.params, self.grads = [], []
        self.saved = None
        self.ignore_label = -1

    def forward(self, xs, ts):
        N, T, V = xs.shape
        if ts.ndim == 3:  # one-hot targets: their class ids
            ts = ts.argmax(axis=2)
        loss, self.saved = _ops.softmax_cross_entropy(np.ascontiguousarray(xs).reshape(N * T, V),
                                                      ts.reshape(N * T), ignore_index=self.ignore_label,
                                                      training=True)
        self.shape = (N, T, V)
        return float(loss)

    def backward(self, dout=1):
        return _ops.softmax_cross_entropy_backward(self.saved, dout).reshape(self.shape)


class TimeSigmoidWithLoss:
    """Mean over the T steps of the book's SigmoidWithLoss on xs (N, T) against ts (N, T)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.xs_shape = None
        self.layers = None

    def forward(self, xs, ts):
        N, T = xs.shape
        self.xs_shape = xs.shape
        self.layers = []
        loss = 0
        for t in range(T):
            layer = SigmoidWithLoss()
            loss += layer.forward(xs[:, t], ts[:, t])
            self.layers.append(layer)
        return loss / T

    def backward(self, dout=1):
        N, T = self.xs_shape
        dxs = np.empty(self.xs_shape, dtype="f")
        dout *= 1 / T
        for t in range(T):
            dxs[:, t] = self.layers[t].backward(dout)
        return dxs


class TimeDropout:
    """Inverted dropout (masks scaled by 1/(1 - ratio)) while train_flg is set."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = dropout_ratio
        self.mask = None
        self.train_flg = True

    def forward(self, xs):
        if self.train_flg:
            flg = np.random.rand(*xs.shape) > self.dropout_ratio
            scale = 1 / (1.0 - self.dropout_ratio)
            self.mask = flg.astype(np.float32) * scale
            return xs * self.mask
        return xs

    def backward(self, dout):
        return dout * self.mask
