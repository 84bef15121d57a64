"""Finding the learning-rate threshold (chapter 3, "How to choose a neural network's
hyper-parameters"): train briefly at η = 0.01, 0.1, 1, 10, … and watch the training cost. The
threshold is the largest η at which the cost falls from the first epoch on, rather than
oscillating or rising; the book suggests using about half of it.
"""
from __future__ import annotations

from typing import Callable, Sequence


def falls(costs: Sequence[float], tolerance: float = 0.0) -> bool:
    """True when each epoch's cost is below the one before (and all are finite)."""
    import math

    if len(costs) < 2 or not all(math.isfinite(c) for c in costs):
        return False
    return all(b < a * (1 - tolerance) for a, b in zip(costs, costs[1:]))


def find_threshold(train_costs: Callable[[float], list[float]], etas: Sequence[float]) -> dict:
    """Try each η (ascending); ``train_costs(eta)`` returns the cost before training and after each
    epoch. Returns the costs per η, the threshold and the suggested η."""
    trials = []
    for eta in sorted(etas):
        costs = train_costs(eta)
        trials.append({"eta": eta, "costs": costs, "falls": falls(costs)})
    falling = [t["eta"] for t in trials if t["falls"]]
    threshold = max(falling) if falling else None
    return {"trials": trials, "threshold": threshold, "suggested_eta": threshold / 2 if threshold else None}
