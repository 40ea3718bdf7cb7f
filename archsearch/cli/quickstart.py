"""``archsearch quickstart``: the main job on embedded defaults.

For now it builds the embedded default models (archsearch/defaults/*.yaml), profiles their
parameters, FLOPs and decode state at one sequence length, checks the FLOPs with FlopCounterMode,
and writes a comparison (CSV + markdown) to the output folder. The search issue turns it into a
real architecture search.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer

from archsearch.cli import app
from archsearch.cli._common import echo_json, parse_length, si, user_errors

DEFAULTS = Path(__file__).resolve().parent.parent / "defaults"


@app.command("quickstart")
@user_errors
def quickstart_cmd(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", "-o", help="Output folder."),
    seq_len: str = typer.Option("4k", "--seq-len", "-T", help="Sequence length (e.g. 4k)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Compare the embedded default models (softmax, sliding window, S2-Attn) and write a report."""
    from rich.console import Console
    from rich.table import Table

    from archsearch.cli.build import summarize
    from archsearch.model.config import dump_model_config, load_model_config
    from archsearch.profiling.env import environment

    T = parse_length(seq_len)
    out.mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(exist_ok=True)
    rows = []
    for path in sorted(DEFAULTS.glob("*.yaml")):
        cfg = load_model_config(path)
        cfg = cfg.replace(max_seq_len=max(cfg.max_seq_len, T))
        s = summarize(cfg, T)
        (out / "models" / path.name).write_text(dump_model_config(cfg))
        f = s["flops"]
        rows.append(
            {
                "model": s["name"],
                "mixer": cfg.layers[0].mixer.kind,
                "seq_len": T,
                "params": s["params"]["total"],
                "fwd_flops_per_token_exact": round(f["forward_exact_per_token"]),
                "fwd_flops_per_token_dense": round(f["forward_dense_per_token"]),
                "train_flops_per_token_exact": round(f["training_exact_per_token"]),
                "decode_state_numbers": s["decode_state_numbers"],
                "counter_rel_diff": s["flop_counter"]["relative_difference"],
            }
        )
    with (out / "summary.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "env.json").write_text(json.dumps(environment(), indent=2) + "\n")
    md = [
        f"# archsearch quickstart (T = {T})",
        "",
        "FLOPs count a multiply-add as 2; *exact* counts unmasked query-key pairs only, *dense*",
        "counts the score blocks the implementation computes; training = 3 x forward.",
        "The last column compares the analytic dense count with FlopCounterMode on the real model.",
        "",
        "| model | params | fwd FLOPs/token (exact) | fwd FLOPs/token (dense) | "
        "decode state (numbers) | counter diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        md.append(
            f"| {r['model']} | {r['params']:,} | {si(r['fwd_flops_per_token_exact'])} | "
            f"{si(r['fwd_flops_per_token_dense'])} | {r['decode_state_numbers']:,} | "
            f"{100 * r['counter_rel_diff']:+.3f}% |"
        )
    md += ["", "Regenerate: `archsearch quickstart --seq-len " + str(T) + f" --out {out}`", ""]
    (out / "summary.md").write_text("\n".join(md))
    if as_json:
        echo_json(rows)
        return
    table = Table(title=f"embedded default models at T = {T}")
    for col in (
        "model",
        "params",
        "fwd FLOP/token exact",
        "fwd FLOP/token dense",
        "decode state",
        "counter diff",
    ):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for r in rows:
        table.add_row(
            r["model"],
            f"{r['params']:,}",
            si(r["fwd_flops_per_token_exact"]),
            si(r["fwd_flops_per_token_dense"]),
            si(r["decode_state_numbers"]),
            f"{100 * r['counter_rel_diff']:+.3f}%",
        )
    Console().print(table)
    typer.echo(f"wrote {out}/summary.md, {out}/summary.csv, {out}/env.json, {out}/models/")
