"""The comparison as data: one row per setting, read from the per-setting compare reports.

Kept apart from rendering so the JSON, the markdown and the figures all show the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.gate import GateSection
from pipeline.reports import read_report

KIND_ORDER = {"baseline": 0, "floor": 1, "reference": 2, "control": 3, "defense": 4, "ablation": 5}
UNGATED_KINDS = ("baseline", "floor")  # what the gate measures against, not candidates for release
DEFENSE_FACTS = {  # what each defense reports about itself that a reviewer wants next to its row
    "calor": ("phases", "target_confidence"),
    "mid": ("beta", "train_kl", "train_kl_term"),
    "dpsgd": ("epsilon", "delta", "noise_multiplier", "max_grad_norm", "epsilon_scope"),
    "tldmi": ("frozen_fraction_actual", "front_source"),
    "negls": ("alpha", "warmup_steps", "ramp_steps"),
    "bido": ("lambda_x", "lambda_y", "final_hsic_x", "final_hsic_y"),
}


def read_setting_reports(directory: str | Path) -> list[dict[str, Any]]:
    """Every ``<setting>.json`` in ``directory``; the baseline first, then controls, defenses, ablations."""
    directory = Path(directory)
    paths = sorted(directory.glob("*.json"))
    if not any(p.stem == "baseline" for p in paths):
        raise FileNotFoundError(f"{directory}: no baseline.json; run `dvc repro compare/dvc.yaml` first")
    reports = [r for r in map(read_report, paths) if "skipped" not in r]
    return sorted(reports, key=lambda r: (KIND_ORDER.get(r["kind"], 9), r["setting"] != "calor", r["setting"]))


def defense_facts(report: dict[str, Any]) -> dict[str, Any]:
    first = report["seeds"][0]["defense_report"]
    return {key: first[key] for key in DEFENSE_FACTS.get(first.get("defense", ""), ()) if key in first}


def build_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparison rows: summary statistics plus the differences to the equal-budget control."""
    control = next((r for r in reports if r["kind"] == "control"), None)
    rows = []
    for report in reports:
        summary = report["summary"]
        row = {
            "setting": report["setting"], "label": report["label"], "kind": report["kind"],
            "seeds": [s["seed"] for s in report["seeds"]],
            "natural_accuracy": summary["natural_accuracy"], "worst_case_acc1": summary["worst_case_acc1"],
            "train_mean_true_class_prob": summary["train_mean_true_class_prob"],
            "min_knn_distance": summary["min_knn_distance"], "deciding_attacks": summary["deciding_attacks"],
            "attacks": {name: stats["acc1"] for name, stats in summary["attacks"].items()},
            "gate_verdicts": summary.get("gate_verdicts"), "seconds": summary["seconds"],
            "defense_facts": defense_facts(report),
        }  # fmt: skip
        if control is not None and report is not control:
            ctrl = control["summary"]
            row["vs_control"] = {
                "natural_accuracy": summary["natural_accuracy"]["mean"] - ctrl["natural_accuracy"]["mean"],
                "worst_case_acc1": summary["worst_case_acc1"]["mean"] - ctrl["worst_case_acc1"]["mean"],
            }
        rows.append(row)
    return rows


def comparison(reports: list[dict[str, Any]], gate: GateSection) -> dict[str, Any]:
    """Everything reports/comparison.json holds."""
    rows = build_rows(reports)
    baseline = rows[0]
    candidates = [r for r in rows if r["kind"] not in UNGATED_KINDS]  # the rows a release could ship
    passing = [r["setting"] for r in candidates if r["gate_verdicts"] and set(r["gate_verdicts"]) == {"approved"}]
    return {
        "seeds": baseline["seeds"],
        "gate": gate.model_dump(),
        "accuracy_floor": baseline["natural_accuracy"]["mean"] - gate.max_accuracy_drop,
        "rows": rows,
        "approved_on_every_seed": passing,
        "most_private": min(candidates, key=lambda r: r["worst_case_acc1"]["mean"])["setting"] if candidates else None,
        "total_seconds": sum(r["seconds"]["train"] + r["seconds"]["attack"] for r in rows),
    }
