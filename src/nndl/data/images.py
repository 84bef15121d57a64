"""Outside images → MNIST form: the preprocessing that lets the network read real handwriting.

MNIST's digits were made from scanned NIST forms like this (LeCun et al.): each digit was
size-normalised to fit a 20x20 box keeping its aspect ratio (anti-aliased, hence the grey levels),
then pasted into a 28x28 field so that its centre of mass sits at the centre. A network trained on
MNIST only works on an outside image put through the same steps, so ``preprocess`` does them:

    load (PNG/JPEG/..., Pillow) → grey → orient (MNIST is white ink, 1.0, on black, 0.0: dark ink
    on light paper is inverted) → remove the paper's grey level and specks → crop to the ink's
    bounding box → scale to fit 20x20 (anti-aliased) → paste into 28x28 with the centre of mass
    at the centre, (14, 14) in pixel indices as in MNIST itself, by a whole-pixel shift as MNIST
    did (its centres of mass lie within ±0.5 pixel of 14) → float32 (784,) in [0, 1].

A blank or near-blank image raises ``NoDigitError`` instead of handing the network noise to guess
at. Reading the file (and refusing bad or oversized ones) is ``nndl.data.imagefile``'s job; its
errors and ``read_image`` / ``to_png`` are importable from here too.

Speed (the web app runs this for every request): 8-bit images stay bytes until the inked window
is found, and the floats are made for that window only; a drawing many times larger than the
20x20 box (a 280-pixel canvas) is box-averaged down before the speck search (``digit_ink``).

Limits: one digit per image (``nndl.segment`` reads several); the paper is taken to be the most
common grey level (the median), so an image more than half covered by ink is misread; uneven
lighting in photos is not corrected. Needs Pillow: ``pip install 'nndl[images]'``.
"""
from __future__ import annotations

from typing import Any, Iterable, NamedTuple

import numpy as np
from scipy import ndimage

from ..errors import NNDLError
from .imagefile import (
    GREY_LEVELS,
    MAX_SIDE,
    SIDE,
    ImageFormatError,
    ImageSource,
    ImageTooLargeError,
    pil_image,
    read_grey,
    read_image,
    to_png,
)

BOX = 20            # the digit is scaled to fit a BOX x BOX square inside the field
CENTRE = 14.0       # MNIST's mean centre of mass, in pixel indices (measured: 13.99, 14.01)
MIN_CONTRAST = 0.2  # ink must differ from the paper by this much (of the full 0..1 range)
MIN_INK = 4.0       # ... and amount to at least this many fully inked pixels
SPECK_FRACTION = 0.03  # bits of ink holding less than this share of all the ink ...
SPECK_MARGIN = 0.1     # ... and further than this (of the digit's size) from its box are specks
BOX_THRESHOLD = 0.1  # ink fainter than this is left out when finding the digit's bounding box
REDUCING_GAP = 3     # a large drawing is box-averaged down to no fewer than this many times BOX pixels

# ImageFormatError, ImageTooLargeError, read_image and to_png are re-exported from imagefile for the
# callers that take everything about outside images from here (nndl.web.server).
__all__ = [
    "BOX", "BOX_THRESHOLD", "CENTRE", "MAX_SIDE", "MIN_CONTRAST", "MIN_INK", "REDUCING_GAP", "SIDE",
    "SPECK_FRACTION", "SPECK_MARGIN", "ImageFormatError", "ImageTooLargeError", "NoDigitError",
    "centre_digit", "centre_of_mass", "digit_ink", "ink_bbox", "ink_map", "ink_window", "preprocess",
    "preprocess_many", "read_image", "to_png",
]


class NoDigitError(NNDLError, ValueError):
    """The image is blank or nearly so: there is no digit to read."""


# ----- grey levels → ink -------------------------------------------------------------------------
def ink_map(grey: np.ndarray) -> np.ndarray:
    """The ink of a grey image, MNIST-style: float32 (h, w), 0 on the paper, 1 on the darkest ink.

    ``grey`` holds floats in [0, 1] or uint8 levels (as ``read_grey`` gives). The paper is the
    median grey level; if it is light the image is inverted (dark ink on light paper becomes
    MNIST's white on black). The paper's level maps to 0 and the strongest ink to 1; grey levels
    within the paper's noise become 0, and specks (small bits of ink away from the main strokes)
    are removed. Raises ``NoDigitError`` when there is (almost) no ink.
    """
    ink, (y0, x0) = ink_window(grey)
    out = np.zeros(np.shape(grey), np.float32)  # (h, w)
    out[y0:y0 + ink.shape[0], x0:x0 + ink.shape[1]] = ink
    return out


def ink_window(grey: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``ink_map`` cut to the rectangle holding all the ink: (ink (h', w'), (row, col) of its corner).

    The ink map is zero outside that rectangle, so past the grey-level statistics the work (and,
    for uint8 input, the conversion to floats) is spent on the inked part only.
    """
    window, paper, corner = _inked_part(grey)
    return _ink(window, paper), corner


def digit_ink(grey: np.ndarray) -> np.ndarray:
    """The ink of a one-digit image for ``centre_digit``: ``ink_window``'s, made at a coarser scale
    when the digit spans many more pixels than its 20x20 box in MNIST form can use.

    A 280-pixel drawing is shrunk ten times in the end; working on all its pixels (the speck
    search above all) would cost ten times more than needed. So a window wider or taller than
    ``2 * REDUCING_GAP * BOX`` pixels is first box-averaged down by the whole factor that keeps at
    least ``REDUCING_GAP * BOX`` pixels, and the final resampling then shrinks it by at least
    ``REDUCING_GAP``: Pillow's ``reducing_gap`` recipe, which it finds indistinguishable from a
    single fair resampling from 3 up. If specks far from the digit widened the window (the digit
    itself ends up under ``REDUCING_GAP * BOX`` pixels), the ink is made at full scale instead.
    """
    window, paper, _ = _inked_part(grey)  # (h', w')
    k = max(window.shape) // (REDUCING_GAP * BOX)
    if k >= 2:
        blank = 1.0 if paper.dark_on_light else 0.0  # the paper's own level: no ink
        ink = _ink(_box_average(_as_levels(window), k, blank), paper, pixel_area=k * k)
        if _longer_side(ink > BOX_THRESHOLD) >= REDUCING_GAP * BOX:
            return ink
    return _ink(window, paper)


def _inked_part(grey: np.ndarray) -> tuple[np.ndarray, "_Paper", tuple[int, int]]:
    """The paper of a whole grey image (uint8 or float), the window of it holding the ink, and the
    (row, col) of the window's corner."""
    grey = np.asarray(grey)
    if grey.dtype != np.uint8:
        grey = grey.astype(np.float32, copy=False)
    paper = _paper(grey)
    rows, cols = _inked_window(grey, paper)
    return grey[rows, cols], paper, (rows.start, cols.start)


def _as_levels(grey: np.ndarray) -> np.ndarray:
    """Grey as float32 in [0, 1] (uint8 levels / 255, the same numbers as ``GREY_LEVELS[grey]``)."""
    return grey.astype(np.float32) / 255.0 if grey.dtype == np.uint8 else grey


def _inked_window(grey: np.ndarray, paper: "_Paper") -> tuple[slice, slice]:
    """(rows, cols) of the smallest rectangle holding every pixel with ink (before speck removal)."""
    if grey.dtype == np.uint8:
        # The ink falls as the level moves towards the paper's, so the inked levels are one run
        # ending at the darkest (or lightest) level: one comparison of bytes finds the inked pixels.
        inked_levels = np.flatnonzero(_grey_to_ink(GREY_LEVELS, paper))  # of the 256
        if inked_levels.size == 0:
            _too_little_ink(0.0)
        # (a Python int, not NumPy's int64, so that the bytes are compared as bytes, not widened)
        inked = grey <= int(inked_levels[-1]) if paper.dark_on_light else grey >= int(inked_levels[0])  # (h, w)
    else:
        inked = _grey_to_ink(grey, paper) > 0  # (h, w)
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        _too_little_ink(0.0)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _ink(grey: np.ndarray, paper: "_Paper", pixel_area: float = 1.0) -> np.ndarray:
    """Grey levels (uint8 or float32, any window) → the ink, specks removed; ``NoDigitError`` if
    there is too little of it (counted in original pixels: each of these covers ``pixel_area``)."""
    ink = _remove_specks(_grey_to_ink(_as_levels(grey), paper))
    amount = float(ink.sum()) * pixel_area
    if amount < MIN_INK:
        _too_little_ink(amount)
    return ink


def _box_average(grey: np.ndarray, k: int, blank: float) -> np.ndarray:
    """Float grey (h, w) → the means of its k x k blocks, (ceil(h/k), ceil(w/k)); blocks past the
    edge are filled with ``blank``."""
    h, w = grey.shape
    rows, cols = -(-h // k), -(-w // k)
    padded = np.full((rows * k, cols * k), blank, np.float32)
    padded[:h, :w] = grey
    # k whole-array additions per axis: several times faster than a mean over a (rows, k, cols, k) view
    band = padded[0::k].copy()  # (rows, cols * k): the k rows of each block, added up
    for i in range(1, k):
        band += padded[i::k]
    block = band[:, 0::k].copy()  # (rows, cols)
    for j in range(1, k):
        block += band[:, j::k]
    return block * (1.0 / (k * k))


def _longer_side(mask: np.ndarray) -> int:
    """The longer side of the bounding box of a mask's True pixels (0 when there are none)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(max(rows[-1] - rows[0], cols[-1] - cols[0])) + 1 if rows.size else 0


class _Paper(NamedTuple):
    """What the grey levels of a whole image say about its paper."""
    dark_on_light: bool  # dark ink on light paper: invert
    level: float         # the paper's level once the ink is bright (0 for a clean page)
    contrast: float      # the strongest ink's level minus the paper's
    cut: float           # ink at or below this (the paper's noise, of the contrast) counts as paper


def _paper(grey: np.ndarray) -> _Paper:
    """The paper's level, the ink's contrast and the noise, from a sample of ``grey``'s pixels.

    The paper is the median level; its noise (grain, JPEG artefacts) is a robust standard
    deviation, 1.4826 x the median absolute deviation, which ignores the ink as long as the
    paper is most of the image. Raises ``NoDigitError`` when the contrast is too low.
    """
    sample = _sample(grey)  # the statistics of a large image: a sample suffices
    if grey.dtype == np.uint8:  # a histogram of the 256 levels gives np.median's answers, faster
        counts = np.bincount(sample, minlength=256)  # (256,)
        levels = GREY_LEVELS

        def median(values: np.ndarray) -> float:
            return _median_of_counts(values, counts)
        darkest, lightest = GREY_LEVELS[grey.min()], GREY_LEVELS[grey.max()]
    else:
        levels = sample

        def median(values: np.ndarray) -> float:
            return float(np.median(values))
        darkest, lightest = grey.min(), grey.max()
    paper = median(levels)
    dark_on_light = paper > 0.5
    strongest = float(1.0 - darkest if dark_on_light else lightest)  # the ink's extreme
    paper = min(paper, 1.0 - paper)
    contrast = strongest - paper
    if contrast < MIN_CONTRAST:
        raise NoDigitError(
            f"the image looks blank: its darkest and lightest parts differ by {max(contrast, 0.0):.2f} of the "
            f"full range, less than {MIN_CONTRAST}; write the digit in dark ink on light paper (or light on dark)")
    oriented = 1.0 - levels if dark_on_light else levels
    noise = 1.4826 * median(np.abs(oriented - paper)) / contrast
    return _Paper(dark_on_light, paper, contrast, max(3.0 * noise, 0.5 / 255.0))


def _median_of_counts(values: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of the sample holding ``counts[i]`` copies of ``values[i]`` (float32)."""
    order = np.argsort(values, kind="stable")
    position = np.cumsum(counts[order])  # sample values up to each sorted value
    n = int(position[-1])
    low, high = values[order][np.searchsorted(position, [(n - 1) // 2, n // 2], side="right")]
    return float((low + high) / 2)  # the middle value, or the mean of the middle two (in float32, as np.median)


def _grey_to_ink(grey: np.ndarray, paper: _Paper) -> np.ndarray:
    """Grey levels (float32, any shape) → ink: bright, 0 for the paper and 1 for the strongest
    ink, levels within the paper's noise set to 0."""
    a = 1.0 - grey if paper.dark_on_light else grey.copy()
    a -= paper.level
    a *= 1.0 / paper.contrast
    np.clip(a, 0.0, 1.0, out=a)
    a[a <= paper.cut] = 0.0
    return a


def _too_little_ink(amount: float) -> None:
    raise NoDigitError(
        f"the image looks blank: it holds only {amount:.1f} pixels' worth of ink, fewer than "
        f"{MIN_INK:g}; write the digit larger or with a thicker pen")


def _sample(a: np.ndarray, size: int = 4096) -> np.ndarray:
    """About ``size`` evenly spaced pixels of an image, flat: its levels (the paper's grey, the
    noise) without a full sort of a 2,000 x 2,000 photo."""
    flat = a.ravel()
    return flat[::max(1, flat.size // size)]


def _remove_specks(a: np.ndarray) -> np.ndarray:
    """Drop small bits of ink (under SPECK_FRACTION of all the ink) lying away from the digit.

    Small bits near the digit's main strokes stay: they are usually a broken thin stroke.
    """
    labels, n = ndimage.label(a > 0, structure=np.ones((3, 3), bool))  # 8-connected bits of ink
    if n <= 1:
        return a
    mass = ndimage.sum_labels(a, labels, index=np.arange(1, n + 1))  # (n,)
    boxes = ndimage.find_objects(labels)
    big = mass >= min(SPECK_FRACTION * mass.sum(), mass.max())  # at least the largest bit is the digit
    y0 = min(boxes[i][0].start for i in np.flatnonzero(big))
    y1 = max(boxes[i][0].stop for i in np.flatnonzero(big))
    x0 = min(boxes[i][1].start for i in np.flatnonzero(big))
    x1 = max(boxes[i][1].stop for i in np.flatnonzero(big))
    margin = SPECK_MARGIN * max(y1 - y0, x1 - x0)
    near = np.array([b[0].start < y1 + margin and b[0].stop > y0 - margin
                     and b[1].start < x1 + margin and b[1].stop > x0 - margin for b in boxes])
    keep = np.concatenate([[False], big | near])
    return np.where(keep[labels], a, 0.0).astype(np.float32)


# ----- ink → MNIST form --------------------------------------------------------------------------
def ink_bbox(a: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the nonzero pixels, ends exclusive; raises NoDigitError if there are none."""
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    if rows.size == 0:
        raise NoDigitError("the image holds no ink")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of mass of a non-negative image (h, w), in pixel indices.

    The same as ``scipy.ndimage.center_of_mass``, in two small sums (it runs once per candidate
    piece when reading numbers).
    """
    total = float(a.sum())
    rows, cols = a.sum(axis=1), a.sum(axis=0)  # (h,), (w,)
    return float(rows @ np.arange(a.shape[0])) / total, float(cols @ np.arange(a.shape[1])) / total


def centre_digit(ink: np.ndarray) -> np.ndarray:
    """An ink map (h, w) → MNIST form, float32 (784,): crop, fit 20x20, centre of mass at (14, 14)."""
    Image = pil_image()
    # The box ignores the faintest ink (blur halos, JPEG ringing) that would shrink the digit.
    x0, y0, x1, y1 = ink_bbox(ink > BOX_THRESHOLD)
    crop = np.ascontiguousarray(ink[y0:y1, x0:x1], dtype=np.float32)  # (h, w)
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL sizes are (width, height)
    if size != (w, h):
        # Pillow scales the filter's support with the factor, so shrinking is properly anti-aliased.
        small = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
        small = np.maximum(small, 0.0)  # a guard: ink is never negative
        small /= max(float(small.max()), 1e-12)  # strokes thinner than a pixel still reach full ink
    else:
        small = crop
    out = np.zeros((SIDE, SIDE), np.float32)
    cy, cx = centre_of_mass(small)
    hs, ws = small.shape
    # A whole-pixel shift, as in MNIST; clamped so that no ink leaves the field.
    oy = min(max(round(CENTRE - cy), 0), SIDE - hs)
    ox = min(max(round(CENTRE - cx), 0), SIDE - ws)
    out[oy:oy + hs, ox:ox + ws] = small
    return out.reshape(SIDE * SIDE)


def preprocess(source: ImageSource, *, max_side: int = MAX_SIDE, formats: Iterable[str] | None = None) -> np.ndarray:
    """An outside image of one digit → float32 (784,) in [0, 1], as MNIST's images were made."""
    return centre_digit(digit_ink(read_grey(source, max_side=max_side, formats=formats)))


def preprocess_many(sources: Iterable[ImageSource], **kwargs: Any) -> np.ndarray:
    """Several images → float32 (n, 784)."""
    rows = [preprocess(s, **kwargs) for s in sources]
    return np.stack(rows) if rows else np.zeros((0, SIDE * SIDE), np.float32)
