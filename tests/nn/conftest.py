"""Fixtures of the nn tests: run a test once on each kernel path."""
from __future__ import annotations

import pytest

from nndl.nn import kernels


@pytest.fixture(params=["numpy", "numba"])
def kernels_name(request):
    """The test runs with the NumPy reference kernels, then with the fused Numba ones."""
    before = kernels.active()
    yield kernels.use(request.param)
    kernels.use(before)
