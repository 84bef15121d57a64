"""Pictures of training and of a trained network: the book's figures, as PNG files.

- ``plot_metrics``: training vs evaluation cost and accuracy per epoch (chapter 3's overfitting
  figures), or several runs side by side (chapter 3's three values of η; chapter 3's mini-batch
  sizes against wall-clock seconds), from ``--metrics`` JSONL files.
- ``plot_confusion``, ``plot_misclassified``: which digits a network confuses, and the digits it
  gets wrong (chapter 6 shows the 33 errors of its ensemble).
- ``plot_filters``: the learned 5x5 filters of a conv layer (chapter 6), or a dense layer's weights
  as 28x28 images.
- ``plot_sweep``: validation accuracy against one swept hyper-parameter (chapter 3's heuristics).

matplotlib is optional (``pip install 'nndl[plot]'``) and imported only when a function runs. We
draw on a bare ``Figure`` with the Agg canvas, never through ``pyplot``: no GUI backend, no global
figure state, and the caller's own matplotlib backend is left alone. Each function writes its PNG
atomically (a temp file in the same folder, then ``os.replace``) and returns the path.

Limits: images are drawn as greyscale squares (MNIST-sized inputs); metrics files must use the
keys of ``nndl.train.callbacks.MetricsLog``.
"""
from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .analysis import as_labels
from .backend import to_numpy
from .errors import DataFormatError, ShapeError

PathLike = str | os.PathLike
COST_KEYS = ("training_cost", "evaluation_cost")
ACCURACY_KEYS = ("training_accuracy", "evaluation_accuracy", "test_accuracy")
METRIC_KEYS = (*COST_KEYS, *ACCURACY_KEYS)
X_AXES = ("epoch", "seconds")
LINE_STYLES = {"training": "--", "evaluation": "-", "test": ":"}
LINE_COLOURS = {"training": "C1", "evaluation": "C0", "test": "C2"}
DPI = 100


# ----- matplotlib at the edge --------------------------------------------------------------------
def _figure(width: float, height: float):
    """A new matplotlib Figure on the Agg canvas (imported lazily: plotting is an optional extra)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"plotting needs matplotlib: pip install 'nndl[plot]' ({exc})") from None
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out: PathLike) -> str:
    """Write ``fig`` as PNG to ``out`` atomically; return the path as a string."""
    from .files import atomic_write_bytes

    out = os.fspath(out)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)  # rendered fully before the file is touched
    atomic_write_bytes(out, buf.getvalue())
    return out


def _grid(n: int, ncols: int | None = None) -> tuple[int, int]:
    """Rows and columns of a near-square grid for ``n`` tiles."""
    cols = ncols or max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


def _mosaic(tiles: np.ndarray, cols: int, *, top: int = 0, gap: int = 2) -> tuple[np.ndarray, int, int]:
    """Tiles (n, h, w) laid out in one image, ``cols`` per row, NaN between them.

    Each cell is ``top + h + gap`` high (``top`` pixels left free for a caption) and ``w + gap``
    wide. Returns the image and the cell height and width. One image instead of one axes per tile
    keeps a 50-image gallery fast to draw.
    """
    n, h, w = tiles.shape
    rows = max(1, math.ceil(n / cols))
    cell_h, cell_w = top + h + gap, w + gap
    canvas = np.full((rows * cols, cell_h, cell_w), np.nan)     # (cells, cell_h, cell_w)
    canvas[:n, top + gap // 2:top + gap // 2 + h, gap // 2:gap // 2 + w] = tiles
    image = canvas.reshape(rows, cols, cell_h, cell_w).transpose(0, 2, 1, 3).reshape(rows * cell_h, cols * cell_w)
    return image, cell_h, cell_w


def _gallery_axes(fig, image: np.ndarray, vmin: float, vmax: float):
    """One axes filling ``fig``, showing ``image`` (ink dark on white, gaps light blue)."""
    from matplotlib import colormaps

    ax = fig.add_axes((0.01, 0.01, 0.98, 0.86))
    cmap = colormaps["gray_r"].with_extremes(bad="#dce8f4")
    ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1, interpolation="nearest")
    ax.set_axis_off()
    return ax


def _as_images(images: Any, name: str) -> np.ndarray:
    """(n, h*w), (n, h, w) or (n, 1, h, w) → (n, h, w); flat rows must be square images."""
    a = np.asarray(to_numpy(images), dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2:
        side = math.isqrt(a.shape[1])
        if side * side != a.shape[1]:
            raise ShapeError(f"{name}: rows of {a.shape[1]} pixels are not square images; "
                             f"pass images of shape (n, h, w)")
        a = a.reshape(a.shape[0], side, side)
    if a.ndim != 3:
        raise ShapeError(f"{name} must have shape (n, 784), (n, 28, 28) or (n, 1, 28, 28), got {a.shape}")
    return a


# ----- metrics files -----------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        return None
    return float(value)


def read_metrics(path: PathLike) -> list[dict]:
    """The rows of a ``--metrics`` JSONL file that have an epoch and at least one monitored value.

    Missing or null values stay ``None``. A malformed line or a file without any usable row is
    refused with ``DataFormatError``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no metrics file at {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{path}, line {lineno}: not a JSON object ({exc.msg}); "
                                      f"expected one JSON object per line as written by --metrics") from None
            if not isinstance(record, dict):
                raise DataFormatError(f"{path}, line {lineno}: expected a JSON object, got {type(record).__name__}")
            row = {k: _number(record.get(k)) for k in ("epoch", "seconds", "eta", *METRIC_KEYS)}
            if row["epoch"] is not None and any(row[k] is not None for k in METRIC_KEYS):
                rows.append(row)
    if not rows:
        raise DataFormatError(f"{path} has no usable rows: expected JSON lines with 'epoch' and at least one of "
                              f"{', '.join(METRIC_KEYS)} (train with --metrics FILE and monitoring switched on)")
    return rows


def _x_values(rows: list[dict], x: str, path: str) -> np.ndarray:
    if x == "epoch":
        return np.array([r["epoch"] for r in rows])
    seconds = [r["seconds"] for r in rows]
    if any(s is None for s in seconds):
        raise DataFormatError(f"{path} lacks 'seconds' on some rows, so it cannot be plotted against time; "
                              f"use x='epoch'")
    return np.cumsum(seconds)  # MetricsLog records each epoch's own time; the axis is time since the start


def _default_labels(paths: Sequence[str]) -> list[str]:
    stems = [Path(p).stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [os.fspath(p) for p in paths]


def plot_metrics(metrics_files: PathLike | Iterable[PathLike], out: PathLike, *, x: str = "epoch",
                 keys: Sequence[str] | None = None, labels: Sequence[str] | None = None,
                 title: str | None = None) -> str:
    """Cost and accuracy (in percent) against epoch or cumulative seconds, from metrics JSONL files.

    One file gives the book's overfitting picture (training vs evaluation curves); several give
    one line per file and key, coloured by file (``labels`` name them; default: the file names),
    e.g. the three values of η. ``keys`` picks among training/evaluation cost/accuracy (default:
    those present). A panel is drawn only for costs or accuracies that were monitored.
    """
    paths = [os.fspath(metrics_files)] if isinstance(metrics_files, (str, os.PathLike)) \
        else [os.fspath(p) for p in metrics_files]
    if not paths:
        raise ValueError("plot_metrics needs at least one metrics file")
    if x not in X_AXES:
        raise ValueError(f"x must be one of {X_AXES}, got {x!r}")
    if labels is None:
        labels = _default_labels(paths)
    elif len(labels) != len(paths):
        raise ValueError(f"got {len(labels)} labels for {len(paths)} metrics files; give one label per file")
    if keys is not None:
        unknown = [k for k in keys if k not in METRIC_KEYS]
        if unknown or not keys:
            raise ValueError(f"keys must be among {', '.join(METRIC_KEYS)}, got {list(keys)}")
    runs = [(path, label, read_metrics(path)) for path, label in zip(paths, labels)]
    present = [k for k in (keys or METRIC_KEYS)
               if any(r[k] is not None for _, _, rows in runs for r in rows)]
    if not present:
        raise DataFormatError(f"none of the keys {list(keys or METRIC_KEYS)} has values in {', '.join(paths)}")
    panels = [(group, ylabel) for group, ylabel in ((COST_KEYS, "cost"), (ACCURACY_KEYS, "accuracy (%)"))
              if any(k in present for k in group)]
    fig = _figure(6.0 * len(panels), 4.5)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for ax, (group, ylabel) in zip(axes, panels):
        for (path, label, rows), colour in zip(runs, colours):
            xs = _x_values(rows, x, path)
            for key in (k for k in group if k in present):
                ys = np.array([np.nan if r[key] is None else r[key] for r in rows])
                if np.all(np.isnan(ys)):
                    continue
                ys = ys * 100 if key in ACCURACY_KEYS else ys
                which = key.split("_")[0]  # "training", "evaluation" or "test"
                name = which if len(runs) == 1 else f"{label}, {which}"
                # Training dashed, evaluation solid (test dotted): the gap between them is the overfitting.
                # One run: a colour per curve; several runs: a colour per run.
                line_colour = colour if len(runs) > 1 else LINE_COLOURS[which]
                ax.plot(xs, ys, color=line_colour, linestyle=LINE_STYLES[which],
                        marker="." if len(xs) <= 60 else None, label=name)
        if x == "epoch":
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch" if x == "epoch" else "wall-clock time (s)")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel.split(" ")[0])
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title if title is not None else ", ".join(labels)[:120])
    fig.tight_layout()
    return _save(fig, out)


# ----- a trained network ------------------------------------------------------------------------
def plot_confusion(matrix: Any, out: PathLike, *, class_names: Sequence[str] | None = None,
                   title: str | None = None) -> str:
    """The confusion matrix (rows true, columns predicted) with each cell's count written in it."""
    m = np.asarray(to_numpy(matrix))
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ShapeError(f"a confusion matrix must be square (n_classes, n_classes), got shape {m.shape}")
    if not np.issubdtype(m.dtype, np.number) or np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError("a confusion matrix holds non-negative finite counts; "
                         "build one with nndl.analysis.confusion_matrix(y_true, y_pred)")
    n = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"class_names has {len(names)} names for {n} classes")
    total, correct = m.sum(), np.trace(m)
    side = max(4.0, 0.55 * n + 1.5)
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    # Colour by the share of each true class, so errors in small classes show as clearly as in big ones.
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= 30:
        for i, j in np.ndindex(n, n):  # one label per cell (n² ≤ 900), not per example
            if m[i, j]:
                ax.text(j, i, f"{m[i, j]:g}", ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = f"{100 * correct / total:.2f}% correct, {int(total - correct)} errors" if total else "empty"
    ax.set_title(title if title is not None else f"confusion matrix ({accuracy})")
    fig.tight_layout()
    return _save(fig, out)


def plot_misclassified(images: Any, y_true: Any, y_pred: Any, out: PathLike, max_images: int = 50, *,
                       probabilities: Any = None, ncols: int | None = None, n_total: int | None = None,
                       title: str | None = None) -> str:
    """A gallery of the misclassified images, each captioned with its true and predicted label.

    Pass all images (only those with ``y_true != y_pred`` are shown) or only the errors;
    ``max_images`` caps the gallery (the first ones, in order). ``probabilities`` (n, n_classes),
    if given, adds the confidence in the predicted label to each caption. ``n_total``: how many
    images were classified in all, for the title, when only the errors are passed.
    """
    a = _as_images(images, "images")
    t, p = as_labels(y_true, "y_true"), as_labels(y_pred, "y_pred")
    if not len(a) == len(t) == len(p):
        raise ShapeError(f"got {len(a)} images, {len(t)} true labels and {len(p)} predicted labels; "
                         f"they must match one to one")
    if not isinstance(max_images, (int, np.integer)) or max_images < 1:
        raise ValueError(f"max_images must be a positive integer, got {max_images!r}")
    wrong = np.flatnonzero(t != p)                               # (k,)
    shown = wrong[:max_images]
    conf = None
    if probabilities is not None:
        probs = np.asarray(to_numpy(probabilities))
        if probs.ndim != 2 or len(probs) != len(a):
            raise ShapeError(f"probabilities must have shape ({len(a)}, n_classes), got {probs.shape}")
        conf = probs[shown, p[shown]]
    rows, cols = _grid(max(len(shown), 1), ncols or min(10, max(len(shown), 1)))
    fig = _figure(max(4.0, 0.85 * cols), 1.05 * rows + 0.5)
    if not len(shown):
        fig.text(0.5, 0.5, f"no errors: all {n_total or len(t)} images classified correctly",
                 ha="center", va="center")
    else:
        top = a.shape[1] // 2                                    # room above each image for its caption
        image, cell_h, cell_w = _mosaic(a[shown], cols, top=top)
        ax = _gallery_axes(fig, image, 0.0, max(1.0, float(a[shown].max())))
        for k, i in enumerate(shown):
            caption = f"{t[i]}→{p[i]}" + (f" {conf[k]:.0%}" if conf is not None else "")
            r, c = divmod(k, cols)
            ax.text(c * cell_w + cell_w / 2, r * cell_h + top * 0.6, caption, ha="center", va="center", fontsize=7)
    more = f" (first {len(shown)} shown)" if len(wrong) > len(shown) else ""
    fig.suptitle(title if title is not None else
                 f"{len(wrong)} misclassified of {n_total or len(t)}: true→predicted{more}", fontsize=10)
    return _save(fig, out)


def filter_tiles(weights: Any, *, channel: str | int = "mean",
                 image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Weights as one 2-D tile per feature map or unit: (n_maps, k, k).

    Conv weights (n_maps, c, k, k): the mean over input channels (``channel="mean"``) or one
    channel. Dense weights (n_in, n_out): each unit's incoming weights as an image of
    ``image_shape`` (default: square, 784 → 28x28). (n, h, w) arrays pass through.
    """
    w = np.asarray(to_numpy(weights), dtype=np.float64)
    if w.ndim == 4:
        if channel == "mean":
            return w.mean(axis=1)
        if not isinstance(channel, (int, np.integer)) or not 0 <= channel < w.shape[1]:
            raise ValueError(f"channel must be 'mean' or an index in 0..{w.shape[1] - 1}, got {channel!r}")
        return w[:, channel]
    if w.ndim == 3:
        return w
    if w.ndim == 2:
        n_in, n_out = w.shape
        shape = image_shape or (math.isqrt(n_in),) * 2
        if shape[0] * shape[1] != n_in:
            fit = f"{shape[0]}x{shape[1]} images" if image_shape else "square images"
            raise ShapeError(f"a dense layer with {n_in} inputs per unit cannot be drawn as {fit}; only a layer "
                             f"whose inputs are image pixels (e.g. the first, 784 = 28x28) has filters to draw")
        image_shape = shape
        return w.T.reshape(n_out, *image_shape)                  # our w is (n_in, n_out): one column per unit
    raise ShapeError(f"filter weights must be conv (n_maps, channels, k, k) or dense (n_in, n_out), "
                     f"got an array with {w.ndim} dimensions, shape {w.shape}")


def plot_filters(weights: Any, out: PathLike, *, channel: str | int = "mean", max_tiles: int = 100,
                 image_shape: tuple[int, int] | None = None, title: str | None = None) -> str:
    """The learned filters as a grid of tiles, one per feature map (conv) or hidden unit (dense).

    As in the book's figure, darker means a larger weight; all tiles share one colour scale so
    their strengths compare. At most ``max_tiles`` tiles are drawn (the first ones).
    """
    if not isinstance(max_tiles, (int, np.integer)) or max_tiles < 1:
        raise ValueError(f"max_tiles must be a positive integer, got {max_tiles!r}")
    tiles = filter_tiles(weights, channel=channel, image_shape=image_shape)
    if len(tiles) == 0:
        raise ShapeError("the weight array holds no filters (zero feature maps or units)")
    if not np.all(np.isfinite(tiles)):
        raise ValueError("the filter weights contain NaN or infinite values")
    n_total = len(tiles)
    tiles = tiles[:max_tiles]
    rows, cols = _grid(len(tiles))
    fig = _figure(max(4.0, 0.8 * cols), max(3.0, 0.8 * rows) + 0.6)
    # One colour scale for all tiles, so a weak filter looks weak.
    _gallery_axes(fig, _mosaic(tiles, cols, gap=max(1, tiles.shape[1] // 5))[0], float(tiles.min()), float(tiles.max()))
    size = "x".join(map(str, tiles.shape[1:]))
    shown = f"{len(tiles)} of {n_total}" if n_total > len(tiles) else f"{n_total}"
    fig.suptitle(title if title is not None else f"{shown} learned filters ({size}); darker = larger weight",
                 fontsize=9, wrap=True)
    return _save(fig, out)


# ----- hyper-parameter sweeps -------------------------------------------------------------------
SCORE_KEYS = ("validation_accuracy", "evaluation_accuracy", "best_validation_accuracy", "accuracy")


def _trial_value(trial: Mapping, key: str) -> Any:
    """``trial[key]``, or ``trial["params"][key]`` (a sweep records its settings under params)."""
    if key in trial:
        return trial[key]
    params = trial.get("params")
    if isinstance(params, Mapping) and key in params:
        return params[key]
    return None


def wants_log_axis(values: Any) -> bool:
    """True when positive ``values`` span two decades or more (η from 0.01 to 1, say)."""
    v = np.asarray(values, dtype=np.float64)
    return bool(v.size and v.min() > 0 and v.max() / v.min() >= 100)


def plot_sweep(trials: Iterable[Mapping], param: str, out: PathLike, *, score: str | None = None,
               title: str | None = None) -> str:
    """Validation accuracy (percent) against the swept ``param``, one point per trial.

    Each trial is a mapping with ``param`` (at the top level or under ``"params"``) and a score:
    ``score`` if given, else the first of ``validation_accuracy``, ``evaluation_accuracy``,
    ``best_validation_accuracy``, ``accuracy`` it has. Trials without a score (failed or diverged)
    are left out. The best trial per value is joined by a line; the x-axis is logarithmic when
    the values span two decades or more; non-numeric values (optimiser names) are categories.
    """
    trials = list(trials)
    points = []
    for trial in trials:
        if not isinstance(trial, Mapping):
            raise ValueError(f"each trial must be a mapping (dict), got {type(trial).__name__}")
        value = _trial_value(trial, param)
        scored = [_number(trial.get(k)) for k in ([score] if score else SCORE_KEYS)]
        s = next((v for v in scored if v is not None), None)
        if value is not None and s is not None:
            points.append((value, s))
    if not points:
        raise ValueError(f"no trial has both {param!r} and a score ({score or ' / '.join(SCORE_KEYS)}); "
                         f"got {len(trials)} trials")
    values, scores = [v for v, _ in points], np.array([s for _, s in points]) * 100
    numeric = all(_number(v) is not None for v in values)
    fig = _figure(6.5, 4.5)
    ax = fig.subplots()
    if numeric:
        xs = np.array(values, dtype=np.float64)
        if wants_log_axis(xs):
            ax.set_xscale("log")
    else:
        categories = sorted({str(v) for v in values})
        xs = np.array([categories.index(str(v)) for v in values], dtype=np.float64)
        ax.set_xticks(range(len(categories)), categories)
    ax.scatter(xs, scores, color="C0", alpha=0.6, zorder=3, label="trials")
    uniq = np.unique(xs)
    best = np.array([scores[xs == u].max() for u in uniq])      # one value per distinct setting
    ax.plot(uniq, best, color="C1", marker="o", label="best per value")
    ax.set_xlabel(param)
    ax.set_ylabel(f"{(score or 'validation_accuracy').replace('_', ' ')} (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title if title is not None else f"sweep over {param} ({len(points)} trials)")
    fig.tight_layout()
    return _save(fig, out)
