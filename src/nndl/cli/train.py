"""``nndl train``: train a network from flags or a recipe, printing the book's per-epoch line."""
from __future__ import annotations

import argparse
import json
import os

from ..settings import FLAG_SETTINGS, MACHINE_SETTINGS, add_flags, given_flags, settings_from
from .common import add_data_dir, non_negative_int


def add_training_flags(p: argparse.ArgumentParser) -> None:
    """The flags shared by train, sweep, ensemble and lr-find: one per setting (``nndl.settings``),
    plus --recipe, --seed and --data-dir."""
    p.add_argument("--recipe", help="start from a recipe of the book (see `nndl reproduce --list`)")
    add_flags(p, "train")
    p.add_argument("--seed", type=non_negative_int, default=None)
    add_data_dir(p)


def settings_from_args(args: argparse.Namespace) -> tuple[dict, dict]:
    """(settings, recipe or {}) from --recipe plus any flags given."""
    from ..recipes import load_recipe

    recipe = load_recipe(args.recipe) if args.recipe else {}
    return settings_from({**recipe.get("settings", {}), **given_flags(args)}), recipe


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a network on MNIST",
                              description="Train a network and report accuracy after each epoch.")
    add_training_flags(p)
    p.add_argument("--save", metavar="PATH", help="save the trained network (.npz)")
    p.add_argument("--metrics", metavar="PATH", help="write one JSON line per epoch")
    p.add_argument("--checkpoint", metavar="DIR", help="save the training state after every epoch; if DIR "
                   "holds this run's checkpoint (same settings and seed), go on from it")
    p.add_argument("--resume", metavar="DIR", help="continue the run checkpointed in DIR (its settings; "
                   "--epochs, --device and --threads may change)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: on interactive terminals)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiment import checkpoint_of_this_run
    from ..experiment import run as run_settings

    if args.resume:
        settings, seed = resumed_settings(args)
        checkpoint = args.checkpoint or args.resume
        checkpoint_of_this_run(args.resume, settings, seed)     # refuses an ended run, fewer epochs
        if os.path.abspath(checkpoint) != os.path.abspath(args.resume):
            checkpoint_of_this_run(checkpoint, settings, seed)  # never overwrites another run
        resume = args.resume
    else:
        settings, _ = settings_from_args(args)
        seed = 0 if args.seed is None else args.seed
        checkpoint = args.checkpoint
        resume = checkpoint_of_this_run(checkpoint, settings, seed) if checkpoint else None
    from ..nn import kernels

    settings["kernels"] = kernels.use(settings["kernels"])
    if not args.quiet:
        print(f"nndl train: {describe(settings)}, seed {seed}, kernels {settings['kernels']}", flush=True)
        if resume:
            from ..train.checkpoint import read_checkpoint_meta

            print(f"resuming from {resume} (next epoch {read_checkpoint_meta(resume)['trainer']['next_epoch']})",
                  flush=True)
    result = run_settings(settings, seed, data_dir=args.data_dir, verbose=not args.quiet, progress=args.progress,
                          metrics=args.metrics, checkpoint=checkpoint, resume=resume, save=args.save)
    summary = {k: v for k, v in result.items() if k not in ("history", "network")}
    if args.save and not args.quiet and "best_validation_epoch" in result:
        print(f"saved {args.save}: the network of epoch {result['best_validation_epoch']}, the best on validation",
              flush=True)
    print(json.dumps(summary))
    return 0


def resumed_settings(args: argparse.Namespace) -> tuple[dict, int]:
    """The settings and seed of the run checkpointed in ``args.resume``, with the flags that may
    change on a resume applied; any other run flag is refused rather than silently ignored."""
    from ..errors import RecipeError
    from ..experiment import checkpointed_run

    may_change = ("epochs", *MACHINE_SETTINGS)
    given = [f"--{dest.replace('_', '-')}" for dest in ("recipe", "seed", *FLAG_SETTINGS)
             if dest not in may_change and getattr(args, dest, None) is not None]
    if given:
        raise RecipeError(f"--resume continues the run in {args.resume} with its own settings; only "
                          f"--epochs, --device, --threads and --kernels may change (given: {', '.join(given)})")
    settings, seed, _ = checkpointed_run(args.resume)
    for key in may_change:              # e.g. started on a GPU, finished on the CPU
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return settings, seed


def describe(settings: dict) -> str:
    """The header's summary of a run. Full-batch CG and L-BFGS use neither eta nor m, and count
    iterations, not epochs."""
    from ..settings import FULL_BATCH

    net = "conv net" if settings["layers"] else f"[{','.join(map(str, settings['sizes']))}] {settings['activation']}"
    extra = f", lambda={settings['lmbda']}" if settings["lmbda"] else ""
    if settings["optimizer"] in FULL_BATCH:
        return (f"{net}, {settings['cost']} cost, {settings['optimizer']} on the full training set{extra}, "
                f"at most {settings['epochs']} iterations")
    return (f"{net}, {settings['cost']} cost, {settings['optimizer']} eta={settings['eta']}{extra}, "
            f"m={settings['mini_batch_size']}, {settings['epochs']} epochs")
