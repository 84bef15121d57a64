"""Artificially expanding the training data (chapter 3, and chapter 6's 250,000 shifted images).

Two ways to use more data than MNIST holds:

* **Materialised, once** (the book's way): ``shift4`` adds, for each training image, copies
  shifted one pixel down, up, right and left (zero fill), turning 50,000 images into 250,000;
  ``load_expanded_mnist("shift4")`` builds this once into uint8 IDX files under
  ``~/.cache/nndl/mnist-expanded/`` (or ``$NNDL_CACHE``; prebuilt files are also looked for in
  ``$NNDL_DATA/mnist-expanded/``) and loads them afterwards. ``nndl data expand`` does the same
  from the command line. The kinds ``affine`` and ``elastic`` materialise random distortions the
  same way (original plus ``copies`` distorted versions, from a fixed seed).
* **On the fly, per epoch**: call ``augment(x_batch, rng)`` on each mini-batch (or on the whole
  training set at the start of each epoch). Every epoch then sees fresh distortions (small
  rotations, shifts, skews and optionally Simard's elastic distortions), so nothing is stored and
  the network never sees the same distorted image twice; the cost is some CPU time per epoch::

      rng = np.random.default_rng(0)
      for epoch in range(epochs):
          x_epoch = augment(training[0], rng)           # (50000, 784), new distortions
          net.fit((x_epoch, training[1]), epochs=1, mini_batch_size=10, eta=0.03)

Limits: images are square and greyscale; interpolation is bilinear; ``augment`` keeps the
image's dtype (integer images are rounded back).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataFormatError
from .datasets import Pair, load_mnist, load_raw
from .idx import idx_shape, read_idx, write_idx
from .sources import cache_root

KINDS = ("shift4", "affine", "elastic")
# Simard, Steinkraus & Platt (2003) used alpha=34, sigma=4 for elastic distortions of MNIST.
ELASTIC_ALPHA, ELASTIC_SIGMA = 34.0, 4.0
_BLOCK = 2048  # images per map_coordinates call: bounds the (3, block, h, w) coordinate array


def _as_images(x: np.ndarray) -> tuple[np.ndarray, int]:
    """``x`` of shape (n, side*side) or (n, side, side) as (n, side, side), and the side."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[1] == 1:         # (n, 1, h, w): a conv net's input, one channel
        x = x[:, 0]
    if x.ndim == 3 and x.shape[1] == x.shape[2]:
        return x, x.shape[1]
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side == x.shape[1]:
            return x.reshape(len(x), side, side), side
    raise ValueError(f"expected square images of shape (n, 784), (n, 28, 28) or (n, 1, 28, 28), got {x.shape}")


def shift4(x: np.ndarray, y: np.ndarray) -> Pair:
    """The book's ``expand_mnist.py``: each image, then copies shifted 1 pixel down, up, right, left.

    ``x`` (n, 784) (or (n, 28, 28)), ``y`` (n,). Returns ``(5n, 784)`` images (same dtype and
    layout as ``x``) and ``(5n,)`` labels, the five versions of each image consecutive in the
    book's order. The row or column shifted in is zero; the one shifted out is lost. The book
    shuffles afterwards; here training shuffles every epoch anyway.
    """
    imgs, _ = _as_images(x)  # (n, h, w)
    y = np.asarray(y)
    if len(y) != len(imgs):
        raise ValueError(f"x has {len(imgs)} images but y has {len(y)} labels")
    out = np.zeros((len(imgs), 5) + imgs.shape[1:], dtype=imgs.dtype)  # (n, 5, h, w)
    out[:, 0] = imgs
    out[:, 1, 1:, :] = imgs[:, :-1, :]  # down:  np.roll(img, 1, 0), top row zeroed
    out[:, 2, :-1, :] = imgs[:, 1:, :]  # up:    np.roll(img, -1, 0), bottom row zeroed
    out[:, 3, :, 1:] = imgs[:, :, :-1]  # right: np.roll(img, 1, 1), left column zeroed
    out[:, 4, :, :-1] = imgs[:, :, 1:]  # left:  np.roll(img, -1, 1), right column zeroed
    return out.reshape((5 * len(imgs),) + np.shape(x)[1:]), np.repeat(y, 5)


def augment(x: np.ndarray, rng: np.random.Generator, *, max_shift: float = 2.0, max_rotation: float = 10.0,
            max_skew: float = 0.15, elastic_alpha: float | None = None,
            elastic_sigma: float | None = None) -> np.ndarray:
    """Randomly distorted copies of a batch of images, for on-the-fly expansion each epoch.

    Each image gets its own rotation (uniform in ±``max_rotation`` degrees), horizontal skew
    (shear factor in ±``max_skew``) and shift (±``max_shift`` pixels on each axis), about its
    centre; with ``elastic_alpha`` set, also Simard's elastic distortion (a random displacement
    field, smoothed by a Gaussian of ``elastic_sigma`` pixels, default 4, scaled by alpha; 34 is
    Simard's choice for MNIST). All parameters are drawn from ``rng``, so the same Generator state
    gives the same output. ``x`` is (n, 784), (n, 28, 28) or a conv net's (n, 1, 28, 28), with ink as
    high values; the result has the same shape and dtype.

    All images are resampled together: one ``scipy.ndimage.map_coordinates`` call per block of
    images with a (3, block, h, w) coordinate array, never a Python loop over images.
    """
    from scipy import ndimage

    imgs, side = _as_images(x)
    n = len(imgs)
    for name, value in (("max_shift", max_shift), ("max_rotation", max_rotation), ("max_skew", max_skew)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if elastic_alpha is None and elastic_sigma is not None:
        raise ValueError("elastic_sigma given without elastic_alpha; "
                         "set elastic_alpha (e.g. 34) to use elastic distortion")
    sigma = ELASTIC_SIGMA if elastic_sigma is None else float(elastic_sigma)
    if elastic_alpha is not None and sigma <= 0:
        raise ValueError(f"elastic_sigma must be > 0, got {sigma}")

    # Draw every random number up front, in a fixed order: determinism given the Generator.
    theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n))  # (n,)
    skew = rng.uniform(-max_skew, max_skew, n)  # (n,)
    shift = rng.uniform(-max_shift, max_shift, (n, 2))  # (n, 2) rows, cols

    # Inverse map: output pixel p takes the input at A·(p - c) + c - shift (+ elastic), A = R·S.
    cos, sin = np.cos(theta), np.sin(theta)
    A = np.empty((n, 2, 2))  # (n, 2, 2)
    A[:, 0, 0], A[:, 0, 1] = cos, -sin
    A[:, 1, 0], A[:, 1, 1] = sin, cos
    S = np.zeros((n, 2, 2))
    S[:, 0, 0] = S[:, 1, 1] = 1.0
    S[:, 1, 0] = skew  # column offset grows with the row: a horizontal skew
    A = A @ S
    c = (side - 1) / 2.0
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij")) - c  # (2, h, w)

    if elastic_alpha is not None:
        # Gaussian smoothing is linear: G @ v filters a column v, so G @ F @ G.T smooths a whole
        # stack of fields with two batched matrix products instead of a slow per-pixel filter.
        G = ndimage.gaussian_filter1d(np.eye(side, dtype=np.float32), sigma, axis=0)  # (h, h)
    out_dtype = imgs.dtype
    src = imgs.astype(np.float32)
    out = np.empty((n, side, side), dtype=np.float32)
    for start in range(0, n, _BLOCK):
        sl = slice(start, min(start + _BLOCK, n))
        coords = np.einsum("nij,jhw->inhw", A[sl], grid) + c - shift[sl].T[:, :, None, None]  # (2, b, h, w)
        if elastic_alpha is not None:
            # Drawn block by block (bounded memory; still a fixed order of draws from rng).
            field = 2 * rng.random((2, sl.stop - sl.start, side, side), dtype=np.float32) - 1  # (2, b, h, w)
            coords += float(elastic_alpha) * (G @ field @ G.T)
        # The image index is an exact integer coordinate, so no ink bleeds between images.
        index = np.broadcast_to(np.arange(coords.shape[1])[:, None, None], coords.shape[1:])
        out[sl] = ndimage.map_coordinates(
            src[sl], np.concatenate([index[None], coords]), order=1, mode="constant", cval=0.0
        )
    if out_dtype.kind in "ui":
        info = np.iinfo(out_dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(out_dtype).reshape(np.shape(x))
    return out.astype(out_dtype, copy=False).reshape(np.shape(x))


def expand_dataset(kind: str, x: np.ndarray, y: np.ndarray, *, rng: np.random.Generator | None = None,
                   copies: int = 4, **augment_kwargs) -> Pair:
    """Expanded ``(x, y)``: ``shift4``, or the original plus ``copies`` random distortions.

    ``kind``: ``"shift4"`` (the book's 5x set), ``"affine"`` (``augment`` with its defaults) or
    ``"elastic"`` (``augment`` with Simard's elastic distortion, alpha 34 and sigma 4, plus milder
    affine). The versions of each image are consecutive, like ``shift4``. ``augment_kwargs``
    override ``augment``'s parameters for the random kinds.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown expansion kind {kind!r}; expected one of {KINDS}")
    if kind == "shift4":
        return shift4(x, y)
    if rng is None:
        raise ValueError(f"kind {kind!r} is random: pass rng=np.random.default_rng(seed)")
    if isinstance(copies, bool) or int(copies) != copies or copies < 1:
        raise ValueError(f"copies must be a positive integer, got {copies!r}")
    params = dict(max_shift=1.0, max_rotation=5.0, max_skew=0.1, elastic_alpha=ELASTIC_ALPHA,
                  elastic_sigma=ELASTIC_SIGMA) if kind == "elastic" else {}
    params.update(augment_kwargs)
    x = np.asarray(x)
    versions = [x] + [augment(x, rng, **params) for _ in range(copies)]
    stacked = np.stack(versions, axis=1)  # (n, copies+1, ...)
    return stacked.reshape((-1,) + x.shape[1:]), np.repeat(np.asarray(y), copies + 1)


# ---------------------------------------------------------------------------------------------
# The on-disk cache of materialised expansions


def expanded_dirs() -> list[Path]:
    """Folders searched for prebuilt expanded files: ``$NNDL_DATA/mnist-expanded``, then the cache."""
    dirs = []
    if os.environ.get("NNDL_DATA"):
        dirs.append(Path(os.environ["NNDL_DATA"]).expanduser() / "mnist-expanded")
    dirs.append(cache_root() / "mnist-expanded")
    return dirs


def _stem(kind: str, seed: int, copies: int) -> str:
    return "shift4" if kind == "shift4" else f"{kind}-seed{seed}-x{copies}"


def _expanded_names(kind: str, seed: int, copies: int) -> tuple[str, str]:
    stem = _stem(kind, seed, copies)
    return f"{stem}-train-images-idx3-ubyte", f"{stem}-train-labels-idx1-ubyte"


def _matches(images: np.ndarray, labels: np.ndarray, x0: np.ndarray, y0: np.ndarray, k: int) -> bool:
    """Whether stored expanded arrays were built from exactly these training images."""
    return (
        images.shape == (k * len(x0),) + x0.shape[1:]
        and labels.shape == (k * len(y0),)
        and np.array_equal(labels[::k], y0)
        and np.array_equal(images[::k], x0)
    )


def build_expanded(kind: str = "shift4", data_dir: str | os.PathLike | None = None, *,
                   out: str | os.PathLike | None = None, validation_size: int = 10000, seed: int = 0,
                   copies: int = 4, force: bool = False, download: bool = True) -> tuple[Path, Path]:
    """Materialise the expanded MNIST training split as uint8 IDX files; return their paths.

    Reads MNIST (``data_dir`` or the usual places), expands its training split (the first
    ``60000 - validation_size`` images: validation images never leak into training) and writes
    ``<out>/<kind>-train-{images,labels}-...`` (default ``out``: the cache's ``mnist-expanded``).
    Existing files built from the same images are kept unless ``force``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown expansion kind {kind!r}; expected one of {KINDS}")
    raw = load_raw("mnist", data_dir, download=download)
    n = len(raw["train_images"])
    if not 0 <= validation_size < n:
        raise ValueError(f"validation_size must be in 0..{n - 1}, got {validation_size}")
    x0 = raw["train_images"][: n - validation_size]  # (n_train, 28, 28) uint8
    y0 = raw["train_labels"][: n - validation_size]
    k = 5 if kind == "shift4" else copies + 1
    folder = Path(out).expanduser() if out is not None else cache_root() / "mnist-expanded"
    images_path, labels_path = (folder / name for name in _expanded_names(kind, seed, copies))
    if not force and images_path.is_file() and labels_path.is_file():
        try:
            if _matches(read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1), x0, y0, k):
                return images_path, labels_path
        except DataFormatError:
            pass  # damaged: rebuild below
    rng = np.random.default_rng(seed)
    xe, ye = expand_dataset(kind, x0, y0, rng=rng, copies=copies)
    # Raw (not gzip): 196 MB for shift4, but it loads with one read instead of a slow inflate.
    write_idx(labels_path, ye)
    write_idx(images_path, xe)
    return images_path, labels_path


def _find_prebuilt(kind: str, seed: int, copies: int, x0: np.ndarray, y0: np.ndarray, k: int):
    for folder in expanded_dirs():
        images_path, labels_path = (folder / name for name in _expanded_names(kind, seed, copies))
        for ip, lp in ((images_path, labels_path), (Path(f"{images_path}.gz"), Path(f"{labels_path}.gz"))):
            if ip.is_file() and lp.is_file():
                try:
                    images, labels = read_idx(ip, ndim=3), read_idx(lp, ndim=1)
                except DataFormatError:
                    continue
                if _matches(images, labels, x0, y0, k):
                    return images, labels
    return None


def load_expanded_mnist(kind: str = "shift4", data_dir: str | os.PathLike | None = None, *,
                        validation_size: int = 10000, dtype=np.float32, cache_dir: str | os.PathLike | None = None,
                        seed: int = 0, copies: int = 4, download: bool = True) -> tuple[Pair, Pair, Pair]:
    """``(expanded_training, validation, test)``: chapter 6's 250,000 shifted images by default.

    Validation and test data are ``load_mnist``'s, unexpanded. The expanded set is read from
    ``cache_dir`` (if given) or the folders of ``expanded_dirs()``, and built there on first use
    (see ``build_expanded``). Returns fresh arrays (``(n, 784)`` floats in [0, 1], int64 labels),
    not cached in-process: the shift4 set alone is 784 MB as float32.

    For fresh distortions every epoch instead of a fixed expanded set, use ``augment`` on the
    mini-batches of the plain ``load_mnist`` data.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown expansion kind {kind!r}; expected one of {KINDS}")
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a float type (float32 or float64), got {dt}")
    _, validation, test = load_mnist(data_dir, validation_size=validation_size, dtype=dt, download=download)
    raw = load_raw("mnist", data_dir, download=download)
    n_train = len(raw["train_images"]) - validation_size
    x0, y0 = raw["train_images"][:n_train], raw["train_labels"][:n_train]
    k = 5 if kind == "shift4" else copies + 1
    found = None
    if cache_dir is None:
        found = _find_prebuilt(kind, seed, copies, x0, y0, k)
    if found is None:
        paths = build_expanded(kind, data_dir, out=cache_dir, validation_size=validation_size, seed=seed,
                               copies=copies, download=download)
        found = read_idx(paths[0], ndim=3), read_idx(paths[1], ndim=1)
    images, labels = found
    x = images.reshape(images.shape[0], -1 if images.size else 784).astype(dt)  # (k * n_train, 784)
    x /= dt.type(255)
    return (x, labels.astype(np.int64)), validation, test


def expanded_summary(paths: Sequence[Path]) -> str:
    """One line per file: path, shape and size on disk (for the CLI)."""
    lines = []
    for p in paths:
        lines.append(f"{p}  shape {idx_shape(p)}  {p.stat().st_size / 2**20:.1f} MiB")
    return "\n".join(lines)
