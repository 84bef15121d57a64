"""``nndl baseline base-dark|base-svm``: the book's non-neural MNIST baselines (chapter 1).

Fits the baseline on the MNIST training images (all 50,000, or the first ``--train-size``) and
prints its accuracy on the 10,000 test images beside the book's. The SVM needs scikit-learn
(``pip install -e '.[svm]'`` in the checkout) and takes about 10 minutes on all 50,000 images (one core for
training; ``--train-size 10000`` takes under a minute).
"""
from __future__ import annotations

import argparse
import json

from ..baselines import BASELINES, run_baseline


def register(subparsers) -> None:
    parser = subparsers.add_parser("baseline", help="average-darkness and SVM baselines (chapter 1)")
    parser.add_argument("name", choices=sorted(BASELINES), help="which baseline")
    parser.add_argument(
        "--train-size", type=int, default=None, metavar="N",
        help="train on the first N of the 50,000 training images (default: all)",
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder holding the four MNIST IDX files (default: looked up, see nndl data)"
    )
    parser.add_argument(
        "--gamma", default=None,
        help="SVM kernel width: 'book' (default: the book's 1/784 on its k/256 pixels), 'auto' (1/784), "
        "'scale' (today's scikit-learn default) or a number",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def _gamma(text: str) -> str | float:
    if text in ("book", "auto", "scale"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):  # false for nan too
        raise ValueError(f"--gamma must be 'book', 'auto', 'scale' or a positive number; got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    kwargs = {}
    if args.gamma is not None:
        if args.name != "base-svm":
            raise ValueError("--gamma applies only to base-svm")
        kwargs["gamma"] = _gamma(args.gamma)
    from ..experiment import quick_train_size

    result = run_baseline(args.name, train_size=quick_train_size(args.train_size), data_dir=args.data_dir, **kwargs)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['id']}: {result['correct']} / {result['total']} test images correct = "
            f"{100 * result['accuracy']:.2f}% (trained on {result['train_size']} images in "
            f"{result['seconds']:.1f} s; book: {100 * result['book_accuracy']:.2f}% on 50,000)"
        )
    return 0
