"""Reading a multi-digit number ("504192") with a single-digit classifier: segmentation.

Chapter 1 of the book splits handwriting recognition into segmentation and classification, and
suggests trying many candidate splits and keeping the one the digit classifier is most confident
about. We do that, in two steps:

1. Split at gaps in the ink into units, each one digit or several that touch (``nndl.ink_units``).
2. A unit wider than half the line height is cut. Candidate cuts run straight down a column, or
   cut only one or two thin crossings of the column by a stroke when that alone splits the ink in
   two: the joint where two digits touch, which leaves both whole even where one leans over the
   other. Every piece between two cuts is put into MNIST form (``nndl.data.images.centre_digit``)
   and all are classified in one batch. Dynamic programming over the cuts picks the segmentation
   whose pieces have the largest summed score: ``WEIGHTS`` times the piece's ``FEATURES``, the
   classifier's margin (log of the best digit's probability over the runner-up's, "not a digit"
   included for a network with that 11th output) and confidence, the piece's shape (of the line
   height, of its own height, of the line's other units) and the ink its cut goes through. Each
   piece costs a constant, so splitting pays only where the pieces read clearly better than the
   whole. The weights were fitted (a linear-chain CRF) on numbers written with MNIST validation
   digits, one pair touching or none (``nndl.data.marks.number``), as read by the bundled reader:
   ``benchmarks/fit_segmenter.py``.

Limits: one line of digits, written left to right; a digit broken into parts side by side is read
as two; a "1" pressed against its neighbour is often read as part of it ("41" as "4"): a
ten-output classifier is as sure of the merged shape as of the parts. A network with a "not a
digit" output trained on merged pairs (``nndl.data.marks``) scores the merged shape low.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import numpy as np
from scipy import ndimage

from .data.imagefile import MAX_SIDE, read_image
from .data.images import BOX_THRESHOLD, centre_digit, ink_map
from .ink_units import SegmentationError, Unit, line_units, row_span, work_scale  # noqa: F401 (SegmentationError: API)

SINGLE_WIDTH = 0.5        # units at most this wide (of the line height) are one digit
MAX_PIECE_WIDTH = 1.3     # candidate pieces are at most this wide (of the line height) ...
MIN_PIECE_WIDTH = 0.15    # ... at least this wide ...
MIN_PIECE_HEIGHT = 0.5    # ... and their ink spans at least this share of the line height
CUTS_PER_HEIGHT = 24      # candidate cuts: about this many per line height ...
MAX_PIECES = 4000         # ... unless that makes more candidate pieces than this: then fewer
JOINTS_PER_COLUMN = 2     # about this many cuts per column (straight and joints), to bound the work
JOINT_WIDTH = 2.0         # a crossing at most this many stroke widths long may be a joint of two digits
MIN_SIDE_INK = 0.15       # a joint leaves at least this share of the unit's ink on each side
MARGIN_CAP = 40.0         # margins (log probability ratios) above this count as this
REJECT_CLASS = 10         # in an 11-output network, the "not a digit" output
TOO_WIDE_SCORE = -1000.0  # a unit read whole although wider than any digit: last resort
FEATURES = ("piece", "width > 1.15 x the line's median", "> 1.35 x", "< 0.6 x",
            *(f"{one}margin above {m}" for one in ("", "a 1, ") for m in (0, 5, 10, 15, 20, 30)), "a 1",
            *(f"width {m}" for m in ("> 0.7", "> 0.9", "> 1.0", "> 1.1", "< 0.5", "< 0.3")), "aspect < 0.35",
            "aspect < 0.2", "aspect > 1.2", "height < 0.8", "height < 0.65", "strokes cut", "strokes cut above 2",
            "a joint", "a whole unit", "log confidence", "P(not a digit)", "P(not a digit) above 0.5")
WEIGHTS = np.array([  # fitted as the module docstring says; the first is the cost of a piece
    -9.160, 0.092, 0.704, -0.871, -2.055, 6.735, -1.448, -1.736, 1.449, 0.236, 4.373, -6.066, -5.750,
    -0.142, 0.001, 0.000, 0.389, -0.725, -0.095, -5.074, 0.574, 0.762, -2.183, 0.628, 4.333, 0.753,
    0.152, -1.656, -4.219, 6.807, -0.576, -4.187, 1.073, -11.534, 10.810])


@dataclass
class DigitRead:
    """One digit of a number: its value, the classifier's confidence, and its ink's box."""

    digit: int
    confidence: float  # the output neuron's activation for this digit (see _read_pieces)
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the image's pixels, ends exclusive
    not_digit: float | None = None  # P(not a digit), from a network with a rejection output only

    def to_dict(self) -> dict[str, Any]:  # not_digit only where there is one
        return {k: v for k, v in {**asdict(self), "box": list(self.box)}.items() if v is not None}


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
        return {"number": self.number, "digits": [d.to_dict() for d in self.digits]}


@dataclass
class _Cut:
    """A way to cut a unit in two: the pixels on its right (h, w of the unit) and the ink it cuts."""

    column: int          # the column of the line the cut is made at
    right: np.ndarray    # (h, c1 - c0) bool: the unit's pixels on the right of the cut
    strokes: float       # the ink cut through, in stroke widths (0 for the unit's two ends)
    joint: bool = False  # a cut of one or two thin crossings only, not straight down the column


def read_number(network, source, *, max_side: int = MAX_SIDE, formats: Iterable[str] | None = None) -> NumberRead:
    """Read the digits written on one line of an image (path, bytes, file, PIL image or array)."""
    return read_ink(network, ink_map(read_image(source, max_side=max_side, formats=formats)))


def read_ink(network, ink: np.ndarray) -> NumberRead:
    """Read the digits of an ink map (h, w) as made by ``nndl.data.images.ink_map``."""
    digits = []
    for unit in lattice(network, ink):
        score = {p: TOO_WIDE_SCORE if f is None else float(np.dot(WEIGHTS, f)) for p, f in unit.features.items()}
        digits += [unit.digit_read(p) for p in _best_split(list(range(len(unit.cuts))), list(score), score)]
    return NumberRead("".join(str(d.digit) for d in digits), digits)


@dataclass
class UnitLattice:
    """One unit's cuts and, for each candidate piece (i, j) between cut i and cut j, its ``FEATURES``
    (None: too wide to be a digit) and reading (digit, confidence, P(not a digit) or None)."""

    unit: "Unit"
    scale: float
    cuts: list["_Cut"]
    features: dict[tuple[int, int], list[float] | None] = field(default_factory=dict)
    read: dict[tuple[int, int], tuple[int, float, float | None]] = field(default_factory=dict)

    def digit_read(self, piece: tuple[int, int]) -> DigitRead:
        return DigitRead(*self.read[piece][:2], _box(self.unit, self.cuts, *piece, self.scale), self.read[piece][2])


def lattice(network, ink: np.ndarray) -> list[UnitLattice]:
    """The units of an ink map, left to right, each with every candidate piece classified (in one
    batch): what ``read_ink`` searches, and what the ``WEIGHTS`` were fitted on."""
    ink, scale = work_scale(np.asarray(ink, dtype=np.float32))
    units, line_height = line_units(ink)
    step = _cut_step(units, line_height)
    plans = [_candidate_cuts(u, line_height, step) for u in units]
    out = [UnitLattice(u, scale, cuts) for u, (cuts, _) in zip(units, plans)]
    keys = [(k, p) for k, (_, pieces) in enumerate(plans) for p in pieces]
    inks = [_piece(units[k], out[k].cuts, *p) for k, p in keys]
    digit, conf, margin, not_digit = _read_pieces(network, np.stack([centre_digit(i) for i in inks]))  # (n,) each
    typical = float(np.median([u.c1 - u.c0 for u in units])) / line_height
    for n, (k, p) in enumerate(keys):
        nd = None if not_digit is None else float(not_digit[n])
        out[k].features[p] = _features(inks[n] > BOX_THRESHOLD, out[k].cuts, *p, line_height, typical,
                                       digit[n], conf[n], margin[n], nd or 0.0)
        out[k].read[p] = (int(digit[n]), float(conf[n]), nd)
    return out


def _piece(unit: "Unit", cuts: list["_Cut"], i: int, j: int) -> np.ndarray:
    """The unit's ink between two of its cuts: (h, w) of the unit, zero elsewhere."""
    return np.where(cuts[i].right & ~cuts[j].right, unit.ink, 0.0).astype(np.float32)


def _read_pieces(network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """For each piece (n,): its digit (the most probable of the ten, never class 10), the confidence
    in it, the margin (log of its probability over the runner-up's) and, for a network with a
    rejection output (11 classes, the last "not a digit"), the probability of that, else None.

    "Not a digit" competes as a runner-up and caps the confidence at 1 - P(not a digit), so a piece
    like no digit (two merged, half of one) scores low. With one output neuron per class the
    confidence is that neuron's activation, so a sigmoid layer lukewarm about every class (a badly
    cut piece) is not mistaken for a confident one; for softmax it is the probability.
    """
    proba = np.asarray(network.predict_proba(x), dtype=np.float64)  # (n, n_classes)
    digits = proba[:, :REJECT_CLASS]
    digit, rows = digits.argmax(axis=1), np.arange(len(proba))
    rival = np.sort(digits, axis=1)[:, -2]
    if getattr(network, "output_encoding", None) == "one-hot" and hasattr(network, "feedforward"):
        conf = np.clip(np.asarray(network.feedforward(x), dtype=np.float64)[rows, digit], 0.0, 1.0)
    else:
        conf = digits[rows, digit]
    not_digit = None
    if getattr(network, "n_classes", proba.shape[1]) == REJECT_CLASS + 1 and proba.shape[1] > REJECT_CLASS:
        not_digit = proba[:, REJECT_CLASS]
        rival, conf = np.maximum(rival, not_digit), np.minimum(conf, 1.0 - not_digit)
    margin = np.log(np.maximum(digits[rows, digit], 1e-300)) - np.log(np.maximum(rival, 1e-300))
    return digit, conf, np.minimum(margin, MARGIN_CAP), not_digit


def _features(mask: np.ndarray, cuts: list["_Cut"], i: int, j: int, line_height: float, typical: float,
              digit: int, conf: float, margin: float, not_digit: float) -> list[float] | None:
    """A candidate piece's ``FEATURES`` (its score is ``WEIGHTS`` times them), or None if it is too wide
    to be a digit: ``mask`` (h, w of the unit) is the piece's ink, between cuts i and j; ``typical``
    is the median width of the line's units (of the line height)."""
    cols = np.flatnonzero(mask.any(axis=0))
    w, h = (cols[-1] - cols[0] + 1) / line_height, row_span(mask) / line_height
    if w > MAX_PIECE_WIDTH:
        return None
    a, r, s, one = w / max(h, 1e-9), w / max(typical, 1e-9), cuts[i].strokes if i > 0 else 0.0, float(digit == 1)
    m = [margin / 10] + [max(0.0, margin - k) / 10 for k in (5, 10, 15, 20, 30)]
    hinges = [(r, 1.15), (r, 1.35), (-r, -0.6), (w, 0.7), (w, 0.9), (w, 1.0), (w, 1.1), (-w, -0.5), (-w, -0.3),
              (-a, -0.35), (-a, -0.2), (a, 1.2), (-h, -0.8), (-h, -0.65)]
    x = [10 * max(0.0, v - k) for v, k in hinges]
    features = ([1.0, *x[:3], *m, *(one * v for v in m), one, *x[3:], s / 3, max(0.0, s - 2) / 3, float(cuts[i].joint),
                 float((i, j) == (0, len(cuts) - 1)), max(math.log(max(conf, 1e-300)), -10.0), not_digit,
                 2 * max(0.0, not_digit - 0.5)])
    return features


# ----- cutting a unit ------------------------------------------------------------------------------
def _cut_step(units: list[Unit], line_height: float) -> int:
    """Columns between cuts: about CUTS_PER_HEIGHT per line height, fewer past MAX_PIECES pieces."""
    step = max(1.0, line_height / CUTS_PER_HEIGHT)
    wide = sum(u.c1 - u.c0 for u in units if u.c1 - u.c0 > SINGLE_WIDTH * line_height)
    span = (MAX_PIECE_WIDTH - MIN_PIECE_WIDTH) * line_height
    pieces = (wide / step) * (span / step) * JOINTS_PER_COLUMN  # cuts x piece widths
    if pieces > MAX_PIECES:
        step *= math.sqrt(pieces / MAX_PIECES)
    return max(1, round(step))


def _candidate_cuts(unit: Unit, line_height: float, step: int) -> tuple[list[_Cut], list[tuple[int, int]]]:
    """Candidate cuts of a unit (its two ends first and last), every ``step`` columns straight down
    and at joints, and the digit-like pieces between pairs of them, as index pairs into the cuts.
    The whole unit is always a candidate piece, so every unit is read."""
    c0, c1 = unit.c0, unit.c1
    h, w = unit.ink.shape
    ends = [_Cut(c0, np.ones((h, w), bool), 0.0), _Cut(c1, np.zeros((h, w), bool), 0.0)]
    if w <= SINGLE_WIDTH * line_height:
        return ends, [(0, 1)]
    mask = unit.ink > BOX_THRESHOLD
    thick = _stroke_width(mask)
    # The faint rim follows the nearest stroke pixel to its side of a cut.
    near = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    columns = np.broadcast_to(np.arange(w), (h, w))
    cuts, seen = [ends[0]], set()
    for c in range(step, w, step):
        runs, joints = _crossings(mask[:, c], JOINT_WIDTH * thick)
        cuts.append(_Cut(c0 + c, columns >= c, sum(b - a for a, b in runs) / thick))
        for chosen in joints:
            right = _joint(mask, c, chosen)
            if right is None:
                continue
            key = right.tobytes()
            if key not in seen:
                seen.add(key)
                cuts.append(_Cut(c0 + c, right[tuple(near)], sum(b - a for a, b in chosen) / thick, True))
    cuts.append(ends[1])
    inked = [r & mask for r in (cut.right for cut in cuts)]
    lo, hi = MIN_PIECE_WIDTH * line_height, MAX_PIECE_WIDTH * line_height
    pieces, last = [], len(cuts) - 1
    at = [cut.column for cut in cuts[:last]]  # in order
    for i in range(last):
        for j in [*range(i + 1, bisect.bisect_right(at, at[i] + hi + 2 * step)), last]:
            if (inked[j] & ~inked[i]).any():  # the cuts cross: a piece between them would lose ink
                continue
            piece = inked[i] & ~inked[j]
            cols = np.flatnonzero(piece.any(axis=0))
            if cols.size and lo <= cols[-1] - cols[0] + 1 <= hi and row_span(piece) >= MIN_PIECE_HEIGHT * line_height:
                pieces.append((i, j))
    if (0, last) not in pieces:
        pieces.append((0, last))
    return cuts, pieces


def _crossings(column: np.ndarray, thin: float) -> tuple[list[tuple[int, int]], list[list[tuple[int, int]]]]:
    """The runs [a, b) of ink in a column of the mask, and its thin ones alone and in pairs."""
    edges = np.flatnonzero(np.diff(np.r_[0, column.astype(np.int8), 0]))
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist()))
    thin_runs = [r for r in runs if r[1] - r[0] <= thin]
    pairs = [[a, b] for i, a in enumerate(thin_runs) for b in thin_runs[i + 1:]] if len(runs) > 2 else []
    return runs, [[r] for r in thin_runs] + pairs


def _joint(mask: np.ndarray, c: int, runs: list[tuple[int, int]]) -> np.ndarray | None:
    """The pixels right of a cut through ``runs`` of column c (each stroke then wholly on the side of
    its centre), if it splits the ink in parts of at least MIN_SIDE_INK each and is not the straight cut."""
    cut = mask.copy()
    for a, b in runs:
        cut[a:b, c] = False
    labels, n = ndimage.label(cut, structure=np.ones((3, 3), bool))
    if n < 2:
        return None
    index, columns = np.arange(1, n + 1), np.broadcast_to(np.arange(mask.shape[1]), mask.shape)
    centre = ndimage.sum_labels(columns, labels, index) / ndimage.sum_labels(cut, labels, index)
    right = np.r_[False, centre >= c][labels]  # by label; 0 is the paper
    for a, b in runs:
        right[a:b, c] = True
    if not MIN_SIDE_INK <= right[mask].mean() <= 1 - MIN_SIDE_INK or (right == (columns >= c))[mask].all():
        return None
    return right


def _stroke_width(mask: np.ndarray) -> float:
    """The typical width of the strokes (pixels): twice the ink's area over its outline's length."""
    inner = ndimage.binary_erosion(mask, border_value=0)
    return max(1.0, 2.0 * float(mask.sum()) / max(1.0, float((mask & ~inner).sum())))


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


def _box(unit: Unit, cuts: list[_Cut], i: int, j: int, scale: float) -> tuple[int, int, int, int]:
    """The ink box of a piece of the unit, in the original image's pixels."""
    piece = _piece(unit, cuts, i, j) > BOX_THRESHOLD
    rows, cols = np.flatnonzero(piece.any(axis=1)), np.flatnonzero(piece.any(axis=0))
    x0, y0 = unit.c0 + int(cols[0]), int(rows[0])
    x1, y1 = unit.c0 + int(cols[-1]) + 1, int(rows[-1]) + 1
    return (math.floor(x0 / scale), math.floor(y0 / scale), math.ceil(x1 / scale), math.ceil(y1 / scale))
