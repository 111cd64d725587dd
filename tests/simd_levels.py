"""Running a script at each SIMD level the machine has (SEQKERN_SIMD), for the tests of every
level's copy of the kernels."""
import os
import subprocess
import sys

import pytest

from seqkern import _core

LEVELS = ("baseline", "avx2", "avx512")


def run_at_level(level, script, tmp_path, *args, env=None):
    """Runs script in a fresh process at SIMD level `level` (skipped where the machine lacks it),
    outside the source tree, which has no built _core, with `env` added to the environment;
    returns its stdout."""
    if level not in _core.simd_levels().split(","):
        pytest.skip(f"this machine has no {level}")
    env = dict(os.environ, **(env or {}), SEQKERN_SIMD=level)
    out = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout
