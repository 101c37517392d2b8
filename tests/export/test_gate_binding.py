"""The gate binding re-checks every check the gate writes and never trusts a report's own flags.

Each probe of issue #11 is a hand edit of a report the real gate wrote: the edit must be refused
with a message naming the check, field or key.
"""

import hashlib
import json

import numpy as np
import pytest
import torch

from pipeline.export import GateRefusal, require_approved
from pipeline.export.gate import RULES
from pipeline.gate import evaluate_gate
from tests.export.release_fixtures import GATE_THRESHOLDS, _attacks, write_checkpoint, write_gate


@pytest.fixture
def approved(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "model.pt")
    return checkpoint, write_gate(tmp_path / "gate.json", checkpoint)


def _edit(gate, edit):
    report = json.loads(gate.read_text())
    edit(report)
    gate.write_text(json.dumps(report))


def _check(report, name):
    return next(c for c in report["checks"] if c["name"] == name)


def test_the_binding_knows_exactly_the_checks_the_gate_writes(approved):
    _, gate = approved
    assert [c["name"] for c in json.loads(gate.read_text())["checks"]] == list(RULES)


def test_recomputed_status_agrees_with_the_gate_on_random_evidence():
    """Rules and gate in step: on 200 random reports, a check recomputes as a pass iff the gate passed it."""
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        n = int(rng.integers(20, 400))

        def counts(n=n):
            return {"attacks": {name: {"acc1": {"mean": 0}, "knn_distance": {"mean": float(rng.uniform(0, 1))},
                                       "acc1_pooled": {"correct": int(rng.integers(0, n + 1)), "n": n}}
                                for name in ("a", "b")}}  # fmt: skip

        harden = {"natural_accuracy": float(rng.uniform(0.7, 0.9)), "baseline_natural_accuracy": 0.85}
        report = evaluate_gate(GATE_THRESHOLDS, counts(), counts(), counts(), harden, "0" * 64)
        report = json.loads(json.dumps(report))  # as the binding reads it
        for check in report["checks"]:
            rule = RULES[check["name"]]
            recomputed = rule.judge(check["value"], check["bound"], rule.threshold(report), rule.comparison) is None
            assert recomputed == (check["status"] == "pass"), check
            seen.add((check["name"], check["status"]))
    assert {status for _, status in seen} == {"pass", "fail", "undecided"}


def test_failing_value_with_passed_true_is_refused(approved):
    checkpoint, gate = approved

    def edit(report):
        check = _check(report, "worst_case_attack_acc1")
        check.update(value=0.45, bound=0.5)  # above max_attack_acc1 0.3, flags left saying "pass"
        report["hardened_worst_case_acc1"] = 0.45
        assert check["passed"] is True and check["status"] == "pass" and report["verdict"] == "approved"

    _edit(gate, edit)
    with pytest.raises(GateRefusal, match=r"'worst_case_attack_acc1': upper bound 0\.5 is not <= threshold 0\.3 "
                                          r"\(the report says it passed\)"):  # fmt: skip
        require_approved(gate, checkpoint)


def test_point_check_failing_value_is_refused(approved):
    checkpoint, gate = approved
    _edit(gate, lambda r: _check(r, "min_knn_distance").update(value=0.1))
    with pytest.raises(GateRefusal, match=r"'min_knn_distance': value 0\.1 is not >= threshold 0\.5"):
        require_approved(gate, checkpoint)


def test_empty_checks_are_refused_naming_every_missing_check(approved):
    checkpoint, gate = approved
    _edit(gate, lambda r: r.update(checks=[]))
    with pytest.raises(GateRefusal, match="checks is empty: missing " + ", ".join(RULES)):
        require_approved(gate, checkpoint)


def test_partial_checks_are_refused_naming_the_missing_ones(approved):
    checkpoint, gate = approved
    _edit(gate, lambda r: r.update(checks=[c for c in r["checks"] if c["name"] not in ("leakage_ratio",
                                                                                     "min_knn_distance")]))  # fmt: skip
    with pytest.raises(GateRefusal, match="checks is incomplete: missing leakage_ratio, min_knn_distance"):
        require_approved(gate, checkpoint)


def test_non_empty_failed_checks_is_refused_even_when_verdict_says_approved(approved):
    checkpoint, gate = approved
    _edit(gate, lambda r: r.update(failed_checks=["leakage_ratio"]))
    with pytest.raises(GateRefusal, match=r"failed_checks is not empty: \['leakage_ratio'\]"):
        require_approved(gate, checkpoint)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: _check(r, "worst_case_attack_acc1").update(threshold=0.9), "threshold 0.9 differs from 0.3"),
        (lambda r: _check(r, "leakage_ratio").update(threshold=0.9), "threshold 0.9 differs from 0.4"),
        (lambda r: _check(r, "natural_accuracy_drop").update(comparison=">="), "judges this check with '<='"),
        (lambda r: _check(r, "baseline_leaks").update(bound=-0.01), r"lower bound -0\.01 is not > 0"),
        (lambda r: _check(r, "leakage_ratio").update(bound=None), "judged by its upper bound"),
        (lambda r: _check(r, "natural_accuracy_drop").update(value=float("nan")), "must both be finite numbers"),
        (lambda r: _check(r, "natural_accuracy_drop").update(value="0.01"), "must both be finite numbers"),
        (lambda r: r["checks"].append(dict(r["checks"][0])), "'baseline_leaks' appears more than once"),
        (lambda r: r["checks"].append({"name": "vibes", "passed": True}), "'vibes', which the gate does not write"),
        (lambda r: _check(r, "min_knn_distance").update(status="undecided"), "status='undecided'"),
        (lambda r: r.update(undecided_checks=["leakage_ratio"]), "undecided_checks is not empty"),
        (lambda r: r.pop("thresholds"), "missing key 'thresholds'"),
        (lambda r: r.update(hardened_worst_case_acc1=0.01), "hardened_worst_case_acc1 0.01 differs"),
        (lambda r: r.update(natural_accuracy=0.9), "differs from check 'natural_accuracy_drop'"),
    ],
)
def test_hand_edits_are_refused_with_a_message_naming_them(approved, edit, message):
    checkpoint, gate = approved
    _edit(gate, edit)
    with pytest.raises(GateRefusal, match=message):
        require_approved(gate, checkpoint)


def test_every_problem_is_listed_at_once(approved):
    checkpoint, gate = approved
    _edit(gate, lambda r: r.update(verdict="rejected", checks=[], failed_checks=["x"]))
    with pytest.raises(GateRefusal) as err:
        require_approved(gate, checkpoint)
    for reason in ("verdict is 'rejected'", "failed_checks is not empty", "checks is empty"):
        assert reason in str(err.value)


def test_the_loaded_model_is_the_bytes_that_were_hashed(approved, tmp_path):
    """Swap the file after the check: what loads is still the approved weights."""
    checkpoint, gate = approved
    gated = require_approved(gate, checkpoint)
    assert hashlib.sha256(gated.checkpoint_bytes).hexdigest() == gated.checkpoint_sha256
    original = {k: v.clone() for k, v in torch.load(checkpoint, weights_only=True)["state_dict"].items()}
    write_checkpoint(checkpoint, seed=7)  # swapped between the check and the load
    model, _ = gated.load_model()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, original[key])


def test_a_report_from_the_real_gate_passes_as_written(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "model.pt")
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    report = evaluate_gate(GATE_THRESHOLDS, _attacks({"a": 900}), _attacks({"a": 100}), _attacks({"a": 100}),
                           {"natural_accuracy": 0.85, "baseline_natural_accuracy": 0.9}, sha)  # fmt: skip
    (tmp_path / "gate.json").write_text(json.dumps(report))
    assert require_approved(tmp_path / "gate.json", checkpoint).verdict == "approved"
