"""``nndl train``: train a network from flags or a recipe, printing the book's per-epoch line."""
from __future__ import annotations

import argparse
import json
import os

from .common import (
    add_data_dir,
    add_kernels_flag,
    int_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

# flag dest → settings key, for flags whose value maps one to one
FLAG_SETTINGS = ("sizes", "activation", "output_activation", "cost", "init", "output_encoding", "epochs",
                 "mini_batch_size", "eta", "lmbda", "regularization", "optimizer", "mu", "dropout", "train_size",
                 "validation_size", "digits", "expand", "evaluate_on", "early_stopping", "schedule",
                 "schedule_patience", "schedule_factor", "schedule_floor", "max_norm", "clip_norm",
                 "monitor_every", "monitor_size", "dataset", "dtype", "device",
                 "threads", "kernels", "monitor")


def add_training_flags(p: argparse.ArgumentParser) -> None:
    """The flags shared by train and sweep (each maps to a setting of the same name)."""
    from ..nn.activations import ACTIVATIONS
    from ..nn.costs import COSTS
    from ..nn.init import NETWORK_INITS
    from ..train.optimizers import OPTIMIZERS, REGULARIZATIONS

    p.add_argument("--recipe", help="start from a recipe of the book (see `nndl reproduce --list`)")
    g = p.add_argument_group("network")
    g.add_argument("--sizes", type=int_list, help="layer sizes, e.g. 784,30,10")
    g.add_argument("--activation", choices=list(ACTIVATIONS), help="hidden (and output) neurons")
    g.add_argument("--output-activation", choices=list(ACTIVATIONS), help="output neurons, if different")
    g.add_argument("--cost", choices=list(COSTS))
    g.add_argument("--init", choices=list(NETWORK_INITS), help="default: N(0,1/n_in) weights; large: chapter 1's N(0,1)")
    g.add_argument("--output-encoding", choices=["one-hot", "binary"])
    g.add_argument("--dropout", type=non_negative_float, help="dropout probability on hidden layers")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=non_negative_int)
    g.add_argument("--mini-batch-size", type=positive_int)
    g.add_argument("--eta", type=positive_float, help="learning rate η")
    g.add_argument("--lmbda", type=non_negative_float, help="regularisation parameter λ")
    g.add_argument("--regularization", choices=[r for r in REGULARIZATIONS if r != "none"])
    g.add_argument("--optimizer", choices=[*OPTIMIZERS, "cg", "lbfgs"],
                   help="cg and lbfgs are full-batch (scipy); --epochs then counts their iterations")
    g.add_argument("--mu", type=non_negative_float, help="momentum coefficient μ")
    g.add_argument("--max-norm", type=positive_float, help="cap each unit's incoming weight norm")
    g.add_argument("--clip-norm", type=positive_float, help="clip each gradient to this global norm")
    g.add_argument("--early-stopping", type=positive_int, metavar="N", help="stop after N epochs without improvement")
    g.add_argument("--schedule", choices=["plateau", "step", "exponential"])
    g.add_argument("--schedule-patience", type=positive_int)
    g.add_argument("--schedule-factor", type=positive_float)
    g.add_argument("--schedule-floor", type=positive_float)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["mnist", "fashion-mnist"])
    g.add_argument("--train-size", type=positive_int, help="use only the first N training images")
    g.add_argument("--validation-size", type=positive_int)
    g.add_argument("--digits", type=int_list, help="train and evaluate on these digits only, e.g. 0,1")
    g.add_argument("--expand", choices=["shift4"], help="the book's 250,000 one-pixel-shifted images")
    g.add_argument("--evaluate-on", choices=["test", "validation"], help="data monitored each epoch")
    g.add_argument("--monitor-every", type=positive_int, metavar="N",
                   help="the book's quick check: accuracy on a few validation images every N training images")
    g.add_argument("--monitor-size", type=positive_int, metavar="K", help="validation images for --monitor-every")
    g.add_argument("--monitor", type=lambda s: [k.strip().replace("-", "_") for k in s.split(",") if k.strip()],
                   help="comma list of training_cost, training_accuracy, evaluation_cost, evaluation_accuracy")
    g = p.add_argument_group("machine")
    g.add_argument("--dtype", choices=["float32", "float64"])
    g.add_argument("--device", choices=["cpu", "gpu"])
    g.add_argument("--threads", type=positive_int,
                   help="cores to use (default: all for the conv kernels; BLAS threads chosen by the work per batch)")
    add_kernels_flag(g)
    g.add_argument("--seed", type=non_negative_int, default=None)
    add_data_dir(p)


def settings_from_args(args: argparse.Namespace) -> tuple[dict, dict]:
    """(settings, recipe or {}) from --recipe plus any flags given."""
    from ..recipes import load_recipe, settings_from

    recipe = load_recipe(args.recipe) if args.recipe else {}
    overrides = dict(recipe.get("settings", {}))
    for key in FLAG_SETTINGS:
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return settings_from(overrides), recipe


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
    from ..recipes import checkpoint_of_this_run
    from ..recipes import run as run_settings

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
            from ..models.io import read_checkpoint_meta

            print(f"resuming from {resume} (next epoch {read_checkpoint_meta(resume)['trainer']['next_epoch']})",
                  flush=True)
    result = run_settings(settings, seed, data_dir=args.data_dir, verbose=not args.quiet, progress=args.progress,
                          metrics=args.metrics, checkpoint=checkpoint, resume=resume, save=args.save)
    summary = {k: v for k, v in result.items() if k not in ("history", "network")}
    print(json.dumps(summary))
    return 0


def resumed_settings(args: argparse.Namespace) -> tuple[dict, int]:
    """The settings and seed of the run checkpointed in ``args.resume``, with the flags that may
    change on a resume applied; any other run flag is refused rather than silently ignored."""
    from ..recipes import MACHINE_SETTINGS, RecipeError, checkpointed_run

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
    net = "conv net" if settings["layers"] else f"[{','.join(map(str, settings['sizes']))}] {settings['activation']}"
    extra = f", lambda={settings['lmbda']}" if settings["lmbda"] else ""
    return (f"{net}, {settings['cost']} cost, {settings['optimizer']} eta={settings['eta']}{extra}, "
            f"m={settings['mini_batch_size']}, {settings['epochs']} epochs")
