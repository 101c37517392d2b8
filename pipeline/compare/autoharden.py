"""Auto-harden: pick CALoR's (r, b) from a grid of compare runs.

The rule a release manager can defend: among grid points whose mean accuracy drop stays within the
gate's budget (``gate.max_accuracy_drop``), take the most private one, i.e. the lowest mean
worst-case Acc@1 over seeds (ties: higher accuracy). Whether that point also passes the whole gate is
reported separately and never assumed: a sweep can only pick among what CALoR can do.
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
        "deciding_attacks": summary["deciding_attacks"],
        "gate_verdicts": verdicts,
        "passes_gate": bool(verdicts) and set(verdicts) == {"approved"},
        "seeds": [s["seed"] for s in report["seeds"]],
    }


def select(points: list[dict[str, Any]], gate: GateSection) -> dict[str, Any]:
    """The chosen point and why; ``chosen`` is None when no point keeps the accuracy budget."""
    within = [p for p in points if p["natural_accuracy_drop"]["mean"] <= gate.max_accuracy_drop]
    chosen = min(within, key=lambda p: (p["worst_case_acc1"]["mean"], -p["natural_accuracy"]["mean"]), default=None)
    result: dict[str, Any] = {
        "rule": "lowest mean worst-case Acc@1 among points with mean accuracy drop <= gate.max_accuracy_drop",
        "max_accuracy_drop": gate.max_accuracy_drop,
        "grid": sorted(points, key=lambda p: (p["rank"], p["b"])),
        "within_accuracy_budget": [(p["rank"], p["b"]) for p in within],
        "chosen": chosen,
        "chosen_passes_gate": bool(chosen and chosen["passes_gate"]),
    }
    if chosen is not None:
        result["apply"] = (
            f"dvc exp run -S harden.calor.low_rank.rank={chosen['rank']} "
            f"-S harden.calor.confidence_adaptation.b={chosen['b']}"
        )
    return result
