"""Expanded training data: the book's shift4, random affine/elastic augment, and the on-disk cache."""
from __future__ import annotations

import os

import numpy as np
import pytest

from nndl.data import augment, build_expanded, expand_dataset, load_expanded_mnist, load_mnist, shift4


@pytest.fixture(scope="module")
def digits(mnist_dir):
    """300 real training images (n, 784) float32 and their labels."""
    (x, y), _, _ = load_mnist()
    return x[:300], y[:300]


def _book_expand(x, y):
    """The book's expand_mnist.py, one image at a time with np.roll, as the reference."""
    out_x, out_y = [], []
    for xi, yi in zip(x, y):
        out_x.append(xi)
        out_y.append(yi)
        image = np.reshape(xi, (-1, 28))
        for d, axis, index_position, index in [(1, 0, "first", 0), (-1, 0, "first", 27),
                                               (1, 1, "last", 0), (-1, 1, "last", 27)]:
            new_img = np.roll(image, d, axis)
            if index_position == "first":
                new_img[index, :] = np.zeros(28)
            else:
                new_img[:, index] = np.zeros(28)
            out_x.append(np.reshape(new_img, 784))
            out_y.append(yi)
    return np.array(out_x), np.array(out_y)


def test_shift4_on_a_hand_made_image():
    img = np.arange(1, 17, dtype=np.uint8).reshape(1, 16)  # 4x4: rows 1-4, 5-8, 9-12, 13-16
    x, y = shift4(img, np.array([7]))
    assert x.shape == (5, 16) and x.dtype == np.uint8 and y.tolist() == [7] * 5
    got = x.reshape(5, 4, 4)
    np.testing.assert_array_equal(got[0], img.reshape(4, 4))
    np.testing.assert_array_equal(got[1], [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])  # down
    np.testing.assert_array_equal(got[2], [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [0, 0, 0, 0]])  # up
    np.testing.assert_array_equal(got[3], [[0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11], [0, 13, 14, 15]])  # right
    np.testing.assert_array_equal(got[4], [[2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0], [14, 15, 16, 0]])  # left


def test_shift4_equals_the_books_code(digits):
    x, y = digits[0][:40], digits[1][:40]
    xe, ye = shift4(x, y)
    xb, yb = _book_expand(x, y)
    assert xe.shape == (200, 784) and xe.dtype == x.dtype
    np.testing.assert_array_equal(xe, xb)
    np.testing.assert_array_equal(ye, yb)
    x3, _ = shift4(x.reshape(-1, 28, 28), y)  # (n, 28, 28) input keeps its layout
    np.testing.assert_array_equal(x3.reshape(-1, 784), xe)
    with pytest.raises(ValueError, match="labels"):
        shift4(x, y[:-1])
    with pytest.raises(ValueError, match="square"):
        shift4(np.zeros((2, 10)), np.zeros(2))


def test_augment_is_deterministic_and_keeps_shape(digits):
    x = digits[0][:100]
    a = augment(x, np.random.default_rng(5))
    b = augment(x, np.random.default_rng(5))
    c = augment(x, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.abs(a - x).mean() > 0.01, "images must actually change"
    e1 = augment(x, np.random.default_rng(5), elastic_alpha=34.0)
    e2 = augment(x, np.random.default_rng(5), elastic_alpha=34.0)
    np.testing.assert_array_equal(e1, e2)
    assert not np.array_equal(e1, a)
    u = augment(np.rint(x * 255).astype(np.uint8).reshape(-1, 28, 28), np.random.default_rng(5))
    assert u.dtype == np.uint8 and u.shape == (100, 28, 28)
    np.testing.assert_allclose(u.reshape(100, 784) / 255, a, atol=1 / 255 + 1e-6)


def test_augment_takes_a_conv_nets_input_and_a_conv_net_trains_with_it(digits):
    x = digits[0][:100]
    a = augment(x.reshape(-1, 1, 28, 28), np.random.default_rng(5))     # as the trainer hands it over
    assert a.shape == (100, 1, 28, 28)
    np.testing.assert_array_equal(a.reshape(100, 784), augment(x, np.random.default_rng(5)))
    import nndl

    net = nndl.Network([nndl.ConvPool(4, 5, 2, "relu", input_shape=(1, 28, 28)), nndl.Dense(576, 10, "softmax")],
                       cost="log-likelihood", seed=0)
    history = net.fit((x, digits[1][:100]), epochs=1, mini_batch_size=10, eta=0.05, augment=augment)
    assert len(history) == 1


def test_augment_without_distortion_is_identity(digits):
    x = digits[0][:20]
    out = augment(x, np.random.default_rng(0), max_shift=0, max_rotation=0, max_skew=0)
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_augment_preserves_ink_roughly(digits):
    x = digits[0]
    ink = x.sum(axis=1)
    affine = augment(x, np.random.default_rng(1)).sum(axis=1) / ink
    assert 0.98 < affine.mean() < 1.02 and affine.min() > 0.85 and affine.max() < 1.1
    elastic = augment(x, np.random.default_rng(1), elastic_alpha=34.0, elastic_sigma=4.0).sum(axis=1) / ink
    assert 0.9 < elastic.mean() < 1.1


def _centre_of_mass(x):
    img = x.reshape(-1, 28, 28)
    rows, cols = np.arange(28)[None, :, None], np.arange(28)[None, None, :]
    m = img.sum(axis=(1, 2))
    return np.stack([(img * rows).sum(axis=(1, 2)) / m, (img * cols).sum(axis=(1, 2)) / m], axis=1)


def test_shift_only_moves_the_digit_by_at_most_max_shift(digits):
    x = digits[0]
    out = augment(x, np.random.default_rng(2), max_shift=2.0, max_rotation=0, max_skew=0)
    moved = _centre_of_mass(out) - _centre_of_mass(x)  # (n, 2)
    assert np.abs(moved).max() < 2.05
    assert (np.abs(moved) > 1.0).mean() > 0.3, "shifts are spread over the whole range"


def test_augment_argument_checks(digits):
    x = digits[0][:2]
    with pytest.raises(ValueError, match="max_rotation"):
        augment(x, np.random.default_rng(0), max_rotation=-1)
    with pytest.raises(ValueError, match="elastic_alpha"):
        augment(x, np.random.default_rng(0), elastic_sigma=4.0)


def test_expand_dataset_kinds(digits):
    x, y = digits[0][:10], digits[1][:10]
    xs, ys = expand_dataset("shift4", x, y)
    np.testing.assert_array_equal(xs, shift4(x, y)[0])
    xa, ya = expand_dataset("affine", x, y, rng=np.random.default_rng(0), copies=2)
    assert xa.shape == (30, 784) and ya.tolist() == np.repeat(y, 3).tolist()
    np.testing.assert_array_equal(xa[::3], x)
    assert not np.array_equal(xa[1::3], x)
    xe, _ = expand_dataset("elastic", x, y, rng=np.random.default_rng(0), copies=1)
    assert xe.shape == (20, 784)
    with pytest.raises(ValueError, match="unknown expansion kind"):
        expand_dataset("rotate", x, y)
    with pytest.raises(ValueError, match="rng"):
        expand_dataset("affine", x, y)


def test_load_expanded_builds_once_and_rebuilds_when_stale(tmp_path, tiny, isolated_env):
    arrays = tiny(tmp_path / "m", n_train=60, n_test=10)
    cache = tmp_path / "c"
    training, validation, test = load_expanded_mnist("shift4", tmp_path / "m", validation_size=20, cache_dir=cache)
    x, y = training
    assert x.shape == (200, 784) and x.dtype == np.float32 and y.dtype == np.int64
    assert validation[0].shape == (20, 784) and test[0].shape == (10, 784)
    originals = arrays["train_images"][:40].reshape(40, 784)
    np.testing.assert_array_equal(np.rint(x[::5] * 255), originals)
    np.testing.assert_array_equal(y, np.repeat(arrays["train_labels"][:40], 5))
    np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), shift4(originals, y[::5])[0])
    images = cache / "shift4-train-images-idx3-ubyte"
    assert images.is_file() and not any(n.endswith(".part") for n in os.listdir(cache))
    stamp = images.stat().st_mtime_ns
    load_expanded_mnist("shift4", tmp_path / "m", validation_size=20, cache_dir=cache)
    assert images.stat().st_mtime_ns == stamp, "a matching cache is reused, not rebuilt"
    (x2, _), _, _ = load_expanded_mnist("shift4", tmp_path / "m", validation_size=30, cache_dir=cache)
    assert x2.shape == (150, 784), "files built from other images are rebuilt"


def test_expanded_default_places(tmp_path, tiny, isolated_env):
    tiny(tmp_path / "m", n_train=30, n_test=5)
    # Prebuilt files in $NNDL_DATA/mnist-expanded are used as they are.
    build_expanded("affine", tmp_path / "m", out=isolated_env / "mnist-expanded", validation_size=10, seed=3,
                   copies=1)
    (xa, _), _, _ = load_expanded_mnist("affine", tmp_path / "m", validation_size=10, seed=3, copies=1)
    assert xa.shape == (40, 784)
    cache = tmp_path / "nndl_cache" / "mnist-expanded"
    assert not cache.exists()
    # Otherwise they are built in the cache ($NNDL_CACHE here).
    load_expanded_mnist("shift4", tmp_path / "m", validation_size=10)
    assert sorted(os.listdir(cache)) == ["shift4-train-images-idx3-ubyte", "shift4-train-labels-idx1-ubyte"]
    with pytest.raises(ValueError, match="unknown expansion kind"):
        load_expanded_mnist("zoom", tmp_path / "m")
