"""Synthetic ink that is not one digit, and numbers written with MNIST digits.

A reader of real handwriting meets marks that are not a digit at all: a dot, a dash, a scribble,
an empty form box, a struck line, a cross, specks of dirt, a blot, two digits in one box, letters.
``non_digit(kind, rng)`` draws one of these (``NON_DIGITS``); ``number(digits, rng)`` writes MNIST
digits left to right on one line, optionally with one pair of neighbours touching, as real
handwriting often has them.

Every image is an ink map like ``nndl.data.images.ink_map``'s output: float32 (h, w) in [0, 1],
white ink (1) on black paper (0), with smooth anti-aliased edges. Strokes are drawn as a skeleton
of pixels, widened by a distance transform and softened by a small Gaussian blur. The same
generator state gives the same image. To make a photo of the ink, use
``nndl.data.synthetic.on_paper`` (or simply ``np.uint8(255 * (1 - ink))``).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

NON_DIGITS = ("dot", "dash", "scribble", "box", "line", "cross", "noise", "blob", "two-digits", "letters")
SIDE = 28               # MNIST's images are SIDE x SIDE
INK = 0.5               # pixels above this hold ink, for placing digits against each other
STROKE = (0.08, 0.12)   # stroke widths, as a share of the mark's height
BLUR = 0.6              # sigma (pixels) of the blur that smooths the edges
JITTER = 2              # a number's digits move up or down by at most this many pixels
GAP = (2, 7)            # blank columns between a number's separate digits: from 2 up to 6
OVERLAP = (1, 5)        # a touching pair's ink abuts (1) or overlaps by up to 3 more columns (4)
PAD = 6                 # blank border around a number
_ANGLES = 360           # a blob's outline is drawn from its radius at this many angles

# Crude capitals as strokes between points of a unit box (x right, y down).
_LETTERS = {
    "A": [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.22, 0.6), (0.78, 0.6)]],
    "H": [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (1.0, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "K": [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (0.0, 0.55), (1.0, 1.0)]],
    "M": [[(0.0, 1.0), (0.0, 0.0), (0.5, 0.6), (1.0, 0.0), (1.0, 1.0)]],
    "W": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.35), (0.75, 1.0), (1.0, 0.0)]],
    "X": [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
    "N": [[(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (1.0, 0.0)]],
    "V": [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]],
    "Z": [[(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]],
    "E": [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)], [(0.0, 0.5), (0.75, 0.5)]],
}


# ----- drawing ---------------------------------------------------------------------------------------
def _render(shape: tuple[int, int], strokes: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Polylines ((m, 2) points (x, y), each with its stroke radius) drawn as smooth ink (h, w)."""
    h, w = shape
    skeleton = np.zeros(shape, bool)
    radius = np.zeros(shape, np.float32)
    for points, r in strokes:
        pts = _densify(np.asarray(points, np.float64))
        ix = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
        iy = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
        skeleton[iy, ix] = True
        radius[iy, ix] = np.maximum(radius[iy, ix], r)
    if not skeleton.any():
        return np.zeros(shape, np.float32)
    dist, (ny, nx) = ndimage.distance_transform_edt(~skeleton, return_indices=True)
    ink = np.clip(radius[ny, nx] + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    return _smooth(ink)


def _densify(points: np.ndarray, spacing: float = 0.5) -> np.ndarray:
    """Points along a polyline (m, 2) no more than ``spacing`` pixels apart."""
    if len(points) < 2:
        return points.reshape(-1, 2)
    step = np.diff(points, axis=0)  # (m - 1, 2)
    n = np.maximum(1, np.ceil(np.hypot(step[:, 0], step[:, 1]) / spacing).astype(np.intp))
    seg = np.repeat(np.arange(len(step)), n)  # the segment of each new point
    t = (np.arange(seg.size) - np.repeat(np.cumsum(n) - n, n) + 1) / n[seg]  # (0, 1] along it
    return np.concatenate([points[:1], points[seg] + t[:, None] * step[seg]])


def _smooth(ink: np.ndarray) -> np.ndarray:
    return np.clip(ndimage.gaussian_filter(ink, BLUR, truncate=3.0), 0.0, 1.0).astype(np.float32)


def _canvas(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(100, 161)), int(rng.integers(100, 161))  # (h, w)


def _radius(rng: np.random.Generator, height: float) -> float:
    return float(rng.uniform(*STROKE) * height / 2)


def _smooth_curve(points: np.ndarray, per_segment: int = 12) -> np.ndarray:
    """A Catmull-Rom spline through the points: a smooth curve with the same turns."""
    p = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    parts = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        parts.append(0.5 * ((2 * p1) + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                            + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    parts.append(points[-1:])
    return np.concatenate(parts)


def _segment_through(rng: np.random.Generator, centre: np.ndarray, length: float, angle: float) -> np.ndarray:
    d = 0.5 * length * np.array([np.cos(angle), np.sin(angle)])
    return np.stack([centre - d, centre + d])


# ----- marks that are not one digit ------------------------------------------------------------------
def non_digit(kind: str, rng: np.random.Generator, digits: np.ndarray | None = None) -> np.ndarray:
    """An ink map (h, w) of a mark that is not one digit: ``kind`` is one of ``NON_DIGITS``.

    ``digits`` (n, 784) are MNIST images to pick from for "two-digits" (needed for that kind only).
    """
    if kind not in NON_DIGITS:
        raise ValueError(f"unknown kind of mark {kind!r}; expected one of {', '.join(NON_DIGITS)}")
    if kind == "two-digits":
        return _two_digits(rng, digits)
    if kind == "blob":
        return _blob(rng)
    h, w = _canvas(rng)
    size = float(min(h, w))
    middle = np.array([w / 2, h / 2]) + rng.uniform(-0.08, 0.08, 2) * size
    r = _radius(rng, size * 0.8)
    if kind == "dot":
        strokes = [(middle[None], size * rng.uniform(0.04, 0.09))]
    elif kind == "dash":
        strokes = [(_segment_through(rng, middle, size * rng.uniform(0.25, 0.5), rng.normal(0, 0.08)), r)]
    elif kind == "line":
        length = size * rng.uniform(0.6, 0.85)
        strokes = [(_segment_through(rng, middle, length, rng.uniform(0, np.pi)), r * rng.uniform(0.4, 0.9))]
    elif kind == "cross":
        arm, turn = size * rng.uniform(0.45, 0.75), rng.choice([0.0, np.pi / 4]) + rng.normal(0, 0.1)
        strokes = [(_segment_through(rng, middle, arm * rng.uniform(0.8, 1.2), turn + a), r)
                   for a in (rng.normal(0, 0.1), np.pi / 2 + rng.normal(0, 0.1))]
    elif kind == "box":
        bw, bh = size * rng.uniform(0.5, 0.85), size * rng.uniform(0.4, 0.85)
        x0, y0 = middle - [bw / 2, bh / 2]
        corners = np.array([[x0, y0], [x0 + bw, y0], [x0 + bw, y0 + bh], [x0, y0 + bh], [x0, y0]])
        corners += rng.normal(0, 0.01 * size, corners.shape)
        corners[-1] = corners[0]
        strokes = [(corners, r * rng.uniform(0.3, 0.8))]
    elif kind == "scribble":
        n = int(rng.integers(10, 20))
        points = np.column_stack([rng.uniform(0.15, 0.85, n) * w, rng.uniform(0.15, 0.85, n) * h])
        strokes = [(_smooth_curve(points), r * rng.uniform(0.5, 0.9))]
    elif kind == "noise":
        n = int(rng.integers(15, 45))
        centres = np.column_stack([rng.uniform(0.05, 0.95, n) * w, rng.uniform(0.05, 0.95, n) * h])
        strokes = [(c[None], float(rng.uniform(0.5, 3.0))) for c in centres]
        for _ in range(int(rng.integers(0, 4))):
            start = rng.uniform(0.1, 0.9, 2) * [w, h]
            strokes.append((_segment_through(rng, start, size * rng.uniform(0.05, 0.2), rng.uniform(0, np.pi)),
                            float(rng.uniform(0.5, 2.0))))
    else:  # letters
        strokes = _letters(rng, h, w)
    return _render((h, w), strokes)


def _letters(rng: np.random.Generator, h: int, w: int) -> list[tuple[np.ndarray, float]]:
    """One to three crude capitals side by side, their corners shaken a little."""
    n = int(rng.integers(1, 4))
    height = h * rng.uniform(0.45, 0.7)
    space = 0.2 * height
    width = min(height * rng.uniform(0.6, 0.9), (0.8 * w - (n - 1) * space) / n)
    r = _radius(rng, height)
    x = (w - n * width - (n - 1) * space) / 2
    y0 = (h - height) / 2 + rng.uniform(-0.05, 0.05) * h
    strokes = []
    for name in rng.choice(sorted(_LETTERS), n):
        for line in _LETTERS[str(name)]:
            p = np.array(line) * [width, height] + [x, y0]
            strokes.append((p + rng.normal(0, 0.03 * height, p.shape), r))
        x += width + space
    return strokes


def _blob(rng: np.random.Generator) -> np.ndarray:
    """A large irregular filled region covering about half of the canvas."""
    h, w = _canvas(rng)
    cy, cx = h / 2 + rng.uniform(-0.05, 0.05) * h, w / 2 + rng.uniform(-0.05, 0.05) * w
    dy, dx = (np.arange(h)[:, None] - cy) / h, (np.arange(w)[None, :] - cx) / w  # (h, 1), (1, w)
    angles = np.linspace(-np.pi, np.pi, _ANGLES + 1)  # the region's radius at these angles:
    k = np.arange(2, 6)[:, None]
    wobble = rng.uniform(0.04, 0.12, (4, 1)) * np.cos(k * angles + rng.uniform(0, 2 * np.pi, (4, 1)))
    edge = rng.uniform(0.38, 0.44) * (1.0 + wobble.sum(axis=0))  # (_ANGLES + 1,)
    at = np.round((np.arctan2(dy, dx) + np.pi) * (_ANGLES / (2 * np.pi))).astype(np.intp)  # (h, w)
    ink = np.clip((edge[at] - np.hypot(dy, dx)) * min(h, w) + 0.5, 0.0, 1.0).astype(np.float32)
    return _smooth(ink)


def _two_digits(rng: np.random.Generator, digits: np.ndarray | None) -> np.ndarray:
    """Two MNIST digits side by side, not touching, enlarged 3-5 times."""
    if digits is None or len(digits) == 0:
        raise ValueError('non_digit("two-digits", ...) needs MNIST digits to pick from: digits=(n, 784)')
    digits = np.asarray(digits, np.float32).reshape(len(digits), -1)
    pick = digits[rng.choice(len(digits), 2, replace=len(digits) < 2)]
    ink = number(pick, rng)
    zoom = float(rng.uniform(2.5, 4.0))
    return np.clip(ndimage.zoom(ink, zoom, order=1, prefilter=False), 0.0, 1.0).astype(np.float32)


# ----- numbers ---------------------------------------------------------------------------------------
def number(digit_images: np.ndarray, rng: np.random.Generator, *, touching: bool = False) -> np.ndarray:
    """MNIST digits (k, 784) written left to right on one line: an ink map (28 + 2 PAD + jitter, w).

    Neighbours are GAP blank columns apart, each digit moved up or down by up to JITTER pixels.
    With ``touching=True`` (and k >= 2) one adjacent pair, chosen at random, is pushed together
    until its ink abuts or overlaps by 1-4 pixels in some row (8-connected: one stroke); the
    other pairs stay separate.
    """
    return number_layout(digit_images, rng, touching=touching)[0]


def number_layout(digit_images: np.ndarray, rng: np.random.Generator, *,
                  touching: bool = False) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``number``'s ink map and each digit's column range [c0, c1) in it (the same draws)."""
    images = np.asarray(digit_images, np.float32).reshape(-1, SIDE, SIDE)
    k = len(images)
    if k == 0:
        raise ValueError("number() needs at least one digit image")
    crops = []
    for im in images:
        cols = np.flatnonzero((im > 0).any(axis=0))
        crops.append(im[:, cols[0]:cols[-1] + 1] if cols.size else im[:, 13:15])
    shifts = rng.integers(-JITTER, JITTER + 1, k) + JITTER  # row offsets, 0 .. 2 JITTER
    pair = int(rng.integers(k - 1)) if touching and k >= 2 else -1
    gaps = rng.integers(*GAP, max(k - 1, 1))
    overlap = int(rng.integers(*OVERLAP))
    height = SIDE + 2 * JITTER
    starts, right = [], 0  # right: the end (exclusive) of the ink placed so far
    edge = np.full(height, -10**6)  # the rightmost ink column of the previous digit in each row
    before = np.full(height, -10**6)  # ... and of any faint ink of the digits before that one
    faint = before  # ... and of the previous digit's faint ink
    for i, crop in enumerate(crops):
        if i and i - 1 == pair:
            x = _start(edge, crop > INK, int(shifts[i]), 1 - overlap)
            x = max(x, _start(before, crop > 0, int(shifts[i]), 2))  # still clear of the others
        else:
            x = right + int(gaps[i - 1]) if i else 0
        starts.append(x)
        right = max(right, x + crop.shape[1])
        before = np.maximum(before, faint)
        edge = _right_edge(crop > INK, x, int(shifts[i]), height)
        faint = _right_edge(crop > 0, x, int(shifts[i]), height)
    x_min = min(starts)
    out = np.zeros((height + 2 * PAD, right - x_min + 2 * PAD), np.float32)
    for crop, x, s in zip(crops, starts, shifts):
        region = out[PAD + s:PAD + s + SIDE, PAD + x - x_min:PAD + x - x_min + crop.shape[1]]
        np.maximum(region, crop, out=region)
    return out, [(PAD + x - x_min, PAD + x - x_min + crop.shape[1]) for crop, x in zip(crops, starts)]


def _right_edge(mask: np.ndarray, x: int, shift: int, height: int) -> np.ndarray:
    """The rightmost inked column per row of a digit placed at (x, shift): (height,)."""
    edge = np.full(height, -10**6)
    rows, cols = np.nonzero(mask)
    np.maximum.at(edge, rows + shift, cols + x)
    return edge


def _start(edge: np.ndarray, mask: np.ndarray, shift: int, blank: int) -> int:
    """The column at which to place a digit (its ink ``mask``, moved down by ``shift``) so that,
    in the closest row, ``blank`` blank columns separate it from ink ending at ``edge`` (the
    rightmost inked column per row): 1 leaves them just apart, 0 makes them touch, -3 overlaps
    them by three columns. Rows next to each other count as touching (8-connected)."""
    first = np.full(len(edge), 10**6)
    rows, cols = np.nonzero(mask)
    np.minimum.at(first, rows + shift, cols)
    reach = np.maximum(edge, np.maximum(np.r_[edge[1:], -10**6], np.r_[-10**6, edge[:-1]]))
    return int(blank + 1 - (first - reach).min())
