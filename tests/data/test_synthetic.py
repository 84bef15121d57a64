"""MNIST digits as real-world photos (nndl.data.synthetic): shapes, determinism, and that each
condition shows what it claims (ink at the edges, ruled lines, a frame, shadows, a small digit)."""
from __future__ import annotations

import numpy as np
import pytest

from nndl.data.synthetic import DIGIT_CONDITIONS, on_paper, photo


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist[2][0][:12]


@pytest.mark.parametrize("condition", DIGIT_CONDITIONS)
def test_photos_are_grey_uint8_dark_ink_on_light_paper_and_deterministic(digits, condition):
    for i, d in enumerate(digits[:6]):
        a = photo(d, condition, np.random.default_rng(i))
        b = photo(d.reshape(28, 28), condition, np.random.default_rng(i))
        assert a.dtype == np.uint8 and a.ndim == 2 and min(a.shape) >= 10
        assert np.array_equal(a, b)  # the same generator state, the same photo
        assert np.percentile(a, 95) > 100 and a.min() < np.percentile(a, 95) - 40  # light paper, dark ink
    assert not np.array_equal(photo(digits[0], condition, np.random.default_rng(0)),
                              photo(digits[0], condition, np.random.default_rng(1)))


def test_unknown_condition_is_refused(digits):
    with pytest.raises(ValueError, match="unknown condition"):
        photo(digits[0], "foggy", np.random.default_rng(0))


def test_tight_crop_ink_touches_the_edges(digits):
    for i, d in enumerate(digits):
        a = photo(d, "tight-crop", np.random.default_rng(i)).astype(np.float32)
        paper = np.percentile(a, 99)
        dark = a < paper - 0.25 * (paper - a.min())  # clearly inked, if only at a stroke's blurred edge
        near = [dark[:2].any(), dark[-2:].any(), dark[:, :2].any(), dark[:, -2:].any()]
        assert all(near), f"digit {i}: ink reaches only {near} of the edges"


def test_ruled_paper_has_lines_across_and_through_the_digit(digits):
    for i, d in enumerate(digits[:6]):
        a = photo(d, "ruled", np.random.default_rng(i)).astype(np.float32)
        rows = np.median(a, axis=1)  # a ruled row is darker all along
        paper = np.percentile(rows, 90)
        lined = rows < paper - 8
        starts = np.flatnonzero(lined[1:] & ~lined[:-1])
        assert len(starts) >= 4, f"digit {i}: {len(starts)} lines"


def test_frame_is_a_dark_box_around_the_digit(digits):
    a = photo(digits[0], "frame", np.random.default_rng(0)).astype(np.float32)
    dark = a < np.median(a) - 30
    cols = dark.mean(axis=0)
    rows = dark.mean(axis=1)
    assert (rows > 0.3).sum() >= 2 and (cols > 0.3).sum() >= 2  # two long rows and two long columns


def test_shadow_and_gradient_darken_part_of_the_paper(digits):
    for condition in ("shadow", "gradient"):
        a = photo(digits[1], condition, np.random.default_rng(3)).astype(np.float32)
        corners = [np.median(q) for q in (a[:8, :8], a[:8, -8:], a[-8:, :8], a[-8:, -8:])]
        assert min(corners) < 0.75 * max(corners), condition


def test_small_digits_are_small_on_a_large_canvas(digits):
    for i, d in enumerate(digits[:6]):
        a = photo(d, "small", np.random.default_rng(i)).astype(np.float32)
        assert 200 <= min(a.shape) and max(a.shape) <= 280
        dark = np.argwhere(a < np.median(a) - 40)
        assert 8 <= np.ptp(dark[:, 0]) + 1 <= 30


def test_on_paper_takes_any_ink_and_grows_for_a_frame():
    ink = np.zeros((30, 80), np.float32)
    ink[10:20, 5:75] = 1.0  # a dash, not a digit
    rng = np.random.default_rng(0)
    assert on_paper(ink, rng).shape == (30, 80)
    framed = on_paper(ink, rng, frame=True, shadow=True)
    assert framed.dtype == np.uint8 and framed.shape[0] > 30
