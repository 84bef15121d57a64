"""Convolutional and pooling layers (chapter 6): gradients against finite differences on both
kernel paths, the book's ConvPool ordering, clear shape errors, save/load, and learning. The
kernels themselves (values against direct loops, fused against reference) are tested in
tests/nn/kernels."""
from __future__ import annotations

import numpy as np
import pytest

import nndl
from nndl.errors import ShapeError
from nndl.nn.conv import Conv2D, ConvPool, L2Pool, MaxPool
from nndl.nn.gradcheck import check_layer
from nndl.nn.kernels.reference import conv_forward, maxpool_forward
from nndl.nn.layers import LAYER_TYPES

TOL = 1e-6


def built(layer, input_shape, seed=0, dtype=np.float64, init="default"):
    layer.build(input_shape, np.random.default_rng(seed), dtype, init)
    return layer


def test_float32_stays_float32(rng, kernels_name):
    layer = built(Conv2D(4, 3, input_shape=(2, 6, 6)), (2, 6, 6), dtype=np.float32)
    a = layer.forward(rng.standard_normal((3, 2, 6, 6)).astype(np.float32), train=True)
    assert a.dtype == np.float32
    layer.backward(np.ones(a.shape, np.float32))
    assert layer.w.grad.dtype == np.float32 and layer.b.grad.dtype == np.float32


# ----- finite-difference gradient checks (float64) ------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "identity", "tanh"])
@pytest.mark.parametrize("c, stride", [(1, 1), (3, 1), (1, 2), (3, 2)])
def test_conv2d_gradients(rng, activation, c, stride, kernels_name):
    layer = built(Conv2D(4, 3, stride=stride, activation=activation), (c, 7, 7), seed=c + stride)
    errors = check_layer(layer, rng.standard_normal((2, c, 7, 7)), rng)
    assert set(errors) == {"w", "b", "input"}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("layer, shape", [(MaxPool(2), (3, 6, 6)), (MaxPool(3), (2, 6, 9)),
                                          (L2Pool(2), (3, 6, 4)), (L2Pool(3), (2, 6, 6))])
def test_pooling_gradients(rng, layer, shape, kernels_name):
    built(layer, shape)
    errors = check_layer(layer, rng.standard_normal((2,) + shape), rng)
    assert errors["input"] < TOL, errors


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_convpool_gradients(rng, activation, kernels_name):
    layer = built(ConvPool(3, 3, pool=2, activation=activation), (2, 8, 8))
    errors = check_layer(layer, rng.standard_normal((2, 2, 8, 8)), rng)
    assert set(errors) == {"w", "b", "input"}
    assert max(errors.values()) < TOL, errors


# ----- the layers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_convpool_is_the_book_order_and_equals_conv_then_pool(rng, activation, kernels_name):
    """σ(maxpool(w ⊛ x) + b) equals maxpool(σ(w ⊛ x + b)) for a monotone σ, gradients too."""
    x = rng.standard_normal((3, 2, 10, 10))
    cp = built(ConvPool(4, 3, pool=2, activation=activation), (2, 10, 10), seed=5)
    conv = built(Conv2D(4, 3, activation=activation), (2, 10, 10), seed=5)
    pool = built(MaxPool(2), conv.output_shape)
    np.testing.assert_array_equal(cp.w.value, conv.w.value)
    a_cp = cp.forward(x, train=True)
    pre = cp.b.value[None, :, None, None] + maxpool_forward(conv_forward(x, cp.w.value, None)[0], 2)[0]
    np.testing.assert_allclose(a_cp, cp.activation.fn(pre), rtol=1e-12)  # the book's order, literally
    a_two = pool.forward(conv.forward(x, train=True), train=True)
    np.testing.assert_allclose(a_cp, a_two, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(a_cp.shape)
    dx_cp = cp.backward(g)
    dx_two = conv.backward(pool.backward(g))
    np.testing.assert_allclose(dx_cp, dx_two, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cp.w.grad, conv.w.grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cp.b.grad, conv.b.grad, rtol=1e-9, atol=1e-12)


def test_conv2d_alone_accepts_flat_rows_and_returns_their_shape(rng, kernels_name):
    layer = built(Conv2D(3, 5, input_shape=(1, 28, 28)), (1, 28, 28))
    rows = rng.random((4, 784))
    a_rows = layer.forward(rows, train=True)
    a_imgs = layer.forward(rows.reshape(4, 1, 28, 28))
    assert a_rows.shape == (4, 3, 24, 24) and layer.output_shape == (3, 24, 24)
    np.testing.assert_array_equal(a_rows, a_imgs)
    layer.forward(rows, train=True)
    assert layer.backward(np.ones(a_rows.shape)).shape == (4, 784)
    layer.needs_input_grad = False
    assert layer.backward(np.ones(a_rows.shape)) is None and layer.w.grad.shape == (3, 1, 5, 5)


def test_shapes_params_and_work_per_sample():
    conv = Conv2D(20, 5, input_shape=(1, 28, 28))
    assert built(conv, (784,)).output_shape == (20, 24, 24)            # the network may pass a flat shape
    assert conv.w.shape == (20, 1, 5, 5) and conv.b.shape == (20,) and conv.w.regularize and not conv.b.regularize
    assert conv.macs_per_sample() == 20 * 24 * 24 * 25
    assert built(MaxPool(2), (20, 24, 24)).output_shape == (20, 12, 12)
    assert built(Conv2D(40, 5), (20, 12, 12)).output_shape == (40, 8, 8)
    assert built(Conv2D(4, 3, stride=2), (1, 9, 9)).output_shape == (4, 4, 4)
    assert built(ConvPool(20, 5, input_shape=(1, 28, 28)), (1, 28, 28)).output_shape == (20, 12, 12)
    assert built(L2Pool(3), (2, 9, 9)).output_shape == (2, 3, 3)


def test_default_init_uses_fan_in_of_the_receptive_field():
    conv = built(Conv2D(200, 5), (8, 12, 12), dtype=np.float32)
    assert abs(conv.w.value.std() * np.sqrt(8 * 25) - 1) < 0.05        # N(0, 1/(c·k·k))


@pytest.mark.parametrize("make, message", [
    (lambda: built(MaxPool(2), (3, 5, 6)), "divisible by 2"),
    (lambda: built(L2Pool(3), (3, 6, 8)), "divisible by 3"),
    (lambda: built(Conv2D(4, 7), (1, 5, 5)), "does not fit"),
    (lambda: built(Conv2D(4, 3), (784,)), "input_shape=(1, 28, 28)"),
    (lambda: built(Conv2D(4, 3, input_shape=(1, 28, 28)), (1, 20, 20)), "input_shape=(1, 28, 28)"),
    (lambda: built(ConvPool(4, 3), (1, 9, 9)), "not divisible by the pool size"),
    (lambda: Conv2D(4, 3, input_shape=(28, 28)), "(channels, height, width)"),
    (lambda: built(Conv2D(4, 3), (2, 8, 8)).forward(np.zeros((5, 3, 8, 8))), "got an array of shape (5, 3, 8, 8)"),
])
def test_bad_shapes_are_refused_clearly(make, message):
    with pytest.raises(ShapeError) as info:
        make()
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="n_maps must be a positive integer"):
        Conv2D(0, 5)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        Conv2D(4, 5, stride=0)
    with pytest.raises(ValueError, match="softmax"):
        Conv2D(4, 5, activation="softmax")
    with pytest.raises(ValueError, match="pool size p must be a positive integer"):
        MaxPool(0)
    with pytest.raises(RuntimeError, match="build it"):
        Conv2D(4, 5, input_shape=(1, 8, 8)).forward(np.zeros((1, 1, 8, 8)))


def test_layers_are_registered_and_rebuilt_from_their_config():
    for layer in (Conv2D(6, 3, stride=2, activation="tanh", input_shape=(1, 9, 9), init="he"), MaxPool(3),
                  L2Pool(2), ConvPool(5, 3, pool=2, activation="relu", input_shape=(2, 10, 10))):
        again = LAYER_TYPES[layer.kind](**layer.config())
        assert type(again) is type(layer) and again.config() == layer.config()
    assert {"conv2d", "maxpool", "l2pool", "convpool"} <= set(LAYER_TYPES)


def test_conv_network_saves_and_loads_identically(tmp_path, rng):
    net = nndl.Network([Conv2D(4, 5, input_shape=(1, 28, 28)), MaxPool(2), ConvPool(6, 3, activation="sigmoid"),
                        L2Pool(1), nndl.Dense(150, 10, "softmax")], cost="log-likelihood", seed=3)
    x = rng.random((5, 784)).astype(np.float32)
    path = tmp_path / "conv.npz"
    net.save(str(path))
    again = nndl.load(str(path))
    np.testing.assert_array_equal(again.feedforward(x), net.feedforward(x))


# ----- learning -----------------------------------------------------------------------------------
def test_small_conv_net_learns_mnist_subset(mnist):
    """The book's two conv-pool layers (ReLU) learn: 5,000 training images, 2 epochs, plain SGD,
    at least 95% of the 10,000 test images right (seeds 0-3 give 96.8-97.0%)."""
    (x, y), _, test = mnist
    net = nndl.Network([ConvPool(20, 5, pool=2, activation="relu", input_shape=(1, 28, 28)),
                        ConvPool(40, 5, pool=2, activation="relu"),
                        nndl.Dense(640, 100, "relu"), nndl.Dense(100, 10, "softmax")],
                       cost="log-likelihood", seed=0, init="he")
    net.fit((x[:5000], y[:5000]), epochs=2, mini_batch_size=10, eta=0.1, monitor_evaluation_accuracy=False)
    assert net.accuracy(test) >= 0.95


@pytest.mark.parametrize("make", [lambda: Conv2D(3, 3, activation="identity"), lambda: MaxPool(2),
                                  lambda: ConvPool(3, 3, activation="identity")])
def test_reused_work_arrays_never_leak_into_results(rng, make, kernels_name):
    """Layers reuse their big temporaries between mini-batches: what they return stays valid, and
    an evaluation pass between forward and backward changes nothing."""
    layer = built(make(), (2, 8, 8))
    x1, x2 = rng.standard_normal((2, 4, 2, 8, 8))
    a1 = layer.forward(x1, train=True)
    kept = a1.copy()
    g = rng.standard_normal(a1.shape)
    dx1 = layer.backward(g)
    grads1 = [p.grad.copy() for p in layer.params]
    kept_dx = dx1.copy()
    layer.forward(x2, train=True)                                       # the next mini-batch
    layer.backward(g)
    np.testing.assert_array_equal(a1, kept)
    np.testing.assert_array_equal(dx1, kept_dx)
    layer.forward(x1, train=True)
    layer.forward(x2)                                                   # evaluation in between
    np.testing.assert_array_equal(layer.backward(g), kept_dx)
    for p, want in zip(layer.params, grads1):
        np.testing.assert_array_equal(p.grad, want)


def test_a_trained_conv_net_can_be_copied_and_pickled(rng, kernels_name):
    """Layers remember which kernels ran their forward pass by name, so a network stays picklable
    (executors send networks to other processes) after training steps on either path."""
    import copy
    import pickle

    net = nndl.Network([ConvPool(3, 3, input_shape=(1, 8, 8)), MaxPool(1), nndl.Dense(27, 2)], seed=0)
    x = rng.random((4, 64)).astype(np.float32)
    net.fit((x, np.array([0, 1, 0, 1])), epochs=1, mini_batch_size=2, eta=0.1, monitor_evaluation_accuracy=False)
    for again in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(again.feedforward(x), net.feedforward(x))
