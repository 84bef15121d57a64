"""The bundled default model: the network ``nndl predict``, ``nndl read`` and ``nndl serve`` use
when no ``--model`` is given.

The file lives inside the package at ``nndl/models/default/default.npz`` (an ordinary model file,
see ``nndl.models.io``). A source checkout without it still works with ``--model PATH``; asking
for the default then raises ``DefaultModelMissingError`` saying how to make one.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import NNDLError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
DEFAULT_MODEL_NAME = "default.npz"


class DefaultModelMissingError(NNDLError, FileNotFoundError):
    """The bundled default model file is not installed."""


def default_model_path() -> Path:
    """Path of the bundled model file; raises ``DefaultModelMissingError`` if it is absent."""
    path = DEFAULT_MODEL_DIR / DEFAULT_MODEL_NAME
    if not path.is_file():
        raise DefaultModelMissingError(
            f"the bundled default model is missing (expected {path}); pass a model file with "
            "--model PATH (train one with `nndl train ... --save PATH`), or reinstall nndl")
    return path


def load_default_model():
    """The bundled default network, loaded from ``default_model_path()``."""
    from .io import load

    return load(default_model_path())


def load_model(path: str | os.PathLike | None = None):
    """The network saved at ``path``, or the bundled default one when ``path`` is None."""
    from .io import load

    return load(path) if path is not None else load_default_model()


def model_label(path: str | os.PathLike | None) -> str:
    """A short name for a model in messages and the web app: its file name, or "default"."""
    return "default" if path is None else Path(path).name
