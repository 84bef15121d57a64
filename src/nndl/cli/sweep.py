"""``nndl sweep``: a grid or random hyper-parameter search, on local processes or a Dask cluster.

    nndl sweep --recipe ch3-l2-30 --epochs 10 --grid eta=0.1,0.5,1 lmbda=0.5,5,10 --out runs/sweep
    nndl sweep --sizes 784,30,10 --cost cross-entropy --random 20 --range eta=0.01:3:log lmbda=0.1:10 --out runs/rs

Selection is by validation accuracy only (see ``nndl.sweep``).
"""
from __future__ import annotations

import argparse

from .common import positive_int


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    """--workers and --scheduler, shared by sweep and ensemble."""
    g = p.add_argument_group("where trials run")
    g.add_argument("--workers", type=positive_int, help="local worker processes (default: one per core)")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this Dask scheduler instead of local processes (needs nndl[dist]; docs/CLUSTER.md)")


def register(subparsers) -> None:
    from .train import add_training_flags

    p = subparsers.add_parser("sweep", help="hyper-parameter search: grid or random, selected by validation accuracy",
                              description="Train one network per setting (and seed), rank the trials by validation "
                                          "accuracy and print the best settings as an `nndl train` command. "
                                          "Training flags (and --recipe) give the settings every trial shares.")
    add_training_flags(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--grid", nargs="+", action="extend", default=[], metavar="NAME=V1,V2",
                   help="values to try, e.g. eta=0.1,0.5,1 lmbda=0.1,1,5 (list settings: sizes=784,30,10/784,100,10); "
                        "with --random, choices picked at random")
    g.add_argument("--random", type=positive_int, metavar="N",
                   help="random search: N points drawn from --range (the draw is fixed by --seed)")
    g.add_argument("--range", nargs="+", action="extend", default=[], metavar="NAME=LO:HI[:log]",
                   help="range for --random, e.g. eta=0.01:3:log (log is the default when HI/LO >= 10)")
    g.add_argument("--seeds", type=positive_int, default=1, help="seeds per setting (from --seed, default 0)")
    add_executor_flags(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for trials.jsonl, results.md/json and plots")
    p.add_argument("--quiet", action="store_true", help="no line per finished trial")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..sweep import SweepError, grid_points, parse_grid, parse_ranges, random_points, results_markdown, run_sweep
    from .train import settings_from_args

    if args.evaluate_on == "test":
        raise SweepError("a sweep selects by validation accuracy; drop --evaluate-on test")
    settings, recipe = settings_from_args(args)
    if recipe.get("kind", "network") != "network":
        hint = f"; sweep its members' recipe, --recipe {recipe['members']}" if recipe.get("members") else ""
        raise SweepError(f"recipe {args.recipe} is of kind {recipe['kind']!r}, not a network to train{hint}")
    grid, ranges = parse_grid(args.grid), parse_ranges(args.range)
    first_seed = args.seed or 0
    if args.random:
        points = random_points(ranges, args.random, seed=first_seed, choices=grid)
    elif ranges:
        raise SweepError("--range is for random search: add --random N (or give values with --grid)")
    elif grid:
        points = grid_points(grid)
    else:
        raise SweepError("nothing to sweep: give --grid NAME=V1,V2,... or --random N --range NAME=LO:HI")
    report = run_sweep(settings, points, out=args.out, seeds=args.seeds, first_seed=first_seed, recipe_id=args.recipe,
                       workers=args.workers, scheduler=args.scheduler, data_dir=args.data_dir, verbose=not args.quiet)
    print()
    print(results_markdown(report), end="")
    print(f"\n{report['executed']} trial(s) trained now, {report['skipped']} found finished in {args.out}/trials.jsonl")
    if report["command"]:
        print(f"best settings (by validation accuracy):\n  {report['command']}")
    return 0
