"""The release gate: leakage over a floor with sampling error, every verdict, clear errors, the stage."""

import json
import math

import pytest
from pydantic import ValidationError

from pipeline.gate import GateSection, evaluate_gate
from pipeline.io import sha256_file
from stages import gate as gate_stage

LIMITS = {"min_baseline_leakage": 0.3, "max_leakage_ratio": 0.5, "max_attack_acc1": 0.4,
          "max_accuracy_drop": 0.05, "min_knn_distance": 10.0, "confidence": 0.95}  # fmt: skip
THRESHOLDS = GateSection(**LIMITS)


def suite(**rows):
    """An attack report: per attack (judged-correct, reconstructions[, KNN distance]), pooled over seeds."""

    def entry(correct, n, knn=20.0):
        stat = lambda v: {"mean": v, "std": 0.0, "n": 2}  # noqa: E731
        return {"attack": "gmi", "loss": "max_margin", "acc1": stat(correct / n if n else 0.0),
                "knn_distance": stat(knn), "acc1_pooled": {"correct": correct, "n": n}}  # fmt: skip

    return {"attacks": {name: entry(*row) for name, row in rows.items()}}


FLOOR = suite(gmi=(20, 200), pixel=(20, 200))  # 0.10: what a model knowing nothing of the classes gives
BASELINE = suite(gmi=(180, 200), pixel=(60, 200))  # leakage 0.80 [0.73, 0.85] (gmi)
PRIVATE = suite(gmi=(40, 200), pixel=(30, 200))  # leakage 0.10 [0.03, 0.17]; Acc@1 0.20 [0.15, 0.26]
LEAKY = suite(gmi=(140, 200, 3.0), pixel=(30, 200))  # leakage 0.60 [0.52, 0.67]; Acc@1 0.70 [0.63, 0.76]


def harden(nat=0.88, base=0.90):
    return {"natural_accuracy": nat, "baseline_natural_accuracy": base}


def gate(baseline=BASELINE, hardened=PRIVATE, floor=FLOOR, harden_report=None, thresholds=THRESHOLDS):
    return evaluate_gate(thresholds, baseline, hardened, floor, harden_report or harden(), "abc")


def checks(report):
    return {c["name"]: c for c in report["checks"]}


def test_approved_when_every_check_passes_at_its_bound():
    report = gate()
    assert report["verdict"] == "approved"
    assert report["failed_checks"] == [] and report["undecided_checks"] == []
    assert [c["name"] for c in report["checks"]] == [
        "baseline_leaks", "leakage_ratio", "worst_case_attack_acc1", "natural_accuracy_drop", "min_knn_distance",
    ]  # fmt: skip
    assert all(c["status"] == "pass" and c["passed"] is True for c in report["checks"])
    assert report["checkpoint_sha256"] == "abc"


def test_report_carries_every_attacks_acc1_floor_and_leakage_with_intervals():
    report = gate()
    assert report["intervals"] == {"acc1": "wilson", "floor_acc1": "wilson", "leakage": "newcombe"}
    assert report["confidence"] == 0.95
    gmi = report["attacks"]["gmi"]
    assert gmi["floor_acc1"]["value"] == pytest.approx(0.1) and gmi["floor_acc1"]["n"] == 200
    assert gmi["baseline"]["acc1"] == {
        "value": pytest.approx(0.9), "lower": pytest.approx(0.8506, abs=1e-4),
        "upper": pytest.approx(0.9343, abs=1e-4), "correct": 180, "n": 200,
    }  # fmt: skip
    leakage = gmi["hardened"]["leakage"]
    assert leakage["value"] == pytest.approx(0.1) and leakage["lower"] < 0.1 < leakage["upper"]
    assert report["baseline_worst_case_leakage"]["attack"] == "gmi"
    assert report["baseline_worst_case_leakage"]["value"] == pytest.approx(0.8)
    assert report["hardened_worst_case_leakage"] == {**gmi["hardened"]["leakage"], "attack": "gmi"}
    assert report["hardened_worst_case_acc1"] == pytest.approx(0.2) and report["deciding_attack"] == "gmi"
    assert report["baseline_worst_case_acc1"] == pytest.approx(0.9) and report["deciding_loss"] == "max_margin"
    assert report["thresholds"] == LIMITS and json.loads(json.dumps(report)) == report


def test_point_checks_have_no_bound_and_leakage_threshold_scales_with_the_baseline():
    by_name = checks(gate())
    assert by_name["natural_accuracy_drop"]["bound"] is None and by_name["min_knn_distance"]["bound"] is None
    ratio = by_name["leakage_ratio"]
    assert ratio["threshold"] == pytest.approx(0.5 * 0.8) and ratio["comparison"] == "<="
    assert ratio["value"] == pytest.approx(0.1) and ratio["bound"] == pytest.approx(0.1699, abs=1e-4)


def test_rejected_on_evidence_names_the_attack_and_reports_every_failure():
    report = gate(hardened=LEAKY, harden_report=harden(nat=0.80))
    assert report["verdict"] == "rejected"
    assert report["failed_checks"] == [
        "leakage_ratio", "worst_case_attack_acc1", "natural_accuracy_drop", "min_knn_distance",
    ]  # fmt: skip
    by_name = checks(report)
    assert all(by_name[name]["status"] == "fail" for name in report["failed_checks"])
    assert by_name["leakage_ratio"]["attack"] == "gmi" and "lower bound 0.517" in by_name["leakage_ratio"]["detail"]
    assert by_name["natural_accuracy_drop"]["value"] == pytest.approx(0.10)
    assert by_name["min_knn_distance"]["attack"] == "gmi" and by_name["min_knn_distance"]["value"] == 3.0
    assert report["deciding_attack"] == "gmi" and "leakage_ratio" in report["verdict_reason"]


def test_inconclusive_when_the_baseline_leaks_too_little_even_if_the_hardened_model_fails():
    weak = suite(gmi=(50, 200), pixel=(30, 200))  # leakage 0.15 < 0.3
    report = gate(baseline=weak, hardened=LEAKY)
    assert report["verdict"] == "inconclusive"
    assert checks(report)["baseline_leaks"]["status"] == "fail"
    assert "below 0.3" in report["verdict_reason"]
    # the other checks are still evaluated and reported
    assert checks(report)["worst_case_attack_acc1"]["status"] == "fail"


def test_inconclusive_when_the_baselines_leakage_lower_bound_is_not_above_zero():
    small_floor, few = suite(gmi=(2, 10)), suite(gmi=(6, 10))  # leakage 0.40, 95% lower bound -0.02
    report = gate(baseline=few, hardened=suite(gmi=(2, 10)), floor=small_floor)
    baseline_leaks = checks(report)["baseline_leaks"]
    assert baseline_leaks["value"] == pytest.approx(0.4) and baseline_leaks["bound"] < 0
    assert baseline_leaks["status"] == "undecided" and report["verdict"] == "inconclusive"
    assert "more reconstructions" in report["verdict_reason"]


def test_inconclusive_when_the_sampling_error_straddles_a_threshold():
    straddling = suite(gmi=(80, 200), pixel=(30, 200))  # Acc@1 0.40 [0.33, 0.47] against max 0.4
    report = gate(hardened=straddling)
    assert report["verdict"] == "inconclusive"
    assert report["undecided_checks"] == ["worst_case_attack_acc1"]
    assert report["failed_checks"] == ["worst_case_attack_acc1"]  # not passed, so release is blocked
    acc1 = checks(report)["worst_case_attack_acc1"]
    assert acc1["status"] == "undecided" and acc1["passed"] is False and acc1["bound"] > 0.4
    assert "undecided: worst_case_attack_acc1" in report["verdict_reason"]
    assert "more reconstructions" in report["verdict_reason"]


def test_an_uncalibrated_knn_threshold_makes_the_gate_inconclusive_not_approved():
    """A face profile ships min_knn_distance null until bench/knn_threshold.py measured it on that data."""
    unset = GateSection(**{**LIMITS, "min_knn_distance": None})
    report = gate(thresholds=unset)
    assert report["verdict"] == "inconclusive"
    knn = checks(report)["min_knn_distance"]
    assert knn["status"] == "undecided" and knn["threshold"] is None and knn["value"] == 20.0
    assert "bench/knn_threshold.py" in knn["detail"] and "min_knn_distance" in report["verdict_reason"]
    assert gate(hardened=LEAKY, thresholds=unset)["verdict"] == "rejected"  # evidence of failure still rejects


def test_the_upper_bound_over_attacks_decides_and_its_attack_is_named():
    # gmi has the highest point leakage, but pixel's few reconstructions give the highest upper bound
    floor = suite(gmi=(20, 200), pixel=(1, 10))
    hardened = suite(gmi=(60, 200), pixel=(3, 10))
    report = gate(baseline=suite(gmi=(180, 200), pixel=(9, 10)), hardened=hardened, floor=floor)
    ratio = checks(report)["leakage_ratio"]
    assert report["hardened_worst_case_leakage"]["attack"] == "gmi"
    assert ratio["value"] == pytest.approx(0.2) and ratio["attack"] == "pixel"
    assert ratio["bound"] == pytest.approx(report["attacks"]["pixel"]["hardened"]["leakage"]["upper"])
    assert ratio["bound"] > report["hardened_worst_case_leakage"]["upper"]


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        ({}, "approved"),
        ({"max_attack_acc1": 0.1}, "rejected"),  # even the lower bound 0.15 exceeds it
        ({"max_attack_acc1": 0.2}, "inconclusive"),  # 0.2 lies inside [0.15, 0.26]
        ({"max_leakage_ratio": 0.02}, "rejected"),  # 0.02 x 0.8 = 0.016 < the leakage's lower bound 0.03
        ({"max_leakage_ratio": 0.05}, "inconclusive"),  # 0.04 lies inside [0.03, 0.17]
        ({"min_baseline_leakage": 0.9}, "inconclusive"),
        ({"max_accuracy_drop": 0.01}, "rejected"),
        ({"min_knn_distance": 25.0}, "rejected"),
    ],
)
def test_changing_a_threshold_changes_the_verdict(change, verdict):
    assert gate(thresholds=GateSection(**{**LIMITS, **change}))["verdict"] == verdict


def test_a_lower_confidence_narrows_the_interval_enough_to_decide():
    straddling = suite(gmi=(80, 200), pixel=(30, 200))
    assert gate(hardened=straddling)["verdict"] == "inconclusive"
    low = GateSection(**{**LIMITS, "confidence": 0.2, "max_attack_acc1": 0.42})
    assert gate(hardened=straddling, thresholds=low)["verdict"] == "approved"


def test_boundaries_are_inclusive():
    limits = GateSection(**{**LIMITS, "max_accuracy_drop": 0.0625, "min_knn_distance": 20.0})
    report = gate(harden_report=harden(nat=0.8125, base=0.875), thresholds=limits)  # binary-exact: drop 0.0625
    assert report["verdict"] == "approved"


def with_field(report, attack, key, value):
    report = json.loads(json.dumps(report))
    if value is None:
        del report["attacks"][attack][key]
    else:
        report["attacks"][attack][key] = value
    return report


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hardened": with_field(PRIVATE, "pixel", "knn_distance", {"mean": math.nan})},
         r"hardened attack report: attack 'pixel' knn_distance.mean is nan"),
        ({"hardened": with_field(PRIVATE, "gmi", "acc1_pooled", {"correct": math.nan, "n": 200})},
         r"hardened attack report: attack 'gmi' acc1_pooled needs non-negative integer counts, got correct=nan"),
        ({"harden_report": harden(nat=math.nan)}, "harden report: natural_accuracy is nan"),
        ({"harden_report": {"natural_accuracy": 0.9}}, "harden report: baseline_natural_accuracy is None"),
        ({"floor": suite(gmi=(20, 200))}, r"attack 'pixel' is missing from the floor attack report"),
        ({"hardened": suite(gmi=(40, 200))}, r"attack 'pixel' is in the baseline attack report but missing from "
                                             r"the hardened one"),
        ({"baseline": with_field(BASELINE, "gmi", "acc1_pooled", None)},
         r"baseline attack report: attack 'gmi' has no 'acc1_pooled'"),
        ({"floor": suite(gmi=(21, 20), pixel=(1, 20))}, r"floor attack report: attack 'gmi' acc1_pooled.correct = 21 "
                                                        r"exceeds n = 20"),
        ({"floor": suite(gmi=(0, 0), pixel=(1, 20))}, "acc1_pooled.n is 0"),
        ({"baseline": {"attacks": {}}}, "baseline attack report lists no attacks"),
    ],
)  # fmt: skip
def test_reports_the_gate_cannot_judge_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gate(**kwargs)


def test_every_problem_is_listed_at_once():
    broken = with_field(PRIVATE, "gmi", "acc1_pooled", None)
    with pytest.raises(ValueError) as err:
        gate(hardened=broken, harden_report={"natural_accuracy": math.inf, "baseline_natural_accuracy": 0.9})
    assert "attack 'gmi' has no 'acc1_pooled'" in str(err.value) and "natural_accuracy is inf" in str(err.value)


@pytest.mark.parametrize(
    "change",
    [{"max_attack_acc1": math.nan}, {"min_knn_distance": math.inf}, {"confidence": 1.0}, {"confidence": 0.0},
     {"max_leakage_ratio": -0.1}, {"min_baseline_leakage": math.nan}],
)  # fmt: skip
def test_thresholds_must_be_finite_and_in_range(change):
    with pytest.raises(ValidationError, match=next(iter(change))):
        GateSection(**{**LIMITS, **change})


@pytest.fixture()
def stage_files(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    files = {
        "baseline": BASELINE, "hardened": {**LEAKY, "checkpoint_sha256": sha256_file(ckpt)}, "floor": FLOOR,
        "harden": harden(),
    }  # fmt: skip
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    params = tmp_path / "params.yaml"
    params.write_text(f"mlflow: {{experiment: test}}\ngate: {json.dumps(LIMITS)}\n")
    argv = [
        "--params", str(params), "--baseline-attacks", str(tmp_path / "baseline.json"),
        "--hardened-attacks", str(tmp_path / "hardened.json"), "--floor-attacks", str(tmp_path / "floor.json"),
        "--harden-metrics", str(tmp_path / "harden.json"), "--checkpoint", str(ckpt),
        "--out", str(tmp_path / "gate.json"),
    ]  # fmt: skip
    return tmp_path, argv


def test_stage_writes_report_and_exits_zero_unless_strict(stage_files, monkeypatch):
    tmp_path, argv = stage_files
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert gate_stage.main(argv) == 0
    report = json.loads((tmp_path / "gate.json").read_text())
    assert report["verdict"] == "rejected" and report["attacks"]["gmi"]["floor_acc1"]["n"] == 200
    assert gate_stage.main([*argv, "--strict"]) == 1


def test_stage_refuses_a_report_about_another_checkpoint(stage_files, monkeypatch):
    tmp_path, argv = stage_files
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "model.pt").write_bytes(b"tampered")
    with pytest.raises(SystemExit, match="different checkpoint"):
        gate_stage.main(argv)
    assert not (tmp_path / "gate.json").exists()


def test_stage_names_the_report_and_attack_it_cannot_judge(stage_files, monkeypatch):
    tmp_path, argv = stage_files
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "floor.json").write_text(json.dumps(suite(gmi=(20, 200))))
    with pytest.raises(SystemExit, match=r"(?s)attack 'pixel' is missing from the floor.*floor: .*floor\.json"):
        gate_stage.main(argv)
    assert not (tmp_path / "gate.json").exists()
