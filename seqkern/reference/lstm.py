"""NumPy twin of seqkern.lstm / lstm_backward: one loop over time, one line per equation."""
import numpy as np

from seqkern._checks import Saved, bias_grads, check_precision, recurrent_args
from seqkern.reference._common import active, backward_inputs, bias, product, sigmoid


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None, training=False, w_hr=None,
         precision="float32"):
    a = recurrent_args("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, w_hr)
    check_precision(precision, training, a.x.dtype)
    H, dt = a.H, a.x.dtype
    b = bias(a.b_ih, 4 * H, dt) + bias(a.b_hh, 4 * H, dt)
    mask = active(a)
    h, c = a.h0.copy(), a.c0.copy()
    ys, steps = [], []
    for t in range(a.T):
        pre = product(a.x[t], a.w_ih, precision) + product(h, a.w_hh, precision) + b
        i = sigmoid(pre[:, :H])
        f = sigmoid(pre[:, H:2 * H])
        g = np.tanh(pre[:, 2 * H:3 * H])
        o = sigmoid(pre[:, 3 * H:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        if a.w_hr is not None:
            h_new = product(h_new, a.w_hr, precision)   # the projection to proj_size
        steps.append((h, c, i, f, g, o, c_new))
        h = np.where(mask[t], h_new, h)  # finished sequences keep their state
        c = np.where(mask[t], c_new, c)
        ys.append(np.where(mask[t], h_new, 0).astype(dt))
    y = np.stack(ys)
    if not training:
        return y, h, c
    return y, h, c, Saved("lstm", "reference", a, steps=steps)


def lstm_backward(saved, dy=None, dh_n=None, dc_n=None):
    a, mask, dy, dh, dc = backward_inputs(saved, "lstm", dy, dh_n, dc_n)
    H, dt = a.H, a.x.dtype
    dx = np.zeros_like(a.x)
    dw_ih, dw_hh, db = np.zeros_like(a.w_ih), np.zeros_like(a.w_hh), np.zeros(4 * H, dt)
    dw_hr = None if a.w_hr is None else np.zeros_like(a.w_hr)
    for t in reversed(range(a.T)):
        h_prev, c_prev, i, f, g, o, c_new = saved.steps[t]
        m = mask[t]
        dh_t = dh + np.where(m, dy[t], 0)
        tc = np.tanh(c_new)
        if a.w_hr is not None:                      # back through h = (o*tanh(c)) @ w_hr^T
            dw_hr += (dh_t * m).T @ (o * tc)
            dh_t = dh_t @ a.w_hr
        dc_t = dc + dh_t * o * (1 - tc**2)
        d_pre = np.concatenate([
            dc_t * g * i * (1 - i),         # i
            dc_t * c_prev * f * (1 - f),    # f
            dc_t * i * (1 - g**2),          # g
            dh_t * tc * o * (1 - o),        # o
        ], axis=1) * m
        dx[t] = d_pre @ a.w_ih
        dw_ih += d_pre.T @ a.x[t]
        dw_hh += d_pre.T @ h_prev
        db += d_pre.sum(0)
        dh = np.where(m, d_pre @ a.w_hh, dh)
        dc = np.where(m, dc_t * f, dc)
    db_ih, db_hh = bias_grads(a, db, db.copy())
    g = {"x": dx, "h0": dh, "c0": dc, "w_ih": dw_ih, "w_hh": dw_hh, "b_ih": db_ih, "b_hh": db_hh}
    if dw_hr is not None:
        g["w_hr"] = dw_hr
    return g
