"""``nndl data info|verify|fetch|expand`` through the real CLI entry point."""
from __future__ import annotations

import os
import shutil

import pytest

import nndl.cli
from nndl.data.sources import dataset_files

from .conftest import MNIST_NAMES


@pytest.fixture(autouse=True)
def only_data_command(monkeypatch):
    # Other subcommands are other modules' business; register just ours.
    monkeypatch.setattr(nndl.cli, "COMMANDS", ["data"])


def test_info_real(mnist_dir, capsys):
    assert nndl.cli.main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert str(mnist_dir) in out and "5923" in out and "1135" in out and "50,000" in out


def test_verify_real(mnist_dir, capsys):
    assert nndl.cli.main(["data", "verify", "--data-dir", str(mnist_dir)]) == 0
    assert "mnist: 4/4 files ok" in capsys.readouterr().out


def test_verify_fails_on_bad_files(tmp_path, tiny, capsys):
    tiny(tmp_path / "bad")
    assert nndl.cli.main(["data", "verify", "--data-dir", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL") == 4 and "0/4 files ok" in out


def test_info_missing(isolated_env, capsys):
    assert nndl.cli.main(["data", "info", "--dataset", "mnist"]) == 1
    out = capsys.readouterr().out
    assert "not found" in out and "nndl data fetch" in out


def test_fetch(mnist_dir, mirror_dir, tmp_path, serve, dead_url, capsys):
    dest = tmp_path / "dest"
    dest.mkdir()
    for role, path in dataset_files("mnist", mnist_dir).items():
        if role != "test_labels":
            shutil.copy(path, dest / path.name)
    assert nndl.cli.main(["data", "fetch", "--dest", str(dest), "--mirror", dead_url,
                          "--mirror", serve(mirror_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("SHA-256 ok") == 4 and f"ready in {dest}" in out
    assert (dest / f"{MNIST_NAMES['test_labels']}.gz").is_file()
    os.remove(dest / f"{MNIST_NAMES['test_labels']}.gz")
    assert nndl.cli.main(["data", "fetch", "--dest", str(dest), "--mirror", dead_url]) == 2
    err = capsys.readouterr().err
    assert "nndl: error: mnist: could not download" in err and f"{dead_url}t10k-labels" in err


def test_expand(tmp_path, tiny, capsys):
    tiny(tmp_path / "m", n_train=30, n_test=5)
    out = tmp_path / "expanded"
    assert nndl.cli.main(["data", "expand", "--kind", "shift4", "--data-dir", str(tmp_path / "m"),
                          "--validation-size", "10", "--out", str(out)]) == 0
    assert "(100, 28, 28)" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["shift4-train-images-idx3-ubyte", "shift4-train-labels-idx1-ubyte"]
