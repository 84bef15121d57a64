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
])
def test_bad_flags_give_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["train", "--sizes", "784,0,10", "--epochs", "1"], "positive"),
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
