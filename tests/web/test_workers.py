"""``nndl serve --workers 2``: two server processes on one port (SO_REUSEPORT) answer as one
server does, over many keep-alive connections, and stop together on SIGTERM."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from nndl.cli import serve
from nndl.web.payloads import predict_payload
from tests.web.helpers import digit_model, encode, free_port, wait_for_server


def _workers(pid: int) -> list[int]:
    """The worker processes ``run_workers`` spawned under ``pid`` (Linux /proc)."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(name))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_workers_answer_and_stop_together(tmp_path, mnist):
    net = digit_model()
    net.save(tmp_path / "net.npz")
    x, y = mnist[2]
    pngs = [encode(1 - x[i].reshape(28, 28)) for i in range(16)]
    port = free_port()
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nndl.cli.serve", "--model", str(tmp_path / "net.npz"),
                                 "--port", str(port), "--workers", "2"], stdout=log, stderr=subprocess.STDOUT)
    try:
        health = wait_for_server(f"http://127.0.0.1:{port}", proc, tmp_path / "server.log")
        assert health["model"]["name"] == "net.npz"
        workers = _workers(proc.pid)
        assert len(workers) == 2
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(8)]
        for i, png in enumerate(pngs):  # two requests on each keep-alive connection
            conn = connections[i % 8]
            conn.request("POST", "/api/predict", body=png, headers={"Content-Type": "image/png"})
            response = conn.getresponse()
            assert response.status == 200
            body = json.loads(response.read())
            expected = predict_payload(net, png)
            assert body["digit"] == expected["digit"]
            np.testing.assert_allclose(body["probabilities"], expected["probabilities"], atol=1e-6)
        for conn in connections:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived nndl serve"


def test_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        serve.main(["--workers", "0"])
    assert "--workers" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_refused_before_serving_is_announced(tmp_path, capsys, workers):
    digit_model().save(tmp_path / "net.npz")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve.main(["--model", str(tmp_path / "net.npz"), "--port", str(port), "--workers", workers]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "serving" not in err   # (before: "serving ... on")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stalled_clients_are_dropped_and_the_server_keeps_answering(tmp_path, workers):
    """Sockets that connect and send nothing, half a header, or half a body are closed after
    --request-timeout (before: all five were still open after 190 s); the server still answers."""
    net = digit_model()
    net.save(tmp_path / "net.npz")
    port = free_port()
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nndl.cli.serve", "--model", str(tmp_path / "net.npz"),
                                 "--port", str(port), "--workers", workers, "--request-timeout", "1"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_server(f"http://127.0.0.1:{port}", proc, tmp_path / "server.log")
        partial = [b"", b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                   b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                   b"Content-Length: 5000\r\n\r\n\x89PNG", b"GET /api/health HTTP/1.1\r\nHo"]
        stalled = []
        for data in partial * 5:                                    # 20 stalled clients at once
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(data)
            stalled.append(sock)
        start = time.monotonic()
        for sock in stalled:
            try:
                assert sock.recv(1024) == b""                       # closed by the server
            except ConnectionResetError:
                pass
            sock.close()
        assert time.monotonic() - start < 8
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/health")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
