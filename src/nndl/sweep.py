"""Hyper-parameter sweeps (chapter 3, "How to choose a neural network's hyper-parameters?").

A sweep trains the same network under many settings: a grid (every combination of the listed
values) or a random search (``n`` points, each setting drawn from a range, log-uniformly where
the range spans a decade or more of positive values, as for eta and lmbda). Every trial is a full
training run with its own seed, monitored on the validation set; trials are **selected by
validation accuracy only**. The test accuracy at the epoch of best validation accuracy is
reported beside it and never used to choose (choosing on the test set would overfit it, which is
why the book holds out validation data).

``run_sweep`` runs the trials through ``nndl.executors`` (local processes or a Dask cluster) and
writes, in its output folder:

* ``trials.jsonl``: one line per finished trial (settings, seed, validation and test accuracy,
  seconds), appended as each finishes; rerunning the same sweep skips the trials already there;
* ``results.md`` and ``results.json``: the trials sorted by validation accuracy, the best
  settings and a ready ``nndl train`` command line for them;
* ``sweep_<param>.png``: validation accuracy against each swept setting (needs ``[plot]``).

Limits: only settings that have an ``nndl train`` flag can be swept (so the best command line
can always be written); with several seeds, settings are ranked by their mean validation accuracy
over the seeds (a diverged seed counts as 0).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import shlex
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from . import settings as schema
from .errors import NNDLError
from .executors import Executor, execute, make_trial
from .reports import markdown_table, percent
from .settings import BY_NAME, DEFAULTS, FLAG_SETTINGS, LIST_SETTINGS, SettingsError, canonical, format_value

SCORE = "best_validation_accuracy"
TEST_AT_SCORE = "test_accuracy_at_best_validation"
# Settings whose value is itself a comma list (LIST_SETTINGS) separate several values in --grid by "/".


class SweepError(NNDLError, ValueError):
    """A sweep definition (grid, range, settings) is wrong."""


# ----- parsing NAME=VALUES with the same types and checks as the `nndl train` flags --------------
def sweepable() -> tuple[str, ...]:
    """The settings a sweep may vary: those with an ``nndl train`` flag, but the monitored data set."""
    return tuple(name for name in FLAG_SETTINGS if BY_NAME[name].sweepable)


def check_sweepable(name: str) -> None:
    if name not in sweepable():
        why = " (a sweep always selects on validation data)" if name in BY_NAME and name in FLAG_SETTINGS else ""
        raise SweepError(f"cannot sweep {name!r}{why}; sweepable settings: {', '.join(sweepable())}")


def parse_value(name: str, text: str) -> Any:
    """``text`` converted and checked exactly as ``nndl train --<name> <text>`` would."""
    check_sweepable(name)
    try:
        return schema.parse_value(name, text)
    except SettingsError as exc:
        raise SweepError(str(exc)) from None


def _split_spec(spec: str, what: str, example: str) -> tuple[str, str]:
    name, sep, rest = spec.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not rest.strip():
        raise SweepError(f"{what} expects NAME=VALUES like {example}, got {spec!r}")
    return name, rest.strip()


def parse_grid(specs: Iterable[str]) -> dict[str, list]:
    """``["eta=0.1,0.5,1", "lmbda=0.1,1,5"]`` → ``{"eta": [0.1, 0.5, 1.0], "lmbda": [0.1, 1.0, 5.0]}``.
    List settings separate their values with "/": ``sizes=784,30,10/784,100,10``."""
    grid: dict[str, list] = {}
    for spec in specs:
        name, text = _split_spec(spec, "--grid", "eta=0.1,0.5,1")
        if name in grid:
            raise SweepError(f"--grid names {name} twice; give all its values in one NAME=V1,V2,...")
        values = []
        for part in text.split("/" if name in LIST_SETTINGS else ","):
            if part.strip():
                value = parse_value(name, part.strip())
                if value not in values:
                    values.append(value)
        grid[name] = values
    return grid


@dataclass(frozen=True)
class Range:
    """A range to draw a setting from: uniform in [lo, hi], or log-uniform (uniform in log)."""

    name: str
    lo: float
    hi: float
    log: bool = False
    integer: bool = False

    def sample(self, rng: np.random.Generator) -> float | int:
        u = rng.uniform(math.log(self.lo), math.log(self.hi)) if self.log else rng.uniform(self.lo, self.hi)
        value = math.exp(u) if self.log else u
        if self.integer:
            return int(min(max(round(value), self.lo), self.hi))
        return min(max(float(f"{value:.4g}"), self.lo), self.hi)   # 4 digits: readable tables and commands


def parse_range(spec: str) -> Range:
    """``"eta=0.01:1:log"`` → Range. Without ``:log``/``:linear`` the scale is log when lo > 0 and
    hi/lo ≥ 10 (a decade or more), linear otherwise."""
    name, text = _split_spec(spec, "--range", "eta=0.01:1:log")
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")):
        raise SweepError(f"--range expects NAME=LO:HI or NAME=LO:HI:log (or :linear), got {spec!r}")
    lo, hi = parse_value(name, parts[0]), parse_value(name, parts[1])
    if isinstance(lo, bool) or not isinstance(lo, (int, float)):
        raise SweepError(f"--range needs a numeric setting; {name} is not (use --grid {name}=A,B,...)")
    if not lo < hi:
        raise SweepError(f"--range {name}: LO must be below HI, got {lo} and {hi}")
    log = parts[2] == "log" if len(parts) == 3 else (lo > 0 and hi / lo >= 10)
    if log and lo <= 0:
        raise SweepError(f"--range {name}: a log scale needs LO > 0, got {lo}; use :linear or a positive LO")
    return Range(name, lo, hi, log=log, integer=isinstance(lo, int) and isinstance(hi, int))


def parse_ranges(specs: Iterable[str]) -> dict[str, Range]:
    ranges: dict[str, Range] = {}
    for spec in specs:
        r = parse_range(spec)
        if r.name in ranges:
            raise SweepError(f"--range names {r.name} twice")
        ranges[r.name] = r
    return ranges


# ----- the points of a sweep --------------------------------------------------------------------
def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, the first setting varying slowest."""
    if not grid or any(not values for values in grid.values()):
        raise SweepError(f"a grid needs at least one value per setting, got {grid}")
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def random_points(ranges: dict[str, Range], n: int, *, seed: int = 0,
                  choices: dict[str, list] | None = None) -> list[dict]:
    """``n`` points: each range sampled (log-uniform where its scale says), each of ``choices``
    picked uniformly from its list. The same seed always gives the same points."""
    choices = choices or {}
    if n < 1:
        raise SweepError(f"a random search needs at least 1 trial, got {n}")
    if not ranges and not choices:
        raise SweepError("a random search needs --range NAME=LO:HI[:log] (or --grid lists to pick from)")
    both = sorted(set(ranges) & set(choices))
    if both:
        raise SweepError(f"{', '.join(both)} given both as --range and --grid; give one")
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(n):
        point = {name: choices[name][int(rng.integers(len(choices[name])))] for name in sorted(choices)}
        point.update({name: ranges[name].sample(rng) for name in sorted(ranges)})
        points.append(point)
    return points


def sweep_settings(base: dict) -> dict:
    """``base`` completed from DEFAULTS, monitoring validation accuracy (what selection uses)."""
    completed = schema.settings_from(base)
    completed["evaluate_on"] = "validation"
    monitor = list(completed["monitor"] or [])
    if "evaluation_accuracy" not in monitor:
        monitor.append("evaluation_accuracy")
    completed["monitor"] = monitor
    return completed


def make_trials(base: dict, points: list[dict], *, seeds: int = 1, first_seed: int = 0) -> list[dict]:
    """One trial per (point, seed): settings = base updated with the point, seeds first_seed, ..."""
    base = sweep_settings(base)
    trials = []
    for point in points:
        for name in point:
            check_sweepable(name)
        for seed in range(first_seed, first_seed + seeds):
            trials.append(make_trial({**base, **point}, seed, params=dict(point)))
    return trials


# ----- selection and reports --------------------------------------------------------------------
def rank(results: Iterable[dict]) -> list[dict]:
    """Trials sorted by validation accuracy, best first; failed trials last. Never by test."""
    return sorted(results, key=lambda r: (r.get(SCORE) is None, -(r.get(SCORE) or 0.0)))


def select_best(results: Iterable[dict]) -> dict | None:
    """The settings with the highest mean validation accuracy over their seeds (a diverged seed
    counts as 0), and that setting's best-validation trial. The test accuracy plays no part."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(json.dumps(canonical(r.get("params", {})), sort_keys=True), []).append(r)
    best = None
    for members in groups.values():
        scores = [m.get(SCORE) for m in members]
        if all(s is None for s in scores):
            continue
        mean = float(np.mean([s or 0.0 for s in scores]))
        if best is None or mean > best[0]:
            best = (mean, members)
    if best is None:
        return None
    mean, members = best
    top = rank(members)[0]
    return {"params": top.get("params", {}), "settings": top["settings"], "seed": top["seed"], "id": top["id"],
            "mean_validation_accuracy": mean, "seeds": len(members), SCORE: top[SCORE],
            TEST_AT_SCORE: top.get(TEST_AT_SCORE)}


def train_command(settings: dict, *, recipe_id: str | None = None, seed: int | None = None,
                  always: Iterable[str] = ()) -> str:
    """The ``nndl train`` command line that trains with ``settings``: ``--recipe`` plus a flag for
    each setting that differs from the recipe (or from the defaults), and for those in ``always``
    (the swept ones, so the command shows them even at their default)."""
    from .recipes import load_recipe

    reference = load_recipe(recipe_id)["settings"] if recipe_id else schema.settings_from({})
    words = ["nndl", "train"] + (["--recipe", recipe_id] if recipe_id else [])
    missing = []
    always = set(always)
    for key in DEFAULTS:
        if key not in always and canonical(settings.get(key)) == canonical(reference.get(key)):
            continue
        if key in FLAG_SETTINGS and settings.get(key) is not None:
            words += [BY_NAME[key].flag, format_value(settings[key])]
        else:
            missing.append(f"{key}={settings.get(key)!r}")
    if seed is not None:
        words += ["--seed", str(seed)]
    command = shlex.join(words)
    return command + (f"  # and, without a flag: {', '.join(missing)}" if missing else "")


def _describe_params(params: dict) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items())


def results_markdown(report: dict) -> str:
    """The sweep's table (sorted by validation accuracy), the best settings and their command."""
    params, trials, best = report["swept"], report["trials"], report["best"]
    lines = [f"# Sweep over {' × '.join(params)}", "",
             f"Every trial: `{report['base_command']}` with the values below; "
             f"{len(trials)} trials ({report['points']} settings × {report['seeds']} seed(s)).",
             "Selection is by validation accuracy only; the test accuracy is the one at the trial's epoch of "
             "best validation accuracy, reported and never used to choose.", "",
             ]
    rows = []
    for i, t in enumerate(trials, 1):
        values = [format_value(t["params"].get(p, t["settings"].get(p))) for p in params]
        if t.get(SCORE) is None:
            rows.append([i, *values, t["seed"], f"failed: {t.get('error', '?')[:60]}", "—", "—", t.get("seconds", "—")])
        else:
            rows.append([i, *values, t["seed"], percent(t[SCORE]), t.get("best_validation_epoch"),
                         percent(t.get(TEST_AT_SCORE)), t.get("seconds")])
    lines += markdown_table(["rank", *params, "seed", "validation", "epoch", "test at that epoch", "seconds"], rows)
    if best:
        mean = f"mean over {best['seeds']} seed(s): {percent(best['mean_validation_accuracy'])}"
        lines += ["", f"**Best by validation**: {_describe_params(best['params'])}: validation "
                      f"{percent(best[SCORE])} ({mean}), test at that epoch {percent(best[TEST_AT_SCORE])}.",
                  "", "```", report["command"], "```"]
    for p, path in report.get("plots", {}).items():
        lines += ["", f"![validation accuracy against {p}]({os.path.basename(path)})"]
    return "\n".join(lines) + "\n"


def _plots(trials: list[dict], params: list[str], out: str, verbose: bool) -> dict[str, str]:
    scored = [t for t in trials if t.get(SCORE) is not None]
    if not scored:
        return {}
    try:
        from .plots import plot_sweep
    except ImportError as exc:  # matplotlib missing: the tables are still written
        if verbose:
            print(f"(plots skipped: {exc})")
        return {}
    paths = {}
    for p in params:
        try:
            paths[p] = plot_sweep(scored, p, os.path.join(out, f"sweep_{p}.png"), score=SCORE)
        except ImportError as exc:
            if verbose:
                print(f"(plots skipped: {exc})")
            return paths
    return paths


def _progress(result: dict, finished: int, total: int) -> None:
    where = f"{result['worker']['host']}:{result['worker']['pid']}"
    if result.get(SCORE) is None:
        print(f"[{finished}/{total}] {_describe_params(result['params'])}, seed {result['seed']}: "
              f"{result.get('error')} ({where})", flush=True)
        return
    print(f"[{finished}/{total}] {_describe_params(result['params'])}, seed {result['seed']}: validation "
          f"{percent(result[SCORE])} (epoch {result.get('best_validation_epoch')}), test at that epoch "
          f"{percent(result.get(TEST_AT_SCORE))}, {result.get('seconds')} s ({where})", flush=True)


def run_sweep(base: dict, points: list[dict], *, out: str, seeds: int = 1, first_seed: int = 0,
              recipe_id: str | None = None, workers: int | None = None, scheduler: str | None = None,
              executor: Executor | None = None, data_dir: str | None = None, verbose: bool = True) -> dict:
    """Train ``base`` updated with each point, for ``seeds`` seeds each; write the reports to ``out``.

    Trials run through ``executor`` (kept open), or a Dask cluster at ``scheduler``, or local
    processes (``workers``, default one per core). Finished trials (in ``out/trials.jsonl``) are
    not run again. Returns the report: ``trials`` (ranked), ``best``, ``command``, ``executed``
    (trials trained by this call), ``skipped`` (found finished), ``plots``.
    """
    if not points:
        raise SweepError("a sweep needs at least one point (a --grid or a --random search)")
    if seeds < 1:
        raise SweepError(f"seeds must be at least 1, got {seeds}")
    base = sweep_settings(base)
    swept = list(dict.fromkeys(name for point in points for name in point))
    trials = make_trials(base, points, seeds=seeds, first_seed=first_seed)
    os.makedirs(out, exist_ok=True)
    if verbose:
        print(f"nndl sweep: {len(trials)} trials over {', '.join(swept)} → {out}", flush=True)
    done = execute(trials, journal=os.path.join(out, "trials.jsonl"), executor=executor, workers=workers,
                   scheduler=scheduler, data_dir=data_dir, on_result=_progress if verbose else None)
    ranked = rank(done["results"])
    best = select_best(ranked)
    n_points = len({json.dumps(canonical(p), sort_keys=True) for p in points})
    report = {"swept": swept, "recipe": recipe_id, "seeds": seeds, "points": n_points, "base": base,
              "base_command": train_command(base, recipe_id=recipe_id),
              "trials": ranked, "best": best,
              "command": train_command(best["settings"], recipe_id=recipe_id, seed=best["seed"], always=swept)
              if best else None,
              "executed": done["executed"], "skipped": done["skipped"]}
    report["plots"] = _plots(ranked, swept, out, verbose)
    _write_reports(out, report)
    return report


def _write_reports(out: str, report: dict) -> None:
    from .files import atomic_write_bytes

    atomic_write_bytes(os.path.join(out, "results.json"), json.dumps(report, indent=1).encode())
    atomic_write_bytes(os.path.join(out, "results.md"), results_markdown(report).encode())


__all__ = ["LIST_SETTINGS", "Range", "SCORE", "SweepError", "check_sweepable", "grid_points", "make_trials",
           "parse_grid", "parse_range", "parse_ranges", "parse_value", "random_points", "rank", "results_markdown",
           "run_sweep", "select_best", "sweep_settings", "sweepable", "train_command"]
