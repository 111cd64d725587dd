"""What every layer and model shares: the book's params/grads interface and its bookkeeping.

    Layer   a leaf with its own `params` and `grads` dicts (torch's names: "weight", "bias")
    Model   a container: its layers are attributes, and `params`/`grads` gather theirs under
            dotted names ("embed.weight", "lstm.weight_ih_l0"); `tie` makes two names share
            one array, whose gradient then receives both layers' contributions.

Layers' backward *adds* into grads; zero_grad clears them. Arrays are updated in place and never
rebound, so tied names and optimizers holding references stay valid.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import weakref

import numpy as np

from seqkern import _core
from seqkern._checks import check_precision


_locks = weakref.WeakKeyDictionary()  # model -> its RLock, made at its first serialized call
_locks_guard = threading.Lock()


def on_cache_lines(a):
    """a copied into memory that starts on a 64-byte boundary (_core.empty), for weights that
    products read in place: a Linear's at a batch of a few rows (few_rows_gemm_avx2.cc) loads
    its rows a vector at a time, and NumPy's large arrays start 16 bytes past a line, so that
    every other load spans two (Zen 4, paired, nn.Linear forward at batch 1-8: 1.02-1.11x)."""
    out = _core.empty(a.shape, a.dtype)
    out[...] = a
    return out


def serialized(method):
    """A model's inference method (generate, perplexity, decode...) that uses the model's own
    state: its mode, flipped to eval and back, and a language model's carried LSTM state. Calls
    from several threads (a threaded server sharing one model) run one at a time under the
    model's lock; before, they mixed each other's states, giving other text or a ValueError."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with _locks_guard:
            lock = _locks.setdefault(self, threading.RLock())
        with lock:
            return method(self, *args, **kwargs)

    return run


class Module:
    """What layers and models share: the mode, gradient clearing, and loading by name."""

    training = True

    def children(self):
        return {}

    def train(self, mode=True):
        """Training mode: dropout on, forward keeps what backward needs."""
        self.training = bool(mode)
        for child in self.children().values():
            child.train(mode)
        return self

    def eval(self, precision="float32"):
        """Inference mode: no dropout, nothing kept for backward. The recurrent layers inside
        (float32 arrays) pack copies of their weights for their products, now and at
        load_state_dict, so that calls back to back skip the packing; after changing weights in
        place, call eval again. precision="bfloat16": those copies are rounded to bfloat16, and
        the Linear layers take such copies too (README: "Low precision"). train() drops them."""
        check_precision(precision, False, np.float32)
        self.train(False)
        self._pack(precision)
        return self

    def _pack(self, precision):
        """Recurrent layers in eval mode take packed copies of their weights at this precision
        (Linear layers at bfloat16); None: at the precision they have (load_state_dict). In
        training mode they hold none."""
        for child in self.children().values():
            child._pack(precision)

    @contextlib.contextmanager
    def evaluating(self):
        """with module.evaluating(): inference mode inside, the mode it had after. A module in
        eval mode already stays as it is, with its precision and packed weights."""
        if not self.training:
            yield self
            return
        self.eval()
        try:
            yield self
        finally:
            self.train(True)

    def zero_grad(self):
        for g in self.grads.values():
            g[...] = 0

    def state_dict(self):
        """Copies of the parameters by name."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state_dict):
        """Loads parameters by name, in place: NumPy arrays or anything np.asarray accepts, and
        torch tensors (a model's parameters too, or a GPU's). Keys and shapes must match
        exactly."""
        load_arrays(self.params, state_dict)
        self._pack(None)


class Layer(Module):
    """A leaf layer: subclasses fill self.params and self.grads (same keys) in __init__."""


def _host(v):
    """A torch tensor as a host tensor NumPy can take: dict(model.named_parameters()) holds
    tensors that require grad, which np.asarray refused ("Can't call numpy() on Tensor that
    requires grad"), and a GPU model's live on the device."""
    if hasattr(v, "detach") and hasattr(v, "cpu"):
        return v.detach().cpu()
    return v


def load_arrays(params, state_dict):
    """Copies state_dict's arrays into params' arrays (same keys, same shapes), checking all of
    them before changing any."""
    missing = params.keys() - state_dict.keys()
    unexpected = state_dict.keys() - params.keys()
    if missing or unexpected:
        raise KeyError(f"load_state_dict: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    arrays = {k: np.asarray(_host(v)) for k, v in state_dict.items()}
    for k, v in arrays.items():
        if v.shape != params[k].shape:
            raise ValueError(f"{k}: expected shape {params[k].shape}, got {v.shape}")
    for k, v in arrays.items():
        params[k][...] = v


class Model(Module):
    """A container of layers (and of other models), assigned as attributes."""

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self.__dict__.setdefault("_children", {})[name] = value
        object.__setattr__(self, name, value)

    def children(self):
        return dict(self.__dict__.get("_children", {}))

    def _gather(self, which):
        """name -> array over every child, each array once (a tied name after the first is
        left out, so an optimizer updates a shared weight once)."""
        out, seen = {}, set()
        for cname, child in self.children().items():
            for k, v in getattr(child, which).items():
                if id(v) not in seen:
                    seen.add(id(v))
                    out[f"{cname}.{k}"] = v
        return out

    @property
    def params(self):
        return self._gather("params")

    @property
    def grads(self):
        return self._gather("grads")

    def _leaf(self, dotted):
        """(layer, key) of a dotted parameter name."""
        *path, key = dotted.split(".")
        node = self
        for part in path:
            node = node.children().get(part)
            if node is None:
                raise KeyError(f"{dotted}: no such parameter")
        if not isinstance(node, Layer) or key not in node.params:
            raise KeyError(f"{dotted}: no such parameter")
        return node, key

    def tie(self, source, target):
        """Makes parameter `target` the very array of `source` (and likewise their gradients):
        both layers then read one weight, and both backward passes add into one gradient."""
        (src, sk), (dst, dk) = self._leaf(source), self._leaf(target)
        if src.params[sk].shape != dst.params[dk].shape:
            raise ValueError(f"tie: {source} {src.params[sk].shape} and {target} "
                             f"{dst.params[dk].shape} differ in shape")
        dst.params[dk] = src.params[sk]
        dst.grads[dk] = src.grads[sk]

