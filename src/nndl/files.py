"""Writing files so that a crash never leaves half of one: atomic replacement and append-only journals.

Every file nndl writes (model files, checkpoints, IDX files, reports, metrics) goes through
``atomic_output`` or ``atomic_write_bytes``: the bytes go to a temporary file in the same folder,
which replaces the target only once complete. Journals (a sweep's ``trials.jsonl``) are appended
one fsync'ed JSON line at a time, and read back skipping a line torn by a kill.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def _remove_stale_parts(path: Path) -> None:
    """Delete ``atomic_output``'s temporary files for ``path`` whose writer process is gone."""
    import glob

    for part in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        pid = part.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            with contextlib.suppress(OSError):
                part.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # someone else's process
        return True
    return True


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``path`` only if the ``with`` block finishes.

    Writes go to a hidden temporary file in the same folder (so the final ``os.replace`` is atomic);
    on any exception the temporary file is removed and ``path`` is left as it was. The temporary
    file's name holds the writer's process id, so that the temporary files of writers killed
    mid-write (SIGKILL leaves them behind) are removed by the next write to ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.errno == errno.ENOSPC:
            raise OSError(exc.errno, f"no space left on the device to write {path}; free some space or choose "
                                     "another folder") from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and a rename."""
    with atomic_output(path) as f:
        f.write(data)


# ----- journals --------------------------------------------------------------------------------
def append_jsonl(path: str, record: dict) -> None:
    """Append ``record`` as one line, durably (flush + fsync). A line torn by an earlier crash is
    closed with a newline first, so it stays one unreadable line and never corrupts this one."""
    line = json.dumps(record) + "\n"
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str) -> list[dict]:
    """The records of a journal; lines that do not parse (torn by a kill) are skipped."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "id" in record:
                records.append(record)
    return records
