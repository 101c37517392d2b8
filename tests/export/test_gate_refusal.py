"""Export and register ship only the checkpoint the gate approved: anything else is refused."""

import json

import pytest

from pipeline.export import GateRefusal, require_approved, run_export
from stages.export import main as export_main
from tests.export.release_fixtures import export_config, write_checkpoint, write_gate, write_params


@pytest.fixture
def approved(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "model.pt")
    return checkpoint, write_gate(tmp_path / "gate.json", checkpoint)


def test_approved_gate_for_this_checkpoint_passes(approved):
    checkpoint, gate = approved
    result = require_approved(gate, checkpoint)
    assert result.verdict == "approved" and result.natural_accuracy == 0.85 and result.worst_case_acc1 == 0.1


@pytest.mark.parametrize("verdict", ["rejected", "inconclusive"])
def test_red_gate_is_refused_naming_the_verdict(tmp_path, verdict):
    checkpoint = write_checkpoint(tmp_path / "model.pt")
    gate = write_gate(tmp_path / "gate.json", checkpoint, verdict=verdict)
    with pytest.raises(GateRefusal, match=f"verdict is '{verdict}'.*deciding attack: plg_mi"):
        require_approved(gate, checkpoint)


def test_tampered_checkpoint_is_refused(approved):
    checkpoint, gate = approved
    write_checkpoint(checkpoint, seed=1)  # retrained (or swapped) after the gate judged it
    with pytest.raises(GateRefusal, match="changed after it was judged"):
        require_approved(gate, checkpoint)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("verdict"), "missing key 'verdict'"),
        (lambda r: r.pop("checkpoint_sha256"), "missing key 'checkpoint_sha256'"),
        (lambda r: r.pop("failed_checks"), "missing key 'failed_checks'"),
        (lambda r: r["checks"][0].update(passed=False), "passed=False: the report is inconsistent"),
    ],
)
def test_incomplete_or_inconsistent_report_is_refused(approved, edit, message):
    checkpoint, gate = approved
    report = json.loads(gate.read_text())
    edit(report)
    gate.write_text(json.dumps(report))
    with pytest.raises(GateRefusal, match=message):
        require_approved(gate, checkpoint)


def test_missing_or_garbled_report_is_refused(approved, tmp_path):
    checkpoint, gate = approved
    with pytest.raises(GateRefusal, match="not found"):
        require_approved(tmp_path / "nope.json", checkpoint)
    gate.write_text("{not json")
    with pytest.raises(GateRefusal, match="not valid JSON"):
        require_approved(gate, checkpoint)


def test_refused_export_writes_nothing(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "model.pt")
    gate = write_gate(tmp_path / "gate.json", checkpoint, verdict="rejected")
    with pytest.raises(GateRefusal):
        run_export(export_config(), checkpoint=checkpoint, gate=gate, out_dir=tmp_path / "out",
                   report=tmp_path / "export.json")  # fmt: skip
    assert not (tmp_path / "out").exists() and not (tmp_path / "export.json").exists()


def test_stage_exits_nonzero_with_the_reason(tmp_path, capsys):
    checkpoint = write_checkpoint(tmp_path / "model.pt")
    gate = write_gate(tmp_path / "gate.json", checkpoint, verdict="inconclusive")
    params = write_params(tmp_path / "params.yaml", export={})
    argv = ["--params", str(params), "--checkpoint", str(checkpoint), "--gate", str(gate), "--data", "unused",
            "--out", str(tmp_path / "out"), "--report", str(tmp_path / "r.json")]  # fmt: skip
    assert export_main(argv) == 1
    assert "verdict is 'inconclusive'" in capsys.readouterr().err
