"""Synthetic marks that are not one digit, and numbers written with MNIST digits (nndl.data.marks)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nndl.data.images import BOX_THRESHOLD
from nndl.data.marks import NON_DIGITS, non_digit, number, number_layout

EIGHT = np.ones((3, 3), bool)  # 8-connected strokes, as nndl.segment finds them


def _strokes(ink: np.ndarray) -> int:
    return ndimage.label(ink > BOX_THRESHOLD, structure=EIGHT)[1]


@pytest.fixture(scope="module")
def whole_digits(mnist):
    """MNIST test digits that are one stroke each (some MNIST digits are broken in two)."""
    x, y = mnist[2]
    x, y = x[:600], y[:600]
    keep = np.array([_strokes(im.reshape(28, 28)) == 1 for im in x])
    return x[keep], y[keep]


@pytest.mark.parametrize("kind", NON_DIGITS)
def test_each_kind_of_mark_is_smooth_ink_made_the_same_way_each_time(kind, whole_digits):
    digits = whole_digits[0][:50]
    for seed in range(5):
        ink = non_digit(kind, np.random.default_rng(seed), digits)
        assert ink.ndim == 2 and ink.dtype == np.float32 and min(ink.shape) >= 40
        assert 0.0 <= ink.min() and ink.max() <= 1.0 and ink.max() > 0.9
        assert (ink > 0.5).sum() >= 20  # real ink, not a blank page
        assert ((ink > 0.05) & (ink < 0.95)).any()  # anti-aliased edges
        np.testing.assert_array_equal(ink, non_digit(kind, np.random.default_rng(seed), digits))
    others = [non_digit(kind, np.random.default_rng(seed), digits) for seed in range(5, 8)]
    assert any(o.shape != ink.shape or not np.array_equal(o, ink) for o in others)


def test_marks_have_their_shapes():
    rng = np.random.default_rng(0)
    blob = non_digit("blob", rng)
    assert 0.35 <= (blob > 0.5).mean() <= 0.7  # about half of the canvas
    dot = non_digit("dot", rng)
    assert (dot > 0.5).mean() < 0.05 and _strokes(dot) == 1
    box = non_digit("box", rng)
    filled = ndimage.binary_fill_holes(box > 0.5)
    assert filled.sum() > 2 * (box > 0.5).sum()  # an outline around an empty inside
    assert non_digit("noise", rng).any() and _strokes(non_digit("noise", rng)) >= 5


def test_unknown_kinds_and_two_digits_without_digits_are_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        non_digit("smudge", np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs MNIST digits"):
        non_digit("two-digits", np.random.default_rng(0))


def test_two_digits_are_two_separate_marks(whole_digits):
    for seed in range(10):
        assert _strokes(non_digit("two-digits", np.random.default_rng(seed), whole_digits[0])) == 2


def test_numbers_have_one_stroke_per_digit_or_one_touching_pair(whole_digits):
    x, _ = whole_digits
    rng = np.random.default_rng(0)
    for _ in range(100):
        k = int(rng.integers(2, 7))
        digits = x[rng.choice(len(x), k, replace=False)]
        apart = number(digits, rng)
        assert apart.dtype == np.float32 and apart.shape[0] == 28 + 2 * 2 + 2 * 6
        assert _strokes(apart) == k
        touching = number(digits, rng, touching=True)
        assert _strokes(touching) == k - 1  # exactly one pair of neighbours touches


def test_numbers_keep_the_digits_in_order_and_are_reproducible(whole_digits):
    x, _ = whole_digits
    ink, spans = number_layout(x[:5], np.random.default_rng(3), touching=True)
    assert [c0 for c0, _ in spans] == sorted(c0 for c0, _ in spans)
    overlaps = [a1 - b0 for (_, a1), (b0, _) in zip(spans, spans[1:])]
    assert sum(o > -2 for o in overlaps) == 1  # only the touching pair is closer than two blank columns
    np.testing.assert_array_equal(ink, number(x[:5], np.random.default_rng(3), touching=True))
    single = number(x[:1], np.random.default_rng(0), touching=True)  # one digit: nothing to touch
    assert _strokes(single) == 1
    with pytest.raises(ValueError):
        number(x[:0], np.random.default_rng(0))
