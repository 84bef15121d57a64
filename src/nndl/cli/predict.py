"""``nndl predict [--model M] IMAGE...``: read handwritten digits from image files.

Each image (PNG, JPEG, ...) is put into MNIST form (``nndl.data.images``: grey, inverted if
dark-on-light, cropped, fitted to 20x20, centred by centre of mass in 28x28), classified, and the
reader decides (``nndl.reading``): the digit, or no digit with a reason ("not-a-digit", "unsure",
"blank"); the three most probable digits are printed beside it. ``--save-preprocessed DIR`` writes the
28x28 images the network saw; ``--json`` prints one JSON object per image. An image that cannot
be read (blank, not an image) is reported and the others are still read; the exit status is then 1.
Needs Pillow: the ``images`` extra (``pip install -e '.[images]'`` in the checkout).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="read handwritten digits from image files")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, one digit each (PNG, JPEG, ...)")
    p.add_argument("--model", default=None, metavar="M", help="a saved network (.npz); default: the bundled model")
    p.add_argument("--top", type=positive_int, default=3, metavar="K", help="how many probable digits to show (3)")
    p.add_argument("--save-preprocessed", default=None, metavar="DIR",
                   help="write the 28x28 image the network saw for each input into DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.set_defaults(func=run)


def _preprocessed_name(path: Path, taken: set[str]) -> str:
    name, k = f"{path.stem}.png", 1
    while name in taken:  # two inputs with the same name from different folders
        k += 1
        name = f"{path.stem}-{k}.png"
    taken.add(name)
    return name


def run(args: argparse.Namespace) -> int:
    from ..data.imagefile import save_png
    from ..data.images import NoDigitError, preprocess
    from ..models.default import load_model
    from ..reading import blank, decide

    net = load_model(args.model)
    out_dir = Path(args.save_preprocessed) if args.save_preprocessed else None
    taken: set[str] = set()
    failed = 0
    for name in args.images:
        path = Path(name)
        try:
            x = preprocess(path)  # (784,)
        except NoDigitError as exc:     # an answer ("blank"), but no digit: the exit status says so
            failed += 1
            _report_error(args, name, exc, blank(str(exc)).to_dict())
            continue
        except (ValueError, FileNotFoundError) as exc:  # ImageFormatError, ImageTooLargeError, no such file
            failed += 1
            _report_error(args, name, exc)
            continue
        reading = decide(net.predict_proba(x))[0]
        record = {"image": name, "digit": reading.digit, "reason": reading.reason, "message": reading.message,
                  "top": reading.top(args.top), "not_a_digit": reading.not_a_digit}
        if out_dir is not None:
            record["preprocessed"] = str(save_png(x, out_dir / _preprocessed_name(path, taken)))
        if args.json:
            print(json.dumps(record))
        else:
            top = ", ".join(f"{t['digit']}: {t['probability']:.3f}" for t in record["top"])
            said = reading.digit if reading.digit is not None else f"({reading.message})"
            print(f"{name}: {said}   ({top})")
    return 1 if failed else 0


def _report_error(args: argparse.Namespace, name: str, exc: Exception, reading: dict | None = None) -> None:
    if args.json:
        answer = {"digit": None, "reason": reading["reason"]} if reading else {}
        print(json.dumps({"image": name, **answer, "error": type(exc).__name__, "detail": str(exc)}))
    else:
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
