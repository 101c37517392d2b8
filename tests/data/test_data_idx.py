"""IDX reader/writer: round trips and every way a file can be broken."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from pipeline.data import DataError, read_idx, write_idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-3, 0, 7], dtype=np.int8),
        np.array([[1, -2], [300, 4]], dtype=np.int16),
        np.array([70000, -1], dtype=np.int32),
        np.array([0.5, -1.25], dtype=np.float32),
        np.array([[1e300]], dtype=np.float64),
    ],
    ids=["u8", "i8", "i16", "i32", "f32", "f64"],
)
def test_round_trip(tmp_path, array, suffix):
    path = tmp_path / f"x-idx{suffix}"
    write_idx(path, array)
    out = read_idx(path)
    assert out.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


def test_gz_file_is_really_gzip(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((2, 2), dtype=np.uint8))
    assert gzip.decompress(path.read_bytes())[:4] == bytes([0, 0, 8, 2])


def _raw(tmp_path, data: bytes, name="bad-idx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_missing_file(tmp_path):
    path = tmp_path / "nope.gz"
    with pytest.raises(DataError, match="file not found") as info:
        read_idx(path)
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, ValueError)


def test_truncated_gzip(tmp_path):
    good = tmp_path / "good.gz"
    write_idx(good, np.arange(1000, dtype=np.uint8).reshape(10, 100))
    path = _raw(tmp_path, good.read_bytes()[:-20], "cut.gz")
    with pytest.raises(DataError, match="gzip") as info:
        read_idx(path)
    assert str(info.value).startswith(str(path))


def test_corrupt_gzip(tmp_path):
    path = _raw(tmp_path, b"this is not gzip at all", "junk.gz")
    with pytest.raises(DataError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "header",
    [bytes([1, 0, 8, 1]), bytes([0, 0, 7, 1]), bytes([0, 0, 8, 0]), b"\x1f\x8b\x08\x00"],
    ids=["nonzero-first-bytes", "bad-dtype-code", "zero-ndim", "gzip-without-suffix"],
)
def test_wrong_magic(tmp_path, header):
    path = _raw(tmp_path, header + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match="magic") as info:
        read_idx(path)
    assert str(info.value).startswith(str(path))


def test_too_short_for_header(tmp_path):
    path = _raw(tmp_path, b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        read_idx(path)


def test_truncated_dims(tmp_path):
    path = _raw(tmp_path, bytes([0, 0, 8, 3]) + struct.pack(">I", 5))
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated_payload(tmp_path, suffix):
    data = bytes([0, 0, 8, 2]) + struct.pack(">II", 3, 4) + bytes(11)
    path = tmp_path / f"short{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    with pytest.raises(DataError, match="truncated payload.*12 bytes, found 11") as info:
        read_idx(path)
    assert str(info.value).startswith(str(path))


def test_trailing_bytes(tmp_path):
    path = _raw(tmp_path, bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + bytes(9))
    with pytest.raises(DataError, match="trailing bytes.*8 bytes, found 9"):
        read_idx(path)


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(DataError, match="no IDX type code"):
        write_idx(tmp_path / "x", np.zeros(2, dtype=np.int64))
    assert list(tmp_path.iterdir()) == []
