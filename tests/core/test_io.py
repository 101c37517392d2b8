"""Atomic writes: modes follow the umask, and a stage's start removes what a killed writer left."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.export.onnx_export import TensorSpec
from pipeline.export.triton import write_repository
from pipeline.io import atomic_path, atomic_write_bytes, atomic_write_json, remove_stale_temps
from pipeline.stage_utils import stage_parser

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomically_written_files_follow_the_umask(tmp_path, mask, expected):
    with umask(mask):
        atomic_write_json(tmp_path / "report.json", {"a": 1})
        atomic_write_bytes(tmp_path / "sub" / "blob.bin", b"x")
    assert mode(tmp_path / "report.json") == expected
    assert mode(tmp_path / "sub" / "blob.bin") == expected


def test_a_triton_repository_follows_the_umask(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    with umask(0o022):
        write_repository(tmp_path / "triton", "clf", {"onnx": tmp_path / "m.onnx"}, [TensorSpec("input", (1, 4, 4))],
                         [TensorSpec("logits", (3,))], max_batch_size=4, max_queue_delay_us=100)  # fmt: skip
    assert mode(tmp_path / "triton") == 0o755
    assert mode(tmp_path / "triton" / "clf" / "config.pbtxt") == 0o644


def test_the_temporary_is_named_after_the_file_and_the_writing_process(tmp_path):
    with atomic_path(tmp_path / "model.pt") as tmp:
        assert re.fullmatch(rf"\.model\.pt\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp", tmp.name)
        assert tmp.parent == tmp_path
        tmp.write_bytes(b"weights")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    assert (tmp_path / "a.bin").read_bytes() == b"old"


KILLED_WRITER = """
import os, signal, sys
from pipeline.io import atomic_path, temp_dir_beside
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a report")
    (temp_dir_beside(sys.argv[2]) / "model.onnx").write_bytes(b"half a repository")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_writer(file: Path, folder: Path) -> None:
    """A writer SIGKILLed inside an atomic write: its finally never runs, its temporaries stay."""
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(file), str(folder)], cwd=REPO)
    assert result.returncode == -9


def test_a_stage_start_removes_what_a_killed_predecessor_left(tmp_path):
    reports, models = tmp_path / "reports", tmp_path / "models" / "prior"
    killed_writer(reports / "harden.json", tmp_path / "models" / "triton")
    killed_writer(models / "generator.pt", models / "cache")  # inside a folder output
    left = sorted(p.name for p in [*reports.iterdir(), *(tmp_path / "models").iterdir(), *models.iterdir()])
    assert len([n for n in left if n.endswith(".tmp")]) == 4, left

    parser = stage_parser("a stage", "data", "out", "report")
    parser.parse_args(
        ["--data", str(tmp_path / "data"), "--out", str(models), "--report", str(reports / "harden.json")]
    )
    assert sorted(p.name for p in reports.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["prior"]
    assert sorted(p.name for p in models.iterdir()) == []


def test_temporaries_of_running_writers_and_other_files_are_kept(tmp_path):
    reports = tmp_path / "reports"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_other = reports / f".attack.json.{sleeper.pid}.0123abcd.tmp"
        foreign = [reports / ".notes.tmp", reports / ".harden.json.abcd_123.tmp", reports / "gate.json"]
        reports.mkdir()
        for path in [live_other, *foreign]:
            path.write_text("x")
        with atomic_path(reports / "harden.json") as own:
            own.write_text("in progress")
            assert remove_stale_temps([reports / "harden.json", reports]) == []
            assert own.exists() and live_other.exists() and all(p.exists() for p in foreign)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert remove_stale_temps([reports / "harden.json"]) == [live_other]  # its writer is gone now
