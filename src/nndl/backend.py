"""Array module and dtype policy.

Layers never call ``numpy`` on array data directly: they ask ``array_module(x)`` for the module
that owns ``x`` (NumPy on the CPU, CuPy on a GPU), so the same code runs on both.
float32 is the default dtype (fast); float64 is available for gradient checks.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit as _numpy_expit

_DEFAULT_DTYPE = np.dtype(np.float32)
_DEVICE = "cpu"


def get_dtype() -> np.dtype:
    """The dtype new parameters and inputs are created with."""
    return _DEFAULT_DTYPE


def set_dtype(dtype: Any) -> None:
    """Set the default float dtype: ``"float32"`` or ``"float64"``."""
    global _DEFAULT_DTYPE
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    _DEFAULT_DTYPE = dt


def cupy_module():
    """Import CuPy lazily, with a clear message when it is absent."""
    try:
        import cupy  # type: ignore
    except ImportError as exc:  # pragma: no cover - depends on the machine
        from .errors import install_hint

        raise ImportError(
            f"the GPU backend needs CuPy and a CUDA GPU: {install_hint('gpu')}"
        ) from exc
    return cupy


def set_device(device: str) -> None:
    """Choose where new arrays live: ``"cpu"`` (NumPy) or ``"gpu"`` (CuPy)."""
    global _DEVICE
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if device == "gpu":
        cupy_module()
    _DEVICE = device


def get_device() -> str:
    return _DEVICE


def default_module():
    """The array module for the current device."""
    return cupy_module() if _DEVICE == "gpu" else np


def array_module(x: Any):
    """NumPy or CuPy, whichever owns ``x``."""
    if type(x).__module__.startswith("cupy"):
        return cupy_module()
    return np


def asarray(x: Any, dtype: Any = None):
    """``x`` on the current device with the given (default: policy) dtype."""
    xp = default_module()
    return xp.asarray(x, dtype=dtype or _DEFAULT_DTYPE)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of ``x`` (for logs, plots and saving)."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def expit(z):
    """Numerically stable logistic sigmoid, one ufunc call, no overflow warnings."""
    if array_module(z) is np:
        return _numpy_expit(z)
    from cupyx.scipy.special import expit as _cexpit  # type: ignore

    return _cexpit(z)


# Multi-threaded BLAS helps big matrix products and badly hurts small ones (thread start-up and,
# on a busy machine, spinning threads): a [784, 30, 10] net at m = 100 trains several times
# faster on one thread, and [784, 100, 10] at m = 100 too. Training picks the thread count from the work per mini-batch.
SMALL_WORK_MACS = 1e8


def blas_threads(n: int | None):
    """Context manager limiting BLAS to ``n`` threads (None: leave as is)."""
    from contextlib import nullcontext

    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(n), user_api="blas")


def threads_for_work(macs_per_batch: float) -> int | None:
    """1 thread for small mini-batch products, the library default (all cores) otherwise."""
    return 1 if macs_per_batch < SMALL_WORK_MACS else None


_ALLOCATOR_TUNED = False


def tune_allocator() -> None:
    """Stop glibc's malloc from handing large arrays back to the kernel after every mini-batch.

    By default an array of a few hundred kB or more is a fresh mmap, and freeing it (or trimming
    the heap) returns its pages, so each mini-batch page-faults its im2col buffers in again
    (10-20% of a conv net's training time here). Training keeps freed blocks for reuse instead,
    like every framework's caching allocator; the process keeps its peak memory. Runs once per
    process; Linux/glibc only, elsewhere it does nothing.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    mallopt(M_MMAP_THRESHOLD, 32 << 20)      # arrays under 32 MB (glibc's maximum) come from the heap
    mallopt(M_TRIM_THRESHOLD, 1 << 30)       # keep up to 1 GB of freed heap instead of trimming it
    mallopt(M_TOP_PAD, 64 << 20)             # grow the heap in 64 MB steps
