"""Builds seqkern._cuda's sources for the CPU emulator in this folder (cuda_runtime.h says what it
checks) into an importable module, for tests/test_cuda_emulated.py.

The only rewrite is the launch syntax g++ cannot read: kernel<<<grid, block, smem, stream>>>(args)
becomes ::emu::launch(dim3(grid), dim3(block), [&] { kernel(args); }).

SEQKERN_EMULATOR_CXXFLAGS adds compiler flags: .ci/asan passes its sanitizers, so that a kernel's
out-of-bounds index is caught on the CPU as compute-sanitizer would catch it on a GPU. CXX names
the compiler (default g++): .ci/aarch64, whose Python runs under QEMU, passes the cross compiler,
since the host's g++ would build an x86 module that Python cannot load.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPILER = os.environ.get("CXX", "g++")
LAUNCH = re.compile(r"([\w:]+(?:<[^<>;]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\);", re.S)


def _split_top(text):
    """text split at its commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "(<" and 1 or -(ch in ")>")
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def rewrite_launches(source):
    def launch(m):
        grid, block = _split_top(m.group(2))[:2]
        return f"::emu::launch(dim3({grid}), dim3({block}), [&] {{ {m.group(1)}({m.group(3)}); }});"
    return LAUNCH.sub(launch, source)


def build(out_dir):
    """Compiles the emulated module into out_dir and imports it (as _cuda)."""
    import pybind11
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    for cu in sorted((ROOT / "csrc" / "cuda").glob("*.cu")):
        cc = out_dir / (cu.stem + ".cc")
        cc.write_text(rewrite_launches(cu.read_text()))
        sources.append(str(cc))
    sources.append(str(ROOT / "csrc" / "bindings" / "cuda.cc"))
    module = out_dir / ("_cuda" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = [COMPILER, "-std=c++17", "-O1", "-shared", "-fPIC", f"-I{HERE}",
           f"-I{ROOT / 'csrc' / 'cuda'}", f"-I{ROOT / 'csrc' / 'include'}",
           f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}",
           *shlex.split(os.environ.get("SEQKERN_EMULATOR_CXXFLAGS", "")), *sources, "-o", str(module)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    spec = importlib.util.spec_from_file_location("_cuda", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


if __name__ == "__main__":
    print(build(sys.argv[1]))
