"""The release half end to end: an approving gate on its evidence → export → MLflow champion → served.

The smoke_release profile (on learnable synthetic data) hardens with a model that learns nothing, so
the gate approves on the attacks' evidence rather than on edited reports; then `make repro`'s driver
runs release/dvc.yaml, the champion alias is set, and the server started from
``models:/<name>@champion`` answers tritonclient requests with the checkpoint's top-1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.e2e.smoke_repo import build_smoke_repo, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    work, env = build_smoke_repo(tmp_path_factory.mktemp("release"), ["smoke", "smoke_release"], learnable=True)
    run([sys.executable, "-m", "pipeline.driver"], work, env)
    return work, env


def test_the_gate_approves_on_its_evidence(released):
    work, _ = released
    gate = json.loads((work / "reports/gate.json").read_text())
    assert gate["verdict"] == "approved", gate["verdict_reason"]
    assert gate["failed_checks"] == [] and all(c["status"] == "pass" for c in gate["checks"])
    baseline_leaks = next(c for c in gate["checks"] if c["name"] == "baseline_leaks")
    assert baseline_leaks["bound"] > 0  # the suite did show the undefended baseline leaking
