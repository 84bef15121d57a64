"""``nndl read [--model M] IMAGE...``: read a number of several handwritten digits ("504192").

The image is split at gaps in the ink, touching digits are cut where the classifier is most
confident about the pieces (``nndl.segment``, the book's chapter-1 suggestion), and the number is
printed with each digit's confidence and box (x0, y0, x1, y1 in pixels, ends exclusive).
``--json`` prints one JSON object per image. Needs Pillow: ``pip install -e '.[images]'`` in the checkout.
"""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("read", help="read a multi-digit number from an image")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, one line of digits each")
    p.add_argument("--model", default=None, metavar="M", help="a saved network (.npz); default: the bundled model")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.default import load_model
    from ..segment import read_number

    net = load_model(args.model)
    failed = 0
    for name in args.images:
        try:
            result = read_number(net, name)
        except (ValueError, FileNotFoundError) as exc:  # NoDigitError, ImageFormatError, ImageTooLargeError
            failed += 1
            if args.json:
                print(json.dumps({"image": name, "error": type(exc).__name__, "detail": str(exc)}))
            else:
                print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps({"image": name, **result.to_dict()}))
            continue
        print(f"{name}: {result.number}")
        for d in result.digits:
            print(f"  {d.digit}  confidence {d.confidence:.3f}  box {list(d.box)}")
    return 1 if failed else 0
