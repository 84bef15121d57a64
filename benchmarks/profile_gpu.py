"""Where the host time of nndl's GPU training goes: cProfile of ch6-relu steps on CuPy.

    python benchmarks/profile_gpu.py [--batch 10] [--steps 300]

Needs CuPy and a CUDA GPU. Prints the time per step (the GPU waited for at the end) and the
functions with the most time of their own.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats

from bench_conv import NndlRun, data
from bench_gpu import cupy_or_exit


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=10, help="mini-batch size (default 10)")
    p.add_argument("--steps", type=int, default=300, help="profiled steps (default 300)")
    p.add_argument("--top", type=int, default=25, help="functions listed (default 25)")
    args = p.parse_args(argv)
    cupy_or_exit()
    x, y = data(args.batch * args.steps)
    run = NndlRun(args.batch, x, y, threads=None, net="relu", device="gpu")   # warm-up: kernels compiled
    profile = cProfile.Profile()
    profile.enable()
    seconds = run.epoch()
    profile.disable()
    print(f"{seconds / args.steps * 1e3:.2f} ms per step at m = {args.batch} (profiled)")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
