"""Convolutional and pooling layers (chapter 6): values against direct loops, gradients against
finite differences, the book's ConvPool ordering, clear shape errors, save/load, and learning."""
from __future__ import annotations

import numpy as np
import pytest

import nndl
from nndl.errors import ShapeError
from nndl.nn.conv import (ConvPool, Conv2D, L2Pool, MaxPool, conv_backward, conv_forward, convpool_backward,
                          convpool_forward, l2pool_forward, maxpool_backward, maxpool_forward)
from nndl.nn.gradcheck import check_layer
from nndl.nn.layers import LAYER_TYPES

TOL = 1e-6


def naive_conv(x, w, b, s):
    """z[i, j, y, x] = b_j + Σ_{c,l,m} w[j, c, l, m] x[i, c, s·y + l, s·x + m], by loops."""
    m, c, h, wd = x.shape
    n, _, kh, kw = w.shape
    ho, wo = (h - kh) // s + 1, (wd - kw) // s + 1
    z = np.zeros((m, n, ho, wo))
    for y in range(ho):
        for xx in range(wo):
            patch = x[:, :, y * s:y * s + kh, xx * s:xx * s + kw]       # (m, c, kh, kw)
            z[:, :, y, xx] = np.einsum("icab,jcab->ij", patch, w) + b
    return z


def naive_conv_grads(x, w, dz, s):
    """dx, dw, db of Σ z·dz by loops: each position adds its window's share."""
    _, _, kh, kw = w.shape
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for y in range(dz.shape[2]):
        for xx in range(dz.shape[3]):
            g = dz[:, :, y, xx]                                         # (m, n)
            patch = x[:, :, y * s:y * s + kh, xx * s:xx * s + kw]
            dw += np.einsum("ij,icab->jcab", g, patch)
            dx[:, :, y * s:y * s + kh, xx * s:xx * s + kw] += np.einsum("ij,jcab->icab", g, w)
    return dx, dw, dz.sum(axis=(0, 2, 3))


def built(layer, input_shape, seed=0, dtype=np.float64, init="default"):
    layer.build(input_shape, np.random.default_rng(seed), dtype, init)
    return layer


# ----- the pure functions against loops -----------------------------------------------------------
@pytest.mark.parametrize("c, stride, hw", [(1, 1, (9, 9)), (3, 1, (8, 7)), (1, 2, (9, 9)), (2, 2, (10, 8)),
                                           (4, 3, (11, 11))])
def test_conv_forward_and_backward_equal_direct_loops(rng, c, stride, hw):
    x = rng.standard_normal((3, c) + hw)
    w = rng.standard_normal((5, c, 3, 3))
    b = rng.standard_normal(5)
    z, cache = conv_forward(x, w, b, stride)
    assert z.shape == naive_conv(x, w, b, stride).shape
    np.testing.assert_allclose(z, naive_conv(x, w, b, stride), rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal(z.shape)
    dx, dw, db = conv_backward(dz, cache)
    ref = naive_conv_grads(x, w, dz, stride)
    for got, want in zip((dx, dw, db), ref):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_conv_without_bias_and_without_input_gradient(rng):
    x, w = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    z, cache = conv_forward(x, w, None)
    np.testing.assert_allclose(z, naive_conv(x, w, np.zeros(3), 1), atol=1e-12)
    dx, dw, db = conv_backward(np.ones(z.shape), cache, need_dx=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, naive_conv_grads(x, w, np.ones(z.shape), 1)[1], atol=1e-11)


def test_conv_result_does_not_depend_on_memory_layout(rng):
    x = rng.standard_normal((2, 3, 7, 7))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    z1, _ = conv_forward(x, w, b)
    z2, _ = conv_forward(channels_last, w, b)
    np.testing.assert_array_equal(z1, z2)


def test_float32_stays_float32(rng):
    layer = built(Conv2D(4, 3, input_shape=(2, 6, 6)), (2, 6, 6), dtype=np.float32)
    a = layer.forward(rng.standard_normal((3, 2, 6, 6)).astype(np.float32), train=True)
    assert a.dtype == np.float32
    layer.backward(np.ones(a.shape, np.float32))
    assert layer.w.grad.dtype == np.float32 and layer.b.grad.dtype == np.float32


def test_maxpool_and_l2pool_values(rng):
    x = rng.standard_normal((2, 3, 6, 4))
    blocks = x.reshape(2, 3, 3, 2, 2, 2)                               # (m, c, ho, p, wo, p)
    out, _ = maxpool_forward(x, 2)
    np.testing.assert_array_equal(out, blocks.max(axis=(3, 5)))
    out3, _ = maxpool_forward(rng.standard_normal((1, 2, 6, 6)), 3)
    assert out3.shape == (1, 2, 2, 2)
    l2, _ = l2pool_forward(x, 2, eps=0.0)
    np.testing.assert_allclose(l2, np.sqrt((blocks ** 2).sum(axis=(3, 5))), rtol=1e-12)


@pytest.mark.parametrize("p", [2, 3])
def test_maxpool_ties_send_the_gradient_to_one_unit(p):
    x = np.zeros((2, 3, 2 * p, 2 * p))                                  # every window is a p×p tie
    x[0, 0, 0, 1] = -1.0                                               # a window with a smaller unit
    out, cache = maxpool_forward(x, p)
    g = np.arange(1.0, out.size + 1).reshape(out.shape)
    dx = maxpool_backward(g, cache)
    windows = dx.reshape(2, 3, 2, p, 2, p)
    assert ((windows != 0).sum(axis=(3, 5)) == 1).all()                # exactly one winner per window
    np.testing.assert_array_equal(windows.sum(axis=(3, 5)), g)         # which gets the whole gradient
    assert dx[0, 0, 0, 0] == g[0, 0, 0, 0]                              # the first maximum in row-major order


# ----- finite-difference gradient checks (float64) ------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "identity", "tanh"])
@pytest.mark.parametrize("c, stride", [(1, 1), (3, 1), (1, 2), (3, 2)])
def test_conv2d_gradients(rng, activation, c, stride):
    layer = built(Conv2D(4, 3, stride=stride, activation=activation), (c, 7, 7), seed=c + stride)
    errors = check_layer(layer, rng.standard_normal((2, c, 7, 7)), rng)
    assert set(errors) == {"w", "b", "input"}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("layer, shape", [(MaxPool(2), (3, 6, 6)), (MaxPool(3), (2, 6, 9)),
                                          (L2Pool(2), (3, 6, 4)), (L2Pool(3), (2, 6, 6))])
def test_pooling_gradients(rng, layer, shape):
    built(layer, shape)
    errors = check_layer(layer, rng.standard_normal((2,) + shape), rng)
    assert errors["input"] < TOL, errors


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_convpool_gradients(rng, activation):
    layer = built(ConvPool(3, 3, pool=2, activation=activation), (2, 8, 8))
    errors = check_layer(layer, rng.standard_normal((2, 2, 8, 8)), rng)
    assert set(errors) == {"w", "b", "input"}
    assert max(errors.values()) < TOL, errors


# ----- the layers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_convpool_is_the_book_order_and_equals_conv_then_pool(rng, activation):
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


def test_conv2d_alone_accepts_flat_rows_and_returns_their_shape(rng):
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
    (lambda: conv_forward(np.zeros((1, 2, 5, 5)), np.zeros((3, 1, 3, 3))), "2 channels"),
    (lambda: conv_forward(np.zeros((2, 5, 5)), np.zeros((3, 1, 3, 3))), "(m, channels, height, width)"),
    (lambda: maxpool_forward(np.zeros((1, 1, 5, 4)), 2), "divisible by 2"),
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


def test_maxpool_tie_winner_is_first_in_column_major_order():
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 1.0                                # two maxima: (row 0, col 1) and (row 1, col 0)
    out, cache = maxpool_forward(x, 2)
    dx = maxpool_backward(np.ones(out.shape), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0.0, 0.0], [1.0, 0.0]])  # the leftmost column wins
    cp = built(ConvPool(1, 1, pool=2, activation="identity"), (1, 2, 2))
    cp.w.value[...] = 1.0
    cp.forward(x, train=True)
    np.testing.assert_array_equal(cp.backward(np.ones((1, 1, 1, 1)))[0, 0], dx[0, 0] * cp.w.value[0, 0])


@pytest.mark.parametrize("p, shape", [(2, (2, 10, 8)), (3, (1, 8, 11))])
def test_convpool_functions_equal_conv_then_pool_plus_bias(rng, p, shape):
    x = rng.standard_normal((3,) + shape)
    w, b = rng.standard_normal((4, shape[0], 3, 3)), rng.standard_normal(4)
    z, cache = convpool_forward(x, w, b, p)
    conv, conv_cache = conv_forward(x, w, None)
    pooled, pool_cache = maxpool_forward(conv, p)
    np.testing.assert_allclose(z, pooled + b[None, :, None, None], rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal(z.shape)
    dx, dw, db = convpool_backward(dz, cache)
    dx2, dw2, _ = conv_backward(maxpool_backward(dz, pool_cache), conv_cache)
    np.testing.assert_allclose(dx, dx2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, dw2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, dz.sum(axis=(0, 2, 3)), rtol=1e-12)
    assert convpool_backward(dz, cache, need_dx=False)[0] is None
    z_infer, no_cache = convpool_forward(x, w, b, p, train=False)   # inference: no winners kept
    np.testing.assert_array_equal(z_infer, z)
    assert no_cache is None


@pytest.mark.parametrize("make", [lambda: Conv2D(3, 3, activation="identity"), lambda: MaxPool(2),
                                  lambda: ConvPool(3, 3, activation="identity")])
def test_reused_work_arrays_never_leak_into_results(rng, make):
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
