"""The book's experiments as recipes: small TOML files in this folder, and their loading.

A recipe has an ``id``, a ``description``, the book's result (``book``, as a fraction, and
``metric``: which accuracy the book reports for that row) and a ``[settings]`` table with the names
of ``nndl.settings`` (the ``nndl train`` flags: ``sizes``, ``eta``, ...), checked as the flags are.
``kind = "ensemble"`` recipes name their ``members`` recipe and ``n_members``; ``kind = "baseline"``
rows run a non-network baseline. ``nndl.experiment.run`` trains a recipe's settings;
``nndl.recipes.reproduce`` runs whole rows and compares them with the book.

Metrics, as in the book: ``test`` rows report the best test accuracy over the epochs (chapters 1
and 3 monitor the test set); ``validation`` rows the best validation accuracy;
``test-at-best-validation`` rows (chapter 6) the test accuracy at the epoch of best validation
accuracy.
"""
from __future__ import annotations

import sys
from importlib import resources

from ..errors import RecipeError
from ..settings import settings_from

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

METRICS = ("test", "validation", "test-at-best-validation")
KINDS = ("network", "ensemble", "baseline")


def recipe_ids() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def load_recipe(recipe_id: str) -> dict:
    """The recipe ``recipe_id`` as a dict with ``settings`` completed from the defaults."""
    if recipe_id not in recipe_ids():
        raise RecipeError(f"unknown recipe {recipe_id!r}; `nndl reproduce --list` shows them: "
                          f"{', '.join(recipe_ids())}")
    recipe = tomllib.loads(resources.files(__name__).joinpath(recipe_id + ".toml").read_text())
    recipe["settings"] = settings_from(recipe.get("settings", {}))
    recipe.setdefault("metric", "test")
    recipe.setdefault("kind", "network")
    if recipe["metric"] not in METRICS:
        raise RecipeError(f"recipe {recipe_id}: metric must be one of {METRICS}")
    if recipe["kind"] not in KINDS:
        raise RecipeError(f"recipe {recipe_id}: kind must be one of {KINDS}")
    return recipe


def measured(result: dict, metric: str) -> float | None:
    """The number a recipe's ``metric`` names, from an ``experiment.run`` result."""
    key = {"test": "best_test_accuracy", "validation": "best_validation_accuracy",
           "test-at-best-validation": "test_accuracy_at_best_validation"}[metric]
    return result.get(key)


__all__ = ["KINDS", "METRICS", "RecipeError", "load_recipe", "measured", "recipe_ids"]
