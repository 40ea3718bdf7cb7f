"""The shape of the code: package layering, no import cycles, no hidden edges, short functions.

Every module under ``archsearch/`` is parsed with :mod:`ast` (nothing is imported), so these tests
are fast and see function-local imports as well as top-level ones. Each failure message lists every
offender, as ``file:line``.

Layering, highest to lowest (a module may import its own package or a lower rank)::

    cli 8, api 8 > search 7 > quality 6 > profiling 5, testing 5 > model 4 > mixers 3 > ops 2
      > dataconf, fmt, metrics, yamlio 1 > errors 0

``archsearch/__init__.py`` and ``archsearch/__main__.py`` are the top-level package: exempt as
importers, and the top-level package (``__version__``) may be imported by anyone. Its lazy
export of the Python API (``archsearch.api`` imported inside ``__getattr__``, so ``import
archsearch`` stays cheap) is the one function-local import outside the CLI, and no cycle edge.
``testing`` (the conformance suites) may import ``profiling``; ``profiling`` may not import
``testing``.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "archsearch"

RANKS = {
    "errors": 0,
    "dataconf": 1,
    "fmt": 1,
    "metrics": 1,
    "outputs": 1,
    "yamlio": 1,
    "ops": 2,
    "mixers": 3,
    "model": 4,
    "profiling": 5,
    "testing": 5,
    "quality": 6,
    "search": 7,
    "cli": 8,
    "api": 8,
}
#: (importer package, imported package) pairs allowed although neither ranks below the other
SAME_RANK_ALLOWED = {("testing", "profiling"), ("metrics", "fmt")}
TOP_LEVEL = {"archsearch", "archsearch.__main__"}
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Import:
    src: str  # importing module, dotted
    target: str  # imported module, dotted (a name imported from a package resolves to it)
    names: tuple[str, ...]  # the names a ``from`` import takes ("" for ``import x``)
    line: int
    local: bool  # inside a function body
    type_checking: bool  # under ``if TYPE_CHECKING:``

    @property
    def where(self) -> str:
        return f"{path_of(self.src)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def path_of(mod: str) -> str:
    return modules()[mod].relative_to(ROOT).as_posix()


@cache
def tree_of(mod: str) -> ast.Module:
    path = modules()[mod]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, mod: str, is_package: bool) -> None:
        self.mod = mod
        self.is_package = is_package
        self.depth = 0  # function nesting
        self.type_checking = 0
        self.found: list[Import] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_checking += 1
        for stmt in node.body:
            self.visit(stmt)
        self.type_checking -= 1
        for stmt in node.orelse:
            self.visit(stmt)

    def _add(self, target: str, names: tuple[str, ...], line: int) -> None:
        self.found.append(
            Import(self.mod, target, names, line, self.depth > 0, self.type_checking > 0)
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "archsearch" or alias.name.startswith("archsearch."):
                self._add(alias.name, ("",), node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.mod.split(".")
            keep = len(parts) - node.level + (1 if self.is_package else 0)
            base = ".".join(parts[:keep] + ([base] if base else []))
        if not (base == "archsearch" or base.startswith("archsearch.")):
            return
        plain: list[str] = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in modules():
                self._add(sub, (alias.name,), node.lineno)
            else:
                plain.append(alias.name)
        if plain:
            self._add(base, tuple(plain), node.lineno)


@cache
def imports() -> tuple[Import, ...]:
    out: list[Import] = []
    for mod, path in modules().items():
        collector = _ImportCollector(mod, path.name == "__init__.py")
        collector.visit(tree_of(mod))
        out.extend(collector.found)
    return tuple(out)


def package_of(mod: str) -> str | None:
    """``archsearch.model.config`` -> ``model``; None for the top-level package."""
    if mod in TOP_LEVEL:
        return None
    return mod.split(".")[1]


def is_cli(mod: str) -> bool:
    return mod == "archsearch.cli" or mod.startswith("archsearch.cli.")


def is_command(mod: str) -> bool:
    """A CLI command module: ``archsearch/cli/<name>.py`` whose name does not start with ``_``."""
    parts = mod.split(".")
    return len(parts) == 3 and parts[1] == "cli" and not parts[2].startswith("_")


def test_the_parser_sees_the_package():
    mods = modules()
    assert len(mods) > 40 and "archsearch.model.config" in mods and "archsearch.cli" in mods
    edges = {(i.src, i.target) for i in imports()}
    assert ("archsearch.model.config", "archsearch.errors") in edges
    assert set(RANKS) >= {package_of(m) for m in mods} - {None}, "a package has no rank"


def layering_offenders() -> list[str]:
    out = []
    for imp in imports():
        src, dst = package_of(imp.src), package_of(imp.target)
        if src is None or dst is None or src == dst:
            continue
        if RANKS[dst] < RANKS[src] or (src, dst) in SAME_RANK_ALLOWED:
            continue
        out.append(
            f"{imp.where}: {src} (rank {RANKS[src]}) imports {imp.target} "
            f"({dst}, rank {RANKS[dst]})"
        )
    return out


def test_packages_import_only_lower_layers():
    offenders = layering_offenders()
    if offenders:
        pytest.fail("imports against the layering:\n" + "\n".join(offenders))


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def cycle_offenders() -> list[str]:
    graph: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for imp in imports():
        if imp.type_checking or imp.target not in modules() or imp.target == imp.src:
            continue
        if imp.src in TOP_LEVEL and imp.local:
            continue  # the package's lazy API export (PEP 562 __getattr__) runs after import
        graph[imp.src].add(imp.target)
        graph[imp.target]
        where.setdefault((imp.src, imp.target), imp.where)
    out = []
    for comp in _strongly_connected(graph):
        members = set(comp)
        edges = [
            f"    {where[(a, b)]} imports {b}" for a in comp for b in sorted(graph[a] & members)
        ]
        out.append("cycle among " + ", ".join(comp) + ":\n" + "\n".join(edges))
    return out


def test_no_import_cycle_between_files():
    offenders = cycle_offenders()
    if offenders:
        pytest.fail("runtime import cycles:\n" + "\n".join(offenders))


def command_offenders() -> list[str]:
    out = []
    for imp in imports():
        if not is_command(imp.src):
            continue
        if is_command(imp.target):
            out.append(f"{imp.where}: command module {imp.src} imports command {imp.target}")
        elif imp.target == "archsearch.cli":
            names = ", ".join(imp.names)
            out.append(f"{imp.where}: command module {imp.src} imports {names} from archsearch.cli")
    return out


def test_command_modules_do_not_import_each_other():
    offenders = command_offenders()
    if offenders:
        pytest.fail("CLI command modules importing each other:\n" + "\n".join(offenders))


def local_import_offenders() -> list[str]:
    return [
        f"{imp.where}: {imp.src} imports {imp.target} inside a function"
        for imp in imports()
        if imp.local and not is_cli(imp.src) and imp.src not in TOP_LEVEL
    ]


def test_no_function_local_archsearch_imports_outside_the_cli():
    offenders = local_import_offenders()
    if offenders:
        pytest.fail(
            "function-local archsearch imports (move them to the top of the module):\n"
            + "\n".join(offenders)
        )


def long_function_offenders() -> list[str]:
    out = []
    for mod in modules():
        for node in ast.walk(tree_of(mod)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{path_of(mod)}:{node.lineno}: {node.name} is {n} lines")
    return out


def test_no_function_over_80_lines():
    offenders = long_function_offenders()
    if offenders:
        pytest.fail(f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(offenders))


#: documents users do not have (the project's own pages are ``docs/*.md``), and issue numbers
_CITATION = re.compile(r"(?<!docs/)\b(architectures|measurement)\.md\b")
_ISSUE = re.compile(r"\bissues?\s*#?\s*\d+", re.IGNORECASE)
_TEXT_TOKENS = {tokenize.COMMENT, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)}


def citation_offenders() -> list[str]:
    out = []
    for mod, path in modules().items():
        source = path.read_text(encoding="utf-8")
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type not in _TEXT_TOKENS:
                continue
            for pattern in (_CITATION, _ISSUE):
                for m in pattern.finditer(tok.string):
                    line = tok.start[0] + tok.string.count("\n", 0, m.start())
                    out.append(f"{path_of(mod)}:{line}: cites {m.group(0)!r}")
    return out


def test_no_citations_of_internal_documents_or_issue_numbers():
    offenders = citation_offenders()
    if offenders:
        pytest.fail(
            "comments/docstrings citing architectures.md, measurement.md or issue numbers "
            "(cite docs/<page>.md and its section, or the paper's section):\n"
            + "\n".join(offenders)
        )
