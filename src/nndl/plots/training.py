"""Training curves: cost and accuracy per epoch from ``--metrics`` JSONL files (chapter 3's
overfitting and η figures), and the character RNN's loss per character."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataFormatError
from ._common import PathLike, _figure, _number, _save

COST_KEYS = ("training_cost", "evaluation_cost")
ACCURACY_KEYS = ("training_accuracy", "evaluation_accuracy", "test_accuracy")
METRIC_KEYS = (*COST_KEYS, *ACCURACY_KEYS)
X_AXES = ("epoch", "seconds")
LINE_STYLES = {"training": "--", "evaluation": "-", "test": ":"}
LINE_COLOURS = {"training": "C1", "evaluation": "C0", "test": "C2"}


# ----- metrics files -----------------------------------------------------------------------------
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


# ----- the character RNN's loss ----------------------------------------------------------------
def read_loss_log(path: PathLike) -> list[dict]:
    """The records of a ``--metrics`` JSON-lines file written by ``nndl rnn train``."""
    with open(os.fspath(path), encoding="utf-8") as f:
        try:
            return [json.loads(line) for line in f if line.strip()]
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path} is not a JSON-lines loss log ({exc})") from None


def plot_loss(records: list[dict] | PathLike, path: PathLike, *, vocab_size: int | None = None) -> str:
    """Plot the training loss (per iteration, smoothed, and per epoch) and the validation loss
    per character against epochs; write a PNG atomically and return its path. ``records``: the
    records of ``CharRNN.fit`` (its callback's) or the path of a loss log."""
    if isinstance(records, (str, os.PathLike)):
        records = read_loss_log(records)
    epochs = [r for r in records if r.get("type") == "epoch"]
    iters = [r for r in records if r.get("type") == "iteration"]
    if not epochs:
        raise ValueError("the loss log holds no epoch records: train for at least one epoch")
    per_epoch = epochs[0]["iterations"]
    fig = _figure(7, 4.2)
    ax = fig.subplots()
    if iters:
        ax.plot([r["iteration"] / per_epoch for r in iters], [r["smooth_loss_per_char"] for r in iters],
                lw=1, alpha=0.6, label="training (smoothed, per iteration)")
    ax.plot([r["epoch"] + 1 for r in epochs], [r["loss_per_char"] for r in epochs], "o-", ms=3,
            label="training (epoch mean)")
    if "validation_loss_per_char" in epochs[0]:
        ax.plot([r["epoch"] + 1 for r in epochs], [r["validation_loss_per_char"] for r in epochs], "s-", ms=3,
                label="validation")
    if vocab_size:
        ax.axhline(math.log(vocab_size), ls="--", c="grey", lw=1, label=f"uniform guess, ln {vocab_size}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per character (nats)")
    ax.set_title("Character-level RNN: cross-entropy per character")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path, dpi=110)
