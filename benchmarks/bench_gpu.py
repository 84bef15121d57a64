"""Training throughput of chapter 6's ch6-relu network on a GPU: nndl on CuPy against PyTorch CUDA.

    python benchmarks/bench_gpu.py [--images 10000] [--batch 10 100 1000] [--repeats 3]

Needs CuPy and a CUDA GPU (PyTorch with CUDA for its column). The same network, cost, update and
timing rules as bench_conv.py (which see): for each mini-batch size, after a warm-up, each library
trains one epoch over ``--images`` MNIST images on the GPU, alternately ``--repeats`` times, and the
best time of each is extrapolated to 50,000 images. Both keep the images on the GPU and wait for
the GPU at the end of each timed epoch. Also printed: the float32 matrix-product peak of the GPU
(CuPy, 8192x8192, no TF32) and the fraction of it that training reaches.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import nndl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench_conv.py beside it, however this is run
from bench_conv import EPOCH, NndlRun, TorchRun, data, flops_per_image, torch_available  # noqa: E402


def cupy_or_exit():
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise SystemExit(f"bench_gpu needs CuPy and a CUDA GPU: {exc}") from exc
    return cupy


def gpu_matmul_peak(cupy, n: int = 8192, repeats: int = 5) -> float:
    """Best float32 n×n matrix-product speed on the GPU, GFLOP/s."""
    a = cupy.random.random((n, n), dtype=cupy.float32)
    b = cupy.random.random((n, n), dtype=cupy.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        a @ b
        cupy.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=10000, help="images per timed epoch (default 10000)")
    p.add_argument("--batch", type=int, nargs="+", default=[10, 100, 1000], help="mini-batch sizes")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per library, alternating (default 3)")
    args = p.parse_args(argv)
    cupy = cupy_or_exit()
    x, y = data(args.images)
    torch_version = torch_available()
    has_torch_cuda = False
    if torch_version:
        import torch
        has_torch_cuda = torch.cuda.is_available()
    peak = gpu_matmul_peak(cupy)
    flops = flops_per_image()
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"# nndl {nndl.__version__}, numpy {np.__version__}, cupy {cupy.__version__}, "
          f"{'torch ' + torch_version if has_torch_cuda else 'no PyTorch CUDA'}, {name}")
    print(f"# float32 matmul peak {peak / 1000:.1f} TFLOP/s; {flops / 1e6:.2f} MFLOP per training image; "
          f"{len(x)} images per timed epoch, best of {args.repeats}, extrapolated to {EPOCH:,}")
    print("| m | nndl s/epoch | nndl samples/s | nndl GFLOP/s | % of peak | PyTorch s/epoch | PyTorch samples/s "
          "| nndl/PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in args.batch:
        ours = NndlRun(m, x, y, threads=None, net="relu", device="gpu")
        theirs = TorchRun(m, x, y, threads=None, device="cuda") if has_torch_cuda else None
        best, best_torch = float("inf"), float("inf")
        for _ in range(args.repeats):
            best = min(best, ours.epoch())
            if theirs:
                best_torch = min(best_torch, theirs.epoch())
        scale = EPOCH / len(x)
        rate = len(x) / best
        torch_cols = (f"{best_torch * scale:.2f} | {len(x) / best_torch:,.0f} | {best_torch / best:.2f}"
                      if theirs else "— | — | —")
        print(f"| {m} | {best * scale:.2f} | {rate:,.0f} | {rate * flops / 1e9:.0f} "
              f"| {100 * rate * flops / 1e9 / peak:.2f}% | {torch_cols} |", flush=True)


if __name__ == "__main__":
    main()
