"""nndl: the neural-network system of Michael Nielsen's *Neural Networks and Deep Learning*,
from scratch on NumPy.

    import nndl
    training, validation, test = nndl.data.load_mnist()
    net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")], cost="quadratic", seed=0)
    history = net.fit(training, epochs=30, mini_batch_size=10, eta=3.0, evaluation_data=test)
    net.accuracy(test)
"""
from . import backend, data, nn, train
from .errors import (
                     DataFormatError,
                     DataNotFoundError,
                     ModelFileError,
                     NNDLError,
                     NonFiniteOutputError,
                     ShapeError,
                     TrainingDivergedError,
)
from .models.io import load, save
from .nn import RNN, Conv2D, ConvPool, Dense, Dropout, Flatten, L2Pool, MaxPool, Network
from .train import (
                     SGD,
                     Adam,
                     Checkpoint,
                     EarlyStopping,
                     History,
                     MetricsLog,
                     Momentum,
                     Nesterov,
                     PlateauSchedule,
                     RMSProp,
)

__version__ = "0.1.0"

__all__ = ["Adam", "Checkpoint", "Conv2D", "ConvPool", "L2Pool", "MaxPool", "RNN", "DataFormatError",
           "DataNotFoundError", "Dense", "Dropout", "EarlyStopping",
           "Flatten", "History", "MetricsLog", "ModelFileError", "Momentum", "NNDLError", "Nesterov", "Network",
           "NonFiniteOutputError",
           "PlateauSchedule", "RMSProp", "SGD", "ShapeError", "TrainingDivergedError", "backend", "data", "load",
           "nn", "save", "train"]
