"""Neurons, layers, costs and the network (chapters 1-3 and 6)."""
from .activations import ACTIVATIONS, get_activation
from .conv import Conv2D, ConvPool, L2Pool, MaxPool  # noqa: E402  (registers the layer kinds)
from .costs import COSTS, get_cost
from .layers import LAYER_TYPES, Dense, Dropout, Flatten, Layer, Param, register_layer
from .network import Network
from .recurrent import RNN, sequential_mnist_network  # noqa: E402

__all__ = ["ACTIVATIONS", "COSTS", "Conv2D", "ConvPool", "Dense", "L2Pool", "MaxPool", "RNN",
           "sequential_mnist_network", "Dropout", "Flatten", "LAYER_TYPES", "Layer", "Network", "Param",
           "get_activation", "get_cost", "register_layer"]
