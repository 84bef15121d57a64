"""The Runs tab in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright, as
in test_browser.py) opens the page of ``nndl serve --runs DIR`` (a real uvicorn server), a real
``nndl train`` writes its metrics and checkpoints into DIR meanwhile, and the page must show the
run appear, its curve gain points while it trains, its epoch, speed and time left, and then mark it
finished; the runs of docs/runs (the book's table) are drawn several to a chart.

If Chromium cannot be started the test fails (it is not skipped): ``apt-get install -y chromium``.
NNDL_SCREENSHOT_RUNS=path keeps a screenshot of the finished run there.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.helpers import served_page

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 8
# A run long enough to watch (about a second an epoch here: all 50,000 images, the training cost
# monitored), short enough for a test.
TRAIN = ["--sizes", "784,100,10", "--cost", "cross-entropy", "--eta", "0.5", "--epochs", str(EPOCHS),
         "--monitor", "training_cost,evaluation_accuracy", "--quiet"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(page, runs folder): Chromium on the Runs tab of ``nndl serve --runs DIR``, DIR holding a copy
    of docs/runs' chapter 1 and 3 runs."""
    folder = tmp_path_factory.mktemp("serve-runs")
    runs = folder / "runs"
    shutil.copytree(ROOT / "docs" / "runs" / "reproduce", runs / "reproduce")
    with served_page(folder, "--runs", str(runs), viewport={"width": 1280, "height": 900}) as (page, url):
        page.goto(url + "/#poll=250")
        page.click("#tab-runs")
        page.wait_for_function("() => window.nndlRuns.polls > 0 && window.nndlRuns.runs.length > 0")
        yield page, runs


def _points(page, run_id: str, key: str = "evaluation_accuracy") -> int:
    """How many epochs the run's curve of ``key`` has on the page (0: not drawn)."""
    return page.evaluate("([id, key]) => { const line = [...document.querySelectorAll('polyline')].find("
                         "(l) => l.dataset.run === id && l.dataset.key === key); return line ? +line.dataset.n : 0; }",
                         [run_id, key])


def _status(page, run_id: str) -> str | None:
    return page.evaluate("(id) => { const tr = [...document.querySelectorAll('#runs-table tbody tr')].find("
                         "(r) => r.dataset.id === id); return tr ? tr.dataset.status : null; }", run_id)


def test_a_run_training_now_appears_gains_points_and_is_marked_finished(served):
    page, runs = served
    run_id = "live/metrics"
    assert _status(page, run_id) is None
    with open(runs.parent / "train.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nndl", "train", *TRAIN,
                                 "--metrics", str(runs / "live" / "metrics.jsonl"), "--checkpoint", str(runs / "live")],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NNDL_DOCS_QUICK": "0"})
    try:
        # It appears as running, and is ticked (drawn) at once, being new.
        page.wait_for_function("(id) => window.nndlRuns.runs.some((r) => r.id === id && r.status === 'running')",
                               arg=run_id, timeout=120000)
        page.wait_for_function("(id) => window.nndlRuns.selected.includes(id)", arg=run_id)
        seen, live = [], set()
        while True:                     # the curve's points, poll after poll, until the run ends
            status, n = _status(page, run_id), _points(page, run_id)
            if not seen or seen[-1] != (status, n):
                seen.append((status, n))
            if status == "finished":
                break
            assert proc.poll() is None or proc.returncode == 0, (runs.parent / "train.log").read_text()
            if status == "running":
                live.add(page.locator(f"#runs-live p[data-id='{run_id}']").inner_text())
            page.wait_for_timeout(100)
        assert proc.wait(timeout=120) == 0, (runs.parent / "train.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    # While it ran, the page said its epoch (of how many), its speed and the time left.
    assert any(f"of {EPOCHS} epochs done" in text and "s per epoch" in text and "left" in text for text in live), live
    counts = [n for status, n in seen if status == "running"]
    assert len({n for n in counts if n > 0}) >= 2, f"the curve never grew while running: {seen}"
    assert counts == sorted(counts), seen
    page.wait_for_function("(id) => [...document.querySelectorAll('polyline')].some((l) => l.dataset.run === id "
                           "&& l.dataset.key === 'evaluation_accuracy' && +l.dataset.n === %d)" % EPOCHS, arg=run_id)
    assert _points(page, run_id, "training_cost") == EPOCHS                 # the cost chart too
    assert page.locator(f"#runs-live p[data-id='{run_id}']").count() == 0     # no longer live
    row = page.locator(f"#runs-table tr[data-id='{run_id}']").inner_text()
    lines = [json.loads(line) for line in (runs / "live" / "metrics.jsonl").read_text().splitlines()]
    best = max(line["evaluation_accuracy"] for line in lines)
    assert f"{EPOCHS} / {EPOCHS}" in row and f"{100 * best:.2f}%" in row, row
    if os.environ.get("NNDL_SCREENSHOT_RUNS"):
        page.screenshot(path=os.environ["NNDL_SCREENSHOT_RUNS"], full_page=True)


def test_the_books_runs_are_drawn_several_to_a_chart(served):
    page, _ = served
    ids = ["reproduce/ch3-overfit/seed0", "reproduce/ch3-overfit-l2/seed0", "reproduce/ch1-30/seed0"]
    for run_id in ids:
        page.locator(f"#runs-table tr[data-id='{run_id}']").click()
    page.wait_for_function("(ids) => ids.every((id) => (window.nndlRuns.rows[id] || []).length > 0)", arg=ids)
    page.wait_for_timeout(300)
    assert [_points(page, i) for i in ids] == [400, 400, 30]
    assert _points(page, ids[0], "training_cost") == 400 and _points(page, ids[2], "training_cost") == 0
    books = page.locator("#chart-accuracy line.book")
    assert books.count() == 3                          # ch3-overfit, ch3-overfit-l2, ch1-30
    legend = page.locator("#runs-legend").inner_text()
    assert "book 82.27%" in legend and "book 95.42%" in legend, legend
    colours = page.evaluate("(ids) => ids.map((id) => document.querySelector(`polyline[data-run='${id}']"
                            "[data-key='evaluation_accuracy']`).getAttribute('stroke'))", ids)
    assert len(set(colours)) == 3
    page.locator(f"#runs-table tr[data-id='{ids[2]}']").click()            # unticked: gone from the charts
    page.wait_for_function("(id) => !document.querySelector(`polyline[data-run='${id}']`)", arg=ids[2])
    page.fill("#runs-filter", "ch3-overfit-l2")
    assert page.locator("#runs-table tbody tr").count() == 2               # seeds 0 and 1
