"""Small helpers for the Markdown reports that reproduce, sweep and ensemble write."""
from __future__ import annotations

from typing import Any, Iterable, Sequence


def percent(value: float | None, digits: int = 2) -> str:
    """0.9512 → "95.12%"; None (not measured) → "—"."""
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """The lines of a Markdown table: a header row, the rule, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


__all__ = ["markdown_table", "percent"]
