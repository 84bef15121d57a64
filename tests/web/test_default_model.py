"""The bundled default model (nndl.models.default) and the commands that fall back to it."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from nndl.data import images
from nndl.errors import NNDLError
from nndl.models import default
from tests.web.helpers import digit_model, encode


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """A stand-in for the package's default/ folder, empty at first."""
    monkeypatch.setattr(default, "DEFAULT_MODEL_DIR", tmp_path / "default")
    return tmp_path / "default" / default.DEFAULT_MODEL_NAME


def test_missing_default_model_is_a_clear_error(bundled):
    with pytest.raises(default.DefaultModelMissingError, match="--model PATH") as info:
        default.default_model_path()
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, NNDLError)
    assert str(bundled) in str(info.value)
    with pytest.raises(FileNotFoundError):
        default.load_model(None)


def test_default_model_is_found_and_loaded(bundled):
    net = digit_model()
    net.save(str(bundled))
    assert default.default_model_path() == bundled
    loaded = default.load_default_model()
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    np.testing.assert_allclose(loaded.feedforward(x), net.feedforward(x), rtol=1e-6)
    assert default.model_label(None) == "default" and default.model_label("/a/b/net.npz") == "net.npz"


def test_predict_without_model_uses_the_default(bundled, mnist, tmp_path, capsys):
    from nndl.cli import predict

    net = digit_model()
    net.save(str(bundled))
    path = tmp_path / "seven.png"
    path.write_bytes(encode(1 - mnist[2][0][0].reshape(28, 28)))
    parser = argparse.ArgumentParser()
    predict.register(parser.add_subparsers())
    args = parser.parse_args(["predict", "--json", str(path)])
    assert args.func(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["digit"] == int(net.predict(images.preprocess(path))[0]) == 7


def test_the_shipped_default_model_when_present(mnist):
    """Once the lead ships default.npz: it must load and read MNIST well, also through PNG files."""
    path = default.DEFAULT_MODEL_DIR / default.DEFAULT_MODEL_NAME
    if not path.is_file():
        with pytest.raises(default.DefaultModelMissingError):
            default.load_default_model()
        return
    net = default.load_default_model()
    x, y = mnist[2]
    assert net.accuracy((x[:1000], y[:1000])) >= 0.95
    x_png = images.preprocess_many([images.to_png(img) for img in x[:200]])
    assert (net.predict(x_png) == net.predict(x[:200])).mean() >= 0.99
