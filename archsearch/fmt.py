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


# ---- figure style: one colour and marker per label, SI axes ----

#: colours for labelled series: tab10's strong colours, then tab20's light ones (grey is left
#: out: the figures draw infeasible and other "not a series" points in grey)
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)  # fmt: skip
#: markers cycled alongside the colours; 7 is coprime with the 18 colours, so no two of the first
#: 126 labels share colour and marker (then hollow markers: 252 distinct styles)
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


class Style:
    """How one labelled series is drawn: a colour, a marker and filled or hollow markers."""

    __slots__ = ("color", "marker", "filled")

    def __init__(self, color: str, marker: str, filled: bool = True) -> None:
        self.color, self.marker, self.filled = color, marker, filled

    @property
    def key(self) -> tuple[str, str, bool]:
        return (self.color, self.marker, self.filled)

    def line(self) -> dict[str, Any]:
        """Keywords for ``ax.plot``/``ax.errorbar``."""
        return {
            "color": self.color,
            "marker": self.marker,
            "markerfacecolor": self.color if self.filled else "none",
        }

    def points(self) -> dict[str, Any]:
        """Keywords for ``ax.scatter``."""
        face = self.color if self.filled else "none"
        return {"marker": self.marker, "facecolors": face, "edgecolors": self.color}

    def __repr__(self) -> str:
        return f"Style{self.key}"


def style_of(i: int) -> Style:
    """The ``i``-th series' style: colour ``i mod 18``, marker ``i mod 7``, hollow after 126."""
    n = len(PALETTE) * len(MARKERS)
    return Style(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)], (i // n) % 2 == 0)


def styles(labels: Any) -> dict[str, Style]:
    """One distinct :class:`Style` per label, in the order the labels first appear (pass every
    label of a report, in a fixed order, so that a label looks the same in all its figures)."""
    return {lab: style_of(i) for i, lab in enumerate(dict.fromkeys(labels))}


#: mantissas of labelled log ticks, coarse to fine
_SUBS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0))


def log_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round values (1, 2, 5 x a power of ten, finer when the span is narrow) between ``lo``
    and ``hi``: the finest set with at most ``most`` values, or the coarsest with two or more."""
    if not (0 < lo < hi) or not math.isfinite(hi):
        return []
    best: list[float] = []
    for subs in _SUBS:
        ticks = [
            m * 10.0**e
            for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in subs
            if lo <= m * 10.0**e * (1 + 1e-9) and m * 10.0**e <= hi * (1 + 1e-9)
        ]
        if len(ticks) > most and len(best) >= 2:
            break
        best = ticks
    return best


def pow2_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Powers of two between ``lo`` and ``hi`` (every k-th, at most ``most``): sizes' ticks."""
    if not (0 < lo < hi) or not math.isfinite(hi):
        return []
    ks = list(range(math.ceil(math.log2(lo) - 1e-9), math.floor(math.log2(hi) + 1e-9) + 1))
    step = max(1, math.ceil(len(ks) / most))
    return [2.0**k for k in ks[::step]]


def _log_ticks(ax: Any, axis: str, base: float, label: Any) -> None:
    """Log scale on ``axis`` with major ticks labelled by ``label(value)``: round values
    (:func:`log_ticks`, finer when the data span little), powers of two for ``base`` 2."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=base)
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    if base == 10 and log_ticks(lo, hi):
        a.set_major_locator(FixedLocator(log_ticks(lo, hi, 3 if axis == "x" else 8)))
    else:
        a.set_major_locator(LogLocator(base=base, numticks=8))
    a.set_major_formatter(FuncFormatter(lambda v, _pos: label(v)))
    a.set_minor_formatter(NullFormatter())


def si_axis(ax: Any, axis: str, unit: str, scale: float = 1.0) -> None:
    """A log axis whose ticks read '10 MFLOP', '100 MFLOP', ... (powers of 1000, :func:`si`)."""
    _log_ticks(ax, axis, 10, lambda v: si(v * scale, unit))


def bytes_axis(ax: Any, axis: str, scale: float = 1.0) -> None:
    """A log axis of a size, ticks at powers of two read '256 MiB', '1 GiB', ...; ``scale``:
    bytes per plotted unit (``2**30`` for a column in GiB)."""
    _log_ticks(ax, axis, 2, lambda v: binary_bytes(v * scale))


def ms_axis(ax: Any, axis: str) -> None:
    """A log axis of a time in milliseconds, ticks read '500 µs', '10 ms', '2 s'."""
    _log_ticks(ax, axis, 10, duration_ms)


def metric_axis(ax: Any, axis: str, unit: str) -> bool:
    """The log axis a metric's unit calls for (FLOP: SI; B/GiB: binary; ms: durations; a
    count: SI without unit); False (nothing done) for other units."""
    if unit == "FLOP" or unit == "" or unit == "tokens":
        si_axis(ax, axis, unit)
    elif unit in ("B", "GiB"):
        bytes_axis(ax, axis, 2**30 if unit == "GiB" else 1.0)
    elif unit == "ms":
        ms_axis(ax, axis)
    else:
        return False
    return True


def warn_few(n: int, minimum: int, what: str) -> str:
    """'' when ``n >= minimum``, else the warning a figure title and its report carry:
    'warning: only 3 complete trials (fewer than 10): read with care'."""
    if n >= minimum:
        return ""
    return f"warning: only {n} {what} (fewer than {minimum}): read with care"
