"""Fused CPU kernels compiled with Numba: the same functions as ``reference``, faster.

Each public function has the signature and the result of its namesake in ``reference.py``
(read that file for the maths); only the caches differ. What makes them fast:

- **One pass per mini-batch part, in cache.** The mini-batch is split into one part per core
  (``numba.prange``); each part walks its images in chunks small enough that the chunk's patch
  matrix, its product and the pooling all stay in the L2 cache. The NumPy reference builds the
  whole mini-batch's patch matrix (megabytes) and makes one pass over memory per step.
- **Fused epilogues.** Forward: im2col, one BLAS product per chunk, then bias and max-pooling
  (keeping each window's winner) in the same loop. Backward: the winners route δ into the
  chunk's conv-map gradient, then ∂C/∂w and ∂C/∂b (BP3, BP4) are accumulated per part and
  summed at the end, and ∂C/∂a_in (BP2) is one product and a col2im in cache.
- **The patch matrix is rebuilt in backward** instead of kept: the cache holds only the input.
- BLAS runs on one thread inside the parallel loops (``single_threaded_blas``): each core calls
  its own single-threaded product.

Memory layout as in the reference: arrays are (m, c, h, w) views of channels-last (m, h, w, c)
buffers. Max-pooling ties go to the first maximum in column-major order, as in the reference.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import njit, prange

from . import reference
from .reference import (channels_first, check_conv_shapes, check_convpool_shapes, check_pool_shape,
                        conv_output_size)

__all__ = ["conv_forward", "conv_backward", "maxpool_forward", "maxpool_backward",
           "l2pool_forward", "l2pool_backward", "convpool_forward", "convpool_backward"]

_L2_BYTES = 384 * 1024   # what one chunk's patch matrix may take: well inside a 1-2 MB L2


# ----- BLAS threads ----------------------------------------------------------------------------------
_BLAS_LIBS: list | None = None


@contextmanager
def single_threaded_blas():
    """Every loaded BLAS on one thread for the duration (restored after): the parallel loops
    call BLAS from each core at once."""
    global _BLAS_LIBS
    if _BLAS_LIBS is None:
        import scipy.linalg.cython_blas  # noqa: F401  (Numba's np.dot calls SciPy's BLAS: load it first)
        from threadpoolctl import ThreadpoolController

        _BLAS_LIBS = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    before = [lib.get_num_threads() for lib in _BLAS_LIBS]
    for lib, n in zip(_BLAS_LIBS, before):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(_BLAS_LIBS, before):
            if n != 1:
                lib.set_num_threads(n)


def _chunk(rows_per_image: int, row_bytes: int) -> int:
    """Images per chunk: as many as keep the chunk's patch matrix within ``_L2_BYTES``."""
    return int(max(1, min(64, _L2_BYTES // max(1, rows_per_image * row_bytes))))


def _parts(m: int) -> int:
    """One part of the mini-batch per thread (Numba's, which ``--threads`` sets)."""
    return max(1, min(m, numba.get_num_threads()))


def _channels_last(x) -> np.ndarray:
    """(m, c, h, w) → contiguous (m, h, w, c); free when x is already a channels-last view."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


# ----- compiled helpers (run inside one part of the batch) --------------------------------------------
@njit(cache=True, nogil=True)
def _im2col(x, n0, n1, k, s, ho, wo, cols):
    """Rows (n, y, x) for images n0..n1 of channels-last x: the k·k·c inputs each position sees."""
    c = x.shape[3]
    r = 0
    for n in range(n0, n1):
        for y in range(ho):
            for xo in range(wo):
                q = 0
                for l in range(k):
                    for mm in range(k):
                        for ch in range(c):
                            cols[r, q] = x[n, y * s + l, xo * s + mm, ch]
                            q += 1
                r += 1


@njit(cache=True, nogil=True)
def _col2im(dcols, n0, n1, k, s, ho, wo, dx):
    """The transpose of ``_im2col``: each input pixel of images n0..n1 collects the gradient of
    every window that contains it."""
    c = dx.shape[3]
    for n in range(n0, n1):
        dx[n] = 0
    r = 0
    for n in range(n0, n1):
        for y in range(ho):
            for xo in range(wo):
                q = 0
                for l in range(k):
                    for mm in range(k):
                        for ch in range(c):
                            dx[n, y * s + l, xo * s + mm, ch] += dcols[r, q]
                            q += 1
                r += 1


@njit(cache=True, nogil=True)
def _pool_epilogue(conv, n0, n1, hc, wc, p, b, z, win):
    """z[n] = maxpool_p(conv) + b for images n0..n1 (conv rows (n, y, x)); win keeps the winner
    (i·p + j) of each window, the first maximum in column-major order."""
    n_maps = conv.shape[1]
    ho, wo = hc // p, wc // p
    best = np.empty(n_maps, conv.dtype)
    arg = np.empty(n_maps, np.uint8)
    for n in range(n0, n1):
        base = (n - n0) * hc * wc
        for yo in range(ho):
            for xo in range(wo):
                r0 = base + (yo * p) * wc + xo * p
                for j in range(n_maps):
                    best[j] = conv[r0, j]
                    arg[j] = 0
                for jj in range(p):
                    for ii in range(p):
                        if ii == 0 and jj == 0:
                            continue
                        r = r0 + ii * wc + jj
                        for j in range(n_maps):
                            v = conv[r, j]
                            if v > best[j]:
                                best[j] = v
                                arg[j] = ii * p + jj
                for j in range(n_maps):
                    z[n, yo, xo, j] = best[j] + b[j]
                    win[n, yo, xo, j] = arg[j]


@njit(cache=True, nogil=True)
def _bias_epilogue(conv, n0, n1, ho, wo, b, z):
    """z[n] = conv + b for images n0..n1 (no pooling)."""
    r = 0
    for n in range(n0, n1):
        for y in range(ho):
            for xo in range(wo):
                for j in range(conv.shape[1]):
                    z[n, y, xo, j] = conv[r, j] + b[j]
                r += 1


@njit(cache=True, nogil=True)
def _gather_delta(delta, n0, n1, dconv, db):
    """δ of images n0..n1 (n, y, x, map) as the rows of dconv; db += Σ δ (BP3)."""
    r = 0
    for n in range(n0, n1):
        for y in range(delta.shape[1]):
            for xo in range(delta.shape[2]):
                for j in range(delta.shape[3]):
                    d = delta[n, y, xo, j]
                    dconv[r, j] = d
                    db[j] += d
                r += 1


@njit(cache=True, nogil=True)
def _add(total, part):
    for i in range(total.shape[0]):
        for j in range(total.shape[1]):
            total[i, j] += part[i, j]


@njit(cache=True, nogil=True)
def _unpool(delta, win, n0, n1, hc, wc, p, dconv, db):
    """The gradient of the chunk's conv maps: each pooled δ goes to its window's winner, the
    other units get 0 (max-pooling's backward); db += Σ δ (BP3)."""
    n_maps = dconv.shape[1]
    ho, wo = hc // p, wc // p
    for r in range((n1 - n0) * hc * wc):
        dconv[r] = 0
    for n in range(n0, n1):
        base = (n - n0) * hc * wc
        for yo in range(ho):
            for xo in range(wo):
                r0 = base + (yo * p) * wc + xo * p
                for j in range(n_maps):
                    d = delta[n, yo, xo, j]
                    w_ = win[n, yo, xo, j]
                    dconv[r0 + (w_ // p) * wc + (w_ % p), j] = d
                    db[j] += d


@njit(cache=True, nogil=True)
def _part(m, n_parts, part):
    return part * m // n_parts, (part + 1) * m // n_parts


# ----- conv (+ pool) forward and backward --------------------------------------------------------------
@njit(cache=True, nogil=True)
def _forward_part(x, w_mat, b, k, s, p, chunk, a0, a1, z, win):
    """Images a0..a1 of ``_conv_pool_forward``, chunk by chunk."""
    hc, wc = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    n_maps = w_mat.shape[1]
    cols = np.empty((chunk * hc * wc, w_mat.shape[0]), x.dtype)
    conv = np.empty((chunk * hc * wc, n_maps), x.dtype)
    for n0 in range(a0, a1, chunk):
        n1 = min(n0 + chunk, a1)
        rows = (n1 - n0) * hc * wc
        _im2col(x, n0, n1, k, s, hc, wc, cols)
        np.dot(cols[:rows], w_mat, conv[:rows])                # w ⊛ a_in for the chunk: one product
        if p == 1:
            _bias_epilogue(conv, n0, n1, hc, wc, b, z)
        else:
            _pool_epilogue(conv, n0, n1, hc, wc, p, b, z, win)


@njit(cache=True, parallel=True)
def _conv_pool_forward(x, w_mat, b, k, s, p, chunk, n_parts, z, win):
    """z = maxpool_p(w ⊛ x) + b (p = 1: no pooling), channels-last; win: the winners (p > 1)."""
    m = x.shape[0]
    for part in prange(n_parts):
        a0, a1 = _part(m, n_parts, part)
        _forward_part(x, w_mat, b, k, s, p, chunk, a0, a1, z, win)


@njit(cache=True, nogil=True)
def _backward_part(delta, win, x, w_mat, w_t, k, s, p, chunk, need_dx, a0, a1, dx, dw, db):
    """Images a0..a1 of ``_conv_pool_backward``; dw and db are this part's sums."""
    hc, wc = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    n_cols, n_maps = w_mat.shape
    cols = np.empty((chunk * hc * wc, n_cols), x.dtype)
    dconv = np.empty((chunk * hc * wc, n_maps), x.dtype)
    dcols = np.empty((chunk * hc * wc, n_cols), x.dtype)
    dw_chunk = np.empty_like(dw)
    for n0 in range(a0, a1, chunk):
        n1 = min(n0 + chunk, a1)
        rows = (n1 - n0) * hc * wc
        _im2col(x, n0, n1, k, s, hc, wc, cols)                 # rebuilt: cheaper than keeping it
        if p == 1:
            _gather_delta(delta, n0, n1, dconv, db)             # δ as rows (n, y, x); BP3
        else:
            _unpool(delta, win, n0, n1, hc, wc, p, dconv, db)  # δ to each window's winner; BP3
        np.dot(cols[:rows].T, dconv[:rows], dw_chunk)           # BP4: ∂C/∂w = Σ a_in δ
        _add(dw, dw_chunk)
        if need_dx:
            np.dot(dconv[:rows], w_t, dcols[:rows])             # BP2's wᵀδ, per position
            _col2im(dcols, n0, n1, k, s, hc, wc, dx)


@njit(cache=True, parallel=True)
def _conv_pool_backward(delta, win, x, w_mat, w_t, k, s, p, chunk, need_dx, dx, dw_parts, db_parts):
    """From δ at the (pooled) units: ∂C/∂w and ∂C/∂b per part (summed by the caller) and ∂C/∂x."""
    m = x.shape[0]
    n_parts = dw_parts.shape[0]
    for part in prange(n_parts):
        a0, a1 = _part(m, n_parts, part)
        _backward_part(delta, win, x, w_mat, w_t, k, s, p, chunk, need_dx, a0, a1, dx,
                       dw_parts[part], db_parts[part])


class ConvKernelCache(NamedTuple):
    x: Any                     # channels-last input (m, h, w, c)
    w_shape: tuple[int, ...]
    w_mat: Any                 # (k·k·c, n_maps)
    stride: int
    p: int                     # pool size (1: no pooling)
    win: Any                   # (m, ho, wo, n_maps) uint8 winners (p > 1)
    has_bias: bool


def _weights(w) -> np.ndarray:
    n_maps = w.shape[0]
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(-1, n_maps))


def _forward(x, w, b, stride: int, p: int):
    xl = _channels_last(x)
    m, h, wd, c = xl.shape
    n_maps, _, k, _ = w.shape
    hc, wc = conv_output_size(h, k, stride), conv_output_size(wd, k, stride)
    w_mat = _weights(w)
    bias = np.zeros(n_maps, xl.dtype) if b is None else np.ascontiguousarray(b, dtype=xl.dtype)
    z = np.empty((m, hc // p, wc // p, n_maps), xl.dtype)
    win = np.empty(z.shape if p > 1 else (0, 0, 0, 0), np.uint8)
    chunk = _chunk(hc * wc, k * k * c * xl.itemsize)
    with single_threaded_blas():
        _conv_pool_forward(xl, w_mat.astype(xl.dtype, copy=False), bias, k, stride, p, chunk, _parts(m), z, win)
    cache = ConvKernelCache(xl, tuple(w.shape), w_mat, stride, p, win, b is not None)
    return channels_first(z), cache


def _backward(dz, cache: ConvKernelCache, need_dx: bool):
    x, w_shape, w_mat = cache.x, cache.w_shape, cache.w_mat
    m, h, wd, c = x.shape
    n_maps, _, k, _ = w_shape
    delta = _channels_last(dz).astype(x.dtype, copy=False)
    dw_parts = np.zeros((_parts(m),) + w_mat.shape, x.dtype)
    db_parts = np.zeros((_parts(m), n_maps), x.dtype)
    dx = np.empty_like(x) if need_dx else np.empty((0, 0, 0, 0), x.dtype)
    hc, wc = conv_output_size(h, k, cache.stride), conv_output_size(wd, k, cache.stride)
    chunk = _chunk(hc * wc, k * k * c * x.itemsize)
    with single_threaded_blas():
        _conv_pool_backward(delta, cache.win, x, w_mat, np.ascontiguousarray(w_mat.T), k, cache.stride,
                            cache.p, chunk, need_dx, dx, dw_parts, db_parts)
    dw_mat = dw_parts.sum(axis=0)
    dw = np.ascontiguousarray(dw_mat.reshape(k, k, c, n_maps).transpose(3, 2, 0, 1))
    db = db_parts.sum(axis=0) if cache.has_bias else None
    return (channels_first(dx) if need_dx else None), dw, db


def conv_forward(x, w, b=None, stride: int = 1):
    """See ``reference.conv_forward``: z (m, n_maps, ho, wo), a channels-last view, and a cache."""
    check_conv_shapes(x, w, b, stride)
    if w.shape[2] != w.shape[3]:          # the compiled kernels take square kernels (as the layers)
        return reference.conv_forward(x, w, b, stride)
    return _forward(x, w, b, int(stride), 1)


def conv_backward(dz, cache, need_dx: bool = True):
    """See ``reference.conv_backward``: (dx, dw, db)."""
    if not isinstance(cache, ConvKernelCache):
        return reference.conv_backward(dz, cache, need_dx)
    return _backward(dz, cache, need_dx)


def convpool_forward(x, w, b, p: int = 2, train: bool = True):
    """See ``reference.convpool_forward``: z = maxpool_p(w ⊛ x) + b and (train) a cache."""
    check_convpool_shapes(x, w, b, p)
    if w.shape[2] != w.shape[3]:
        return reference.convpool_forward(x, w, b, p, train)
    z, cache = _forward(x, w, b, 1, int(p))
    return z, (cache if train else None)


def convpool_backward(dz, cache, need_dx: bool = True):
    """See ``reference.convpool_backward``: (dx, dw, db)."""
    if not isinstance(cache, ConvKernelCache):
        return reference.convpool_backward(dz, cache, need_dx)
    return _backward(dz, cache, need_dx)


# ----- stand-alone pooling ---------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _maxpool_forward(x, p, out, win):
    m, h, wd, c = x.shape
    ho, wo = h // p, wd // p
    for n in prange(m):
        for yo in range(ho):
            for xo in range(wo):
                for ch in range(c):
                    best = x[n, yo * p, xo * p, ch]
                    arg = 0
                    for jj in range(p):                         # column-major: ties keep the first
                        for ii in range(p):
                            v = x[n, yo * p + ii, xo * p + jj, ch]
                            if v > best:
                                best = v
                                arg = ii * p + jj
                    out[n, yo, xo, ch] = best
                    win[n, yo, xo, ch] = arg


@njit(cache=True, parallel=True)
def _maxpool_backward(g, win, p, dx):
    m, ho, wo, c = g.shape
    for n in prange(m):
        dx[n] = 0
        for yo in range(ho):
            for xo in range(wo):
                for ch in range(c):
                    w_ = win[n, yo, xo, ch]
                    dx[n, yo * p + w_ // p, xo * p + w_ % p, ch] = g[n, yo, xo, ch]


@njit(cache=True, parallel=True)
def _l2pool_forward(x, p, eps, out):
    m, h, wd, c = x.shape
    ho, wo = h // p, wd // p
    for n in prange(m):
        for yo in range(ho):
            for xo in range(wo):
                for ch in range(c):
                    acc = 0.0
                    for ii in range(p):
                        for jj in range(p):
                            v = x[n, yo * p + ii, xo * p + jj, ch]
                            acc += v * v
                    out[n, yo, xo, ch] = np.sqrt(acc + eps)


@njit(cache=True, parallel=True)
def _l2pool_backward(g, x, out, p, dx):
    m, ho, wo, c = g.shape
    for n in prange(m):
        for yo in range(ho):
            for xo in range(wo):
                for ch in range(c):
                    scale = g[n, yo, xo, ch] / out[n, yo, xo, ch]    # ∂out/∂x = x / out
                    for ii in range(p):
                        for jj in range(p):
                            dx[n, yo * p + ii, xo * p + jj, ch] = x[n, yo * p + ii, xo * p + jj, ch] * scale


def maxpool_forward(x, p: int = 2):
    """See ``reference.maxpool_forward``: out (m, c, h/p, w/p) and a cache."""
    check_pool_shape(x, p)
    xl = _channels_last(x)
    m, h, wd, c = xl.shape
    out = np.empty((m, h // p, wd // p, c), xl.dtype)
    win = np.empty(out.shape, np.uint8)
    _maxpool_forward(xl, int(p), out, win)
    return channels_first(out), (xl.shape, int(p), win)


def maxpool_backward(dout, cache):
    """See ``reference.maxpool_backward``: dx (m, c, h, w)."""
    x_shape, p, win = cache
    g = _channels_last(dout)
    dx = np.empty(x_shape, g.dtype)
    _maxpool_backward(g, win, p, dx)
    return channels_first(dx)


def l2pool_forward(x, p: int = 2, eps: float = 1e-8):
    """See ``reference.l2pool_forward``: out = sqrt(Σ_window x² + eps) and a cache."""
    check_pool_shape(x, p)
    xl = _channels_last(x)
    m, h, wd, c = xl.shape
    out = np.empty((m, h // p, wd // p, c), xl.dtype)
    _l2pool_forward(xl, int(p), eps, out)
    return channels_first(out), (xl, out, int(p))


def l2pool_backward(dout, cache):
    """See ``reference.l2pool_backward``: dx (m, c, h, w)."""
    xl, out, p = cache
    g = _channels_last(dout).astype(xl.dtype, copy=False)
    dx = np.empty_like(xl)
    _l2pool_backward(g, xl, out, p, dx)
    return channels_first(dx)


# ----- compile once -----------------------------------------------------------------------------------
_KERNELS = (_conv_pool_forward, _conv_pool_backward, _maxpool_forward, _maxpool_backward,
            _l2pool_forward, _l2pool_backward)


def compiled(dtype) -> bool:
    """Whether this process has, or Numba's on-disk cache holds, the kernels (for any dtype)."""
    try:
        return all(k.signatures or os.path.exists(k._cache._cache_file._index_path) for k in _KERNELS)
    except AttributeError:                # a Numba without these internals: assume not
        return False


def warm_up(dtype) -> None:
    """Run every kernel once on tiny inputs of ``dtype``: compiles them, or loads Numba's cache."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 6)).astype(dtype)
    w, b = rng.standard_normal((3, 2, 3, 3)).astype(dtype), np.zeros(3, dtype)
    for forward, backward, args in ((conv_forward, conv_backward, (w, b, 1)),
                                    (convpool_forward, convpool_backward, (w, b, 2))):
        z, cache = forward(x, *args)
        backward(z, cache, True)
        backward(z, cache, False)
    for forward, backward in ((maxpool_forward, maxpool_backward), (l2pool_forward, l2pool_backward)):
        out, cache = forward(x, 2)
        backward(out, cache)
