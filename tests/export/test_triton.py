"""Triton model repository: config.pbtxt text and directory layout."""

from pipeline.export.onnx_export import TensorSpec
from pipeline.export.triton import config_pbtxt, write_repository

INPUTS = [TensorSpec("input", (1, 28, 28))]
OUTPUTS = [TensorSpec("logits", (10,))]


def test_config_text_has_batching_and_dims_without_batch():
    text = config_pbtxt("clf", "onnxruntime_onnx", INPUTS, OUTPUTS, max_batch_size=64, max_queue_delay_us=500)
    assert (
        text
        == """name: "clf"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 1, 28, 28 ]
  }
]
output [
  {
    name: "logits"
    data_type: TYPE_FP32
    dims: [ 10 ]
  }
]
dynamic_batching {
  max_queue_delay_microseconds: 500
}
instance_group [
  {
    count: 1
    kind: KIND_GPU
  }
]
"""
    )


def test_repository_layout_onnx_and_engine(tmp_path):
    onnx_file, plan = tmp_path / "m.onnx", tmp_path / "m.engine"
    onnx_file.write_bytes(b"onnx")
    plan.write_bytes(b"plan")
    repo = tmp_path / "triton"
    kwargs = {"max_batch_size": 8, "max_queue_delay_us": 100}
    names = write_repository(repo, "clf", {"onnx": onnx_file, "tensorrt": plan}, INPUTS, OUTPUTS, **kwargs)
    assert names == ["clf", "clf_trt"]
    assert (repo / "clf" / "1" / "model.onnx").read_bytes() == b"onnx"
    assert (repo / "clf_trt" / "1" / "model.plan").read_bytes() == b"plan"
    assert 'platform: "tensorrt_plan"' in (repo / "clf_trt" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in (repo / "clf" / "config.pbtxt").read_text()

    # Next export without an engine: the stale TensorRT model disappears, nothing else is left behind.
    assert write_repository(repo, "clf", {"onnx": onnx_file}, INPUTS, OUTPUTS, **kwargs) == ["clf"]
    assert sorted(p.name for p in repo.iterdir()) == ["clf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.onnx", "triton"]


def test_exported_release_has_a_triton_model(release):
    model_dir = release.out / "triton" / "calor-classifier"
    text = (model_dir / "config.pbtxt").read_text()
    assert "max_batch_size: 16" in text and "dims: [ 1, 12, 12 ]" in text and "dims: [ 4 ]" in text
    assert (model_dir / "1" / "model.onnx").read_bytes() == release.onnx.read_bytes()
