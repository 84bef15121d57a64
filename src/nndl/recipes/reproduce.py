"""``nndl reproduce``: run the book's experiments (recipes) and compare with the book's numbers.

Each kind of recipe has one runner, ``runner(recipe, seed=, out=, overrides=, data_dir=, verbose=)
-> {"measured", "seconds", "epochs_run", ...}``:

* ``network``: one training run (``nndl.experiment.run``). Its metrics go to
  ``OUT/<id>/seed<k>.jsonl``, its training state to ``OUT/<id>/seed<k>/`` (so an interrupted run
  resumes where it stopped) and its result to ``OUT/<id>/seed<k>.json`` (so a finished seed is
  never run again);
* ``ensemble``: ``n_members`` networks of the ``members`` recipe, voting (``nndl.ensemble``);
  members that ``nndl reproduce <members>`` already trained in OUT with the same settings and seeds
  are used as they are, so ``nndl reproduce ch6-dropout ch6-ensemble`` trains five networks, not six;
* ``baseline``: the non-network baselines (``nndl.baselines``), one run.

After each row ``OUT/results.json`` and ``OUT/results.md`` are rewritten (atomically).
"""
from __future__ import annotations

import json
import os
import re
import statistics
from typing import Any

from ..experiment import checkpoint_of_this_run, run
from ..files import atomic_write_bytes
from ..models.io import load, read_metadata
from ..reports import markdown_table, percent
from ..settings import same_experiment, settings_from
from . import RecipeError, load_recipe, measured


def _seed_paths(out: str, recipe_id: str, seed: int) -> dict[str, str]:
    base = os.path.join(out, recipe_id)
    return {"result": os.path.join(base, f"seed{seed}.json"), "metrics": os.path.join(base, f"seed{seed}.jsonl"),
            "checkpoint": os.path.join(base, f"seed{seed}"), "model": os.path.join(base, f"seed{seed}.npz")}


def describe(recipe: dict, overrides: dict) -> str:
    """The recipe's description as this run trains it: ``--epochs`` replaces the epochs the
    description names (``60 epochs`` → ``1 epoch (--epochs 1; the recipe: 60)``), other overrides
    are listed after it."""
    text = recipe["description"]
    if "epochs" in overrides:
        n = int(overrides["epochs"])
        new = f"{n} epoch{'s' if n != 1 else ''} (--epochs {n}; the recipe: {_recipe_epochs(recipe)})"
        text, found = re.subn(r"\b\d+ epochs\b", new, text)
        if not found:
            text += f", {new}"
    others = [f"--{k.replace('_', '-')} {v}" for k, v in overrides.items() if k != "epochs"]
    return text + (f" (with {' '.join(others)})" if others else "")


# ----- the runners ------------------------------------------------------------------------------
def run_seed(recipe: dict, seed: int, out: str, *, overrides: dict, data_dir: str | None, verbose: bool) -> dict:
    """One seed of one network recipe, resumable; returns its result (with ``measured``). A finished
    or checkpointed run of other settings in the same place is refused, never reused or overwritten."""
    paths = _seed_paths(out, recipe["id"], seed)
    settings = settings_from({**recipe["settings"], **overrides})
    if verbose:
        print(f"== {recipe['id']}, seed {seed}: {describe(recipe, overrides)}", flush=True)
    if os.path.exists(paths["result"]):
        saved = _saved_settings(paths["model"])
        if saved is not None and not same_experiment(saved, settings):
            raise RecipeError(f"{paths['result']} is a finished run of {recipe['id']} with other settings; "
                              f"give this one another --out folder")
        with open(paths["result"]) as f:
            return json.load(f)
    os.makedirs(paths["checkpoint"], exist_ok=True)
    resume = checkpoint_of_this_run(paths["checkpoint"], settings, seed)
    result = run(settings, seed, data_dir=data_dir, verbose=verbose, metrics=paths["metrics"],
                 checkpoint=paths["checkpoint"], resume=resume, save=paths["model"])
    result["measured"] = measured(result, recipe["metric"])
    result.pop("history", None)
    atomic_write_bytes(paths["result"], json.dumps(result, indent=1).encode())
    return result


def run_ensemble(recipe: dict, seed: int, out: str, *, overrides: dict, data_dir: str | None, verbose: bool,
                 workers: int | None = None, scheduler: str | None = None) -> dict:
    """``n_members`` networks of recipe ``members`` (seed s uses member seeds s·n … s·n + n − 1,
    so seed 0 matches ``nndl ensemble``); ``measured`` is the vote's test accuracy."""
    from ..ensemble import report_lines, train_ensemble

    if "members" not in recipe:
        raise RecipeError(f"ensemble recipe {recipe.get('id')!r} needs members = \"<recipe id>\"")
    n_members = int(recipe.get("n_members", 5))
    settings = settings_from({**load_recipe(recipe["members"])["settings"], **overrides})
    folder = os.path.join(out, recipe["id"], f"seed{seed}")
    if verbose:
        print(f"== {recipe['id']}, seed {seed}: {n_members} × {recipe['members']} → {folder}"
              f"{'' if not overrides else ': ' + describe(load_recipe(recipe['members']), overrides)}", flush=True)
    first_seed = seed * n_members
    reuse = {k: run for k in range(n_members)
             if (run := finished_run(out, recipe["members"], first_seed + k, settings)) is not None}
    if verbose and reuse:
        print(f"using {len(reuse)} finished {recipe['members']} run(s) from {os.path.join(out, recipe['members'])}: "
              f"seeds {', '.join(str(first_seed + k) for k in sorted(reuse))}", flush=True)
    report = train_ensemble(settings, n_members, out=folder, first_seed=first_seed, workers=workers,
                            scheduler=scheduler, data_dir=data_dir, verbose=verbose, reuse=reuse)
    if verbose:
        print("\n".join(report_lines(report)), flush=True)
    return {"measured": report["vote_accuracy"], "seconds": report["seconds"], "epochs_run": report["epochs_run"],
            "seed": seed, "vote_errors": report["vote_errors"], "averaged_accuracy": report["averaged_accuracy"],
            "member_accuracies": [m["test_accuracy"] for m in report["members"]]}


def run_baseline(recipe: dict, seed: int, out: str, *, overrides: dict, data_dir: str | None,
                 verbose: bool) -> dict:
    """A baseline row (its training is deterministic: one run whatever the seeds)."""
    from ..baselines import run_baseline as baseline
    from ..experiment import quick_train_size

    result = baseline(recipe["id"], train_size=quick_train_size(overrides.get("train_size")), data_dir=data_dir)
    return {"measured": result["accuracy"], "seconds": result["seconds"], "epochs_run": 0}


RUNNERS = {"network": run_seed, "ensemble": run_ensemble, "baseline": run_baseline}


def _saved_settings(model_path: str) -> dict | None:
    """The settings a saved network records, or None (no file, damaged, or none recorded)."""
    try:
        saved = read_metadata(model_path).get("settings")
    except (ValueError, OSError):
        return None
    return saved if isinstance(saved, dict) else None


def finished_run(out: str, recipe_id: str, seed: int, settings: dict) -> dict | None:
    """The finished ``nndl reproduce`` run of ``recipe_id`` and ``seed`` in OUT, if its saved network
    was trained with exactly ``settings`` (the machine settings may differ): ``{"save": model path,
    "seconds", "epochs_run"}``. None if it is absent, unfinished, damaged or trained otherwise."""
    paths = _seed_paths(out, recipe_id, seed)
    if not (os.path.exists(paths["result"]) and os.path.exists(paths["model"])):
        return None
    try:
        meta = load(paths["model"]).metadata     # the whole file: a damaged one is trained again
        with open(paths["result"]) as f:
            result = json.load(f)
    except (ValueError, OSError):          # damaged (ModelFileError, bad JSON): train it again
        return None
    saved = meta.get("settings")
    if meta.get("seed") != seed or not isinstance(saved, dict) or not same_experiment(saved, settings):
        return None
    return {"save": os.path.abspath(paths["model"]), "seconds": result.get("seconds"),
            "epochs_run": result.get("epochs_run")}


# ----- the table --------------------------------------------------------------------------------
def reproduce(recipe_ids: list[str], *, seeds: int = 1, out: str = "runs/reproduce", overrides: dict | None = None,
              data_dir: str | None = None, verbose: bool = True) -> list[dict]:
    """Run each recipe for ``seeds`` seeds; write and return the rows of results.json."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    rows = _read_rows(out)
    for recipe_id in recipe_ids:
        recipe = load_recipe(recipe_id)
        runner = RUNNERS[recipe["kind"]]
        results = [runner(recipe, s, out, overrides=overrides, data_dir=data_dir, verbose=verbose)
                   for s in range(seeds if recipe["kind"] != "baseline" else 1)]
        rows = [r for r in rows if r["id"] != recipe_id] + [_row(recipe, results, overrides)]
        _write(out, rows)
    return rows


def _row(recipe: dict, results: list[dict], overrides: dict) -> dict[str, Any]:
    values = [r["measured"] for r in results if r.get("measured") is not None]
    row = {
        "id": recipe["id"],
        "description": recipe["description"],
        "metric": recipe["metric"],
        "book": recipe.get("book"),
        "measured_best": max(values) if values else None,
        "measured_mean": statistics.fmean(values) if values else None,
        "measured_std": statistics.stdev(values) if len(values) > 1 else 0.0 if values else None,
        "per_seed": values,
        "seeds": len(results),
        "epochs": overrides.get("epochs", _recipe_epochs(recipe)),
        "overrides": overrides,
        "seconds": round(sum(r.get("seconds", 0.0) for r in results), 1),
    }
    if results and all("training_seconds" in r for r in results):     # per seed: each its own time to accuracy
        row["training_seconds"] = [r["training_seconds"] for r in results]
    row["difference"] = (row["measured_best"] - row["book"]) if values and row["book"] is not None else None
    return row


def _recipe_epochs(recipe: dict) -> int | None:
    """Epochs of the recipe's training (of its members', for an ensemble; None for baselines)."""
    if recipe["kind"] == "ensemble":
        recipe = load_recipe(recipe["members"])
    elif recipe["kind"] == "baseline":
        return None
    return recipe["settings"]["epochs"]


def _read_rows(out: str) -> list[dict]:
    path = os.path.join(out, "results.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return []


def rows_markdown(rows: list[dict]) -> str:
    """The rows as the table of results.md: measured against the book."""
    cells = []
    for r in rows:
        spread = "—" if r["measured_mean"] is None else f"{percent(r['measured_mean'])} ± {100 * r['measured_std']:.2f}"
        diff = "—" if r["difference"] is None else f"{100 * r['difference']:+.2f}"
        cells.append([r["id"], r["metric"], percent(r["book"]), percent(r["measured_best"]), spread, r["seeds"],
                      r["epochs"] or "—", diff, r["seconds"]])
    header = ["id", "metric", "book", "measured (best)", "mean ± sd", "seeds", "epochs", "Δ vs book", "seconds"]
    return "\n".join(markdown_table(header, cells)) + "\n"


def _write(out: str, rows: list[dict]) -> None:
    atomic_write_bytes(os.path.join(out, "results.json"), json.dumps(rows, indent=1).encode())
    atomic_write_bytes(os.path.join(out, "results.md"), rows_markdown(rows).encode())
