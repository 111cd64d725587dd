"""Encoder-decoder models (the book's chapters 7-8) on the fused kernels, book-style:

    model = AttentionSeq2Seq(vocab, wordvec_size=16, hidden_size=256)
    loss = model.forward(src, lengths, tgt)     # src (B, S) ids, lengths (B,), tgt (B, T+2)
    model.backward()                            # adds into model.grads
    model.generate(["Sep 27, 1994"], max_len=12, beam_size=4)   # -> ["1994-09-27"]

Encoder: Embedding -> LSTM (bidirectional_encoder: both directions, the decoder then twice as
wide) over each source's own length (the kernels take `lengths`: no padding steps run); with
reverse_input each source is read back to front (the book's trick). Decoders, fed the target
shifted right (teacher forcing) from the encoder's last state:
    Seq2Seq          Embedding -> LSTM -> Linear
    PeekySeq2Seq     the encoder's state also joins every decoder input and the output layer
    AttentionSeq2Seq the decoder's output attends over the encoder's outputs (sk.attention),
                     and [context, output] -> Linear
Activations are time-major inside, as the kernels want; only ids and the attention's operands
are transposed.
"""
from __future__ import annotations

import numpy as np

from seqkern import checkpoint
from seqkern._checks import check_count, check_lengths, float_dtype, random_generator
from seqkern._ops import swap01
from seqkern.data.seq2seq import PAD, START, encode_sources
from seqkern.data.vocabulary import EOS
from seqkern.models.sampling import best_first
from seqkern.nn import LSTM, Attention, Embedding, Linear, Model, SoftmaxCrossEntropy
from seqkern.nn.module import serialized
from seqkern.reference.cross_entropy import log_softmax


def _step_log_probs(logits):
    """A decoder step's (1, B, V) logits as (B, V) log-probabilities in float64, in which beam
    scores add up. A row of NaN or only -inf logits comes out NaN, and the searches end it; NumPy's
    warning about it would only repeat that."""
    with np.errstate(invalid="ignore"):
        return log_softmax(logits[0].astype(np.float64))


class Seq2Seq(Model, checkpoint.Saveable):
    decoder_kind = "plain"

    def __init__(self, vocab, wordvec_size=16, hidden_size=128, reverse_input=False,
                 bidirectional_encoder=False, attention_score="dot", dtype=np.float32, seed=0):
        for token in (PAD, START, EOS):
            if token not in vocab:
                raise ValueError(f"vocab: needs the token {token!r} (see seqkern.data.Seq2SeqData)")
        for name, v in (("wordvec_size", wordvec_size), ("hidden_size", hidden_size)):
            check_count(name, v)  # before int() below, which truncated 2.5 and raised on inf
        self.vocab = vocab
        self.config = dict(wordvec_size=int(wordvec_size), hidden_size=int(hidden_size),
                           reverse_input=bool(reverse_input),
                           bidirectional_encoder=bool(bidirectional_encoder),
                           attention_score=attention_score, dtype=float_dtype(dtype).name)
        self.pad, self.start, self.eos = (vocab.stoi[t] for t in (PAD, START, EOS))
        V, E, H = len(vocab), wordvec_size, hidden_size
        D = 2 if bidirectional_encoder else 1
        Hd = D * H  # the decoder's width: the encoder's last state, both directions side by side
        rng = random_generator(seed)
        seeds = rng.integers(0, 2**31, 8)
        self.enc_embed = Embedding(V, E, dtype=dtype, seed=seeds[0])
        self.encoder = LSTM(E, H, bidirectional=bidirectional_encoder, dtype=dtype, seed=seeds[1])
        self.dec_embed = Embedding(V, E, dtype=dtype, seed=seeds[2])
        peeky = self.decoder_kind == "peeky"
        self.decoder = LSTM(E + Hd if peeky else E, Hd, dtype=dtype, seed=seeds[3])
        if self.decoder_kind == "attention":
            self.attention = Attention(attention_score, Hd, Hd, Hd, dtype=dtype, seed=seeds[4])
        out_in = Hd if self.decoder_kind == "plain" else 2 * Hd
        self.out = Linear(out_in, V, dtype=dtype, seed=seeds[5])
        # The book's initial weights: small embeddings, recurrent and output weights
        # N(0, 1/fan_in), zero biases. Trained with Adam, they learnt the date task several times
        # faster than torch's uniform +-1/sqrt(H) (15% against 0.4% test accuracy after two
        # epochs, hidden 256, lr 1e-3).
        for emb in (self.enc_embed, self.dec_embed):
            emb.params["weight"] *= 0.01
        for layer in (self.encoder, self.decoder, self.out):
            for name, p in layer.params.items():
                if name.startswith("bias"):
                    p[...] = 0
                else:
                    p[...] = rng.standard_normal(p.shape) / np.sqrt(p.shape[1])
        self.loss = SoftmaxCrossEntropy(ignore_index=self.pad, overwrite_logits=True)
        self._ctx = None

    # -- the book's interface -------------------------------------------------------------
    def forward(self, src, lengths, tgt):
        """Mean cross-entropy (nats, <pad> ignored) of tgt[:, 1:] given src and tgt[:, :-1]."""
        src, lengths = self._check_src(src, lengths)
        tgt = np.asarray(tgt)
        if tgt.ndim != 2 or tgt.shape[0] != src.shape[0] or tgt.shape[1] < 2:
            raise ValueError(f"tgt: expected shape (batch, T + 2) with batch = {src.shape[0]}, "
                             f"got {tgt.shape}")
        enc = self._encode(src, lengths)
        logits, self._ctx = self._decode(tgt[:, :-1].T, enc, enc["state"])
        return float(self.loss.forward(logits, np.ascontiguousarray(tgt[:, 1:].T)))

    def backward(self, dout=1.0):
        c = self._ctx
        if c is None:
            raise RuntimeError("backward: call forward first")
        d = self.out.backward(self.loss.backward(dout))        # (T, B, out_in)
        Hd = self.decoder.hidden_size
        dh_enc = np.zeros_like(c["enc"]["state"][0][0])          # (B, Hd)
        dhs = None
        if self.decoder_kind == "plain":
            dy = d
        elif self.decoder_kind == "peeky":
            dy = np.ascontiguousarray(d[..., :Hd])
            dh_enc += d[..., Hd:].sum(axis=0)
        else:
            dy = np.ascontiguousarray(d[..., Hd:])
            dq, dhs, _ = self.attention.backward(swap01(d[..., :Hd]))
            dy += swap01(dq)
        dx, (dh0, dc0) = self.decoder.backward(dy)
        if self.decoder_kind == "peeky":
            dh_enc += dx[..., self.dec_embed.embedding_dim:].sum(axis=0)
            dx = np.ascontiguousarray(dx[..., :self.dec_embed.embedding_dim])
        self.dec_embed.backward(dx)
        dh_enc += dh0[0]
        self._encoder_backward(dh_enc, dc0[0], None if dhs is None else swap01(dhs))

    # -- encoder ----------------------------------------------------------------------------
    def _check_src(self, src, lengths):
        src = np.asarray(src)
        if src.ndim != 2 or 0 in src.shape:
            raise ValueError(f"src: expected token ids of shape (batch, S), got {src.shape}")
        B, S = src.shape
        if lengths is None:
            return src, np.full(B, S, np.int64)
        # whole numbers of any dtype, as the recurrent layers take them (float lengths of 4.5, or
        # of float16, reached numpy's indexing)
        return src, check_lengths(lengths, S, B, "S").astype(np.int64)

    def _encode(self, src, lengths):
        """Encoder outputs hs (S, B, Hd) and the decoder's first state ((1, B, Hd) h and c)."""
        if self.config["reverse_input"]:  # each source back to front within its own length
            S = src.shape[1]
            idx = np.where(np.arange(S) < lengths[:, None], lengths[:, None] - 1 - np.arange(S),
                           np.arange(S))
            src = np.take_along_axis(src, idx, axis=1)
        x = self.enc_embed.forward(np.ascontiguousarray(src.T))
        hs, (h_n, c_n) = self.encoder.forward(x, lengths=lengths)
        B = src.shape[0]
        # the last layer's directions side by side: (D, B, H) -> (1, B, D*H)
        state = tuple(np.ascontiguousarray(s.transpose(1, 0, 2).reshape(1, B, -1)) for s in (h_n, c_n))
        return {"hs": hs, "state": state, "lengths": lengths}

    def _encoder_backward(self, dh, dc, dhs):
        """Backward through the encoder from the gradients of the decoder's first state dh, dc
        (B, Hd) and of its outputs dhs (S, B, Hd) or None."""
        D, H = self.encoder.num_directions, self.encoder.hidden_size
        B = dh.shape[0]
        split = [np.ascontiguousarray(g.reshape(B, D, H).transpose(1, 0, 2)) for g in (dh, dc)]
        dx, _ = self.encoder.backward(dhs, tuple(split))
        self.enc_embed.backward(dx)

    # -- decoder ----------------------------------------------------------------------------
    def _decode(self, ids, enc, state):
        """ids (T, B) -> logits (T, B, V), the decoder's final state and what backward needs."""
        x = self.dec_embed.forward(np.ascontiguousarray(ids))
        h_enc = enc["state"][0][0]                                 # (B, Hd)
        T = x.shape[0]
        if self.decoder_kind == "peeky":
            x = np.concatenate([x, np.broadcast_to(h_enc, (T, *h_enc.shape))], axis=2)
        y, dec_state = self.decoder.forward(x, state)
        if self.decoder_kind == "peeky":
            y = np.concatenate([y, np.broadcast_to(h_enc, (T, *h_enc.shape))], axis=2)
        elif self.decoder_kind == "attention":
            context = self.attention.forward(swap01(y), swap01(enc["hs"]), lengths=enc["lengths"])
            y = np.concatenate([swap01(context), y], axis=2)
        return self.out.forward(y), {"enc": enc, "state": dec_state}

    # -- generation -------------------------------------------------------------------------
    @serialized
    def generate(self, src, max_len=30, beam_size=1, lengths=None):
        """Decodes sources greedily (beam_size=1) or by beam search, batched; a hypothesis ends
        at <eos>, and beam search ranks finished ones by mean log-probability per token (length
        normalised). src: a list of strings (returns strings) or ids (B, S) with lengths
        (returns lists of ids, without <s> and <eos>)."""
        check_count("beam_size", beam_size)
        check_count("max_len", max_len, least=0)
        if isinstance(src, str):
            raise TypeError("src: expected a list of strings (or ids), got one str: "
                            "generate([text])[0] decodes one")
        as_text = isinstance(src, (list, tuple)) and all(isinstance(s, str) for s in src)
        if as_text:
            src, lengths = encode_sources(self.vocab, list(src))
        src, lengths = self._check_src(src, lengths)
        with self.evaluating():
            if beam_size == 1:
                out = self._greedy(src, lengths, int(max_len))
            else:
                out = self._beam_search(src, lengths, int(max_len), int(beam_size))
        return [self.vocab.decode(ids) for ids in out] if as_text else out

    def _greedy(self, src, lengths, max_len):
        """_beam_search(..., K=1) with every row at once. A row of log-probabilities holds finite
        values (and maybe -inf), where the argmax is the head of the stable sort the beam search
        reads, or none (NaN or -inf logits), which ends the row's growth either way. The beam
        search, a row at a time in Python, took 2-3x its decoder's time over 1,000 sources."""
        B = src.shape[0]
        enc = self._encode(src, lengths)
        state = enc["state"]
        tokens = np.full((B, max_len + 1), self.eos, dtype=np.int64)
        tokens[:, 0] = self.start
        scores = np.zeros(B)
        ended = np.full(B, -1)  # the step that emitted <eos>, or -1
        for t in range(max_len):
            logits, ctx = self._decode(tokens[:, t:t + 1].T, enc, state)
            cand = scores[:, None] + _step_log_probs(logits)
            best = np.argmax(cand, axis=1)
            score = cand[np.arange(B), best]
            live = (ended < 0) & np.isfinite(score)
            ended[live & (best == self.eos)] = t
            ended[(ended < 0) & ~live] = t  # no token to take: the row ends here too
            if (ended >= 0).all():
                break
            grows = live & (best != self.eos)
            tokens[:, t + 1] = np.where(grows, best, self.eos)
            scores = score  # rows that stopped growing are never read again
            state = ctx["state"]
        else:
            t = max_len
        return [tokens[b, 1:ended[b] + 1 if ended[b] >= 0 else t + 1].tolist() for b in range(B)]

    def _beam_search(self, src, lengths, max_len, K):
        B = src.shape[0]
        enc = self._encode(src, lengths)
        rep = np.repeat(np.arange(B), K)  # row b*K + k is beam k of example b
        enc = {"hs": np.ascontiguousarray(enc["hs"][:, rep]), "lengths": enc["lengths"][rep],
               "state": tuple(np.ascontiguousarray(s[:, rep]) for s in enc["state"])}
        state = enc["state"]
        scores = np.full((B, K), -np.inf)
        scores[:, 0] = 0.0  # one live beam to start from
        tokens = np.full((B * K, 1), self.start, dtype=np.int64)
        finished = [[] for _ in range(B)]  # (normalised score, ids)
        for t in range(max_len):
            logits, ctx = self._decode(tokens[:, -1:].T, enc, state)
            logp = _step_log_probs(logits)
            cand = (scores[:, :, None] + logp.reshape(B, K, -1)).reshape(B, -1)
            new_rows, new_scores, new_tokens = [], np.full((B, K), -np.inf), []
            for b in range(B):
                alive = []
                if len(finished[b]) < K:
                    # K alive and K ended at most: the 2K best (sorting all K * V candidates
                    # took a third of a beam-4 search over 5,000 words)
                    for c in best_first(cand[b], 2 * K):
                        if not np.isfinite(cand[b, c]) or len(alive) == K:
                            break
                        k, token = divmod(int(c), logp.shape[1])
                        if token == self.eos:
                            ids = tokens[b * K + k, 1:].tolist()
                            finished[b].append((cand[b, c] / (len(ids) + 1), ids))
                            if len(finished[b]) == K:
                                break
                        else:
                            alive.append((b * K + k, token, cand[b, c]))
                alive += [(b * K, self.eos, -np.inf)] * (K - len(alive))  # dead slots
                for k, (row, token, score) in enumerate(alive):
                    new_rows.append(row)
                    new_tokens.append(token)
                    new_scores[b, k] = score
            if all(len(f) >= K for f in finished):
                break
            rows = np.array(new_rows)
            tokens = np.concatenate([tokens[rows], np.array(new_tokens)[:, None]], axis=1)
            state = tuple(np.ascontiguousarray(s[:, rows]) for s in ctx["state"])
            scores = new_scores
        out = []
        for b in range(B):
            if not finished[b]:  # nothing ended within max_len: the best live beam
                k = int(np.argmax(scores[b]))
                ids = tokens[b * K + k, 1:].tolist()
                if self.eos in ids:  # a beam that died (no finite candidate) ends there
                    ids = ids[:ids.index(self.eos)]
                finished[b].append((scores[b, k], ids))
            out.append(max(finished[b], key=lambda f: f[0])[1])
        return out

    def __repr__(self):
        c = self.config
        return (f"{type(self).__name__}(vocab_size={len(self.vocab)}, "
                f"hidden_size={c['hidden_size']}, reverse_input={c['reverse_input']}, "
                f"bidirectional_encoder={c['bidirectional_encoder']})")


class PeekySeq2Seq(Seq2Seq):
    decoder_kind = "peeky"


class AttentionSeq2Seq(Seq2Seq):
    decoder_kind = "attention"

    @serialized
    def attention_map(self, source, max_len=30):
        """(output text, weights (len(output) + 1, len(source))): greedy decoding of one source
        string and the attention each output step (the last one emits <eos>) paid to each
        source character, in the source's own order even with reverse_input."""
        if not isinstance(source, str):
            raise TypeError(f"source: expected one str (the example to map), got "
                            f"{type(source).__name__}")
        output = self.generate([source], max_len)[0]
        src, lengths = encode_sources(self.vocab, [source])
        tgt = np.array([[self.start, *self.vocab.encode(output)]], dtype=np.int64)
        keep = self.attention.keep_weights
        self.attention.keep_weights = True
        try:
            with self.evaluating():
                enc = self._encode(src, lengths)
                self._decode(tgt.T, enc, enc["state"])
                weights = self.attention.weights[0]
        finally:
            self.attention.keep_weights = keep
        if self.config["reverse_input"]:
            weights = weights[:, ::-1]
        return output, np.ascontiguousarray(weights)
