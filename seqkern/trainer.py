"""Training loop for the language models: truncated BPTT over a token stream, gradient clipping,
the book's learning-rate schedule, a progress bar, the best checkpoint kept.

    trainer = seqkern.Trainer(model, seqkern.optim.SGD(lr=20), batch_size=20, bptt=35, clip=0.25,
                              checkpoint="lm.npz")
    trainer.fit(train_ids, val_ids, epochs=4)

After each epoch it prints a line with the validation perplexity ("val perplexity Y"); when that
did not improve it divides the learning rate by lr_decay (4, as the book does). The model it
returns holds the weights with the best validation perplexity, also saved to `checkpoint`.
Ctrl-C stops within a step: the best checkpoint stays intact (saves are atomic) and the model
comes back as after an epoch.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from seqkern._checks import check_count
from seqkern._interrupt import Interrupt
from seqkern.checkpoint import check_target
from seqkern.data import TBPTTBatches
from seqkern.metrics import perplexity
from seqkern.nn import clip_grads


def _number(v):
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def train_step(model, optimizer, batch, clip=None):
    """One step of any model with the book's interface: loss = model.forward(*batch), gradients
    cleared and recomputed, clipped to a global norm of `clip` (when given), one optimizer
    update. Returns the loss."""
    loss = model.forward(*batch)
    model.zero_grad()
    model.backward()
    grads = model.grads
    if clip:
        clip_grads(grads, clip)
    optimizer.update(model.params, grads)
    return loss


class Trainer:
    def __init__(self, model, optimizer, batch_size=20, bptt=35, clip=0.25, lr_decay=4.0,
                 checkpoint=None, eval_batch_size=10, max_seconds=None, progress=True,
                 out=sys.stdout):
        # each argument checked now, not where it is first used, a step or an epoch later
        if checkpoint is not None:
            try:
                check_target(checkpoint)
            except OSError as e:
                raise type(e)(e.errno, f"checkpoint: {e.strerror}", e.filename) from None
        if not (callable(getattr(optimizer, "update", None)) and hasattr(optimizer, "lr")):
            raise TypeError("optimizer: expected a seqkern.optim optimizer (update(params, grads) "
                            f"and lr), got {type(optimizer).__module__}.{type(optimizer).__name__}")
        for name, v in (("batch_size", batch_size), ("bptt", bptt),
                        ("eval_batch_size", eval_batch_size)):
            check_count(name, v)
        if not (clip is None or _number(clip) and clip >= 0):  # None or 0: no clipping
            raise ValueError("clip: expected None, 0 (no clipping) or a positive norm, got "
                             f"{clip!r}")
        if not (_number(lr_decay) and 1 <= lr_decay < float("inf")):
            raise ValueError("lr_decay: expected a number >= 1 (1 keeps the rate), got "
                             f"{lr_decay!r}")
        if not (max_seconds is None or _number(max_seconds) and max_seconds > 0):
            raise ValueError("max_seconds: expected None or a positive number, got "
                             f"{max_seconds!r}")
        self.model, self.optimizer = model, optimizer
        self.batch_size, self.bptt, self.clip = batch_size, bptt, clip
        self.lr_decay, self.checkpoint, self.eval_batch_size = lr_decay, checkpoint, eval_batch_size
        self.max_seconds, self.progress, self.out = max_seconds, progress, out
        self.history = []   # one dict per epoch
        self.best = None    # (val perplexity, weights)

    def fit(self, train_ids, val_ids=None, epochs=1):
        """Trains for `epochs` passes over train_ids (or until max_seconds); returns the model."""
        check_count("epochs", epochs, least=0)
        batches = TBPTTBatches(train_ids, self.batch_size, self.bptt)
        if val_ids is not None and len(val_ids) < 2:  # found now, not after the first epoch
            raise ValueError(f"val_ids: {len(val_ids)} token(s) to validate on; perplexity needs "
                             "at least 2 (a token and the one after it)")
        start = time.perf_counter()
        try:
            with Interrupt() as interrupt:
                for epoch in range(1, epochs + 1):
                    stats = self._epoch(batches, epoch, epochs, start, interrupt)
                    self._end_epoch(epoch, epochs, val_ids, stats)
                    if stats["timed_out"]:
                        break
        except KeyboardInterrupt:
            print("interrupted: stopping", file=self.out, flush=True)
        finally:
            if self.best is not None:
                self.model.load_state_dict(self.best[1])
            self.model.reset_state()
        return self.model

    def step(self, xs, ts):
        """One training step on a batch (xs, ts (B, T)); returns the batch's mean loss."""
        return train_step(self.model, self.optimizer, (xs, ts), self.clip)

    def _epoch(self, batches, epoch, epochs, start, interrupt):
        """One pass; returns its statistics (timed_out: stopped early by max_seconds)."""
        model, n = self.model, len(batches)
        model.train()
        model.reset_state()
        bar = _Progress(n, f"epoch {epoch}/{epochs}", self.progress)
        total_loss, steps, t0 = 0.0, 0, time.perf_counter()
        timed_out = False
        try:
            for xs, ts in batches:
                interrupt.check()
                loss = self.step(xs, ts)
                total_loss += loss
                steps += 1
                rate = steps * batches.tokens_per_batch / (time.perf_counter() - t0)
                bar.update(steps, loss=loss, rate=rate)
                if self.max_seconds is not None and time.perf_counter() - start > self.max_seconds:
                    timed_out = steps < n
                    break
        finally:
            bar.close()
        seconds = time.perf_counter() - t0
        return dict(steps=steps, seconds=seconds, timed_out=timed_out,
                    train_perplexity=perplexity(total_loss / steps) if steps else float("nan"),
                    tokens_per_s=steps * batches.tokens_per_batch / seconds if seconds else 0.0)

    def _end_epoch(self, epoch, epochs, val_ids, stats):
        stats = dict(epoch=epoch, lr=self.optimizer.lr, **stats)
        line = (f"epoch {epoch}/{epochs} | train perplexity {stats['train_perplexity']:.2f}")
        if val_ids is not None:
            val = self.model.perplexity(val_ids, self.eval_batch_size, self.bptt)
            stats["val_perplexity"] = val
            line += f" | val perplexity {val:.2f}"
            if self.best is None or val < self.best[0]:
                self.best = (val, self.model.state_dict())
                if self.checkpoint:
                    self.model.save(self.checkpoint)
            else:
                self.optimizer.lr /= self.lr_decay
        elif self.checkpoint:
            self.model.save(self.checkpoint)
        line += (f" | lr {stats['lr']:.3g} | {stats['tokens_per_s']:,.0f} tokens/s"
                 f" | {stats['seconds']:.0f} s")
        if stats["timed_out"]:
            line += f" (time limit: {stats['steps']} steps)"
        print(line, file=self.out, flush=True)
        self.history.append(stats)


class _Progress:
    """tqdm when installed, else a bar redrawn in place on a terminal, else a line every 10 s;
    on stderr, so that stdout keeps only the epoch lines."""

    def __init__(self, total, desc, enabled):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.tqdm = None
        if enabled:
            try:
                from tqdm import tqdm
                self.tqdm = tqdm(total=total, desc=desc, unit="batch", leave=False)
            except ImportError:
                pass

    def update(self, step, loss, rate):
        if not self.enabled:
            return
        ppl = perplexity(loss)
        if self.tqdm is not None:
            self.tqdm.update(step - self.tqdm.n)
            self.tqdm.set_postfix_str(f"loss {loss:.3f}, ppl {ppl:.2f}, {rate:,.0f} tok/s",
                                      refresh=False)
            return
        now = time.perf_counter()
        if now - self.last < (0.2 if self.tty else 10.0) and step < self.total:
            return
        self.last = now
        done = step / self.total
        bar = "#" * int(30 * done)
        line = (f"{self.desc} [{bar:<30}] {100 * done:3.0f}% | loss {loss:.3f} | "
                f"perplexity {ppl:.2f} | {rate:,.0f} tokens/s")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr,
              flush=True)

    def close(self):
        if self.tqdm is not None:
            self.tqdm.close()
        elif self.enabled and self.tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
