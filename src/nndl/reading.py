"""Reading one digit, or saying that it cannot: "not a digit", "unsure: 4 or 9", "blank".

A network trained on MNIST answers every input with some digit, even a dot or a scribble. The
reader puts a decision on top of the network's probabilities:

* **blank**: preprocessing found no ink (``NoDigitError``); nothing is classified;
* **not-a-digit**: the network has a rejection output (an 11th class, index 10, trained on
  synthetic non-digits: dots, dashes, scribbles, boxes, lines, two digits side by side ...; see
  ``nndl.data.reading_set``) and its probability is at least ``not_digit_at``;
* **unsure**: the most probable digit's probability (among the ten digits) is below ``sure_at``:
  the two most probable digits are reported as candidates ("unsure: 4 or 9");
* otherwise the digit.

A ten-output network (any MNIST model) gets the same rules without "not-a-digit": then only its
confidence can reject, which catches fewer non-digits (benchmarks/bench_reading.py measures both).
The thresholds were chosen on MNIST's validation set and synthetic non-digits made from validation
images (docs/RESULTS.md, "Real handwriting").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

REJECT_CLASS = 10                 # the rejection output's index in an 11-output network
NOT_DIGIT_AT = 0.5                # P(not a digit) at or above this: "not-a-digit"
SURE_AT = 0.5                     # the top digit's probability below this: "unsure"
REASONS = ("blank", "not-a-digit", "unsure")


@dataclass
class Reading:
    """What the reader made of one image: ``digit`` (None when it would not say) and why not."""

    digit: int | None
    reason: str | None                       # None when read, else one of REASONS
    message: str
    probabilities: list[float] = field(default_factory=list)   # the ten digits' probabilities
    not_a_digit: float | None = None         # the rejection output, for 11-output networks
    candidates: list[int] = field(default_factory=list)        # the likeliest digits, best first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def top(self, k: int = 3) -> list[dict]:
        order = np.argsort(self.probabilities)[::-1][:k]
        return [{"digit": int(d), "probability": round(float(self.probabilities[d]), 6)} for d in order]


def has_rejection_output(network) -> bool:
    """Whether ``network`` has the 11th, "not a digit", output."""
    return int(getattr(network, "n_classes", 10)) == REJECT_CLASS + 1


def split_probabilities(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(m, 10) digit probabilities and (m,) rejection probabilities (None for ten outputs), from
    (m, 10) or (m, 11) network probabilities. With a rejection output the digits' probabilities
    are renormalised to sum to 1: "which digit, if it is one"."""
    proba = np.atleast_2d(np.asarray(proba, dtype=np.float64))
    if proba.shape[1] == REJECT_CLASS + 1:
        digits = proba[:, :REJECT_CLASS]
        return digits / np.maximum(digits.sum(axis=1, keepdims=True), 1e-12), proba[:, REJECT_CLASS]
    if proba.shape[1] != REJECT_CLASS:
        raise ValueError(f"a digit reader needs 10 or 11 outputs, the network has {proba.shape[1]}")
    return proba, None


def decide(proba: np.ndarray, *, not_digit_at: float = NOT_DIGIT_AT, sure_at: float = SURE_AT) -> list[Reading]:
    """The reader's decision for each row of network probabilities (m, 10) or (m, 11)."""
    digits, reject = split_probabilities(proba)
    readings = []
    for i, p in enumerate(digits):
        order = [int(d) for d in np.argsort(p)[::-1]]
        best, second = order[0], order[1]
        r = None if reject is None else float(reject[i])
        common = {"probabilities": [float(v) for v in p], "not_a_digit": r, "candidates": order[:2]}
        if r is not None and r >= not_digit_at:
            readings.append(Reading(None, "not-a-digit", "that does not look like a digit", **common))
        elif p[best] < sure_at:
            readings.append(Reading(None, "unsure", f"unsure: {best} or {second}", **common))
        else:
            readings.append(Reading(best, None, f"{best}", **common))
    return readings


def blank(message: str) -> Reading:
    """The reading of an image with no ink (the preprocessing's message says what it saw)."""
    return Reading(None, "blank", message)


def read_digit(network, source, **kwargs: Any) -> Reading:
    """Read one digit from an image (path, bytes, file, PIL image or array): preprocess it into
    MNIST form, classify, decide. ``kwargs`` go to ``nndl.data.images.preprocess`` (max_side,
    formats); image files that cannot be read still raise their errors."""
    from .data.images import NoDigitError, preprocess

    try:
        x = preprocess(source, **kwargs)     # (784,)
    except NoDigitError as exc:
        return blank(str(exc))
    return decide(network.predict_proba(x))[0]


__all__ = ["NOT_DIGIT_AT", "REASONS", "REJECT_CLASS", "Reading", "SURE_AT", "blank", "decide",
           "has_rejection_output", "read_digit", "split_probabilities"]
