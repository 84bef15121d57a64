"""Hyper-parameter sweeps: validation accuracy against one swept setting, a point per trial
(chapter 3's heuristics for choosing η, λ and the mini-batch size)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from ._common import PathLike, _figure, _number, _save

SCORE_KEYS = ("validation_accuracy", "evaluation_accuracy", "best_validation_accuracy", "accuracy")


def _trial_value(trial: Mapping, key: str) -> Any:
    """``trial[key]``, or ``trial["params"][key]`` (a sweep records its settings under params)."""
    if key in trial:
        return trial[key]
    params = trial.get("params")
    if isinstance(params, Mapping) and key in params:
        return params[key]
    return None


def wants_log_axis(values: Any) -> bool:
    """True when positive ``values`` span two decades or more (η from 0.01 to 1, say)."""
    v = np.asarray(values, dtype=np.float64)
    return bool(v.size and v.min() > 0 and v.max() / v.min() >= 100)


def plot_sweep(trials: Iterable[Mapping], param: str, out: PathLike, *, score: str | None = None,
               title: str | None = None) -> str:
    """Validation accuracy (percent) against the swept ``param``, one point per trial.

    Each trial is a mapping with ``param`` (at the top level or under ``"params"``) and a score:
    ``score`` if given, else the first of ``validation_accuracy``, ``evaluation_accuracy``,
    ``best_validation_accuracy``, ``accuracy`` it has. Trials without a score (failed or diverged)
    are left out. The best trial per value is joined by a line; the x-axis is logarithmic when
    the values span two decades or more; non-numeric values (optimiser names) are categories.
    """
    trials = list(trials)
    points = []
    for trial in trials:
        if not isinstance(trial, Mapping):
            raise ValueError(f"each trial must be a mapping (dict), got {type(trial).__name__}")
        value = _trial_value(trial, param)
        scored = [_number(trial.get(k)) for k in ([score] if score else SCORE_KEYS)]
        s = next((v for v in scored if v is not None), None)
        if value is not None and s is not None:
            points.append((value, s))
    if not points:
        raise ValueError(f"no trial has both {param!r} and a score ({score or ' / '.join(SCORE_KEYS)}); "
                         f"got {len(trials)} trials")
    values, scores = [v for v, _ in points], np.array([s for _, s in points]) * 100
    numeric = all(_number(v) is not None for v in values)
    fig = _figure(6.5, 4.5)
    ax = fig.subplots()
    if numeric:
        xs = np.array(values, dtype=np.float64)
        if wants_log_axis(xs):
            ax.set_xscale("log")
    else:
        categories = sorted({str(v) for v in values})
        xs = np.array([categories.index(str(v)) for v in values], dtype=np.float64)
        ax.set_xticks(range(len(categories)), categories)
    ax.scatter(xs, scores, color="C0", alpha=0.6, zorder=3, label="trials")
    uniq = np.unique(xs)
    best = np.array([scores[xs == u].max() for u in uniq])      # one value per distinct setting
    ax.plot(uniq, best, color="C1", marker="o", label="best per value")
    ax.set_xlabel(param)
    ax.set_ylabel(f"{(score or 'validation_accuracy').replace('_', ' ')} (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title if title is not None else f"sweep over {param} ({len(points)} trials)")
    fig.tight_layout()
    return _save(fig, out)
