"""Reading numbers (nndl.segment): strips of real MNIST test digits, with gaps and touching,
read by splitting at gaps and choosing cuts by the classifier's confidence."""
from __future__ import annotations

import argparse
import difflib
import json
import math
import time

import numpy as np
import pytest

from nndl import ink_units, segment
from nndl.data.images import NoDigitError
from tests.web.helpers import digit_model, encode, strip

NUMBER = "504192"
TOUCHING_EXACT = 0.75      # numbers with one touching pair read exactly, of 40 (bench_reading measures 150)


@pytest.fixture(scope="session")
def net():
    return digit_model()


@pytest.fixture(scope="session")
def default_net():
    from nndl.models import load_default_model

    return load_default_model()


@pytest.fixture(scope="session")
def confident_digits(mnist, net):
    """Indices of MNIST test digits the network reads correctly, by label."""
    x, y = mnist[2]
    ok = net.predict(x) == y
    return x, y, {d: np.flatnonzero(ok & (y == d)) for d in range(10)}


def _instances(confident_digits, number: str, k: int):
    """The k-th well-read test image of each digit of ``number``."""
    x, _, by_label = confident_digits
    return [x[by_label[int(ch)][k + 7 * i]] for i, ch in enumerate(number)]


def _matched(truth: str, read: str) -> int:
    """How many digits of ``truth`` appear in ``read`` in order (alignment, as for OCR accuracy)."""
    return sum(b.size for b in difflib.SequenceMatcher(None, truth, read, autojunk=False).get_matching_blocks())


def test_digits_with_gaps_are_read_exactly(net, confident_digits):
    for k in range(5):
        ink, spans = strip(_instances(confident_digits, NUMBER, k), gap=4)
        result = segment.read_number(net, 1.0 - ink)  # dark ink on white paper
        assert result.number == NUMBER
        assert [d.digit for d in result.digits] == [int(c) for c in NUMBER]
        for d, (c0, c1) in zip(result.digits, spans):
            x0, y0, x1, y1 = d.box
            assert c0 <= x0 < x1 <= c1 and 6 <= y0 < y1 <= 34  # inside the digit's own columns and rows
            assert 0.0 < d.confidence <= 1.0


def test_touching_digits_are_cut_where_the_classifier_is_confident(default_net, confident_digits):
    """Read by the bundled reader, whose "not a digit" output scores a merged pair low. (A ten-output
    MLP reads 67% of these digits: a "1" pressed against its neighbour is lost in it; see segment.py.)"""
    truth, read = [], []
    for k, gap in enumerate([0, 0, 0, -1, -1, -1]):
        number = NUMBER if k % 2 == 0 else "371865"
        ink, _ = strip(_instances(confident_digits, number, k), gap=gap)
        units = ink_units.find_units(ink)
        assert len(units) < 6  # the test is worth its name: some digits really touch
        truth.append(number)
        read.append(segment.read_number(default_net, ink).number)
    matched = sum(_matched(t, r) for t, r in zip(truth, read)) / sum(map(len, truth))
    assert matched >= 0.75, f"read {read} for {truth}"
    assert sum(abs(len(r) - 6) <= 1 for r in read) >= 5


def test_a_pair_wider_than_any_digit_is_always_cut(net, confident_digits):
    x, _, by_label = confident_digits
    ink, spans = strip([x[by_label[0][0]], x[by_label[8][0]]], gap=-2)  # "08", overlapping: one stroke
    assert len(ink_units.find_units(ink)) == 1
    result = segment.read_number(net, ink)
    assert len(result.digits) == 2
    assert result.digits[0].box[2] <= result.digits[1].box[2]


def test_large_images_give_boxes_in_their_own_pixels(net, confident_digits):
    from PIL import Image

    ink, spans = strip(_instances(confident_digits, NUMBER, 1), gap=4)
    small = segment.read_number(net, ink)
    big_img = Image.fromarray(np.round(ink * 255).astype(np.uint8))
    big_img = big_img.resize((big_img.width * 6, big_img.height * 6), Image.Resampling.BICUBIC)
    big = segment.read_number(net, encode(np.asarray(big_img)))  # line height ~120 px: searched shrunk
    assert big.number == small.number == NUMBER
    for d_small, d_big in zip(small.digits, big.digits):
        np.testing.assert_allclose(d_big.box, 6 * np.array(d_small.box), atol=12)


def test_dashes_and_dirt_are_not_digits(net, confident_digits):
    ink, _ = strip(_instances(confident_digits, "41", 0), gap=12)
    mid = ink.shape[1] // 2
    ink[19:21, mid - 3:mid + 3] = 1.0  # a short dash between the digits
    assert segment.read_number(net, ink).number == "41"


def test_dynamic_programming_maximises_the_product_of_confidences():
    cuts = [0, 10, 20, 30]
    log_score = {(0, 30): math.log(0.5), (0, 10): math.log(0.9), (10, 30): math.log(0.9),
                 (0, 20): math.log(0.99), (20, 30): math.log(0.7), (10, 20): math.log(0.6)}
    # 0.9 x 0.9 = 0.81 beats 0.5 (whole), 0.99 x 0.7 = 0.69 and 0.9 x 0.6 x 0.7 = 0.38
    assert segment._best_split(cuts, list(log_score), log_score) == [(0, 10), (10, 30)]
    log_score[(0, 30)] = math.log(0.95)
    assert segment._best_split(cuts, list(log_score), log_score) == [(0, 30)]


def test_work_is_bounded_on_hostile_images(net):
    """A 2,000-pixel-wide scribble (one unit 150 line heights wide) and a field of dots."""
    scribble = np.zeros((60, 2000), np.float32)
    cols = np.arange(2000)
    rows = (30 + 8 * np.sin(cols / 3.0)).astype(int)
    for dy in range(-2, 3):
        scribble[rows + dy, cols] = 1.0
    t = time.perf_counter()
    result = segment.read_number(net, scribble)
    assert time.perf_counter() - t < 20 and len(result.digits) >= 1
    dots = np.zeros((40, 800), np.float32)
    for dy in range(2):
        for dx in range(2):
            dots[5 + dy::10, 5 + dx::10] = 1.0  # 80 columns of 4 dots: 80 marks, not a number
    with pytest.raises(segment.SegmentationError, match="80 separate marks"):
        segment.read_number(net, dots)


def test_blank_image_raises(net):
    with pytest.raises(NoDigitError):
        segment.read_number(net, np.full((40, 200), 1.0, np.float32))


def test_result_as_json(net, confident_digits):
    ink, _ = strip(_instances(confident_digits, "72", 0), gap=5)
    out = segment.read_number(net, ink).to_dict()
    assert out["number"] == "72" and len(out["digits"]) == 2
    assert set(out["digits"][0]) == {"digit", "confidence", "box"} and len(out["digits"][0]["box"]) == 4
    json.dumps(out)


def test_cli_read(net, confident_digits, tmp_path, capsys):
    from nndl.cli import read

    model = tmp_path / "net.npz"
    net.save(str(model))
    ink, _ = strip(_instances(confident_digits, NUMBER, 2), gap=4)
    image = tmp_path / "number.png"
    image.write_bytes(encode(1.0 - ink))
    parser = argparse.ArgumentParser()
    read.register(parser.add_subparsers())
    args = parser.parse_args(["read", "--model", str(model), "--json", str(image)])
    assert args.func(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["image"] == str(image) and record["number"] == NUMBER
    assert [d["digit"] for d in record["digits"]] == [int(c) for c in NUMBER]


# ----- touching digits, as written by nndl.data.marks, and a network with a "not a digit" output ---------
def test_numbers_with_one_touching_pair_are_read_exactly(default_net, mnist):
    """40 numbers of 3-6 MNIST test digits, one pair of neighbours touching (docs: ~83% on 300)."""
    from nndl.data.marks import number

    x, y = mnist[2]
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(x), int(rng.integers(3, 7)), replace=False) for _ in range(40)]
    read = [segment.read_ink(default_net, number(x[idx], rng, touching=True)).number for idx in picks]
    truth = ["".join(map(str, y[idx])) for idx in picks]
    exact = np.mean([r == t for r, t in zip(read, truth)])
    assert exact >= TOUCHING_EXACT, list(zip(truth, read))


class _Stub:
    """A network with 11 outputs (10: "not a digit") that answers each piece by its ink's width."""

    n_classes = 11

    def __init__(self, rows):
        self.rows = rows  # width in pixels (of the 28x28 MNIST form) -> probabilities (11,)

    def predict_proba(self, x):
        widths = [int(np.ptp(np.flatnonzero((im.reshape(28, 28) > 0.1).any(axis=0)))) + 1 for im in x]
        return np.array([self.rows(w) for w in widths])


def _proba(best: int, p: float, not_digit: float = 0.0) -> np.ndarray:
    """Probabilities (11,): ``p`` for digit ``best``, ``not_digit`` for class 10, the rest shared."""
    row = np.full(11, (1.0 - p - not_digit) / 9)
    row[best], row[10] = p, not_digit
    return row


def test_a_piece_that_is_not_a_digit_is_not_chosen(confident_digits):
    """Two touching digits read whole look like one sure "8" to the digit outputs, but the
    rejection output says "not a digit": the reader cuts them, and never answers class 10."""
    x, _, by_label = confident_digits
    ink, _ = strip([x[by_label[4][0]], x[by_label[7][0]]], gap=-1)
    assert len(ink_units.find_units(ink)) == 1

    def rows(width):  # in MNIST form a whole pair is about 20 pixels wide, a single digit less
        if width >= 19:
            return _proba(8, 0.05, not_digit=0.94)  # the merged pair: "not a digit"
        return _proba(3, 0.97)
    reads = segment.read_ink(_Stub(rows), ink)
    assert len(reads.digits) >= 2 and set(reads.number) == {"3"}
    assert all(d.not_digit is not None and d.not_digit < 0.5 for d in reads.digits)
    assert "not_digit" in reads.to_dict()["digits"][0]

    def prefers_rejecting(width):  # class 10 is the most probable everywhere: digits are 0-9 anyway
        row = np.full(11, 0.01)
        row[10], row[6] = 0.8, 0.11
        return row / row.sum()
    reads = segment.read_ink(_Stub(prefers_rejecting), ink)
    assert reads.number and set(reads.number) == {"6"}
