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
