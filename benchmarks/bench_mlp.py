"""Training throughput of the book's small networks: nndl against PyTorch CPU, side by side.

    python benchmarks/bench_mlp.py [--epochs 2] [--sizes 784,30,10 784,100,10] [--batch 10 100]

For each network and mini-batch size m it trains whole epochs over 50,000 MNIST-shaped images
(quadratic cost, sigmoid neurons, plain SGD η = 3.0, the same update in both) and prints seconds
per epoch, samples per second and the ratio nndl/PyTorch (> 1: nndl is faster). Each epoch
includes the shuffle. PyTorch runs only when it is installed. The book's own network.py, one
example at a time, takes about 4 s per epoch on this kind of machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import nndl
from nndl.train.trainer import Trainer

N = 50_000


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    try:
        (x, y), _, _ = nndl.data.load_mnist()
    except Exception:  # no MNIST here: random images of the same shape time the same
        x, y = rng.random((N, 784), dtype=np.float32), rng.integers(0, 10, N)
    return np.ascontiguousarray(x[:N]), np.asarray(y[:N])


def time_nndl(sizes, m, epochs, x, y) -> float:
    net = nndl.Network.from_sizes(sizes, cost="quadratic", seed=0, init="large")
    trainer = Trainer(net, nndl.SGD(3.0), seed=0)
    trainer.fit((x, y), 1, m)  # warm-up epoch
    start = time.perf_counter()
    trainer.fit((x, y), 1 + epochs, m)
    return (time.perf_counter() - start) / epochs


def time_torch(sizes, m, epochs, x, y) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=3.0)
    xt = torch.from_numpy(x)
    yt = torch.nn.functional.one_hot(torch.from_numpy(y.astype(np.int64)), sizes[-1]).float()
    g = torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(N, generator=g)
        xs, ys = xt[perm], yt[perm]
        for k in range(0, N, m):
            opt.zero_grad(set_to_none=True)
            a = model(xs[k:k + m])
            loss = 0.5 * ((a - ys[k:k + m]) ** 2).sum() / a.shape[0]  # the same quadratic cost
            loss.backward()
            opt.step()

    epoch()  # warm-up
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return (time.perf_counter() - start) / epochs


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--sizes", nargs="+", default=["784,30,10", "784,100,10"])
    p.add_argument("--batch", type=int, nargs="+", default=[10, 100])
    p.add_argument("--torch-threads", type=int, default=None,
                   help="PyTorch intra-op threads (default: its own choice, all cores)")
    args = p.parse_args(argv)
    if args.torch_threads:
        try:
            import torch
            torch.set_num_threads(args.torch_threads)
        except ImportError:
            pass
    x, y = data()
    try:
        import torch
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_info = "torch not installed"
    print(f"# nndl {nndl.__version__}, numpy {np.__version__}, {torch_info}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.2f}")
    print("| network | m | nndl s/epoch | nndl samples/s | PyTorch s/epoch | PyTorch samples/s | nndl/PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for spec in args.sizes:
        sizes = [int(s) for s in spec.split(",")]
        for m in args.batch:
            ours = time_nndl(sizes, m, args.epochs, x, y)
            theirs = time_torch(sizes, m, args.epochs, x, y)
            t_col = f"{theirs:.3f} | {N / theirs:,.0f}" if theirs else "— | —"
            ratio = f"{theirs / ours:.2f}" if theirs else "—"
            print(f"| [{spec}] | {m} | {ours:.3f} | {N / ours:,.0f} | {t_col} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
