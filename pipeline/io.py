"""Atomic file output and hashing.

Every artifact the pipeline writes goes through here: a crash or a bad input never leaves a
half-written file behind, because data is written to a temporary file in the target directory and
then renamed over the destination (rename is atomic on POSIX within one filesystem).

Temporaries are named ``.<dest name>.<pid>.<random>.tmp`` and created like any other file (the
umask decides their mode, which the renamed artifact keeps). A process killed mid-write cannot
remove its temporary; ``remove_stale_temps`` does, for the writer whose pid is no longer running.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from pipeline.liveness import pid_running

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[1-9][0-9]{0,6})\.[0-9a-f]{8}\.tmp$")


def _new_temp(dest: Path, make: Callable[[Path], None]) -> Path:
    """A fresh ``.<name>.<pid>.<random>.tmp`` beside ``dest``, made by ``make`` (which fails if it exists)."""
    while True:
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            make(tmp)
        except FileExistsError:
            continue
        return tmp


def _create_file(path: Path) -> None:
    # 0o666 less the umask, as open() gives; mkstemp's fixed 0600 would end up on the artifact.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def temp_dir_beside(path: str | os.PathLike) -> Path:
    """A new empty folder next to ``path`` (mode from the umask) to build a whole tree in, then rename."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return _new_temp(dest, lambda tmp: tmp.mkdir(0o777))


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Under ``torchrun`` only rank 0 writes: the other ranks get a scratch path that is thrown away,
    so N processes of one stage leave one set of outputs (``pipeline.distributed``).
    """
    from pipeline.distributed import is_primary  # torch.distributed: only for writers that get this far

    if not is_primary():
        with tempfile.TemporaryDirectory(prefix="calor-worker-") as scratch:
            yield Path(scratch) / Path(path).name
        return
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(dest, _create_file)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temps(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove temporaries that killed writers left beside each path and anywhere inside it (a folder).

    Only those whose writer (the pid in the name) is no longer running on this machine: a stage
    sharing the folder and still writing keeps its file. Returns what was removed.
    """
    removed = []
    for path in map(Path, paths):
        candidates = list(path.parent.glob(".*.tmp"))
        if path.is_dir() and not path.is_symlink():
            candidates += path.rglob(".*.tmp")
        for candidate in candidates:
            match = _TEMP_NAME.match(candidate.name)
            if match is None or pid_running(int(match["pid"])) or candidate in removed:
                continue
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


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
