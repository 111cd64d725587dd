"""Ctrl-C in a training loop that survives a finalizer.

Python raises a SIGINT's KeyboardInterrupt wherever the main thread happens to be, and one
raised while a finalizer runs (a progress bar's tqdm.__del__, say) is printed as "Exception
ignored" and dropped: once in a few hundred runs of test_ctrl_c_stops_training_within_a_second,
train-lm trained on for 30 s after SIGINT. Interrupt's handler raises KeyboardInterrupt as
Python's does and also sets a flag that the loop checks before each step."""

from __future__ import annotations

import signal
import threading


class Interrupt:
    """A context manager around a training loop; call check() before each step. Installed only
    where Python's own handler is (the main thread; not under SIG_IGN or a caller's handler)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False

    def _handle(self, signum, frame):
        self.requested = True
        raise KeyboardInterrupt

    def check(self):
        if self.requested:
            raise KeyboardInterrupt
