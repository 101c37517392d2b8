"""Export round trip: checkpoint → ONNX (dynamo, one file, dynamic batch) → ONNX Runtime == PyTorch."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pipeline.checkpoint import load_checkpoint
from pipeline.export import ExportFailure, run_export
from pipeline.export.onnx_export import INPUT_NAME, OUTPUT_NAME, read_metadata
from pipeline.export.provenance import from_metadata_props
from stages.export import main as export_main
from tests.export.release_fixtures import (
    MAX_BATCH,
    export_config,
    write_checkpoint,
    write_gate,
    write_params,
    write_private_test,
)


def test_report_records_parity_at_1_7_and_max(release):
    onnx_section = release.result["formats"]["onnx"]
    assert release.result["status"] == "exported"
    assert [b["batch_size"] for b in onnx_section["parity"]["batches"]] == [1, 7, MAX_BATCH]
    assert all(b["passed"] and b["max_abs_diff"] < 1e-5 for b in onnx_section["parity"]["batches"])
    assert onnx_section["parity"]["top1_agreement"] == 1.0 and onnx_section["parity"]["n_images"] == 48
    assert json.loads(release.report.read_text()) == release.result


def test_onnx_is_one_checked_file_with_dynamic_batch(release):
    assert sorted(p.name for p in release.out.iterdir()) == ["model.onnx", "triton"]  # no model.onnx.data
    onnx.checker.check_model(str(release.onnx), full_check=True)
    proto = onnx.load(str(release.onnx))
    assert [i.name for i in proto.graph.input] == [INPUT_NAME] and [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    assert proto.ir_version <= onnx.IR_VERSION


def test_conv_batchnorm_is_folded(release):
    """Eval-mode export lets the exporter fold every Conv+BatchNorm (what makes ORT beat eager)."""
    nodes = onnx.load(str(release.onnx)).graph.node
    producer = {out: n.op_type for n in nodes for out in n.output}
    assert [n.op_type for n in nodes].count("Conv") == 4
    assert not [n.name for n in nodes if n.op_type == "BatchNormalization" and producer.get(n.input[0]) == "Conv"]


def test_onnx_runtime_matches_pytorch_on_new_batch_sizes(release):
    model, _ = load_checkpoint(release.checkpoint)
    session = ort.InferenceSession(str(release.onnx), providers=["CPUExecutionProvider"])
    for batch in (2, 5, MAX_BATCH):
        x = np.random.default_rng(batch).random((batch, 1, 12, 12), dtype=np.float32)
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(session.run(None, {INPUT_NAME: x})[0], expected, atol=1e-5, rtol=1e-5)


def test_provenance_is_inside_the_onnx_file(release):
    meta = from_metadata_props(read_metadata(release.onnx))
    gate = json.loads(release.gate.read_text())
    assert meta["checkpoint_sha256"] == gate["checkpoint_sha256"]
    assert meta["gate_verdict"] == "approved" and meta["defense"] == "calor"
    assert json.loads(meta["defense_settings"])["harden"]["calor"]["low_rank"]["rank"] == 2
    assert {"torch", "onnx", "onnxruntime", "python"} <= set(json.loads(meta["library_versions"]))
    assert len(meta["params_sha256"]) == 64 and meta["git_commit"]


def test_tensorrt_is_skipped_with_a_reason_here(release):
    status = release.result["formats"]["tensorrt"]["status"]
    assert status.startswith("skipped: ") or status == "built"


def test_parity_failure_fails_the_export_and_keeps_no_model(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "model.pt")
    gate = write_gate(tmp_path / "gate.json", checkpoint)
    cfg = export_config(parity={"atol": 1e-30, "rtol": 0.0})  # fp32 reorderings differ by ~1e-8
    report = tmp_path / "export.json"
    with pytest.raises(ExportFailure, match="parity"):
        run_export(cfg, checkpoint=checkpoint, gate=gate, out_dir=tmp_path / "out", report=report)
    assert not (tmp_path / "out" / "model.onnx").exists()
    written = json.loads(report.read_text())
    assert written["status"].startswith("failed") and written["formats"]["onnx"]["parity"]["passed"] is False


def test_stage_main_exports(tmp_path, release):
    params = write_params(
        tmp_path / "params.yaml",
        export={"max_batch": 4, "parity": {"batch_sizes": [1, 3]}, "tensorrt": {"opt_batch": 2}},
    )
    data = write_private_test(tmp_path / "private_test.npz", n=8)
    argv = ["--params", str(params), "--checkpoint", str(release.checkpoint), "--gate", str(release.gate),
            "--data", str(data), "--out", str(tmp_path / "out"), "--report", str(tmp_path / "r.json")]  # fmt: skip
    assert export_main(argv) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [b["batch_size"] for b in report["formats"]["onnx"]["parity"]["batches"]] == [1, 3, 4]
    assert (tmp_path / "out" / "triton" / "calor-classifier" / "1" / "model.onnx").is_file()
