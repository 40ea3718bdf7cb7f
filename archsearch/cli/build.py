"""``archsearch build MODEL.yaml``: parameters, FLOPs and decode state of a model config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from archsearch import fmt
from archsearch.cli._common import echo_json, esc, parse_length, user_errors
from archsearch.cli._options import sets_option
from archsearch.cli._tables import fit_table


def _non_default(mixer_cfg: Any) -> dict[str, Any]:
    import dataclasses

    return {
        f.name: getattr(mixer_cfg, f.name)
        for f in dataclasses.fields(mixer_cfg)
        if getattr(mixer_cfg, f.name) != f.default
    }


def _derived(cfg: Any, lc: Any) -> dict[str, Any]:
    """Per-layer settings a mixer derives from its position (e.g. HSM's shift); decoder stacks."""
    from archsearch.mixers import get_mixer, list_mixers

    if cfg.family.kind != "decoder" or lc.kind not in list_mixers():
        return {}
    return get_mixer(lc.kind).layer_info(lc.config, cfg.mixer_context(lc.index))


def summarize(cfg: Any, seq_len: int, *, count: bool = True) -> dict[str, Any]:
    """Everything ``build`` reports, as plain data (also used by quickstart and --json)."""
    from archsearch.model.costs import model_cost
    from archsearch.model.families import get_family
    from archsearch.model.transformer import count_params, receptive_field

    cost = model_cost(cfg, seq_len)
    params = count_params(cfg)
    family = get_family(cfg.family.kind)
    T = seq_len
    out: dict[str, Any] = {
        "name": cfg.name,
        "seq_len": T,
        "family": cfg.family.to_dict(),
        "scored_positions": cfg.n_scored(T),
        "incremental_decode": family.supports_decode,
        "params": params,
        "flops": {
            "forward_exact": cost.forward_exact,
            "forward_dense": cost.forward_dense,
            "forward_exact_per_token": cost.forward_exact / T,
            "forward_dense_per_token": cost.forward_dense / T,
            "training_forward_exact": cost.training_forward_exact,
            "training_forward_dense": cost.training_forward_dense,
            "training_exact": cost.training_exact,
            "training_dense": cost.training_dense,
            "training_exact_per_token": cost.training_exact / T,
            "lm_head": cost.head,
        },
        "decode_state_numbers": cost.decode_state,
        "receptive_field": receptive_field(cfg, seq_len),
        "layers": [
            {
                "index": lc.index,
                "mixer": lc.kind,
                "rows": lc.seq_len,
                "hyperparameters": {k: v for k, v in lc.config.to_dict().items() if k != "kind"},
                "non_default": _non_default(lc.config),
                "mlp_ratio": lc.mlp_ratio,
                "derived": _derived(cfg, lc),
                "mixer_projections": lc.mixer.projections,
                "mixer_core_exact": lc.mixer.core_exact,
                "mixer_core_dense": lc.mixer.core_dense,
                "mixer_elementwise": lc.mixer.elementwise,
                "mlp": lc.mlp,
                "layer_exact": lc.exact,
                "layer_dense": lc.dense,
                "decode_state": lc.decode_state,
            }
            for lc in cost.layers
        ],
    }
    if count:
        out["flop_counter"] = counter_check(cfg, seq_len, cost.counter_visible)
    return out


def counter_check(cfg: Any, seq_len: int, analytic: int) -> dict[str, Any]:
    """Run the real model on the meta device under FlopCounterMode (nothing is allocated)."""
    import torch

    from archsearch.model.transformer import build_model
    from archsearch.profiling.counter import count_flops

    model = build_model(cfg, device="meta").eval()  # the inference forward (counter_visible)
    with torch.device("meta"):
        idx = torch.zeros(1, seq_len, dtype=torch.long)
    counted = count_flops(lambda: model(idx)).total
    return {
        "tool": "torch.utils.flop_counter.FlopCounterMode (meta device, archsearch SDPA formulas)",
        "counted_forward": counted,
        "analytic_forward_matmul_dense": analytic,
        "relative_difference": (counted - analytic) / analytic if analytic else 0.0,
    }


def _plain(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console

    con = Console()
    p, T = s["params"], s["seq_len"]
    con.print(
        f"[bold]{esc(s['name'] or 'model')}[/bold]  at T = {T}: "
        f"{p['total']:,} parameters ({p['non_embedding']:,} non-embedding)"
    )
    fam = s["family"]
    if fam["kind"] != "decoder":
        hp = ", ".join(f"{k}={v}" for k, v in fam.items() if k != "kind" and v is not None)
        con.print(
            f"family {esc(fam['kind'])} ({esc(hp)}): loss on the last {s['scored_positions']} of "
            f"{T} positions"
        )
    rf = s["receptive_field"]
    sees = "the whole window" if rf >= T else f"only {rf / T:.1%} of the window"
    con.print(f"receptive field: {rf:,} of {T:,} tokens ({sees})")
    con.print(fit_table(_flops_table(s["flops"], T), con))
    con.print(fit_table(_layer_table(s), con, drop=("decode state", "mixer dense")))
    if s["incremental_decode"]:
        con.print(f"decode state: {s['decode_state_numbers']:,} numbers per sequence")
    else:
        con.print(
            "decode: not incremental; every new token recomputes the whole window "
            "(a full forward pass per token)"
        )
    if "flop_counter" in s:
        c = s["flop_counter"]
        con.print(
            f"FlopCounterMode check: counted {c['counted_forward']:,} vs analytic "
            f"{c['analytic_forward_matmul_dense']:,} "
            f"(difference {100 * c['relative_difference']:+.3f}%)"
        )


def _flops_table(f: dict[str, Any], T: int) -> Any:
    from rich.table import Table

    def flop(v: float) -> str:
        return fmt.si(v, "FLOP")

    t = Table(title="FLOPs (a multiply-add = 2; training = 3 x forward)")
    for col in ("", "exact (unmasked pairs)", "dense-masked (as computed)"):
        t.add_column(col, justify="right")
    t.add_row("forward / sequence", flop(f["forward_exact"]), flop(f["forward_dense"]))
    t.add_row(
        "forward / token", flop(f["forward_exact_per_token"]), flop(f["forward_dense_per_token"])
    )
    t.add_row("training / sequence", flop(f["training_exact"]), flop(f["training_dense"]))
    t.add_row(
        "training / token", flop(f["training_exact_per_token"]), flop(f["training_dense"] / T)
    )
    return t


def _layer_groups(layers: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive layers that differ only in their index, grouped."""
    groups: list[list[dict[str, Any]]] = []
    for r in layers:
        key = {k: v for k, v in r.items() if k != "index"}
        if groups and {k: v for k, v in groups[-1][0].items() if k != "index"} == key:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def _layer_table(s: dict[str, Any]) -> Any:
    from rich.table import Table

    lt = Table(title="per layer (forward FLOPs, one sequence)")
    for col in (
        "layers",
        "mixer",
        "rows",
        "non-default settings",
        "mixer exact",
        "mixer dense",
        "MLP",
        "decode state",
    ):
        left = col in ("mixer", "non-default settings")
        # values stay whole: only the settings wrap, between two of them
        wraps = col == "non-default settings"
        lt.add_column(col, justify="left" if left else "right", no_wrap=not wraps)
    for g in _layer_groups(s["layers"]):
        r = g[0]
        exact = r["mixer_projections"] + r["mixer_core_exact"] + r["mixer_elementwise"]
        dense = r["mixer_projections"] + r["mixer_core_dense"] + r["mixer_elementwise"]
        hp = ", ".join(f"{k}={v}" for k, v in r["non_default"].items()) or "defaults"
        if r["derived"]:
            hp += "; " + ", ".join(f"{k}={_plain(v)}" for k, v in r["derived"].items())
        idx = str(r["index"]) if len(g) == 1 else f"{r['index']}-{g[-1]['index']} (x{len(g)})"
        lt.add_row(
            idx,
            esc(r["mixer"]),
            str(r["rows"]),
            esc(hp),
            fmt.si(exact),
            fmt.si(dense),
            fmt.si(r["mlp"]),
            fmt.si(r["decode_state"]),
        )
    head = s["flops"]["lm_head"]
    S = s["scored_positions"]
    lt.add_row("", "LM head", str(S), "", fmt.si(head), fmt.si(head), "", "")
    return lt


@user_errors
def build_cmd(
    model: Path = typer.Argument(..., help="Model config YAML."),
    seq_len: str = typer.Option(
        None,
        "--seq-len",
        "-T",
        help="Sequence length: 4096, 4k or 4Ki (k = 1,024 here); default max_seq_len.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    count: bool = typer.Option(
        False,
        "--count/--no-count",
        help="Also cross-check the analytic FLOPs with FlopCounterMode on the meta device "
        "(about 1 s more: the counter imports torch._dynamo; profile always reconciles three "
        "ways).",
    ),
    sets: list[str] = sets_option(),
) -> None:
    """Summarise a model: parameters, forward/training FLOPs, per-layer table, decode state."""
    from archsearch.errors import ConfigError
    from archsearch.model.config import load_model_config_located

    cfg, locate = load_model_config_located(model, sets)
    T = parse_length(seq_len) if seq_len is not None else cfg.max_seq_len
    try:
        s = summarize(cfg, T, count=count)
    except ConfigError as e:
        raise locate(e) from None
    if as_json:
        echo_json(s)
    else:
        print_summary(s)
