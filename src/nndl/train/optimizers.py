"""Optimisers: the update rule and its state (chapter 1's SGD, chapter 3's regularisation and
momentum, and what users expect today: Adam and RMSProp).

Each optimiser owns its state (a velocity per parameter, say) and updates ``param.value`` in place
from ``param.grad``, the gradient of the mean mini-batch cost. Regularisation of weights (never
biases) follows the book, with n = the size of the training set and m = the mini-batch size:

- ``l2``     chapter 3: w → (1 - ηλ/n) w - η ∂C₀/∂w           (cost term  λ/2n Σw²)
- ``l1``     chapter 3: w → w - (ηλ/n) sgn(w) - η ∂C₀/∂w       (cost term  λ/n Σ|w|)
- ``l2-ch6`` chapter 6's code: the term ½λΣw² divided by the number of mini-batches n/m is added
  to the mean mini-batch cost, i.e. a decay of ηλm/n per step: m times stronger for the same λ.

``max_norm`` (optional) rescales each unit's incoming weight vector to norm ≤ c after every step.
``clip_norm`` (optional) rescales the whole gradient to global norm ≤ c before the step (RNNs).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import array_module, to_numpy
from ..nn import kernels
from ..nn.layers import Param

REGULARIZATIONS = ("none", "l2", "l1", "l2-ch6")


class Optimizer:
    """Base class: ``bind(params, n_train, mini_batch_size)`` then ``step()`` after each backprop."""

    name = "optimizer"
    state_names: tuple[str, ...] = ()

    def __init__(
        self,
        eta: float,
        *,
        lmbda: float = 0.0,
        regularization: str = "l2",
        max_norm: float | None = None,
        clip_norm: float | None = None,
    ):
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta > 0):
            raise ValueError(f"Invalid learning rate eta={eta!r}: it must be a positive number")
        if lmbda < 0:
            raise ValueError(f"Invalid regularisation parameter lmbda={lmbda}: it must be >= 0")
        if regularization not in REGULARIZATIONS:
            raise ValueError(f"regularization must be one of {REGULARIZATIONS}, got {regularization!r}")
        self.eta = float(eta)
        self.lmbda = float(lmbda)
        self.regularization = regularization if lmbda > 0 else "none"
        self.max_norm = max_norm
        self.clip_norm = clip_norm
        self.params: list[Param] = []
        self.n_train = 1
        self.mini_batch_size = 1
        self.state: dict[str, list[Any]] = {}

    def bind(self, params: list[Param], n_train: int, mini_batch_size: int) -> "Optimizer":
        """Attach to the network's parameters; n_train and m set the λ scaling."""
        if n_train < 1:
            raise ValueError("the training set is empty")
        same = len(params) == len(self.params) and all(a is b for a, b in zip(params, self.params))
        self.params, self.n_train, self.mini_batch_size = list(params), int(n_train), int(mini_batch_size)
        if not same:
            self.state = {k: [array_module(p.value).zeros_like(p.value) for p in self.params]
                          for k in self.state_names}
        return self

    # --- regularisation -------------------------------------------------------------------
    @property
    def decay(self) -> float:
        """The per-step weight-decay coefficient c in ∂(reg)/∂w = c·w (or c·sgn(w) for L1)."""
        if self.regularization == "none":
            return 0.0
        if self.regularization == "l2-ch6":
            return self.lmbda * self.mini_batch_size / self.n_train
        return self.lmbda / self.n_train

    def regularization_cost(self) -> float:
        """The regularisation term of the cost, as the book's total_cost reports it."""
        if self.regularization == "none":
            return 0.0
        weights = [to_numpy(p.value) for p in self.params if p.regularize]
        if self.regularization == "l1":
            return self.lmbda / self.n_train * sum(float(np.abs(w).sum()) for w in weights)
        return 0.5 * self.decay * sum(float((w.astype(np.float64) ** 2).sum()) for w in weights)

    def regularized_grad(self, p: Param):
        """∂C/∂p including the regulariser (allocates; the plain SGD path avoids this)."""
        c = self.decay
        if not (c and p.regularize):
            return p.grad
        if self.regularization == "l1":
            return p.grad + c * array_module(p.value).sign(p.value)
        return p.grad + c * p.value

    # --- the step -------------------------------------------------------------------------
    def step(self) -> None:
        if self.clip_norm:
            self._clip_gradients()
        self.update()
        if self.max_norm:
            self._apply_max_norm()

    def update(self) -> None:
        raise NotImplementedError

    def _clip_gradients(self) -> None:
        total = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in self.params))
        if total > self.clip_norm:
            scale = self.clip_norm / total
            for p in self.params:
                p.grad *= scale

    def _apply_max_norm(self) -> None:
        for p in self.params:
            if p.regularize:
                xp = array_module(p.value)
                # columns are units: Dense w is (n_in, n_out); conv w is (maps, ...) → one row per map
                w = p.value if p.value.ndim == 2 else p.value.reshape(p.value.shape[0], -1).T
                norms = xp.sqrt((w * w).sum(axis=0, keepdims=True))
                w *= xp.minimum(1.0, self.max_norm / xp.maximum(norms, 1e-12))

    # --- state for checkpoints ------------------------------------------------------------
    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-safe settings, arrays) — everything needed to resume bit-identically."""
        arrays = {f"{k}/{i}": to_numpy(v) for k, vs in self.state.items() for i, v in enumerate(vs)}
        return self.config(), arrays

    def load_state_dict(self, arrays: dict[str, np.ndarray], config: dict | None = None) -> None:
        """Put back what ``state_dict`` gave, after ``bind``: the arrays, and from ``config`` the
        learning rate η (a schedule may have changed it) and the step count t (Adam)."""
        for key in ("eta", "t"):
            if config and key in config and hasattr(self, key):
                setattr(self, key, config[key])
        for k, vs in self.state.items():
            for i, v in enumerate(vs):
                saved = arrays[f"{k}/{i}"]
                if saved.shape != v.shape:
                    raise ValueError(f"optimiser state {k}/{i} has shape {saved.shape}, expected {v.shape}")
                vs[i] = array_module(v).asarray(saved, dtype=v.dtype).copy()

    def config(self) -> dict:
        return {"name": self.name, "eta": self.eta, "lmbda": self.lmbda, "regularization": self.regularization,
                "max_norm": self.max_norm, "clip_norm": self.clip_norm}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items() if k != 'name')})"


class SGD(Optimizer):
    """w → w - η ∂C/∂w (chapter 1), with the book's weight decay when λ > 0."""

    name = "sgd"

    def update(self) -> None:
        eta, c = self.eta, self.decay
        shrink, l1 = (1.0, eta * c) if self.regularization == "l1" else (1.0 - eta * c, 0.0)
        sgd_step = kernels.for_array(self.params[0].value).sgd_step
        for p in self.params:                         # w → (1 - ηλ/n) w - η ∂C/∂w, or the L1 step
            if p.regularize:
                sgd_step(p.value, p.grad, eta, shrink, l1)
            else:
                sgd_step(p.value, p.grad, eta)


class Momentum(Optimizer):
    """Momentum-based gradient descent (chapter 3): v → μv - η∇C, w → w + v."""

    name = "momentum"
    state_names = ("velocity",)

    def __init__(self, eta: float, mu: float = 0.9, **kwargs: Any):
        super().__init__(eta, **kwargs)
        if not 0.0 <= mu < 1.0:
            raise ValueError(f"momentum coefficient mu must be in [0, 1), got {mu}")
        self.mu = float(mu)

    def update(self) -> None:
        for p, v in zip(self.params, self.state["velocity"]):
            v *= self.mu
            v -= self.eta * self.regularized_grad(p)
            p.value += v

    def config(self) -> dict:
        return {**super().config(), "mu": self.mu}


class Nesterov(Momentum):
    """Nesterov momentum: the gradient is taken at the look-ahead point w + μv.

    With the look-ahead variable stored in place of w (Sutskever et al. 2013), one step is
    v' = μv - η∇C, w → w - μv + (1 + μ)v'. At μ = 0 this is plain SGD.
    """

    name = "nesterov"

    def update(self) -> None:
        mu = self.mu
        for p, v in zip(self.params, self.state["velocity"]):
            v_prev = v.copy()
            v *= mu
            v -= self.eta * self.regularized_grad(p)
            p.value += (1 + mu) * v - mu * v_prev


class RMSProp(Optimizer):
    """RMSProp (Hinton 2012): divide the step by a running RMS of recent gradients."""

    name = "rmsprop"
    state_names = ("mean_square",)

    def __init__(self, eta: float = 0.001, rho: float = 0.9, eps: float = 1e-8, **kwargs: Any):
        super().__init__(eta, **kwargs)
        self.rho, self.eps = float(rho), float(eps)

    def update(self) -> None:
        for p, s in zip(self.params, self.state["mean_square"]):
            g = self.regularized_grad(p)
            s *= self.rho
            s += (1 - self.rho) * g * g
            p.value -= self.eta * g / (array_module(s).sqrt(s) + self.eps)

    def config(self) -> dict:
        return {**super().config(), "rho": self.rho, "eps": self.eps}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980), with bias correction."""

    name = "adam"
    state_names = ("m", "v")

    def __init__(self, eta: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, **kwargs: Any):
        super().__init__(eta, **kwargs)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.t = 0

    def update(self) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step = self.eta * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for p, m, v in zip(self.params, self.state["m"], self.state["v"]):
            g = self.regularized_grad(p)
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p.value -= step * m / (array_module(v).sqrt(v) + self.eps)

    def config(self) -> dict:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "t": self.t}


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Nesterov, RMSProp, Adam)}


def make_optimizer(name: str, eta: float, **kwargs: Any) -> Optimizer:
    """An optimiser by name (sgd, momentum, nesterov, rmsprop, adam); unknown kwargs are refused."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}") from None
    return cls(eta, **kwargs)
