"""Is successive halving telling the truth? Rank agreement between a rung and the end.

Successive halving stops a trial on its quality at a rung, a fraction of the budget; that is only
safe if the ranking at the rung is the ranking at the end. For every rung below the top this
module measures, over the trials that reached the full budget (``complete``, duplicates left
out), the rank correlation between their quality at the rung and their final quality:

- Kendall's τ-b (ties handled: ``(C - D) / sqrt((n0 - n1)(n0 - n2))`` with ``n0 = n(n-1)/2`` and
  ``n1``, ``n2`` the pairs tied in one variable);
- Spearman's ρ (Pearson correlation of the average ranks, so ties handled too);

each with its count ``n``. Fewer than 3 trials, or one variable constant, leaves them undefined
(``None``, shown as "n too small" or "undefined"). A rung with τ < :data:`LOW_TAU` gets a warning
in the report, and one with ``n`` < :data:`MIN_TRIALS` is "too few trials to judge".

The trials that were stopped have no final value, so they are not in the count: this is the
agreement among the survivors, not a proof that the stopped ones would have stayed behind
(``benchmarks/halving_fidelity.py`` trains a fixed set of models to the end for that;
docs/search.md, "Successive halving"). Plain Python, no scipy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ConfigError
from archsearch.quality.tasks import get_task
from archsearch.search.results import TrialRecord

#: a rung whose Kendall τ with the final quality is below this gets a warning
LOW_TAU = 0.5
#: fewer complete trials than this: "too few trials to judge"
MIN_TRIALS = 5


def _check_pairs(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} and {len(y)})")


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's τ-b of the pairs ``(x[i], y[i])``; None when ``n < 3`` or a variable is
    constant (the denominator is 0). O(n²), meant for tens to hundreds of trials."""
    _check_pairs(x, y)
    n = len(x)
    if n < 3:
        return None
    concordant = discordant = tied_x = tied_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0:
                tied_x += 1
            if dy == 0:
                tied_y += 1
            if dx * dy > 0:
                concordant += 1
            elif dx * dy < 0:
                discordant += 1
    n0 = n * (n - 1) // 2
    denom = math.sqrt((n0 - tied_x) * (n0 - tied_y))
    return (concordant - discordant) / denom if denom > 0 else None


def average_ranks(x: Sequence[float]) -> list[float]:
    """1-based ranks of ``x``, tied values sharing the mean of their ranks."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (Pearson correlation of the average ranks); None when ``n < 3`` or a
    variable is constant."""
    _check_pairs(x, y)
    if len(x) < 3:
        return None
    rx, ry = average_ranks(x), average_ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


@dataclass(frozen=True)
class RungAgreement:
    """How the quality at one rung ranks the complete trials compared with their final quality."""

    rung: int
    tokens: int | None
    """the rung's training tokens (the most common value among the trials)"""
    n: int
    kendall_tau: float | None
    spearman_rho: float | None

    @property
    def verdict(self) -> str:
        """'ok', 'low' (τ < LOW_TAU), 'too few trials to judge' or 'n too small'."""
        if self.kendall_tau is None:
            return "n too small" if self.n < 3 else "undefined (a constant quality)"
        if self.n < MIN_TRIALS:
            return "too few trials to judge"
        return "low" if self.kendall_tau < LOW_TAU else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rung": self.rung,
            "tokens": self.tokens,
            "n": self.n,
            "kendall_tau": self.kendall_tau,
            "spearman_rho": self.spearman_rho,
            "verdict": self.verdict,
        }


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def rung_agreement(records: Sequence[TrialRecord]) -> list[RungAgreement]:
    """For every rung below the top: τ-b and ρ between the quality at the rung and the final
    quality (the value at the top rung), over the complete, non-duplicate trials. Empty when no
    trial was judged at a rung (halving off, or nothing trained)."""
    rungs = [int(f["rung"]) for r in records for f in r.fidelity if "rung" in f]
    if not rungs:
        return []
    top = max(rungs)
    per_trial: list[dict[int, dict[str, Any]]] = []
    for r in records:
        if r.outcome != "complete" or r.duplicate_of is not None:
            continue
        at = {int(f["rung"]): f for f in r.fidelity if "rung" in f}
        if top in at and _finite(at[top].get("value")):
            per_trial.append(at)
    out = []
    for rung in sorted(set(rungs) - {top}):
        pairs = [
            (float(at[rung]["value"]), float(at[top]["value"]))
            for at in per_trial
            if rung in at and _finite(at[rung].get("value"))
        ]
        tokens = Counter(
            int(f["tokens"]) for r in records for f in r.fidelity if f.get("rung") == rung
        )
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        out.append(
            RungAgreement(
                rung=rung,
                tokens=tokens.most_common(1)[0][0] if tokens else None,
                n=len(pairs),
                kendall_tau=kendall_tau_b(xs, ys),
                spearman_rho=spearman_rho(xs, ys),
            )
        )
    return out


def judged_metric(settings: dict[str, Any]) -> str:
    """The metric a study's rungs judge: its task's headline metric ("quality" if unknown)."""
    try:
        return get_task(str(settings["task"]["name"])).metric
    except (ConfigError, KeyError, TypeError):
        return "quality"


def _corr(v: float | None, n: int) -> str:
    if v is None:
        return "n too small" if n < 3 else "undefined"
    return f"{v:+.2f}"


def agreement_section(rows: Sequence[RungAgreement], metric: str = "quality") -> list[str]:
    """The report's markdown lines: the table and a warning per rung that cannot be trusted."""
    md = ["### Does a rung rank the trials like the full budget?", ""]
    if not rows:
        return [*md, "No trial was judged below the full budget (halving off or no training).", ""]
    md += [
        f"Rank correlation between {metric} at each rung and {metric} at the full budget, over "
        "the trials that reached the full budget (the stopped ones have no final value). "
        f"Kendall τ-b and Spearman ρ: 1 = same order, 0 = unrelated; below {LOW_TAU} the rung "
        "may stop trials that would have ended on the front.",
        "",
        "| rung | tokens | n | Kendall τ | Spearman ρ | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for a in rows:
        tokens = f"{a.tokens:,}" if a.tokens is not None else "?"
        md.append(
            f"| {a.rung} | {tokens} | {a.n} | {_corr(a.kendall_tau, a.n)} | "
            f"{_corr(a.spearman_rho, a.n)} | {a.verdict} |"
        )
    md.append("")
    warnings = [w for w in (_warning(a, metric) for a in rows) if w]
    return [*md, *warnings, ""] if warnings else md


def _warning(a: RungAgreement, metric: str) -> str | None:
    """The report's warning line for a rung that cannot be trusted (None: nothing to say)."""
    head = f"- **Warning:** at rung {a.rung}"
    if a.verdict == "low":
        return (
            f"{head}, Kendall τ = {a.kendall_tau:.2f} < {LOW_TAU} over {a.n} trials: {metric} "
            "this early ranks the models differently from the end, so stopping there may not "
            "have been safe on this space; give the rungs more budget (fewer rungs or a smaller "
            "eta) or turn halving off (`rungs: 1`)."
        )
    if a.verdict.startswith("undefined"):
        return (
            f"{head}, every trial has the same {metric} at the rung or at the end: the rank "
            "correlation is undefined."
        )
    if a.verdict != "ok":
        return (
            f"{head}, only {a.n} trials reached the full budget: too few trials to judge whether "
            f"stopping there was safe (at least {MIN_TRIALS} needed)."
        )
    return None
