"""What a running search tells whoever watches it (the CLI's live view); no torch, no Optuna.

:class:`Observer` is what the trial loop calls; :class:`StudyView` adds what the orchestration
(:mod:`archsearch.search.run`) needs of a display: open and close it, reload the study's trials,
show a note. Every method is optional: the defaults do nothing, so a search runs unwatched.
"""

from __future__ import annotations

from typing import Any

from archsearch.search.results import TrialRecord


class Observer:
    """What the trial loop reports while a search runs; every method is optional."""

    def trial_started(self, number: int, label: str, params: dict[str, Any]) -> None: ...

    def trial_step(self, fraction: float, loss: float) -> None: ...

    def trial_note(self, text: str) -> None: ...

    def trial_eval(self, fraction: float, metric: str, value: float | None) -> None:
        """A held-out evaluation of the running trial at ``fraction`` of its budget."""

    def trial_finished(self, record: TrialRecord) -> None: ...


class StudyView(Observer):
    """An :class:`Observer` that is also a display of the whole study (a context manager)."""

    def __enter__(self) -> StudyView:
        return self

    def __exit__(self, *exc: Any) -> None: ...

    def load(self, study: Any) -> None:
        """Show the study's finished trials (called before the loop and while workers run)."""

    def note(self, text: str) -> None:
        """Show one line about the study."""
