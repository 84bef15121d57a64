"""Beyond the book: averaging the weights a run steps through (Polyak averaging), as a callback."""
from __future__ import annotations

from ..backend import array_module, to_numpy
from .callbacks import Callback


class WeightAverage(Callback):
    """Beyond the book: Polyak averaging (Polyak & Juditsky 1992). After every mini-batch the
    average moves toward the weights, w̄ ← d·w̄ + (1 − d)·w, with d = min(``decay``, (1 + t)/(10 + t))
    at step t so that the first steps are not drowned by the initial weights. Each epoch is
    monitored with w̄, and training ends with it (or with the best epoch's w̄, under BestWeights),
    while the steps themselves go on from w. ``decay`` 0.999 averages over about the last 1,000
    mini-batches: the noise of the last steps is smoothed away.

    The network holds w̄ from an epoch's end to the next epoch's start, so checkpoints save it as
    the network; w travels in the checkpoint's arrays and is put back when training goes on."""

    def __init__(self, decay: float = 0.999):
        if not 0 < decay < 1:
            raise ValueError(f"the weight-average decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.steps = 0
        self.average: list | None = None      # w̄, on the network's device
        self.raw: list | None = None          # w while the network holds w̄

    def on_train_begin(self, logs: dict) -> None:
        if self.average is None:
            self.average = [p.value.copy() for p in self.trainer.network.params]

    def on_epoch_begin(self, epoch: int) -> None:
        if self.raw is not None:               # the steps go on from w
            for p, w in zip(self.trainer.network.params, self.raw):
                p.value[...] = w
            self.raw = None

    def on_batch_end(self, batch: int, logs: dict) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for average, p in zip(self.average, self.trainer.network.params):
            average *= d
            average += (1 - d) * p.value

    def on_epoch_trained(self, epoch: int) -> None:
        params = self.trainer.network.params
        self.raw = [p.value.copy() for p in params]
        for p, average in zip(params, self.average):
            p.value[...] = average

    def state(self) -> dict:
        return {"decay": self.decay, "steps": self.steps}

    def load_state(self, state: dict) -> None:
        self.steps = int(state["steps"])

    def arrays(self) -> dict:
        held = {f"average{i}": to_numpy(a) for i, a in enumerate(self.average or [])}
        return {**held, **{f"raw{i}": to_numpy(w) for i, w in enumerate(self.raw or [])}}

    def load_arrays(self, arrays: dict) -> None:
        xp = array_module(self.trainer.network.params[0].value)
        n = sum(k.startswith("average") for k in arrays)
        self.average = [xp.asarray(arrays[f"average{i}"]) for i in range(n)] or None
        self.raw = [xp.asarray(arrays[f"raw{i}"]) for i in range(n) if f"raw{i}" in arrays] or None
