"""Release gate binding shared by export and register: ship only the checkpoint the gate approved.

The gate stage always writes its report and exits 0 (the evidence is versioned); the release steps
are where a red, stale or edited gate blocks. The binding re-checks, it never trusts:

- the report must hold exactly the checks ``pipeline.gate`` writes (``RULES``), no more, no fewer;
- each check is recomputed from its value, bound, threshold and comparison by the rule the gate
  uses, the threshold is recomputed from the report's own ``thresholds``, and the report's own
  ``status``/``passed`` flags must agree with the recomputation;
- ``verdict`` must be ``approved`` and ``failed_checks``/``undecided_checks`` empty;
- the checkpoint is read once: those bytes are hashed against ``checkpoint_sha256`` and are the
  bytes the release steps load (``ApprovedGate.load_model``), so a file swapped after the check is
  never what ships. The gate report is likewise hashed from the bytes that were parsed.

Every problem is collected and raised once, as ``GateRefusal``.
"""

from __future__ import annotations

import hashlib
import math
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.reports import ReportError, parse_report, read_report_bytes

REQUIRED_KEYS = ("verdict", "checks", "failed_checks", "checkpoint_sha256", "thresholds")
_COMPARE = {"<=": operator.le, ">=": operator.ge}
_TOLERANCE = 1e-9  # JSON round trips floats exactly; this only absorbs the gate's own subtraction


class GateRefusal(RuntimeError):
    """The gate report does not approve this exact checkpoint; the message lists every reason."""


@dataclass(frozen=True)
class Rule:
    """How ``pipeline.gate`` judges one check (see its module docstring)."""

    comparison: str
    threshold: Callable[[dict[str, Any]], float]  # recomputed from the report's ``thresholds``
    judge: Callable[[float, float | None, float, str], str | None]  # a problem, or None when it passes


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _on_point(value: float, bound: float | None, threshold: float, comparison: str) -> str | None:
    if bound is not None:
        return f"bound is {bound!r}, but this check is judged on its point value (bound null)"
    if not _COMPARE[comparison](value, threshold):
        return f"value {value:.6g} is not {comparison} threshold {threshold:.6g}"
    return None


def _on_upper_bound(value: float, bound: float | None, threshold: float, comparison: str) -> str | None:
    """Worst case over attacks, ``<=``: passes when the upper bound meets the threshold."""
    if bound is None or not _number(bound):
        return f"bound is {bound!r}: this check is judged by its upper bound, a finite number"
    if value > bound + _TOLERANCE:
        return f"value {value:.6g} exceeds its own upper bound {bound:.6g}: the report is inconsistent"
    if not _COMPARE[comparison](bound, threshold):
        return f"upper bound {bound:.6g} is not {comparison} threshold {threshold:.6g}"
    return None


def _on_point_and_positive_lower_bound(value: float, bound: float | None, threshold: float,
                                       comparison: str) -> str | None:  # fmt: skip
    """``baseline_leaks``: the point meets the threshold and the lower bound is above zero."""
    if bound is None or not _number(bound):
        return f"bound is {bound!r}: this check needs its lower bound, a finite number"
    if bound > value + _TOLERANCE:
        return f"lower bound {bound:.6g} exceeds the value {value:.6g}: the report is inconsistent"
    if not _COMPARE[comparison](value, threshold):
        return f"value {value:.6g} is not {comparison} threshold {threshold:.6g}"
    if bound <= 0:
        return f"lower bound {bound:.6g} is not > 0: the baseline is not shown to leak"
    return None


def _threshold(key: str) -> Callable[[dict[str, Any]], float]:
    return lambda report: report["thresholds"][key]


def _leakage_limit(report: dict[str, Any]) -> float:
    """max_leakage_ratio x the baseline's worst-case leakage (point), as the gate computes it."""
    return report["thresholds"]["max_leakage_ratio"] * report["baseline_worst_case_leakage"]["value"]


# Exactly the checks pipeline/gate.py writes; tests/export/test_gate_binding.py holds the two in step.
RULES: dict[str, Rule] = {
    "baseline_leaks": Rule(">=", _threshold("min_baseline_leakage"), _on_point_and_positive_lower_bound),
    "leakage_ratio": Rule("<=", _leakage_limit, _on_upper_bound),
    "worst_case_attack_acc1": Rule("<=", _threshold("max_attack_acc1"), _on_upper_bound),
    "natural_accuracy_drop": Rule("<=", _threshold("max_accuracy_drop"), _on_point),
    "min_knn_distance": Rule(">=", _threshold("min_knn_distance"), _on_point),
}


@dataclass(frozen=True)
class ApprovedGate:
    """What the release steps record as provenance of an approved checkpoint, and its bytes."""

    report: dict[str, Any]
    report_path: Path
    report_sha256: str
    checkpoint_path: Path
    checkpoint_sha256: str
    checkpoint_bytes: bytes = field(repr=False, default=b"")

    @property
    def verdict(self) -> str:
        return str(self.report["verdict"])

    @property
    def natural_accuracy(self) -> float | None:
        return _optional_float(self.report.get("natural_accuracy"))

    @property
    def worst_case_acc1(self) -> float | None:
        return _optional_float(self.report.get("hardened_worst_case_acc1"))

    def load_model(self) -> tuple[Any, dict[str, Any]]:
        """The classifier and its metadata, from the very bytes whose hash the gate approved."""
        from pipeline.checkpoint import load_checkpoint_bytes

        return load_checkpoint_bytes(self.checkpoint_bytes, str(self.checkpoint_path))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _read_report(path: Path) -> tuple[dict[str, Any], str]:
    """The gate report and the sha256 of the very bytes it was parsed from; unreadable = refused."""
    try:
        data = read_report_bytes(path)
        return parse_report(data, path), hashlib.sha256(data).hexdigest()
    except ReportError as err:
        raise GateRefusal(f"gate report {err}") from err


def _check_problems(report: dict[str, Any]) -> list[str]:
    """Recompute every check; the report's own flags are compared, never believed."""
    checks = report.get("checks")
    if not isinstance(checks, list):
        return [f"checks must be a list, got {type(checks).__name__}"]
    problems: list[str] = []
    seen: dict[str, dict[str, Any]] = {}
    for i, check in enumerate(checks):
        name = check.get("name") if isinstance(check, dict) else None
        if not isinstance(name, str):
            problems.append(f"checks[{i}] has no string 'name'")
        elif name not in RULES:
            problems.append(f"checks[{i}] is {name!r}, which the gate does not write (expected {sorted(RULES)})")
        elif name in seen:
            problems.append(f"check {name!r} appears more than once")
        else:
            seen[name] = check
    missing = [name for name in RULES if name not in seen]
    if missing:
        what = "checks is empty" if not checks else "checks is incomplete"
        problems.append(f"{what}: missing {', '.join(missing)} (the gate writes {', '.join(RULES)})")
    for name, check in seen.items():
        problems += [f"check {name!r}: {p}" for p in _recheck(name, check, report)]
    return problems


def _recheck(name: str, check: dict[str, Any], report: dict[str, Any]) -> list[str]:
    rule = RULES[name]
    value, bound, threshold = check.get("value"), check.get("bound"), check.get("threshold")
    if not _number(value) or not _number(threshold):
        return [f"value {value!r} and threshold {threshold!r} must both be finite numbers"]
    if check.get("comparison") != rule.comparison:
        return [f"comparison is {check.get('comparison')!r}; the gate judges this check with {rule.comparison!r}"]
    problems = []
    try:
        expected = rule.threshold(report)
    except (KeyError, TypeError) as err:
        problems.append(f"cannot recompute its threshold from the report ({type(err).__name__}: {err})")
    else:
        if not _number(expected) or abs(expected - threshold) > _TOLERANCE:
            problems.append(f"threshold {threshold!r} differs from {expected!r} recomputed from 'thresholds'")
    failure = rule.judge(float(value), bound, float(threshold), rule.comparison)
    if failure is not None:
        claimed = " (the report says it passed)" if check.get("passed") is True else ""
        problems.append(failure + claimed)
    elif check.get("passed") is not True or check.get("status") != "pass":
        problems.append(
            f"recomputes as a pass, but the report says status={check.get('status')!r}, "
            f"passed={check.get('passed')!r}: the report is inconsistent"
        )
    return problems


def _consistency_problems(report: dict[str, Any]) -> list[str]:
    """Top-level numbers the promotion compares must equal the checks they came from."""
    checks = {c.get("name"): c for c in report.get("checks", []) if isinstance(c, dict)}
    problems = []
    acc1 = report.get("hardened_worst_case_acc1")
    check = checks.get("worst_case_attack_acc1", {})
    value = check.get("value")
    if acc1 is not None and _number(value) and (not _number(acc1) or abs(acc1 - value) > _TOLERANCE):
        problems.append(
            f"hardened_worst_case_acc1 {acc1!r} differs from check 'worst_case_attack_acc1' value {check['value']!r}"
        )
    natural, baseline = report.get("natural_accuracy"), report.get("baseline_natural_accuracy")
    check = checks.get("natural_accuracy_drop", {})
    if natural is not None and _number(check.get("value")):
        if not (_number(natural) and _number(baseline)):
            problems.append(
                f"natural_accuracy {natural!r} and baseline_natural_accuracy {baseline!r} must be finite numbers"
            )
        elif abs((baseline - natural) - check["value"]) > _TOLERANCE:
            problems.append(
                f"baseline_natural_accuracy - natural_accuracy = {baseline - natural!r} differs from check "
                f"'natural_accuracy_drop' value {check['value']!r}"
            )
    return problems


def report_problems(report: dict[str, Any], checkpoint_sha256: str, checkpoint_label: str) -> list[str]:
    """Every reason this report does not approve the checkpoint with ``checkpoint_sha256`` (empty: approved)."""
    problems = [f"missing key {key!r}" for key in REQUIRED_KEYS if key not in report]
    verdict = report.get("verdict")
    if "verdict" in report and verdict != "approved":
        deciding = report.get("deciding_attack")
        why = f" (deciding attack: {deciding})" if deciding else ""
        problems.append(f"verdict is {verdict!r}, not 'approved'{why}")
    for key in ("failed_checks", "undecided_checks"):
        listed = report.get(key, [])
        if not isinstance(listed, list):
            problems.append(f"{key} must be a list, got {type(listed).__name__}")
        elif listed:
            problems.append(f"{key} is not empty: {listed}")
    judged_sha = report.get("checkpoint_sha256")
    if "checkpoint_sha256" in report and judged_sha != checkpoint_sha256:
        problems.append(
            f"checkpoint_sha256 {judged_sha!r} does not match {checkpoint_label} (sha256 {checkpoint_sha256}): "
            "the checkpoint changed after it was judged; re-run the gate"
        )
    if "checks" in report:
        problems += _check_problems(report)
        problems += _consistency_problems(report)
    return problems


def require_approved(gate_path: str | os.PathLike, checkpoint_path: str | os.PathLike) -> ApprovedGate:
    """Return the approved gate for ``checkpoint_path`` (with its bytes) or raise ``GateRefusal``."""
    gate_path, checkpoint_path = Path(gate_path), Path(checkpoint_path)
    report, report_sha = _read_report(gate_path)
    if not checkpoint_path.is_file():
        raise GateRefusal(f"{checkpoint_path}: checkpoint not found")
    data = checkpoint_path.read_bytes()  # read once: hashed here, loaded from these bytes later
    actual_sha = hashlib.sha256(data).hexdigest()
    problems = report_problems(report, actual_sha, str(checkpoint_path))
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise GateRefusal(f"{gate_path}: refusing to release {checkpoint_path}:\n{listing}")
    return ApprovedGate(report, gate_path, report_sha, checkpoint_path, actual_sha, data)
