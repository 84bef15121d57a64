"""Conjugate gradient and L-BFGS over the flattened parameters: correct gradient, falling cost."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

import nndl
from nndl.errors import TrainingDivergedError
from nndl.train.fullbatch import FullBatchObjective, fit_full_batch


def test_objective_gradient_matches_finite_differences(rng):
    net = nndl.Network.from_sizes([6, 5, 3], cost="cross-entropy", seed=0, dtype="float64")
    data = (rng.random((20, 6)), rng.integers(0, 3, 20))
    objective = FullBatchObjective(net, data, lmbda=0.5)
    theta = objective.get()
    err = check_grad(lambda t: objective(t)[0], lambda t: objective(t)[1], theta, epsilon=1e-6)
    assert err / np.linalg.norm(objective(theta)[1]) < 1e-5


@pytest.mark.parametrize("method", ["cg", "lbfgs"])
def test_full_batch_methods_decrease_the_cost_and_learn(method, mnist_small):
    training, _, test = mnist_small
    train = (training[0][:1000], training[1][:1000])
    net = nndl.Network.from_sizes([784, 20, 10], cost="cross-entropy", seed=0)
    start_cost = net.total_cost(train)
    history = fit_full_batch(net, train, method=method, iterations=30, evaluation_data=test, every=10)
    assert history.training_cost[-1] < 0.5 * start_cost
    assert history.training_cost == sorted(history.training_cost, reverse=True)
    assert net.accuracy(test) > 0.75


def test_unknown_method_is_refused():
    net = nndl.Network.from_sizes([4, 2], seed=0)
    with pytest.raises(ValueError, match="method must be one of cg, lbfgs"):
        fit_full_batch(net, (np.zeros((2, 4)), np.array([0, 1])), method="newton")


@pytest.mark.parametrize("method", ["cg", "lbfgs"])
def test_a_non_finite_cost_stops_with_training_diverged_error_that_says_what_to_try(method, rng):
    """Inputs far out of range overflow the cost: nndl's error names the method, what became NaN and what to try."""
    net = nndl.Network.from_sizes([6, 5, 3], cost="cross-entropy", seed=0, dtype="float32")
    data = (np.full((20, 6), np.inf), rng.integers(0, 3, 20))
    with np.errstate(all="ignore"), pytest.raises(
            TrainingDivergedError, match=rf"{method} training diverged after \d+ iterations: the cost became nan .*"
                                         r"training inputs for NaN.*smaller lmbda \(now 0\.5\), or train in float64"):
        fit_full_batch(net, data, method=method, iterations=5, lmbda=0.5)


def test_weights_that_are_not_finite_stop_training_even_with_a_finite_cost(monkeypatch, rng):
    """The weights are checked too, not only scipy's final cost."""
    import scipy.optimize
    from scipy.optimize import OptimizeResult

    net = nndl.Network.from_sizes([4, 3, 2], seed=0, dtype="float64")
    theta = np.concatenate([p.value.ravel() for p in net.params])
    theta[0] = np.nan

    def fake_minimize(fun, x0, **kwargs):
        return OptimizeResult(x=theta, fun=0.25, nit=3, success=True, message="CONVERGENCE")

    monkeypatch.setattr(scipy.optimize, "minimize", fake_minimize)
    with pytest.raises(TrainingDivergedError, match=r"lbfgs training diverged after 3 iterations: the weights became "
                                                    r"NaN or infinite \(scipy: CONVERGENCE\)"):
        fit_full_batch(net, (rng.random((8, 4)), rng.integers(0, 2, 8)), method="lbfgs", iterations=5)
