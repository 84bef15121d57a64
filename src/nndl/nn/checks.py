"""Argument checks and the input reshaper shared by the layers, the network and the trainer.

One place for each rule, so that every layer refuses the same things with the same words.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer (``True`` is not), else a ValueError."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """``value`` as an int if it is an integer >= 0 (``True`` is not), else a ValueError."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def image_shape(shape: Any, layer: str) -> tuple[int, int, int]:
    """A per-sample (channels, height, width) shape, validated."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(
            f"{layer} needs a per-sample input shape (channels, height, width), e.g. (1, 28, 28) for "
            f"MNIST; got {shape or 'nothing usable'}")
    return shape  # type: ignore[return-value]


def as_samples(a_in, shape: tuple[int, ...], layer: Any, hint: str = ""):
    """``a_in`` as (m, *shape): as it is when it has that shape, reshaped when each sample holds
    the same number of values (flat rows of images, images into a Dense layer), else a
    ShapeError naming the layer, both shapes and ``hint``."""
    shape = tuple(shape)
    if tuple(a_in.shape[1:]) == shape:
        return a_in
    if a_in.ndim >= 2 and int(np.prod(a_in.shape[1:])) == int(np.prod(shape)):
        return a_in.reshape((a_in.shape[0],) + shape)
    n = int(np.prod(shape))
    flat = f" or flat rows of {n} values" if len(shape) > 1 else ""
    raise ShapeError(f"{layer} expects inputs of shape (m, {', '.join(map(str, shape))}){flat}; got an array of "
                     f"shape {tuple(a_in.shape)}{hint}")
