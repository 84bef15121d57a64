"""Make the example inputs the docs use, from MNIST's test set: ``python examples/make_examples.py``.

Each picture is drawn from test images as a person's photo or scan of a digit would look: dark ink
on white paper, four times MNIST's size. nndl's preprocessing (``nndl predict``, ``nndl read``) turns
them back into 28x28 MNIST inputs, which is what the docs show. MNIST itself is never shipped; these
few derived pictures are (MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges, CC BY-SA 3.0).

- ``digit_7.png``, ``digit_2.png``, ``digit_1.png``: the first three test images (labels 7, 2, 1);
- ``number_1905.png``: the first test images of the digits 1, 9, 0 and 5, side by side, as a
  written number for ``nndl read``.

The text for the character RNN, ``sonnets.txt``, is six of Shakespeare's sonnets (1609, public
domain), typed in; this script does not touch it. Needs Pillow and MNIST (``NNDL_DATA``, see README).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = 4                  # 28x28 → 112x112
DIGITS = {"digit_7.png": 0, "digit_2.png": 1, "digit_1.png": 2}   # file → index in the test set
NUMBER = ("number_1905.png", "1905")


def paper(image: np.ndarray) -> np.ndarray:
    """One MNIST image (784 floats in [0, 1], white ink on black) as dark ink on white, uint8 28x28."""
    return np.round(255 * (1.0 - image.reshape(28, 28))).astype(np.uint8)


def first_of(labels: np.ndarray, digit: int) -> int:
    return int(np.flatnonzero(labels == digit)[0])


def number_strip(x: np.ndarray, y: np.ndarray, number: str, gap: int = 4) -> np.ndarray:
    """The first test image of each digit of ``number``, left to right, ``gap`` white pixels apart."""
    white = np.full((28, gap), 255, np.uint8)
    parts = []
    for k, digit in enumerate(number):
        parts += ([white] if k else []) + [paper(x[first_of(y, int(digit))])]
    return np.pad(np.hstack(parts), 8, constant_values=255)


def save_png(pixels: np.ndarray, path: str) -> None:
    from PIL import Image

    image = Image.fromarray(pixels, mode="L")
    image.resize((pixels.shape[1] * SCALE, pixels.shape[0] * SCALE), Image.BILINEAR).save(path, optimize=True)


def make(out: str = HERE, data_dir: str | None = None) -> list[str]:
    """Write the example pictures into ``out``; return their paths."""
    import nndl

    x, y = nndl.data.load_mnist(data_dir)[2]
    written = []
    for name, index in DIGITS.items():
        save_png(paper(x[index]), os.path.join(out, name))
        written.append(os.path.join(out, name))
    name, number = NUMBER
    save_png(number_strip(x, y, number), os.path.join(out, name))
    return [*written, os.path.join(out, name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=HERE, help="folder to write into (default: this one)")
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/ (default: $NNDL_DATA, the cache)")
    args = parser.parse_args(argv)
    for path in make(args.out, args.data_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
