"""The server end to end on 127.0.0.1: a real process, spoken to with tritonclient and raw HTTP."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from pipeline.checkpoint import load_checkpoint
from pipeline.serve.process import server_process

ROOT = Path(__file__).resolve().parents[2]
MODEL = "tiny"
MAX_BATCH, MAX_BODY = 16, 64 * 1024


@pytest.fixture(scope="module")
def server(release, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    args = ["--model", str(release.onnx), "--max-batch", str(MAX_BATCH), "--max-wait-ms", "2",
            "--max-body-bytes", str(MAX_BODY), "--model-name", MODEL]  # fmt: skip
    with server_process(args, log, ROOT) as running:
        yield running.url, running.port, log


@pytest.fixture(scope="module")
def triton(server):
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(f"127.0.0.1:{server[1]}")


def _infer(triton, x, binary=True):
    import tritonclient.http as httpclient

    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("logits", binary_data=binary)]
    return triton.infer(MODEL, [tensor], outputs=outputs).as_numpy("logits")


def test_health_and_metadata(triton, server):
    assert triton.is_server_live() and triton.is_server_ready() and triton.is_model_ready(MODEL)
    meta = triton.get_model_metadata(MODEL)
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 12, 12]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["platform"] == "onnxruntime_onnx" and meta["parameters"]["backend"] == "onnxruntime_cpu"
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    assert "backend onnxruntime_cpu   USED" in server[2].read_text()


@pytest.mark.parametrize("binary", [True, False])
def test_infer_matches_the_pytorch_model(triton, release, binary):
    model, _ = load_checkpoint(release.checkpoint)
    for batch in (1, 5):
        x = np.random.default_rng(batch).random((batch, 1, 12, 12), dtype=np.float32)
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(_infer(triton, x, binary), expected, atol=1e-5, rtol=1e-5)


def _post(url, body, **kwargs):
    return httpx.post(f"{url}/v2/models/{MODEL}/infer", content=body, timeout=10, **kwargs)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"datatype": "INT32"}, "datatype must be 'FP32'"),
        ({"shape": [1, 3, 12, 12], "data": [0.0] * 432}, "shape must be"),
        ({"shape": [MAX_BATCH + 1, 1, 12, 12], "data": [0.0] * 144 * (MAX_BATCH + 1)}, "batch <="),
        ({"data": [0.1] * 143 + [float("nan")]}, "NaN or infinite"),
        ({"data": ["x"] * 144}, "must hold numbers"),
        ({"name": "image"}, "inputs\\[0\\].name must be 'input'"),
    ],
)
def test_malformed_requests_get_400_with_a_message(server, tensor, message):
    body = {"name": "input", "shape": [1, 1, 12, 12], "datatype": "FP32", "data": [0.5] * 144, **tensor}
    response = _post(server[0], json.dumps({"inputs": [body]}))
    assert response.status_code == 400
    assert re.search(message, response.json()["error"])


def test_garbage_and_oversize_bodies_are_refused(server, triton):
    url = server[0]
    assert _post(url, b"\xff\xfe not json").status_code == 400
    big = _post(url, b"0" * (MAX_BODY + 1))
    assert big.status_code == 413 and "exceeds the limit" in big.json()["error"]

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(MAX_BODY // 4096 + 2):
            yield b" " * 4096

    assert _post(url, chunks()).status_code == 413
    assert httpx.post(f"{url}/v2/models/other/infer", content=b"{}").status_code == 404
    assert triton.is_server_ready()  # none of it hurt the server


def test_metrics_expose_latency_batch_size_and_backend(server, triton):
    _infer(triton, np.zeros((2, 1, 12, 12), np.float32))
    text = httpx.get(f"{server[0]}/metrics").text
    assert 'inference_backend_info{backend="onnxruntime_cpu"' in text
    assert "inference_request_duration_seconds_bucket" in text and "inference_batch_size_bucket" in text
    assert 'inference_requests_total{code="400",model="tiny"}' in text


def _load(url, release, clients: int, requests: int) -> tuple[int, int, float]:
    """``clients`` threads x ``requests`` JSON requests; (errors, wrong answers, seconds)."""
    x = np.random.default_rng(0).random((1, 1, 12, 12), dtype=np.float32)
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 12, 12], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]})  # fmt: skip
    model, _ = load_checkpoint(release.checkpoint)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy().ravel()

    def client(_: int) -> tuple[int, int]:
        errors = wrong = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(requests):
                r = http.post(f"/v2/models/{MODEL}/infer", content=body)
                if r.status_code != 200:
                    errors += 1
                elif not np.allclose(r.json()["outputs"][0]["data"], expected, atol=1e-5):
                    wrong += 1
        return errors, wrong

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    return sum(e for e, _ in results), sum(w for _, w in results), time.perf_counter() - start


def test_loopback_load_4_clients_25_requests_each(server, release):
    """The functional half of the load test, in the default run: concurrent clients, right answers."""
    errors, wrong, _ = _load(server[0], release, clients=4, requests=25)
    assert errors == 0 and wrong == 0


@pytest.mark.slow
def test_loopback_load_16_clients_200_requests_each(server, release):
    """3,200 requests: a load run, not a unit test (bench/serve.py measures it; see bench/README.md)."""
    errors, wrong, elapsed = _load(server[0], release, clients=16, requests=200)
    assert errors == 0 and wrong == 0
    metrics = httpx.get(f"{server[0]}/metrics").text
    batched = [line for line in metrics.splitlines() if line.startswith("inference_batch_size_count")]
    print(f"3200 requests in {elapsed:.1f} s ({3200 / elapsed:.0f} req/s); {batched}")
