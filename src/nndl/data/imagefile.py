"""Image files in and out: decode a PNG/JPEG/... (Pillow) or an array to grey levels, encode PNGs.

``read_grey`` / ``read_image`` take a path, encoded bytes, a binary file, a ``PIL.Image`` or an
array and give its grey levels, 0 black and 1 white; ``nndl.data.images`` turns those into MNIST
form. ``to_png`` / ``save_png`` write an image in MNIST form (or any grey image) as an 8-bit PNG.

Images are checked for size from their header before any pixel is decoded, so a decompression
bomb (a small file claiming a huge image) is refused unread (``ImageTooLargeError``); bytes that
are not an image, or a PNG or JPEG cut short, are an ``ImageFormatError``. Transparent pixels are
laid on paper of the colour that contrasts with the ink. Speed: an 8-bit image without
transparency stays uint8 (``read_grey``), and PNGs are encoded without Pillow.

Limits: 16-bit images are scaled by their own maximum. Reading needs Pillow:
the ``images`` extra (``pip install -e '.[images]'`` in the checkout).
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import IO, Any, Iterable, Union

import numpy as np

from ..errors import NNDLError, install_hint

SIDE = 28           # MNIST's images are SIDE x SIDE: a flat array of SIDE * SIDE values is one of them
MAX_SIDE = 2000     # default refusal limit on either side of an input image, in pixels

GREY_LEVELS = np.arange(256, dtype=np.float32) / 255.0  # uint8 level → float grey in [0, 1]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], np.ndarray, Any]



class ImageFormatError(NNDLError, ValueError):
    """The bytes are not an image Pillow can decode (or not of an accepted format)."""


class ImageTooLargeError(NNDLError, ValueError):
    """The image's width or height exceeds the limit (a guard against decompression bombs)."""


def pil_image():
    """``PIL.Image``, imported lazily with a message naming the extra."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading images needs Pillow: {install_hint('images')}") from exc
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
