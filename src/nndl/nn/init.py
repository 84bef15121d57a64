"""Weight initialisers (chapter 3, "Weight initialization").

- ``default``: the book's improved initialisation, weights N(0, 1/n_in), biases N(0, 1). It keeps
  z = Σ w x + b of order 1, so sigmoid neurons do not start saturated.
- ``large``: chapter 1's N(0, 1) for weights and biases (kept for comparison; learns slower).
- ``he``: weights N(0, 2/n_in), biases 0, for ReLU layers.
- ``glorot``: weights N(0, 2/(n_in + n_out)), biases 0.
- ``zeros``: weights and biases 0, as chapter 6's network3.py starts its softmax output layer.
  Only for an output layer: hidden neurons that start equal stay equal.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

# The most numbers one parameter array may hold (1 GiB of float32): a typo in a layer size, or a
# model file that declares a huge layer, gets a clear error instead of a MemoryError or a swap storm.
MAX_PARAMS = 2 ** 28
_shapes_only = False


@contextmanager
def shapes_only() -> Iterator[None]:
    """Build layers with placeholder parameters (read-only zero-stride views: no memory, no random
    draws). Loading a model file builds its architecture this way, then checks each declared shape
    against the file's arrays before reading any."""
    global _shapes_only
    before, _shapes_only = _shapes_only, True
    try:
        yield
    finally:
        _shapes_only = before


def new_param(shape: tuple[int, ...], dtype, draw: Callable[[], np.ndarray]) -> np.ndarray:
    """``draw()`` (an array of ``shape``), after checking its size; a placeholder in ``shapes_only``."""
    n = int(np.prod(shape, dtype=object))
    if n > MAX_PARAMS:
        raise ValueError(f"a parameter array of shape {tuple(shape)} would hold {n:,} numbers, more than nndl's "
                         f"limit of {MAX_PARAMS:,}: check the layer sizes")
    if _shapes_only:
        return np.broadcast_to(np.zeros((), dtype), shape)
    return draw().astype(dtype, copy=False)


def _weight_std(name: str, fan_in: int, fan_out: int) -> float:
    if name == "default":
        return 1.0 / np.sqrt(fan_in)
    if name == "large":
        return 1.0
    if name == "he":
        return np.sqrt(2.0 / fan_in)
    if name == "glorot":
        return np.sqrt(2.0 / (fan_in + fan_out))
    if name == "zeros":
        return 0.0
    raise ValueError(f"unknown init {name!r}; choose one of: {', '.join(INITS)}")


INITS = ("default", "large", "he", "glorot", "zeros")
# What a whole network (or any hidden layer) may start from: hidden units that start equal stay equal.
NETWORK_INITS = tuple(name for name in INITS if name != "zeros")


def init_params(
    name: str,
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (w, b) for one layer with the named scheme, as NumPy arrays of ``dtype``."""
    std = _weight_std(name, fan_in, fan_out)
    w = new_param(weight_shape, dtype, lambda: rng.standard_normal(weight_shape) * std)
    if name in ("default", "large"):
        b = new_param(bias_shape, dtype, lambda: rng.standard_normal(bias_shape))
    else:
        b = new_param(bias_shape, dtype, lambda: np.zeros(bias_shape))
    return w, b
