"""``archsearch profile`` and ``archsearch scale``: FLOPs, memory and latency of variants."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from archsearch import fmt
from archsearch.cli._common import (
    PROFILE_HELP,
    checked_profile,
    echo_json,
    esc,
    parse_length,
    user_errors,
)
from archsearch.cli._options import sets_option


def parse_lengths(texts: list[str]) -> list[int]:
    """``["1k,2k", "4096"]`` -> ``[1024, 2048, 4096]`` (sorted, unique)."""
    out = {parse_length(t) for text in texts for t in text.split(",") if t.strip()}
    return sorted(out)


def _setup(
    models: list[Path], profile: str, metrics: str, sets: list[str]
) -> tuple[Any, Any, set[str]]:
    from archsearch.profiling.runner import load_variants, parse_metrics

    return checked_profile(profile), load_variants(models, sets), parse_metrics(metrics)


def _bytes(n: Any) -> str:
    return fmt.binary_bytes(n) if isinstance(n, (int, float)) else "-"


def _ms(t: dict[str, Any] | None) -> str:
    if not t:
        return "-"
    d = fmt.duration_ms
    text = (
        f"{d(t['median_ms'])} (IQR {d(t['iqr_ms'])}, min {d(t['min_ms'])}, "
        f"CV {100 * t['cv']:.1f}% per call"
    )
    if t.get("estimate_cv") is not None:
        text += f", {100 * t['estimate_cv']:.1f}% between halves" + (
            ", unstable" if t["unstable"] else ""
        )
    return text + f"; {t['repeats']} calls)"


def print_point(pt: Any, prof: Any) -> None:
    """A rich table per variant and length."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if pt.status != "ok":
        con.print(
            f"[bold]{esc(pt.variant)}[/bold] at T = {pt.seq_len:,}: [red]skipped[/red]: "
            + esc(pt.row["note"])
        )
        return
    r = pt.row
    t = Table(
        title=esc(
            f"{pt.variant} at T = {pt.seq_len:,} ({prof.name}: {prof.device}, "
            f"{prof.dtype}, batch {prof.batch_size})"
        ),
        show_header=True,
    )
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("notes", overflow="fold")
    t.add_row("parameters", f"{r['params']:,}", f"{r['params_non_embedding']:,} non-embedding")
    t.add_row(
        "forward FLOPs, analytic exact",
        fmt.si(r["flops_fwd"], "FLOP"),
        "unmasked pairs only; per sequence",
    )
    t.add_row(
        "forward FLOPs, analytic dense",
        fmt.si(r["flops_fwd_dense"], "FLOP"),
        "as computed (masked blocks in full)",
    )
    f = pt.details.get("flops")
    if f:
        _flop_rows(t, f, r)
    _memory_rows(t, pt, prof)
    _latency_rows(t, pt)
    con.print(t)
    if pt.uncounted:
        con.print(_uncounted_table(pt.uncounted))
    for w in pt.warnings:
        con.print(f"[yellow]warning:[/yellow] {esc(w)}")


def _memory_rows(t: Any, pt: Any, prof: Any) -> None:
    """The memory estimate and, on CUDA, the measured peaks."""
    r = pt.row
    me = pt.details.get("memory_estimate")
    if me:
        t.add_row("memory: parameters", _bytes(me["params_bytes"]), prof.dtype)
        t.add_row("memory: inference peak", _bytes(me["inference_peak_bytes"]), me["method"])
        t.add_row(
            "memory: training-step peak",
            _bytes(me["training_peak_bytes"]),
            "forward + backward + AdamW, steady state",
        )
        t.add_row("memory: activations", _bytes(me["activation_bytes"]), "kept for backward")
        if me.get("decode_state_bytes") is not None:
            t.add_row(
                "decode state",
                _bytes(me["decode_state_bytes"]),
                f"{_bytes(me['decode_state_bytes_per_token'])} per token",
            )
    mm = pt.details.get("memory_measured")
    if mm:
        t.add_row(
            "memory: inference peak (measured)", _bytes(mm["inference_peak_bytes"]), mm["method"]
        )
        t.add_row(
            "memory: training peak (measured)",
            _bytes(mm["training_peak_bytes"]),
            f"estimate error {100 * r['mem_estimate_error']:+.1f}%",
        )
    elif r.get("mem_measured_status"):
        t.add_row("memory (measured)", "-", esc(r["mem_measured_status"]))


def _latency_rows(t: Any, pt: Any) -> None:
    r = pt.row
    lat = pt.details.get("latency")
    if lat:
        t.add_row("latency: forward", _ms(lat.get("forward")), _rate(r, "fwd"))
        t.add_row("latency: training step", _ms(lat.get("train_step")), _rate(r, "train"))
        t.add_row(
            "latency: decode per token",
            _ms(lat.get("decode_per_token")),
            "" if lat.get("decode_per_token") else "no incremental decoding",
        )
        t.add_row("threads", str(lat.get("threads")), "")
    elif r.get("latency_status"):
        t.add_row("latency", "-", esc(r["latency_status"]))


def _uncounted_table(uncounted: dict[str, dict[str, Any]]) -> Any:
    from rich.table import Table

    u = Table(title="ops a FLOP counter gave 0 (FCM = FlopCounterMode)")
    for col in ("op", "counted 0 by", "calls", "elements", "why"):
        u.add_column(
            col, justify="right" if col in ("calls", "elements") else "left", overflow="fold"
        )
    for op in sorted(uncounted):
        w = uncounted[op]
        u.add_row(
            esc(op),
            "; ".join(w["counters"]),
            str(w["calls"]),
            "-" if w["elements"] is None else fmt.si(w["elements"]),
            esc(w["why"]),
        )
    return u


def _flop_rows(t: Any, f: dict[str, Any], r: dict[str, Any]) -> None:
    """One row per counter, with its agreement (or the reason it differs)."""
    for c in f["counters"].values():
        if c["flops"] is None:
            t.add_row(c["tool"], "-", f"[red]could not run[/red]: {esc(c['error'])}")
            continue
        diff = 100 * (c["rel_diff"] or 0.0)
        if not c["checked"]:
            mark = "[dim]for information[/dim]"
        else:
            mark = "[green]agrees[/green]" if c["ok"] else "[red]differs[/red]"
        note = f"{mark} {diff:+.3f}% vs {c['reference_name']} ({fmt.si(c['reference'])})"
        if c["reason"] and c["checked"]:
            note += f"; {esc(c['reason'])}"
        t.add_row(c["tool"], fmt.si(c["flops"], "FLOP"), note)
    missed = f.get("missed_by_fvcore_default")
    if missed:
        ops = ", ".join(
            f"{op} {fmt.si(n)}" for op, n in f["missed_by_fvcore_default_by_op"].items()
        )
        t.add_row(
            "missed by fvcore as shipped",
            fmt.si(missed, "FLOP"),
            f"{100 * missed / max(1, r['flops_fwd_dense']):.1f}% of the forward: {ops}",
        )


def _rate(r: dict[str, Any], key: str) -> str:
    if f"{key}_tflops" not in r:
        return ""
    s = f"{r[f'{key}_tflops']:.3g} TFLOP/s achieved (exact FLOPs)"
    if f"{key}_mfu" in r:
        s += f", MFU {100 * r[f'{key}_mfu']:.1f}%"
    return s


@user_errors
def profile_cmd(
    models: list[Path] = typer.Argument(..., help="Model config YAML(s)."),
    profile: str = typer.Option("cpu", "--profile", "-p", help=PROFILE_HELP),
    seq_len: list[str] = typer.Option(
        None,
        "--seq-len",
        "-T",
        help="Length(s), e.g. 4k or 1k,4k (k = 1,024 here); default each max_seq_len.",
    ),
    metrics: str = typer.Option("flops,memory,latency", "--metrics", help="What to measure."),
    fvcore: bool = typer.Option(True, "--fvcore/--no-fvcore", help="Also count with fvcore."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    details: bool = typer.Option(
        False,
        "--details",
        help="Also print a long table per variant and length (every FLOP counter, memory and "
        "latency figure) and the ops a FLOP counter counted as 0.",
    ),
    csv_path: Path = typer.Option(None, "--csv", help="Also write one CSV row per variant/T."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --csv file."),
    sets: list[str] = sets_option(),
) -> None:
    """Parameters, FLOPs (three ways, reconciled), memory and latency of each variant: one
    table across variants and lengths (--details: the long tables)."""
    from rich.console import Console

    from archsearch.outputs import check_writable_file, refuse_file_overwrite
    from archsearch.profiling.env import environment
    from archsearch.profiling.report import write_csv

    if csv_path is not None:
        check_writable_file(csv_path, "--csv")
        refuse_file_overwrite(csv_path, "--csv", force=force)
    prof, variants, mets = _setup(models, profile, metrics, sets)
    lengths = parse_lengths(seq_len) if seq_len else None
    points = _measure(
        variants,
        lengths,
        prof,
        mets,
        fvcore=fvcore,
        quiet=as_json,
        label="profiling",
        stop_on_invalid=True,
    )
    if csv_path is not None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(points, csv_path)
    if as_json:
        echo_json(
            {
                "environment": environment(prof.device),
                "profile": prof.to_dict(),
                "points": [
                    {
                        "variant": p.variant,
                        "seq_len": p.seq_len,
                        "status": p.status,
                        "row": p.row,
                        "details": p.details,
                        "warnings": p.warnings,
                        "uncounted_ops": list(p.uncounted.values()),
                    }
                    for p in points
                ],
            }
        )
        return
    if details:
        for pt in points:
            print_point(pt, prof)
    print_summary(Console(), points, prof, mets, details=details)
    if csv_path is not None:
        typer.echo(f"wrote {csv_path}")


def print_summary(con: Any, points: list[Any], prof: Any, mets: set[str], *, details: bool) -> None:
    """One table across variants and lengths, then why a figure is missing, the warnings and
    (without ``details``) how many ops a FLOP counter gave 0."""
    con.print(summary_table(points, prof, mets))
    peak = next((pt.row for pt in points if pt.row.get("peak_source")), None)
    if peak is not None:  # where MFU's peak came from, or why there is no MFU (never silent)
        rate = f"{fmt.si(peak['peak_tflops'] * 1e12, 'FLOP/s')}, " if peak["peak_tflops"] else ""
        con.print(esc(f"MFU peak: {rate}{peak['peak_source']}"), highlight=False)
    for pt in points:
        where = f"{pt.variant} at T = {pt.seq_len:,}"
        status = pt.row.get("latency_status")
        if status and status != "ok":
            con.print(esc(f"{where}: latency {status}"), highlight=False)
        if not details:
            for w in pt.warnings:
                con.print(f"[yellow]warning:[/yellow] {esc(where)}: {esc(w)}")
    uncounted = {op for pt in points for op in pt.uncounted}
    if uncounted and not details:
        con.print(
            f"{len(uncounted)} ops counted as 0 FLOPs by some counter (--details: which and why)",
            highlight=False,
        )


def summary_table(points: list[Any], prof: Any, mets: set[str]) -> Any:
    """Rows: (variant, T); columns: parameters, forward and training FLOPs, the training-step
    peak memory, the forward latency with its spread (``!``: unstable, CV over 10%) and, with a
    peak, the forward MFU."""
    from rich import box
    from rich.table import Table

    timed = "latency" in mets
    t = Table(
        title=esc(f"{prof.name}: {prof.device}, {prof.dtype}, batch {prof.batch_size}"),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        caption="FLOPs: exact, per sequence; peak memory: training step (estimate)"
        + (
            "; latency: forward median, CV: its spread between halves of the calls (! over 10%)"
            * timed
        )
        + ("; MFU: forward" if any("fwd_mfu" in pt.row for pt in points) else ""),
    )
    t.add_column("variant", overflow="fold", min_width=8)
    names = ["T", "params", "forward\nFLOPs", "training\nFLOPs"]
    names += ["peak\nmemory"] if "memory" in mets else []
    names += ["latency", "CV"] if timed else []
    mfu = any("fwd_mfu" in pt.row for pt in points)
    names += ["MFU"] if mfu else []
    for name in names:  # a value is never broken; only the variant's name may fold
        t.add_column(name, justify="right", no_wrap=True)
    for pt in points:
        r = pt.row
        cells = [f"{pt.seq_len:,}", fmt.si(r["params"]), _si(r, "flops_fwd"), _si(r, "flops_train")]
        if "memory" in mets:
            gib = r.get("peak_memory_gib")
            cells.append(_bytes(gib * 2**30) if isinstance(gib, (int, float)) else "-")
        if timed:
            cells += _latency_cells(r)
        if mfu:
            cells.append(f"{100 * r['fwd_mfu']:.1f}%" if "fwd_mfu" in r else "-")
        t.add_row(esc(pt.variant), *cells)
    return t


def _si(r: dict[str, Any], key: str) -> str:
    return fmt.si(r[key]) if isinstance(r.get(key), (int, float)) else "-"


def _latency_cells(r: dict[str, Any]) -> list[str]:
    """The forward latency (s, ms or µs) and its CV, ``12%!`` when unstable."""
    ms = r.get("latency_ms")
    if not isinstance(ms, (int, float)):
        return ["-", "-"]
    cv = r.get("fwd_estimate_cv")
    if not isinstance(cv, (int, float)):
        return [fmt.duration_ms(ms), "-"]
    return [fmt.duration_ms(ms), f"{100 * cv:.0f}%" + ("!" if r.get("fwd_unstable") else "")]


@user_errors
def scale_cmd(
    models: list[Path] = typer.Argument(None, help="Model config YAML(s), one line each."),
    lengths: str = typer.Option(
        "1k,2k,4k,8k,16k,32k,64k,128k,256k,512k,1m",
        "--lengths",
        "-L",
        help="Comma-separated lengths (k = 1024, m = 1048576).",
    ),
    metrics: str = typer.Option("flops,memory", "--metrics", help="flops, memory, latency."),
    profile: str = typer.Option("cpu", "--profile", "-p", help=PROFILE_HELP),
    out: Path = typer.Option(Path("runs/scale"), "--out", "-o", help="Output folder."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing report in --out."),
    fvcore: bool = typer.Option(False, "--fvcore/--no-fvcore", help="Also count with fvcore."),
    as_json: bool = typer.Option(False, "--json", help="Print the fitted exponents as JSON."),
    replot: Path = typer.Option(
        None,
        "--replot",
        help="Redraw the plots, exponents.csv and summary.md of the report in this folder from "
        "its scaling.csv (and env.json), without building or measuring anything.",
    ),
    sets: list[str] = sets_option(),
) -> None:
    """Sweep T for each variant: scaling.csv, log-log plots, fitted exponents, summary.md."""
    from archsearch.errors import ConfigError

    if replot is not None:
        if models:
            raise ConfigError("MODELS", " ".join(map(str, models)), "none with --replot")
        if not (replot / "scaling.csv").is_file():
            raise ConfigError("--replot", str(replot), "a folder with a scaling.csv")
        from archsearch.profiling.report import draw_report

        res = draw_report(replot)
        written = f"redrew {replot}/summary.md, exponents.csv"
    else:
        if not models:
            raise ConfigError("MODELS", None, "one or more model YAML files (or --replot DIR)")
        from archsearch.outputs import check_writable_dir, refuse_overwrite

        check_writable_dir(out, "--out")
        products = ("scaling.csv", "summary.md", "exponents.csv", "env.json")
        refuse_overwrite(out, "--out", products, force=force)
        res = _sweep(models, lengths, metrics, profile, out, fvcore, quiet=as_json, sets=sets)
        written = f"wrote {out}/summary.md, scaling.csv, exponents.csv, env.json"
    if as_json:
        echo_json(res)
        return
    _print_fits(res["fits"])
    typer.echo(", ".join([written, *res["plots"].values()]))


def _sweep(
    models: list[Path],
    lengths: str,
    metrics: str,
    profile: str,
    out: Path,
    fvcore: bool,
    *,
    quiet: bool,
    sets: list[str],
) -> dict[str, Any]:
    """Profile every variant at every length, then write the report from the points."""
    from archsearch.profiling.env import environment
    from archsearch.profiling.report import write_report

    prof, variants, mets = _setup(models, profile, metrics, sets)
    Ts = parse_lengths([lengths])
    points = _measure(variants, Ts, prof, mets, fvcore=fvcore, quiet=quiet, label="scaling")
    command = "archsearch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return write_report(out, points, environment(prof.device), prof.to_dict(), command)


def _measure(
    variants: list[Any],
    lengths: list[int] | None,
    prof: Any,
    mets: set[str],
    *,
    fvcore: bool,
    quiet: bool,
    label: str,
    stop_on_invalid: bool = False,
) -> list[Any]:
    """Every variant at every length (None: each variant's ``max_seq_len``), with progress on
    stderr: a bar on a terminal, a line per point otherwise (a log, a pipe, CI); ``quiet``
    leaves only skipped lengths (and no bar once done). ``stop_on_invalid``: a length a variant
    cannot take raises its ConfigError (before anything is measured) instead of being recorded
    as skipped. Points run in parallel processes where nothing is timed
    (:class:`~archsearch.profiling.runner.Sweep`)."""
    from rich import progress as rp
    from rich.console import Console

    from archsearch.profiling.runner import Sweep, at_length

    if stop_on_invalid:  # one variant at chosen lengths: a bad length is the user's
        for v in variants:
            for T in lengths or [v.cfg.max_seq_len]:
                at_length(v, T)
    points = []
    con = Console(stderr=True)
    columns = (
        rp.TextColumn("{task.description}"),
        rp.BarColumn(),
        rp.MofNCompleteColumn(),
        rp.TimeElapsedColumn(),
    )
    bar_off = not con.is_terminal  # a log gets lines, not the bar's last frame
    # the worker processes are forked before the bar's refresh thread starts
    with (
        Sweep(variants, lengths, prof, mets, fvcore=fvcore) as sweep,
        rp.Progress(*columns, console=con, transient=quiet, disable=bar_off) as bar,
    ):
        names = [f"{esc(variants[i].name)} T={T:,}" for i, T in sweep.jobs]
        task = bar.add_task(names[0] if names else label, total=len(names))
        for k, pt in enumerate(sweep.points()):
            points.append(pt)
            if pt.status != "ok":
                con.print(
                    f"[yellow]skipped[/yellow] {esc(pt.variant)} at T = {pt.seq_len:,}: "
                    + esc(pt.row["note"])
                )
            elif not con.is_terminal and not quiet:  # a log gets a line per point
                # one line per point, never folded at the console's width
                line = esc(f"{pt.variant} T={pt.seq_len:,}: {_point_line(pt.row)}")
                con.print(line, highlight=False, soft_wrap=True)
            bar.advance(task)
            if k + 1 < len(names):
                bar.update(task, description=names[k + 1])
    return points


def _point_line(row: dict[str, Any]) -> str:
    """What a log line says about one measured point."""
    parts = []
    if row.get("flops_fwd") is not None:
        parts.append(f"forward {fmt.si(row['flops_fwd'], 'FLOP')}")
    if isinstance(row.get("peak_memory_gib"), (int, float)):
        parts.append(f"peak memory {fmt.binary_bytes(row['peak_memory_gib'] * 2**30)}")
    if isinstance(row.get("latency_ms"), (int, float)):
        parts.append(f"latency {fmt.duration_ms(row['latency_ms'])}")
        if row.get("fwd_unstable"):
            parts[-1] += f" (unstable: CV {100 * row['fwd_estimate_cv']:.0f}%)"
    return ", ".join(parts) or "measured"


def _print_fits(fits: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="fitted exponents (upper half of the lengths)")
    for c in ("variant", "metric", "fitted", "theory", "over T"):
        t.add_column(c, justify="left" if c in ("variant", "metric") else "right")
    for f in fits:
        fe = f["fitted_exponent"]
        t.add_row(
            esc(f["variant"]),
            f["metric"],
            "-" if fe is None else f"{fe:.3f}",
            f"{f['theory']:g}" if f["theory"] is not None else "-",
            f"{f['fit_from']:,}-{f['fit_to']:,}" if f["fit_from"] else "-",
        )
    Console().print(t)
