"""What the compiled kernels share (``numba_cpu`` and ``_numba_conv``): Numba imported at -O2,
BLAS on one thread inside the parallel loops, the split of a mini-batch into one part per thread,
and the unsigned index type of the loops.

Numba imports through here, so that ``NUMBA_OPT`` is set before Numba is first imported. Numba's
on-disk cache (``cache=True``) checks only the source file of the function it caches: ``_part``
is compiled into kernels of the other modules, so after editing it delete the ``.nbi``/``.nbc``
files in ``__pycache__`` (or touch the modules that call it) to have them recompiled.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import numpy as np

if "numba" not in sys.modules:
    # LLVM's -O2 runs these kernels as fast as Numba's default -O3 (measured: within noise) and
    # compiles them a third faster; a NUMBA_OPT you set yourself wins.
    os.environ.setdefault("NUMBA_OPT", "2")
import numba  # noqa: E402
from numba import njit, prange  # noqa: E402

__all__ = ["U", "numba", "njit", "prange", "single_threaded_blas"]


# ----- BLAS threads ----------------------------------------------------------------------------------
_BLAS_LIBS: list | None = None


@contextmanager
def single_threaded_blas():
    """Every loaded BLAS on one thread for the duration (restored after): the parallel loops
    call BLAS from each core at once."""
    global _BLAS_LIBS
    if _BLAS_LIBS is None:
        import scipy.linalg.cython_blas  # noqa: F401  (Numba's np.dot calls SciPy's BLAS: load it first)
        from threadpoolctl import ThreadpoolController

        _BLAS_LIBS = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    before = [lib.get_num_threads() for lib in _BLAS_LIBS]
    for lib, n in zip(_BLAS_LIBS, before):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(_BLAS_LIBS, before):
            if n != 1:
                lib.set_num_threads(n)


# ----- splitting the mini-batch ----------------------------------------------------------------------
def _parts(m: int) -> int:
    """One part of the mini-batch per thread (Numba's, which ``--threads`` sets)."""
    return max(1, min(m, numba.get_num_threads()))


def _channels_last(x) -> np.ndarray:
    """(m, c, h, w) → contiguous (m, h, w, c); free when x is already a channels-last view."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


# ----- compiled helpers ----------------------------------------------------------------------------------
# They take flat (1-D) views of channels-last arrays and index them with unsigned integers: a
# signed index makes Numba test it for negative-index wraparound at every access, which stops
# LLVM from vectorising the loops (5-8 times slower here).
U = numba.uint64


@njit(cache=True, nogil=True)
def _part(m, n_parts, part):
    return part * m // n_parts, (part + 1) * m // n_parts
