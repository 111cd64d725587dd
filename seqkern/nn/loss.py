"""SoftmaxCrossEntropy: the book's SoftmaxWithLoss / TimeSoftmaxWithLoss, fused in C++."""
from __future__ import annotations

from seqkern._ops import softmax_cross_entropy, softmax_cross_entropy_backward
from seqkern.nn.module import Layer


class SoftmaxCrossEntropy(Layer):
    """loss = layer.forward(logits (..., V), targets (...)); dlogits = layer.backward(dloss=1.0).

    ignore_index, reduction ("mean", "sum", "none") and label_smoothing as in
    torch.nn.CrossEntropyLoss. overwrite_logits=True lets backward write the gradient over the
    logits given to forward (no new buffer, one pass less), for callers done with them."""

    def __init__(self, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                 overwrite_logits=False):
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing = label_smoothing
        self.overwrite_logits = overwrite_logits
        self.params, self.grads = {}, {}
        self._saved = None

    def forward(self, logits, targets):
        loss, self._saved = softmax_cross_entropy(
            logits, targets, self.ignore_index, self.reduction, self.label_smoothing,
            training=True)
        return loss

    def backward(self, dloss=1.0):
        if self._saved is None:
            raise RuntimeError("backward: call forward first")
        # the checked logits are the caller's array, or a contiguous copy of it
        out = self._saved.args.logits if self.overwrite_logits else None
        return softmax_cross_entropy_backward(self._saved, dloss, out=out)

    __call__ = forward
