"""Exceptions that nndl raises for bad input, each with a message a learner can act on."""


class NNDLError(Exception):
    """Base class: the CLI prints these as one line instead of a traceback."""


class DataFormatError(NNDLError, ValueError):
    """A data file is damaged, truncated or not what it claims to be."""


class DataNotFoundError(NNDLError, FileNotFoundError):
    """A data set is not on disk and could not be downloaded."""


class ModelFileError(NNDLError, ValueError):
    """A saved model or checkpoint is damaged, incomplete or not an nndl file."""


class ShapeError(NNDLError, ValueError):
    """An array arrived with a shape the layer or network does not accept."""


class NonFiniteOutputError(NNDLError, FloatingPointError):
    """A network's outputs are NaN or infinite (its weights or its input are far out of range)."""


class TrainingDivergedError(NNDLError, FloatingPointError):
    """The cost became NaN or infinite during training."""


class RecipeError(NNDLError, ValueError):
    """A recipe id is wrong, or a run folder holds another run."""


def install_hint(extra: str) -> str:
    """How to install the optional extra ``extra`` (``"svm"``, ``"dist"``, ``"gpu"``, ...), for the
    messages of the code that needs it: the one home of this text.

    nndl is not on the package index, so installing it by name cannot work: from the nndl checkout
    it is ``pip install -e '.[svm]'`` (a wheel built from the checkout takes the same ``[svm]``);
    without one, the extra's own requirements, read from the installed metadata."""
    hint = f"pip install -e '.[{extra}]' in the nndl checkout"
    packages = _extra_requirements(extra)
    if packages:
        hint += " (or pip install " + " ".join(f"'{p}'" for p in packages) + ")"
    return hint


def _extra_requirements(extra: str) -> list[str]:
    """The requirements the installed nndl declares for ``extra`` (those without another marker)."""
    from importlib import metadata

    try:
        declared = metadata.requires("nndl") or []
    except metadata.PackageNotFoundError:      # run from a source tree that was never installed
        return []
    wanted = []
    for requirement in declared:
        spec, _, marker = requirement.partition(";")
        marker = marker.replace(" ", "").replace("'", '"')
        if marker == f'extra=="{extra}"':
            wanted.append(spec.strip())
    return wanted
