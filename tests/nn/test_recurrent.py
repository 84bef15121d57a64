"""The vanilla RNN layer: BPTT against finite differences, the recurrence itself, the state carried
between chunks, shape errors, save/load inside a Network, and learning sequential MNIST."""
from __future__ import annotations

import numpy as np
import pytest

import nndl
from nndl.errors import ShapeError
from nndl.nn.gradcheck import check_layer, numerical_gradient, relative_error
from nndl.nn.recurrent import RNN, orthogonal, sequential_mnist_network


def built_rnn(n_hidden=5, shape=(4, 3), *, return_sequences=False, init=None, dtype=np.float64, seed=0):
    layer = RNN(n_hidden, input_shape=shape, return_sequences=return_sequences, init=init)
    layer.build(shape, np.random.default_rng(seed), dtype, "default")
    return layer


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("flat_rows", [False, True])
def test_bptt_matches_finite_differences(return_sequences, flat_rows):
    rng = np.random.default_rng(3)
    layer = built_rnn(return_sequences=return_sequences)
    x = rng.standard_normal((6, 12) if flat_rows else (6, 4, 3))
    errors = check_layer(layer, x, rng)
    assert set(errors) == {"w_xh", "w_hh", "b", "input"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradient_reaches_the_initial_state(return_sequences):
    """∂C/∂h_0 = δ_1·w_hhᵀ: checked against finite differences in h0 (needed for carried state)."""
    rng = np.random.default_rng(4)
    layer = built_rnn(return_sequences=return_sequences)
    x, h0 = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 5))
    dout = rng.standard_normal(layer.forward(x, h0=h0).shape)

    def loss():
        return float(np.sum(layer.forward(x, train=True, h0=h0) * dout))

    layer.forward(x, train=True, h0=h0)
    layer.backward(dout)
    assert relative_error(layer.grad_h0, numerical_gradient(loss, h0)) < 1e-6


def test_forward_is_the_recurrence_with_shared_weights_and_zero_start():
    rng = np.random.default_rng(5)
    layer = built_rnn(return_sequences=True, init="glorot")
    x = rng.standard_normal((2, 4, 3))
    w_xh, w_hh, b = (p.value for p in layer.params)
    h = np.zeros((2, 5))                                  # h_0 = 0
    expected = []
    for t in range(4):                                    # the same w_xh, w_hh, b at every step
        h = np.tanh(x[:, t] @ w_xh + h @ w_hh + b)
        expected.append(h)
    out = layer.forward(x)
    assert out.shape == (2, 4, 5)
    np.testing.assert_allclose(out, np.stack(expected, axis=1), rtol=1e-12)
    np.testing.assert_allclose(layer.h_last, expected[-1], rtol=1e-12)
    last = built_rnn(return_sequences=False, init="glorot").forward(x)
    np.testing.assert_allclose(last, expected[-1], rtol=1e-12)


def test_state_carried_between_chunks_equals_one_long_unroll():
    rng = np.random.default_rng(6)
    layer = built_rnn(shape=(8, 3), return_sequences=True)
    x = rng.standard_normal((3, 8, 3))
    whole = layer.forward(x)
    first = layer.forward(x[:, :5])
    second = layer.forward(x[:, 5:], h0=layer.h_last)     # any number of steps is accepted
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=1e-12)


def test_orthogonal_recurrent_init():
    layer = built_rnn(n_hidden=16, shape=(4, 3))
    w_hh = layer.w_hh.value
    np.testing.assert_allclose(w_hh.T @ w_hh, np.eye(16), atol=1e-10)
    assert np.all(layer.b.value == 0)
    q = orthogonal(8, np.random.default_rng(0), np.float32)
    assert q.dtype == np.float32 and np.allclose(q @ q.T, np.eye(8), atol=1e-5)


def test_bad_arguments_and_shapes_are_refused():
    with pytest.raises(ValueError, match="positive integer"):
        RNN(0)
    with pytest.raises(ValueError, match="unknown RNN init"):
        RNN(4, init="zeros")
    with pytest.raises(ShapeError, match=r"\(T, n_in\)"):
        RNN(4, input_shape=(784,))
    layer = built_rnn()
    with pytest.raises(ShapeError, match=r"expects inputs of shape \(m, T, 3\) or \(m, 12\)"):
        layer.forward(np.zeros((2, 10)))
    with pytest.raises(ShapeError, match="declared input_shape"):
        RNN(4, input_shape=(4, 3)).build((5, 3), np.random.default_rng(0), np.float64, "default")


def test_config_macs_and_network_save_load_round_trip(tmp_path):
    net = nndl.Network([RNN(8, input_shape=(7, 4)), nndl.Dense(8, 3, "softmax")], cost="log-likelihood", seed=2)
    layer = net.layers[0]
    assert layer.config() == {"n_hidden": 8, "input_shape": [7, 4], "return_sequences": False, "init": None}
    assert layer.macs_per_sample() == 7 * (4 * 8 + 8 * 8)
    assert [(p.name, p.regularize) for p in layer.params] == [("w_xh", True), ("w_hh", True), ("b", False)]
    x = np.random.default_rng(0).random((5, 28), dtype=np.float32)
    path = tmp_path / "rnn.npz"
    net.save(str(path))
    loaded = nndl.load(str(path))
    assert isinstance(loaded.layers[0], RNN) and loaded.config() == net.config()
    np.testing.assert_array_equal(loaded.feedforward(x), net.feedforward(x))


def test_stacked_rnns_pass_gradients_down():
    """A many-to-many RNN feeding a second RNN: the network's backprop runs through both."""
    net = nndl.Network([RNN(6, input_shape=(5, 3), return_sequences=True), RNN(4), nndl.Dense(4, 2, "softmax")],
                       cost="log-likelihood", seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 5, 3)), net.encode_targets(np.array([0, 1, 1, 0]))
    net.backprop(x, y)
    w = net.layers[0].w_hh

    def cost():
        return net.cost.fn(net.forward(x), y) / 4

    assert relative_error(w.grad, numerical_gradient(cost, w.value)) < 1e-6


def test_learns_sequential_mnist(mnist_small):
    """Images read as 28 rows of 28 pixels: a 128-unit RNN reaches >= 80% on 2,000 test images
    after 3 epochs on 5,000 training images (Adam, clipped gradients; 84.5-85.5% over seeds 0-2)."""
    training, _, test = mnist_small
    net = sequential_mnist_network(128, seed=0)
    assert net.input_shape == (28, 28)
    history = net.fit(training, 3, 16, optimizer=nndl.Adam(0.001, clip_norm=1.0), evaluation_data=test, threads=1)
    assert history.evaluation_accuracy[-1] >= 0.80, history.evaluation_accuracy
