"""The release gate: every verdict, every check reported, and the stage's --strict exit code."""

import json

import pytest

from pipeline.gate import GateSection, evaluate_gate, worst_case
from stages import gate as gate_stage

THRESHOLDS = GateSection(
    max_accuracy_drop=0.05, max_attack_acc1=0.3, min_knn_distance=10.0, min_baseline_attack_acc=0.6
)


def attack_report(**acc1_and_knn):
    return {
        "attacks": {
            name: {"acc1": {"mean": acc, "std": 0.0, "n": 3}, "knn_distance": {"mean": knn, "std": 0.0, "n": 3},
                   "loss": "max_margin"}
            for name, (acc, knn) in acc1_and_knn.items()
        }
    }  # fmt: skip


def harden(nat=0.88, base=0.90):
    return {"natural_accuracy": nat, "baseline_natural_accuracy": base}


def verdict(baseline, hardened, harden_report):
    return evaluate_gate(THRESHOLDS, baseline, hardened, harden_report, "abc")


STRONG_BASELINE = attack_report(gmi=(0.9, 5.0), pixel=(0.2, 30.0))


def test_approved_when_every_check_passes():
    report = verdict(STRONG_BASELINE, attack_report(gmi=(0.25, 12.0), pixel=(0.1, 40.0)), harden())
    assert report["verdict"] == "approved"
    assert report["failed_checks"] == []
    assert [c["name"] for c in report["checks"]] == [
        "baseline_broken", "natural_accuracy_drop", "worst_case_attack_acc1", "min_knn_distance",
    ]  # fmt: skip
    assert report["checkpoint_sha256"] == "abc"


def test_rejected_names_the_deciding_attack_and_reports_all_failures():
    hardened = attack_report(gmi=(0.2, 12.0), gmi_bpda=(0.7, 3.0))
    report = verdict(STRONG_BASELINE, hardened, harden(nat=0.80))
    assert report["verdict"] == "rejected"
    assert report["deciding_attack"] == "gmi_bpda" and report["deciding_loss"] == "max_margin"
    assert report["hardened_worst_case_acc1"] == 0.7
    assert set(report["failed_checks"]) == {"natural_accuracy_drop", "worst_case_attack_acc1", "min_knn_distance"}
    drop = next(c for c in report["checks"] if c["name"] == "natural_accuracy_drop")
    assert drop["value"] == pytest.approx(0.10) and drop["threshold"] == 0.05 and drop["passed"] is False


def test_inconclusive_when_the_suite_cannot_break_the_baseline():
    weak_baseline = attack_report(gmi=(0.4, 20.0))
    report = verdict(weak_baseline, attack_report(gmi=(0.1, 50.0)), harden())
    assert report["verdict"] == "inconclusive"
    assert report["baseline_worst_case_acc1"] == 0.4
    # the other checks are still evaluated and reported
    assert all(c["passed"] for c in report["checks"][1:])


def test_inconclusive_wins_over_rejected():
    report = verdict(attack_report(gmi=(0.4, 20.0)), attack_report(gmi=(0.9, 1.0)), harden())
    assert report["verdict"] == "inconclusive"


def test_boundaries_are_inclusive():
    t = GateSection(max_accuracy_drop=0.0625, max_attack_acc1=0.25, min_knn_distance=8.0, min_baseline_attack_acc=0.5)
    report = evaluate_gate(  # binary-exact numbers, so "equal" really is equal
        t, attack_report(gmi=(0.5, 0.0)), attack_report(gmi=(0.25, 8.0)), harden(nat=0.8125, base=0.875), "abc"
    )
    assert report["verdict"] == "approved"


def test_empty_suite_is_an_error():
    with pytest.raises(ValueError, match="no attacks"):
        worst_case({"attacks": {}})


@pytest.fixture()
def stage_files(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    from pipeline.io import sha256_file

    hardened = {**attack_report(gmi=(0.9, 1.0)), "checkpoint_sha256": sha256_file(ckpt)}
    files = {
        "baseline": STRONG_BASELINE, "hardened": hardened, "harden": harden(),
    }  # fmt: skip
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    params = tmp_path / "params.yaml"
    params.write_text(
        "mlflow: {experiment: test}\n"
        "gate: {max_accuracy_drop: 0.05, max_attack_acc1: 0.3, min_knn_distance: 10.0, min_baseline_attack_acc: 0.6}\n"
    )
    argv = [
        "--params", str(params), "--baseline-attacks", str(tmp_path / "baseline.json"),
        "--hardened-attacks", str(tmp_path / "hardened.json"), "--harden-metrics", str(tmp_path / "harden.json"),
        "--checkpoint", str(ckpt), "--out", str(tmp_path / "gate.json"),
    ]  # fmt: skip
    return tmp_path, argv


def test_stage_writes_report_and_exits_zero_unless_strict(stage_files, monkeypatch):
    tmp_path, argv = stage_files
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert gate_stage.main(argv) == 0
    report = json.loads((tmp_path / "gate.json").read_text())
    assert report["verdict"] == "rejected"
    assert gate_stage.main([*argv, "--strict"]) == 1


def test_stage_refuses_a_report_about_another_checkpoint(stage_files, monkeypatch):
    tmp_path, argv = stage_files
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "model.pt").write_bytes(b"tampered")
    with pytest.raises(SystemExit, match="different checkpoint"):
        gate_stage.main(argv)
    assert not (tmp_path / "gate.json").exists()
