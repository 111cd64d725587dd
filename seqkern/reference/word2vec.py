"""NumPy twin of seqkern._core.w2v_train: the same updates, random stream and order, one window
at a time in Python (for tests on small corpora), plus the loss whose gradient the updates
follow."""
import numpy as np

MAX_EXP = 6.0
MASK = 2**64 - 1


class Stream:
    """word2vec.c's linear congruential generator."""

    def __init__(self, state):
        self.state = int(state)

    def next(self):
        self.state = (self.state * 25214903917 + 11) & MASK
        return self.state


def noise_word(stream, cum_table):
    r = (stream.next() >> 16) % int(cum_table[-1])
    return int(np.searchsorted(cum_table, r, side="right"))


def sgns_loss(inputs, outputs):
    """-sum log sigmoid(+-input . output) over one window: outputs[0] (the center, label 1) is
    pulled towards every input, the noise words (label 0) pushed away."""
    f = inputs @ outputs.T
    sign = np.where(np.arange(outputs.shape[0]) == 0, 1.0, -1.0)
    return float(np.sum(np.logaddexp(0, -sign * f)))


def gains(f, alpha):
    """(label - sigmoid(f)) * alpha over a window's scores (column 0 has label 1), sigmoid
    saturated past |f| = 6 as word2vec.c's table is."""
    f = np.asarray(f, np.float32)
    s = np.float32(1) / (np.float32(1) + np.exp(-f))
    s = np.where(f > MAX_EXP, np.float32(1), np.where(f < -MAX_EXP, np.float32(0), s))
    labels = np.zeros(f.shape[1], np.float32)
    labels[0] = 1
    return ((labels - s) * np.float32(alpha)).astype(np.float32)


def update_window(inputs, outputs, alpha):
    """One window: inputs (n_in, dim) against outputs (n_out, dim), row 0 the center. Returns
    the updates of both, computed from the values before the window: -alpha times the gradient
    of sgns_loss (up to the saturation)."""
    g = gains(inputs @ outputs.T, alpha)
    return g @ outputs, g.T @ inputs


def train_part(window, negative, sg, cbow_mean, ids, offsets, s0, s1, keep, cum_table, alpha0,
               alpha1, stream, syn0, syn1neg):
    n_words = max(1, int(offsets[-1] - offsets[0]))
    step = np.float32((alpha1 - alpha0) / n_words)
    trained = 0
    for s in range(s0, s1):
        sen, where = [], []
        for i in range(offsets[s], offsets[s + 1]):
            w = int(ids[i])
            if keep[w] < 1 and keep[w] < (stream.next() & 0xFFFF) / 65536.0:
                continue
            sen.append(w)
            where.append(i - offsets[0])
        trained += len(sen)
        for pos, center in enumerate(sen):
            alpha = np.float32(alpha0) + step * np.float32(where[pos])
            b = stream.next() % window
            context = [sen[c] for c in range(max(0, pos - window + b),
                                             min(len(sen), pos + window - b + 1)) if c != pos]
            if not context:
                continue
            inputs = syn0[context]
            if not sg:
                inputs = np.sum(inputs, axis=0, dtype=np.float32, keepdims=True)
                if cbow_mean:
                    inputs *= np.float32(1) / np.float32(len(context))
            noise = [noise_word(stream, cum_table) for _ in range(negative)]
            targets = [center] + [t for t in noise if t != center]
            d_in, d_out = update_window(inputs, syn1neg[targets], alpha)
            np.add.at(syn1neg, targets, d_out)
            if sg:
                np.add.at(syn0, context, d_in)
            else:
                scale = np.float32(1) if cbow_mean else np.float32(1) / np.float32(len(context))
                np.add.at(syn0, context, scale * d_in[0])
    return trained


def w2v_train(window, negative, sg, cbow_mean, ids, offsets, keep, cum_table, alpha0, alpha1,
              seeds, syn0, syn1neg):
    """Same arguments as seqkern._core.w2v_train; the parts run one after the other."""
    parts, n = len(seeds), len(offsets) - 1
    trained = 0
    for q in range(parts):
        stream = Stream(seeds[q])
        trained += train_part(window, negative, sg, cbow_mean, ids, offsets, n * q // parts,
                              n * (q + 1) // parts, keep, cum_table, alpha0, alpha1, stream,
                              syn0, syn1neg)
        seeds[q] = np.uint64(stream.state)
    return trained
