"""Benchmark: how sweeps scale with workers (issue 7).

Runs the same N small trials (default 8: [784,30,10] sigmoid, 50,000 images, 6 epochs, each a
CPU-bound single-BLAS-thread training run) three ways and prints the wall-clock time and speed-up
over one local worker:

* 1 local worker process (the baseline),
* 2 local worker processes (target: ≥ 1.7×),
* a Dask LocalCluster of 2 worker processes, 1 thread each (target: ≥ 1.6×).

Each executor is warmed first (workers started, MNIST loaded by a 0-epoch trial per worker), so
the times compare training throughput, not interpreter start-up. The load average before and
after is printed: on a shared machine other work steals cores and the speed-up shows it.

    NNDL_DATA=/path/to/data nice -n 10 python benchmarks/bench_sweep.py [--trials 8] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time

from nndl.executors import DaskExecutor, LocalExecutor, available_cores, make_trial

BASE = {"sizes": [784, 30, 10], "cost": "cross-entropy", "eta": 0.5, "evaluate_on": "validation",
        "validation_size": 1000, "threads": 1}


def trials(n: int, train_size: int, epochs: int) -> list[dict]:
    return [make_trial({**BASE, "train_size": train_size, "epochs": epochs}, seed, params={"seed": seed})
            for seed in range(n)]


def warm(executor, workers: int) -> set[int]:
    """Start the workers and load MNIST in each (0-epoch trials); return the pids that answered."""
    warmups = [make_trial({**BASE, "train_size": 100, "epochs": 0}, 10_000 + k) for k in range(workers)]
    return {r["worker"]["pid"] for r in executor.imap_unordered(warmups, None)}


def timed(executor, work: list[dict]) -> dict:
    start = time.perf_counter()
    results = list(executor.imap_unordered(work, None))
    wall = time.perf_counter() - start
    mean_trial = sum(r["seconds"] for r in results) / len(results)
    return {"wall_seconds": round(wall, 2), "trial_seconds_mean": round(mean_trial, 2),
            "workers_used": len({r["worker"]["pid"] for r in results}),
            "blas_threads": sorted({r["worker"]["blas_threads"] for r in results if r["worker"]["blas_threads"]})}


def bench_local(workers: int, work: list[dict]) -> dict:
    with LocalExecutor(workers, blas_threads=1) as ex:
        warmed = warm(ex, workers)
        return {"executor": f"local, {workers} worker(s)", "warmed_workers": len(warmed), **timed(ex, work)}


def bench_dask(workers: int, work: list[dict]) -> dict:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        ex = DaskExecutor(client)
        warmed = warm(ex, workers)
        return {"executor": f"dask LocalCluster, {workers} worker(s)", "warmed_workers": len(warmed), **timed(ex, work)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=6)  # ~3 s trials: start-up costs stay small
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    work = trials(args.trials, args.train_size, args.epochs)
    load_before = os.getloadavg()
    print(f"{args.trials} trials of [784,30,10] on {args.train_size} images × {args.epochs} epochs; "
          f"{available_cores()} cores; load average before {' '.join(f'{v:.2f}' for v in load_before)}", flush=True)
    rows = []
    for run in (lambda: bench_local(1, work), lambda: bench_local(2, work), lambda: bench_dask(2, work)):
        row = run()
        row["speedup"] = round(rows[0]["wall_seconds"] / row["wall_seconds"], 2) if rows else 1.0
        row["load_average_1min"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(f"{row['executor']:32s} {row['wall_seconds']:7.2f} s wall  ×{row['speedup']:.2f}  "
              f"(mean trial {row['trial_seconds_mean']:.2f} s, {row['workers_used']} worker(s) used, "
              f"BLAS threads {row['blas_threads']}, load {row['load_average_1min']})", flush=True)
    targets = {"local, 2 worker(s)": 1.7, "dask LocalCluster, 2 worker(s)": 1.6}
    for row in rows[1:]:
        target = targets[row["executor"]]
        print(f"{row['executor']}: speed-up {row['speedup']:.2f} (target ≥ {target}): "
              f"{'met' if row['speedup'] >= target else 'NOT met'}")
    load_after = os.getloadavg()
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        from nndl.models.io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps({"rows": rows, "load_before": load_before, "load_after": load_after,
                                                  "cores": available_cores(), "args": vars(args)}, indent=1).encode())


if __name__ == "__main__":
    main()
