"""``README.md`` of a claims report: the verdicts at the top, the setting, one section per claim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsearch import fmt
from archsearch.search.claims.report import _BADGE, ScaleRecords, claim_section
from archsearch.search.claims.spec import Spec


def _setting(spec: Spec, rec: ScaleRecords) -> list[str]:
    s = rec.scale
    calls = [c for c in rec.calls if c.get("trained") or c.get("seconds")]
    total = sum(c.get("seconds", 0.0) for c in calls)
    dev = (calls[-1].get("device") if calls else None) or {}
    corpus = rec.meta.get("corpus") or {}
    quick = " (**--quick**: a smoke check, not evidence)" if rec.meta.get("quick") else ""
    name = dev.get("device_name") or dev.get("cpu") or "?"
    md = [
        f"### {s.name.upper()}{quick}",
        "",
        f"- device: {name} ({dev.get('device', '?')}, profile {dev.get('profile', '?')}, "
        f"{dev.get('dtype', '?')}), torch {dev.get('torch', '?')}, Python "
        f"{dev.get('python', '?')}, archsearch at {dev.get('git_sha', '?')}",
        f"- wall time: {total / 60:.1f} min over {len(calls)} call(s) of the command "
        f"({', '.join(str(c.get('workers')) + ' worker(s)' for c in calls[-1:])}); "
        f"{len(rec.results)} finished runs",
        *[
            f"  - call {i + 1}: {c.get('seconds', 0) / 60:.1f} min, {c.get('trained')} runs; "
            f"{c['note']}"
            for i, c in enumerate(calls)
            if c.get("note")
        ],
        f"- the finished runs' own wall times add up to {_run_minutes(rec):.1f} min, "
        f"{_run_minutes(rec) / max(1, _workers(calls)):.1f} min on {_workers(calls)} worker(s): "
        "about what a regeneration costs when nothing else shares the machine (some runs here "
        "did share it)",
        f"- seeds: 0..{_seeds(rec) - 1} per model (each sets the initialisation and the data "
        "order; the same seed is the same data order for every model)",
    ]
    if corpus:
        sizes = corpus.get("sizes") or {}
        md.append(
            f"- corpus: `{corpus.get('name')}` ({corpus.get('source')}), sha256 "
            f"`{corpus.get('sha256')}`, " + ", ".join(f"{k} {v:,} bytes" for k, v in sizes.items())
        )
    md += ["", "| experiment | task | T | training FLOPs per run | batch | lr | models |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    budgets = rec.meta.get("budgets") or {}
    for e in s.experiments.values():
        opts = ", ".join(f"{k}={v}" for k, v in e.options.items())
        md.append(
            f"| {e.name} | {e.task} {opts} | {e.seq_len} | "
            f"{fmt.si(budgets.get(e.name, e.budget_flops))} | {e.batch_size} | {e.lr:g} | "
            f"{len(e.models)} |"
        )
    return md + [""]


def _run_minutes(rec: ScaleRecords) -> float:
    return sum(float(r.get("wall_seconds") or 0) for r in rec.results) / 60


def _workers(calls: list[dict[str, Any]]) -> int:
    return int(calls[-1].get("workers") or 1) if calls else 1


def _seeds(rec: ScaleRecords) -> int:
    seeds = {int(r["seed"]) for r in rec.results}
    return max(seeds) + 1 if seeds else 0


_RULES = """\
## How a verdict is reached

Every row compares numbers measured by this report's own runs, with 95% Student-t intervals over
the seeds, and its verdict follows from the interval whichever way it goes:

- **better**: the paired difference model − baseline over the seeds (the same seed is the same
  data order). Entirely on the better side: reproduced; entirely on the worse side: not
  reproduced; containing 0: inconclusive at this scale.
- **close**: not worse than the baseline by more than the margin, {margin:.4f} bits per byte
  (3% perplexity per byte, log2 1.03). The worse end of the interval within the margin:
  reproduced; the better end past it: not reproduced; the margin inside the interval:
  inconclusive.
- **solves**: the model's accuracy interval at or above {solve:g}: reproduced; below it: not
  reproduced; straddling it: inconclusive.
- **cheaper**: an analytic cost per token (docs/costs.md, "FLOP conventions"): lower than the
  baseline's, or not. No seeds involved.

A claim's rule **all** needs every counted row reproduced (one not reproduced decides it);
**any** needs one reproduced (all not reproduced decides it); otherwise it is inconclusive.
Every model trains with the same recipe at the same training FLOPs (equal compute: a cheaper
model sees more tokens), and is scored on the same held-out bytes (or MQAR examples) with the
same evaluation stride: the experiment's `eval_stride` option, else T/2 (docs/search.md,
"Reports"). A model that scores only its last positions (PerceiverAR's latents) sets the largest
stride the experiment can use.
"""


def readme(spec: Spec, recs: list[ScaleRecords], root: Path) -> str:
    models = {n: list(dict.fromkeys(m for e in s.experiments.values() for m in e.models))
              for n, s in spec.scales.items()}  # fmt: skip
    sections: list[str] = []
    table: dict[str, dict[str, str]] = {}
    for claim in spec.claims:
        md, verdicts = claim_section(claim, recs, spec, models, root)
        sections += md
        table[claim.id] = verdicts
    names = [r.scale.name for r in recs]
    head = [
        "# The papers' claims, put to the test",
        "",
        "Made by `archsearch claims` from the declaration in [claims.yaml](claims.yaml) and the "
        "model YAMLs under [models/](models/); every number below is in "
        "[results.csv](results.csv) with the run that produced it. Regenerate (resumes where it "
        "stopped; the same command redraws this page):",
        "",
        "    archsearch claims --scale cpu --workers 2",
        "    archsearch claims --scale gpu            # on a CUDA machine",
        "    archsearch claims --report-only          # redraw from the saved records",
        "",
        "| claim | " + " | ".join(f"{n.upper()} verdict" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for claim in spec.claims:
        cells = [_BADGE[table[claim.id][n]] for n in names if n in table[claim.id]]
        head.append(f"| [{claim.id}. {claim.title}](#claim-{_anchor(claim)}) | "
                    + " | ".join(cells) + " |")  # fmt: skip
    missing = [n for n in spec.scales if n not in names]
    if missing:
        head += ["", "Not run yet: " + ", ".join(f"scale `{n}` (`archsearch claims --scale {n}`)"
                 for n in missing) + "."]  # fmt: skip
    head += ["", "## Setting", ""]
    for rec in recs:
        head += _setting(spec, rec)
    rules = _RULES.format(margin=spec.close_margin, solve=spec.solve_accuracy)
    return "\n".join([*head, rules, *sections]).rstrip() + "\n"


def _anchor(claim: Any) -> str:
    text = f"{claim.id}: {claim.title}".lower()
    keep = "".join(ch for ch in text if ch.isalnum() or ch in " -")
    return keep.replace(" ", "-")
