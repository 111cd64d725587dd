"""fuzz_api.py's malformed calls on the CUDA path: the ops that take CUDA arrays get their float
arguments as torch tensors posing as CUDA ones (torch's CPU tensors, treated as device arrays),
with seqkern._device running the CUDA kernels compiled for the CPU emulator (cuda_emulator/)
behind them. A kernel that reads or writes past its arrays shows as a crash of this process, or,
with SEQKERN_EMULATOR_CXXFLAGS set to the sanitizers (as .ci/asan does), as their report:

    python tests/fuzz_cuda_emulated.py SEED CALLS LAST_FILE [BUILD_DIR]

Prints fuzz_api.py's "UNCLEAR ..." lines and "DONE" at the end; needs torch, g++ and pybind11."""
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "cuda_emulator")]
import emulate_cuda  # noqa: E402
import fuzz_api  # noqa: E402
from seqkern import _checks, _device, _ops  # noqa: E402

DEVICE_OPS = ["lstm", "gru", "rnn", "lstm_backward", "gru_backward", "rnn_backward",
              "recurrent_stack", "attention", "ctc_loss", "softmax_cross_entropy", "embedding",
              "embedding_backward"]


def on_device(value):
    """Float arrays (and their weight lists) as torch tensors, where torch takes them as they are;
    everything else unchanged."""
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        return [tuple(map(on_device, t)) for t in value]
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.dtype.itemsize >= 4:
        try:
            return torch.from_numpy(value)
        except (TypeError, ValueError, RuntimeError):  # negative strides, unaligned, read-only
            return value
    return value


def emulate(build_dir):
    """seqkern._device on the emulated kernels, torch's CPU tensors posing as CUDA arrays."""
    module = emulate_cuda.build(build_dir)
    host_check = _checks.is_device_array
    fake = lambda a: isinstance(a, torch.Tensor) or host_check(a)  # noqa: E731
    for m in (_checks, _device, _ops):
        m.is_device_array = fake
    _device._backend = lambda: module
    _device._TorchArrays.stream = lambda self: 0
    _device._TorchArrays.index = lambda self: 0


def main(seed, calls, last_file, build_dir):
    emulate(build_dir)
    for name in DEVICE_OPS:
        build, call = fuzz_api.CASES[name]
        fuzz_api.CASES[name] = (build, lambda kw, call=call: call(
            {k: on_device(v) for k, v in kw.items()}))
    fuzz_api.CASES = {name: fuzz_api.CASES[name] for name in DEVICE_OPS}
    fuzz_api.main(seed, calls, last_file)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    build_dir = sys.argv[4] if len(sys.argv) > 4 else tempfile.mkdtemp()
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], build_dir)
