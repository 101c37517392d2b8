"""Auto-harden: pick CALoR's (r, b) from a grid of compare runs.

The rule a release manager can defend: among grid points that pass every check of the gate other
than the privacy ones on every seed (mean accuracy drop within ``gate.max_accuracy_drop``, KNN
distance), take the most private one, i.e. the lowest mean worst-case leakage over seeds (the
worst-case Acc@1 when the runs carry no leakage; ties: higher accuracy). Whether that point also
passes the whole gate is reported separately and never assumed; when no point is eligible, each
point's failed checks say why.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pipeline.compare.run import summarise
from pipeline.gate import GateSection

RANK_KEY = ("calor", "low_rank", "rank")
EXPONENT_KEY = ("calor", "confidence_adaptation", "b")


def _dig(tree: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        tree = tree[key]
    return tree


def merge_seeds(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One report per (r, b): the sweep runs one DVC stage per (r, b, seed), so DVC caches each."""
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = defaultdict(list)
    for report in reports:
        groups[(_dig(report["harden"], RANK_KEY), _dig(report["harden"], EXPONENT_KEY))].append(report)
    merged = []
    for parts in groups.values():
        records = sorted((r for part in parts for r in part["seeds"]), key=lambda r: r["seed"])
        seeds = [r["seed"] for r in records]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"sweep reports repeat a seed for one (r, b): {seeds}")
        merged.append({**parts[0], "seeds": records, "summary": summarise(records)})
    return merged


PRIVACY_CHECKS = ("leakage_ratio", "worst_case_attack_acc1")  # what "most private" optimises, not a filter


def _failed_checks(report: dict[str, Any]) -> list[str]:
    """Checks that did not pass on some seed (all of them, privacy included), in gate order."""
    failed: dict[str, None] = {}
    for record in report["seeds"]:
        for check in record.get("gate", {}).get("checks", []):
            if check.get("status", "pass" if check.get("passed") else "fail") != "pass":
                failed[check["name"]] = None
    return list(failed)


def grid_point(report: dict[str, Any]) -> dict[str, Any]:
    """One sweep point's evidence from its compare report."""
    summary = report["summary"]
    verdicts = summary.get("gate_verdicts", {})
    return {
        "rank": _dig(report["harden"], RANK_KEY),
        "b": _dig(report["harden"], EXPONENT_KEY),
        "natural_accuracy": summary["natural_accuracy"],
        "natural_accuracy_drop": summary["natural_accuracy_drop"],
        "train_mean_true_class_prob": summary["train_mean_true_class_prob"],
        "worst_case_acc1": summary["worst_case_acc1"],
        "worst_case_leakage": summary.get("worst_case_leakage"),
        "failed_checks": _failed_checks(report),
        "deciding_attacks": summary["deciding_attacks"],
        "gate_verdicts": verdicts,
        "passes_gate": bool(verdicts) and set(verdicts) == {"approved"},
        "seeds": [s["seed"] for s in report["seeds"]],
    }


def select(points: list[dict[str, Any]], gate: GateSection) -> dict[str, Any]:
    """The chosen point and why; ``chosen`` is None when no point passes the non-privacy checks."""
    within = [
        p for p in points
        if p["natural_accuracy_drop"]["mean"] <= gate.max_accuracy_drop
        and not set(p["failed_checks"]) - set(PRIVACY_CHECKS)
    ]  # fmt: skip
    chosen = min(within, key=lambda p: (_privacy(p), -p["natural_accuracy"]["mean"]), default=None)
    result: dict[str, Any] = {
        "rule": "lowest mean worst-case leakage among points with mean accuracy drop <= gate.max_accuracy_drop "
        "that pass every non-privacy check of the gate on every seed",  # fmt: skip
        "max_accuracy_drop": gate.max_accuracy_drop,
        "grid": sorted(points, key=lambda p: (p["rank"], p["b"])),
        "within_accuracy_budget": [(p["rank"], p["b"]) for p in within],
        "chosen": chosen,
        "chosen_passes_gate": bool(chosen and chosen["passes_gate"]),
    }
    if chosen is None:
        result["why_none"] = {f"r={p['rank']}, b={p['b']:g}": p["failed_checks"] for p in points}
    if chosen is not None:
        result["apply"] = (
            f"dvc exp run -S harden.calor.low_rank.rank={chosen['rank']} "
            f"-S harden.calor.confidence_adaptation.b={chosen['b']}"
        )
    return result


def _privacy(point: dict[str, Any]) -> float:
    leakage = point.get("worst_case_leakage")
    return (leakage or point["worst_case_acc1"])["mean"]
