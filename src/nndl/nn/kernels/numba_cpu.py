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
- **Wide Dense layers** (ch6-dropout's 1000 units) split their three products over the cores by
  blocks of w's rows, and the **SGD step** is one parallel pass over each big weight array.
- BLAS runs on one thread inside the parallel loops (``single_threaded_blas``): each core calls
  its own single-threaded product. (Training also keeps BLAS on one thread between the kernels:
  see ``nndl.nn.kernels.plan_threads``.)
- Loops index flat arrays with unsigned integers, so that LLVM vectorises them.

Memory layout as in the reference: arrays are (m, c, h, w) views of channels-last (m, h, w, c)
buffers. Max-pooling ties go to the first maximum in column-major order, as in the reference.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

if "numba" not in sys.modules:
    # LLVM's -O2 runs these kernels as fast as Numba's default -O3 (measured: within noise) and
    # compiles them a third faster; a NUMBA_OPT you set yourself wins.
    os.environ.setdefault("NUMBA_OPT", "2")
import numba  # noqa: E402
from numba import njit, prange  # noqa: E402

from . import reference
from .reference import channels_first, check_conv_shapes, check_convpool_shapes, check_pool_shape, conv_output_size

NAME = "numba"

__all__ = ["conv_forward", "conv_backward", "maxpool_forward", "maxpool_backward",
           "l2pool_forward", "l2pool_backward", "convpool_forward", "convpool_backward",
           "dense_forward", "dense_backward", "sgd_step"]

_L2_BYTES = 384 * 1024   # what one chunk's patch matrix may take: well inside a 2-4 MB L2 (1 MB measured slower)


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
# They take flat (1-D) views of channels-last arrays and index them with unsigned integers: a
# signed index makes Numba test it for negative-index wraparound at every access, which stops
# LLVM from vectorising the loops (5-8 times slower here).
U = numba.uint64


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


@njit(cache=True, nogil=True)
def _part(m, n_parts, part):
    return part * m // n_parts, (part + 1) * m // n_parts


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


# ----- fully connected layers ----------------------------------------------------------------------------
# At the book's mini-batch sizes a Dense layer's products are thin (m = 10 rows against a 1000 × 1000
# w), so they stream w and are bound by memory, not arithmetic. Here each core takes a block of w's
# rows (its inputs) for all three products — z = Σ_blocks a_in[:, blk]·w[blk], ∂C/∂w[blk] = a_in[:, blk]ᵀδ,
# ∂C/∂a_in[:, blk] = δ·w[blk]ᵀ — so each reads only its half of w, once, with its own single-threaded
# product. Splitting the rows of the mini-batch instead makes every core read all of w.
# Measured (benchmarks/README): faster for ch6-dropout's 640 × 1000 and 1000 × 1000 layers, slower
# for the [784, 30, 10] and [784, 100, 10] nets' layers, where NumPy's own call is cheaper.
PARALLEL_WEIGHTS = 400_000      # w of at least this many numbers (1.6 MB in float32)...
_PARALLEL_MACS = 2_000_000      # ...and products of at least this many multiply-adds


@njit(cache=True, parallel=True)
def _dense_forward(a_in, w, n_parts, partial):
    """partial[part] = a_in[:, blk]·w[blk] for each block of w's rows (their sum is a_in·w)."""
    n_in = w.shape[0]
    for part in prange(n_parts):
        i0, i1 = _part(n_in, n_parts, part)
        np.dot(np.ascontiguousarray(a_in[:, i0:i1]), w[i0:i1], partial[part])


@njit(cache=True, parallel=True)
def _dense_backward(delta, a_in, w, need_dx, n_parts, dw, dx):
    """∂C/∂w = a_inᵀδ (BP4) and ∂C/∂a_in = δ·wᵀ (BP2's wᵀδ), one block of w's rows per thread."""
    n_in = w.shape[0]
    m = delta.shape[0]
    for part in prange(n_parts):
        i0, i1 = _part(n_in, n_parts, part)
        np.dot(np.ascontiguousarray(a_in[:, i0:i1]).T, delta, dw[i0:i1])
        if need_dx:
            block = np.dot(delta, w[i0:i1].T)                  # (m, i1 - i0)
            for r in range(m):
                for i in range(i1 - i0):
                    dx[r, i0 + i] = block[r, i]


def _dense_parts(m: int, w) -> int:
    return _parts(w.shape[0]) if w.size >= PARALLEL_WEIGHTS and m * w.size >= _PARALLEL_MACS else 1


def dense_forward(a_in, w, b, activation):
    """See ``reference.dense_forward``: (z, a), both (m, n_out). Products of less than one
    thread's work go to the reference, which costs less to call."""
    n_parts = _dense_parts(a_in.shape[0], w)
    if n_parts == 1 or a_in.dtype != w.dtype:
        return reference.dense_forward(a_in, w, b, activation)
    partial = np.empty((n_parts, a_in.shape[0], w.shape[1]), w.dtype)
    with single_threaded_blas():
        _dense_forward(a_in, w, n_parts, partial)
    z = partial.sum(axis=0)
    z += b
    return z, activation.fn(z)


def dense_backward(delta, a_in, w, need_dx: bool = True):
    """See ``reference.dense_backward``: (dw, db, dx) from δ (m, n_out); small products as in
    ``dense_forward``."""
    n_parts = _dense_parts(delta.shape[0], w)
    if n_parts == 1 or not (delta.dtype == a_in.dtype == w.dtype):
        return reference.dense_backward(delta, a_in, w, need_dx)
    delta = np.ascontiguousarray(delta)
    dw = np.empty(w.shape, w.dtype)
    dx = np.empty(a_in.shape, w.dtype) if need_dx else np.empty((0, 0), w.dtype)
    with single_threaded_blas():
        _dense_backward(delta, a_in, w, need_dx, n_parts, dw, dx)
    return dw, delta.sum(axis=0), (dx if need_dx else None)


# ----- the SGD update -----------------------------------------------------------------------------------
# For the big weight matrices the update is a stream over memory: the reference makes five passes
# (η·g, the shrink, the subtraction), this one pass on every core.
_PARALLEL_UPDATE = 100_000      # numbers; smaller arrays take the reference


@njit(cache=True, parallel=True)
def _sgd_step(valuef, gradf, eta, shrink, l1, n_parts):
    n = valuef.size
    for part in prange(n_parts):
        i0, i1 = _part(n, n_parts, part)
        for i in range(i0, i1):
            v = valuef[U(i)]
            if l1 != 0:
                v = v - l1 * np.sign(v)
            elif shrink != 1:
                v = v * shrink
            valuef[U(i)] = v - gradf[U(i)] * eta


def sgd_step(value, grad, eta: float, shrink: float = 1.0, l1: float = 0.0) -> None:
    """See ``reference.sgd_step`` (the same roundings, in one parallel pass; ``grad`` is left as it is)."""
    if value.size < _PARALLEL_UPDATE or not (value.flags.c_contiguous and grad.flags.c_contiguous) \
            or value.dtype != grad.dtype:
        return reference.sgd_step(value, grad, eta, shrink, l1)
    t = value.dtype.type
    _sgd_step(value.reshape(-1), grad.reshape(-1), t(eta), t(shrink), t(l1), _parts(value.size))


# ----- threads and compiling once ---------------------------------------------------------------------
def set_threads(n: int | None) -> None:
    """The threads of the parallel loops: ``n`` (at most the cores Numba started with), or all."""
    most = numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(most if n is None else max(1, min(int(n), most)))


def _compile_elsewhere(name: str, dtype):
    """Start ``python -c "numba_cpu.<name>(dtype)"`` in the background; None if it cannot start."""
    import subprocess

    code = f"from nndl.nn.kernels import numba_cpu; numba_cpu.{name}('{dtype.name}')"
    try:
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _warm_conv_backward(dtype: str) -> None:
    """Compile the conv backward kernel for ``dtype`` (run by ``warm_up``'s second process)."""
    x = np.zeros((2, 6, 6, 2), dtype)                       # a forward pass's cache, made by hand:
    cache = ConvKernelCache(x, (3, 2, 3, 3), np.zeros((18, 3), dtype), 1, 1,     # no forward kernel compiled
                            np.empty((0, 0, 0, 0), np.uint8), True)
    conv_backward(channels_first(np.zeros((2, 4, 4, 3), dtype)), cache, True)


_KERNELS = {"conv": (_conv_pool_forward, _conv_pool_backward), "maxpool": (_maxpool_forward, _maxpool_backward),
            "l2pool": (_l2pool_forward, _l2pool_backward), "dense": (_dense_forward, _dense_backward, _sgd_step)}


def compiled(uses) -> bool:
    """Whether this process has, or Numba's on-disk cache holds, the kernels ``uses`` names."""
    try:
        return all(k.signatures or os.path.exists(k._cache._cache_file._index_path)
                   for use in uses for k in _KERNELS[use])
    except AttributeError:                # a Numba without these internals: assume not
        return False


def warm_up(dtype, uses=tuple(_KERNELS)) -> None:
    """Run the kernels ``uses`` names ("conv", "maxpool", "l2pool", "dense") once on tiny inputs
    of ``dtype``: compiles them, or loads them from Numba's cache. A cold conv backward kernel is
    compiled by a second process at the same time as the forward one here (compiling holds the
    GIL, so a thread would not help); this process then loads it from the cache."""
    dtype = np.dtype(dtype)
    helper = _compile_elsewhere("_warm_conv_backward", dtype) if "conv" in uses and not compiled(["conv"]) else None
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 6)).astype(dtype)
    w, b = rng.standard_normal((3, 2, 3, 3)).astype(dtype), np.zeros(3, dtype)
    if "conv" in uses:
        z, cache = conv_forward(x, w, b, 1)
        if helper is not None:
            helper.wait()                     # its kernel is in the cache now (if it could write there)
        conv_backward(z, cache, True)
    for use in {"maxpool", "l2pool"} & set(uses):
        out, cache = globals()[f"{use}_forward"](x, 2)
        globals()[f"{use}_backward"](out, cache)
    if "dense" in uses:
        from ..activations import get_activation

        rows, w_big = np.zeros((2, 1000), dtype), np.zeros((1000, 1000), dtype)   # big enough for the kernel
        z, _ = dense_forward(rows, w_big, np.zeros(1000, dtype), get_activation("relu"))
        dense_backward(z, rows, w_big, True)
        sgd_step(w_big, w_big.copy(), 0.1, 0.99)
