"""Release gate check shared by export and register: ship only the checkpoint the gate approved.

The gate stage always writes its report and exits 0 (the evidence is versioned); the release steps
are where a red or stale gate blocks. "Stale" means the checkpoint changed after it was judged, so
the report's ``checkpoint_sha256`` must equal the hash of the file we are about to ship.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.io import sha256_file

REQUIRED_KEYS = ("verdict", "checks", "checkpoint_sha256")


class GateRefusal(RuntimeError):
    """The gate report does not approve this exact checkpoint; the message lists every reason."""


@dataclass(frozen=True)
class ApprovedGate:
    """What the release steps record as provenance of an approved checkpoint."""

    report: dict[str, Any]
    report_path: Path
    report_sha256: str
    checkpoint_path: Path
    checkpoint_sha256: str

    @property
    def verdict(self) -> str:
        return str(self.report["verdict"])

    @property
    def natural_accuracy(self) -> float | None:
        return _optional_float(self.report.get("natural_accuracy"))

    @property
    def worst_case_acc1(self) -> float | None:
        return _optional_float(self.report.get("hardened_worst_case_acc1"))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _read_report(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise GateRefusal(f"{path}: gate report not found; run the gate stage first")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GateRefusal(f"{path}: gate report is not valid JSON ({err})") from err
    if not isinstance(report, dict):
        raise GateRefusal(f"{path}: gate report must be a JSON object, got {type(report).__name__}")
    return report


def require_approved(gate_path: str | os.PathLike, checkpoint_path: str | os.PathLike) -> ApprovedGate:
    """Return the approved gate for ``checkpoint_path`` or raise ``GateRefusal`` with all problems."""
    gate_path, checkpoint_path = Path(gate_path), Path(checkpoint_path)
    report = _read_report(gate_path)
    if not checkpoint_path.is_file():
        raise GateRefusal(f"{checkpoint_path}: checkpoint not found")
    actual_sha = sha256_file(checkpoint_path)

    problems = [f"missing key {key!r}" for key in REQUIRED_KEYS if key not in report]
    verdict = report.get("verdict")
    if "verdict" in report and verdict != "approved":
        deciding = report.get("deciding_attack")
        why = f" (deciding attack: {deciding})" if deciding else ""
        problems.append(f"verdict is {verdict!r}, not 'approved'{why}")
    judged_sha = report.get("checkpoint_sha256")
    if "checkpoint_sha256" in report and judged_sha != actual_sha:
        problems.append(
            f"checkpoint_sha256 {judged_sha!r} does not match {checkpoint_path} (sha256 {actual_sha}): "
            "the checkpoint changed after it was judged; re-run the gate"
        )
    checks = report.get("checks", [])
    if not isinstance(checks, list):
        problems.append(f"checks must be a list, got {type(checks).__name__}")
    else:
        failed = [c.get("name", "?") for c in checks if isinstance(c, dict) and c.get("passed") is not True]
        if failed and verdict == "approved":
            problems.append(f"verdict says approved but checks did not pass: {failed}")
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise GateRefusal(f"{gate_path}: refusing to release {checkpoint_path}:\n{listing}")
    return ApprovedGate(report, gate_path, sha256_file(gate_path), checkpoint_path, actual_sha)
