"""The network: layers plus a cost, with feedforward and matrix-based backpropagation.

Chapter 1 (feedforward, a = σ(w·a + b)) and chapter 2 (backpropagation) of the book, for a whole
mini-batch at once: rows are samples, so one matrix product per layer serves every example, and
there is no Python loop over examples anywhere.

    delta = cost.delta(z_L, a_L, y) / m      # BP1, for the mean cost over the mini-batch
    grad = layers[-1].backward_delta(delta)  # BP3, BP4 for the output layer
    for layer in reversed(layers[:-1]):      # BP2 carries δ down; each layer does BP3, BP4
        grad = layer.backward(grad)

The network owns its layers and one ``numpy.random.Generator`` (initialisation and dropout).
Training (the loop, the optimiser, callbacks) lives in ``nndl.train``.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from .. import backend
from ..errors import NonFiniteOutputError, ShapeError
from .costs import Cost, get_cost
from .init import NETWORK_INITS
from .layers import Dense, Dropout, Layer, Param

OUTPUT_ENCODINGS = ("one-hot", "binary")


class Network:
    """A feedforward network: ``Network([Dense(784, 30), Dense(30, 10)], cost="quadratic", seed=0)``.

    ``init`` is the default initialiser for layers that do not name one ("default": the book's
    N(0, 1/n_in) weights and N(0, 1) biases; "large": chapter 1's N(0, 1); "he"; "glorot").
    ``output_encoding`` is "one-hot" (one output neuron per class, the argmax is the answer) or
    "binary" (the book's exercise: the class as bits, one output neuron per bit).
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        cost: str | Cost = "quadratic",
        *,
        seed: int | None = None,
        init: str = "default",
        dtype: Any = None,
        output_encoding: str = "one-hot",
        n_classes: int | None = None,
    ):
        if not layers:
            raise ValueError("a network needs at least one layer")
        layers = list(layers)
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"layers must be nndl layers, got {type(layer).__name__}")
        out = layers[-1]
        if not (hasattr(out, "activation") and hasattr(out, "backward_delta")):
            raise ValueError(f"the last layer is the output layer and must be Dense-like, got {out!r}")
        if output_encoding not in OUTPUT_ENCODINGS:
            raise ValueError(f"output_encoding must be one of {OUTPUT_ENCODINGS}, got {output_encoding!r}")
        if init not in NETWORK_INITS:
            raise ValueError(f"init must be one of {', '.join(NETWORK_INITS)} for a whole network, got {init!r}"
                             + ("; give 'zeros' to the output layer alone (Dense(..., init='zeros'))"
                                if init == "zeros" else ""))
        self.layers = layers
        self.cost = get_cost(cost)
        self.seed = seed
        self.init = init
        self.dtype = np.dtype(dtype) if dtype is not None else backend.get_dtype()
        self.output_encoding = output_encoding
        self.rng = np.random.default_rng(seed)
        self.input_shape = self._first_input_shape(layers[0])
        shape = self.input_shape
        for layer in layers:
            shape = layer.build(shape, self.rng, self.dtype, init)
        self.output_shape = shape
        n_out = int(np.prod(shape))
        if output_encoding == "binary":
            self.n_classes = n_classes or 2 ** n_out
            if self.n_classes > 2 ** n_out:
                raise ValueError(f"{n_out} binary outputs cannot encode {self.n_classes} classes")
        else:
            self.n_classes = n_out
        layers[0].needs_input_grad = False
        self.to_device(backend.get_device())

    # ----- construction helpers -------------------------------------------------------------
    @staticmethod
    def _first_input_shape(layer: Layer) -> tuple[int, ...]:
        if getattr(layer, "input_shape", None):
            return tuple(layer.input_shape)
        if isinstance(layer, Dense):
            return (layer.n_in,)
        raise ValueError(f"the first layer {layer!r} needs input_shape=(channels, height, width)")

    @classmethod
    def from_sizes(
        cls,
        sizes: Sequence[int],
        activation: str = "sigmoid",
        output_activation: str | None = None,
        cost: str | Cost = "quadratic",
        *,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> "Network":
        """The book's ``Network([784, 30, 10])``: Dense layers of these sizes; with ``dropout`` > 0,
        a Dropout layer on each hidden layer's output."""
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
        acts = [activation] * (len(sizes) - 2) + [output_activation or activation]
        layers: list[Layer] = []
        for i, (n_in, n_out, act) in enumerate(zip(sizes[:-1], sizes[1:], acts)):
            layers.append(Dense(n_in, n_out, act))
            if dropout and i < len(sizes) - 2:
                layers.append(Dropout(dropout))
        return cls(layers, cost, **kwargs)

    def to_device(self, device: str) -> "Network":
        """Move every parameter to ``"cpu"`` (NumPy) or ``"gpu"`` (CuPy)."""
        xp = backend.cupy_module() if device == "gpu" else np
        for p in self.params:
            p.value = xp.asarray(backend.to_numpy(p.value) if xp is np else p.value, dtype=self.dtype)
            p.grad = None
        self.device = device
        return self

    @property
    def params(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.params]

    def macs_per_sample(self) -> int:
        """Multiply-adds of one forward pass for one sample."""
        return sum(layer.macs_per_sample() for layer in self.layers)

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.params)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Network([\n  {inner}\n], cost={self.cost.name!r})"

    # ----- data at the boundary -------------------------------------------------------------
    def prepare_input(self, x: Any):
        """``x`` as an array of shape (m, *input_shape) on the network's device and dtype."""
        xp = backend.cupy_module() if self.device == "gpu" else np
        x = xp.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        n_features = int(np.prod(self.input_shape))
        if x.ndim == 1 and x.shape[0] == n_features:
            x = x[None]
        if x.ndim >= 2 and int(np.prod(x.shape[1:])) == n_features:
            return x.reshape((x.shape[0],) + self.input_shape)
        raise ShapeError(
            f"the network expects inputs of shape (m, {n_features}) or (m, {', '.join(map(str, self.input_shape))}), "
            f"got an array of shape {tuple(x.shape)}"
        )

    def encode_targets(self, y: Any):
        """Labels (m,) → target rows (m, n_outputs); target rows pass through after a shape check."""
        xp = backend.cupy_module() if self.device == "gpu" else np
        y = np.asarray(backend.to_numpy(y))
        n_out = int(np.prod(self.output_shape))
        if y.ndim == 2:
            if y.shape[1] != n_out:
                raise ShapeError(f"targets have {y.shape[1]} columns but the network has {n_out} outputs")
            return xp.asarray(y, dtype=self.dtype)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ShapeError(f"labels must be a 1-D integer array, got dtype {y.dtype} and shape {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"labels must be in 0..{self.n_classes - 1}, got values from {y.min()} to {y.max()}")
        if self.output_encoding == "binary":
            bits = (y[:, None] >> np.arange(n_out)[None, :]) & 1  # bit j of the label, least significant first
            return xp.asarray(bits, dtype=self.dtype)
        return xp.asarray(np.eye(n_out, dtype=self.dtype)[y])

    def decode_outputs(self, a) -> np.ndarray:
        """Output activations (m, n_out) → predicted labels (m,)."""
        a = backend.to_numpy(a)
        if self.output_encoding == "binary":
            bits = (a > 0.5).astype(np.int64)
            return (bits << np.arange(a.shape[1])).sum(axis=1)
        return a.argmax(axis=1)

    # ----- forward ----------------------------------------------------------------------------
    def forward(self, x, *, train: bool = False):
        """Output activations for an already prepared batch (m, *input_shape)."""
        a = x
        for layer in self.layers:
            a = layer.forward(a, train=train)
        return a

    def feedforward(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Output activations a^L, shape (m, n_out), computed in chunks of ``batch_size`` rows
        (default: 1000 for flat inputs, 100 for images, whose conv temporaries are large)."""
        x = self.prepare_input(x)
        batch_size = batch_size or self.eval_batch_size
        outs = [self.forward(x[k:k + batch_size]) for k in range(0, x.shape[0], batch_size)]
        xp = backend.array_module(x)
        return xp.concatenate(outs) if outs else xp.zeros((0,) + self.output_shape, self.dtype)

    def predict(self, x: Any) -> np.ndarray:
        """Predicted labels (m,): the argmax output neuron (or the decoded bits)."""
        return self.decode_outputs(self.feedforward(x))

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities (m, n_classes): softmax outputs as they are; other outputs normalised."""
        a = backend.to_numpy(self.feedforward(x)).astype(np.float64)
        if not np.isfinite(a).all():
            raise NonFiniteOutputError("the network's outputs are NaN or infinite, so it has no probabilities "
                                       "to give: its weights are far out of range (is the model file damaged?)")
        if self.output_encoding == "binary":
            codes = (np.arange(self.n_classes)[:, None] >> np.arange(a.shape[1])[None, :]) & 1
            a = np.exp((codes[None] * np.log(np.clip(a[:, None], 1e-12, 1))
                        + (1 - codes[None]) * np.log(np.clip(1 - a[:, None], 1e-12, 1))).sum(axis=2))
        return a / np.maximum(a.sum(axis=1, keepdims=True), 1e-300)

    def accuracy(self, data: tuple[Any, Any]) -> float:
        """Fraction of examples whose predicted label equals the true label."""
        x, y = data
        y = np.asarray(backend.to_numpy(y))
        if y.ndim == 2:
            y = y.argmax(axis=1)
        if len(y) == 0:
            raise ValueError("cannot measure accuracy on an empty data set")
        return float((self.predict(x) == y).mean())

    @property
    def eval_batch_size(self) -> int:
        return 1000 if len(self.input_shape) == 1 else 100

    def total_cost(self, data: tuple[Any, Any], batch_size: int | None = None) -> float:
        """Mean cost (1/n) Σ_x C_x over ``data`` (without any regularisation term)."""
        x, y = data
        x = self.prepare_input(x)
        batch_size = batch_size or self.eval_batch_size
        n = x.shape[0]
        total = 0.0
        for k in range(0, n, batch_size):
            a = self.forward(x[k:k + batch_size])
            total += self.cost.fn(a, self.encode_targets(y[k:k + batch_size]))
        return total / max(n, 1)

    # ----- backprop ---------------------------------------------------------------------------
    def backprop(self, x, y_target, *, return_cost: bool = False) -> float | None:
        """Fill every ``Param.grad`` with ∂C/∂param for the mean cost over the batch.

        ``x`` is a prepared batch (m, *input_shape), ``y_target`` the encoded targets (m, n_out).
        This is the one place where gradients are divided by m.
        """
        a = self.forward(x, train=True)
        out = self.layers[-1]
        m = x.shape[0]
        delta = self.cost.delta(out.z, a, y_target, out.activation)  # BP1: (m, n_out)
        delta *= 1.0 / m
        grad = out.backward_delta(delta)
        for layer in reversed(self.layers[:-1]):
            if grad is None:
                break
            grad = layer.backward(grad)
        return self.cost.fn(a, y_target) / m if return_cost else None

    # ----- training and files (implemented in nndl.train and nndl.models) ----------------------
    def fit(self, training_data, epochs: int, mini_batch_size: int, eta: float | None = None, **kwargs: Any):
        """Train with mini-batch SGD (or ``optimizer=``); see ``nndl.train.trainer.fit``. Returns the History."""
        from ..train.trainer import fit

        return fit(self, training_data, epochs=epochs, mini_batch_size=mini_batch_size, eta=eta, **kwargs)

    def save(self, path: str, *, stored_dtype: str | None = None, **metadata: Any) -> None:
        """Write the architecture (JSON) and parameters (.npz arrays) atomically; no pickle.
        ``stored_dtype="float16"`` halves the file (read back as this network's dtype)."""
        from ..models.io import save

        save(self, path, stored_dtype=stored_dtype, **metadata)

    def get_weights(self) -> list[np.ndarray]:
        return [backend.to_numpy(p.value).copy() for p in self.params]

    def set_weights(self, weights: Iterable[np.ndarray]) -> None:
        weights = list(weights)
        params = self.params
        if len(weights) != len(params):
            raise ValueError(f"expected {len(params)} arrays, got {len(weights)}")
        xp = backend.array_module(params[0].value) if params else np
        for p, w in zip(params, weights):
            if tuple(w.shape) != p.shape:
                raise ShapeError(f"parameter {p.name} has shape {p.shape}, got {tuple(w.shape)}")
            p.value = xp.asarray(w, dtype=self.dtype).copy()

    def config(self) -> dict:
        """JSON-safe description of the architecture (used by save/load)."""
        return {
            "layers": [{"kind": layer.kind, **layer.config(), **self._input_shape_config(i, layer)}
                       for i, layer in enumerate(self.layers)],
            "cost": self.cost.name,
            "init": self.init,
            "dtype": str(self.dtype),
            "output_encoding": self.output_encoding,
            "n_classes": self.n_classes,
        }

    def _input_shape_config(self, index: int, layer: Layer) -> dict:
        if index == 0 and not isinstance(layer, Dense) and "input_shape" not in layer.config():
            return {"input_shape": list(self.input_shape)}
        return {}
