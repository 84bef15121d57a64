"""Ensembles of networks that vote (chapter 6: "five networks ... plurality vote").

Each member predicts a label; the label with most votes wins. Ties are broken by the members'
summed class probabilities, so the result never depends on the order of the members.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class Ensemble:
    """A plurality vote of trained networks that share the same classes."""

    def __init__(self, networks: Sequence[Any]):
        if not networks:
            raise ValueError("an ensemble needs at least one network")
        n_classes = {net.n_classes for net in networks}
        if len(n_classes) != 1:
            raise ValueError(f"ensemble members disagree on the number of classes: {sorted(n_classes)}")
        self.networks = list(networks)
        self.n_classes = n_classes.pop()

    def votes(self, x) -> np.ndarray:
        """Vote counts, shape (m, n_classes)."""
        preds = np.stack([net.predict(x) for net in self.networks])       # (k, m)
        counts = np.zeros((preds.shape[1], self.n_classes), dtype=np.int64)
        for row in preds:
            counts[np.arange(preds.shape[1]), row] += 1
        return counts

    def predict_proba(self, x) -> np.ndarray:
        """Mean of the members' class probabilities, shape (m, n_classes)."""
        return np.mean([net.predict_proba(x) for net in self.networks], axis=0)

    def predict(self, x) -> np.ndarray:
        """Plurality vote; ties broken by summed probabilities."""
        counts = self.votes(x)
        top = counts == counts.max(axis=1, keepdims=True)
        proba = self.predict_proba(x)
        return np.where(top, proba, -np.inf).argmax(axis=1)

    def accuracy(self, data) -> float:
        x, y = data
        return float((self.predict(x) == np.asarray(y)).mean())
