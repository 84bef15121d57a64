"""Recipes beyond the book (issue 17): the time-to-accuracy records load, are selected on the
validation set, and run a short epoch through `nndl reproduce`, writing the seconds they trained."""
import json

import pytest

from nndl.cli import main
from nndl.recipes import load_recipe

FAST = ("fast-99", "fast-995")
BEYOND = ("beyond-wide", "beyond-elastic", "beyond-average")
ENSEMBLES = ("beyond-ensemble",)


@pytest.mark.parametrize("recipe_id", FAST)
def test_a_time_to_accuracy_recipe_selects_on_validation_and_uses_a_schedule(recipe_id):
    recipe = load_recipe(recipe_id)
    settings = recipe["settings"]
    assert recipe["metric"] == "test-at-best-validation" and settings["evaluate_on"] == "validation"
    assert settings["schedule"] == "one-cycle" and settings["optimizer"] == "momentum"
    assert "beyond the book" in recipe["description"]


@pytest.mark.parametrize("recipe_id", FAST)
def test_a_time_to_accuracy_recipe_runs_and_writes_its_training_seconds(recipe_id, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", recipe_id, "--epochs", "1", "--train-size", "500", "--out", str(out), "--quiet"]) == 0
    (row,) = json.loads((out / "results.json").read_text())
    assert row["id"] == recipe_id and row["epochs"] == 1
    assert 0.3 < row["measured_best"] <= 1              # learnt something from 500 images in one epoch
    (seconds,) = row["training_seconds"]
    assert 0 < seconds <= row["seconds"]                 # training alone, within the run's wall time
    seed = json.loads((out / recipe_id / "seed0.json").read_text())
    assert seed["training_seconds"] == seconds and seed["best_validation_epoch"] == 0


@pytest.mark.parametrize("recipe_id", BEYOND)
def test_a_recipe_beyond_the_book_selects_on_validation_and_runs_a_short_epoch(recipe_id, tmp_path, capsys):
    recipe = load_recipe(recipe_id)
    assert recipe["settings"]["evaluate_on"] == "validation" and recipe["settings"]["augment"]
    out = tmp_path / "rep"
    assert main(["reproduce", recipe_id, "--epochs", "1", "--train-size", "500", "--out", str(out), "--quiet"]) == 0
    (row,) = json.loads((out / "results.json").read_text())
    assert row["metric"] == "test-at-best-validation" and 0.3 < row["measured_best"] <= 1


def test_the_list_names_the_published_results_each_recipe_beyond_the_book_builds_on(capsys):
    assert main(["reproduce", "--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    for recipe_id in (*FAST, *BEYOND, *ENSEMBLES):
        at = next(i for i, line in enumerate(listing) if line.startswith(recipe_id + " "))
        assert listing[at + 1].strip() == f"references: {load_recipe(recipe_id)['references']}"


@pytest.mark.parametrize("recipe_id", ENSEMBLES)
def test_an_ensemble_beyond_the_book_votes_members_of_a_recipe_beyond_it(recipe_id):
    recipe = load_recipe(recipe_id)
    assert recipe["kind"] == "ensemble" and recipe["n_members"] >= 5
    assert load_recipe(recipe["members"])["settings"]["evaluate_on"] == "validation"   # members select on validation
