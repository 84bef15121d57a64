"""Activation functions σ and their derivatives σ' (chapters 1, 3 and 6).

Each activation is a small object with ``fn(z)`` and ``prime(z, a)``. ``prime`` receives the
already computed output ``a = fn(z)`` too, because for sigmoid and tanh σ'(z) is cheapest from a:
σ'(z) = a(1 - a) and tanh'(z) = 1 - a².
``backward(grad_a, z, a)`` turns ∂C/∂a into δ = ∂C/∂z: ∂C/∂a ⊙ σ'(z) (BP1, BP2) for every
elementwise σ. Softmax is not elementwise: it overrides ``backward`` with its full Jacobian, and
``Softmax.prime`` refuses to be called.
"""
from __future__ import annotations

from ..backend import array_module, expit


class Activation:
    name = "activation"
    elementwise = True     # softmax is not: each output depends on the whole row

    def fn(self, z):
        raise NotImplementedError

    def prime(self, z, a):
        """σ'(z), elementwise; ``a`` is ``fn(z)``."""
        raise NotImplementedError

    def backward(self, grad_a, z, a):
        """δ = ∂C/∂z from ∂C/∂a: BP1's and BP2's ⊙ σ'(z), the one place it is written."""
        return grad_a * self.prime(z, a)

    def __repr__(self) -> str:
        return self.name


class Sigmoid(Activation):
    """σ(z) = 1 / (1 + e^{-z}), the book's neuron."""

    name = "sigmoid"

    def fn(self, z):
        return expit(z)

    def prime(self, z, a):
        return a * (1 - a)


class Tanh(Activation):
    """tanh(z) = 2σ(2z) - 1 (chapter 3's alternative neuron)."""

    name = "tanh"

    def fn(self, z):
        return array_module(z).tanh(z)

    def prime(self, z, a):
        return 1 - a * a


class ReLU(Activation):
    """max(0, z), the rectified linear unit of chapters 3 and 6."""

    name = "relu"

    def fn(self, z):
        return array_module(z).maximum(z, 0)

    def prime(self, z, a):
        return (z > 0).astype(z.dtype)


class Identity(Activation):
    """a = z (a linear output)."""

    name = "identity"

    def fn(self, z):
        return z

    def prime(self, z, a):
        return array_module(z).ones_like(z)


class Softmax(Activation):
    """a_j = e^{z_j} / Σ_k e^{z_k} over each row, computed with the log-sum-exp shift."""

    name = "softmax"
    elementwise = False

    def fn(self, z):
        xp = array_module(z)
        e = xp.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def prime(self, z, a):
        raise NotImplementedError(
            "softmax has no elementwise derivative; use it as the output layer with the "
            "'log-likelihood' (or 'cross-entropy') cost, where δ = a - y"
        )

    def backward(self, grad_a, z, a):
        """∂C/∂z from ∂C/∂a through the full softmax Jacobian (rows are samples)."""
        return a * (grad_a - (grad_a * a).sum(axis=1, keepdims=True))


ACTIVATIONS = {cls.name: cls for cls in (Sigmoid, Tanh, ReLU, Identity, Softmax)}


def get_activation(name: str | Activation) -> Activation:
    """An activation by name: sigmoid, tanh, relu, identity or softmax."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}"
        ) from None
