"""``nndl ensemble``: train N networks in parallel and let them vote (chapter 6).

    nndl ensemble --recipe ch3-l2-30 --members 5 --out runs/ensemble
    nndl ensemble --recipe ch3-l2-30 --members 5 --scheduler tcp://10.0.0.1:8786 --out /shared/ens
    nndl ensemble --recipe ch6-ensemble --out runs/ch6-ensemble      # 5 ch6-dropout networks
"""
from __future__ import annotations

import argparse

from .common import positive_int


def register(subparsers) -> None:
    from .sweep import add_executor_flags
    from .train import add_training_flags

    p = subparsers.add_parser("ensemble", help="train N networks in parallel and report their plurality vote",
                              description="Train --members networks (seeds 0..N-1, or from --seed) with the same "
                                          "settings, save each as DIR/member{k}.npz and report each member's and "
                                          "the vote's test accuracy. Rerunning skips the members already trained.")
    add_training_flags(p)
    p.add_argument("--members", type=positive_int, metavar="N",
                   help="number of networks (default for an ensemble recipe such as ch6-ensemble: its n_members)")
    add_executor_flags(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for member{k}.npz, members.jsonl, ensemble.json")
    p.add_argument("--quiet", action="store_true", help="no line per finished member")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ensemble import report_lines, train_ensemble
    from .train import settings_from_args

    settings, recipe = settings_from_args(args)
    members = args.members
    kind = recipe.get("kind", "network")
    if kind == "ensemble":  # e.g. ch6-ensemble: train its members' recipe, n_members of them
        settings, _ = settings_from_args(argparse.Namespace(**{**vars(args), "recipe": recipe["members"]}))
        members = members or int(recipe.get("n_members", 5))
    elif kind != "network":
        raise ValueError(f"recipe {args.recipe} is of kind {kind!r}, not a network to train")
    if not members:
        raise ValueError("give --members N: how many networks to train")
    report = train_ensemble(settings, members, out=args.out, first_seed=args.seed or 0, workers=args.workers,
                            scheduler=args.scheduler, data_dir=args.data_dir, verbose=not args.quiet)
    print("\n".join(report_lines(report)))
    print(f"({report['executed']} member(s) trained now, {report['skipped']} found finished; "
          f"written to {args.out}/ensemble.json)")
    return 0
