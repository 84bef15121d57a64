"""Helpers shared by the subcommands: typed argument parsers (``nndl.settings``'s) and data-set selection."""
from __future__ import annotations

import argparse

from ..settings import BY_NAME, int_list, non_negative_float, non_negative_int, positive_float, positive_int

__all__ = ["add_data_dir", "add_kernels_flag", "int_list", "non_negative_float", "non_negative_int", "pick_split",
           "positive_float", "positive_int"]


def add_kernels_flag(parser) -> None:
    """``--kernels numba|numpy``, as the training flags have it (for evaluate, serve, ...)."""
    row = BY_NAME["kernels"]
    parser.add_argument(row.flag, choices=list(row.allowed()), help=row.help)


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="folder holding <dataset>/ (default: $NNDL_DATA, then ~/.cache/nndl)")


def pick_split(data_dir: str | None, which: str, dataset: str = "mnist"):
    """The (x, y) pair of the named split: training, validation or test (its first 1,000 images
    under NNDL_DOCS_QUICK, as ``nndl.experiment`` cuts every split)."""
    from .. import data
    from ..experiment import QUICK_IMAGES, docs_quick

    loader = data.load_fashion_mnist if dataset == "fashion-mnist" else data.load_mnist
    training, validation, test = loader(data_dir)
    x, y = {"training": training, "validation": validation, "test": test}[which]
    return (x[:QUICK_IMAGES], y[:QUICK_IMAGES]) if docs_quick() else (x, y)
