"""CIFAR-10 python-format loader: pixel placement, layouts, one-line errors, safe unpickling."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from archsearch.errors import ConfigError
from archsearch.quality.cifar import (
    LABEL_NAMES,
    CifarSplits,
    load_cifar10,
    to_sequence,
    write_cifar_batch,
)

ROW, COL = 3, 5  # the marked pixel


def _images(n: int, seed: int) -> np.ndarray:
    """``n`` random images in the official flat layout ``(n, 3072)``."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _make_folder(root: Path, train: dict[str, int], test: int = 4) -> dict[str, tuple]:
    """Write ``cifar-10-batches-py`` under ``root`` and return what each file holds."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for seed, (name, n) in enumerate([*train.items(), ("test_batch", test)]):
        data = _images(n, seed)
        labels = [(seed + i) % 10 for i in range(n)]
        write_cifar_batch(folder / name, data, labels, batch_label=name)
        written[name] = (data, labels)
    return written


def _assert_one_line(exc: pytest.ExceptionInfo[ConfigError], path: Path | str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert exc.value.field == "data"


def test_round_trip_places_every_pixel(tmp_path):
    written = _make_folder(tmp_path, {"data_batch_1": 7, "data_batch_2": 5})
    splits = load_cifar10(tmp_path / "cifar-10-batches-py")
    assert isinstance(splits, CifarSplits)
    assert splits.train_x.shape == (12, 3, 32, 32) and splits.train_x.dtype == np.uint8
    assert splits.test_x.shape == (4, 3, 32, 32) and splits.test_x.dtype == np.uint8
    assert splits.train_y.dtype == np.int64 and splits.test_y.dtype == np.int64
    first, second = written["data_batch_1"][0], written["data_batch_2"][0]
    # Red channel first: flat index c * 1024 + row * 32 + col.
    for c in range(3):
        assert splits.train_x[2, c, ROW, COL] == first[2, c * 1024 + ROW * 32 + COL]
        assert splits.train_x[7 + 4, c, 31, 0] == second[4, c * 1024 + 31 * 32]
    np.testing.assert_array_equal(splits.test_x.reshape(4, -1), written["test_batch"][0])
    assert splits.label_names == LABEL_NAMES
    assert splits.source == str(tmp_path / "cifar-10-batches-py")


def test_labels_follow_numeric_batch_order(tmp_path):
    # data_batch_10 sorts before data_batch_2 as text; numeric order must win.
    written = _make_folder(tmp_path, {"data_batch_10": 3, "data_batch_2": 2})
    splits = load_cifar10(tmp_path)
    expected = written["data_batch_2"][1] + written["data_batch_10"][1]
    assert splits.train_y.tolist() == expected
    assert splits.test_y.tolist() == written["test_batch"][1]
    np.testing.assert_array_equal(splits.train_x[:2].reshape(2, -1), written["data_batch_2"][0])


def test_parent_folder_and_meta_label_names(tmp_path):
    _make_folder(tmp_path, {"data_batch_1": 2})
    names = [f"class{i}".encode() for i in range(10)]
    meta = {b"label_names": names, b"num_cases_per_batch": 2, b"num_vis": 3072}
    (tmp_path / "cifar-10-batches-py" / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    splits = load_cifar10(str(tmp_path))
    assert splits.label_names == tuple(f"class{i}" for i in range(10))
    assert splits.source == str(tmp_path)


def test_gzip_tarball_reads_members_without_extracting(tmp_path, monkeypatch):
    written = _make_folder(tmp_path / "src", {"data_batch_1": 7, "data_batch_2": 5})
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    splits = load_cifar10(archive)
    assert sorted(tmp_path.rglob("*")) == before
    assert splits.train_y.tolist() == written["data_batch_1"][1] + written["data_batch_2"][1]
    np.testing.assert_array_equal(splits.train_x[7:].reshape(5, -1), written["data_batch_2"][0])
    np.testing.assert_array_equal(splits.test_x.reshape(4, -1), written["test_batch"][0])


class _Py2Pickler(pickle._Pickler):
    """Writes every str and bytes as a Python 2 ``str`` (BINSTRING), like the official files."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str8(self, obj: str | bytes) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_str8
    dispatch[bytes] = _save_str8


def test_numpy1_python2_era_pickles_load(tmp_path):
    """The official files reference numpy.core.multiarray and hold Python 2 strings."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = _images(3, 7)
    for name in ("data_batch_1", "test_batch"):
        batch = {b"batch_label": b"x", b"labels": [1, 2, 3], b"data": data, b"filenames": []}
        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump(batch)
        blob = buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
        assert b"cnumpy.core.multiarray\n_reconstruct\n" in blob
        assert b"_codecs" not in blob
        (folder / name).write_bytes(blob)
    splits = load_cifar10(folder)
    np.testing.assert_array_equal(splits.train_x.reshape(3, -1), data)
    assert splits.test_y.tolist() == [1, 2, 3]


def test_writer_uses_the_official_format(tmp_path):
    data = _images(3, 0)
    write_cifar_batch(tmp_path / "b", data.reshape(3, 3, 32, 32), [0, 9, 4], batch_label="lbl")
    blob = (tmp_path / "b").read_bytes()
    assert blob[:2] == b"\x80\x02"  # protocol 2
    obj = pickle.loads(blob, encoding="bytes")
    assert set(obj) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert obj[b"batch_label"] == b"lbl" and obj[b"labels"] == [0, 9, 4]
    assert obj[b"data"].dtype == np.uint8 and obj[b"data"].shape == (3, 3072)
    np.testing.assert_array_equal(obj[b"data"], data)
    assert len(obj[b"filenames"]) == 3 and all(isinstance(f, bytes) for f in obj[b"filenames"])


@pytest.mark.parametrize(
    ("data", "labels"),
    [
        (np.zeros((2, 3072), np.float32), [0, 1]),
        (np.zeros((2, 3000), np.uint8), [0, 1]),
        (np.zeros((2, 3072), np.uint8), [0]),
        (np.zeros((2, 3072), np.uint8), [0, 10]),
        (np.zeros((2, 3072), np.uint8), [0, 1.5]),
    ],
    ids=["float", "columns", "count", "range", "non-int"],
)
def test_writer_rejects_bad_input(tmp_path, data, labels):
    with pytest.raises(ConfigError):
        write_cifar_batch(tmp_path / "b", data, labels)
    assert not (tmp_path / "b").exists()


def test_sequence_positions_gray_and_rgb():
    images = np.zeros((2, 3, 32, 32), np.uint8)
    images[1, :, ROW, COL] = (10, 20, 30)
    gray, rgb = to_sequence(images), to_sequence(images, "rgb")
    assert gray.shape == (2, 1024) and gray.dtype == np.int64
    assert rgb.shape == (2, 3072) and rgb.dtype == np.int64
    pixel = ROW * 32 + COL
    assert np.flatnonzero(gray[1]).tolist() == [pixel]
    assert gray[1, pixel] == round(0.2989 * 10 + 0.5870 * 20 + 0.1140 * 30)
    assert np.flatnonzero(rgb[1]).tolist() == [3 * pixel, 3 * pixel + 1, 3 * pixel + 2]
    assert rgb[1, 3 * pixel : 3 * pixel + 3].tolist() == [10, 20, 30]
    assert not gray[0].any() and not rgb[0].any()


def test_luminance_of_pure_colours():
    images = np.zeros((5, 3, 32, 32), np.uint8)
    for c in range(3):
        images[c, c] = 255
    images[3] = 255  # white: 0.9999 * 255 rounds to 255
    assert to_sequence(images)[:, 0].tolist() == [76, 150, 29, 255, 0]
    assert to_sequence(images, "rgb")[:3, :3].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]


def test_sequence_rejects_unknown_mode_and_shape():
    images = np.zeros((1, 3, 32, 32), np.uint8)
    with pytest.raises(ConfigError) as exc:
        to_sequence(images, "hsv")
    assert exc.value.field == "scifar.mode" and "\n" not in str(exc.value)
    with pytest.raises(ConfigError):
        to_sequence(np.zeros((1, 32, 32, 3), np.uint8))


def test_missing_path(tmp_path):
    path = tmp_path / "nowhere"
    with pytest.raises(ConfigError) as exc:
        load_cifar10(path)
    _assert_one_line(exc, path)


@pytest.mark.parametrize("missing", ["test_batch", "data_batch_1"])
def test_folder_without_required_batch(tmp_path, missing):
    _make_folder(tmp_path, {"data_batch_1": 2})
    (tmp_path / "cifar-10-batches-py" / missing).unlink()
    with pytest.raises(ConfigError) as exc:
        load_cifar10(tmp_path)
    _assert_one_line(exc, tmp_path)
    assert ("test_batch" if missing == "test_batch" else "data_batch_*") in str(exc.value)


def test_file_that_is_not_an_archive(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"definitely not gzip")
    with pytest.raises(ConfigError) as exc:
        load_cifar10(path)
    _assert_one_line(exc, path)


def _bad_batches() -> dict[str, bytes]:
    ok = np.zeros((2, 3072), np.uint8)
    cases = {
        "list": [ok, [0, 1]],
        "no_data": {b"labels": [0, 1]},
        "no_labels": {b"data": ok},
        "float": {b"data": ok.astype(np.float32), b"labels": [0, 1]},
        "columns": {b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]},
        "flat": {b"data": np.zeros(3072, np.uint8), b"labels": [0]},
        "count": {b"data": ok, b"labels": [0, 1, 2]},
        "range": {b"data": ok, b"labels": [0, 10]},
        "negative": {b"data": ok, b"labels": [-1, 0]},
        "strings": {b"data": ok, b"labels": [b"a", b"b"]},
        "scalar": {b"data": ok, b"labels": 3},
    }
    blobs = {k: pickle.dumps(v, protocol=2) for k, v in cases.items()}
    blobs["text"] = b"hello, this is not a pickle"
    blobs["truncated"] = pickle.dumps({b"data": ok, b"labels": [0, 1]}, protocol=2)[:-40]
    blobs["empty"] = b""
    return blobs


@pytest.mark.parametrize("name", sorted(_bad_batches()))
def test_malformed_batch_is_a_one_line_error(tmp_path, name):
    _make_folder(tmp_path, {"data_batch_1": 2, "data_batch_2": 2})
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    bad.write_bytes(_bad_batches()[name])
    with pytest.raises(ConfigError) as exc:
        load_cifar10(tmp_path)
    _assert_one_line(exc, bad)


def test_malformed_meta_is_a_one_line_error(tmp_path):
    _make_folder(tmp_path, {"data_batch_1": 2})
    meta = tmp_path / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps({b"label_names": [b"only-one"]}, protocol=2))
    with pytest.raises(ConfigError) as exc:
        load_cifar10(tmp_path)
    _assert_one_line(exc, meta)


def test_malformed_member_in_tarball_names_the_member(tmp_path):
    _make_folder(tmp_path / "src", {"data_batch_1": 2})
    (tmp_path / "src" / "cifar-10-batches-py" / "test_batch").write_bytes(b"junk")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(ConfigError) as exc:
        load_cifar10(archive)
    _assert_one_line(exc, f"{archive}:cifar-10-batches-py/test_batch")


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class _Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [_System, _Eval], ids=["os.system", "builtins.eval"])
@pytest.mark.parametrize("where", ["folder", "tarball"])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload, where):
    # The payload really does run under a plain pickle.load: the marker proves it.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(payload(probe), protocol=2))
    assert probe.exists()

    marker = tmp_path / "pwned"
    _make_folder(tmp_path / "src", {"data_batch_1": 2})
    evil = {b"data": payload(marker), b"labels": [0, 1], b"batch_label": b"x"}
    bad = tmp_path / "src" / "cifar-10-batches-py" / "test_batch"
    bad.write_bytes(pickle.dumps(evil, protocol=2))
    path: Path | str = tmp_path / "src"
    if where == "tarball":
        path = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        bad = f"{path}:cifar-10-batches-py/test_batch"
    with pytest.raises(ConfigError) as exc:
        load_cifar10(path)
    assert not marker.exists()
    _assert_one_line(exc, bad)
    assert "not a CIFAR-10 batch" in str(exc.value)


def test_codecs_encode_only_turns_latin1_text_into_bytes(tmp_path):
    _make_folder(tmp_path, {"data_batch_1": 2})
    # _codecs.encode("a", "rot13"): a codec call that the files never make.
    blob = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    assert pickle.loads(blob) == "n"  # sanity: the plain unpickler does run the codec
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(blob)
    with pytest.raises(ConfigError) as exc:
        load_cifar10(tmp_path)
    assert "not a CIFAR-10 batch" in str(exc.value)
