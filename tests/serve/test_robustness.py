"""The probes of issue #11 against a real server on 127.0.0.1 with a fake backend: each is a bad
client or a bad model, and the server answers it with a clear status, keeps serving, and counts it."""

import json
import re
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipeline.serve.protocol import HEADER_LENGTH
from tests.serve.live import body, serving


def _zeros(x: np.ndarray) -> np.ndarray:
    return np.zeros((len(x), 2), np.float32)


def _strict_json(text: str):
    def refuse(constant: str):
        raise AssertionError(f"bare {constant} in a JSON response")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("workers", [0, 1], ids=["inline", "parse_worker"])
def test_deeply_nested_json_is_a_400_not_a_500(workers):
    nested_data = body()
    nested_data["inputs"][0]["data"] = json.loads("[" * 200 + "0.5" + "]" * 200)
    with serving(_zeros, parse_workers=workers, inline_parse_bytes=0) as (url, _):
        infer = f"{url}/v2/models/m/infer"
        deep = httpx.post(infer, content=b"[" * 200_000 + b"]" * 200_000, timeout=30)
        assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]
        ragged = httpx.post(infer, json=nested_data, timeout=30)
        assert ragged.status_code == 400 and "inputs[0].data" in ragged.json()["error"]
        assert httpx.post(infer, json=body(), timeout=30).status_code == 200  # the parse worker survived it


def test_non_finite_outputs_are_never_bare_nan_in_json():
    def nan_model(x: np.ndarray) -> np.ndarray:
        return np.full((len(x), 2), np.nan, np.float32)

    with serving(nan_model) as (url, _):
        r = httpx.post(f"{url}/v2/models/m/infer", json=body(), timeout=10)
        assert r.status_code == 500 and "NaN or infinite" in _strict_json(r.text)["error"]
        binary = {**body(), "parameters": {"binary_data_output": True}}
        r = httpx.post(f"{url}/v2/models/m/infer", json=binary, timeout=10)
        head = int(r.headers[HEADER_LENGTH])
        assert r.status_code == 200 and _strict_json(r.content[:head].decode())["outputs"][0]["shape"] == [1, 2]
        assert np.isnan(np.frombuffer(r.content[head:], "<f4")).all()  # carried as raw IEEE floats


def test_every_status_code_is_counted_in_metrics():
    def broken(x: np.ndarray):
        if x[0, 0, 0, 0] == 9:
            raise RuntimeError("backend exploded")
        if x[0, 0, 0, 0] == 7:
            return [[0.0, 0.0]]  # not an array: the encoder fails unhandled -> Starlette's 500
        return _zeros(x)

    with serving(broken) as (url, _):
        assert httpx.get(f"{url}/no/such/path").status_code == 404
        assert httpx.post(f"{url}/v2/models/other/infer", json=body()).status_code == 404
        assert httpx.post(f"{url}/v2/models/m/infer", content=b"{").status_code == 400
        assert httpx.post(f"{url}/v2/models/m/infer", json=body(value=9)).status_code == 500
        assert httpx.post(f"{url}/v2/models/m/infer", json=body(value=7)).status_code == 500
        assert httpx.post(f"{url}/v2/models/m/infer", json=body()).status_code == 200
        text = httpx.get(f"{url}/metrics").text
    counted = {
        (m["route"], m["code"]): float(m["n"])
        for m in re.finditer(
            r'http_responses_total\{code="(?P<code>\d+)",method="\w+",route="(?P<route>[^"]+)"\} '
            r"(?P<n>[\d.]+)",
            text,
        )  # fmt: skip
    }
    infer = "/v2/models/{model}/infer"
    assert counted[("unmatched", "404")] == 1 and counted[(infer, "404")] == 1 and counted[(infer, "400")] == 1
    assert counted[(infer, "500")] == 2 and counted[(infer, "200")] == 1
    assert counted[("/v2/health/ready", "200")] >= 1
    assert 'inference_requests_total{code="500",model="m"} 2.0' in text
    assert 'inference_requests_total{code="404",model="unknown"} 1.0' in text


def _read_whole_response(conn: socket.socket) -> str:
    """Headers and body may arrive in separate segments; read until the body is complete."""
    reply = b""
    while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _content_length(reply):
        chunk = conn.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply.decode()


def _content_length(reply: bytes) -> int:
    for line in reply.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_body_not_sent_in_time_gets_408():
    with serving(_zeros, body_timeout_s=0.5) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"inputs\": ")  # fmt: skip
            start = time.monotonic()
            reply = _read_whole_response(conn)
        assert reply.startswith("HTTP/1.1 408") and "not received within 0.5 s" in reply
        assert time.monotonic() - start < 5
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200


def test_in_flight_requests_are_bounded_with_503():
    armed, gate = threading.Event(), threading.Event()

    def blocking(x: np.ndarray) -> np.ndarray:
        if armed.is_set():
            gate.wait(timeout=30)
        return _zeros(x)

    with serving(blocking, max_inflight=2) as (url, _):
        armed.set()  # warm-up has passed through; now requests block in the backend
        with ThreadPoolExecutor(2) as pool:
            held = [pool.submit(httpx.post, f"{url}/v2/models/m/infer", json=body(), timeout=30) for _ in range(2)]
            deadline = time.monotonic() + 10
            while "inference_inflight_requests 2.0" not in httpx.get(f"{url}/metrics").text:
                assert time.monotonic() < deadline, "the two requests never got in flight"
                time.sleep(0.02)
            busy = httpx.post(f"{url}/v2/models/m/infer", json=body(), timeout=10)
            assert busy.status_code == 503 and "2 infer requests in flight (limit 2)" in busy.json()["error"]
            assert busy.headers["retry-after"] == "1"
            assert httpx.get(f"{url}/v2/health/live").status_code == 200  # health is not an infer request
            gate.set()
            assert [f.result().status_code for f in held] == [200, 200]
        assert httpx.post(f"{url}/v2/models/m/infer", json=body(), timeout=10).status_code == 200


@pytest.mark.parametrize("docs", [False, True])
def test_docs_and_openapi_are_off_unless_asked_for(docs):
    with serving(_zeros, docs=docs) as (url, _):
        codes = {path: httpx.get(f"{url}{path}").status_code for path in ("/docs", "/redoc", "/openapi.json")}
    assert codes == {p: 200 if docs else 404 for p in codes}


def test_metadata_names_no_local_path_and_no_temp_folder_is_left(release, monkeypatch, tmp_path):
    from pipeline.serve.source import resolve_source

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # every temporary folder lands here
    source = resolve_source(str(release.onnx))
    with serving(_zeros, source) as (url, _):
        text = httpx.get(f"{url}/v2/models/m").text
    assert str(release.root) not in text and str(Path.cwd()) not in text and "/tmp" not in text
    described = json.loads(text)["parameters"]["source"]
    assert described["kind"] == "onnx" and described["gated"] is True and len(described["sha256"]) == 64
    assert list(tmp_path.iterdir()) == []

    checkpoint = resolve_source(str(release.checkpoint), unsafe_ungated=True)
    exported = checkpoint.onnx(max_batch=4)  # a backend that needs ONNX exports into a scratch folder
    assert exported.is_file() and exported.parent.parent == tmp_path
    checkpoint.close()
    assert list(tmp_path.iterdir()) == []
