"""The model card states the gate's decision and the numbers from the reports it was built from."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.gate import evaluate_gate
from pipeline.model_card import render_model_card
from tests.compare.fakes import attacks_report, gate_section

REPO = Path(__file__).resolve().parents[2]


def card(worst: float, hardened_accuracy: float = 0.88, mode: str = "sample_disjoint") -> str:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    manifest = {"mode": mode, "seed": 0, "classes": [{"name": "T-shirt"}, {"name": "Boot"}]}
    utility = {"natural_accuracy": 0.9, "train_mean_true_class_prob": 0.91, "ece": 0.02}
    baseline, floor = attacks_report(gmi=0.9), attacks_report(gmi=0.1)
    hardened = {**attacks_report(gmi=worst), "seeds": [0, 1, 2], "checkpoint_sha256": "f00d"}
    harden = {"natural_accuracy": hardened_accuracy, "baseline_natural_accuracy": 0.9}
    gate = evaluate_gate(gate_section(), baseline, hardened, floor, harden, "f00d")
    return render_model_card(
        params, manifest, utility, {"natural_accuracy": 0.83},
        {**harden, "train_mean_true_class_prob": 0.75, "ece": 0.15},
        {"baseline": baseline, "hardened": hardened}, gate,
    )  # fmt: skip


def test_rejected_card_says_do_not_release_and_flags_the_failed_check():
    text = card(0.87)
    assert "Gate verdict: **rejected**" in text and "do not release" in text
    assert "Why: failed on the evidence: leakage_ratio, worst_case_attack_acc1." in text
    assert "| worst_case_attack_acc1 | 0.870 | 0.910 | <= 0.3 | **fail** | `gmi` |" in text
    assert "| `gmi` | 0.10 [0.07, 0.15] | 0.90 [0.85, 0.93] | 0.87 [0.82, 0.91] | +0.80 [+0.73, +0.85] |" in text
    assert "| natural accuracy | 0.900 | 0.880 |" in text and "T-shirt, Boot" in text
    assert "`f00d`" in text and "control" not in text
    assert "95% Wilson intervals" in text and "Newcombe intervals" in text


def test_approved_card_allows_release():
    text = card(0.1)
    assert "**Approved for release.**" in text and "| worst_case_attack_acc1 | 0.100 | 0.149 | <= 0.3 | pass |" in text
    assert "| baseline_leaks | 0.800 | 0.730 | >= 0.3 | pass | `gmi` |" in text


def test_undecided_card_says_more_reconstructions_are_needed():
    text = card(0.3)  # Acc@1 0.30 [0.24, 0.37] against max 0.3
    assert "Gate verdict: **inconclusive**. **Inconclusive: do not release.** Why: undecided:" in text
    assert "more reconstructions" in text and "| *undecided* |" in text


def test_the_card_says_in_one_sentence_what_the_protocol_lets_the_gate_say():
    assert "the gate therefore says `inconclusive` whenever the baseline leaks nothing beyond" in card(0.1)
    assert "public data shows none of the private classes" in card(0.1, mode="class_disjoint")
