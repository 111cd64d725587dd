"""NumPy twin of seqkern.gru / gru_backward: linear before reset (reset_after, PyTorch/cuDNN) or
reset before the recurrent product (Cho et al. 2014)."""
import numpy as np

from seqkern._checks import Saved, bias_grads, check_precision, recurrent_args
from seqkern.reference._common import active, backward_inputs, bias, product, sigmoid


def gru(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None, training=False, reset_after=True,
        precision="float32"):
    a = recurrent_args("gru", x, h0, None, w_ih, w_hh, b_ih, b_hh, lengths)
    check_precision(precision, training, a.x.dtype)
    H, dt = a.H, a.x.dtype
    bi, bh = bias(a.b_ih, 3 * H, dt), bias(a.b_hh, 3 * H, dt)
    mask = active(a)
    h = a.h0.copy()
    ys, steps = [], []
    for t in range(a.T):
        xp = product(a.x[t], a.w_ih, precision) + bi
        hp = product(h, a.w_hh, precision) + bh
        r = sigmoid(xp[:, :H] + hp[:, :H])
        z = sigmoid(xp[:, H:2 * H] + hp[:, H:2 * H])
        if reset_after:
            aux = hp[:, 2 * H:]                              # W_hn h + b_hn
            n = np.tanh(xp[:, 2 * H:] + r * aux)
        else:
            aux = r * h                                      # the reset state
            n = np.tanh(xp[:, 2 * H:] + product(aux, a.w_hh[2 * H:], precision) + bh[2 * H:])
        h_new = (1 - z) * n + z * h
        steps.append((h, r, z, n, aux))
        h = np.where(mask[t], h_new, h)
        ys.append(np.where(mask[t], h_new, 0).astype(dt))
    y = np.stack(ys)
    if not training:
        return y, h
    return y, h, Saved("gru", "reference", a, steps=steps, reset_after=reset_after)


def gru_backward(saved, dy=None, dh_n=None):
    a, mask, dy, dh, _ = backward_inputs(saved, "gru", dy, dh_n)
    H, dt = a.H, a.x.dtype
    dx = np.zeros_like(a.x)
    dw_ih, dw_hh = np.zeros_like(a.w_ih), np.zeros_like(a.w_hh)
    db_ih, db_hh = np.zeros(3 * H, dt), np.zeros(3 * H, dt)
    for t in reversed(range(a.T)):
        h_prev, r, z, n, aux = saved.steps[t]
        m = mask[t]
        dh_t = dh + np.where(m, dy[t], 0)
        dn = dh_t * (1 - z) * (1 - n**2)             # through n's tanh
        dz = dh_t * (h_prev - n) * z * (1 - z)
        if not saved.reset_after:
            drh = dn @ a.w_hh[2 * H:]                # through W_hn (r*h)
            dr = drh * h_prev * r * (1 - r)
            d = np.concatenate([dr, dz, dn], axis=1) * m     # input and recurrent side alike
            dx[t] = d @ a.w_ih
            dw_ih += d.T @ a.x[t]
            dw_hh[:2 * H] += d[:, :2 * H].T @ h_prev
            dw_hh[2 * H:] += d[:, 2 * H:].T @ aux
            db_ih += d.sum(0)
            db_hh += d.sum(0)
            dh = np.where(m, dh_t * z + drh * r + d[:, :2 * H] @ a.w_hh[:2 * H], dh)
            continue
        dr = dn * aux * r * (1 - r)
        d_x = np.concatenate([dr, dz, dn], axis=1) * m       # input-side pre-activations
        d_h = np.concatenate([dr, dz, dn * r], axis=1) * m   # recurrent-side pre-activations
        dx[t] = d_x @ a.w_ih
        dw_ih += d_x.T @ a.x[t]
        dw_hh += d_h.T @ h_prev
        db_ih += d_x.sum(0)
        db_hh += d_h.sum(0)
        dh = np.where(m, dh_t * z + d_h @ a.w_hh, dh)
    db_ih, db_hh = bias_grads(a, db_ih, db_hh)
    return {"x": dx, "h0": dh, "w_ih": dw_ih, "w_hh": dw_hh, "b_ih": db_ih, "b_hh": db_hh}
