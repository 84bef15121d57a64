"""Shapes and memory layout, shared by both kernel modules (``reference`` and ``numba_cpu``): the
free (m, c, h, w) <-> channels-last (m, h, w, c) views, the output size of a valid convolution, and
the checks that refuse bad shapes with a message naming the fix."""
from __future__ import annotations

import numpy as np

from ...errors import ShapeError

__all__ = ["channels_last", "channels_first", "conv_output_size", "check_conv_shapes", "check_pool_shape",
           "check_convpool_shapes"]


# ----- layout helpers ---------------------------------------------------------------------------
def channels_last(x):
    """(m, c, h, w) → a (m, h, w, c) view of the same memory (free)."""
    return x.transpose(0, 2, 3, 1)


def channels_first(x):
    """(m, h, w, c) → a (m, c, h, w) view of the same memory (free)."""
    return x.transpose(0, 3, 1, 2)


def conv_output_size(size: int, k: int, stride: int) -> int:
    """Positions of a k-wide receptive field moved by ``stride`` over ``size`` pixels (valid)."""
    return (size - k) // stride + 1


# ----- shape checks -----------------------------------------------------------------------------
def check_conv_shapes(x, w, b, stride) -> None:
    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    if x.ndim != 4:
        raise ShapeError(f"conv input must have shape (m, channels, height, width), got shape {tuple(x.shape)}")
    if w.ndim != 4:
        raise ShapeError(f"conv weights must have shape (n_maps, channels, k, k), got shape {tuple(w.shape)}")
    if x.shape[1] != w.shape[1]:
        raise ShapeError(
            f"conv input has {x.shape[1]} channels (shape {tuple(x.shape)}) but the weights expect "
            f"{w.shape[1]} (shape {tuple(w.shape)})")
    if x.shape[2] < w.shape[2] or x.shape[3] < w.shape[3]:
        raise ShapeError(
            f"a {w.shape[2]}x{w.shape[3]} receptive field does not fit in a "
            f"{x.shape[2]}x{x.shape[3]} input (valid padding): use a smaller k or a larger input")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ShapeError(f"conv bias must have shape ({w.shape[0]},), one per feature map, got {tuple(b.shape)}")


def check_pool_shape(x, p) -> None:
    if not isinstance(p, (int, np.integer)) or isinstance(p, bool) or p < 1:
        raise ValueError(f"pool size p must be a positive integer, got {p!r}")
    if x.ndim != 4:
        raise ShapeError(f"pooling input must have shape (m, channels, height, width), got shape {tuple(x.shape)}")
    if x.shape[2] % p or x.shape[3] % p:
        raise ShapeError(
            f"{p}x{p} pooling needs height and width divisible by {p}, got a {x.shape[2]}x{x.shape[3]} "
            f"map (input shape {tuple(x.shape)}); change the pool size or the layer before it")


def check_convpool_shapes(x, w, b, p) -> None:
    """The conv shapes, and feature maps that p×p pooling tiles exactly."""
    check_conv_shapes(x, w, b, 1)
    hc, wc = x.shape[2] - w.shape[2] + 1, x.shape[3] - w.shape[3] + 1
    if hc % p or wc % p:
        raise ShapeError(f"{hc}x{wc} feature maps cannot be max-pooled {p}x{p}: make h - k + 1 and "
                         f"w - k + 1 divisible by {p} (input shape {tuple(x.shape)}, k = {w.shape[2]})")
