"""NumPy twin of seqkern._core.w2v_train, w2v_score and huffman_tree: the same updates, random
stream and order, one window at a time in Python (for tests on small corpora), plus the losses
whose gradients the updates follow."""
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

    def uniform24(self):
        """Uniform in [0, 1) from the top 24 bits (subsampling; the kernel says why)."""
        return (self.next() >> 40) / 16777216.0


def noise_word(stream, cum_table):
    r = (stream.next() >> 16) % int(cum_table[-1])
    return int(np.searchsorted(cum_table, r, side="right"))


def window_loss(inputs, outputs, labels):
    """-sum log sigmoid(+-input . output) over one window: outputs with label 1 (the center in
    negative sampling; an inner node whose branch bit is 0 in hierarchical softmax) are pulled
    towards every input, those with label 0 pushed away."""
    f = inputs @ outputs.T
    sign = np.where(np.asarray(labels) > 0, 1.0, -1.0)
    return float(np.sum(np.logaddexp(0, -sign * f)))


def gains(f, labels, alpha, skip=False):
    """(label - sigmoid(f)) * alpha over a window's scores. Past |f| = 6, where word2vec.c's
    table ends, the sigmoid saturates to 0 or 1 (negative sampling) or, with skip (hierarchical
    softmax), the gain is 0."""
    f = np.asarray(f, np.float32)
    s = np.float32(1) / (np.float32(1) + np.exp(-f))
    s = np.where(f > MAX_EXP, np.float32(1), np.where(f < -MAX_EXP, np.float32(0), s))
    g = ((np.asarray(labels, np.float32) - s) * np.float32(alpha)).astype(np.float32)
    return np.where(np.abs(f) >= MAX_EXP, np.float32(0), g) if skip else g


def reported_loss(f, labels):
    """What compute_loss adds for a window: window_loss over the scores with |f| < 6."""
    f = np.asarray(f, np.float64)
    signed = np.where(np.asarray(labels) > 0, f, -f)
    return float(np.sum(np.where(np.abs(f) < MAX_EXP, np.logaddexp(0, -signed), 0.0)))


def update_window(inputs, outputs, labels, alpha, skip=False):
    """One window: inputs (n_in, dim) against outputs (n_out, dim) with their labels. Returns the
    updates of both, computed from the values before the window (-alpha times the gradient of
    window_loss, up to the saturation; see gains for skip), and the window's reported loss."""
    f = inputs @ outputs.T
    g = gains(f, labels, alpha, skip)
    return g @ outputs, g.T @ inputs, reported_loss(f, labels)


def huffman_tree(counts):
    """word2vec.c's CreateBinaryTree: (offsets, points, codes) as seqkern._core.huffman_tree."""
    counts = np.asarray(counts, np.int64)
    V = len(counts)
    order = np.argsort(-counts, kind="stable")
    count = [int(c) for c in counts[order]] + [2**63 - 1] * V
    parent, branch = [0] * (2 * V), [0] * (2 * V)
    leaf, inner = V - 1, V
    for a in range(V - 1):
        pair = []
        for _ in range(2):
            if leaf >= 0 and count[leaf] < count[inner]:
                pair.append(leaf)
                leaf -= 1
            else:
                pair.append(inner)
                inner += 1
        count[V + a] = count[pair[0]] + count[pair[1]]
        parent[pair[0]] = parent[pair[1]] = V + a
        branch[pair[1]] = 1
    rank = np.empty(V, np.int64)
    rank[order] = np.arange(V)
    offsets, points, codes = [0], [], []
    for w in range(V):
        path, bits, b = [], [], int(rank[w])
        while b != 2 * V - 2:
            path.append(parent[b] - V)
            bits.append(branch[b])
            b = parent[b]
        points += path[::-1]
        codes += bits[::-1]
        offsets.append(len(points))
    return np.array(offsets, np.int64), np.array(points, np.int32), np.array(codes, np.uint8)


def train_part(window, negative, sg, cbow_mean, shrink_windows, ids, offsets, s0, s1, keep,
               cum_table, alpha0, alpha1, stream, syn0, syn1neg, tree, syn1, lockf=None):
    """One run of sentences [s0, s1): returns (words trained, reported loss). lockf: word w's
    input-vector updates scaled by lockf[w % len(lockf)] (gensim's vectors_lockf)."""
    lock = np.ones(1, np.float32) if lockf is None else np.asarray(lockf, np.float32)
    n_words = max(1, int(offsets[-1] - offsets[0]))
    step = np.float32((alpha1 - alpha0) / n_words)
    trained, loss = 0, 0.0
    for s in range(s0, s1):
        sen, where = [], []
        for i in range(offsets[s], offsets[s + 1]):
            w = int(ids[i])
            if keep[w] < 1 and keep[w] < stream.uniform24():
                continue
            sen.append(w)
            where.append(i - offsets[0])
        trained += len(sen)
        for pos, center in enumerate(sen):
            alpha = np.float32(alpha0) + step * np.float32(where[pos])
            b = stream.next() % window if shrink_windows else 0
            context = [sen[c] for c in range(max(0, pos - window + b),
                                             min(len(sen), pos + window - b + 1)) if c != pos]
            if not context:  # a one-word sentence: nothing drawn past the window
                continue
            noise = [noise_word(stream, cum_table) for _ in range(negative)]
            inputs = syn0[context]
            if not sg:
                inputs = np.sum(inputs, axis=0, dtype=np.float32, keepdims=True)
                if cbow_mean:
                    inputs *= np.float32(1) / np.float32(len(context))
            d_in = np.zeros_like(inputs)
            if tree is not None:  # hierarchical softmax: the inner nodes on the center's path
                t_offsets, points, codes = tree
                nodes = points[t_offsets[center]:t_offsets[center + 1]]
                labels = 1.0 - codes[t_offsets[center]:t_offsets[center + 1]].astype(np.float32)
                for r in range(len(inputs)):  # one input at a time, as word2vec.c
                    d, d_out, l = update_window(inputs[r:r + 1], syn1[nodes], labels, alpha,
                                                skip=True)
                    syn1[nodes] += d_out  # a path's nodes are distinct
                    d_in[r] += d[0]
                    loss += l
            if negative:
                targets = [center] + [t for t in noise if t != center]
                labels = np.array([1.0] + [0.0] * (len(targets) - 1))
                d, d_out, l = update_window(inputs, syn1neg[targets], labels, alpha)
                np.add.at(syn1neg, targets, d_out)
                d_in += d
                loss += l
            factors = lock[np.asarray(context) % len(lock)][:, None]
            if sg:
                np.add.at(syn0, context, factors * d_in)
            else:
                scale = np.float32(1) if cbow_mean else np.float32(1) / np.float32(len(context))
                np.add.at(syn0, context, (scale * factors) * d_in[0])
    return trained, loss


def w2v_train(window, negative, sg, cbow_mean, shrink_windows, ids, offsets, keep, cum_table,
              alpha0, alpha1, seeds, syn0, syn1neg, tree, syn1, compute_loss, bounds=None,
              lockf=None):
    """Same arguments and result (words trained, loss) as seqkern._core.w2v_train; the parts run
    one after the other."""
    parts, n = len(seeds), len(offsets) - 1
    if bounds is None:
        bounds = [n * q // parts for q in range(parts + 1)]
    trained, loss = 0, 0.0
    for q in range(parts):
        stream = Stream(seeds[q])
        t, l = train_part(window, negative, sg, cbow_mean, shrink_windows, ids, offsets,
                          bounds[q], bounds[q + 1], keep, cum_table, alpha0, alpha1,
                          stream, syn0, syn1neg, tree, syn1, lockf)
        trained += t
        loss += l
        seeds[q] = np.uint64(stream.state)
    return trained, (loss if compute_loss else 0.0)


def log_sigmoid_table():
    """gensim's table of log sigmoid (word2vec_inner.pyx's init), in its mix of float32 and
    float64: entry i is log sigmoid((i / 1000 * 2 - 1) * 6)."""
    x = (np.arange(1000, dtype=np.float32) / np.float32(1000)).astype(np.float64) * 2.0 - 1.0
    e = np.exp(x * 6.0).astype(np.float32).astype(np.float64)
    e = (e / (e + 1.0)).astype(np.float32).astype(np.float64)
    return np.log(e).astype(np.float32)


def w2v_score(window, sg, cbow_mean, ids, offsets, syn0, tree, syn1):
    """seqkern._core.w2v_score: gensim's Word2Vec.score of each sentence, one window at a time.
    A score f in (-6, 6) adds the table's entry int((f + 6) * 83), as gensim reads it."""
    table = log_sigmoid_table()
    t_offsets, points, codes = tree
    out = np.zeros(len(offsets) - 1, np.float32)
    for s in range(len(offsets) - 1):
        sen = [int(w) for w in ids[offsets[s]:offsets[s + 1]]]
        total = 0.0
        for pos, center in enumerate(sen):
            path = slice(t_offsets[center], t_offsets[center + 1])
            sign = np.where(codes[path] > 0, np.float32(-1), np.float32(1))
            context = [sen[c] for c in range(max(0, pos - window), min(len(sen), pos + window + 1))
                       if c != pos]
            if sg:
                inputs = syn0[context]
            else:  # the window's mean or sum; zeros for a word alone
                inputs = np.sum(syn0[context], axis=0, dtype=np.float32, keepdims=True)
                if cbow_mean and context:
                    inputs *= np.float32(1) / np.float32(len(context))
            f = (inputs @ syn1[points[path]].T).astype(np.float32) * sign
            kept = f[(f > -MAX_EXP) & (f < MAX_EXP)].astype(np.float64)
            total += float(np.sum(table[((kept + 6.0) * 83).astype(np.int64)], dtype=np.float64))
        out[s] = total
    return out
