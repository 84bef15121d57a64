"""``nndl reproduce``: run the book's experiments and compare with the book's numbers.

For each recipe and seed the run's metrics go to ``OUT/<id>/seed<k>.jsonl``, its training state
to ``OUT/<id>/seed<k>/`` (so an interrupted run resumes where it stopped) and its result to
``OUT/<id>/seed<k>.json`` (so a finished seed is never run again). After each row
``OUT/results.json`` and ``OUT/results.md`` are rewritten (atomically).
"""
from __future__ import annotations

import json
import os
import statistics
from typing import Any, Callable

from ..files import atomic_write_bytes
from ..models.io import load, read_metadata
from . import RecipeError, checkpoint_of_this_run, load_recipe, measured, run, same_experiment, settings_from


def _seed_paths(out: str, recipe_id: str, seed: int) -> dict[str, str]:
    base = os.path.join(out, recipe_id)
    return {"result": os.path.join(base, f"seed{seed}.json"), "metrics": os.path.join(base, f"seed{seed}.jsonl"),
            "checkpoint": os.path.join(base, f"seed{seed}"), "model": os.path.join(base, f"seed{seed}.npz")}


def run_seed(recipe: dict, seed: int, out: str, *, overrides: dict, data_dir: str | None, verbose: bool) -> dict:
    """One seed of one recipe, resumable; returns its result (with ``measured``). A finished or
    checkpointed run of other settings in the same place is refused, never reused or overwritten."""
    paths = _seed_paths(out, recipe["id"], seed)
    settings = settings_from({**recipe["settings"], **overrides})
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


def _saved_settings(model_path: str) -> dict | None:
    """The settings a saved network records, or None (no file, damaged, or none recorded)."""
    try:
        saved = read_metadata(model_path).get("settings")
    except (ValueError, OSError):
        return None
    return saved if isinstance(saved, dict) else None


def finished_run(out: str, recipe_id: str, seed: int, settings: dict) -> dict | None:
    """The finished ``nndl reproduce`` run of ``recipe_id`` and ``seed`` in OUT, if its saved network
    was trained with exactly ``settings`` (those of ``recipes.settings_from``; the machine settings,
    device and threads, may differ): ``{"save": model path, "seconds", "epochs_run"}``. None if it
    is absent, unfinished, damaged or trained otherwise. ``nndl reproduce``'s ensemble runner uses it
    so that a member already trained as a row of its own (e.g. ch6-dropout seed 0 for ch6-ensemble)
    is not trained twice."""
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


def reproduce(recipe_ids: list[str], *, seeds: int = 1, out: str = "runs/reproduce", overrides: dict | None = None,
              data_dir: str | None = None, verbose: bool = True,
              runners: dict[str, Callable[..., dict]] | None = None) -> list[dict]:
    """Run each recipe for ``seeds`` seeds; write and return the rows of results.json."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    rows = _read_rows(out)
    for recipe_id in recipe_ids:
        recipe = load_recipe(recipe_id)
        kind = recipe.get("kind", "network")
        if kind != "network":
            runner = (runners or {}).get(kind) or _special_runner(kind)
            results = [runner(recipe, seed=s, out=out, overrides=overrides, data_dir=data_dir, verbose=verbose)
                       for s in range(seeds if kind != "baseline" else 1)]
        else:
            results = []
            for s in range(seeds):
                if verbose:
                    print(f"== {recipe_id}, seed {s}: {recipe['description']}", flush=True)
                results.append(run_seed(recipe, s, out, overrides=overrides, data_dir=data_dir, verbose=verbose))
        rows = [r for r in rows if r["id"] != recipe_id] + [_row(recipe, results, overrides)]
        _write(out, rows)
    return rows


def _special_runner(kind: str) -> Callable[..., dict]:
    if kind == "baseline":
        from ..baselines import run_baseline

        def baseline(recipe, *, seed, out, overrides, data_dir, verbose):
            res = run_baseline(recipe["id"], train_size=overrides.get("train_size"), data_dir=data_dir)
            return {"measured": res["accuracy"], "seconds": res["seconds"], "epochs_run": 0}
        return baseline
    if kind == "ensemble":
        from ..ensemble import reproduce_ensemble

        return reproduce_ensemble
    raise ValueError(f"unknown recipe kind {kind!r}")


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
    row["difference"] = (row["measured_best"] - row["book"]) if values and row["book"] is not None else None
    return row


def _recipe_epochs(recipe: dict) -> int | None:
    """Epochs of the recipe's training (of its members', for an ensemble; None for baselines)."""
    if recipe.get("kind") == "ensemble":
        recipe = load_recipe(recipe["members"])
    elif recipe.get("kind") == "baseline":
        return None
    return recipe["settings"]["epochs"]


def _read_rows(out: str) -> list[dict]:
    path = os.path.join(out, "results.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return []


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


def results_markdown(rows: list[dict]) -> str:
    lines = ["| id | metric | book | measured (best) | mean ± sd | seeds | epochs | Δ vs book | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        spread = "—" if r["measured_mean"] is None else f"{_pct(r['measured_mean'])} ± {100 * r['measured_std']:.2f}"
        diff = "—" if r["difference"] is None else f"{100 * r['difference']:+.2f}"
        lines.append(f"| {r['id']} | {r['metric']} | {_pct(r['book'])} | {_pct(r['measured_best'])} | {spread} | "
                     f"{r['seeds']} | {r['epochs'] or '—'} | {diff} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def _write(out: str, rows: list[dict]) -> None:
    atomic_write_bytes(os.path.join(out, "results.json"), json.dumps(rows, indent=1).encode())
    atomic_write_bytes(os.path.join(out, "results.md"), results_markdown(rows).encode())
