"""Perceptrons, the NAND adder, Rosenblatt's rule and the sigmoid limit (chapter 1)."""
import argparse
import warnings

import numpy as np
import pytest

from nndl.errors import NNDLError, ShapeError
from nndl.nn.perceptron import (
    LOGIC_FUNCTIONS,
    Gate,
    Perceptron,
    PerceptronDidNotConverge,
    PerceptronNetwork,
    adder_network,
    binary_inputs,
    logic_problem,
    nand_perceptron,
    sigmoid_limit_deviation,
    sigmoid_neuron_output,
    train_perceptron,
)


def test_perceptron_is_a_step_of_the_weighted_input():
    p = Perceptron([0.5, -1.0, 2.0], -0.25)
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    # z = 0.25, -1.25, 1.75, -0.75
    np.testing.assert_array_equal(p(x), [1, 0, 1, 0])
    assert p(x).shape == (4,)
    assert p([1, 0, 0]) == 1 and isinstance(p([1, 0, 0]), int)
    assert p.z([0, 0, 1]) == pytest.approx(1.75)


def test_output_is_zero_when_weighted_input_is_exactly_zero():
    # The book: output 1 only if w·x + b > 0.
    assert Perceptron([1.0, 1.0], -1.0)([1, 0]) == 0


def test_nand_truth_table():
    nand = nand_perceptron()
    np.testing.assert_array_equal(nand.w, [-2, -2])
    assert nand.b == 3
    np.testing.assert_array_equal(nand(binary_inputs(2)), [1, 1, 1, 0])
    # Book: input 00 gives (-2)*0 + (-2)*0 + 3 = 3, positive.
    assert nand.z([0, 0]) == 3 and nand.z([1, 1]) == -1


def test_adder_adds_all_four_pairs_of_bits():
    net = adder_network()
    x = binary_inputs(2)  # 00, 01, 10, 11
    out = net.feedforward(x)  # (4, 2): sum, carry
    assert out.shape == (4, 2)
    for (x1, x2), (s, carry) in zip(x, out):
        assert 2 * carry + s == x1 + x2
    np.testing.assert_array_equal(net([1, 1]), [0, 1])


def test_adder_is_built_from_nand_gates_with_the_merged_minus_four_weight():
    net = adder_network()
    assert [layer.names for layer in net.layers] == [("g1",), ("g2", "g3", "carry"), ("sum",)]
    assert net.weight("g1", "carry") == -4.0
    carry_layer = net.layers[1]
    j = carry_layer.names.index("carry")
    # The -4 sits in the weight matrix itself: one connection from g1, none from x1 or x2.
    np.testing.assert_array_equal(carry_layer.w[:, j], [0.0, 0.0, -4.0])
    assert carry_layer.b[j] == 3.0
    # Every other gate is a plain NAND: two -2 connections and bias 3.
    assert net.weight("x1", "g1") == net.weight("x2", "g1") == -2.0
    assert net.weight("x1", "g2") == net.weight("g1", "g2") == -2.0
    assert net.weight("x2", "g3") == net.weight("g1", "g3") == -2.0
    assert net.weight("g2", "sum") == net.weight("g3", "sum") == -2.0
    assert net.weight("x1", "sum") == 0.0
    for layer in net.layers:
        # Each NAND gate's incoming weights total -4 (-2 + -2, or the merged -4) with bias 3.
        np.testing.assert_array_equal(layer.w.sum(axis=0), -4.0)
        assert np.all(layer.b == 3.0)


def test_intermediate_gate_values_follow_the_book_circuit():
    net = adder_network()
    a = net.all_signals(binary_inputs(2))
    g1 = a[:, net.signals.index("g1")]
    np.testing.assert_array_equal(g1, [1, 1, 1, 0])  # NAND(x1, x2)


def test_network_refuses_unknown_wiring():
    with pytest.raises(NNDLError, match="not an input or an earlier gate"):
        PerceptronNetwork.from_gates(["x"], [[Gate("g", ("y",), (1.0,), 0.0)]], ["g"])
    with pytest.raises(ValueError, match="not signals"):
        PerceptronNetwork.from_gates(["x"], [[Gate("g", ("x",), (1.0,), 0.0)]], ["h"])


@pytest.mark.parametrize("name", ["AND", "OR", "NAND"])
def test_learning_rule_learns_linearly_separable_functions(name):
    x, y = logic_problem(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PerceptronDidNotConverge here
        p, converged, epochs = train_perceptron(x, y, eta=1.0, max_epochs=100)
    assert converged and 1 <= epochs < 100
    np.testing.assert_array_equal(p(x), LOGIC_FUNCTIONS[name])


def test_learning_rule_with_shuffling_is_reproducible_and_converges():
    x, y = logic_problem("AND")
    a = train_perceptron(x, y, eta=0.5, rng=np.random.default_rng(3))
    b = train_perceptron(x, y, eta=0.5, rng=np.random.default_rng(3))
    assert a.converged and a.epochs == b.epochs
    np.testing.assert_array_equal(a.perceptron.w, b.perceptron.w)
    np.testing.assert_array_equal(a.perceptron(x), y)


def test_learning_rule_does_not_converge_on_xor():
    x, y = logic_problem("XOR")
    with pytest.warns(PerceptronDidNotConverge, match="not linearly separable"):
        p, converged, epochs = train_perceptron(x, y, max_epochs=50)
    assert not converged and epochs == 50
    assert np.any(p(x) != y)


def test_learning_rule_refuses_bad_input():
    x, y = logic_problem("AND")
    with pytest.raises(ShapeError, match=r"shape \(4,\)"):
        train_perceptron(x, y[:3])
    with pytest.raises(ValueError, match="0 or 1"):
        train_perceptron(x, y + 1)
    with pytest.raises(ValueError, match="eta"):
        train_perceptron(x, y, eta=0)
    with pytest.raises(ShapeError, match="2 features"):
        nand_perceptron()([1, 0, 1])


def test_sigmoid_neuron_approaches_the_perceptron_as_c_grows():
    nand = nand_perceptron()
    deviations = [sigmoid_limit_deviation(nand, c) for c in (1, 10, 100, 1000)]
    # NAND's z is 3, 1, 1, -1 on the four inputs: the worst gap is 1 - σ(c) = σ(-c).
    assert deviations[0] == pytest.approx(1 / (1 + np.e))
    assert all(later < earlier for earlier, later in zip(deviations, deviations[1:3]))
    assert deviations[3] <= deviations[2] and deviations[3] < 1e-12


def test_sigmoid_neuron_stays_at_one_half_where_weighted_input_is_zero():
    p = Perceptron([1.0, 1.0], -1.0)
    x = binary_inputs(2)  # z = -1, 0, 0, 1
    for c in (1, 10, 1000):
        a = sigmoid_neuron_output(p, x, c)
        np.testing.assert_array_equal(a[1:3], [0.5, 0.5])
    # Off the boundary the limit still holds.
    assert sigmoid_limit_deviation(p, 1000) < 1e-12
    assert sigmoid_limit_deviation(p, 1) == pytest.approx(1 / (1 + np.e))


def test_cli_perceptron_demo(capsys):
    from nndl.cli import perceptron

    parser = argparse.ArgumentParser(prog="nndl")
    perceptron.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["perceptron", "demo"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert " 1  1 |    -1 | 0" in out  # NAND of 1, 1
    assert " 1  1 |  0    1" in out  # adder: 1 + 1 = sum 0, carry 1
    assert "weight -4" in out
    for name in ("AND", "OR", "NAND"):
        assert f"{name}: converged" in out
    assert "XOR: did not converge" in out and "XOR is not linearly separable" in out
