"""Preprocessing real paper (nndl.data.paper through nndl.data.images.preprocess): MNIST test
digits photographed under each condition of nndl.data.synthetic are read by the bundled model,
and what is not a digit is refused saying what was seen."""
from __future__ import annotations

import numpy as np
import pytest

from nndl.data import images
from nndl.data.images import NoDigitError
from nndl.data.synthetic import DIGIT_CONDITIONS, on_paper, photo
from nndl.models import load_default_model

N = 40
# measured on these 40 digits (seed 0); each bound is a little below what preprocessing reached
MIN_ACCURACY = {"clean": 0.95, "tight-crop": 0.95, "thick-pen": 0.9, "thin-pen": 0.92, "small": 0.8,
                "shadow": 0.92, "gradient": 0.9, "ruled": 0.92, "frame": 0.92, "jpeg": 0.95}


@pytest.fixture(scope="module")
def model():
    return load_default_model()


@pytest.mark.parametrize("condition", DIGIT_CONDITIONS)
def test_photos_of_digits_are_read(model, mnist, condition):
    x, y = mnist[2][0][:N], mnist[2][1][:N]
    rng = np.random.default_rng(0)
    seen = np.stack([images.preprocess(photo(d, condition, rng)) for d in x])  # none refused
    accuracy = float((model.predict(seen) == y).mean())
    assert accuracy >= MIN_ACCURACY[condition], f"{condition}: {accuracy:.1%}"


def test_a_tight_crop_is_not_refused(mnist):
    x = mnist[2][0][:20]
    for i, d in enumerate(x):
        a = photo(d, "tight-crop", np.random.default_rng(i))
        assert images.preprocess(a).max() == pytest.approx(1.0)


def test_an_even_grey_image_is_refused_saying_so():
    with pytest.raises(NoDigitError, match=r"no ink found: the image is one even grey \(level 0\.5"):
        images.preprocess(np.full((80, 80), 128, np.uint8))


def test_only_ruled_lines_or_only_a_frame_are_refused():
    for kind in ("ruled", "frame"):
        for seed in range(3):
            empty = np.zeros((120, 100), np.float32)  # no ink: the box goes around the whole page
            page = on_paper(empty, np.random.default_rng(seed), ruled=kind == "ruled", frame=kind == "frame")
            with pytest.raises(NoDigitError, match="only straight lines found|no ink found"):  # faint rules: no ink
                images.preprocess(page)


def test_a_shadow_over_a_corner_is_not_ink(model, mnist):
    x, y = mnist[2]
    d = x[int(np.flatnonzero(y == 1)[0])]
    for seed in range(5):
        a = photo(d, "shadow", np.random.default_rng(seed))
        assert int(model.predict(images.preprocess(a))[0]) == 1
