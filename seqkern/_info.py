"""Build and runtime facts, and the thread count."""
import operator
import platform

from seqkern import _core


def set_num_threads(n):
    """Threads for every seqkern kernel: the pointwise pool and the bundled BLAS together."""
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"n: expected at least 1 thread, got {n}")
    _core.set_num_threads(n)


def get_num_threads():
    """The thread count in use (default: the cores this process may run on)."""
    return _core.get_num_threads()


def cuda_built():
    """Whether the optional CUDA backend seqkern._cuda was built (it is imported lazily)."""
    import importlib.util

    return importlib.util.find_spec("seqkern._cuda") is not None


def facts():
    """Version, BLAS, threads, SIMD level and CUDA availability, as a dict."""
    return {
        "seqkern": _core.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "blas": _core.blas_name().strip(),
        "threads": get_num_threads(),
        "simd": _core.simd_level(),
        "cuda": "built" if cuda_built() else "not built",
    }


def info(file=None):
    """Prints facts() one per line (to file, default stdout) and returns them."""
    facts_ = facts()
    width = max(map(len, facts_))
    for k, v in facts_.items():
        print(f"{k:<{width}}  {v}", file=file)
    return facts_
