"""Truncated-BPTT batches over one token stream, as the book's RnnlmTrainer makes them.

The stream's inputs are ids[:-1] and its targets ids[1:] (n values each). Row b of every batch
reads the stream from offset b * (n // B), and each batch moves every row T steps further
(wrapping at the end), so the state a model keeps for row b after one batch is the right start
for row b of the next.
"""
from __future__ import annotations

import numpy as np

from seqkern._checks import check_count


class TBPTTBatches:
    """for xs, ts in TBPTTBatches(ids, batch_size=20, bptt=35): ...   # xs, ts (B, T) int64

    One iteration is one epoch of n // (B * T) batches. The position carries on into the next
    epoch, as in the book (reset() starts over)."""

    def __init__(self, ids, batch_size, bptt):
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids: expected a 1-D integer array, got {ids.dtype} {ids.shape}")
        for name, v in (("batch_size", batch_size), ("bptt", bptt)):
            check_count(name, v)
        n = len(ids) - 1
        if n < batch_size * bptt:
            raise ValueError(f"ids: {len(ids)} tokens are too few for one batch of "
                             f"batch_size * bptt = {batch_size} * {bptt} (+1 for the targets)")
        self.xs, self.ts = ids[:-1].astype(np.int64), ids[1:].astype(np.int64)
        self.batch_size, self.bptt = int(batch_size), int(bptt)
        self.offsets = np.arange(batch_size) * (n // batch_size)
        self.time_idx = 0

    def __len__(self):
        return len(self.xs) // (self.batch_size * self.bptt)

    @property
    def tokens_per_batch(self):
        return self.batch_size * self.bptt

    def reset(self):
        self.time_idx = 0

    def __iter__(self):
        steps = np.arange(self.bptt)
        for _ in range(len(self)):
            idx = (self.offsets[:, None] + self.time_idx + steps) % len(self.xs)
            self.time_idx += self.bptt
            yield self.xs[idx], self.ts[idx]
