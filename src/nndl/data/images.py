"""Outside images → MNIST form: the preprocessing that lets the network read real handwriting.

MNIST's digits were made from scanned NIST forms like this (LeCun et al.): each digit was
size-normalised to fit a 20x20 box keeping its aspect ratio (anti-aliased, hence the grey levels),
then pasted into a 28x28 field so that its centre of mass sits at the centre. A network trained on
MNIST only works on an outside image put through the same steps, so ``preprocess`` does them:

    load (PNG/JPEG/..., Pillow) → grey → orient (MNIST is white ink, 1.0, on black, 0.0: dark ink
    on light paper is inverted) → remove the paper's grey level and specks → crop to the ink's
    bounding box → scale to fit 20x20 (anti-aliased) → paste into 28x28 with the centre of mass
    at the centre, (14, 14) in pixel indices as in MNIST itself, by a whole-pixel shift as MNIST
    did (its centres of mass lie within ±0.5 pixel of 14) → float32 (784,) in [0, 1].

A blank or near-blank image raises ``NoDigitError`` instead of handing the network noise to guess
at. Images are checked for size from their header before any pixel is decoded, so a
decompression bomb (a small file claiming a huge image) is refused unread.

Speed (the web app runs this for every request): 8-bit images stay bytes until the inked window
is found, and the floats are made for that window only; a drawing many times larger than the
20x20 box (a 280-pixel canvas) is box-averaged down before the speck search (``digit_ink``).

Limits: one digit per image (``nndl.segment`` reads several); the paper is taken to be the most
common grey level (the median), so an image more than half covered by ink is misread; uneven
lighting in photos is not corrected. Needs Pillow: ``pip install 'nndl[images]'``.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import IO, Any, Iterable, NamedTuple, Union

import numpy as np
from scipy import ndimage

from ..errors import NNDLError

SIDE = 28           # MNIST's field
BOX = 20            # the digit is scaled to fit a BOX x BOX square inside the field
CENTRE = 14.0       # MNIST's mean centre of mass, in pixel indices (measured: 13.99, 14.01)
MAX_SIDE = 2000     # default refusal limit on either side of an input image, in pixels
MIN_CONTRAST = 0.2  # ink must differ from the paper by this much (of the full 0..1 range)
MIN_INK = 4.0       # ... and amount to at least this many fully inked pixels
SPECK_FRACTION = 0.03  # bits of ink holding less than this share of all the ink ...
SPECK_MARGIN = 0.1     # ... and further than this (of the digit's size) from its box are specks
BOX_THRESHOLD = 0.1  # ink fainter than this is left out when finding the digit's bounding box
REDUCING_GAP = 3     # a large drawing is box-averaged down to no fewer than this many times BOX pixels

GREY_LEVELS = np.arange(256, dtype=np.float32) / 255.0  # uint8 level → float grey in [0, 1]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], np.ndarray, Any]


class NoDigitError(NNDLError, ValueError):
    """The image is blank or nearly so: there is no digit to read."""


class ImageFormatError(NNDLError, ValueError):
    """The bytes are not an image Pillow can decode (or not of an accepted format)."""


class ImageTooLargeError(NNDLError, ValueError):
    """The image's width or height exceeds the limit (a guard against decompression bombs)."""


def pil_image():
    """``PIL.Image``, imported lazily with a message naming the extra."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading images needs Pillow: pip install 'nndl[images]'") from exc
    return Image


# ----- loading -----------------------------------------------------------------------------------
def read_image(source: ImageSource, *, max_side: int = MAX_SIDE,
               formats: Iterable[str] | None = None) -> np.ndarray:
    """Grey levels of an image as float32 (h, w) in [0, 1], 0 black and 1 white.

    ``source`` is a path, the encoded bytes, a binary file, a ``PIL.Image`` or an array ((h, w)
    grey or (h, w, 3|4) colour; uint8 in 0..255 or floats in [0, 1]). ``formats`` restricts the
    decoders Pillow may use (e.g. ``("PNG", "JPEG")`` for bytes from the network). Transparent
    pixels are laid on paper of the colour that contrasts with the ink, so a drawing on a
    transparent canvas reads the same as one on paper.
    """
    grey = read_grey(source, max_side=max_side, formats=formats)
    return GREY_LEVELS[grey] if grey.dtype == np.uint8 else grey


def read_grey(source: ImageSource, *, max_side: int = MAX_SIDE,
              formats: Iterable[str] | None = None) -> np.ndarray:
    """``read_image`` without the conversion to floats where none is needed: uint8 (h, w) in
    0..255 for an 8-bit image without transparency (most files: the cheap case), else float32
    (h, w) in [0, 1]. ``ink_map`` takes either."""
    if isinstance(source, np.ndarray):
        return _array_to_grey(source)
    Image = pil_image()
    if isinstance(source, Image.Image):
        img = source
        _check_size(img.size, max_side)
    else:
        img = _open(source, max_side, formats)
    return _pil_to_grey(img)


def _open(source, max_side: int, formats: Iterable[str] | None):
    Image = pil_image()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        name, f = str(path), open(path, "rb")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name, f = "the image data", io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        name, f = getattr(source, "name", "the image file"), source
    else:
        raise TypeError(f"expected a path, bytes, a binary file, a PIL image or an array, got {type(source).__name__}")
    formats = tuple(formats) if formats is not None else None
    try:
        img = Image.open(f, formats=formats)  # reads the header only
        _check_size(img.size, max_side)
        img.load()  # decodes the pixels: only now, after the size check
        if img.format == "PNG":
            _check_png_end(f, name)
        return img
    except (ImageTooLargeError, FileNotFoundError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name} is refused as a decompression bomb: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on hostile bytes
        accepted = f" (accepted formats: {', '.join(formats)})" if formats else ""
        why = ("its format is not recognised" if isinstance(exc, Image.UnidentifiedImageError)
               else f"{type(exc).__name__}: {exc}")
        raise ImageFormatError(f"{name} is not a readable image{accepted}: {why}; send a PNG or JPEG file") from None
    finally:
        if isinstance(source, (str, os.PathLike)):
            f.close()


_PNG_END = b"IEND\xaeB`\x82"      # the IEND chunk (type and CRC) every complete PNG ends with


def _check_png_end(f, name: str) -> None:
    """Refuse a PNG cut short after its pixel data, as a cut JPEG is refused (Pillow decodes the
    pixels without reading to the end, so a file missing its IEND chunk would pass). Data after
    IEND, which some programs append, is allowed."""
    try:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - (64 << 10)))
        tail = f.read(64 << 10)
    except (OSError, AttributeError, ValueError):
        return                                         # a stream that cannot seek: nothing to check
    if _PNG_END not in tail:
        raise OSError("the PNG file is truncated (its IEND chunk is missing)")


def _check_size(size: tuple[int, int], max_side: int) -> None:
    w, h = size
    if w > max_side or h > max_side:
        raise ImageTooLargeError(
            f"the image is {w}x{h} pixels; at most {max_side}x{max_side} is accepted: scale it down first")
    if w < 1 or h < 1:
        raise ImageFormatError(f"the image is {w}x{h} pixels: it has no pixels")


def _pil_to_grey(img) -> np.ndarray:
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        return (a / max(a.max(), 1.0)).astype(np.float32)
    if has_alpha:
        la = img.convert("LA")
        if la.getextrema()[1][0] == 255:  # opaque all over (a browser's canvas): the alpha changes nothing
            return np.asarray(la.getchannel("L"))
        la = GREY_LEVELS[np.asarray(la)]  # (h, w, 2)
        return _lay_on_paper(la[..., 0], la[..., 1])
    return np.asarray(img if img.mode == "L" else img.convert("L"))


def _array_to_grey(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1 and a.size == SIDE * SIDE:
        a = a.reshape(SIDE, SIDE)
    if a.dtype == np.uint8:
        a = GREY_LEVELS[a]
    elif a.dtype.kind in "fiu":
        a = a.astype(np.float32)
        if a.size and (a.min() < 0 or a.max() > 1):
            raise ValueError(f"a float image must hold values in [0, 1], got {a.min():.3g}..{a.max():.3g}")
    else:
        raise ValueError(f"an image array must be numeric, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] in (3, 4):
        grey = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as Pillow's "L"
        return _lay_on_paper(grey, a[..., 3]) if a.shape[2] == 4 else grey
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"an image array must have shape (h, w), (h, w, 3) or (h, w, 4), got {a.shape}")
    return a


def _lay_on_paper(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite onto white paper if the visible ink is dark, onto black if it is light."""
    weight = alpha.sum()
    ink_level = float((grey * alpha).sum() / weight) if weight > 0 else 0.0
    paper = 1.0 if ink_level < 0.5 else 0.0
    return (grey * alpha + paper * (1.0 - alpha)).astype(np.float32)


# ----- grey levels → ink -------------------------------------------------------------------------
def ink_map(grey: np.ndarray) -> np.ndarray:
    """The ink of a grey image, MNIST-style: float32 (h, w), 0 on the paper, 1 on the darkest ink.

    ``grey`` holds floats in [0, 1] or uint8 levels (as ``read_grey`` gives). The paper is the
    median grey level; if it is light the image is inverted (dark ink on light paper becomes
    MNIST's white on black). The paper's level maps to 0 and the strongest ink to 1; grey levels
    within the paper's noise become 0, and specks (small bits of ink away from the main strokes)
    are removed. Raises ``NoDigitError`` when there is (almost) no ink.
    """
    ink, (y0, x0) = ink_window(grey)
    out = np.zeros(np.shape(grey), np.float32)  # (h, w)
    out[y0:y0 + ink.shape[0], x0:x0 + ink.shape[1]] = ink
    return out


def ink_window(grey: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``ink_map`` cut to the rectangle holding all the ink: (ink (h', w'), (row, col) of its corner).

    The ink map is zero outside that rectangle, so past the grey-level statistics the work (and,
    for uint8 input, the conversion to floats) is spent on the inked part only.
    """
    window, paper, corner = _inked_part(grey)
    return _ink(window, paper), corner


def digit_ink(grey: np.ndarray) -> np.ndarray:
    """The ink of a one-digit image for ``centre_digit``: ``ink_window``'s, made at a coarser scale
    when the digit spans many more pixels than its 20x20 box in MNIST form can use.

    A 280-pixel drawing is shrunk ten times in the end; working on all its pixels (the speck
    search above all) would cost ten times more than needed. So a window wider or taller than
    ``2 * REDUCING_GAP * BOX`` pixels is first box-averaged down by the whole factor that keeps at
    least ``REDUCING_GAP * BOX`` pixels, and the final resampling then shrinks it by at least
    ``REDUCING_GAP``: Pillow's ``reducing_gap`` recipe, which it finds indistinguishable from a
    single fair resampling from 3 up. If specks far from the digit widened the window (the digit
    itself ends up under ``REDUCING_GAP * BOX`` pixels), the ink is made at full scale instead.
    """
    window, paper, _ = _inked_part(grey)  # (h', w')
    k = max(window.shape) // (REDUCING_GAP * BOX)
    if k >= 2:
        blank = 1.0 if paper.dark_on_light else 0.0  # the paper's own level: no ink
        ink = _ink(_box_average(_as_levels(window), k, blank), paper, pixel_area=k * k)
        if _longer_side(ink > BOX_THRESHOLD) >= REDUCING_GAP * BOX:
            return ink
    return _ink(window, paper)


def _inked_part(grey: np.ndarray) -> tuple[np.ndarray, "_Paper", tuple[int, int]]:
    """The paper of a whole grey image (uint8 or float), the window of it holding the ink, and the
    (row, col) of the window's corner."""
    grey = np.asarray(grey)
    if grey.dtype != np.uint8:
        grey = grey.astype(np.float32, copy=False)
    paper = _paper(grey)
    rows, cols = _inked_window(grey, paper)
    return grey[rows, cols], paper, (rows.start, cols.start)


def _as_levels(grey: np.ndarray) -> np.ndarray:
    """Grey as float32 in [0, 1] (uint8 levels / 255, the same numbers as ``GREY_LEVELS[grey]``)."""
    return grey.astype(np.float32) / 255.0 if grey.dtype == np.uint8 else grey


def _inked_window(grey: np.ndarray, paper: "_Paper") -> tuple[slice, slice]:
    """(rows, cols) of the smallest rectangle holding every pixel with ink (before speck removal)."""
    if grey.dtype == np.uint8:
        # The ink falls as the level moves towards the paper's, so the inked levels are one run
        # ending at the darkest (or lightest) level: one comparison of bytes finds the inked pixels.
        inked_levels = np.flatnonzero(_grey_to_ink(GREY_LEVELS, paper))  # of the 256
        if inked_levels.size == 0:
            _too_little_ink(0.0)
        # (a Python int, not NumPy's int64, so that the bytes are compared as bytes, not widened)
        inked = grey <= int(inked_levels[-1]) if paper.dark_on_light else grey >= int(inked_levels[0])  # (h, w)
    else:
        inked = _grey_to_ink(grey, paper) > 0  # (h, w)
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        _too_little_ink(0.0)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _ink(grey: np.ndarray, paper: "_Paper", pixel_area: float = 1.0) -> np.ndarray:
    """Grey levels (uint8 or float32, any window) → the ink, specks removed; ``NoDigitError`` if
    there is too little of it (counted in original pixels: each of these covers ``pixel_area``)."""
    ink = _remove_specks(_grey_to_ink(_as_levels(grey), paper))
    amount = float(ink.sum()) * pixel_area
    if amount < MIN_INK:
        _too_little_ink(amount)
    return ink


def _box_average(grey: np.ndarray, k: int, blank: float) -> np.ndarray:
    """Float grey (h, w) → the means of its k x k blocks, (ceil(h/k), ceil(w/k)); blocks past the
    edge are filled with ``blank``."""
    h, w = grey.shape
    rows, cols = -(-h // k), -(-w // k)
    padded = np.full((rows * k, cols * k), blank, np.float32)
    padded[:h, :w] = grey
    # k whole-array additions per axis: several times faster than a mean over a (rows, k, cols, k) view
    band = padded[0::k].copy()  # (rows, cols * k): the k rows of each block, added up
    for i in range(1, k):
        band += padded[i::k]
    block = band[:, 0::k].copy()  # (rows, cols)
    for j in range(1, k):
        block += band[:, j::k]
    return block * (1.0 / (k * k))


def _longer_side(mask: np.ndarray) -> int:
    """The longer side of the bounding box of a mask's True pixels (0 when there are none)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(max(rows[-1] - rows[0], cols[-1] - cols[0])) + 1 if rows.size else 0


class _Paper(NamedTuple):
    """What the grey levels of a whole image say about its paper."""
    dark_on_light: bool  # dark ink on light paper: invert
    level: float         # the paper's level once the ink is bright (0 for a clean page)
    contrast: float      # the strongest ink's level minus the paper's
    cut: float           # ink at or below this (the paper's noise, of the contrast) counts as paper


def _paper(grey: np.ndarray) -> _Paper:
    """The paper's level, the ink's contrast and the noise, from a sample of ``grey``'s pixels.

    The paper is the median level; its noise (grain, JPEG artefacts) is a robust standard
    deviation, 1.4826 x the median absolute deviation, which ignores the ink as long as the
    paper is most of the image. Raises ``NoDigitError`` when the contrast is too low.
    """
    sample = _sample(grey)  # the statistics of a large image: a sample suffices
    if grey.dtype == np.uint8:  # a histogram of the 256 levels gives np.median's answers, faster
        counts = np.bincount(sample, minlength=256)  # (256,)
        levels = GREY_LEVELS

        def median(values: np.ndarray) -> float:
            return _median_of_counts(values, counts)
        darkest, lightest = GREY_LEVELS[grey.min()], GREY_LEVELS[grey.max()]
    else:
        levels = sample

        def median(values: np.ndarray) -> float:
            return float(np.median(values))
        darkest, lightest = grey.min(), grey.max()
    paper = median(levels)
    dark_on_light = paper > 0.5
    strongest = float(1.0 - darkest if dark_on_light else lightest)  # the ink's extreme
    paper = min(paper, 1.0 - paper)
    contrast = strongest - paper
    if contrast < MIN_CONTRAST:
        raise NoDigitError(
            f"the image looks blank: its darkest and lightest parts differ by {max(contrast, 0.0):.2f} of the "
            f"full range, less than {MIN_CONTRAST}; write the digit in dark ink on light paper (or light on dark)")
    oriented = 1.0 - levels if dark_on_light else levels
    noise = 1.4826 * median(np.abs(oriented - paper)) / contrast
    return _Paper(dark_on_light, paper, contrast, max(3.0 * noise, 0.5 / 255.0))


def _median_of_counts(values: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of the sample holding ``counts[i]`` copies of ``values[i]`` (float32)."""
    order = np.argsort(values, kind="stable")
    position = np.cumsum(counts[order])  # sample values up to each sorted value
    n = int(position[-1])
    low, high = values[order][np.searchsorted(position, [(n - 1) // 2, n // 2], side="right")]
    return float((low + high) / 2)  # the middle value, or the mean of the middle two (in float32, as np.median)


def _grey_to_ink(grey: np.ndarray, paper: _Paper) -> np.ndarray:
    """Grey levels (float32, any shape) → ink: bright, 0 for the paper and 1 for the strongest
    ink, levels within the paper's noise set to 0."""
    a = 1.0 - grey if paper.dark_on_light else grey.copy()
    a -= paper.level
    a *= 1.0 / paper.contrast
    np.clip(a, 0.0, 1.0, out=a)
    a[a <= paper.cut] = 0.0
    return a


def _too_little_ink(amount: float) -> None:
    raise NoDigitError(
        f"the image looks blank: it holds only {amount:.1f} pixels' worth of ink, fewer than "
        f"{MIN_INK:g}; write the digit larger or with a thicker pen")


def _sample(a: np.ndarray, size: int = 4096) -> np.ndarray:
    """About ``size`` evenly spaced pixels of an image, flat: its levels (the paper's grey, the
    noise) without a full sort of a 2,000 x 2,000 photo."""
    flat = a.ravel()
    return flat[::max(1, flat.size // size)]


def _remove_specks(a: np.ndarray) -> np.ndarray:
    """Drop small bits of ink (under SPECK_FRACTION of all the ink) lying away from the digit.

    Small bits near the digit's main strokes stay: they are usually a broken thin stroke.
    """
    labels, n = ndimage.label(a > 0, structure=np.ones((3, 3), bool))  # 8-connected bits of ink
    if n <= 1:
        return a
    mass = ndimage.sum_labels(a, labels, index=np.arange(1, n + 1))  # (n,)
    boxes = ndimage.find_objects(labels)
    big = mass >= min(SPECK_FRACTION * mass.sum(), mass.max())  # at least the largest bit is the digit
    y0 = min(boxes[i][0].start for i in np.flatnonzero(big))
    y1 = max(boxes[i][0].stop for i in np.flatnonzero(big))
    x0 = min(boxes[i][1].start for i in np.flatnonzero(big))
    x1 = max(boxes[i][1].stop for i in np.flatnonzero(big))
    margin = SPECK_MARGIN * max(y1 - y0, x1 - x0)
    near = np.array([b[0].start < y1 + margin and b[0].stop > y0 - margin
                     and b[1].start < x1 + margin and b[1].stop > x0 - margin for b in boxes])
    keep = np.concatenate([[False], big | near])
    return np.where(keep[labels], a, 0.0).astype(np.float32)


# ----- ink → MNIST form --------------------------------------------------------------------------
def ink_bbox(a: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the nonzero pixels, ends exclusive; raises NoDigitError if there are none."""
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    if rows.size == 0:
        raise NoDigitError("the image holds no ink")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of mass of a non-negative image (h, w), in pixel indices.

    The same as ``scipy.ndimage.center_of_mass``, in two small sums (it runs once per candidate
    piece when reading numbers).
    """
    total = float(a.sum())
    rows, cols = a.sum(axis=1), a.sum(axis=0)  # (h,), (w,)
    return float(rows @ np.arange(a.shape[0])) / total, float(cols @ np.arange(a.shape[1])) / total


def centre_digit(ink: np.ndarray) -> np.ndarray:
    """An ink map (h, w) → MNIST form, float32 (784,): crop, fit 20x20, centre of mass at (14, 14)."""
    Image = pil_image()
    # The box ignores the faintest ink (blur halos, JPEG ringing) that would shrink the digit.
    x0, y0, x1, y1 = ink_bbox(ink > BOX_THRESHOLD)
    crop = np.ascontiguousarray(ink[y0:y1, x0:x1], dtype=np.float32)  # (h, w)
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL sizes are (width, height)
    if size != (w, h):
        # Pillow scales the filter's support with the factor, so shrinking is properly anti-aliased.
        small = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
        small = np.maximum(small, 0.0)  # a guard: ink is never negative
        small /= max(float(small.max()), 1e-12)  # strokes thinner than a pixel still reach full ink
    else:
        small = crop
    out = np.zeros((SIDE, SIDE), np.float32)
    cy, cx = centre_of_mass(small)
    hs, ws = small.shape
    # A whole-pixel shift, as in MNIST; clamped so that no ink leaves the field.
    oy = min(max(round(CENTRE - cy), 0), SIDE - hs)
    ox = min(max(round(CENTRE - cx), 0), SIDE - ws)
    out[oy:oy + hs, ox:ox + ws] = small
    return out.reshape(SIDE * SIDE)


def preprocess(source: ImageSource, *, max_side: int = MAX_SIDE, formats: Iterable[str] | None = None) -> np.ndarray:
    """An outside image of one digit → float32 (784,) in [0, 1], as MNIST's images were made."""
    return centre_digit(digit_ink(read_grey(source, max_side=max_side, formats=formats)))


def preprocess_many(sources: Iterable[ImageSource], **kwargs: Any) -> np.ndarray:
    """Several images → float32 (n, 784)."""
    rows = [preprocess(s, **kwargs) for s in sources]
    return np.stack(rows) if rows else np.zeros((0, SIDE * SIDE), np.float32)


# ----- MNIST form → image files --------------------------------------------------------------------
def to_png(x: np.ndarray, *, scale: int = 1, invert: bool = False) -> bytes:
    """A (784,) or (28, 28) image in [0, 1] as PNG bytes (white ink on black unless ``invert``)."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        if side * side != a.size:
            raise ValueError(f"a flat image must have a square number of pixels, got {a.size}")
        a = a.reshape(side, side)
    if a.ndim != 2:
        raise ValueError(f"expected an image of shape (784,) or (h, w), got {a.shape}")
    u8 = np.round(np.clip(1.0 - a if invert else a, 0.0, 1.0) * 255.0).astype(np.uint8)
    if scale != 1:
        u8 = u8.repeat(scale, axis=0).repeat(scale, axis=1)  # each pixel a scale x scale square
    return _grey_png(u8)


def _grey_png(u8: np.ndarray) -> bytes:
    """The PNG file of an 8-bit grey image (h, w): the signature, then IHDR, IDAT and IEND chunks.

    Written directly (a dozen lines) rather than through Pillow, whose general encoder costs
    several times more for a 28x28 image: the web app sends one with every prediction.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = u8.shape
    rows = np.zeros((h, 1 + w), np.uint8)  # each row opens with its filter type, 0: none
    rows[:, 1:] = u8
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8 bits, grey, deflate, no filter, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + chunk(b"IEND", b""))


def save_png(x: np.ndarray, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write ``to_png(x)`` to ``path`` atomically (a temp file in the same folder, then a rename)."""
    from ..files import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(os.fspath(path), to_png(x, **kwargs))
    return path


def roundtrip_accuracy(network, x: np.ndarray, y: np.ndarray, directory: str | os.PathLike) -> dict:
    """Save each image (n, 784) as a PNG in ``directory``, read it back through ``preprocess``, predict.

    Returns the accuracy on the arrays directly and through the files, and how many predictions
    changed: a check that the preprocessing reproduces MNIST's own form.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    directory = Path(directory)
    paths = [save_png(img, directory / f"{i:05d}.png") for i, img in enumerate(x)]
    x_files = preprocess_many(paths)  # (n, 784)
    direct, through = network.predict(x), network.predict(x_files)
    return {
        "n": int(len(y)),
        "direct_accuracy": float((direct == y).mean()),
        "roundtrip_accuracy": float((through == y).mean()),
        "changed_predictions": int((direct != through).sum()),
        "mean_abs_pixel_difference": float(np.abs(x_files - x).mean()),
    }
