"""IDX reading and writing: round trips, and every kind of damaged file refused with a clear message."""
from __future__ import annotations

import gzip
import os
import time
import tracemalloc

import numpy as np
import pytest

from nndl.data import DataFormatError, read_idx, write_idx
from nndl.data.idx import idx_shape
from nndl.errors import DataFormatError as CoreDataFormatError


def _header(type_code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def _raise_names_file(path, **kwargs):
    with pytest.raises(DataFormatError) as info:
        read_idx(path, **kwargs)
    assert str(path) in str(info.value), f"message should name the file: {info.value}"
    return str(info.value)


def test_reexported_error_is_the_core_one():
    assert DataFormatError is CoreDataFormatError
    assert issubclass(DataFormatError, ValueError)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7, 28, 28), (13,), (3, 4), (2, 3, 4, 5), (0, 28, 28)])
def test_round_trip(tmp_path, suffix, shape):
    a = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    path = write_idx(tmp_path / f"a{suffix}", a)
    b = read_idx(path)
    assert b.dtype == np.uint8 and b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert idx_shape(path) == shape
    assert sorted(os.listdir(tmp_path)) == [f"a{suffix}"], "no temporary file may remain"


def test_header_bytes_and_compression(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = write_idx(tmp_path / "img", a).read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3])  # magic 2051
    assert raw[4:16] == b"".join(d.to_bytes(4, "big") for d in (2, 3, 4))
    assert raw[16:] == a.tobytes()
    assert write_idx(tmp_path / "lab", np.arange(5, dtype=np.uint8)).read_bytes()[:4] == bytes([0, 0, 8, 1])
    gz = (tmp_path / "img.gz")
    write_idx(gz, a)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(gz.read_bytes()) == raw
    # Same array, same bytes (no timestamp in the gzip header).
    write_idx(tmp_path / "again.gz", a)
    assert (tmp_path / "again.gz").read_bytes() == gz.read_bytes()


def test_compression_is_detected_by_content_not_name(tmp_path):
    a = np.arange(60, dtype=np.uint8).reshape(5, 12)
    write_idx(tmp_path / "real.gz", a)
    write_idx(tmp_path / "real_raw", a)
    os.replace(tmp_path / "real.gz", tmp_path / "misnamed_raw")
    os.replace(tmp_path / "real_raw", tmp_path / "misnamed.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "misnamed_raw"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "misnamed.gz"), a)


def test_write_accepts_small_ints_and_refuses_other_data(tmp_path):
    write_idx(tmp_path / "ok", np.array([0, 9, 255], dtype=np.int64))
    np.testing.assert_array_equal(read_idx(tmp_path / "ok"), [0, 9, 255])
    for bad in (np.array([0.5, 0.2]), np.array([256, 1]), np.array([-1, 3]), np.array(3)):
        with pytest.raises(DataFormatError, match="uint8|dimensions"):
            write_idx(tmp_path / "bad.gz", bad)
    assert sorted(os.listdir(tmp_path)) == ["ok"], "a refused write leaves no file behind"


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "keep", np.arange(4, dtype=np.uint8))
    before = path.read_bytes()

    class Boom(Exception):
        pass

    def explode(*args, **kwargs):
        raise Boom

    monkeypatch.setattr("nndl.data.idx.os.replace", explode)
    with pytest.raises(Boom):
        write_idx(path, np.arange(9, dtype=np.uint8))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep"]


def test_truncated_raw_payload(tmp_path):
    path = write_idx(tmp_path / "t", np.ones((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    msg = _raise_names_file(path)
    assert "truncated" in msg and "(10, 28, 28)" in msg


def test_raw_payload_longer_than_header(tmp_path):
    path = write_idx(tmp_path / "t", np.ones((4,), np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    assert "longer" in _raise_names_file(path)


@pytest.mark.parametrize("cut", [0, 3, 6, 13])
def test_truncated_header(tmp_path, cut):
    path = write_idx(tmp_path / "h", np.ones((2, 2, 2), np.uint8))
    path.write_bytes(path.read_bytes()[:cut])
    assert "too short" in _raise_names_file(path) or "header truncated" in _raise_names_file(path)


def test_truncated_gzip_stream(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "t.gz", a)
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 4):  # mid-stream; and only the trailer's size field lost
        path.write_bytes(data[:keep])
        assert "gzip" in _raise_names_file(path)


def test_gzip_crc_error(tmp_path):
    path = write_idx(tmp_path / "c.gz", np.zeros((100,), np.uint8))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path.write_bytes(bytes(data))
    assert "gzip" in _raise_names_file(path)


def test_gzip_of_truncated_payload(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(_header(8, (10, 28, 28)) + bytes(100)))
    assert "truncated" in _raise_names_file(path)


def test_not_gzip_not_idx(tmp_path):
    path = tmp_path / "notes.txt.gz"
    path.write_bytes(b"this is not an IDX file at all")
    assert "bad magic" in _raise_names_file(path)


@pytest.mark.parametrize("type_code, name", [(0x0D, "float32"), (0x0C, "int32"), (0x09, "int8"), (0x42, "unknown")])
def test_non_uint8_type_byte(tmp_path, type_code, name):
    path = tmp_path / "typed"
    path.write_bytes(_header(type_code, (3,)) + bytes(12))
    msg = _raise_names_file(path)
    assert name in msg and "uint8" in msg


def test_zero_dimensions_and_unexpected_ndim(tmp_path):
    path = tmp_path / "z"
    path.write_bytes(_header(8, ()))
    assert "0 dimensions" in _raise_names_file(path)
    labels = write_idx(tmp_path / "labels", np.arange(5, dtype=np.uint8))
    assert "expected 3" in _raise_names_file(labels, ndim=3)


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("claimed", [10**9, 10**6])
def test_lying_header_fails_fast_without_allocating(tmp_path, compressed, claimed):
    """A header claiming 10^9 images (784 GB), or 10^6 (784 MB, which np.empty would happily
    reserve), must be refused from the file's real size without allocating the claim."""
    content = _header(8, (claimed, 28, 28)) + bytes(28 * 28 * 3)
    path = tmp_path / ("liar.gz" if compressed else "liar")
    path.write_bytes(gzip.compress(content) if compressed else content)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        msg = _raise_names_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 2.0
    assert peak < 4 * 2**20, f"peak allocation {peak} bytes: the claimed size must never be allocated"
    assert str(claimed) in msg
    assert any(reason in msg for reason in ("truncated", "more than nndl's limit", "gzip stream holds"))


def test_temp_files_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    """A SIGKILL mid-write leaves atomic_output's temporary file behind; the next write to the
    same path removes those of dead processes, never a live writer's."""
    import subprocess
    import sys

    from nndl.files import atomic_output

    target = tmp_path / "checkpoint.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f".checkpoint.npz.{dead}.abc123.part"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".checkpoint.npz.{os.getpid()}.def456.part"    # this process: alive
    live.write_bytes(b"y")
    other = tmp_path / ".other.npz.1.aaa.part"                         # another file's: untouched
    other.write_bytes(b"z")
    with atomic_output(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert not stale.exists() and live.exists() and other.exists()


def test_a_gzip_bomb_with_a_lying_header_is_refused_before_it_is_inflated(tmp_path):
    """A .gz of 200 MB of zeros (about 200 kB on disk) behind a header that claims 784 MB: refused
    from the gzip trailer's recorded size, before reading (before: memory followed the stream)."""
    import gzip
    import struct
    import tracemalloc

    from nndl.data.idx import read_idx

    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(struct.pack(">IIII", 0x803, 1_000_000, 28, 28))
        zeros = bytes(1 << 20)
        for _ in range(200):
            f.write(zeros)
    tracemalloc.start()
    with pytest.raises(DataFormatError, match="gzip stream holds"):
        read_idx(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20, f"{peak >> 20} MiB read"
    huge = tmp_path / "huge-images-idx3-ubyte.gz"                  # a claim past the limit itself
    huge.write_bytes(gzip.compress(struct.pack(">IIII", 0x803, 10**9, 28, 28)))
    with pytest.raises(DataFormatError, match="more than nndl's limit"):
        read_idx(huge)


def test_a_full_disk_is_reported_with_the_path_and_nothing_is_left(tmp_path, monkeypatch):
    import errno as errno_codes

    from nndl.data import idx

    def no_space(fd):
        raise OSError(errno_codes.ENOSPC, "No space left on device")

    monkeypatch.setattr(idx.os, "fsync", no_space)
    target = tmp_path / "out" / "labels-idx1-ubyte"
    with pytest.raises(OSError) as info:
        write_idx(target, np.arange(5, dtype=np.uint8))
    assert str(target) in str(info.value) and "no space left" in str(info.value)
    assert os.listdir(target.parent) == []


def test_a_header_with_255_dimensions_gets_a_short_message(tmp_path):
    path = tmp_path / "many"
    path.write_bytes(bytes([0, 0, 8, 255]) + b"\0\0\0\1" * 255)
    with pytest.raises(DataFormatError) as info:
        read_idx(path, ndim=3)
    assert len(str(info.value)) < 400 and "255 dimensions" in str(info.value)
