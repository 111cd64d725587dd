"""NumPy twin of seqkern._core.w2v_train: the same updates, random stream and order, one word
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


def sgns_loss(l1, outputs, labels):
    """-sum log sigmoid(+-l1 . out): label 1 pulls l1 and out together, 0 pushes them apart."""
    f = outputs @ l1
    sign = np.where(labels == 1, 1.0, -1.0)
    return float(np.sum(np.logaddexp(0, -sign * f)))


def gain(f, label, alpha):
    """The update scale: (label - sigmoid(f)) * alpha, sigmoid saturated past |f| = 6."""
    if f > MAX_EXP:
        return np.float32((label - 1.0) * alpha)
    if f < -MAX_EXP:
        return np.float32(label * alpha)
    return np.float32((label - np.float32(1) / (np.float32(1) + np.exp(np.float32(-f)))) * alpha)


def negative_sampling(center, l1, alpha, negative, cum_table, stream, syn1neg, neu1e):
    for d in range(negative + 1):
        target, label = center, 1.0
        if d > 0:
            target = noise_word(stream, cum_table)
            if target == center:
                continue
            label = 0.0
        l2 = syn1neg[target]
        g = gain(np.dot(l1, l2), label, alpha)
        neu1e += g * l2
        l2 += g * l1


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
            context = [c for c in range(max(0, pos - window + b), min(len(sen), pos + window - b + 1))
                       if c != pos]
            if sg:
                for c in context:
                    l1 = syn0[sen[c]]
                    neu1e = np.zeros_like(l1)
                    negative_sampling(center, l1, alpha, negative, cum_table, stream, syn1neg, neu1e)
                    l1 += neu1e
                continue
            if not context:
                continue
            neu1 = np.sum([syn0[sen[c]] for c in context], axis=0, dtype=np.float32)
            inv = np.float32(1) / np.float32(len(context))
            if cbow_mean:
                neu1 = neu1 * inv
            neu1e = np.zeros_like(neu1)
            negative_sampling(center, neu1, alpha, negative, cum_table, stream, syn1neg, neu1e)
            if not cbow_mean:
                neu1e *= inv
            for c in context:
                syn0[sen[c]] += neu1e
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
