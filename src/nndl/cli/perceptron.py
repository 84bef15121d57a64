"""``nndl perceptron demo``: chapter 1's perceptrons at work, printed as truth tables.

Shows the NAND perceptron, the network of NAND perceptrons that adds two bits (with its merged
-4 connection), Rosenblatt's learning rule on AND, OR, NAND and XOR, and how a sigmoid neuron
with weights and bias scaled by c approaches the perceptron. Pure NumPy, runs instantly.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from ..nn.perceptron import (
    LOGIC_FUNCTIONS,
    PerceptronDidNotConverge,
    adder_network,
    binary_inputs,
    logic_problem,
    nand_perceptron,
    sigmoid_limit_deviation,
    train_perceptron,
)
from .common import non_negative_int

# Of the demo's functions, the ones no single perceptron can compute.
NOT_LINEARLY_SEPARABLE = {"XOR"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "perceptron", help="perceptrons, the NAND adder and the perceptron learning rule (chapter 1)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    demo = actions.add_parser("demo", help="print truth tables and learning-rule results")
    demo.add_argument("--eta", type=float, default=1.0, help="learning rate η of the rule (default 1.0)")
    demo.add_argument("--max-epochs", type=int, default=100, help="epochs before giving up (default 100)")
    demo.add_argument(
        "--seed", type=non_negative_int, default=None,
        help="shuffle the examples each epoch with this seed (default: fixed order)")
    demo.set_defaults(func=run)


def _bits(row) -> str:
    """Input bits lined up under the "x1 x2" header."""
    return " " + "  ".join(str(int(v)) for v in row)


def nand_table() -> list[str]:
    nand = nand_perceptron()
    x = binary_inputs(2)
    lines = ["NAND perceptron: weights -2, -2, bias 3", "x1 x2 | w·x+b | output"]
    for row, z, out in zip(x, nand.z(x), nand(x)):
        lines.append(f"{_bits(row)} | {z:+5g} | {out}")
    return lines


def adder_table() -> list[str]:
    net = adder_network()
    x = binary_inputs(2)
    lines = [
        "Adder of NAND perceptrons: sum = x1 XOR x2, carry = x1 AND x2",
        f"(carry gate: one connection from g1 of weight {net.weight('g1', 'carry'):g}, bias 3)",
        "x1 x2 | sum carry",
    ]
    for row, (s, carry) in zip(x, net(x)):
        lines.append(f"{_bits(row)} |  {s}    {carry}")
    return lines


def learning_lines(eta: float, max_epochs: int, seed: int | None) -> list[str]:
    lines = [f"Perceptron learning rule (η = {eta:g}, at most {max_epochs} epochs)"]
    for name in LOGIC_FUNCTIONS:
        x, y = logic_problem(name)
        rng = None if seed is None else np.random.default_rng(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PerceptronDidNotConverge)  # reported on the line below
            p, converged, epochs = train_perceptron(x, y, eta=eta, max_epochs=max_epochs, rng=rng)
        if converged:
            lines.append(
                f"{name:>4}: converged in {epochs} epochs: weights {p.w.tolist()}, bias {p.b:g}, "
                f"outputs {p(x).tolist()}"
            )
        elif name in NOT_LINEARLY_SEPARABLE:
            lines.append(
                f"{name:>4}: did not converge in {epochs} epochs ({name} is not linearly separable: "
                "no single perceptron computes it)"
            )
        else:
            lines.append(f"{name:>4}: did not converge in {epochs} epochs (try more --max-epochs)")
    return lines


def sigmoid_lines() -> list[str]:
    nand = nand_perceptron()
    gaps = ", ".join(f"c={c}: {sigmoid_limit_deviation(nand, c):.3g}" for c in (1, 10, 100, 1000))
    return [
        "Sigmoid neuron σ(c(w·x+b)) vs the NAND perceptron, max gap over the four inputs:",
        gaps,
        "(where w·x+b = 0 the sigmoid neuron stays at σ(0) = 1/2 for every c)",
    ]


def run(args: argparse.Namespace) -> int:
    if args.max_epochs < 1:
        raise ValueError(f"--max-epochs must be at least 1; got {args.max_epochs}")
    sections = [
        nand_table(),
        adder_table(),
        learning_lines(args.eta, args.max_epochs, args.seed),
        sigmoid_lines(),
    ]
    print("\n\n".join("\n".join(section) for section in sections))
    return 0
