"""The JSON API (nndl.web.app) through FastAPI's TestClient: the three ways to send an image,
the answers, the schema, and every kind of bad input answered with a clear 4xx, never a 500."""
from __future__ import annotations

import base64
import copy
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import nndl
from nndl.data import images
from nndl.web.app import MAX_BODY, create_app
from tests.web.helpers import FlatNetwork, digit_model, encode, png_claiming, strip


@pytest.fixture(scope="session")
def net():
    return digit_model()


@pytest.fixture(scope="session")
def client(net):
    return TestClient(create_app(net, model_name="test-net"))


@pytest.fixture(scope="session")
def safe_client(net):
    """A client that reports server errors as responses (500) instead of raising them."""
    return TestClient(create_app(net, model_name="test-net"), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def digit_png(mnist):
    """MNIST test digit 0 (a 7) drawn dark on white at 4x, as a PNG file's bytes."""
    img = Image.fromarray(np.round((1 - mnist[2][0][0].reshape(28, 28)) * 255).astype(np.uint8))
    return encode(np.asarray(img.resize((112, 112), Image.Resampling.BICUBIC)))


def _expected(net, data: bytes):
    x = images.preprocess(data)
    return x, net.predict_proba(x)[0]


def _assert_prediction(net, response, data: bytes):
    assert response.status_code == 200, response.text
    body = response.json()
    x, proba = _expected(net, data)
    assert body["digit"] == int(proba.argmax())
    np.testing.assert_allclose(body["probabilities"], proba, atol=1e-6)
    assert sum(body["probabilities"]) == pytest.approx(1.0)
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["preprocessed"]))), dtype=np.float32) / 255
    assert seen.shape == (28, 28)
    np.testing.assert_allclose(seen.reshape(784), x, atol=0.5 / 255 + 1e-6)
    assert "activations" not in body
    return body


def test_health(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["model"]["name"] == "test-net" and body["model"]["n_params"] == 784 * 100 + 100 + 100 * 10 + 10


def test_openapi_schema_documents_the_image_forms(client):
    schema = client.get("/openapi.json").json()
    for path in ("/api/predict", "/api/read"):
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"multipart/form-data", "image/png", "image/jpeg", "application/json"}
        assert {"400", "413", "415", "422"} <= set(schema["paths"][path]["post"]["responses"])
    assert "probabilities" in schema["components"]["schemas"]["PredictResponse"]["properties"]
    assert "/api/health" in schema["paths"]


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<canvas id="pad"' in page.text and "/static/app.js" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_predict_accepts_all_four_forms(net, client, digit_png):
    b64 = base64.b64encode(digit_png).decode()
    answers = [
        client.post("/api/predict", files={"image": ("d.png", digit_png, "image/png")}),
        client.post("/api/predict", content=digit_png, headers={"Content-Type": "image/png"}),
        client.post("/api/predict", json={"image": b64}),
        client.post("/api/predict", json={"image": "data:image/png;base64," + b64}),
        client.post("/api/predict", files={"image": (None, b64)}),  # a multipart text field
    ]
    digits = {_assert_prediction(net, r, digit_png)["digit"] for r in answers}
    assert digits == {7}


def test_predict_counts_the_marks(client, mnist):
    """``marks``: 1 for one digit drawn large; 2 for two digits side by side (a hint for Number mode)."""
    x, _ = mnist[2]
    one = Image.fromarray(np.round(255 * (1 - x[0].reshape(28, 28))).astype(np.uint8))
    two, _ = strip([x[1], x[2]], gap=6)
    two = Image.fromarray(np.round(255 * (1 - two)).astype(np.uint8))
    for img, marks in ((one.resize((280, 280), Image.Resampling.BICUBIC), 1),
                       (two.resize((two.width * 7, two.height * 7), Image.Resampling.BICUBIC), 2)):
        response = client.post("/api/predict", content=encode(np.asarray(img)), headers={"Content-Type": "image/png"})
        assert response.status_code == 200, response.text
        assert response.json()["marks"] == marks


def test_an_unsure_reading_is_a_200_with_no_digit_and_a_message(digit_png):
    client = TestClient(create_app(FlatNetwork(), model_name="flat"))
    response = client.post("/api/predict", content=digit_png, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["digit"] is None and body["reason"] == "unsure" and body["message"] == "unsure: 4 or 9"
    assert body["candidates"] == [4, 9] and body["not_a_digit"] is None
    np.testing.assert_allclose(body["probabilities"], FlatNetwork.PROBABILITIES)
    assert body["marks"] == 1 and body["preprocessed"]


def test_predict_jpeg(net, client, mnist):
    jpeg = encode(1 - mnist[2][0][1].reshape(28, 28), "JPEG", quality=95)
    body = _assert_prediction(net, client.post("/api/predict", content=jpeg,
                                               headers={"Content-Type": "image/jpeg"}), jpeg)
    assert body["digit"] == mnist[2][1][1]


def test_activations_of_a_dense_net(net, client, digit_png):
    body = client.post("/api/predict?activations=true", content=digit_png,
                       headers={"Content-Type": "image/png"}).json()
    [layer] = body["activations"]  # the one hidden layer
    assert layer["layer"] == 0 and layer["kind"] == "dense" and layer["shape"] == [100]
    x, _ = _expected(net, digit_png)
    w, b = net.layers[0].w.value, net.layers[0].b.value
    np.testing.assert_allclose(layer["values"], 1 / (1 + np.exp(-(x @ w + b))), atol=1e-4)


def test_activations_of_a_conv_net(digit_png):
    from nndl.nn.conv import ConvPool

    conv = nndl.Network([ConvPool(4, 5, pool=2, activation="relu", input_shape=(1, 28, 28)),
                         nndl.Dense(4 * 12 * 12, 10, "softmax")], cost="log-likelihood", seed=1)
    client = TestClient(create_app(conv))
    body = client.post("/api/predict?activations=true", content=digit_png, headers={"Content-Type": "image/png"})
    assert body.status_code == 200, body.text
    [maps] = body.json()["activations"]
    assert maps["kind"] == "convpool" and maps["shape"] == [4, 12, 12] and len(maps["values"]) == 4 * 144
    expected = conv.layers[0].forward(conv.prepare_input(images.preprocess(digit_png)))[0]
    np.testing.assert_allclose(maps["values"], expected.ravel(), atol=1e-4)


def test_read_a_number(net, client, mnist):
    x, y = mnist[2]
    ok = net.predict(x) == y
    picks = [x[np.flatnonzero(ok & (y == int(c)))[3]] for c in "504192"]
    ink, spans = strip(picks, gap=5)
    png = encode(1 - ink)
    for response in (client.post("/api/read", content=png, headers={"Content-Type": "image/png"}),
                     client.post("/api/read", files={"image": ("n.png", png, "image/png")})):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["number"] == "504192"
        assert [d["digit"] for d in body["digits"]] == [5, 0, 4, 1, 9, 2]
        for d, (c0, c1) in zip(body["digits"], spans):
            assert c0 <= d["box"][0] < d["box"][2] <= c1 and 0 < d["confidence"] <= 1


# ----- bad input: a clear 4xx with a JSON error, never a 500 ---------------------------------------
def _assert_error(response, status: int, error: str | None = None):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"]
    if error is not None:
        assert body["error"] == error
    return body


def test_oversized_body_is_refused(client):
    big = b"\x89PNG" + b"\0" * MAX_BODY
    _assert_error(client.post("/api/predict", content=big, headers={"Content-Type": "image/png"}),
                  413, "RequestTooLarge")

    def chunks():  # no Content-Length: the guard counts what arrives
        for _ in range(40):
            yield b"\0" * 32768

    _assert_error(client.post("/api/predict", content=chunks(), headers={"Content-Type": "image/png"}), 413)
    _assert_error(client.post("/api/read", files={"image": ("big.png", big, "image/png")}), 413)


def test_huge_image_dimensions_are_refused(client):
    wide = encode(np.zeros((10, 2001), np.uint8))  # small file, too many columns
    body = _assert_error(client.post("/api/predict", content=wide, headers={"Content-Type": "image/png"}),
                         413, "ImageTooLargeError")
    assert "2001x10" in body["detail"]
    bomb = png_claiming(60_000, 60_000)  # 3.6 billion pixels claimed in a ~100-byte file
    _assert_error(client.post("/api/predict", content=bomb, headers={"Content-Type": "image/png"}), 413)
    _assert_error(client.post("/api/read", json={"image": base64.b64encode(bomb).decode()}), 413)


def test_wrong_content_type(client, digit_png):
    for ctype in ("text/plain", "image/gif", "application/octet-stream"):
        _assert_error(client.post("/api/predict", content=digit_png, headers={"Content-Type": ctype}),
                      415, "UnsupportedMediaType")
    _assert_error(client.post("/api/predict", content=digit_png), 415)  # no content type at all
    _assert_error(client.post("/api/predict", json={"image": "data:text/plain;base64,aGVsbG8="}), 415)


def test_bad_base64(client):
    for text in ("not base64 at all!", "data:image/png;base64,@@@@", "data:image/png,rawtext"):
        _assert_error(client.post("/api/predict", json={"image": text}), 400, "BadBase64")
    _assert_error(client.post("/api/predict", json={"image": ""}), 400)
    _assert_error(client.post("/api/predict", json={"image": 42}), 400)
    _assert_error(client.post("/api/predict", json={"picture": "aGVsbG8="}), 400)
    _assert_error(client.post("/api/predict", content=b"{not json", headers={"Content-Type": "application/json"}), 400)


def test_bytes_that_are_not_an_image(client, digit_png):
    for data in (b"hello, world", digit_png[:60], encode(np.zeros((20, 20), np.uint8), "BMP")):
        _assert_error(client.post("/api/predict", content=data, headers={"Content-Type": "image/png"}),
                      400, "ImageFormatError")
    _assert_error(client.post("/api/predict", json={"image": base64.b64encode(b"GIF89a junk").decode()}), 400)
    _assert_error(client.post("/api/predict", content=b"", headers={"Content-Type": "image/png"}), 400)
    _assert_error(client.post("/api/predict", files={"other": ("d.png", digit_png, "image/png")}), 400)
    _assert_error(client.post("/api/predict", content=b"--x\r\nbroken",
                              headers={"Content-Type": "multipart/form-data; boundary=x"}), 400)


def test_blank_image_names_no_digit_error(client):
    blank = encode(np.full((100, 100), 255, np.uint8))
    for path in ("/api/predict", "/api/read"):
        body = _assert_error(client.post(path, content=blank, headers={"Content-Type": "image/png"}),
                             422, "NoDigitError")
        assert body["reason"] == "blank"        # (the detail says what was seen, in words)
    dots = np.full((40, 800), 255, np.uint8)
    for dy in range(2):
        for dx in range(2):
            dots[5 + dy::10, 5 + dx::10] = 0  # 80 marks in a row: not a number
    _assert_error(client.post("/api/read", content=encode(dots), headers={"Content-Type": "image/png"}),
                  422, "SegmentationError")


def test_random_and_mutated_bytes_never_give_a_500(safe_client, digit_png):
    rng = np.random.default_rng(0)
    for i in range(60):
        if i % 2:
            data = rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
        else:  # a real PNG with some bytes changed: gets past the signature, breaks the decoder
            a = np.frombuffer(digit_png, np.uint8).copy()
            where = rng.integers(8, len(a), 6)
            a[where] = rng.integers(0, 256, 6)
            data = a.tobytes()
        path = "/api/read" if i % 3 == 0 else "/api/predict"
        response = safe_client.post(path, content=data, headers={"Content-Type": "image/png"})
        assert response.status_code in (200, 400, 413, 422), (i, response.status_code, response.text)


def test_deeply_nested_json_is_a_400_and_the_connection_keeps_working(safe_client, digit_png):
    for path in ("/api/predict", "/api/read"):
        response = safe_client.post(path, content=b"[" * 2000 + b"]" * 2000,
                                    headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "BadRequest" and "nested too deeply" in response.json()["detail"]
    again = safe_client.post("/api/predict", content=digit_png, headers={"Content-Type": "image/png"})
    assert again.status_code == 200


def test_a_network_with_non_finite_outputs_gets_a_json_error_not_a_crash(digit_png):
    bad = copy.deepcopy(digit_model())                   # the shared model stays as it is
    bad.layers[-1].w.value[0, 0] = np.nan                # a damaged weight: output 0 is NaN for any image
    client = TestClient(create_app(bad, model_name="bad"), raise_server_exceptions=False)
    for path in ("/api/predict", "/api/read"):
        with np.errstate(over="ignore", invalid="ignore"):
            response = client.post(path, content=digit_png, headers={"Content-Type": "image/png"})
        assert response.status_code == 500
        assert response.json()["error"] == "NonFiniteOutputError"
