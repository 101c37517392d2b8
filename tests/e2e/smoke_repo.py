"""A copy of the repo on small IDX files with profiles applied: what both end-to-end tests start from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.config import deep_merge
from pipeline.profiles import apply_overlay, profile_overlay
from tests.fixtures_data import write_fake_fashion_mnist

REPO = Path(__file__).resolve().parents[2]
COPIED = [
    "pipeline", "stages", "profiles", "release", "dvc.yaml", "params.yaml", "pyproject.toml",
    "compare/dvc.yaml", "autoharden/dvc.yaml",
]  # fmt: skip


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a command to completion; a non-zero exit fails with the tail of its output."""
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def smoke_env(work: Path) -> dict[str, str]:
    """The environment `make repro` gives the stages: the venv's tools first, this copy importable."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(work),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@localhost",
        "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@localhost",
    }  # fmt: skip
    env.pop("MLFLOW_TRACKING_URI", None)  # the project's own SQLite store, as for a user
    return env


def build_smoke_repo(
    root: Path, profiles: list[str], learnable: bool = False, data: dict | None = None
) -> tuple[Path, dict[str, str]]:
    """Copy the project into ``root/repo``, write fake Fashion-MNIST (random, or learnable class templates),
    apply ``profiles`` and point ``data.root`` at the files; then ``git init`` and ``dvc init``.

    ``data`` replaces the fake Fashion-MNIST: an overlay of params the caller's own files need.

    The profiles go into the copy's params.yaml through the ``--set-param`` overrides that
    ``pipeline.driver --profile`` hands to ``dvc exp run`` (applied with DVC's code, comments kept).
    """
    work = root / "repo"
    work.mkdir()
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / name)
    if data is None:
        raw = root / "fashion"
        write_fake_fashion_mnist(raw, train_per_class=70, test_per_class=12, learnable=learnable)
        data = {"data": {"root": str(raw)}}
    env = smoke_env(work)
    overlay = deep_merge(profile_overlay(profiles, work / "profiles"), data)
    apply_overlay(work / "params.yaml", overlay, out=work / "params.yaml")
    run(["git", "init", "-q"], work, env)
    run(["dvc", "init", "-q"], work, env)
    # the Vega-Lite templates dvc.yaml's plots name (not the page: `dvc plots show --json` renders none)
    shutil.copytree(REPO / ".dvc/plots", work / ".dvc/plots", ignore=shutil.ignore_patterns("*.html"))
    return work, env
