"""The web app in a real browser: headless Chromium (Debian's ``chromium`` package, driven by
Playwright) opens the page served by ``nndl serve`` (a real uvicorn server on 127.0.0.1), draws
MNIST test digits stroke by stroke with the mouse, and must show what the network reads: a digit,
or the reader's message instead ("unsure: 4 or 9", "that does not look like a digit", "No digit
yet"), never an earlier answer beside it.

Playwright never downloads a browser here: it is pointed at /usr/bin/chromium. If Chromium cannot
be started the test fails (it is not skipped): install it with ``apt-get install -y chromium``.
Set NNDL_SCREENSHOT=path to also keep the screenshot there (docs/screenshot.png was made so).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import urllib.request

import numpy as np
import pytest

from nndl.data import images
from nndl.models import load_default_model
from nndl.reading import decide
from nndl.segment import read_number
from tests.web.helpers import served_page

SCALE = 10  # canvas pixels per MNIST pixel: 28 x 10 = the 280-pixel canvas


@pytest.fixture(scope="module")
def net():
    """The bundled default model: the page is served exactly as `nndl serve` serves it."""
    return load_default_model()


@pytest.fixture(scope="module")
def page(net, tmp_path_factory):
    """Chromium showing the page of ``nndl serve`` (a subprocess on a free port), both started at once."""
    with served_page(tmp_path_factory.mktemp("serve"), viewport={"width": 1100, "height": 900}) as (page, url):
        page.goto(url + "/")
        page.wait_for_function("document.getElementById('model-name').textContent.includes('parameters')")
        yield page


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


def _draw(page, img28: np.ndarray, dx: float = 0.0, scale: float = SCALE) -> int:
    """Draw a digit's ink row run by row run (one stroke each), ``dx`` canvas pixels from the left,
    ``scale`` canvas pixels per MNIST pixel."""
    box = page.locator("#pad").bounding_box()
    width = page.evaluate("document.getElementById('pad').width")
    k = box["width"] / width  # screen pixels per canvas pixel

    def at(col: float, row: float) -> tuple[float, float]:
        return box["x"] + (dx + (col + 0.5) * scale) * k, box["y"] + (row + 0.5) * scale * k

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


def _scribble(page, seed: int = 0, points: int = 120) -> None:
    """One long tangled stroke over the whole canvas: a sum of random sinusoids, loops crossing loops."""
    rng = np.random.default_rng(seed)
    box = page.locator("#pad").bounding_box()
    t = np.linspace(0, 1, points)
    fx, fy = rng.integers(3, 8, 2), rng.integers(3, 8, 2)
    px, py = rng.uniform(0, 2 * np.pi, (2, 2))
    u = 0.5 + 0.25 * (np.sin(2 * np.pi * fx[0] * t + px[0]) + 0.6 * np.sin(2 * np.pi * fx[1] * t + px[1]))
    v = 0.5 + 0.25 * (np.sin(2 * np.pi * fy[0] * t + py[0]) + 0.6 * np.sin(2 * np.pi * fy[1] * t + py[1]))
    page.mouse.move(box["x"] + u[0] * box["width"], box["y"] + v[0] * box["height"])
    page.mouse.down()
    for a, b in zip(u[1:], v[1:]):
        page.mouse.move(box["x"] + a * box["width"], box["y"] + b * box["height"])
    page.mouse.up()


def _api_predict(page, png: bytes) -> dict:
    """What the server's /api/predict answers for ``png``."""
    url = page.url.split("/", 3)
    request = urllib.request.Request("/".join(url[:3]) + "/api/predict", data=png,
                                     headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.load(r)


def _shown(page) -> dict:
    """What the digit result area shows: the big digit (when visible), the message, the hint."""
    return page.evaluate(r"""() => {
      const $ = (id) => document.getElementById(id), visible = (el) => !el.classList.contains("hidden");
      return {digit: visible($("digit")) ? $("digit").textContent.trim() : null,
              message: visible($("message")) ? $("message").textContent.trim() : null,
              hint: visible($("marks-hint")) ? $("marks-hint").textContent.replace(/\s+/g, " ").trim() : null,
              top: document.querySelectorAll("#bars li.top").length,
              preprocessed: $("preprocessed").hasAttribute("src"),
              activations: document.querySelectorAll("#activations canvas").length,
              error: visible($("error")) ? $("error").textContent : null};
    }""")


def _assert_nothing_left(shown: dict) -> None:
    """No digit, bars, image or activations of an earlier answer."""
    assert shown["digit"] in (None, "–") and shown["top"] == 0, shown
    assert not shown["preprocessed"] and shown["activations"] == 0 and shown["hint"] is None, shown


def _canvas_png(page) -> bytes:
    url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
    return base64.b64decode(url.split(",", 1)[1])


def _well_read(net, mnist, labels, one_piece: bool = False) -> list[int]:
    """A test image per label that the network reads correctly and confidently (``one_piece``:
    and whose ink is one connected mark, not a 5 with its top stroke apart)."""
    from scipy import ndimage

    x, y = mnist[2]
    a = net.feedforward(x[:2000])
    good = (a.argmax(axis=1) == y[:2000]) & (a.max(axis=1) > 0.99)
    if one_piece:
        good &= [ndimage.label(im.reshape(28, 28) > 0.5, np.ones((3, 3)))[1] == 1 for im in x[:2000]]
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


def test_two_digits_in_digit_mode_hint_at_number_mode(page, net, mnist):
    x, y = mnist[2]
    picks = _well_read(net, mnist, [2, 5], one_piece=True)
    page.click("#clear")
    for k, i in enumerate(picks):
        _draw(page, x[i], dx=140 * k, scale=5)     # two half-size digits side by side
    _wait_answered(page)
    answer = _api_predict(page, _canvas_png(page))
    assert answer["marks"] == 2 and page.evaluate("window.nndlState.result.marks") == 2
    assert _shown(page)["hint"] == "Looks like several digits: try Number mode"
    page.click("#try-number")                      # the hint's button: Number mode, drawing kept
    assert page.evaluate("document.getElementById('pad').width") == 840
    assert page.evaluate("window.nndlState.strokes.length") > 0
    _wait_answered(page)
    assert page.inner_text("#number").strip() == read_number(net, _canvas_png(page)).number
    page.click("#mode-digit")
    _wait_answered(page)
    assert _shown(page)["hint"] is None


def test_a_scribble_is_shown_as_the_api_reads_it(page, net):
    """With a ten-output model a scribble may still be read as a digit; whatever the reader
    says, the page shows exactly that: its message when the digit is null, else the digit."""
    for seed in range(3):
        page.click("#clear")
        _scribble(page, seed)
        _wait_answered(page)
        answer, shown = _api_predict(page, _canvas_png(page)), _shown(page)
        result = page.evaluate("window.nndlState.result")
        assert {k: result[k] for k in ("digit", "reason", "message")} == \
            {k: answer[k] for k in ("digit", "reason", "message")}
        if answer["digit"] is None:
            assert answer["reason"] in ("not-a-digit", "unsure")
            assert shown["digit"] is None and shown["message"] == answer["message"] and shown["top"] == 0
            assert page.get_attribute("#digit-result", "data-reason") == answer["reason"]
        else:
            assert shown["digit"] == str(answer["digit"]) and shown["message"] is None


def test_a_scribble_is_not_a_digit(page, net):
    if net.n_classes == 10:
        pytest.skip("needs the rejection output: the bundled model has 10 outputs, not 11 (not-a-digit)")
    page.click("#clear")
    _scribble(page, 0)
    _wait_answered(page)
    assert page.evaluate("window.nndlState.result.reason") == "not-a-digit"
    assert _shown(page)["message"] == "that does not look like a digit" and _shown(page)["digit"] is None


def test_an_unsure_answer_is_a_message_with_the_bars(page, net, mnist):
    """The page's rendering of "unsure" (an answer made up here: the bundled model is rarely unsure)."""
    proba = np.array([0.075] * 4 + [0.22] + [0.075] * 4 + [0.18])
    body = {**decide(proba)[0].to_dict(), "marks": 1, "activations": [],
            "preprocessed": base64.b64encode(images.to_png(np.zeros(784, np.float32))).decode()}
    x, _ = mnist[2]
    [i] = _well_read(net, mnist, [1])
    page.click("#clear")
    page.route("**/api/predict*", lambda route: route.fulfill(status=200, content_type="application/json",
                                                              body=json.dumps(body)))
    try:
        _draw(page, x[i])
        _wait_answered(page)
    finally:
        page.unroute("**/api/predict*")
    shown = _shown(page)
    assert shown["message"] == "unsure: 4 or 9" and shown["digit"] is None and shown["top"] == 0
    assert page.locator("#bars li.candidate .label").all_inner_texts() == ["4", "9"]
    assert page.get_attribute("#digit-result", "data-reason") == "unsure"
    assert page.locator("#bars li .value").nth(4).inner_text() == "22.0%"   # the bars are still shown


def test_a_blank_submission_after_a_digit_shows_no_digit(page, net, mnist):
    x, y = mnist[2]
    [i] = _well_read(net, mnist, [6])
    page.click("#clear")
    _draw(page, x[i])
    _wait_answered(page)
    assert _shown(page)["digit"] == str(y[i])
    blank = images.to_png(np.zeros(784, np.float32))           # what the server gets next: a blank image
    page.route("**/api/predict*", lambda route: route.continue_(post_data=blank))
    try:
        box = page.locator("#pad").bounding_box()
        page.mouse.click(box["x"] + 20, box["y"] + 20)         # one more stroke, sent as the blank image
        _wait_answered(page)
    finally:
        page.unroute("**/api/predict*")
    assert page.evaluate("window.nndlState.error.reason") == "blank"
    shown = _shown(page)
    assert shown["message"] == "No digit yet: draw a little more." and shown["error"] is None
    _assert_nothing_left(shown)


def test_a_late_answer_to_a_cleared_drawing_is_not_shown(page, net, mnist):
    """The answer for a drawing arrives after the canvas was cleared: it is dropped, not shown."""
    x, _ = mnist[2]
    [i] = _well_read(net, mnist, [8])
    page.click("#clear")
    page.evaluate("""() => {                     // hold every answer back by 1.5 s
      window.realFetch = window.fetch;
      window.late = 0;
      window.fetch = (...args) => window.realFetch(...args).then(
        (r) => new Promise((ok) => setTimeout(() => { window.late += 1; ok(r); }, 1500)));
    }""")
    try:
        _draw(page, x[i])
        page.click("#clear")                   # before the first answer has come back
        page.wait_for_function("() => window.late >= 1 && !window.nndlState.inFlight", timeout=20000)
        _wait_answered(page)
    finally:
        page.evaluate("window.fetch = window.realFetch")
    shown = _shown(page)
    assert shown["message"] is None and page.evaluate("window.nndlState.result") is None
    _assert_nothing_left(shown)
