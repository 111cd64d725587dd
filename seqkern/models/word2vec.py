"""word2vec: skip-gram and CBOW with negative sampling and/or hierarchical softmax (word2vec.c's
algorithm) behind gensim 4's Word2Vec interface: gensim's arguments, defaults and methods.

    model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1, workers=2, seed=1)
    model = Word2Vec(corpus_file="text.txt", ...)          # streamed, one sentence per line
    model.build_vocab(more_sentences, update=True)         # online: new words join
    model.train(more_sentences, total_examples=len(more_sentences), epochs=model.epochs)
    model.wv.most_similar("king"); model.save("word2vec.model"); Word2Vec.load("word2vec.model")

The updates run in C++ (seqkern._core.w2v_train) on chunks of the corpus, Hogwild over
`workers` threads; with workers=1 a seed gives the same vectors bit for bit. From a corpus_file
each worker reads its own part of the file, as gensim's corpus_file mode does. Skip-gram shares
each window's noise words among its context words (pWord2Vec's batching). The NumPy twin of the
update is seqkern.reference.word2vec. Text is split into words and looked up in C++
(seqkern._core.Vocabulary): a word is a run of bytes between ASCII whitespace.
"""
from __future__ import annotations

import logging
import os
import sys
import time
import warnings

import numpy as np

from seqkern import _core
from seqkern._interrupt import Interrupt
from seqkern._checks import check_count, check_integer, non_negative
from seqkern.data.text_files import not_plain_text
from seqkern.models import array_file
from seqkern.models.keyed_vectors import KeyedVectors, frequency_order
from seqkern.models.line_sentences import LineSentence, PathLineSentences  # noqa: F401 (gensim's names here)
from seqkern.models.matutils import top_indices

# gensim's log lines, under this module's name: a script that turns on logging.INFO (as gensim's
# tutorials do) sees the vocabulary, each epoch and the progress, and gensim's warnings.
logger = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 19   # text per C++ call (~90K words): the unit of progress reports and Ctrl-C
MAX_SENTENCE = 10_000   # longer lines are cut into pieces this long (as word2vec.c does)
NOISE_DOMAIN = 2**31 - 1
RULE_DEFAULT, RULE_DISCARD, RULE_KEEP = 0, 1, 2  # what a trim_rule returns (gensim.utils')


def text_chunks(sentences=None, corpus_file=None):
    """The corpus as UTF-8 text in pieces of about CHUNK_BYTES, one sentence per line: the file
    streamed in blocks, or the sentences' words joined by spaces. A piece ends at a newline, or
    at a space inside a line longer than a piece (which ends a sentence there)."""
    if corpus_file is not None:
        with open(corpus_file, "rb") as f:
            yield from _file_blocks(f, os.fstat(f.fileno()).st_size, CHUNK_BYTES)
        return
    lines, size = [], 0
    for sentence in sentences:
        if isinstance(sentence, str):
            raise TypeError("sentences: expected lists of words, got a string "
                            "(split it into words first)")
        try:
            lines.append(" ".join(sentence))
        except TypeError:
            if not isinstance(sentence, (list, tuple)):
                raise TypeError(f"sentences: expected lists of words, got {sentence!r:.80}") from None
            raise TypeError(f"sentences: words must be strings, got {sentence[:3]!r}...") from None
        size += len(lines[-1]) + 1
        if size >= CHUNK_BYTES:
            yield ("\n".join(lines) + "\n").encode(errors="surrogateescape")
            lines, size = [], 0
    if lines:
        yield ("\n".join(lines) + "\n").encode(errors="surrogateescape")


def _file_blocks(f, end, size):
    """The text of f from where it is up to byte `end`, in pieces of about `size` bytes cut as
    text_chunks cuts them."""
    rest = b""
    while (n := min(size, end - f.tell())) > 0 and (block := f.read(n)):
        block = rest + block
        cut = (block.rfind(b"\n") + 1 or max(block.rfind(b" "), block.rfind(b"\t")) + 1
               or len(block))
        rest = block[cut:]
        yield block[:cut]
    if rest:
        yield rest


def file_pieces(corpus_file, parts):
    """The file as `parts` streams read side by side, as gensim's corpus_file mode gives each of
    its workers a part of the file: stream q reads the q-th of `parts` equal byte ranges (moved
    to the start of a line) in pieces of about CHUNK_BYTES / parts. Yields lists of one piece of
    each stream (b"" once a stream has ended) until all have ended.

    Why: text is grouped by topic (the Linux kernel's documentation by subsystem), and threads
    that train on the two halves of each chunk, near each other in the file, trained on one topic
    at a time. CBOW on that corpus (2.3M words, 2 workers, seeds 1-10) scored wordsim353
    0.108 against gensim's 0.146; read as here, 0.148."""
    size = os.path.getsize(corpus_file)
    starts = [0]
    with open(corpus_file, "rb") as f:
        for q in range(1, parts):
            f.seek(max(size * q // parts - 1, starts[-1]))
            if f.tell() > 0:
                _to_piece_start(f)
            starts.append(max(f.tell(), starts[-1]))
    starts.append(size)
    files = [open(corpus_file, "rb") for _ in range(parts)]
    try:
        streams = []
        for f, start, end in zip(files, starts, starts[1:]):
            f.seek(start)
            streams.append(_file_blocks(f, end, max(1, CHUNK_BYTES // parts)))
        while any(pieces := [next(stream, b"") for stream in streams]):
            yield pieces
    finally:
        for f in files:
            f.close()


def _to_piece_start(f):
    """Moves f to the first line that starts after it, or, when that is more than CHUNK_BYTES
    on, past the next space or tab: a corpus of one long line (text8) is then shared by the
    workers too. Its pieces are sentences of their own, as where _file_blocks cuts a long line."""
    at = f.tell()
    block = f.read(CHUNK_BYTES)
    cut = block.find(b"\n") + 1
    if not cut:
        gaps = [i for i in (block.find(b" "), block.find(b"\t")) if i >= 0]
        cut = min(gaps) + 1 if gaps else len(block)
    f.seek(at + cut)


def _encode(vocab, chunk):
    """(ids, sentence offsets, part bounds, words read) of a text chunk, or of a list of pieces,
    one for each part (the bounds then say which sentences are whose; None: equal runs of
    sentences). Words read count those outside the vocabulary too, as gensim's raw words do."""
    if isinstance(chunk, bytes):
        ids, offsets, words = vocab.encode(chunk, MAX_SENTENCE)
        return ids, offsets, None, words
    encoded = [vocab.encode(piece, MAX_SENTENCE) for piece in chunk]
    ids = np.concatenate([e[0] for e in encoded])
    starts = np.cumsum([0] + [len(e[0]) for e in encoded])
    offsets = np.concatenate([[0]] + [e[1][1:] + start for e, start in zip(encoded, starts)])
    bounds = np.cumsum([0] + [len(e[1]) - 1 for e in encoded])
    return ids, offsets.astype(np.int64), bounds.astype(np.int64), sum(e[2] for e in encoded)


def keep_probabilities(counts, sample):
    """word2vec.c's subsampling: each occurrence of a word with count c is kept with probability
    (sqrt(c / t) + 1) * t / c (at most 1), t = sample * total count; 1 everywhere for sample 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones(len(counts), np.float32)
    t = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / t) + 1) * t / counts).astype(np.float32)


def noise_table(counts, ns_exponent):
    """Cumulative noise distribution over the vocabulary: counts**ns_exponent, scaled so the last
    entry is 2**31 - 1 (gensim's cum_table); a noise word is the first entry above a draw."""
    c = np.asarray(counts, dtype=np.float64)
    # counts over the largest (the smallest for a negative exponent) to the power: the same
    # distribution, but a large exponent cannot overflow to inf / inf = NaN
    ref = c.max() if ns_exponent >= 0 or not (c > 0).any() else c[c > 0].min()
    with np.errstate(divide="ignore"):
        weights = (c / ref) ** ns_exponent
    if ns_exponent < 0:
        weights[c == 0] = 0  # never seen (0 ** -e = inf): never drawn
    return np.round(np.cumsum(weights) / weights.sum() * NOISE_DOMAIN).astype(np.uint32)


class CallbackAny2Vec:
    """Base class of training callbacks (gensim's, without gensim): override any of these. They
    are called with the model, as gensim calls them; a "batch" is one chunk of the corpus."""

    def on_train_begin(self, model):
        pass

    def on_epoch_begin(self, model):
        pass

    def on_batch_begin(self, model):
        pass

    def on_batch_end(self, model):
        pass

    def on_epoch_end(self, model):
        pass

    def on_train_end(self, model):
        pass


def _call(callbacks, event, model):
    for cb in callbacks:
        method = getattr(cb, event, None)
        if method is not None:
            method(model)


class _WordsCounted:
    """The sentences, iterated once, adding up their words (None once a sentence is not a list or
    tuple, whose words could not be counted without reading it twice)."""
    def __init__(self, sentences):
        self.sentences, self.words = sentences, 0

    def __iter__(self):
        for sentence in self.sentences:
            if self.words is not None:
                self.words = (self.words + len(sentence)
                              if isinstance(sentence, (list, tuple)) else None)
            yield sentence


def _warn_of_bytes(words):
    """Words are runs of bytes (word2vec.c's rule). A word that is not UTF-8 (a Latin-1 corpus)
    is kept as its own key, each stray byte a surrogate escape, so that "caf\\xe9" and "caf\\xe8"
    stay two words and files written from the vectors hold the bytes read; say so once."""
    stray = sum(1 for w in words if not w.isascii() and _has_escapes(w))
    if stray:
        logger.warning("%i of the %i words are not UTF-8: their keys hold each stray byte as a "
                       "surrogate escape (key.encode(errors='surrogateescape') gives the bytes), "
                       "and word2vec files written from them hold those bytes", stray, len(words))


def _has_escapes(word):
    try:
        word.encode()
        return False
    except UnicodeEncodeError:
        return True


def _call_on_class_only(*args, **kwargs):
    """Word2Vec.load called on a model: gensim's error, as the loaded model would be returned
    and the model called on left as it was."""
    raise AttributeError("This method should be called on a class object.")


def keep_vocab_item(word, count, min_count, trim_rule=None):
    """gensim's rule: trim_rule(word, count, min_count) may say RULE_KEEP or RULE_DISCARD;
    otherwise (or without one) a word stays when count >= min_count."""
    default = count >= min_count
    if trim_rule is None:
        return default
    rule = trim_rule(word, count, min_count)
    if rule == RULE_KEEP:
        return True
    if rule == RULE_DISCARD:
        return False
    return default


class Word2Vec:
    """gensim 4's Word2Vec: the same arguments in the same order, defaults and semantics (see the
    README's page for gensim users for what differs). Beyond gensim: progress prints a line a
    second (percent, words/s, alpha) to stderr."""

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5,
                 min_count=5, max_vocab_size=None, sample=1e-3, seed=1, workers=3,
                 min_alpha=0.0001, sg=0, hs=0, negative=5, ns_exponent=0.75, cbow_mean=1,
                 hashfxn=hash, epochs=5, null_word=0, trim_rule=None, sorted_vocab=1,
                 batch_words=10000, compute_loss=False, callbacks=(), comment=None,
                 max_final_vocab=None, shrink_windows=True, progress=False):
        for name, v in (("vector_size", vector_size), ("window", window), ("epochs", epochs),
                        ("workers", workers), ("min_count", min_count), ("negative", negative)):
            if not isinstance(v, (int, np.integer)) or v < (0 if name in ("min_count", "negative") else 1):
                raise ValueError(f"{name}: expected a {'non-negative' if name in ('min_count', 'negative') else 'positive'} "
                                 f"integer, got {v!r}")
        if window > 2**31 - 1:
            raise ValueError(f"window: at most 2**31 - 1, got {window}")
        if workers > 4096:
            raise ValueError(f"workers: at most 4096 runs of sentences at once, got {workers}")
        for name, v in (("sg", sg), ("hs", hs), ("cbow_mean", cbow_mean)):
            if v not in (0, 1):
                raise ValueError(f"{name}: expected 0 or 1, got {v!r}")
        check_integer("seed", seed)
        check_count("seed", seed, least=0)  # (numpy's own refusal named no argument)
        if not isinstance(ns_exponent, (int, float, np.number)) or not np.isfinite(ns_exponent):
            raise ValueError(f"ns_exponent: expected a finite number, got {ns_exponent!r}")
        for name, v in (("alpha", alpha), ("min_alpha", min_alpha), ("sample", sample)):
            non_negative(name, v)
        if negative > 64:
            raise ValueError(f"negative: at most 64 noise words per pair, got {negative}")
        if not hs and not negative:
            raise ValueError("hs=0 and negative=0 train nothing: set hs=1, or negative > 0")
        if sentences is not None and corpus_file is not None:
            raise TypeError("You can't pass both corpus_iterable and corpus_file")
        self.vector_size, self.layer1_size, self.window = vector_size, vector_size, window
        self.alpha, self.min_alpha, self.min_alpha_yet_reached = float(alpha), float(min_alpha), float(alpha)
        self.min_count, self.max_vocab_size, self.max_final_vocab = min_count, max_vocab_size, max_final_vocab
        self.sample, self.seed, self.workers = sample, seed, workers
        self.sg, self.hs, self.negative, self.ns_exponent = int(sg), int(hs), negative, ns_exponent
        self.cbow_mean, self.hashfxn, self.epochs, self.null_word = int(cbow_mean), hashfxn, epochs, null_word
        self.sorted_vocab, self.batch_words, self.comment = sorted_vocab, batch_words, comment
        self.compute_loss, self.callbacks, self.shrink_windows = bool(compute_loss), callbacks, bool(shrink_windows)
        self.progress = progress
        self.wv = KeyedVectors(vector_size)
        self.wv.expandos["count"] = np.zeros(0, np.int64)
        self.syn1neg = np.zeros((0, vector_size), np.float32)
        self.syn1 = np.zeros((0, vector_size), np.float32)
        self.cum_table = np.zeros(0, np.uint32)
        self.seeds = self._seeds()
        self.effective_min_count = min_count
        self.corpus_count = self.corpus_total_words = 0
        self.running_training_loss = 0.0
        self.train_count, self.total_train_time = 0, 0.0
        self.raw_vocab = None
        self.load = _call_on_class_only  # model.load(f) would return a model and leave this one
        if sentences is not None or corpus_file is not None:
            # gensim 4's check and message (a generator can be read once: vocabulary + epochs)
            self._corpus(sentences, corpus_file, passes=self.epochs + 1)
            self.build_vocab(sentences, corpus_file, trim_rule=trim_rule)
            self.train(sentences, corpus_file, total_examples=self.corpus_count,
                       total_words=self.corpus_total_words, epochs=self.epochs,
                       start_alpha=self.alpha, end_alpha=self.min_alpha,
                       compute_loss=self.compute_loss, callbacks=callbacks)

    def __str__(self):
        return (f"{type(self).__name__}<vocab={len(self.wv.index_to_key)}, "
                f"vector_size={self.wv.vector_size}, alpha={self.alpha}>")

    __repr__ = __str__

    def _seeds(self):
        """The LCG states of the `workers` runs of sentences (word2vec.c's generator)."""
        return np.array([(self.seed * 0x9E3779B97F4A7C15 + q + 1) % 2**64
                         for q in range(self.workers)], np.uint64)

    @property
    def counts(self):
        """Each word's count in the corpus, in row order."""
        return self.wv.expandos["count"]

    @staticmethod
    def _corpus(corpus_iterable, corpus_file, passes, parts=1):
        """The corpus as a source of text chunks (see text_chunks) that can be read `passes`
        times: the file, or the given sentences (a generator only for one pass). A file with
        parts > 1 gives lists of `parts` pieces instead, one for each worker (file_pieces)."""
        if (corpus_iterable is None) == (corpus_file is None):
            raise TypeError("Either one of corpus_file or corpus_iterable value must be provided")
        problem = corpus_file is not None and not_plain_text(  # LineSentence reads compressed
            corpus_file, instead=f"pass LineSentence({corpus_file!r}) as the sentences")
        if problem:
            raise ValueError(f"corpus_file: {problem}")
        if corpus_iterable is not None and passes > 1 and iter(corpus_iterable) is corpus_iterable:
            raise TypeError(f"Using a generator as corpus_iterable can't support {passes} passes. "
                            "Try a re-iterable sequence.")

        class Chunks:
            def __iter__(self):
                if corpus_file is not None and parts > 1:
                    return file_pieces(corpus_file, parts)
                return text_chunks(corpus_iterable, corpus_file)
        return Chunks()

    # -- vocabulary ---------------------------------------------------------------------------
    def build_vocab(self, corpus_iterable=None, corpus_file=None, update=False, progress_per=10000,
                    keep_raw_vocab=False, trim_rule=None, **kwargs):
        """Counts the words of the corpus (and its sentences: corpus_count, corpus_total_words)
        and keeps those that min_count, max_final_vocab and trim_rule keep, most frequent first
        (sorted_vocab). max_vocab_size bounds the words counted at once: past it the rarest are
        pruned as the scan goes, as gensim does. update=True adds the new words to a trained
        model's vocabulary (online training): they get fresh vectors, old words keep theirs and
        their counts grow."""
        if kwargs:
            raise TypeError(f"build_vocab: unexpected arguments {sorted(kwargs)}")
        vocab, sentences = _core.Vocabulary(), 0
        if corpus_iterable is not None:
            corpus_iterable = given = _WordsCounted(corpus_iterable)
        for text in self._corpus(corpus_iterable, corpus_file, passes=1):
            vocab.count(text, self.max_vocab_size or 0)
            sentences += text.count(b"\n") + (not text.endswith(b"\n"))
        if vocab.total == 0:
            raise ValueError("build_vocab: the corpus is empty")
        if corpus_iterable is not None and given.words not in (None, vocab.total):
            logger.warning("the sentences hold %i words, read as %i: words are split at ASCII "
                           "whitespace, as word2vec.c reads text, so a word that holds whitespace "
                           "is read as several and an empty one is dropped (join a phrase's words "
                           "with '_' to keep it one word)", given.words, vocab.total)
        raw = dict(zip(vocab.words, vocab.counts.tolist()))
        logger.info("collected %i word types from a corpus of %i raw words and %i sentences",
                    len(raw), vocab.total, sentences)
        _warn_of_bytes(raw)
        self._set_vocab(raw, sentences, update, keep_raw_vocab, trim_rule)
        return self

    def build_vocab_from_freq(self, word_freq, keep_raw_vocab=False, corpus_count=None,
                              trim_rule=None, update=False):
        """The vocabulary from a {word: count} dict instead of a corpus."""
        if not word_freq:
            raise ValueError("build_vocab_from_freq: word_freq is empty")
        self._set_vocab(dict(word_freq), corpus_count or 0, update, keep_raw_vocab, trim_rule)
        return self

    def _set_vocab(self, raw, sentences, update, keep_raw_vocab, trim_rule):
        self.corpus_count, self.corpus_total_words = sentences, int(sum(raw.values()))
        self.raw_vocab = raw if keep_raw_vocab else None
        min_count = self.min_count
        if self.max_final_vocab is not None and self.max_final_vocab < len(raw):
            ranked = sorted(raw.values(), reverse=True)
            min_count = max(min_count, ranked[self.max_final_vocab] + 1)
        self.effective_min_count = min_count
        if update:
            return self._grow_vocab(raw, min_count, trim_rule)
        words = [w for w, c in raw.items() if keep_vocab_item(w, c, min_count, trim_rule)]
        if not words and not raw:
            raise ValueError(f"build_vocab: pruning to max_vocab_size = {self.max_vocab_size} "
                             "words as the corpus was read left no word")
        if not words:
            most = max(raw.values())
            raise ValueError(f"build_vocab: no word occurs min_count = {min_count} times "
                             f"({len(raw)} distinct words, the most frequent {most} times)")
        counts = np.array([raw[w] for w in words], np.int64)
        if self.sorted_vocab:
            order = frequency_order(counts)
            words, counts = [words[i] for i in order], counts[order]
        if self.null_word:
            words.append("\0")
            counts = np.append(counts, 1)
        self.wv = KeyedVectors._of(words, self._fresh_vectors(len(words)), counts)
        self._fresh_layers()

    def _fresh_layers(self):
        """Zero output layers for wv's words, the workers' first random states, and the noise
        table and tree of the words' counts: what training starts from."""
        empty = np.zeros((0, self.vector_size), np.float32)
        self.syn1neg = np.zeros_like(self.wv.vectors) if self.negative else empty
        self.syn1 = np.zeros_like(self.wv.vectors) if self.hs else empty
        self.seeds = self._seeds()
        self._prepare_tables()

    def reset_from(self, other_model):
        """gensim's: other_model's vocabulary (the same key_to_index, index_to_key and per-key
        attributes, shared, as gensim shares them: neither model should grow its vocabulary
        afterwards), corpus counts, noise table and tree, with fresh weights, for training
        several models on one corpus. (gensim 4.4's leaves the new vectors without
        vectors_lockf, and its training then stops with an AttributeError in a worker.)"""
        self.wv = KeyedVectors(self.vector_size)
        self.wv.index_to_key = other_model.wv.index_to_key
        self.wv.key_to_index = other_model.wv.key_to_index
        self.wv.next_index = len(self.wv.index_to_key)
        self.wv.expandos = other_model.wv.expandos
        self.wv.vectors = self._fresh_vectors(len(self.wv.index_to_key))
        self.corpus_count = other_model.corpus_count
        self.corpus_total_words = other_model.corpus_total_words
        self._fresh_layers()

    def _fresh_vectors(self, n):
        """n starting vectors, uniform in [-1, 1) / vector_size from the seed, as gensim 4 starts
        (word2vec.c: [-0.5, 0.5))."""
        rng = np.random.default_rng(self.seed)
        return (rng.random((n, self.vector_size), np.float32) * 2 - 1) / self.vector_size

    def _grow_vocab(self, raw, min_count, trim_rule):
        if not len(self.wv):
            raise RuntimeError("You cannot do an online vocabulary-update of a model which has no "
                               "prior vocabulary. First build the vocabulary of your model with a "
                               "corpus before doing an online update.")
        counts = self.wv.expandos["count"].copy()
        new_words, new_counts = [], []
        for w, c in raw.items():
            i = self.wv.key_to_index.get(w)
            if i is not None:
                counts[i] += c
            elif keep_vocab_item(w, c, min_count, trim_rule):
                new_words.append(w)
                new_counts.append(c)
        self.wv.expandos["count"] = counts
        if new_words:
            self.wv.add_vectors(new_words, self._fresh_vectors(len(new_words)),
                                extras={"count": np.array(new_counts, np.int64)})
            pad = np.zeros((len(new_words), self.vector_size), np.float32)
            if self.negative:
                self.syn1neg = np.vstack([self.syn1neg, pad])
            if self.hs:
                self.syn1 = np.vstack([self.syn1, pad])
        else:
            warnings.warn("build_vocab(update=True): the new corpus brings no new words", stacklevel=4)
        self._prepare_tables()

    def _prepare_tables(self):
        """The noise distribution and the Huffman tree of the current counts."""
        counts = self.wv.expandos["count"]
        self.cum_table = noise_table(counts, self.ns_exponent) if self.negative else np.zeros(0, np.uint32)
        self.tree = _core.huffman_tree(np.ascontiguousarray(counts, np.int64)) if self.hs else None

    # -- training -----------------------------------------------------------------------------
    def train(self, corpus_iterable=None, corpus_file=None, total_examples=None, total_words=None,
              epochs=None, start_alpha=None, end_alpha=None, word_count=0, queue_factor=2,
              report_delay=1.0, compute_loss=False, callbacks=(), **kwargs):
        """Runs `epochs` passes, alpha falling linearly from start_alpha (default: alpha)
        towards end_alpha (min_alpha) with the known words trained on, over all words (so it
        stops short by the share of words outside the vocabulary). As in gensim, epochs and one
        of total_examples (sentences) or total_words must be given; they set the schedule.
        Returns (words trained after subsampling, words read, unknown ones included). Ctrl-C
        stops after the current chunk: the vectors keep what was learned so far and
        KeyboardInterrupt is raised again."""
        if kwargs:
            raise TypeError(f"train: unexpected arguments {sorted(kwargs)}")
        if not len(self.wv):
            raise RuntimeError("you must first build vocabulary before training the model")
        if total_words is None and total_examples is None:
            raise ValueError("You must specify either total_examples or total_words, for proper "
                             "learning-rate and progress calculations. If you've just built the "
                             "vocabulary using the same corpus, using the count cached in the "
                             "model is sufficient: total_examples=model.corpus_count.")
        if epochs is None or epochs <= 0:
            raise ValueError("You must specify an explicit epochs count. The usual value is "
                             "epochs=model.epochs.")
        if any(a is not None and not a.flags.writeable
               for a in (self.wv.vectors, self.syn1neg, self.syn1)):  # numpy said only that
            raise ValueError("train: the model's arrays are read-only (loaded with mmap='r'): "
                             "load it without mmap to train it")
        corpus = self._corpus(corpus_iterable, corpus_file, passes=epochs, parts=len(self.seeds))
        if self.hs and self.negative:
            logger.warning("Both hierarchical softmax and negative sampling are activated. This is "
                           "probably a mistake. You should set either 'hs=0' or 'negative=0' to "
                           "disable one of them. ")
        for name, v in (("start_alpha", start_alpha), ("end_alpha", end_alpha)):
            if v is not None:
                non_negative(name, v)
        self.alpha = float(start_alpha if start_alpha is not None else self.alpha)
        if self.alpha > self.min_alpha_yet_reached:
            logger.warning("Effective 'alpha' higher than previous training cycles")
        self.min_alpha = float(end_alpha if end_alpha is not None else self.min_alpha)
        self.epochs, self.compute_loss = epochs, bool(compute_loss)
        self.running_training_loss = 0.0
        if total_words is None:  # sentences given: words expected from the vocabulary scan's ratio
            per_sentence = self.corpus_total_words / self.corpus_count if self.corpus_count else 0
            total_words = int(total_examples * per_sentence) or self.corpus_total_words
        self.wv.vectors = np.ascontiguousarray(self.wv.vectors, np.float32)  # updated in place
        self.syn1neg = np.ascontiguousarray(self.syn1neg, np.float32)
        self.syn1 = np.ascontiguousarray(self.syn1, np.float32)
        keep = keep_probabilities(self.wv.expandos["count"], self.sample)
        lockf = self._lock_factors()
        vocab = _core.Vocabulary([str(k).encode(errors="surrogateescape")
                                  for k in self.wv.index_to_key])
        total = max(1, int(total_words) * epochs)  # words to go through
        done, raw, trained, start, last = 0, 0, 0, time.perf_counter(), 0.0
        _call(callbacks, "on_train_begin", self)
        try:
            with Interrupt() as interrupt:
                for epoch in range(epochs):
                    _call(callbacks, "on_epoch_begin", self)
                    epoch_start, epoch_raw, epoch_trained = time.perf_counter(), raw, trained
                    for text in corpus:
                        interrupt.check()
                        _call(callbacks, "on_batch_begin", self)
                        ids, offsets, bounds, words = _encode(vocab, text)
                        # alpha falls with the known words trained on (done), over
                        # total_words, which counts every word (gensim's raw words): it ends
                        # above min_alpha by the share of words outside the vocabulary. gensim's
                        # own end at min_alpha lowered all three scores on GCIDE in six paired
                        # runs (RESULTS.md, sixteenth session). Progress and the returned count
                        # are gensim's: every word read.
                        a0 = self.alpha - (self.alpha - self.min_alpha) * min(1.0, done / total)
                        done += len(ids)
                        raw += words
                        a1 = self.alpha - (self.alpha - self.min_alpha) * min(1.0, done / total)
                        n, loss = _core.w2v_train(
                            self.window, self.negative, bool(self.sg), bool(self.cbow_mean),
                            self.shrink_windows, ids, offsets, keep, self.cum_table, a0, a1,
                            self.seeds, self.wv.vectors, self.syn1neg if self.negative else None,
                            self.tree if self.hs else None, self.syn1 if self.hs else None,
                            self.compute_loss, bounds, lockf)
                        trained += n
                        self.running_training_loss += loss
                        self.min_alpha_yet_reached = a1
                        _call(callbacks, "on_batch_end", self)
                        now = time.perf_counter()
                        if now - last >= report_delay:
                            last = now
                            percent, rate = 100 * min(1.0, raw / total), raw / (now - start)
                            logger.info("EPOCH %i - PROGRESS: at %.2f%% words, %.0f words/s",
                                        epoch, percent, rate)
                            if self.progress:
                                print(f"word2vec: epoch {epoch + 1}/{epochs}, {percent:5.1f}% "
                                      f"done, {rate:,.0f} words/s, alpha {a1:.5f}",
                                      file=sys.stderr, flush=True)
                    took = max(time.perf_counter() - epoch_start, 1e-9)
                    logger.info("EPOCH %i: training on %i raw words (%i effective words) took "
                                "%.1fs, %.0f effective words/s", epoch, raw - epoch_raw,
                                trained - epoch_trained, took, (trained - epoch_trained) / took)
                    _call(callbacks, "on_epoch_end", self)
        except KeyboardInterrupt:
            print(f"word2vec: interrupted at {100 * min(1.0, raw / total):.1f}%; the vectors keep "
                  "what was learned so far", file=sys.stderr, flush=True)
            raise
        finally:
            self.wv.changed()
            elapsed = time.perf_counter() - start
            self.train_count += 1
            self.total_train_time += elapsed
        _call(callbacks, "on_train_end", self)
        logger.info("training on %i raw words (%i effective words) took %.1fs, %.0f effective "
                    "words/s", raw, trained, elapsed, trained / max(elapsed, 1e-9))
        if self.progress:
            print(f"word2vec: {raw:,} words in {elapsed:.1f} s ({raw / elapsed:,.0f} words/s), "
                  f"{trained:,} after subsampling", file=sys.stderr, flush=True)
        return trained, raw

    def _lock_factors(self):
        """wv.vectors_lockf as the kernel reads it (word w's updates scaled by lockf[w % len]),
        or None where every factor is 1."""
        lockf = np.ascontiguousarray(self.wv.vectors_lockf, np.float32)
        if lockf.ndim != 1 or not len(lockf) or not np.all(np.isfinite(lockf)):
            raise ValueError(f"wv.vectors_lockf: expected a 1-D array of finite factors, got "
                             f"shape {lockf.shape}")
        return None if np.all(lockf == 1) else lockf

    def get_latest_training_loss(self):
        """The loss summed over the last train() call (compute_loss=True): for every score f
        of an input against an output (the center word or a noise word; an inner node of the
        center's path with hs) whose |f| < 6, -log sigmoid(f) for label 1 and -log sigmoid(-f)
        for label 0. Like gensim's, it is a running total since train() began, not per epoch."""
        return self.running_training_loss

    def predict_output_word(self, context_words_list, topn=10):
        """The topn center words most probable given the context words, by the softmax of the
        negative-sampling output layer (as gensim): [(word, probability)], or None when no
        context word is known."""
        if not self.negative:
            raise RuntimeError("We have currently only implemented predict_output_word for the "
                               "negative sampling scheme, so you need to have run word2vec with "
                               "negative > 0 for this to work.")
        if len(self.syn1neg) != len(self.wv):  # e.g. wv replaced by vectors read from a file
            raise RuntimeError("Parameters required for predicting the output words not found.")
        rows = [self.wv.get_index(w) for w in context_words_list if w in self.wv]  # keys or rows
        if not rows:
            warnings.warn("All the input context words are out-of-vocabulary for the current model.",
                          stacklevel=2)
            return None
        l1 = np.sum(self.wv.vectors[rows], axis=0)
        if rows and self.cbow_mean:
            l1 /= len(rows)
        prob = np.exp(l1 @ self.syn1neg.T)
        prob /= prob.sum()
        return [(self.wv.index_to_key[i], prob[i]) for i in top_indices(prob, topn)]

    def init_sims(self, replace=False):
        """gensim 3's name: the norms are computed when first needed."""
        self.wv.init_sims(replace)

    def score(self, sentences, total_sentences=int(1e6), chunksize=100, queue_factor=2,
              report_delay=1):
        """gensim's: the log-probability of each sentence (a list of words) under the model,
        float32, as gensim's score_sentence_sg/cbow compute it (Taddy's document classification
        by inversion). Needs hierarchical softmax (hs=1). Skip-gram sums, for each word and each
        other word of its full window, log P(the word's path in the tree | the other's vector);
        CBOW, log P(path | the window's mean or sum). Each node's log sigmoid is gensim's table
        entry; scores with |f| >= 6 are left out. Words outside the vocabulary are dropped before
        the windows; a sentence's first 10,000 known words count; at most total_sentences are
        scored. chunksize, queue_factor and report_delay are gensim's job settings: the
        sentences run on seqkern's threads instead. The model is not changed."""
        if not self.wv.key_to_index:
            raise RuntimeError("you must first build vocabulary before scoring new data")
        if not self.hs:
            raise RuntimeError("We have currently only implemented score for the hierarchical "
                               "softmax scheme, so you need to have run word2vec with hs=1 and "
                               "negative=0 for this to work.")
        index, ids, offsets = self.wv.key_to_index, [], [0]
        for n, sentence in enumerate(sentences):
            if n >= total_sentences:
                warnings.warn(f"terminating after {total_sentences} sentences (set higher "
                              "total_sentences if you want more).", stacklevel=2)
                break
            ids += [index[w] for w in sentence if w in index][:MAX_SENTENCE]
            offsets.append(len(ids))
        return _core.w2v_score(self.window, bool(self.sg), bool(self.cbow_mean),
                               np.array(ids, np.int32), np.array(offsets, np.int64),
                               np.ascontiguousarray(self.wv.vectors, np.float32), self.tree,
                               np.ascontiguousarray(self.syn1, np.float32))

    def estimate_memory(self, vocab_size=None, report=None):
        """Bytes the vectors and tables take (gensim's keys)."""
        V = vocab_size or len(self.wv)
        report = report or {}
        report["vocab"] = 500 * V
        report["vectors"] = 4 * V * self.vector_size
        report["syn1"] = 4 * V * self.vector_size * bool(self.hs)
        report["syn1neg"] = 4 * V * self.vector_size * bool(self.negative)
        report["total"] = sum(report.values())
        return report

    # -- the full training state --------------------------------------------------------------
    _PARAMS = ("vector_size", "window", "min_count", "max_vocab_size", "sample", "seed", "workers",
               "alpha", "min_alpha", "sg", "hs", "negative", "ns_exponent", "cbow_mean", "epochs",
               "null_word", "sorted_vocab", "batch_words", "compute_loss", "comment",
               "max_final_vocab", "shrink_windows")
    _STATE = ("corpus_count", "corpus_total_words", "effective_min_count", "running_training_loss",
              "train_count", "total_train_time", "min_alpha_yet_reached")

    def save(self, fname_or_handle, **kwargs):
        """Everything needed to query or continue training, written to exactly that path (no
        pickle); load with Word2Vec.load (mmap="r" maps the arrays read-only)."""
        meta = {"params": {k: getattr(self, k) for k in self._PARAMS},
                "state": {k: getattr(self, k) for k in self._STATE}, "wv": self.wv._meta()}
        arrays = {**self.wv._arrays("wv."), "syn1neg": self.syn1neg, "syn1": self.syn1,
                  "seeds": self.seeds}
        array_file.save(fname_or_handle, "Word2Vec", meta, arrays)

    @classmethod
    def load(cls, fname, mmap=None):
        meta, arrays = array_file.load(fname, "Word2Vec", mmap)
        model = cls(**meta["params"])
        for k, v in meta["state"].items():
            setattr(model, k, v)
        model.wv = KeyedVectors._from_saved(meta["wv"], arrays, "wv.")
        model.syn1neg, model.syn1, model.seeds = arrays["syn1neg"], arrays["syn1"], np.array(arrays["seeds"])
        model._prepare_tables()
        return model
