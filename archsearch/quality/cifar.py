"""CIFAR-10 in the official *python* release format, loaded safely with numpy only.

Format (https://www.cs.toronto.edu/~kriz/cifar.html): a folder ``cifar-10-batches-py/`` (shipped
as ``cifar-10-python.tar.gz``) holding the training batches ``data_batch_1`` ... ``data_batch_5``,
the ``test_batch`` and ``batches.meta``. Each batch is a pickled dict (protocol 2; bytes keys when
loaded with ``encoding="bytes"``):

* ``b"data"``: uint8 array ``(N, 3072)``; a row is 1024 red, then 1024 green, then 1024 blue
  values, each channel a row-major 32x32 image, so ``row.reshape(3, 32, 32)`` is ``(C, H, W)``;
* ``b"labels"``: N ints in 0..9; ``b"batch_label"`` and ``b"filenames"`` are informational.

``batches.meta`` holds ``b"label_names"`` (the 10 class names).

Pickles can run arbitrary code, so every file is read with :class:`_CifarUnpickler`, which resolves
only the globals these files reference (numpy's array/dtype reconstruction, and the ``_codecs``
helper that Python 3 uses for bytes in protocol 2) and refuses everything else before it is called.
Every problem with the data is a one-line :class:`~archsearch.errors.ConfigError` on field
``data``.

:func:`to_sequence` flattens images into token sequences for sequential CIFAR (sCIFAR): grayscale
(1024 tokens, pixels row-major) or RGB (3072 tokens, pixel-major: r, g, b of pixel 0, then pixel 1).
"""

from __future__ import annotations

import io
import os
import pickle
import re
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from archsearch.errors import ConfigError

__all__ = ["CifarSplits", "load_cifar10", "to_sequence", "write_cifar_batch"]

FOLDER = "cifar-10-batches-py"
LABEL_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
LAYOUT = (
    f"the CIFAR-10 python release: a {FOLDER}/ folder with data_batch_1..5 and test_batch, "
    f"its parent folder, or cifar-10-python.tar.gz"
)
BATCH = "a CIFAR-10 batch (pickled dict: b'data' uint8 (N, 3072), b'labels' N ints in 0..9)"
_DATA_BATCH = re.compile(r"data_batch_(\d+)")
_PIXELS = 32 * 32
_ROW = 3 * _PIXELS
# ITU-R 601 luma weights, as in PIL's and MATLAB's rgb2gray.
_LUMA = (0.2989, 0.5870, 0.1140)


@dataclass(frozen=True)
class CifarSplits:
    """The train and test splits as ``(N, 3, 32, 32)`` uint8 images and int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str
    label_names: tuple[str, ...]


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for something that CIFAR-10 files never need."""


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes: latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _ForbiddenGlobal("it calls _codecs.encode with arguments other than (str, 'latin1')")
    return text.encode("latin-1")


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()`` as protocol-2 pickles use it for ``b""``; no arguments allowed."""
    if args:
        raise _ForbiddenGlobal("it calls bytes with arguments")
    return b""


_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's _reconstruct, whatever module it lives in
_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # files written with numpy 1.x
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # files written with numpy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes in protocol 2 as _codecs.encode(str, "latin1"), and b"" as bytes().
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and refuses every other global before calling it."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"it references {module + '.' + name!r}") from None


def _error(where: str, detail: str = "") -> ConfigError:
    allowed = f"{BATCH}; this file: {detail}" if detail else BATCH
    return ConfigError("data", where, allowed)


def _unpickle(where: str, stream: IO[bytes]) -> Any:
    try:
        return _CifarUnpickler(stream, encoding="bytes").load()
    except _ForbiddenGlobal as exc:
        raise _error(where, f"not a CIFAR-10 batch: {exc}") from None
    except Exception as exc:  # any malformed input: truncated, not a pickle, bad numpy state
        raise _error(where, f"not a readable pickle ({type(exc).__name__})") from None


def _field(obj: dict[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in obj:
            return obj[k]
    raise KeyError(key)


def _parse_batch(where: str, obj: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate one unpickled batch of ``size`` bytes (the file as stored, uncompressed);
    return ``(N, 3, 32, 32)`` uint8 and ``(N,)`` int64. Nothing is copied before the arrays'
    claimed sizes are checked against the file: a pickled array can be a view with zero
    strides over a few bytes that claims millions of images."""
    if not isinstance(obj, dict):
        raise _error(where, f"the pickle holds a {type(obj).__name__}, not a dict")
    try:
        data, labels = _field(obj, "data"), _field(obj, "labels")
    except KeyError as exc:
        raise _error(where, f"b{exc.args[0]!r} is missing") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _error(where, f"b'data' is {got}")
    if data.shape[1] != _ROW:
        raise _error(where, f"b'data' has {data.shape[1]} columns")
    _check_real_size(where, "b'data'", data, size)
    if isinstance(labels, np.ndarray):
        _check_real_size(where, "b'labels'", labels, size)
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise _error(where, f"b'labels' is a {type(labels).__name__}")
    try:
        y = np.asarray(labels)
    except ValueError:  # ragged nesting
        y = np.asarray([[]], dtype=object)
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iu"):
        raise _error(where, "b'labels' is not a list of ints")
    if len(y) != len(data):
        raise _error(where, f"{len(y)} labels for {len(data)} images")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise _error(where, "labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), y


def _check_real_size(where: str, what: str, arr: np.ndarray, size: int) -> None:
    """A pickled array's bytes are in the file: one that claims more than the file holds (a
    strided view over a short buffer) is refused before anything is allocated for it."""
    if arr.nbytes > size:
        raise _error(
            where,
            f"{what} claims {arr.shape[0]} rows ({arr.nbytes} bytes) but the file holds "
            f"{size} bytes",
        )


def _parse_meta(where: str, obj: Any) -> tuple[str, ...]:
    try:
        names = _field(obj, "label_names") if isinstance(obj, dict) else None
    except KeyError:
        names = None
    if not isinstance(names, list) or len(names) != 10:
        raise ConfigError("data", where, "batches.meta: a pickled dict with 10 b'label_names'")
    try:
        return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    except UnicodeDecodeError:
        raise ConfigError("data", where, "batches.meta: label names in UTF-8") from None


def _pick(source: str, names: Sequence[str]) -> tuple[list[str], str, str | None]:
    """Choose ``(data batches in numeric order, test batch, meta or None)`` from file names."""
    numbered = sorted(
        (int(m.group(1)), n) for n in names if (m := _DATA_BATCH.fullmatch(n)) is not None
    )
    if "test_batch" not in names:
        raise ConfigError("data", source, f"{LAYOUT} (test_batch is missing)")
    if not numbered:
        raise ConfigError("data", source, f"{LAYOUT} (no data_batch_* file)")
    return (
        [n for _, n in numbered],
        "test_batch",
        "batches.meta" if "batches.meta" in names else None,
    )


def _assemble(
    source: str,
    train: list[tuple[np.ndarray, np.ndarray]],
    test: tuple[np.ndarray, np.ndarray],
    label_names: tuple[str, ...] | None,
) -> CifarSplits:
    return CifarSplits(
        train_x=np.concatenate([x for x, _ in train]),
        train_y=np.concatenate([y for _, y in train]),
        test_x=np.ascontiguousarray(test[0]),
        test_y=test[1],
        source=source,
        label_names=label_names if label_names is not None else LABEL_NAMES,
    )


def _load_folder(source: str, folder: Path) -> CifarSplits:
    try:
        names = [p.name for p in folder.iterdir() if p.is_file()]
    except OSError as exc:
        raise ConfigError("data", source, f"{LAYOUT} (unreadable: {type(exc).__name__})") from None
    train_names, test_name, meta_name = _pick(source, names)

    def read(name: str) -> tuple[str, Any, int]:
        where = str(folder / name)
        try:
            with open(folder / name, "rb") as f:
                return where, _unpickle(where, f), os.fstat(f.fileno()).st_size
        except OSError as exc:
            raise _error(where, f"unreadable ({type(exc).__name__})") from None

    train = [_parse_batch(*read(n)) for n in train_names]
    test = _parse_batch(*read(test_name))
    meta = _parse_meta(*read(meta_name)[:2]) if meta_name else None
    return _assemble(source, train, test, meta)


def _load_tar(source: str, archive: Path) -> CifarSplits:
    try:
        with tarfile.open(archive, "r:*") as tar:
            files = {tuple(m.name.rpartition("/")[::2]): m for m in tar.getmembers() if m.isfile()}
            dirs = {folder for folder, name in files if name == "test_batch"}
            # The official archive has one top-level folder; prefer it if several hold batches.
            chosen = FOLDER if FOLDER in dirs else min(dirs, default="")
            members = {name: m for (folder, name), m in files.items() if folder == chosen}
            train_names, test_name, meta_name = _pick(source, list(members))

            def read(name: str) -> tuple[str, Any, int]:
                where = f"{archive}:{members[name].name}"
                stream = tar.extractfile(members[name])
                assert stream is not None  # regular files always have a stream
                with stream:
                    return where, _unpickle(where, stream), members[name].size

            train = [_parse_batch(*read(n)) for n in train_names]
            test = _parse_batch(*read(test_name))
            meta = _parse_meta(*read(meta_name)[:2]) if meta_name else None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        detail = f"unreadable archive: {type(exc).__name__}"
        raise ConfigError("data", source, f"{LAYOUT} ({detail})") from None
    return _assemble(source, train, test, meta)


def load_cifar10(path: str | Path) -> CifarSplits:
    """Load CIFAR-10 from the batches folder, its parent folder, or the official tarball.

    Reads every ``data_batch_<k>`` present (at least one, in numeric order) and ``test_batch``;
    label names come from ``batches.meta`` when it is there.
    """
    source = str(path)
    p = Path(path)
    if p.is_dir():
        return _load_folder(source, p / FOLDER if (p / FOLDER).is_dir() else p)
    if p.is_file():
        try:
            is_tar = tarfile.is_tarfile(p)
        except OSError:
            is_tar = False
        if is_tar:
            return _load_tar(source, p)
        raise ConfigError("data", source, f"{LAYOUT} (this is a file but not a tar archive)")
    raise ConfigError("data", source, f"{LAYOUT} (the path does not exist)")


def write_cifar_batch(
    path: str | Path,
    data: np.ndarray,
    labels: Sequence[int],
    *,
    batch_label: str = "synthetic",
) -> None:
    """Write one batch file in the official format (for tests and small synthetic sets).

    ``data`` is uint8 ``(N, 3072)`` in the official row layout or ``(N, 3, 32, 32)``.
    """
    arr = np.asarray(data)
    if (
        arr.dtype != np.uint8
        or arr.ndim not in (2, 4)
        or arr.shape[1:] not in ((_ROW,), (3, 32, 32))
    ):
        raise ConfigError("data", f"{arr.dtype} {arr.shape}", "uint8 (N, 3072) or (N, 3, 32, 32)")
    ys = list(labels)
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in ys)
    if not ints or len(ys) != len(arr) or any(not 0 <= v <= 9 for v in ys):
        raise ConfigError("labels", ys, f"{len(arr)} ints in 0..9")
    ys = [int(v) for v in ys]
    batch = {
        b"batch_label": batch_label.encode(),
        b"labels": ys,
        b"data": np.ascontiguousarray(arr.reshape(len(arr), _ROW)),
        b"filenames": [f"{batch_label}_{i:05d}.png".encode() for i in range(len(arr))],
    }
    buf = io.BytesIO()
    pickle.dump(batch, buf, protocol=2)
    Path(path).write_bytes(buf.getvalue())


def to_sequence(images: np.ndarray, mode: str = "gray") -> np.ndarray:
    """Flatten ``(N, 3, 32, 32)`` uint8 images to int64 token sequences for sCIFAR.

    ``"gray"``: ``(N, 1024)`` luminance ``round(0.2989 R + 0.5870 G + 0.1140 B)``, pixels
    row-major. ``"rgb"``: ``(N, 3072)`` pixel-major, so pixel ``(r, c)`` channel ``k`` is at
    ``3 * (32 * r + c) + k``.
    """
    if mode not in ("gray", "rgb"):
        raise ConfigError("scifar.mode", mode, "'gray' or 'rgb'")
    shape = images.shape if isinstance(images, np.ndarray) else None
    if shape is None or images.dtype != np.uint8 or len(shape) != 4 or shape[1:] != (3, 32, 32):
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images)
        raise ConfigError("scifar.images", got, "uint8 array (N, 3, 32, 32)")
    n = len(images)
    if mode == "rgb":
        return images.transpose(0, 2, 3, 1).reshape(n, 3 * _PIXELS).astype(np.int64)
    rgb = images.reshape(n, 3, _PIXELS).astype(np.float64)
    lum = _LUMA[0] * rgb[:, 0] + _LUMA[1] * rgb[:, 1] + _LUMA[2] * rgb[:, 2]
    return np.clip(np.rint(lum), 0, 255).astype(np.int64)
