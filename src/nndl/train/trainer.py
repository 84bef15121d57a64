"""The training loop (chapter 1's stochastic gradient descent, chapter 3's monitoring).

The trainer owns epochs, shuffling (an explicit ``numpy.random.Generator``), mini-batching and
the calls to the callbacks; the network computes gradients (backprop) and the optimiser applies
them. Each epoch: shuffle the training set, cut it into mini-batches of m rows, and for each one
run backprop and an optimiser step; then monitor, and let the callbacks act.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..backend import array_module, blas_threads, threads_for_work, to_numpy, tune_allocator
from ..errors import TrainingDivergedError
from ..nn import kernels
from ..nn.checks import non_negative_int, positive_int
from .callbacks import (
    MONITOR_KEYS,
    Callback,
    Checkpoint,
    MetricsLog,
    Monitor,
    PrintProgress,
    ProgressBar,
    now,
)
from .checkpoint import restore
from .optimizers import Optimizer


class History(Callback):
    """Per-epoch logs, as a list of dicts; ``history.evaluation_accuracy`` gives one column."""

    def __init__(self, records: list[dict] | None = None):
        self.records: list[dict] = list(records or [])

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.records.append(dict(logs))

    COLUMNS = ("epoch", "eta", "seconds", "test_accuracy", *MONITOR_KEYS)

    def __getattr__(self, key: str) -> list:
        if key not in History.COLUMNS:
            raise AttributeError(f"History has no column {key!r}; columns: {', '.join(History.COLUMNS)}")
        return [r.get(key) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def best(self, key: str = "evaluation_accuracy") -> dict | None:
        """The record with the highest ``key`` (the first one, on ties)."""
        scored = [r for r in self.records if r.get(key) is not None]
        return max(scored, key=lambda r: r[key]) if scored else None

    def state(self) -> dict:
        return {"records": self.records}

    def load_state(self, state: dict) -> None:
        self.records = list(state["records"])


class Trainer:
    """Runs epochs of mini-batch training of ``network`` with ``optimizer`` and ``callbacks``."""

    def __init__(self, network, optimizer: Optimizer, callbacks: Sequence[Callback] = (), *,
                 seed: int | None = None, augment: Callable | None = None):
        self.network = network
        self.optimizer = optimizer
        self.history = History()
        self.callbacks: list[Callback] = [self.history, *callbacks]
        for cb in self.callbacks:
            cb.set_trainer(self)
        self.rng = np.random.default_rng(seed)
        self.augment = augment
        self.epoch = 0            # the next epoch to run
        self.stop_training = False
        self.stop_reason: str | None = None
        self.train_config: dict = {}
        self.optimizer_state: tuple[dict, dict] | None = None   # from a checkpoint, loaded after bind
        self.epochs, self.steps_per_epoch = 0, 1

    def stop(self, reason: str) -> None:
        self.stop_training, self.stop_reason = True, reason

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def fit(self, training_data, epochs: int, mini_batch_size: int, threads: int | None = None) -> History:
        """Run epochs until ``epochs`` or a callback stops training. ``threads``: the cores to use
        (default: all of them for the fused conv kernels; BLAS threads chosen by the work per batch)."""
        blas = kernels.plan_threads(self.network, threads)
        if blas is None:
            blas = threads if threads is not None else threads_for_work(
                3 * mini_batch_size * self.network.macs_per_sample())
        tune_allocator()
        kernels.prepare(self.network, report=self._report)
        with blas_threads(blas):
            return self._fit(training_data, epochs, mini_batch_size)

    def _report(self, text: str) -> None:
        """A line in the progress output (where there is one): compiling kernels, say."""
        if any(isinstance(cb, (PrintProgress, ProgressBar)) for cb in self.callbacks):
            print(f"nndl: {text}", file=sys.stderr, flush=True)

    def _fit(self, training_data, epochs: int, mini_batch_size: int) -> History:
        x, y = training_data
        n = len(x)
        if n != len(y):
            raise ValueError(f"training data has {n} inputs but {len(y)} targets")
        net, m = self.network, positive_int("mini_batch_size", mini_batch_size)
        epochs = non_negative_int("epochs", epochs)
        x_all = net.prepare_input(x)
        y_all = net.encode_targets(y)
        self.epochs, self.steps_per_epoch = epochs, math.ceil(n / m)    # for schedules that plan ahead
        self.optimizer.bind(net.params, n, m)
        if self.optimizer_state is not None:        # resuming: the optimiser's state at the checkpoint
            config, arrays = self.optimizer_state
            self.optimizer.load_state_dict(arrays, config)
            self.optimizer_state = None
        batch_callbacks = [cb for cb in self.callbacks if hasattr(cb, "on_batch_end")]
        self._call("on_train_begin", {})
        while self.epoch < epochs and not self.stop_training:
            epoch = self.epoch
            self._call("on_epoch_begin", epoch)
            logs = {"epoch": epoch, "eta": self.optimizer.eta, "kernels": kernels.active()}
            start = now()
            self._run_epoch(x_all, y_all, m, batch_callbacks)
            logs["seconds"] = now() - start
            self._call_epoch_end(epoch, logs)
        self._call("on_train_end", {})
        return self.history

    def _run_epoch(self, x_all, y_all, m: int, batch_callbacks: list[Callback]) -> None:
        n = x_all.shape[0]
        perm = self.rng.permutation(n)
        if self.augment is not None:  # distort this epoch's shuffled copy of the training set
            x_all, y_all = self.network.prepare_input(self.augment(to_numpy(x_all[perm]), self.rng)), y_all[perm]
            perm = np.arange(n)
        backprop, step = self.network.backprop, self.optimizer.step
        # On a GPU the order lives there too: indexing with host indices would copy them over and
        # wait for the GPU at every mini-batch.
        perm = array_module(x_all).asarray(perm)
        for batch, k in enumerate(range(0, n, m)):
            # Gathering each mini-batch as it is needed keeps it in cache; copying the whole
            # shuffled set first costs a pass over memory (and page faults) every epoch.
            idx = perm[k:k + m]
            backprop(x_all.take(idx, axis=0), y_all.take(idx, axis=0))
            step()
            for cb in batch_callbacks:
                cb.on_batch_end(batch, {"batch_size": len(idx)})

    def _call_epoch_end(self, epoch: int, logs: dict) -> None:
        # Monitoring runs first (it fills logs), on the network as on_epoch_trained leaves it
        # (WeightAverage puts its average there); the divergence check runs before any callback
        # that saves, so a checkpoint never holds NaN weights; checkpoints run last, so they
        # hold every other callback's state after this epoch.
        self._call("on_epoch_trained", epoch)
        monitors = [cb for cb in self.callbacks if isinstance(cb, Monitor)]
        savers = [cb for cb in self.callbacks if isinstance(cb, Checkpoint)]
        others = [cb for cb in self.callbacks if cb not in monitors and cb not in savers]
        for cb in monitors:
            cb.on_epoch_end(epoch, logs)
        self._check_finite(epoch, logs)
        self.epoch = epoch + 1
        for cb in others + savers:
            cb.on_epoch_end(epoch, logs)

    def _check_finite(self, epoch: int, logs: dict) -> None:
        bad = [k for k in ("training_cost", "evaluation_cost") if k in logs and not math.isfinite(logs[k])]
        if not bad and all(bool(np.isfinite(p.value).all()) for p in self.network.params):
            return
        what = f"the {bad[0].replace('_', ' ')} became {logs[bad[0]]}" if bad else "the weights became NaN or infinite"
        self._call("on_diverged", epoch, logs)
        saved = [cb.path for cb in self.callbacks if isinstance(cb, Checkpoint) and os.path.exists(cb.path)]
        kept = f"; the last good checkpoint is {saved[0]}" if saved else ""
        raise TrainingDivergedError(
            f"training diverged at epoch {epoch}: {what}. The learning rate eta={self.optimizer.eta:g} "
            f"is probably too large: try a smaller eta{kept}"
        )


def fit(network, training_data, epochs: int, mini_batch_size: int, eta: float | None = None, *,
        optimizer: Optimizer | str | None = None, lmbda: float = 0.0, regularization: str = "l2",
        evaluation_data=None, test_data=None,
        monitor_evaluation_accuracy: bool = True, monitor_evaluation_cost: bool = False,
        monitor_training_accuracy: bool = False, monitor_training_cost: bool = False,
        callbacks: Iterable[Callback] = (), seed: int | None = None, verbose: bool = False,
        progress: bool | None = None, metrics: str | None = None, checkpoint: str | None = None,
        resume: str | None = None, augment: Callable | None = None, threads: int | None = None,
        train_config: dict | None = None, **optimizer_kwargs: Any) -> History:
    """Train ``network`` with mini-batch gradient descent; return its History.

    ``training_data`` and ``evaluation_data`` are (x, y) pairs: x (n, n_in) or (n, c, h, w),
    y labels (n,) or target rows (n, n_out). ``test_data``, if given, is measured every epoch as
    ``test_accuracy`` (never used for any decision). ``optimizer`` is an Optimizer or a name (sgd,
    momentum, nesterov, adam, rmsprop; default sgd) built with ``eta``, ``lmbda``,
    ``regularization`` and ``optimizer_kwargs`` (e.g. ``mu=0.9``). The shuffling seed defaults to
    the network's seed. ``checkpoint`` saves the state to that directory after every epoch;
    ``resume`` continues from such a directory.
    """
    if isinstance(optimizer, Optimizer):
        opt = optimizer
    else:
        if eta is None:
            raise ValueError("give a learning rate eta (or an optimizer)")
        from .optimizers import make_optimizer

        opt = make_optimizer(optimizer or "sgd", eta, lmbda=lmbda, regularization=regularization, **optimizer_kwargs)
    cbs: list[Callback] = [Monitor(training_data, evaluation_data,
                                   training_cost=monitor_training_cost, training_accuracy=monitor_training_accuracy,
                                   evaluation_cost=monitor_evaluation_cost,
                                   evaluation_accuracy=monitor_evaluation_accuracy, test_data=test_data)]
    cbs += list(callbacks)
    if metrics:
        cbs.append(MetricsLog(metrics, append=bool(resume)))
    if checkpoint:
        cbs.append(Checkpoint(checkpoint))
    if verbose:
        cbs.append(PrintProgress())
    if progress is None:
        progress = verbose and sys.stderr.isatty()
    if progress:
        cbs.append(ProgressBar(math.ceil(len(training_data[0]) / mini_batch_size)))
    trainer = Trainer(network, opt, cbs, seed=network.seed if seed is None else seed, augment=augment)
    trainer.train_config = train_config or {}
    if resume:
        restore(trainer, resume)
    return trainer.fit(training_data, epochs, mini_batch_size, threads=threads)
