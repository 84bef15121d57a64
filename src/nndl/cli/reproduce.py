"""``nndl reproduce``: run the book's experiments (recipes) and compare with the book."""
from __future__ import annotations

import argparse

from .common import add_data_dir, add_kernels_flag, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="run the book's experiments and compare with its numbers")
    p.add_argument("ids", nargs="*", metavar="ID", help="recipe ids (see --list)")
    p.add_argument("--list", action="store_true", help="list the recipes")
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds per recipe (0, 1, ...)")
    p.add_argument("--epochs", type=positive_int, help="override the recipe's epochs")
    p.add_argument("--train-size", type=positive_int, help="train on the first N images only")
    p.add_argument("--mini-batch-size", type=positive_int)
    p.add_argument("--device", choices=["cpu", "gpu"], help="where to train (gpu: CuPy)")
    p.add_argument("--threads", type=positive_int, help="cores to use (default: chosen by the work per batch)")
    add_kernels_flag(p)
    p.add_argument("--out", default="runs/reproduce", help="folder for results.json, results.md and each run")
    p.add_argument("--quiet", action="store_true")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..recipes import load_recipe, recipe_ids
    from ..recipes.reproduce import reproduce, results_markdown

    if args.list or not args.ids:
        for rid in recipe_ids():
            r = load_recipe(rid)
            book = f" (book: {100 * r['book']:.2f}% {r['metric']})" if r.get("book") is not None else ""
            print(f"{rid:22s} {r['description']}{book}")
        return 0
    for rid in args.ids:
        load_recipe(rid)  # fail fast on a typo, before any training
    overrides = {"epochs": args.epochs, "train_size": args.train_size, "mini_batch_size": args.mini_batch_size,
                 "device": args.device, "threads": args.threads, "kernels": args.kernels}
    rows = reproduce(args.ids, seeds=args.seeds, out=args.out, overrides=overrides, data_dir=args.data_dir,
                     verbose=not args.quiet)
    print(results_markdown([r for r in rows if r["id"] in args.ids]), end="")
    print(f"(written to {args.out}/results.json and results.md)")
    return 0
