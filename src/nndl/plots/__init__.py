"""Pictures of training and of a trained network: the book's figures, as PNG files.

- ``plot_metrics``: training vs evaluation cost and accuracy per epoch (chapter 3's overfitting
  figures), or several runs side by side (chapter 3's three values of η; chapter 3's mini-batch
  sizes against wall-clock seconds), from ``--metrics`` JSONL files.
- ``plot_loss``: the character RNN's loss per character, per iteration and per epoch, from the
  records of ``CharRNN.fit`` or the ``--metrics`` log of ``nndl rnn train``.
- ``plot_confusion``, ``plot_misclassified``: which digits a network confuses, and the digits it
  gets wrong (chapter 6 shows the 33 errors of its ensemble).
- ``plot_filters``: the learned 5x5 filters of a conv layer (chapter 6), or a dense layer's weights
  as 28x28 images.
- ``plot_sweep``: validation accuracy against one swept hyper-parameter (chapter 3's heuristics).

matplotlib is optional (``pip install -e '.[plot]'`` in the checkout) and imported only when a function runs. We
draw on a bare ``Figure`` with the Agg canvas, never through ``pyplot``: no GUI backend, no global
figure state, and the caller's own matplotlib backend is left alone. Each function writes its PNG
atomically (a temp file in the same folder, then ``os.replace``) and returns the path.

Modules: ``training`` (metrics files and loss curves), ``network`` (confusion matrix, errors,
filters), ``sweep`` (hyper-parameter sweeps), ``_common`` (the Figure and the atomic PNG).

Limits: images are drawn as greyscale squares (MNIST-sized inputs); metrics files must use the
keys of ``nndl.train.callbacks.MetricsLog``.
"""
from __future__ import annotations

from ._common import DPI, PathLike
from .network import filter_tiles, plot_confusion, plot_filters, plot_misclassified
from .sweep import SCORE_KEYS, plot_sweep, wants_log_axis
from .training import (
    ACCURACY_KEYS,
    COST_KEYS,
    LINE_COLOURS,
    LINE_STYLES,
    METRIC_KEYS,
    X_AXES,
    plot_loss,
    plot_metrics,
    read_loss_log,
    read_metrics,
)

__all__ = ["ACCURACY_KEYS", "COST_KEYS", "DPI", "LINE_COLOURS", "LINE_STYLES", "METRIC_KEYS", "PathLike", "SCORE_KEYS",
           "X_AXES", "filter_tiles", "plot_confusion", "plot_filters", "plot_loss", "plot_metrics",
           "plot_misclassified", "plot_sweep", "read_loss_log", "read_metrics", "wants_log_axis"]
