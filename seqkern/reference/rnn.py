"""NumPy twin of seqkern.rnn / rnn_backward."""
import numpy as np

from seqkern._checks import Saved, bias_grads, check_precision, check_nonlinearity, recurrent_args
from seqkern.reference._common import active, backward_inputs, bias, product


def rnn(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", lengths=None,
        training=False, precision="float32"):
    check_nonlinearity(nonlinearity)
    a = recurrent_args("rnn", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths)
    check_precision(precision, training, a.x.dtype)
    H, dt = a.H, a.x.dtype
    b = bias(a.b_ih, H, dt) + bias(a.b_hh, H, dt)
    act = np.tanh if nonlinearity == "tanh" else (lambda v: np.maximum(v, 0))
    mask = active(a)
    h = a.h0.copy()
    ys, steps = [], []
    for t in range(a.T):
        h_new = act(product(a.x[t], a.w_ih, precision) + product(h, a.w_hh, precision) + b)
        steps.append((h, h_new))
        h = np.where(mask[t], h_new, h)
        ys.append(np.where(mask[t], h_new, 0).astype(dt))
    y = np.stack(ys)
    if not training:
        return y, h
    return y, h, Saved("rnn", "reference", a, steps=steps, nonlinearity=nonlinearity)


def rnn_backward(saved, dy=None, dh_n=None):
    a, mask, dy, dh, _ = backward_inputs(saved, "rnn", dy, dh_n)
    H, dt = a.H, a.x.dtype
    dx = np.zeros_like(a.x)
    dw_ih, dw_hh, db = np.zeros_like(a.w_ih), np.zeros_like(a.w_hh), np.zeros(H, dt)
    for t in reversed(range(a.T)):
        h_prev, h_new = saved.steps[t]
        m = mask[t]
        dh_t = dh + np.where(m, dy[t], 0)
        if saved.nonlinearity == "tanh":
            d_pre = dh_t * (1 - h_new**2) * m
        else:
            d_pre = dh_t * (h_new > 0) * m
        dx[t] = d_pre @ a.w_ih
        dw_ih += d_pre.T @ a.x[t]
        dw_hh += d_pre.T @ h_prev
        db += d_pre.sum(0)
        dh = np.where(m, d_pre @ a.w_hh, dh)
    db_ih, db_hh = bias_grads(a, db, db.copy())
    return {"x": dx, "h0": dh, "w_ih": dw_ih, "w_hh": dw_hh, "b_ih": db_ih, "b_hh": db_hh}
