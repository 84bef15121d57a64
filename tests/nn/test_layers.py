"""Dropout's two conventions and the zeros initialiser (chapters 3 and 6)."""
import numpy as np
import pytest

import nndl
from nndl import experiment, recipes
from nndl.nn.init import init_params


def built_dropout(p: float, inverted: bool, n: int = 1000) -> nndl.Dropout:
    layer = nndl.Dropout(p, inverted=inverted)
    layer.build((n,), np.random.default_rng(0), np.float32, "default")
    return layer


def test_book_dropout_keeps_units_unscaled_in_training_and_scales_all_at_test_time():
    layer = built_dropout(0.5, inverted=False)
    x = np.full((4, 1000), 3.0, np.float32)
    assert np.array_equal(layer.forward(x), x * 0.5)            # test time: every unit times 1 - p
    out = layer.forward(x, train=True)
    assert set(np.unique(out)) == {0.0, 3.0}                     # kept units pass as they are
    grad = layer.backward(np.ones_like(x))
    assert np.array_equal(grad, out / 3.0)                       # the gradient flows through kept units only


@pytest.mark.parametrize("inverted", [True, False])
def test_both_conventions_give_the_next_layer_the_same_expected_input(inverted):
    layer = built_dropout(0.3, inverted=inverted, n=200)
    x = np.random.default_rng(1).random((500, 200)).astype(np.float32)
    train_mean = np.mean([layer.forward(x, train=True) for _ in range(20)], axis=0)   # (500, 200)
    assert abs(float(train_mean.mean()) - float(layer.forward(x).mean())) < 0.01


def test_the_dropout_convention_is_saved_with_the_network(tmp_path):
    net = nndl.Network([nndl.Dense(784, 30, "relu"), nndl.Dropout(0.5, inverted=False), nndl.Dense(30, 10, "softmax")],
                       cost="log-likelihood", seed=0)
    net.save(str(tmp_path / "net.npz"))
    loaded = nndl.load(str(tmp_path / "net.npz"))
    assert loaded.layers[1].inverted is False
    x = np.random.default_rng(2).random((5, 784)).astype(np.float32)
    assert np.allclose(loaded.feedforward(x), net.feedforward(x))
    assert nndl.Dropout(0.5).inverted is True                    # older files, without the key: inverted


def test_the_chapter6_dropout_recipe_uses_the_books_convention():
    settings = recipes.load_recipe("ch6-dropout")["settings"]
    net = experiment.build_network(settings, seed=0)
    dropouts = [layer for layer in net.layers if isinstance(layer, nndl.Dropout)]
    assert len(dropouts) == 3 and all(not d.inverted and d.p == 0.5 for d in dropouts)


def test_zeros_init_starts_an_output_layer_at_zero_yet_it_learns():
    w, b = init_params("zeros", (10, 30), (10,), 30, 10, np.random.default_rng(0))
    assert not w.any() and not b.any()
    net = nndl.Network([nndl.Dense(4, 30, "sigmoid"), nndl.Dense(30, 3, "softmax", init="zeros")],
                       cost="log-likelihood", seed=0)
    out = net.layers[-1]
    assert not out.w.value.any() and not out.b.value.any()
    x = np.random.default_rng(3).random((8, 4)).astype(np.float32)
    y = net.encode_targets(np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    net.backprop(x, y)
    assert np.abs(out.w.grad).max() > 1e-3                       # softmax outputs 1/3 each: δ = a - y ≠ 0


def test_a_whole_network_cannot_start_from_zeros():
    with pytest.raises(ValueError, match="output layer alone"):
        nndl.Network([nndl.Dense(4, 3, "sigmoid"), nndl.Dense(3, 2, "softmax")], cost="log-likelihood", init="zeros")
