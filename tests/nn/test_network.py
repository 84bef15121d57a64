"""Specification of Network: feedforward, matrix backprop checked against finite differences,
the batched gradient equal to the sum of per-example gradients, and learning on real MNIST."""
from __future__ import annotations

import numpy as np
import pytest

import nndl
from nndl.nn.gradcheck import numerical_gradient, relative_error

ACTIVATIONS = ["sigmoid", "tanh", "relu", "identity", "softmax"]
COSTS = ["quadratic", "cross-entropy", "log-likelihood"]


def _net(sizes, hidden="sigmoid", out="sigmoid", cost="quadratic", seed=0):
    layers = [nndl.Dense(a, b, hidden) for a, b in zip(sizes[:-2], sizes[1:-1])]
    layers.append(nndl.Dense(sizes[-2], sizes[-1], out))
    return nndl.Network(layers, cost, seed=seed, dtype="float64")


def _check_backprop(net, x, y, eps=1e-6):
    xp, yt = net.prepare_input(x), net.encode_targets(y)
    net.backprop(xp, yt)
    analytic = [p.grad.copy() for p in net.params]

    def cost():
        return net.cost.fn(net.forward(xp), yt) / len(x)

    return max(relative_error(a, numerical_gradient(cost, p.value, eps)) for a, p in zip(analytic, net.params))


@pytest.mark.parametrize("cost", COSTS)
@pytest.mark.parametrize("out_act", ACTIVATIONS)
def test_backprop_matches_finite_differences_for_every_output_activation_and_cost(out_act, cost, rng):
    net = _net([5, 4, 3], hidden="tanh", out=out_act, cost=cost)
    x = rng.random((6, 5))
    y = rng.integers(0, 3, 6)
    if out_act in ("tanh", "relu", "identity") and cost != "quadratic":
        # ln a needs a in (0, 1): shift the output layer so its outputs land there.
        net.layers[-1].b.value[:] = 0.5
        net.layers[-1].w.value *= 0.05
    assert _check_backprop(net, x, y) < 1e-6


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu"])
def test_backprop_through_several_hidden_layers(hidden, rng):
    net = _net([7, 6, 5, 4, 3], hidden=hidden, out="sigmoid", cost="cross-entropy")
    x = rng.standard_normal((8, 7))
    assert _check_backprop(net, x, rng.integers(0, 3, 8)) < 1e-6


def test_batched_gradient_is_the_mean_of_per_example_gradients(rng):
    net = _net([6, 5, 3], cost="quadratic")
    x, y = rng.random((4, 6)), rng.integers(0, 3, 4)
    net.backprop(net.prepare_input(x), net.encode_targets(y))
    batched = [p.grad.copy() for p in net.params]
    per_example = []
    for i in range(4):
        net.backprop(net.prepare_input(x[i:i + 1]), net.encode_targets(y[i:i + 1]))
        per_example.append([p.grad.copy() for p in net.params])
    for j, g in enumerate(batched):
        np.testing.assert_allclose(g, np.mean([pe[j] for pe in per_example], axis=0), rtol=1e-12, atol=1e-14)


def test_tiny_network_by_hand():
    """One sigmoid neuron, w = 2, b = -1, input 1, target 0, quadratic cost:
    z = 1, a = σ(1), δ = (a - 0) σ'(1) = a·a(1 - a), ∂C/∂w = x·δ = δ, ∂C/∂b = δ."""
    net = nndl.Network([nndl.Dense(1, 1, "sigmoid")], "quadratic", dtype="float64")
    net.layers[0].w.value[:] = 2.0
    net.layers[0].b.value[:] = -1.0
    net.backprop(np.array([[1.0]]), np.array([[0.0]]))
    a = 1 / (1 + np.exp(-1.0))
    delta = a * a * (1 - a)
    assert net.layers[0].w.grad[0, 0] == pytest.approx(delta, rel=1e-12)
    assert net.layers[0].b.grad[0] == pytest.approx(delta, rel=1e-12)


def test_feedforward_predict_and_shapes(rng):
    net = nndl.Network.from_sizes([784, 30, 10], seed=0)
    x = rng.random((7, 784), dtype=np.float32)
    a = net.feedforward(x)
    assert a.shape == (7, 10) and a.dtype == np.float32
    assert np.array_equal(net.predict(x), a.argmax(axis=1))
    np.testing.assert_allclose(net.predict_proba(x).sum(axis=1), 1.0, rtol=1e-6)
    assert net.feedforward(x[0]).shape == (1, 10)  # a single image is one row


def test_default_init_is_n_0_1_over_n_in_and_large_is_n_0_1():
    default = nndl.Network.from_sizes([784, 400, 10], seed=0)
    large = nndl.Network.from_sizes([784, 400, 10], seed=0, init="large")
    w_default, w_large = default.layers[0].w.value, large.layers[0].w.value
    assert np.std(w_default) == pytest.approx(1 / np.sqrt(784), rel=0.02)
    assert np.std(w_large) == pytest.approx(1.0, rel=0.02)
    assert np.std(default.layers[0].b.value) == pytest.approx(1.0, rel=0.2)


def test_same_seed_same_network_and_different_seed_differs():
    a, b, c = (nndl.Network.from_sizes([20, 5, 3], seed=s) for s in (1, 1, 2))
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_sigmoid_is_stable_for_huge_inputs():
    act = nndl.nn.get_activation("sigmoid")
    with np.errstate(all="raise"):
        out = act.fn(np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=np.float32))
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1], atol=1e-30)


def test_bad_inputs_are_refused_with_clear_messages():
    net = nndl.Network.from_sizes([784, 30, 10], seed=0)
    with pytest.raises(nndl.ShapeError, match=r"\(m, 784\).*\(5, 783\)"):
        net.feedforward(np.zeros((5, 783)))
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        net.encode_targets(np.array([0, 10]))
    with pytest.raises(nndl.ShapeError, match="make n_in 30"):
        nndl.Network([nndl.Dense(784, 30), nndl.Dense(20, 10)])
    with pytest.raises(ValueError, match="unknown activation 'sigmod'"):
        nndl.Dense(3, 3, "sigmod")
    with pytest.raises(ValueError, match="unknown cost"):
        nndl.Network.from_sizes([3, 3], cost="hinge")
    with pytest.raises(ValueError, match="positive integer"):
        nndl.Dense(0, 3)


def test_binary_output_encoding_round_trips_labels():
    net = nndl.Network.from_sizes([5, 4], output_encoding="binary", n_classes=10, seed=0)
    labels = np.arange(10)
    bits = net.encode_targets(labels)
    assert bits.shape == (10, 4)
    assert np.array_equal(net.decode_outputs(bits), labels)


def test_learns_mnist_subset_above_85_percent_in_two_epochs(mnist_small):
    training, _, test = mnist_small
    net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")], cost="quadratic", seed=0)
    history = net.fit(training, epochs=2, mini_batch_size=10, eta=3.0, evaluation_data=test)
    assert len(history) == 2
    assert net.accuracy(test) > 0.85
    assert history.evaluation_accuracy[-1] == net.accuracy(test)
