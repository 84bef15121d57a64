"""Error analysis of a trained classifier: confusion matrix, per-class accuracy, the misclassified
examples (chapters 1 and 6: the book looks at the digits its nets get wrong, e.g. the 33 errors of
the chapter-6 ensemble).

Pure NumPy, no plotting: ``nndl.plots`` draws what this module computes, and ``nndl evaluate``
prints ``error_report``. Rows of the confusion matrix are the true classes, columns the predicted
ones, so ``matrix[3, 5]`` counts the 3s taken for 5s. ``roundtrip_accuracy`` checks that the
preprocessing of outside images (``nndl.data.images``) reproduces MNIST's own form.

Limits: single-label classification only; labels are integers in ``0 .. n_classes - 1`` (one-hot
target rows are accepted and turned into labels).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backend import to_numpy
from .errors import ShapeError


def as_labels(y: Any, name: str) -> np.ndarray:
    """Labels (n,) as int64; one-hot rows (n, k) become their argmax."""
    y = np.asarray(to_numpy(y))
    if y.ndim == 2:
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise ShapeError(f"{name} must be labels of shape (n,) or one-hot rows (n, k), got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype} with fractional values")
    return y.astype(np.int64, copy=False)


def _check_pair(y_true: Any, y_pred: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    t, p = as_labels(y_true, "y_true"), as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ShapeError(f"y_true has {t.shape[0]} labels but y_pred has {p.shape[0]}; they must match one to one")
    for name, y in (("y_true", t), ("y_pred", p)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} must be in 0..{n_classes - 1}, got values from {y.min()} to {y.max()}; "
                             f"pass n_classes= if there are more classes")
    return t, p


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int = 10) -> np.ndarray:
    """Counts (n_classes, n_classes), int64: ``matrix[i, j]`` = examples of class i predicted as j."""
    t, p = _check_pair(y_true, y_pred, n_classes)
    # One bincount over the flattened (true, predicted) cell index: no loop over examples.
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def _recall(matrix: np.ndarray) -> np.ndarray:
    """Diagonal over row sums: the fraction of each true class predicted correctly (NaN if absent)."""
    totals = matrix.sum(axis=1)                                   # (n_classes,)
    with np.errstate(invalid="ignore", divide="ignore"):         # absent classes give 0/0 = NaN on purpose
        return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


def per_class_accuracy(y_true: Any, y_pred: Any, n_classes: int = 10) -> np.ndarray:
    """Accuracy on each true class, shape (n_classes,), float64; NaN for a class with no examples."""
    return _recall(confusion_matrix(y_true, y_pred, n_classes))


def _split_data(data: tuple[Any, Any]) -> tuple[Any, np.ndarray]:
    try:
        x, y = data
    except (TypeError, ValueError):
        raise ValueError("data must be an (x, y) pair, e.g. the test pair from nndl.data.load_mnist()") from None
    y = as_labels(y, "the labels of data")
    if len(x) != len(y):
        raise ShapeError(f"data has {len(x)} inputs but {len(y)} labels")
    if len(y) == 0:
        raise ValueError("data is empty: there is nothing to analyse")
    return x, y


def misclassified(net, data: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The examples ``net`` gets wrong: ``(indices, predicted, probabilities)``.

    ``indices`` (k,) index into ``data``; ``predicted`` (k,) are the net's labels for them;
    ``probabilities`` (k, n_classes) are ``net.predict_proba`` rows for them (each sums to 1).
    """
    x, y = _split_data(data)
    predicted = np.asarray(net.predict(x))                       # (n,)
    indices = np.flatnonzero(predicted != y)                     # (k,)
    n_classes = int(getattr(net, "n_classes", 10))
    if indices.size:
        # A second pass over the errors only: they are few, and predict_proba needs its own forward.
        probabilities = np.asarray(net.predict_proba(np.asarray(x)[indices]))
    else:
        probabilities = np.zeros((0, n_classes))
    return indices, predicted[indices].astype(np.int64), probabilities


def most_confused(matrix: np.ndarray, top: int = 5) -> list[dict]:
    """The ``top`` largest off-diagonal cells as ``{"true", "predicted", "count"}``, largest first."""
    off = np.array(matrix, dtype=np.int64, copy=True)
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]  # ties in row-major order
    cells = [np.unravel_index(k, off.shape) for k in order]
    return [{"true": int(i), "predicted": int(j), "count": int(off[i, j])} for i, j in cells if off[i, j] > 0]


def report_from_predictions(y_true: Any, y_pred: Any, n_classes: int = 10, *,
                            class_names: Sequence[str] | None = None) -> dict:
    """``error_report`` for labels already predicted (by an ensemble, a baseline, ...)."""
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    total, correct = int(matrix.sum()), int(np.trace(matrix))
    recall = _recall(matrix)
    report = {
        "accuracy": correct / total if total else None,
        "total": total,
        "correct": correct,
        "errors": total - correct,
        "class_counts": matrix.sum(axis=1).tolist(),
        "confusion_matrix": matrix.tolist(),
        # NaN is not JSON: a class with no examples has accuracy None.
        "per_class_accuracy": [None if np.isnan(r) else float(r) for r in recall],
        "most_confused": most_confused(matrix),
    }
    if class_names is not None:
        if len(class_names) != n_classes:
            raise ValueError(f"class_names has {len(class_names)} names for {n_classes} classes")
        report["class_names"] = list(class_names)
    return report


def error_report(net, data: tuple[Any, Any], *, class_names: Sequence[str] | None = None) -> dict:
    """A JSON-safe summary of ``net``'s errors on ``data``.

    Keys: ``accuracy``, ``total``, ``correct``, ``errors``, ``class_counts`` (true examples per
    class), ``confusion_matrix`` (nested lists, rows true, columns predicted),
    ``per_class_accuracy`` (None for absent classes) and ``most_confused`` (the largest
    off-diagonal cells).
    """
    x, y = _split_data(data)
    return report_from_predictions(y, net.predict(x), int(getattr(net, "n_classes", 10)), class_names=class_names)


def roundtrip_accuracy(network, x: np.ndarray, y: np.ndarray, directory: str | os.PathLike) -> dict:
    """Save each image (n, 784) as a PNG in ``directory``, read it back through ``preprocess``, predict.

    Returns the accuracy on the arrays directly and through the files, and how many predictions
    changed: a check that the preprocessing reproduces MNIST's own form.
    """
    from .data.imagefile import save_png
    from .data.images import preprocess_many

    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    directory = Path(directory)
    paths = [save_png(img, directory / f"{i:05d}.png") for i, img in enumerate(x)]
    x_files = preprocess_many(paths)  # (n, 784)
    direct, through = network.predict(x), network.predict(x_files)
    return {
        "n": int(len(y)),
        "direct_accuracy": float((direct == y).mean()),
        "roundtrip_accuracy": float((through == y).mean()),
        "changed_predictions": int((direct != through).sum()),
        "mean_abs_pixel_difference": float(np.abs(x_files - x).mean()),
    }
