"""Perceptrons, networks of NAND perceptrons, Rosenblatt's learning rule (chapter 1).

A perceptron outputs 1 if w·x + b > 0 and 0 otherwise. The book uses it to show that a NAND
perceptron (weights -2, -2, bias 3) is universal for computation, builds a network of NAND
perceptrons that adds two bits, and then replaces the step with the sigmoid: a sigmoid neuron
with weights and bias multiplied by c behaves like the perceptron as c → ∞, except where
w·x + b = 0, where it stays at σ(0) = 1/2.

Limits: perceptrons here are for demonstration on small binary problems. Their outputs are
NumPy ``int64`` arrays; they are not layers of ``nndl.Network`` (the step has no useful
derivative, which is the book's reason for moving to sigmoid neurons).
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from ..errors import NNDLError, ShapeError
from .activations import Sigmoid


class PerceptronInputError(NNDLError, ValueError):
    """A perceptron, gate or learning-rule argument has a value it cannot use."""


class PerceptronDidNotConverge(UserWarning):
    """The perceptron learning rule hit ``max_epochs`` with examples still misclassified.

    For data that is not linearly separable (XOR is the classic case) no number of epochs helps.
    """


def _as_rows(x, n: int, who: str) -> tuple[np.ndarray, bool]:
    """``x`` as a float64 matrix (m, n), and whether a single vector (n,) arrived."""
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 1
    if single:
        x = x[None, :]  # (1, n)
    if x.ndim != 2 or x.shape[1] != n:
        raise ShapeError(
            f"{who} takes inputs of {n} features, shaped ({n},) or (m, {n}); got shape "
            f"{np.shape(x) if not single else x.shape[1:]}. Pass one row per example."
        )
    return x, single


def step(z: np.ndarray) -> np.ndarray:
    """The perceptron's output: 1 where z > 0, else 0 (0 at z = 0 exactly, as in the book)."""
    return (np.asarray(z) > 0).astype(np.int64)


class Perceptron:
    """A step neuron: output = 1 if w·x + b > 0 else 0.

    ``weights`` has shape (n,); ``bias`` is a number. Call it on one input of shape (n,)
    (returns an int) or on rows of shape (m, n) (returns an int array of shape (m,)).
    """

    def __init__(self, weights: Sequence[float] | np.ndarray, bias: float) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ShapeError(
                f"perceptron weights must be a non-empty vector of shape (n,); got shape {w.shape}"
            )
        b = float(bias)
        if not (np.all(np.isfinite(w)) and np.isfinite(b)):
            raise PerceptronInputError(
                f"perceptron weights and bias must be finite; got weights {w.tolist()}, bias {b}"
            )
        self.w = w  # (n,)
        self.b = b

    @property
    def n_inputs(self) -> int:
        return int(self.w.shape[0])

    def z(self, x) -> np.ndarray | float:
        """The weighted input w·x + b: shape (m,) for rows, a float for one input vector."""
        rows, single = _as_rows(x, self.n_inputs, "this perceptron")
        z = rows @ self.w + self.b  # (m,)
        return float(z[0]) if single else z

    def __call__(self, x) -> np.ndarray | int:
        """The output 0 or 1: shape (m,) for rows, an int for one input vector."""
        out = step(self.z(x))
        return int(out) if out.ndim == 0 else out

    predict = __call__

    def __repr__(self) -> str:
        return f"Perceptron(weights={self.w.tolist()}, bias={self.b:g})"


def nand_perceptron() -> Perceptron:
    """The book's NAND gate: weights -2, -2 and bias 3 (00, 01, 10 → 1; 11 → 0)."""
    return Perceptron([-2.0, -2.0], 3.0)


def binary_inputs(n: int) -> np.ndarray:
    """All 2**n binary input vectors, in counting order: shape (2**n, n), int64."""
    if n < 1:
        raise PerceptronInputError(f"need at least one input; got n={n}")
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Networks of perceptrons


@dataclass(frozen=True)
class Gate:
    """One perceptron in a network, wired by name: ``sources[i]`` feeds it with ``weights[i]``.

    A source may appear more than once; its connections then merge into one whose weight is the
    sum (the book's carry gate: two -2 connections from the same perceptron become one -4).
    """

    name: str
    sources: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float


def nand_gate(name: str, a: str, b: str) -> Gate:
    """A NAND perceptron named ``name`` reading signals ``a`` and ``b`` (weights -2, -2, bias 3)."""
    nand = nand_perceptron()
    return Gate(name, (a, b), tuple(nand.w.tolist()), nand.b)


@dataclass(frozen=True)
class PerceptronLayer:
    """Perceptrons computed together. ``w`` (n_signals, n_units) reads every signal made so far.

    Signals are the network inputs followed by the outputs of all earlier layers, so a unit can
    take an input directly or from any earlier layer (the adder's gates do both); a zero weight
    means no connection.
    """

    names: tuple[str, ...]
    w: np.ndarray  # (n_signals, n_units)
    b: np.ndarray  # (n_units,)


class PerceptronNetwork:
    """A feedforward network of perceptrons, layer by layer, with explicit weight matrices.

    ``feedforward(x)`` takes rows (m, n_inputs) or one vector (n_inputs,) and returns the output
    signals named in ``outputs``: shape (m, n_outputs) or (n_outputs,), ints 0/1.
    """

    def __init__(self, inputs: Sequence[str], layers: Sequence[PerceptronLayer], outputs: Sequence[str]):
        self.inputs = tuple(inputs)
        self.layers = list(layers)
        self.signals = self.inputs + tuple(n for layer in self.layers for n in layer.names)
        if len(set(self.signals)) != len(self.signals):
            raise PerceptronInputError(f"signal names must be unique; got {list(self.signals)}")
        unknown = [name for name in outputs if name not in self.signals]
        if unknown:
            raise PerceptronInputError(
                f"outputs {unknown} are not signals of this network; known: {list(self.signals)}"
            )
        self.outputs = tuple(outputs)

    @classmethod
    def from_gates(
        cls, inputs: Sequence[str], layers: Sequence[Sequence[Gate]], outputs: Sequence[str]
    ) -> "PerceptronNetwork":
        """Build the weight matrices from gates wired by name (repeated sources add up)."""
        known = list(inputs)
        built = []
        for depth, gates in enumerate(layers, start=1):
            w = np.zeros((len(known), len(gates)))  # (n_signals, n_units)
            for j, gate in enumerate(gates):
                if len(gate.sources) != len(gate.weights):
                    raise PerceptronInputError(
                        f"gate {gate.name!r} has {len(gate.sources)} sources but "
                        f"{len(gate.weights)} weights; give one weight per source"
                    )
                for source, weight in zip(gate.sources, gate.weights):
                    if source not in known:
                        raise PerceptronInputError(
                            f"gate {gate.name!r} in layer {depth} reads {source!r}, which is not "
                            f"an input or an earlier gate; available: {known}"
                        )
                    # Two connections from one source act as one with the summed weight.
                    w[known.index(source), j] += weight
            b = np.array([gate.bias for gate in gates], dtype=np.float64)  # (n_units,)
            names = tuple(gate.name for gate in gates)
            built.append(PerceptronLayer(names, w, b))
            known.extend(names)
        return cls(inputs, built, outputs)

    def weight(self, source: str, target: str) -> float:
        """The weight of the connection ``source`` → ``target`` (0.0 when they are not connected)."""
        for layer in self.layers:
            if target in layer.names:
                if source not in self.signals[: layer.w.shape[0]]:
                    raise PerceptronInputError(f"{source!r} is not a signal that {target!r} can read")
                return float(layer.w[self.signals.index(source), layer.names.index(target)])
        raise PerceptronInputError(f"{target!r} is not a perceptron of this network")

    def all_signals(self, x) -> np.ndarray:
        """Every signal (inputs, then each perceptron's output) for rows x: shape (m, n_signals)."""
        rows, _ = _as_rows(x, len(self.inputs), "this network")
        a = rows  # (m, n_signals so far)
        for layer in self.layers:
            z = a @ layer.w + layer.b  # (m, n_units)
            a = np.concatenate([a, step(z)], axis=1)
        return a.astype(np.int64)

    def feedforward(self, x) -> np.ndarray:
        """The named outputs: shape (m, n_outputs), or (n_outputs,) for one input vector."""
        single = np.ndim(x) == 1
        a = self.all_signals(x)
        out = a[:, [self.signals.index(name) for name in self.outputs]]  # (m, n_outputs)
        return out[0] if single else out

    __call__ = feedforward


def adder_network() -> PerceptronNetwork:
    """The book's network of NAND perceptrons adding bits x1 and x2; outputs (sum, carry).

    g1 = NAND(x1, x2); g2 = NAND(x1, g1); g3 = NAND(x2, g1); sum = NAND(g2, g3) = x1 ⊕ x2;
    carry = NAND(g1, g1) = x1·x2. The carry gate reads g1 twice, so its two -2 connections merge
    into one of weight -4 (bias 3), as the book notes.
    """
    return PerceptronNetwork.from_gates(
        inputs=("x1", "x2"),
        layers=[
            [nand_gate("g1", "x1", "x2")],
            [nand_gate("g2", "x1", "g1"), nand_gate("g3", "x2", "g1"), nand_gate("carry", "g1", "g1")],
            [nand_gate("sum", "g2", "g3")],
        ],
        outputs=("sum", "carry"),
    )


# ---------------------------------------------------------------------------------------------
# Rosenblatt's perceptron learning rule


class TrainResult(NamedTuple):
    perceptron: Perceptron
    converged: bool
    epochs: int


def _check_binary_problem(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ShapeError(f"x must be a non-empty matrix (m, n) with one row per example; got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ShapeError(f"y must have shape ({x.shape[0]},), one label per row of x; got shape {y.shape}")
    if not np.all(np.isin(y, (0, 1))):
        raise PerceptronInputError(
            f"perceptron labels must be 0 or 1; got values {sorted(set(np.unique(y).tolist()))}"
        )
    return x, y.astype(np.int64)


def train_perceptron(
    x, y, *, eta: float = 1.0, max_epochs: int = 100, rng: np.random.Generator | None = None
) -> TrainResult:
    """Learn a perceptron for binary labels with Rosenblatt's rule.

    For each example in turn: w → w + η (y - output) x and b → b + η (y - output). An epoch with no
    mistake means the data is separated and training has converged. On linearly separable data
    (AND, OR, NAND) this is guaranteed to happen (the perceptron convergence theorem); on data
    that is not (XOR) it never does: the result then has ``converged=False`` and a
    ``PerceptronDidNotConverge`` warning is issued, as scikit-learn does with ConvergenceWarning.

    ``x`` (m, n), ``y`` (m,) of 0/1. Weights start at zero. With ``rng`` each epoch visits the
    examples in a fresh random order; without it, in the order given (deterministic).
    Returns ``(perceptron, converged, epochs)`` where ``epochs`` counts the epochs run.
    """
    x, y = _check_binary_problem(x, y)
    if not (np.isfinite(eta) and eta > 0):
        raise PerceptronInputError(f"eta must be a positive number; got {eta!r}")
    if int(max_epochs) != max_epochs or max_epochs < 1:
        raise PerceptronInputError(f"max_epochs must be a positive integer; got {max_epochs!r}")
    m = x.shape[0]
    w = np.zeros(x.shape[1])  # (n,)
    b = 0.0
    for epoch in range(1, int(max_epochs) + 1):
        order = rng.permutation(m) if rng is not None else range(m)
        # The rule is online: each update changes the weights the next example sees, so this
        # loop over examples is the algorithm itself, not a missed vectorisation.
        for i in order:
            error = y[i] - int(x[i] @ w + b > 0)
            w += eta * error * x[i]
            b += eta * error
        if np.all(step(x @ w + b) == y):  # whole-set check, vectorised
            return TrainResult(Perceptron(w, b), True, epoch)
    warnings.warn(
        f"the perceptron rule still misclassifies examples after {max_epochs} epochs; if the "
        "data is not linearly separable (XOR is not) no number of epochs will help",
        PerceptronDidNotConverge,
        stacklevel=2,
    )
    return TrainResult(Perceptron(w, b), False, int(max_epochs))


# Truth tables of the two-input logic functions the demo learns.
LOGIC_FUNCTIONS: dict[str, tuple[int, int, int, int]] = {
    # outputs for inputs 00, 01, 10, 11 (the order of binary_inputs(2))
    "AND": (0, 0, 0, 1),
    "OR": (0, 1, 1, 1),
    "NAND": (1, 1, 1, 0),
    "XOR": (0, 1, 1, 0),
}


def logic_problem(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The truth table of AND, OR, NAND or XOR as (x (4, 2), y (4,))."""
    try:
        y = LOGIC_FUNCTIONS[name.upper()]
    except KeyError:
        raise PerceptronInputError(
            f"unknown logic function {name!r}; choose one of: {', '.join(LOGIC_FUNCTIONS)}"
        ) from None
    return binary_inputs(2), np.array(y, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# From perceptrons to sigmoid neurons


def sigmoid_neuron_output(perceptron: Perceptron, x, c: float) -> np.ndarray:
    """σ(c (w·x + b)): the sigmoid neuron with the perceptron's weights and bias times c. (m,)"""
    z = np.atleast_1d(perceptron.z(x))  # (m,)
    return Sigmoid().fn(c * z)


def sigmoid_limit_deviation(perceptron: Perceptron, c: float, x=None) -> float:
    """max |σ(c z) - step(z)| over the rows of x where z = w·x + b ≠ 0.

    As c → ∞ this goes to 0: the scaled sigmoid neuron becomes the perceptron. Rows with z = 0
    are left out because there the sigmoid neuron outputs σ(0) = 1/2 for every c while the
    perceptron outputs 0. ``x`` defaults to all binary inputs of the perceptron's size.
    Returns 0.0 when every row has z = 0 (nothing to compare).
    """
    if not (np.isfinite(c) and c > 0):
        raise PerceptronInputError(f"c must be a positive number; got {c!r}")
    if x is None:
        x = binary_inputs(perceptron.n_inputs)
    rows, _ = _as_rows(x, perceptron.n_inputs, "this perceptron")
    z = rows @ perceptron.w + perceptron.b  # (m,)
    off_boundary = z != 0
    if not off_boundary.any():
        return 0.0
    gap = np.abs(sigmoid_neuron_output(perceptron, rows, c) - step(z))  # (m,)
    return float(gap[off_boundary].max())
