"""Layers: the layer contract, fully connected (Dense), Dropout and Flatten (chapters 1-3).

Every layer is batched: rows are samples, so ``a_in`` has shape ``(m, *input_shape)``.
``forward`` caches what ``backward`` needs; ``backward(grad_a)`` receives ∂C/∂a for its output,
fills each ``Param.grad`` and returns ∂C/∂a for its input. Layers never update their own
parameters: the optimiser does (see ``nndl.train.optimizers``).

Our weight matrix ``w`` has shape ``(n_in, n_out)``: it is the book's wᵀ, because with rows as
samples z = a·w + b is one matrix product for the whole mini-batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import array_module
from ..errors import ShapeError
from . import kernels
from .activations import Activation, get_activation
from .checks import as_samples, positive_int
from .init import init_params


@dataclass(eq=False)
class Param:
    """A parameter's value and its gradient side by side."""

    name: str
    value: Any
    grad: Any = None
    regularize: bool = False  # weights are regularised (L1/L2), biases are not (chapter 3)
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)


class Layer:
    """Base class. Subclasses set ``input_shape``/``output_shape`` (per sample) in ``build``."""

    kind = "layer"
    params: list[Param]
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    # The network sets this to False on the first layer: no one needs ∂C/∂x of the data.
    needs_input_grad: bool = True

    def __init__(self) -> None:
        self.params = []

    def build(self, input_shape: tuple[int, ...], rng: np.random.Generator, dtype, init: str) -> tuple[int, ...]:
        """Create parameters for inputs of per-sample shape ``input_shape``; return the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(input_shape)
        return self.output_shape

    def forward(self, a_in, *, train: bool = False):
        raise NotImplementedError

    def backward(self, grad_a):
        raise NotImplementedError

    def config(self) -> dict:
        """JSON-safe constructor arguments, for saving the architecture."""
        return {}

    def macs_per_sample(self) -> int:
        """Multiply-adds of one forward pass for one sample (sizes BLAS threading)."""
        return sum(int(np.prod(p.shape)) for p in self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer: z = a_in·w + b, a = σ(z).

    Shapes: a_in (m, n_in), w (n_in, n_out), b (n_out,), z and a (m, n_out).
    Inputs with more axes (the output of a conv or pooling layer) are flattened per sample.
    """

    kind = "dense"

    def __init__(self, n_in: int, n_out: int, activation: str | Activation = "sigmoid", init: str | None = None):
        super().__init__()
        self.n_in, self.n_out = positive_int("Dense n_in", n_in), positive_int("Dense n_out", n_out)
        self.activation = get_activation(activation)
        self.init = init

    def build(self, input_shape, rng, dtype, init):
        n_in = int(np.prod(input_shape))
        if n_in != self.n_in:
            raise ShapeError(
                f"Dense({self.n_in}, {self.n_out}) receives {n_in} features per sample from the "
                f"layer before it (shape {tuple(input_shape)}); make n_in {n_in}"
            )
        w, b = init_params(self.init or init, (self.n_in, self.n_out), (self.n_out,),
                           self.n_in, self.n_out, rng, dtype)
        self.w = Param("w", w, regularize=True)
        self.b = Param("b", b)
        self.params = [self.w, self.b]
        self.input_shape, self.output_shape = tuple(input_shape), (self.n_out,)
        return self.output_shape

    def forward(self, a_in, *, train: bool = False):
        self.in_shape = a_in.shape
        a_in = as_samples(a_in, (self.n_in,), self)    # images are flattened per sample
        k = kernels.for_array(a_in)
        self._kernels = k.NAME                          # its name: layers stay picklable
        z, a = k.dense_forward(a_in, self.w.value, self.b.value, self.activation)  # z = a·w + b, σ(z)
        if train:
            self.a_in, self.z, self.a = a_in, z, a
        return a

    def backward(self, grad_a):
        return self.backward_delta(self.activation.backward(grad_a, self.z, self.a))  # BP2's ⊙ σ'(z)

    def backward_delta(self, delta):
        """Given δ = ∂C/∂z of shape (m, n_out): fill the gradients, return ∂C/∂a_in."""
        # BP4 ∂C/∂w = a_inᵀδ, BP3 ∂C/∂b = Σ δ, and BP2's wᵀδ for the layer below
        backward = kernels.by_name(self._kernels).dense_backward
        self.w.grad, self.b.grad, grad_in = backward(delta, self.a_in, self.w.value, self.needs_input_grad)
        return None if grad_in is None else grad_in.reshape(self.in_shape)

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation.name, "init": self.init}


class Dropout(Layer):
    """Dropout (chapter 3): during training each input unit is kept with probability 1 - p.

    Two conventions give the next layer the same expected input in training and testing:

    - ``inverted=True`` (default): kept units are scaled by 1/(1 - p) in training; at test time
      the layer is the identity, so saved networks need no test-time switch.
    - ``inverted=False``: the book's (network3.py): kept units pass unscaled in training, and at
      test time every unit is multiplied by 1 - p (the book scales the outgoing weights, the same
      thing).

    They compute the same functions but do not train the same: with inverted dropout the next
    layer's weights are 1 - p times the book's, so plain SGD with a given η moves them as the book
    would with η/(1 - p)² (4η for p = 0.5). The chapter-6 dropout recipe uses ``inverted=False``,
    so that its η means what the book's does.
    """

    kind = "dropout"

    def __init__(self, p: float = 0.5, inverted: bool = True):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
        self.p = float(p)
        self.inverted = bool(inverted)
        self.rng: np.random.Generator | None = None

    def build(self, input_shape, rng, dtype, init):
        self.rng = rng
        return super().build(input_shape, rng, dtype, init)

    def forward(self, a_in, *, train: bool = False):
        self.mask = None
        if self.p == 0.0:
            return a_in
        if not train:
            return a_in if self.inverted else a_in * (1.0 - self.p)
        xp = array_module(a_in)
        keep = self.rng.random(a_in.shape, dtype=np.float32) >= self.p
        self.mask = xp.asarray(keep, dtype=a_in.dtype)
        if self.inverted:
            self.mask *= 1.0 / (1.0 - self.p)
        return a_in * self.mask

    def backward(self, grad_a):
        # Dropped units pass no gradient; kept ones pass it scaled like their activation.
        return grad_a if self.mask is None else grad_a * self.mask

    def config(self):
        return {"p": self.p, "inverted": self.inverted}


class Flatten(Layer):
    """Reshape (m, c, h, w) to (m, c·h·w) — for readers who like to see the step."""

    kind = "flatten"

    def build(self, input_shape, rng, dtype, init):
        self.input_shape = tuple(input_shape)
        self.output_shape = (int(np.prod(input_shape)),)
        return self.output_shape

    def forward(self, a_in, *, train: bool = False):
        self.in_shape = a_in.shape
        return a_in.reshape(a_in.shape[0], -1)

    def backward(self, grad_a):
        return grad_a.reshape(self.in_shape)


LAYER_TYPES: dict[str, type[Layer]] = {}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make a layer class loadable from saved files by its ``kind``."""
    LAYER_TYPES[cls.kind] = cls
    return cls


for _cls in (Dense, Dropout, Flatten):
    register_layer(_cls)
