"""IDX files (the MNIST format): read and write uint8 arrays, validating every byte of the header.

MNIST and Fashion-MNIST (chapter 1's data) ship as IDX files: a big-endian header
``00 00 <type> <ndim>`` followed by ``ndim`` unsigned 32-bit dimensions, then the payload in
row-major order. Images use magic 2051 (``00 00 08 03``, n x rows x cols), labels magic 2049
(``00 00 08 01``, n). Files may be gzip-compressed; compression is detected from the first two
bytes (``1f 8b``), never from the file name.

Limits: only the unsigned-byte type (0x08) is supported, since every MNIST-style file uses it.
A header that claims more data than the file holds is refused *before* the claimed size is
allocated: raw files are checked against their size on disk, gzip streams are read in bounded
chunks until end of stream. Any damage raises ``DataFormatError`` naming the file and the problem.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from pathlib import Path
from typing import IO, Iterator, Union

import numpy as np

from ..errors import DataFormatError
from ..files import atomic_output

PathLike = Union[str, "os.PathLike[str]"]

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
MAGIC_IMAGES = 0x00000803  # 2051: n x rows x cols
MAGIC_LABELS = 0x00000801  # 2049: n
_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_CHUNK = 1 << 20  # gzip payloads are read 1 MiB at a time, so a lying header costs nothing
# The largest payload nndl reads (the book's 250,000 expanded images are 196 MB): a header that
# claims more is refused before anything is read.
MAX_IDX_BYTES = 1 << 30


def read_idx(path: PathLike, *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a uint8 array whose shape comes from the header.

    ``ndim``, if given, is the number of dimensions the caller expects (3 for images, 1 for
    labels). Raises ``DataFormatError`` for a bad magic number, a type other than uint8, a
    payload shorter or longer than the header claims, or a damaged gzip stream.
    """
    path = Path(path)
    with _open_idx(path) as (f, file_size):
        return _read_stream(f, path, ndim, file_size, None if file_size is not None else _gzip_isize(path))


def idx_shape(path: PathLike) -> tuple[int, ...]:
    """The shape an IDX file's header claims, reading only the header (payload unchecked)."""
    path = Path(path)
    with _open_idx(path) as (f, _):
        return _read_header(f, path)


def _shape_text(shape: tuple[int, ...]) -> str:
    """A header's shape for a message: whole when short, summarised when a damaged header claims many."""
    return str(shape) if len(shape) <= 4 else f"({', '.join(map(str, shape[:3]))}, ... {len(shape)} dimensions)"


def _gzip_isize(path: Path) -> int | None:
    """The uncompressed size mod 2**32 that a gzip file's trailer records (its last 4 bytes)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 18:                 # shorter than a gzip header and trailer: let gzip complain
            return None
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


@contextlib.contextmanager
def _open_idx(path: Path) -> Iterator[tuple[IO[bytes], int | None]]:
    """The decompressed stream and, for raw files, the size on disk (None for gzip)."""
    try:
        with open(path, "rb") as raw:
            if raw.read(2) == GZIP_MAGIC:
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                    yield gz, None
            else:
                raw.seek(0)
                yield raw, os.fstat(raw.fileno()).st_size
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"{path}: damaged gzip stream ({exc}); download the file again") from exc


def _read_stream(f: IO[bytes], path: Path, ndim: int | None, file_size: int | None,
                 gzip_size: int | None = None) -> np.ndarray:
    shape = _read_header(f, path)
    if ndim is not None and len(shape) != ndim:
        raise DataFormatError(
            f"{path}: IDX file has {len(shape)} dimensions {_shape_text(shape)}, expected {ndim} "
            f"({'images: n x rows x cols' if ndim == 3 else 'labels: n' if ndim == 1 else 'see caller'})"
        )
    claimed = int(np.prod(shape, dtype=object))  # Python ints: no overflow for absurd headers
    header_len = 4 + 4 * len(shape)
    if claimed > MAX_IDX_BYTES:
        raise DataFormatError(f"{path}: header claims shape {_shape_text(shape)} = {claimed:,} bytes of data, "
                              f"more than nndl's limit of {MAX_IDX_BYTES:,}; the file is damaged or not an "
                              "MNIST-style file")
    if file_size is None and gzip_size is not None and gzip_size != (header_len + claimed) % 2**32:
        # The gzip trailer records the uncompressed size (mod 4 GiB): a header that disagrees with it
        # is lying, and is refused before the stream is inflated.
        raise DataFormatError(f"{path}: header claims shape {_shape_text(shape)} = {claimed:,} bytes of data, "
                              f"but the gzip stream holds {gzip_size:,} bytes (mod 4 GiB) in all; the file is damaged")
    if file_size is not None:
        # Raw file: the size on disk settles it before anything is allocated.
        _check_length(path, file_size - header_len, claimed, shape)
        data = np.fromfile(f, dtype=np.uint8, count=claimed)
        _check_length(path, data.size, claimed, shape)
    else:
        data = np.frombuffer(_read_bounded(f, claimed + 1), dtype=np.uint8)
        _check_length(path, data.size, claimed, shape)
    return data.reshape(shape)


def _read_header(f: IO[bytes], path: Path) -> tuple[int, ...]:
    head = f.read(4)
    if len(head) < 4:
        raise DataFormatError(f"{path}: file is {len(head)} bytes, too short for an IDX header (4 bytes magic)")
    magic = int.from_bytes(head, "big")
    if head[:2] != b"\x00\x00":
        raise DataFormatError(
            f"{path}: bad magic number 0x{magic:08x}; an IDX file starts with 00 00 "
            f"(MNIST images: 0x{MAGIC_IMAGES:08x} = 2051, labels: 0x{MAGIC_LABELS:08x} = 2049)"
        )
    type_code, ndim = head[2], head[3]
    if type_code != UBYTE:
        name = _TYPE_NAMES.get(type_code, "unknown")
        raise DataFormatError(
            f"{path}: IDX data type 0x{type_code:02x} ({name}) is not supported; nndl reads uint8 (0x08) only"
        )
    if ndim == 0:
        raise DataFormatError(f"{path}: IDX header claims 0 dimensions (magic 0x{magic:08x})")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataFormatError(
            f"{path}: header truncated: {ndim} dimensions need {4 * ndim} bytes, file has {len(dims)}"
        )
    return tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))


def _read_bounded(f: IO[bytes], limit: int) -> bytearray:
    """Up to ``limit`` bytes, read in chunks so memory follows what the stream really holds."""
    buf = bytearray()
    while len(buf) < limit:
        chunk = f.read(min(_CHUNK, limit - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _check_length(path: Path, actual: int, claimed: int, shape: tuple[int, ...]) -> None:
    if actual < claimed:
        raise DataFormatError(
            f"{path}: truncated: header claims shape {_shape_text(shape)} = {claimed} bytes of data, "
            f"the file holds only {max(actual, 0)}; download the file again"
        )
    if actual > claimed:
        raise DataFormatError(
            f"{path}: payload is longer than the header's shape {_shape_text(shape)} ({claimed} bytes); "
            "the file is damaged or not an IDX file"
        )


def write_idx(path: PathLike, array: np.ndarray, *, compresslevel: int = 6) -> Path:
    """Write ``array`` (uint8, or integers in 0..255) as an IDX file, atomically.

    The file is gzip-compressed when ``path`` ends with ``.gz``. Data goes to a temporary file in
    the same folder, which replaces ``path`` only once completely written. Returns ``path``.
    """
    path = Path(path)
    a = _as_ubyte(np.asarray(array), path)
    header = bytes([0, 0, UBYTE, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape)
    payload = memoryview(np.ascontiguousarray(a).reshape(-1))  # bytes without copying large arrays
    with atomic_output(path) as f:
        if path.name.endswith(".gz"):
            # mtime=0: the same array always gives the same bytes.
            with gzip.GzipFile(filename="", fileobj=f, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            f.write(header)
            f.write(payload)
    return path


def _as_ubyte(a: np.ndarray, path: Path) -> np.ndarray:
    if not 1 <= a.ndim <= 255:
        raise DataFormatError(f"write_idx({path}): an IDX array needs 1 to 255 dimensions, got {a.ndim}")
    if any(d >= 2**32 for d in a.shape):
        raise DataFormatError(f"write_idx({path}): dimension too large for IDX in shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind in "biu" and (a.size == 0 or (a.min() >= 0 and a.max() <= 255)):
        return a.astype(np.uint8)
    raise DataFormatError(
        f"write_idx({path}): IDX files here hold uint8; got dtype {a.dtype}"
        + (f" with values {a.min()}..{a.max()}" if a.size and a.dtype.kind in "biuf" else "")
        + "; convert first, e.g. np.rint(x * 255).astype(np.uint8) for images in [0, 1]"
    )


