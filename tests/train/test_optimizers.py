"""Each optimiser against its formula on a known example, and the book's regularisation."""
from __future__ import annotations

import numpy as np
import pytest

from nndl.nn.layers import Param
from nndl.train.optimizers import SGD, Adam, Momentum, Nesterov, RMSProp, make_optimizer


def _params():
    w = Param("w", np.array([[1.0, -2.0], [0.5, 0.0]]), regularize=True)
    b = Param("b", np.array([0.3, -0.3]))
    return [w, b]


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = np.array(g, dtype=float)


GRADS = [[[0.1, 0.2], [-0.3, 0.4]], [0.5, -0.5]]


def test_sgd_is_w_minus_eta_grad():
    params = _params()
    opt = SGD(0.5).bind(params, 100, 10)
    w0, b0 = params[0].value.copy(), params[1].value.copy()
    _set_grads(params, GRADS)
    opt.step()
    np.testing.assert_allclose(params[0].value, w0 - 0.5 * np.array(GRADS[0]))
    np.testing.assert_allclose(params[1].value, b0 - 0.5 * np.array(GRADS[1]))


def test_l2_shrinks_weights_by_one_minus_eta_lambda_over_n_and_leaves_biases():
    params = _params()
    opt = SGD(0.5, lmbda=5.0).bind(params, n_train=100, mini_batch_size=10)
    w0, b0 = params[0].value.copy(), params[1].value.copy()
    _set_grads(params, GRADS)
    opt.step()
    np.testing.assert_allclose(params[0].value, (1 - 0.5 * 5.0 / 100) * w0 - 0.5 * np.array(GRADS[0]))
    np.testing.assert_allclose(params[1].value, b0 - 0.5 * np.array(GRADS[1]))


def test_l1_subtracts_eta_lambda_over_n_times_sign():
    params = _params()
    opt = SGD(0.5, lmbda=5.0, regularization="l1").bind(params, 100, 10)
    w0 = params[0].value.copy()
    _set_grads(params, GRADS)
    opt.step()
    np.testing.assert_allclose(params[0].value, w0 - 0.5 * 5.0 / 100 * np.sign(w0) - 0.5 * np.array(GRADS[0]))


def test_chapter6_l2_is_m_times_stronger():
    params = _params()
    opt = SGD(0.5, lmbda=5.0, regularization="l2-ch6").bind(params, 100, 10)
    assert opt.decay == pytest.approx(5.0 * 10 / 100)
    w0 = params[0].value.copy()
    _set_grads(params, GRADS)
    opt.step()
    np.testing.assert_allclose(params[0].value, (1 - 0.5 * 5.0 * 10 / 100) * w0 - 0.5 * np.array(GRADS[0]))


def test_l2_cost_term_is_lambda_over_2n_sum_w_squared():
    params = _params()
    opt = SGD(0.5, lmbda=5.0).bind(params, 100, 10)
    assert opt.regularization_cost() == pytest.approx(5.0 / 200 * (1 + 4 + 0.25))


def test_momentum_formula_over_two_steps():
    params = _params()
    opt = Momentum(0.1, mu=0.9).bind(params, 100, 10)
    w0 = params[0].value.copy()
    g = np.array(GRADS[0])
    _set_grads(params, GRADS)
    opt.step()
    v1 = -0.1 * g
    _set_grads(params, GRADS)
    opt.step()
    v2 = 0.9 * v1 - 0.1 * g
    np.testing.assert_allclose(params[0].value, w0 + v1 + v2)


@pytest.mark.parametrize("cls", [Momentum, Nesterov])
def test_momentum_and_nesterov_reduce_to_sgd_at_mu_zero(cls):
    a, b = _params(), _params()
    sgd, mom = SGD(0.3, lmbda=1.0).bind(a, 50, 5), cls(0.3, mu=0.0, lmbda=1.0).bind(b, 50, 5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = [rng.standard_normal(p.shape) for p in a]
        _set_grads(a, grads)
        _set_grads(b, grads)
        sgd.step()
        mom.step()
    for p, q in zip(a, b):
        np.testing.assert_allclose(p.value, q.value, rtol=1e-12)


def test_nesterov_formula():
    params = _params()
    opt = Nesterov(0.1, mu=0.5).bind(params, 100, 10)
    w0, g = params[0].value.copy(), np.array(GRADS[0])
    _set_grads(params, GRADS)
    opt.step()
    v1 = -0.1 * g
    np.testing.assert_allclose(params[0].value, w0 + 1.5 * v1)  # w - μ·0 + (1 + μ) v1


def test_adam_first_step_moves_each_weight_by_eta():
    params = _params()
    opt = Adam(0.01).bind(params, 100, 10)
    w0 = params[0].value.copy()
    _set_grads(params, GRADS)
    opt.step()
    # bias-corrected m/sqrt(v) = sign(g) on the first step
    np.testing.assert_allclose(params[0].value, w0 - 0.01 * np.sign(GRADS[0]), atol=1e-6)


def test_rmsprop_formula():
    params = _params()
    opt = RMSProp(0.01, rho=0.9, eps=0.0).bind(params, 100, 10)
    w0, g = params[0].value.copy(), np.array(GRADS[0])
    _set_grads(params, GRADS)
    opt.step()
    np.testing.assert_allclose(params[0].value, w0 - 0.01 * g / np.sqrt(0.1 * g * g))


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "rmsprop"])
def test_every_optimizer_decreases_a_quadratic_bowl(name):
    p = Param("w", np.array([3.0, -4.0]), regularize=True)
    opt = make_optimizer(name, 0.05).bind([p], 1, 1)
    start = float(p.value @ p.value)
    for _ in range(100):
        p.grad = 2 * p.value.copy()  # ∇ of ‖w‖²
        opt.step()
    assert float(p.value @ p.value) < 0.1 * start


def test_gradient_clipping_limits_global_norm():
    p = Param("w", np.zeros(2))
    opt = SGD(1.0, clip_norm=1.0).bind([p], 1, 1)
    p.grad = np.array([30.0, 40.0])
    opt.step()
    np.testing.assert_allclose(p.value, [-0.6, -0.8])


def test_max_norm_caps_each_units_incoming_weights():
    p = Param("w", np.array([[3.0, 0.1], [4.0, 0.1]]), regularize=True)
    opt = SGD(1e-9, max_norm=2.0).bind([p], 1, 1)
    p.grad = np.zeros((2, 2))
    opt.step()
    np.testing.assert_allclose(np.linalg.norm(p.value, axis=0), [2.0, np.hypot(0.1, 0.1)], rtol=1e-6)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_invalid_learning_rate_is_refused(bad):
    with pytest.raises(ValueError, match="Invalid learning rate"):
        SGD(bad)


def test_unknown_optimizer_and_regularization_are_refused():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'"):
        make_optimizer("adamw", 0.1)
    with pytest.raises(ValueError, match="regularization must be one of"):
        SGD(0.1, lmbda=1.0, regularization="l3")
