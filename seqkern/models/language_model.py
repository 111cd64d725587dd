"""LSTM language models (the book's chapters 5-6) on the fused kernels, book-style: explicit
forward/backward, params/grads dicts, no autograd.

    model = BetterRNNLM(vocab=vocab)                 # or RNNLM(vocab_size=V, ...)
    loss = model.forward(xs, ts)                     # xs, ts (B, T) token ids; mean loss, nats
    model.backward()                                 # adds into model.grads
    model.generate("def ", length=200, temperature=0.8, top_k=20, seed=0)
    model.save("lm.npz"); seqkern.load("lm.npz")

Inside, activations are time-major (T, B, ...) as the kernels want; only the small id arrays
are transposed. The LSTM is stateful: its state carries from one batch to the next (truncated
BPTT, the gradient cut at each batch's start) until reset_state().
"""
from __future__ import annotations

import contextlib

import numpy as np

from seqkern import checkpoint
from seqkern._checks import as_ids, base_seed, check_count, float_dtype, random_generator
from seqkern._ops import softmax_cross_entropy
from seqkern.data import EOS
from seqkern.metrics import perplexity
from seqkern.models.sampling import check_sampling, next_token
from seqkern.nn import LSTM, Dropout, Embedding, Linear, Model, SoftmaxCrossEntropy
from seqkern.nn.module import serialized


class RNNLM(Model, checkpoint.Saveable):
    """Embedding -> LSTM -> Linear, the book's Rnnlm (default sizes are the book's).

    num_layers LSTM layers; dropout after the embedding, between LSTM layers and before the
    output layer; tie_weights makes the output layer's weight the embedding's (needs
    wordvec_size == hidden_size). vocab (a seqkern.data.Vocabulary) lets generate take and
    return text and is saved with the model; vocab_size defaults to its size."""

    def __init__(self, vocab_size=None, wordvec_size=100, hidden_size=100, num_layers=1,
                 dropout=0.0, tie_weights=False, vocab=None, dtype=np.float32, seed=0):
        if vocab_size is None:
            if vocab is None:
                raise ValueError("vocab_size: give it, or a vocab")
            vocab_size = len(vocab)
        for name, v in (("vocab_size", vocab_size), ("wordvec_size", wordvec_size),
                        ("hidden_size", hidden_size), ("num_layers", num_layers)):
            check_count(name, v)  # before int() below, which truncated 2.5 and raised on inf
        if vocab is not None and len(vocab) != vocab_size:
            raise ValueError(f"vocab: has {len(vocab)} tokens, but vocab_size is {vocab_size}")
        if tie_weights and wordvec_size != hidden_size:
            raise ValueError(f"tie_weights: needs wordvec_size == hidden_size, got "
                             f"{wordvec_size} and {hidden_size}")
        self.config = dict(vocab_size=int(vocab_size), wordvec_size=int(wordvec_size),
                           hidden_size=int(hidden_size), num_layers=int(num_layers),
                           dropout=float(dropout), tie_weights=bool(tie_weights),
                           dtype=float_dtype(dtype).name)
        self.vocab = vocab
        V, E, H = vocab_size, wordvec_size, hidden_size
        seed = base_seed(seed)  # seed=None (or a Generator) once ended in None + 1
        self.embed = Embedding(V, E, dtype=dtype, seed=seed)
        self.embed.params["weight"][...] = random_generator(seed).uniform(-0.1, 0.1, (V, E))
        self.drop_in = Dropout(dropout, seed=seed + 1)
        self.lstm = LSTM(E, H, num_layers, dropout=dropout if num_layers > 1 else 0.0,
                         stateful=True, dtype=dtype, seed=seed + 2)
        self.drop_out = Dropout(dropout, seed=seed + 3)
        self.out = Linear(H, V, dtype=dtype, seed=seed + 4)
        self.out.params["bias"][...] = 0
        self.loss = SoftmaxCrossEntropy(overwrite_logits=True)
        if tie_weights:
            self.tie("embed.weight", "out.weight")

    # -- the book's interface -------------------------------------------------------------
    def predict(self, xs):
        """Logits (B, T, V) of the next token after each of xs (B, T) (a transposed view of
        the time-major result)."""
        return self._logits(self._time_major("xs", xs)).transpose(1, 0, 2)

    def forward(self, xs, ts):
        """Mean cross-entropy (nats) of predicting ts (B, T) from xs (B, T)."""
        xs, ts = self._time_major("xs", xs), self._time_major("ts", ts)
        if ts.shape != xs.shape:
            raise ValueError(f"ts: expected the shape of xs, {xs.shape[::-1]}, got {ts.shape[::-1]}")
        return float(self.loss.forward(self._logits(xs), ts))

    def backward(self, dout=1.0):
        dy = self.out.backward(self.loss.backward(dout))
        dx, _ = self.lstm.backward(self.drop_out.backward(dy))
        self.embed.backward(self.drop_in.backward(dx))

    def reset_state(self):
        self.lstm.reset_state()

    def _time_major(self, name, ids):
        ids = np.asarray(ids)
        if ids.ndim != 2 or 0 in ids.shape:
            raise ValueError(f"{name}: expected token ids of shape (batch, T), each at least 1, "
                             f"got {ids.shape}")
        return np.ascontiguousarray(ids.T)

    def _logits(self, ids):
        """ids (T, B) -> logits (T, B, V)."""
        x = self.drop_in.forward(self.embed.forward(ids))
        y, _ = self.lstm.forward(x)
        return self.out.forward(self.drop_out.forward(y))

    # -- evaluation and generation --------------------------------------------------------
    @serialized
    def perplexity(self, ids, batch_size=10, bptt=35):
        """Perplexity on a token stream: exp of the mean loss of every one of its len(ids) - 1
        next-token predictions. The stream is cut into batch_size rows (the last one padded and
        its padding ignored), read bptt steps at a time with the state carried, in eval mode
        from a zero state (the training mode and state are restored after)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or len(ids) < 2:
            raise ValueError(f"ids: expected a 1-D integer array of at least 2 tokens, got "
                             f"{ids.dtype} {ids.shape}")
        for name, v in (("batch_size", batch_size), ("bptt", bptt)):
            check_count(name, v)
        n = len(ids) - 1
        B = min(batch_size, n)
        L = -(-n // B)
        xs = np.zeros(B * L, np.int64)
        ts = np.full(B * L, -100, np.int64)  # softmax_cross_entropy's ignore_index
        xs[:n], ts[:n] = ids[:-1], ids[1:]
        xs, ts = xs.reshape(B, L), ts.reshape(B, L)
        total = 0.0
        with _evaluating(self):
            for t0 in range(0, L, bptt):
                logits = self._logits(np.ascontiguousarray(xs[:, t0:t0 + bptt].T))
                total += float(softmax_cross_entropy(logits, ts[:, t0:t0 + bptt].T,
                                                     reduction="sum"))
        return perplexity(total / n)

    @serialized
    def generate(self, prefix, length=100, temperature=1.0, top_k=None, top_p=None,
                 greedy=False, seed=None):
        """Continues prefix by `length` tokens, one at a time, each fed back in.

        prefix: text (needs the model's vocab; returns text) or token ids (returns an int64
        array); the result starts with the prefix. An empty prefix starts after a newline.
        Sampling: softmax(logits / temperature), restricted to the top_k tokens and to the top_p
        nucleus, seeded; greedy takes the most likely token. A word-level model stops after
        <eos>; any model stops where its logits hold NaN (weights that diverged). The training
        mode and state are restored after."""
        check_sampling(temperature, top_k, top_p)
        check_count("length", length, least=0)
        as_text = isinstance(prefix, str)
        if as_text:
            if self.vocab is None:
                raise ValueError("prefix: text needs a model with a vocab; pass token ids")
            ids = list(self.vocab.encode(prefix))
        else:  # (a list of words, or None, failed inside int() with no word on the prefix)
            arr = np.asarray(prefix)
            if arr.size and (arr.dtype == np.bool_ or arr.dtype.kind not in "iu"):
                raise TypeError(f"prefix: expected text (a str) or token ids (integers), got "
                                f"{prefix!r:.60}")
            ids = (as_ids("prefix", arr, self.config["vocab_size"]).reshape(-1).tolist()
                   if arr.size else [])
        given = len(ids)
        start = ids or [self._start_id()]
        eos = self.vocab.stoi[EOS] if self.vocab is not None and self.vocab.level == "word" else None
        rng = random_generator(seed)
        with _evaluating(self):
            logits = self._logits(np.array(start, dtype=np.int64)[:, None])[-1, 0]
            for _ in range(length):
                token = next_token(logits, rng, temperature, top_k, top_p, greedy)
                if token is None:  # NaN logits: nothing to draw from
                    break
                ids.append(token)
                if token == eos:
                    break
                logits = self._logits(np.array([[token]], dtype=np.int64))[0, 0]
        if as_text:
            # the prefix as given (decoding its ids made each unknown word or character
            # "<unk>"), then the continuation, a word model's after a space
            continuation = self.vocab.decode([i for i in ids[given:] if i != eos])
            space = " " if eos is not None and prefix and continuation and \
                not prefix[-1].isspace() else ""
            return prefix + space + continuation
        return np.array(ids, dtype=np.int64)

    def _start_id(self):
        if self.vocab is not None and self.vocab.level == "char" and "\n" in self.vocab:
            return self.vocab.stoi["\n"]
        return self.vocab.stoi[EOS] if self.vocab is not None else 0

    def __repr__(self):
        c = self.config
        return (f"{type(self).__name__}(vocab_size={c['vocab_size']}, "
                f"wordvec_size={c['wordvec_size']}, hidden_size={c['hidden_size']}, "
                f"num_layers={c['num_layers']}, dropout={c['dropout']}, "
                f"tie_weights={c['tie_weights']})")


class BetterRNNLM(RNNLM):
    """The book's BetterRnnlm: two LSTM layers, dropout 0.5 between layers and around them,
    input and output embeddings tied (sizes 650, as the book and Zaremba et al.'s medium
    model)."""

    def __init__(self, vocab_size=None, wordvec_size=650, hidden_size=650, num_layers=2,
                 dropout=0.5, tie_weights=True, vocab=None, dtype=np.float32, seed=0):
        super().__init__(vocab_size, wordvec_size, hidden_size, num_layers, dropout, tie_weights,
                         vocab, dtype, seed)


@contextlib.contextmanager
def _evaluating(model):
    """with _evaluating(model): eval mode and a zero state inside, the model's mode and carried
    state as they were after."""
    state = model.lstm.state
    with model.evaluating():
        model.reset_state()
        try:
            yield model
        finally:
            model.lstm.state = state
