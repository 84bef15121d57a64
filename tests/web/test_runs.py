"""The runs API (``nndl serve --runs DIR``: ``nndl.web.runs``) through FastAPI's TestClient: the runs
of docs/runs as nndl wrote them, the status of real runs (finished, running, stopped after a crash,
diverged), rows fetched in parts, and the two promises: paths out of DIR are refused, and nothing
is ever written under DIR."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import nndl
from nndl.web.app import create_app
from nndl.web.runs import RunsFolder
from tests.web.helpers import FlatNetwork

ROOT = Path(__file__).resolve().parents[2]
DOCS_RUNS = ROOT / "docs" / "runs"


def _strict(text: str):
    """JSON as a browser parses it: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"{name} in the answer: not JSON")
    return json.loads(text, parse_constant=refuse)


def _client(folder) -> TestClient:
    return TestClient(create_app(FlatNetwork(), model_name="flat", runs_dir=str(folder)))


class Crash(nndl.train.Callback):
    """Ends the process's training at the end of epoch ``at``, as a kill would (before its line)."""

    def __init__(self, at: int):
        self.at = at

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if epoch == self.at:
            raise KeyboardInterrupt


def _train(folder: Path, epochs: int, *, crash_at: int | None = None, mnist_small) -> None:
    """A real run in ``folder``, laid out as ``nndl train --metrics folder/metrics.jsonl --checkpoint
    folder`` lays it out, with the run's settings in the checkpoint as nndl.experiment writes them."""
    from nndl.settings import settings_from

    training, validation, _ = mnist_small
    net = nndl.Network([nndl.Dense(784, 10, "sigmoid")], cost="cross-entropy", seed=0)
    settings = settings_from({"sizes": [784, 10], "cost": "cross-entropy", "eta": 0.5, "epochs": epochs})
    try:
        net.fit((training[0][:500], training[1][:500]), epochs=epochs, mini_batch_size=10, eta=0.5,
                evaluation_data=validation, monitor_training_cost=True, metrics=str(folder / "metrics.jsonl"),
                checkpoint=str(folder), callbacks=[Crash(crash_at)] if crash_at is not None else [],
                train_config={"settings": settings, "seed": 0})
    except KeyboardInterrupt:
        assert crash_at is not None


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, mnist_small):
    """docs/runs copied, beside runs of each status."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(DOCS_RUNS, root / "docs-runs")
    _train(root / "done", 3, mnist_small=mnist_small)
    _train(root / "crashed", 5, crash_at=2, mnist_small=mnist_small)
    rows = [{"epoch": 0, "eta": 100.0, "training_cost": 3.2, "evaluation_accuracy": 0.3, "seconds": 1.0},
            {"epoch": 1, "eta": 100.0, "training_cost": float("nan"), "evaluation_accuracy": 0.098, "seconds": 1.0}]
    (root / "nan.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))   # json writes NaN
    (root / "starting").mkdir()
    (root / "starting" / "metrics.jsonl").write_text("")                             # before its first epoch
    (root / "trials.jsonl").write_text(json.dumps({"id": "t0", "accuracy": 0.9}) + "\n")  # a sweep journal
    (root / "notes.jsonl").write_text(json.dumps({"type": "iteration", "loss": 3.1}) + "\n")
    return root


@pytest.fixture(scope="module")
def client(runs_dir):
    return _client(runs_dir)


def _runs(client) -> dict:
    response = client.get("/api/runs")
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in _strict(response.text)["runs"]}


# ----- the runs in docs/runs ------------------------------------------------------------------------
def test_docs_runs_are_listed_with_the_numbers_of_their_results(tmp_path):
    # A copy whose files last changed an hour ago: in a fresh checkout, the runs without a result or a
    # checkpoint (docs/runs/ch6-relu-seeds) count as running for their first minutes (nndl.web.runs).
    copy = shutil.copytree(DOCS_RUNS, tmp_path / "runs")
    hour_ago = time.time() - 3600
    for path in copy.rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    runs = _runs(_client(copy))
    jsonl = sorted(p for p in DOCS_RUNS.rglob("*.jsonl"))
    assert sorted(runs) == sorted(str(p.relative_to(DOCS_RUNS).with_suffix("").as_posix()) for p in jsonl)
    assert {r["status"] for r in runs.values()} == {"finished"}        # all ended long ago
    for run_id, run in runs.items():
        result = DOCS_RUNS / (run_id + ".json")
        if result.exists():                    # nndl reproduce's seed<k>.json: our best is its best
            saved = json.loads(result.read_text())
            assert run["epochs_done"] == saved["epochs_run"] == run["epochs_planned"], run_id
            best = saved.get("best_test_accuracy", saved.get("best_validation_accuracy"))
            assert run["best_evaluation_accuracy"] == pytest.approx(best), run_id
    ch1 = runs["reproduce/ch1-30/seed0"]
    assert ch1["path"] == "reproduce/ch1-30/seed0.jsonl" and ch1["result"] == "reproduce/ch1-30/seed0.json"
    assert ch1["book"] == {"recipe": "ch1-30", "book": 0.9542, "metric": "test"}    # from OUT/results.json
    assert runs["reproduce6e/ch6-dropout-seed0"]["book"]["book"] == 0.996          # from the recipe
    assert runs["reproduce6e/ch6-dropout-seed0"]["evaluate_on"] == "validation"


def test_metrics_gives_the_rows_of_the_file_from_since_on():
    client = _client(DOCS_RUNS)
    lines = [json.loads(line) for line in (DOCS_RUNS / "reproduce/ch3-overfit/seed0.jsonl").read_text().splitlines()]
    whole = _strict(client.get("/api/runs/reproduce/ch3-overfit/seed0/metrics").text)
    assert whole["total"] == len(lines) == 400 and len(whole["rows"]) == 400
    for row, line in zip(whole["rows"], lines):
        assert row["epoch"] == line["epoch"]
        for key in ("eta", "training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy"):
            assert row[key] == line[key]
    tail = _strict(client.get("/api/runs/reproduce/ch3-overfit/seed0/metrics?since=397").text)
    assert tail["total"] == 400 and [r["epoch"] for r in tail["rows"]] == [397, 398, 399]
    assert client.get("/api/runs/reproduce/ch3-overfit/seed0/metrics?since=-1").status_code == 422
    assert tail["run"]["id"] == "reproduce/ch3-overfit/seed0" and tail["run"]["status"] == "finished"


# ----- status ------------------------------------------------------------------------------------------
def test_a_run_that_trained_all_its_epochs_is_finished(client, runs_dir):
    run = _runs(client)["done/metrics"]
    assert run["status"] == "finished" and run["epochs_done"] == run["epochs_planned"] == 3
    assert run["checkpoint"] == "done/checkpoint.npz" and run["settings"]["eta"] == 0.5
    rows = _strict(client.get("/api/runs/done/metrics/metrics").text)["rows"]
    lines = [json.loads(line) for line in (runs_dir / "done" / "metrics.jsonl").read_text().splitlines()]
    assert [r["evaluation_accuracy"] for r in rows] == [line["evaluation_accuracy"] for line in lines]
    assert run["best_evaluation_accuracy"] == max(line["evaluation_accuracy"] for line in lines)
    assert all(r["training_cost"] > 0 for r in rows)


def test_a_crashed_run_is_running_while_fresh_then_stopped(runs_dir):
    folder = RunsFolder(runs_dir)
    path = runs_dir / "crashed" / "metrics.jsonl"
    fresh = folder.summary("crashed/metrics", path)
    assert fresh["status"] == "running" and fresh["epochs_done"] == 2 and fresh["epochs_planned"] == 5
    assert fresh["seconds_per_epoch"] > 0 and 0 <= fresh["seconds_left"] <= 3 * fresh["seconds_per_epoch"] + 1e-9
    later = folder.summary("crashed/metrics", path, now=time.time() + 3600)
    assert later["status"] == "stopped" and later["seconds_left"] is None


def test_a_run_whose_cost_became_nan_is_diverged_and_its_answer_is_json(client):
    run = _runs(client)["nan"]
    assert run["status"] == "diverged" and run["epochs_done"] == 2
    rows = _strict(client.get("/api/runs/nan/metrics").text)["rows"]
    assert rows[1]["training_cost"] is None and rows[1]["evaluation_accuracy"] == 0.098


def test_an_empty_metrics_file_is_a_run_before_its_first_epoch_and_journals_are_not_runs(client, runs_dir):
    runs = _runs(client)
    assert runs["starting/metrics"]["status"] == "running" and runs["starting/metrics"]["epochs_done"] == 0
    assert "trials" not in runs and "notes" not in runs
    path = runs_dir / "starting" / "metrics.jsonl"
    later = RunsFolder(runs_dir).summary("starting/metrics", path, now=time.time() + 3600)
    assert later["status"] == "finished"      # nothing says how many epochs it planned (see nndl.web.runs)


def test_a_torn_last_line_is_skipped_until_it_is_whole(tmp_path):
    line = json.dumps({"epoch": 0, "eta": 0.5, "evaluation_accuracy": 0.9, "seconds": 1.0})
    (tmp_path / "r.jsonl").write_text(line + "\n" + line[:20])
    client = _client(tmp_path)
    assert _strict(client.get("/api/runs/r/metrics").text)["total"] == 1
    (tmp_path / "r.jsonl").write_text(line + "\n" + line.replace('"epoch": 0', '"epoch": 1') + "\n")
    assert _strict(client.get("/api/runs/r/metrics?since=1").text)["rows"][0]["epoch"] == 1


# ----- refusals -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("run_id", ["../outside", "..%2Foutside", "%2E%2E/outside", "done%2F..%2Fnan", "%2E/nan",
                                    "%2Fetc%2Fpasswd", "/etc/passwd", "nan%00", "done", "docs-runs/reproduce/results",
                                    "link", "linked/seed0", "trials", "does-not-exist"])
def test_ids_that_are_not_runs_under_the_folder_are_refused(tmp_path, runs_dir, run_id):
    (tmp_path / "outside.jsonl").write_text(json.dumps({"epoch": 0, "evaluation_accuracy": 0.5}) + "\n")
    root = tmp_path / "root"
    shutil.copytree(runs_dir, root, symlinks=True)
    (root / "link.jsonl").symlink_to(tmp_path / "outside.jsonl")            # a file link out of DIR
    (root / "linked").symlink_to(DOCS_RUNS / "reproduce" / "ch1-30")        # a folder link out of DIR
    client = _client(root)
    assert not {"link", "outside"} & set(_runs(client)) and not any(r.startswith("linked/") for r in _runs(client))
    response = client.get(f"/api/runs/{run_id}/metrics")
    assert response.status_code == 404, response.text
    assert "epoch" not in response.text


def test_no_runs_folder_no_runs(tmp_path):
    client = TestClient(create_app(FlatNetwork(), model_name="flat"))
    for url in ("/api/runs", "/api/runs/x/metrics"):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"] == "NoRunsFolder"
    assert client.get("/api/health").json()["runs"] is None
    with pytest.raises(FileNotFoundError, match="no such folder"):
        create_app(FlatNetwork(), runs_dir=str(tmp_path / "missing"))
    out = subprocess.run([sys.executable, "-m", "nndl.cli.serve", "--port", "0", "--runs", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no such folder" in out.stderr


def _snapshot(root: Path) -> dict:
    """Every entry under ``root`` (hidden ones too) with its kind, size and modification time."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            seen[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return seen


def test_nothing_is_written_under_the_folder(tmp_path, runs_dir):
    root = tmp_path / "root"
    shutil.copytree(runs_dir, root)
    before = _snapshot(root)
    client = _client(root)
    for _ in range(2):
        for run_id in _runs(client):
            assert client.get(f"/api/runs/{run_id}/metrics").status_code == 200
            client.get(f"/api/runs/{run_id}/metrics?since=1")
    for bad in ("../x", "done/checkpoint"):
        client.get(f"/api/runs/{bad}/metrics")
    assert _snapshot(root) == before
    assert client.post("/api/runs").status_code == 405          # no method changes anything


def test_the_page_has_the_runs_tab(client):
    page = client.get("/").text
    assert 'id="tab-runs"' in page and "/static/runs.js" in page
    script = client.get("/static/runs.js")
    assert script.status_code == 200 and "/api/runs" in script.text
    assert np.isfinite(_runs(client)["done/metrics"]["modified"])
