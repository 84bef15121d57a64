"""The fast paths of nndl.data.images give the plain paths' answers: 8-bit images give bit for
bit the ink of the same levels as floats, a large drawing is
box-averaged before the speck search (the same readings, pixels within a small tolerance, and
full scale again when far-off specks would make the digit too small), and the 28x28 PNG is
written without Pillow (Pillow reads it back exactly)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nndl.data import imagefile, images, paper
from tests.web.helpers import encode


def _drawing(img28: np.ndarray, scale: int = 10) -> np.ndarray:
    """An MNIST digit as the web page's canvas holds it: dark ink on white, ``scale`` times larger."""
    small = Image.fromarray(np.round((1 - img28.reshape(28, 28)) * 255).astype(np.uint8))
    return np.asarray(small.resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC))


def _full_scale(grey: np.ndarray) -> np.ndarray:
    """MNIST form made from every pixel (no box-averaging): the reference for the coarse path."""
    return images.centre_digit(images.ink_window(grey)[0])


def test_uint8_levels_give_bit_for_bit_the_float_ink(test_digits):
    rng = np.random.default_rng(0)
    for i, img in enumerate(test_digits[0][:12]):
        grey = _drawing(img, scale=int(rng.integers(2, 11)))
        if i % 3 == 1:
            grey = 255 - grey  # light ink on dark paper
        if i % 3 == 2:  # grain and a speck: the noise cut and the speck search have work to do
            grey = np.clip(grey.astype(int) + rng.integers(-8, 9, grey.shape), 0, 255).astype(np.uint8)
            grey[3:5, 3:5] = 0
        as_float = grey.astype(np.float32) / 255
        assert imagefile.read_grey(encode(grey)).dtype == np.uint8  # bytes of an 8-bit file: the level path
        assert np.array_equal(images.ink_map(grey), images.ink_map(as_float))
        assert np.array_equal(images.preprocess(encode(grey)), images.preprocess(as_float))


def test_an_opaque_alpha_channel_is_dropped(test_digits):
    grey = _drawing(test_digits[0][0], scale=4)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])  # what a browser's canvas sends
    assert imagefile.read_grey(encode(rgba)).dtype == np.uint8
    assert np.array_equal(images.preprocess(encode(rgba)), images.preprocess(encode(grey)))


def test_large_drawings_read_at_a_coarser_scale_as_at_full_scale(net, test_digits):
    x = test_digits[0][:40]
    grey = [_drawing(img) for img in x]  # 280x280: the window is box-averaged 3x
    coarse = np.stack([images.preprocess(g) for g in grey])  # (40, 784)
    full = np.stack([_full_scale(g) for g in grey])
    assert np.abs(coarse - full).mean() < 0.02  # the same picture (a whole-pixel shift flips rarely)
    assert (net.predict(coarse) == net.predict(full)).mean() >= 0.95
    for out in coarse[:10].reshape(-1, 28, 28):  # still MNIST form: 20 pixels on the longer side
        rows, cols = np.flatnonzero((out > 0.1).any(axis=1)), np.flatnonzero((out > 0.1).any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20


def test_box_average():
    grey = np.random.default_rng(2).random((12, 9)).astype(np.float32)
    np.testing.assert_allclose(paper.box_average(grey, 3, 1.0), grey.reshape(4, 3, 3, 3).mean(axis=(1, 3)),
                               atol=1e-6)
    edge = paper.box_average(grey[:11, :8], 3, 1.0)  # blocks past the edge filled with blank paper
    padded = np.ones((12, 9), np.float32)
    padded[:11, :8] = grey[:11, :8]
    np.testing.assert_allclose(edge, padded.reshape(4, 3, 3, 3).mean(axis=(1, 3)), atol=1e-6)


def test_far_specks_send_a_small_digit_back_to_full_scale(test_digits):
    digit = _drawing(test_digits[0][1], scale=2)  # 56 pixels a side
    page = np.full((600, 600), 255, np.uint8)
    page[20:76, 20:76] = digit
    clean = page.copy()
    page[590:592, 590:592] = 0  # a speck 500 pixels away: the inked window is 572 pixels wide
    assert np.array_equal(images.preprocess(page), _full_scale(page))
    assert np.array_equal(images.preprocess(page), images.preprocess(clean))


def test_png_is_written_exactly():
    rng = np.random.default_rng(3)
    x = rng.random(784).astype(np.float32)
    expected = np.round(x.reshape(28, 28) * 255).astype(np.uint8)
    for kwargs, want in (({}, expected), ({"invert": True}, 255 - expected),
                         ({"scale": 3}, expected.repeat(3, axis=0).repeat(3, axis=1))):
        img = Image.open(io.BytesIO(imagefile.to_png(x, **kwargs)))
        img.load()  # checks the chunks' CRCs and the compressed data
        assert img.format == "PNG" and img.mode == "L"
        assert np.array_equal(np.asarray(img), want)
    with pytest.raises(ValueError, match="square number"):
        imagefile.to_png(np.zeros(10))
