"""Hand-built compare records and setting reports, shaped like stages/compare_setting writes them."""

from __future__ import annotations

from typing import Any

from pipeline.compare.run import summarise
from pipeline.gate import GateSection

RECONSTRUCTIONS = 200  # judged reconstructions per attack, pooled over seeds
GATE_LIMITS = {"min_baseline_leakage": 0.3, "max_leakage_ratio": 0.5, "max_attack_acc1": 0.3,
               "max_accuracy_drop": 0.05, "min_knn_distance": 1.0, "confidence": 0.95}  # fmt: skip


def gate_section(**change: float) -> GateSection:
    """The gate's thresholds for these tests, with ``change`` applied."""
    return GateSection(**{**GATE_LIMITS, **change})


def attacks_report(**acc1: float) -> dict[str, Any]:
    """A run_suite-shaped report: one attack seed, the given Acc@1 per attack (pooled over
    ``RECONSTRUCTIONS``), KNN distance 5."""
    stat = lambda v: {"mean": v, "std": 0.0, "n": 1}  # noqa: E731
    return {
        "attacks": {
            name: {"acc1": stat(a), "knn_distance": stat(5.0), "loss": "max_margin",
                   "acc1_pooled": {"correct": round(a * RECONSTRUCTIONS), "n": RECONSTRUCTIONS}}
            for name, a in acc1.items()
        }
    }  # fmt: skip


def fake_record(seed: int, accuracy: float, acc1: dict[str, float], verdict: str | None, **report: Any) -> dict:
    worst = max(acc1, key=acc1.get)
    record = {
        "seed": seed, "natural_accuracy": accuracy, "natural_accuracy_drop": 0.9 - accuracy,
        "train_mean_true_class_prob": 0.8, "worst_case_acc1": acc1[worst], "deciding_attack": worst,
        "attacks": attacks_report(**acc1), "seconds": {"train": 2.0, "attack": 3.0},
        "defense_report": {"defense": report.pop("defense", "none"), **report},
    }  # fmt: skip
    if verdict is not None:
        record["gate"] = {"verdict": verdict}
    return record


def setting_report(
    name: str, kind: str, rows: list[tuple[float, dict[str, float], str | None]], harden: dict | None = None,
    **defense_report: Any,
) -> dict[str, Any]:  # fmt: skip
    """``rows``: one (natural accuracy, Acc@1 per attack, gate verdict) per seed 0, 1, ..."""
    records = [fake_record(seed, *row, **dict(defense_report)) for seed, row in enumerate(rows)]
    return {"setting": name, "label": name.upper(), "kind": kind, "overrides": {}, "harden": harden,
            "seeds": records, "summary": summarise(records)}  # fmt: skip
