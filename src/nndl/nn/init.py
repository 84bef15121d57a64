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

import numpy as np


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
    w = rng.standard_normal(weight_shape) * std
    if name in ("default", "large"):
        b = rng.standard_normal(bias_shape)
    else:
        b = np.zeros(bias_shape)
    return w.astype(dtype), b.astype(dtype)
