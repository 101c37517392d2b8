"""Atomic file output and hashing.

Every artifact the pipeline writes goes through here: a crash or a bad input never leaves a
half-written file behind, because data is written to a temporary file in the target directory and
then renamed over the destination (rename is atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_with(path: str | os.PathLike, writer: Callable[[IO[bytes]], None]) -> None:
    """Serialise with ``writer(file_object)`` into memory, then write atomically."""
    buffer = io.BytesIO()
    writer(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    atomic_write_with(path, lambda f: np.savez_compressed(f, **arrays))


def load_npz(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load an ``.npz`` without pickle and check it holds ``keys``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing} (has {npz.files})")
            return {k: npz[k] for k in keys}
    except (OSError, ValueError) as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path}: not a readable .npz file ({err})") from err


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-serialisable object (keys sorted), used as a params hash."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()
