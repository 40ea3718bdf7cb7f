"""Number formatting shared by every table, report and plot label.

Low in the house: it imports nothing from archsearch, so any layer (profiling, quality, search,
cli) formats a number the same way.
"""

from __future__ import annotations

import math
from typing import Any

_SI = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M' (powers of 1000); with a unit, '1.23 MFLOP'."""
    for factor, prefix in _SI:
        if abs(n) >= factor:
            return f"{n / factor:.3g} {prefix}{unit}"
    return f"{n:.4g} {unit}".rstrip()


def count(n: float, noun: str) -> str:
    """A count in powers of 1000 with what is counted: 2048000 -> '2.05 M params',
    3072 -> '3.07 k tokens', 12 -> '12 tokens'."""
    return f"{si(n)} {noun}"


def binary_bytes(n: float) -> str:
    """Bytes in powers of 1024: 1536 -> '1.5 KiB', 3.2e9 -> '2.98 GiB'."""
    for factor, prefix in ((2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki")):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {prefix}B"
    return f"{n:.4g} B"


def duration_ms(ms: float) -> str:
    """A time given in milliseconds, in the unit that reads best: s, ms or µs."""
    if abs(ms) >= 1000:
        return f"{ms / 1000:.3g} s"
    if abs(ms) >= 1:
        return f"{ms:.3g} ms"
    return f"{ms * 1000:.3g} µs"


def value(v: Any) -> str:
    """A cell of a table or report: '-' for missing, 4 decimals for small floats, SI for large
    numbers, ``str`` for the rest."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and abs(v) < 1000:
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    if isinstance(v, (int, float)):
        return si(v)
    return str(v)


def csv_cell(v: Any) -> Any:
    """A value as written to a CSV file: empty for missing, 6 significant digits for floats."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def plot_text(text: Any) -> str:
    """User text (a model, variant or study name) for a matplotlib label: a ``$`` is drawn as a
    dollar sign, not read as the start of math. Mathtext stays on for everything else (log-axis
    tick labels use it)."""
    return str(text).replace("$", r"\$")


def legend(ax: Any, **kw: Any) -> None:
    """``ax.legend(**kw)`` when the axes has labelled artists (matplotlib warns otherwise, e.g.
    for a study with no finished trial)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)
