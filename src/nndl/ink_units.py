"""Finding the units of a line of handwriting: the first step of ``nndl.segment``.

Runs of columns holding ink separate digits; within a run, separate strokes (8-connected
components) side by side are separate digits too, while strokes stacked over each other (a "5"
whose bar floats) stay together. Each unit is one digit, or several that touch. The line height
(the median height of the units) sets the scale of what ``nndl.segment`` does next.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .data.imagefile import pil_image
from .data.images import BOX_THRESHOLD, NoDigitError
from .errors import NNDLError

WORK_HEIGHT = 48          # the line is scaled down to about this height (pixels) before the search
MIN_UNIT_HEIGHT = 0.3     # units lower than this (of the line height) are dashes or dirt: ignored
STACKED = 0.5             # strokes overlapping by this share of the narrower one's columns are one unit
MAX_DIGITS = 64           # more separate marks than this is not a number


class SegmentationError(NNDLError, ValueError):
    """The image cannot be read as one line of digits (e.g. far too many separate marks)."""


@dataclass
class Unit:
    """Ink of one digit or of several touching digits: columns [c0, c1) of its own ink map."""

    c0: int
    c1: int
    ink: np.ndarray  # (h, c1 - c0): this unit's ink only, the neighbours' ink removed


def line_units(ink: np.ndarray) -> tuple[list[Unit], float]:
    """The units of a line, dashes and dirt left out, and the line height."""
    units = find_units(ink)
    if not units:
        raise NoDigitError("the image holds no ink to read")
    heights = [row_span(u.ink > BOX_THRESHOLD) for u in units]
    line_height = float(np.median([h for h in heights if h >= MIN_UNIT_HEIGHT * max(heights)]))
    units = [u for u, h in zip(units, heights) if h >= MIN_UNIT_HEIGHT * line_height]
    if len(units) > MAX_DIGITS:
        raise SegmentationError(
            f"the image holds {len(units)} separate marks; at most {MAX_DIGITS} digits are read: "
            "send one line of digits on clean paper")
    return units, line_height


def work_scale(ink: np.ndarray) -> tuple[np.ndarray, float]:
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


def row_span(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def find_units(ink: np.ndarray) -> list[Unit]:
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
        units.append(Unit(c0, c1, np.where(own, ink[:, c0:c1], 0.0).astype(np.float32)))
    return sorted(units, key=lambda u: (u.c0 + u.c1) / 2)
