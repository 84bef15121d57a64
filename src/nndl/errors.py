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
