"""Helpers shared by the handwriting tests (images, segment, web): a small trained network and
images made from MNIST test digits.

``digit_model()`` is [784, 100, 10] sigmoid neurons with the cross-entropy cost, trained for 3
epochs on the first 20,000 MNIST training images (about 95.7% on the test set, in about two
seconds). It is trained once per test session: the function is cached and every test file's
fixture calls it.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib

import numpy as np


@functools.lru_cache(maxsize=1)
def digit_model():
    import nndl

    training, _, _ = nndl.data.load_mnist()
    net = nndl.Network([nndl.Dense(784, 100, "sigmoid"), nndl.Dense(100, 10, "sigmoid")],
                       cost="cross-entropy", seed=0)
    net.fit((training[0][:20000], training[1][:20000]), epochs=3, mini_batch_size=10, eta=0.5)
    return net


class FlatNetwork:
    """A stand-in network whose every answer is nearly flat: 4 and 9 a little ahead of the rest,
    far below the reader's 0.6, so that the reader says "unsure: 4 or 9"."""

    PROBABILITIES = np.array([0.075] * 4 + [0.22] + [0.075] * 4 + [0.18])
    layers: list = []
    n_params, n_classes, input_shape = 0, 10, (784,)

    def predict_proba(self, x):
        return np.tile(self.PROBABILITIES, (np.atleast_2d(x).shape[0], 1))


def encode(a: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    """An array (h, w) or (h, w, 3|4) of uint8, or floats in [0, 1], as image file bytes."""
    from PIL import Image

    a = np.asarray(a)
    if a.dtype != np.uint8:
        a = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims width x height pixels (a decompression-bomb shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\x00" * 1024)  # far fewer pixels than claimed
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def digit_columns(image: np.ndarray) -> np.ndarray:
    """A 28x28 MNIST image (flat or square) cut to the columns holding its ink: (28, w)."""
    im = np.asarray(image, dtype=np.float32).reshape(28, 28)
    cols = np.flatnonzero((im > 0.1).any(axis=0))
    return im[:, cols[0]:cols[-1] + 1]


def strip(images, gap: int, pad: int = 6) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """MNIST digits side by side, ``gap`` columns apart (negative: overlapping, so they touch).

    Returns the strip (white ink on black, floats in [0, 1]) and each digit's column range.
    """
    parts = [digit_columns(im) for im in images]
    width = sum(p.shape[1] for p in parts) + gap * (len(parts) - 1) + 2 * pad
    out = np.zeros((28 + 2 * pad, width), np.float32)
    spans, c = [], pad
    for p in parts:
        region = out[pad:pad + 28, c:c + p.shape[1]]
        np.maximum(region, p, out=region)
        spans.append((c, c + p.shape[1]))
        c += p.shape[1] + gap
    return out, spans


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log_path, seconds: float = 60) -> dict:
    """Wait until ``nndl serve`` (``proc``) answers ``url``/api/health; return that answer.
    Raises with the server's log if it exits or does not answer within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
                if r.status == 200:
                    return json.load(r)
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nndl serve did not start: {log_path.read_text()}")
        time.sleep(0.1)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


@contextlib.contextmanager
def served_page(folder, *serve_args: str, viewport: dict):
    """(Chromium page, url): ``nndl serve`` with ``serve_args`` in a subprocess on a free port, its
    log in ``folder``/server.log, and a browser page of the given size once it answers. Both stop
    on exit. No skip: a missing or broken Chromium must fail the test suite."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    with open(folder / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nndl.cli.serve", "--port", str(port), *serve_args],
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                wait_for_server(url, proc, folder / "server.log")
                yield browser.new_page(viewport=viewport), url
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
