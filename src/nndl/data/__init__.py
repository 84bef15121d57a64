"""Data: IDX files, MNIST and Fashion-MNIST (find, download, verify, split) and their expansion.

``training, validation, test = nndl.data.load_mnist()`` gives the book's 50,000 / 10,000 / 10,000
split as ``(x, y)`` pairs: ``x`` float32 ``(n, 784)`` in [0, 1], ``y`` int64 digits ``(n,)``.
See ``sources`` for where files are looked for, downloaded and verified, ``datasets`` for how
they are read and split, ``expand`` for chapter 3's and chapter 6's expanded training data.
"""
from ..errors import DataFormatError, DataNotFoundError
from .datasets import info, load_dataset, load_fashion_mnist, load_mnist, load_raw, one_hot, subset
from .expand import augment, build_expanded, expand_dataset, load_expanded_mnist, shift4
from .idx import read_idx, write_idx
from .sources import DATASETS, fetch, find_dataset_dir, verify

__all__ = [
    "DATASETS",
    "DataFormatError",
    "DataNotFoundError",
    "augment",
    "build_expanded",
    "expand_dataset",
    "fetch",
    "find_dataset_dir",
    "info",
    "load_dataset",
    "load_expanded_mnist",
    "load_fashion_mnist",
    "load_mnist",
    "load_raw",
    "one_hot",
    "read_idx",
    "shift4",
    "subset",
    "verify",
    "write_idx",
]
