"""Outside images → MNIST form: the preprocessing that lets the network read real handwriting.

MNIST's digits were made from scanned NIST forms like this (LeCun et al.): each digit was
size-normalised to fit a 20x20 box keeping its aspect ratio (anti-aliased, hence the grey levels),
then pasted into a 28x28 field so that its centre of mass sits at the centre. A network trained on
MNIST only works on an outside image put through the same steps, so ``preprocess`` does them:

    load (PNG/JPEG/..., Pillow) → grey → the ink, from the paper (``nndl.data.paper``: orient
    it white on black as MNIST is, divide out the paper's background and lighting, remove ruled
    lines, frames and specks) → the pen's width into MNIST's range → crop to the ink's bounding
    box → scale to fit 20x20 (anti-aliased) → paste into 28x28 with the centre of mass at the
    centre, (14, 14) in pixel indices as in MNIST itself, by a whole-pixel shift as MNIST did
    (its centres of mass lie within ±0.5 pixel of 14) → float32 (784,) in [0, 1].

Photos and scans of real paper work: tight crops (ink touching the edges), shadows and lighting
gradients, ruled notebook paper, form boxes, thick and thin pens, small digits on a large page,
JPEG artefacts (``nndl.data.synthetic`` makes such photos from MNIST digits to measure this).
An image with no ink at all (one even grey, or only faint grain), a mere speck, or only straight
lines raises ``NoDigitError`` saying what was seen, instead of handing the network noise to guess
at. Reading the file (and refusing bad or oversized ones) is ``nndl.data.imagefile``'s job; its
errors and ``read_image`` / ``to_png`` are importable from here too.

Speed (the web app runs this for every request): the background is estimated on a copy of at
most about 128 pixels a side, and a drawing many times larger than the 20x20 box (a 280-pixel
canvas) is read on a box-averaged copy (``digit_ink``), whose ink is where the float work is done.

Limits: one digit per image (``nndl.segment`` reads several); a shadow or dark region no wider
than the pen's strokes is taken for ink; a ruled line as thick as the digit's strokes is kept.
Needs Pillow: the ``images`` extra (``pip install -e '.[images]'`` in the checkout).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from scipy import ndimage

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
from .paper import (
    MIN_CONTRAST,
    NoDigitError,
    Paper,
    analyse,
    box_average,
    ink_of,
    normalise_strokes,
    paper_noise,
    remove_lines,
)

BOX = 20            # the digit is scaled to fit a BOX x BOX square inside the field
CENTRE = 14.0       # MNIST's mean centre of mass, in pixel indices (measured: 13.99, 14.01)
MIN_INK = 4.0       # ink must amount to at least this many fully inked pixels
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


# ----- grey levels → ink -------------------------------------------------------------------------
def ink_map(grey: np.ndarray) -> np.ndarray:
    """The ink of a grey image, MNIST-style: float32 (h, w), 0 on the paper, 1 on the darkest ink.

    ``grey`` holds floats in [0, 1] or uint8 levels (as ``read_grey`` gives). Dark ink on light
    paper is inverted to MNIST's white on black; the paper's background and lighting are divided
    out (``nndl.data.paper``), so its level maps to 0 and the strongest ink to 1; grey levels
    within the paper's noise become 0, and ruled lines, frames and specks (small bits of ink away
    from the main strokes) are removed. Raises ``NoDigitError`` when there is (almost) no ink.
    """
    ink, (y0, x0) = ink_window(grey)
    out = np.zeros(np.shape(grey), np.float32)  # (h, w)
    out[y0:y0 + ink.shape[0], x0:x0 + ink.shape[1]] = ink
    return out


def ink_window(grey: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``ink_map`` cut to the rectangle holding all the ink: (ink (h', w'), (row, col) of its corner).

    The ink map is zero outside that rectangle, so past the paper's analysis the work is spent
    on the inked part only.
    """
    g, paper = _analysed(grey)
    rows, cols, noise = _inked_window(g, paper)
    ink = _ink(g, paper, rows, cols, 1, noise)
    return ink, (rows.start, cols.start)


def digit_ink(grey: np.ndarray) -> np.ndarray:
    """The ink of a one-digit image for ``centre_digit``: ``ink_window``'s, made at a coarser scale
    when the digit spans many more pixels than its 20x20 box in MNIST form can use.

    A 280-pixel drawing is shrunk ten times in the end; working on all its pixels (the speck
    search above all) would cost ten times more than needed. So a window wider or taller than
    ``2 * REDUCING_GAP * BOX`` pixels is first box-averaged down by the whole factor that keeps at
    least ``REDUCING_GAP * BOX`` pixels, and the final resampling then shrinks it by at least
    ``REDUCING_GAP``: Pillow's ``reducing_gap`` recipe, which it finds indistinguishable from a
    single fair resampling from 3 up. If lines or specks far from the digit widened the window
    (the digit itself ends up under ``REDUCING_GAP * BOX`` pixels), the ink is made again on the
    digit's own box, at the scale that box allows.
    """
    g, paper = _analysed(grey)
    rows, cols, noise = _inked_window(g, paper)
    for _ in range(3):
        k = max(rows.stop - rows.start, cols.stop - cols.start) // (REDUCING_GAP * BOX)
        if k < 2:
            break
        ink = _ink(g, paper, rows, cols, k, noise)
        inked = ink > BOX_THRESHOLD
        if _longer_side(inked) >= REDUCING_GAP * BOX:
            return ink
        if not inked.any():        # faint ink averaged away at this scale: look at full scale
            break
        # the digit's own box, in full-scale pixels, a coarse pixel wider on each side
        rows = _grown(rows.start, np.flatnonzero(inked.any(axis=1)), k, g.shape[0])
        cols = _grown(cols.start, np.flatnonzero(inked.any(axis=0)), k, g.shape[1])
    return _ink(g, paper, rows, cols, 1, noise)


def _grown(start: int, inked: np.ndarray, k: int, n: int) -> slice:
    """The full-scale span of the inked rows (or columns) of a part box-averaged k times from
    ``start``, a coarse pixel wider on each side."""
    return slice(max(start + (int(inked[0]) - 1) * k, 0), min(start + (int(inked[-1]) + 2) * k, n))


def _longer_side(mask: np.ndarray) -> int:
    """The longer side of the bounding box of a mask's True pixels (0 when there are none)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(max(rows[-1] - rows[0], cols[-1] - cols[0])) + 1 if rows.size else 0


def _analysed(grey: np.ndarray) -> tuple[np.ndarray, Paper]:
    """Grey levels as float32 (h, w) in [0, 1], and what they say about the paper."""
    grey = np.asarray(grey)
    g = GREY_LEVELS[grey] if grey.dtype == np.uint8 else grey.astype(np.float32, copy=False)
    return g, analyse(g)


def _inked_window(g: np.ndarray, paper: Paper) -> tuple[slice, slice, tuple[float, float]]:
    """(rows, cols) of the smallest rectangle holding all the ink (before lines and specks are
    removed), found at full scale so that a thin faint stroke is not averaged away, and the
    paper's darkness and noise there (``paper_noise``)."""
    dk = paper.darkness(paper.orient(g), (0, 0), 1)
    noise = paper_noise(dk)
    ink = ink_of(dk, paper.level, noise)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        _too_little_ink(0.0)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1), noise


def _ink(g: np.ndarray, paper: Paper, rows: slice, cols: slice, k: int, noise: tuple[float, float]) -> np.ndarray:
    """The ink of the part [rows, cols] of the image, box-averaged ``k`` times: lines and specks
    removed; ``NoDigitError`` if too little is left (counted in full-scale pixels)."""
    o = paper.orient(g[rows, cols])
    if k > 1:
        o = box_average(o, k, 1.0)  # blocks past the edge: paper
    p0, sigma = noise
    ink = ink_of(paper.darkness(o, (rows.start, cols.start), k), paper.level, (p0, sigma / k))  # less noise
    ink, lines = remove_lines(ink)
    ink = _remove_specks(ink)
    amount = float(ink.sum()) * k * k
    if amount < MIN_INK:
        if lines:
            raise NoDigitError("only straight lines found (ruled lines or a frame), no digit")
        _too_little_ink(amount)
    return ink


def _too_little_ink(amount: float) -> None:
    raise NoDigitError(
        f"no digit found: the only ink is a speck ({amount:.1f} pixels' worth, fewer than {MIN_INK:g})"
        if amount > 0 else "no ink found on the paper")


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
    return centre_digit(normalise_strokes(digit_ink(read_grey(source, max_side=max_side, formats=formats))))


def preprocess_many(sources: Iterable[ImageSource], **kwargs: Any) -> np.ndarray:
    """Several images → float32 (n, 784)."""
    rows = [preprocess(s, **kwargs) for s in sources]
    return np.stack(rows) if rows else np.zeros((0, SIDE * SIDE), np.float32)
