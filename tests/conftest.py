"""Shared fixtures. MNIST comes from $NNDL_DATA (CI sets it to ../shared); when unset, the
repository's sibling ../shared is used if it holds mnist/."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if "NNDL_DATA" not in os.environ and (_SHARED / "mnist").is_dir():
    os.environ["NNDL_DATA"] = str(_SHARED)

# tests/gpu needs CuPy and a CUDA GPU, which CI machines lack: it runs when asked for, with
# NNDL_TEST_GPU=1 (then every test in it must pass; none is skipped). Otherwise a plain `pytest`
# does not collect it, and `pytest tests/gpu` fails at once saying how to run it.
collect_ignore = [] if os.environ.get("NNDL_TEST_GPU") == "1" else ["gpu"]


@pytest.fixture(scope="session")
def mnist():
    """(training, validation, test) of real MNIST, float32 rows."""
    import nndl

    return nndl.data.load_mnist()


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """5,000 training and 2,000 test images: enough to show learning in seconds."""
    training, validation, test = mnist
    return (training[0][:5000], training[1][:5000]), (validation[0][:1000], validation[1][:1000]), \
        (test[0][:2000], test[1][:2000])


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
