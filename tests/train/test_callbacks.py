"""Schedules that plan ahead: the one-cycle and cosine learning-rate schedules (beyond the book)."""
import numpy as np
import pytest

import nndl


def test_the_one_cycle_schedule_rises_then_falls_per_mini_batch_and_resumes_where_it_was(tmp_path):
    from nndl.train import CycleSchedule

    (x, y), _, _ = nndl.data.load_mnist()
    data = (x[:100], y[:100])
    seen = []

    class Record(nndl.train.Callback):
        def on_batch_end(self, batch, logs):
            seen.append(self.trainer.optimizer.eta)

    net = nndl.Network.from_sizes([784, 10, 10], cost="cross-entropy", seed=0)
    nndl.train.fit(net, data, 4, 10, 1.0, callbacks=[CycleSchedule(warmup=0.25, div=10, final_div=1000), Record()])
    assert len(seen) == 40
    peak = int(np.argmax(seen))
    assert 9 <= peak <= 10 and seen[peak] == pytest.approx(1.0)              # the top at 25% of the steps
    assert all(a <= b for a, b in zip(seen[:peak], seen[1:peak + 1]))        # rising ...
    assert all(a >= b for a, b in zip(seen[peak:], seen[peak + 1:]))         # ... then falling
    assert seen[-1] == pytest.approx(1.0 / 1000)
    # A run stopped after 2 epochs and resumed goes on along the same curve.
    net2 = nndl.Network.from_sizes([784, 10, 10], cost="cross-entropy", seed=0)
    nndl.train.fit(net2, data, 2, 10, 1.0, callbacks=[CycleSchedule()], checkpoint=str(tmp_path))
    resumed = []

    class Again(Record):
        def on_batch_end(self, batch, logs):
            resumed.append(self.trainer.optimizer.eta)

    net3 = nndl.Network.from_sizes([784, 10, 10], cost="cross-entropy", seed=0)
    nndl.train.fit(net3, data, 4, 10, 1.0, callbacks=[CycleSchedule(), Again()], resume=str(tmp_path))
    assert resumed == pytest.approx(seen[20:])
