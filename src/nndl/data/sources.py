"""Where the MNIST and Fashion-MNIST files are: the folders searched, download, hashing, verification.

Where the files are looked for, in order (``<name>`` is ``mnist`` or ``fashion-mnist``):

1. ``$NNDL_DATA/<name>/``
2. ``~/.cache/nndl/<name>/`` (``$NNDL_CACHE/<name>/`` or ``$XDG_CACHE_HOME/nndl/<name>/`` when set)
3. system places: ``/usr/share/datasets/<name>/`` (Debian's ``dataset-fashion-mnist`` package)

Each of the four files may be gzip-compressed (``.gz``) or raw. When none of these folders holds
all four, ``locate`` (and so ``load_*``) downloads them (``download=True``) from public mirrors into
``$NNDL_DATA/<name>`` if that variable is set, else into the cache folder: each file goes to a
temporary file in the destination folder, is checked against the SHA-256 of its *decompressed*
content, and only then renamed into place, so a failed or tampered download leaves nothing behind.

Limits: files are trusted once their format checks pass (``verify`` checks the hashes, ``load_*``
does not, to stay fast). ``nndl.data.datasets`` reads, splits and scales what is found here.
"""
from __future__ import annotations

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
from typing import IO, Sequence

from ..errors import DataFormatError, DataNotFoundError
from ..files import atomic_output
from .idx import GZIP_MAGIC

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


def candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """With ``data_dir``: that folder and its ``<name>/`` subfolder (the ``$NNDL_DATA`` layout)."""
    if data_dir is None:
        return search_dirs(name)
    folder = Path(data_dir).expanduser()
    return [folder, folder / name]


def download_dest(name: str, data_dir: str | os.PathLike | None) -> Path:
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
    for folder in candidate_dirs(name, data_dir):
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
    looked = ", ".join(str(d) for d in candidate_dirs(name, data_dir))
    dest = download_dest(name, data_dir)
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
    for folder in candidate_dirs(name, data_dir):
        if folder.is_dir() and any(dataset_files(name, folder).values()):
            return folder
    return download_dest(name, data_dir) if data_dir is not None else None


def locate(name: str, data_dir: str | os.PathLike | None, download: bool,
           mirrors: Sequence[str] | str | None) -> dict[str, Path]:
    """Role -> path of each of the four files of ``name``, downloaded first if absent and ``download``."""
    folder = find_dataset_dir(name, data_dir)
    if folder is None:
        if not download:
            raise DataNotFoundError(_not_found_message(name, data_dir))
        folder = fetch(name, mirrors, dest=download_dest(name, data_dir))
    return dataset_files(name, folder)  # type: ignore[return-value]
