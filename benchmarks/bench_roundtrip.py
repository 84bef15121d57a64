"""Accuracy round trip through image files: does the preprocessing reproduce MNIST's own form?

    nice .venv/bin/python benchmarks/bench_roundtrip.py [--model M] [--n 10000] [--moved] [--keep DIR]

Each MNIST test digit is saved as a PNG file, read back through ``nndl.data.images.preprocess``
(grey, orientation, crop, 20x20 box, centre of mass in 28x28) and classified; the accuracy is
compared with the accuracy on the arrays directly (they should agree within 0.5 points: MNIST's
digits already sit in a 20x20 box centred by centre of mass). ``--moved`` also renders every
digit enlarged 1.5-5x at a random place on a larger canvas, half of them dark on white and a
third as JPEG, and reports how often the prediction matches the one for the original.

The model is ``--model``, else the bundled default model, else a quick one trained here
([784, 100, 10] sigmoid, cross-entropy, 3 epochs on 20,000 images, as in the tests).
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
import time

import numpy as np

import nndl
from nndl.analysis import roundtrip_accuracy
from nndl.data import images
from nndl.models.default import DefaultModelMissingError, load_model


def quick_model():
    training, _, _ = nndl.data.load_mnist()
    net = nndl.Network([nndl.Dense(784, 100, "sigmoid"), nndl.Dense(100, 10, "sigmoid")],
                       cost="cross-entropy", seed=0)
    net.fit((training[0][:20000], training[1][:20000]), epochs=3, mini_batch_size=10, eta=0.5)
    return net


def moved(x: np.ndarray, seed: int = 0) -> list[bytes]:
    """Each digit enlarged, moved, sometimes inverted and JPEG-compressed: encoded files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for i, img in enumerate(x):
        small = Image.fromarray(np.round(img.reshape(28, 28) * 255).astype(np.uint8))
        s = rng.uniform(1.5, 5.0)
        big = small.resize((round(28 * s), round(28 * s)), Image.Resampling.BICUBIC)
        w, h = int(rng.integers(big.width + 10, 400)), int(rng.integers(big.height + 10, 400))
        canvas = Image.new("L", (w, h), 0)
        canvas.paste(big, (int(rng.integers(0, w - big.width)), int(rng.integers(0, h - big.height))))
        if i % 2:
            canvas = Image.fromarray(255 - np.asarray(canvas))
        buf = io.BytesIO()
        canvas.save(buf, format="JPEG" if i % 3 == 0 else "PNG", **({"quality": 90} if i % 3 == 0 else {}))
        out.append(buf.getvalue())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a saved network (default: the bundled one, else a quick one)")
    parser.add_argument("--n", type=int, default=10000, help="how many test digits (default all 10,000)")
    parser.add_argument("--moved", action="store_true", help="also test moved/scaled/inverted renders")
    parser.add_argument("--keep", default=None, metavar="DIR", help="write the PNG files here (default: a temp dir)")
    args = parser.parse_args()

    try:
        net, which = load_model(args.model), args.model or "bundled default model"
    except DefaultModelMissingError:
        t = time.perf_counter()
        net, which = quick_model(), "quick model trained here"
        print(f"no default model: trained a quick one in {time.perf_counter() - t:.1f} s")
    x, y = nndl.data.load_mnist()[2]
    x, y = x[:args.n], y[:args.n]
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = roundtrip_accuracy(net, x, y, args.keep or tmp)
    report["seconds"] = round(time.perf_counter() - t, 2)
    report["model"] = which
    report["difference_points"] = round(100 * (report["roundtrip_accuracy"] - report["direct_accuracy"]), 3)
    if args.moved:
        t = time.perf_counter()
        x_moved = images.preprocess_many(moved(x))
        p_moved, p_direct = net.predict(x_moved), net.predict(x)
        report["moved_same_prediction"] = float((p_moved == p_direct).mean())
        report["moved_accuracy"] = float((p_moved == y).mean())
        report["moved_seconds"] = round(time.perf_counter() - t, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
