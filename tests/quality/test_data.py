"""archsearch.quality.data: each corpus format, its exact splits, auto-detection, and one-line
ConfigErrors for every bad path. All corpora are built in tmp_path (enwik8 as a synthetic file)."""

from __future__ import annotations

import hashlib
import os
import platform
import zipfile
from collections.abc import Callable
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest

from archsearch.errors import ConfigError
from archsearch.quality import data as D
from archsearch.quality.data import FORMATS, default_corpus, load_corpus

AUTO_ALLOWED = (
    "an existing file or folder: a text file, a folder of .txt files, enwik8 (file or .zip),"
    " a WikiText-103 raw folder, a PG-19 folder"
)


def _error(call: Callable[[], object], *needles: str, field: str = "data") -> ConfigError:
    """The ConfigError ``call`` raises; its message is one line and contains every needle."""
    with pytest.raises(ConfigError) as info:
        call()
    err, msg = info.value, str(info.value)
    assert "\n" not in msg and "\r" not in msg
    assert err.field == field
    for needle in needles:
        assert needle in msg, (needle, msg)
    return err


def _joined(c: D.ByteCorpus) -> bytes:
    return b"".join(bytes(a) for a in (c.train, c.valid, c.test) if a is not None)


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# -- default ---------------------------------------------------------------------------------------


def test_default_is_deterministic_and_records_the_python_version():
    a, b = default_corpus(), default_corpus()
    assert a.sha256 == b.sha256 == load_corpus(None).sha256
    assert np.array_equal(a.train, b.train) and np.array_equal(a.valid, b.valid)
    assert (a.name, a.test) == ("default", None)
    assert a.source == f"pydoc_data.topics (Python {platform.python_version()})"


def test_default_split_is_exactly_90_10_of_the_sorted_topics():
    text = "\n\n".join(topics[k] for k in sorted(topics)).encode("utf-8")
    n = len(text)
    c = default_corpus()
    assert c.sizes() == {"train": n * 9 // 10, "valid": n - n * 9 // 10, "test": 0}
    assert bytes(c.train) + bytes(c.valid) == text
    assert c.sha256 == _sha(text)
    assert c.train.dtype == np.uint8 and c.train.ndim == 1 and not c.train.flags.writeable


def test_default_is_mostly_ascii_english_prose():
    c = default_corpus()
    allb = np.concatenate([c.train, c.valid])
    assert len(allb) > 400_000
    assert np.mean(allb < 128) > 0.99
    assert bytes(allb).count(b" the ") > 1000


def test_default_train_cap():
    c = load_corpus(None, max_bytes=1000)
    full = default_corpus()
    assert len(c.train) == 1000 and np.array_equal(c.train, full.train[:1000])
    assert np.array_equal(c.valid, full.valid)
    assert "first 1,000 of" in c.notes and c.sha256 != full.sha256


# -- text ------------------------------------------------------------------------------------------


def test_text_file_splits_90_5_5(tmp_path):
    content = (
        (np.arange(1013) % 251 + 1).astype(np.uint8).tobytes()
    )  # no NULs; 911.7 and 962.35 round down
    p = _write(tmp_path / "corpus.dat", content)
    c = load_corpus(p)
    assert (c.name, c.source) == ("text", str(p))
    assert c.sizes() == {"train": 911, "valid": 51, "test": 51}
    assert _joined(c) == content and c.sha256 == _sha(content)


def test_text_minimum_length_is_11_bytes(tmp_path):
    assert load_corpus(_write(tmp_path / "a.txt", b"x" * 11)).sizes() == {
        "train": 9,
        "valid": 1,
        "test": 1,
    }
    p = _write(tmp_path / "b.txt", b"x" * 10)
    _error(lambda: load_corpus(p), str(p), "at least 11")


def test_text_folder_concatenates_txt_files_sorted_by_relative_path(tmp_path):
    root = tmp_path / "books"
    _write(root / "b.txt", b"bravo" * 10)
    _write(root / "sub" / "a.txt", b"sub-alpha" * 10)
    _write(root / "a.txt", b"alpha" * 10)
    _write(root / "z.md", b"not a txt file")
    c = load_corpus(root)
    expected = b"\n".join([b"alpha" * 10, b"bravo" * 10, b"sub-alpha" * 10])
    assert c.name == "text" and _joined(c) == expected
    n = len(expected)
    assert c.sizes() == {
        "train": n * 9 // 10,
        "valid": n * 95 // 100 - n * 9 // 10,
        "test": n - n * 95 // 100,
    }
    assert n == 192 and c.sizes()["test"] == 10
    assert "3 .txt files" in c.notes and not c.train.flags.writeable


def test_text_train_cap(tmp_path):
    p = _write(tmp_path / "t.txt", b"0123456789" * 100)
    c = load_corpus(p, max_bytes=100)
    assert bytes(c.train) == b"0123456789" * 10 and c.sizes()["valid"] == 50
    assert c.notes == "train: first 100 of 900 bytes (max_bytes=100)"
    assert load_corpus(p, max_bytes=900).notes == "train: all 900 bytes (max_bytes=900)"


def test_text_binary_file_and_empty_inputs_are_errors(tmp_path):
    binary = _write(tmp_path / "model.bin", b"weights" * 100 + b"\x00" + b"more" * 100)
    _error(lambda: load_corpus(binary), f"'{binary}'", "text file", "binary")
    inner = _write(tmp_path / "mixed" / "b.txt", b"\x00\x01\x02" * 20)
    _write(tmp_path / "mixed" / "a.txt", b"plain text " * 20)
    _error(lambda: load_corpus(tmp_path / "mixed"), f"'{inner}'", "binary")
    empty_dir = tmp_path / "nothing"
    _write(empty_dir / "readme.md", b"no txt here")
    err = _error(lambda: load_corpus(empty_dir), f"'{empty_dir}'", "no .txt files")
    assert err.value == str(empty_dir)
    empty = _write(tmp_path / "empty.txt", b"")
    _error(lambda: load_corpus(empty), f"'{empty}'", "empty")


# -- enwik8 ----------------------------------------------------------------------------------------

MARKS = {89_999_999: 201, 90_000_000: 202, 94_999_999: 203, 95_000_000: 204, 99_999_999: 205}


@pytest.fixture(scope="module")
def enwik8(tmp_path_factory) -> tuple[Path, str]:
    """A synthetic 100,000,000-byte enwik8 (bytes i % 256, markers at the split edges), its sha."""
    data = np.tile(np.arange(256, dtype=np.uint8), 100_000_000 // 256)
    for i, v in MARKS.items():
        data[i] = v
    path = tmp_path_factory.mktemp("enwik8") / "enwik8"
    data.tofile(path)
    return path, hashlib.sha256(data).hexdigest()


def _check_enwik8(c: D.ByteCorpus, sha: str) -> None:
    assert c.name == "enwik8"
    assert c.sizes() == {"train": 90_000_000, "valid": 5_000_000, "test": 5_000_000}
    assert (c.train[-1], c.valid[0], c.valid[-1], c.test[0], c.test[-1]) == (
        201,
        202,
        203,
        204,
        205,
    )
    # elsewhere byte i is i % 256
    assert (c.train[0], c.train[12_345]) == (0, 12_345 % 256)
    assert (c.valid[1], c.test[1]) == (90_000_001 % 256, 95_000_001 % 256)
    assert c.sha256 == sha


def test_enwik8_standard_split_is_memory_mapped(enwik8):
    path, sha = enwik8
    c = load_corpus(path)
    _check_enwik8(c, sha)
    assert isinstance(c.train, np.memmap) and not c.train.flags.writeable
    assert c.source == str(path)


def test_enwik8_is_detected_by_size_and_capped(enwik8, tmp_path):
    path, sha = enwik8
    other = tmp_path / "corpus.bin"
    os.link(path, other)
    _check_enwik8(load_corpus(other), sha)
    c = load_corpus(str(other), max_bytes=1000)
    assert len(c.train) == 1000 and c.sizes()["valid"] == 5_000_000
    assert "first 1,000 of 90,000,000 bytes" in c.notes


def test_enwik8_zip_member(enwik8, tmp_path):
    path, sha = enwik8
    z = tmp_path / "enwik8.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(path, arcname="enwik8")
    c = load_corpus(z)
    _check_enwik8(c, sha)
    assert "zip" in c.notes and c.source == str(z)


def test_enwik8_wrong_size_and_bad_zips(tmp_path):
    small = _write(tmp_path / "enwik8", b"<mediawiki>" * 100)
    _error(lambda: load_corpus(small), f"'{small}'", "exactly 100,000,000 bytes, got 1,100")
    z = tmp_path / "enwik8.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("enwik8", b"short")
    _error(lambda: load_corpus(z), "exactly 100,000,000 bytes, got 5")
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("enwik9", b"short")
    _error(lambda: load_corpus(z), f"'{z}'", "no member named enwik8")
    broken = _write(tmp_path / "x" / "enwik8.zip", b"PK\x03\x04 truncated")
    _error(lambda: load_corpus(broken), "not a readable zip")


# -- wikitext103 -----------------------------------------------------------------------------------

WIKI = {
    "wiki.train.raw": b" = Train = \n" * 30,
    "wiki.valid.raw": b"valid\n" * 7,
    "wiki.test.raw": b"t",
}


def _wiki(folder: Path, files: dict[str, bytes] = WIKI) -> Path:
    for name, content in files.items():
        _write(folder / name, content)
    return folder


def test_wikitext103_one_file_per_split(tmp_path):
    c = load_corpus(_wiki(tmp_path / "wt"))
    assert c.name == "wikitext103"
    assert bytes(c.train) == WIKI["wiki.train.raw"] and bytes(c.valid) == WIKI["wiki.valid.raw"]
    assert bytes(c.test) == b"t" and c.sizes() == {"train": 360, "valid": 42, "test": 1}
    assert c.sha256 == _sha(b"".join(WIKI.values()))


def test_wikitext103_parent_folder(tmp_path):
    _wiki(tmp_path / "download" / "wikitext-103-raw")
    c = load_corpus(tmp_path / "download")
    assert c.name == "wikitext103" and c.source == str(tmp_path / "download")
    assert c.sha256 == _sha(b"".join(WIKI.values()))


def test_wikitext103_missing_and_empty_files(tmp_path):
    folder = _wiki(tmp_path / "wt", {k: v for k, v in WIKI.items() if k != "wiki.valid.raw"})
    err = _error(lambda: load_corpus(folder), f"'{folder}'", "missing: wiki.valid.raw")
    assert "wiki.test.raw" not in err.allowed.split("missing:")[1]
    parent = tmp_path / "p"
    _wiki(parent / "wikitext-103-raw", {"wiki.train.raw": b"x"})
    _error(
        lambda: load_corpus(parent),
        "missing: wikitext-103-raw/wiki.valid.raw, wikitext-103-raw/wiki.test.raw",
    )
    empty = _wiki(tmp_path / "e", {**WIKI, "wiki.test.raw": b""})
    _error(lambda: load_corpus(empty), "empty: wiki.test.raw")


# -- pg19 ------------------------------------------------------------------------------------------

BOOKS = {"b.txt": b"book-b" * 5, "a.txt": b"book-a" * 3, "c.txt": b"book-c" * 4}


def _pg19(root: Path, splits: tuple[str, ...] = ("train", "validation", "test")) -> Path:
    if "train" in splits:
        for name, content in BOOKS.items():
            _write(root / "train" / name, content)
        _write(root / "train" / "index.csv", b"ignored")
    if "validation" in splits:
        _write(root / "validation" / "v.txt", b"valid-book")
    if "test" in splits:
        _write(root / "test" / "t2.txt", b"second")
        _write(root / "test" / "t1.txt", b"first")
    return root


def test_pg19_splits_are_books_in_sorted_order(tmp_path):
    c = load_corpus(_pg19(tmp_path / "pg19"))
    assert c.name == "pg19"
    assert bytes(c.train) == b"\n".join([BOOKS["a.txt"], BOOKS["b.txt"], BOOKS["c.txt"]])
    assert bytes(c.valid) == b"valid-book" and bytes(c.test) == b"first\nsecond"
    assert c.notes == "all 3 of 3 training books (max_bytes=1073741824)"
    assert c.sha256 == _sha(_joined(c)) and not c.train.flags.writeable


def test_pg19_cap_reads_whole_books_only(tmp_path):
    root = _pg19(tmp_path / "pg19")
    a, b = BOOKS["a.txt"], BOOKS["b.txt"]
    two = load_corpus(root, max_bytes=len(a) + 1 + len(b))
    assert bytes(two.train) == a + b"\n" + b
    assert two.notes == f"first 2 of 3 training books (max_bytes={len(a) + 1 + len(b)})"
    one = load_corpus(root, max_bytes=len(a) + len(b))  # the separator counts too
    assert bytes(one.train) == a and one.notes.startswith("first 1 of 3")
    tiny = load_corpus(root, max_bytes=1)  # at least one book
    assert bytes(tiny.train) == a
    assert bytes(tiny.valid) == b"valid-book" and bytes(tiny.test) == b"first\nsecond"


def test_pg19_missing_or_empty_split(tmp_path):
    root = _pg19(tmp_path / "pg19", ("train", "validation"))
    _error(lambda: load_corpus(root), f"'{root}'", "PG-19", "missing: test/")
    (root / "test").mkdir()
    _error(lambda: load_corpus(root), "no .txt books in test/")


# -- auto-detection and explicit formats -----------------------------------------------------------


def test_auto_detects_each_format(tmp_path, enwik8):
    assert load_corpus(_write(tmp_path / "t.md", b"hello world, " * 5)).name == "text"
    assert load_corpus(_write(tmp_path / "dir" / "x.txt", b"hello world, " * 5).parent).name == (
        "text"
    )
    assert load_corpus(_wiki(tmp_path / "wt")).name == "wikitext103"
    assert load_corpus(_pg19(tmp_path / "pg")).name == "pg19"
    assert load_corpus(enwik8[0], fmt="auto").name == "enwik8"
    # the same paths with the format named explicitly
    assert load_corpus(tmp_path / "wt", fmt="wikitext103").name == "wikitext103"
    assert load_corpus(tmp_path / "pg", fmt="pg19").name == "pg19"
    assert load_corpus(tmp_path / "pg", fmt="text").notes == "6 .txt files"


def test_explicit_format_that_does_not_match_the_path(tmp_path):
    text = _write(tmp_path / "t.txt", b"plain text " * 10)
    _error(lambda: load_corpus(text, fmt="wikitext103"), f"'{text}'", "wiki.train.raw", "folder")
    _error(lambda: load_corpus(text, fmt="pg19"), "train/, validation/ and test/", "not a folder")
    _error(lambda: load_corpus(text, fmt="enwik8"), "exactly 100,000,000 bytes, got 110")
    _error(lambda: load_corpus(tmp_path, fmt="enwik8"), f"'{tmp_path}'", "not a file")
    _error(lambda: load_corpus(tmp_path, fmt="pg19"), "missing: train/, validation/, test/")
    _error(lambda: load_corpus(tmp_path, fmt="wikitext103"), "missing: wiki.train.raw, wiki.")


def test_nonexistent_path_unknown_format_and_bad_cap(tmp_path):
    missing = tmp_path / "nope"
    err = _error(lambda: load_corpus(missing))
    assert str(err) == f"data: got '{missing}'; allowed: {AUTO_ALLOWED}"
    assert err.value == str(missing)
    _error(lambda: load_corpus(""), AUTO_ALLOWED)
    _error(lambda: load_corpus("bad\0name"), "'bad\\x00name'", AUTO_ALLOWED)
    _error(lambda: load_corpus(missing, fmt="wikitext2"), *map(repr, FORMATS), field="format")
    _error(lambda: load_corpus(None, fmt="text"), "'auto'", field="format")
    for bad in (0, -5, True, 1.5):
        _error(lambda bad=bad: load_corpus(None, max_bytes=bad), "positive", field="max_bytes")


def test_unreadable_path_is_a_config_error(tmp_path, monkeypatch):
    p = _write(tmp_path / "t.txt", b"some text " * 10)

    def denied(path: Path) -> np.ndarray:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(D, "_map", denied)
    _error(lambda: load_corpus(p), f"'{p}'", "readable", "Permission denied")


def test_unreadable_file_in_a_folder_is_a_config_error(tmp_path):
    locked = _wiki(tmp_path / "wt")
    valid = locked / "wiki.valid.raw"
    valid.chmod(0)
    try:
        try:
            valid.open("rb").close()
        except PermissionError:
            pass
        else:
            pytest.skip("file permissions are not enforced here (root)")
        _error(
            lambda: load_corpus(locked), f"'{locked}'", "readable", f"Permission denied: {valid}"
        )
    finally:
        valid.chmod(0o644)
