"""Where the host time of nndl's GPU training goes: cProfile of ch6-relu steps on CuPy.

    python benchmarks/profile_gpu.py [--batch 10] [--steps 300]

Needs CuPy and a CUDA GPU. Prints the time per step (the GPU waited for at the end) and the
functions with the most time of their own.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import nndl
from bench_conv import ETA, data, nndl_layers
from bench_gpu import cupy_or_exit
from nndl.train.trainer import Trainer


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=10, help="mini-batch size (default 10)")
    p.add_argument("--steps", type=int, default=300, help="profiled steps (default 300)")
    p.add_argument("--top", type=int, default=25, help="functions listed (default 25)")
    args = p.parse_args(argv)
    cupy = cupy_or_exit()
    x, y = data(args.batch * args.steps)
    net = nndl.Network(nndl_layers(convpool=True), cost="log-likelihood", seed=0).to_device("gpu")
    trainer = Trainer(net, nndl.SGD(ETA), seed=0)
    xs, ys = net.prepare_input(x), net.encode_targets(y)
    trainer.fit((xs[:50 * args.batch], ys[:50 * args.batch]), 1, args.batch)     # warm-up: kernels compiled
    trainer.epoch = 0
    cupy.cuda.Device().synchronize()
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    trainer.fit((xs, ys), 1, args.batch)
    cupy.cuda.Device().synchronize()
    profile.disable()
    print(f"{(time.perf_counter() - start) / args.steps * 1e3:.2f} ms per step at m = {args.batch} (profiled)")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
