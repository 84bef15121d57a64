"""What every plot shares: a bare matplotlib ``Figure`` on the Agg canvas (matplotlib imported
lazily: plotting is an optional extra), the PNG written atomically, and the reading of numbers
from JSON records."""
from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np

from ..errors import install_hint

PathLike = str | os.PathLike
DPI = 100


# ----- matplotlib at the edge --------------------------------------------------------------------
def _figure(width: float, height: float):
    """A new matplotlib Figure on the Agg canvas (imported lazily: plotting is an optional extra)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"plotting needs matplotlib: {install_hint('plot')} ({exc})") from None
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out: PathLike, dpi: int = DPI) -> str:
    """Write ``fig`` as PNG to ``out`` atomically; return the path as a string."""
    from ..files import atomic_write_bytes

    out = os.fspath(out)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # rendered fully before the file is touched
    atomic_write_bytes(out, buf.getvalue())
    return out


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        return None
    return float(value)
