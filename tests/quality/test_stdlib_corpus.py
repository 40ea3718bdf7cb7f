"""The built-in ``stdlib`` corpus: this Python's standard library source, split by whole files.

Real stdlib files, no mocks: the file list, every file at its offset in exactly its split,
determinism, the cache (hit, stale key, damaged, unwritable) and the built-in names. Every test
caches under its own tmp ``ARCHSEARCH_CACHE``; none writes to the user's cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from archsearch.errors import ConfigError
from archsearch.quality import data as D
from archsearch.quality.data import default_corpus, load_corpus
from archsearch.quality.tasks import make_task


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(D.CACHE_ENV, str(folder))
    return folder


def _bytes(c: D.ByteCorpus) -> list[bytes]:
    return [bytes(a) for a in (c.train, c.valid, c.test) if a is not None]


def _cache_folders(cache: Path) -> list[Path]:
    return sorted((cache / "corpora").glob("stdlib-*"))


def _small_stdlib(tmp_path: Path, n: int = 25) -> Path:
    """A copy of the first ``n`` corpus files plus a test folder that must be left out."""
    real, root = D.stdlib_root(), tmp_path / "lib"
    for rel in D.stdlib_files()[:n]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real / rel, root / rel)
    for skipped in ("test/test_x.py", "pkg/tests/t.py", "site-packages/m.py", "__pycache__/c.py"):
        (root / skipped).parent.mkdir(parents=True, exist_ok=True)
        (root / skipped).write_text("LEFT OUT\n")
    return root


def test_the_file_list_excludes_test_folders_and_is_sorted() -> None:
    root, files = D.stdlib_root(), D.stdlib_files()
    assert files == sorted(files) and len(set(files)) == len(files)
    assert {"os.py", "json/__init__.py", "unittest/case.py"} <= set(files)
    for rel in files:
        assert rel.endswith(".py") and not D.STDLIB_EXCLUDED & set(rel.split("/")), rel
    expected = {  # the rule, applied independently of stdlib_files
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if p.is_file() and not D.STDLIB_EXCLUDED & set(p.relative_to(root).parts)
    }
    assert set(files) == expected


def test_every_file_lies_whole_in_its_split_at_its_offset() -> None:
    root, files = D.stdlib_root(), D.stdlib_files()
    c = load_corpus("stdlib")
    splits = {"train": c.train, "valid": c.valid, "test": c.test}
    pos = dict.fromkeys(splits, 0)
    for i, rel in enumerate(files):
        split = D.stdlib_split(i)
        assert split == ("valid" if i % 20 == 18 else "test" if i % 20 == 19 else "train")
        raw = (root / rel).read_bytes()
        a, start = splits[split], pos[split]
        if start:
            assert a[start] == ord("\n"), rel  # the separator between two files
            start += 1
        assert bytes(a[start : start + len(raw)]) == raw, rel
        pos[split] = start + len(raw)
    assert pos == c.sizes()  # nothing else in any split
    n_valid = len(range(18, len(files), 20))
    n_test = len(range(19, len(files), 20))
    assert f"split by file: {len(files) - n_valid - n_test} train, {n_valid} valid" in c.notes
    assert c.name == "stdlib" and D.stdlib_root().as_posix() in c.source


def test_loads_are_deterministic_and_the_cached_load_equals_a_fresh_one(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_corpus("stdlib")  # reads the files, writes the cache
    (folder,) = _cache_folders(cache)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sha256"] == first.sha256 and manifest["sizes"] == first.sizes()
    assert manifest["stdlib"] == str(D.stdlib_root()) and manifest["files"] == len(D.stdlib_files())
    cached = load_corpus("stdlib")
    assert isinstance(cached.train, np.memmap) and not cached.train.flags.writeable
    monkeypatch.setenv(D.CACHE_ENV, str(tmp_path / "other"))
    fresh = load_corpus("stdlib")
    for c in (cached, fresh):
        assert (c.sha256, c.sizes(), c.source, c.notes) == (
            first.sha256,
            first.sizes(),
            first.source,
            first.notes,
        )
        assert _bytes(c) == _bytes(first)
    if sum(first.sizes().values()) >= D.STDLIB_MIN_BYTES:
        assert "only" not in first.notes
    capped = load_corpus("stdlib", max_bytes=1000)
    assert bytes(capped.train) == bytes(first.train[:1000]) and "max_bytes=1000" in capped.notes


def test_a_changed_file_changes_the_key_and_rebuilds(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _small_stdlib(tmp_path)
    monkeypatch.setattr(D, "stdlib_root", lambda: root)
    before = load_corpus("stdlib")
    assert b"LEFT OUT" not in b"".join(_bytes(before))
    assert "25 .py files" in before.notes and "(fewer than 10,000,000)" in before.notes
    assert len(before.valid) and len(before.test)  # indexes 18 and 19
    first = D.stdlib_files(root)[0]
    with (root / first).open("ab") as f:
        f.write(b"# changed\n")
    after = load_corpus("stdlib")
    assert len(_cache_folders(cache)) == 2 and after.sha256 != before.sha256
    assert bytes(after.train[: (root / first).stat().st_size]) == (root / first).read_bytes()
    assert load_corpus("stdlib").sha256 == after.sha256  # and the new cache is read back


def test_a_damaged_cache_is_rebuilt(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = _small_stdlib(tmp_path)
    monkeypatch.setattr(D, "stdlib_root", lambda: root)
    good = load_corpus("stdlib")
    (folder,) = _cache_folders(cache)
    (folder / "train.bin").write_bytes(b"x" * len(good.train))  # same size, wrong bytes
    assert load_corpus("stdlib").sha256 == good.sha256
    (folder / "manifest.json").write_text("{not json")
    assert load_corpus("stdlib").sha256 == good.sha256
    assert isinstance(load_corpus("stdlib").train, np.memmap)  # the rebuilt cache is used


def test_an_unwritable_cache_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _small_stdlib(tmp_path)
    monkeypatch.setattr(D, "stdlib_root", lambda: root)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(D.CACHE_ENV, str(blocker / "cache"))  # cannot be created, even by root
    c = load_corpus("stdlib")
    assert "not cached (" in c.notes and "\n" not in c.notes
    monkeypatch.setenv(D.CACHE_ENV, str(tmp_path / "ok"))
    assert _bytes(load_corpus("stdlib")) == _bytes(c)


def test_an_empty_standard_library_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(D, "stdlib_root", lambda: tmp_path)
    with pytest.raises(ConfigError) as info:
        load_corpus("stdlib")
    assert info.value.field == "data" and "there are none" in str(info.value)


@pytest.mark.parametrize("name", D.BUILTIN)
def test_a_built_in_name_needs_format_auto(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_corpus(name, fmt="text")
    msg = str(info.value)
    assert info.value.field == "format" and "\n" not in msg
    assert f"'auto' with the built-in corpus '{name}'" in msg and f"./{name}" in msg


def test_pydoc_is_the_default_corpus() -> None:
    a, b = load_corpus("pydoc"), default_corpus()
    assert (a.name, a.source, a.sha256, a.notes) == (b.name, b.source, b.sha256, b.notes)
    assert _bytes(a) == _bytes(b) and a.test is None


def test_a_folder_named_stdlib_is_read_as_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stdlib").mkdir()
    (tmp_path / "stdlib" / "a.txt").write_bytes(bytes(range(32, 127)) * 10)
    monkeypatch.chdir(tmp_path)
    c = load_corpus("./stdlib")
    assert (c.name, c.source) == ("text", "./stdlib")


def test_the_lm_task_accepts_stdlib() -> None:
    task = make_task("lm", {"data": "stdlib", "eval_tokens": 1024}, seq_len=64)
    assert task.corpus.name == "stdlib" and task.corpus.sizes()["test"] > 0
