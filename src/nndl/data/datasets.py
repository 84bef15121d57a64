"""MNIST and Fashion-MNIST: find the files, download and verify them, split and scale (chapter 1).

The book's split: the first 50,000 images of the 60,000-image training file are the training data,
the last 10,000 the validation data, and the 10,000 images of the test file the test data. Images
come back as float rows of shape ``(n, 784)`` scaled to [0, 1], labels as int64 digits ``(n,)``.

Where the files are looked for, in order (``<name>`` is ``mnist`` or ``fashion-mnist``):

1. ``$NNDL_DATA/<name>/``
2. ``~/.cache/nndl/<name>/`` (``$NNDL_CACHE/<name>/`` or ``$XDG_CACHE_HOME/nndl/<name>/`` when set)
3. system places: ``/usr/share/datasets/<name>/`` (Debian's ``dataset-fashion-mnist`` package)

Each of the four files may be gzip-compressed (``.gz``) or raw. When none of these folders holds
all four, ``load_*`` downloads them (``download=True``) from public mirrors into ``$NNDL_DATA/<name>``
if that variable is set, else into the cache folder: each file goes to a temporary file in the
destination folder, is checked against the SHA-256 of its *decompressed* content, and only then
renamed into place, so a failed or tampered download leaves nothing behind.

Loaded arrays are cached in-process (keyed by the files' paths, sizes and modification times) and
returned read-only, so that repeated calls are free and no caller can corrupt another's data;
indexing them (as mini-batching does) makes writable copies.

Limits: only the two 28x28, 10-class data sets above; files are trusted once their format checks
pass (``verify`` checks the hashes, ``load_*`` does not, to stay fast).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Sequence

import numpy as np

from ..errors import DataFormatError, DataNotFoundError
from ..files import atomic_output
from .idx import GZIP_MAGIC, read_idx

Pair = tuple[np.ndarray, np.ndarray]  # (x (n, 784) float, y (n,) int64)

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10
DEFAULT_TIMEOUT = 30.0  # seconds per network operation
DEFAULT_DEADLINE = 600.0  # seconds for one whole file from one mirror: a trickling server is left then
_MAX_DOWNLOAD = 256 << 20  # no MNIST-style file is near this; a runaway server is cut off here


@dataclass(frozen=True)
class DatasetSpec:
    """What a data set's four files are called, their SHA-256 (decompressed) and where to get them."""

    name: str
    files: dict  # role -> (file name without .gz, sha256 of the decompressed content, size in bytes)
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...]
    class_names: tuple[str, ...]

    @property
    def mirrors_env(self) -> str:
        return f"NNDL_{self.name.upper().replace('-', '_')}_MIRRORS"


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files={
            "train_images": ("train-images-idx3-ubyte",
                             "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
            "train_labels": ("train-labels-idx1-ubyte",
                             "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
            "test_images": ("t10k-images-idx3-ubyte",
                            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
            "test_labels": ("t10k-labels-idx1-ubyte",
                            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        system_dirs=("/usr/share/datasets/mnist",),
        class_names=tuple(str(d) for d in range(10)),
    ),
    # Hashes computed from Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1 (decompressed).
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files={
            "train_images": ("train-images-idx3-ubyte",
                             "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
            "train_labels": ("train-labels-idx1-ubyte",
                             "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
            "test_images": ("t10k-images-idx3-ubyte",
                            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
            "test_labels": ("t10k-labels-idx1-ubyte",
                            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(DATASETS)}") from None


# ---------------------------------------------------------------------------------------------
# Finding the files


def cache_root() -> Path:
    """``$NNDL_CACHE``, else ``$XDG_CACHE_HOME/nndl``, else ``~/.cache/nndl``."""
    if os.environ.get("NNDL_CACHE"):
        return Path(os.environ["NNDL_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "nndl"


def search_dirs(name: str) -> list[Path]:
    """The folders searched for data set ``name``, in order."""
    spec = get_spec(name)
    dirs = []
    if os.environ.get("NNDL_DATA"):
        dirs.append(Path(os.environ["NNDL_DATA"]).expanduser() / name)
    dirs.append(cache_root() / name)
    dirs.extend(Path(d) for d in spec.system_dirs)
    return dirs


def download_dir(name: str) -> Path:
    """Where downloads go: ``$NNDL_DATA/<name>`` if set, else the cache folder."""
    if os.environ.get("NNDL_DATA"):
        return Path(os.environ["NNDL_DATA"]).expanduser() / name
    return cache_root() / name


def _file_in(folder: Path, base: str) -> Path | None:
    """``base.gz`` or ``base`` in ``folder``, whichever exists (gzip first, as distributed)."""
    for candidate in (folder / f"{base}.gz", folder / base):
        if candidate.is_file():
            return candidate
    return None


def dataset_files(name: str, folder: Path) -> dict[str, Path | None]:
    """Role -> path of each of the four files in ``folder`` (None where missing)."""
    return {role: _file_in(folder, base) for role, (base, _, _) in get_spec(name).files.items()}


def _candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """With ``data_dir``: that folder and its ``<name>/`` subfolder (the ``$NNDL_DATA`` layout)."""
    if data_dir is None:
        return search_dirs(name)
    folder = Path(data_dir).expanduser()
    return [folder, folder / name]


def _dest_dir(name: str, data_dir: str | os.PathLike | None) -> Path:
    """Where a download for ``data_dir`` goes: ``data_dir`` itself if it is named ``<name>`` or
    already holds some of the files, else ``data_dir/<name>``."""
    if data_dir is None:
        return download_dir(name)
    folder = Path(data_dir).expanduser()
    if folder.name == name or (folder.is_dir() and any(dataset_files(name, folder).values())):
        return folder
    return folder / name


def find_dataset_dir(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder holding all four files of ``name``, or None.

    With ``data_dir``, only that folder and ``data_dir/<name>`` are considered, so both
    ``--data-dir ~/data/mnist`` and ``--data-dir ~/data`` work.
    """
    for folder in _candidate_dirs(name, data_dir):
        if folder.is_dir() and all(p is not None for p in dataset_files(name, folder).values()):
            return folder.resolve()
    return None


def _manual_help(name: str, dest: Path) -> str:
    spec = get_spec(name)
    names = ", ".join(f"{base}.gz" for base, _, _ in spec.files.values())
    return (
        f"To place the files by hand, put {names} (gzip or raw) into {dest} "
        f"(or into $NNDL_DATA/{name}/), then check them with `nndl data verify --dataset {name}`."
    )


def _not_found_message(name: str, data_dir: str | os.PathLike | None) -> str:
    looked = ", ".join(str(d) for d in _candidate_dirs(name, data_dir))
    dest = _dest_dir(name, data_dir)
    return (
        f"{name} not found: no folder holds all four files (looked in {looked}). "
        f"Download it with `nndl data fetch --dataset {name}` or load with download=True. "
        + _manual_help(name, dest)
    )


# ---------------------------------------------------------------------------------------------
# Hashing and downloading


def content_sha256(f: IO[bytes], *, limit: int | None = None) -> str:
    """SHA-256 of the decompressed content of an open binary file (gzip detected by magic bytes).

    Reading stops after ``limit`` decompressed bytes (+1), which is enough to tell a mismatch,
    so a decompression bomb cannot fill memory or time. Damaged gzip raises DataFormatError.
    """
    f.seek(0)
    stream: IO[bytes] = f
    if f.read(2) == GZIP_MAGIC:
        f.seek(0)
        stream = gzip.GzipFile(fileobj=f, mode="rb")
    else:
        f.seek(0)
    h = hashlib.sha256()
    total = 0
    try:
        while limit is None or total <= limit:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            h.update(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"damaged gzip stream ({exc})") from exc
    return h.hexdigest()


def file_sha256(path: Path, limit: int | None = None) -> str:
    with open(path, "rb") as f:
        try:
            return content_sha256(f, limit=limit)
        except DataFormatError as exc:
            raise DataFormatError(f"{path}: {exc}") from exc


def resolve_mirrors(name: str, mirrors: Sequence[str] | str | None = None) -> list[str]:
    """``mirrors`` if given, else ``$NNDL_<NAME>_MIRRORS`` (comma-separated), else the defaults."""
    spec = get_spec(name)
    if mirrors is None:
        mirrors = os.environ.get(spec.mirrors_env) or list(spec.mirrors)
    if isinstance(mirrors, str):
        mirrors = mirrors.split(",")
    out = [m.strip() for m in mirrors if m and m.strip()]
    if not out:
        raise ValueError(f"no mirror URLs given for {name}; pass mirrors=[...] or set {spec.mirrors_env}")
    return out


def _download_to(url: str, out: IO[bytes], timeout: float, deadline: float = DEFAULT_DEADLINE) -> None:
    """``url``'s body into ``out``: ``timeout`` seconds per network operation, ``deadline`` for all."""
    import time

    end = time.monotonic() + deadline
    req = urllib.request.Request(url, headers={"User-Agent": "nndl (python urllib)"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        total = 0
        while True:
            chunk = resp.read1(1 << 20)       # whatever has arrived: a trickle cannot hold one read for ever
            if time.monotonic() > end:
                raise TimeoutError(f"not finished after {deadline:g} s ({total:,} bytes so far); "
                                   f"the mirror is too slow (raise the deadline with --deadline)")
            if not chunk:
                break
            total += len(chunk)
            if total > _MAX_DOWNLOAD:
                raise DataFormatError(f"more than {_MAX_DOWNLOAD >> 20} MiB, refusing the rest")
            out.write(chunk)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, DataFormatError) else str(exc)


def _fetch_file(base: str, sha: str, size: int, dest: Path, mirrors: list[str], timeout: float,
                progress: bool, deadline: float = DEFAULT_DEADLINE) -> Path:
    """Download one file from the first mirror that serves the right content; return its path."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + f"/{base}.gz"
        if progress:
            print(f"nndl: downloading {url}", file=sys.stderr, flush=True)
        try:
            # The final name depends on whether the mirror served gzip, so write under a
            # provisional name and rename below; atomic_output removes it on any failure.
            target = dest / f"{base}.gz"
            with atomic_output(target) as f:
                _download_to(url, f, timeout, deadline)
                got = content_sha256(f, limit=size)
                if got != sha:
                    raise DataFormatError(
                        f"SHA-256 of the decompressed content is {got}, expected {sha} (corrupted or wrong file)"
                    )
                f.seek(0)
                gz = f.read(2) == GZIP_MAGIC
            if not gz:
                os.replace(target, dest / base)
                target = dest / base
            return target
        except (OSError, ValueError, EOFError, zlib.error, http.client.HTTPException) as exc:  # urllib's are OSErrors
            failures.append(f"  {url}: {_describe(exc)}")
            if progress:
                print(f"nndl: failed: {failures[-1].strip()}", file=sys.stderr, flush=True)
    raise DataNotFoundError(
        f"could not download {base} into {dest}; tried:\n" + "\n".join(failures) + "\n"
    )


def fetch(name: str = "mnist", mirrors: Sequence[str] | str | None = None,
          dest: str | os.PathLike | None = None, *, timeout: float = DEFAULT_TIMEOUT,
          progress: bool = True, deadline: float = DEFAULT_DEADLINE) -> Path:
    """Download the files of ``name`` that ``dest`` lacks (or holds damaged) and verify them.

    ``dest`` defaults to ``$NNDL_DATA/<name>`` or the cache folder; ``mirrors`` (base URLs, tried
    in order) to ``$NNDL_<NAME>_MIRRORS`` or the public mirrors. Files already present with the
    right SHA-256 are kept. ``timeout`` bounds each network operation, ``deadline`` each file's
    download from one mirror. Returns the folder. Raises ``DataNotFoundError`` listing every URL
    tried and why it failed, with instructions for placing the files by hand.
    """
    spec = get_spec(name)
    dest_dir = Path(dest).expanduser() if dest is not None else download_dir(name)
    urls = resolve_mirrors(name, mirrors)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for base, sha, size in spec.files.values():
        existing = _file_in(dest_dir, base)
        if existing is not None and _hash_ok(existing, sha, size):
            continue
        try:
            path = _fetch_file(base, sha, size, dest_dir, urls, timeout, progress, deadline)
        except DataNotFoundError as exc:
            raise DataNotFoundError(f"{name}: {exc}{_manual_help(name, dest_dir)}") from None
        if existing is not None and existing != path:
            existing.unlink(missing_ok=True)  # a damaged copy would shadow the good one (.gz is read first)
    return dest_dir.resolve()


def _hash_ok(path: Path, sha: str, size: int) -> bool:
    try:
        return file_sha256(path, limit=size) == sha
    except DataFormatError:
        return False


def verify(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> list[tuple[str, bool, str]]:
    """Check each file of ``name`` against its SHA-256: a list of ``(file, ok, message)``.

    Checks the folder ``load_*`` would use (the first complete one, else the first holding any
    of the files), among ``data_dir`` and ``data_dir/<name>`` if given.
    """
    spec = get_spec(name)
    folder = _folder_to_check(name, data_dir)
    results = []
    for role, (base, sha, size) in spec.files.items():
        path = _file_in(folder, base) if folder is not None else None
        if path is None:
            where = folder if folder is not None else ", ".join(str(d) for d in search_dirs(name))
            results.append((base, False, f"missing (looked in {where})"))
            continue
        try:
            got = file_sha256(path, limit=size)
        except (DataFormatError, OSError) as exc:
            results.append((str(path), False, str(exc)))
            continue
        if got == sha:
            results.append((str(path), True, "SHA-256 ok"))
        else:
            results.append((str(path), False, f"SHA-256 mismatch: got {got}, expected {sha}"))
    return results


def _folder_to_check(name: str, data_dir) -> Path | None:
    found = find_dataset_dir(name, data_dir)
    if found is not None:
        return found
    for folder in _candidate_dirs(name, data_dir):
        if folder.is_dir() and any(dataset_files(name, folder).values()):
            return folder
    return _dest_dir(name, data_dir) if data_dir is not None else None


# ---------------------------------------------------------------------------------------------
# Loading


def _locate(name: str, data_dir, download: bool, mirrors) -> dict[str, Path]:
    folder = find_dataset_dir(name, data_dir)
    if folder is None:
        if not download:
            raise DataNotFoundError(_not_found_message(name, data_dir))
        folder = fetch(name, mirrors, dest=_dest_dir(name, data_dir))
    return dataset_files(name, folder)  # type: ignore[return-value]


def _stat_key(paths: dict[str, Path]) -> tuple:
    """Paths with sizes and mtimes: the in-process cache notices replaced files."""
    key = []
    for role in ROLES:
        st = paths[role].stat()
        key.append((role, str(paths[role].resolve()), st.st_size, st.st_mtime_ns))
    return tuple(key)


@functools.lru_cache(maxsize=4)
def _read_raw(name: str, key: tuple) -> dict[str, np.ndarray]:
    paths = {role: Path(p) for role, p, _, _ in key}
    arrays = {}
    for part in ("train", "test"):
        images = read_idx(paths[f"{part}_images"], ndim=3)  # (n, 28, 28)
        labels = read_idx(paths[f"{part}_labels"], ndim=1)  # (n,)
        if images.shape[1:] != IMAGE_SHAPE:
            raise DataFormatError(
                f"{paths[f'{part}_images']}: images are {images.shape[1]}x{images.shape[2]}, "
                f"expected {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}"
            )
        if images.shape[0] != labels.shape[0]:
            raise DataFormatError(
                f"{paths[f'{part}_images']} holds {images.shape[0]} images but "
                f"{paths[f'{part}_labels']} holds {labels.shape[0]} labels; they must match"
            )
        if labels.size and labels.max() >= N_CLASSES:
            raise DataFormatError(
                f"{paths[f'{part}_labels']}: label {labels.max()} found, expected 0..{N_CLASSES - 1}"
            )
        images.flags.writeable = False
        labels.flags.writeable = False
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = images, labels
    return arrays


def load_raw(name: str = "mnist", data_dir: str | os.PathLike | None = None, *, download: bool = True,
             mirrors: Sequence[str] | str | None = None) -> dict[str, np.ndarray]:
    """The four arrays as stored, read-only: ``train_images`` (60000, 28, 28) uint8,
    ``train_labels`` (60000,) uint8, ``test_images``, ``test_labels`` (no split, no scaling)."""
    paths = _locate(name, data_dir, download, mirrors)
    return _read_raw(name, _stat_key(paths))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _to_pair(images: np.ndarray, labels: np.ndarray, dtype: np.dtype) -> Pair:
    x = images.reshape(images.shape[0], -1 if images.size else 784).astype(dtype)  # (n, 784)
    x /= dtype.type(255)
    return _readonly(x), _readonly(labels.astype(np.int64))


@functools.lru_cache(maxsize=4)
def _split(name: str, key: tuple, validation_size: int, dtype_str: str) -> tuple[Pair, Pair, Pair]:
    raw = _read_raw(name, key)
    dtype = np.dtype(dtype_str)
    n = len(raw["train_images"])
    if not 0 <= validation_size < n:
        raise ValueError(f"validation_size must be in 0..{n - 1} (the training file holds {n}), got {validation_size}")
    cut = n - validation_size  # book: first 50,000 train, last 10,000 validation
    training = _to_pair(raw["train_images"][:cut], raw["train_labels"][:cut], dtype)
    validation = _to_pair(raw["train_images"][cut:], raw["train_labels"][cut:], dtype)
    test = _to_pair(raw["test_images"], raw["test_labels"], dtype)
    return training, validation, test


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None, *,
                 validation_size: int = 10000, dtype=np.float32, download: bool = True,
                 mirrors: Sequence[str] | str | None = None) -> tuple[Pair, Pair, Pair]:
    """``(training, validation, test)`` of data set ``name``; see ``load_mnist``."""
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a float type (float32 or float64), got {dt}")
    if isinstance(validation_size, bool) or not isinstance(validation_size, (int, np.integer)):
        raise ValueError(f"validation_size must be an integer, got {validation_size!r}")
    paths = _locate(name, data_dir, download, mirrors)
    return _split(name, _stat_key(paths), int(validation_size), dt.str)


def load_mnist(data_dir: str | os.PathLike | None = None, *, validation_size: int = 10000,
               dtype=np.float32, download: bool = True,
               mirrors: Sequence[str] | str | None = None) -> tuple[Pair, Pair, Pair]:
    """MNIST as the book splits it: ``(training, validation, test)``, each an ``(x, y)`` pair.

    ``x`` has shape ``(n, 784)`` with values in [0, 1] (``dtype``, float32 by default), ``y`` holds
    the digits as int64 of shape ``(n,)``: 50,000 training, 10,000 validation (the last
    ``validation_size`` images of the training file) and 10,000 test images. ``data_dir`` is the
    folder holding the four IDX files, or one holding an ``mnist/`` folder of them; by default
    they are looked up (see the module docstring) and downloaded when absent and ``download``
    is true. The arrays are read-only and shared between calls; use ``one_hot(y)`` for the
    book's vector targets.
    """
    return load_dataset("mnist", data_dir, validation_size=validation_size, dtype=dtype,
                        download=download, mirrors=mirrors)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, *, validation_size: int = 10000,
                       dtype=np.float32, download: bool = True,
                       mirrors: Sequence[str] | str | None = None) -> tuple[Pair, Pair, Pair]:
    """Fashion-MNIST (Zalando), a drop-in replacement with MNIST's format and split sizes.

    Same contract as ``load_mnist``; the labels name clothes (``DATASETS["fashion-mnist"].class_names``).
    Debian's ``dataset-fashion-mnist`` package installs it in ``/usr/share/datasets/fashion-mnist``.
    """
    return load_dataset("fashion-mnist", data_dir, validation_size=validation_size, dtype=dtype,
                        download=download, mirrors=mirrors)


def info(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> dict:
    """Where ``name`` was found, its file names, counts, split sizes and class counts.

    Does not download: when the data set is absent, ``found`` is False and ``searched`` lists
    the folders looked in.
    """
    spec = get_spec(name)
    folder = find_dataset_dir(name, data_dir)
    searched = [str(d) for d in _candidate_dirs(name, data_dir)]
    out: dict = {"name": name, "found": folder is not None, "searched": searched}
    if folder is None:
        out["download_to"] = str(_dest_dir(name, data_dir))
        return out
    paths = dataset_files(name, folder)
    raw = _read_raw(name, _stat_key(paths))  # type: ignore[arg-type]
    n_train, n_test = len(raw["train_labels"]), len(raw["test_labels"])
    out.update(
        dir=str(folder),
        files={role: str(p) for role, p in paths.items()},
        image_shape=list(raw["train_images"].shape[1:]),
        train_count=n_train,
        test_count=n_test,
        split={"training": n_train - 10000, "validation": 10000, "test": n_test},
        class_names=list(spec.class_names),
        train_class_counts=np.bincount(raw["train_labels"], minlength=N_CLASSES).tolist(),
        test_class_counts=np.bincount(raw["test_labels"], minlength=N_CLASSES).tolist(),
    )
    return out


# ---------------------------------------------------------------------------------------------
# Targets and subsets


def one_hot(labels, n_classes: int = N_CLASSES, dtype=np.float32):
    """The book's vector targets: row i is all zeros but a 1 at ``labels[i]``; shape ``(n, n_classes)``.

    Works on NumPy or CuPy labels (the result lives with them).
    """
    from ..backend import array_module

    xp = array_module(labels)
    y = xp.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {tuple(y.shape)}")
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and y.size and bool(xp.all(y == xp.round(y))):
            y = y.astype(np.int64)
        elif y.size:
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        else:
            y = y.astype(np.int64)
    if y.size and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(
            f"labels must be in 0..{n_classes - 1} for n_classes={n_classes}, got values {int(y.min())}..{int(y.max())}"
        )
    out = xp.zeros((y.shape[0], n_classes), dtype=dtype)  # (n, n_classes)
    out[xp.arange(y.shape[0]), y] = 1
    return out


def subset(data: Pair, *, digits: Iterable[int] | None = None, size: int | None = None) -> Pair:
    """``(x, y)`` restricted to the classes in ``digits`` and/or its first ``size`` samples.

    For the book's quick experiments (chapter 3: "train on 0s and 1s only"): labels keep their
    original digit values, so a 10-output network still works unchanged.
    """
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)} labels")
    if digits is not None:
        wanted = sorted({int(d) for d in digits})
        if not wanted:
            raise ValueError("digits is empty; give at least one class, e.g. digits=(0, 1)")
        present = set(np.unique(y).tolist())
        missing = [d for d in wanted if d not in present]
        if missing:
            raise ValueError(f"digits {missing} {'is' if len(missing) == 1 else 'are'} not a label of this data "
                             f"set (its labels: {min(present)}..{max(present)}); e.g. --digits 0,1")
        mask = np.isin(y, wanted)
        x, y = x[mask], y[mask]
    if size is not None:
        if isinstance(size, bool) or int(size) != size or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if size > len(y):
            raise ValueError(
                f"size={size} but only {len(y)} samples are available"
                + (f" for digits {wanted}" if digits is not None else "")
            )
        x, y = x[:size], y[:size]
    return x, y
