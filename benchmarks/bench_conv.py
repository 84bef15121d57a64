"""Training throughput of chapter 6's ch6-relu network: nndl against PyTorch CPU, side by side.

    nice .venv/bin/python benchmarks/bench_conv.py [--images 5000] [--batch 10 100] [--repeats 3]
                                                   [--threads N] [--convpool]

The network: Conv2D 20@5x5 ReLU on 1x28x28 → MaxPool 2 → Conv2D 40@5x5 ReLU → MaxPool 2 →
Dense(640, 100, ReLU) → Dense(100, 10, softmax), log-likelihood cost, plain SGD (η = 0.03).
PyTorch (when installed) trains the identical network (same shapes, batch, cost and update).
By default each library uses its own thread policy: PyTorch one thread per core, nndl what its
trainer picks for the work per mini-batch (shown in the table); ``--threads N`` gives both N. For each mini-batch size m, after a warm-up, both train one epoch over
``--images`` MNIST images (with the shuffle), alternately ``--repeats`` times; the best time of
each is extrapolated to 50,000 images. ``--convpool`` adds a row for the same network built from
the book's ConvPool layers (ReLU after pooling: the same function, less work).

Also printed: the float32 matrix-product peak measured in the same run (a 2048x2048 product),
the floating-point work per image computed from the shapes (a multiply-add is 2 FLOPs; backward
costs twice the forward, except that the first layer needs no input gradient), and the fraction
of the peak that training achieves. "products alone" is the time per epoch of just the step's
matrix products (same shapes, layouts and threads, random data): the floor for an im2col design on
NumPy's matrix product, and its share of the measured epoch. On a machine shared with other jobs the numbers move by
10-30% from run to run: compare rows of the same run.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import time

import numpy as np

import nndl
from nndl.backend import blas_threads, threads_for_work
from nndl.nn.conv import Conv2D, ConvPool, MaxPool
from nndl.train.trainer import Trainer

EPOCH = 50_000
ETA = 0.03


def data(n: int, seed: int = 0):
    """The first n MNIST training images (random images of the same shape if MNIST is absent)."""
    try:
        (x, y), _, _ = nndl.data.load_mnist()
    except Exception:  # no MNIST here: random images time the same
        rng = np.random.default_rng(seed)
        x, y = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)
    return np.ascontiguousarray(x[:n]), np.asarray(y[:n], dtype=np.int64)


def nndl_layers(convpool: bool = False):
    if convpool:
        convs = [ConvPool(20, 5, pool=2, activation="relu", input_shape=(1, 28, 28)),
                 ConvPool(40, 5, pool=2, activation="relu")]
    else:
        convs = [Conv2D(20, 5, activation="relu", input_shape=(1, 28, 28)), MaxPool(2),
                 Conv2D(40, 5, activation="relu"), MaxPool(2)]
    return convs + [nndl.Dense(640, 100, "relu"), nndl.Dense(100, 10, "softmax")]


def flops_per_image() -> int:
    """Training FLOPs of one image: forward 2·MACs, backward 2·(2·MACs), the first layer 2·MACs."""
    macs = [20 * 24 * 24 * 1 * 5 * 5, 40 * 8 * 8 * 20 * 5 * 5, 640 * 100, 100 * 10]
    backward = [1] + [2] * (len(macs) - 1)   # the first layer computes ∂C/∂w only, not ∂C/∂x
    return sum(2 * n * (1 + b) for n, b in zip(macs, backward))


def matmul_peak(threads: int | None, n: int = 2048, repeats: int = 5) -> float:
    """Best float32 n×n matrix-product speed, GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    with blas_threads(threads):
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


@functools.cache   # the rows of one batch size share it: measure once
def matmul_floor(m: int, threads: int | None, repeats: int = 20) -> float:
    """Seconds per training step spent in the matrix products alone (ConvPool net, batch m).

    The same products, shapes and memory layouts as a training step of nndl's im2col layers (for
    each layer: forward, ∂C/∂w, and ∂C/∂x except for the first layer), on random data, best of
    ``repeats``. No im2col, pooling, col2im or activation: a floor for any im2col design whose
    products are NumPy's.
    """
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.random(shape, dtype=np.float32)

    cols1, w1, d1 = r(25, m * 576).T, r(25, 20), r(m * 576, 20)       # conv 1: its patch matrix is built transposed
    cols2, w2, d2 = r(m * 64, 500), r(500, 40), r(m * 64, 40)         # conv 2
    a3, w3, d3 = r(m, 640), r(640, 100), r(m, 100)                    # dense 640 → 100
    a4, w4, d4 = r(m, 100), r(100, 10), r(m, 10)                      # dense 100 → 10

    def step():
        cols1 @ w1, cols1.T @ d1
        cols2 @ w2, cols2.T @ d2, d2 @ w2.T
        a3 @ w3, a3.T @ d3, d3 @ w3.T
        a4 @ w4, a4.T @ d4, d4 @ w4.T

    with blas_threads(threads):
        step()
        return min(_timed(step) for _ in range(repeats))


def _timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


class NndlRun:
    """nndl training the net; ``device="gpu"`` puts the network and images on the GPU (CuPy) and
    waits for it at the end of each timed epoch (bench_gpu.py)."""

    def __init__(self, m: int, x, y, threads: int | None, convpool: bool = False, device: str = "cpu"):
        self.net = nndl.Network(nndl_layers(convpool), cost="log-likelihood", seed=0).to_device(device)
        self.trainer = Trainer(self.net, nndl.SGD(ETA), seed=0)
        self.m, self.threads = m, threads
        self.x, self.y = self.net.prepare_input(x), self.net.encode_targets(y)   # on the device once
        self._sync = nndl.backend.cupy_module().cuda.Device().synchronize if device == "gpu" else (lambda: None)
        self.epoch(warm_up=True)

    def epoch(self, warm_up: bool = False) -> float:
        n = min(len(self.x), 1000) if warm_up else len(self.x)
        self.trainer.epoch = 0   # the same trainer, one more epoch

        def run():
            self.trainer.fit((self.x[:n], self.y[:n]), 1, self.m, threads=self.threads)
            self._sync()

        self._sync()
        return _timed(run)


class TorchRun:
    """PyTorch training the same net; ``device="cuda"`` keeps the model and images on the GPU
    and waits for it at the end of each timed epoch (bench_gpu.py)."""

    def __init__(self, m: int, x, y, threads: int | None, device: str = "cpu"):
        import torch

        torch.set_num_threads(threads or os.cpu_count() or 1)   # PyTorch's default: one per core
        torch.manual_seed(0)
        nn = torch.nn
        self.torch, self.device = torch, torch.device(device)
        self.model = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 40, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(640, 100), nn.ReLU(), nn.Linear(100, 10)).to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=ETA)
        self.loss = nn.CrossEntropyLoss()   # softmax + log-likelihood, mean over the mini-batch
        self.x = torch.from_numpy(np.array(x)).reshape(-1, 1, 28, 28).to(self.device)   # a writable copy
        self.y = torch.from_numpy(np.array(y)).to(self.device)
        self.gen = torch.Generator(device=self.device).manual_seed(0)
        self.m = m
        self.epoch(warm_up=True)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def epoch(self, warm_up: bool = False) -> float:
        n = min(len(self.x), 1000) if warm_up else len(self.x)

        def run():
            perm = self.torch.randperm(n, generator=self.gen, device=self.device)
            xs, ys = self.x[:n][perm], self.y[:n][perm]
            for k in range(0, n, self.m):
                self.opt.zero_grad(set_to_none=True)
                self.loss(self.model(xs[k:k + self.m]), ys[k:k + self.m]).backward()
                self.opt.step()
            self._sync()

        self._sync()
        return _timed(run)


def torch_available() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=5000, help="images per timed epoch (default 5000)")
    p.add_argument("--batch", type=int, nargs="+", default=[10, 100], help="mini-batch sizes (default 10 100)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per library, alternating (default 3)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both (default: PyTorch one per core, nndl its trainer's choice)")
    p.add_argument("--convpool", action="store_true", help="also time the net built from ConvPool layers")
    args = p.parse_args(argv)
    x, y = data(args.images)
    torch_version = torch_available()
    peak = matmul_peak(args.threads)
    flops = flops_per_image()
    print(f"# nndl {nndl.__version__}, numpy {np.__version__}, "
          f"{'torch ' + torch_version if torch_version else 'torch not installed'}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, "
          f"threads: {args.threads or 'each library its default'}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"# float32 matmul peak {peak:.0f} GFLOP/s; {flops / 1e6:.2f} MFLOP per training image; "
          f"{len(x)} images per timed epoch, best of {args.repeats}, extrapolated to {EPOCH:,}")
    print("| net | m | nndl threads | nndl s/epoch | nndl samples/s | nndl GFLOP/s | % of peak | PyTorch s/epoch "
          "| PyTorch samples/s | nndl/PyTorch | products alone s/epoch | products' share |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    variants = [("Conv2D+MaxPool", False)] + ([("ConvPool", True)] if args.convpool else [])
    for m in args.batch:
        runs = {name: NndlRun(m, x, y, args.threads, convpool) for name, convpool in variants}
        theirs = TorchRun(m, x, y, args.threads) if torch_version else None
        best = {name: float("inf") for name in runs}
        best_torch = float("inf")
        for _ in range(args.repeats):   # alternate, so both see the same machine load
            for name, run in runs.items():
                best[name] = min(best[name], run.epoch())
            if theirs:
                best_torch = min(best_torch, theirs.epoch())
        scale = EPOCH / len(x)
        for name, seconds in best.items():
            net = runs[name].net
            threads = args.threads or threads_for_work(3 * m * net.macs_per_sample()) or os.cpu_count()
            s_epoch, rate = seconds * scale, len(x) / seconds
            gflops = rate * flops / 1e9
            torch_cols = (f"{best_torch * scale:.2f} | {len(x) / best_torch:,.0f} | {best_torch / seconds:.2f}"
                          if theirs else "— | — | —")
            floor = matmul_floor(m, threads) * EPOCH / m
            print(f"| {name} | {m} | {threads} | {s_epoch:.2f} | {rate:,.0f} | {gflops:.1f} | {100 * gflops / peak:.0f}% "
                  f"| {torch_cols} | {floor:.2f} | {100 * floor / s_epoch:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
