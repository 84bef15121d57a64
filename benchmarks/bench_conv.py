"""Training throughput of chapter 6's networks: nndl against PyTorch CPU, side by side.

    nice .venv/bin/python benchmarks/bench_conv.py [--images 3000] [--batch 10 100] [--repeats 3]
                                                   [--threads N] [--nets relu conv2d dropout]
                                                   [--kernels numba numpy]

The networks (``--nets``): ``relu``, the book's ch6-relu as the recipes build it — ConvPool
20@5x5 ReLU on 1x28x28 → ConvPool 40@5x5 ReLU → Dense(640, 100, ReLU) → Dense(100, 10,
softmax); ``conv2d``, the same function from Conv2D + MaxPool layers; ``dropout``, ch6-dropout's
network — the two ConvPool layers → dropout 0.5 → Dense(640, 1000, ReLU) → dropout →
Dense(1000, 1000, ReLU) → dropout → Dense(1000, 10, softmax). Log-likelihood cost, plain SGD
(η = 0.03). PyTorch (when installed) trains the identical network (same shapes, batch, cost and
update; its dropout is the inverted kind, which costs the same). Each nndl row names its kernels
(``--kernels``: the fused Numba ones and the NumPy reference, so the gain is visible). By default
each library uses its own thread policy: PyTorch one thread per core, nndl what its trainer picks
(with the fused kernels: the kernels on every core and BLAS on one thread between them; shown in
the table); ``--threads N`` gives both N. For each mini-batch size m, after a warm-up, every row
trains one epoch over ``--images`` MNIST images (with the shuffle), alternately ``--repeats``
times; the best time of each is extrapolated to 50,000 images.

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
from nndl.errors import install_hint
from nndl.nn import kernels
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


# net name → (its dense layer sizes after the conv layers, dropout before each of them)
NETS = {"relu": ([640, 100, 10], 0.0), "conv2d": ([640, 100, 10], 0.0), "dropout": ([640, 1000, 1000, 10], 0.5)}
TITLES = {"relu": "ch6-relu (ConvPool)", "conv2d": "ch6-relu (Conv2D+MaxPool)", "dropout": "ch6-dropout"}


def nndl_layers(net: str = "relu"):
    if net == "conv2d":
        layers = [Conv2D(20, 5, activation="relu", input_shape=(1, 28, 28)), MaxPool(2),
                  Conv2D(40, 5, activation="relu"), MaxPool(2)]
    else:
        layers = [ConvPool(20, 5, pool=2, activation="relu", input_shape=(1, 28, 28)),
                  ConvPool(40, 5, pool=2, activation="relu")]
    sizes, p = NETS[net]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if p:
            layers.append(nndl.Dropout(p, inverted=False))
        layers.append(nndl.Dense(n_in, n_out, "softmax" if i == len(sizes) - 2 else "relu"))
    return layers


def flops_per_image(net: str = "relu") -> int:
    """Training FLOPs of one image: forward 2·MACs, backward 2·(2·MACs), the first layer 2·MACs."""
    sizes = NETS[net][0]
    macs = [20 * 24 * 24 * 1 * 5 * 5, 40 * 8 * 8 * 20 * 5 * 5] + [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    backward = [1] + [2] * (len(macs) - 1)   # the first layer computes ∂C/∂w only, not ∂C/∂x
    return sum(2 * n * (1 + b) for n, b in zip(macs, backward))


def matmul_peak(threads: int | None, n: int = 2048, repeats: int = 10) -> float:
    """Best float32 n×n matrix-product speed, GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    with blas_threads(threads):
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


@functools.cache   # the rows of one net and batch size share it: measure once
def matmul_floor(net: str, m: int, threads: int | None, repeats: int = 20) -> float:
    """Seconds per training step spent in the matrix products alone (the ConvPool net, batch m).

    The same products, shapes and memory layouts as a training step of nndl's reference im2col
    layers (for each layer: forward, ∂C/∂w, and ∂C/∂x except for the first layer), on random
    data, best of ``repeats``. No im2col, pooling, col2im or activation: a floor for any im2col
    design whose products are NumPy's.
    """
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.random(shape, dtype=np.float32)

    cols1, w1, d1 = r(25, m * 576).T, r(25, 20), r(m * 576, 20)       # conv 1: its patch matrix is built transposed
    cols2, w2, d2 = r(m * 64, 500), r(500, 40), r(m * 64, 40)         # conv 2
    sizes = NETS[net][0]
    dense = [(r(m, a), r(a, b), r(m, b)) for a, b in zip(sizes[:-1], sizes[1:])]

    def step():
        cols1 @ w1, cols1.T @ d1
        cols2 @ w2, cols2.T @ d2, d2 @ w2.T
        for a, w, d in dense:
            a @ w, a.T @ d, d @ w.T

    with blas_threads(threads):
        step()
        return min(_timed(step) for _ in range(repeats))


def _timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


class NndlRun:
    """nndl training a net with the given kernels; ``device="gpu"`` puts the network and images
    on the GPU (CuPy) and waits for it at the end of each timed epoch (bench_gpu.py)."""

    def __init__(self, m: int, x, y, threads: int | None, net: str = "relu", device: str = "cpu",
                 kernels_name: str | None = None):
        self.kernels = kernels.use(kernels_name)
        self.net = nndl.Network(nndl_layers(net), cost="log-likelihood", seed=0).to_device(device)
        self.trainer = Trainer(self.net, nndl.SGD(ETA), seed=0)
        self.m, self.threads = m, threads
        self.x, self.y = self.net.prepare_input(x), self.net.encode_targets(y)   # on the device once
        self._sync = nndl.backend.cupy_module().cuda.Device().synchronize if device == "gpu" else (lambda: None)
        self.epoch(warm_up=True)

    def epoch(self, warm_up: bool = False) -> float:
        n = min(len(self.x), 1000) if warm_up else len(self.x)
        self.trainer.epoch = 0   # the same trainer, one more epoch
        kernels.use(self.kernels)

        def run():
            self.trainer.fit((self.x[:n], self.y[:n]), 1, self.m, threads=self.threads)
            self._sync()

        self._sync()
        return _timed(run)

    def threads_used(self) -> str:
        """The thread plan the trainer picks, as the table shows it."""
        kernels.use(self.kernels)
        if kernels.plan_threads(self.net, self.threads) == 1:
            return f"{self.threads or os.cpu_count()} + BLAS 1"
        return str(self.threads or threads_for_work(3 * self.m * self.net.macs_per_sample()) or os.cpu_count())


class TorchRun:
    """PyTorch training the same net; ``device="cuda"`` keeps the model and images on the GPU
    and waits for it at the end of each timed epoch (bench_gpu.py)."""

    def __init__(self, m: int, x, y, threads: int | None, device: str = "cpu", net: str = "relu"):
        import torch

        torch.set_num_threads(threads or os.cpu_count() or 1)   # PyTorch's default: one per core
        torch.manual_seed(0)
        nn = torch.nn
        self.torch, self.device = torch, torch.device(device)
        layers = [nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 40, 5), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Flatten()]
        sizes, p = NETS[net]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += ([nn.Dropout(p)] if p else []) + [nn.Linear(n_in, n_out)]
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers).to(self.device)
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


def best_alternating(runs: dict, theirs, repeats: int) -> tuple[dict, float]:
    """The best ``epoch()`` seconds of each run in ``runs`` and of ``theirs`` (or None), timed
    alternately ``repeats`` times so that all see the same machine load."""
    best = {k: float("inf") for k in runs}
    best_torch = float("inf")
    for _ in range(repeats):
        for k, run in runs.items():
            best[k] = min(best[k], run.epoch())
        if theirs:
            best_torch = min(best_torch, theirs.epoch())
    return best, best_torch


def torch_available() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=3000, help="images per timed epoch (default 3000)")
    p.add_argument("--batch", type=int, nargs="+", default=[10, 100], help="mini-batch sizes (default 10 100)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per row, alternating (default 3)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both (default: PyTorch one per core, nndl its trainer's choice)")
    p.add_argument("--nets", nargs="+", choices=list(NETS), default=["relu", "dropout"],
                   help="networks to time (default relu dropout)")
    p.add_argument("--kernels", nargs="+", choices=list(kernels.KERNELS), default=list(kernels.KERNELS),
                   help="nndl kernels to time (default: numba numpy)")
    args = p.parse_args(argv)
    x, y = data(args.images)
    torch_version = torch_available()
    no_torch = f"torch not installed: {install_hint('bench')}"
    peak = matmul_peak(args.threads)
    print(f"# nndl {nndl.__version__}, kernels {' and '.join(kernels.use(k) for k in args.kernels)}, "
          f"numpy {np.__version__}, {'torch ' + torch_version if torch_version else no_torch}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"threads: {args.threads or 'each library its default'}, load average {os.getloadavg()[0]:.2f}")
    print(f"# float32 matmul peak {peak:.0f} GFLOP/s; MFLOP per training image: "
          f"{', '.join(f'{n} {flops_per_image(n) / 1e6:.2f}' for n in args.nets)}; "
          f"{len(x)} images per timed epoch, best of {args.repeats}, extrapolated to {EPOCH:,}")
    print("| net | kernels | m | nndl threads | nndl s/epoch | nndl samples/s | nndl GFLOP/s | % of peak "
          "| PyTorch s/epoch | PyTorch samples/s | nndl/PyTorch | products alone s/epoch | products' share |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for net in args.nets:
        for m in args.batch:
            runs = {k: NndlRun(m, x, y, args.threads, net, kernels_name=k) for k in args.kernels}
            theirs = TorchRun(m, x, y, args.threads, net=net) if torch_version else None
            best, best_torch = best_alternating(runs, theirs, args.repeats)
            scale = EPOCH / len(x)
            for k, seconds in best.items():
                s_epoch, rate = seconds * scale, len(x) / seconds
                gflops = rate * flops_per_image(net) / 1e9
                torch_cols = (f"{best_torch * scale:.2f} | {len(x) / best_torch:,.0f} | {best_torch / seconds:.2f}"
                              if theirs else "— | — | —")
                floor = matmul_floor(net, m, args.threads or threads_for_work(3 * m * runs[k].net.macs_per_sample())
                                     or os.cpu_count()) * EPOCH / m
                print(f"| {TITLES[net]} | {runs[k].kernels} | {m} | {runs[k].threads_used()} | {s_epoch:.2f} "
                      f"| {rate:,.0f} | {gflops:.1f} | {100 * gflops / peak:.0f}% | {torch_cols} | {floor:.2f} "
                      f"| {100 * floor / s_epoch:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
