"""The patch matrices of the reference kernels (NumPy or CuPy, through ``array_module``): the
strided window view of an input, im2col (one copy into the patch matrix), the weights as one
matrix in the same order, and col2im (the patch gradients summed back onto the input).
``reference.py`` says why each is built the way it is."""
from __future__ import annotations

from ...backend import array_module
from ._shapes import channels_last, conv_output_size


def _windows(x, kh: int, kw: int, stride: int, phase: int = 1):
    """Every kh×kw window of channels-last ``x`` (m, h, w, c), as a view, no copy:
    (m, phase, phase, ho/phase, wo/phase, kh, kw, c).

    With ``phase = 1`` this is ``numpy.lib.stride_tricks.sliding_window_view(x, (kh, kw),
    axis=(1, 2))[:, ::s, ::s]`` with its axes reordered, built directly with ``as_strided``: the
    same code serves CuPy, and it skips sliding_window_view's checks (tens of µs, noticeable at
    m = 10). With ``phase = p`` the output positions (y, x) = (p·y' + i, p·x' + j) are grouped by
    their place (i, j) in a p×p pooling window. Only read from it: the windows overlap.
    """
    xp = array_module(x)
    m, h, w, c = x.shape
    ho, wo = conv_output_size(h, kh, stride), conv_output_size(w, kw, stride)
    sm, sh, sw, sc = x.strides
    sy, sx = sh * stride, sw * stride
    return xp.lib.stride_tricks.as_strided(
        x, (m, phase, phase, ho // phase, wo // phase, kh, kw, c),
        (sm, sy, sx, sy * phase, sx * phase, sh, sw, sc))


def _im2col(x, kh: int, kw: int, stride: int, bias: bool, phase: int = 1):
    """The patch matrix of x (m, c, h, w): one row per output position, holding the kh·kw·c
    inputs its receptive field sees (the a_in of BP4), plus a column of ones when ``bias``.

    Rows run over (m, y, x) — or over (m, i, j, y', x') with ``phase = p``, see ``_windows``.
    Shape (rows, kh·kw·c [+ 1]); the one copy of the forward pass.
    """
    xp = array_module(x)
    m, c = x.shape[:2]
    win = _windows(channels_last(x), kh, kw, stride, phase)      # (m, p, p, ho', wo', kh, kw, c) view
    _, p, _, hq, wq = win.shape[:5]
    n_rows, n_cols, extra = m * p * p * hq * wq, kh * kw * c, int(bias)
    if c == 1:
        # One channel: the longest runs go along x, so fill colsᵀ row by row (kh·kw rows of
        # m·ho·wo numbers); the matrix product then reads it transposed, for free.
        cols_t = xp.empty((n_cols + extra, n_rows), dtype=x.dtype)
        cols_t[:n_cols].reshape(kh, kw, c, m, p, p, hq, wq)[...] = win.transpose(5, 6, 7, 0, 1, 2, 3, 4)
        cols = cols_t.T
    else:
        # Several channels: each row is one window, copied as kh runs of kw·c contiguous numbers.
        cols = xp.empty((n_rows, n_cols + extra), dtype=x.dtype)
        isz = cols.itemsize
        row = (n_cols + extra) * isz
        dest = xp.lib.stride_tricks.as_strided(                   # cols[:, :n_cols] as the window view
            cols, win.shape, (p * p * hq * wq * row, p * hq * wq * row, hq * wq * row, wq * row, row,
                              kw * c * isz, c * isz, isz))
        dest[...] = win
    if bias:
        cols[:, n_cols] = 1                                       # the bias's "input"
    return cols


def weight_matrix(w, b):
    """w (n_maps, c, kh, kw) [and b] as one (kh·kw·c [+ 1], n_maps) matrix matching ``_im2col``."""
    xp = array_module(w)
    n_maps, c, kh, kw = w.shape
    n_cols = kh * kw * c
    w_mat = xp.empty((n_cols + (b is not None), n_maps), dtype=w.dtype)
    w_mat[:n_cols] = w.transpose(2, 3, 1, 0).reshape(n_cols, n_maps)
    if b is not None:
        w_mat[n_cols] = b
    return w_mat


def _col2im(dcols, x_shape, s: int):
    """Sum window gradients (m, ho, wo, kh, kw, c) back onto the channels-last input (m, h, w, c).

    Two passes of strided slice additions instead of kh·kw of them: first over the kernel rows
    l (each addition moves contiguous runs of kw·c numbers), then over the kernel columns.
    """
    xp = array_module(dcols)
    m, ho, wo, kh, kw, c = dcols.shape
    _, h, wd, _ = x_shape
    rows = xp.zeros((m, h, wo, kw, c), dtype=dcols.dtype)          # per output column, summed over l
    for l in range(kh):
        rows[:, l:l + s * (ho - 1) + 1:s] += dcols[:, :, :, l]
    dx = xp.zeros((m, h, wd, c), dtype=dcols.dtype)
    for j in range(kw):
        dx[:, :, j:j + s * (wo - 1) + 1:s] += rows[:, :, :, j]
    return dx
