"""Readiness turns true only after warm-up; live answers before; inference waits for ready."""

import threading

import numpy as np
from fastapi.testclient import TestClient

from pipeline.export.onnx_export import TensorSpec
from pipeline.serve.app import create_app
from pipeline.serve.backends import FunctionBackend
from pipeline.serve.config import ServeSection
from pipeline.serve.source import ModelSource


def test_ready_only_after_warm_up(tmp_path):
    release = threading.Event()
    seen = []

    def infer(x: np.ndarray) -> np.ndarray:
        release.wait(timeout=10)  # warm-up blocks here until the test lets it go
        seen.append(len(x))
        return np.zeros((len(x), 2), np.float32)

    backend = FunctionBackend("fake", "fake_platform", ["cpu"], infer)
    source = ModelSource("fake.onnx", TensorSpec("input", (1, 2, 2)), TensorSpec("logits", (2,)), workdir=tmp_path)
    app = create_app(backend, source, ServeSection(model_name="m", max_batch=4, warmup_iterations=2), [])
    with TestClient(app) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/models/m/ready").status_code == 503
        body = {"inputs": [{"name": "input", "shape": [1, 1, 2, 2], "datatype": "FP32", "data": [0.0] * 4}]}
        assert client.post("/v2/models/m/infer", json=body).status_code == 503
        release.set()
        for _ in range(100):
            if client.get("/v2/health/ready").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert client.get("/v2/models/m/ready").json() == {"ready": True}
        assert seen[:4] == [1, 1, 4, 4]  # batch 1 and max_batch, warmup_iterations each
        assert client.post("/v2/models/m/infer", json=body).json()["outputs"][0]["shape"] == [1, 2]
        assert client.get("/v2/models/other").status_code == 404
