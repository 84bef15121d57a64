"""``nndl plot``: the book's figures as PNG files, from metrics files and saved models.

    nndl plot metrics FILE... --out PNG [--x epoch|seconds] [--labels a,b,c] [--title T]
    nndl plot confusion MODEL --out PNG [--data test|validation]
    nndl plot errors MODEL --out PNG [--max N] [--data test|validation]
    nndl plot filters MODEL --out PNG [--layer INDEX] [--channel mean|C]

``metrics`` draws cost and accuracy per epoch (chapter 3's overfitting and η figures);
``confusion`` and ``errors`` show what a saved network gets wrong on MNIST (chapter 6's gallery of
errors; ``--dataset fashion-mnist`` for Fashion-MNIST models); ``filters`` draws a layer's learned
weights (chapter 6's feature maps). Needs matplotlib (``pip install -e '.[plot]'`` in the checkout).
"""
from __future__ import annotations

import argparse

from ..plots import METRIC_KEYS, X_AXES
from .common import add_data_dir, pick_split, positive_int

SPLITS = ("test", "validation", "training")


def register(subparsers) -> None:
    parser = subparsers.add_parser("plot", help="draw metrics, confusion matrices, errors and filters as PNG")
    kinds = parser.add_subparsers(dest="plot_kind", metavar="KIND")
    kinds.required = True

    p = kinds.add_parser("metrics", help="cost and accuracy per epoch from --metrics JSONL files")
    p.add_argument("files", nargs="+", metavar="FILE", help="metrics JSONL files (one line per run and key)")
    p.add_argument("--x", choices=X_AXES, default="epoch", help="x-axis: epoch or cumulative training seconds")
    p.add_argument("--labels", default=None, help="comma-separated names for the files (default: file names)")
    p.add_argument("--keys", default=None,
                   help=f"comma-separated subset of {','.join(METRIC_KEYS)} (default: all present)")
    p.add_argument("--title", default=None, help="figure title")
    _add_out(p)
    p.set_defaults(func=run_metrics)

    for name, helptext, func in (("confusion", "confusion matrix of a saved model on MNIST", run_confusion),
                                 ("errors", "gallery of the digits a saved model gets wrong", run_errors)):
        p = kinds.add_parser(name, help=helptext)
        p.add_argument("models", nargs="+", metavar="MODEL",
                       help="a model file saved by nndl (.npz); several: their ensemble's plurality vote")
        p.add_argument("--data", choices=SPLITS, default="test", help="which split (default: test)")
        p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
        add_data_dir(p)
        if name == "errors":
            p.add_argument("--max", type=positive_int, default=50, metavar="N",
                           help="show at most N errors (default 50)")
        _add_out(p)
        p.set_defaults(func=func)

    p = kinds.add_parser("filters", help="a layer's learned filters (conv feature maps or dense units)")
    p.add_argument("model", metavar="MODEL", help="a model file saved by nndl (.npz)")
    p.add_argument("--layer", type=int, default=None, metavar="INDEX",
                   help="layer index (default: the first layer with conv or dense weights)")
    p.add_argument("--channel", default="mean", help="conv input channel to draw, or 'mean' (default)")
    p.add_argument("--max", type=positive_int, default=100, metavar="N", help="draw at most N tiles (default 100)")
    _add_out(p)
    p.set_defaults(func=run_filters)


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="PNG", help="where to write the picture")


def _split_list(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",")]


def run_metrics(args: argparse.Namespace) -> int:
    from ..plots import plot_metrics

    path = plot_metrics(args.files, args.out, x=args.x, keys=_split_list(args.keys),
                        labels=_split_list(args.labels), title=args.title)
    print(f"wrote {path}")
    return 0


def _model_and_data(args: argparse.Namespace):
    """The network (or the ensemble of the networks) given, and the split to judge it on."""
    from ..ensemble import Ensemble
    from ..models.io import load

    nets = [load(path) for path in args.models]
    return nets[0] if len(nets) == 1 else Ensemble(nets), pick_split(args.data_dir, args.data, args.dataset)


def run_confusion(args: argparse.Namespace) -> int:
    from ..analysis import confusion_matrix
    from ..plots import plot_confusion

    net, (x, y) = _model_and_data(args)
    matrix = confusion_matrix(y, net.predict(x), net.n_classes)
    path = plot_confusion(matrix, args.out)
    correct = int(matrix.trace())
    print(f"{correct} / {len(y)} {args.data} images correct ({100 * correct / len(y):.2f}%); wrote {path}")
    return 0


def run_errors(args: argparse.Namespace) -> int:
    from ..analysis import misclassified
    from ..plots import plot_misclassified

    net, (x, y) = _model_and_data(args)
    indices, predicted, probabilities = misclassified(net, (x, y))
    path = plot_misclassified(x[indices], y[indices], predicted, args.out, max_images=args.max,
                              probabilities=probabilities, n_total=len(y))
    print(f"{len(indices)} of {len(y)} {args.data} images misclassified; wrote {path}")
    return 0


def weighted_layers(net) -> list[int]:
    """Indices of the layers that hold a weight array ``w`` (dense or conv)."""
    return [i for i, layer in enumerate(net.layers)
            if any(p.name == "w" and len(p.shape) in (2, 4) for p in layer.params)]


def layer_weights(net, index: int | None):
    """The ``w`` array of layer ``index`` (default: the first layer that has one)."""
    candidates = weighted_layers(net)
    described = ", ".join(f"{i} ({type(net.layers[i]).__name__})" for i in candidates) or "none"
    if index is None:
        if not candidates:
            raise ValueError("this network has no layer with conv or dense weights to draw")
        index = candidates[0]
    if not -len(net.layers) <= index < len(net.layers):
        raise ValueError(f"--layer {index} is out of range: the network has {len(net.layers)} layers "
                         f"(0..{len(net.layers) - 1}); layers with weights: {described}")
    layer = net.layers[index]
    w = next((p.value for p in layer.params if p.name == "w" and len(p.shape) in (2, 4)), None)
    if w is None:
        raise ValueError(f"layer {index} ({type(layer).__name__}) has no weights to draw; "
                         f"layers with weights: {described}")
    return index % len(net.layers), w


def run_filters(args: argparse.Namespace) -> int:
    from ..models.io import load
    from ..plots import plot_filters

    net = load(args.model)
    index, w = layer_weights(net, args.layer)
    channel = args.channel if args.channel == "mean" else _int(args.channel, "--channel")
    title = f"layer {index} ({type(net.layers[index]).__name__}): learned filters; darker = larger weight"
    path = plot_filters(w, args.out, channel=channel, max_tiles=args.max, title=title)
    print(f"wrote {path}")
    return 0


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{option} must be 'mean' or an integer, got {text!r}") from None
