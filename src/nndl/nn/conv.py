"""Convolutional layers (chapter 6): local receptive fields, shared weights, pooling.

``Conv2D``, ``MaxPool``, ``L2Pool`` and ``ConvPool`` (the book's ConvPoolLayer: conv, max-pool,
then bias and activation). Each layer keeps the layer contract (``forward`` caches what
``backward`` needs) and calls the kernels for the maths: ``nndl.nn.kernels.reference`` (NumPy,
with the book's equations) or its fused, compiled twin ``nndl.nn.kernels.numba_cpu``, one
choice per process (``NNDL_KERNELS``, ``--kernels``).

Shapes are the book's: a_in (m, c, h, w), w (n_maps, c, k, k), b (n_maps,); the arrays the
kernels return are (m, c, h, w) views of channels-last buffers. Limits: valid padding only;
pooling windows do not overlap and must tile the map exactly; ConvPool has stride 1.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from . import kernels
from .activations import Activation, get_activation
from .checks import as_samples, image_shape, positive_int
from .init import init_params
from .kernels.reference import conv_output_size
from .layers import Layer, Param, register_layer

__all__ = ["Conv2D", "ConvPool", "L2Pool", "MaxPool", "conv_output_size"]


def _resolve_input_shape(given, incoming, layer: str) -> tuple[int, int, int]:
    """The (c, h, w) a layer works on: its own input_shape if given (the first layer: the network
    may hand it a flat (784,)), else the previous layer's output shape."""
    if given is not None:
        if int(np.prod(incoming)) != int(np.prod(given)):
            raise ShapeError(
                f"{layer} was given input_shape={tuple(given)} ({int(np.prod(given))} values per sample) "
                f"but receives inputs of shape {tuple(incoming)}")
        return image_shape(given, layer)
    if len(tuple(incoming)) != 3:
        raise ShapeError(
            f"{layer} receives per-sample inputs of shape {tuple(incoming)}; a conv or pooling layer needs "
            f"(channels, height, width): give the first layer input_shape=(1, 28, 28)")
    return image_shape(incoming, layer)


def _as_images(a_in, input_shape, layer: Layer):
    """Accept (m, c, h, w) or flat rows (m, c·h·w); return the (m, c, h, w) array."""
    if input_shape is None:
        raise RuntimeError(f"{layer!r} has no input shape yet: build it (put it in a Network) before forward")
    return as_samples(a_in, input_shape, repr(layer))


class _ActivationMixin:
    """σ and σ' for conv layers (elementwise only: softmax belongs in the Dense output layer)."""

    activation: Activation

    def _set_activation(self, activation) -> None:
        self.activation = get_activation(activation)
        if not self.activation.elementwise:
            raise ValueError(
                f"{type(self).__name__} needs an elementwise activation (sigmoid, tanh, relu, identity), "
                f"got {self.activation.name!r}; put softmax in the Dense output layer")

    def _delta(self, grad_a):
        return self.activation.backward(grad_a, self.z, self.a)   # BP2's ⊙ σ'(z): δ at this layer's z


class _KernelLayer(_ActivationMixin, Layer):
    """What Conv2D and ConvPool share: n_maps k×k kernels with one bias each, shared weights."""

    def _setup(self, n_maps: int, k: int, activation, input_shape, init: str | None) -> None:
        self.n_maps = positive_int("n_maps", n_maps)
        self.k = positive_int("kernel size k", k)
        self._set_activation(activation)
        given = None if input_shape is None else image_shape(input_shape, f"{type(self).__name__} input_shape")
        self.input_shape = given
        self._given_shape = self.input_shape
        self.init = init

    def _input_dims(self, input_shape) -> tuple[int, int, int]:
        c, h, w = _resolve_input_shape(self._given_shape, input_shape, repr(self))
        if h < self.k or w < self.k:
            raise ShapeError(f"{self!r}: a {self.k}x{self.k} receptive field does not fit in a {h}x{w} input")
        return c, h, w

    def _make_kernels(self, c: int, h: int, w: int, rng, dtype, init: str) -> None:
        fan_in = c * self.k * self.k  # each hidden neuron sees c·k·k inputs
        wv, bv = init_params(self.init or init, (self.n_maps, c, self.k, self.k), (self.n_maps,),
                             fan_in, self.n_maps * self.k * self.k, rng, dtype)
        self.w = Param("w", wv, regularize=True)
        self.b = Param("b", bv)
        self.params = [self.w, self.b]
        self.input_shape = (c, h, w)


@register_layer
class Conv2D(_KernelLayer):
    """Convolutional layer: ``n_maps`` feature maps of k×k local receptive fields, a = σ(w ⊛ a_in + b).

    Shapes: a_in (m, c, h, w) (or flat rows (m, c·h·w), reshaped by ``input_shape``),
    w (n_maps, c, k, k), b (n_maps,), z and a (m, n_maps, ho, wo) with ho = (h - k)//stride + 1.
    ``input_shape`` (c, h, w) is needed only for the first layer of a network.
    """

    kind = "conv2d"

    def __init__(self, n_maps: int, k: int, *, stride: int = 1, activation: str | Activation = "relu",
                 input_shape: tuple[int, int, int] | None = None, init: str | None = None):
        super().__init__()
        self.stride = positive_int("stride", stride)
        self._setup(n_maps, k, activation, input_shape, init)

    def build(self, input_shape, rng, dtype, init):
        c, h, w = self._input_dims(input_shape)
        self._make_kernels(c, h, w, rng, dtype, init)
        self.output_shape = (self.n_maps, conv_output_size(h, self.k, self.stride),
                             conv_output_size(w, self.k, self.stride))
        return self.output_shape

    def forward(self, a_in, *, train: bool = False):
        self._check_built()
        self.in_shape = a_in.shape
        x = _as_images(a_in, self.input_shape, self)        # (m, c, h, w)
        k = kernels.for_array(x)
        self._kernels = k.NAME                                    # its name: layers stay picklable
        z, cache = k.conv_forward(x, self.w.value, self.b.value, self.stride)
        a = self.activation.fn(z)                                  # elementwise: keeps the layout
        if train:
            self.cache, self.z, self.a = cache, z, a
        return a

    def backward(self, grad_a):
        delta = self._delta(grad_a)                                # (m, n_maps, ho, wo)
        backward = kernels.by_name(self._kernels).conv_backward
        dx, self.w.grad, self.b.grad = backward(delta, self.cache, self.needs_input_grad)
        if dx is None:
            return None
        return dx.reshape(self.in_shape)

    def _check_built(self) -> None:
        if not self.params:
            raise RuntimeError(f"{self!r} has no weights yet: build it (put it in a Network) before forward")

    def macs_per_sample(self) -> int:
        n, ho, wo = self.output_shape
        return n * ho * wo * int(np.prod(self.w.shape[1:]))

    def config(self):
        return {"n_maps": self.n_maps, "k": self.k, "stride": self.stride, "activation": self.activation.name,
                "input_shape": None if self._given_shape is None else list(self._given_shape), "init": self.init}


class _Pool(Layer):
    """Shared code of the pooling layers (no parameters); ``kernel`` names their kernel pair."""

    kernel = "pool"

    def __init__(self, p: int = 2):
        super().__init__()
        self.p = positive_int("pool size p", p)

    def build(self, input_shape, rng, dtype, init):
        c, h, w = _resolve_input_shape(None, input_shape, repr(self))
        if h % self.p or w % self.p:
            raise ShapeError(
                f"{self!r} needs height and width divisible by {self.p}, but receives {h}x{w} maps "
                f"(shape {(c, h, w)}); change the pool size or the layer before it")
        self.input_shape, self.output_shape = (c, h, w), (c, h // self.p, w // self.p)
        return self.output_shape

    def forward(self, a_in, *, train: bool = False):
        self.in_shape = a_in.shape
        x = _as_images(a_in, self.input_shape, self)
        k = kernels.for_array(x)
        self._kernels = k.NAME                                    # its name: layers stay picklable
        out, cache = getattr(k, f"{self.kernel}_forward")(x, self.p)
        if train:
            self.cache = cache
        return out

    def backward(self, grad_a):
        backward = getattr(kernels.by_name(self._kernels), f"{self.kernel}_backward")
        return backward(grad_a, self.cache).reshape(self.in_shape)

    def macs_per_sample(self) -> int:
        return int(np.prod(self.input_shape)) if self.input_shape else 0

    def config(self):
        return {"p": self.p}


@register_layer
class MaxPool(_Pool):
    """Max-pooling over non-overlapping p×p windows (m, c, h, w) → (m, c, h/p, w/p)."""

    kind = "maxpool"
    kernel = "maxpool"


@register_layer
class L2Pool(_Pool):
    """L2 pooling: the square root of the sum of squares of each p×p window."""

    kind = "l2pool"
    kernel = "l2pool"


@register_layer
class ConvPool(_KernelLayer):
    """The book's ConvPoolLayer: convolution, max-pooling, then bias and activation.

    Exactly the book's (Theano) order: ``a = σ(maxpool(w ⊛ a_in) + b)``. The bias is added after
    pooling; since it is one constant per map and max-pooling commutes with adding a constant,
    this equals max-pooling z = w ⊛ a_in + b. With a monotone σ (sigmoid, tanh, ReLU) it also
    equals maxpool(σ(z)), i.e. Conv2D then MaxPool, but σ runs on p² times fewer numbers.
    """

    kind = "convpool"

    def __init__(self, n_maps: int, k: int, pool: int = 2, activation: str | Activation = "sigmoid",
                 input_shape: tuple[int, int, int] | None = None, init: str | None = None):
        super().__init__()
        self.pool = positive_int("pool size", pool)
        self._setup(n_maps, k, activation, input_shape, init)

    def build(self, input_shape, rng, dtype, init):
        c, h, w = self._input_dims(input_shape)
        hc, wc = h - self.k + 1, w - self.k + 1
        if hc % self.pool or wc % self.pool:
            raise ShapeError(
                f"{self!r}: the {hc}x{wc} feature maps are not divisible by the pool size {self.pool}; "
                f"change k or pool")
        self._make_kernels(c, h, w, rng, dtype, init)
        self.output_shape = (self.n_maps, hc // self.pool, wc // self.pool)
        return self.output_shape

    def forward(self, a_in, *, train: bool = False):
        if not self.params:
            raise RuntimeError(f"{self!r} has no weights yet: build it (put it in a Network) before forward")
        self.in_shape = a_in.shape
        x = _as_images(a_in, self.input_shape, self)              # (m, c, h, w)
        k = kernels.for_array(x)
        self._kernels = k.NAME                                    # its name: layers stay picklable
        z, cache = k.convpool_forward(x, self.w.value, self.b.value, self.pool, train)  # (m, n_maps, ho, wo)
        a = self.activation.fn(z)                                  # σ on the pooled units only
        if train:
            self.cache, self.z, self.a = cache, z, a
        return a

    def backward(self, grad_a):
        delta = self._delta(grad_a)                                # δ at the pooled units (m, n_maps, ho, wo)
        backward = kernels.by_name(self._kernels).convpool_backward
        dx, self.w.grad, self.b.grad = backward(delta, self.cache, self.needs_input_grad)
        return None if dx is None else dx.reshape(self.in_shape)

    def macs_per_sample(self) -> int:
        _, h, w = self.input_shape
        return self.n_maps * (h - self.k + 1) * (w - self.k + 1) * int(np.prod(self.w.shape[1:]))

    def config(self):
        return {"n_maps": self.n_maps, "k": self.k, "pool": self.pool, "activation": self.activation.name,
                "input_shape": None if self._given_shape is None else list(self._given_shape), "init": self.init}
