"""Every CUDA kernel once, small, for compute-sanitizer on a GPU (.ci/gpu runs it under memcheck and
racecheck): what the CPU emulator cannot show, reads and writes out of bounds on the device and
races in shared memory. Each op runs forward and backward on torch CUDA tensors, float32 and
float64, with uneven lengths; results are not checked here (tests/test_cuda.py does that).

    compute-sanitizer --tool memcheck --error-exitcode 1 python3 tests/cuda_sanitize.py
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cuda_ops_cases as ops  # noqa: E402
import seqkern as sk  # noqa: E402
from cuda_cases import CELLS, problem, run, stack_problem, stack_step  # noqa: E402


def gpu(a):
    return torch.from_numpy(np.ascontiguousarray(a)).cuda()


def host(a):
    return a.cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def main():
    for dtype in (np.float32, np.float64):
        for cell in CELLS:  # batches under and over a step block's tile, H over a block of 32
            for shape in ((3, 1, 4, 5), (4, 9, 6, 40)):
                p = problem(cell, *shape, dtype, seed=1, uneven=shape[1] > 1)
                run(cell, {k: None if v is None or k == "lengths" else gpu(v)
                           for k, v in p.items()})
        p, incoming = stack_problem("lstm", 4, 3, 5, 6, 2, True, [4, 2, 3], False)
        q = {k: v if k in ("lengths", "weights") else None if v is None else gpu(v)
             for k, v in p.items()}
        q["weights"] = [tuple(None if w is None else gpu(w) for w in ws) for ws in p["weights"]]
        stack_step(sk, "lstm", q, tuple(map(gpu, incoming)), True)
        ops.cross_entropy_step(sk, 5, 300, dtype, 0, "mean", 0.1, True, dev=gpu, host=host)
        ops.embedding_step(sk, 10, 300, (3, 7), dtype, 0, padding_idx=0, dev=gpu, host=host)
        for score in ops.SCORES:
            for shape in ((2, 3, 130, 8, 8, 9), (2, 140, 5, 8, 8, 520)):
                p = ops.attention_problem(score, *shape, dtype, seed=2)
                ops.attention_step(sk, score, p, dev=gpu, host=host)
        ops.ctc_step(sk, 30, 3, 6, 130, dtype, 3, dev=gpu, host=host)
    torch.cuda.synchronize()
    print("DONE")


if __name__ == "__main__":
    main()
