"""The fused conv and conv-pool kernels of ``numba_cpu``: compiled im2col and col2im, the bias and
max-pooling epilogues, the forward and backward passes over the parts of a mini-batch, and their
entry points ``conv_forward``/``conv_backward`` and ``convpool_forward``/``convpool_backward``.

``numba_cpu``'s docstring says what makes them fast, ``reference.py`` what they compute; each
entry point has the signature and the result of its namesake there.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import reference
from ._numba_common import U, _channels_last, _part, _parts, njit, prange, single_threaded_blas
from ._shapes import channels_first, check_conv_shapes, check_convpool_shapes, conv_output_size

_L2_BYTES = 384 * 1024   # what one chunk's patch matrix may take: well inside a 2-4 MB L2 (1 MB measured slower)


def _chunk(rows_per_image: int, row_bytes: int) -> int:
    """Images per chunk: as many as keep the chunk's patch matrix within ``_L2_BYTES``."""
    return int(max(1, min(64, _L2_BYTES // max(1, rows_per_image * row_bytes))))


# ----- compiled helpers (run inside one part of the batch) --------------------------------------------
# They take flat (1-D) views of channels-last arrays and index them with unsigned integers (``U``:
# see ``_numba_common``).
@njit(cache=True, nogil=True)
def _im2col(xf, h, w, c, n0, n1, k, s, ho, wo, colsf):
    """Rows (n, y, x) for images n0..n1 of x (m, h, w, c): the k·k·c inputs each position sees
    (the a_in of BP4), copied as k runs of k·c contiguous numbers."""
    run = k * c
    r = 0
    for n in range(n0, n1):
        for y in range(ho):
            for xo in range(wo):
                for l in range(k):
                    src = ((n * h + y * s + l) * w + xo * s) * c
                    dst = (r * k + l) * run
                    for t in range(run):
                        colsf[U(dst + t)] = xf[U(src + t)]
                r += 1


@njit(cache=True, nogil=True)
def _im2col_t(xf, h, w, n0, n1, k, ho, wo, colstf):
    """The patch matrix transposed, (k·k, rows), for one channel and stride 1: then each copy is a
    run of wo numbers along an image row, not k (the first layer's 5)."""
    rows = (n1 - n0) * ho * wo
    for n in range(n0, n1):
        base = (n - n0) * ho * wo
        for l in range(k):
            for mm in range(k):
                q = l * k + mm
                for y in range(ho):
                    src = (n * h + y + l) * w + mm
                    dst = q * rows + base + y * wo
                    for t in range(wo):
                        colstf[U(dst + t)] = xf[U(src + t)]


@njit(cache=True, nogil=True)
def _col2im(dcolsf, h, w, c, n0, n1, k, s, ho, wo, dxf):
    """The transpose of ``_im2col``: each input pixel of images n0..n1 collects the gradient of
    every window that contains it."""
    for i in range(n0 * h * w * c, n1 * h * w * c):
        dxf[U(i)] = 0
    run = k * c
    r = 0
    for n in range(n0, n1):
        for y in range(ho):
            for xo in range(wo):
                for l in range(k):
                    dst = ((n * h + y * s + l) * w + xo * s) * c
                    src = (r * k + l) * run
                    for t in range(run):
                        dxf[U(dst + t)] += dcolsf[U(src + t)]
                r += 1


@njit(cache=True, nogil=True)
def _pool_epilogue(convf, n_maps, n0, n1, hc, wc, p, b, zf, winf):
    """z = maxpool_p(conv) + b for images n0..n1 (conv rows (n, y, x), z (m, ho, wo, n_maps));
    win keeps each window's winner i·p + j, the first maximum in column-major order."""
    ho, wo = hc // p, wc // p
    best = np.empty(n_maps, convf.dtype)
    arg = np.empty(n_maps, np.uint8)
    for n in range(n0, n1):
        base = (n - n0) * hc * wc
        for yo in range(ho):
            for xo in range(wo):
                r0 = (base + yo * p * wc + xo * p) * n_maps
                for j in range(n_maps):
                    best[U(j)] = convf[U(r0 + j)]
                    arg[U(j)] = 0
                for jj in range(p):
                    for ii in range(p):
                        if ii + jj == 0:
                            continue
                        r = r0 + (ii * wc + jj) * n_maps
                        code = ii * p + jj
                        for j in range(n_maps):
                            v = convf[U(r + j)]
                            if v > best[U(j)]:
                                best[U(j)] = v
                                arg[U(j)] = code
                out = ((n * ho + yo) * wo + xo) * n_maps
                for j in range(n_maps):
                    zf[U(out + j)] = best[U(j)] + b[U(j)]
                    winf[U(out + j)] = arg[U(j)]


@njit(cache=True, nogil=True)
def _bias_epilogue(convf, n_maps, n0, n1, rows_per_image, b, zf):
    """z = conv + b for images n0..n1 (no pooling)."""
    start = n0 * rows_per_image * n_maps
    for r in range((n1 - n0) * rows_per_image):
        for j in range(n_maps):
            zf[U(start + r * n_maps + j)] = convf[U(r * n_maps + j)] + b[U(j)]


@njit(cache=True, nogil=True)
def _gather_delta(deltaf, n_maps, n0, n1, rows_per_image, dconvf, db):
    """δ of images n0..n1 as the chunk's rows (no pooling); db += Σ δ (BP3)."""
    start = n0 * rows_per_image * n_maps
    for r in range((n1 - n0) * rows_per_image):
        for j in range(n_maps):
            d = deltaf[U(start + r * n_maps + j)]
            dconvf[U(r * n_maps + j)] = d
            db[U(j)] += d


@njit(cache=True, nogil=True)
def _unpool(deltaf, winf, n_maps, n0, n1, hc, wc, p, dconvf, db):
    """The gradient of the chunk's conv maps: each pooled δ goes to its window's winner, the
    other units get 0 (max-pooling's backward); db += Σ δ (BP3)."""
    ho, wo = hc // p, wc // p
    for i in range((n1 - n0) * hc * wc * n_maps):
        dconvf[U(i)] = 0
    for n in range(n0, n1):
        base = (n - n0) * hc * wc
        for yo in range(ho):
            for xo in range(wo):
                r0 = base + yo * p * wc + xo * p
                src = ((n * ho + yo) * wo + xo) * n_maps
                for j in range(n_maps):
                    d = deltaf[U(src + j)]
                    won = winf[U(src + j)]
                    dconvf[U((r0 + (won // p) * wc + won % p) * n_maps + j)] = d
                    db[U(j)] += d


@njit(cache=True, nogil=True)
def _add(totalf, partf):
    for i in range(totalf.size):
        totalf[U(i)] += partf[U(i)]


# ----- conv (+ pool) forward and backward --------------------------------------------------------------
@njit(cache=True, nogil=True)
def _forward_part(x, w_mat, b, k, s, p, chunk, a0, a1, z, win):
    """Images a0..a1 of ``_conv_pool_forward``, chunk by chunk."""
    m, h, w, c = x.shape
    hc, wc = (h - k) // s + 1, (w - k) // s + 1
    n_maps = w_mat.shape[1]
    xf, zf, winf = x.reshape(x.size), z.reshape(z.size), win.reshape(win.size)
    cols = np.empty((chunk * hc * wc, w_mat.shape[0]), x.dtype)
    conv = np.empty((chunk * hc * wc, n_maps), x.dtype)
    colsf, convf = cols.reshape(cols.size), conv.reshape(conv.size)
    for n0 in range(a0, a1, chunk):
        n1 = min(n0 + chunk, a1)
        rows = (n1 - n0) * hc * wc
        if c == 1 and s == 1:                                  # one channel: the transposed patch matrix
            _im2col_t(xf, h, w, n0, n1, k, hc, wc, colsf)
            np.dot(colsf[:rows * k * k].reshape(k * k, rows).T, w_mat, conv[:rows])
        else:
            _im2col(xf, h, w, c, n0, n1, k, s, hc, wc, colsf)
            np.dot(cols[:rows], w_mat, conv[:rows])            # w ⊛ a_in for the chunk: one product
        if p == 1:
            _bias_epilogue(convf, n_maps, n0, n1, hc * wc, b, zf)
        else:
            _pool_epilogue(convf, n_maps, n0, n1, hc, wc, p, b, zf, winf)


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
    m, h, w, c = x.shape
    hc, wc = (h - k) // s + 1, (w - k) // s + 1
    n_cols, n_maps = w_mat.shape
    xf, deltaf, winf, dxf = x.reshape(x.size), delta.reshape(delta.size), win.reshape(win.size), dx.reshape(dx.size)
    cols = np.empty((chunk * hc * wc, n_cols), x.dtype)
    dconv = np.empty((chunk * hc * wc, n_maps), x.dtype)
    dcols = np.empty((chunk * hc * wc, n_cols), x.dtype)
    colsf, dconvf, dcolsf = cols.reshape(cols.size), dconv.reshape(dconv.size), dcols.reshape(dcols.size)
    dw_chunk = np.empty_like(dw)
    dwf, dw_chunkf = dw.reshape(dw.size), dw_chunk.reshape(dw_chunk.size)
    for n0 in range(a0, a1, chunk):
        n1 = min(n0 + chunk, a1)
        rows = (n1 - n0) * hc * wc
        if p == 1:
            _gather_delta(deltaf, n_maps, n0, n1, hc * wc, dconvf, db)          # δ as rows; BP3
        else:
            _unpool(deltaf, winf, n_maps, n0, n1, hc, wc, p, dconvf, db)      # δ to the winners; BP3
        if c == 1 and s == 1:                                   # the patch matrix, rebuilt (cheaper than kept)
            _im2col_t(xf, h, w, n0, n1, k, hc, wc, colsf)
            np.dot(colsf[:rows * k * k].reshape(k * k, rows), dconv[:rows], dw_chunk)   # BP4: Σ a_in δ
        else:
            _im2col(xf, h, w, c, n0, n1, k, s, hc, wc, colsf)
            np.dot(cols[:rows].T, dconv[:rows], dw_chunk)       # BP4: ∂C/∂w = Σ a_in δ
        _add(dwf, dw_chunkf)
        if need_dx:
            np.dot(dconv[:rows], w_t, dcols[:rows])             # BP2's wᵀδ, per position
            _col2im(dcolsf, h, w, c, n0, n1, k, s, hc, wc, dxf)


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


def _forward(x, w, b, stride: int, p: int):
    xl = _channels_last(x)
    m, h, wd, c = xl.shape
    n_maps, _, k, _ = w.shape
    hc, wc = conv_output_size(h, k, stride), conv_output_size(wd, k, stride)
    w_mat = reference.weight_matrix(w, None)                   # (k·k·c, n_maps), the reference's order
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
