"""Model files: round trips, atomic writes, and refusal of damaged or malicious files."""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

import nndl
from nndl.models.io import META_KEY


@pytest.fixture
def net():
    return nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dropout(0.3), nndl.Dense(30, 10, "softmax")],
                        cost="log-likelihood", seed=0)


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rewrite(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_round_trip_keeps_architecture_weights_and_predictions(net, tmp_path, rng):
    path = tmp_path / "net.npz"
    net.save(str(path), note="hello")
    loaded = nndl.load(str(path))
    assert loaded.config() == net.config()
    for a, b in zip(net.get_weights(), loaded.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    x = rng.random((5, 784), dtype=np.float32)
    assert np.array_equal(net.feedforward(x), loaded.feedforward(x))
    assert loaded.metadata == {"note": "hello"}


def test_save_is_atomic_and_leaves_no_temp_files(net, tmp_path):
    path = tmp_path / "sub" / "net.npz"
    net.save(str(path))
    net.save(str(path))  # overwrite in place
    assert sorted(os.listdir(path.parent)) == ["net.npz"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        nndl.load(str(tmp_path / "nope.npz"))


def test_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a model")
    with pytest.raises(nndl.ModelFileError, match="not a valid .npz"):
        nndl.load(str(path))


def test_truncated_file_is_refused(net, tmp_path):
    path = tmp_path / "net.npz"
    net.save(str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(nndl.ModelFileError):
        nndl.load(str(path))


def test_plain_npz_without_architecture_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.zeros(3))
    with pytest.raises(nndl.ModelFileError, match="no __nndl__ record"):
        nndl.load(str(path))


def test_pickled_object_array_is_never_unpickled(net, tmp_path):
    path = tmp_path / "evil.npz"
    net.save(str(path))
    members = _members(path)

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    members["layer0/w.npy"] = _npy(np.array([Boom()], dtype=object), allow_pickle=True)
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError):
        nndl.load(str(path))
    assert not (tmp_path / "pwned").exists()


def test_wrong_shape_is_refused(net, tmp_path):
    path = tmp_path / "net.npz"
    net.save(str(path))
    members = _members(path)
    members["layer0/w.npy"] = _npy(np.zeros((30, 784), np.float32))
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError, match=r"shape \(30, 784\).*needs \(784, 30\)"):
        nndl.load(str(path))


def test_nan_weights_are_refused(net, tmp_path):
    path = tmp_path / "net.npz"
    net.save(str(path))
    members = _members(path)
    bad = np.zeros(10, np.float32)
    bad[3] = np.nan
    members["layer2/b.npy"] = _npy(bad)
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError, match="NaN"):
        nndl.load(str(path))


def test_oversized_member_is_refused_before_reading(net, tmp_path):
    path = tmp_path / "net.npz"
    net.save(str(path))
    members = _members(path)
    members["layer2/b.npy"] = _npy(np.zeros(5_000_000, np.float32))  # claims 20 MB where 40 bytes belong
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError, match="bytes, expected about 40"):
        nndl.load(str(path))


def test_unknown_layer_kind_and_bad_architecture_are_refused(net, tmp_path):
    path = tmp_path / "net.npz"
    net.save(str(path))
    members = _members(path)
    meta = json.loads(np.load(io.BytesIO(members[META_KEY + ".npy"])).tobytes())
    meta["network"]["layers"][0]["kind"] = "os.system"
    members[META_KEY + ".npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError, match="unknown layer kind 'os.system'"):
        nndl.load(str(path))
    meta["network"]["layers"][0] = {"kind": "dense", "n_in": 784, "n_out": -3}
    members[META_KEY + ".npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError, match="architecture record is invalid"):
        nndl.load(str(path))


def test_missing_array_is_refused(net, tmp_path):
    path = tmp_path / "net.npz"
    net.save(str(path))
    members = _members(path)
    del members["layer2/w.npy"]
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError, match="missing the array 'layer2/w'"):
        nndl.load(str(path))
