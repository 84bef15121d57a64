"""Checkpoints of a run: restored whole, the optimiser bound once, and files from before the
architecture change (tests/fixtures/checkpoint-c8135d0.npz, written by nndl at commit c8135d0) still resume."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import nndl
from nndl.cli import main
from nndl.train import checkpoint
from nndl.train.optimizers import Momentum

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoint-c8135d0.npz"
# The command that wrote the fixture (with --epochs 1 --checkpoint DIR), at commit c8135d0.
FLAGS = ["--sizes", "784,10,10", "--cost", "cross-entropy", "--optimizer", "momentum", "--eta", "0.05", "--lmbda",
         "1", "--schedule", "step", "--schedule-patience", "1", "--train-size", "500", "--validation-size", "200",
         "--evaluate-on", "validation", "--quiet"]


def test_a_checkpoint_written_before_the_change_resumes_and_ends_as_an_uninterrupted_run(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / "checkpoint.npz")
    meta = checkpoint.read_checkpoint_meta(str(folder))
    assert meta["trainer"]["next_epoch"] == 1 and meta["trainer"]["optimizer"]["name"] == "momentum"
    assert main(["train", "--resume", str(folder), "--epochs", "3", "--save", str(tmp_path / "resumed.npz"),
                 "--quiet"]) == 0
    assert main(["train", *FLAGS, "--epochs", "3", "--save", str(tmp_path / "whole.npz")]) == 0
    resumed, whole = nndl.load(str(tmp_path / "resumed.npz")), nndl.load(str(tmp_path / "whole.npz"))
    # Bit for bit where this CPU repeats the fixture's first epoch exactly. Another CPU's BLAS rounds
    # float32 differently in the last bit (1 ulp moves the end by ~1e-7); a resume that lost its
    # momentum, η or shuffling would move it by ~0.1.
    tolerance = 0.0 if first_epoch_as_the_fixture(tmp_path / "again") else 1e-5
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance)
    assert checkpoint.read_checkpoint_meta(str(folder))["trainer"]["next_epoch"] == 3


def first_epoch_as_the_fixture(folder: Path) -> bool:
    """Whether the fixture's command, run here for its one epoch, writes the fixture's arrays exactly."""
    assert main(["train", *FLAGS, "--epochs", "1", "--checkpoint", str(folder)]) == 0
    with np.load(FIXTURE) as fixture, np.load(folder / "checkpoint.npz") as here:
        arrays = [k for k in fixture.files if k != "__nndl__"]
        return all(np.array_equal(fixture[k], here[k]) for k in arrays)


def test_restore_leaves_the_optimiser_state_for_the_single_bind(tmp_path):
    (x, y), _, _ = nndl.data.load_mnist()
    data = (x[:200], y[:200])
    net = nndl.Network.from_sizes([784, 10, 10], cost="cross-entropy", seed=0)
    net.fit(data, epochs=1, mini_batch_size=20, eta=0.1, optimizer="momentum", checkpoint=str(tmp_path))
    binds = []

    class CountingMomentum(Momentum):
        def bind(self, *args, **kwargs):
            binds.append(args[1:])
            return super().bind(*args, **kwargs)

    fresh = nndl.Network.from_sizes([784, 10, 10], cost="cross-entropy", seed=5)
    opt = CountingMomentum(0.1)
    history = nndl.train.fit(fresh, data, 2, 20, optimizer=opt, resume=str(tmp_path))
    assert binds == [(200, 20)] and len(history) == 2         # bound once, with n and m, and resumed at epoch 1
    saved = nndl.load(os.path.join(tmp_path, "checkpoint.npz"))
    assert not np.array_equal(saved.get_weights()[0], fresh.get_weights()[0])   # it trained on from there


def test_a_model_file_is_not_a_checkpoint(tmp_path):
    net = nndl.Network.from_sizes([4, 3], seed=0)
    net.save(str(tmp_path / "model.npz"))
    trainer = nndl.train.Trainer(net, Momentum(0.1))
    with pytest.raises(nndl.ModelFileError, match="model file, not a training checkpoint"):
        checkpoint.restore(trainer, str(tmp_path / "model.npz"))
