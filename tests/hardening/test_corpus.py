"""Every malformed input of the corpus gets one line on stderr and exit status 2.

The cases run in forked children of two long-lived workers (see ``corpus.py``); a sample, at least
one per class, also runs through a real ``python -m archsearch`` process.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest


def _load_corpus() -> Any:
    path = Path(__file__).with_name("corpus.py")
    spec = importlib.util.spec_from_file_location("_hardening_corpus", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


corpus = _load_corpus()
CASES = corpus.load_cases()
BY_ID = {c.id: c for c in CASES}
E2E_SAMPLE = 15


def _sample(cases: list[Any], n: int) -> list[Any]:
    """Round-robin over the classes, in corpus order: every class first, then more."""
    by_cls: dict[int, list[Any]] = {}
    for c in cases:
        by_cls.setdefault(c.cls, []).append(c)
    out: list[Any] = []
    while len(out) < n and any(by_cls.values()):
        for cls in sorted(by_cls):
            if by_cls[cls] and len(out) < n:
                out.append(by_cls[cls].pop(0))
    return out


@pytest.fixture(scope="session")
def corpus_results(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Run the selected cases (all, unless ``-k`` narrowed them) once, on 2-4 workers."""
    wanted = [
        item.callspec.params["case_id"]
        for item in request.session.items
        if getattr(item, "callspec", None) and "case_id" in item.callspec.params
    ]
    workers = max(2, min(4, os.cpu_count() or 2))
    return corpus.run_cases([BY_ID[i] for i in wanted or BY_ID], workers=workers)


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_case(case_id: str, corpus_results: dict[str, Any]) -> None:
    case = BY_ID[case_id]
    result = corpus_results[case_id]
    assert not result.problems(case), result.explain(case)


@pytest.mark.parametrize("case_id", [c.id for c in _sample(CASES, E2E_SAMPLE)])
def test_case_end_to_end(case_id: str) -> None:
    case = BY_ID[case_id]
    result = corpus.run_end_to_end(case)
    bound = corpus.E2E_TIME_BOUND
    assert not result.problems(case, bound), result.explain(case, bound)


def test_every_module_covers_its_class() -> None:
    present = {c.module for c in CASES}
    for module in present & set(corpus.MODULES):
        classes = {c.cls for c in CASES if c.module == module}
        assert corpus.MODULES[module] <= classes, (module, classes)


def test_corpus_is_complete() -> None:
    """At least 200 cases, from every case module, covering every class of the issue."""
    missing = sorted(set(corpus.MODULES) - {p.stem for p in corpus.module_paths()})
    assert not missing, f"case modules missing: {', '.join(missing)}"
    assert len(CASES) >= 200
    classes = {c.cls for c in CASES}
    assert set(corpus.CLASSES) <= classes, sorted(classes)


def test_case_ids_are_unique_and_named() -> None:
    assert len(BY_ID) == len(CASES)
    for c in CASES:
        assert c.id and " " not in c.id, c.id
