"""The release gate: does the hardened model give its private classes away?

Every check is evaluated and reported (value, threshold, passed); none short-circuits another.
The verdict is ``inconclusive`` when the suite's strongest attack does not break the *undefended*
baseline — a gate that cannot break the baseline proves nothing about the hardened model —
otherwise ``approved`` if all checks pass and ``rejected`` if any fails. The gate always writes its
report; ``--strict`` (stage flag) turns a non-approved verdict into a non-zero exit for CI.
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import Field

from pipeline.config import Section

VERDICTS = ("approved", "rejected", "inconclusive")


class GateSection(Section):
    max_accuracy_drop: float = Field(ge=0, le=1)
    max_attack_acc1: float = Field(ge=0, le=1)
    min_knn_distance: float = Field(ge=0)
    min_baseline_attack_acc: float = Field(ge=0, le=1)


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    threshold: float
    comparison: str  # "<=" or ">="
    passed: bool
    detail: str = ""


_COMPARE = {"<=": operator.le, ">=": operator.ge}


def _check(name: str, value: float, comparison: str, threshold: float, detail: str = "") -> Check:
    return Check(name, float(value), float(threshold), comparison, bool(_COMPARE[comparison](value, threshold)), detail)


def worst_case(attack_report: dict[str, Any], metric: str = "acc1") -> tuple[str, dict[str, Any]]:
    """The attack with the highest mean ``metric`` (over seeds) in an attack report."""
    attacks = attack_report["attacks"]
    if not attacks:
        raise ValueError("attack report lists no attacks: the gate cannot judge an empty suite")
    name = max(attacks, key=lambda a: attacks[a][metric]["mean"])
    return name, attacks[name]


def evaluate_gate(
    thresholds: GateSection,
    baseline_attacks: dict[str, Any],
    hardened_attacks: dict[str, Any],
    harden_report: dict[str, Any],
    checkpoint_sha256: str,
) -> dict[str, Any]:
    """Run every check and return the gate report (see module docstring for the verdict rule)."""
    base_name, base_worst = worst_case(baseline_attacks)
    hard_name, hard_worst = worst_case(hardened_attacks)
    closest_name = min(
        hardened_attacks["attacks"], key=lambda a: hardened_attacks["attacks"][a]["knn_distance"]["mean"]
    )
    closest_knn = hardened_attacks["attacks"][closest_name]["knn_distance"]["mean"]
    drop = harden_report["baseline_natural_accuracy"] - harden_report["natural_accuracy"]
    checks = [
        _check("baseline_broken", base_worst["acc1"]["mean"], ">=", thresholds.min_baseline_attack_acc,
               f"strongest attack on the undefended baseline: {base_name}"),
        _check("natural_accuracy_drop", drop, "<=", thresholds.max_accuracy_drop,
               "baseline minus hardened natural accuracy on the private test split"),
        _check("worst_case_attack_acc1", hard_worst["acc1"]["mean"], "<=", thresholds.max_attack_acc1,
               f"strongest attack on the hardened model: {hard_name}"),
        _check("min_knn_distance", closest_knn, ">=", thresholds.min_knn_distance,
               f"closest reconstructions to private training images: {closest_name}"),
    ]  # fmt: skip
    if not checks[0].passed:
        verdict = "inconclusive"
    else:
        verdict = "approved" if all(c.passed for c in checks[1:]) else "rejected"
    failed = [c.name for c in checks if not c.passed]
    return {
        "verdict": verdict,
        "failed_checks": failed,
        "checks": [asdict(c) for c in checks],
        "baseline_worst_case_acc1": base_worst["acc1"]["mean"],
        "baseline_deciding_attack": base_name,
        "hardened_worst_case_acc1": hard_worst["acc1"]["mean"],
        "deciding_attack": hard_name,
        "deciding_loss": hard_worst.get("loss"),
        "natural_accuracy": harden_report["natural_accuracy"],
        "baseline_natural_accuracy": harden_report["baseline_natural_accuracy"],
        "natural_accuracy_drop": drop,
        "checkpoint_sha256": checkpoint_sha256,
        "thresholds": thresholds.model_dump(),
    }
