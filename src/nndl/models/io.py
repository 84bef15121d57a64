"""The model file format: saving and loading networks safely (chapter 3's save/load, hardened).

A model file is a ``.npz`` archive: the parameters as plain arrays, and the architecture and
metadata as JSON text stored in the array ``__nndl__``. Nothing is ever unpickled: files are read
with ``allow_pickle=False``; before any array is read, the archive's members are checked against
the sizes the architecture implies (so a zip bomb or an oversized member is refused unread);
every array is then checked for shape, dtype and finiteness. Files are written to a temporary
file in the same directory and renamed into place, so a crash never leaves half a file.

A training checkpoint is a model file with the trainer's state beside it (``nndl.train.checkpoint``
writes and reads those, with the archive functions here).
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import numpy as np

from .. import safejson
from ..backend import to_numpy
from ..errors import ModelFileError
from ..files import atomic_write_bytes

FORMAT = "nndl-model"
VERSION = 1
META_KEY = "__nndl__"
MAX_JSON_BYTES = 16 * 2**20


def _param_key(layer_index: int, name: str) -> str:
    return f"layer{layer_index}/{name}"


def write_archive(path: str, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(buf, **{META_KEY: blob}, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def network_arrays(network) -> dict[str, np.ndarray]:
    return {_param_key(i, p.name): to_numpy(p.value) for i, layer in enumerate(network.layers) for p in layer.params}


STORED_DTYPES = ("float16", "float32", "float64")
FLOAT16_MAX = float(np.finfo(np.float16).max)


def save(network, path: str, *, stored_dtype: str | None = None, **metadata: Any) -> None:
    """Save ``network`` to ``path`` (.npz): architecture as JSON, parameters as arrays.

    ``stored_dtype="float16"`` halves the file (a float32 network's): the parameters are rounded to
    float16 on disk and read back as the network's dtype, so measure a stored network again."""
    meta = {"format": FORMAT, "version": VERSION, "kind": "model", "network": network.config(), "metadata": metadata}
    arrays = network_arrays(network)
    if stored_dtype is not None:
        if stored_dtype not in STORED_DTYPES:
            raise ValueError(f"stored_dtype must be one of {', '.join(STORED_DTYPES)}, got {stored_dtype!r}")
        biggest = max((float(np.abs(a).max()) for a in arrays.values() if a.size), default=0.0)
        if stored_dtype == "float16" and biggest > FLOAT16_MAX:
            raise ValueError(f"a parameter of magnitude {biggest:.3g} does not fit in float16 "
                             f"(at most {FLOAT16_MAX:g})")
        arrays = {k: a.astype(stored_dtype) for k, a in arrays.items()}
        meta["stored_dtype"] = stored_dtype
    write_archive(path, meta, arrays)


# ----- reading ---------------------------------------------------------------------------------
def open_archive(path: str) -> tuple[zipfile.ZipFile, dict]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:    # NotImplementedError: a zip "version"
        raise ModelFileError(f"{path} is not an nndl model file (not a valid .npz archive: {exc})") from None
    names = set(zf.namelist())
    if META_KEY + ".npy" not in names:
        raise ModelFileError(f"{path} is not an nndl model file: it has no {META_KEY} record")
    if zf.getinfo(META_KEY + ".npy").file_size > MAX_JSON_BYTES:
        raise ModelFileError(f"{path}: the architecture record is implausibly large")
    try:
        blob = read_array(zf, META_KEY, path)
        meta = safejson.loads(blob.tobytes().decode("utf-8"), "the architecture record")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: the architecture record is damaged ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else "?"
        raise ModelFileError(f"{path} is not an nndl model file (format {found!r})")
    if meta.get("version") != VERSION:
        raise ModelFileError(f"{path} has format version {meta.get('version')!r}; this nndl reads version {VERSION}")
    return zf, meta


def read_array(zf: zipfile.ZipFile, key: str, path: str, expected_bytes: int | None = None) -> np.ndarray:
    name = key + ".npy"
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(f"{path} is missing the array {key!r}") from None
    if expected_bytes is not None and not expected_bytes <= info.file_size <= expected_bytes + 4096:
        raise ModelFileError(f"{path}: array {key!r} holds {info.file_size} bytes, expected about {expected_bytes}")
    try:
        with zf.open(name) as f:
            return np.lib.format.read_array(io.BytesIO(_read_bounded(f, info.file_size)), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise ModelFileError(f"{path}: array {key!r} is damaged or not a plain numeric array ({exc})") from None


def _read_bounded(f, size: int) -> bytes:
    """At most ``size`` bytes of an archive member, in 1 MB steps: ``read()`` alone would let a
    stream that inflates past its declared size grow in memory before its CRC check fails."""
    chunks, left = [], size
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# A trained network's weights are of order 1-100; far larger finite ones overflow to inf and NaN in
# the forward pass (a 3e38 weight made predict print NaN probabilities and serve answer 500).
MAX_ABS_PARAM = 1e6


def read_param(zf, key: str, shape: tuple[int, ...], dtype: np.dtype, path: str) -> np.ndarray:
    arr = read_array(zf, key, path, expected_bytes=int(np.prod(shape)) * np.dtype(dtype).itemsize)
    if arr.shape != shape:
        raise ModelFileError(f"{path}: array {key!r} has shape {arr.shape}, the architecture needs {shape}")
    if arr.dtype.kind != "f":
        raise ModelFileError(f"{path}: array {key!r} has dtype {arr.dtype}, expected floating point")
    if not np.isfinite(arr).all():
        raise ModelFileError(f"{path}: array {key!r} contains NaN or infinite values")
    if arr.size and float(np.abs(arr).max()) > MAX_ABS_PARAM:
        raise ModelFileError(f"{path}: array {key!r} holds a value of magnitude {float(np.abs(arr).max()):.3g}, "
                             f"far beyond any trained network's (limit {MAX_ABS_PARAM:g}): the file is damaged")
    return arr


def network_from_config(config: dict, path: str = "<config>", *, seed: int | None = 0,
                        placeholders: bool = False):
    """Build an (untrained) Network from ``Network.config()``, initialised with ``seed``; with
    ``placeholders``, its parameters are memory-free placeholders of the right shapes (to be
    replaced by a file's arrays)."""
    from contextlib import nullcontext

    from ..nn import LAYER_TYPES, Network
    from ..nn.init import shapes_only

    try:
        layers = []
        for spec in config["layers"]:
            spec = dict(spec)
            kind = spec.pop("kind")
            if kind not in LAYER_TYPES:
                raise ModelFileError(f"{path}: unknown layer kind {kind!r}")
            if "input_shape" in spec and spec["input_shape"] is not None:
                spec["input_shape"] = tuple(spec["input_shape"])
            layers.append(LAYER_TYPES[kind](**spec))
        with shapes_only() if placeholders else nullcontext():     # building the layers allocates their arrays
            return Network(layers, config["cost"], init=config.get("init", "default"),
                           dtype=config.get("dtype", "float32"),
                           output_encoding=config.get("output_encoding", "one-hot"),
                           n_classes=config.get("n_classes"), seed=seed)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the architecture record is invalid ({type(exc).__name__}: {exc})") from None


def read_network(zf: zipfile.ZipFile, meta: dict, path: str):
    net = network_from_config(meta.get("network") or {}, path, placeholders=True)   # nothing allocated yet
    stored = meta.get("stored_dtype", net.dtype)
    if str(stored) not in STORED_DTYPES:
        raise ModelFileError(f"{path}: unknown stored dtype {stored!r}")
    for i, layer in enumerate(net.layers):
        for p in layer.params:
            p.value = read_param(zf, _param_key(i, p.name), p.shape, np.dtype(stored), path).astype(net.dtype)
    return net


def load(path: str):
    """Load a network saved with ``save`` (or a checkpoint). Raises ModelFileError if damaged."""
    zf, meta = open_archive(path)
    if meta.get("kind") == "charrnn":
        zf.close()
        raise ModelFileError(f"{path} is a character RNN; load it with nndl.charrnn.CharRNN.load")
    with zf:
        net = read_network(zf, meta, os.fspath(path))
    net.metadata = meta.get("metadata", {})
    return net


def read_metadata(path: str) -> dict:
    """The ``metadata`` a model file was saved with (settings, seed, ...), without reading its arrays."""
    zf, meta = open_archive(path)
    zf.close()
    metadata = meta.get("metadata", {})
    return metadata if isinstance(metadata, dict) else {}
