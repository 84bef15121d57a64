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


# ----- WeightAverage: Polyak averaging of the weights (beyond the book) ---------------------------
def _weights_after_each_step(data, epochs, callbacks=()):
    """Train [784, 10, 10] and record w after every mini-batch, before any averaging is seen."""
    steps = []

    class Record(nndl.train.Callback):
        def on_batch_end(self, batch, logs):
            steps.append(self.trainer.network.get_weights())

    net = nndl.Network.from_sizes([784, 10, 10], cost="cross-entropy", seed=0, dtype="float64")
    history = nndl.train.fit(net, data, epochs, 10, 0.5, evaluation_data=data, callbacks=[Record(), *callbacks])
    return net, history, steps


def test_weight_average_is_the_moving_average_of_the_steps_and_the_network_ends_with_it():
    from nndl.train import WeightAverage

    (x, y), _, _ = nndl.data.load_mnist()
    data = (x[:100], y[:100])
    _, _, raw_steps = _weights_after_each_step(data, 2)
    net, history, steps = _weights_after_each_step(data, 2, [WeightAverage(0.9)])
    for a, b in zip(raw_steps, steps):                      # averaging never changes the steps themselves
        for wa, wb in zip(a, b):
            np.testing.assert_array_equal(wa, wb)
    average = nndl.Network.from_sizes([784, 10, 10], cost="cross-entropy", seed=0, dtype="float64").get_weights()
    for t, w in enumerate(steps, start=1):                  # w̄ ← d·w̄ + (1 − d)·w, d warming up to 0.9
        d = min(0.9, (1 + t) / (10 + t))
        average = [d * a + (1 - d) * wi for a, wi in zip(average, w)]
    for got, want in zip(net.get_weights(), average):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert not np.allclose(net.get_weights()[0], steps[-1][0])        # and it is not the last step
    assert history.records[-1]["evaluation_accuracy"] == net.accuracy(data)   # monitored with w̄


def test_weight_average_resumes_bit_identically_and_its_steps_go_on_from_the_raw_weights(tmp_path):
    from nndl.train import WeightAverage

    (x, y), _, _ = nndl.data.load_mnist()
    data = (x[:200], y[:200])

    def net():
        return nndl.Network.from_sizes([784, 10, 10], cost="cross-entropy", seed=0)

    whole = net()
    nndl.train.fit(whole, data, 4, 20, 0.5, optimizer="momentum", callbacks=[WeightAverage(0.95)])
    cut = net()
    nndl.train.fit(cut, data, 2, 20, 0.5, optimizer="momentum", callbacks=[WeightAverage(0.95)],
                   checkpoint=str(tmp_path))
    resumed = net()
    nndl.train.fit(resumed, data, 4, 20, 0.5, optimizer="momentum", callbacks=[WeightAverage(0.95)],
                   resume=str(tmp_path))
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Without the raw weights in the checkpoint, the steps would go on from w̄ and end elsewhere.
    lost = net()
    forgetful = WeightAverage(0.95)
    forgetful.load_arrays = lambda arrays: WeightAverage.load_arrays(
        forgetful, {k: v for k, v in arrays.items() if k.startswith("average")})
    nndl.train.fit(lost, data, 4, 20, 0.5, optimizer="momentum", callbacks=[forgetful], resume=str(tmp_path))
    assert not np.array_equal(lost.get_weights()[0], whole.get_weights()[0])


def test_weight_average_smooths_noisy_steps_on_real_mnist():
    """At a large η the last step is noisy; the average of the last ~100 steps costs less on
    validation, seed after seed (by 13-30% here), and reads more of it right."""
    from nndl.train import WeightAverage

    (x, y), (vx, vy), _ = nndl.data.load_mnist()
    train, validation = (x[:2000], y[:2000]), (vx[:1000], vy[:1000])
    gains = []
    for seed in (1, 2, 3):
        raw = nndl.Network.from_sizes([784, 30, 10], cost="cross-entropy", seed=seed)
        nndl.train.fit(raw, train, 3, 10, 3.0)
        averaged = nndl.Network.from_sizes([784, 30, 10], cost="cross-entropy", seed=seed)
        nndl.train.fit(averaged, train, 3, 10, 3.0, callbacks=[WeightAverage(0.99)])
        assert averaged.total_cost(validation) < raw.total_cost(validation)
        gains.append(averaged.accuracy(validation) - raw.accuracy(validation))
    assert np.mean(gains) > 0.01


def test_a_weight_average_decay_outside_0_1_is_refused():
    from nndl.settings import SettingsError, settings_from
    from nndl.train import WeightAverage

    for decay in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"weight-average decay must be in \(0, 1\)"):
            WeightAverage(decay)
    with pytest.raises(SettingsError, match="weight_average"):
        settings_from({"weight_average": 1.0})
