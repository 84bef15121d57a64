"""The GPU tests run only when asked for (``NNDL_TEST_GPU=1``, see tests/conftest.py) and then
need CuPy and a CUDA GPU: without them they fail at once with a message, they are never skipped."""
from __future__ import annotations

import os

import pytest


def _require_gpu():
    if os.environ.get("NNDL_TEST_GPU") != "1":
        raise pytest.UsageError("the GPU tests run only with NNDL_TEST_GPU=1 (and need CuPy and a CUDA GPU): "
                                "NNDL_TEST_GPU=1 pytest tests/gpu")
    try:
        import cupy
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # ImportError, or CUDA's own error when there is no driver
        raise pytest.UsageError(f"NNDL_TEST_GPU=1 runs the GPU tests, which need CuPy and a CUDA GPU: {exc}") from exc
    if n < 1:
        raise pytest.UsageError("NNDL_TEST_GPU=1 runs the GPU tests, but CUDA sees no GPU")
    return cupy


@pytest.fixture(scope="session")
def cupy():
    return _require_gpu()


@pytest.fixture(autouse=True)
def cpu_is_the_default_device():
    """Each test chooses its devices explicitly; none leaves the GPU as the process default."""
    from nndl import backend

    yield
    backend.set_device("cpu")
    backend.set_dtype("float32")
