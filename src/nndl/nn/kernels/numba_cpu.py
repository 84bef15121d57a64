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

This module is the entry point (``nndl.nn.kernels.by_name("numba")``): pooling, Dense, the SGD
step and compiling, with the conv kernels imported from ``_numba_conv.py``; what both share
(Numba's import at -O2, BLAS threads, the split into parts) is in ``_numba_common.py``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from . import reference
from ._numba_common import U, _channels_last, _part, _parts, njit, numba, prange, single_threaded_blas
from ._numba_conv import (
    ConvKernelCache,
    _conv_pool_backward,
    _conv_pool_forward,
    conv_backward,
    conv_forward,
    convpool_backward,
    convpool_forward,
)
from ._shapes import channels_first, check_pool_shape

NAME = "numba"

__all__ = ["conv_forward", "conv_backward", "maxpool_forward", "maxpool_backward",
           "l2pool_forward", "l2pool_backward", "convpool_forward", "convpool_backward",
           "dense_forward", "dense_backward", "sgd_step"]


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
