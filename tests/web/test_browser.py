"""The web app in a real browser: headless Chromium (Debian's ``chromium`` package, driven by
Playwright) opens the page served by ``nndl serve`` (a real uvicorn server on 127.0.0.1), draws
MNIST test digits stroke by stroke with the mouse, and must show what the network reads.

Playwright never downloads a browser here: it is pointed at /usr/bin/chromium. If Chromium cannot
be started the test fails (it is not skipped): install it with ``apt-get install -y chromium``.
Set NNDL_SCREENSHOT=path to also keep the screenshot there (docs/screenshot.png was made so).
"""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nndl.data import images
from nndl.models import load_default_model
from nndl.segment import read_number
from tests.web.helpers import free_port, wait_for_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
SCALE = 10  # canvas pixels per MNIST pixel: 28 x 10 = the 280-pixel canvas


@pytest.fixture(scope="module")
def net():
    """The bundled default model: the page is served exactly as `nndl serve` serves it."""
    return load_default_model()


@pytest.fixture(scope="module")
def page(net, tmp_path_factory):
    """Chromium showing the page of ``nndl serve`` (a subprocess on a free port), both started at once."""
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    with open(folder / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nndl.cli.serve", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            # No skip: a missing or broken Chromium must fail the test suite.
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                wait_for_server(url, proc, folder / "server.log")
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(url + "/")
                page.wait_for_function("document.getElementById('model-name').textContent.includes('parameters')")
                yield page
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _row_runs(img28: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, first column, last column) of each run of ink pixels (> 0.5) in a 28x28 image."""
    ink = img28.reshape(28, 28) > 0.5
    runs = []
    for r in range(28):
        cols = np.flatnonzero(ink[r])
        if cols.size:
            breaks = np.flatnonzero(np.diff(cols) > 1)
            for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, cols.size - 1]):
                runs.append((r, int(cols[a]), int(cols[b])))
    return runs


def _draw(page, img28: np.ndarray, dx: float = 0.0) -> int:
    """Draw a digit's ink row run by row run (one stroke each), ``dx`` canvas pixels from the left."""
    box = page.locator("#pad").bounding_box()
    width = page.evaluate("document.getElementById('pad').width")
    k = box["width"] / width  # screen pixels per canvas pixel

    def at(col: float, row: float) -> tuple[float, float]:
        return box["x"] + (dx + (col + 0.5) * SCALE) * k, box["y"] + (row + 0.5) * SCALE * k

    runs = _row_runs(img28)
    for row, c0, c1 in runs:
        page.mouse.move(*at(c0, row))
        page.mouse.down()
        page.mouse.move(*at(c1, row))
        page.mouse.up()
    return len(runs)


def _wait_answered(page) -> None:
    page.wait_for_function(
        "() => { const s = window.nndlState; return s.answered === s.version && !s.inFlight && !s.pending; }",
        timeout=20000)


def _canvas_png(page) -> bytes:
    url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
    return base64.b64decode(url.split(",", 1)[1])


def _well_read(net, mnist, labels) -> list[int]:
    """A test image per label that the network reads correctly and confidently."""
    x, y = mnist[2]
    a = net.feedforward(x[:2000])
    good = (a.argmax(axis=1) == y[:2000]) & (a.max(axis=1) > 0.99)
    return [int(np.flatnonzero(good & (y[:2000] == d))[0]) for d in labels]


def test_drawing_a_digit_shows_the_network_reading(page, net, mnist, tmp_path):
    x, y = mnist[2]
    [i] = _well_read(net, mnist, [3])
    page.click("#clear")
    strokes = _draw(page, x[i])
    assert page.evaluate("window.nndlState.strokes.length") == strokes > 5
    _wait_answered(page)
    shown = page.inner_text("#digit").strip()
    server_reads = int(net.predict(images.preprocess(_canvas_png(page)))[0])
    assert shown == str(server_reads) == str(y[i])
    # the bar of the digit shown is the longest, the 28x28 view and the hidden layer are drawn
    assert page.locator("#bars li").count() == 10
    assert page.locator("#bars li.top .label").inner_text() == shown
    assert page.get_attribute("#preprocessed", "src").startswith("data:image/png;base64,")
    assert page.locator("#activations canvas").count() == len(net.layers) - 1  # one panel per hidden layer
    assert "dense" in page.inner_text("#activations")
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if os.environ.get("NNDL_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["NNDL_SCREENSHOT"])


def test_undo_and_clear(page, net, mnist):
    x, _ = mnist[2]
    [i] = _well_read(net, mnist, [7])
    page.click("#clear")
    n = _draw(page, x[i])
    _wait_answered(page)
    page.click("#undo")
    _wait_answered(page)
    assert page.evaluate("window.nndlState.strokes.length") == n - 1
    assert page.inner_text("#digit").strip() == str(int(net.predict(images.preprocess(_canvas_png(page)))[0]))
    page.click("#clear")
    _wait_answered(page)
    assert page.inner_text("#digit").strip() == "–"
    assert page.evaluate("window.nndlState.strokes.length") == 0


def test_number_mode_reads_several_digits(page, net, mnist):
    x, y = mnist[2]
    picks = _well_read(net, mnist, [4, 2])
    page.click("#mode-number")
    assert page.evaluate("document.getElementById('pad').width") == 840
    for k, i in enumerate(picks):
        _draw(page, x[i], dx=120 + 330 * k)
    _wait_answered(page)
    shown = page.inner_text("#number").strip()
    assert shown == read_number(net, _canvas_png(page)).number == "".join(str(y[i]) for i in picks)
    assert page.locator("#digits li").count() == 2
    page.click("#mode-digit")
    assert page.evaluate("document.getElementById('pad').width") == 280
