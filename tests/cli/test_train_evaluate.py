"""The command line: train, evaluate and reproduce end to end, and one-line errors."""
from __future__ import annotations

import json

import pytest

import nndl
from nndl.cli import main


def test_train_prints_book_lines_saves_and_writes_metrics(tmp_path, capsys):
    model, metrics = tmp_path / "net.npz", tmp_path / "m.jsonl"
    code = main(["train", "--sizes", "784,30,10", "--epochs", "2", "--train-size", "2000", "--eta", "3.0",
                 "--init", "large", "--save", str(model), "--metrics", str(metrics)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Epoch 0: " in out and " / 10000" in out and "Epoch 1: " in out
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert set(rows[0]) >= {"epoch", "eta", "evaluation_accuracy", "evaluation_cost", "training_cost", "seconds"}
    assert rows[0]["training_cost"] is None and 0.5 < rows[1]["evaluation_accuracy"] <= 1
    assert main(["evaluate", str(model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == pytest.approx(rows[1]["evaluation_accuracy"])


def test_one_epoch_on_50000_images_exceeds_90_percent(capsys):
    assert main(["train", "--sizes", "784,30,10", "--epochs", "1", "--eta", "3.0", "--init", "large"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["best_test_accuracy"] >= 0.90


@pytest.mark.parametrize("argv, message", [
    (["train", "--eta", "-1"], "expected a positive number"),
    (["train", "--sizes", "784,x"], "comma-separated integers"),
    (["train", "--cost", "hinge"], "invalid choice"),
    (["train", "--frobnicate"], "unrecognized arguments"),
    (["train", "--seed", "-1"], "argument --seed: expected an integer >= 0"),
])
def test_bad_flags_give_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["train", "--sizes", "784,0,10", "--epochs", "1"], "positive"),
    (["train", "--sizes", "784,10,99999999999", "--epochs", "1"], "more than nndl's limit"),
    (["train", "--sizes", "700,10", "--epochs", "1"], "(m, 700)"),
    (["train", "--recipe", "ch9-magic"], "unknown recipe 'ch9-magic'"),
    (["evaluate", "no-such-model.npz"], "no model file"),
])
def test_impossible_settings_give_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("nndl: error:") and len(err.splitlines()) == 1


def test_reproduce_lists_recipes_and_writes_results(tmp_path, capsys):
    assert main(["reproduce", "--list"]) == 0
    listing = capsys.readouterr().out
    for rid in ("ch1-30", "ch1-100", "ch3-ce-30", "ch3-l2-100", "ch3-overfit"):
        assert rid in listing
    out = tmp_path / "rep"
    assert main(["reproduce", "ch1-30", "--epochs", "1", "--train-size", "1000", "--seeds", "2", "--out", str(out),
                 "--quiet"]) == 0
    rows = json.loads((out / "results.json").read_text())
    (row,) = rows
    assert row["id"] == "ch1-30" and row["metric"] == "test" and row["book"] == pytest.approx(0.9542)
    assert row["seeds"] == 2 and len(row["per_seed"]) == 2 and row["epochs"] == 1
    assert 0.2 < row["measured_mean"] <= row["measured_best"] <= 1  # well above chance after 100 steps
    assert "| ch1-30 | test | 95.42% |" in (out / "results.md").read_text()
    # finished seeds are not run again
    assert main(["reproduce", "ch1-30", "--epochs", "1", "--train-size", "1000", "--seeds", "2", "--out", str(out),
                 "--quiet"]) == 0
    assert json.loads((out / "results.json").read_text())[0]["per_seed"] == row["per_seed"]


def test_reproduce_takes_machine_settings_and_records_them(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "ch3-ce-30", "--epochs", "1", "--train-size", "500", "--threads", "1",
                 "--out", str(out), "--quiet"]) == 0
    (row,) = json.loads((out / "results.json").read_text())
    assert row["overrides"]["threads"] == 1
    assert nndl.load(str(out / "ch3-ce-30" / "seed0.npz")).metadata["settings"]["threads"] == 1


def test_resume_keeps_the_run_settings_but_takes_new_machine_settings(tmp_path, capsys):
    """A run started on one machine finishes on another: --resume takes its settings from the
    checkpoint, with --epochs, --device and --threads as given (here threads); the saved network
    records the settings it finished with."""
    ckpt, model, metrics = tmp_path / "ckpt", tmp_path / "net.npz", tmp_path / "m.jsonl"
    first = ["train", "--sizes", "784,20,10", "--epochs", "1", "--train-size", "1000", "--eta", "3.0",
             "--threads", "2", "--checkpoint", str(ckpt), "--metrics", str(metrics)]
    assert main(first) == 0
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--threads", "1", "--save", str(model),
                 "--metrics", str(metrics)]) == 0
    out = capsys.readouterr().out
    assert "Epoch 0: " in out and "Epoch 1: " in out                 # epoch 1 after the resume
    settings = nndl.load(str(model)).metadata["settings"]
    assert settings["threads"] == 1 and settings["sizes"] == [784, 20, 10] and settings["train_size"] == 1000
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [0, 1]


def test_the_same_command_again_goes_on_from_its_checkpoint_and_never_overwrites_another_run(tmp_path, capsys):
    """After a crash, running the same `nndl train ... --checkpoint DIR` again continues the run
    (here with more epochs); a different run pointed at that folder is refused and changes nothing."""
    ckpt, metrics = tmp_path / "ckpt", tmp_path / "m.jsonl"
    base = ["train", "--sizes", "784,20,10", "--train-size", "1000", "--eta", "3.0", "--checkpoint", str(ckpt),
            "--metrics", str(metrics)]
    assert main([*base, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert f"resuming from {ckpt} (next epoch 1)" in out and "Epoch 0: " not in out and "Epoch 1: " in out
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [0, 1]

    before = (ckpt / "checkpoint.npz").read_bytes()
    for other in (["--eta", "0.5"], ["--seed", "1"]):          # the last --eta given wins
        assert main([*base, "--epochs", "3", *other]) == 2
        err = capsys.readouterr().err
        assert "holds the checkpoint of another run" in err and f"--resume {ckpt}" in err
    assert (ckpt / "checkpoint.npz").read_bytes() == before


def small_run(tmp_path, *extra: str) -> list[str]:
    return ["train", "--sizes", "784,20,10", "--train-size", "1000", "--eta", "3.0",
            "--checkpoint", str(tmp_path / "ckpt"), "--metrics", str(tmp_path / "m.jsonl"), *extra]


def test_a_run_that_ended_or_trained_more_epochs_is_not_continued(tmp_path, capsys):
    model = tmp_path / "net.npz"
    # Early stopping ends the run before its 30 epochs; the same command again changes nothing.
    argv = small_run(tmp_path, "--epochs", "30", "--early-stopping", "1", "--save", str(model))
    assert main(argv) == 0
    capsys.readouterr()
    saved = model.read_bytes()
    assert main(argv) == 2
    assert "already ended (early stopping" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "ckpt"), "--save", str(model)]) == 2
    assert "already ended" in capsys.readouterr().err
    assert model.read_bytes() == saved
    # Fewer epochs than a checkpoint has done would save a network labelled with the wrong count.
    other = tmp_path / "other"
    other.mkdir()
    assert main(small_run(other, "--epochs", "2")) == 0
    assert main(small_run(other, "--epochs", "1")) == 2
    assert "already trained 2 epochs, more than the 1 asked for" in capsys.readouterr().err


def test_resume_refuses_run_flags_and_never_overwrites_another_folder(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert main(small_run(a, "--epochs", "1")) == 0
    assert main(small_run(b, "--epochs", "1", "--eta", "0.5")) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(a / "ckpt"), "--eta", "0.1", "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "only --epochs, --device, --threads and --kernels may change (given: --seed, --eta)" in err
    before = (b / "ckpt" / "checkpoint.npz").read_bytes()
    assert main(["train", "--resume", str(a / "ckpt"), "--epochs", "2", "--checkpoint", str(b / "ckpt")]) == 2
    assert "holds the checkpoint of another run" in capsys.readouterr().err
    assert (b / "ckpt" / "checkpoint.npz").read_bytes() == before


def test_a_checkpoint_without_training_settings_gets_advice_that_works(tmp_path, mnist_small, capsys):
    training, _, _ = mnist_small
    net = nndl.Network([nndl.Dense(784, 10, "softmax")], cost="log-likelihood", seed=0)
    net.fit(training, epochs=1, mini_batch_size=10, eta=0.1, checkpoint=str(tmp_path / "ckpt"),
            monitor_evaluation_accuracy=False)
    for argv in (small_run(tmp_path, "--epochs", "2"), ["train", "--resume", str(tmp_path / "ckpt")]):
        assert main(argv) == 2
        assert "written without its training settings (by Network.fit); resume it from Python" in \
            capsys.readouterr().err
    again = nndl.Network([nndl.Dense(784, 10, "softmax")], cost="log-likelihood", seed=0)
    history = again.fit(training, epochs=2, mini_batch_size=10, eta=0.1, resume=str(tmp_path / "ckpt"),
                        monitor_evaluation_accuracy=False)
    assert [r["epoch"] for r in history.records] == [0, 1]


def test_a_resumed_run_logs_each_epoch_once_even_if_it_died_between_its_log_and_its_checkpoint(tmp_path):
    assert main(small_run(tmp_path, "--epochs", "1")) == 0
    metrics = tmp_path / "m.jsonl"
    with open(metrics, "a") as f:       # epoch 1's line written, its checkpoint never, then a torn line
        f.write(json.dumps({"epoch": 1, "evaluation_accuracy": 0.5}) + "\n" + '{"epoch": 2, "ev')
    assert main(small_run(tmp_path, "--epochs", "2")) == 0
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1] and rows[1]["evaluation_accuracy"] != 0.5


def test_a_run_started_on_the_gpu_finishes_on_the_cpu(tmp_path, monkeypatch, capsys):
    """Simulated without a GPU: NumPy stands in for CuPy for the first epoch, so the checkpoint
    records device=gpu; `--resume DIR --device cpu` then goes on without CuPy and ends exactly
    where an uninterrupted CPU run ends. (tests/gpu repeats the GPU side on a real GPU.)"""
    import numpy as np

    from nndl import backend

    straight = tmp_path / "straight"
    straight.mkdir()
    assert main(small_run(straight, "--epochs", "2", "--dtype", "float64", "--save", str(straight / "net.npz"))) == 0
    moved = tmp_path / "moved"
    moved.mkdir()
    monkeypatch.setattr(backend, "cupy_module", lambda: np)
    assert main(small_run(moved, "--epochs", "1", "--dtype", "float64", "--device", "gpu")) == 0
    monkeypatch.undo()
    backend.set_device("cpu")
    assert main(["train", "--resume", str(moved / "ckpt"), "--epochs", "2"]) == 2     # would need CuPy
    assert "CuPy" in capsys.readouterr().err
    assert main(["train", "--resume", str(moved / "ckpt"), "--epochs", "2", "--device", "cpu",
                 "--save", str(moved / "net.npz")]) == 0
    finished = nndl.load(str(moved / "net.npz"))
    assert finished.metadata["settings"]["device"] == "cpu"
    for w, w_straight in zip(finished.get_weights(), nndl.load(str(straight / "net.npz")).get_weights()):
        np.testing.assert_array_equal(w, w_straight)
