"""Outside images → MNIST form (nndl.data.images, nndl.data.imagefile): real MNIST test digits
moved, scaled, inverted, saved as PNG/JPEG files and read back must be classified as the originals are."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from nndl.analysis import roundtrip_accuracy
from nndl.data import imagefile, images
from nndl.data.imagefile import ImageFormatError, ImageTooLargeError
from nndl.data.images import NoDigitError
from nndl.errors import NNDLError
from tests.web.helpers import encode, png_claiming


def _render(img28: np.ndarray, rng: np.random.Generator, invert: bool) -> np.ndarray:
    """An MNIST digit enlarged 1.5-5x (bicubic) at a random place on a larger canvas, uint8."""
    small = Image.fromarray(np.round(img28.reshape(28, 28) * 255).astype(np.uint8))
    s = rng.uniform(1.5, 5.0)
    big = small.resize((round(28 * s), round(28 * s)), Image.Resampling.BICUBIC)
    w, h = int(rng.integers(big.width + 10, 400)), int(rng.integers(big.height + 10, 400))
    canvas = Image.new("L", (w, h), 0)
    canvas.paste(big, (int(rng.integers(0, w - big.width)), int(rng.integers(0, h - big.height))))
    a = np.asarray(canvas)
    return 255 - a if invert else a


def test_moved_scaled_inverted_digits_are_read_as_the_originals(net, test_digits, tmp_path):
    x, y = test_digits
    rng = np.random.default_rng(6)
    paths = []
    for i, img in enumerate(x):
        a = _render(img, rng, invert=i % 2 == 1)  # half dark ink on white paper, as people write
        if i % 4 == 2:
            a = np.repeat(a[..., None], 3, axis=2)  # RGB
        fmt, ext = ("JPEG", "jpg") if i % 3 == 0 else ("PNG", "png")
        path = tmp_path / f"{i:03d}.{ext}"
        path.write_bytes(encode(a, fmt, **({"quality": 90} if fmt == "JPEG" else {})))
        paths.append(path)
    x_files = images.preprocess_many(paths)  # (200, 784)
    assert x_files.shape == (200, 784) and x_files.dtype == np.float32
    assert x_files.min() >= 0.0 and x_files.max() <= 1.0
    same = (net.predict(x_files) == net.predict(x)).mean()
    assert same >= 0.95, f"only {same:.1%} of the moved/scaled/inverted digits are read as the originals"
    assert (net.predict(x_files) == y).mean() >= (net.predict(x) == y).mean() - 0.03


def test_round_trip_through_png_files_reproduces_mnist(net, test_digits, tmp_path):
    x, y = test_digits
    report = roundtrip_accuracy(net, x, y, tmp_path)
    assert report["n"] == 200
    assert report["changed_predictions"] <= 1
    assert abs(report["roundtrip_accuracy"] - report["direct_accuracy"]) <= 0.005
    assert report["mean_abs_pixel_difference"] < 2e-3
    assert len(list(tmp_path.glob("*.png"))) == 200


def test_output_is_mnist_form(test_digits):
    """A digit drawn large off-centre: fits a 20x20 box, centre of mass at (14, 14) ± 0.5."""
    x, _ = test_digits
    rng = np.random.default_rng(0)
    for img in x[:20]:
        out = images.preprocess(_render(img, rng, invert=True)).reshape(28, 28)
        rows, cols = np.flatnonzero((out > 0.1).any(axis=1)), np.flatnonzero((out > 0.1).any(axis=0))
        assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == 20
        cy, cx = ndimage.center_of_mass(out)
        assert abs(cy - 14) <= 0.5 + 1e-6 and abs(cx - 14) <= 0.5 + 1e-6
        assert out.max() == pytest.approx(1.0)


def test_aspect_ratio_is_kept():
    tall = np.zeros((200, 200), np.float32)
    tall[20:140, 100:124] = 1.0  # a 120 x 24 bar (as wide as a pen's stroke may be: kept as it is)
    out = images.preprocess(tall).reshape(28, 28) > 0.5
    assert out.any(axis=1).sum() == 20 and 3 <= out.any(axis=0).sum() <= 5
    wide = tall.T.copy()
    out = images.preprocess(wide).reshape(28, 28) > 0.5
    assert out.any(axis=0).sum() == 20 and 3 <= out.any(axis=1).sum() <= 5


def test_inverted_colours_give_the_same_input(test_digits):
    x, _ = test_digits
    a = _render(x[3], np.random.default_rng(1), invert=False)  # white on black
    np.testing.assert_allclose(images.preprocess(encode(a)), images.preprocess(encode(255 - a)), atol=1e-6)


def test_transparent_canvas_reads_like_paper(test_digits):
    a = _render(test_digits[0][5], np.random.default_rng(2), invert=False)  # ink = bright values
    rgba = np.zeros(a.shape + (4,), np.uint8)  # black ink, opacity = ink, on a transparent background
    rgba[..., 3] = a
    on_paper = 255 - a
    np.testing.assert_allclose(images.preprocess(encode(rgba)), images.preprocess(encode(on_paper)), atol=2 / 255)


def test_specks_far_from_the_digit_are_ignored(test_digits):
    a = _render(test_digits[0][7], np.random.default_rng(3), invert=True)
    dirty = a.copy()
    dirty[2:4, 2:4] = 0  # a 2x2 speck of dark ink in a corner
    np.testing.assert_allclose(images.preprocess(dirty), images.preprocess(a), atol=1e-6)


def test_centre_of_mass_matches_scipy(test_digits):
    for img in test_digits[0][:10]:
        a = img.reshape(28, 28)
        np.testing.assert_allclose(images.centre_of_mass(a), ndimage.center_of_mass(a), atol=1e-9)


@pytest.mark.parametrize("blank", [
    np.full((60, 60), 255, np.uint8),                                     # white paper
    np.zeros((60, 60), np.uint8),                                         # black
    np.full((60, 60), 128, np.uint8),                                     # grey
    (200 + np.random.default_rng(0).integers(0, 30, (60, 60))).astype(np.uint8),  # faint grain
    np.pad(np.zeros((1, 2), np.uint8), 30, constant_values=255),          # one tiny dot
])
def test_blank_images_raise_no_digit_error(blank):
    with pytest.raises(NoDigitError, match="no ink found|no digit found") as info:
        images.preprocess(encode(blank))
    assert isinstance(info.value, ValueError) and isinstance(info.value, NNDLError)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(ImageFormatError, match="not a readable image"):
        images.preprocess(b"certainly not an image")
    good = encode(np.zeros((40, 40), np.uint8))
    with pytest.raises(ImageFormatError):
        images.preprocess(good[: len(good) // 2])  # truncated
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ImageFormatError, match="notes.png"):
        images.preprocess(text)
    with pytest.raises(FileNotFoundError, match="no image file"):
        images.preprocess(tmp_path / "missing.png")
    with pytest.raises(ImageFormatError, match="accepted formats: PNG"):
        images.preprocess(encode(np.zeros((40, 40), np.uint8), "BMP"), formats=("PNG",))


def test_huge_images_are_refused_before_decoding():
    with pytest.raises(ImageTooLargeError, match="3000x10"):
        images.preprocess(encode(np.zeros((10, 3000), np.uint8)))
    with pytest.raises(ImageTooLargeError):
        images.preprocess(png_claiming(100_000, 100_000))  # a bomb's header: refused unread
    with pytest.raises(ImageTooLargeError, match="at most 64x64"):
        images.preprocess(encode(np.zeros((65, 10), np.uint8)), max_side=64)


def test_png_output_round_trips(test_digits, tmp_path):
    x = test_digits[0][0]
    path = imagefile.save_png(x, tmp_path / "sub" / "d.png")
    back = np.asarray(Image.open(path), dtype=np.float32).reshape(784) / 255
    np.testing.assert_allclose(back, x, atol=0.5 / 255 + 1e-6)
    assert Image.open(path).size == (28, 28)
    assert Image.open(__import__("io").BytesIO(imagefile.to_png(x, scale=4))).size == (112, 112)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["d.png"]  # no temp file left


def _run_cli(module, argv):
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_predict(net, test_digits, tmp_path, capsys):
    from nndl.cli import predict

    model = tmp_path / "net.npz"
    net.save(str(model))
    x, y = test_digits
    rng = np.random.default_rng(4)
    files = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        path.write_bytes(encode(_render(x[i], rng, invert=True)))
        files.append(str(path))
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode(np.full((50, 50), 255, np.uint8)))
    out_dir = tmp_path / "seen"
    rc = _run_cli(predict, ["predict", "--model", str(model), "--json", "--save-preprocessed", str(out_dir),
                            *files, str(blank)])
    assert rc == 1  # the blank image failed, the others were read
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in records] == files + [str(blank)]
    assert records[-1]["error"] == "NoDigitError"
    for record, path in zip(records[:3], files):
        x_seen = images.preprocess(path)
        proba = net.predict_proba(x_seen)[0]
        assert record["digit"] == int(proba.argmax())
        assert [t["digit"] for t in record["top"]] == list(np.argsort(proba)[::-1][:3])
        assert record["top"][0]["probability"] == pytest.approx(proba.max(), abs=1e-5)
        seen = np.asarray(Image.open(record["preprocessed"]), dtype=np.float32).reshape(784) / 255
        np.testing.assert_allclose(seen, x_seen, atol=0.5 / 255 + 1e-6)
    rc = _run_cli(predict, ["predict", "--model", str(model), files[0]])
    assert rc == 0 and capsys.readouterr().out.startswith(f"{files[0]}: ")


@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_a_truncated_jpeg_is_refused_as_a_truncated_png_is(keep):
    import io

    from PIL import Image

    from nndl.data.imagefile import ImageFormatError, read_image

    img = np.full((64, 64), 255, np.uint8)
    img[10:50, 28:36] = 0
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt)
        data = buf.getvalue()
        cut = int(len(data) * keep) if keep > 0 else len(data) + keep
        with pytest.raises(ImageFormatError, match="not a readable image"):
            read_image(data[:cut])
