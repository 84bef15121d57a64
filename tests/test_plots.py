"""Plots: each function writes a real PNG of the expected size atomically, and refuses bad input;
``nndl plot`` drives them from metrics files and saved models."""
import json
import os
import sys

import numpy as np
import pytest

import nndl
from nndl import cli, plots
from nndl.analysis import confusion_matrix, misclassified
from nndl.ensemble import Ensemble
from nndl.errors import DataFormatError, ShapeError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(path) -> np.ndarray:
    """Check the file is a non-empty PNG and return its pixels (h, w, channels)."""
    from matplotlib.image import imread

    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > 1000
    pixels = imread(path)
    assert pixels.std() > 0.01  # something is drawn, not a blank canvas
    return pixels


def assert_size(pixels: np.ndarray, width: int, height: int) -> None:
    h, w = pixels.shape[:2]
    assert abs(w - width) <= 1 and abs(h - height) <= 1, f"got {w}x{h}, expected {width}x{height}"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A [784, 30, dropout, 10] net trained 3 epochs on 1,000 MNIST images with every monitor on,
    its --metrics file (written by the real MetricsLog) and its saved model file."""
    folder = tmp_path_factory.mktemp("run")
    training, validation, test = nndl.data.load_mnist()
    net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dropout(0.1), nndl.Dense(30, 10, "sigmoid")],
                       cost="cross-entropy", seed=0)
    metrics = folder / "eta-0.5.jsonl"
    net.fit((training[0][:1000], training[1][:1000]), epochs=3, mini_batch_size=10, eta=0.5,
            evaluation_data=(validation[0][:500], validation[1][:500]), monitor_training_cost=True,
            monitor_training_accuracy=True, monitor_evaluation_cost=True, metrics=str(metrics))
    model = folder / "net.npz"
    net.save(str(model))
    return {"net": net, "metrics": metrics, "model": model, "test": (test[0][:1000], test[1][:1000])}


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# ----- plot_metrics -------------------------------------------------------------------------------
def test_metrics_file_from_training_reads_back(run):
    rows = plots.read_metrics(run["metrics"])
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert all(0 <= r["evaluation_accuracy"] <= 1 and r["training_cost"] > 0 for r in rows)


def test_plot_metrics_draws_cost_and_accuracy_panels(run, tmp_path):
    out = plots.plot_metrics(run["metrics"], tmp_path / "overfit.png", title="overfitting")
    assert out == str(tmp_path / "overfit.png")
    assert_size(read_png(out), 1200, 450)  # two 6x4.5-inch panels at 100 dpi
    # Only accuracies asked for: one panel.
    out = plots.plot_metrics([run["metrics"]], tmp_path / "acc.png", keys=["training_accuracy", "evaluation_accuracy"])
    assert_size(read_png(out), 600, 450)
    assert sorted(os.listdir(tmp_path)) == ["acc.png", "overfit.png"]  # no temp files left behind


def test_plot_metrics_compares_runs_against_seconds(tmp_path):
    files = [write_jsonl(tmp_path / f"eta-{eta}.jsonl",
                         [{"epoch": e, "eta": eta, "evaluation_accuracy": 0.1 + e * eta / 100, "seconds": 0.5,
                           "training_cost": None} for e in range(5)])
             for eta in (0.025, 0.25, 2.5)]
    out = plots.plot_metrics(files, tmp_path / "etas.png", x="seconds", labels=["η=0.025", "η=0.25", "η=2.5"])
    assert_size(read_png(out), 600, 450)  # no cost was monitored: accuracy panel only
    with pytest.raises(ValueError, match="2 labels for 3 metrics files"):
        plots.plot_metrics(files, tmp_path / "x.png", labels=["a", "b"])


def test_plot_metrics_refuses_unusable_files(tmp_path):
    empty = write_jsonl(tmp_path / "nulls.jsonl", [{"epoch": 0, "evaluation_accuracy": None, "seconds": 1.0}])
    with pytest.raises(DataFormatError, match="no usable rows"):
        plots.plot_metrics(empty, tmp_path / "x.png")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"epoch": 0, "evaluation_accuracy": 0.5}\n{"epoch": 1, "evalu\n')
    with pytest.raises(DataFormatError, match="line 2"):
        plots.plot_metrics(bad, tmp_path / "x.png")
    no_seconds = write_jsonl(tmp_path / "ns.jsonl", [{"epoch": 0, "evaluation_accuracy": 0.5}])
    with pytest.raises(DataFormatError, match="lacks 'seconds'"):
        plots.plot_metrics(no_seconds, tmp_path / "x.png", x="seconds")
    with pytest.raises(ValueError, match="keys must be among"):
        plots.plot_metrics(no_seconds, tmp_path / "x.png", keys=["loss"])
    with pytest.raises(ValueError, match="x must be one of"):
        plots.plot_metrics(no_seconds, tmp_path / "x.png", x="batch")
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        plots.plot_metrics(tmp_path / "missing.jsonl", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# ----- plot_loss (the character RNN) -------------------------------------------------------------
def test_plot_loss_from_records_and_from_a_loss_log(tmp_path):
    records = [{"type": "iteration", "epoch": e, "iteration": i, "loss": 30.0, "loss_per_char": 3.0 - i / 10,
                "smooth_loss_per_char": 3.0 - i / 12} for e in range(3) for i in range(4 * e + 1, 4 * e + 5)]
    records += [{"type": "epoch", "epoch": e, "iterations": 4, "characters": 800, "loss_per_char": 2.8 - e / 3,
                 "seconds": 0.1, "validation_loss_per_char": 2.9 - e / 4} for e in range(3)]
    out = plots.plot_loss(records, tmp_path / "loss.png", vocab_size=27)
    assert out == str(tmp_path / "loss.png")
    assert_size(read_png(out), 770, 462)  # 7x4.2 inches at 110 dpi
    log = write_jsonl(tmp_path / "loss.jsonl", records)
    assert plots.read_loss_log(log) == records
    assert_size(read_png(plots.plot_loss(log, tmp_path / "from-log.png")), 770, 462)
    with pytest.raises(ValueError, match="no epoch records"):
        plots.plot_loss(records[:3], tmp_path / "x.png")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "epoch"\n')
    with pytest.raises(DataFormatError, match="not a JSON-lines loss log"):
        plots.plot_loss(bad, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# ----- confusion, errors, filters ---------------------------------------------------------------
def test_plot_confusion_of_a_trained_net(run, tmp_path):
    net, (x, y) = run["net"], run["test"]
    out = plots.plot_confusion(confusion_matrix(y, net.predict(x)), tmp_path / "confusion.png")
    assert_size(read_png(out), 800, 700)
    with pytest.raises(ShapeError, match="square"):
        plots.plot_confusion(np.ones((3, 4)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-negative"):
        plots.plot_confusion(-np.eye(3), tmp_path / "x.png")


def test_plot_misclassified_gallery(run, tmp_path):
    net, (x, y) = run["net"], run["test"]
    indices, predicted, probabilities = misclassified(net, (x, y))
    assert len(indices) > 12
    out = plots.plot_misclassified(x[indices], y[indices], predicted, tmp_path / "errors.png", max_images=12,
                                   probabilities=probabilities)
    assert_size(read_png(out), 850, 260)  # 12 images: 2 rows of 10
    # All images and all predictions: only the errors are shown, here 3 of them in one row.
    p = net.predict(x)
    keep = np.concatenate([indices[:3], np.flatnonzero(p == y)[:20]])
    out = plots.plot_misclassified(x[keep], y[keep], p[keep], tmp_path / "three.png")
    assert_size(read_png(out), 400, 155)
    with pytest.raises(ShapeError, match="5 images, 4 true labels"):
        plots.plot_misclassified(x[:5], y[:4], p[:5], tmp_path / "x.png")
    with pytest.raises(ShapeError, match="not square images"):
        plots.plot_misclassified(np.zeros((2, 30)), [0, 1], [1, 0], tmp_path / "x.png")


def test_filter_tiles_layouts():
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(20, 3, 5, 5))
    np.testing.assert_allclose(plots.filter_tiles(conv), conv.mean(axis=1))
    np.testing.assert_array_equal(plots.filter_tiles(conv, channel=2), conv[:, 2])
    dense = rng.normal(size=(784, 30))  # our w is (n_in, n_out): unit k's weights are column k
    tiles = plots.filter_tiles(dense)
    assert tiles.shape == (30, 28, 28)
    np.testing.assert_array_equal(tiles[7], dense[:, 7].reshape(28, 28))


def test_plot_filters_conv_and_dense(run, tmp_path):
    conv = np.random.default_rng(0).normal(size=(20, 1, 5, 5))  # chapter 6's 20 maps of 5x5
    assert_size(read_png(plots.plot_filters(conv, tmp_path / "conv.png")), 400, 380)  # 5x4 grid
    dense = run["net"].layers[0].w.value
    assert_size(read_png(plots.plot_filters(dense, tmp_path / "dense.png")), 480, 460)  # 30 units: 6x5 grid


def test_plot_filters_refuses_bad_weights(tmp_path):
    for bad in (np.zeros(25), np.zeros((1, 2, 3, 4, 5))):
        with pytest.raises(ShapeError, match=f"got an array with {bad.ndim} dimensions"):
            plots.plot_filters(bad, tmp_path / "x.png")
    with pytest.raises(ShapeError, match="30 inputs per unit cannot be drawn as square images"):
        plots.plot_filters(np.zeros((30, 10)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="channel must be 'mean' or an index in 0..2"):
        plots.plot_filters(np.zeros((4, 3, 5, 5)), tmp_path / "x.png", channel=3)
    with pytest.raises(ValueError, match="NaN"):
        plots.plot_filters(np.full((4, 1, 5, 5), np.nan), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# ----- sweeps -------------------------------------------------------------------------------------
def test_plot_sweep(tmp_path):
    trials = [{"params": {"eta": eta, "lmbda": 5.0}, "validation_accuracy": acc}
              for eta, acc in ((0.01, 0.80), (0.1, 0.93), (1.0, 0.95), (1.0, 0.96), (10.0, None))]
    out = plots.plot_sweep(trials, "eta", tmp_path / "sweep.png")
    assert_size(read_png(out), 650, 450)
    out = plots.plot_sweep([{"optimizer": o, "evaluation_accuracy": a} for o, a in (("sgd", .9), ("adam", .95))],
                           "optimizer", tmp_path / "opt.png")
    read_png(out)
    out = plots.plot_sweep([{"mini_batch_size": np.int64(m), "accuracy": np.float32(0.9)} for m in (1, 10, 100)],
                           "mini_batch_size", tmp_path / "m.png", score="accuracy")
    read_png(out)
    with pytest.raises(ValueError, match="no trial has both 'mu'"):
        plots.plot_sweep(trials, "mu", tmp_path / "x.png")


def test_log_axis_when_values_span_two_decades():
    assert plots.wants_log_axis([0.01, 0.1, 1.0])
    assert not plots.wants_log_axis([1, 2, 50])
    assert not plots.wants_log_axis([-1.0, 100.0])


# ----- the edges: atomic files and the optional dependency --------------------------------------
def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    out = tmp_path / "c.png"
    plots.plot_confusion(np.eye(3) * 5, out)
    before = out.read_bytes()

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.plot_confusion(np.eye(3), out)
    assert out.read_bytes() == before and os.listdir(tmp_path) == ["c.png"]


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    with pytest.raises(ImportError, match=r"pip install -e '\.\[plot\]'"):
        plots.plot_confusion(np.eye(3), tmp_path / "x.png")


# ----- nndl plot ----------------------------------------------------------------------------------
@pytest.fixture
def nndl_main(monkeypatch):
    if "plot" not in cli.COMMANDS:  # until the lead registers it, run the dispatcher with plot alone
        monkeypatch.setattr(cli, "COMMANDS", ["plot"])
    return cli.main


def test_cli_plot_metrics(run, tmp_path, nndl_main, capsys):
    second = write_jsonl(tmp_path / "eta-3.jsonl", [{"epoch": e, "evaluation_accuracy": 0.5 + e / 10,
                                                     "training_cost": 1 / (e + 1), "seconds": 0.2} for e in range(4)])
    out = tmp_path / "cmp.png"
    rc = nndl_main(["plot", "metrics", str(run["metrics"]), second, "--out", str(out), "--x", "seconds",
                    "--labels", "eta=0.5,eta=3", "--title", "two runs"])
    assert rc == 0 and f"wrote {out}" in capsys.readouterr().out
    assert_size(read_png(out), 1200, 450)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"eta": 0.5}])
    assert nndl_main(["plot", "metrics", bad, "--out", str(tmp_path / "x.png")]) == 2
    assert "no usable rows" in capsys.readouterr().err


def test_cli_plot_confusion_and_errors(run, tmp_path, nndl_main, capsys):
    model, net = str(run["model"]), run["net"]
    _, _, (x, y) = nndl.data.load_mnist()
    correct = int((net.predict(x) == y).sum())
    assert nndl_main(["plot", "confusion", model, "--out", str(tmp_path / "c.png")]) == 0
    assert f"{correct} / 10000 test images correct" in capsys.readouterr().out
    read_png(tmp_path / "c.png")
    assert nndl_main(["plot", "errors", model, "--out", str(tmp_path / "e.png"), "--max", "20"]) == 0
    assert f"{10000 - correct} of 10000 test images misclassified" in capsys.readouterr().out
    assert_size(read_png(tmp_path / "e.png"), 850, 260)


def test_cli_plot_errors_and_confusion_of_an_ensemble(run, tmp_path, nndl_main, capsys):
    """Several model files: the pictures show their plurality vote (as the book shows the errors
    of its five-net ensemble)."""
    training, _, (x, y) = nndl.data.load_mnist()
    paths = [str(run["model"])]
    for seed in (1, 2):
        other = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")],
                             cost="cross-entropy", seed=seed)
        other.fit((training[0][:1000], training[1][:1000]), epochs=2, mini_batch_size=10, eta=0.5,
                  monitor_evaluation_accuracy=False)
        paths.append(str(tmp_path / f"net{seed}.npz"))
        other.save(paths[-1])
    vote = Ensemble([nndl.load(p) for p in paths]).predict(x)
    wrong = int((vote != y).sum())
    assert wrong != int((run["net"].predict(x) != y).sum())          # the vote is not the first net's
    assert nndl_main(["plot", "errors", *paths, "--out", str(tmp_path / "e.png")]) == 0
    assert f"{wrong} of 10000 test images misclassified" in capsys.readouterr().out
    read_png(tmp_path / "e.png")
    assert nndl_main(["plot", "confusion", *paths, "--out", str(tmp_path / "c.png")]) == 0
    assert f"{10000 - wrong} / 10000 test images correct" in capsys.readouterr().out


def test_cli_plot_filters(run, tmp_path, nndl_main, capsys):
    model = str(run["model"])
    assert nndl_main(["plot", "filters", model, "--out", str(tmp_path / "f.png")]) == 0  # layer 0 by default
    assert_size(read_png(tmp_path / "f.png"), 480, 460)
    assert nndl_main(["plot", "filters", model, "--layer", "1", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "layer 1 (Dropout) has no weights to draw; layers with weights: 0 (Dense), 2 (Dense)" in err
    assert nndl_main(["plot", "filters", model, "--layer", "7", "--out", str(tmp_path / "x.png")]) == 2
    assert "out of range" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
