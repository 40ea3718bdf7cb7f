"""``archsearch families``: the registered structural families and their hyper-parameters."""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

from archsearch.cli._common import echo_json, user_errors


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
        # names stay whole (they are what users type); the rest folds
        table.add_column(col, overflow="fold", no_wrap=col == "family")
    for r in rows:
        hp = "\n".join(f"{k}={v}" for k, v in r["hyperparameters"].items()) or "none"
        decode = r["decode_state"] if r["incremental_decode"] else "NOT INCREMENTAL"
        table.add_row(r["name"], r["scored_positions"], r["training_complexity"], decode, hp)
    con.print(table)
    for r in rows:
        decode = "" if r["incremental_decode"] else f" Decoding: {r['decode_state']}."
        con.print(f"[bold]{r['name']}[/bold]: {r['summary']}. layers: {r['layers']}.{decode}")


@user_errors
def families_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the model families: how the stack is wired, which positions carry loss, decoding."""
    rows = family_rows()
    if as_json:
        echo_json(rows)
        return
    print_family_table(rows)
    typer.echo("T: window, N: latents, l: latents, h = T - l: context, D: width, Λ: layers.")
