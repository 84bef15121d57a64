"""The reader: a digit, or none with a reason (not-a-digit, unsure, blank), for 10- and 11-output
networks; and the training set that teaches the 11th output (real-world photos and non-digits)."""
import numpy as np
import pytest

import nndl
from nndl.data.reading_set import REJECT_LABEL, build_reading_set, looks_like_a_one
from nndl.reading import Reading, blank, decide, has_rejection_output, read_digit, split_probabilities


def rows(*ps):
    return np.array(ps, dtype=float)


def test_a_confident_digit_is_read_and_a_flat_answer_is_unsure():
    sure, flat = np.eye(10)[7] * 0.9 + 0.01, np.r_[0.35, 0.05, 0.05, 0.05, 0.4, 0.02, 0.02, 0.02, 0.02, 0.02]
    first, second = decide(rows(sure, flat))
    assert (first.digit, first.reason, first.message) == (7, None, "7") and first.not_a_digit is None
    assert (second.digit, second.reason, second.message, second.candidates) == (None, "unsure", "unsure: 4 or 0",
                                                                                [4, 0])


def test_the_eleventh_output_says_not_a_digit_and_the_digits_are_renormalised():
    p = np.r_[np.full(10, 0.02), 0.8]
    (r,) = decide(p)
    assert (r.digit, r.reason, r.message) == (None, "not-a-digit", "that does not look like a digit")
    assert r.not_a_digit == pytest.approx(0.8) and sum(r.probabilities) == pytest.approx(1.0)
    digits, reject = split_probabilities(rows(np.r_[0.9, np.full(9, 0.0), 0.1]))
    assert digits[0, 0] == pytest.approx(1.0) and reject[0] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="10 or 11 outputs"):
        split_probabilities(rows(np.full(12, 1 / 12)))


def test_blank_images_are_a_reading_with_the_preprocessings_message():
    net = nndl.Network.from_sizes([784, 10], cost="cross-entropy", seed=0)
    r = read_digit(net, np.full((60, 60), 240, np.uint8))
    assert isinstance(r, Reading) and (r.digit, r.reason) == (None, "blank") and "no ink" in r.message
    assert blank("x").to_dict()["reason"] == "blank"
    assert not has_rejection_output(net)
    assert has_rejection_output(nndl.Network.from_sizes([784, 11], cost="log-likelihood", output_activation="softmax"))


def test_the_reading_set_holds_the_digits_their_photos_and_non_digits_labelled_10():
    (x, y), _, _ = nndl.data.load_mnist()
    images, labels = build_reading_set(x[:60], y[:60], seed=3, workers=1)
    assert images.dtype == np.uint8 and images.shape[1] == 784 and len(images) == len(labels)
    np.testing.assert_array_equal(labels[:60], y[:60])                      # the originals first
    variants = labels[60:][labels[60:] != REJECT_LABEL]
    assert 50 <= len(variants) <= 60 and set(variants) <= set(range(10))    # a photo of (nearly) each
    assert 5 <= (labels == REJECT_LABEL).sum() <= 15                        # about a quarter as many non-digits
    again, _ = build_reading_set(x[:60], y[:60], seed=3, workers=1)
    np.testing.assert_array_equal(images, again)                            # deterministic for a seed


def test_a_near_vertical_straight_line_is_a_one_not_a_non_digit():
    ink = np.zeros((60, 60), np.float32)
    ink[5:55, 28:32] = 1.0
    assert looks_like_a_one(ink)
    assert not looks_like_a_one(ink.T)                                      # a horizontal dash
    box = np.zeros((60, 60), np.float32)
    box[10:50, 10:13] = box[10:50, 47:50] = box[10:13, 10:50] = box[47:50, 10:50] = 1.0
    assert not looks_like_a_one(box)
