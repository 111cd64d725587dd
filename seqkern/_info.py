"""Build and runtime facts, and the thread count."""
import operator
import os
import platform
import warnings

from seqkern import _core, _openblas


def set_num_threads(n):
    """Threads for every seqkern kernel: the pointwise pool and the bundled BLAS together."""
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"n: expected at least 1 thread, got {n}")
    _core.set_num_threads(n)


def get_num_threads():
    """The thread count in use (default: the cores this process may run on)."""
    return _core.get_num_threads()


def _check_simd_request():
    """SEQKERN_SIMD names a level to force; the kernels fall back to the best the machine has
    when it names another word or a level the machine lacks, and this says so."""
    asked = os.environ.get("SEQKERN_SIMD", "")
    if not asked or asked.lower() == _core.simd_level():  # empty is unset; any letter case
        return
    levels = _core.simd_levels()
    why = (f"this machine runs {levels}" if asked.lower() in ("baseline", "avx2", "avx512")
           else "expected baseline, avx2 or avx512")
    # stacklevel 4: past this function, this module and seqkern/__init__, to the user's import
    warnings.warn(f"SEQKERN_SIMD={asked!r} ignored ({why}); using {_core.simd_level()}",
                  RuntimeWarning, stacklevel=4)


_check_simd_request()


def _check_tune_request():
    """SEQKERN_TUNE makes the AVX-512 kernels take the choices measured on another kind of cores
    (intel, zen4 or zen5); it is ignored for another word and below level avx512, and this says
    so."""
    asked = os.environ.get("SEQKERN_TUNE", "")
    if not asked or asked.lower() == _core.avx512_cores():
        return
    why = ("expected intel, zen4 or zen5" if asked.lower() not in ("intel", "zen4", "zen5")
           else f"it tunes level avx512, and this process runs {_core.simd_level()}")
    warnings.warn(f"SEQKERN_TUNE={asked!r} ignored ({why})", RuntimeWarning, stacklevel=4)


_check_tune_request()


def cuda_built():
    """Whether the optional CUDA backend seqkern._cuda was built (it is imported lazily)."""
    import importlib.util

    return importlib.util.find_spec("seqkern._cuda") is not None


def _cuda_fact():
    """'not built', or 'built' with the GPUs the CUDA runtime sees (or its reason for none)."""
    if not cuda_built():
        return "not built"
    from seqkern import _cuda
    n, why = _cuda.device_status()
    if n == 0:
        return f"built, no GPU visible ({why})" if why else "built, no GPU visible"
    return f"built, {n} GPU{'' if n == 1 else 's'}"


def _blas():
    """The bundled OpenBLAS and the kernels it picked; OPENBLAS_CORETYPE, which overrides its
    choice for the CPU (some machines set it: on a Zen 5, Haswell halves the large products'
    speed), is named when set, and so is the core type seqkern set for it (_openblas)."""
    name = _core.blas_name().strip()
    if _openblas.forced:
        return (f"{name} (OPENBLAS_CORETYPE={_openblas.forced}, set by seqkern: this wheel's "
                "armv9sme kernels compute wrong products)")
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return f"{name} (OPENBLAS_CORETYPE={forced})" if forced else name


# Arm's server cores by "CPU part" (implementer 0x41), for machines whose /proc/cpuinfo names none.
ARM_PARTS = {"0xd0c": "Neoverse N1", "0xd40": "Neoverse V1", "0xd49": "Neoverse N2",
             "0xd4f": "Neoverse V2", "0xd8e": "Neoverse N3", "0xd84": "Neoverse V3"}


def cpu():
    """The CPU model, its family and model numbers (which tell apart generations that share a
    name, such as AMD EPYC Zen 3, 4 and 5: families 25, 25 and 26), its widest vector ISA and
    core count, from /proc/cpuinfo (Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            return describe_cpu(f.read(), os.cpu_count())
    except OSError:
        return f"{platform.processor() or 'unknown CPU'}, {os.cpu_count()} cores"


def describe_cpu(info, cores):
    """cpu()'s line from the text of /proc/cpuinfo: x86 names its model; aarch64 (whose cpuinfo
    has no model name) gives its implementer and part numbers, and NEON/SVE from its features."""
    fields = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", fields.get("Features", "")).split())
    if "model name" in fields:
        name = fields["model name"]
    elif "CPU implementer" in fields:
        implementer, part = fields["CPU implementer"], fields.get("CPU part", "?")
        name = (ARM_PARTS.get(part) if implementer == "0x41" else None) or \
            f"{platform.machine() or 'Arm'} CPU (implementer {implementer}, part {part})"
    else:
        name = "unknown CPU"
    isa = ("AVX-512" if "avx512f" in flags else "AVX2/FMA" if "avx2" in flags else
           "SVE2" if "sve2" in flags else "SVE" if "sve" in flags else
           "NEON" if "asimd" in flags else "baseline")
    family = ""
    if "cpu family" in fields:
        family = f"family {fields['cpu family']} model {fields['model']}, "
    return f"{name} ({family}{isa}), {cores} cores"


def facts():
    """Version, CPU, BLAS, threads (and the control group's CPU quota, when one is set), SIMD level
    (and at avx512 the kind of cores its choices are tuned for), the bfloat16 products' route and
    CUDA availability, as a dict."""
    quota = _core.cgroup_cpu_quota()  # the default thread count's cap, when a container has one
    cores, tune = _core.avx512_cores(), os.environ.get("SEQKERN_TUNE", "")
    return {
        "seqkern": _core.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu(),
        "blas": _blas(),
        "threads": get_num_threads(),
        **({"cpu quota": f"{quota:g} CPUs (cgroup)"} if quota > 0 else {}),
        "simd": _core.simd_level(),
        "simd levels": _core.simd_levels(),
        **({"tuning": cores + (" (SEQKERN_TUNE)" if tune.lower() == cores else "")}
           if cores != "none" else {}),
        "bf16": ("AMX tiles" if _core.bf16_amx() else
                 "native dot products" if _core.bf16_native() else
                 "plain C++" if _core.simd_level() == "baseline" else "widened to float"),
        "cuda": _cuda_fact(),
    }


def info(file=None):
    """Prints facts() one per line (to file, default stdout) and returns them."""
    facts_ = facts()
    width = max(map(len, facts_))
    for k, v in facts_.items():
        print(f"{k:<{width}}  {v}", file=file)
    return facts_
