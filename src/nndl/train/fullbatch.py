"""Full-batch optimisers the book names beside gradient descent (chapter 3, "Other techniques"):
conjugate gradient and L-BFGS, from ``scipy.optimize``, over the flattened parameter vector.

They need the exact cost and gradient over the whole training set at each step, so they suit
small networks and small training sets; each "iteration" is one scipy iteration, which may
evaluate the cost several times (line searches). A record is taken every ``every`` iterations and
after the last one; its ``epoch`` is the iteration number, and ``history.result["iterations"]`` the
iterations scipy ran (fewer than asked for when it converged). The cost is the mean cost plus the chapter-3 L2
term λ/2n Σw², computed in float64 for the line searches' sake.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from ..backend import array_module, to_numpy
from ..errors import TrainingDivergedError
from .trainer import History

METHODS = {"cg": "CG", "lbfgs": "L-BFGS-B"}


class FullBatchObjective:
    """C(θ) and ∇C(θ) for a network over a fixed data set, θ = all parameters flattened."""

    def __init__(self, network, data, lmbda: float = 0.0):
        self.network = network
        self.x = network.prepare_input(data[0])
        self.y = network.encode_targets(data[1])
        self.n = self.x.shape[0]
        self.lmbda = float(lmbda)
        self.shapes = [p.shape for p in network.params]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.evaluations = 0

    def get(self) -> np.ndarray:
        return np.concatenate([to_numpy(p.value).ravel() for p in self.network.params]).astype(np.float64)

    def set(self, theta: np.ndarray) -> None:
        offsets = np.cumsum([0] + self.sizes)
        for p, shape, a, b in zip(self.network.params, self.shapes, offsets[:-1], offsets[1:]):
            # a copy, on the parameter's own device: SciPy's θ lives on the host and changes in place
            p.value = array_module(p.value).array(theta[a:b].reshape(shape), dtype=self.network.dtype)

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.set(theta)
        self.evaluations += 1
        cost = self.network.backprop(self.x, self.y, return_cost=True)
        grads = []
        for p in self.network.params:
            g = to_numpy(p.grad).astype(np.float64)
            if self.lmbda and p.regularize:
                w = to_numpy(p.value).astype(np.float64)
                cost += 0.5 * self.lmbda / self.n * float((w * w).sum())
                g = g + self.lmbda / self.n * w
            grads.append(g.ravel())
        return float(cost), np.concatenate(grads)


def fit_full_batch(network, training_data, *, method: str = "lbfgs", iterations: int = 100, lmbda: float = 0.0,
                   evaluation_data=None, every: int = 10,
                   on_record: Callable[[dict], Any] | None = None) -> History:
    """Minimise the full-batch cost with scipy's CG or L-BFGS; return a History with one record
    every ``every`` iterations (``training_cost``, ``evaluation_accuracy``, ``seconds``)."""
    from scipy.optimize import minimize

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    objective = FullBatchObjective(network, training_data, lmbda)
    history = History()
    start = time.perf_counter()
    state = {"iteration": 0}

    def record(theta: np.ndarray, last: bool = False) -> None:
        if not last:
            state["iteration"] += 1
        it = state["iteration"]
        if not last and it % every and it != iterations:
            return
        objective.set(theta)
        rec = {"epoch": it, "iteration": it, "eta": None, "training_cost": objective(theta)[0],
               "seconds": time.perf_counter() - start, "cost_evaluations": objective.evaluations}
        if evaluation_data is not None:
            rec["evaluation_accuracy"] = network.accuracy(evaluation_data)
        history.records.append(rec)
        if on_record:
            on_record(rec)

    result = minimize(objective, objective.get(), jac=True, method=METHODS[method], callback=record,
                      options={"maxiter": iterations})
    objective.set(result.x)
    _check_finite(network, method, result, lmbda)
    if state["iteration"] and (not history.records or history.records[-1]["iteration"] != state["iteration"]):
        record(result.x, last=True)          # converged between two records: record where it ended
    history.result = {"success": bool(result.success), "message": str(result.message), "iterations": int(result.nit),
                      "cost": float(result.fun)}
    return history


def _check_finite(network, method: str, result, lmbda: float) -> None:
    """Raise TrainingDivergedError when scipy's final cost or any of the weights is NaN or infinite."""
    cost_ok = bool(np.isfinite(result.fun))
    if cost_ok and all(bool(np.isfinite(p.value).all()) for p in network.params):
        return
    what = "the weights became NaN or infinite" if cost_ok else f"the cost became {float(result.fun)}"
    scipy_says = str(result.message).strip(": ") or "no message"
    dtype = np.dtype(network.dtype)
    wider = f", or train in float64 (now {dtype.name})" if dtype != np.float64 else ""
    raise TrainingDivergedError(
        f"{method} training diverged after {int(result.nit)} iterations: {what} (scipy: {scipy_says}). "
        f"Full-batch methods have no learning rate to lower: check the training inputs for NaN, infinite or "
        f"very large values (scale them to [0, 1], as MNIST's pixels), try a smaller lmbda (now {lmbda:g}){wider}")
