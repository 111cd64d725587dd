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


class _Recurrent:
    """What TimeRNN, TimeLSTM and TimeGRU share: params (Wx, Wh, b), stateful, h and dh. Forward
    and backward are one _core call each, which converts between the book's layouts and the
    kernels' on the threads (reading the weights as they are at each call)."""

    cell = "rnn"
    states = ("h",)  # carried between calls when stateful

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.h, self.dh = None, None
        self.stateful = stateful
        self._saved = self._dtype = None  # what the last forward kept for backward, its dtype
        self._cache = None  # the kernels' copy of the weights for calls over one step or sequence

    def _initial(self, name, N, H, dtype):
        state = getattr(self, name)
        if not self.stateful or state is None:
            state = np.zeros((N, H), dtype=dtype)
            setattr(self, name, state)
        return state

    def forward(self, xs):
        """hs (N, T, H) from xs (N, T, D); the final states are kept (h, and c for the LSTM)."""
        xs = np.asarray(xs)
        if xs.ndim != 3:
            raise ValueError(f"xs: expected shape (N, T, D), got {xs.shape}")
        Wx, Wh, b = self.params
        Wh = np.asarray(Wh)  # the book's arrays as they are; np.ndim/np.shape cost 0.9 us a call
        if Wh.ndim != 2:
            raise ValueError(f"Wh: expected a 2-D array (H, gates*H), got shape {Wh.shape}")
        N, H = xs.shape[0], Wh.shape[0]
        h = self._initial("h", N, H, xs.dtype)
        c = self._initial("c", N, H, xs.dtype) if "c" in self.states else None
        out = _core.book_forward(self.cell, xs, h, c, Wx, Wh, b, self._cache)
        if out is None:  # arrays of other dtypes or layouts: as C-contiguous ones of one dtype
            dtype = np.result_type(xs.dtype, np.asarray(Wx).dtype)
            if dtype not in (np.float32, np.float64):
                raise TypeError(f"xs, Wx: expected float32 or float64 arrays, got {xs.dtype} and "
                                f"{np.asarray(Wx).dtype}")
            args = (None if a is None else np.ascontiguousarray(a, dtype)
                    for a in (xs, h, c, Wx, Wh, b))
            out = _core.book_forward(self.cell, *args, self._cache)
        hs, *finals, self._saved, self._cache = out
        self._dtype = hs.dtype
        for name, final in zip(self.states, finals):
            setattr(self, name, final)
        return hs

    def _backward(self, dhs, *d_finals):
        """(dxs (N, T, D), then the initial states' gradients) of the last forward, from dhs
        (N, T, H) or None (zeros) and the final states' gradients; the weights' overwrite grads."""
        if self._saved is None:
            raise RuntimeError("backward: call forward first")
        Wx, Wh, _ = self.params
        ds = [None if d is None else np.ascontiguousarray(d, self._dtype)
              for d in (dhs, *d_finals, None, None)[:3]]  # dhs, dh, dc
        out = _core.book_backward(self._saved, Wx, Wh, *ds, *self.grads)
        if out is None:  # weights or grads that are not C-contiguous of the forward's dtype
            tmp = [np.empty(np.shape(p), self._dtype) for p in self.params]
            out = _core.book_backward(self._saved, np.ascontiguousarray(Wx, self._dtype),
                                      np.ascontiguousarray(Wh, self._dtype), *ds, *tmp)
            for g, t in zip(self.grads, tmp):
                g[...] = t
        return out

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
    """T steps of the book's LSTM; c is carried with h when stateful. The calls of the book's
    generation loops, one step (any N) or a short pass over one sequence (an encoder reading one
    question), run on the book's weights where they are."""

    cell = "lstm"
    states = ("h", "c")

    def __init__(self, Wx, Wh, b, stateful=False):
        super().__init__(Wx, Wh, b, stateful)
        self.c = None

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None


class TimeGRU(_Recurrent):
    """T steps of the book's GRU: z = sigmoid(x Wxz + h Whz + bz), r likewise,
    h~ = tanh(x Wxh + (r*h) Whh + bh), h = (1 - z) h + z h~."""

    cell = "gru"


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
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"x: expected shape (N, D), got {x.shape}")
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
