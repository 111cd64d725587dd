"""Thousands of malformed calls to the public API (tests/fuzz_api.py) raise TypeError or
ValueError (MemoryError for absurd sizes): none crashes the interpreter, hangs, or escapes as
another exception. Run in child processes, so a crash fails the test instead of ending pytest.
Fuzzing found a SIGFPE (a NaN ns_exponent), an abort (a window of 2**40) and a hang (the book's
sampler) that the tests written by hand had not."""
import os
import subprocess
import sys

import numpy as np
import pytest

FUZZ = os.path.join(os.path.dirname(__file__), "fuzz_api.py")


def assert_fuzz_clear(script, seed, calls, tmp_path, timeout, *extra):
    """The fuzz script, run in a child process, exits cleanly having raised only clear errors."""
    last = tmp_path / "last_call.txt"
    try:
        run = subprocess.run([sys.executable, script, str(seed), str(calls), str(last), *extra],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer after {timeout} s; the call running: {last.read_text()}")
    assert run.returncode == 0, f"exit status {run.returncode} during {last.read_text()}" \
                                f"\n{run.stderr[-3000:]}"
    unclear = [line for line in run.stdout.splitlines() if line.startswith("UNCLEAR")]
    assert not unclear, "\n".join(unclear)
    assert run.stdout.splitlines()[-1] == "DONE"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_malformed_calls_raise_clear_errors(seed, tmp_path):
    assert_fuzz_clear(FUZZ, seed, 1500, tmp_path, 120)


# (seed 101's first 32 calls end on an LSTM state that crashed torch itself, beside packed input)
@pytest.mark.parametrize("seed,calls", [(0, 600), (1, 600), (2, 600), (101, 32)])
def test_malformed_calls_to_torch_modules_fail_as_torchs_do(seed, calls, tmp_path):
    """seqkern.torch's modules against torch's own on malformed inputs, states and replaced
    weights (tests/fuzz_torch.py): the same exception type or the same results; where torch
    itself crashes, a RuntimeError. This found a StopIteration for a bias set to None, a
    projected LSTM run without its projection, and torch's own crashes on misshaped weights."""
    pytest.importorskip("torch")
    script = os.path.join(os.path.dirname(FUZZ), "fuzz_torch.py")
    last = tmp_path / "last_call.txt"
    run = subprocess.run([sys.executable, script, str(seed), str(calls), str(last)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"exit status {run.returncode} during {last.read_text()}" \
                                f"\n{run.stderr[-3000:]}"
    diffs = [line for line in run.stdout.splitlines() if line.startswith("DIFF")]
    assert not diffs, "\n".join(diffs)
    assert run.stdout.splitlines()[-1] == "DONE"


def test_the_unchanged_calls_succeed():
    """The fuzz starts from valid calls: each case's own call must run as built (this check found
    seqkern.nn.Attention's additive params in float64, refusing float32 input)."""
    sys.path.insert(0, os.path.dirname(FUZZ))
    try:
        import fuzz_api
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(0)
    for name, (build, call) in fuzz_api.CASES.items():
        for _ in range(0 if name in fuzz_api.INVALID_AS_BUILT else 20):
            kw = build(rng)
            try:
                call(kw)
            except Exception as e:
                pytest.fail(f"{name}: {type(e).__name__}: {e}")


def test_malformed_calls_on_the_cuda_path_raise_clear_errors(tmp_path):
    """The same calls on the CUDA path: its checks, and its kernels on the CPU emulator
    (tests/fuzz_cuda_emulated.py; .ci/asan runs it with the sanitizers)."""
    pytest.importorskip("torch")
    pytest.importorskip("pybind11")
    import shutil
    import sysconfig
    sys.path.insert(0, os.path.join(os.path.dirname(FUZZ), "cuda_emulator"))
    try:
        from emulate_cuda import COMPILER  # the compiler the fuzz's build runs (CXX, or g++)
    finally:
        sys.path.pop(0)
    if shutil.which(COMPILER) is None or not os.path.exists(
            os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        pytest.skip(f"needs {COMPILER} and Python's C headers to build the emulated kernels")
    fuzz = os.path.join(os.path.dirname(FUZZ), "fuzz_cuda_emulated.py")
    assert_fuzz_clear(fuzz, 3, 600, tmp_path, 300, str(tmp_path / "emu"))
