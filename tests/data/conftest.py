"""Fixtures for the data tests: the real MNIST folder, tiny hand-made data sets, a local HTTP mirror."""
from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from nndl.data import find_dataset_dir, write_idx
from nndl.data.sources import dataset_files
from tests.web.helpers import digit_model

MNIST_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST files, found the way users find them ($NNDL_DATA/mnist in the test setup)."""
    folder = find_dataset_dir("mnist")
    if folder is None:
        pytest.fail("MNIST not found: run the tests with NNDL_DATA=/work/shared (MNIST in /work/shared/mnist)")
    return folder


@pytest.fixture
def isolated_env(tmp_path, monkeypatch) -> Path:
    """Empty $NNDL_DATA and $NNDL_CACHE, no mirror override: nothing found unless a test puts it there."""
    data = tmp_path / "nndl_data"
    data.mkdir()
    monkeypatch.setenv("NNDL_DATA", str(data))
    monkeypatch.setenv("NNDL_CACHE", str(tmp_path / "nndl_cache"))
    monkeypatch.delenv("NNDL_MNIST_MIRRORS", raising=False)
    monkeypatch.delenv("NNDL_FASHION_MNIST_MIRRORS", raising=False)
    return data


def make_tiny(folder: Path, *, n_train: int = 120, n_test: int = 30, seed: int = 0, gz: bool = True,
              side: int = 28, n_train_labels: int | None = None, max_label: int = 9) -> dict:
    """Write a small MNIST-shaped data set (random uint8 images, labels cycling 0..max_label)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train_labels": (np.arange(n_train_labels or n_train) % (max_label + 1)).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % (max_label + 1)).astype(np.uint8),
    }
    for role, a in arrays.items():
        write_idx(folder / (MNIST_NAMES[role] + (".gz" if gz else "")), a)
    return arrays


@pytest.fixture
def tiny():
    return make_tiny


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def serve():
    """``serve(folder) -> base URL`` of a local HTTP server for ``folder``; all stopped after the test."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A short poll interval: shutdown() waits for it.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A URL on a port nothing listens on (bound, then closed): connections are refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="session")
def mirror_dir(tmp_path_factory, mnist_dir) -> Path:
    """A folder with copies of the real MNIST .gz files, to be served as a mirror."""
    folder = tmp_path_factory.mktemp("mirror")
    for role, path in dataset_files("mnist", mnist_dir).items():
        # Mirrors are asked for <name>.gz; a raw local copy is served under that name too.
        shutil.copy(path, folder / f"{MNIST_NAMES[role]}.gz")
    return folder


@pytest.fixture(scope="session")
def net():
    """A small network that reads MNIST digits (for the image-preprocessing tests)."""
    return digit_model()


@pytest.fixture(scope="session")
def test_digits(mnist):
    """The first 200 MNIST test digits and their labels."""
    x, y = mnist[2]
    return x[:200], y[:200]


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a 10 MB body sent 2 bytes at a time, 20 times a second."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        import time

        self.send_response(200)
        self.send_header("Content-Length", str(10 << 20))
        self.end_headers()
        try:
            for _ in range(10_000):
                self.wfile.write(b"\x1f\x8b")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass


@pytest.fixture
def trickle_url():
    """The base URL of a server that never finishes sending (a mirror trickling 40 bytes a second)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
