"""Rich tables that never break a value across lines, whatever the terminal's width.

Rich fits a wide table by narrowing its columns, and a column narrower than a word folds the
word (``variant=fixe`` / ``d``). :func:`fit_table` narrows the columns itself, never below a
column's longest value: a column made with ``no_wrap=True`` holds values that stay on one line
each (``12.3 MFLOP``); any other column may wrap between words. When even that is too wide,
the columns named in ``drop`` are left out, in that order; when it is still too wide, the rows
are printed one below the other, a ``column: value`` line each. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _plain(console: Any, cell: Any) -> str:
    if isinstance(cell, str):
        return console.render_str(cell).plain
    return str(getattr(cell, "plain", cell))


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _widths(console: Any, column: Any) -> tuple[int, int]:
    """(the narrowest the column may be, its natural width): words or whole lines."""
    texts = [_plain(console, c) for c in column._cells]
    lines = [line for t in texts for line in t.splitlines()]
    natural = max([_cell_len(x) for x in lines] or [0])
    pieces = lines if column.no_wrap else [w for line in lines for w in line.split()]
    header = _plain(console, column.header)
    narrowest = max([_cell_len(x) for x in pieces + header.split()] or [1])
    return narrowest, max(natural, _cell_len(header))


def _outer(console: Any, table: Any, widths: Sequence[int]) -> int:
    """The table's width with its columns this wide (borders and padding included)."""
    for column, w in zip(table.columns, widths, strict=True):
        column.width = w
    return _natural(console, table)


def _natural(console: Any, table: Any) -> int:
    """The table's width on a console wide enough for every line of every cell."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(100_000), table).maximum


def _keep(table: Any, names: Sequence[str]) -> Any:
    """A copy of ``table`` without the columns whose header is in ``names``."""
    import copy

    out = copy.copy(table)
    out.columns = [copy.copy(c) for c in table.columns if str(c.header) not in names]
    for i, c in enumerate(out.columns):
        c._index = i
    return out


def _sized(console: Any, table: Any, width: int) -> Any | None:
    """``table`` with column widths that fit ``width`` and break no value; None if none do."""
    ranges = [_widths(console, c) for c in table.columns]
    lo = [a for a, _ in ranges]
    widths = [b for _, b in ranges]
    if _outer(console, table, lo) > width:
        return None
    extra = _outer(console, table, widths) - sum(widths)
    while sum(widths) + extra > width:
        # narrow the widest column that still has room, one cell at a time
        i = max((j for j in range(len(widths)) if widths[j] > lo[j]), key=lambda j: widths[j])
        widths[i] -= 1
    _outer(console, table, widths)
    for column in table.columns:
        column.no_wrap, column.overflow = False, "fold"
    return table


def _vertical(console: Any, table: Any) -> Any:
    """The rows one below the other: a ``column: value`` line each (wrapped between words), a
    blank line between rows."""
    from rich.console import Group
    from rich.text import Text

    heads = [_plain(console, c.header) for c in table.columns]
    parts: list[Any] = []
    if table.title:
        parts.append(Text(_plain(console, table.title), style="italic"))
    for i, row in enumerate(table.rows):
        for head, column in zip(heads, table.columns, strict=True):
            value = _plain(console, column._cells[i])
            if value.strip():
                line = Text(f"{head}: ", style="bold")
                line.append(" / ".join(value.splitlines()), style=row.style or "")
                parts.append(line)
        parts.append(Text(""))
    return Group(*parts)


def fit_table(table: Any, console: Any, *, drop: Sequence[str] = ()) -> Any:
    """``table`` as something ``console`` prints without breaking a value across lines (see
    the module's help): the table as it is when it fits, narrowed columns, fewer columns (those
    in ``drop``, by header, in that order) or one row below the other."""
    width = console.width
    if not table.columns or _natural(console, table) <= width:
        return table
    for n in range(len(drop) + 1):
        sized = _sized(console, _keep(table, drop[:n]), width)
        if sized is not None:
            return sized
    return _vertical(console, table)
