"""MNIST digits as real-world photos: the test sets that measure ``nndl.data.images.preprocess`` on
paper, and augmentation for training.

``photo(digit, condition, rng)`` draws one MNIST image (white ink on black) as a phone photo or a
scan of the same digit written on paper would look: dark ink on light paper, grey uint8 (h, w),
under one of ``DIGIT_CONDITIONS``:

- ``clean``: a margin around the digit, even light, a little grain and blur;
- ``tight-crop``: cut to the ink's bounding box (0-1 pixel margin): the ink touches the edges;
- ``thick-pen`` / ``thin-pen``: strokes 2-3x / 0.4-0.6x as wide as the MNIST digit's own;
- ``small``: the digit only 12-24 pixels tall on a 200-280 pixel canvas, with a pen as thick as
  a web canvas's 18-pixel brush is to a digit drawn small on it: strokes 0.25-0.4 of the digit's
  height (MNIST's are about 0.12);
- ``shadow``: a soft-edged shadow over one corner (a quarter disc) or one side, 35-60% darker;
- ``gradient``: the light falls off across the image, one side 40-60% darker;
- ``ruled``: notebook lines every 20-30% of the digit's height, some crossing it, sometimes a
  vertical margin line beside it;
- ``frame``: a printed box around the digit, a few pixels from it, as on a form;
- ``jpeg``: a clean photo saved as JPEG at quality 20-40.

``on_paper(ink, rng, ...)`` is the step they share: any ink map (white ink, floats in [0, 1], any
size) laid on paper with the chosen lighting and printed lines, so that other marks (numbers,
non-digits) can be photographed the same way.

How: the 28x28 digit is enlarged twice (``scipy.ndimage.zoom``, linear), its signed distance to
the stroke edge (``distance_transform_edt`` inside and out) sets the pen's width, which is
changed by moving the edge relative to each stroke's own half-width; the result is enlarged again
to 3-5 pixels per MNIST pixel. Paper and ink greys (170-250 and 10-90), position, margins, grain
and blur vary with ``rng``: the same generator state gives the same photo. About a millisecond
per photo. Pillow is used for the JPEG condition only.
"""
from __future__ import annotations

import io

import numpy as np
from scipy import ndimage

DIGIT_CONDITIONS = ("clean", "tight-crop", "thick-pen", "thin-pen", "small", "shadow", "gradient", "ruled",
                    "frame", "jpeg")
WORK = 2  # the digit's pen is changed at twice MNIST's size, then enlarged to the photo's scale

__all__ = ["DIGIT_CONDITIONS", "on_paper", "photo"]


def photo(digit: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit ((784,) or (28, 28), white ink in [0, 1]) as a grey uint8 photo (h, w) of it
    written in dark ink on light paper under ``condition`` (one of ``DIGIT_CONDITIONS``)."""
    if condition not in DIGIT_CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {', '.join(DIGIT_CONDITIONS)}")
    d = np.asarray(digit, dtype=np.float32).reshape(28, 28)
    if condition == "small":
        return _small(d, rng)
    scale = rng.uniform(3.0, 5.0)  # photo pixels per MNIST pixel
    pen = {"thick-pen": rng.uniform(2.0, 3.0), "thin-pen": rng.uniform(0.4, 0.6)}.get(condition, 1.0)
    ink = _drawn(d, scale, lambda hw: pen * hw)
    box = _bbox(ink > 0.25)
    if condition == "tight-crop":
        m = int(rng.integers(0, 2))
        y0, x0, y1, x1 = box
        ink = ink[max(y0 - m, 0):y1 + m, max(x0 - m, 0):x1 + m]
    else:
        ink = _with_margins(ink, box, rng)
    grey = on_paper(ink, rng, shadow=condition == "shadow", gradient=condition == "gradient",
                    ruled=condition == "ruled", frame=condition == "frame")
    if condition == "jpeg":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(grey).save(buf, format="JPEG", quality=int(rng.integers(20, 41)))
        grey = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    return grey


def on_paper(ink: np.ndarray, rng: np.random.Generator, *, shadow: bool = False, gradient: bool = False,
             ruled: bool = False, frame: bool = False) -> np.ndarray:
    """An ink map (h, w) of floats in [0, 1], white ink, as a grey uint8 photo of it on paper.

    The paper is 170-250 grey, the ink 10-90. ``frame`` prints a box a few pixels around the ink
    (the image grows where the box needs room), ``ruled`` adds notebook lines every 20-30% of the
    ink's height (and, half the time, a vertical margin line left of it); ``shadow`` darkens a
    corner or a side by 35-60% with a soft edge, ``gradient`` one side of the image by 40-60%.
    Then grain and a slight blur, as a phone camera gives.
    """
    ink = np.asarray(ink, dtype=np.float32)
    box = _bbox(ink > 0.25) if (ink > 0.25).any() else (0, 0, ink.shape[0], ink.shape[1])
    printed = np.zeros_like(ink)  # lines printed on the paper (lighter than the pen, or not)
    if frame:
        ink, printed, box = _frame(ink, box, rng)
    h, w = ink.shape
    paper = rng.uniform(170.0, 250.0)
    pen = rng.uniform(10.0, 90.0)
    reflect = paper - (paper - pen) * ink  # (h, w)
    if ruled:
        printed = np.maximum(printed, _ruled(h, w, box, rng))
        line_grey = paper * rng.uniform(0.55, 0.8)
        reflect = np.minimum(reflect, paper - (paper - line_grey) * printed)
    elif frame:
        frame_grey = rng.uniform(30.0, 110.0)
        reflect = np.minimum(reflect, paper - (paper - frame_grey) * printed)
    light = np.ones((h, w), np.float32)
    if shadow:
        light *= 1.0 - rng.uniform(0.35, 0.6) * _shadow(h, w, rng)
    if gradient:
        light *= 1.0 - rng.uniform(0.4, 0.6) * _ramp(h, w, rng)
    grey = reflect * light + rng.normal(0.0, rng.uniform(1.0, 4.0), (h, w)).astype(np.float32)
    grey = ndimage.gaussian_filter(grey, rng.uniform(0.4, 0.8))
    return np.clip(np.round(grey), 0, 255).astype(np.uint8)


# ----- the digit's ink ---------------------------------------------------------------------------
def _drawn(d: np.ndarray, scale: float, halfwidth, blur: float = 0.0) -> np.ndarray:
    """The digit's ink at ``scale`` photo pixels per MNIST pixel, each stroke's half-width ``hw``
    (in work pixels) changed to ``halfwidth(hw)``: float32 (about 28 * scale a side)."""
    u = ndimage.zoom(d, WORK, order=1)  # (56, 56)
    inside = u > 0.5
    if not inside.any():
        return ndimage.zoom(u, scale / WORK, order=1)
    d_in = ndimage.distance_transform_edt(inside)
    d_out = ndimage.distance_transform_edt(~inside)
    sd = (d_in - d_out).astype(np.float32)  # signed distance to the stroke's edge, + inside
    ridge = d_in[(d_in >= ndimage.maximum_filter(d_in, 3)) & inside]
    typical = float(np.median(ridge))  # a stroke's half-width (about 2.5 work pixels for MNIST)
    local = np.where(inside, ndimage.grey_dilation(d_in, size=(7, 7)), typical).astype(np.float32)
    new = halfwidth(local)
    u = np.clip(sd - (local - new) + 0.5, 0.0, 1.0)  # the edge moved to the new half-width
    if blur:
        u = ndimage.gaussian_filter(u, blur)
    return np.clip(ndimage.zoom(u, scale / WORK, order=1), 0.0, 1.0)


def _small(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit 12-24 pixels tall, strokes 0.25-0.4 of its height, on a 200-280 pixel canvas."""
    rows = np.flatnonzero((d > 0.25).any(axis=1))
    height = float(rows[-1] - rows[0] + 1) if rows.size else 20.0  # in MNIST pixels
    target = rng.uniform(12.0, 24.0)
    scale = target / height
    stroke = rng.uniform(0.25, 0.4) * target  # photo pixels
    half = stroke / 2 * WORK / scale          # ... as a half-width in work pixels
    ink = _drawn(d, scale, lambda hw: np.full_like(hw, half), blur=0.5 * WORK / scale)
    side = int(rng.integers(200, 281))
    canvas = np.zeros((side, int(rng.integers(200, 281))), np.float32)
    h, w = ink.shape
    y, x = int(rng.integers(0, canvas.shape[0] - h)), int(rng.integers(0, canvas.shape[1] - w))
    canvas[y:y + h, x:x + w] = ink
    return on_paper(canvas, rng)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) of a mask's True pixels, ends exclusive."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _with_margins(ink: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """The ink cut to its box, then given a margin of 15-60% of its size on each side (at random)."""
    y0, x0, y1, x1 = box
    size = max(y1 - y0, x1 - x0)
    top, bottom, left, right = (int(rng.uniform(0.15, 0.6) * size) for _ in range(4))
    return np.pad(ink[y0:y1, x0:x1], ((top, bottom), (left, right)))


# ----- paper, lines and light ----------------------------------------------------------------------
def _frame(ink: np.ndarray, box, rng: np.random.Generator):
    """A printed rectangle 3-8 pixels outside the ink's box, 1-3 pixels thick: (ink, frame, box),
    the image padded where the frame and a margin beyond it would not fit."""
    gap, thick, margin = int(rng.integers(3, 9)), int(rng.integers(1, 4)), int(rng.integers(4, 20))
    y0, x0, y1, x1 = box
    need = gap + thick + margin
    h, w = ink.shape
    pads = ((max(0, need - y0), max(0, need - (h - y1))), (max(0, need - x0), max(0, need - (w - x1))))
    ink = np.pad(ink, pads)
    y0, y1, x0, x1 = y0 + pads[0][0], y1 + pads[0][0], x0 + pads[1][0], x1 + pads[1][0]
    printed = np.zeros_like(ink)
    fy0, fx0, fy1, fx1 = y0 - gap - thick, x0 - gap - thick, y1 + gap + thick, x1 + gap + thick
    printed[fy0:fy1, fx0:fx1] = 1.0
    printed[fy0 + thick:fy1 - thick, fx0 + thick:fx1 - thick] = 0.0
    return ink, printed, (y0, x0, y1, x1)


def _ruled(h: int, w: int, box, rng: np.random.Generator) -> np.ndarray:
    """Horizontal lines 1-2 pixels thick (anti-aliased) every 20-30% of the ink's height across
    the page, and half the time a vertical margin line left of the ink: float32 (h, w)."""
    y0, x0, y1, x1 = box
    spacing = rng.uniform(0.2, 0.3) * (y1 - y0)
    thick = rng.uniform(1.0, 2.0)
    rows = np.arange(h, dtype=np.float32)[:, None]
    phase = (rows - rng.uniform(0, spacing)) % spacing  # distance past the last line
    dist = np.minimum(phase, spacing - phase)
    lines = np.clip(thick / 2 + 0.5 - dist, 0.0, 1.0)  # (h, 1)
    out = np.broadcast_to(lines, (h, w)).copy()
    if rng.random() < 0.5 and x0 >= 6:
        col = rng.uniform(2, x0 - 3)
        cols = np.arange(w, dtype=np.float32)[None, :]
        out = np.maximum(out, np.clip(thick / 2 + 0.5 - np.abs(cols - col), 0.0, 1.0))
    return out


def _shadow(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged shadow mask (h, w) in [0, 1]: a quarter disc on a corner, or one side's band."""
    size = max(h, w)
    soft = rng.uniform(0.03, 0.1) * size
    rows, cols = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    if rng.random() < 0.5:
        cy, cx = (0.0 if rng.random() < 0.5 else h - 1.0), (0.0 if rng.random() < 0.5 else w - 1.0)
        inside = rng.uniform(0.45, 0.85) * size - np.sqrt((rows - cy) ** 2 + (cols - cx) ** 2)
    else:
        side = int(rng.integers(4))
        depth = rng.uniform(0.2, 0.45) * (h if side < 2 else w)
        along = [rows, h - 1 - rows, cols, w - 1 - cols][side]
        inside = depth - np.broadcast_to(along, (h, w))
    return np.clip(inside / soft + 0.5, 0.0, 1.0)


def _ramp(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A linear ramp (h, w) from 0 on one side to 1 on the other, in a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    t = np.cos(angle) * cols + np.sin(angle) * rows
    return ((t - t.min()) / max(float(t.max() - t.min()), 1e-6)).astype(np.float32)
