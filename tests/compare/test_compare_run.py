"""One comparison seed on a toy task: harden, attack with a tiny suite, gate, summarise."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.compare.config import CompareSetting
from pipeline.compare.run import (
    SeedLoop,
    TrainedModel,
    attack_trained,
    evaluate_seed,
    gate_record,
    harden,
    summarise,
)
from pipeline.defenses import DefenseKnowledge
from pipeline.io import sha256_file
from pipeline.suite import AttackSection, floor_model
from tests.compare.fakes import attacks_report, fake_record, gate_section
from tests.defenses.tiny import state_equal, tiny_train

GATE = gate_section(min_knn_distance=0.0)
FLOOR = attacks_report(gmi=0.1, pixel=0.1)


def tiny_attack(seed: int) -> AttackSection:
    return AttackSection.model_validate({
        "seeds": [seed], "budget": {"steps": 3, "restarts": 2, "samples_per_class": 2},
        "suite": {"gmi": {"attack": "gmi"}, "gmi_confidence": {"attack": "gmi_confidence", "adapt_to_defense": True}},
    })  # fmt: skip


def setting(defense: str, config: dict) -> CompareSetting:
    return CompareSetting(label=defense, harden={"defense": defense, defense: config})


def test_baseline_row_is_an_untouched_copy(inputs):
    before = {k: v.clone() for k, v in inputs.baseline.state_dict().items()}
    outcome = evaluate_seed(inputs, None, tiny_attack(0), seed=0)
    record = outcome.record
    assert outcome.model is not inputs.baseline and state_equal(outcome.model, inputs.baseline)
    assert all(torch.equal(before[k], v) for k, v in inputs.baseline.state_dict().items())
    assert record["natural_accuracy_drop"] == pytest.approx(0.0)
    assert record["defense_report"] == {"defense": "none"} and record["attacker_knowledge"] == {}
    acc = {name: row["acc1"]["mean"] for name, row in record["attacks"]["attacks"].items()}
    assert set(acc) == {"gmi", "gmi_confidence"} and record["attacks"]["seeds"] == [0]
    assert record["worst_case_acc1"] == max(acc.values()) and acc[record["deciding_attack"]] == max(acc.values())
    assert set(outcome.attack_results) == {"gmi", "gmi_confidence"}


def test_defense_row_changes_the_model_and_reports_its_cost(inputs):
    section = setting("plain_finetune", {"train": tiny_train(epochs=1)}).harden_section(seed=1)
    record = evaluate_seed(inputs, section, tiny_attack(1), seed=1).record
    assert record["defense_report"]["defense"] == "plain_finetune"
    assert record["natural_accuracy_drop"] == pytest.approx(
        inputs.baseline_natural_accuracy - record["natural_accuracy"]
    )
    assert record["seconds"]["train"] > 0 and record["seconds"]["attack"] > 0


def test_calor_row_arms_the_adaptive_attack_with_p_star(inputs):
    config = {"low_rank": {"rank": 2, "train": tiny_train(epochs=1)},
              "confidence_adaptation": {"b": 2.0, "train": tiny_train(epochs=1)}}  # fmt: skip
    outcome = evaluate_seed(inputs, setting("calor", config).harden_section(), tiny_attack(0), seed=0)
    assert outcome.record["attacker_knowledge"] == {"target_confidence": pytest.approx(math.exp(-1 / 2.0))}
    assert outcome.model.head.__class__.__name__ == "LowRankHead"


def test_knowledge_is_what_the_defense_declares_not_what_its_report_says(inputs):
    """p* comes from the setting's defense (CalorConfig.attacker_knowledge); CA off or another defense: none."""
    ca_off = {"low_rank": {"rank": 2, "train": tiny_train(epochs=1)},
              "confidence_adaptation": {"enabled": False, "train": tiny_train(epochs=1)}}  # fmt: skip
    assert harden(inputs, setting("calor", ca_off).harden_section()).knowledge == DefenseKnowledge()
    section = setting("plain_finetune", {"train": tiny_train(epochs=1)}).harden_section()
    assert harden(inputs, section).knowledge == DefenseKnowledge()
    assert harden(inputs, None).knowledge == DefenseKnowledge()


@pytest.mark.parametrize(
    ("hardened", "accuracy", "verdict", "failed"),
    [
        ({"gmi": 0.2, "pixel": 0.1}, 0.88, "approved", []),
        ({"gmi": 0.2, "pixel": 0.4}, 0.88, "rejected", ["worst_case_attack_acc1"]),  # 0.40 [0.33, 0.47] > 0.3
        ({"gmi": 0.2, "pixel": 0.1}, 0.80, "rejected", ["natural_accuracy_drop"]),
        ({"gmi": 0.3, "pixel": 0.1}, 0.88, "inconclusive", ["worst_case_attack_acc1"]),  # [0.24, 0.37] straddles
    ],
)
def test_gate_record_judges_each_seed_against_the_same_seed_baseline_and_floor(hardened, accuracy, verdict, failed):
    record = {"natural_accuracy": accuracy, "attacks": attacks_report(**hardened)}
    gate = gate_record(record, 0.90, GATE, attacks_report(gmi=0.9, pixel=0.5), FLOOR, "abc")
    assert gate["verdict"] == verdict and gate["failed_checks"] == failed and gate["checkpoint_sha256"] == "abc"
    assert gate["baseline_worst_case_leakage"]["value"] == pytest.approx(0.8)
    assert gate["hardened_worst_case_leakage"]["attack"] == max(hardened, key=hardened.get)


def test_gate_record_is_inconclusive_when_the_baseline_does_not_leak_over_the_floor():
    record = {"natural_accuracy": 0.9, "attacks": attacks_report(gmi=0.1)}
    gate = gate_record(record, 0.9, GATE, attacks_report(gmi=0.3), attacks_report(gmi=0.1), "x")
    assert gate["verdict"] == "inconclusive" and "baseline_leaks" in gate["failed_checks"]


def test_summary_carries_the_gate_verdicts_and_worst_case_leakage():
    records = [fake_record(seed, 0.88, {"gmi": acc}, None) for seed, acc in enumerate((0.2, 0.3))]
    for record in records:
        record["gate"] = gate_record(record, 0.9, GATE, attacks_report(gmi=0.9), attacks_report(gmi=0.1), "x")
    summary = summarise(records)
    assert summary["gate_verdicts"] == {"approved": 1, "inconclusive": 1}
    assert summary["worst_case_leakage"]["mean"] == pytest.approx(0.15)
    assert "worst_case_leakage" not in summarise([fake_record(0, 0.88, {"gmi": 0.2}, "approved")])


def test_summary_is_mean_and_sample_std_over_seeds():
    records = [
        fake_record(0, 0.80, {"gmi": 0.5, "pixel": 0.2}, "rejected"),
        fake_record(1, 0.84, {"gmi": 0.3, "pixel": 0.4}, "rejected"),
        fake_record(2, 0.88, {"gmi": 0.1, "pixel": 0.3}, "approved"),
    ]
    summary = summarise(records)
    assert summary["natural_accuracy"]["mean"] == pytest.approx(0.84)
    assert summary["natural_accuracy"]["std"] == pytest.approx(0.04)  # ddof = 1
    assert summary["worst_case_acc1"]["mean"] == pytest.approx((0.5 + 0.4 + 0.3) / 3)
    assert summary["attacks"]["gmi"]["acc1"]["mean"] == pytest.approx(0.3)
    assert summary["deciding_attacks"] == {"gmi": 1, "pixel": 2}
    assert summary["gate_verdicts"] == {"rejected": 2, "approved": 1}
    assert summary["seconds"] == {"train": 6.0, "attack": 9.0}
    assert summary["min_knn_distance"]["mean"] == pytest.approx(5.0)


class MetricsRecorder:
    """Stands in for the MLflow stage run: SeedLoop only logs metrics through it."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def log_metrics(self, metrics: dict[str, float], prefix: str = "") -> None:
        self.metrics.update({prefix + k: v for k, v in metrics.items()})


def test_seed_loop_writes_a_checkpoint_per_seed_and_gates_it_against_that_seeds_baseline(inputs, tmp_path):
    baseline_runs = {seed: evaluate_seed(inputs, None, tiny_attack(seed), seed).record["attacks"] for seed in (0, 1)}
    floor = TrainedModel(floor_model(inputs.baseline, 0), {"defense": "none"}, 0.0)
    floor_runs = {seed: attack_trained(inputs, floor, tiny_attack(seed), seed).record["attacks"] for seed in (0, 1)}
    loop = SeedLoop(inputs, tiny_attack, GATE, baseline_runs, tmp_path, floor_runs)
    recorder = MetricsRecorder()
    records = loop.run([0, 1], lambda seed: harden(inputs, None), "baseline copy", recorder)

    assert [r["seed"] for r in records] == [0, 1]
    for record in records:
        seed = record["seed"]
        # an untouched copy attacked with the same seed gives the same attack numbers as its baseline run
        assert {n: a["acc1"] for n, a in record["attacks"]["attacks"].items()} == {
            n: a["acc1"] for n, a in baseline_runs[seed]["attacks"].items()
        }
        checks = {c["name"]: c for c in record["gate"]["checks"]}
        assert checks["natural_accuracy_drop"]["value"] == pytest.approx(0.0)
        # an untouched copy leaks exactly as much over the floor as the baseline it copies
        assert checks["leakage_ratio"]["value"] == pytest.approx(checks["baseline_leaks"]["value"])
        assert record["gate"]["checkpoint_sha256"] == sha256_file(tmp_path / f"seed{seed}.pt")
        assert recorder.metrics[f"seed{seed}.worst_case_acc1"] == record["worst_case_acc1"]
    grids = torch.load(tmp_path / "reconstructions.pt", weights_only=True)
    assert set(grids) == {"gmi", "gmi_confidence"} and grids["gmi"]["images"].dtype == torch.uint8


def test_seed_loop_refuses_a_seed_the_baseline_was_not_attacked_with(inputs, tmp_path):
    loop = SeedLoop(inputs, tiny_attack, GATE, {0: {}}, tmp_path, {0: {}})
    untouched = TrainedModel(inputs.baseline, {"defense": "none"}, 0.0)
    with pytest.raises(SystemExit, match="no run for seed 2"):
        loop.run([2], lambda seed: untouched, "x", MetricsRecorder())
