"""``nndl lr-find``: the book's search for the learning-rate threshold."""
from __future__ import annotations

import argparse
import json
import math

from .common import positive_float
from .train import add_training_flags, settings_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser("lr-find", help="find the η threshold where the training cost stops falling")
    add_training_flags(p)
    p.add_argument("--etas", type=lambda s: [positive_float(v) for v in s.split(",")],
                   default=[0.01, 0.1, 1.0, 10.0, 100.0], help="learning rates to try (default 0.01,...,100)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..experiment import build_network, load_data
    from ..train.lrfind import find_threshold
    from ..train.trainer import fit

    if args.epochs is None:
        args.epochs = 3
    if args.train_size is None:
        args.train_size = 10_000
    settings, _ = settings_from_args(args)
    training, _, _ = load_data(settings, args.data_dir)
    seed = 0 if args.seed is None else args.seed

    def train_costs(eta: float) -> list[float]:
        net = build_network(settings, seed)
        with np.errstate(all="ignore"):  # a too-large η may overflow: that is what we look for
            costs = [net.total_cost(training)]
            try:
                history = fit(net, training, settings["epochs"], settings["mini_batch_size"], eta,
                              optimizer=settings["optimizer"], seed=seed, monitor_training_cost=True,
                              monitor_evaluation_accuracy=False, lmbda=settings["lmbda"])
                costs += history.training_cost
            except FloatingPointError:
                costs.append(math.inf)
        if not args.json:
            print(f"eta = {eta:<8g} training cost: {' → '.join(f'{c:.4f}' for c in costs)}", flush=True)
        return costs

    report = find_threshold(train_costs, args.etas)
    if args.json:
        print(json.dumps(report))
    elif report["threshold"] is None:
        print("the cost fell at none of these rates: try smaller ones (e.g. --etas 0.0001,0.001)")
    else:
        print(f"threshold: eta = {report['threshold']:g} (the largest rate at which the cost falls at once); "
              f"the book suggests about half: --eta {report['suggested_eta']:g}")
    return 0
