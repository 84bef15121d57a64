"""Load test of the web app: ``nndl serve`` under 8 concurrent clients.

    nice .venv/bin/python benchmarks/bench_serve.py [--model M] [--requests 2000] [--concurrency 8]
        [--endpoint predict|read] [--workers N] [--rate R] [--max-seconds 120]

Starts ``nndl serve --workers N`` (uvicorn; N server processes, default one per core) on
127.0.0.1 at a free port with the model, waits for /api/health, sends 50 warm-up requests, then
``--requests`` POSTs of a PNG body over ``--concurrency`` keep-alive connections, bounded by
``--max-seconds``. Each body is an MNIST test digit drawn dark on white on a 280x280 canvas, as
the web page draws it (``read``: a strip of six digits). Reports throughput, latency percentiles
(p50, p90, p99, max), the error count, how many answers were right, and the server's (all its
processes) and the client's CPU time per request, which, unlike wall-clock numbers, hardly
depends on what else the machine runs. Targets: p50 ≤ 10 ms and ≥ 200 requests/s on 2 cores.

By default the test is a closed loop: each connection sends its next request when the answer
to its last one arrives, so the latency is about concurrency / throughput (Little's law), and
p50 ≤ 10 ms at 8 connections asks for about 800 requests/s. ``--rate R`` makes it an open loop
instead (requests due at R per second, latency counted from when each was due, as wrk2 does):
the latency at a given load.

The client is lean (asyncio streams on uvloop when installed, the requests' bytes made once,
answers read by Content-Length), as wrk is: it runs on the server's machine and competes with
it for the cores. On a shared machine, run it twice and report both.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

import nndl
from nndl.models.default import DefaultModelMissingError, default_model_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _canvas_png(img28: np.ndarray) -> bytes:
    """A digit as the page sends it: dark ink on a white 280x280 canvas, PNG."""
    from PIL import Image

    small = Image.fromarray(np.round((1 - img28.reshape(28, 28)) * 255).astype(np.uint8))
    buf = io.BytesIO()
    small.resize((280, 280), Image.Resampling.BICUBIC).save(buf, format="PNG")
    return buf.getvalue()


def _strip_png(digits: list[np.ndarray]) -> bytes:
    from PIL import Image

    strip = np.concatenate([np.pad(d.reshape(28, 28), ((4, 4), (2, 2))) for d in digits], axis=1)
    img = Image.fromarray(np.round((1 - strip) * 255).astype(np.uint8))
    buf = io.BytesIO()
    img.resize((img.width * 4, img.height * 4), Image.Resampling.BICUBIC).save(buf, format="PNG")
    return buf.getvalue()


def _server_command(model: str, port: int, workers: int) -> tuple[list[str], str]:
    from nndl.cli import COMMANDS

    args = ["--model", model, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if "serve" in COMMANDS:
        return [sys.executable, "-c", "import sys; from nndl.cli import main; sys.exit(main())", "serve", *args], \
            "nndl serve"
    return [sys.executable, "-m", "nndl.cli.serve", *args], "python -m nndl.cli.serve (same code as nndl serve)"


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # the fields after the command's name


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc): the server's worker processes."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                children.setdefault(int(_stat(int(name))[1]), []).append(int(name))
            except (OSError, ValueError, IndexError):
                pass  # ended meanwhile
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def _cpu_seconds(pids: list[int]) -> tuple[float, float] | None:
    """(user, system) CPU seconds used by processes ``pids`` (Linux /proc), or None elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        fields = [_stat(pid) for pid in pids]
    except (OSError, ValueError, IndexError):
        return None
    return sum(int(f[11]) for f in fields) / tick, sum(int(f[12]) for f in fields) / tick


def _wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /api/health within {seconds} s")


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends pre-built requests and reads the answers.

    A lean client, as wrk is: the requests are bytes made once, the answer is read by its
    Content-Length. The client runs on the server's machine and competes with it for the cores,
    so the less CPU it spends the more the numbers measure the server.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(data)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").lower().split("\r\n")
            status = int(lines[0].split()[1])
            fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
            body = await self.reader.readexactly(int(fields["content-length"]))
            if fields.get("connection", "").strip() == "close":
                self.close()
            return status, body
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, KeyError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


async def _load(host: str, port: int, path: str, bodies: list[tuple[bytes, str]], n: int, concurrency: int,
                max_seconds: float, rate: float | None = None, on_start=None) -> dict:
    """POST ``n`` bodies to ``path`` from ``concurrency`` connections (after 50 warm-up requests,
    which also wait for every server process to be up); ``on_start()`` is called between the two.

    Closed loop (``rate`` None): each connection sends its next request as soon as the answer
    to the last one arrives. Open loop (``rate`` R): request i is due at ``i / R`` seconds and
    its latency counts from then, so a slow answer that delays later requests is charged to
    them too (wrk2's correction for coordinated omission).
    """
    requests = [(_request_bytes(host, port, path, body), truth) for body, truth in bodies]
    latencies: list[float] = []
    errors, right = 0, 0
    next_i = 0
    connections = [_Connection(host, port) for _ in range(concurrency)]
    t0 = time.perf_counter()

    async def worker(conn: _Connection, count: bool) -> None:
        nonlocal next_i, errors, right
        while next_i < (n if count else 50):
            i = next_i
            next_i += 1
            data, truth = requests[i % len(requests)]
            due = t0 + i / rate if count and rate else None
            if due is not None and due > time.perf_counter():
                await asyncio.sleep(due - time.perf_counter())
            t = time.perf_counter()
            try:
                status, body = await conn.request(data)
                ok = status == 200
                answer = json.loads(body) if ok else None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, KeyError, ValueError):
                ok, answer = False, None
            dt = time.perf_counter() - (due if due is not None else t)
            if not count:
                continue
            latencies.append(dt)
            if not ok:
                errors += 1
            elif str(answer.get("digit", answer.get("number"))) == truth:
                right += 1

    await asyncio.gather(*(worker(c, False) for c in connections))  # warm-up
    if on_start is not None:
        on_start()
    next_i = 0
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c, True) for c in connections)), max_seconds)
    except asyncio.TimeoutError:
        pass
    wall = time.perf_counter() - t0
    for c in connections:
        c.close()
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": errors, "right_answers": right, "seconds": round(wall, 3),
            "throughput_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p90_ms": round(float(np.percentile(lat, 90)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "max_ms": round(float(lat.max()), 2)}


def _run_loop(coro):
    """Run the client on uvloop when it is installed (the leaner event loop), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _stall(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that send half a request and then nothing (the server drops them after its
    --request-timeout, 20 s by default)."""
    halves = [b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n",
              b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 9000\r\n\r\n\x89PNG", b""]
    socks = []
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(halves[i % len(halves)])
        socks.append(sock)
    return socks


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True                  # nothing to read and not closed: still held open by the server
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a saved network (default: the bundled one, else a quick one)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--endpoint", choices=["predict", "read"], default="predict")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop sending after this long")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="server processes (nndl serve --workers; default: one per core)")
    parser.add_argument("--rate", type=float, default=None, metavar="R",
                        help="open loop: send R requests/s (latency counted from each request's due time); "
                             "default: closed loop, each connection sends as soon as it has its answer")
    parser.add_argument("--stalled", type=int, default=0, metavar="N",
                        help="also hold N stalled clients (half a request each) open during the load")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            try:
                model = str(default_model_path())
            except DefaultModelMissingError:
                sys.path.insert(0, os.path.dirname(__file__))
                from bench_roundtrip import quick_model

                model = os.path.join(tmp, "quick.npz")
                quick_model().save(model)
                print("no default model: serving a quick [784,100,10] model trained here", file=sys.stderr)
        x, y = nndl.data.load_mnist()[2]
        if args.endpoint == "predict":
            bodies = [(_canvas_png(x[i]), str(y[i])) for i in range(50)]
        else:
            bodies = [(_strip_png([x[6 * k + j] for j in range(6)]), "".join(str(v) for v in y[6 * k:6 * k + 6]))
                      for k in range(20)]
        port = _free_port()
        cmd, how = _server_command(model, port, args.workers)
        log = open(os.path.join(tmp, "server.log"), "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, proc)
            server = _process_tree(proc.pid) if os.path.isdir("/proc") else [proc.pid]
            start = {}

            def on_start() -> None:  # after the warm-up: every server process is up and warm
                start["server"], start["client"] = _cpu_seconds(server), os.times()

            stalled = _stall(port, args.stalled)
            report = _run_loop(_load("127.0.0.1", port, "/api/" + args.endpoint, bodies, args.requests,
                                     args.concurrency, args.max_seconds, args.rate, on_start))
            if stalled:
                report["stalled_clients"] = len(stalled)
                report["stalled_still_open_after_load"] = sum(_still_open(s) for s in stalled)
            cpu0, client0 = start["server"], start["client"]
            cpu1, client1 = _cpu_seconds(server), os.times()
            # CPU time per request: the contention-free cost of a request, which (unlike wall-clock
            # numbers) hardly depends on what else the machine runs; "system" is the kernel's share
            per_request = 1000 / report["requests"]
            if cpu0 is not None and cpu1 is not None:
                user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
                report["server_cpu_ms_per_request"] = round(per_request * (user + system), 3)
                report["server_system_cpu_ms_per_request"] = round(per_request * system, 3)
            user, system = client1.user - client0.user, client1.system - client0.system
            report["client_cpu_ms_per_request"] = round(per_request * (user + system), 3)
            report["client_system_cpu_ms_per_request"] = round(per_request * system, 3)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    report = {"server": how, "model": os.path.basename(model), "endpoint": "/api/" + args.endpoint,
              "workers": args.workers, "concurrency": args.concurrency, "rate": args.rate, "cpus": os.cpu_count(),
              **report}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
