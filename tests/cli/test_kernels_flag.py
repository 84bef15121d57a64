"""--kernels on the command line: the choice is printed, recorded, may change on a resume, and a
wrong one is refused in one line."""
from __future__ import annotations

import json

import numpy as np

from nndl.cli import main
from nndl.nn import kernels
from nndl.train.checkpoint import read_checkpoint_meta

CONV = ["train", "--recipe", "ch6-relu", "--train-size", "300", "--validation-size", "200", "--mini-batch-size", "10"]


def test_train_prints_and_records_the_kernels_and_a_resume_may_change_them(tmp_path, capsys, monkeypatch):
    before = kernels.active()
    monkeypatch.delenv("NNDL_KERNELS", raising=False)
    try:
        metrics, ckpt = tmp_path / "m.jsonl", tmp_path / "ckpt"
        assert main(CONV + ["--epochs", "1", "--kernels", "numpy", "--metrics", str(metrics),
                            "--checkpoint", str(ckpt)]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0].endswith("seed 0, kernels numpy")
        assert [json.loads(line)["kernels"] for line in metrics.read_text().splitlines()] == ["numpy"]
        settings = read_checkpoint_meta(str(ckpt))["trainer"]["train_config"]["settings"]
        assert settings["kernels"] == "numpy"
        assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--kernels", "numba",
                     "--metrics", str(metrics)]) == 0                      # the same run, other kernels
        out = capsys.readouterr().out
        assert "kernels numba" in out.splitlines()[0] and "Epoch 1:" in out
        assert [json.loads(line)["kernels"] for line in metrics.read_text().splitlines()] == ["numpy", "numba"]
    finally:
        kernels.use(before)


def test_a_wrong_choice_is_refused_in_one_line(capsys, monkeypatch):
    before = kernels.active()
    try:
        monkeypatch.setenv("NNDL_KERNELS", "fortran")
        assert main(["train", "--sizes", "784,10", "--epochs", "1", "--train-size", "100"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == "nndl: error: NNDL_KERNELS must be one of numba, numpy, got 'fortran'"
    finally:
        monkeypatch.delenv("NNDL_KERNELS")
        kernels.use(before)


def test_evaluate_gives_the_same_accuracy_with_either_kernels(tmp_path, capsys, monkeypatch):
    before = kernels.active()
    monkeypatch.delenv("NNDL_KERNELS", raising=False)          # --kernels sets it for child processes
    model = tmp_path / "net.npz"
    try:
        assert main(CONV + ["--epochs", "1", "--save", str(model), "--quiet"]) == 0
        capsys.readouterr()
        accuracies = []
        for name in ("numba", "numpy"):
            assert main(["evaluate", str(model), "--json", "--kernels", name]) == 0
            accuracies.append(json.loads(capsys.readouterr().out)["accuracy"])
        assert np.isclose(accuracies[0], accuracies[1], atol=2e-4)     # float32 rounding may flip a digit
    finally:
        kernels.use(before)
