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
from nndl.web.payloads import APIError, predict_payload
from tests.web.helpers import digit_model, encode


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


def test_bad_bytes_are_an_api_error_with_a_status():
    with pytest.raises(APIError) as caught:
        predict_payload(digit_model(), b"hello, world")
    assert caught.value.status == 400 and caught.value.error == "ImageFormatError"


def test_payloads_do_not_import_fastapi():
    code = "import sys, nndl.web.payloads; assert 'fastapi' not in sys.modules and 'starlette' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
