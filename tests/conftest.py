import os
import signal
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# `python -m pytest` puts the current folder first on sys.path: in the checkout, seqkern's source
# tree there (without its compiled _core, unless installed in place) would hide the installed
# package. Test the installed one, as `pytest` does.
_checkout = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _checkout]

import seqkern as sk  # noqa: E402

# Kernels are fast but the NumPy twins loop in Python: keep examples modest, never time them.
settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def restore_threads():
    """Gives the test's thread count changes back at its end."""
    n = sk.get_num_threads()
    yield
    sk.set_num_threads(n)


@pytest.fixture
def fresh_warnings():
    """seqkern.torch's FallbackWarnings as errors, its once-per-reason memory cleared before and
    after (for the tests that have torch)."""
    import seqkern.torch as skt
    skt._warned.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", skt.FallbackWarning)
        yield
    skt._warned.clear()


class _Interrupting:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)


class _DroppedInterrupts:
    """drop() raises SIGINT inside a finalizer, where Python prints the KeyboardInterrupt as
    "Exception ignored" and goes on; `dropped` lists the exceptions so lost."""

    def __init__(self):
        self.dropped = []

    def drop(self):
        _Interrupting()  # made and dropped at once: its __del__ runs here


@pytest.fixture
def interrupt_in_finalizer(monkeypatch):
    """A Ctrl-C lost inside a finalizer (_DroppedInterrupts), with Python's own SIGINT handler
    installed meanwhile: a shell without job control runs `pytest &` with SIGINT ignored."""
    lost = _DroppedInterrupts()
    monkeypatch.setattr(sys, "unraisablehook", lambda u: lost.dropped.append(u.exc_type))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield lost
    finally:
        signal.signal(signal.SIGINT, previous)
