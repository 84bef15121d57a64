"""Reading a multi-digit number ("504192") with a single-digit classifier: segmentation.

Chapter 1 of the book splits handwriting recognition into segmentation and classification, and
suggests segmenting by trying many candidate splits and keeping the one the digit classifier is
most confident about. We do that, in two steps:

1. Split at gaps in the ink. Runs of columns holding ink (the column projection) separate digits;
   within a run, separate strokes (8-connected components) that sit side by side are separate
   digits too, while strokes stacked over each other (a "5" whose bar floats) stay together.
   Each resulting unit is one digit, or several digits that touch. The line height (the median
   height of the units) sets the scale of everything that follows.
2. A unit wider than one line height is cut. Candidate cuts are made at columns inside it; every piece
   between two cuts is put into MNIST form (``nndl.data.images.centre_digit``) and the whole
   batch of pieces is classified at once. Dynamic programming over the cut points picks the
   segmentation with the highest product of the pieces' confidences, each weighted by a prior on
   a digit's shape (width over height: MNIST digits lie between about 0.2 and 1.4) and, in a unit
   that may be one wide digit, a prior against cutting it. Since each extra piece multiplies in a
   factor below one, splitting a unit pays only where its pieces are read more confidently than
   the whole.

Limits: one line of digits, written left to right; a digit broken into parts side by side is read
as two; cuts are vertical lines, so strongly slanted touching digits may lose a stroke to their
neighbour; two touching digits no wider together than one digit ("11") are read as one. The
classifier's confidence is only as good as the classifier: a network that is confident about
fragments (any MLP is, somewhat) misplaces cuts more often than a convolutional one.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import numpy as np
from scipy import ndimage

from .data.imagefile import MAX_SIDE, pil_image, read_image
from .data.images import BOX_THRESHOLD, NoDigitError, centre_digit, ink_map
from .errors import NNDLError

WORK_HEIGHT = 48          # the line is scaled down to about this height (pixels) before the search
MIN_UNIT_HEIGHT = 0.3     # units lower than this (of the line height) are dashes or dirt: ignored
STACKED = 0.5             # strokes overlapping by this share of the narrower one's columns are one unit
SINGLE_WIDTH = 1.0        # units at most this wide (of the line height) are one digit
MAX_PIECE_WIDTH = 1.3     # candidate pieces are at most this wide (of the line height) ...
MIN_PIECE_WIDTH = 0.15    # ... at least this wide ...
MIN_PIECE_HEIGHT = 0.5    # ... and their ink spans at least this share of the line height
CUTS_PER_HEIGHT = 24      # candidate cuts: about this many per line height ...
MAX_PIECES = 4000         # ... unless that makes more candidate pieces than this: then fewer
MAX_DIGITS = 64           # more separate marks than this is not a number
WIDE_ASPECT, WIDE_SCALE = 1.2, 0.25    # shape prior: pieces wider than 1.2 x their height lose
NARROW_ASPECT, NARROW_LOG_PRIOR = 0.35, -1.0  # ... and slivers narrower than 0.35 x their height
TOO_WIDE_LOG_PRIOR = math.log(1e-6)   # a unit read whole although wider than any digit: last resort
AMBIGUOUS_WIDTH = 1.3     # a unit up to this wide (of the line height) may well be one wide digit, so ...
SPLIT_LOG_PRIOR = math.log(0.7)  # ... each piece of a cut of it costs a factor 0.7


class SegmentationError(NNDLError, ValueError):
    """The image cannot be read as one line of digits (e.g. far too many separate marks)."""


@dataclass
class DigitRead:
    """One digit of a number: its value, the classifier's confidence, and its ink's box."""

    digit: int
    confidence: float  # the output neuron's activation for this digit (see _confidences)
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the image's pixels, ends exclusive


@dataclass
class NumberRead:
    """The number read from an image and its digits, left to right."""

    number: str
    digits: list[DigitRead] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        """Product of the digits' confidences."""
        return float(np.prod([d.confidence for d in self.digits])) if self.digits else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "digits": [{**asdict(d), "box": list(d.box)} for d in self.digits]}


@dataclass
class _Unit:
    """Ink of one digit or of several touching digits: columns [c0, c1) of its own ink map."""

    c0: int
    c1: int
    ink: np.ndarray  # (h, c1 - c0): this unit's ink only, the neighbours' ink removed


def read_number(network, source, *, max_side: int = MAX_SIDE, formats: Iterable[str] | None = None) -> NumberRead:
    """Read the digits written on one line of an image (path, bytes, file, PIL image or array)."""
    return read_ink(network, ink_map(read_image(source, max_side=max_side, formats=formats)))


def read_ink(network, ink: np.ndarray) -> NumberRead:
    """Read the digits of an ink map (h, w) as made by ``nndl.data.images.ink_map``."""
    ink, scale = _work_scale(np.asarray(ink, dtype=np.float32))
    units = _units(ink)
    heights = [_row_span(u.ink > BOX_THRESHOLD) for u in units]
    if not units:
        raise NoDigitError("the image holds no ink to read")
    line_height = float(np.median([h for h in heights if h >= MIN_UNIT_HEIGHT * max(heights)]))
    units = [u for u, h in zip(units, heights) if h >= MIN_UNIT_HEIGHT * line_height]

    # Every candidate piece of every unit, classified in one batch.
    if len(units) > MAX_DIGITS:
        raise SegmentationError(
            f"the image holds {len(units)} separate marks; at most {MAX_DIGITS} digits are read: "
            "send one line of digits on clean paper")
    step = _cut_step(units, line_height)
    plans = [_candidate_cuts(u, line_height, step) for u in units]
    keys = [(k, a, b) for k, (_, pieces) in enumerate(plans) for a, b in pieces]
    x = np.stack([centre_digit(_piece(units[k], a, b)) for k, a, b in keys])  # (n, 784)
    proba, conf = _confidences(network, x)  # (n, n_classes), (n,)
    log_score = {(k, a, b): math.log(max(float(c), 1e-300)) + _log_shape_prior(units[k], a, b, line_height)
                 + _log_split_prior(units[k], a, b, line_height)
                 for (k, a, b), c in zip(keys, conf)}
    proba, conf = dict(zip(keys, proba)), dict(zip(keys, conf))

    digits: list[DigitRead] = []
    for k, (cuts, pieces) in enumerate(plans):
        for a, b in _best_split(cuts, pieces, {(a, b): log_score[(k, a, b)] for a, b in pieces}):
            key = (k, a, b)
            digits.append(DigitRead(int(proba[key].argmax()), float(conf[key]), _box(units[k], a, b, scale)))
    return NumberRead("".join(str(d.digit) for d in digits), digits)


def _piece(unit: "_Unit", a: int, b: int) -> np.ndarray:
    """The unit's ink in columns [a, b) of the line: (h, b - a)."""
    return unit.ink[:, a - unit.c0:b - unit.c0]


def _confidences(network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (n, n_classes) and the confidence (n,) in the most probable class.

    With one output neuron per class the confidence is that neuron's activation, not its share
    of the normalised probabilities: a sigmoid output layer that is lukewarm about every class
    ("none of these", typical of a badly cut piece) is then not mistaken for a confident one.
    For a softmax output the two are the same.
    """
    proba = network.predict_proba(x)  # (n, n_classes)
    if getattr(network, "output_encoding", "one-hot") != "one-hot":
        return proba, proba.max(axis=1)
    a = np.asarray(network.feedforward(x), dtype=np.float64)  # (n, n_out)
    return proba, np.clip(a[np.arange(len(a)), proba.argmax(axis=1)], 0.0, 1.0)


# ----- finding the units ---------------------------------------------------------------------------
def _work_scale(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrink a tall line to about WORK_HEIGHT pixels (never enlarge); return it and the factor."""
    height = _line_height(ink)
    if height <= WORK_HEIGHT:
        return ink, 1.0
    Image = pil_image()
    scale = WORK_HEIGHT / height
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = np.asarray(Image.fromarray(np.ascontiguousarray(ink)).resize(size, Image.Resampling.BILINEAR))
    return np.clip(small, 0.0, 1.0), scale


def _line_height(ink: np.ndarray) -> int:
    """Height of the rows holding the middle 98% of the ink (robust to a stray tail or speck)."""
    cum = np.cumsum(ink.sum(axis=1, dtype=np.float64))  # (h,)
    if cum.size == 0 or cum[-1] <= 0:
        return 0
    lo, hi = np.searchsorted(cum, [0.01 * cum[-1], 0.99 * cum[-1]])
    return int(hi - lo + 1)


def _row_span(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def _units(ink: np.ndarray) -> list[_Unit]:
    """Strokes grouped into units, left to right: separate unless stacked over each other."""
    mask = ink > BOX_THRESHOLD  # (h, w)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))  # 8-connected strokes
    if n == 0:
        return []
    spans = [(s[1].start, s[1].stop) for s in ndimage.find_objects(labels)]  # column range per stroke
    group = list(range(n))  # union-find over strokes

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    order = sorted(range(n), key=lambda i: spans[i][0])
    for ii, i in enumerate(order):
        for j in order[ii + 1:]:
            if spans[j][0] >= spans[i][1]:
                break
            overlap = min(spans[i][1], spans[j][1]) - spans[j][0]
            if overlap >= STACKED * min(spans[i][1] - spans[i][0], spans[j][1] - spans[j][0]):
                group[root(j)] = root(i)
    roots = np.array([root(i) for i in range(n)])
    # The faint rim of each stroke (below BOX_THRESHOLD) belongs to the unit it surrounds.
    near = ndimage.grey_dilation(labels, size=(3, 3))  # (h, w): a neighbouring stroke's label, or 0
    owner = np.where(labels > 0, labels, near)
    units = []
    for r in np.unique(roots):
        members = np.flatnonzero(roots == r) + 1  # label ids
        c0 = min(spans[m - 1][0] for m in members)
        c1 = max(spans[m - 1][1] for m in members)
        own = np.isin(owner[:, c0:c1], members)
        units.append(_Unit(c0, c1, np.where(own, ink[:, c0:c1], 0.0).astype(np.float32)))
    return sorted(units, key=lambda u: (u.c0 + u.c1) / 2)


# ----- cutting a unit ------------------------------------------------------------------------------
def _cut_step(units: list[_Unit], line_height: float) -> int:
    """Columns between candidate cuts: about CUTS_PER_HEIGHT per line height, coarser where the
    units to cut are so wide that the pieces would exceed MAX_PIECES (a bound on the work)."""
    step = max(1.0, line_height / CUTS_PER_HEIGHT)
    wide = sum(u.c1 - u.c0 for u in units if u.c1 - u.c0 > SINGLE_WIDTH * line_height)
    span = (MAX_PIECE_WIDTH - MIN_PIECE_WIDTH) * line_height
    pieces = (wide / step) * (span / step)  # cuts x piece widths
    if pieces > MAX_PIECES:
        step *= math.sqrt(pieces / MAX_PIECES)
    return max(1, round(step))


def _candidate_cuts(unit: _Unit, line_height: float, step: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Cut positions within a unit and the digit-like pieces between pairs of them.

    The whole unit is always a candidate (scored down if too wide), so every unit is read.
    """
    c0, c1 = unit.c0, unit.c1
    if c1 - c0 <= SINGLE_WIDTH * line_height:
        return [c0, c1], [(c0, c1)]
    mask = unit.ink > BOX_THRESHOLD
    cuts = sorted(set(range(c0, c1, step)) | {c1})
    lo, hi = MIN_PIECE_WIDTH * line_height, MAX_PIECE_WIDTH * line_height
    pieces = [(a, b) for i, a in enumerate(cuts) for b in cuts[i + 1:]
              if lo <= b - a <= hi and _row_span(mask[:, a - c0:b - c0]) >= MIN_PIECE_HEIGHT * line_height]
    if (c0, c1) not in pieces:
        pieces.append((c0, c1))
    return cuts, pieces


def _log_shape_prior(unit: _Unit, a: int, b: int, line_height: float) -> float:
    """log of a prior on a piece's shape (width / height of its ink), 0 for ordinary digits."""
    mask = _piece(unit, a, b) > BOX_THRESHOLD
    cols = np.flatnonzero(mask.any(axis=0))
    width = cols[-1] - cols[0] + 1
    if width > MAX_PIECE_WIDTH * line_height:
        return TOO_WIDE_LOG_PRIOR
    aspect = width / max(_row_span(mask), 1)
    if aspect > WIDE_ASPECT:
        return -(((aspect - WIDE_ASPECT) / WIDE_SCALE) ** 2)
    return NARROW_LOG_PRIOR if aspect < NARROW_ASPECT else 0.0


def _log_split_prior(unit: _Unit, a: int, b: int, line_height: float) -> float:
    """log of a prior against cutting a unit that may be a single wide digit: without it, two
    fragments that each look like a digit (the classifier is confident about many shapes) win."""
    whole = (a, b) == (unit.c0, unit.c1)
    return SPLIT_LOG_PRIOR if not whole and unit.c1 - unit.c0 <= AMBIGUOUS_WIDTH * line_height else 0.0


def _best_split(cuts: list[int], pieces: list[tuple[int, int]], log_score: dict) -> list[tuple[int, int]]:
    """Dynamic programming over cut points: the pieces covering [cuts[0], cuts[-1]) with the
    largest sum of log scores (the largest product of the pieces' weighted confidences)."""
    index = {c: i for i, c in enumerate(cuts)}
    best = [-math.inf] * len(cuts)  # best[j]: best score of a segmentation of [cuts[0], cuts[j])
    back = [-1] * len(cuts)
    best[0] = 0.0
    for a, b in sorted(pieces, key=lambda p: p[1]):  # by right end, so best[i] is final when used
        i, j = index[a], index[b]
        s = best[i] + log_score[(a, b)]
        if s > best[j]:
            best[j], back[j] = s, i
    split, j = [], len(cuts) - 1  # the whole unit is a piece, so best[-1] is finite
    while j > 0:
        split.append((cuts[back[j]], cuts[j]))
        j = back[j]
    return split[::-1]


def _box(unit: _Unit, a: int, b: int, scale: float) -> tuple[int, int, int, int]:
    """The ink box of the unit's columns [a, b), in the original image's pixels."""
    piece = _piece(unit, a, b) > BOX_THRESHOLD
    rows, cols = np.flatnonzero(piece.any(axis=1)), np.flatnonzero(piece.any(axis=0))
    x0, y0, x1, y1 = a + int(cols[0]), int(rows[0]), a + int(cols[-1]) + 1, int(rows[-1]) + 1
    return (math.floor(x0 / scale), math.floor(y0 / scale), math.ceil(x1 / scale), math.ceil(y1 / scale))
