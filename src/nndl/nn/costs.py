"""Cost functions and BP1, the output error δ^L (chapters 1 and 3).

Each cost has ``fn(a, y)``, the cost summed over the rows of a batch (divide by n for the mean),
and ``delta(z, a, y, activation)``, the output error δ^L = ∂C_x/∂z^L for each row (BP1).
- quadratic:      C = ½‖y - a‖²,               δ = (a - y) ⊙ σ'(z)
- cross-entropy:  C = -Σ_j [y ln a + (1-y) ln(1-a)], δ = a - y for sigmoid outputs: σ'(z) cancels,
  which is why it learns fast from bad starts (chapter 3).
- log-likelihood: C = -ln a_y with softmax outputs, δ = a - y (the softmax Jacobian cancels likewise).
Where a pair does not fuse, δ goes through the activation's own derivative, so every pairing is correct.
"""
from __future__ import annotations

from ..backend import array_module
from .activations import Activation  # noqa: F401  (the type of delta's activation)

# Logs are clipped away from 0 so a saturated neuron gives a large, finite cost, not inf.
_EPS = {"float32": 1e-7, "float64": 1e-12}


def _clip(a):
    eps = _EPS.get(str(a.dtype), 1e-7)
    return array_module(a).clip(a, eps, 1 - eps)


class Cost:
    name = "cost"

    def fn(self, a, y) -> float:
        raise NotImplementedError

    def delta(self, z, a, y, activation: Activation):
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class QuadraticCost(Cost):
    """C = ½‖y - a‖² per example (chapter 1)."""

    name = "quadratic"

    def fn(self, a, y) -> float:
        d = a - y
        return 0.5 * float((d * d).sum())

    def delta(self, z, a, y, activation):
        return activation.backward(a - y, z, a)  # BP1: δ = (a - y) ⊙ σ'(z)


class CrossEntropyCost(Cost):
    """C = -Σ_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)] per example (chapter 3)."""

    name = "cross-entropy"

    def fn(self, a, y) -> float:
        xp = array_module(a)
        a = _clip(a)
        return float(-(y * xp.log(a) + (1 - y) * xp.log1p(-a)).sum())

    def delta(self, z, a, y, activation):
        if activation.name == "sigmoid":
            return a - y  # BP1 with σ'(z) cancelled: the cost's point
        a_c = _clip(a)
        return activation.backward((a_c - y) / (a_c * (1 - a_c)), z, a)


class LogLikelihoodCost(Cost):
    """C = -ln a_y per example, for a softmax output layer (chapter 3)."""

    name = "log-likelihood"

    def fn(self, a, y) -> float:
        xp = array_module(a)
        return float(-(y * xp.log(_clip(a))).sum())

    def delta(self, z, a, y, activation):
        if activation.name == "softmax":
            return a - y  # BP1 with the softmax Jacobian cancelled (y rows sum to 1)
        return activation.backward(-y / _clip(a), z, a)


COSTS = {cls.name: cls for cls in (QuadraticCost, CrossEntropyCost, LogLikelihoodCost)}


def get_cost(name: str | Cost) -> Cost:
    """A cost by name: quadratic, cross-entropy or log-likelihood."""
    if isinstance(name, Cost):
        return name
    try:
        return COSTS[name]()
    except KeyError:
        raise ValueError(f"unknown cost {name!r}; choose one of: {', '.join(COSTS)}") from None
