"""Health answers in < 100 ms while 4 clients send 8 MiB JSON bodies to a real server process.

The bodies are valid requests (a batch of ~2,900 images of the tiny model), so the server does the
whole job: read 8 MiB, parse it (in its parse worker), run the batch and answer. ``json.loads`` of
8 MiB holds the GIL for its whole run; parsed on the event loop, it stalls health for as long
(measured on 2 busy cores: probes of 300-600 ms; with the parse workers the worst was 57 ms).
Tolerance: on a shared machine the OS may deschedule the server once; one probe of the run may
exceed 100 ms, none may exceed 250 ms. An event loop blocked by parsing fails both.
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipeline.serve.process import server_process

pytestmark = pytest.mark.slow  # a load test: 4 x 3 uploads of 8 MiB to a real server process

ROOT = Path(__file__).resolve().parents[2]
MIB8 = 8 * 1024 * 1024


def _eight_mib_body() -> tuple[bytes, int]:
    rng = np.random.default_rng(0)
    row = json.dumps(rng.random(144).tolist())  # float64 reprs: ~19 characters per value
    batch = (MIB8 - 200) // len(row)
    data = rng.random((batch, 144)).tolist()
    body = json.dumps({"inputs": [{"name": "input", "shape": [batch, 1, 12, 12], "datatype": "FP32", "data": data}]})
    while len(body) > MIB8:  # longer reprs than the sample row: drop rows until it fits
        batch -= 10
        body = json.dumps({"inputs": [{"name": "input", "shape": [batch, 1, 12, 12], "datatype": "FP32",
                                       "data": data[:batch]}]})  # fmt: skip
    return body.encode(), batch


def test_health_answers_fast_while_4_clients_send_8_mib_bodies(release, tmp_path):
    body, batch = _eight_mib_body()
    assert MIB8 - 64 * 1024 < len(body) <= MIB8
    args = ["--model", str(release.onnx), "--model-name", "tiny", "--max-batch", "4096",
            "--max-body-bytes", str(MIB8), "--parse-workers", "2"]  # fmt: skip
    with server_process(args, tmp_path / "server.log", ROOT) as server:
        url = server.url
        done = threading.Event()
        latencies: list[float] = []

        def probe() -> None:
            with httpx.Client(base_url=url, timeout=10) as http:
                while not done.is_set():
                    for path in ("/v2/health/live", "/v2/health/ready"):
                        start = time.perf_counter()
                        assert http.get(path).status_code == 200
                        latencies.append(time.perf_counter() - start)
                    time.sleep(0.02)

        def upload(_: int) -> list[int]:
            with httpx.Client(base_url=url, timeout=120) as http:
                return [http.post("/v2/models/tiny/infer", content=body).status_code for _ in range(3)]

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            with ThreadPoolExecutor(4) as pool:
                codes = [c for cs in pool.map(upload, range(4)) for c in cs]
        finally:
            done.set()
            prober.join()
    assert codes == [200] * 12, codes
    assert len(latencies) >= 20, f"only {len(latencies)} health probes ran during the uploads"
    slow = sorted(t for t in latencies if t >= 0.1)
    summary = (f"{len(slow)} of {len(latencies)} probes >= 100 ms (p50 {np.median(latencies) * 1e3:.1f} ms): "
               f"{[round(t * 1e3) for t in slow]} ms")  # fmt: skip
    assert len(slow) <= 1 and max(latencies) < 0.25, summary
