"""``nndl evaluate``: accuracy of a saved network (or a voting ensemble) on MNIST."""
from __future__ import annotations

import argparse
import json

from .common import add_data_dir, add_kernels_flag, pick_split


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="accuracy of saved networks on test or validation data")
    p.add_argument("models", nargs="+", metavar="MODEL", help="a saved network (.npz); several with --ensemble")
    p.add_argument("--data", choices=["test", "validation", "training"], default="test")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    p.add_argument("--ensemble", action="store_true",
                   help="plurality vote of the models (and their averaged probabilities)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    add_kernels_flag(p)
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.io import load

    if len(args.models) > 1 and not args.ensemble:
        raise ValueError("several models given: add --ensemble to let them vote, or evaluate one at a time")
    x, y = pick_split(args.data_dir, args.data, args.dataset)
    nets = [load(path) for path in args.models]
    report: dict = {"data": args.data, "n": int(len(y))}
    if args.ensemble:
        from ..ensemble import Ensemble

        ens = Ensemble(nets)
        report["members"] = [{"model": path, "accuracy": net.accuracy((x, y))} for path, net in zip(args.models, nets)]
        report["accuracy"] = ens.accuracy((x, y))
        report["averaged_accuracy"] = ens.averaged_accuracy((x, y))
    else:
        report["model"] = args.models[0]
        report["accuracy"] = nets[0].accuracy((x, y))
    report["correct"] = int(round(report["accuracy"] * len(y)))
    if args.json:
        print(json.dumps(report))
    else:
        for member in report.get("members", []):
            print(f"{member['model']}: {member['accuracy']:.2%}")
        label = "ensemble vote" if args.ensemble else args.models[0]
        print(f"{label}: {report['correct']} / {report['n']} = {report['accuracy']:.2%} on {args.data} data")
        if args.ensemble:
            print(f"averaged probabilities: {report['averaged_accuracy']:.2%}")
    return 0
