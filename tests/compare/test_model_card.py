"""The model card states the gate's decision and the numbers from the reports it was built from."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.model_card import render_model_card
from tests.compare.fakes import attacks_report

REPO = Path(__file__).resolve().parents[2]


def gate_report(verdict: str, worst: float) -> dict:
    checks = [
        {"name": "baseline_broken", "value": 0.9, "threshold": 0.6, "comparison": ">=", "passed": True, "detail": ""},
        {"name": "worst_case_attack_acc1", "value": worst, "threshold": 0.3, "comparison": "<=",
         "passed": worst <= 0.3, "detail": "strongest attack on the hardened model: gmi"},
    ]  # fmt: skip
    return {
        "verdict": verdict, "checks": checks, "checkpoint_sha256": "f00d", "deciding_attack": "gmi",
        "hardened_worst_case_acc1": worst, "baseline_deciding_attack": "gmi", "baseline_worst_case_acc1": 0.9,
    }  # fmt: skip


def card(verdict: str, worst: float) -> str:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    manifest = {"mode": "sample_disjoint", "seed": 0, "classes": [{"name": "T-shirt"}, {"name": "Boot"}]}
    utility = {"natural_accuracy": 0.9, "train_mean_true_class_prob": 0.91, "ece": 0.02}
    hardened = {**attacks_report(gmi=worst), "seeds": [0, 1, 2],
                "control": {"acc1": {"mean": 0.1, "std": 0.01}, "chance_acc1": 0.1}}  # fmt: skip
    return render_model_card(
        params, manifest, utility, {"natural_accuracy": 0.83},
        {"natural_accuracy": 0.88, "train_mean_true_class_prob": 0.75, "ece": 0.15},
        {"baseline": attacks_report(gmi=0.9), "hardened": hardened}, gate_report(verdict, worst),
    )  # fmt: skip


def test_rejected_card_says_do_not_release_and_flags_the_failed_check():
    text = card("rejected", 0.87)
    assert "Gate verdict: **rejected**" in text and "do not release" in text
    assert "| worst_case_attack_acc1 | 0.870 | <= 0.3 | **no** |" in text
    assert "| `gmi` | 0.90 ± 0.00 | 0.87 ± 0.00 |" in text
    assert "| natural accuracy | 0.900 | 0.880 |" in text and "T-shirt, Boot" in text
    assert "`f00d`" in text


def test_approved_card_allows_release():
    text = card("approved", 0.2)
    assert "**Approved for release.**" in text and "| worst_case_attack_acc1 | 0.200 | <= 0.3 | yes |" in text
