"""Checkpoints: one .npz file holding a model's arrays, its JSON config and its vocabulary; no
pickle. It is written to a temporary name beside the target and renamed, so an interrupted save
never leaves a half-written checkpoint where a good one was.

    model.save("lm.npz")
    model = seqkern.load("lm.npz")        # the model, rebuilt from its config
    model.load_params("lm.npz")           # into a model of the same config
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

FORMAT = "seqkern-checkpoint"
VERSION = 1


def check_target(path):
    """The folder of a file to write, which must exist, path not being a folder itself. Found
    here, the error names the caller's path (the temporary file's name did, or the rename's)."""
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a folder; name a file in it", os.fspath(path))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "no such folder", folder)
    return folder


def save(model, path):
    """Writes model (a class of seqkern.models with .config, .params and .vocab) to path."""
    from seqkern import __version__

    vocab = model.vocab
    meta = {"format": FORMAT, "version": VERSION, "seqkern": __version__,
            "class": type(model).__name__, "config": model.config,
            "vocab": None if vocab is None else {"level": vocab.level, "tokens": vocab.itos}}
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    folder = check_target(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".seqkern-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read(path):
    """(meta, params) of a checkpoint file, after checking its format and version. A missing
    file raises FileNotFoundError; a file of another kind, ValueError."""
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # np.load would take a .npy or a pickle's text for one
            raise ValueError(f"{path}: not a seqkern checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            params = {k[len("param/"):]: f[k] for k in f.files if k.startswith("param/")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path}: not a seqkern checkpoint ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a seqkern checkpoint")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint format version {meta.get('version')} (written by "
                         f"seqkern {meta.get('seqkern')}); this seqkern reads version {VERSION}")
    return meta, params


def load(path):
    """The model saved at path, rebuilt from its config with its weights and vocabulary."""
    from seqkern import models
    from seqkern.data import Vocabulary

    meta, params = read(path)
    cls = getattr(models, meta["class"], None)
    if not (isinstance(cls, type) and hasattr(cls, "load_params")):
        raise ValueError(f"{path}: unknown model class {meta['class']!r}")
    config, vocab = dict(meta["config"]), meta["vocab"]
    if vocab is not None:  # models without a vocabulary take no such argument
        config["vocab"] = Vocabulary(vocab["tokens"], vocab["level"])
    model = cls(**config)
    model.load_state_dict(params)
    return model


def load_params(model, path):
    """Loads the weights at path into model, which must have the checkpoint's class and config."""
    meta, params = read(path)
    if meta["class"] != type(model).__name__:
        raise ValueError(f"{path}: holds a {meta['class']}, not a {type(model).__name__}")
    diff = {k: (v, model.config.get(k)) for k, v in meta["config"].items()
            if model.config.get(k) != v}
    if diff:
        said = ", ".join(f"{k} {v!r} (this model: {m!r})" for k, (v, m) in sorted(diff.items()))
        raise ValueError(f"{path}: the checkpoint's config differs: {said}")
    model.load_state_dict(params)


class Saveable:
    """save(path) and load_params(path) for a model with .config, .params and .vocab."""

    def save(self, path):
        """One .npz with the weights, the config and the vocabulary (see seqkern.checkpoint)."""
        save(self, path)

    def load_params(self, path):
        """Loads a checkpoint of a model with this class and config."""
        load_params(self, path)
