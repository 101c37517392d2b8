"""The release gate: does the hardened model give its private classes away, beyond what it cannot help?

What is measured is *leakage over a floor*. For every attack of the suite, Acc@1 is the judge's
accuracy on all reconstructions pooled over attack seeds (``acc1_pooled``: correct / n) with a Wilson
interval; the floor is the same suite run against a model that knows nothing of the private classes
(an untrained target, or the public-only reference), also with a Wilson interval; leakage is
Acc@1(model) - Acc@1(floor) with Newcombe's hybrid score interval (``pipeline.stats``). One floor
report serves both models. The worst-case leakage of a model is that of the attack with the highest
point leakage.

Every check is evaluated and reported with its point value, the bound it is judged by and a status:
``pass`` when the bound is on the right side of the threshold, ``fail`` when even the opposite bound
is on the wrong side, ``undecided`` when the interval straddles the threshold (the sampling error is
too large to tell). Checks without an interval (accuracy drop, KNN distance) only pass or fail.

- ``baseline_leaks``: the baseline's worst-case leakage >= ``min_baseline_leakage`` (point; else fail)
  and its lower bound > 0 (else undecided). A suite that cannot show the *undefended* baseline leaking
  proves nothing about the hardened model.
- ``leakage_ratio``: hardened worst-case leakage, upper bound <= ``max_leakage_ratio`` x the baseline's
  worst-case leakage (point).
- ``worst_case_attack_acc1``: hardened worst-case Acc@1, upper bound <= ``max_attack_acc1``.
- ``natural_accuracy_drop``: baseline minus hardened natural accuracy <= ``max_accuracy_drop``.
- ``min_knn_distance``: the hardened model's closest reconstructions >= ``min_knn_distance``. The
  threshold depends on the judge and the data (``bench/knn_threshold.py`` derives it); a profile for
  new data leaves it null until it is measured, and the check is then ``undecided``.

For a worst case (a max over attacks) the upper bound used is the max over attacks of each attack's
upper bound, and the opposite (lower) bound the max of the lower bounds; each is a per-attack
interval, with no correction for the number of attacks. The check names the attack whose bound
decided its status.

Verdict: ``inconclusive`` unless ``baseline_leaks`` passes; else ``rejected`` if any check fails; else
``inconclusive`` if any is undecided (more reconstructions needed; ``verdict_reason`` names them);
else ``approved``. The gate always writes its report; ``--strict`` (stage flag) turns a non-approved
verdict into a non-zero exit for CI.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from pipeline.config import Section
from pipeline.stats import NEWCOMBE, WILSON, Interval, newcombe, wilson

VERDICTS = ("approved", "rejected", "inconclusive")
STATUSES = ("pass", "fail", "undecided")
MODELS = ("baseline", "hardened")


class GateSection(Section):
    min_baseline_leakage: float = Field(ge=0, le=1, allow_inf_nan=False)
    max_leakage_ratio: float = Field(ge=0, le=1, allow_inf_nan=False)
    max_attack_acc1: float = Field(ge=0, le=1, allow_inf_nan=False)
    max_accuracy_drop: float = Field(ge=0, le=1, allow_inf_nan=False)
    min_knn_distance: float | None = Field(ge=0, allow_inf_nan=False)  # null = not yet calibrated: undecided
    confidence: float = Field(gt=0, lt=1, allow_inf_nan=False)


@dataclass(frozen=True)
class Check:
    name: str
    value: float  # point estimate
    bound: float | None  # the bound the status is judged by; None = judged on the point
    threshold: float | None  # None: the owners have not set it for this data (the check is undecided)
    comparison: Literal["<=", ">="]
    status: Literal["pass", "fail", "undecided"]
    attack: str | None  # the attack whose number decided the status
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "value": self.value, "bound": self.bound, "threshold": self.threshold,
            "comparison": self.comparison, "status": self.status, "passed": self.passed, "attack": self.attack,
            "detail": self.detail,
        }  # fmt: skip


_COMPARE = {"<=": operator.le, ">=": operator.ge}


def _status(comparison: str, threshold: float, bound: float, opposite: float) -> str:
    """``pass`` if ``bound`` meets the threshold, ``fail`` if even ``opposite`` misses it, else undecided."""
    meets = _COMPARE[comparison]
    if meets(bound, threshold):
        return "pass"
    return "undecided" if meets(opposite, threshold) else "fail"


def _point_check(name: str, value: float, comparison: Literal["<=", ">="], threshold: float | None,
                 attack: str | None, detail: str) -> Check:  # fmt: skip
    if threshold is None:
        detail = f"{detail}; no threshold set for this judge and data: run bench/knn_threshold.py and set gate.{name}"
        return Check(name, float(value), None, None, comparison, "undecided", attack, detail)
    status = "pass" if _COMPARE[comparison](value, threshold) else "fail"
    return Check(name, float(value), None, float(threshold), comparison, status, attack, detail)


def worst_case(attack_report: dict[str, Any], metric: str = "acc1") -> tuple[str, dict[str, Any]]:
    """The attack with the highest mean ``metric`` (over seeds) in an attack report."""
    attacks = attack_report["attacks"]
    if not attacks:
        raise ValueError("attack report lists no attacks: the gate cannot judge an empty suite")
    name = max(attacks, key=lambda a: attacks[a][metric]["mean"])
    return name, attacks[name]


# ---- reading the reports: every problem collected, one ValueError ------------------------------------


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pooled(report: Any, label: str, problems: list[str]) -> dict[str, tuple[int, int]]:
    """Per attack: (judged-correct reconstructions, all reconstructions), pooled over attack seeds."""
    attacks = report.get("attacks") if isinstance(report, dict) else None
    if not isinstance(attacks, dict):
        problems.append(f"{label}: has no 'attacks' mapping")
        return {}
    if not attacks:
        problems.append(f"{label} lists no attacks: the gate cannot judge an empty suite")
        return {}
    counts = {}
    for name, row in attacks.items():
        pooled = row.get("acc1_pooled") if isinstance(row, dict) else None
        if not isinstance(pooled, dict):
            problems.append(f"{label}: attack {name!r} has no 'acc1_pooled' {{correct, n}}; re-run its attack stage")
            continue
        correct, n = pooled.get("correct"), pooled.get("n")
        if not (_is_count(correct) and _is_count(n)):
            problems.append(
                f"{label}: attack {name!r} acc1_pooled needs non-negative integer counts, "
                f"got correct={correct!r}, n={n!r}"
            )
        elif n == 0:
            problems.append(f"{label}: attack {name!r} acc1_pooled.n is 0: no reconstructions were judged")
        elif correct > n:
            problems.append(f"{label}: attack {name!r} acc1_pooled.correct = {correct} exceeds n = {n}")
        else:
            counts[name] = (correct, n)
    return counts


def _knn(report: dict[str, Any], label: str, problems: list[str]) -> dict[str, float]:
    distances: dict[str, float] = {}
    attacks = report.get("attacks")
    for name, row in attacks.items() if isinstance(attacks, dict) else ():
        value = row.get("knn_distance", {}).get("mean") if isinstance(row, dict) else None
        if not _finite(value):
            problems.append(f"{label}: attack {name!r} knn_distance.mean is {value!r}, not a finite number")
        else:
            distances[name] = float(value)
    return distances


def _same_attacks(counts: dict[str, dict[str, tuple[int, int]]], problems: list[str]) -> None:
    base, hard, floor = (set(counts[k]) for k in ("baseline attack report", "hardened attack report",
                                                     "floor attack report"))  # fmt: skip
    for name in sorted(base - hard):
        problems.append(f"attack {name!r} is in the baseline attack report but missing from the hardened one")
    for name in sorted(hard - base):
        problems.append(f"attack {name!r} is in the hardened attack report but missing from the baseline one")
    for name in sorted((base | hard) - floor):
        problems.append(f"attack {name!r} is missing from the floor attack report (it has {sorted(floor)})")
    for name in sorted(floor - base - hard):
        problems.append(f"floor attack report has attack {name!r}, which neither model was attacked with")


def _read_inputs(
    baseline_attacks: dict[str, Any], hardened_attacks: dict[str, Any], floor_attacks: dict[str, Any],
    harden_report: dict[str, Any],
) -> tuple[dict[str, dict[str, tuple[int, int]]], dict[str, float]]:  # fmt: skip
    problems: list[str] = []
    reports = {"baseline attack report": baseline_attacks, "hardened attack report": hardened_attacks,
               "floor attack report": floor_attacks}  # fmt: skip
    counts = {label: _pooled(report, label, problems) for label, report in reports.items()}
    if not problems:  # names are only comparable once every report could be read
        _same_attacks(counts, problems)
    knn = _knn(hardened_attacks, "hardened attack report", problems) if isinstance(hardened_attacks, dict) else {}
    for key in ("natural_accuracy", "baseline_natural_accuracy"):
        value = harden_report.get(key) if isinstance(harden_report, dict) else None
        if not _finite(value):
            problems.append(f"harden report: {key} is {value!r}, not a finite number")
    if problems:
        raise ValueError("the gate cannot judge these reports:\n" + "\n".join(f"  - {p}" for p in problems))
    return counts, knn


# ---- the evidence --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """One attack on one model: its Acc@1 (Wilson) and its leakage over the floor (Newcombe)."""

    acc1: Interval
    leakage: Interval


def _evidence(
    counts: dict[str, tuple[int, int]], floor: dict[str, tuple[int, int]], confidence: float
) -> dict[str, Evidence]:
    return {
        name: Evidence(wilson(k, n, confidence), newcombe(k, n, *floor[name], confidence))
        for name, (k, n) in counts.items()
    }


def _argmax(evidence: dict[str, Evidence], key: Callable[[Evidence], float]) -> tuple[float, str]:
    name = max(evidence, key=lambda a: key(evidence[a]))  # first in suite order on ties
    return key(evidence[name]), name


def _interval(interval: Interval, counts: tuple[int, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = interval.as_dict()
    if counts is not None:
        out.update(correct=counts[0], n=counts[1])
    return out


def _worst_leakage(evidence: dict[str, Evidence]) -> dict[str, Any]:
    _, name = _argmax(evidence, lambda e: e.leakage.value)
    return {**evidence[name].leakage.as_dict(), "attack": name}


def _per_attack(
    evidence: dict[str, dict[str, Evidence]], counts: dict[str, dict[str, tuple[int, int]]], confidence: float
) -> dict[str, Any]:
    """gate.json's ``attacks``: per attack, the floor's Acc@1 and each model's Acc@1 and leakage."""
    floor = counts["floor attack report"]
    table = {}
    for name in evidence["hardened"]:
        row: dict[str, Any] = {"floor_acc1": _interval(wilson(*floor[name], confidence), floor[name])}
        for model in MODELS:
            found = evidence[model][name]
            row[model] = {"acc1": _interval(found.acc1, counts[f"{model} attack report"][name]),
                          "leakage": _interval(found.leakage)}  # fmt: skip
        table[name] = row
    return table


def _bounded_check(
    name: str, evidence: dict[str, Evidence], metric: Callable[[Evidence], Interval], threshold: float,
    detail: str,
) -> Check:  # fmt: skip
    """A ``<=`` check on the worst case over attacks of ``metric``, judged by the max of upper bounds."""
    value, _ = _argmax(evidence, lambda e: metric(e).value)
    upper, upper_attack = _argmax(evidence, lambda e: metric(e).upper)
    lower, lower_attack = _argmax(evidence, lambda e: metric(e).lower)
    status = _status("<=", threshold, upper, lower)
    attack = lower_attack if status == "fail" else upper_attack
    decided = f"lower bound {lower:.3f} ({lower_attack})" if status == "fail" else f"upper bound {upper:.3f}"
    return Check(name, value, upper, threshold, "<=", status, attack, f"{detail}; decided by the {decided}")


def _baseline_leaks(worst: dict[str, Any], threshold: float, conf: str) -> Check:
    """The one check judged on its point against the threshold *and* its lower bound against zero: it
    fails when the point is below the threshold, and is undecided when only the lower bound is <= 0."""
    status = "fail" if worst["value"] < threshold else "pass" if worst["lower"] > 0 else "undecided"
    detail = (
        f"worst-case leakage (Acc@1 - floor) on the undefended baseline, {conf} Newcombe interval "
        f"[{worst['lower']:.3f}, {worst['upper']:.3f}]; passes when the point is >= the threshold and the lower "
        "bound > 0"
    )
    return Check("baseline_leaks", worst["value"], worst["lower"], threshold, ">=", status, worst["attack"], detail)


def _verdict(checks: list[Check]) -> tuple[str, str]:
    first, rest = checks[0], checks[1:]
    if not first.passed:
        why = (
            f"the undefended baseline's worst-case leakage {first.value:.3f} is below {first.threshold}"
            if first.status == "fail"
            else f"the undefended baseline's worst-case leakage has lower bound {first.bound:.3f} <= 0: "
            "more reconstructions (baseline and floor) are needed to show it leaks"
        )
        return "inconclusive", f"{why}; a suite that cannot show the baseline leaking proves nothing"
    failed = [c.name for c in rest if c.status == "fail"]
    if failed:
        return "rejected", f"failed on the evidence: {', '.join(failed)}"
    unset = [c.name for c in rest if c.threshold is None]
    if unset:
        return "inconclusive", (
            f"no threshold set for {', '.join(unset)} on this judge and data: measure it "
            "(bench/knn_threshold.py) and set it in params.yaml gate"
        )
    undecided = [c.name for c in rest if c.status == "undecided"]
    if undecided:
        return "inconclusive", (
            f"undecided: {', '.join(undecided)}: the interval straddles the threshold; more reconstructions "
            "(attack seeds or samples per class) are needed to decide"
        )
    return "approved", "every check passes at its bound"


def evaluate_gate(
    thresholds: GateSection,
    baseline_attacks: dict[str, Any],
    hardened_attacks: dict[str, Any],
    floor_attacks: dict[str, Any],
    harden_report: dict[str, Any],
    checkpoint_sha256: str,
) -> dict[str, Any]:
    """Run every check and return the gate report (module docstring: the rule).

    Raises:
        ValueError: a report the gate cannot judge (missing or mismatched attacks, missing
            ``acc1_pooled``, invalid counts, non-finite numbers, empty suite); every problem listed.
    """
    t = thresholds
    counts, knn = _read_inputs(baseline_attacks, hardened_attacks, floor_attacks, harden_report)
    floor = counts["floor attack report"]
    evidence = {
        "baseline": _evidence(counts["baseline attack report"], floor, t.confidence),
        "hardened": _evidence(counts["hardened attack report"], floor, t.confidence),
    }
    base, hard = evidence["baseline"], evidence["hardened"]
    base_worst, hard_worst = _worst_leakage(base), _worst_leakage(hard)
    base_acc1, base_acc1_attack = _argmax(base, lambda e: e.acc1.value)
    hard_acc1, hard_acc1_attack = _argmax(hard, lambda e: e.acc1.value)
    limit = t.max_leakage_ratio * base_worst["value"]
    closest = min(knn, key=knn.get)
    drop = harden_report["baseline_natural_accuracy"] - harden_report["natural_accuracy"]
    conf = f"{t.confidence * 100:g}%"

    checks = [
        _baseline_leaks(base_worst, t.min_baseline_leakage, conf),
        _bounded_check("leakage_ratio", hard, lambda e: e.leakage, limit,
                       f"hardened worst-case leakage vs max_leakage_ratio {t.max_leakage_ratio} x baseline "
                       f"worst-case leakage {base_worst['value']:.3f} ({base_worst['attack']}); {conf} Newcombe "
                       "bounds, max over attacks"),
        _bounded_check("worst_case_attack_acc1", hard, lambda e: e.acc1, t.max_attack_acc1,
                       f"hardened worst-case Acc@1; {conf} Wilson bounds, max over attacks"),
        _point_check("natural_accuracy_drop", drop, "<=", t.max_accuracy_drop, None,
                     "baseline minus hardened natural accuracy on the private test split (no interval)"),
        _point_check("min_knn_distance", knn[closest], ">=", t.min_knn_distance, closest,
                     "closest reconstructions to private training images (no interval)"),
    ]  # fmt: skip
    verdict, reason = _verdict(checks)
    return {
        "verdict": verdict,
        "verdict_reason": reason,
        "failed_checks": [c.name for c in checks if not c.passed],
        "undecided_checks": [c.name for c in checks if c.status == "undecided"],
        "checks": [c.as_dict() for c in checks],
        "confidence": t.confidence,
        "intervals": {"acc1": WILSON, "floor_acc1": WILSON, "leakage": NEWCOMBE},
        "attacks": _per_attack(evidence, counts, t.confidence),
        "baseline_worst_case_leakage": base_worst,
        "hardened_worst_case_leakage": hard_worst,
        "baseline_worst_case_acc1": base_acc1,
        "baseline_deciding_attack": base_acc1_attack,
        "hardened_worst_case_acc1": hard_acc1,
        "deciding_attack": hard_acc1_attack,
        "deciding_loss": hardened_attacks["attacks"][hard_acc1_attack].get("loss"),
        "natural_accuracy": harden_report["natural_accuracy"],
        "baseline_natural_accuracy": harden_report["baseline_natural_accuracy"],
        "natural_accuracy_drop": drop,
        "checkpoint_sha256": checkpoint_sha256,
        "thresholds": t.model_dump(),
    }
