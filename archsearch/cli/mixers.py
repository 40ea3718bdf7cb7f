"""``archsearch mixers``: the registered token mixers and their hyper-parameters."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import typer

from archsearch.cli._common import echo_json, user_errors
from archsearch.cli._tables import fit_table


def _options(tp: Any) -> list[Any] | None:
    """The allowed values of a ``Literal`` (``int | Literal[...]`` lists "int" first)."""
    if typing.get_origin(tp) is typing.Literal:
        return list(typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        parts = [_options(a) or [getattr(a, "__name__", str(a))] for a in typing.get_args(tp)]
        if any(typing.get_origin(a) is typing.Literal for a in typing.get_args(tp)):
            return [v for p in parts for v in p]
    return None


def _choices(config_cls: type) -> dict[str, list[Any]]:
    """The allowed values of each field whose type is (or includes) a ``Literal``."""
    hints = typing.get_type_hints(config_cls)
    out = {}
    for f in dataclasses.fields(config_cls):
        opts = _options(hints[f.name])
        if opts is not None:
            out[f.name] = opts
    return out


def mixer_rows() -> list[dict[str, Any]]:
    from archsearch.mixers import get_mixer, list_mixers

    rows = []
    for name in list_mixers():
        cls = get_mixer(name)
        params = {f.name: f.default for f in dataclasses.fields(cls.Config)}
        rows.append(
            {
                "name": name,
                "summary": cls.summary,
                "training_complexity": cls.complexity,
                "decode_state": cls.decode_state_formula,
                "incremental_decode": cls.supports_decode,
                "hyperparameters": params,
                "choices": _choices(cls.Config),
            }
        )
    return rows


@user_errors
def mixers_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the registered token mixers (and the model families): cost, decode state,
    hyper-parameters and defaults. --json lists the mixers; families --json the families."""
    rows = mixer_rows()
    if as_json:
        echo_json(rows)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="registered token mixers", show_lines=True)
    for col in ("mixer", "training", "decode state", "hyper-parameters (defaults)", "what"):
        # names and hyper-parameter values stay whole; the text wraps between words
        table.add_column(col, no_wrap=col in ("mixer", "training", "decode state"))
    for r in rows:
        hp = "\n".join(
            f"{k}={v}" + (f" ({'|'.join(map(str, r['choices'][k]))})" if k in r["choices"] else "")
            for k, v in r["hyperparameters"].items()
        )
        decode = r["decode_state"] + (" [step]" if r["incremental_decode"] else "")
        cells = (r["name"], r["training_complexity"], decode, hp, r["summary"])
        table.add_row(*(escape(c) for c in cells))
    con = Console()
    con.print(fit_table(table, con))
    typer.echo(
        "T: tokens, D: model width, W: window, G: group size, d: HSM shift, b: HSM base; "
        "[step]: incremental decoding implemented; a multiply-add = 2 FLOPs."
    )
    from archsearch.cli._families import family_rows, print_family_table

    print_family_table(family_rows())
    typer.echo("T: window, N: latents, l: latents, h = T - l: context, D: width, Λ: layers.")
