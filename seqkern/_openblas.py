"""The kernels the bundled OpenBLAS picks for this CPU, a choice it makes once, as _core loads it.

On an aarch64 CPU with SME, scipy-openblas32 0.3.33 and 0.3.34 (the wheel seqkern bundles from)
pick their `armv9sme` kernels, and those compute wrong products: under QEMU 7.2 (`-cpu max`,
which has SME), 0.3.34's sgemm and dgemm were wrong in every one of 120 cases (1 x 1 x 1 to
300 x 300 x 300) for each combination of transposes and alpha with beta not 0, and in 24-104 of
120 with beta 0; a small sgemm with beta not 0 printed "empty sgemm_alpha_beta2x2 should never
get called!!!" (the wheel's stub for its SME kernel, called in place of the kernel). With
`OPENBLAS_CORETYPE=NEOVERSEN1` (NEON kernels, which every SME CPU runs) every case was right; so
were 0.3.30 and 0.3.31, and SVE without SME (`-cpu max,sme=off`, `a64fx` kernels). So seqkern
asks for NEOVERSEN1 there, unless the user chose a core type.
"""
import contextlib
import ctypes
import os
import platform

SME_CORE_TYPE = "NEOVERSEN1"
_AT_HWCAP2 = 26          # getauxval's key for the second word of CPU features (linux/auxvec.h)
_HWCAP2_SME = 1 << 23    # arm64's SME bit in it (asm/hwcap.h)

forced = None  # the core type seqkern set while _core loaded, or None


def core_type_to_force(machine, hwcap2, environ):
    """The OPENBLAS_CORETYPE seqkern sets for a CPU (platform.machine(), AT_HWCAP2), or None."""
    if "OPENBLAS_CORETYPE" in environ or machine != "aarch64":  # (Linux's name for it)
        return None
    return SME_CORE_TYPE if hwcap2 & _HWCAP2_SME else None


def _hwcap2():
    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):  # not glibc or musl on Linux: no auxiliary vector to read
        return 0
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    return getauxval(_AT_HWCAP2)


@contextlib.contextmanager
def kernels_for_this_cpu():
    """Sets OPENBLAS_CORETYPE while _core (and so OpenBLAS) loads, where the CPU needs it, and
    takes it away after, so that other libraries and child processes choose for themselves."""
    global forced
    machine = platform.machine()
    core = core_type_to_force(machine, _hwcap2() if machine == "aarch64" else 0, os.environ)
    if core is None:
        yield
        return
    os.environ["OPENBLAS_CORETYPE"] = core
    try:
        yield
        forced = core
    finally:
        del os.environ["OPENBLAS_CORETYPE"]
