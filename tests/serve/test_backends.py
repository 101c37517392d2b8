"""Backend choice at start-up: TensorRT → ORT CUDA → PyTorch CUDA → ORT CPU, each skip with its reason."""

import numpy as np
import pytest
import torch

from pipeline.export.ort_runtime import create_session
from pipeline.serve import backends
from pipeline.serve.backends import SERVE_ORDER, BackendOptions, select_backend
from pipeline.serve.source import ModelSource, resolve_source


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(backends, "tensorrt_available", lambda: (False, "tensorrt is not installed"))
    monkeypatch.setattr(backends, "cuda_device", lambda: (False, "no CUDA GPU"))


def _with_checkpoint(release) -> ModelSource:
    source = resolve_source(str(release.onnx))
    source.checkpoint_path = release.checkpoint
    return source


def test_order_is_the_documented_preference():
    assert SERVE_ORDER == ("tensorrt", "onnxruntime_cuda", "torch_cuda", "onnxruntime_cpu")


def test_without_gpu_onnxruntime_cpu_serves_and_the_skips_are_explained(release, no_gpu):
    backend, attempts = select_backend(_with_checkpoint(release), BackendOptions())
    assert backend.name == "onnxruntime_cpu" and backend.providers == ["CPUExecutionProvider"]
    assert [(a["backend"], a["used"]) for a in attempts] == [
        ("tensorrt", False), ("onnxruntime_cuda", False), ("torch_cuda", False), ("onnxruntime_cpu", True),
    ]  # fmt: skip
    assert attempts[0]["reason"] == "tensorrt is not installed" and attempts[1]["reason"] == "no CUDA GPU"
    assert backend(np.zeros((3, 1, 12, 12), np.float32)).shape == (3, 4)


def test_cpu_onnxruntime_build_is_skipped_for_cuda_with_the_extra_to_install(release, monkeypatch):
    monkeypatch.setattr(backends, "tensorrt_available", lambda: (False, "tensorrt is not installed"))
    monkeypatch.setattr(backends, "cuda_device", lambda: (True, "Fake GPU"))
    monkeypatch.setattr(backends, "available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the real load of torch_cuda must fail
    backend, attempts = select_backend(_with_checkpoint(release), BackendOptions())
    reasons = {a["backend"]: a["reason"] for a in attempts}
    assert "pip install .[gpu]" in reasons["onnxruntime_cuda"]
    assert reasons["torch_cuda"].startswith("load failed: ")  # available on paper, failed for real: recorded
    assert backend.name == "onnxruntime_cpu"


def test_onnx_only_source_cannot_use_pytorch(release, no_gpu):
    _, attempts = select_backend(resolve_source(str(release.onnx)), BackendOptions())
    assert {a["backend"]: a["reason"] for a in attempts}["torch_cuda"] == "the model source has no PyTorch checkpoint"
    with pytest.raises(RuntimeError, match="no PyTorch checkpoint"):
        select_backend(resolve_source(str(release.onnx)), BackendOptions(), forced="torch_cpu")


def test_forced_backend_does_not_fall_back(release, no_gpu):
    with pytest.raises(RuntimeError, match="no inference backend can serve .*tensorrt: tensorrt is not installed"):
        select_backend(_with_checkpoint(release), BackendOptions(), forced="tensorrt")
    backend, _ = select_backend(_with_checkpoint(release), BackendOptions(), forced="torch_cpu")
    assert backend.name == "torch_cpu"


def test_dropped_provider_is_an_error_not_a_silent_cpu_session(release):
    with pytest.raises(RuntimeError, match="asked for CUDAExecutionProvider but uses"):
        create_session(release.onnx, ["CUDAExecutionProvider"])


def test_unknown_model_uri_is_refused():
    with pytest.raises(ValueError, match="expected models:/<name>@<alias>"):
        resolve_source("model.h5")
