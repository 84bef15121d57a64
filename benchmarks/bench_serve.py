"""Load test of the web app: ``nndl serve`` under 8 concurrent clients.

    nice .venv/bin/python benchmarks/bench_serve.py [--model M] [--requests 2000] [--concurrency 8]
                                                    [--endpoint predict|read] [--max-seconds 120]

Starts ``nndl serve`` (uvicorn, one process) on 127.0.0.1 at a free port with the model, waits
for /api/health, sends 50 warm-up requests, then ``--requests`` POSTs of a PNG body from
``--concurrency`` concurrent clients (httpx, asyncio), bounded by ``--max-seconds``. Each body is
an MNIST test digit drawn dark on white on a 280x280 canvas, as the web page sends it (``read``:
a strip of six digits). Reports throughput, latency percentiles (p50, p90, p99, max), the error
count, how many answers were right, and the server's and the client's CPU time per request
(which, unlike wall-clock numbers, hardly depends on what else the machine runs). Targets: p50 ≤ 10 ms and ≥ 200 requests/s on 2 cores.

The client runs on the same machine and competes with the server for the cores: on a shared
machine, run it twice and report both.
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


def _server_command(model: str, port: int) -> tuple[list[str], str]:
    from nndl.cli import COMMANDS

    args = ["--model", model, "--host", "127.0.0.1", "--port", str(port)]
    if "serve" in COMMANDS:
        return [sys.executable, "-c", "import sys; from nndl.cli import main; sys.exit(main())", "serve", *args], \
            "nndl serve"
    return [sys.executable, "-m", "nndl.cli.serve", *args], "python -m nndl.cli.serve (same code as nndl serve)"


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (Linux /proc), or None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


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


async def _load(url: str, path: str, bodies: list[tuple[bytes, str]], n: int, concurrency: int,
                max_seconds: float) -> dict:
    """POST ``n`` bodies to ``path`` from ``concurrency`` workers (after 50 warm-up requests)."""
    import httpx

    latencies: list[float] = []
    errors, right = 0, 0
    next_i = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as client:

        async def worker(count: bool) -> None:
            nonlocal next_i, errors, right
            while next_i < (n if count else 50):
                i = next_i
                next_i += 1
                body, truth = bodies[i % len(bodies)]
                t = time.perf_counter()
                try:
                    r = await client.post(path, content=body, headers={"Content-Type": "image/png"})
                    ok = r.status_code == 200
                    answer = r.json() if ok else None
                except httpx.HTTPError:
                    ok, answer = False, None
                dt = time.perf_counter() - t
                if not count:
                    continue
                latencies.append(dt)
                if not ok:
                    errors += 1
                elif str(answer.get("digit", answer.get("number"))) == truth:
                    right += 1

        await asyncio.gather(*(worker(False) for _ in range(concurrency)))  # warm-up
        next_i = 0
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(worker(True) for _ in range(concurrency))), max_seconds)
        except asyncio.TimeoutError:
            pass
        wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": errors, "right_answers": right, "seconds": round(wall, 3),
            "throughput_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p90_ms": round(float(np.percentile(lat, 90)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "max_ms": round(float(lat.max()), 2)}



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a saved network (default: the bundled one, else a quick one)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--endpoint", choices=["predict", "read"], default="predict")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop sending after this long")
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
        cmd, how = _server_command(model, port)
        log = open(os.path.join(tmp, "server.log"), "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, proc)
            cpu0, client0 = _cpu_seconds(proc.pid), time.process_time()
            report = asyncio.run(_load(url, "/api/" + args.endpoint, bodies, args.requests, args.concurrency,
                                       args.max_seconds))
            cpu1, client1 = _cpu_seconds(proc.pid), time.process_time()
            if cpu0 is not None and cpu1 is not None:
                # CPU time per request (incl. the 50 warm-ups): the contention-free cost of a request
                n = report["requests"] + 50
                report["server_cpu_ms_per_request"] = round(1000 * (cpu1 - cpu0) / n, 3)
                report["client_cpu_ms_per_request"] = round(1000 * (client1 - client0) / n, 3)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    report = {"server": how, "model": os.path.basename(model), "endpoint": "/api/" + args.endpoint,
              "concurrency": args.concurrency, "cpus": os.cpu_count(), **report}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
