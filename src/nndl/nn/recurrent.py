"""Recurrent networks: a vanilla RNN layer trained by backpropagation through time (BPTT).

The notes' last section (beyond the book's chapters): a hidden state fed back into the network,
the same weights at every time step, h0 = 0, the unrolled graph, a loss at each step summed, and
many-to-one, many-to-many and one-to-many use. With rows as samples and x_t of shape (m, n_in):

    z_t = x_t·w_xh + h_{t-1}·w_hh + b        # (m, n_hidden); the same w_xh, w_hh, b at every t
    h_t = tanh(z_t),   h_0 = 0

``RNN(return_sequences=False)`` outputs h_T (many-to-one, e.g. sequential MNIST: an image read
as 28 rows of 28 pixels, then a softmax Dense layer); ``return_sequences=True`` outputs every
h_t, shape (m, T, n_hidden) (many-to-many; the character model in ``nndl.charrnn`` puts a softmax
on each step). ``sequential_mnist_network`` builds the many-to-one classifier.

Limits: a vanilla tanh cell (no LSTM/GRU gates), so long-range memory is weak and gradients can
explode: train with Adam and ``clip_norm``. Time steps run in a Python loop (the recurrence is
sequential); everything else — the input projections and the weight gradients — is one matrix
product over all steps and samples at once.
"""
from __future__ import annotations

import numpy as np

from ..backend import array_module
from ..errors import ShapeError
from .checks import positive_int
from .init import NETWORK_INITS, init_params, new_param
from .layers import Dense, Layer, Param, register_layer

RNN_INITS = ("orthogonal", *NETWORK_INITS)


def orthogonal(n: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """A random (n, n) orthogonal matrix (QR of a Gaussian, signs fixed so it is uniform).

    All its singular values are 1, so h·w_hh neither shrinks nor blows up the state at the
    start of training: the usual remedy for vanishing/exploding gradients through time.
    """
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q *= np.sign(np.diag(r))
    return q.astype(dtype)


@register_layer
class RNN(Layer):
    """Vanilla recurrent layer: h_t = tanh(x_t·w_xh + h_{t-1}·w_hh + b), h_0 = 0.

    Input (m, T, n_in), or rows (m, T·n_in) read as T steps of n_in (``input_shape=(T, n_in)``;
    MNIST rows then are 28 steps of 28 pixels). Output h_T (m, n_hidden), or all states
    (m, T, n_hidden) with ``return_sequences=True``.

    ``init``: "orthogonal" (default): w_xh ~ N(0, 1/n_in), w_hh a random orthogonal matrix, b = 0.
    Or one of the feedforward schemes ("default", "large", "he", "glorot") for both matrices,
    with fan-in n_in for w_xh and n_hidden for w_hh. When this layer's ``init`` is None, a
    network-wide ``init`` other than the book's "default" applies; "default" does not, because its
    N(0, 1) biases suit sigmoid layers, not a tanh state fed back T times.

    ``forward(x, h0=...)`` starts from a given state instead of zeros (the character model
    carries the state between consecutive chunks of text); afterwards ``h_last`` holds h_T.
    """

    kind = "rnn"

    def __init__(self, n_hidden: int, *, input_shape: tuple[int, int] | None = None,
                 return_sequences: bool = False, init: str | None = None):
        super().__init__()
        if input_shape is not None:
            input_shape = self._check_shape(input_shape)
        if init is not None and init not in RNN_INITS:
            raise ValueError(f"unknown RNN init {init!r}; choose one of: {', '.join(RNN_INITS)}")
        self.n_hidden = positive_int("RNN n_hidden", n_hidden)
        self.input_shape = input_shape
        self.return_sequences = bool(return_sequences)
        self.init = init
        self.h_last = None

    @staticmethod
    def _check_shape(shape) -> tuple[int, int]:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ShapeError(
                f"an RNN reads inputs of per-sample shape (T, n_in) = (time steps, features per step), "
                f"got {shape}; for 28x28 images read row by row use input_shape=(28, 28)"
            )
        return shape

    # ----- construction -------------------------------------------------------------------
    def build(self, input_shape, rng, dtype, init):
        shape = self._check_shape(input_shape)
        if self.input_shape is not None and int(np.prod(self.input_shape)) != int(np.prod(shape)):
            raise ShapeError(f"RNN declared input_shape={self.input_shape} but receives per-sample shape {shape}")
        self.input_shape = self.input_shape or shape
        self.T, self.n_in = self.input_shape
        H = self.n_hidden
        scheme = self.init or ("orthogonal" if init in (None, "default") else init)
        if scheme == "orthogonal":
            w_xh = new_param((self.n_in, H), dtype, lambda: rng.standard_normal((self.n_in, H)) / np.sqrt(self.n_in))
            w_hh = new_param((H, H), dtype, lambda: orthogonal(H, rng, dtype))
            b = new_param((H,), dtype, lambda: np.zeros(H))
        else:
            w_xh, b = init_params(scheme, (self.n_in, H), (H,), self.n_in, H, rng, dtype)
            w_hh, _ = init_params(scheme, (H, H), (H,), H, H, rng, dtype)
        self.w_xh = Param("w_xh", w_xh, regularize=True)
        self.w_hh = Param("w_hh", w_hh, regularize=True)
        self.b = Param("b", b)
        self.params = [self.w_xh, self.w_hh, self.b]
        self.output_shape = (self.T, H) if self.return_sequences else (H,)
        return self.output_shape

    def config(self) -> dict:
        return {"n_hidden": self.n_hidden,
                "input_shape": list(self.input_shape) if self.input_shape is not None else None,
                "return_sequences": self.return_sequences, "init": self.init}

    def macs_per_sample(self) -> int:
        return self.T * (self.n_in * self.n_hidden + self.n_hidden * self.n_hidden)

    # ----- forward: unroll over time ----------------------------------------------------------
    def _as_steps(self, a_in):
        """(m, T, n_in) as it is (any T), or rows (m, T·n_in) read as the built T steps."""
        if a_in.ndim == 3 and a_in.shape[2] == self.n_in:
            return a_in
        if a_in.ndim >= 2 and int(np.prod(a_in.shape[1:])) == self.T * self.n_in:
            return a_in.reshape(a_in.shape[0], self.T, self.n_in)
        raise ShapeError(
            f"{self!r} expects inputs of shape (m, T, {self.n_in}) or (m, {self.T * self.n_in}), "
            f"got an array of shape {tuple(a_in.shape)}"
        )

    def forward(self, a_in, *, train: bool = False, h0=None):
        xp = array_module(a_in)
        self.in_shape = a_in.shape
        x = self._as_steps(a_in)
        m, T, _ = x.shape
        H = self.n_hidden
        # Time-major (T, m, ·) so that each step's slice is contiguous for the matrix product.
        x_t = xp.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * m, self.n_in)  # (T·m, n_in)
        # The input half of every z_t in one product: x_t·w_xh + b for all t at once.
        zx = (x_t @ self.w_xh.value).reshape(T, m, H)                         # (T, m, H)
        zx += self.b.value
        # hs[0] = h_0, hs[t] = h_t: the unrolled graph's states, kept for backward.
        hs = xp.empty((T + 1, m, H), dtype=zx.dtype)                          # (T+1, m, H)
        hs[0] = 0 if h0 is None else h0
        w_hh = self.w_hh.value
        for t in range(T):                                                    # the recurrence
            z = zx[t]
            z += hs[t] @ w_hh                                                 # z_t, (m, H)
            xp.tanh(z, out=hs[t + 1])                                         # h_t = tanh(z_t)
        self.h_last = hs[T]
        if train:
            self.x_t, self.hs = x_t, hs
        if self.return_sequences:
            return hs[1:].transpose(1, 0, 2)                                  # (m, T, H)
        return hs[T]                                                          # (m, H)

    # ----- backward: backpropagation through time ---------------------------------------------
    def backward(self, grad_a):
        """BPTT over the unrolled graph.

        ∂C/∂h_t has two sources: the layer above at step t (``grad_a``; only at t = T when
        many-to-one) and step t+1 through the recurrence. With δ_t = ∂C/∂z_t:

            δ_t = (∂C/∂h_t|above + δ_{t+1}·w_hhᵀ) ⊙ (1 - h_t²)      # BP2 through time, δ_{T+1} = 0
            ∂C/∂w_xh = Σ_t x_tᵀ·δ_t,  ∂C/∂w_hh = Σ_t h_{t-1}ᵀ·δ_t,  ∂C/∂b = Σ_t δ_t   # BP3/BP4,
            ∂C/∂x_t = δ_t·w_xhᵀ,      ∂C/∂h_0 = δ_1·w_hhᵀ                         # summed over t

        The weights are shared by every step, so their gradient is the sum of the per-step
        gradients; each sum is one matrix product over all (t, sample) pairs.
        """
        xp = array_module(grad_a)
        hs, x_t = self.hs, self.x_t
        T, m, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        if self.return_sequences:
            g = grad_a.reshape(m, T, H).transpose(1, 0, 2)                    # (T, m, H)
        else:
            g = None
            grad_T = grad_a.reshape(m, H)                                     # (m, H), at t = T only
        w_hh_T = self.w_hh.value.T
        deltas = xp.empty((T, m, H), dtype=hs.dtype)                          # δ_1..δ_T at [0..T-1]
        carry = None                                                          # δ_{t+1}·w_hhᵀ
        for t in range(T - 1, -1, -1):
            if g is not None:                                                 # many-to-many
                dh = g[t].copy() if carry is None else g[t] + carry
            else:                                                             # many-to-one
                dh = grad_T.copy() if carry is None else carry                # carry is a fresh array
            h = hs[t + 1]
            dh *= 1 - h * h                                                   # ⊙ tanh'(z_t) = 1 - h_t²
            deltas[t] = dh                                                    # δ_t, (m, H)
            carry = dh @ w_hh_T
        d2 = deltas.reshape(T * m, H)
        self.w_xh.grad = x_t.T @ d2                                          # Σ_t x_tᵀ δ_t, (n_in, H)
        self.w_hh.grad = hs[:-1].reshape(T * m, H).T @ d2                     # Σ_t h_{t-1}ᵀ δ_t, (H, H)
        self.b.grad = d2.sum(axis=0)                                          # Σ_t δ_t, (H,)
        self.grad_h0 = carry                                                  # ∂C/∂h_0, (m, H)
        if not self.needs_input_grad:
            return None
        grad_x = (d2 @ self.w_xh.value.T).reshape(T, m, self.n_in)           # ∂C/∂x_t
        return grad_x.transpose(1, 0, 2).reshape(self.in_shape)


def sequential_mnist_network(n_hidden: int = 128, seed: int = 0, dtype=None):
    """Sequential MNIST: read each image as 28 rows of 28 pixels (many-to-one), classify h_28.

    ``RNN(n_hidden, input_shape=(28, 28))`` then ``Dense(n_hidden, 10, "softmax")`` with the
    log-likelihood cost. Train with Adam and gradient clipping, e.g.
    ``net.fit(training, 5, 64, optimizer=nndl.Adam(1e-3, clip_norm=1.0), evaluation_data=test)``.
    """
    from .network import Network

    return Network([RNN(n_hidden, input_shape=(28, 28)), Dense(n_hidden, 10, "softmax")],
                   cost="log-likelihood", seed=seed, dtype=dtype)
