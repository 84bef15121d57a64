"""Reading real handwriting: accuracy per real-world condition, rejection of non-digits, numbers.

    nice .venv/bin/python benchmarks/bench_reading.py [--model M ...] [--n 500] [--numbers 300] [--json]

Every set is synthetic, built from MNIST's **test** images (``nndl.data.synthetic``,
``nndl.data.marks``), seeded, and read exactly as ``nndl predict`` and ``nndl read`` read files:

* each digit condition (clean, tight crops, thick and thin pens, small digits, shadows, lighting
  gradients, ruled paper, frames, JPEG): a photo per test digit → ``nndl.reading.read_digit``;
  *accuracy* counts the right digit, *rejected* counts "not-a-digit" / "unsure" / "blank";
* MNIST's test images themselves (the 28x28 arrays): the share the reader wrongly rejects;
* each kind of non-digit (dots, dashes, scribbles, boxes, lines, crosses, noise, blobs, two digits,
  letters), on paper: the share rejected (a straight line within 30 degrees of vertical is a 1,
  not a non-digit, and is left out);
* numbers of 3-6 digits, with and without one touching pair: read exactly (``nndl.segment``).

Targets (issue 16): every digit condition >= 95% (shadow and gradient >= 90%), non-digits
rejected >= 95%, MNIST test images wrongly rejected <= 0.5%, touching numbers exact >= 85%.
Several ``--model`` files are measured side by side (e.g. a 10-output model, whose only rejection
is its confidence, against the 11-output reader); the default is the bundled model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import nndl  # noqa: E402
from nndl.data.images import ink_map  # noqa: E402
from nndl.data.marks import NON_DIGITS, non_digit, number  # noqa: E402
from nndl.data.reading_set import looks_like_a_one  # noqa: E402
from nndl.data.synthetic import DIGIT_CONDITIONS, on_paper, photo  # noqa: E402
from nndl.models.default import load_model, model_label  # noqa: E402
from nndl.reading import decide, read_digit  # noqa: E402
from nndl.segment import read_ink  # noqa: E402

TARGETS = {"condition": 0.95, "shadow": 0.90, "gradient": 0.90, "non_digits": 0.95, "mnist_rejected": 0.005,
           "touching": 0.85}


def digit_conditions(net, x, y, n: int, seed: int) -> dict[str, dict]:
    rows = {}
    for k, condition in enumerate(DIGIT_CONDITIONS):
        rng = np.random.default_rng([seed, k])
        readings = [read_digit(net, photo(x[i], condition, rng)) for i in range(n)]
        right = sum(r.digit == int(y[i]) for i, r in enumerate(readings))
        rows[condition] = {"n": n, "accuracy": right / n, "rejected": sum(r.digit is None for r in readings) / n}
    return rows


def mnist_rejected(net, x) -> float:
    return float(np.mean([r.digit is None for r in decide(net.predict_proba(x))]))


def non_digits(net, pool, n: int, seed: int) -> dict[str, float]:
    out = {}
    for k, kind in enumerate(NON_DIGITS):
        rng = np.random.default_rng([seed, 100 + k])
        inks = [ink for ink in (non_digit(kind, rng, digits=pool) for _ in range(n)) if not looks_like_a_one(ink)]
        effects = [dict(zip(("shadow", "gradient", "ruled"), rng.random(3) < 0.15)) for _ in inks]
        readings = [read_digit(net, on_paper(ink, rng, **e)) for ink, e in zip(inks, effects)]
        out[kind] = float(np.mean([r.digit is None for r in readings]))
    return out


def numbers(net, x, y, n: int, seed: int) -> dict[str, float]:
    out = {}
    for touching in (False, True):
        rng = np.random.default_rng([seed, 200 + touching])
        exact = 0
        for _ in range(n):
            idx = rng.choice(len(x), size=int(rng.integers(3, 7)), replace=False)
            ink = number(x[idx], rng, touching=touching)
            try:
                exact += read_ink(net, ink_map(np.uint8(255 * (1 - ink)))).number == "".join(map(str, y[idx]))
            except ValueError:          # nothing read: not exact
                pass
        out["touching" if touching else "separate"] = exact / n
    return out


def measure(net, test, args) -> dict:
    x, y = test
    start = time.perf_counter()
    report = {"conditions": digit_conditions(net, x, y, args.n, args.seed),
              "mnist_rejected": mnist_rejected(net, x),
              "non_digits": non_digits(net, x, max(1, args.n // 5), args.seed),
              "numbers": numbers(net, x, y, args.numbers, args.seed)}
    report["non_digits_rejected"] = float(np.mean(list(report["non_digits"].values())))
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def table(reports: dict[str, dict]) -> list[str]:
    names = list(reports)
    lines = ["| set | target | " + " | ".join(names) + " |", "| --- | --- | " + " | ".join("---" for _ in names) + " |"]

    def row(label: str, target: str, values: list[str]) -> None:
        lines.append(f"| {label} | {target} | " + " | ".join(values) + " |")

    first = reports[names[0]]
    for c in first["conditions"]:
        goal = TARGETS.get(c, TARGETS["condition"])
        row(f"digits: {c}", f">= {100 * goal:.0f}%", [f"{100 * r['conditions'][c]['accuracy']:.1f}% "
                                                       f"(rej. {100 * r['conditions'][c]['rejected']:.1f}%)"
                                                       for r in reports.values()])
    row("MNIST test wrongly rejected", f"<= {100 * TARGETS['mnist_rejected']:.1f}%",
        [f"{100 * r['mnist_rejected']:.2f}%" for r in reports.values()])
    for kind in first["non_digits"]:
        row(f"non-digit rejected: {kind}", "", [f"{100 * r['non_digits'][kind]:.0f}%" for r in reports.values()])
    row("non-digits rejected (mean)", f">= {100 * TARGETS['non_digits']:.0f}%",
        [f"{100 * r['non_digits_rejected']:.1f}%" for r in reports.values()])
    for kind in ("separate", "touching"):
        row(f"numbers read exactly: {kind}", ">= 85%" if kind == "touching" else "",
            [f"{100 * r['numbers'][kind]:.1f}%" for r in reports.values()])
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=None, metavar="M", help="model file (repeat to compare)")
    p.add_argument("--n", type=int, default=500, help="test digits per condition (non-digits: n/5 per kind)")
    p.add_argument("--numbers", type=int, default=300, help="numbers per kind (separate, touching)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    _, _, test = nndl.data.load_mnist()
    reports = {}
    for path in args.model or [None]:
        net = load_model(path)
        reports[f"{model_label(path)} ({net.n_classes} outputs)"] = measure(net, test, args)
    if args.json:
        print(json.dumps(reports, indent=1))
        return
    print(f"bench_reading: {args.n} MNIST test digits per condition, {args.numbers} numbers per kind, "
          f"seed {args.seed}")
    print("\n".join(table(reports)))


if __name__ == "__main__":
    main()
