"""Reader and writer for the IDX format (MNIST / Fashion-MNIST), plain or gzip-compressed.

The reader checks everything the header promises (magic, dtype, dims, payload size) because a
silently truncated download would otherwise surface much later as a cryptic reshape error.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from pipeline.data.errors import DataError
from pipeline.io import atomic_write_bytes

# IDX type code -> big-endian numpy dtype (the six codes of the format specification).
IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip file ({err})") from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` is decompressed) into a native-endian array of the header's shape."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or code not in IDX_DTYPES or ndim == 0:
        hint = " (looks gzip-compressed: name it *.gz)" if data[:2] == b"\x1f\x8b" else ""
        raise DataError(
            f"{path}: wrong IDX magic number {data[:4].hex()} (expected 0000 + type code "
            f"{sorted(hex(c) for c in IDX_DTYPES)} + ndim >= 1){hint}"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, needs {header_len} for {ndim} dims)")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual < expected:
        raise DataError(f"{path}: truncated payload: header dims {list(dims)} need {expected} bytes, found {actual}")
    if actual > expected:
        raise DataError(f"{path}: trailing bytes: header dims {list(dims)} need {expected} bytes, found {actual}")
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as IDX (gzip if the name ends in ``.gz``), atomically; used to build test data."""
    path = Path(path)
    array = np.asarray(array)
    big_endian = {np.dtype(v).newbyteorder("="): (code, v) for code, v in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in big_endian:
        raise DataError(f"{path}: dtype {array.dtype} has no IDX type code")
    if array.ndim == 0 or array.ndim > 255:
        raise DataError(f"{path}: cannot write a {array.ndim}-dim array as IDX")
    code, be_dtype = big_endian[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=be_dtype).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    atomic_write_bytes(path, payload)
