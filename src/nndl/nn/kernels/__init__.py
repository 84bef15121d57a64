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

Their parts: ``_numba_conv.py`` (the fused conv kernels) and ``_numba_common.py`` (Numba's import,
BLAS threads) behind ``numba_cpu``; ``_reference_patches.py`` (im2col, col2im) behind
``reference``; ``_shapes.py`` (layout views and shape checks) shared by both.
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
_module: ModuleType = reference     # the module of _active
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
    global _active, _module
    requested = name or os.environ.get("NNDL_KERNELS") or "numba"
    if requested not in KERNELS:
        source = "NNDL_KERNELS" if name is None else "kernels"
        raise ValueError(f"{source} must be one of {', '.join(KERNELS)}, got {requested!r}")
    if requested == "numba" and _numba_module() is None:
        requested = "numpy"
    _module, _active = by_name(requested), requested
    return _active


def active() -> str:
    """The kernels in effect: "numba" or "numpy"."""
    return _active or use()


def module() -> ModuleType:
    """The kernel module in effect on the CPU."""
    if _active is None:
        use()
    return _module


def by_name(name: str) -> ModuleType:
    """The kernel module called ``name`` ("numba" or "numpy"), as its ``NAME`` says."""
    if name == "numba":
        from . import numba_cpu
        return numba_cpu
    return reference


def for_array(x) -> ModuleType:
    """The kernels for ``x``: the chosen ones for NumPy arrays, the reference for CuPy arrays."""
    return module() if isinstance(x, np.ndarray) else reference


# The layer kinds that compute through the kernels, and the kernels each needs.
KERNEL_LAYERS = {"conv2d": "conv", "convpool": "conv", "maxpool": "maxpool", "l2pool": "l2pool", "dense": "dense"}


def _kernel_uses(network) -> set[str]:
    """Which fused kernels ``network`` runs: none on a GPU or with the reference."""
    if active() != "numba" or getattr(network, "device", "cpu") != "cpu":
        return set()
    from .numba_cpu import PARALLEL_WEIGHTS

    return {KERNEL_LAYERS[layer.kind] for layer in network.layers if layer.kind in KERNEL_LAYERS
            and (layer.kind != "dense" or layer.w.value.size >= PARALLEL_WEIGHTS)}


def plan_threads(network, threads: int | None) -> int | None:
    """Threads for training ``network`` with ``threads`` cores (None: all). When the fused kernels
    run its layers, they get the cores and every BLAS call outside them one thread: returns 1
    (the Dense kernels split their products over the cores themselves).
    (Multi-threaded BLAS between the kernels' parallel loops leaves its threads spinning on the
    cores the kernels need: ch6-relu at m = 100 took 15.4 s per epoch that way, 5.9 s this way.)
    Otherwise returns None: the caller picks BLAS threads as without the kernels."""
    if not _kernel_uses(network):
        return None
    from . import numba_cpu

    numba_cpu.set_threads(threads)
    return 1


def prepare(network, report=None) -> float:
    """Compile (or load from Numba's on-disk cache) the fused kernels ``network`` uses, before
    training, so that the first mini-batch is not slow; ``report(text)`` is told when compiling
    starts and how long it took. Returns the seconds spent (0 when there was nothing to do)."""
    dtype = np.dtype(network.dtype)
    needed = {(use, dtype) for use in _kernel_uses(network)} - _warm
    if not needed:
        return 0.0
    from . import numba_cpu

    uses = sorted(use for use, _ in needed)
    if report and not numba_cpu.compiled(uses):
        report("compiling kernels, once (Numba caches them for later runs) ...")
    start = time.perf_counter()
    numba_cpu.warm_up(dtype, uses)
    _warm.update(needed)
    seconds = time.perf_counter() - start
    if report and seconds > 1.0:
        report(f"kernels ready in {seconds:.1f} s")
    return seconds
