"""The benchmarks still run and report what they claim (no timings are asserted: machines are noisy)."""
from __future__ import annotations

import importlib.util
import pathlib

import nndl

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_conv_flops_match_the_networks_shapes():
    bench = _load("bench_conv")
    net = nndl.Network(bench.nndl_layers(convpool=True), cost="log-likelihood", seed=0)
    convs, dense = net.layers[:2], net.layers[2:]
    macs = [layer.macs_per_sample() for layer in convs] + [layer.w.value.size for layer in dense]  # weights only
    # forward 2·MACs; backward 4·MACs except the first layer (no input gradient): 2·MACs
    assert bench.flops_per_image() == 4 * macs[0] + sum(6 * n for n in macs[1:])


def test_bench_conv_prints_one_row_per_net_and_batch(capsys):
    bench = _load("bench_conv")
    bench.main(["--images", "100", "--batch", "10", "--repeats", "1", "--convpool", "--threads", "1"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| Conv")]
    assert [r.split("|")[1].strip() for r in rows] == ["Conv2D+MaxPool", "ConvPool"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "10" and cells[2] == "1"          # m and threads as asked
        assert float(cells[3]) > 0                           # s/epoch
        share = float(cells[-1].rstrip("%"))                 # the products' share of the epoch
        assert 0 < share < 100
    assert "matmul peak" in out and "MFLOP per training image" in out
