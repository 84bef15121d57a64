"""The benchmarks still run and report what they claim (no timings are asserted: machines are noisy)."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

import nndl

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("net", ["relu", "conv2d", "dropout"])
def test_bench_conv_flops_match_the_networks_shapes(net):
    bench = _load("bench_conv")
    layers = nndl.Network(bench.nndl_layers(net), cost="log-likelihood", seed=0).layers
    convs = [layer for layer in layers if layer.kind in ("conv2d", "convpool")]
    dense = [layer for layer in layers if layer.kind == "dense"]
    macs = [layer.macs_per_sample() for layer in convs] + [layer.w.value.size for layer in dense]  # weights only
    # forward 2·MACs; backward 4·MACs except the first layer (no input gradient): 2·MACs
    assert bench.flops_per_image(net) == 4 * macs[0] + sum(6 * n for n in macs[1:])


def test_bench_conv_prints_one_row_per_net_kernels_and_batch(capsys):
    bench = _load("bench_conv")
    bench.main(["--images", "100", "--batch", "10", "--repeats", "1", "--nets", "relu", "conv2d", "--threads", "1"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ch6")]
    assert [(r.split("|")[1].strip(), r.split("|")[2].strip()) for r in rows] == [
        ("ch6-relu (ConvPool)", "numba"), ("ch6-relu (ConvPool)", "numpy"),
        ("ch6-relu (Conv2D+MaxPool)", "numba"), ("ch6-relu (Conv2D+MaxPool)", "numpy")]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == "10"                              # m as asked
        assert cells[3] == ("1 + BLAS 1" if cells[1] == "numba" else "1")   # threads as asked
        assert float(cells[4]) > 0                           # s/epoch
        share = float(cells[-1].rstrip("%"))                 # the products' share of the epoch
        assert 0 < share < 100
    assert "kernels numba and numpy" in out and "matmul peak" in out and "MFLOP per training image" in out


def test_bench_time_to_accuracy_counts_training_seconds_to_the_first_epoch_at_each_level():
    bench = _load("bench_time_to_accuracy")
    records = [{"seconds": 10.0, "evaluation_accuracy": 0.975}, {"seconds": 12.0, "evaluation_accuracy": 0.991},
               {"seconds": 11.0, "evaluation_accuracy": 0.989}, {"seconds": 9.0, "evaluation_accuracy": 0.996}]
    assert bench.seconds_to(records) == {0.98: 22.0, 0.99: 22.0, 0.995: 42.0}
    assert bench.seconds_to(records[:1]) == {0.98: None, 0.99: None, 0.995: None}


def test_fit_segmenter_decodes_as_read_ink_and_its_crf_gradient_matches_numerical_derivatives():
    import numpy as np

    from nndl.data.images import ink_map
    from nndl.data.marks import number
    from nndl.models import load_default_model
    from nndl.segment import WEIGHTS, read_ink

    fit = _load("fit_segmenter")
    net = load_default_model()
    _, (x, y), _ = nndl.data.load_mnist()
    data = fit.collect(net, x, y, 6, [9, 9])
    rng, exact = np.random.default_rng([9, 9]), 0            # the same numbers, read by read_ink
    for t in range(6):
        idx = rng.choice(len(x), size=int(rng.integers(3, 7)), replace=False)
        ink = number(x[idx], rng, touching=t % 2 == 1)
        exact += read_ink(net, ink_map(np.uint8(255 * (1 - ink)))).number == "".join(map(str, y[idx]))
    assert fit.exact_rate(data, WEIGHTS) == exact / 6

    keys = ("src", "dst", "digit", "edge_at", "nodes", "label_at", "labels")
    ok = data["row"] >= 0

    def loss_and_grad(w):
        grad_score = np.zeros(len(data["src"]))
        loss, used = fit._crf(fit.scores(data, w), *(data[k] for k in keys), grad_score)
        return loss, data["features"][data["row"][ok]].T @ grad_score[ok], used

    w = WEIGHTS.astype(np.float64) / 4                        # away from the optimum: gradients of size
    loss, grad, used = loss_and_grad(w)
    assert used >= 4 and loss > 0 and np.abs(grad).max() > 1e-3
    for k in (0, 4, 30, 33):                                   # a piece's cost, margin, log conf., P(not a digit)
        step = np.zeros_like(w)
        step[k] = 1e-5
        numerical = (loss_and_grad(w + step)[0] - loss_and_grad(w - step)[0]) / 2e-5
        assert abs(numerical - grad[k]) <= 1e-4 * max(1.0, abs(grad[k]))
