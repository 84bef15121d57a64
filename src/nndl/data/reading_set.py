"""The training set of the real-world reader: MNIST's digits as photos of paper, and non-digits.

A network that reads users' photos and drawings must have seen what preprocessing makes of them.
``build_reading_set`` takes MNIST training images and adds, for each one, ``copies`` versions
photographed under a random real-world condition (``nndl.data.synthetic``: tight crops, thick
and thin pens, small digits, shadows, lighting gradients, ruled paper, frames, JPEG) and put back
through ``nndl.data.images.preprocess``, exactly as ``nndl predict`` and the web app will do;
plus synthetic non-digits (``nndl.data.marks``: dots, dashes, scribbles, boxes, lines, noise,
blobs, two digits side by side, letters) labelled 10, the rejection class of ``nndl.reading``.
Inputs that preprocessing refuses as blank are left out, as the reader never classifies them.

Only training images are used (never the test set). The set is deterministic for a seed, built in
parallel chunks (one process per core), and cached as IDX files next to the expanded MNIST sets
(``load_reading_set``), so a training run builds it once.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .idx import read_idx, write_idx
from .sources import cache_root

REJECT_LABEL = 10
VERSION = 1                # bump when the renderers or preprocessing change what a seed builds
CHUNK = 2000
NON_DIGIT_SHARE = 0.25     # non-digits per MNIST image


def _photo_effects(rng: np.random.Generator) -> dict:
    """Random paper effects for a non-digit's photo (each about one time in five)."""
    return {k: bool(rng.random() < 0.2) for k in ("shadow", "gradient", "ruled", "frame")}


def looks_like_a_one(ink: np.ndarray, within_degrees: float = 30.0) -> bool:
    """Whether an ink image is one straight stroke within ``within_degrees`` of vertical: that is
    how many people write a 1, so such a "line" is no non-digit (neither for training nor scoring)."""
    ys, xs = np.nonzero(ink > 0.2)
    if len(ys) < 2:
        return False
    cov = np.cov(np.stack([xs, ys]).astype(float))
    evals, evecs = np.linalg.eigh(cov)
    if evals[0] > 0.05 * evals[1]:              # not thin: not one straight stroke
        return False
    major = evecs[:, 1]
    return abs(major[1]) >= np.cos(np.radians(within_degrees))


def _chunk(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Variants and non-digits for one chunk of images, from its own seed (for parallel builds)."""
    from .images import NoDigitError, preprocess
    from .marks import NON_DIGITS, non_digit
    from .synthetic import DIGIT_CONDITIONS, on_paper, photo

    x, y, seed, copies, n_non_digits, pool = args
    rng = np.random.default_rng(seed)
    out_x, out_y = [], []

    def add(image: np.ndarray, label: int) -> None:
        try:
            out_x.append(np.rint(preprocess(image) * 255).astype(np.uint8))
            out_y.append(label)
        except NoDigitError:            # the reader never classifies what preprocessing calls blank
            pass

    for image, label in zip(x, y):
        for _ in range(copies):
            add(photo(image, DIGIT_CONDITIONS[rng.integers(len(DIGIT_CONDITIONS))], rng), int(label))
    for _ in range(n_non_digits):
        kind = NON_DIGITS[rng.integers(len(NON_DIGITS))]
        ink = non_digit(kind, rng, digits=pool)
        if not looks_like_a_one(ink):
            add(on_paper(ink, rng, **_photo_effects(rng)), REJECT_LABEL)
    return (np.stack(out_x) if out_x else np.zeros((0, 784), np.uint8)), np.asarray(out_y, np.uint8)


def build_reading_set(x: np.ndarray, y: np.ndarray, *, seed: int = 0, copies: int = 1,
                      workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The training images (n, 784) in [0, 1] and labels, then their real-world variants, then
    non-digits (label 10): uint8 images (N, 784) and labels (N,)."""
    x = np.asarray(x)
    n = len(x)
    starts = range(0, n, CHUNK)
    jobs = [(x[s:s + CHUNK], np.asarray(y)[s:s + CHUNK], [seed, VERSION, k], copies,
             int(round(NON_DIGIT_SHARE * min(CHUNK, n - s))), x[s:s + CHUNK]) for k, s in enumerate(starts)]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_chunk, jobs))
    else:
        parts = [_chunk(job) for job in jobs]
    base = np.rint(x * 255).astype(np.uint8) if x.dtype.kind == "f" else x.astype(np.uint8)
    images = np.concatenate([base.reshape(n, -1), *(p[0] for p in parts)])
    labels = np.concatenate([np.asarray(y, np.uint8), *(p[1] for p in parts)])
    return images, labels


def _paths(x: np.ndarray, y: np.ndarray, seed: int, copies: int) -> tuple[Path, Path]:
    """Cache files named by the images' own hash: another subset never reads this one's set."""
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.asarray(y).tobytes()).hexdigest()[:12]
    stem = cache_root() / "mnist-expanded" / f"reading-v{VERSION}-{len(x)}-{digest}-seed{seed}-copies{copies}"
    return Path(f"{stem}-images-idx1-ubyte.gz"), Path(f"{stem}-labels-idx1-ubyte.gz")


def load_reading_set(x: np.ndarray, y: np.ndarray, *, seed: int = 0, copies: int = 1,
                     dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``build_reading_set`` of these training images, cached on disk: (x (N, 784) in [0, 1], y)."""
    images_path, labels_path = _paths(x, y, seed, copies)
    if images_path.exists() and labels_path.exists():
        images, labels = read_idx(images_path), read_idx(labels_path)
    else:
        images, labels = build_reading_set(x, y, seed=seed, copies=copies)
        write_idx(images_path, images)
        write_idx(labels_path, labels)
    return images.astype(dtype) / 255, labels.astype(np.int64)


__all__ = ["REJECT_LABEL", "build_reading_set", "load_reading_set"]
