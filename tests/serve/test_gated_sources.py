"""A release server serves what the gate approved; anything else needs --unsafe-ungated."""

import pytest

from pipeline.export.onnx_export import export_onnx
from pipeline.serve.__main__ import main as serve_main
from pipeline.serve.source import UngatedModel, resolve_source
from tests.export.release_fixtures import tiny_model


def test_a_raw_checkpoint_needs_unsafe_ungated(release):
    with pytest.raises(UngatedModel, match="raw .pt checkpoint has not passed the release gate.*--unsafe-ungated"):
        resolve_source(str(release.checkpoint))
    source = resolve_source(str(release.checkpoint), unsafe_ungated=True)
    assert not source.gated and source.kind == "checkpoint" and source.workdir is None


def test_the_cli_refuses_a_raw_checkpoint_with_the_flag_to_use(release, capsys):
    assert serve_main(["--model", str(release.checkpoint)]) == 1
    assert "--unsafe-ungated" in capsys.readouterr().err


def test_an_onnx_file_without_a_gate_record_needs_unsafe_ungated(tmp_path):
    path = tmp_path / "bare.onnx"
    export_onnx(tiny_model(), path, max_batch=4)  # exported outside the gated export stage: no provenance
    with pytest.raises(UngatedModel, match="has no gate record"):
        resolve_source(str(path))
    assert resolve_source(str(path), unsafe_ungated=True).gated is False


def test_the_export_directory_and_its_onnx_are_served_as_approved(release):
    for uri in (str(release.out), str(release.onnx)):
        source = resolve_source(uri)
        assert source.gated and source.onnx_path == release.onnx
    assert resolve_source(str(release.out)).kind == "export_dir"


def test_no_champion_yet_is_a_clear_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    """`make serve` before any approved release: the registry has no such model or alias."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert serve_main(["--model", "models:/calor-classifier@champion"]) == 1
    err = capsys.readouterr().err
    assert "models:/calor-classifier@champion: not in the model registry" in err
    assert "make repro" in err
