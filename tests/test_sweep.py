"""Hyper-parameter sweeps (issue 7): grid and random expansion, parsing with the train flags' own
checks, selection by validation accuracy only, the best command line, and a real local sweep."""
import argparse
import json
import math
import os
import shlex

import numpy as np
import pytest

from nndl.cli.train import add_training_flags, settings_from_args
from nndl.executors import available_cores, make_trial, run_trial
from nndl.files import read_jsonl
from nndl.recipes import load_recipe
from nndl.settings import settings_from
from nndl.sweep import (
    Range,
    SweepError,
    grid_points,
    make_trials,
    parse_grid,
    parse_range,
    parse_ranges,
    random_points,
    rank,
    results_markdown,
    select_best,
    sweep_settings,
    train_command,
)


# ----- parsing ----------------------------------------------------------------------------------
def test_grid_values_are_parsed_and_checked_like_train_flags():
    grid = parse_grid(["eta=0.1,0.5,1", "lmbda=0.1,1,5", "mini-batch-size=10,10,20", "sizes=784,30,10/784,100,10",
                       "cost=quadratic,cross-entropy"])
    assert grid == {"eta": [0.1, 0.5, 1.0], "lmbda": [0.1, 1.0, 5.0], "mini_batch_size": [10, 20],
                    "sizes": [[784, 30, 10], [784, 100, 10]], "cost": ["quadratic", "cross-entropy"]}
    assert all(isinstance(v, float) for v in grid["eta"]) and all(isinstance(v, int) for v in grid["mini_batch_size"])
    with pytest.raises(SweepError, match="eta.*positive"):
        parse_grid(["eta=0.5,-1"])
    with pytest.raises(SweepError, match="unknown cost .cubic.; choose from quadratic"):
        parse_grid(["cost=quadratic,cubic"])
    with pytest.raises(SweepError, match="cannot sweep 'etta'.*sweepable settings: .*eta"):
        parse_grid(["etta=1,2"])
    with pytest.raises(SweepError, match="validation data"):
        parse_grid(["evaluate_on=test,validation"])
    with pytest.raises(SweepError, match="NAME=VALUES"):
        parse_grid(["eta"])
    with pytest.raises(SweepError, match="twice"):
        parse_grid(["eta=1", "eta=2"])


def test_ranges_default_to_log_scale_over_a_decade_of_positive_values():
    assert parse_range("eta=0.01:1") == Range("eta", 0.01, 1.0, log=True)
    assert parse_range("lmbda=0:10") == Range("lmbda", 0.0, 10.0, log=False)
    assert parse_range("eta=0.5:2") == Range("eta", 0.5, 2.0, log=False)        # under a decade: linear
    assert parse_range("eta=0.01:1:linear").log is False
    assert parse_range("mini_batch_size=1:100:log") == Range("mini_batch_size", 1, 100, log=True, integer=True)
    with pytest.raises(SweepError, match="log scale needs LO > 0"):
        parse_range("lmbda=0:10:log")
    with pytest.raises(SweepError, match="below HI"):
        parse_range("eta=1:0.1")
    with pytest.raises(SweepError, match="numeric"):
        parse_range("cost=quadratic:cross-entropy")
    with pytest.raises(SweepError, match="LO:HI"):
        parse_range("eta=0.1:1:cubic")


# ----- expansion --------------------------------------------------------------------------------
def test_grid_points_are_every_combination_first_setting_slowest():
    points = grid_points({"eta": [0.1, 0.5, 1.0], "lmbda": [0.5, 5.0]})
    assert len(points) == 6
    assert points[:3] == [{"eta": 0.1, "lmbda": 0.5}, {"eta": 0.1, "lmbda": 5.0}, {"eta": 0.5, "lmbda": 0.5}]
    trials = make_trials({"cost": "cross-entropy"}, points, seeds=2, first_seed=3)
    assert len(trials) == 12 and len({t["id"] for t in trials}) == 12
    assert [t["seed"] for t in trials[:2]] == [3, 4]
    assert trials[0]["settings"]["cost"] == "cross-entropy" and trials[0]["settings"]["eta"] == 0.1
    assert all(t["settings"]["evaluate_on"] == "validation" for t in trials)   # selection needs validation


def test_random_points_are_log_uniform_within_range_and_deterministic_for_a_seed():
    ranges = parse_ranges(["eta=0.001:1", "lmbda=0:10", "mini_batch_size=1:100:log"])
    points = random_points(ranges, 400, seed=7, choices={"cost": ["quadratic", "cross-entropy"]})
    assert points == random_points(ranges, 400, seed=7, choices={"cost": ["quadratic", "cross-entropy"]})
    assert points != random_points(ranges, 400, seed=8, choices={"cost": ["quadratic", "cross-entropy"]})
    eta = np.array([p["eta"] for p in points])
    lmbda = np.array([p["lmbda"] for p in points])
    assert eta.min() >= 0.001 and eta.max() <= 1 and lmbda.min() >= 0 and lmbda.max() <= 10
    # Log-uniform: each decade holds about a third of the draws (uniform would put 90% in the last).
    per_decade = np.histogram(np.log10(eta), bins=[-3, -2, -1, 0])[0] / len(eta)
    np.testing.assert_allclose(per_decade, 1 / 3, atol=0.08)
    assert abs(np.mean(lmbda < 5) - 0.5) < 0.08                              # linear range: uniform
    assert all(isinstance(p["mini_batch_size"], int) and 1 <= p["mini_batch_size"] <= 100 for p in points)
    assert {p["cost"] for p in points} == {"quadratic", "cross-entropy"}
    with pytest.raises(SweepError, match="both"):
        random_points(ranges, 3, choices={"eta": [0.1]})


# ----- selection --------------------------------------------------------------------------------
def _result(eta, seed, validation, test):
    trial = make_trial({"eta": eta}, seed, params={"eta": eta})
    return {**trial, "best_validation_accuracy": validation, "test_accuracy_at_best_validation": test,
            "best_validation_epoch": 3, "seconds": 1.0}


def test_selection_uses_validation_only_even_when_test_disagrees():
    # eta=1.0 has the best test accuracy, eta=0.5 the best validation accuracy: 0.5 must win.
    results = [_result(1.0, 0, 0.950, 0.990), _result(0.5, 0, 0.960, 0.940), _result(0.1, 0, 0.900, 0.985),
               {**make_trial({"eta": 100.0}, 0, params={"eta": 100.0}), "error": "TrainingDivergedError: ..."}]
    ranked = rank(results)
    assert [r["params"]["eta"] for r in ranked] == [0.5, 1.0, 0.1, 100.0]
    best = select_best(results)
    assert best["params"] == {"eta": 0.5} and best["best_validation_accuracy"] == 0.960
    assert best["test_accuracy_at_best_validation"] == 0.940                   # reported, not used


def test_selection_over_seeds_uses_the_mean_validation_accuracy():
    # eta=1.0 has the single best seed (0.97) but the lower mean (0.93 vs 0.95).
    results = [_result(1.0, 0, 0.97, 0.9), _result(1.0, 1, 0.89, 0.9), _result(0.5, 0, 0.95, 0.9),
               _result(0.5, 1, 0.95, 0.9)]
    best = select_best(results)
    assert best["params"] == {"eta": 0.5} and best["seeds"] == 2
    assert best["mean_validation_accuracy"] == pytest.approx(0.95)
    assert select_best([{**make_trial({}, 0, params={}), "error": "x"}]) is None


def _parse_train(command: str):
    words = shlex.split(command.split("  #")[0])
    assert words[:2] == ["nndl", "train"]
    parser = argparse.ArgumentParser()
    add_training_flags(parser)
    args = parser.parse_args(words[2:])
    return settings_from_args(args)[0], args.seed


@pytest.mark.parametrize("recipe_id", [None, "ch3-l2-30"])
def test_best_command_line_parses_back_to_the_same_settings(recipe_id):
    base = load_recipe(recipe_id)["settings"] if recipe_id else settings_from({})
    settings = sweep_settings({**base, "epochs": 10, "eta": 0.25, "lmbda": 5.0, "sizes": [784, 100, 10],
                               "digits": [0, 1], "mini_batch_size": 20, "cost": "cross-entropy",
                               "monitor": ["evaluation_accuracy", "training_cost"], "schedule_floor": 1 / 1024})
    command = train_command(settings, recipe_id=recipe_id, seed=4, always=["eta"])
    parsed, seed = _parse_train(command)
    assert parsed == settings and seed == 4
    assert ("--recipe ch3-l2-30" in command) == bool(recipe_id) and "--eta 0.25" in command
    # A setting equal to the recipe's is left out unless asked for.
    assert "--eta" not in train_command(base, recipe_id=recipe_id)


# ----- a real sweep on local processes ----------------------------------------------------------
def test_local_sweep_from_the_cli_writes_ranked_results_and_resumes(tmp_path, capsys):
    from nndl.cli import sweep as sweep_cli

    parser = argparse.ArgumentParser()
    sweep_cli.register(parser.add_subparsers())
    out = str(tmp_path / "sweep")
    argv = ["sweep", "--sizes", "784,10,10", "--train-size", "500", "--epochs", "2", "--validation-size", "1000",
            "--grid", "eta=0.5,3", "lmbda=0,1", "--workers", "2", "--out", out, "--quiet"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    trials = read_jsonl(os.path.join(out, "trials.jsonl"))
    assert len(trials) == 4 and {r["worker"]["pid"] for r in trials}.isdisjoint({os.getpid()})   # in workers
    assert all(r["worker"]["blas_threads"] == max(1, available_cores() // 2) for r in trials)  # cores / workers
    for r in trials:
        assert set(r) >= {"settings", "seed", "params", "best_validation_accuracy", "best_validation_epoch",
                          "test_accuracy_at_best_validation", "seconds"}
    report = json.load(open(os.path.join(out, "results.json")))
    scores = [t["best_validation_accuracy"] for t in report["trials"]]
    assert scores == sorted(scores, reverse=True) and report["best"]["best_validation_accuracy"] == scores[0]
    best = report["trials"][0]
    # The winner's numbers are real: the same trial trained here gives the same accuracies.
    again = run_trial(make_trial(best["settings"], best["seed"]), None)
    assert again["best_validation_accuracy"] == best["best_validation_accuracy"]
    assert again["test_accuracy_at_best_validation"] == best["test_accuracy_at_best_validation"]
    # The printed command line trains exactly the winning settings.
    command = next(line.strip() for line in printed.splitlines() if line.strip().startswith("nndl train"))
    assert _parse_train(command) == (best["settings"], best["seed"])
    md = open(os.path.join(out, "results.md")).read()
    assert "| rank | eta | lmbda |" in md and command in md and "never used to choose" in md
    for p in ("eta", "lmbda"):
        assert open(os.path.join(out, f"sweep_{p}.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # Rerunning the finished sweep trains nothing and leaves the journal as it was.
    before = open(os.path.join(out, "trials.jsonl")).read()
    assert args.func(parser.parse_args(argv)) == 0
    assert "0 trial(s) trained now, 4 found finished" in capsys.readouterr().out
    assert open(os.path.join(out, "trials.jsonl")).read() == before


def test_cli_refuses_a_sweep_without_points_or_on_test_data(tmp_path):
    from nndl.cli import sweep as sweep_cli

    parser = argparse.ArgumentParser()
    sweep_cli.register(parser.add_subparsers())
    for extra, message in ([[], "nothing to sweep"], [["--range", "eta=0.1:1"], "add --random"],
                           [["--grid", "eta=1,2", "--evaluate-on", "test"], "validation"],
                           [["--grid", "eta=1,2", "--recipe", "ch6-ensemble"], "--recipe ch6-dropout"]):
        args = parser.parse_args(["sweep", "--out", str(tmp_path), *extra])
        with pytest.raises(SweepError, match=message):
            args.func(args)


def test_results_markdown_marks_failed_trials():
    results = rank([_result(0.5, 0, 0.96, 0.95),
                    {**make_trial({"eta": 1e30}, 0, params={"eta": 1e30}), "error": "TrainingDivergedError: boom"}])
    report = {"swept": ["eta"], "trials": results, "best": select_best(results), "points": 2, "seeds": 1,
              "base_command": "nndl train", "command": "nndl train --eta 0.5 --seed 0"}
    md = results_markdown(report)
    assert "| 1 | 0.5 | 0 | 96.00% | 3 | 95.00% | 1.0 |" in md
    assert "| 2 | 1e+30 | 0 | failed: TrainingDivergedError: boom" in md
    assert math.isclose(report["best"]["best_validation_accuracy"], 0.96)
