"""A real uvicorn server on 127.0.0.1 in a background thread, for tests that need a fake backend."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import uvicorn

from pipeline.export.onnx_export import TensorSpec
from pipeline.serve.app import create_app
from pipeline.serve.backends import FunctionBackend
from pipeline.serve.config import ServeSection
from pipeline.serve.source import ModelSource

INPUT, OUTPUT = TensorSpec("input", (1, 2, 2)), TensorSpec("logits", (2,))


def fake_source() -> ModelSource:
    return ModelSource("fake.onnx", INPUT, OUTPUT)


def body(batch: int = 1, value: float = 0.5) -> dict:
    return {"inputs": [{"name": "input", "shape": [batch, 1, 2, 2], "datatype": "FP32", "data": [value] * 4 * batch}]}


@contextmanager
def serving(
    infer: Callable[[np.ndarray], np.ndarray], source: ModelSource | None = None, **cfg
) -> Iterator[tuple[str, object]]:
    """Yield (base URL, app) once the server answers ready; stop it afterwards."""
    settings = {"model_name": "m", "max_batch": 4, "warmup_iterations": 1, "max_wait_ms": 1.0, **cfg}
    backend = FunctionBackend("fake", "fake_platform", ["cpu"], infer)
    app = create_app(backend, source or fake_source(), ServeSection(**settings), [])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("test server did not become ready")
            time.sleep(0.05)
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
