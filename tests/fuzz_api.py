"""Malformed calls to seqkern's public API, for test_fuzz.py: a valid call with one or two of its
arguments replaced by something wrong (another dtype or rank, a slice, a transpose, NaN, a huge
or negative number, None, a string...). Run as a script in a child process, so that a crash or a
hang shows as the child's exit status:

    python tests/fuzz_api.py SEED CALLS LAST_FILE

Before each call it writes the call's description to LAST_FILE (the call a crash interrupted);
it prints one line "UNCLEAR <case> <changes> <exception>" for each exception other than the
clear ones (TypeError, ValueError, MemoryError for absurd sizes), and "DONE" at the end."""
import io
import sys

import numpy as np

import seqkern as sk
from seqkern import bench, metrics, models, nn, optim
from seqkern.book import attention_layer, time_layers
from seqkern.data import Seq2SeqData, addition_pairs
from seqkern.models import RNNLM, KeyedVectors, PPMIVectors, Word2Vec

CLEAR = (TypeError, ValueError, MemoryError)
INVALID_AS_BUILT = {"prepacked_for_another"}  # cases whose unchanged call is already wrong
CELLS = {"lstm": 4, "gru": 3, "gru_reset_before": 3, "rnn_tanh": 1, "rnn_relu": 1}


def readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def unaligned(a):
    """a's values at an odd address."""
    raw = np.frombuffer(b"\0" + a.tobytes(), np.uint8)[1:]
    return raw.view(a.dtype).reshape(a.shape)


def array_variants(a):
    """Wrong versions of a valid array a."""
    v = {"int32": a.astype(np.int32), "float16": a.astype(np.float16),
         "float64": a.astype(np.float64), "complex64": a.astype(np.complex64),
         "bool": a.astype(bool), "object": a.astype(object), "None": None, "list": a.tolist(),
         "scalar": np.float32(1.5), "str": "abc", "add_last_axis": a[..., None],
         "big_ints": np.full(a.shape, 2**40), "negative_ints": np.full(a.shape, -5),
         "readonly": readonly(a)}
    if a.ndim >= 1:
        v.update({"drop_first_axis": a[0], "empty": a[:0], "one_less": a[:-1],
                  "one_more": np.concatenate([a, a[:1]]), "reversed": a[::-1],
                  "strided": np.repeat(a, 2, axis=0)[::2], "unaligned": unaligned(a)})
        if a.dtype.kind == "f":
            v.update({"nan": np.full_like(a, np.nan), "inf": np.full_like(a, np.inf),
                      "huge": np.full_like(a, 1e30)})
    if a.ndim >= 2:
        v.update({"transposed": a.T, "one_less_column": a[..., :-1], "no_columns": a[..., :0],
                  "add_first_axis": a[None], "fortran": np.asfortranarray(a)})
    return v


SCALARS = {"negative": -3, "zero": 0, "huge": 2**62, "fraction": 1.5, "nan": float("nan"),
           "inf": float("inf"), "None": None, "str": "zz", "list": [1], "array": np.arange(3),
           "True": True}


def mutate(kw, rng):
    """kw with one or two values replaced at random, and what was replaced."""
    kw, changes = dict(kw), {}
    for key in rng.choice(list(kw), size=min(len(kw), int(rng.integers(1, 3))), replace=False):
        key = str(key)
        value = kw[key]
        if isinstance(value, list) and value and isinstance(value[0], tuple):  # weight lists
            i, j = int(rng.integers(len(value))), int(rng.integers(len(value[0])))
            options = array_variants(value[i][j]) if value[i][j] is not None else SCALARS
            name = str(rng.choice(sorted(options)))
            entries = [list(t) for t in value]
            entries[i][j] = options[name]
            kw[key] = [tuple(t) for t in entries]
            changes[key] = f"[{i}][{j}] {name}"
            continue
        options = array_variants(value) if isinstance(value, np.ndarray) else SCALARS
        name = str(rng.choice(sorted(options)))
        kw[key], changes[key] = options[name], name
    return kw, changes


def sizes(rng, n, high=6):
    return [int(v) for v in rng.integers(1, high, n)]


def recurrent(cell):
    def build(rng):
        T, B, I, H = sizes(rng, 4)
        p = bench.make_problem(cell, T, B, I, H, seed=int(rng.integers(1000)))
        p["lengths"] = rng.integers(1, T + 1, B) if rng.random() < 0.5 else None
        p["training"] = bool(rng.random() < 0.5)
        return p

    def call(kw):
        out = getattr(sk, cell)(**kw)
        if kw.get("training") is True:  # dy, dh_n (, dc_n) of the outputs' shapes
            getattr(sk, cell + "_backward")(out[-1], *(np.ones_like(o) for o in out[:-1]))
    return build, call


def recurrent_backward(cell):
    def build(rng):
        T, B, I, H = sizes(rng, 4)
        p = bench.make_problem(cell, T, B, I, H, seed=int(rng.integers(1000)))
        *_, saved = getattr(sk, cell)(**p, training=True)
        return dict(zip(("saved", "dy", "dh_n", "dc_n"), (saved, *bench.output_grads(cell, p))))
    return build, lambda kw: getattr(sk, cell + "_backward")(**kw)


def stack_weights(rng, cell, L, D, I, H):
    G = CELLS[cell]
    return [tuple(rng.standard_normal(shape).astype(np.float32)
                  for shape in ((G * H, I if l == 0 else D * H), (G * H, H), (G * H,), (G * H,)))
            for l in range(L) for _ in range(D)]


def stack_build(rng):
    cell = str(rng.choice(sorted(CELLS)))
    (L, D), (T, B, I, H) = sizes(rng, 2, 3), sizes(rng, 4)
    kw = {"cell": cell, "x": rng.standard_normal((T, B, I)).astype(np.float32),
          "weights": stack_weights(rng, cell, L, D, I, H), "bidirectional": D == 2,
          "h0": rng.standard_normal((L * D, B, H)).astype(np.float32),
          "lengths": rng.integers(1, T + 1, B), "training": bool(rng.random() < 0.5)}
    if cell == "lstm":
        kw["c0"] = rng.standard_normal((L * D, B, H)).astype(np.float32)
    return kw


def stack_call(kw):
    out = sk.recurrent_stack(**kw)
    if kw.get("training") is True:
        sk.recurrent_stack_backward(out[-1], np.ones_like(out[0]))


def prepacked(another):
    """Weights packed for one network, then an inference call on them (on views of them half the
    time), or with another network's weights (invalid as built: ValueError)."""
    def build(rng):
        cell = rng.choice(sorted(CELLS))
        (L, D), (I, H) = sizes(rng, 2, 3), sizes(rng, 2)
        weights = stack_weights(rng, cell, L, D, I, H)
        precision = "bfloat16" if rng.random() < 0.3 else "float32"
        packed = sk.prepack_weights(cell, weights, bidirectional=D == 2, precision=precision)
        if another:
            cell = rng.choice(sorted(CELLS))
            (L, D), (I, H) = sizes(rng, 2, 3), sizes(rng, 2)
            weights = stack_weights(rng, cell, L, D, I, H)
        elif rng.random() < 0.5:
            weights = [tuple(w[:] for w in layer) for layer in weights]
        T, B = sizes(rng, 2)
        return {"cell": cell, "x": rng.standard_normal((T, B, I)).astype(np.float32),
                "weights": weights, "bidirectional": D == 2, "prepacked": packed,
                "precision": precision}
    return build, lambda kw: sk.recurrent_stack(**kw)


def attention_build(rng):
    B, Tq, Tk, H = sizes(rng, 4)
    score = rng.choice(["dot", "general", "additive"])
    kw = {"query": rng.standard_normal((B, Tq, H)).astype(np.float32),
          "keys": rng.standard_normal((B, Tk, H)).astype(np.float32),
          "values": rng.standard_normal((B, Tk, H + 1)).astype(np.float32),
          "lengths": rng.integers(1, Tk + 1, B), "score": score,
          "training": bool(rng.random() < 0.5), "return_weights": bool(rng.random() < 0.5)}
    if score == "general":
        kw["w"] = rng.standard_normal((H, H)).astype(np.float32)
    if score == "additive":
        A = int(rng.integers(1, 5))
        kw.update(w_q=rng.standard_normal((A, H)).astype(np.float32),
                  w_k=rng.standard_normal((A, H)).astype(np.float32),
                  v=rng.standard_normal(A).astype(np.float32))
    return kw


def attention_call(kw):
    out = sk.attention(**kw)
    if kw.get("training") is True:
        sk.attention_backward(out[-1], np.ones_like(out[0]))


def log_probs(rng, T, B, C):
    x = rng.standard_normal((T, B, C)).astype(np.float32)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def ctc_build(rng):
    (T, B), C, S = sizes(rng, 2, 8), int(rng.integers(2, 6)), int(rng.integers(1, 4))
    return {"log_probs": log_probs(rng, T, B, C), "targets": rng.integers(1, C, (B, S)),
            "input_lengths": np.full(B, T), "target_lengths": rng.integers(0, S + 1, B),
            "blank": 0, "reduction": rng.choice(["mean", "sum", "none"]),
            "training": bool(rng.random() < 0.5)}


def ctc_call(kw):
    out = sk.ctc_loss(**kw)
    if kw.get("training") is True:
        sk.ctc_loss_backward(out[-1], np.ones_like(out[0]))


def decode_build(rng):
    (T, B), C = sizes(rng, 2, 8), int(rng.integers(2, 6))
    return {"log_probs": log_probs(rng, T, B, C), "input_lengths": rng.integers(1, T + 1, B),
            "blank": 0}


def cross_entropy_build(rng):
    N, V = sizes(rng, 2)
    return {"logits": rng.standard_normal((N, V)).astype(np.float32),
            "targets": rng.integers(0, V, N), "ignore_index": -100, "reduction": "mean",
            "label_smoothing": 0.1 if rng.random() < 0.3 else 0.0,
            "training": bool(rng.random() < 0.5)}


def cross_entropy_call(kw):
    out = sk.softmax_cross_entropy(**kw)
    if kw.get("training") is True:
        sk.softmax_cross_entropy_backward(out[-1])


def embedding_build(rng):
    V, D, N = sizes(rng, 3)
    return {"weight": rng.standard_normal((V, D)).astype(np.float32),
            "ids": rng.integers(0, V, (2, N))}


def embedding_backward_build(rng):
    V, D, N = sizes(rng, 3)
    return {"ids": rng.integers(0, V, (2, N)),
            "dy": rng.standard_normal((2, N, D)).astype(np.float32),
            "dweight": np.zeros((V, D), np.float32), "padding_idx": None, "overwrite": False}


def layer_build(rng):
    T, B, I, H = sizes(rng, 4, 5)
    batch_first = bool(rng.random() < 0.5)
    return {"kind": rng.choice(["LSTM", "GRU", "RNN"]), "input_size": I, "hidden_size": H,
            "num_layers": int(rng.integers(1, 3)), "bidirectional": bool(rng.random() < 0.5),
            "batch_first": batch_first, "stateful": bool(rng.random() < 0.3),
            "x": rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32),
            "lengths": rng.integers(1, T + 1, B), "eval": bool(rng.random() < 0.3)}


def layer_call(kw):
    kind = kw["kind"] if kw["kind"] in ("LSTM", "GRU", "RNN") else "LSTM"
    layer = getattr(nn, kind)(kw["input_size"], kw["hidden_size"], num_layers=kw["num_layers"],
                              bidirectional=kw["bidirectional"], batch_first=kw["batch_first"],
                              stateful=kw["stateful"])
    if kw["eval"] is True:
        layer.eval()
    y, state = layer.forward(kw["x"], None, kw["lengths"])
    layer.forward(kw["x"], None if kw["stateful"] is True else state, kw["lengths"])
    if kw["eval"] is not True:
        layer.backward(np.ones_like(y))


def attention_layer_build(rng):
    B, Tq, Tk, H = sizes(rng, 4, 5)
    return {"score": rng.choice(["dot", "general", "additive"]), "size": H,
            "query": rng.standard_normal((B, Tq, H)).astype(np.float32),
            "keys": rng.standard_normal((B, Tk, H)).astype(np.float32),
            "lengths": rng.integers(1, Tk + 1, B),
            "dcontext": rng.standard_normal((B, Tq, H)).astype(np.float32)}


def attention_layer_call(kw):
    H = kw["size"]
    layer = (nn.Attention("dot") if kw["score"] == "dot" else
             nn.Attention(kw["score"], query_size=H, key_size=H, attention_size=3))
    layer.forward(kw["query"], kw["keys"], None, kw["lengths"])
    layer.backward(kw["dcontext"])


def small_layers_build(rng):
    V, D, O = sizes(rng, 3)
    return {"V": V, "D": D, "O": O, "ids": rng.integers(0, V, (2, 3)),
            "x": rng.standard_normal((2, 3, D)).astype(np.float32),
            "targets": rng.integers(0, O, (2, 3)), "ignore_index": -100}


def small_layers_call(kw):
    embedding = nn.Embedding(kw["V"], kw["D"])
    embedding.backward(np.ones_like(embedding.forward(kw["ids"])))
    linear = nn.Linear(kw["D"], kw["O"])
    logits = linear.forward(kw["x"])
    linear.backward(np.ones_like(logits))
    linear.eval(precision="bfloat16").forward(kw["x"])
    loss = nn.SoftmaxCrossEntropy(ignore_index=kw["ignore_index"])
    loss.forward(logits, kw["targets"])
    loss.backward()


def word2vec_build(rng):
    words = [f"w{i}" for i in range(20)]
    corpus = [[words[j] for j in rng.integers(0, 20, int(rng.integers(2, 10)))]
              for _ in range(int(rng.integers(1, 15)))]
    return {"sentences": corpus, "vector_size": 8, "window": 3, "min_count": 1, "sg": 1,
            "hs": 0, "negative": 3, "workers": 2, "epochs": 1, "alpha": 0.025, "sample": 1e-3,
            "seed": 1, "cbow_mean": 1, "ns_exponent": 0.75, "shrink_windows": True}


def word2vec_call(kw):
    if kw["epochs"] == 2**62:
        return  # asked for: trains forever
    Word2Vec(**kw)


def word2vec_score_build(rng):
    kw = word2vec_build(rng)
    V = len({w for s in kw["sentences"] for w in s})
    return {"sentences": kw["sentences"], "sg": int(rng.integers(0, 2)), "window": 3,
            "lockf": rng.choice([0.0, 0.5, 1.0], V).astype(np.float32),
            "score": kw["sentences"] + [["w1", "unknown"], []], "total_sentences": 10**6}


def word2vec_score_call(kw):
    """A hierarchical-softmax model trained with lock factors, then scoring sentences."""
    model = Word2Vec(vector_size=8, window=kw["window"], min_count=1, sg=kw["sg"], hs=1,
                     negative=0, workers=2, seed=1)
    model.build_vocab(kw["sentences"])
    model.wv.vectors_lockf = kw["lockf"]
    model.train(kw["sentences"], total_examples=model.corpus_count, epochs=1)
    model.score(kw["score"], total_sentences=kw["total_sentences"])


def wmdistance_build(rng):
    keys = [f"w{i}" for i in range(12)]
    return {"vectors": rng.standard_normal((12, 5)).astype(np.float32),
            "document1": list(rng.choice(keys + ["unknown"], int(rng.integers(1, 8)))),
            "document2": list(rng.choice(keys, int(rng.integers(1, 8)))), "norm": True}


def wmdistance_call(kw):
    kv = KeyedVectors(5)
    kv.add_vectors([f"w{i}" for i in range(12)], kw["vectors"])
    kv.wmdistance(kw["document1"], kw["document2"], norm=kw["norm"])


def optimizer_build(rng):
    shape = tuple(sizes(rng, int(rng.integers(1, 3))))
    return {"kind": rng.choice(["SGD", "AdaGrad", "RMSprop", "Adam", "AdamW"]), "lr": 0.01,
            "p": rng.standard_normal(shape).astype(np.float32),
            "g": rng.standard_normal(shape).astype(np.float32),
            "p_next": rng.standard_normal(shape).astype(np.float32),
            "g_next": rng.standard_normal(shape).astype(np.float32)}


def optimizer_call(kw):
    """Two steps under one key: the second on other arrays (the state of the first stays)."""
    kind = kw["kind"] if kw["kind"] in ("SGD", "AdaGrad", "RMSprop", "Adam", "AdamW") else "Adam"
    opt = getattr(optim, kind)(lr=kw["lr"], **({"momentum": 0.9} if kind == "SGD" else {}))
    opt.update({"w": kw["p"]}, {"w": kw["g"]})
    opt.update({"w": kw["p_next"]}, {"w": kw["g_next"]})


FOREVER = 2**62  # SCALARS' huge: a length or a count that asks for a loop without end


def language_model_build(rng):
    V = int(rng.integers(3, 12))
    B, T = sizes(rng, 2)
    return {"vocab_size": V, "wordvec_size": int(rng.integers(1, 6)),
            "hidden_size": int(rng.integers(1, 6)), "num_layers": int(rng.integers(1, 3)),
            "dropout": 0.2, "xs": rng.integers(0, V, (B, T)), "ts": rng.integers(0, V, (B, T)),
            "prefix": rng.integers(0, V, int(rng.integers(1, 4))), "length": 4,
            "temperature": 0.8, "top_k": 3, "top_p": 0.9, "seed": 1,
            "ids": rng.integers(0, V, int(rng.integers(2, 30)))}


def language_model_call(kw):
    if kw["length"] == FOREVER:
        return
    model = RNNLM(vocab_size=kw["vocab_size"], wordvec_size=kw["wordvec_size"],
                  hidden_size=kw["hidden_size"], num_layers=kw["num_layers"],
                  dropout=kw["dropout"], seed=0)
    model.forward(kw["xs"], kw["ts"])
    model.backward()
    model.generate(kw["prefix"], length=kw["length"], temperature=kw["temperature"],
                   top_k=kw["top_k"], top_p=kw["top_p"], seed=kw["seed"])
    model.perplexity(kw["ids"], batch_size=2, bptt=3)


SEQ2SEQ_DATA = Seq2SeqData.from_pairs(addition_pairs(30, seed=5), test_fraction=0.2)
SEQ2SEQ_MODELS = ("Seq2Seq", "PeekySeq2Seq", "AttentionSeq2Seq")


def seq2seq_build(rng):
    data = SEQ2SEQ_DATA
    first = int(rng.integers(0, len(data.train) - 3))
    src, lengths, tgt = data.encode(data.train[first:first + 3])
    return {"model": rng.choice(SEQ2SEQ_MODELS), "vocab": data.vocab, "wordvec_size": 3,
            "hidden_size": int(rng.integers(1, 5)), "reverse_input": bool(rng.random() < 0.5),
            "bidirectional_encoder": bool(rng.random() < 0.5), "src": src, "lengths": lengths,
            "tgt": tgt, "sources": [s for s, _ in data.test[:2]], "max_len": 4,
            "beam_size": int(rng.integers(1, 4))}


def seq2seq_call(kw):
    if FOREVER in (kw["max_len"], kw["beam_size"]):
        return
    cls = getattr(models, kw["model"] if kw["model"] in SEQ2SEQ_MODELS else "Seq2Seq")
    model = cls(kw["vocab"], wordvec_size=kw["wordvec_size"], hidden_size=kw["hidden_size"],
                reverse_input=kw["reverse_input"],
                bidirectional_encoder=kw["bidirectional_encoder"], seed=0)
    model.forward(kw["src"], kw["lengths"], kw["tgt"])
    model.backward()
    model.generate(kw["sources"], max_len=kw["max_len"], beam_size=kw["beam_size"])
    if isinstance(model, models.AttentionSeq2Seq):
        model.attention_map(kw["sources"][0] if isinstance(kw["sources"], list) else
                            kw["sources"], max_len=kw["max_len"])


def ctc_tagger_build(rng):
    T, B, F = sizes(rng, 3)
    C = int(rng.integers(2, 6))
    S = int(rng.integers(1, T + 1))
    return {"input_size": F, "num_classes": C, "x": rng.standard_normal((T, B, F)).astype("f"),
            "input_lengths": rng.integers(S, T + 1, B), "targets": rng.integers(1, C, (B, S)),
            "target_lengths": rng.integers(0, S + 1, B), "beam_width": int(rng.integers(1, 4))}


def ctc_tagger_call(kw):
    if kw["beam_width"] == FOREVER:
        return
    model = models.CTCTagger(kw["input_size"], kw["num_classes"], hidden_size=3, num_layers=1)
    model.forward(kw["x"], kw["input_lengths"], kw["targets"], kw["target_lengths"])
    model.backward()
    model.decode(kw["x"], kw["input_lengths"], beam_width=kw["beam_width"])


KEYS = [f"w{i}" for i in range(12)]


def queries_build(rng):
    pick = lambda n, keys=KEYS: [str(k) for k in rng.choice(keys, n)]  # noqa: E731
    return {"vectors": rng.standard_normal((12, 5)).astype(np.float32),
            "positive": pick(int(rng.integers(1, 3)), KEYS + ["unknown"]),
            "negative": pick(int(rng.integers(0, 2))),
            "topn": 3, "restrict_vocab": None, "words": pick(int(rng.integers(1, 4))),
            "vector": rng.standard_normal(5).astype(np.float32)}


def queries_call(kw):
    """gensim's queries; a missing key is gensim's KeyError, an empty word list its
    ZeroDivisionError (n_similarity) or ValueError."""
    kv = KeyedVectors(5)
    kv.add_vectors(KEYS, kw["vectors"])
    calls = (lambda: kv.most_similar(positive=kw["positive"], negative=kw["negative"],
                                     topn=kw["topn"], restrict_vocab=kw["restrict_vocab"]),
             lambda: kv.most_similar_cosmul(positive=kw["positive"], negative=kw["negative"],
                                            topn=kw["topn"]),
             lambda: kv.similar_by_vector(kw["vector"], topn=kw["topn"],
                                          restrict_vocab=kw["restrict_vocab"]),
             lambda: kv.n_similarity(kw["positive"], kw["words"]),
             lambda: kv.doesnt_match(kw["words"]),
             lambda: kv.distances(kw["positive"][0] if isinstance(kw["positive"], list)
                                  else kw["positive"], kw["words"]),
             lambda: kv.get_mean_vector(kw["words"]),
             lambda: kv.rank(kw["words"][0] if isinstance(kw["words"], list) else kw["words"],
                             "w1"))
    for call in calls:
        try:
            call()
        except KeyError as e:
            if "not present" not in str(e):
                raise
        except ZeroDivisionError as e:
            if "passed list is empty" not in str(e):
                raise


def bleu_build(rng):
    words = ["a", "b", "c", "d"]
    sentence = lambda: [str(w) for w in rng.choice(words, int(rng.integers(0, 7)))]  # noqa: E731
    n = int(rng.integers(1, 4))
    return {"hypotheses": [sentence() for _ in range(n)],
            "references": [[sentence() for _ in range(int(rng.integers(1, 3)))] for _ in range(n)],
            "max_n": 4, "smoothing": rng.choice([None, "method1", "method2", "method3"])}


def bleu_call(kw):
    if kw["max_n"] == FOREVER:
        return
    metrics.corpus_bleu(**kw)
    if isinstance(kw["hypotheses"], list) and isinstance(kw["references"], list):
        for h, r in zip(kw["hypotheses"], kw["references"]):
            metrics.sentence_bleu(h, r, max_n=kw["max_n"], smoothing=kw["smoothing"])


def trainer_build(rng):
    return {"ids": rng.integers(0, 6, int(rng.integers(10, 60))),
            "val_ids": rng.integers(0, 6, int(rng.integers(2, 20))), "batch_size": 2, "bptt": 3,
            "clip": 0.5, "lr_decay": 4.0, "max_seconds": 5.0, "eval_batch_size": 2, "epochs": 2}


def trainer_call(kw):
    if kw["epochs"] == FOREVER:
        return
    model = RNNLM(vocab_size=6, wordvec_size=3, hidden_size=4, seed=0)
    trainer = sk.Trainer(model, optim.SGD(lr=1.0), batch_size=kw["batch_size"], bptt=kw["bptt"],
                         clip=kw["clip"], lr_decay=kw["lr_decay"], max_seconds=kw["max_seconds"],
                         eval_batch_size=kw["eval_batch_size"], progress=False,
                         out=io.StringIO())
    trainer.fit(kw["ids"], kw["val_ids"], epochs=kw["epochs"])


def ppmi_build(rng):
    return {"sentences": [[KEYS[j] for j in rng.integers(0, 12, int(rng.integers(1, 8)))]
                          for _ in range(int(rng.integers(1, 6)))],
            "window": int(rng.integers(1, 4)), "min_count": 1, "vector_size": 3, "seed": 0}


def ppmi_call(kw):
    PPMIVectors(**kw).wv.most_similar(kw["sentences"][0][0] if isinstance(kw["sentences"], list)
                                      and kw["sentences"] and kw["sentences"][0] else "w0")


BOOK_GATES = {"TimeRNN": 1, "TimeLSTM": 4, "TimeGRU": 3}


def book_recurrent_build(rng):
    N, T, D, H = sizes(rng, 4, 5)
    kind = str(rng.choice(sorted(BOOK_GATES)))
    G = BOOK_GATES[kind]
    f = lambda *shape: (0.3 * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    return {"kind": kind, "Wx": f(D, G * H), "Wh": f(H, G * H), "b": f(G * H), "xs": f(N, T, D),
            "dhs": f(N, T, H), "h": f(N, H), "stateful": bool(rng.random() < 0.5),
            "Wh_before_backward": f(H, G * H), "step_x": f(N, D)}


def book_recurrent_call(kw):
    """The book's Time layer: forward, backward, a second (stateful) forward; then one step of
    the book's step class, and a backward after the weights were swapped for others (the
    book's optimizers change them between calls)."""
    kind = kw["kind"] if kw["kind"] in BOOK_GATES else "TimeLSTM"
    layer = getattr(time_layers, kind)(kw["Wx"], kw["Wh"], kw["b"], stateful=kw["stateful"])
    layer.forward(kw["xs"])
    layer.backward(kw["dhs"])
    layer.set_state(kw["h"], kw["h"]) if kind == "TimeLSTM" else layer.set_state(kw["h"])
    layer.forward(kw["xs"])
    layer.params[1] = kw["Wh_before_backward"]
    layer.backward(kw["dhs"])
    step = getattr(time_layers, kind[len("Time"):])(kw["Wx"], kw["Wh"], kw["b"])
    state = (kw["h"], kw["h"]) if kind == "TimeLSTM" else (kw["h"],)
    out = step.forward(kw["step_x"], *state)
    step.backward(*(out if isinstance(out, tuple) else (out,)))


def book_attention_build(rng):
    N, T, S, H = sizes(rng, 4, 5)
    return {"hs_enc": rng.standard_normal((N, S, H)).astype(np.float32),
            "hs_dec": rng.standard_normal((N, T, H)).astype(np.float32),
            "dout": rng.standard_normal((N, T, H)).astype(np.float32)}


def book_attention_call(kw):
    layer = attention_layer.TimeAttention()
    layer.forward(kw["hs_enc"], kw["hs_dec"])
    layer.backward(kw["dout"])


CASES = {
    **{cell: recurrent(cell) for cell in ("lstm", "gru", "rnn")},
    **{cell + "_backward": recurrent_backward(cell) for cell in ("lstm", "gru", "rnn")},
    "recurrent_stack": (stack_build, stack_call),
    "prepacked": prepacked(another=False),
    "prepacked_for_another": prepacked(another=True),
    "attention": (attention_build, attention_call),
    "ctc_loss": (ctc_build, ctc_call),
    "ctc_greedy_decode": (decode_build, lambda kw: sk.ctc_greedy_decode(**kw)),
    "ctc_beam_search": (decode_build, lambda kw: sk.ctc_beam_search(**kw)),
    "softmax_cross_entropy": (cross_entropy_build, cross_entropy_call),
    "embedding": (embedding_build, lambda kw: sk.embedding(**kw)),
    "embedding_backward": (embedding_backward_build, lambda kw: sk.embedding_backward(**kw)),
    "kl_divergence": (lambda rng: {"p": np.full((2, 3), 1 / 3), "q": np.full((2, 3), 1 / 3)},
                      lambda kw: metrics.kl_divergence(**kw)),
    "nn_recurrent": (layer_build, layer_call),
    "nn_attention": (attention_layer_build, attention_layer_call),
    "nn_small_layers": (small_layers_build, small_layers_call),
    "word2vec": (word2vec_build, word2vec_call),
    "word2vec_score": (word2vec_score_build, word2vec_score_call),
    "wmdistance": (wmdistance_build, wmdistance_call),
    "optimizer": (optimizer_build, optimizer_call),
    "language_model": (language_model_build, language_model_call),
    "seq2seq": (seq2seq_build, seq2seq_call),
    "ctc_tagger": (ctc_tagger_build, ctc_tagger_call),
    "queries": (queries_build, queries_call),
    "bleu": (bleu_build, bleu_call),
    "trainer": (trainer_build, trainer_call),
    "ppmi": (ppmi_build, ppmi_call),
    "book_recurrent": (book_recurrent_build, book_recurrent_call),
    "book_attention": (book_attention_build, book_attention_call),
}


def main(seed, calls, last_file):
    rng = np.random.default_rng(seed)
    names = sorted(CASES)
    seen = set()
    for i in range(calls):
        name = names[int(rng.integers(len(names)))]
        build, call = CASES[name]
        kw, changes = mutate(build(rng), rng)
        with open(last_file, "w") as f:
            f.write(f"seed {seed} call {i}: {name} {changes}\n")
        try:
            call(kw)
        except CLEAR:
            pass
        except Exception as e:  # noqa: BLE001 (reported, not raised: the parent judges)
            key = (name, type(e).__name__)
            if key not in seen:
                seen.add(key)
                print(f"UNCLEAR {name} {changes} {type(e).__name__}: {e}", flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")  # NaN and overflow warnings are expected here
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
