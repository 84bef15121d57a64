"""Executors (issue 7): trials as plain dicts, a local process pool, a Dask LocalCluster (a worker
killed mid-sweep), and the resumable journal. One LocalCluster is shared by the Dask tests."""
import json
import logging
import os
import signal
import sys
import threading
import time

import pytest

from nndl.executors import (
    DaskExecutor,
    ExecutorError,
    LocalExecutor,
    available_cores,
    execute,
    make_trial,
    run_trial,
    trial_id,
)
from nndl.files import append_jsonl, read_jsonl
from nndl.settings import settings_from
from tests.inline_executor import InlineExecutor

# A trial small enough to train in a fraction of a second: 500 images, 1 epoch, 1,000 validation images.
SMALL = {"sizes": [784, 10, 10], "train_size": 500, "epochs": 1, "validation_size": 1000, "evaluate_on": "validation"}


def small_trials(etas=(0.5, 3.0), seeds=(0,)):
    return [make_trial({**SMALL, "eta": eta}, seed, params={"eta": eta}) for eta in etas for seed in seeds]


# ----- trials -----------------------------------------------------------------------------------
def test_trial_id_is_a_stable_hash_of_settings_and_seed():
    a = settings_from({"eta": 0.5, "lmbda": 5})
    b = settings_from({"lmbda": 5.0, "eta": 0.5})                     # TOML int vs flag float, other order
    assert trial_id(a, 0) == trial_id(b, 0)
    assert trial_id(a, 0) != trial_id(a, 1)
    assert trial_id(a, 0) != trial_id(settings_from({"eta": 0.5, "lmbda": 5.1}), 0)
    assert make_trial({"eta": 0.5, "lmbda": 5}, 3)["id"] == trial_id(a, 3)
    with pytest.raises(ValueError, match="unknown setting"):
        make_trial({"etta": 0.5}, 0)


def test_run_trial_trains_in_process_and_returns_json_safe_result():
    trial = small_trials(etas=(3.0,))[0]
    result = run_trial(trial, None)
    json.dumps(result)                                               # crosses the wire as JSON-safe data
    assert result["id"] == trial["id"] and result["params"] == {"eta": 3.0}
    assert 0.2 < result["best_validation_accuracy"] <= 1.0           # 1 epoch on 500 images: well above chance
    assert 0.2 < result["test_accuracy_at_best_validation"] <= 1.0
    assert result["epochs_run"] == 1 and result["best_validation_epoch"] == 0
    assert result["worker"]["pid"] == os.getpid() and result["worker"]["blas_threads"] == 1
    assert "history" not in result and "blas_threads" not in result
    # The same trial gives the same numbers: trials are deterministic functions of (settings, seed).
    assert run_trial(trial, None)["best_validation_accuracy"] == result["best_validation_accuracy"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_trial_is_a_result_with_an_error_not_a_crash():
    trial = make_trial({**SMALL, "activation": "relu", "eta": 1e30}, 0, params={"eta": 1e30})
    result = run_trial(trial, None)
    assert "diverged" in result["error"] and result.get("best_validation_accuracy") is None


# ----- the journal ------------------------------------------------------------------------------
def test_journal_survives_a_torn_last_line(tmp_path):
    path = str(tmp_path / "j.jsonl")
    append_jsonl(path, {"id": "a", "v": 1})
    with open(path, "a") as f:
        f.write('{"id": "b", "v"')                                   # a kill in the middle of a write
    append_jsonl(path, {"id": "c", "v": 3})
    assert [r["id"] for r in read_jsonl(path)] == ["a", "c"]
    assert open(path).read().count("\n") == 3                        # the torn line was closed, not extended


def test_execute_appends_each_result_and_skips_finished_trials(tmp_path):
    journal = str(tmp_path / "trials.jsonl")
    trials = small_trials(etas=(0.5, 1.0, 3.0))
    first = InlineExecutor()
    seen = []
    done = execute(trials + trials[:1], journal=journal, executor=first,
                   on_result=lambda r, k, n: seen.append((r["id"], k, n)))
    assert done["executed"] == 3 and done["skipped"] == 0 and len(first.ran) == 3   # a duplicate runs once
    assert [r["id"] for r in done["results"]] == [t["id"] for t in trials]
    assert [k for _, k, _ in seen] == [1, 2, 3] and {n for _, _, n in seen} == {3}
    assert [r["id"] for r in read_jsonl(journal)] == [t["id"] for t in trials]
    again = InlineExecutor()
    redo = execute(trials, journal=journal, executor=again)
    assert redo["executed"] == 0 and redo["skipped"] == 3 and again.ran == []
    assert redo["results"] == done["results"]
    # Drop the second line, as if that trial had been in flight when the sweep was killed.
    lines = open(journal).read().splitlines()
    with open(journal, "w") as f:
        f.write("\n".join([lines[0], lines[2]]) + "\n")
    third = InlineExecutor()
    assert execute(trials, journal=journal, executor=third)["executed"] == 1
    assert [t["id"] for t in third.ran] == [trials[1]["id"]]
    assert len(read_jsonl(journal)) == 3


# ----- local processes --------------------------------------------------------------------------
# The pool itself trains trials in tests/test_sweep.py (nndl sweep --workers 2) and tests/test_ensemble.py.
def test_local_executor_sizes_itself_and_refuses_bad_arguments():
    ex = LocalExecutor(2)
    assert ex.workers == 2 and ex.context == "spawn" and ex.blas_threads == max(1, available_cores() // 2)
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(0)
    with pytest.raises(ValueError, match="fork"):
        LocalExecutor(2, context="fork")
    assert LocalExecutor(1).blas_threads >= 1


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[dist\]'"):
        DaskExecutor("tcp://127.0.0.1:1")


def test_unreachable_scheduler_says_how_to_start_one():
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        DaskExecutor("127.0.0.1:8786")
    with pytest.raises(ExecutorError, match="dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=1)


# ----- Dask -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_dask_sweep_from_the_cli_then_a_rerun_trains_nothing(cluster, tmp_path, capsys):
    import argparse

    from nndl.cli import sweep as sweep_cli
    from nndl.sweep import run_sweep

    local_cluster, client = cluster
    parser = argparse.ArgumentParser()
    sweep_cli.register(parser.add_subparsers())
    out = str(tmp_path / "sweep")
    args = parser.parse_args(["sweep", "--sizes", "784,10,10", "--train-size", "500", "--epochs", "1",
                              "--validation-size", "1000", "--grid", "eta=0.5,3", "--seeds", "2",
                              "--scheduler", local_cluster.scheduler_address, "--out", out, "--quiet"])
    assert args.func(args) == 0
    lines = read_jsonl(os.path.join(out, "trials.jsonl"))
    assert len(lines) == 4 and len({r["id"] for r in lines}) == 4
    workers = {r["worker"]["pid"] for r in lines}
    assert os.getpid() not in workers and all(r["worker"]["blas_threads"] == 1 for r in lines)
    for r in lines:  # correct results: each equals the same trial trained here
        trial = make_trial(r["settings"], r["seed"])
        assert trial["id"] == r["id"]
        assert r["best_validation_accuracy"] == run_trial(trial, None)["best_validation_accuracy"]
    assert "4 trial(s) trained now" in capsys.readouterr().out
    rerun = run_sweep(lines[0]["settings"], [{"eta": 0.5}, {"eta": 3.0}], seeds=2, out=out,
                      executor=DaskExecutor(client), verbose=False)
    assert rerun["executed"] == 0 and rerun["skipped"] == 4
    assert len(read_jsonl(os.path.join(out, "trials.jsonl"))) == 4


def _executing_keys(dask_worker):
    return [str(ts.key) for ts in dask_worker.state.tasks.values() if ts.state == "executing"]


def test_a_worker_killed_mid_trial_has_its_trial_rerun_elsewhere_exactly_once(cluster, tmp_path):
    from nndl.sweep import make_trials, run_sweep

    _, client = cluster
    client.wait_for_workers(2, timeout=60)
    points = [{"train_size": 20000, "epochs": 2}] + [{"eta": eta} for eta in (0.5, 1.0, 2.0, 3.0)]
    slow_key = "nndl-trial-" + make_trials(SMALL, points)[0]["id"]
    out = str(tmp_path / "killed")
    box = {}

    def sweep():
        try:
            box["report"] = run_sweep(SMALL, points, out=out, executor=DaskExecutor(client, retries=1), verbose=False)
        except BaseException as exc:  # surfaced by the assertions below
            box["error"] = exc

    thread = threading.Thread(target=sweep)
    thread.start()
    victim, deadline = None, time.monotonic() + 60
    while victim is None and thread.is_alive() and time.monotonic() < deadline:
        victim = next((addr for addr, keys in client.run(_executing_keys).items() if slow_key in keys), None)
        time.sleep(0.02)
    assert victim is not None, "the slow trial never started"
    killed_pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(killed_pid, signal.SIGKILL)
    thread.join(timeout=120)
    assert "error" not in box, box.get("error")
    report = box["report"]
    lines = read_jsonl(os.path.join(out, "trials.jsonl"))
    assert report["executed"] == 5 and len(lines) == 5
    assert sorted(r["id"] for r in lines) == sorted(t["id"] for t in make_trials(SMALL, points))  # each exactly once
    slow = next(r for r in lines if r["params"] == points[0])
    assert slow["worker"]["pid"] != killed_pid                       # finished by another worker process
    assert slow["best_validation_accuracy"] > 0.8                    # and trained fully: 20,000 images, 2 epochs
