"""``nndl data info|verify|fetch|expand``: find, check, download and expand the data sets.

``info`` says where a data set was found and what it holds; ``verify`` checks every file's
SHA-256 (exit 1 on any failure); ``fetch`` downloads what is missing; ``expand`` materialises
chapter 6's shifted training set (or random distortions) as uint8 IDX files.
"""
from __future__ import annotations

import argparse
import time

from .common import non_negative_int


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="find, verify, download and expand MNIST / Fashion-MNIST",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"],
                        help="which data set (default: mnist)")
    common.add_argument("--data-dir", default=None, metavar="DIR",
                        help="the folder holding the four IDX files, or holding <dataset>/ (default: "
                             "$NNDL_DATA/<dataset>, ~/.cache/nndl/<dataset>, /usr/share/datasets/<dataset>)")

    p = actions.add_parser("info", parents=[common], help="where the data set is, counts and class counts")
    p.set_defaults(data_func=run_info)

    p = actions.add_parser("verify", parents=[common], help="check each file's SHA-256; exit 1 on any failure")
    p.set_defaults(data_func=run_verify)

    p = actions.add_parser("fetch", help="download missing files from public mirrors and verify them")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--dest", default=None, metavar="DIR",
                   help="download into DIR (default: $NNDL_DATA/<dataset> or ~/.cache/nndl/<dataset>)")
    p.add_argument("--mirror", action="append", default=None, metavar="URL",
                   help="base URL to try (repeatable, tried in order; default: $NNDL_<DATASET>_MIRRORS or the "
                        "public mirrors)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per network operation (default 30)")
    p.add_argument("--deadline", type=float, default=600.0,
                   help="seconds for each whole file from one mirror before trying the next (default 600)")
    p.set_defaults(data_func=run_fetch)

    p = actions.add_parser("expand", help="materialise an expanded MNIST training set as IDX files")
    p.add_argument("--kind", default="shift4", choices=["shift4", "affine", "elastic"],
                   help="shift4: the book's 1-pixel shifts (250,000 images); affine/elastic: random distortions")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="the MNIST folder, or one holding mnist/ (default: the usual places)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder to write into (default: ~/.cache/nndl/mnist-expanded or $NNDL_CACHE/mnist-expanded)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed for the random kinds (default 0)")
    p.add_argument("--copies", type=int, default=4, help="distorted copies per image for the random kinds (default 4)")
    p.add_argument("--validation-size", type=int, default=10000,
                   help="images at the end of the training file kept out as validation data (default 10000)")
    p.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    p.set_defaults(data_func=run_expand)


def run_info(args) -> int:
    from ..data import info

    d = info(args.dataset, args.data_dir)
    if not d["found"]:
        print(f"{args.dataset}: not found")
        print("  looked in: " + ", ".join(d["searched"]))
        print(f"  get it with: nndl data fetch --dataset {args.dataset}   (downloads into {d['download_to']})")
        return 1
    print(f"dataset     {d['name']}")
    print(f"folder      {d['dir']}")
    for role, path in d["files"].items():
        print(f"  {role:<13} {path}")
    h, w = d["image_shape"]
    print(f"images      {h}x{w} uint8; training file {d['train_count']:,}, test file {d['test_count']:,}")
    s = d["split"]
    print(f"split       training {s['training']:,} / validation {s['validation']:,} / test {s['test']:,} (book's)")
    names = d["class_names"]
    named = names != [str(i) for i in range(len(names))]  # MNIST's classes are just the digits
    width = max(len(n) for n in names) + 2 if named else 0
    print(f"{'class':<{width + 5}} {'train':>6} {'test':>6}")
    for i, name in enumerate(names):
        label = f"{i:>5}" + (f"  {name:<{width - 2}}" if named else "")
        print(f"{label} {d['train_class_counts'][i]:>6} {d['test_class_counts'][i]:>6}")
    return 0


def run_verify(args) -> int:
    from ..data import verify

    results = verify(args.dataset, args.data_dir)
    for path, ok, message in results:
        print(f"{'ok  ' if ok else 'FAIL'}  {path}: {message}")
    failed = sum(not ok for _, ok, _ in results)
    print(f"{args.dataset}: {len(results) - failed}/{len(results)} files ok")
    return 1 if failed else 0


def run_fetch(args) -> int:
    import signal

    from ..data import fetch
    from ..data.sources import dataset_files

    def stop(signum, frame):          # SIGTERM as Ctrl-C: the half-written file is removed on the way out
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        folder = fetch(args.dataset, mirrors=args.mirror, dest=args.dest, timeout=args.timeout,
                       deadline=args.deadline)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for path in dataset_files(args.dataset, folder).values():  # fetch checked every SHA-256
        print(f"ok    {path}: SHA-256 ok")
    print(f"{args.dataset}: ready in {folder}")
    return 0


def run_expand(args) -> int:
    from ..data.expand import build_expanded, expanded_summary

    t0 = time.perf_counter()
    paths = build_expanded(args.kind, args.data_dir, out=args.out, validation_size=args.validation_size,
                           seed=args.seed, copies=args.copies, force=args.force)
    print(expanded_summary(paths))
    print(f"{args.kind}: done in {time.perf_counter() - t0:.1f} s; "
          f"load with nndl.data.load_expanded_mnist({args.kind!r})")
    return 0


def run(args) -> int:
    return args.data_func(args)
