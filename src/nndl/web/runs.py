"""The runs under a folder, read-only, for ``nndl serve --runs DIR`` (the page's Runs tab).

A *run* is a metrics file (``*.jsonl``, one JSON object per epoch, as ``train.MetricsLog`` writes
for ``nndl train --metrics`` and ``nndl reproduce --out``). Its id is its path under DIR without
``.jsonl`` (``reproduce/ch1-30/seed0``). Beside it nndl may have left:

- a checkpoint: ``<stem>/checkpoint.npz`` (``nndl reproduce``'s ``OUT/<id>/seed<k>/``) or
  ``checkpoint.npz`` in the metrics file's own folder (``nndl train --metrics D/metrics.jsonl
  --checkpoint D``); its record holds the run's settings (epochs, η, ...), its next epoch and why it
  stopped early, if it did. It is read with ``nndl.models.io``'s reader: JSON, never pickle.
- a result: ``<stem>.json`` (``nndl reproduce``'s ``seed<k>.json``, written when the seed is done);
- ``results.json`` one or two folders up (``nndl reproduce``): the book's number for the recipe.

**Status**, decided in this order (nndl writes no "finished" marker of its own):

1. ``diverged``: a row holds NaN or an infinity, or a row or the result records an ``error`` or
   ``"diverged": true`` (nndl's trainer writes that row for the epoch it stopped at for diverging).
2. ``finished``: the result file exists, or the checkpoint says the run ended early (early
   stopping) or has trained all its epochs, or the rows reach the planned epochs.
3. ``running``: the metrics file or the checkpoint changed within the last ``max(120 s, 3 x the
   slowest epoch)`` (15 minutes before the first epoch's line).
4. otherwise ``stopped`` when the planned epochs are known and not reached (killed, crashed or
   diverged), and ``finished`` when nothing says how many epochs were planned.

Nothing here writes: files are opened for reading only, and an id is served only if it is one of
the runs found by walking DIR (symbolic links are not followed, and a file whose real path lies
outside DIR is not a run), so ``../``, absolute paths and links out of DIR are refused.
"""
from __future__ import annotations

import functools
import json
import math
import os
import time
from pathlib import Path

from ..train.checkpoint import FILENAME as CHECKPOINT
from ..train.checkpoint import read_checkpoint_meta

METRIC_KEYS = ("eta", "training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy",
               "test_accuracy", "seconds")
JOURNALS = ("trials.jsonl", "members.jsonl")     # sweeps' and ensembles' journals, not epoch logs
MAX_FILE = 32 * 2**20         # bytes read of a metrics file at most (a run of 10,000 epochs is ~2 MB)
MAX_RUNS = 2000               # runs listed at most (a folder with more is listed in part)
RECENT_MIN, RECENT_FIRST = 120.0, 900.0   # seconds: see "running" above


class RunNotFound(LookupError):
    """An id that is not one of the runs under the folder (including any path out of it)."""


def _finite(value):
    """A JSON number as the page can take it: NaN and infinities become None (and flag divergence)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value if value is None or isinstance(value, str) else None
    return value if math.isfinite(value) else None


def read_rows(path: Path) -> tuple[list[dict], bool]:
    """The epoch rows of a metrics file, and whether one of them records a divergence.

    Each row keeps ``epoch`` and the ``METRIC_KEYS`` (non-finite numbers → None). Lines that do not
    parse (a line being written, or torn by a kill) and objects without an integer ``epoch`` are
    skipped."""
    with open(path, "rb") as f:
        data = f.read(MAX_FILE)
    rows, diverged = [], False
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)       # Python's json reads NaN and Infinity as floats
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict) or isinstance(record.get("epoch"), bool) \
                or not isinstance(record.get("epoch"), int):
            continue
        values = {k: record.get(k) for k in METRIC_KEYS}
        if any(isinstance(v, float) and not math.isfinite(v) for v in values.values()) \
                or record.get("diverged") is True or "error" in record:
            diverged = True
        rows.append({"epoch": record["epoch"], **{k: _finite(v) for k, v in values.items()}})
    return rows, diverged


def _looks_like_metrics(path: Path) -> bool:
    """A ``.jsonl`` file that is empty (a run before its first epoch) or opens with an epoch row."""
    if path.name in JOURNALS:
        return False
    with open(path, "rb") as f:
        head = f.readline(65536)
    if not head.strip():
        return True
    try:
        first = json.loads(head)
    except (ValueError, RecursionError):
        return False
    return isinstance(first, dict) and "epoch" in first and any(k in first for k in METRIC_KEYS)


class RunsFolder:
    """The runs under ``root``; every answer is computed from the files as they are now.

    The checkpoints' and results' JSON is cached by (size, modification time), so polling a folder
    of many finished runs costs a walk and a ``stat`` per file."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"--runs {root}: no such folder")
        self._cache: dict[Path, tuple[tuple[int, int], object]] = {}

    # ----- finding runs ---------------------------------------------------------------------------
    def _metrics_files(self) -> dict[str, Path]:
        """id → metrics file, for every run under the root (links not followed, real paths inside)."""
        found: dict[str, Path] = {}
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.endswith(".jsonl") or name.startswith("."):
                    continue
                path = Path(folder) / name
                try:
                    real = path.resolve(strict=True)
                    if path.is_symlink() or not real.is_relative_to(self.root) or not _looks_like_metrics(real):
                        continue
                except OSError:
                    continue
                found[real.relative_to(self.root).as_posix()[:-len(".jsonl")]] = real
                if len(found) >= MAX_RUNS:
                    return found
        return found

    def resolve(self, run_id: str) -> Path:
        """The metrics file of the run ``run_id``; RunNotFound for anything else (``..``, absolute
        paths, links out of the folder, files that are not runs)."""
        parts = run_id.split("/")
        if not run_id or "\x00" in run_id or run_id.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise RunNotFound(f"no run {run_id!r} under the runs folder")
        candidate = (self.root / (run_id + ".jsonl"))
        files = self._metrics_files()
        if run_id not in files or files[run_id] != candidate.resolve():
            raise RunNotFound(f"no run {run_id!r} under the runs folder")
        return files[run_id]

    # ----- what is beside a run ---------------------------------------------------------------------
    def _cached(self, path: Path, read):
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_size, st.st_mtime_ns)
        hit = self._cache.get(path)
        if hit is None or hit[0] != key:
            try:
                value = read(path)
            except (OSError, ValueError, KeyError, TypeError):  # being replaced, or not nndl's: no settings
                return None                                     # (not kept: asked again next time)
            self._cache[path] = hit = (key, value)
        return hit[1]

    def rows(self, metrics: Path) -> tuple[list[dict], bool]:
        """``read_rows(metrics)``, read again only when the file's size or modification time changed."""
        got = self._cached(metrics, read_rows)
        if got is None:
            raise OSError(f"cannot read {metrics}")
        return got

    def _inside(self, path: Path) -> Path | None:
        """``path`` if it is a regular file (not a link) whose real path is under the root."""
        try:
            return path if path.is_file() and not path.is_symlink() and path.resolve().is_relative_to(self.root) \
                else None
        except OSError:
            return None

    def _checkpoint(self, metrics: Path) -> tuple[Path | None, dict | None]:
        for candidate in (metrics.with_suffix("") / CHECKPOINT, metrics.parent / CHECKPOINT):
            if self._inside(candidate):
                meta = self._cached(candidate, lambda p: read_checkpoint_meta(str(p)).get("trainer") or {})
                return candidate, meta
        return None, None

    def _json(self, path: Path):
        return self._cached(path, lambda p: json.loads(p.read_text(encoding="utf-8")))

    def _book(self, metrics: Path) -> dict | None:
        """The book's number for the recipe a reproduce run belongs to (``OUT/<recipe>/seed<k>.jsonl``
        or ``OUT/<recipe>-seed<k>.jsonl``): from ``results.json`` beside it, else from the recipe."""
        recipe_ids = (metrics.parent.name, metrics.stem.rsplit("-seed", 1)[0])
        for folder in (metrics.parent.parent, metrics.parent):
            results = self._inside(folder / "results.json") and self._json(folder / "results.json")
            for row in results if isinstance(results, list) else []:
                if isinstance(row, dict) and row.get("id") in recipe_ids and isinstance(row.get("book"), (int, float)):
                    return {"recipe": row["id"], "book": row["book"], "metric": row.get("metric")}
        return next((book for r in recipe_ids if (book := _recipe_book(r)) is not None), None)

    # ----- one run ------------------------------------------------------------------------------------
    def summary(self, run_id: str, metrics: Path, rows: list[dict] | None = None, diverged: bool | None = None,
                now: float | None = None) -> dict:
        """What the list shows of one run: status, epochs done and planned, best evaluation accuracy,
        speed (seconds per epoch) and time left, settings, the files beside it."""
        if rows is None:
            rows, diverged = self.rows(metrics)
        now = time.time() if now is None else now
        checkpoint, trainer = self._checkpoint(metrics)
        result_path = self._inside(metrics.with_suffix(".json"))
        result = self._json(result_path) if result_path else None
        result = result if isinstance(result, dict) else None
        config = (trainer or {}).get("train_config") or {}
        settings = config.get("settings") if isinstance(config.get("settings"), dict) else {}
        planned = settings.get("epochs") if isinstance(settings.get("epochs"), int) else None
        if planned is None and result is not None and isinstance(result.get("epochs_run"), int):
            planned = result["epochs_run"]
        evaluate_on = settings.get("evaluate_on") or next(
            (k for k in ("validation", "test") if result is not None and f"best_{k}_accuracy" in result), None)
        done = len(rows)
        next_epoch = (trainer or {}).get("next_epoch")
        modified = max(p.stat().st_mtime for p in (metrics, checkpoint) if p is not None)
        seconds = [r["seconds"] for r in rows if isinstance(r.get("seconds"), (int, float))]
        recent = max(RECENT_MIN, 3 * max(seconds)) if seconds else RECENT_FIRST
        ended = bool((trainer or {}).get("stop_reason")) or (planned is not None and (
            done >= planned or (isinstance(next_epoch, int) and next_epoch >= planned)))
        if diverged or (result is not None and "error" in result):
            status = "diverged"
        elif result is not None or ended:
            status = "finished"
        elif now - modified < recent:
            status = "running"
        else:
            status = "stopped" if planned is not None else "finished"
        accuracies = [(r["evaluation_accuracy"], r) for r in rows if isinstance(r.get("evaluation_accuracy"), float)]
        best = max(accuracies, key=lambda t: t[0], default=(None, None))
        per_epoch = sum(seconds[-5:]) / len(seconds[-5:]) if seconds else None
        left = None
        if status == "running" and planned is not None and per_epoch is not None:
            left = max(0.0, (planned - done) * per_epoch - (now - metrics.stat().st_mtime))
        rel = (lambda p: p.relative_to(self.root).as_posix() if p is not None else None)
        return {
            "id": run_id, "path": rel(metrics), "status": status, "epochs_done": done, "epochs_planned": planned,
            "best_evaluation_accuracy": best[0], "best_epoch": best[1]["epoch"] if best[1] else None,
            "test_accuracy_at_best": best[1].get("test_accuracy") if best[1] else None,
            "evaluate_on": evaluate_on, "eta": rows[-1]["eta"] if rows else settings.get("eta"),
            "seconds_per_epoch": per_epoch, "seconds_left": left, "modified": modified,
            "stop_reason": (trainer or {}).get("stop_reason"), "settings": _brief(settings),
            "checkpoint": rel(checkpoint), "result": rel(result_path), "book": self._book(metrics),
        }

    def list(self) -> list[dict]:
        """Every run under the root, as ``summary`` gives it, in path order."""
        now = time.time()
        out = []
        for run_id, path in self._metrics_files().items():
            try:
                out.append(self.summary(run_id, path, now=now))
            except OSError:                 # removed meanwhile
                continue
        return out

    def metrics(self, run_id: str, since: int = 0) -> dict:
        """The run's rows from the ``since``-th on, its summary, and ``total`` rows: a client that
        holds ``since`` rows asks for the rest; ``total < since`` means the file was rewritten
        (a resumed run drops the epochs it trains again), so it starts over."""
        path = self.resolve(run_id)
        rows, diverged = self.rows(path)
        since = max(0, int(since))
        return {"id": run_id, "total": len(rows), "since": since, "rows": rows[since:],
                "run": self.summary(run_id, path, rows, diverged)}


def add_runs_routes(app, runs: RunsFolder | None) -> None:
    """``GET /api/runs`` and ``GET /api/runs/{id}/metrics?since=k`` on the FastAPI ``app``; both
    answer 404 when the server has no runs folder (``runs`` None) and for ids that are not runs."""
    from fastapi import Query
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    def not_found(error: str, detail: str):
        return JSONResponse({"error": error, "detail": detail}, status_code=404)

    no_folder = ("NoRunsFolder", "this server shows no training runs: start it with nndl serve --runs DIR")

    @app.get("/api/runs")
    async def list_runs():
        """The training runs under the ``--runs`` folder: ``{"folder", "now", "runs": [{"id", "path",
        "status" (running, finished, diverged, stopped), "epochs_done", "epochs_planned",
        "best_evaluation_accuracy", "seconds_per_epoch", "seconds_left", "book", ...}]}``."""
        if runs is None:
            return not_found(*no_folder)
        return JSONResponse({"folder": str(runs.root), "now": time.time(), "runs": await run_in_threadpool(runs.list)})

    @app.get("/api/runs/{run_id:path}/metrics")
    async def run_metrics(run_id: str, since: int = Query(0, ge=0, description="rows the client holds already")):
        """One run's rows per epoch (``epoch``, ``eta``, costs, accuracies, ``seconds``) from the
        ``since``-th on, with ``total`` and the run's summary (``run``)."""
        if runs is None:
            return not_found(*no_folder)
        try:
            return JSONResponse(await run_in_threadpool(runs.metrics, run_id, since))
        except RunNotFound as exc:
            return not_found("RunNotFound", str(exc))
        except OSError as exc:                  # removed while being read
            return not_found("RunNotFound", f"run {run_id!r} cannot be read: {exc.strerror or exc}")


@functools.lru_cache(maxsize=256)
def _recipe_book(recipe_id: str) -> dict | None:
    """The book's number of a recipe nndl ships (``nndl.recipes``), or None."""
    from ..recipes import load_recipe, recipe_ids

    if recipe_id not in recipe_ids():
        return None
    recipe = load_recipe(recipe_id)
    book = recipe.get("book")
    return {"recipe": recipe_id, "book": book, "metric": recipe.get("metric")} if isinstance(book, (int, float)) \
        else None


def _brief(settings: dict) -> dict:
    """The settings a reader compares runs by (the rest is in the checkpoint)."""
    keys = ("sizes", "cost", "activation", "eta", "lmbda", "mini_batch_size", "epochs", "optimizer", "init",
            "train_size", "dropout", "recipe")
    return {k: settings[k] for k in keys if settings.get(k) not in (None, "", [])}


__all__ = ["RunNotFound", "RunsFolder", "add_runs_routes", "read_rows"]
