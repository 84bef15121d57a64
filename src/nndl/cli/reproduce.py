"""``nndl reproduce``: run the book's experiments (recipes) and compare with the book."""
from __future__ import annotations

import argparse

from ..settings import add_flags, given_flags
from .common import add_data_dir, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="run the book's experiments and compare with its numbers")
    p.add_argument("ids", nargs="*", metavar="ID", help="recipe ids (see --list)")
    p.add_argument("--list", action="store_true", help="list the recipes")
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds per recipe (0, 1, ...)")
    add_flags(p, "reproduce")          # override the recipes' epochs, train_size, ... and the machine
    p.add_argument("--out", default="runs/reproduce", help="folder for results.json, results.md and each run")
    p.add_argument("--quiet", action="store_true")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..recipes import load_recipe, recipe_ids
    from ..recipes.reproduce import reproduce, rows_markdown

    if args.list or not args.ids:
        for rid in recipe_ids():
            r = load_recipe(rid)
            book = f" (book: {100 * r['book']:.2f}% {r['metric']})" if r.get("book") is not None else ""
            print(f"{rid:22s} {r['description']}{book}")
            if r.get("references"):          # the published results a recipe beyond the book builds on
                print(f"{'':22s} references: {r['references']}")
        return 0
    for rid in args.ids:
        load_recipe(rid)  # fail fast on a typo, before any training
    rows = reproduce(args.ids, seeds=args.seeds, out=args.out, overrides=given_flags(args, "reproduce"),
                     data_dir=args.data_dir,
                     verbose=not args.quiet)
    print(rows_markdown([r for r in rows if r["id"] in args.ids]), end="")
    print(f"(written to {args.out}/results.json and results.md)")
    return 0
