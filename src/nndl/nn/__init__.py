"""Neurons, layers, costs and the network (chapters 1-3 and 6)."""
from .activations import ACTIVATIONS, get_activation
from .costs import COSTS, get_cost
from .layers import LAYER_TYPES, Dense, Dropout, Flatten, Layer, Param, register_layer
from .network import Network

__all__ = ["ACTIVATIONS", "COSTS", "Dense", "Dropout", "Flatten", "LAYER_TYPES", "Layer", "Network", "Param",
           "get_activation", "get_cost", "register_layer"]
