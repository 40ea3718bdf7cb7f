"""Malformed-input corpus, class 9: CIFAR-10 batches for ``archsearch train --task scifar``.

The pickles are built by hand from opcodes (standard library only, no numpy), so the corpus
can hold what no writer would make: arrays that claim millions of images over a few bytes
(a strided ``numpy.ndarray`` view with zero strides: a multi-GiB allocation if assembled),
globals the restricted unpickler must refuse, truncated and mistyped batches. Each must be one
line before anything large is allocated.

Importable on its own: :func:`cases` returns plain dicts ``{"id", "cls", "argv", "files",
"env", "expect"}``; ``{tmp}`` is the case's temporary folder.
"""

from __future__ import annotations

import pickle
import struct

CLS = 9
MODEL = """\
name: hcifar
d_model: 16
vocab_size: 256
max_seq_len: 1025
layers:
  - {repeat: 1, mixer: {kind: softmax, n_heads: 2}}
"""


def _str(s: str) -> bytes:
    b = s.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(b)]) + b


def _bytes(b: bytes) -> bytes:
    """bytes in protocol 3+ (numpy's own unpickler path accepts them too)."""
    return pickle.BINBYTES + struct.pack("<I", len(b)) + b


def _int(n: int) -> bytes:
    return pickle.LONG1 + bytes([8]) + n.to_bytes(8, "little", signed=True)


def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _tuple(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def _view(shape: tuple[int, ...], dtype: str, buf: bytes) -> bytes:
    """``numpy.ndarray(shape, dtype(dtype), buf, 0, strides=(0, ...))``: a view claiming
    ``prod(shape)`` items over ``len(buf)`` bytes."""
    dt = _global("numpy", "dtype") + _tuple(_str(dtype), pickle.NEWFALSE, pickle.NEWTRUE)
    dt += pickle.REDUCE
    args = _tuple(
        _tuple(*[_int(n) for n in shape]), dt, _bytes(buf), _int(0), _tuple(*[_int(0)] * len(shape))
    )
    return _global("numpy", "ndarray") + args + pickle.REDUCE


def _batch(data: bytes, labels: bytes) -> bytes:
    """A protocol-3 pickle of ``{b"data": data, b"labels": labels}``."""
    body = pickle.EMPTY_DICT + pickle.MARK
    body += _bytes(b"data") + data + _bytes(b"labels") + labels + pickle.SETITEMS
    return pickle.PROTO + bytes([3]) + body + pickle.STOP


def _list_of_zeros(n: int) -> bytes:
    return pickle.EMPTY_LIST + pickle.MARK + b"K\x00" * n + pickle.APPENDS


def _batches() -> dict[str, tuple[bytes, str]]:
    """name -> (batch file bytes, what the error line must mention)."""
    huge = [1_000_000, 3_000_000, 50_000_000, 2**40]
    out: dict[str, tuple[bytes, str]] = {}
    for n in huge:
        out[f"zero-stride-{n}"] = (
            _batch(_view((n, 3072), "u1", b"\x07"), _view((n,), "<i8", b"\0" * 8)),
            "claims",
        )
        out[f"zero-stride-list-labels-{n}"] = (
            _batch(_view((n, 3072), "u1", b"\x07"), _list_of_zeros(4)),
            "claims",
        )
    out["labels-claim"] = (
        _batch(_view((1, 3072), "u1", b"\0" * 3072), _view((10**9,), "<i8", b"\0" * 8)),
        "claims",
    )
    out["forbidden-global"] = (
        pickle.PROTO + b"\x02" + _global("os", "system") + _tuple(_str("true")) + b"R.",
        "os.system",
    )
    out["builtins-eval"] = (
        pickle.PROTO + b"\x02" + _global("builtins", "eval") + _tuple(_str("1")) + b"R.",
        "eval",
    )
    out["not-a-dict"] = (pickle.PROTO + b"\x02" + _list_of_zeros(3) + pickle.STOP, "not a dict")
    out["no-labels"] = (
        pickle.PROTO + b"\x03" + pickle.EMPTY_DICT + _bytes(b"data") + _int(1) + b"s.",
        "missing",
    )
    out["truncated"] = (_batch(_view((10, 3072), "u1", b"\0"), _list_of_zeros(10))[:40], "pickle")
    out["empty"] = (b"", "pickle")
    out["wrong-columns"] = (
        _batch(_view((2, 100), "u1", b"\0" * 200), _list_of_zeros(2)),
        "columns",
    )
    out["wrong-dtype"] = (
        _batch(_view((2, 3072), "<f4", b"\0" * 4), _list_of_zeros(2)),
        "b'data'",
    )
    return out


def cases() -> list[dict]:
    out = []
    for name, (batch, expect) in _batches().items():
        for where, files in (
            ("train", {"c/data_batch_1": batch, "c/test_batch": _ok_batch()}),
            ("test", {"c/data_batch_1": _ok_batch(), "c/test_batch": batch}),
        ):
            out.append(
                {
                    "id": f"cifar-{name}-{where}",
                    "cls": CLS,
                    "argv": ["train", "{tmp}/m.yaml", "--task", "scifar", "--data", "{tmp}/c"]
                    + ["--budget-steps", "1", "-o", "{tmp}/out"],
                    "files": {"m.yaml": MODEL, **files},
                    "env": {},
                    "expect": expect,
                }
            )
    return out


def _ok_batch() -> bytes:
    """Two real (tiny) images: the other file of each case is fine."""
    row = bytes(range(256)) * 12
    arr = _global("numpy", "ndarray") + _tuple(
        _tuple(_int(2), _int(3072)),
        _global("numpy", "dtype") + _tuple(_str("u1"), pickle.NEWFALSE, pickle.NEWTRUE) + b"R",
        _bytes(row * 2),
    )
    return _batch(arr + pickle.REDUCE, _list_of_zeros(2))
