"""MNIST and Fashion-MNIST as arrays: read, split and scale (chapter 1), one-hot targets, subsets.

The book's split: the first 50,000 images of the 60,000-image training file are the training data,
the last 10,000 the validation data, and the 10,000 images of the test file the test data. Images
come back as float rows of shape ``(n, 784)`` scaled to [0, 1], labels as int64 digits ``(n,)``.

``nndl.data.sources`` finds the files (where they are looked for, and how missing ones are
downloaded and verified); this module reads them.

Loaded arrays are cached in-process (keyed by the files' paths, sizes and modification times) and
returned read-only, so that repeated calls are free and no caller can corrupt another's data;
indexing them (as mini-batching does) makes writable copies.

Limits: only the two 28x28, 10-class data sets of ``DATASETS``; files are trusted once their format
checks pass (``verify`` checks the hashes, ``load_*`` does not, to stay fast).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataFormatError
from .idx import read_idx
from .sources import candidate_dirs, dataset_files, download_dest, find_dataset_dir, get_spec, locate

Pair = tuple[np.ndarray, np.ndarray]  # (x (n, 784) float, y (n,) int64)

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10


def _stat_key(paths: dict[str, Path]) -> tuple:
    """Paths with sizes and mtimes: the in-process cache notices replaced files."""
    key = []
    for role in ROLES:
        st = paths[role].stat()
        key.append((role, str(paths[role].resolve()), st.st_size, st.st_mtime_ns))
    return tuple(key)


@functools.lru_cache(maxsize=4)
def _read_raw(name: str, key: tuple) -> dict[str, np.ndarray]:
    paths = {role: Path(p) for role, p, _, _ in key}
    arrays = {}
    for part in ("train", "test"):
        images = read_idx(paths[f"{part}_images"], ndim=3)  # (n, 28, 28)
        labels = read_idx(paths[f"{part}_labels"], ndim=1)  # (n,)
        if images.shape[1:] != IMAGE_SHAPE:
            raise DataFormatError(
                f"{paths[f'{part}_images']}: images are {images.shape[1]}x{images.shape[2]}, "
                f"expected {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}"
            )
        if images.shape[0] != labels.shape[0]:
            raise DataFormatError(
                f"{paths[f'{part}_images']} holds {images.shape[0]} images but "
                f"{paths[f'{part}_labels']} holds {labels.shape[0]} labels; they must match"
            )
        if labels.size and labels.max() >= N_CLASSES:
            raise DataFormatError(
                f"{paths[f'{part}_labels']}: label {labels.max()} found, expected 0..{N_CLASSES - 1}"
            )
        images.flags.writeable = False
        labels.flags.writeable = False
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = images, labels
    return arrays


def load_raw(name: str = "mnist", data_dir: str | os.PathLike | None = None, *, download: bool = True,
             mirrors: Sequence[str] | str | None = None) -> dict[str, np.ndarray]:
    """The four arrays as stored, read-only: ``train_images`` (60000, 28, 28) uint8,
    ``train_labels`` (60000,) uint8, ``test_images``, ``test_labels`` (no split, no scaling)."""
    paths = locate(name, data_dir, download, mirrors)
    return _read_raw(name, _stat_key(paths))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _to_pair(images: np.ndarray, labels: np.ndarray, dtype: np.dtype) -> Pair:
    x = images.reshape(images.shape[0], -1 if images.size else 784).astype(dtype)  # (n, 784)
    x /= dtype.type(255)
    return _readonly(x), _readonly(labels.astype(np.int64))


@functools.lru_cache(maxsize=4)
def _split(name: str, key: tuple, validation_size: int, dtype_str: str) -> tuple[Pair, Pair, Pair]:
    raw = _read_raw(name, key)
    dtype = np.dtype(dtype_str)
    n = len(raw["train_images"])
    if not 0 <= validation_size < n:
        raise ValueError(f"validation_size must be in 0..{n - 1} (the training file holds {n}), got {validation_size}")
    cut = n - validation_size  # book: first 50,000 train, last 10,000 validation
    training = _to_pair(raw["train_images"][:cut], raw["train_labels"][:cut], dtype)
    validation = _to_pair(raw["train_images"][cut:], raw["train_labels"][cut:], dtype)
    test = _to_pair(raw["test_images"], raw["test_labels"], dtype)
    return training, validation, test


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None, *,
                 validation_size: int = 10000, dtype=np.float32, download: bool = True,
                 mirrors: Sequence[str] | str | None = None) -> tuple[Pair, Pair, Pair]:
    """``(training, validation, test)`` of data set ``name``; see ``load_mnist``."""
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a float type (float32 or float64), got {dt}")
    if isinstance(validation_size, bool) or not isinstance(validation_size, (int, np.integer)):
        raise ValueError(f"validation_size must be an integer, got {validation_size!r}")
    paths = locate(name, data_dir, download, mirrors)
    return _split(name, _stat_key(paths), int(validation_size), dt.str)


def load_mnist(data_dir: str | os.PathLike | None = None, *, validation_size: int = 10000,
               dtype=np.float32, download: bool = True,
               mirrors: Sequence[str] | str | None = None) -> tuple[Pair, Pair, Pair]:
    """MNIST as the book splits it: ``(training, validation, test)``, each an ``(x, y)`` pair.

    ``x`` has shape ``(n, 784)`` with values in [0, 1] (``dtype``, float32 by default), ``y`` holds
    the digits as int64 of shape ``(n,)``: 50,000 training, 10,000 validation (the last
    ``validation_size`` images of the training file) and 10,000 test images. ``data_dir`` is the
    folder holding the four IDX files, or one holding an ``mnist/`` folder of them; by default
    they are looked up (see ``nndl.data.sources``) and downloaded when absent and ``download``
    is true. The arrays are read-only and shared between calls; use ``one_hot(y)`` for the
    book's vector targets.
    """
    return load_dataset("mnist", data_dir, validation_size=validation_size, dtype=dtype,
                        download=download, mirrors=mirrors)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, *, validation_size: int = 10000,
                       dtype=np.float32, download: bool = True,
                       mirrors: Sequence[str] | str | None = None) -> tuple[Pair, Pair, Pair]:
    """Fashion-MNIST (Zalando), a drop-in replacement with MNIST's format and split sizes.

    Same contract as ``load_mnist``; the labels name clothes (``DATASETS["fashion-mnist"].class_names``).
    Debian's ``dataset-fashion-mnist`` package installs it in ``/usr/share/datasets/fashion-mnist``.
    """
    return load_dataset("fashion-mnist", data_dir, validation_size=validation_size, dtype=dtype,
                        download=download, mirrors=mirrors)


def info(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> dict:
    """Where ``name`` was found, its file names, counts, split sizes and class counts.

    Does not download: when the data set is absent, ``found`` is False and ``searched`` lists
    the folders looked in.
    """
    spec = get_spec(name)
    folder = find_dataset_dir(name, data_dir)
    searched = [str(d) for d in candidate_dirs(name, data_dir)]
    out: dict = {"name": name, "found": folder is not None, "searched": searched}
    if folder is None:
        out["download_to"] = str(download_dest(name, data_dir))
        return out
    paths = dataset_files(name, folder)
    raw = _read_raw(name, _stat_key(paths))  # type: ignore[arg-type]
    n_train, n_test = len(raw["train_labels"]), len(raw["test_labels"])
    out.update(
        dir=str(folder),
        files={role: str(p) for role, p in paths.items()},
        image_shape=list(raw["train_images"].shape[1:]),
        train_count=n_train,
        test_count=n_test,
        split={"training": n_train - 10000, "validation": 10000, "test": n_test},
        class_names=list(spec.class_names),
        train_class_counts=np.bincount(raw["train_labels"], minlength=N_CLASSES).tolist(),
        test_class_counts=np.bincount(raw["test_labels"], minlength=N_CLASSES).tolist(),
    )
    return out


# ---------------------------------------------------------------------------------------------
# Targets and subsets


def one_hot(labels, n_classes: int = N_CLASSES, dtype=np.float32):
    """The book's vector targets: row i is all zeros but a 1 at ``labels[i]``; shape ``(n, n_classes)``.

    Works on NumPy or CuPy labels (the result lives with them).
    """
    from ..backend import array_module

    xp = array_module(labels)
    y = xp.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {tuple(y.shape)}")
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and y.size and bool(xp.all(y == xp.round(y))):
            y = y.astype(np.int64)
        elif y.size:
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        else:
            y = y.astype(np.int64)
    if y.size and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(
            f"labels must be in 0..{n_classes - 1} for n_classes={n_classes}, got values {int(y.min())}..{int(y.max())}"
        )
    out = xp.zeros((y.shape[0], n_classes), dtype=dtype)  # (n, n_classes)
    out[xp.arange(y.shape[0]), y] = 1
    return out


def subset(data: Pair, *, digits: Iterable[int] | None = None, size: int | None = None) -> Pair:
    """``(x, y)`` restricted to the classes in ``digits`` and/or its first ``size`` samples.

    For the book's quick experiments (chapter 3: "train on 0s and 1s only"): labels keep their
    original digit values, so a 10-output network still works unchanged.
    """
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)} labels")
    if digits is not None:
        wanted = sorted({int(d) for d in digits})
        if not wanted:
            raise ValueError("digits is empty; give at least one class, e.g. digits=(0, 1)")
        present = set(np.unique(y).tolist())
        missing = [d for d in wanted if d not in present]
        if missing:
            raise ValueError(f"digits {missing} {'is' if len(missing) == 1 else 'are'} not a label of this data "
                             f"set (its labels: {min(present)}..{max(present)}); e.g. --digits 0,1")
        mask = np.isin(y, wanted)
        x, y = x[mask], y[mask]
    if size is not None:
        if isinstance(size, bool) or int(size) != size or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if size > len(y):
            raise ValueError(
                f"size={size} but only {len(y)} samples are available"
                + (f" for digits {wanted}" if digits is not None else "")
            )
        x, y = x[:size], y[:size]
    return x, y
