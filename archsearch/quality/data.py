"""Byte-level corpora for the ``lm`` task: every corpus is a train, valid and (optional) test split
of raw bytes (1-D ``uint8`` arrays; token ids are the byte values 0-255).

Formats (``load_corpus(path, fmt=...)``; ``fmt="auto"`` picks one from the path). Two corpora are
built in, need no download and are chosen by name (``path`` ``"pydoc"`` or ``"stdlib"``, with
``fmt="auto"``); a file or folder literally named ``stdlib`` or ``pydoc`` is read as ``./stdlib``.

``default`` (``path=None`` or ``"pydoc"``)
    The Python standard library's documentation topics
    (``pydoc_data.topics.topics``, ~79 topics, ~466 KB of English prose), values in sorted-key order
    joined by ``"\\n\\n"``, UTF-8. Train is the first ``floor(0.9 n)`` bytes, valid the rest; no
    test split. The text differs between Python versions, so ``source`` names the version and
    ``sha256`` records which bytes were used. For quickstarts and runs under ~400k training tokens.
``stdlib``
    The Python standard library's own source: every ``*.py`` file below
    ``sysconfig.get_paths()["stdlib"]`` whose relative path has no part in
    :data:`STDLIB_EXCLUDED` (tests, site-packages, caches; symlinked folders are not followed),
    sorted by relative POSIX path (~12 MB on Python 3.11). Split by whole files, interleaved so
    every split sees every package: the i-th file goes to valid if ``i % 20 == 18``, to test if
    ``i % 20 == 19``, else to train; each split is its files joined by ``b"\\n"``. The first load
    writes the splits and a manifest to :func:`cache_root` ``/corpora/stdlib-<key>/`` (key: the
    sha256 of every file's relative path, size and mtime); later loads memory-map them when the key,
    the Python version and the folder match. An unwritable cache is only a note.
``text``
    One file (any bytes that are not clearly binary) or a folder: every ``*.txt`` file below it,
    sorted by relative path, joined by ``b"\\n"``. Split 90 / 5 / 5: train ``[0, floor(.9n))``,
    valid ``[floor(.9n), floor(.95n))``, test the rest (exact integer arithmetic).
``enwik8``
    The 100,000,000-byte Hutter-prize file, or a zip with a member named ``enwik8`` (the official
    ``enwik8.zip``). Standard split: 90M train, 5M valid, 5M test. The plain file is memory-mapped.
``wikitext103``
    The WikiText-103 raw folder (``wiki.train.raw``, ``wiki.valid.raw``, ``wiki.test.raw``, one
    split each, memory-mapped), or its parent holding ``wikitext-103-raw/``.
``pg19``
    The DeepMind PG-19 layout: ``train/``, ``validation/``, ``test/`` folders of ``*.txt`` books;
    each split is its books in sorted filename order joined by ``b"\\n"``. Train is capped at
    ``max_bytes`` (default 1 GiB): whole books in order while the next still fits, at least one.

``max_bytes`` for the other formats truncates train to its first ``max_bytes`` bytes. Whatever is
capped is said in ``ByteCorpus.notes``. Every problem with the path or its contents is a one-line
:class:`~archsearch.errors.ConfigError` on the field ``data`` (or ``format``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sysconfig
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from archsearch.errors import ConfigError

FORMATS = ("auto", "text", "enwik8", "wikitext103", "pg19")

ENWIK8_BYTES = 100_000_000
ENWIK8_TRAIN = 90_000_000
ENWIK8_VALID = 5_000_000
PG19_DEFAULT_MAX_BYTES = 2**30
BINARY_PROBE_BYTES = 64 * 1024  # a NUL byte in this prefix marks a file as binary
WIKI_FILES = ("wiki.train.raw", "wiki.valid.raw", "wiki.test.raw")
WIKI_SUBFOLDER = "wikitext-103-raw"
PG19_SPLITS = ("train", "validation", "test")

BUILTIN = ("pydoc", "stdlib")
"""names of the built-in corpora (``load_corpus("stdlib")``); ``"pydoc"`` is the default corpus"""
STDLIB_EXCLUDED = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
)
"""a stdlib file whose relative path has one of these parts is not in the ``stdlib`` corpus"""
STDLIB_PERIOD, STDLIB_VALID_AT, STDLIB_TEST_AT = 20, 18, 19
STDLIB_MIN_BYTES = 10_000_000  # fewer is still loaded, but said in the notes
SPLITS = ("train", "valid", "test")
CACHE_ENV = "ARCHSEARCH_CACHE"
_CACHE_LAYOUT = 1  # bump when the cached files or their meaning change

_EXPECTED = {
    "auto": "an existing file or folder: a text file, a folder of .txt files,"
    " enwik8 (file or .zip), a WikiText-103 raw folder, a PG-19 folder",
    "text": "a text file or a folder of .txt files",
    "enwik8": "the 100,000,000-byte enwik8 file or a .zip with a member named enwik8",
    "wikitext103": "a WikiText-103 raw folder with wiki.train.raw, wiki.valid.raw and wiki.test.raw"
    f" (or a folder holding {WIKI_SUBFOLDER}/ with them)",
    "pg19": "a PG-19 folder with train/, validation/ and test/ subfolders of .txt books",
}


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value; compare by sha256
class ByteCorpus:
    """A byte corpus split for language modelling; arrays are read-only ``uint8``."""

    name: str
    source: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray | None
    sha256: str
    notes: str = ""

    def sizes(self) -> dict[str, int]:
        """Bytes per split; a missing test split counts 0."""
        return {
            "train": len(self.train),
            "valid": len(self.valid),
            "test": 0 if self.test is None else len(self.test),
        }


def _bad(shown: str, fmt: str, detail: str = "") -> ConfigError:
    """The error for a path that is not what ``fmt`` expects; ``detail`` says what is wrong."""
    allowed = _EXPECTED[fmt] + (f" ({detail})" if detail else "")
    return ConfigError("data", shown, allowed)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _map(path: Path) -> np.ndarray:
    """The file's bytes, memory-mapped read-only (an empty file gives an empty array)."""
    if path.stat().st_size == 0:
        return _readonly(np.zeros(0, dtype=np.uint8))
    return np.memmap(path, dtype=np.uint8, mode="r")


def _concat(files: list[Path], sizes: list[int], sep: bytes = b"\n") -> np.ndarray:
    """The files' bytes joined by ``sep``, read straight into one preallocated array."""
    total = sum(sizes) + len(sep) * max(len(files) - 1, 0)
    out = np.empty(total, dtype=np.uint8)
    view = memoryview(out)
    pos = 0
    for i, (f, size) in enumerate(zip(files, sizes, strict=True)):
        if i:
            view[pos : pos + len(sep)] = sep
            pos += len(sep)
        with f.open("rb") as fh:
            got = fh.readinto(view[pos : pos + size])
            if got != size or fh.read(1):
                raise ConfigError("data", str(f), "a file that does not change while it is read")
        pos += size
    return _readonly(out)


def _cap_train(train: np.ndarray, max_bytes: int | None) -> tuple[np.ndarray, str]:
    """Train truncated to ``max_bytes`` and a note saying so (empty when no cap was given)."""
    if max_bytes is None:
        return train, ""
    if len(train) <= max_bytes:
        return train, f"train: all {len(train):,} bytes (max_bytes={max_bytes})"
    note = f"train: first {max_bytes:,} of {len(train):,} bytes (max_bytes={max_bytes})"
    return train[:max_bytes], note


def _corpus(
    name: str,
    source: str,
    train: np.ndarray,
    valid: np.ndarray,
    test: np.ndarray | None,
    *notes: str,
) -> ByteCorpus:
    h = hashlib.sha256()
    for part in (train, valid, test):
        if part is not None:
            h.update(memoryview(part))
    return ByteCorpus(
        name, source, train, valid, test, h.hexdigest(), "; ".join(n for n in notes if n)
    )


def cache_root() -> Path:
    """Where archsearch caches derived files: ``$ARCHSEARCH_CACHE``, else
    ``$XDG_CACHE_HOME/archsearch``, else ``~/.cache/archsearch``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "archsearch"


def _split_90_5_5(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(data)
    a, b = n * 9 // 10, n * 95 // 100
    return data[:a], data[a:b], data[b:]


# -- default ---------------------------------------------------------------------------------------


def _default(max_bytes: int | None) -> ByteCorpus:
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics)).encode("utf-8")
    data = np.frombuffer(text, dtype=np.uint8)  # read-only: backed by bytes
    cut = len(data) * 9 // 10
    train, note = _cap_train(data[:cut], max_bytes)
    source = f"pydoc_data.topics (Python {platform.python_version()})"
    return _corpus("default", source, train, data[cut:], None, note)


def default_corpus() -> ByteCorpus:
    """The built-in corpus: Python's documentation topics, 90% train / 10% valid, no test."""
    return _default(None)


# -- stdlib ----------------------------------------------------------------------------------------


def stdlib_root() -> Path:
    """The folder the ``stdlib`` corpus is read from: this Python's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path | None = None) -> list[str]:
    """The ``stdlib`` corpus's files: relative POSIX paths of the ``*.py`` files below ``root``
    (default :func:`stdlib_root`) with no part in :data:`STDLIB_EXCLUDED`, sorted."""
    root = stdlib_root() if root is None else root
    out: list[str] = []
    for folder, subfolders, names in os.walk(root):  # does not follow symlinked folders
        subfolders[:] = [d for d in subfolders if d not in STDLIB_EXCLUDED]
        rel = PurePosixPath(Path(folder).relative_to(root).as_posix())
        out.extend(
            (rel / n).as_posix() for n in names if n.endswith(".py") and Path(folder, n).is_file()
        )
    return sorted(out)


def stdlib_split(index: int) -> str:
    """The split (``"train"``, ``"valid"`` or ``"test"``) of the ``index``-th file in order."""
    k = index % STDLIB_PERIOD
    return "valid" if k == STDLIB_VALID_AT else "test" if k == STDLIB_TEST_AT else "train"


def _stdlib_stat(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every corpus file, in corpus order."""
    out = []
    for rel in stdlib_files(root):
        st = (root / rel).stat()
        out.append((rel, st.st_size, st.st_mtime_ns))
    return out


def _stdlib_build(root: Path, entries: list[tuple[str, int, int]]) -> list[np.ndarray]:
    """The train, valid and test bytes read from the source files."""
    groups: dict[str, list[tuple[Path, int]]] = {s: [] for s in SPLITS}
    for i, (rel, size, _) in enumerate(entries):
        groups[stdlib_split(i)].append((root / rel, size))
    return [_concat([f for f, _ in g], [n for _, n in g]) for g in groups.values()]


def _read_cache(folder: Path, expect: dict[str, object]) -> tuple[list[np.ndarray], str] | None:
    """The cached splits and their sha256 if ``folder`` holds a complete cache matching
    ``expect``; None otherwise (missing, unreadable, stale or damaged)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if any(manifest.get(k) != v for k, v in expect.items()):
            return None
        arrays = [_map(folder / f"{s}.bin") for s in SPLITS]
        if [len(a) for a in arrays] != [manifest["sizes"][s] for s in SPLITS]:
            return None
        return arrays, str(manifest["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(folder: Path, arrays: list[np.ndarray], manifest: dict[str, object]) -> str:
    """Write the cache atomically (a temporary folder renamed into place, so no reader ever sees
    half of one); return "" or a note saying why it was not written."""
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    tmp: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        for split, a in zip(SPLITS, arrays, strict=True):
            (tmp / f"{split}.bin").write_bytes(memoryview(a))
        (tmp / "manifest.json").write_text(text, encoding="utf-8")
        if folder.exists():  # stale or damaged (a good one would have been read): set it aside
            aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, aside / "cache")
            shutil.rmtree(aside, ignore_errors=True)
        os.rename(tmp, folder)
        tmp = None
        return ""
    except OSError as e:
        try:
            if (folder / "manifest.json").read_text(encoding="utf-8") == text:
                return ""  # another process put the same cache in place first
        except OSError:
            pass
        return f"not cached ({e.strerror or type(e).__name__}: {e.filename or folder})"
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _stdlib_cached(
    root: Path, entries: list[tuple[str, int, int]], source: str
) -> tuple[ByteCorpus, str]:
    """The whole ``stdlib`` corpus, from the cache when it matches ``entries`` (else read from
    the files and cached), and "" or a note saying why it could not be cached."""
    key = hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()
    expect = {
        "layout": _CACHE_LAYOUT,
        "python": platform.python_version(),
        "stdlib": str(root),
        "key": key,
    }
    folder = cache_root() / "corpora" / f"stdlib-{key[:16]}"
    cached = _read_cache(folder, expect)
    if cached is not None:
        full = _corpus("stdlib", source, *cached[0])
        if full.sha256 == cached[1]:
            return full, ""
    arrays = _stdlib_build(root, entries)
    full = _corpus("stdlib", source, *arrays)
    sizes = dict(zip(SPLITS, map(len, arrays), strict=True))
    manifest = {**expect, "files": len(entries), "sha256": full.sha256, "sizes": sizes}
    return full, _write_cache(folder, arrays, manifest)


def _stdlib(max_bytes: int | None) -> ByteCorpus:
    root = stdlib_root()
    entries = _stdlib_stat(root)
    if not entries:
        raise ConfigError(
            "data", "stdlib", f"a built-in corpus: the .py files below {root} (there are none)"
        )
    source = f"Python {platform.python_version()} standard library source ({root})"
    full, cache_note = _stdlib_cached(root, entries, source)
    n_files = dict.fromkeys(SPLITS, 0)
    for i in range(len(entries)):
        n_files[stdlib_split(i)] += 1
    counts = ", ".join(f"{n_files[s]} {s}" for s in SPLITS)
    notes = [f"{len(entries)} .py files (tests excluded), split by file: {counts}"]
    total = sum(full.sizes().values())
    if total < STDLIB_MIN_BYTES:
        notes.append(f"only {total:,} bytes (fewer than {STDLIB_MIN_BYTES:,})")
    train, cap_note = _cap_train(full.train, max_bytes)
    return _corpus("stdlib", source, train, full.valid, full.test, *notes, cache_note, cap_note)


# -- text ------------------------------------------------------------------------------------------


def _load_text(p: Path, shown: str, max_bytes: int | None) -> ByteCorpus:
    if p.is_file():
        data, notes = _map(p), ""
        if len(data) == 0:
            raise _bad(shown, "text", "the file is empty")
        if np.any(data[:BINARY_PROBE_BYTES] == 0):
            raise _bad(shown, "text", "the file looks binary: NUL bytes in its first 64 KiB")
    elif p.is_dir():
        files = sorted(
            (f for f in p.rglob("*.txt") if f.is_file()), key=lambda f: f.relative_to(p).as_posix()
        )
        if not files:
            raise _bad(shown, "text", "the folder has no .txt files")
        sizes = [f.stat().st_size for f in files]
        data, notes = _concat(files, sizes), f"{len(files)} .txt files"
        pos = 0
        for f, size in zip(files, sizes, strict=True):
            if np.any(data[pos : pos + min(size, BINARY_PROBE_BYTES)] == 0):
                raise _bad(str(f), "text", "the file looks binary: NUL bytes in its first 64 KiB")
            pos += size + 1
    else:
        raise _bad(shown, "text", "not a regular file or folder")
    train, valid, test = _split_90_5_5(data)
    if not (len(train) and len(valid) and len(test)):
        raise _bad(shown, "text", f"{len(data)} bytes is too short: every split needs at least 11")
    train, note = _cap_train(train, max_bytes)
    return _corpus("text", shown, train, valid, test, notes, note)


# -- enwik8 ----------------------------------------------------------------------------------------


def _wrong_size(size: int) -> str:
    return f"enwik8 must be exactly {ENWIK8_BYTES:,} bytes, got {size:,}"


def _enwik8_from_zip(p: Path, shown: str) -> np.ndarray:
    try:
        with zipfile.ZipFile(p) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            exact = [i for i in members if i.filename == "enwik8"]
            named = exact or [i for i in members if PurePosixPath(i.filename).name == "enwik8"]
            if not named:
                raise _bad(shown, "enwik8", "the zip has no member named enwik8")
            if named[0].file_size != ENWIK8_BYTES:
                raise _bad(shown, "enwik8", _wrong_size(named[0].file_size))
            raw = zf.read(named[0])
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error) as e:
        detail = " ".join(str(e).split()) or type(e).__name__
        raise _bad(shown, "enwik8", f"not a readable zip: {detail}") from e
    if len(raw) != ENWIK8_BYTES:
        raise _bad(shown, "enwik8", _wrong_size(len(raw)))
    return np.frombuffer(raw, dtype=np.uint8)


def _load_enwik8(p: Path, shown: str, max_bytes: int | None) -> ByteCorpus:
    if not p.is_file():
        raise _bad(shown, "enwik8", "not a file")
    with p.open("rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    if is_zip:
        data, notes = _enwik8_from_zip(p, shown), "read from the zip member enwik8"
    else:
        size = p.stat().st_size
        if size != ENWIK8_BYTES:
            raise _bad(shown, "enwik8", _wrong_size(size))
        data, notes = _map(p), ""
    b = ENWIK8_TRAIN + ENWIK8_VALID
    train, note = _cap_train(data[:ENWIK8_TRAIN], max_bytes)
    return _corpus("enwik8", shown, train, data[ENWIK8_TRAIN:b], data[b:], notes, note)


# -- wikitext103 -----------------------------------------------------------------------------------


def _wiki_root(p: Path) -> Path | None:
    """The folder holding the raw files: ``p`` itself or ``p/wikitext-103-raw``."""
    if any((p / f).exists() for f in WIKI_FILES):
        return p
    if (p / WIKI_SUBFOLDER).is_dir():
        return p / WIKI_SUBFOLDER
    return None


def _load_wikitext103(p: Path, shown: str, max_bytes: int | None) -> ByteCorpus:
    if not p.is_dir():
        raise _bad(shown, "wikitext103", "not a folder")
    root = _wiki_root(p) or p
    prefix = "" if root == p else f"{WIKI_SUBFOLDER}/"
    missing = [prefix + f for f in WIKI_FILES if not (root / f).is_file()]
    if missing:
        raise _bad(shown, "wikitext103", "missing: " + ", ".join(missing))
    splits = [_map(root / f) for f in WIKI_FILES]
    empty = [prefix + f for f, s in zip(WIKI_FILES, splits, strict=True) if len(s) == 0]
    if empty:
        raise _bad(shown, "wikitext103", "empty: " + ", ".join(empty))
    train, note = _cap_train(splits[0], max_bytes)
    return _corpus("wikitext103", shown, train, splits[1], splits[2], note)


# -- pg19 ------------------------------------------------------------------------------------------


def _books(folder: Path) -> list[Path]:
    return sorted((f for f in folder.glob("*.txt") if f.is_file()), key=lambda f: f.name)


def _load_pg19(p: Path, shown: str, max_bytes: int | None) -> ByteCorpus:
    if not p.is_dir():
        raise _bad(shown, "pg19", "not a folder")
    missing = [f"{s}/" for s in PG19_SPLITS if not (p / s).is_dir()]
    if missing:
        raise _bad(shown, "pg19", "missing: " + ", ".join(missing))
    books = {s: _books(p / s) for s in PG19_SPLITS}
    empty = [f"{s}/" for s in PG19_SPLITS if not books[s]]
    if empty:
        raise _bad(shown, "pg19", "no .txt books in " + ", ".join(empty))
    cap = PG19_DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    train_sizes = [f.stat().st_size for f in books["train"]]
    taken, total = 1, train_sizes[0]
    while taken < len(train_sizes) and total + 1 + train_sizes[taken] <= cap:
        total += 1 + train_sizes[taken]
        taken += 1
    which = "all" if taken == len(train_sizes) else "first"
    note = f"{which} {taken} of {len(train_sizes)} training books (max_bytes={cap})"
    splits = [_concat(books["train"][:taken], train_sizes[:taken])]
    for s in PG19_SPLITS[1:]:
        splits.append(_concat(books[s], [f.stat().st_size for f in books[s]]))
    empty = [f"{s}/" for s, a in zip(PG19_SPLITS, splits, strict=True) if len(a) == 0]
    if empty:
        raise _bad(shown, "pg19", "only empty books in " + ", ".join(empty))
    return _corpus("pg19", shown, *splits, note)


# -- entry point -----------------------------------------------------------------------------------

_LOADERS = {
    "text": _load_text,
    "enwik8": _load_enwik8,
    "wikitext103": _load_wikitext103,
    "pg19": _load_pg19,
}


def _detect_format(p: Path, shown: str) -> str:
    """The format ``fmt="auto"`` picks for an existing path (see the module docstring)."""
    if p.is_file():
        if p.name in ("enwik8", "enwik8.zip") or p.stat().st_size == ENWIK8_BYTES:
            return "enwik8"
        return "text"
    if p.is_dir():
        if (p / WIKI_FILES[0]).exists() or (p / WIKI_SUBFOLDER / WIKI_FILES[0]).exists():
            return "wikitext103"
        if (p / "train").is_dir() and (p / "validation").is_dir():
            return "pg19"
        return "text"
    raise _bad(shown, "auto", "it is neither a regular file nor a folder")


def load_corpus(
    path: str | Path | None, *, fmt: str = "auto", max_bytes: int | None = None
) -> ByteCorpus:
    """Load the corpus at ``path`` as train/valid/test bytes; ``None`` or ``"pydoc"``: the built-in
    default, ``"stdlib"``: the built-in standard library source (a path of that name: ``./stdlib``).

    ``fmt`` is one of :data:`FORMATS`; ``max_bytes`` caps the train split (PG-19: 1 GiB if None).
    """
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ConfigError("format", fmt, "one of " + ", ".join(repr(f) for f in FORMATS))
    if max_bytes is not None and (
        not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1
    ):
        raise ConfigError("max_bytes", max_bytes, "a positive number of bytes, or null for no cap")
    if path is None:
        if fmt != "auto":
            raise ConfigError(
                "format", fmt, "'auto' when no data path is given (the default corpus)"
            )
        return _default(max_bytes)
    if isinstance(path, str) and path in BUILTIN:
        if fmt != "auto":
            raise ConfigError(
                "format", fmt, f"'auto' with the built-in corpus {path!r} (a path: ./{path})"
            )
        if path == "pydoc":
            return _default(max_bytes)
        try:
            return _stdlib(max_bytes)
        except OSError as e:  # a stdlib file vanished or cannot be read
            reason = f"{e.strerror or type(e).__name__}: {e.filename}"
            raise ConfigError("data", path, f"a readable standard library ({reason})") from e
    if not isinstance(path, (str, Path)):
        raise ConfigError(
            "data", path, "a path to a file or folder, or null for the default corpus"
        )
    shown = str(path)
    p = Path(path)
    try:
        if not shown.strip() or "\0" in shown or not p.exists():
            raise _bad(shown, "auto")
        kind = _detect_format(p, shown) if fmt == "auto" else fmt
        return _LOADERS[kind](p, shown, max_bytes)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        if e.filename and str(e.filename) != shown:
            reason += f": {e.filename}"
        raise ConfigError("data", shown, f"a readable file or folder ({reason})") from e
