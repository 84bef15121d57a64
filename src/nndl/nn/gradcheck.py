"""Numerical gradient checking (chapter 2: "checking backpropagation").

Compares a layer's analytic gradients (``check_layer``; any function's, with ``numerical_gradient``) with
central differences
(f(x + ε) - f(x - ε)) / 2ε. Use float64: in float32 the differences drown in rounding.
Works on NumPy and CuPy arrays alike (the errors are computed on the host).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..backend import array_module, to_numpy


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """‖a - n‖ / (‖a‖ + ‖n‖): scale-free, 0 for a perfect match, 1 for unrelated vectors.

    Norms rather than elementwise ratios, because a tiny gradient component (deep sigmoid
    layers have many) is dominated by the finite difference's own rounding error."""
    analytic = to_numpy(analytic).astype(np.float64)
    numeric = to_numpy(numeric).astype(np.float64)
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / denom) if denom > 0 else 0.0


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂x by central differences, perturbing ``x`` in place (restored afterwards); a NumPy array."""
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = float(flat[i])      # a copy: on CuPy, flat[i] is a view that the next line would change
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def check_layer(layer, x: np.ndarray, rng: np.random.Generator | None = None, eps: float = 1e-6) -> dict[str, float]:
    """Relative errors of a built layer's gradients (each param and the input), in float64.

    The scalar checked is ``loss = sum(forward(x) * dout)`` for a fixed random ``dout``, so
    ``backward(dout)`` must return ∂loss/∂x and fill each ``param.grad`` with ∂loss/∂param.
    """
    rng = rng or np.random.default_rng(0)
    out = layer.forward(x, train=True)
    xp = array_module(x)
    dout = xp.asarray(rng.standard_normal(out.shape))

    def loss() -> float:
        return float((layer.forward(x, train=True) * dout).sum())

    layer.forward(x, train=True)
    grad_x = layer.backward(dout)
    errors = {p.name: relative_error(p.grad, numerical_gradient(loss, p.value, eps)) for p in layer.params}
    if grad_x is not None:
        errors["input"] = relative_error(grad_x, numerical_gradient(loss, x, eps))
    return errors
