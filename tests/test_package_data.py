"""The shipped profiles and search spaces are package data: found without the repository.

``archsearch/data/profiles/`` and ``archsearch/data/search_spaces/`` hold the files; the top-level
``profiles/`` and ``search_spaces/`` are links to them (one source of truth), and
``pyproject.toml`` ships every file as package data, so a wheel installed anywhere has them.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from archsearch.errors import ConfigError
from archsearch.profiling.profiles import PROFILES_DIR, resolve_profile_path, shipped_profiles
from archsearch.search.space import SPACES_DIR, resolve_space_path, shipped_spaces

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"profiles": PROFILES_DIR, "search_spaces": SPACES_DIR}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_shipped_folders_are_package_data_and_the_top_level_links_to_them(kind: str) -> None:
    packaged = Path(str(files("archsearch") / "data" / kind))
    assert KINDS[kind] == packaged and sorted(packaged.glob("*.yaml"))
    top = ROOT / kind
    assert top.is_symlink() and os.readlink(top) == f"archsearch/data/{kind}"  # relative
    for f in packaged.glob("*.yaml"):
        assert (top / f.name).read_bytes() == f.read_bytes()
    assert sorted(p.name for p in top.glob("*.yaml")) == sorted(
        p.name for p in packaged.glob("*.yaml")
    )


def test_pyproject_ships_every_data_file() -> None:
    tomllib = pytest.importorskip("tomllib")
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = conf["tool"]["setuptools"]["package-data"]["archsearch"]
    package = ROOT / "archsearch"
    data = [p.relative_to(package).as_posix() for p in (package / "data").rglob("*") if p.is_file()]
    assert data and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in data), data


_PROBE = """
import json
from archsearch.profiling.profiles import load_profile, resolve_profile_path
from archsearch.search.space import load_space, resolve_space_path
from archsearch.errors import ConfigError
out = {"profile": str(resolve_profile_path("cpu")), "space": str(resolve_space_path("quickstart")),
       "cpu": load_profile("cpu").name, "quickstart": load_space("quickstart").name}
for what, fn in (("profile_error", resolve_profile_path), ("space_error", resolve_space_path)):
    try:
        fn("no-such-name")
    except ConfigError as e:
        out[what] = str(e)
print(json.dumps(out))
"""


def test_shipped_names_resolve_with_the_top_level_folders_out_of_reach(tmp_path: Path) -> None:
    """A copy of the package alone (no repository around it), run from an empty folder."""
    site = tmp_path / "site"
    shutil.copytree(
        ROOT / "archsearch", site / "archsearch", ignore=shutil.ignore_patterns("__pycache__")
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=work, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["profile"] == str(site / "archsearch" / "data" / "profiles" / "cpu.yaml")
    assert got["space"] == str(site / "archsearch" / "data" / "search_spaces" / "quickstart.yaml")
    assert (got["cpu"], got["quickstart"]) == ("cpu", "quickstart")
    assert "shipped preset: a100-bf16, cpu," in got["profile_error"]
    assert (
        "shipped space: all_families, " in got["space_error"] and "quickstart" in got["space_error"]
    )


def test_a_path_that_exists_wins_over_a_shipped_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_profile_path("cpu") == PROFILES_DIR / "cpu.yaml"
    assert resolve_space_path("quickstart") == SPACES_DIR / "quickstart.yaml"
    (tmp_path / "cpu").write_text("name: mine\n")
    (tmp_path / "quickstart").write_text("name: mine\n")
    assert resolve_profile_path("cpu") == Path("cpu")
    assert resolve_space_path("quickstart") == Path("quickstart")
    # a path (a suffix or a slash) that is missing stays a path: reading it names the file
    assert resolve_space_path("sub/quickstart") == Path("sub/quickstart")
    assert resolve_profile_path("h900.yaml") == Path("h900.yaml")


def test_an_unknown_name_lists_the_shipped_ones() -> None:
    assert "cpu" in shipped_profiles() and "quickstart" in shipped_spaces()
    with pytest.raises(ConfigError, match="shipped space: all_families, combiner") as e:
        resolve_space_path("quikstart")
    assert e.value.field == "space" and e.value.value == "quikstart"
    with pytest.raises(ConfigError, match="shipped preset: a100-bf16, cpu"):
        resolve_profile_path("h900")
