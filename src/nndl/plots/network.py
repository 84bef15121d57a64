"""Pictures of a trained network: its confusion matrix, a gallery of the images it gets wrong
(chapter 6's errors of the ensemble), and its learned filters (chapter 6's feature maps)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..analysis import as_labels
from ..backend import to_numpy
from ..errors import ShapeError
from ._common import PathLike, _figure, _save


# ----- tiles in one image ------------------------------------------------------------------------
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
