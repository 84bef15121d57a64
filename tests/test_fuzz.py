"""Fuzzing with Hypothesis (issue 15): whatever bytes arrive — an IDX file, a model file, an image,
a request to the web API — nndl answers with a result or with one of its own errors, never with
another exception (a traceback, a 500). Each property runs on random inputs and on valid inputs
with random damage, the kind real files get."""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndl
from nndl.data import DataFormatError, read_idx
from nndl.data.images import ImageFormatError, ImageTooLargeError, NoDigitError, preprocess
from nndl.errors import NNDLError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def damaged(data: bytes):
    """A strategy: ``data`` with a few bytes overwritten, a piece cut out, or cut short."""
    n = len(data)
    flip = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=8).map(
        lambda edits: bytes(_apply(bytearray(data), edits)))
    cut = st.tuples(st.integers(0, n), st.integers(0, n)).map(lambda ab: data[:min(ab)] + data[max(ab):])
    return st.one_of(flip, cut, st.integers(0, n).map(lambda k: data[:k]))


def _apply(buf: bytearray, edits) -> bytearray:
    for i, v in edits:
        buf[i] = v
    return buf


# ----- IDX files ----------------------------------------------------------------------------------
def _idx(shape=(3, 4, 4)) -> bytes:
    return struct.pack(">I", 0x800 + len(shape)) + b"".join(struct.pack(">I", d) for d in shape) + bytes(
        int(np.prod(shape)))


@FUZZ
@given(st.one_of(st.binary(max_size=200), damaged(_idx())))
def test_any_idx_bytes_give_an_array_or_a_data_format_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("idx") / "f-idx3-ubyte"
    for blob in (data, __import__("gzip").compress(data)):
        path.write_bytes(blob)
        try:
            out = read_idx(path)
        except DataFormatError:
            continue
        assert out.dtype == np.uint8 and out.size <= len(data)


# ----- model files ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("model") / "net.npz"
    nndl.Network([nndl.ConvPool(2, 3, input_shape=(1, 6, 6)), nndl.Dense(8, 3, "softmax")],
                 cost="log-likelihood", seed=0).save(str(path))
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_any_model_file_loads_or_gives_a_model_file_error(tmp_path_factory, model_bytes, data):
    blob = data.draw(st.one_of(st.binary(max_size=300), damaged(model_bytes)))
    path = tmp_path_factory.mktemp("m") / "net.npz"
    path.write_bytes(blob)
    try:
        net = nndl.load(str(path))
    except nndl.ModelFileError:
        return
    out = net.predict_proba(np.zeros((1, 36), np.float32))
    assert np.isfinite(out).all()


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=30))
def test_any_architecture_record_loads_or_gives_a_model_file_error(tmp_path_factory, model_bytes, record):
    import json

    with zipfile.ZipFile(io.BytesIO(model_bytes)) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = {"format": "nndl-model", "version": 1, "kind": "model", "network": record}
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    members["__nndl__.npy"] = buf.getvalue()
    path = tmp_path_factory.mktemp("a") / "net.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    with pytest.raises(nndl.ModelFileError):
        nndl.load(str(path))                     # no random record is a valid architecture of these arrays


# ----- images --------------------------------------------------------------------------------------
def _png() -> bytes:
    from PIL import Image

    img = np.full((40, 40), 255, np.uint8)
    img[10:30, 18:22] = 0                                     # a dark stroke: a "1"
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@FUZZ
@given(st.one_of(st.binary(max_size=300), damaged(_png())))
def test_any_image_bytes_give_a_digit_image_or_an_image_error(data):
    try:
        x = preprocess(data)
    except (ImageFormatError, NoDigitError, ImageTooLargeError):
        return
    assert x.shape == (784,) and np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1


# ----- the web API ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from nndl.web.app import create_app

    net = nndl.Network([nndl.Dense(784, 10, "softmax")], cost="log-likelihood", seed=0)
    return TestClient(create_app(net), raise_server_exceptions=False)


@FUZZ
@given(path=st.sampled_from(["/api/predict", "/api/read"]),
       content_type=st.sampled_from(["image/png", "image/jpeg", "application/json", "multipart/form-data",
                                     "application/x-www-form-urlencoded", "text/plain", ""]),
       body=st.one_of(st.binary(max_size=300), damaged(_png()),
                      st.text(max_size=200).map(str.encode),
                      st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)))
def test_the_api_answers_every_request_without_a_server_error(client, path, content_type, body):
    response = client.post(path, content=body, headers={"Content-Type": content_type} if content_type else {})
    assert response.status_code in (200, 400, 413, 415, 422), (response.status_code, response.text[:200])
    if response.status_code != 200:
        assert set(response.json()) == {"error", "detail"}


def test_the_fuzzed_errors_are_nndl_errors():
    """What the properties above accept as refusals are all NNDLErrors (the CLI prints them in one line)."""
    for cls in (DataFormatError, nndl.ModelFileError, ImageFormatError, NoDigitError, ImageTooLargeError):
        assert issubclass(cls, NNDLError)
