"""Run many training runs ("trials") in parallel: local worker processes or a Dask cluster.

Chapter 3's hyper-parameter search and chapter 6's ensemble both need many independent training
runs. A trial is a plain JSON-safe dict ``{"id", "settings", "seed", ...}``; ``run_trial(trial,
data_dir)`` is a top-level function that trains it and returns a JSON-safe result dict. Only
these two dicts cross process or network boundaries: every worker loads MNIST itself (from
``data_dir``, ``$NNDL_DATA`` or ``~/.cache/nndl``), so no array is ever pickled and sent.

Two executors run a list of trials and yield results as they finish:

* ``LocalExecutor``: a ``ProcessPoolExecutor`` with the "spawn" start method, sized to the cores,
  each worker limited to ``cores // workers`` BLAS threads so workers do not oversubscribe.
* ``DaskExecutor``: the same function submitted to a Dask distributed scheduler
  (``tcp://HOST:PORT``; extra ``[dist]``), with ``retries`` so a failed task is run again;
  a task whose worker dies is rescheduled by Dask on another worker.

``execute`` adds resumability: each finished result is appended as one JSON line to a journal by
the parent process only (flush + fsync, so lines never interleave), and trials whose id is
already in the journal are not run again. A killed run loses only the trials in flight.

Limits: a trial that diverges (``TrainingDivergedError``) is a result (with ``"error"``), not a
failure; any other exception stops the run (finished trials stay in the journal). Files a trial
writes (``save``, ``checkpoint``) are written by the worker: on a multi-machine cluster they must
be on a filesystem all workers and the parent share.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable, Iterable, Iterator, Protocol

from .errors import NNDLError, install_hint
from .files import append_jsonl, read_jsonl
from .settings import settings_from, trial_id

DIST_HINT = install_hint("dist")


class ExecutorError(NNDLError, RuntimeError):
    """An executor could not be started or lost its trials."""


# ----- trials -----------------------------------------------------------------------------------
def make_trial(settings: dict, seed: int, **extra: Any) -> dict:
    """A trial dict: full settings (see ``nndl.settings``), seed, id, plus ``extra`` keys
    (``params``: the swept values; ``save``: model path; ``checkpoint``: folder for resuming)."""
    settings = settings_from(settings)
    return {"id": trial_id(settings, seed), "settings": settings, "seed": int(seed), **extra}


# Keys of experiment.run's result copied into a trial's result (the history and repr stay behind).
RESULT_KEYS = ("best_validation_accuracy", "best_validation_epoch", "test_accuracy_at_best_validation",
               "best_test_accuracy", "best_test_epoch", "final_evaluation_accuracy", "epochs_run", "seconds")


def run_trial(trial: dict, data_dir: str | None = None) -> dict:
    """Train one trial in this process and return its JSON-safe result.

    The result holds the trial's keys, the accuracies of ``experiment.run``
    (``best_validation_accuracy``, ``test_accuracy_at_best_validation``, ... ), ``seconds`` (training
    time), ``wall_seconds`` (with data loading) and ``worker`` (host, pid and the BLAS threads it trained
    with). BLAS is limited to ``trial["blas_threads"]`` threads (default 1) so that parallel trials do not
    fight over cores.
    """
    from .backend import blas_threads
    from .experiment import run
    from .train.checkpoint import checkpoint_path

    start = time.perf_counter()
    checkpoint = trial.get("checkpoint")
    resume = checkpoint if checkpoint and os.path.exists(checkpoint_path(checkpoint)) else None
    result = {k: v for k, v in trial.items() if k != "blas_threads"}
    with blas_threads(trial.get("blas_threads") or 1):
        threads = _blas_thread_count()
        # The trial's share of the cores, for the fused kernels' parallel loops too (unless it names its own)
        settings = {**trial["settings"], "threads": trial["settings"].get("threads") or trial.get("blas_threads") or 1}
        try:
            out = run(settings, trial["seed"], data_dir=data_dir, save=trial.get("save"),
                      checkpoint=checkpoint, resume=resume)
        except FloatingPointError as exc:   # TrainingDivergedError: an outcome of the settings, not a crash
            out = {"error": f"{type(exc).__name__}: {exc}"}
    result.update({k: out[k] for k in (*RESULT_KEYS, "error") if k in out})
    result["wall_seconds"] = round(time.perf_counter() - start, 2)
    result["worker"] = {"host": socket.gethostname(), "pid": os.getpid(), "blas_threads": threads}
    return result


def _blas_thread_count() -> int | None:
    """The BLAS thread count in force here (None if threadpoolctl sees no BLAS)."""
    from threadpoolctl import threadpool_info

    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return max(counts) if counts else None


# ----- executors --------------------------------------------------------------------------------
class Executor(Protocol):
    """Runs trials somewhere; ``imap_unordered`` yields each result as soon as it is finished."""

    workers: int

    def imap_unordered(self, trials: list[dict], data_dir: str | None) -> Iterator[dict]: ...
    def close(self) -> None: ...


def available_cores() -> int:
    """CPU cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _init_worker(blas_threads: int) -> None:
    """Process-pool initializer: cap BLAS for the worker's whole life (numpy first, so that
    threadpoolctl sees the BLAS library it loads)."""
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=blas_threads)


class LocalExecutor:
    """Trials in a pool of ``workers`` local processes (default: one per core).

    "spawn" (or "forkserver") start a fresh interpreter per worker: no inherited threads or BLAS
    state, and the same code path as a remote worker. Each worker gets ``cores // workers`` BLAS
    threads (at least 1)."""

    def __init__(self, workers: int | None = None, *, blas_threads: int | None = None, context: str = "spawn"):
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if context not in ("spawn", "forkserver"):
            raise ValueError(f"context must be 'spawn' or 'forkserver', got {context!r} "
                             "('fork' would copy the parent's threads and BLAS state)")
        cores = available_cores()
        self.workers = int(workers) if workers else cores
        self.blas_threads = int(blas_threads) if blas_threads else max(1, cores // self.workers)
        self.context = context
        self._pool = None
        self._abandoned = False     # trials still running when the caller stopped listening

    def _start(self, n_trials: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=max(1, min(self.workers, n_trials)),
                                             mp_context=multiprocessing.get_context(self.context),
                                             initializer=_init_worker, initargs=(self.blas_threads,))
        return self._pool

    def imap_unordered(self, trials: list[dict], data_dir: str | None) -> Iterator[dict]:
        from concurrent.futures import as_completed

        if not trials:
            return
        pool = self._start(len(trials))
        futures = [pool.submit(run_trial, {**t, "blas_threads": self.blas_threads}, data_dir) for t in trials]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for f in futures:
                f.cancel()
            self._abandoned = self._abandoned or not all(f.done() for f in futures)

    def close(self) -> None:
        """Stop the workers: at once if trials were abandoned (an error or Ctrl-C stops the sweep
        now, not after the running trials), else after they exit cleanly."""
        if self._pool is None:
            return
        if self._abandoned:
            processes = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                if p.is_alive():
                    p.terminate()
        else:
            self._pool.shutdown(wait=True)
        self._pool, self._abandoned = None, False

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers}, blas_threads={self.blas_threads}, context={self.context!r})"


def import_distributed():
    """``dask.distributed``, or an ImportError that names the extra to install."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"running on a Dask cluster needs Dask distributed ({exc}); {DIST_HINT}") from None
    return distributed


class DaskExecutor:
    """Trials on a Dask distributed cluster: ``scheduler`` is an address (``tcp://HOST:PORT``)
    or an existing ``distributed.Client`` (then it is not closed here).

    Each trial is one task, keyed ``nndl-trial-<id>``, submitted with ``retries`` (a task that
    raises is run again). A task whose worker dies mid-run is rescheduled by the scheduler
    (up to its ``distributed.scheduler.allowed-failures``); its result is returned once."""

    def __init__(self, scheduler: Any, *, retries: int = 2, blas_threads: int = 1, timeout: float = 30.0):
        distributed = import_distributed()
        self.retries, self.blas_threads = int(retries), int(blas_threads)
        if isinstance(scheduler, str):
            if "://" not in scheduler:
                raise ValueError(f"scheduler address must look like tcp://HOST:PORT, got {scheduler!r}")
            try:
                self.client = distributed.Client(scheduler, timeout=timeout)
            except OSError as exc:
                raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
                                    "`dask scheduler` and workers with `dask worker tcp://HOST:8786` "
                                    "(see docs/CLUSTER.md)") from None
            self._owns_client = True
        else:
            self.client, self._owns_client = scheduler, False

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def imap_unordered(self, trials: list[dict], data_dir: str | None) -> Iterator[dict]:
        distributed = import_distributed()
        if not trials:
            return
        pending = {self.client.submit(run_trial, {**t, "blas_threads": self.blas_threads}, data_dir,
                                      key=f"nndl-trial-{t['id']}", retries=self.retries, pure=False)
                   for t in trials}
        try:
            for future in distributed.as_completed(list(pending)):
                result = future.result()
                pending.discard(future)
                future.release()
                yield result
        finally:
            if pending:  # stopped early: do not leave trials running on the cluster
                self.client.cancel(list(pending))

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        address = self.client.scheduler.address if self.client.scheduler else "?"
        return f"DaskExecutor({address}, retries={self.retries})"


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """A DaskExecutor when ``scheduler`` is given, else a LocalExecutor with ``workers`` processes."""
    if scheduler:
        return DaskExecutor(scheduler)
    return LocalExecutor(workers)


# ----- the journal: resumable execution ---------------------------------------------------------
def execute(trials: Iterable[dict], *, journal: str, executor: Executor | None = None, workers: int | None = None,
            scheduler: str | None = None, data_dir: str | None = None,
            on_result: Callable[[dict, int, int], None] | None = None,
            is_done: Callable[[dict], bool] | None = None) -> dict:
    """Run the trials not yet in ``journal``; append each result to it as it finishes.

    ``executor`` (left open) or else one made from ``workers``/``scheduler`` (closed after).
    ``on_result(result, finished, total)`` is called in the parent after each append;
    ``is_done(result)`` can reject a journal entry (e.g. its model file is gone) so it runs again.
    Returns ``{"results": [one per trial, in the trials' order], "executed": n, "skipped": n}``.
    """
    trials = list({t["id"]: t for t in trials}.values())         # a trial listed twice runs once
    os.makedirs(os.path.dirname(os.path.abspath(journal)), exist_ok=True)
    done = {r["id"]: r for r in read_jsonl(journal) if is_done is None or is_done(r)}
    todo = [t for t in trials if t["id"] not in done]
    skipped = len(trials) - len(todo)
    executed = 0
    if todo:
        own = executor is None
        executor = executor or make_executor(workers, scheduler)
        try:
            for result in executor.imap_unordered(todo, data_dir):
                append_jsonl(journal, result)
                done[result["id"]] = result
                executed += 1
                if on_result is not None:
                    on_result(result, skipped + executed, len(trials))
        finally:
            if own:
                executor.close()
    return {"results": [done[t["id"]] for t in trials], "executed": executed, "skipped": skipped}


__all__ = ["DaskExecutor", "Executor", "ExecutorError", "LocalExecutor", "available_cores", "execute",
           "import_distributed", "make_executor", "make_trial", "run_trial"]
