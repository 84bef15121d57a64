"""Non-neural baselines for MNIST: average darkness and a support vector machine (chapter 1).

The book measures its networks against two simple classifiers:

* ``AverageDarkness`` (the book's ``mnist_average_darkness.py``): for each digit, the mean total
  darkness (sum of pixel intensities) of its training images; an image is guessed to be the
  digit whose average darkness is closest to its own. Fitted on the 50,000 training images it
  gets 2,225 of the 10,000 test images right (22.25%).
* ``SVMBaseline`` (the book's ``mnist_svm.py``): scikit-learn's ``SVC`` with default settings,
  94.35% on the test images after training on the 50,000 training images. The book ran
  scikit-learn's defaults of 2015: RBF kernel, C = 1 and ``gamma = 1/n_features`` (today's
  ``gamma="auto"``), on the pixels of ``mnist.pkl.gz``, which are k/256 where ours are k/255.
  That kernel width is not scale-free, so our default ``gamma="book"`` is (255/256)²/n_features,
  the book's kernel on our pixels: it gets the book's 9,435 exactly (plain ``"auto"``: 9,434).
  Today's default, ``gamma="scale"`` (1/(n_features · var(x))), scores higher (97.85%).

Limits: ``SVMBaseline`` needs scikit-learn (``pip install -e '.[svm]'`` in the checkout); libsvm trains on one
core and its time grows faster than linearly with the number of training images (minutes for
10,000, tens of minutes for 50,000), hence ``train_size``. Labels are digits 0-9.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .errors import NNDLError, ShapeError, install_hint


class BaselineError(NNDLError, ValueError):
    """A baseline was asked for something it cannot do (unknown id, unfitted, bad size)."""


# The book's results on the 10,000 test images (chapter 1).
BOOK_ACCURACY = {"base-dark": 0.2225, "base-svm": 0.9435}
TRAINING_IMAGES = 50_000


def _check_xy(x, y=None) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ShapeError(
            f"images must be a non-empty matrix (m, n_pixels), one flattened image per row; "
            f"got shape {x.shape}. Reshape 28x28 images with x.reshape(len(x), -1)."
        )
    if y is None:
        return x, None
    y = np.asarray(y)
    if y.shape != (x.shape[0],):
        raise ShapeError(
            f"labels must have shape ({x.shape[0]},), one digit per image; got shape {y.shape}. "
            "Pass digit labels, not one-hot vectors."
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise BaselineError(f"labels must be non-negative integers (digits); got dtype {y.dtype}")
    return x, y.astype(np.int64)


class _Classifier:
    """Shared ``accuracy``: the fraction of ``data = (x, y)`` predicted right."""

    def predict(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def accuracy(self, data: tuple[Any, Any]) -> float:
        x, y = _check_xy(*data)
        return float(np.mean(self.predict(x) == y))


class AverageDarkness(_Classifier):
    """Guess the digit whose mean training darkness is closest to the image's darkness."""

    def __init__(self) -> None:
        self.digits: np.ndarray | None = None  # (k,) digits seen in training
        self.avg_darkness: np.ndarray | None = None  # (k,) their mean darkness

    @staticmethod
    def darkness(x) -> np.ndarray:
        """Total darkness of each image: the sum of its pixel intensities. (m,) float64"""
        return np.asarray(x).sum(axis=1, dtype=np.float64)

    def fit(self, x, y) -> "AverageDarkness":
        x, y = _check_xy(x, y)
        d = self.darkness(x)  # (m,)
        counts = np.bincount(y)  # (max digit + 1,)
        totals = np.bincount(y, weights=d, minlength=counts.size)
        self.digits = np.flatnonzero(counts)  # (k,)
        self.avg_darkness = totals[self.digits] / counts[self.digits]
        return self

    def predict(self, x) -> np.ndarray:
        if self.avg_darkness is None:
            raise BaselineError("AverageDarkness is not fitted: call fit(x, y) first")
        x, _ = _check_xy(x)
        distance = np.abs(self.darkness(x)[:, None] - self.avg_darkness[None, :])  # (m, k)
        # argmin takes the smallest digit on a tie, as the book's min over digits 0..9 does.
        return self.digits[distance.argmin(axis=1)]


def _svc_class():
    try:
        from sklearn.svm import SVC
    except ImportError as exc:
        raise ImportError(
            f"the SVM baseline needs scikit-learn: {install_hint('svm')}"
        ) from exc
    return SVC


# The book's pixels (mnist.pkl.gz) are k/256, ours k/255: squared distances differ by this squared.
BOOK_PIXEL_SCALE = 255 / 256


class SVMBaseline(_Classifier):
    """scikit-learn's ``SVC`` (RBF kernel, C = 1) as the book ran it.

    ``gamma="book"`` (default) is scikit-learn's 2015 default 1/n_features, corrected for the
    book's k/256 pixels: (255/256)²/n_features; it reproduces the book's 94.35%. ``"auto"`` is
    1/n_features, ``"scale"`` today's default; a number is used as is. Other keyword arguments
    go to ``SVC``. ``n_jobs`` > 1 predicts in row chunks on that many processes (training is one
    core).
    """

    def __init__(self, *, gamma: str | float = "book", n_jobs: int = 1, **svc_kwargs: Any) -> None:
        self.gamma = gamma
        # "book" depends on n_features, so it is resolved in fit; "auto" stands in until then.
        self.svc = _svc_class()(gamma="auto" if gamma == "book" else gamma, **svc_kwargs)
        if int(n_jobs) < 1:
            raise BaselineError(f"n_jobs must be a positive integer; got {n_jobs!r}")
        self.n_jobs = int(n_jobs)
        self.fitted = False

    def fit(self, x, y) -> "SVMBaseline":
        x, y = _check_xy(x, y)
        if self.gamma == "book":
            self.svc.set_params(gamma=BOOK_PIXEL_SCALE**2 / x.shape[1])
        self.svc.fit(x, y)
        self.fitted = True
        return self

    def predict(self, x) -> np.ndarray:
        if not self.fitted:
            raise BaselineError("SVMBaseline is not fitted: call fit(x, y) first")
        x, _ = _check_xy(x)
        if self.n_jobs == 1 or len(x) < 2 * self.n_jobs:
            return self.svc.predict(x).astype(np.int64)
        from joblib import Parallel, delayed  # a dependency of scikit-learn

        chunks = np.array_split(x, self.n_jobs)
        parts = Parallel(n_jobs=self.n_jobs)(delayed(self.svc.predict)(c) for c in chunks)
        return np.concatenate(parts).astype(np.int64)


BASELINES = {"base-dark": AverageDarkness, "base-svm": SVMBaseline}


def run_baseline(
    name: str, *, train_size: int | None = None, data_dir: str | None = None, **kwargs: Any
) -> dict:
    """Fit baseline ``name`` on the MNIST training images and score it on the 10,000 test images.

    ``name`` is ``"base-dark"`` or ``"base-svm"``; ``train_size`` uses only the first that many
    of the 50,000 training images (default: all, as the book). Extra keyword arguments go to the
    baseline's constructor (e.g. ``gamma="scale"`` for the SVM: today's scikit-learn default). Returns
    ``{"id", "accuracy", "correct", "total", "seconds", "train_size", "book_accuracy"}``, where
    ``seconds`` is the time to fit and predict (data loading excluded).
    """
    if name not in BASELINES:
        raise BaselineError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}")
    if train_size is not None and not (
        isinstance(train_size, (int, np.integer))
        and not isinstance(train_size, bool)
        and 1 <= train_size <= TRAINING_IMAGES
    ):
        raise BaselineError(
            f"train_size must be an integer from 1 to {TRAINING_IMAGES}; got {train_size!r}"
        )
    model = BASELINES[name](**kwargs)  # before loading data: a missing scikit-learn fails fast
    from .data import load_mnist

    training, _validation, (x_test, y_test) = load_mnist(data_dir)
    x_train, y_train = training
    n = TRAINING_IMAGES if train_size is None else int(train_size)
    start = time.perf_counter()
    model.fit(x_train[:n], y_train[:n])
    correct = int(np.sum(model.predict(x_test) == np.asarray(y_test)))
    seconds = time.perf_counter() - start
    total = int(len(y_test))
    return {
        "id": name,
        "accuracy": correct / total,
        "correct": correct,
        "total": total,
        "seconds": round(seconds, 3),
        "train_size": min(n, len(y_train)),
        "book_accuracy": BOOK_ACCURACY[name],
    }
