"""The training loop: callbacks, early stopping, the η schedule, checkpoints that resume
bit-identically (also after SIGKILL), and divergence stopping with the checkpoint intact."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nndl
from nndl.train import BestWeights, Callback, EarlyStopping, PlateauSchedule


def _tiny_data(rng, n=200):
    x = rng.random((n, 12)).astype(np.float32)
    y = (x[:, :6].sum(axis=1) > x[:, 6:].sum(axis=1)).astype(np.int64)
    return x, y


class Scripted(Callback):
    """Feeds a fixed sequence of evaluation accuracies into the logs (to test rules exactly)."""

    def __init__(self, values):
        self.values = list(values)

    def on_epoch_end(self, epoch, logs):
        logs["evaluation_accuracy"] = self.values[epoch]


def _fit_scripted(values, callback, epochs=None, eta=1.0):
    rng = np.random.default_rng(0)
    net = nndl.Network.from_sizes([12, 2], seed=0)
    cbs = [Scripted(values), callback]
    history = net.fit(_tiny_data(rng), epochs=epochs or len(values), mini_batch_size=50, eta=eta, callbacks=cbs)
    return net, history


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    stopper = EarlyStopping(patience=3)
    _, history = _fit_scripted([0.5, 0.6, 0.7, 0.69, 0.7, 0.65, 0.9, 0.95], stopper)
    assert len(history) == 6           # epochs 0..5: no improvement on 3, 4, 5
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 5


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(0)
    net = nndl.Network.from_sizes([12, 2], seed=0)
    seen = []

    class Snap(Callback):
        def on_epoch_end(self, epoch, logs):
            seen.append(self.trainer.network.get_weights())

    net.fit(_tiny_data(rng), epochs=10, mini_batch_size=50, eta=1.0,
            callbacks=[Scripted([0.1, 0.9, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]), EarlyStopping(patience=2), Snap()])
    assert all(np.array_equal(a, b) for a, b in zip(net.get_weights(), seen[1]))


class Snap(Callback):
    """Records the weights at each epoch's end."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, epoch, logs):
        self.seen.append(self.trainer.network.get_weights())


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


BEST_AT_1 = [0.1, 0.9, 0.2, 0.3, 0.9, 0.2]        # a tie later is not better: the first best counts


def test_best_weights_end_the_run_with_the_best_epochs_weights():
    snap, keeper = Snap(), BestWeights()
    rng = np.random.default_rng(0)
    net = nndl.Network.from_sizes([12, 2], seed=0)
    net.fit(_tiny_data(rng), epochs=6, mini_batch_size=50, eta=1.0, callbacks=[Scripted(BEST_AT_1), keeper, snap])
    assert keeper.best_epoch == 1
    assert _same(net.get_weights(), snap.seen[1]) and not _same(net.get_weights(), snap.seen[-1])


def test_best_weights_travel_in_the_checkpoint_so_a_resumed_run_ends_the_same(tmp_path):
    rng = np.random.default_rng(0)
    data = _tiny_data(rng)
    whole, snap = nndl.Network.from_sizes([12, 2], seed=0), Snap()
    whole.fit(data, epochs=6, mini_batch_size=50, eta=1.0, callbacks=[Scripted(BEST_AT_1), BestWeights(), snap])
    first = nndl.Network.from_sizes([12, 2], seed=0)
    first.fit(data, epochs=3, mini_batch_size=50, eta=1.0, callbacks=[Scripted(BEST_AT_1), BestWeights()],
              checkpoint=str(tmp_path))
    resumed = nndl.Network.from_sizes([12, 2], seed=7)     # other weights: all must come from the checkpoint
    keeper = BestWeights()
    resumed.fit(data, epochs=6, mini_batch_size=50, eta=1.0, callbacks=[Scripted(BEST_AT_1), keeper],
                resume=str(tmp_path))
    assert keeper.best_epoch == 1
    assert _same(resumed.get_weights(), snap.seen[1]) and _same(resumed.get_weights(), whole.get_weights())


def test_plateau_schedule_halves_eta_after_patience_and_stops_at_the_floor():
    schedule = PlateauSchedule(patience=2, factor=0.5, floor=1 / 8)
    values = [0.5] + [0.4] * 20
    _, history = _fit_scripted(values, schedule, eta=1.0)
    etas = history.eta
    # epoch 0 sets the best; every 2 epochs without improvement halve eta: 1, 1, 1, .5, .5, .25, .25
    assert etas[:7] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert len(history) == 7            # eta reached 1/8 of its start after epoch 6: stop
    assert schedule.trainer.optimizer.eta == pytest.approx(0.125)


def test_plateau_schedule_keeps_eta_while_improving():
    _, history = _fit_scripted([0.1 * i for i in range(8)], PlateauSchedule(patience=1), eta=0.7)
    assert set(history.eta) == {0.7}


def test_dropout_is_off_in_evaluation_and_scales_in_training():
    layer = nndl.Dropout(0.5)
    layer.build((1000,), np.random.default_rng(0), np.float32, "default")
    x = np.ones((4, 1000), np.float32)
    assert np.array_equal(layer.forward(x), x)
    out = layer.forward(x, train=True)
    assert set(np.unique(out)) == {0.0, 2.0}
    assert abs(out.mean() - 1.0) < 0.05
    grad = layer.backward(np.ones_like(x))
    assert np.array_equal(grad, out)


def test_monitoring_reports_the_book_keys(mnist_small, tmp_path):
    training, _, test = mnist_small
    net = nndl.Network.from_sizes([784, 20, 10], cost="cross-entropy", seed=0)
    metrics = tmp_path / "m.jsonl"
    history = net.fit((training[0][:1000], training[1][:1000]), epochs=2, mini_batch_size=10, eta=0.5,
                      lmbda=1.0, evaluation_data=test, monitor_evaluation_cost=True, monitor_training_cost=True,
                      monitor_training_accuracy=True, metrics=str(metrics))
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    for r, rec in zip(rows, history.records):
        for key in ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy", "eta", "seconds"):
            assert r[key] == pytest.approx(rec[key]), key
        assert 0 <= r["evaluation_accuracy"] <= 1 and r["training_cost"] > 0


def _train_cmd(tmp_path, epochs, extra=()):
    return [sys.executable, "-m", "nndl.cli", "train", "--sizes", "784,20,10", "--cost", "cross-entropy",
            "--eta", "0.5", "--lmbda", "1.0", "--optimizer", "momentum", "--dropout", "0.2", "--epochs", str(epochs),
            "--train-size", "3000", "--seed", "3", "--quiet", *extra]


def _weights(path):
    return nndl.load(path).get_weights()


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    subprocess.run(_train_cmd(tmp_path, 4, ["--save", str(full)]), check=True, env=env, capture_output=True)
    ck = tmp_path / "ck"
    subprocess.run(_train_cmd(tmp_path, 2, ["--checkpoint", str(ck)]), check=True, env=env, capture_output=True)
    subprocess.run([sys.executable, "-m", "nndl.cli", "train", "--resume", str(ck), "--epochs", "4", "--quiet",
                    "--save", str(part)], check=True, env=env, capture_output=True)
    for a, b in zip(_weights(full), _weights(part)):
        assert np.array_equal(a, b)


def test_resume_after_sigkill_mid_epoch_is_bit_identical(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    full, resumed, ck = tmp_path / "full.npz", tmp_path / "resumed.npz", tmp_path / "ck"
    subprocess.run(_train_cmd(tmp_path, 5, ["--save", str(full)]), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_train_cmd(tmp_path, 5, ["--checkpoint", str(ck)]), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = ck / "checkpoint.npz"
    deadline = time.time() + 60
    while not path.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert path.exists(), "no checkpoint was written"
    time.sleep(0.05)  # now inside a later epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epoch_done = nndl.train.checkpoint.read_checkpoint_meta(str(ck))["trainer"]["next_epoch"]
    assert 1 <= epoch_done < 5, "the kill should land mid-run"
    subprocess.run([sys.executable, "-m", "nndl.cli", "train", "--resume", str(ck), "--quiet", "--save",
                    str(resumed)], check=True, env=env, capture_output=True)
    for a, b in zip(_weights(full), _weights(resumed)):
        assert np.array_equal(a, b)


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, mnist_small):
    training, _, test = mnist_small
    net = nndl.Network.from_sizes([784, 30, 10], activation="relu", output_activation="identity",
                                  cost="quadratic", seed=0)
    ck = tmp_path / "ck"

    class Blowup(Callback):  # η = 100 on a linear-output net overflows within an epoch
        def on_epoch_end(self, epoch, logs):
            if epoch == 0:
                self.trainer.optimizer.eta = 100.0

    with pytest.raises(nndl.TrainingDivergedError, match=r"epoch 1.*smaller eta.*checkpoint"):
        with np.errstate(all="ignore"):
            net.fit(training, epochs=5, mini_batch_size=10, eta=0.01, evaluation_data=test,
                    monitor_evaluation_cost=True, checkpoint=str(ck), callbacks=[Blowup()],
                    metrics=str(tmp_path / "m.jsonl"))
    saved = nndl.load(str(ck / "checkpoint.npz"))  # loads: every array finite
    assert saved.accuracy(test) > 0.5
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1] and "diverged" not in rows[0]
    assert rows[1]["diverged"] is True         # the metrics file says so too (the Runs view shows it)


def test_divergence_in_the_first_epoch_names_no_checkpoint_that_was_never_written(tmp_path, mnist_small):
    training, _, test = mnist_small
    net = nndl.Network.from_sizes([784, 30, 10], activation="relu", output_activation="identity",
                                  cost="quadratic", seed=0)
    ck = tmp_path / "ck"
    with pytest.raises(nndl.TrainingDivergedError) as info:
        with np.errstate(all="ignore"):
            net.fit(training, epochs=2, mini_batch_size=10, eta=100.0, evaluation_data=test,
                    monitor_evaluation_cost=True, checkpoint=str(ck))
    assert "epoch 0" in str(info.value) and "checkpoint" not in str(info.value)
    assert not (ck / "checkpoint.npz").exists()
