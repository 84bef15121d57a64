"""Training control as callbacks (chapter 3): monitoring, early stopping, learning-rate
schedules, progress, metrics files and checkpoints.

A callback sees ``on_epoch_end(epoch, logs)`` where ``logs`` uses the book's monitoring names —
``training_cost``, ``training_accuracy``, ``evaluation_cost``, ``evaluation_accuracy`` — plus
``epoch``, ``eta`` and ``seconds`` (the epoch's training time, without evaluation). The keys are
the same as the ``--metrics`` JSON lines. A value that is not monitored is absent.
Callbacks never reach into one another; they act on the trainer (``trainer.stop_training``,
``trainer.optimizer.eta``, ``trainer.network``).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

from ..files import atomic_write_bytes
from .checkpoint import FILENAME, save_checkpoint

MONITOR_KEYS = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy")


class Callback:
    trainer: Any = None

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: dict) -> None: ...
    def on_epoch_begin(self, epoch: int) -> None: ...
    def on_epoch_trained(self, epoch: int) -> None: ...          # the epoch's steps done, before monitoring
    def on_epoch_end(self, epoch: int, logs: dict) -> None: ...
    def on_train_end(self, logs: dict) -> None: ...
    def on_diverged(self, epoch: int, logs: dict) -> None: ...   # then the trainer raises TrainingDivergedError
    # on_batch_end(self, batch, logs) is looked up only where a callback defines it (it costs time).

    def state(self) -> dict:
        """JSON-safe state saved in checkpoints, so a resumed run behaves identically."""
        return {}

    def load_state(self, state: dict) -> None: ...

    def arrays(self) -> dict:
        """Arrays saved in checkpoints beside ``state()`` (kept weights, say): name -> ndarray."""
        return {}

    def load_arrays(self, arrays: dict) -> None: ...


class Monitor(Callback):
    """Measure the book's four monitored quantities at each epoch's end (each one switchable,
    because each costs a pass over its data). Costs include the regularisation term, as in the book."""

    def __init__(self, training_data=None, evaluation_data=None, *, training_cost: bool = False,
                 training_accuracy: bool = False, evaluation_cost: bool = False, evaluation_accuracy: bool = True,
                 test_data=None):
        self.training_data, self.evaluation_data, self.test_data = training_data, evaluation_data, test_data
        self.flags = {"training_cost": training_cost and training_data is not None,
                      "training_accuracy": training_accuracy and training_data is not None,
                      "evaluation_cost": evaluation_cost and evaluation_data is not None,
                      "evaluation_accuracy": evaluation_accuracy and evaluation_data is not None}

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        net, opt = self.trainer.network, self.trainer.optimizer
        for which, data in (("training", self.training_data), ("evaluation", self.evaluation_data)):
            if self.flags[f"{which}_cost"]:
                logs[f"{which}_cost"] = net.total_cost(data) + opt.regularization_cost()
            if self.flags[f"{which}_accuracy"]:
                logs[f"{which}_accuracy"] = net.accuracy(data)
                logs[f"{which}_correct"] = int(round(logs[f"{which}_accuracy"] * len(data[1])))
                logs[f"{which}_size"] = len(data[1])
        if self.test_data is not None:  # chapter 6 reports test accuracy at the best validation epoch
            logs["test_accuracy"] = net.accuracy(self.test_data)


class BatchMonitor(Callback):
    """The book's hyper-parameter heuristic: measure accuracy on a small validation subset every
    ``every`` training images (e.g. 100 validation images every 1,000 training images), so a bad
    setting shows within seconds. Results go to ``self.records`` as (images_seen, accuracy)."""

    def __init__(self, data, *, every: int = 1000, size: int = 100, verbose: bool = True):
        self.data = (data[0][:size], data[1][:size])
        self.every, self.verbose = int(every), verbose
        self.records: list[tuple[int, float]] = []
        self._seen = 0

    def on_batch_end(self, batch: int, logs: dict) -> None:
        before = self._seen
        self._seen += logs["batch_size"]
        if self._seen // self.every > before // self.every:
            acc = self.trainer.network.accuracy(self.data)
            self.records.append((self._seen, acc))
            if self.verbose:
                print(f"  after {self._seen} images: {acc:.2%} on {len(self.data[1])} validation images")


def _improved(value: float, best: float | None, min_delta: float) -> bool:
    return best is None or value > best + min_delta


class BestWeights(Callback):
    """Keep the weights of the epoch with the best ``monitor`` (default validation accuracy) and
    end training with them: the network then is the one chapter 6 reports, the test accuracy at
    the best validation epoch. The kept weights travel in checkpoints, so a resumed run ends the same.
    ``keeps_weights=False`` tracks the best epoch without copying its weights."""

    def __init__(self, monitor: str = "evaluation_accuracy", min_delta: float = 0.0, keeps_weights: bool = True):
        self.monitor, self.min_delta, self.keeps_weights = monitor, float(min_delta), keeps_weights
        self.best: float | None = None
        self.best_epoch = -1
        self.wait = 0             # epochs since the best one
        self.best_weights: list | None = None

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise ValueError(f"{type(self).__name__} watches {self.monitor!r}, which is not monitored; "
                             f"pass evaluation data (and enable that monitor)")
        value = logs[self.monitor]
        value = -value if self.monitor.endswith("cost") else value
        if _improved(value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.keeps_weights:
                self.best_weights = self.trainer.network.get_weights()
        else:
            self.wait += 1

    def on_train_end(self, logs: dict) -> None:
        if self.best_weights is not None:
            self.trainer.network.set_weights(self.best_weights)

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]

    def arrays(self) -> dict:
        return {f"w{i}": w for i, w in enumerate(self.best_weights or [])}

    def load_arrays(self, arrays: dict) -> None:
        self.best_weights = [arrays[f"w{i}"] for i in range(len(arrays))] or None


class EarlyStopping(BestWeights):
    """Stop when ``monitor`` (default validation accuracy) has not improved for ``patience``
    epochs — the book's no-improvement-in-n rule — and restore the best weights seen."""

    def __init__(self, patience: int = 10, monitor: str = "evaluation_accuracy", min_delta: float = 0.0,
                 restore_best_weights: bool = True):
        if patience < 1:
            raise ValueError(f"patience must be >= 1 epoch, got {patience}")
        super().__init__(monitor, min_delta, keeps_weights=restore_best_weights)
        self.patience = int(patience)
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        super().on_epoch_end(epoch, logs)
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop("early stopping: no improvement in "
                              f"{self.monitor} for {self.patience} epochs (best at epoch {self.best_epoch})")

    def on_train_end(self, logs: dict) -> None:
        if self.stopped_epoch is not None:      # best_weights is None unless they are kept
            super().on_train_end(logs)


class PlateauSchedule(Callback):
    """Chapter 3's learning-rate schedule: hold η until ``monitor`` has not improved for
    ``patience`` epochs, then multiply it by ``factor`` (halve it); stop training once η has fallen
    to ``floor`` times its starting value (the book: 1/128; the notes: 1/1,024)."""

    def __init__(self, patience: int = 10, factor: float = 0.5, floor: float = 1 / 128,
                 monitor: str = "evaluation_accuracy"):
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.patience, self.factor, self.floor, self.monitor = int(patience), float(factor), float(floor), monitor
        self.best: float | None = None
        self.wait = 0
        self.eta0: float | None = None

    def on_train_begin(self, logs: dict) -> None:
        if self.eta0 is None:
            self.eta0 = self.trainer.optimizer.eta

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise ValueError(f"the schedule watches {self.monitor!r}, which is not monitored")
        value = logs[self.monitor]
        value = -value if self.monitor.endswith("cost") else value
        if _improved(value, self.best, 0.0):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = self.trainer.optimizer
            opt.eta *= self.factor
            self.wait = 0
            if opt.eta <= self.eta0 * self.floor * (1 + 1e-9):
                self.trainer.stop(f"learning-rate schedule: eta fell to {opt.eta:g} "
                                  f"(= {self.floor:g} of its start {self.eta0:g})")

    def state(self) -> dict:
        return {"best": self.best, "wait": self.wait, "eta0": self.eta0}

    def load_state(self, state: dict) -> None:
        self.best, self.wait, self.eta0 = state["best"], state["wait"], state["eta0"]


class CycleSchedule(Callback):
    """Beyond the book: η changed after every mini-batch. It rises linearly from η/``div`` to η over
    the first ``warmup`` share of all steps, then falls along a half cosine to η/``final_div``.
    With warmup 0 this is the cosine schedule (Loshchilov & Hutter 2017); with warmup ~0.25 it is
    the one-cycle schedule (Smith & Topin 2018), which reaches a given accuracy in fewer epochs."""

    def __init__(self, warmup: float = 0.25, div: float = 10.0, final_div: float = 1000.0):
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {warmup}")
        self.warmup, self.div, self.final_div = float(warmup), float(div), float(final_div)
        self.eta_max: float | None = None
        self.step, self.total = 0, 1

    def on_train_begin(self, logs: dict) -> None:
        self.eta_max = self.eta_max or self.trainer.optimizer.eta
        self.total = max(1, self.trainer.epochs * self.trainer.steps_per_epoch)

    def on_epoch_begin(self, epoch: int) -> None:
        self.step = epoch * self.trainer.steps_per_epoch       # also right after a resume
        self._set()

    def on_batch_end(self, batch: int, logs: dict) -> None:
        self.step += 1
        self._set()

    def _set(self) -> None:
        t, up = min(self.step, self.total) / self.total, self.warmup
        low, high, end = self.eta_max / self.div, self.eta_max, self.eta_max / self.final_div
        if t < up:
            eta = low + (high - low) * t / up
        else:
            eta = end + 0.5 * (high - end) * (1 + math.cos(math.pi * (t - up) / (1 - up)))
        self.trainer.optimizer.eta = eta

    def state(self) -> dict:
        return {"eta_max": self.eta_max}

    def load_state(self, state: dict) -> None:
        self.eta_max = state["eta_max"]


class StepSchedule(Callback):
    """η → η·factor every ``step`` epochs."""

    def __init__(self, step: int, factor: float = 0.5):
        self.step, self.factor = int(step), float(factor)
        self.eta0: float | None = None

    def on_train_begin(self, logs: dict) -> None:
        self.eta0 = self.eta0 or self.trainer.optimizer.eta

    def on_epoch_begin(self, epoch: int) -> None:
        self.trainer.optimizer.eta = self.eta0 * self.factor ** (epoch // self.step)

    def state(self) -> dict:
        return {"eta0": self.eta0}

    def load_state(self, state: dict) -> None:
        self.eta0 = state["eta0"]


class ExponentialSchedule(Callback):
    """η_epoch = η₀·decay^epoch."""

    def __init__(self, decay: float):
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.decay = float(decay)
        self.eta0: float | None = None

    def on_train_begin(self, logs: dict) -> None:
        self.eta0 = self.eta0 or self.trainer.optimizer.eta

    def on_epoch_begin(self, epoch: int) -> None:
        self.trainer.optimizer.eta = self.eta0 * self.decay ** epoch

    def state(self) -> dict:
        return {"eta0": self.eta0}

    def load_state(self, state: dict) -> None:
        self.eta0 = state["eta0"]


class PrintProgress(Callback):
    """The book's per-epoch line, ``Epoch 3: 9412 / 10000``, then the other monitored values."""

    def __init__(self, stream=None):
        self.stream = stream

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if "evaluation_accuracy" in logs:
            head = f"Epoch {epoch}: {logs['evaluation_correct']} / {logs['evaluation_size']}"
        else:
            head = f"Epoch {epoch} complete"
        extra = [f"{k.replace('_', ' ')} {logs[k]:.4f}"
                 for k in ("training_cost", "evaluation_cost", "training_accuracy") if k in logs]
        extra.append(f"{logs['seconds']:.2f} s")
        print(f"{head}  ({', '.join(extra)})", file=self.stream or sys.stdout, flush=True)


class MetricsLog(Callback):
    """Append one JSON object per epoch to ``path`` (the ``--metrics`` file)."""

    KEYS = ("epoch", "eta", *MONITOR_KEYS, "test_accuracy", "seconds", "kernels")

    def __init__(self, path: str, append: bool = False):
        self.path = os.fspath(path)
        self.append = append

    def on_train_begin(self, logs: dict) -> None:
        if not self.append:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            open(self.path, "w").close()
        elif os.path.exists(self.path):
            self._drop_epochs_from(self.trainer.epoch)

    def _drop_epochs_from(self, next_epoch: int) -> None:
        """On a resume, forget lines of epochs the run is about to train again: a run that died
        after writing an epoch's line but before its checkpoint would otherwise log it twice."""
        with open(self.path) as f:
            lines = f.readlines()

        def kept(line: str) -> bool:
            try:
                return int(json.loads(line)["epoch"]) < next_epoch
            except (ValueError, KeyError, TypeError):
                return False           # a torn last line from the crash

        keep = [line for line in lines if kept(line)]
        if keep != lines:
            atomic_write_bytes(self.path, "".join(keep).encode())

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self._write(logs)

    def on_diverged(self, epoch: int, logs: dict) -> None:
        """The epoch training diverged in, marked so (the trainer then stops with an error)."""
        self._write(logs, diverged=True)

    def _write(self, logs: dict, **marks: Any) -> None:
        record = {**{k: logs.get(k) for k in self.KEYS}, **marks}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


class Checkpoint(Callback):
    """Save the whole training state after every epoch to ``directory/checkpoint.npz``
    (atomically: a crash mid-write leaves the previous checkpoint intact)."""

    FILENAME = FILENAME

    def __init__(self, directory: str, every: int = 1):
        self.directory = os.fspath(directory)
        self.every = int(every)

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.FILENAME)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if (epoch + 1) % self.every == 0 or self.trainer.stop_training:
            save_checkpoint(self.trainer, self.path, epoch=epoch)


class ProgressBar(Callback):
    """A tqdm bar over an epoch's mini-batches, on interactive terminals only."""

    def __init__(self, n_batches: int):
        self.n_batches = n_batches
        self.bar = None

    def on_epoch_begin(self, epoch: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.n_batches, desc=f"epoch {epoch}", leave=False, mininterval=0.25, unit="batch")

    def on_batch_end(self, batch: int, logs: dict) -> None:
        self.bar.update(1)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.bar is not None:
            self.bar.close()


def now() -> float:
    return time.perf_counter()
