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


def test_a_float16_file_is_half_the_size_and_loads_as_the_networks_dtype_rounded_to_float16(net, tmp_path, rng):
    full, half = tmp_path / "full.npz", tmp_path / "half.npz"
    net.save(str(full))
    net.save(str(half), stored_dtype="float16", note="small")
    assert os.path.getsize(half) < 0.55 * os.path.getsize(full)
    loaded = nndl.load(str(half))
    assert loaded.metadata == {"note": "small"}
    for a, b in zip(net.get_weights(), loaded.get_weights()):
        assert b.dtype == np.float32 and np.array_equal(b, a.astype(np.float16).astype(np.float32))
    x = rng.random((20, 784), dtype=np.float32)
    np.testing.assert_allclose(loaded.feedforward(x), net.feedforward(x), atol=1e-2)


def test_a_parameter_too_large_for_float16_or_an_unknown_stored_dtype_is_refused(net, tmp_path):
    with pytest.raises(ValueError, match="stored_dtype must be one of"):
        net.save(str(tmp_path / "a.npz"), stored_dtype="int8")
    net.layers[0].params[0].value[0, 0] = 1e5
    with pytest.raises(ValueError, match="does not fit in float16"):
        net.save(str(tmp_path / "b.npz"), stored_dtype="float16")
    assert not (tmp_path / "b.npz").exists()


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


# ----- hostile files (issue 15): refused before they cost memory ---------------------------------------
def _peak_mib(fn):
    """(result or exception, peak MiB of Python allocations) of fn()."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        outcome = None
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        outcome = exc
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return outcome, peak


def test_deeply_nested_architecture_is_refused_not_a_recursion_error(net, tmp_path):
    path = tmp_path / "net.npz"
    net.save(str(path))
    members = _members(path)
    members[META_KEY + ".npy"] = _npy(np.frombuffer(b"[" * 5000 + b"]" * 5000, dtype=np.uint8))
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError, match="nested too deeply"):
        nndl.load(str(path))


def test_a_huge_declared_layer_is_refused_before_anything_is_allocated(net, tmp_path):
    """Dense(784, 300000) declared over the 1.7 kB of arrays of a tiny net: refused at once (before
    this fix: 2.8 GB and 11 s of random initialisation, then "missing array")."""
    path = tmp_path / "net.npz"
    net.save(str(path))
    members = _members(path)
    meta = json.loads(np.load(io.BytesIO(members[META_KEY + ".npy"])).tobytes())
    meta["network"]["layers"][0]["n_out"] = 300_000
    meta["network"]["layers"][2]["n_in"] = 300_000
    members[META_KEY + ".npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    _rewrite(path, members)
    outcome, peak = _peak_mib(lambda: nndl.load(str(path)))
    assert isinstance(outcome, nndl.ModelFileError) and "expected about" in str(outcome)
    assert peak < 50, f"{peak:.0f} MiB allocated before the refusal"
    meta["network"]["layers"][0]["n_out"] = 99_999_999_999      # past the parameter limit
    members[META_KEY + ".npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    _rewrite(path, members)
    with pytest.raises(nndl.ModelFileError, match="more than nndl's limit"):
        nndl.load(str(path))


def test_a_member_that_inflates_past_its_declared_size_is_read_no_further(net, tmp_path):
    """A zip member whose deflate stream holds 64 MB while its headers declare its real size: the
    reader stops at the declared size (before: the whole stream was inflated, then the CRC failed)."""
    import struct

    path = tmp_path / "net.npz"
    net.save(str(path))
    members = _members(path)
    name = "layer0/w.npy"
    declared = len(members[name])
    members[name] = members[name] + b"\0" * (64 << 20)           # compresses to ~64 kB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, data in members.items():
            zf.writestr(key, data)
    blob = bytearray(path.read_bytes())
    big = len(members[name])
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):   # local header, central directory
        start = 0
        while (start := blob.find(sig, start)) >= 0:
            if struct.unpack_from("<I", blob, start + offset)[0] == big:
                struct.pack_into("<I", blob, start + offset, declared)
            start += 4
    path.write_bytes(bytes(blob))
    outcome, peak = _peak_mib(lambda: nndl.load(str(path)))
    assert isinstance(outcome, nndl.ModelFileError)
    assert peak < 16, f"{peak:.0f} MiB allocated reading a member declared as {declared} bytes"


def test_finite_but_huge_weights_are_refused_and_never_give_nan_probabilities(net, tmp_path):
    path = tmp_path / "net.npz"
    w = net.layers[2].w.value
    w[:, 0] = 3e38                                   # each finite; their sum overflows to inf, softmax to NaN
    net.save(str(path))
    with pytest.raises(nndl.ModelFileError, match="magnitude 3e\\+38"):
        nndl.load(str(path))
    x = np.ones((1, 784), np.float32)
    with (pytest.raises(nndl.NonFiniteOutputError, match="NaN or infinite"),
          np.errstate(over="ignore", invalid="ignore")):
        net.predict_proba(x)                         # built in memory, not loaded: the output check


def test_a_zip_claiming_a_newer_format_version_is_a_model_file_error(net, tmp_path):
    """Found by the fuzz suite: zipfile raises NotImplementedError for a member that needs "zip
    version 6.4", which escaped as a traceback."""
    import struct

    path = tmp_path / "net.npz"
    net.save(str(path))
    blob = bytearray(path.read_bytes())
    start = blob.find(b"PK\x01\x02")                       # the first central-directory entry
    struct.pack_into("<H", blob, start + 6, 64)            # "version needed to extract": 6.4
    path.write_bytes(bytes(blob))
    with pytest.raises(nndl.ModelFileError, match="version 6.4"):
        nndl.load(str(path))
