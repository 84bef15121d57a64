"""What the notebooks share: the quick switch, the checkout's folders, and the book's runs in docs/runs.

``NNDL_NOTEBOOK_QUICK=1`` (CI, ``tests/test_notebooks.py``) makes every notebook run at small sizes
(subsets of MNIST, few epochs) in well under a minute; unset, they run at the book's sizes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

QUICK = os.environ.get("NNDL_NOTEBOOK_QUICK", "") not in ("", "0")
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "docs" / "runs").is_dir())
RUNS = ROOT / "docs" / "runs"


def size(quick: int, full: int) -> int:
    """``quick`` under NNDL_NOTEBOOK_QUICK, else ``full``."""
    return quick if QUICK else full


def rows(path: str | Path) -> list[dict]:
    """The per-epoch rows of a metrics file (``nndl train --metrics``) under docs/runs, or a path."""
    path = Path(path)
    path = path if path.is_absolute() else RUNS / path
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def curve(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of ``key`` in metrics rows or a History's records."""
    pairs = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
    return [e for e, _ in pairs], [v for _, v in pairs]


if QUICK:
    print(f"NNDL_NOTEBOOK_QUICK is set: small sizes (unset it for the book's sizes); checkout at {ROOT}")
