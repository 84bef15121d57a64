"""The learning-rate threshold search of chapter 3."""
from __future__ import annotations

import json

from nndl.cli import main
from nndl.train.lrfind import falls, find_threshold


def test_falls_needs_a_strictly_falling_finite_cost():
    assert falls([3.0, 2.0, 1.0])
    assert not falls([3.0, 2.0, 2.5])
    assert not falls([3.0, float("nan")])
    assert not falls([3.0])


def test_threshold_is_the_largest_rate_whose_cost_falls():
    table = {0.1: [1, 0.9, 0.8], 1.0: [1, 0.5, 0.3], 10.0: [1, 0.7, 0.9], 100.0: [1, 2, 3]}
    report = find_threshold(lambda eta: table[eta], [100.0, 0.1, 10.0, 1.0])
    assert report["threshold"] == 1.0 and report["suggested_eta"] == 0.5
    assert [t["eta"] for t in report["trials"]] == [0.1, 1.0, 10.0, 100.0]


def test_lr_find_on_mnist_finds_a_threshold_between_the_extremes(capsys):
    assert main(["lr-find", "--sizes", "784,20,10", "--cost", "cross-entropy", "--train-size", "2000",
                 "--epochs", "2", "--etas", "0.001,1,1000", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_eta = {t["eta"]: t for t in report["trials"]}
    assert by_eta[1.0]["falls"] and not by_eta[1000.0]["falls"]
    assert report["threshold"] in (0.001, 1.0)
