"""Real paper → ink: the lighting, the paper's edges, ruled lines and frames, and the pen's width.

``nndl.data.images`` uses these steps to turn a photo or a scan into the ink map that MNIST form
is made from:

1. **Orient** (``analyse``): the ink is made dark on light paper. A light-on-dark image (MNIST's
   own arrays) is told by its border, which is then nearly all dark, and by its median level.
2. **Background** (``analyse``): on a copy box-averaged to at most ``COARSE`` pixels a side, a
   grey closing (a maximum filter, then a minimum filter) removes every dark mark narrower than
   its size and keeps what is wider: shadows, lighting gradients, the paper's own grey. Its size
   is the smallest of ``SIZES`` past which the closing removes (nearly) no more ink: the ink's
   top-hat reaches a plateau there, and only larger dark regions (shadows) would come next. The
   image is padded by reflection, so a digit cut off at the edge is still ink, not paper.
3. **Darkness** (``Paper.darkness``): 1 - grey / background, the share of the paper's light
   that the ink absorbs there. Dividing the lighting out makes ink in a shadow as dark as ink in
   the light, and a gradient flat. Ink is then the darkness above the paper's noise (a robust
   standard deviation), scaled by the strongest ink's: the same numbers as before for an evenly
   lit image, so MNIST arrays and drawings on a web canvas read as they always did.
4. **Lines** (``remove_lines``): runs of ink longer than ``LINE_LENGTH`` of the image across and
   thinner than ``LINE_THICKNESS`` of the digit's own strokes are ruled lines or a printed frame:
   they are removed, and the pixels where the digit's strokes crossed them are filled back in.
   The bar of a 7 and the stem of a 1 are as thick as the other strokes, so they stay.
5. **Pen width** (``normalise_strokes``): the stroke width (twice the median ridge of the
   distance transform) over the digit's size is moved into MNIST's range (about 0.09-0.2 of the
   digit's longer side; a 20-pixel digit has 2-3 pixel strokes), each stroke's edge moved by a
   share of its own half-width so that thin parts of a thick digit are not lost.

Why scipy.ndimage: it is already a core dependency of nndl (installing nndl brings SciPy)
and has all the morphology this needs (grey closing, minimum/maximum filters, labelling,
distance transforms). scikit-image has more (adaptive thresholds, skeletons) but would be a new
dependency for a few lines' gain. Nothing here imports the networks.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from ..errors import NNDLError

COARSE = 64           # the background is estimated on a copy at most about this many pixels a side
SIZES = (3, 5, 7, 9, 13, 17, 23, 31, 41)  # closing sizes tried, in coarse pixels
PLATEAU = 1.1         # the closing is large enough once the next size removes < 10% more
NOISE_CUT = 4.0       # darkness within this many standard deviations of the paper's is paper
MIN_CONTRAST = 0.2    # ink absorbs at least this share of the light its paper reflects
LINE_LENGTH = 0.6     # a line runs across at least this share of the image ...
LINE_THICKNESS = 0.55  # ... and is thinner than this share of the digit's strokes
LINE_INK = 0.1        # ink above this counts when looking for lines ...
LINE_CORE = 0.35      # ... and above this when measuring how thick they are
RULE_WIDTH = 0.05     # rules with nothing else are at most this share of the image thick
MIN_LINE = 40         # lines are looked for in images at least this many pixels across
FRAME_BAND = 0.12     # runs within this share of the image from three of its sides are a box
STROKE_RANGE = (0.065, 0.24)  # MNIST's stroke width over the digit's longer side (1st-99th percentile)
STROKE_TARGET = (0.09, 0.15)  # where a thinner or thicker pen is moved to (a 20-pixel digit: 1.8, 3 pixels)
THIN_INK = 0.25       # a thin pen's stroke is its ink above this
STROKE_WORK = 60      # strokes are changed on a digit enlarged to at least this many pixels


class NoDigitError(NNDLError, ValueError):
    """There is no digit to read: no ink at all, a mere speck, or only ruled lines or a frame."""


class Paper(NamedTuple):
    """What the coarse copy of a whole image says about its paper and lighting."""
    inverted: bool          # light ink on dark paper: the levels are turned over (1 - grey)
    k: int                  # the coarse copy's box-averaging factor
    coarse: np.ndarray      # the coarse copy, oriented (dark ink on light paper), float32 (ch, cw)
    background: np.ndarray  # the paper's level there without the ink, float32 (ch, cw)
    size: int               # the closing's size, in coarse pixels
    level: float            # the image's median grey (as given), for messages

    def orient(self, grey: np.ndarray) -> np.ndarray:
        """Grey levels (float32) with the ink dark on light paper."""
        return 1.0 - grey if self.inverted else grey

    def darkness(self, o: np.ndarray, corner: tuple[int, int], k: int) -> np.ndarray:
        """Darkness (float32 in [0, 1], ink > 0) of the oriented levels ``o`` of the part of the
        image at ``corner`` (full-scale pixels), box-averaged ``k`` times (k == 1: full scale)."""
        bg = _resample(self.background, o.shape, corner, k, self.k)
        dk = 1.0 - o / np.maximum(bg, 1e-3)
        return np.maximum(dk, 0.0, out=dk).astype(np.float32, copy=False)


def analyse(grey: np.ndarray) -> Paper:
    """The orientation and background of a whole grey image (floats in [0, 1], (h, w))."""
    k = max(1, min(-(-max(grey.shape) // COARSE), min(grey.shape) // 16))  # a long strip keeps 16 rows
    c = box_average(grey, k) if k > 1 else grey
    lo, hi, level = (float(v) for v in np.percentile(c, (0.5, 99.5, 50)))
    if float(grey.max()) - float(grey.min()) < 1.5 / 255:
        raise NoDigitError(f"no ink found: the image is one even grey (level {level:.2f})")
    mid = (lo + hi) / 2
    border = np.concatenate([c[0], c[-1], c[1:-1, 0], c[1:-1, -1]])
    inverted = bool((border < mid).mean() >= 0.75 and level < mid)
    o = (1.0 - c if inverted else c).astype(np.float32)
    bg, size = _closing_at_plateau(o)
    return Paper(inverted, k, o, bg, size, level)


def _closing_at_plateau(o: np.ndarray) -> tuple[np.ndarray, int]:
    """The grey closing of ``o`` (dark ink) at the first size of ``SIZES`` past which it removes
    less than ``PLATEAU`` times as much ink, and that size."""
    limit = max(3, int(0.8 * min(o.shape)) | 1)
    sizes = [s for s in SIZES if s <= limit] or [3]
    previous, removed = None, 0.0
    for s in sizes:
        bg = ndimage.grey_closing(o, size=(s, s), mode="reflect")
        total = float(bg.sum() - o.sum())
        if previous is not None and total <= PLATEAU * removed + 1e-3:
            return bg, s
        previous, removed = bg, total
    return previous, sizes[-1]


def _resample(bg: np.ndarray, shape: tuple[int, int], corner: tuple[int, int], k: int, k0: int) -> np.ndarray:
    """The coarse background (made at ``k0``) at the pixels of a part of the image (corner in
    full-scale pixels) box-averaged ``k`` times: bilinear, separable."""
    def coords(n: int, start: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = ((start + (np.arange(n) + 0.5) * k) / k0 - 0.5).clip(0, size - 1)
        i0 = np.minimum(x.astype(np.int64), size - 1)
        i1 = np.minimum(i0 + 1, size - 1)
        return i0, i1, (x - i0).astype(np.float32)
    if k == k0 and corner[0] % k0 == 0 and corner[1] % k0 == 0:
        r0, c0 = corner[0] // k0, corner[1] // k0
        part = bg[r0:r0 + shape[0], c0:c0 + shape[1]]
        if part.shape == shape:
            return part
    r0, r1, rw = coords(shape[0], corner[0], bg.shape[0])
    c0, c1, cw = coords(shape[1], corner[1], bg.shape[1])
    rows = bg[r0] * (1 - rw)[:, None] + bg[r1] * rw[:, None]  # (h, cw)
    return rows[:, c0] * (1 - cw) + rows[:, c1] * cw


def box_average(grey: np.ndarray, k: int, blank: float | None = None) -> np.ndarray:
    """Float grey (h, w) → the means of its k x k blocks, (ceil(h/k), ceil(w/k)); blocks past the
    edge are filled with ``blank`` (None: the edge's own pixels, repeated)."""
    h, w = grey.shape
    rows, cols = -(-h // k), -(-w // k)
    if blank is None and (rows * k != h or cols * k != w):
        padded = np.pad(grey, ((0, rows * k - h), (0, cols * k - w)), mode="edge").astype(np.float32, copy=False)
    elif rows * k != h or cols * k != w:
        padded = np.full((rows * k, cols * k), blank, np.float32)
        padded[:h, :w] = grey
    else:
        padded = grey.astype(np.float32, copy=False)
    # k whole-array additions per axis: several times faster than a mean over a (rows, k, cols, k) view
    band = padded[0::k].copy()  # (rows, cols * k): the k rows of each block, added up
    for i in range(1, k):
        band += padded[i::k]
    block = band[:, 0::k].copy()  # (rows, cols)
    for j in range(1, k):
        block += band[:, j::k]
    return block * (1.0 / (k * k))


def paper_noise(dk: np.ndarray) -> tuple[float, float]:
    """The paper's darkness and its noise (a robust standard deviation, 1.4826 x the median
    absolute deviation) in a whole image's darkness map, from a sample of its paper pixels."""
    sample = dk.ravel()[::max(1, dk.size // 4096)]
    sample = sample[sample < 0.5 * float(dk.max())]
    if sample.size == 0:
        return 0.0, 0.0
    p0 = float(np.median(sample))
    return p0, 1.4826 * float(np.median(np.abs(sample - p0)))


def ink_of(dk: np.ndarray, level: float, noise: tuple[float, float] | None = None) -> np.ndarray:
    """Darkness → ink in [0, 1]: 0 for the paper (and its noise: ``paper_noise``, of ``dk``
    itself unless given), 1 for the strongest ink."""
    p0, sigma = paper_noise(dk) if noise is None else noise
    contrast = float(dk.max()) - p0
    if contrast < MIN_CONTRAST:
        raise NoDigitError(
            f"no ink found: the image is paper of grey level {level:.2f} whose darkest marks are only "
            f"{max(contrast, 0.0):.2f} darker than the paper around them (ink is at least {MIN_CONTRAST} darker)")
    ink = dk - p0
    ink *= 1.0 / contrast
    np.clip(ink, 0.0, 1.0, out=ink)
    ink[ink <= max(NOISE_CUT * sigma / contrast, 0.5 / 255.0)] = 0.0
    return ink


# ----- lines -------------------------------------------------------------------------------------
def remove_lines(ink: np.ndarray) -> tuple[np.ndarray, bool]:
    """Remove ruled lines and frames: (the ink without them, whether any were found).

    A line is a run of ink across at least ``LINE_LENGTH`` of the image, thinner than
    ``LINE_THICKNESS`` of the digit's typical stroke. Where the digit's strokes cross a line, the
    gap is closed again across it.
    """
    m = ink > LINE_INK
    h, w = m.shape
    found = False
    horizontal = _runs(m, 1, LINE_LENGTH * w) if w >= MIN_LINE else np.zeros_like(m)
    vertical = _runs(m, 0, LINE_LENGTH * h) if h >= MIN_LINE else np.zeros_like(m)
    if not (horizontal.any() or vertical.any()):
        return ink, False
    core = ink > LINE_CORE
    near = ndimage.maximum_filter((horizontal | vertical).view(np.uint8), 5).astype(bool)
    rest = _without_specks(core & ~near)
    alone = rest.sum() < 0.15 * core.sum()  # nothing but straight runs: a 1, or rules, or a box
    width = _mean_width(core if alone else rest)
    thin = {0: max(1, int(LINE_THICKNESS * width)), 1: max(1, int(LINE_THICKNESS * width))}
    rules = (alone and ndimage.label(horizontal, structure=np.ones((3, 3), bool))[1] >= 2
             and _mean_width(horizontal) <= RULE_WIDTH * h)  # thin rules, not a thick digit's bars
    if rules:  # parallel horizontal runs and next to nothing else: ruled paper
        thin[1] = max(h, w)
    frame = _frame_sides(horizontal, vertical)
    out = ink
    for axis, runs in ((1, horizontal), (0, vertical)):
        if not runs.any():
            continue
        across = 1 - axis
        # where the ink is as thick across as the digit's strokes (with their fringes), it is a stroke
        thick = _runs(core, across, thin[axis] + 1).view(np.uint8)
        thick = ndimage.maximum_filter1d(thick, 5, axis=across).astype(bool) & ~frame
        # a run mostly that thick is a stroke (the bar of a 7); one mostly thinner is a line, cut
        # where it is thin (a digit's stroke crossing it stays), and so are the sides of a box
        labels, n = ndimage.label(runs, structure=np.ones((3, 3), bool))
        share = np.asarray(ndimage.mean(thick, labels, np.arange(1, n + 1)))
        thin_runs = np.concatenate([[False], share < 0.5])[labels]
        line = (thin_runs & ~thick) | (frame & runs)
        if not line.any():
            continue
        found = True
        cut = ndimage.maximum_filter1d(line.view(np.uint8), 3, axis=across).astype(bool) & ~thick
        kept = np.where(cut, 0.0, out).astype(np.float32)
        reach = int(_mean_width(line)) + 4
        closed = ndimage.grey_closing(kept, size=(reach, 1) if axis == 1 else (1, reach))
        out = np.where(cut, closed, kept).astype(np.float32)  # a stroke crossing the line, joined again
    if found and alone and not (rules or frame.any()) and (out > LINE_INK).sum() < 0.1 * m.sum():
        return ink, False  # a lone straight stroke is the digit: a 1
    return out, found


def _mean_width(mask: np.ndarray) -> float:
    """A mask's mean stroke width, cheaply: twice its area over its perimeter (edge pixels)."""
    edge = mask & ~ndimage.minimum_filter(mask.view(np.uint8), 3, mode="constant", cval=0).astype(bool)
    return 2.0 * float(mask.sum()) / max(float(edge.sum()), 1.0)


def _frame_sides(horizontal: np.ndarray, vertical: np.ndarray) -> np.ndarray:
    """The runs that are the sides of a printed box: runs lying along at least three of the
    image's four sides (within ``FRAME_BAND`` of them), whatever their thickness."""
    h, w = horizontal.shape
    band_h, band_w = max(2, int(FRAME_BAND * h)), max(2, int(FRAME_BAND * w))
    sides = []
    for runs, part in ((horizontal, np.s_[:band_h]), (horizontal, np.s_[h - band_h:]),
                       (vertical, np.s_[:, :band_w]), (vertical, np.s_[:, w - band_w:])):
        side = np.zeros_like(runs)
        side[part] = runs[part]
        sides.append(side)
    framed = [side for side in sides if side.any()]
    if len(framed) < 3:
        return np.zeros_like(horizontal)
    return np.logical_or.reduce(framed)


def _without_specks(mask: np.ndarray, share: float = 0.02) -> np.ndarray:
    """The mask without its 8-connected bits smaller than ``share`` of it all."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= share * sizes[1:].sum()
    keep[0] = False
    return keep[labels]


def _runs(mask: np.ndarray, axis: int, length: float) -> np.ndarray:
    """The pixels of ``mask`` in straight runs at least ``length`` long along ``axis``: an opening
    with a line (minimum then maximum filters, each O(n) whatever the length)."""
    n = int(np.ceil(length)) | 1  # odd: a symmetric line, its own reflection
    if n <= 1:
        return mask.copy()
    eroded = ndimage.minimum_filter1d(mask.view(np.uint8), n, axis=axis, mode="constant", cval=0)
    return ndimage.maximum_filter1d(eroded, n, axis=axis, mode="constant", cval=0).astype(bool)


# ----- strokes -----------------------------------------------------------------------------------
def stroke_width(mask: np.ndarray) -> float:
    """The typical stroke width of a binary mask: twice the median of its distance transform's
    ridge (the pixels at least as far from the edge as their 8 neighbours)."""
    d = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]  # past the edge: no ink
    ridge = d[(d >= ndimage.maximum_filter(d, 3)) & mask]
    return 2.0 * float(np.median(ridge)) if ridge.size else 0.0


def normalise_strokes(ink: np.ndarray) -> np.ndarray:
    """The digit's ink (h, w) with its strokes moved into MNIST's width range, if outside it.

    The width is measured on ink > 0.5 against the longer side of the digit's box; a small digit
    is enlarged (linear) to ``STROKE_WORK`` pixels first, so that the change is not a whole pixel.
    """
    ink = np.pad(ink, 1)  # the distances below end at the window's edge
    mask = ink > 0.5
    rows, cols = np.flatnonzero((ink > LINE_INK).any(axis=1)), np.flatnonzero((ink > LINE_INK).any(axis=0))
    if not mask.any() or rows.size == 0:
        return ink
    side = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    zoom = STROKE_WORK / side if side < STROKE_WORK else 1.0
    given = ink
    if zoom > 1:
        ink = np.clip(ndimage.zoom(ink, zoom, order=1), 0.0, 1.0)
        mask, side = ink > 0.5, side * zoom
    width = stroke_width(mask) if mask.any() else 0.0
    low, high = STROKE_RANGE
    if low * side <= width <= high * side or width == 0.0:
        return given
    if width < low * side:  # faint parts of a thin stroke belong to it too
        mask = ink > THIN_INK
    d_in = ndimage.distance_transform_edt(mask)
    d_out = ndimage.distance_transform_edt(~mask)
    signed = (d_in - d_out).astype(np.float32)
    thin_target, thick_target = STROKE_TARGET
    if width > high * side:  # a thick pen: each stroke's edge moves in by a share of its own half-width
        ratio = thick_target * side / width
        reach = 2 * int(np.ceil(ratio * width / 2)) + 1  # enough to find the ridge from the new edge
        local = ndimage.grey_dilation(d_in, size=(reach, reach)).astype(np.float32)
        out = np.clip(signed - (1 - ratio) * local + 0.5, 0.0, 1.0)
        ridge = (d_in >= ndimage.maximum_filter(d_in, 3)) & mask  # the strokes' middles stay: no breaks
        out[ridge] = 1.0
    else:                    # a thin pen: every edge moves out by the same amount
        out = np.maximum(np.clip(signed + (thin_target * side - width) / 2 + 0.5, 0.0, 1.0), ink)
    return out.astype(np.float32)
