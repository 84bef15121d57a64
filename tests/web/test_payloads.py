"""The work behind the endpoints (nndl.web.payloads), called directly: no FastAPI, no HTTP.

How long a prediction takes is measured by ``benchmarks/bench_serve.py`` (p50 latency, server CPU
time per request), not asserted here."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nndl.data import images
from nndl.web.payloads import APIError, count_marks, predict_payload
from tests.web.helpers import FlatNetwork, digit_model, encode, strip


@pytest.fixture(scope="module")
def digit_png(mnist):
    """MNIST test digit 0 (a 7) drawn dark on white at 4x, as a PNG file's bytes."""
    img = Image.fromarray(np.round((1 - mnist[2][0][0].reshape(28, 28)) * 255).astype(np.uint8))
    return encode(np.asarray(img.resize((112, 112), Image.Resampling.BICUBIC)))


def test_predict_payload_answers_as_the_network_every_time(digit_png):
    """Repeated calls on one loaded network give the same answer: the network's own reading."""
    net = digit_model()
    expected = net.predict_proba(images.preprocess(digit_png))[0]
    answers = [predict_payload(net, digit_png) for _ in range(5)]
    for body in answers:
        assert body["digit"] == int(expected.argmax()) == 7
        np.testing.assert_allclose(body["probabilities"], expected, atol=1e-6)
        assert body == answers[0]


def _drawn_large(ink: np.ndarray, scale: int = 10) -> bytes:
    """White-on-black ink (floats) drawn dark on white, ``scale`` times larger, as a PNG (a canvas)."""
    h, w = ink.shape
    big = Image.fromarray(np.round(255 * (1 - ink)).astype(np.uint8)).resize((w * scale, h * scale),
                                                                              Image.Resampling.BICUBIC)
    return encode(np.asarray(big))


def test_marks_count_the_separate_marks_of_a_drawing(mnist):
    x, _ = mnist[2]
    net = digit_model()
    assert predict_payload(net, _drawn_large(x[0].reshape(28, 28)))["marks"] == 1   # a 7 on a 280-pixel canvas
    assert predict_payload(net, _drawn_large(x[1].reshape(28, 28), 4))["marks"] == 1
    two, _ = strip([x[1], x[2]], gap=6)                                            # a 2 and a 1, side by side
    assert predict_payload(net, _drawn_large(two, 7))["marks"] == 2
    three, _ = strip([x[1], x[2], x[3]], gap=6)
    assert predict_payload(net, _drawn_large(three, 5))["marks"] == 3


def test_specks_and_faint_ink_are_not_marks(mnist):
    digit = np.zeros((60, 60), np.float32)
    digit[10:50, 28:33] = 1.0                       # a 1
    assert count_marks(digit) == 1
    digit[5, 5] = digit[55, 50:52] = 1.0            # two specks: far under a tenth of the ink
    digit[20:40, 45:47] = 0.15                      # a faint smudge, under the ink threshold
    assert count_marks(digit) == 1
    digit[10:50, 5:10] = 1.0                        # a second 1 beside it
    assert count_marks(digit) == 2
    assert count_marks(np.zeros((5, 5), np.float32)) == 0


def test_an_unsure_reading_has_no_digit_and_says_why(digit_png):
    body = predict_payload(FlatNetwork(), digit_png)
    assert body["digit"] is None and body["reason"] == "unsure"
    assert body["message"] == "unsure: 4 or 9" and body["candidates"] == [4, 9]
    np.testing.assert_allclose(body["probabilities"], FlatNetwork.PROBABILITIES)
    assert body["marks"] == 1 and body["preprocessed"]


def test_bad_bytes_are_an_api_error_with_a_status():
    with pytest.raises(APIError) as caught:
        predict_payload(digit_model(), b"hello, world")
    assert caught.value.status == 400 and caught.value.error == "ImageFormatError"


def test_a_blank_image_is_a_422_with_the_reason_blank():
    with pytest.raises(APIError) as caught:
        predict_payload(digit_model(), encode(np.full((50, 50), 255, np.uint8)))
    assert caught.value.status == 422 and caught.value.body()["reason"] == "blank"


def test_payloads_do_not_import_fastapi():
    code = "import sys, nndl.web.payloads; assert 'fastapi' not in sys.modules and 'starlette' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
