"""The reference kernels of the convolutional layers (chapter 6): readable NumPy, the book's maths.

A convolutional layer slides a k×k local receptive field over its input with stride s (valid
padding, no zero border) and uses the same weights and bias at every position:

    z[j, y, x] = b_j + Σ_c Σ_{l,m} w[j, c, l, m] · a_in[c, s·y + l, s·x + m]

so one feature map j detects one feature everywhere in the image. Pooling condenses each p×p
window of a map into one number: its maximum (max-pooling) or the square root of its sum of
squares (L2 pooling).

Each kernel is a pure function, ``forward(...) -> (out, cache)`` and ``backward(dout, cache)``:
``conv_forward``/``conv_backward``, ``maxpool_forward``/``maxpool_backward``,
``l2pool_forward``/``l2pool_backward`` and ``convpool_forward``/``convpool_backward`` (the book's
ConvPoolLayer before its activation). ``numba_cpu.py`` has compiled, fused versions of the same
functions, tested against these; this file also runs on CuPy arrays (only operations CuPy shares
with NumPy, through ``array_module``), which is the GPU path.

How it works (the measurements behind each choice are in benchmarks/README.md):

- im2col: a strided *view* of every k×k window of the input, one copy into the patch matrix
  ``cols`` (m·ho·wo, k·k·c) and ONE matrix product ``cols @ w`` per mini-batch. The bias rides
  in that product (a column of ones in ``cols``, a row b in ``w``), and backward gets ∂C/∂w and
  ∂C/∂b from one product ``colsᵀ δ``.
- Memory is channels-last: the per-sample shapes are the book's (c, h, w), but the arrays
  returned are transposed *views* of (m, h, w, c) buffers, like PyTorch's ``channels_last``.
- col2im adds the patch gradients back with two passes of strided slice additions.
- Max-pooling reduces the rows of each window, then its columns, keeping the winners.

Limits: valid padding only; pooling windows do not overlap and must tile the map exactly;
ConvPool has stride 1, as in the book.

This module holds the layer-level kernels; im2col, col2im and the weight matrix are in
``_reference_patches.py``, the layout views and shape checks (shared with ``numba_cpu``) in
``_shapes.py``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...backend import array_module
from ._reference_patches import _col2im, _im2col, weight_matrix
from ._shapes import (
    channels_first,
    channels_last,
    check_conv_shapes,
    check_convpool_shapes,
    check_pool_shape,
    conv_output_size,
)

NAME = "numpy"

__all__ = [
    "conv_forward", "conv_backward", "conv_output_size", "convpool_forward", "convpool_backward",
    "maxpool_forward", "maxpool_backward", "l2pool_forward", "l2pool_backward",
    "dense_forward", "dense_backward", "sgd_step", "channels_first", "channels_last", "check_conv_shapes",
    "check_convpool_shapes", "check_pool_shape",
]


class ConvCache(NamedTuple):
    """What ``conv_backward`` needs from the forward pass."""

    x_shape: tuple[int, ...]   # (m, c, h, w)
    cols: Any                  # (m·ho·wo, kh·kw·c [+ 1]) patch matrix: the a_in each position sees
    w_mat: Any                 # (kh·kw·c [+ 1], n_maps) the weights as one matrix (and the bias row)
    kernel: tuple[int, int]    # (kh, kw)
    stride: int
    has_bias: bool


# ----- convolution --------------------------------------------------------------------------------
def conv_forward(x, w, b=None, stride: int = 1):
    """Valid convolution (really cross-correlation, as in the book and every library).

    x (m, c, h, w) of any memory layout, w (n_maps, c, kh, kw), b (n_maps,) or None.
    Returns z (m, n_maps, ho, wo) — a view of a channels-last buffer — and the cache.
    The bias rides in the matrix product: the patch matrix gets a column of ones and the weight
    matrix a row b, so z = [cols 1] @ [w; b] needs no extra pass over z (and backward gets
    ∂C/∂b from the same product as ∂C/∂w).
    """
    check_conv_shapes(x, w, b, stride)
    m, c, h, wd = x.shape
    n_maps, _, kh, kw = w.shape
    ho, wo = conv_output_size(h, kh, stride), conv_output_size(wd, kw, stride)
    cols = _im2col(x, kh, kw, stride, b is not None)               # (m·ho·wo, kh·kw·c [+ 1])
    w_mat = weight_matrix(w, b)                                   # (kh·kw·c [+ 1], n_maps)
    z = cols @ w_mat                                               # (m·ho·wo, n_maps): the one product
    z = channels_first(z.reshape(m, ho, wo, n_maps))              # (m, n_maps, ho, wo) view
    return z, ConvCache(tuple(x.shape), cols, w_mat, (kh, kw), int(stride), b is not None)


def conv_backward(dz, cache: ConvCache, need_dx: bool = True):
    """Gradients of a convolution from δ = ∂C/∂z, shape (m, n_maps, ho, wo).

    Returns (dx, dw, db) with dx (m, c, h, w) (None when ``need_dx`` is False), dw like w and db
    (n_maps,) (None when the forward pass had no bias). The weights are shared, so each gradient
    is a sum over positions (BP3, BP4 with shared weights):
    ∂C/∂b_j = Σ_{y,x} δ_j[y, x] and ∂C/∂w_j = Σ_{y,x} a_in(window at y, x) ⊙ δ_j[y, x].
    """
    m, _, ho, wo = dz.shape
    delta = channels_last(dz).reshape(m * ho * wo, dz.shape[1])   # (m·ho·wo, n_maps), a view if channels-last
    dw, db = _param_grads(delta, cache)
    dx = _input_grad(delta, cache) if need_dx else None
    return dx, dw, db


def _param_grads(delta, cache: ConvCache):
    """BP4 and BP3 summed over positions, in one product: [cols 1]ᵀ δ = [∂C/∂w; ∂C/∂b].

    ``delta`` (rows, n_maps) has its rows in the same order as ``cache.cols``."""
    xp = array_module(delta)
    c, (kh, kw) = cache.x_shape[1], cache.kernel
    n_cols = kh * kw * c
    dw_mat = cache.cols.T @ delta                                  # (kh·kw·c [+ 1], n_maps)
    dw = xp.ascontiguousarray(dw_mat[:n_cols].reshape(kh, kw, c, -1).transpose(3, 2, 0, 1))
    db = dw_mat[n_cols].copy() if cache.has_bias else None         # the ones column gives Σ δ
    return dw, db


def _input_grad(delta, cache: ConvCache):
    """∂C/∂a_in (m, c, h, w) from δ (m·ho·wo, n_maps), rows in (m, y, x) order.

    BP2's wᵀδ for every position at once (one product), then col2im: each input pixel collects
    the gradient of every window that contains it."""
    m, c, h, wd = cache.x_shape
    kh, kw = cache.kernel
    s = cache.stride
    ho, wo = conv_output_size(h, kh, s), conv_output_size(wd, kw, s)
    dcols = (delta @ cache.w_mat[:kh * kw * c].T).reshape(m, ho, wo, kh, kw, c)
    return channels_first(_col2im(dcols, (m, h, wd, c), s))


def _sum_rows(a):
    """Σ over the rows of a (rows, n): a product with a ones vector, several times faster than
    ``a.sum(axis=0)`` for a tall, narrow a."""
    xp = array_module(a)
    return xp.ones(a.shape[0], dtype=a.dtype) @ a

# ----- pooling ------------------------------------------------------------------------------------
def _pool_view(x, p: int):
    """(m, c, h, w) → channels-last (m, ho, p, wo, p, c), a view when x is channels-last."""
    check_pool_shape(x, p)
    m, c, h, w = x.shape
    return channels_last(x).reshape(m, h // p, p, w // p, p, c)


def _argmax_step(views, winners: bool = True):
    """Elementwise max over ``views`` (equal shapes) and which one won: the first maximum.

    The winner record is a bool array (True: the second view) for two views, else uint8 indices;
    None with ``winners=False`` (inference: only backward needs it).
    """
    xp = array_module(views[0])
    if len(views) == 1:
        return views[0].copy(), None
    if not winners:
        best = xp.maximum(views[0], views[1])
        for v in views[2:]:
            xp.maximum(best, v, out=best)
        return best, None
    if len(views) == 2:
        return xp.maximum(views[0], views[1]), views[1] > views[0]   # strictly greater: ties keep the first
    best = views[0].copy()
    index = xp.zeros(best.shape, dtype=np.uint8)
    for i, v in enumerate(views[1:], start=1):
        better = v > best
        xp.maximum(best, v, out=best)
        xp.copyto(index, i, where=better)
    return best, index


def _unpool_step(g, win, out):
    """Send g back through one ``_argmax_step``: out[i] (a list of views) = g where view i won, else 0."""
    xp = array_module(g)
    if win is None:
        out[0][...] = g
    elif win.dtype == bool:                                        # two views: the second won where True
        xp.multiply(g, win, out=out[1])
        xp.subtract(g, out[1], out=out[0])                         # exact: g - g = 0 and g - 0 = g
    else:
        for i, o in enumerate(out):
            xp.multiply(g, win == i, out=o)


def maxpool_forward(x, p: int = 2):
    """Max over each non-overlapping p×p window: x (m, c, h, w) → out (m, c, h/p, w/p).

    The window is reduced over its rows (whole image rows at a time: long contiguous runs), then
    over its columns, keeping which unit won each step, so backward sends each window's gradient
    to exactly ONE unit. When several units tie for the maximum, the winner is the first in
    column-major order (leftmost column, then topmost row) — PyTorch picks the first in row-major
    order; both are valid subgradients, and every choice gives the exact gradient wherever the
    maximum is unique (with real-valued inputs, almost everywhere).
    """
    x6 = _pool_view(x, p)                                          # (m, ho, p, wo, p, c)
    rows, row_win = _argmax_step([x6[:, :, i] for i in range(p)])       # (m, ho, wo, p, c)
    out, col_win = _argmax_step([rows[:, :, :, j] for j in range(p)])   # (m, ho, wo, c)
    return channels_first(out), (tuple(x.shape), p, row_win, col_win)


def maxpool_backward(dout, cache):
    """Route each window's gradient to its winner: dout (m, c, ho, wo) → dx (m, c, h, w)."""
    x_shape, p, row_win, col_win = cache
    xp = array_module(dout)
    g = channels_last(dout)                                       # (m, ho, wo, c)
    m, ho, wo, c = g.shape
    g_rows = xp.empty((m, ho, wo, p, c), dtype=g.dtype)            # back through the columns step
    _unpool_step(g, col_win, [g_rows[:, :, :, j] for j in range(p)])
    dx = xp.empty((m, ho, p, wo, p, c), dtype=g.dtype)             # then back through the rows step
    _unpool_step(g_rows, row_win, [dx[:, :, i] for i in range(p)])
    return channels_first(dx.reshape(m, ho * p, wo * p, c))


def l2pool_forward(x, p: int = 2, eps: float = 1e-8):
    """L2 pooling: out = sqrt(Σ_window x² + eps) over non-overlapping p×p windows.

    ``eps`` keeps the derivative x/out finite for an all-zero window.
    """
    xp = array_module(x)
    x6 = _pool_view(x, p)                                          # (m, ho, p, wo, p, c)
    out = xp.sqrt((x6 * x6).sum(axis=(2, 4)) + eps)                # (m, ho, wo, c)
    return channels_first(out), (x6, out, tuple(x.shape))


def l2pool_backward(dout, cache):
    """∂out/∂x = x / out inside each window: dout (m, c, ho, wo) → dx (m, c, h, w)."""
    x6, out, (m, c, h, w) = cache
    scale = (channels_last(dout) / out)[:, :, None, :, None, :]   # (m, ho, 1, wo, 1, c)
    dx = x6 * scale                                                # (m, ho, p, wo, p, c)
    return channels_first(dx.reshape(m, h, w, c))


# ----- the book's conv-pool layer -----------------------------------------------------------------
class ConvPoolCache(NamedTuple):
    conv: ConvCache            # its cols rows are grouped by place in the pooling window
    p: int
    row_win: Any               # winners of the reduction over the window's rows
    col_win: Any               # then over its columns


def convpool_forward(x, w, b, p: int = 2, train: bool = True):
    """The book's ConvPoolLayer before its activation: z = maxpool_p(w ⊛ x) + b (Theano's order).

    x (m, c, h, w), w (n_maps, c, k, k), b (n_maps,) → z (m, n_maps, (h-k+1)/p, (w-k+1)/p), cache.
    The same numbers as ``maxpool_forward(conv_forward(x, w)[0], p)[0] + b``, faster: the patch
    matrix's rows are ordered by place in the pooling window, so the product's output is p²
    contiguous blocks (one per place) and pooling is a maximum over whole blocks, with no
    strided views; and the bias is added to the p² times smaller pooled map. Ties go to one
    unit, as in ``maxpool_forward``. ``train=False`` (inference) skips what only backward needs
    and returns no cache.
    """
    check_convpool_shapes(x, w, b, p)
    m, c, h, wd = x.shape
    n_maps, _, kh, kw = w.shape
    hc, wc = h - kh + 1, wd - kw + 1
    cols = _im2col(x, kh, kw, 1, bias=False, phase=p)             # rows (m, i, j, y', x')
    w_mat = weight_matrix(w, None)
    conv = (cols @ w_mat).reshape(m, p, p, -1)                    # (m, i, j, y'·x'·n_maps)
    rows, row_win = _argmax_step([conv[:, i] for i in range(p)], train)    # (m, j, y'·x'·n_maps)
    pooled, col_win = _argmax_step([rows[:, j] for j in range(p)], train)  # (m, y'·x'·n_maps), a new array
    z = pooled.reshape(m, hc // p, wc // p, n_maps)
    z += b.astype(z.dtype, copy=False)                            # the bias after pooling, as the book
    if not train:
        return channels_first(z), None
    cache = ConvPoolCache(ConvCache(tuple(x.shape), cols, w_mat, (kh, kw), 1, False), p, row_win, col_win)
    return channels_first(z), cache


def convpool_backward(dz, cache: ConvPoolCache, need_dx: bool = True):
    """Gradients from δ = ∂C/∂z at the pooled units (m, n_maps, ho, wo): (dx, dw, db).

    BP3 at the pooled units; max-pooling passes each δ to its window's winner; then BP4 (and BP2
    for dx) of the convolution, summed over positions."""
    xp = array_module(dz)
    conv_cache, p, row_win, col_win = cache
    m, n_maps, ho, wo = dz.shape
    delta = channels_last(dz).reshape(m, ho * wo * n_maps)       # (m, L), a view if channels-last
    db = _sum_rows(delta.reshape(-1, n_maps))                     # BP3: Σ over samples and positions
    g_rows = xp.empty((m, p, delta.shape[1]), dtype=delta.dtype)  # back through the columns step
    _unpool_step(delta, col_win, [g_rows[:, j] for j in range(p)])
    d_conv = xp.empty((m, p, p, delta.shape[1]), dtype=delta.dtype)  # then through the rows step
    _unpool_step(g_rows, row_win, [d_conv[:, i] for i in range(p)])
    dw, _ = _param_grads(d_conv.reshape(-1, n_maps), conv_cache)   # rows in the same order as cols
    if not need_dx:
        return None, dw, db
    # col2im wants rows in (m, y, x) order: reorder the small δ, not the big patch gradients.
    d_std = d_conv.reshape(m, p, p, ho, wo, n_maps).transpose(0, 3, 1, 4, 2, 5).reshape(-1, n_maps)
    return _input_grad(d_std, conv_cache), dw, db


# ----- fully connected layers ---------------------------------------------------------------------
def dense_forward(a_in, w, b, activation):
    """z = a_in·w + b and a = σ(z): a_in (m, n_in), w (n_in, n_out), b (n_out,) → (z, a), (m, n_out)."""
    z = a_in @ w
    z += b
    return z, activation.fn(z)


def dense_backward(delta, a_in, w, need_dx: bool = True):
    """From δ = ∂C/∂z (m, n_out): (∂C/∂w, ∂C/∂b, ∂C/∂a_in or None)."""
    dw = a_in.T @ delta                          # BP4: ∂C/∂w_jk = a_k δ_j, (n_in, n_out)
    db = delta.sum(axis=0)                       # BP3: ∂C/∂b_j = δ_j, (n_out,)
    dx = delta @ w.T if need_dx else None        # BP2 (the wᵀδ half): (m, n_in)
    return dw, db, dx


# ----- the SGD update -----------------------------------------------------------------------------
def sgd_step(value, grad, eta: float, shrink: float = 1.0, l1: float = 0.0) -> None:
    """In place: w → shrink·w − l1·sgn(w) − η·∂C/∂w (chapter 1's step, chapter 3's L2 shrink
    1 − ηλ/n or L1 step ηλ/n). ``grad`` is used as scratch: backprop rewrites it every step."""
    grad *= eta
    if l1:
        value -= l1 * array_module(value).sign(value)
    elif shrink != 1.0:
        value *= shrink
    value -= grad
