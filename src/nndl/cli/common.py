"""Helpers shared by the subcommands: typed argument parsers and data-set selection."""
from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """"784,30,10" → [784, 30, 10], with a one-line error for anything else."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 784,30,10, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _number(kind: type, description: str, accept) -> "callable":
    """An argparse type: ``kind`` parsed from text, refused unless ``accept(value)``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}") from None
        if not accept(value) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text}")
        return value

    return parse


positive_int = _number(int, "a positive integer", lambda v: v >= 1)
non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a positive number", lambda v: v > 0)
non_negative_float = _number(float, "a number >= 0", lambda v: v >= 0)


def add_kernels_flag(parser) -> None:
    """``--kernels numba|numpy``: how conv and pooling layers compute (default $NNDL_KERNELS, else numba)."""
    parser.add_argument("--kernels", choices=["numba", "numpy"],
                        help="numba: fused compiled kernels (default); numpy: the readable reference")


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="folder holding <dataset>/ (default: $NNDL_DATA, then ~/.cache/nndl)")


def pick_split(data_dir: str | None, which: str, dataset: str = "mnist"):
    """The (x, y) pair of the named split: training, validation or test."""
    from .. import data

    loader = data.load_fashion_mnist if dataset == "fashion-mnist" else data.load_mnist
    training, validation, test = loader(data_dir)
    return {"training": training, "validation": validation, "test": test}[which]
