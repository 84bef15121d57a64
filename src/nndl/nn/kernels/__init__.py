"""The kernels layer: how the conv and pooling layers compute, chosen once per process.

- ``numba`` (the default): fused kernels compiled with Numba (``numba_cpu.py``), parallel over
  the cores of the CPU.
- ``numpy``: the reference kernels (``reference.py``), readable NumPy with the book's equations;
  the fused kernels are tested against them. They are also the GPU path: CuPy arrays always go
  through the reference, whose operations CuPy shares.

Choose with the environment variable ``NNDL_KERNELS=numpy|numba``, ``--kernels`` on the CLI, or
``nndl.nn.kernels.use("numpy")``. Where Numba cannot be imported, nndl falls back to ``numpy``
with a one-line notice. Every kernel module has the same functions with the same results:
``conv_forward``/``conv_backward``, ``maxpool_*``, ``l2pool_*`` and ``convpool_*``.
"""
from __future__ import annotations

import os
import sys
import time
from types import ModuleType

import numpy as np

from . import reference

KERNELS = ("numba", "numpy")
_active: str | None = None
_warm: set = set()


def _numba_module() -> ModuleType | None:
    try:
        from . import numba_cpu
    except ImportError as exc:       # Numba missing or broken: the reference still works
        print(f"nndl: Numba is not available ({exc}); using the NumPy reference kernels "
              f"(pip install numba for the fast ones)", file=sys.stderr)
        return None
    return numba_cpu


def use(name: str | None = None) -> str:
    """Make ``name`` ("numba" or "numpy"; None: $NNDL_KERNELS, else "numba") the process's
    kernels; return the choice in effect ("numpy" when Numba is asked for but missing)."""
    global _active
    requested = name or os.environ.get("NNDL_KERNELS") or "numba"
    if requested not in KERNELS:
        source = "NNDL_KERNELS" if name is None else "kernels"
        raise ValueError(f"{source} must be one of {', '.join(KERNELS)}, got {requested!r}")
    if requested == "numba" and _numba_module() is None:
        requested = "numpy"
    _active = requested
    return _active


def active() -> str:
    """The kernels in effect: "numba" or "numpy"."""
    return _active or use()


def module() -> ModuleType:
    """The kernel module in effect on the CPU."""
    if active() == "numba":
        from . import numba_cpu
        return numba_cpu
    return reference


def for_array(x) -> ModuleType:
    """The kernels for ``x``: the chosen ones for NumPy arrays, the reference for CuPy arrays."""
    return module() if isinstance(x, np.ndarray) else reference


def prepare(dtype, report=None) -> float:
    """Compile (or load from Numba's on-disk cache) the fused kernels for ``dtype`` before
    training, so that the first mini-batch is not slow; ``report(text)`` is told when it starts
    and how long it took. Returns the seconds spent (0 when already done or not Numba)."""
    dtype = np.dtype(dtype)
    if active() != "numba" or dtype in _warm:
        return 0.0
    from . import numba_cpu

    if report and not numba_cpu.compiled(dtype):
        report("compiling kernels, once (Numba caches them for later runs) ...")
    start = time.perf_counter()
    numba_cpu.warm_up(dtype)
    _warm.add(dtype)
    seconds = time.perf_counter() - start
    if report and seconds > 1.0:
        report(f"kernels ready in {seconds:.1f} s")
    return seconds
