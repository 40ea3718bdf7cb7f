"""The families table, shown by ``archsearch families`` and ``archsearch mixers`` (a helper
module, not a command, so neither command imports the other)."""

from __future__ import annotations

import dataclasses
from typing import Any

from archsearch.cli._tables import fit_table


def family_rows() -> list[dict[str, Any]]:
    from archsearch.model import get_family, list_families

    rows = []
    for name in list_families():
        cls = get_family(name)
        params = {f.name: f.default for f in dataclasses.fields(cls.Config)}
        rows.append(
            {
                "name": name,
                "summary": cls.summary,
                "scored_positions": cls.scored,
                "layers": cls.uses_layers,
                "training_complexity": cls.complexity,
                "decode_state": cls.decode_state_formula,
                "incremental_decode": cls.supports_decode,
                "hyperparameters": params,
            }
        )
    return rows


def print_family_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    table = Table(title="registered model families (family: in the model YAML)", show_lines=True)
    cols = ("family", "loss on", "training", "decode", "hyper-parameters (defaults)")
    for col in cols:
        # names stay whole (they are what users type); the rest wraps between words
        table.add_column(col, no_wrap=col == "family")
    for r in rows:
        hp = "\n".join(f"{k}={v}" for k, v in r["hyperparameters"].items()) or "none"
        decode = r["decode_state"] if r["incremental_decode"] else "NOT INCREMENTAL"
        table.add_row(r["name"], r["scored_positions"], r["training_complexity"], decode, hp)
    con.print(fit_table(table, con))
    for r in rows:
        decode = "" if r["incremental_decode"] else f" Decoding: {r['decode_state']}."
        con.print(f"[bold]{r['name']}[/bold]: {r['summary']}. layers: {r['layers']}.{decode}")
