"""The claims study (``archsearch claims``): the papers' claims, tested with the toolkit's own
equal-compute comparisons over seeds, as a report anyone can regenerate (docs/search.md,
"Claims").

Layout of a report folder (``reports/claims/`` for the committed one)::

    claims.yaml        the declaration: scales, experiments, claims (the spec)
    models/<scale>/    the model YAMLs
    README.md          verdicts, one section and figure per claim
    results.csv        every finished run of every scale
    <scale>/           results.csv, curves.csv, runs.json, meta.json, claim-<id>.png, claims.db
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError
from archsearch.search.claims import report, runner
from archsearch.search.claims.readme import readme
from archsearch.search.claims.spec import Spec, load_spec, scale_of

__all__ = ["Spec", "load_spec", "run_claims", "write_report"]


def scale_folder(root: Path, scale: str) -> Path:
    return root / scale


def run_claims(
    spec: Spec,
    scale_name: str,
    root: Path,
    *,
    quick: bool = False,
    workers: int = 1,
    threads: int | None = None,
    command: str = "",
    on_run: runner.OnRun | None = None,
    on_plan: Any = None,
) -> dict[str, Any]:
    """Train what the scale still lacks, save its records, redraw the report; a summary."""
    scale = scale_of(spec, scale_name)
    folder = scale_folder(root, scale.name)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "claims.db"
    done, todo = runner.pending(spec, scale, quick, db)
    if on_plan is not None:
        on_plan(len(done), len(todo))
    start = time.time()
    interrupted = False
    try:
        trained = runner.run_units(
            spec, scale, quick, db, todo, workers=workers, threads=threads, on_run=on_run
        )
    except runner.Interrupted as e:
        interrupted, trained = True, e.trained
    seconds = time.time() - start
    save_records(spec, scale_name, root, quick=quick)
    calls = runner.log_invocation(
        folder,
        {"command": command, "seconds": round(seconds, 1), "workers": workers,
         "threads": threads, "trained": trained, "interrupted": interrupted,
         "quick": quick, "device": runner.device_record(scale)},
    )  # fmt: skip
    readme = write_report(spec, root)
    return {
        "scale": scale.name,
        "quick": quick,
        "interrupted": interrupted,
        "runs_before": len(done),
        "runs_trained": trained,
        "runs_left": len(todo) - trained,
        "seconds": round(seconds, 1),
        "total_seconds": round(sum(c.get("seconds", 0) for c in calls), 1),
        "report": str(readme),
    }


def save_records(spec: Spec, scale_name: str, root: Path, *, quick: bool) -> None:
    """The scale's results.csv, curves.csv and meta.json from its study."""
    scale = scale_of(spec, scale_name)
    folder = scale_folder(root, scale.name)
    results, curves = runner.collect(scale, quick, folder / "claims.db")
    runner.write_csv(results, folder / "results.csv", runner.RESULT_COLUMNS)
    runner.write_csv(curves, folder / "curves.csv", runner.CURVE_COLUMNS)
    meta = {"corpus": runner.corpus_info(scale, quick), "quick": quick}
    meta["budgets"] = {
        e.name: e.budget_flops * (scale.quick_budget if quick else 1.0)
        for e in scale.experiments.values()
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def write_report(spec: Spec, root: Path) -> Path:
    """README.md, the figures and the combined results.csv from the saved records of every
    scale that has any."""
    recs = [report.read_records(s, scale_folder(root, n)) for n, s in spec.scales.items()]
    recs = [r for r in recs if r.results]
    if not recs:
        raise ConfigError(
            "--out", str(root), "a claims report folder with saved runs (<scale>/results.csv)"
        )
    root.mkdir(parents=True, exist_ok=True)
    merged = [row for rec in recs for row in rec.results]  # every run of every scale
    runner.write_csv(merged, root / "results.csv", runner.RESULT_COLUMNS)
    path = root / "README.md"
    path.write_text(readme(spec, recs, root))
    return path
