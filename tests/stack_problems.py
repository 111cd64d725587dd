"""Random stack problems (recurrent_stack's arguments) for the tests of packed weights."""
import numpy as np

GATES = {"lstm": 4, "gru": 3, "gru_reset_before": 3, "rnn_tanh": 1, "rnn_relu": 1}


def stack_problem(rng, cell, T, B, I, H, L=1, D=1, P=0, uneven=False, scale=0.4):
    """x, the stack's weights (layer-direction order) and lengths (None, or uneven ones)."""
    G = GATES[cell]
    S = P or H
    weights = []
    for k in range(L * D):
        i = I if k < D else D * S
        w = [rng.uniform(-scale, scale, s).astype(np.float32)
             for s in ((G * H, i), (G * H, S), (G * H,), (G * H,))]
        if P:
            w.append(rng.uniform(-scale, scale, (P, H)).astype(np.float32))
        weights.append(tuple(w))
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = None
    if uneven:
        lengths = rng.integers(1, T + 1, B)
        lengths[rng.integers(B)] = T
    return x, weights, lengths
