"""A character-level language model on the vanilla RNN (the notes' recurrent section).

Many-to-many in training, one-to-many in generation. The vocabulary is the set of characters of
a training text; each character is fed in one-hot, the RNN's state h_t is carried along the text,
and a softmax layer on every step gives p(next character | text so far):

    h_t = tanh(x_t·w_xh + h_{t-1}·w_hh + b)          # nndl.nn.recurrent.RNN, return_sequences
    p_t = softmax(h_t·w + b_out)                        # a Dense softmax layer applied at each step
    C   = (1/m) Σ_samples Σ_t -ln p_t[next char]        # a loss at each step, summed over steps

Training is truncated backpropagation through time: the text is cut into m parallel streams,
read ``seq_length`` characters at a time; the hidden state is carried from one chunk to the next
(so the model sees context beyond one chunk), but gradients stop at the chunk boundary. Adam with
gradient clipping (``clip_norm``) keeps the vanilla RNN's occasional exploding gradients in check.
``sample`` primes the state with a start string and draws one character at a time, feeding each
back in as the next input, with a temperature that sharpens (<1) or flattens (>1) the softmax.

Files: ``save``/``load`` use the project's safe format (``nndl.models.io``): arrays in a .npz,
vocabulary and sizes as JSON, read with ``allow_pickle=False``, written atomically.

Limits: a vanilla tanh cell remembers a few dozen characters at best (no LSTM gates); the loop
over time steps is Python, so CPU training of a 128-unit model runs at tens of thousands of
characters per second, not millions. The character model runs on the CPU (NumPy) only.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from . import backend
from .errors import DataFormatError, ModelFileError, TrainingDivergedError
from .nn.costs import get_cost
from .nn.layers import Dense, Param
from .nn.recurrent import RNN
from .train.optimizers import Adam, Optimizer

KIND = "charrnn"


def read_text(path: str) -> str:
    """A UTF-8 text file as a string, refusing what cannot be trained on."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no text file at {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path} is not UTF-8 text ({exc}); convert it to UTF-8 first") from None
    if len(set(text)) < 2:
        raise DataFormatError(f"{path} holds {len(text)} characters with {len(set(text))} distinct ones; "
                              f"a language model needs a text with at least 2 different characters")
    return text


class CharRNN:
    """Character-level RNN language model: ``CharRNN.from_text(text, n_hidden=128)``, then
    ``fit(text, epochs=...)``, ``sample(500, start="The ")``, ``save(path)``, ``CharRNN.load(path)``."""

    def __init__(self, vocab: Sequence[str], n_hidden: int = 128, *, seq_length: int = 50,
                 seed: int | None = 0, dtype: Any = None):
        vocab = list(vocab)
        bad = [c for c in vocab if not (isinstance(c, str) and len(c) == 1)]
        if bad:
            raise ValueError(f"the vocabulary must be single characters, got {bad[:5]!r}")
        if len(set(vocab)) != len(vocab) or len(vocab) < 2:
            raise ValueError(f"the vocabulary must hold at least 2 distinct characters, no repeats; got {len(vocab)} "
                             f"entries with {len(set(vocab))} distinct")
        if not isinstance(seq_length, (int, np.integer)) or seq_length < 1:
            raise ValueError(f"seq_length must be a positive integer, got {seq_length!r}")
        self.vocab = vocab
        self.index = {c: i for i, c in enumerate(vocab)}
        self.n_hidden = int(n_hidden)
        self.seq_length = int(seq_length)
        self.dtype = np.dtype(dtype) if dtype is not None else backend.get_dtype()
        self.rng = np.random.default_rng(seed)
        V = len(vocab)
        self.rnn = RNN(self.n_hidden, input_shape=(self.seq_length, V), return_sequences=True)
        self.rnn.build((self.seq_length, V), self.rng, self.dtype, "orthogonal")
        self.rnn.needs_input_grad = False                       # its input is data: no ∂C/∂x needed
        # Glorot weights and zero biases: the first predictions are near uniform, C ≈ T·ln V.
        self.out = Dense(self.n_hidden, V, "softmax", init="glorot")
        self.out.build((self.n_hidden,), self.rng, self.dtype, "glorot")
        self.cost = get_cost("log-likelihood")
        self.history: list[dict] = []

    @classmethod
    def from_text(cls, text: str, n_hidden: int = 128, **kwargs: Any) -> "CharRNN":
        """A model whose vocabulary is the sorted set of characters in ``text``."""
        return cls(sorted(set(text)), n_hidden, **kwargs)

    @property
    def params(self) -> list[Param]:
        return self.rnn.params + self.out.params

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"CharRNN(vocab_size={self.vocab_size}, n_hidden={self.n_hidden}, seq_length={self.seq_length})"

    # ----- text <-> indices -----------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """Character indices (n,) of ``text``; characters outside the vocabulary are refused."""
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError:
            unknown = sorted(set(text) - set(self.index))
            raise ValueError(f"characters {''.join(unknown)[:40]!r} are not in the model's vocabulary of "
                             f"{self.vocab_size} characters; use text made of the training text's characters") from None

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def one_hot(self, ids: np.ndarray):
        """Indices (m, T) → one-hot rows (m, T, V) in the model's dtype."""
        return np.eye(self.vocab_size, dtype=self.dtype)[ids]

    # ----- loss and its gradient ------------------------------------------------------------------
    def _forward(self, inputs: np.ndarray, h0, train: bool):
        """p (m·T, V) for index arrays (m, T), starting from state h0 (m, H) or zeros."""
        m, T = inputs.shape
        hs = self.rnn.forward(self.one_hot(inputs), train=train, h0=h0)     # (m, T, H)
        return self.out.forward(hs.reshape(m * T, self.n_hidden), train=train)  # (m·T, V)

    def loss(self, inputs: np.ndarray, targets: np.ndarray, h0=None) -> float:
        """C = (1/m) Σ Σ_t -ln p_t[target_t] for index arrays (m, T); no gradients."""
        inputs, targets = np.atleast_2d(inputs), np.atleast_2d(targets)
        p = self._forward(inputs, h0, train=False)
        return self.cost.fn(p, self.one_hot(targets.reshape(-1))) / inputs.shape[0]

    def loss_and_grad(self, inputs: np.ndarray, targets: np.ndarray, h0=None) -> float:
        """C as in ``loss``, and every ``Param.grad`` filled with ∂C/∂param by BPTT over the chunk.

        ``h0`` is the state carried from the previous chunk, taken as a constant (truncated BPTT).
        After the call ``self.rnn.h_last`` is the state to carry into the next chunk.
        """
        inputs, targets = np.atleast_2d(inputs), np.atleast_2d(targets)
        m, T = inputs.shape
        p = self._forward(inputs, h0, train=True)                            # (m·T, V)
        y = self.one_hot(targets.reshape(-1))                                # (m·T, V)
        delta = self.cost.delta(self.out.z, p, y, self.out.activation)       # BP1 at every step: p - y
        delta *= 1.0 / m                                                     # mean over the batch
        grad_h = self.out.backward_delta(delta)                              # (m·T, H): ∂C/∂h_t per step
        self.rnn.backward(grad_h.reshape(m, T, self.n_hidden))              # BPTT through the unrolled chunk
        return self.cost.fn(p, y) / m

    # ----- training -------------------------------------------------------------------------------
    @staticmethod
    def _streams(ids: np.ndarray, batch_size: int, seq_length: int) -> tuple[np.ndarray, np.ndarray]:
        """Cut the text into m contiguous streams: inputs (m, L) and targets (m, L), shifted by one."""
        n = len(ids) - 1                                                     # (input, next char) pairs
        m = max(1, min(batch_size, n // seq_length))                        # each stream ≥ one chunk
        L = n // m
        if L < 1:
            raise ValueError(f"the text has {len(ids)} characters; a language model needs at least 2")
        x = ids[:m * L].reshape(m, L)
        y = ids[1:m * L + 1].reshape(m, L)
        return x, y

    def fit(self, text: str, *, epochs: int = 1, batch_size: int = 32, eta: float = 0.002,
            clip_norm: float | None = 5.0, optimizer: Optimizer | None = None,
            validation_text: str | None = None, callback: Callable[[dict], None] | None = None,
            log_every: int = 10) -> list[dict]:
        """Train by truncated BPTT with Adam (η = ``eta``) and gradient clipping; return the epoch records.

        Each epoch reads the whole text once, as ``batch_size`` parallel streams in chunks of
        ``seq_length`` characters, starting every stream from h = 0 and carrying the state
        across its chunks. ``callback`` receives a record every ``log_every`` iterations
        (``{"type": "iteration", "epoch", "iteration", "loss", "loss_per_char", "smooth_loss_per_char"}``)
        and at each epoch's end (``{"type": "epoch", "epoch", "loss_per_char", "seconds", ...}``,
        with ``validation_loss_per_char`` when ``validation_text`` is given). Loss per character
        is in nats; ln V is the loss of a uniform guess.
        """
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        x, y = self._streams(self.encode(text), batch_size, self.seq_length)
        m, L = x.shape
        opt = optimizer or Adam(eta, clip_norm=clip_norm)
        opt.bind(self.params, n_train=m * L, mini_batch_size=m)
        T = self.seq_length
        smooth = None
        iteration = sum(r.get("iterations", 0) for r in self.history)
        records = []
        start_epoch = len(self.history)
        with backend.blas_threads(1):   # small per-step products: one BLAS thread is fastest
            for epoch in range(start_epoch, start_epoch + epochs):
                start = time.perf_counter()
                h = None                                                     # h_0 = 0 at each epoch
                total, count = 0.0, 0
                for k in range(0, L, T):
                    xb, yb = x[:, k:k + T], y[:, k:k + T]
                    loss = self.loss_and_grad(xb, yb, h)
                    opt.step()
                    h = self.rnn.h_last.copy()                               # carried, not backpropagated
                    per_char = loss / xb.shape[1]
                    if not math.isfinite(per_char):
                        clip = (f"a smaller clip_norm (now {opt.clip_norm:g})" if opt.clip_norm
                                else "gradient clipping (clip_norm=5)")
                        raise TrainingDivergedError(
                            f"training diverged at epoch {epoch}, iteration {iteration + 1}: the loss per character "
                            f"became {per_char}. The learning rate eta={opt.eta:g} is probably too large: try a "
                            f"smaller eta, or {clip}")
                    total, count = total + loss * m, count + xb.size
                    smooth = per_char if smooth is None else 0.95 * smooth + 0.05 * per_char
                    iteration += 1
                    if callback and iteration % log_every == 0:
                        callback({"type": "iteration", "epoch": epoch, "iteration": iteration, "loss": loss,
                                  "loss_per_char": per_char, "smooth_loss_per_char": smooth})
                record = {"type": "epoch", "epoch": epoch, "iterations": math.ceil(L / T), "characters": count,
                          "loss_per_char": total / count, "seconds": time.perf_counter() - start}
                if validation_text:
                    record["validation_loss_per_char"] = self.evaluate(validation_text, batch_size)
                self.history.append(record)
                records.append(record)
                if callback:
                    callback(record)
        return records

    def evaluate(self, text: str, batch_size: int = 32) -> float:
        """Mean loss per character (nats) on ``text``, read like training data (state carried)."""
        x, y = self._streams(self.encode(text), batch_size, self.seq_length)
        h, total = None, 0.0
        for k in range(0, x.shape[1], self.seq_length):
            total += self.loss(x[:, k:k + self.seq_length], y[:, k:k + self.seq_length], h) * x.shape[0]
            h = self.rnn.h_last
        return total / x.size

    # ----- generation (one-to-many) ---------------------------------------------------------------
    def sample(self, n_chars: int, start: str | None = None, temperature: float = 1.0,
               seed: int | None = None) -> str:
        """``start`` followed by ``n_chars`` generated characters.

        The state is primed by reading ``start`` (default: one vocabulary character drawn at
        random), then each step's softmax, sharpened by ``temperature`` (p_i ∝ p_i^{1/τ}, i.e.
        softmax(z/τ)), gives the next character, which is fed back in as the next input.
        """
        if not isinstance(n_chars, (int, np.integer)) or n_chars < 0:
            raise ValueError(f"n_chars must be a non-negative integer, got {n_chars!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive number (e.g. 0.5 to 1.5), got {temperature!r}")
        rng = np.random.default_rng(seed)
        if not start:
            start = self.vocab[int(rng.integers(self.vocab_size))]
        ids = self.encode(start)
        h = None
        if len(ids) > 1:                                                     # prime on all but the last
            self.rnn.forward(self.one_hot(ids[None, :-1]), h0=h)
            h = self.rnn.h_last
        x = int(ids[-1])
        out = []
        for _ in range(n_chars):
            p = self._forward(np.array([[x]]), h, train=False)[0]            # (V,)
            h = self.rnn.h_last
            logp = np.log(np.maximum(backend.to_numpy(p).astype(np.float64), 1e-300)) / temperature
            q = np.exp(logp - logp.max())
            cdf = np.cumsum(q)
            x = int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), self.vocab_size - 1))
            out.append(x)
        return start + self.decode(out)

    # ----- files ----------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"vocab": self.vocab, "n_hidden": self.n_hidden, "seq_length": self.seq_length,
                "dtype": str(self.dtype)}

    def _arrays(self) -> dict[str, Param]:
        return {f"rnn/{p.name}": p for p in self.rnn.params} | {f"out/{p.name}": p for p in self.out.params}

    def save(self, path: str, **metadata: Any) -> None:
        """Write the model atomically: arrays in a .npz, vocabulary and sizes as JSON (no pickle)."""
        from .models.io import FORMAT, VERSION, write_archive

        meta = {"format": FORMAT, "version": VERSION, "kind": KIND, KIND: self.config(),
                "metadata": {"history": self.history, **metadata}}
        write_archive(path, meta, {k: backend.to_numpy(p.value) for k, p in self._arrays().items()})

    @classmethod
    def load(cls, path: str) -> "CharRNN":
        """Read a model written by ``save``; damaged or foreign files raise ModelFileError."""
        from .models.io import open_archive, read_param

        path = os.fspath(path)
        zf, meta = open_archive(path)
        with zf:
            if meta.get("kind") != KIND:
                raise ModelFileError(f"{path} is an nndl {meta.get('kind', 'model')!r} file, not a character RNN; "
                                     f"load networks with nndl.load")
            cfg = meta.get(KIND)
            try:
                model = cls(cfg["vocab"], cfg["n_hidden"], seq_length=cfg["seq_length"], dtype=cfg["dtype"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelFileError(f"{path}: the character-RNN record is invalid "
                                     f"({type(exc).__name__}: {exc})") from None
            for key, p in model._arrays().items():
                p.value = read_param(zf, key, p.shape, model.dtype, path).astype(model.dtype)
        history = (meta.get("metadata") or {}).get("history")
        model.history = list(history) if isinstance(history, list) else []
        model.metadata = meta.get("metadata", {})
        return model
