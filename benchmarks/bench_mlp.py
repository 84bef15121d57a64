"""Training throughput of the book's small networks: nndl against PyTorch CPU, side by side.

    python benchmarks/bench_mlp.py [--repeats 3] [--sizes 784,30,10 784,100,10] [--batch 10 100]
                                   [--kernels numba numpy] [--torch-threads N]

For each network and mini-batch size m it trains whole epochs over 50,000 MNIST-shaped images
(quadratic cost, sigmoid neurons, plain SGD η = 3.0, the same update in both), nndl with each of
``--kernels`` and PyTorch alternately, ``--repeats`` times after a warm-up epoch, and prints the
best seconds per epoch, samples per second and the ratio nndl/PyTorch (> 1: nndl is faster).
Each epoch includes the shuffle. PyTorch runs only when it is installed. The book's own
network.py, one example at a time, takes about 4 s per epoch on this kind of machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

import nndl
from nndl.errors import install_hint
from nndl.nn import kernels
from nndl.train.trainer import Trainer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench_conv.py beside it, however this is run
from bench_conv import best_alternating  # noqa: E402

N = 50_000


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    try:
        (x, y), _, _ = nndl.data.load_mnist()
    except Exception:  # no MNIST here: random images of the same shape time the same
        x, y = rng.random((N, 784), dtype=np.float32), rng.integers(0, 10, N)
    return np.ascontiguousarray(x[:N]), np.asarray(y[:N])


class NndlRun:
    def __init__(self, sizes, m, x, y, kernels_name: str):
        self.kernels = kernels.use(kernels_name)
        self.net = nndl.Network.from_sizes(sizes, cost="quadratic", seed=0, init="large")
        self.trainer = Trainer(self.net, nndl.SGD(3.0), seed=0)
        self.m, self.x, self.y = m, x, y
        self.epoch()   # warm-up (and the kernels compiled)

    def epoch(self) -> float:
        kernels.use(self.kernels)
        self.trainer.epoch = 0
        start = time.perf_counter()
        self.trainer.fit((self.x, self.y), 1, self.m)
        return time.perf_counter() - start


class TorchRun:
    def __init__(self, sizes, m, x, y):
        import torch

        torch.manual_seed(0)
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.Sigmoid()]
        self.torch, self.model, self.m = torch, torch.nn.Sequential(*layers), m
        self.opt = torch.optim.SGD(self.model.parameters(), lr=3.0)
        self.x = torch.from_numpy(np.array(x))      # a writable copy
        self.y = torch.nn.functional.one_hot(torch.from_numpy(y.astype(np.int64)), sizes[-1]).float()
        self.gen = torch.Generator().manual_seed(0)
        self.epoch()   # warm-up

    def epoch(self) -> float:
        start = time.perf_counter()
        perm = self.torch.randperm(N, generator=self.gen)
        xs, ys, m = self.x[perm], self.y[perm], self.m
        for k in range(0, N, m):
            self.opt.zero_grad(set_to_none=True)
            a = self.model(xs[k:k + m])
            loss = 0.5 * ((a - ys[k:k + m]) ** 2).sum() / a.shape[0]  # the same quadratic cost
            loss.backward()
            self.opt.step()
        return time.perf_counter() - start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per row, alternating (default 3)")
    p.add_argument("--sizes", nargs="+", default=["784,30,10", "784,100,10"])
    p.add_argument("--batch", type=int, nargs="+", default=[10, 100])
    p.add_argument("--kernels", nargs="+", choices=list(kernels.KERNELS), default=list(kernels.KERNELS),
                   help="nndl kernels to time (default: numba numpy)")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="PyTorch intra-op threads (default: one per core)")
    args = p.parse_args(argv)
    x, y = data()
    try:
        import torch
        torch.set_num_threads(args.torch_threads or os.cpu_count() or 1)
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch = None
        torch_info = f"torch not installed: {install_hint('bench')}"
    print(f"# nndl {nndl.__version__}, kernels {' and '.join(kernels.use(k) for k in args.kernels)}, "
          f"numpy {np.__version__}, {torch_info}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.2f}; "
          f"best of {args.repeats} epochs")
    print("| network | kernels | m | nndl s/epoch | nndl samples/s | PyTorch s/epoch | PyTorch samples/s "
          "| nndl/PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for spec in args.sizes:
        sizes = [int(s) for s in spec.split(",")]
        for m in args.batch:
            runs = {k: NndlRun(sizes, m, x, y, k) for k in args.kernels}
            theirs = TorchRun(sizes, m, x, y) if torch else None
            best, best_torch = best_alternating(runs, theirs, args.repeats)
            for k, ours in best.items():
                t_col = f"{best_torch:.3f} | {N / best_torch:,.0f} | {best_torch / ours:.2f}" if theirs else "— | — | —"
                print(f"| [{spec}] | {runs[k].kernels} | {m} | {ours:.3f} | {N / ours:,.0f} | {t_col} |", flush=True)


if __name__ == "__main__":
    main()
