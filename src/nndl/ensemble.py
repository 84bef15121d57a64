"""Ensembles of networks that vote (chapter 6: "five networks ... plurality vote"), and their training.

``Ensemble(networks)``: each member predicts a label; the label with most votes wins. Ties are
broken by the members' summed class probabilities, so the result never depends on the order of
the members.

``train_ensemble(settings, n_members, out=...)`` trains the members (seeds first_seed, first_seed+1,
...) in parallel through ``nndl.executors`` (local processes or a Dask cluster), saves each as
``OUT/member{k}.npz`` and reports each member's and the vote's test accuracy. It is resumable:
finished members are recorded in ``OUT/members.jsonl`` and not trained again, and a member cut
off mid-training resumes from its checkpoint (``OUT/checkpoints/<trial id>/``). ``nndl reproduce`` runs
``kind = "ensemble"`` recipes through it (``nndl.recipes.reproduce``).

Limits: the members vote with their final weights (as the book's networks do after their last
epoch). On a multi-machine Dask cluster, OUT must be on a filesystem every worker shares, since
the workers write the member files.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Sequence

import numpy as np

from .executors import Executor, execute, make_trial


class Ensemble:
    """A plurality vote of trained networks that share the same classes."""

    def __init__(self, networks: Sequence[Any]):
        if not networks:
            raise ValueError("an ensemble needs at least one network")
        n_classes = {net.n_classes for net in networks}
        if len(n_classes) != 1:
            raise ValueError(f"ensemble members disagree on the number of classes: {sorted(n_classes)}")
        self.networks = list(networks)
        self.n_classes = n_classes.pop()

    def votes(self, x) -> np.ndarray:
        """Vote counts, shape (m, n_classes)."""
        preds = np.stack([np.asarray(net.predict(x)) for net in self.networks])   # (k, m)
        return (preds[:, :, None] == np.arange(self.n_classes)).sum(axis=0)     # (m, n_classes)

    def predict_proba(self, x) -> np.ndarray:
        """Mean of the members' class probabilities, shape (m, n_classes)."""
        return np.mean([np.asarray(net.predict_proba(x)) for net in self.networks], axis=0)

    def predict(self, x) -> np.ndarray:
        """Plurality vote; ties broken by summed probabilities."""
        counts = self.votes(x)
        top = counts == counts.max(axis=1, keepdims=True)
        proba = self.predict_proba(x)
        return np.where(top, proba, -np.inf).argmax(axis=1)

    def accuracy(self, data) -> float:
        x, y = data
        return float((self.predict(x) == np.asarray(y)).mean())

    def averaged_correct(self, x, y) -> np.ndarray:
        """Which samples the averaged probabilities (the other way to combine members) get right: (m,) bool."""
        return self.predict_proba(x).argmax(axis=1) == np.asarray(y)

    def averaged_accuracy(self, data) -> float:
        return float(self.averaged_correct(*data).mean())


# ----- training the members ---------------------------------------------------------------------
def member_path(out: str, k: int) -> str:
    return os.path.join(os.path.abspath(out), f"member{k}.npz")


def member_trials(settings: dict, n_members: int, out: str, *, first_seed: int = 0) -> list[dict]:
    """One trial per member k: seed first_seed + k, saved to OUT/member{k}.npz, checkpointed in
    OUT/checkpoints/<trial id>/ (so a changed setting never resumes another run's state).
    Paths are absolute: a worker's working directory may differ from ours."""
    if n_members < 1:
        raise ValueError(f"an ensemble needs at least 1 member, got {n_members}")
    trials = []
    for k in range(n_members):
        trial = make_trial(settings, first_seed + k, member=k, save=member_path(out, k))
        trial["checkpoint"] = os.path.join(os.path.abspath(out), "checkpoints", trial["id"])
        trials.append(trial)
    return trials


def _member_file_present(result: dict) -> bool:
    return bool(result.get("save")) and os.path.exists(result["save"])


def _load_member(result: dict):
    from .models.io import load

    path = result["save"]
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"member {result['member']} finished on {result.get('worker', {}).get('host', 'this machine')} "
            f"but {path} is not here: on a "
            "multi-machine cluster the --out folder must be on a filesystem all workers share (docs/CLUSTER.md)")
    return load(path)


def train_ensemble(settings: dict, n_members: int, *, out: str, first_seed: int = 0, workers: int | None = None,
                   scheduler: str | None = None, executor: Executor | None = None, data_dir: str | None = None,
                   verbose: bool = False, reuse: dict[int, dict] | None = None) -> dict:
    """Train ``n_members`` networks with ``settings`` (seeds first_seed, ...) in parallel, then let
    them vote on the test set. Writes OUT/member{k}.npz, OUT/members.jsonl and OUT/ensemble.json.

    ``reuse`` maps a member index k to a network already trained with these settings and seed
    first_seed + k, ``{"save": path, "seconds", "epochs_run"}``: that member is not trained again.

    Returns ``{"members": [{member, seed, test_accuracy, errors, seconds, ...}], "vote_accuracy",
    "vote_errors", "seconds" (sum of the members' training time), "epochs_run", "executed", "skipped",
    "reused"}``.
    """
    from .experiment import load_data
    from .files import atomic_write_bytes

    trials = member_trials(settings, n_members, out, first_seed=first_seed)
    reuse = reuse or {}
    os.makedirs(out, exist_ok=True)

    def progress(result: dict, finished: int, total: int) -> None:
        print(f"[{finished}/{total}] member {result['member']} (seed {result['seed']}) trained in "
              f"{result.get('seconds')} s on {result['worker']['host']}:{result['worker']['pid']}", flush=True)

    start = time.perf_counter()
    done = execute([t for t in trials if t["member"] not in reuse], journal=os.path.join(out, "members.jsonl"),
                   executor=executor, workers=workers, scheduler=scheduler, data_dir=data_dir,
                   on_result=progress if verbose else None, is_done=_member_file_present)
    failed = [r for r in done["results"] if r.get("error")]
    if failed:
        raise ValueError(f"member {failed[0]['member']} did not train: {failed[0]['error']}")
    trained = {r["member"]: r for r in done["results"]}
    results = [{**t, **reuse[t["member"]]} if t["member"] in reuse else trained[t["member"]] for t in trials]
    networks = [_load_member(r) for r in results]
    x, y = load_data(results[0]["settings"], data_dir)[2]                        # the test set
    y = np.asarray(y)
    members = []
    for r, net in zip(results, networks):
        correct = net.predict(x) == y
        members.append({"member": r["member"], "seed": r["seed"], "path": r["save"],
                        "test_accuracy": float(correct.mean()), "errors": int((~correct).sum()),
                        "seconds": r.get("seconds"), "epochs_run": r.get("epochs_run")})
    ensemble = Ensemble(networks)
    vote_correct = ensemble.predict(x) == y
    averaged_correct = ensemble.averaged_correct(x, y)
    report = {"n_members": n_members, "settings": results[0]["settings"], "members": members,
              "vote_accuracy": float(vote_correct.mean()), "vote_errors": int((~vote_correct).sum()),
              "averaged_accuracy": float(averaged_correct.mean()), "averaged_errors": int((~averaged_correct).sum()),
              "test_size": int(len(y)), "seconds": round(sum(m["seconds"] or 0.0 for m in members), 2),
              "wall_seconds": round(time.perf_counter() - start, 2),
              "epochs_run": max(m["epochs_run"] or 0 for m in members),
              "executed": done["executed"], "skipped": done["skipped"], "reused": len(reuse)}
    atomic_write_bytes(os.path.join(out, "ensemble.json"), json.dumps(report, indent=1).encode())
    return report


def report_lines(report: dict) -> list[str]:
    """Human-readable lines: each member's test accuracy, then the vote's."""
    lines = [f"member {m['member']} (seed {m['seed']}): test accuracy {100 * m['test_accuracy']:.2f}% "
             f"({m['errors']} errors)" for m in report["members"]]
    lines.append(f"plurality vote of {report['n_members']}: test accuracy {100 * report['vote_accuracy']:.2f}% "
                 f"({report['vote_errors']} errors of {report['test_size']})")
    if "averaged_accuracy" in report:        # reports written before it was measured lack it
        lines.append(f"averaged probabilities of {report['n_members']}: test accuracy "
                     f"{100 * report['averaged_accuracy']:.2f}% ({report['averaged_errors']} errors)")
    return lines


__all__ = ["Ensemble", "member_trials", "report_lines", "train_ensemble"]
