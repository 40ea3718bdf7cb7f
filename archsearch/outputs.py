"""Where commands write: safe folder names, writability checked before any work, and the one
overwrite rule.

The rule (README, "Commands"): a command never replaces files it did not make for the same run
unless given ``--force``. ``train``, ``scale``, ``report``, ``profile --csv`` and ``search``
check their output before building or training anything; re-running a search (or a report) of
the same study into its own folder resumes or refreshes it and is not an overwrite.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from archsearch.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 80


def folder_name(name: str) -> str:
    """A model's or study's ``name`` as one safe path component: only ``[A-Za-z0-9._-]``,
    never empty, never starting with ``.`` or ``-`` (so never ``..``, never absolute). A name
    that had to change gets a short hash of the original, so two different names never share
    a folder."""
    slug = _UNSAFE.sub("-", name).lstrip(".-")[:MAX_NAME].rstrip(".-")
    if slug == name and slug:
        return slug
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else f"unnamed-{digest}"


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(folder: Path, option: str, path: Path, what: str) -> None:
    """Create and remove a temporary file in ``folder`` (permissions, read-only filesystems,
    root or not: the only test that does not lie)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(option, str(path), f"{what} ({folder}: {reason})") from None


def check_writable_dir(path: Path, option: str) -> None:
    """``path`` is (or can be made as) a folder this process can write in; a one-line
    :class:`ConfigError` naming ``option`` otherwise. Creates nothing."""
    what = "a folder this user can create and write in"
    base = _nearest_existing(path)
    if not base.is_dir():
        raise ConfigError(option, str(path), f"{what} ({base} is not a folder)")
    _probe(base, option, path, what)


def check_writable_file(path: Path, option: str) -> None:
    """``path`` is a file this process can create or replace (its folder may not exist yet)."""
    what = "a file path this user can write"
    if path.is_dir():
        raise ConfigError(option, str(path), f"{what} (it is a folder)")
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise ConfigError(option, str(path), f"{what} ({base} is not a folder)")
    _probe(base, option, path, what)
    if path.exists():
        try:
            with open(path, "ab"):
                pass
        except OSError as e:
            raise ConfigError(option, str(path), f"{what} ({e.strerror})") from None


def refuse_overwrite(out: Path, option: str, products: Iterable[str], *, force: bool) -> None:
    """Refuse (unless ``force``) when any of the files a command writes into ``out`` exists."""
    if force:
        return
    found = [name for name in products if (out / name).exists()]
    if found:
        raise ConfigError(
            option,
            str(out),
            f"a folder without {found[0]} from an earlier run (pass --force to replace it)",
        )


def refuse_file_overwrite(path: Path, option: str, *, force: bool) -> None:
    if path.exists() and not force:
        raise ConfigError(option, str(path), "a file that does not exist yet (or pass --force)")


def report_study(folder: Path) -> str | None:
    """The study a report folder (``study.json``) was made from; None when there is none."""
    try:
        return str(json.loads((folder / "study.json").read_text())["study"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_study_folder(
    out: Path, option: str, study: str, *, force: bool, own: Iterable[str] = ()
) -> None:
    """A folder a study writes into (a search's output or a report): new, empty, holding this
    study's own files (``own``: its database), or a report of the same study (``study.json``).
    Anything else is refused unless ``force``."""
    if force or not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(option, str(out), "a folder (this is a file)")
    if any((out / name).exists() for name in own):
        return
    made_for = report_study(out) or report_study(out / "report")
    if made_for == study:
        return
    if made_for is not None:
        why = f"holds the report of study {made_for!r}"
    elif any(out.iterdir()):
        why = "is not empty and holds no archsearch output"
    else:
        return
    raise ConfigError(
        option, str(out), f"a new folder or this study's own ({out} {why}; pass --force to use it)"
    )
