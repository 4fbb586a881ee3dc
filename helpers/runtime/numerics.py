"""Numerics pins: fix the settings that decide float results before TensorFlow and NumPy load.

The same seed does not give the same floats everywhere. On x86-64, four things move the last
bits of a result even with TensorFlow's op determinism on:

* the instruction set that oneDNN's matrix-product kernels use (TensorFlow's matrix products go
  through oneDNN's sgemm even with ``TF_ENABLE_ONEDNN_OPTS=0``), capped by
  ``ONEDNN_MAX_CPU_ISA``;
* TensorFlow's intra-op and inter-op thread counts (``TF_NUM_INTRAOP_THREADS``,
  ``TF_NUM_INTEROP_THREADS``), which decide how a product is split into blocks;
* NumPy's BLAS (OpenBLAS): its kernel (``OPENBLAS_CORETYPE``), the L2 cache size it blocks
  for (``OPENBLAS_L2_SIZE``) and its thread count (``OPENBLAS_NUM_THREADS``);
* NumPy's own SIMD dispatch for ufuncs such as ``exp`` (``NPY_DISABLE_CPU_FEATURES``).

All of them are read once, when the library loads, so `pin` must run before the first
``import numpy`` or ``import tensorflow`` of a process: ``import helpers`` does it first thing.
It only fills in variables the environment has not set. Some machines set
``OPENBLAS_CORETYPE`` on purpose, because older OpenBLAS builds compute wrong results or crash
on their processors; such a value is kept.

A forced kernel is always pinned together with its L2 size. OpenBLAS otherwise asks the CPU
for it, and the answer depends on the CPU model and the OpenBLAS release: NumPy 2.5's OpenBLAS,
with the Haswell kernel forced on an AMD EPYC with AVX-512, crashes on a 784 x 784 product,
and with the Sandybridge kernel gives other bits than NumPy 2.0-2.4. With the L2 size pinned
too, NumPy 2.0.2, 2.4.6 and 2.5.5 give the same bits there (``tests/test_numerics_pins.py``
runs every profile's pins on the installed NumPy).

Pinning makes results identical across x86-64 machines of the same CPU model and core count,
but not across CPU models: Eigen sizes its blocks from the CPU's cache sizes, which no variable
sets. That is why every number that the notebook checks compares is printed at a precision
that every CPU reproduces, and the pins only narrow what can differ.

Profiles:

* ``pinned`` (the default): the settings that produced the stored chapter outputs. AVX2 is the
  instruction-set level of every x86-64 CPU since Intel's Haswell (2013) and AMD's Excavator
  (2015). TensorFlow runs each operation on one thread and two operations at a time: the
  networks of this book are small, and on two cores that is faster than splitting every
  operation across two threads (chapter 07: 130 s instead of 143 s; chapter 04: 52 s instead
  of 68 s), whatever the number of cores.
* ``alternate``: deliberately different settings (a lower instruction set, other thread
  counts, another OpenBLAS kernel, NumPy without its AVX2 ufunc loops). ``make test`` runs
  nbval under it, to show that the compared outputs do not depend on these settings.
* ``none``: pin nothing, leave every library's default (to measure what pinning costs).

Choose a profile with the environment variable ``BN_COMPANION_NUMERICS``.

Run a command with the pins in its environment (so every Jupyter kernel it starts inherits
them) with ``python -m helpers -- COMMAND ...``; ``python -m helpers`` alone prints what is in
effect.

This module must not import NumPy or TensorFlow.
"""

import os
import platform
import sys
import warnings

from helpers.runtime import supported

#: The environment variable that selects a profile.
PROFILE_VARIABLE = "BN_COMPANION_NUMERICS"

#: Quiet TensorFlow start-up and oneDNN's reordered kernels off, under every profile: oneDNN's
#: start-up banner would land in notebook outputs, and its kernels depend on the CPU model.
ALWAYS = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}

#: NumPy's dispatch targets, by the first NumPy release that names them so: those above AVX2
#: (AVX-512 and later), and those of the AVX2 level itself (which the alternate profile also
#: turns off). NumPy 2.4 renamed its x86 targets after the x86-64 levels (X86_V3, X86_V4) and
#: ignores the old names, with an ImportWarning that Python hides by default; NumPy 2.0 to 2.3
#: ignore the new ones in the same way, and only 2.3 dispatches to AVX512_SPR. A name that an
#: installed NumPy ignores leaves its loops on, so each NumPy gets the names it knows.
_NPY_TARGETS = (
    ((2, 4), "X86_V4 AVX512_ICL AVX512_SPR", "X86_V3"),
    (
        (2, 3),
        "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL "
        "AVX512_SPR",
        "AVX F16C FMA3 AVX2",
    ),
    (
        (0, 0),
        "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL",
        "AVX F16C FMA3 AVX2",
    ),
)

#: Placeholders in `PROFILES`, replaced by the names the installed NumPy knows (`npy_targets`).
_ABOVE_AVX2 = "(the NumPy targets above AVX2)"
_AVX2_AND_ABOVE = "(the NumPy targets from AVX2 up)"

PROFILES = {
    "pinned": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "2",
        "OPENBLAS_NUM_THREADS": "1",
        "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_L2_SIZE": "262144",
        "NPY_DISABLE_CPU_FEATURES": _ABOVE_AVX2,
    },
    "alternate": {
        "ONEDNN_MAX_CPU_ISA": "AVX",
        "TF_NUM_INTRAOP_THREADS": "3",
        "TF_NUM_INTEROP_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "2",
        "OPENBLAS_CORETYPE": "Sandybridge",
        "OPENBLAS_L2_SIZE": "1048576",
        "NPY_DISABLE_CPU_FEATURES": _AVX2_AND_ABOVE,
    },
    "none": {},
}

#: Variables that only mean something on x86-64.
_X86_ONLY = {
    "ONEDNN_MAX_CPU_ISA",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "NPY_DISABLE_CPU_FEATURES",
}

#: Pinned only together with the variable they belong to: the L2 size (256 KiB, Haswell's and
#: Sandy Bridge's own; 1 MiB in the alternate profile, to vary OpenBLAS's blocking on purpose)
#: goes with the kernel that the profile forces. Where the kernel is the environment's, or is
#: not forced, OpenBLAS keeps sizing its blocks for the CPU it finds.
_GOES_WITH = {"OPENBLAS_L2_SIZE": "OPENBLAS_CORETYPE"}

#: CPU flags (as /proc/cpuinfo spells them) that an OpenBLAS kernel executes: forcing a kernel
#: the CPU cannot run kills the process with "Illegal instruction".
_CORETYPE_NEEDS = {"haswell": {"avx2", "fma"}, "sandybridge": {"avx"}}

#: What `pin` did in this process: variable -> (value, where it came from).
STATUS = {}


class NumericsError(ValueError):
    """An unknown profile name."""


def _cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _installed_numpy():
    """The installed NumPy's version as read from its metadata (NumPy itself is not imported)."""
    from importlib import metadata

    try:
        return metadata.version("numpy")
    except metadata.PackageNotFoundError:
        return None


def npy_targets(placeholder, numpy_version):
    """The NumPy dispatch targets that `placeholder` stands for, as `numpy_version` names them.

    Args:
        placeholder: ``_ABOVE_AVX2`` or ``_AVX2_AND_ABOVE``.
        numpy_version: a version string such as ``"2.0.2"``; None means the newest naming.

    Returns:
        The names, separated by spaces, for ``NPY_DISABLE_CPU_FEATURES``.
    """
    release = supported.release(numpy_version) if numpy_version else (99, 0)
    above, avx2 = next((a, b) for first, a, b in _NPY_TARGETS if release >= first)
    return above if placeholder == _ABOVE_AVX2 else f"{avx2} {above}"


def plan(environ=None, machine=None, cpu_flags=None, numpy_version=None):
    """What `pin` would do: each variable with its value and where that value comes from.

    Args:
        environ: the environment to read (default ``os.environ``).
        machine: ``platform.machine()`` to plan for (default: this one).
        cpu_flags: set of CPU flags (default: read from ``/proc/cpuinfo``; None if unknown).
        numpy_version: the NumPy whose dispatch targets to name (default: the installed one,
            read from its metadata).

    Returns:
        A dict ``variable -> (value or None, source)``, source being ``"profile NAME"``,
        ``"environment"`` (set before, kept) or a reason it is left unset.

    Raises:
        NumericsError: `BN_COMPANION_NUMERICS` names no profile.
    """
    environ = os.environ if environ is None else environ
    machine = (machine or platform.machine()).lower()
    name = environ.get(PROFILE_VARIABLE, "pinned") or "pinned"
    if name not in PROFILES:
        raise NumericsError(
            f"{PROFILE_VARIABLE}={name!r} is not a numerics profile; use one of "
            f"{', '.join(PROFILES)}"
        )
    x86 = machine in ("x86_64", "amd64")
    flags = _cpu_flags() if cpu_flags is None and x86 else cpu_flags
    result = {}
    for var, value in {**ALWAYS, **PROFILES[name]}.items():
        if var in environ:
            result[var] = (environ[var], "environment")
        elif var in _X86_ONLY and not x86:
            result[var] = (None, f"not set: x86-64 only, this machine is {machine}")
        elif var == "OPENBLAS_CORETYPE" and not _CORETYPE_NEEDS[value.lower()] <= (flags or set()):
            missing = " ".join(sorted(_CORETYPE_NEEDS[value.lower()] - (flags or set())))
            result[var] = (
                None,
                f"not set: this CPU lacks {missing} for OpenBLAS's {value} kernel",
            )
        elif var in _GOES_WITH and result[_GOES_WITH[var]][1] != f"profile {name}":
            result[var] = (None, f"not set: pinned only with the profile's {_GOES_WITH[var]}")
        else:
            if value in (_ABOVE_AVX2, _AVX2_AND_ABOVE):
                value = npy_targets(value, numpy_version or _installed_numpy())
            result[var] = (value, f"profile {name}")
    return result


def pin(environ=None):
    """Fill in the numerics variables that the environment has not set (see the module doc).

    Call it before NumPy or TensorFlow is imported; ``import helpers`` does. Afterwards the
    settings are fixed for the life of the process.

    Args:
        environ: the environment to change (default ``os.environ``).

    Returns:
        The plan that was applied (see `plan`).

    Raises:
        NumericsError: `BN_COMPANION_NUMERICS` names no profile.
    """
    if environ is None and STATUS:
        return dict(STATUS)  # already pinned in this process: the settings are fixed now
    environ = os.environ if environ is None else environ
    applied = plan(environ)
    late = [m for m in ("numpy", "tensorflow") if m in sys.modules]
    newly = [
        var
        for var, (value, source) in applied.items()
        if value is not None and source != "environment" and var not in ALWAYS
    ]
    for var, (value, _) in applied.items():
        if value is not None:
            environ[var] = value
    if environ is os.environ:
        STATUS.clear()
        STATUS.update(applied)
        if late and newly:
            warnings.warn(
                f"{' and '.join(late)} was imported before helpers, so the numerics pins "
                f"({', '.join(newly)}) cannot take effect in this process; import helpers "
                "first (in a notebook: restart the kernel and run the cells in order)",
                RuntimeWarning,
                stacklevel=3,
            )
    return applied


def status_rows():
    """The pins in effect in this process, as ``(variable, value, source)`` rows for a table."""
    return [
        (var, value if value is not None else "-", source)
        for var, (value, source) in (STATUS or plan()).items()
    ]
