"""``archsearch families``: the registered structural families and their hyper-parameters."""

from __future__ import annotations

import typer

from archsearch.cli._common import echo_json, user_errors
from archsearch.cli._families import family_rows, print_family_table


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
